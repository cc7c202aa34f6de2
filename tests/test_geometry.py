"""The public geometry, ``convt.geometry`` and ``convt.weight_shape``: its sizes and weight shapes
are PyTorch's, its multiply-adds a plain count, and it refuses what the functions refuse."""

import math

import convt
import numpy as np
import pytest
from convt import functional as F  # noqa: N812
from convt import nn
from convt._operations import BY_NAME

# (op, input shape, weight shape, arguments)
CASES = [
    ("conv1d", (2, 4, 11), (6, 2, 3), dict(stride=2, padding=1, dilation=2, groups=2)),
    ("conv2d", (1, 3, 9, 8), (4, 3, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))),
    ("conv2d", (3, 6, 7, 7), (6, 1, 3, 3), dict(padding=1, groups=6)),
    ("conv3d", (1, 2, 5, 6, 7), (3, 2, 2, 3, 1), dict(stride=(1, 2, 3), padding=(0, 1, 0))),
    ("conv2d", (4, 5, 5), (2, 4, 3, 3), dict(padding=1)),  # unbatched
    ("conv_transpose1d", (2, 4, 5), (4, 3, 3), dict(stride=3, padding=1, output_padding=2)),
    (
        "conv_transpose2d",
        (2, 4, 4, 5),
        (4, 1, 3, 2),
        dict(stride=2, padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2)),
    ),
    ("conv_transpose3d", (1, 2, 3, 2, 3), (2, 3, 2, 2, 3), dict(stride=(2, 1, 2), dilation=2)),
    ("conv_transpose2d", (3, 4, 4), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
]
IDS = [f"{op}-{index}" for index, (op, *_) in enumerate(CASES)]


def plain_multiply_adds(op, input_shape, weight_shape, output_shape):
    """Every value of the convolution's output (the transposed convolution's input) sums one
    weight row: weight.shape[1] channels (those of its group) times the kernel's taps."""
    response = input_shape if "transpose" in op else output_shape
    dims = len(weight_shape) - 2
    batch = math.prod(response[: len(response) - dims - 1])  # 1 when unbatched
    return (
        batch
        * weight_shape[0]
        * weight_shape[1]
        * math.prod(weight_shape[2:])
        * math.prod(response[-dims:])
    )


@pytest.mark.parametrize(("op", "input_shape", "weight_shape", "arguments"), CASES, ids=IDS)
def test_sizes_and_weight_shape_are_those_of_the_call(op, input_shape, weight_shape, arguments):
    g = convt.geometry(op, input_shape, weight_shape, **arguments)
    x, w = np.zeros(input_shape), np.zeros(weight_shape)
    y = getattr(F, op)(x, w, **arguments)
    dims = len(weight_shape) - 2
    assert isinstance(g, convt.Geometry)
    assert (g.name, g.dims, g.transposed) == (op, dims, "transpose" in op)
    assert g.input_shape == input_shape and g.output_shape == y.shape
    assert g.input_size == input_shape[-dims:] and g.output_size == y.shape[-dims:]
    assert g.weight_shape == weight_shape
    assert g.groups == arguments.get("groups", 1)


@pytest.mark.parametrize(("op", "input_shape", "weight_shape", "arguments"), CASES, ids=IDS)
def test_sizes_are_pytorchs(op, input_shape, weight_shape, arguments):
    torch = pytest.importorskip("torch")
    g = convt.geometry(op, input_shape, weight_shape, **arguments)
    y = getattr(torch.nn.functional, op)(
        torch.zeros(input_shape, dtype=torch.float64),
        torch.zeros(weight_shape, dtype=torch.float64),
        **arguments,
    )
    assert g.output_shape == tuple(y.shape)


@pytest.mark.parametrize(("op", "input_shape", "weight_shape", "arguments"), CASES, ids=IDS)
def test_multiply_adds_are_a_plain_count(op, input_shape, weight_shape, arguments):
    g = convt.geometry(op, input_shape, weight_shape, **arguments)
    assert g.multiply_adds == plain_multiply_adds(op, input_shape, weight_shape, g.output_shape)


def test_multiply_adds_count_every_product_of_an_unpadded_convolution():
    x, w = np.ones((2, 4, 9, 7)), np.ones((6, 2, 3, 2))
    g = convt.geometry("conv2d", x.shape, w.shape, stride=(2, 1), groups=2)
    assert g.multiply_adds == F.conv2d(x, w, stride=(2, 1), groups=2).sum()
    # The transposed convolution of the same geometry forms the same products.
    dy = np.ones(g.output_shape)
    t = convt.geometry("conv_transpose2d", dy.shape, w.shape, stride=(2, 1), groups=2,
                       output_size=x.shape[2:])  # fmt: skip
    assert t.output_shape == x.shape and t.multiply_adds == g.multiply_adds
    assert F.conv_transpose2d(dy, w, stride=(2, 1), groups=2, output_size=x.shape[2:]).sum() == (
        g.multiply_adds
    )


def test_padding_rules_and_output_sizes_resolve_as_the_functions():
    g = convt.geometry("conv2d", (1, 1, 10, 9), (1, 1, 3, 4), stride=4, padding="same")
    assert g.output_size == (3, 3) == F.output_size((10, 9), (3, 4), stride=4, padding="same")
    assert g.padding_before == (0, 1) and g.padding_after == (1, 2)
    t = convt.geometry("conv_transpose1d", (1, 1, 12), (1, 1, 3), stride=2, padding=1)
    assert range(t.output_size_first[0], t.output_size_last[0] + 1) == F.valid_output_sizes(
        12, 3, stride=2, padding=1
    )
    assert (
        convt.geometry("conv_transpose1d", (1, 1, 12), (1, 1, 3), stride=2, padding=1,
                       output_size=[24]).output_size == (24,)
    )  # fmt: skip


@pytest.mark.parametrize(
    ("op", "in_channels", "out_channels", "kernel_size", "groups"),
    [
        ("conv1d", 4, 6, 3, 2),
        ("conv2d", 3, 8, (3, 5), 1),
        ("conv3d", 6, 6, 2, 3),
        ("conv_transpose1d", 4, 6, 3, 2),
        ("conv_transpose2d", 3, 8, (3, 5), 1),
        ("conv_transpose3d", 6, 9, (1, 2, 3), 3),
    ],
)
def test_weight_shape_is_the_layers(op, in_channels, out_channels, kernel_size, groups):
    shape = convt.weight_shape(op, in_channels, out_channels, kernel_size, groups)
    layer = BY_NAME[op].layer
    assert getattr(nn, layer)(
        in_channels, out_channels, kernel_size, groups=groups
    ).weight.shape == (shape)
    torch = pytest.importorskip("torch")
    module = getattr(torch.nn, layer)(
        in_channels, out_channels, kernel_size, groups=groups, device="meta"
    )
    assert tuple(module.weight.shape) == shape


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: convt.geometry("conv4d", (1, 1, 3), (1, 1, 1)), ValueError, "op must be one of"),
        (lambda: convt.geometry(2, (1, 1, 3), (1, 1, 1)), ValueError, "conv1d, conv2d, conv3d"),
        (
            lambda: convt.geometry("conv1d", (1, 1, 3), (1, 1, 1), output_padding=1),
            ValueError,
            "output_padding and output_size are for transposed convolutions only",
        ),
        (
            lambda: convt.geometry("conv2d", (1, 3, 5, 5), (4, 1, 3, 3), groups=2),
            ValueError,
            r"conv2d: input has 3 channels, but weight.shape\[1\] \(1\) x groups \(2\) = 2",
        ),
        (
            lambda: convt.geometry("conv2d", (1, 1, 5, 5), (1, 1, 3, 3), stride=0),
            ValueError,
            "conv2d: stride",
        ),
        (
            lambda: convt.geometry("conv2d", (1, 1, 5, 5), "weight"),
            TypeError,
            "conv2d: weight_shape must be an int or a tuple of ints",
        ),
        (
            lambda: convt.weight_shape("conv2d", 3, 4, 3, groups=2),
            ValueError,
            r"conv2d: in_channels \(3\) must be divisible by groups \(2\)",
        ),
        (
            lambda: convt.weight_shape("conv_transpose1d", 4, 3, 3, groups=2),
            ValueError,
            r"conv_transpose1d: out_channels \(3\) must be divisible by groups \(2\)",
        ),
        (
            lambda: convt.weight_shape("conv2d", 3, 4, (3, 3, 3)),
            ValueError,
            r"conv2d: kernel_size must be an int or 2 ints",
        ),
        (
            lambda: convt.weight_shape("conv2d", 3.0, 4, 3),
            TypeError,
            "conv2d: in_channels must be an int",
        ),
        (lambda: convt.weight_shape("conv1d", 0, 4, 3), ValueError, r"in_channels \(0\) must be"),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
