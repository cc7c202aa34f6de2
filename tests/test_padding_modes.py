"""Every padding mode for both layer kinds, and asymmetric padding, without PyTorch.

A transposed convolution with padding_mode m is defined as the adjoint of the convolution with
mode m and the same geometry. The oracles here:

* the adjoint identity <conv_m(x), y> == <x, conv_transpose_m(y)>, and the same for the weight
  (both layers are linear in it);
* the explicit matrix of conv_m, built column by column with convt.jacobian: the transposed
  layer's own Jacobian must be its transpose;
* finite differences of every gradient (convt.gradcheck);
* the plain-loop reference of tests/reference.py, whose padded positions are an index map
  written independently of convt's padded copy and fold.
"""

import itertools

import convt
import numpy as np
import pytest
import reference
from conftest import assert_close
from convt import functional

RNG = np.random.default_rng(1212)
MODES = ("zeros", "reflect", "replicate", "circular")
VALUED = MODES[1:]

# (dims, x size, kernel, stride, padding, dilation, groups); padding is an int, a per-dimension
# tuple, or (before, after) pairs. Every case keeps reflect's padding below the size.
CASES = [
    (1, 7, 3, 1, 1, 1, 1),
    (1, 8, 4, 3, ((2, 0),), 1, 2),
    (1, 6, 3, 2, ((0, 3),), 2, 1),
    (2, 5, 3, 1, 2, 1, 1),
    (2, (6, 5), (3, 2), (2, 1), ((1, 2), (0, 1)), 1, 1),
    (2, 7, 3, 3, (2, 1), (1, 2), 2),
    (2, 4, 1, 2, 3, 1, 1),
    (3, 4, 2, 1, ((1, 0), (0, 1), (1, 1)), 1, 1),
    (3, (3, 5, 4), 3, (1, 2, 1), 1, 1, 1),
]


def spatial(value, dims):
    return tuple(value) if isinstance(value, tuple) else (value,) * dims


def pairs(padding, dims):
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        return padding
    return tuple((p, p) for p in spatial(padding, dims))


def arrays(case, c_in=2, c_out=4, batch=2):
    dims, size, kernel, _, _, _, groups = case
    x = RNG.standard_normal((batch, c_in * groups, *spatial(size, dims)))
    w = RNG.standard_normal((c_out, x.shape[1] // groups, *spatial(kernel, dims)))
    return x, w


def kwargs(case):
    _, _, _, stride, padding, dilation, groups = case
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv(dims):
    return getattr(functional, f"conv{dims}d")


def conv_transpose(dims):
    return getattr(functional, f"conv_transpose{dims}d")


def inner(a, b):
    return float(np.sum(a * b))


def assert_same_inner_product(a1, b1, a2, b2):
    scale = max(1.0, inner(np.abs(a1), np.abs(b1)))
    assert abs(inner(a1, b1) - inner(a2, b2)) <= 1e-12 * scale


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_conv_transpose_is_the_adjoint_of_conv_with_the_same_mode(case, mode):
    dims = case[0]
    x, w = arrays(case)
    y = conv(dims)(x, w, **kwargs(case), padding_mode=mode)
    dy = RNG.standard_normal(y.shape)
    back = conv_transpose(dims)(dy, w, **kwargs(case), padding_mode=mode, output_size=x.shape[2:])
    assert back.shape == x.shape
    assert_same_inner_product(y, dy, x, back)
    # The convolution's input gradient is that same map, and the transposed layer's weight
    # gradient is the adjoint of w -> conv_transpose(dy, w).
    dx, _, _ = functional.__dict__[f"conv{dims}d_backward"](
        dy, x, w, **kwargs(case), padding_mode=mode, output_mask=(True, False, False)
    )
    assert_close(dx, back, np.float64)
    _, dw, _ = functional.__dict__[f"conv_transpose{dims}d_backward"](
        x, dy, w, **kwargs(case), padding_mode=mode, output_size=x.shape[2:]
    )
    assert_same_inner_product(back, x, w, dw)


@pytest.mark.parametrize("mode", VALUED)
@pytest.mark.parametrize("dims", (1, 2))
def test_conv_transpose_is_the_transposed_matrix_of_conv(dims, mode):
    """The Jacobian of x -> conv_m(x) is the explicit matrix of the convolution; that of
    y -> conv_transpose_m(y) must be its transpose, element for element."""
    size, kernel, stride, padding = ((7,), (3,), 2, ((2, 1),)) if dims == 1 else ((4, 5), 2, 1, 1)
    x = RNG.standard_normal((1, 2, *size))
    w = RNG.standard_normal((3, 2, *spatial(kernel, dims)))
    options = dict(stride=stride, padding=padding, padding_mode=mode)
    matrix = convt.jacobian(lambda x: conv(dims)(x, w, **options), x)
    y = conv(dims)(x, w, **options)
    transposed = convt.jacobian(
        lambda y: conv_transpose(dims)(y, w, **options, output_size=size), y
    )
    rows, cols = y.size, x.size
    np.testing.assert_allclose(
        transposed.reshape(cols, rows), matrix.reshape(rows, cols).T, atol=1e-8
    )
    # Not the zero-padding matrix: the ring holds values.
    zeros = convt.jacobian(lambda x: conv(dims)(x, w, stride=stride, padding=padding), x)
    assert not np.allclose(matrix, zeros)


@pytest.mark.parametrize("mode", VALUED)
@pytest.mark.parametrize("case", CASES[::2])
def test_every_gradient_matches_finite_differences(case, mode):
    dims = case[0]
    x, w = arrays(case, batch=1)
    b = RNG.standard_normal(w.shape[0])
    assert convt.gradcheck(conv(dims), (x, w, b), **kwargs(case), padding_mode=mode)
    y = conv(dims)(x, w, **kwargs(case), padding_mode=mode)
    z = RNG.standard_normal(y.shape)
    assert convt.gradcheck(
        conv_transpose(dims),
        (z, w, RNG.standard_normal(x.shape[1])),
        **kwargs(case),
        padding_mode=mode,
        output_size=x.shape[2:],
    )


def reference_arguments(case):
    dims, _, _, stride, padding, dilation, groups = case
    return dict(
        stride=spatial(stride, dims),
        padding=pairs(padding, dims),
        dilation=spatial(dilation, dims),
        groups=groups,
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_conv_equals_the_plain_loop_reference(case, mode):
    dims = case[0]
    x, w = arrays(case)
    b = RNG.standard_normal(w.shape[0])
    ref = reference_arguments(case)
    y = conv(dims)(x, w, b, **kwargs(case), padding_mode=mode)
    expected = reference.conv_forward(x, w, b, padding_mode=mode, **ref)
    assert_close(y, expected, np.float64)
    dy = RNG.standard_normal(y.shape)
    grads = functional.__dict__[f"conv{dims}d_backward"](
        dy, x, w, **kwargs(case), padding_mode=mode
    )
    expected = reference.conv_backward(dy, x, w, padding_mode=mode, **ref)
    for name, actual, wanted in zip(("dx", "dw", "db"), grads, expected, strict=True):
        assert_close(actual, wanted, np.float64, name)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_conv_transpose_equals_the_plain_loop_reference(case, mode):
    """Circular above all: the reference wraps each scattered product around by itself."""
    dims = case[0]
    x, w = arrays(case)
    y_shape = conv(dims)(x, w, **kwargs(case), padding_mode=mode).shape
    z = RNG.standard_normal(y_shape)
    wt = RNG.standard_normal(w.shape)  # the transposed layout (C_in, C_out / groups, k...)
    b = RNG.standard_normal(x.shape[1])
    ref = reference_arguments(case)
    geometry_sizes = x.shape[2:]
    out = conv_transpose(dims)(
        z, wt, b, **kwargs(case), padding_mode=mode, output_size=geometry_sizes
    )
    smallest = functional.valid_output_sizes(
        tuple(z.shape[2:]),
        tuple(w.shape[2:]),
        spatial(case[3], dims),
        kwargs(case)["padding"],
        spatial(case[5], dims),
    )
    output_padding = tuple(n - r.start for n, r in zip(geometry_sizes, smallest, strict=True))
    expected = reference.conv_transpose_forward(
        z,
        wt,
        b,
        ref["stride"],
        ref["padding"],
        output_padding,
        ref["groups"],
        ref["dilation"],
        padding_mode=mode,
    )
    assert_close(out, expected, np.float64)
    dy = RNG.standard_normal(out.shape)
    grads = functional.__dict__[f"conv_transpose{dims}d_backward"](
        dy, z, wt, **kwargs(case), padding_mode=mode, output_size=geometry_sizes
    )
    expected = reference.conv_transpose_backward(
        dy,
        z,
        wt,
        ref["stride"],
        ref["padding"],
        output_padding,
        ref["groups"],
        ref["dilation"],
        padding_mode=mode,
    )
    for name, actual, wanted in zip(("dx", "dw", "db"), grads, expected, strict=True):
        assert_close(actual, wanted, np.float64, name)


def test_circular_transposed_convolution_wraps_around():
    """A periodic lattice: shifting the input around the ring shifts the output the same way
    (times the stride), which no other padding gives at the edges."""
    x = RNG.standard_normal((1, 1, 6, 6))
    w = RNG.standard_normal((1, 1, 3, 3))
    options = dict(stride=2, padding=1, padding_mode="circular", output_size=(12, 12))
    y = functional.conv_transpose2d(x, w, **options)
    shifted = functional.conv_transpose2d(np.roll(x, (1, 2), axis=(2, 3)), w, **options)
    np.testing.assert_allclose(shifted, np.roll(y, (2, 4), axis=(2, 3)), atol=1e-12)
    zeros = dict(options, padding_mode="zeros")
    shifted = functional.conv_transpose2d(np.roll(x, (1, 2), axis=(2, 3)), w, **zeros)
    unshifted = functional.conv_transpose2d(x, w, **zeros)
    assert not np.allclose(shifted, np.roll(unshifted, (2, 4), axis=(2, 3)))


@pytest.mark.parametrize("mode", VALUED)
def test_unbatched_input_pads_as_batched(mode):
    x = RNG.standard_normal((2, 5, 6))
    w = RNG.standard_normal((3, 2, 3, 3))
    y = functional.conv2d(x, w, padding=((2, 1), (1, 0)), padding_mode=mode)
    expected = functional.conv2d(x[None], w, padding=((2, 1), (1, 0)), padding_mode=mode)[0]
    np.testing.assert_array_equal(y, expected)
    options = dict(padding=((2, 1), (1, 0)), padding_mode=mode, output_size=(5, 6))
    z = functional.conv_transpose2d(y, w, **options)
    np.testing.assert_array_equal(z, functional.conv_transpose2d(y[None], w, **options)[0])


@pytest.mark.parametrize(
    "op, size, kernel, padding, mode, message",
    [
        ("conv1d", 4, 1, 4, "reflect", r"conv1d: padding_mode='reflect' needs padding smaller"),
        ("conv1d", 4, 1, 5, "circular", r"conv1d: padding_mode='circular' needs padding at most"),
        # The transposed layer's padding is that of its output: 1 element here.
        ("conv_transpose1d", 1, 3, 1, "reflect", r"smaller than the output size, got padding 1"),
        ("conv2d", 4, 1, 1, "wrap", r"conv2d: padding_mode must be 'zeros', 'reflect'"),
    ],
)
def test_padding_a_mode_cannot_hold_is_refused(op, size, kernel, padding, mode, message):
    x = np.ones((1, 1, *(size,) * int(op[-2])))
    w = np.ones((1, 1, *(kernel,) * int(op[-2])))
    with pytest.raises(ValueError, match=message):
        getattr(functional, op)(x, w, padding=padding, padding_mode=mode)


def test_one_pair_pads_every_dimension():
    x, w = RNG.standard_normal((1, 1, 5, 6)), RNG.standard_normal((1, 1, 3, 3))
    one = functional.conv2d(x, w, padding=((1, 2),), padding_mode="reflect")
    both = functional.conv2d(x, w, padding=((1, 2), (1, 2)), padding_mode="reflect")
    np.testing.assert_array_equal(one, both)


def test_padding_mode_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"conv2d: padding_mode must be a str, got 1"):
        functional.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 1, 1)), padding_mode=1)


@pytest.mark.parametrize(
    "padding, message",
    [
        (((1, 2), 3), r"conv2d: padding must be ints or one \(before, after\) pair"),
        (((1, 2, 3), (0, 1)), r"conv2d: padding must be ints or one \(before, after\) pair"),
        (((1, -2), (0, 1)), r"padding .* must be non-negative"),
        (((1, 2), (0, 1), (1, 1)), r"padding must have 1 or 2 values, got 3"),
    ],
)
def test_malformed_asymmetric_padding_is_refused(padding, message):
    with pytest.raises(ValueError, match=message):
        functional.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=padding)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dims, stride", list(itertools.product((1, 2, 3), (1, 2, 3))))
def test_same_with_a_mode_keeps_tensorflows_sizes(dims, stride, mode):
    """'same' decides the amounts, the mode what they hold: the sizes are 'zeros'' sizes, and
    the transposed layer stays the adjoint."""
    size = 5
    x = RNG.standard_normal((1, 2, *(size,) * dims))
    w = RNG.standard_normal((3, 2, *(3,) * dims))
    y = conv(dims)(x, w, stride=stride, padding="same", padding_mode=mode)
    assert y.shape[2:] == (-(-size // stride),) * dims
    dy = RNG.standard_normal(y.shape)
    back = conv_transpose(dims)(
        dy, w, stride=stride, padding="same", padding_mode=mode, output_size=x.shape[2:]
    )
    assert_same_inner_product(y, dy, x, back)
