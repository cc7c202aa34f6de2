"""Padding modes and asymmetric padding equal PyTorch: torch.nn.Conv*d with each padding_mode,
forward and every gradient; asymmetric pads equal F.pad followed by PyTorch's convolution;
convt.nn layers and from_torch / to_torch carry the mode.

Skipped when PyTorch is not installed.
"""

import convt
import numpy as np
import pytest
from conftest import assert_close
from convt import functional
from convt import nn as cnn

torch = pytest.importorskip("torch")
import convt.torch as ct  # noqa: E402

RNG = np.random.default_rng(2012)
MODES = ("zeros", "reflect", "replicate", "circular")

# (dims, size, kernel, stride, padding, dilation, groups)
CASES = [
    (1, 9, 3, 1, 2, 1, 1),
    (1, 8, 4, 3, 3, 2, 2),
    (2, (6, 7), (3, 2), (2, 1), (2, 1), 1, 1),
    (2, 5, 3, 1, "same", 2, 2),
    (2, 6, 5, 2, 4, 1, 1),
    (3, 4, 3, (1, 2, 1), 1, 1, 1),
    (3, (3, 4, 5), 3, 1, "same", 1, 1),
]


@pytest.fixture(autouse=True, scope="module")
def torch_single_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def spatial(value, dims):
    return tuple(value) if isinstance(value, tuple) else (value,) * dims


def torch_module(case, mode, transposed=False):
    dims, _, kernel, stride, padding, dilation, groups = case
    kind = getattr(torch.nn, f"ConvTranspose{dims}d" if transposed else f"Conv{dims}d")
    return kind(
        2 * groups,
        4,
        kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=mode,
        dtype=torch.float64,
    )


def forward_and_gradients(module, x, dy):
    xt = torch.from_numpy(x).requires_grad_(True)
    y = module(xt)
    y.backward(torch.from_numpy(dy))
    grads = (xt.grad, module.weight.grad, module.bias.grad)
    return y.detach().numpy(), [g.numpy() for g in grads]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_conv_equals_torch_module_with_the_mode(case, mode):
    dims, size, _, stride, padding, dilation, groups = case
    module = torch_module(case, mode)
    x = RNG.standard_normal((2, 2 * groups, *spatial(size, dims)))
    w, b = module.weight.detach().numpy(), module.bias.detach().numpy()
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = getattr(functional, f"conv{dims}d")(x, w, b, **options, padding_mode=mode)
    dy = RNG.standard_normal(y.shape)
    expected, expected_grads = forward_and_gradients(module, x, dy)
    assert_close(y, expected, np.float64)
    grads = getattr(functional, f"conv{dims}d_backward")(dy, x, w, **options, padding_mode=mode)
    for name, actual, wanted in zip(("dx", "dw", "db"), grads, expected_grads, strict=True):
        assert_close(actual, wanted, np.float64, name)


def torch_pad(pairs):
    """F.pad's order: the last dimension's pair first."""
    return tuple(p for pair in reversed(pairs) for p in pair)


ASYMMETRIC = [
    (1, 7, 3, 2, ((0, 2),)),
    (1, 6, 4, 1, ((3, 1),)),
    (2, (5, 6), 3, (2, 1), ((1, 2), (0, 1))),
    (2, 6, (2, 3), 3, ((2, 0), (1, 3))),
    (3, 4, 2, 1, ((1, 0), (0, 1), (2, 1))),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dims, size, kernel, stride, pads", ASYMMETRIC)
def test_asymmetric_conv_equals_f_pad_then_torch_conv(dims, size, kernel, stride, pads, mode):
    x = RNG.standard_normal((2, 3, *spatial(size, dims)))
    w = RNG.standard_normal((2, 3, *spatial(kernel, dims)))
    b = RNG.standard_normal(2)
    conv = getattr(functional, f"conv{dims}d")
    y = conv(x, w, b, stride=stride, padding=pads, padding_mode=mode)
    xt, wt, bt = (torch.from_numpy(a).requires_grad_(True) for a in (x, w, b))
    padded = torch.nn.functional.pad(
        xt, torch_pad(pads), mode="constant" if mode == "zeros" else mode
    )
    expected = getattr(torch.nn.functional, f"conv{dims}d")(padded, wt, bt, stride=stride)
    assert_close(y, expected.detach().numpy(), np.float64)
    dy = RNG.standard_normal(y.shape)
    expected.backward(torch.from_numpy(dy))
    grads = getattr(functional, f"conv{dims}d_backward")(
        dy, x, w, stride=stride, padding=pads, padding_mode=mode
    )
    for name, actual, wanted in zip(("dx", "dw", "db"), grads, (xt, wt, bt), strict=True):
        assert_close(actual, wanted.grad.numpy(), np.float64, name)


@pytest.mark.parametrize("dims, size, kernel, stride, pads", ASYMMETRIC)
def test_asymmetric_zero_padded_conv_transpose_equals_torchs_cropped(
    dims, size, kernel, stride, pads
):
    """With zeros, padding crops the full transposed convolution: before from the start, after
    from the end, as PyTorch's with padding 0 then a slice."""
    x = RNG.standard_normal((1, 2, *spatial(size, dims)))
    w = RNG.standard_normal((2, 3, *spatial(kernel, dims)))
    full = getattr(torch.nn.functional, f"conv_transpose{dims}d")(
        torch.from_numpy(x), torch.from_numpy(w), stride=stride
    ).numpy()
    crop = tuple(
        slice(before, n - after) for (before, after), n in zip(pads, full.shape[2:], strict=True)
    )
    y = getattr(functional, f"conv_transpose{dims}d")(x, w, stride=stride, padding=pads)
    assert_close(y, full[(..., *crop)], np.float64)


@pytest.mark.parametrize("mode", MODES)
def test_nn_layers_take_the_mode_and_from_torch_converts_it(mode):
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=2, padding_mode=mode, dtype=torch.float64),
        torch.nn.Tanh(),
        torch.nn.Conv2d(3, 2, (3, 1), padding="same", padding_mode=mode, dtype=torch.float64),
    )
    layers = ct.from_torch(model)
    assert layers[0].padding_mode == layers[2].padding_mode == mode
    x = RNG.standard_normal((2, 2, 5, 6))
    expected = model(torch.from_numpy(x)).detach().numpy()
    assert_close(layers(x), expected, np.float64)
    back = ct.to_torch(layers)
    assert [m.padding_mode for m in back if hasattr(m, "padding_mode")] == [mode, mode]
    assert (mode != "zeros") == ("padding_mode" in repr(layers))


@pytest.mark.parametrize("mode", MODES[1:])
def test_nn_layer_gradients_with_a_mode_equal_torchs(mode):
    module = torch.nn.Conv3d(2, 3, 2, stride=(1, 2, 1), padding=1, padding_mode=mode)
    layer = ct.from_torch(module)
    x = RNG.standard_normal((2, 2, 3, 4, 5)).astype(np.float32)
    y = layer(x)
    dy = RNG.standard_normal(y.shape).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    module(xt).backward(torch.from_numpy(dy))
    assert_close(layer.backward(dy), xt.grad.numpy(), np.float32, "dx")
    assert_close(layer.weight.grad, module.weight.grad.numpy(), np.float32, "dw")
    assert_close(layer.bias.grad, module.bias.grad.numpy(), np.float32, "db")


@pytest.mark.parametrize("mode", MODES[1:])
def test_transposed_layers_with_a_mode_are_the_adjoint_and_stay_out_of_torch_nn(mode):
    layer = cnn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, padding_mode=mode, dtype=np.float64)
    y = RNG.standard_normal((1, 3, 4, 4))
    out = layer(y, output_size=(8, 8))
    x = RNG.standard_normal(out.shape)
    conv = functional.conv2d(x, layer.weight.data, stride=2, padding=1, padding_mode=mode)
    bias = layer.bias.data.reshape(1, -1, 1, 1)
    assert np.isclose(np.sum(conv * y), np.sum(x * (out - bias)), rtol=1e-12)
    with pytest.raises(ValueError, match=rf"to_torch: ConvTranspose2d has padding_mode='{mode}'"):
        ct.to_torch(layer)


@pytest.mark.parametrize("mode", MODES)
def test_convt_torch_transposed_convolution_with_a_mode_passes_torch_gradcheck(mode):
    """convt.torch gives PyTorch's autograd the transposed layer with every mode."""
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)

    def f(x, w):
        return ct.conv_transpose2d(x, w, stride=2, padding=(1, 2), padding_mode=mode)

    assert torch.autograd.gradcheck(f, (x, w))
    if mode != "zeros":
        assert torch.autograd.gradcheck(
            lambda x, w: ct.conv2d(x, w.transpose(0, 1), padding=1, padding_mode=mode), (x, w)
        )


def test_convt_gradcheck_of_every_mode_agrees_with_torch_forward():
    x = RNG.standard_normal((1, 2, 5))
    w = RNG.standard_normal((3, 2, 3))
    for mode in MODES:
        assert convt.gradcheck(functional.conv1d, (x, w), padding=2, padding_mode=mode)
        expected = torch.nn.functional.conv1d(
            torch.nn.functional.pad(
                torch.from_numpy(x), (2, 2), mode="constant" if mode == "zeros" else mode
            ),
            torch.from_numpy(w),
        )
        actual = functional.conv1d(x, w, padding=2, padding_mode=mode)
        assert_close(actual, expected.numpy(), np.float64)
