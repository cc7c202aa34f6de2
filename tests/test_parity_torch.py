"""convt equals PyTorch: torch.nn.functional's convolutions and their autograd gradients for random
configurations, ConvTranspose*d's output_size, and the seed's layer functions (cnn_*, fcn_*).

Skipped when PyTorch is not installed (CI installs torch==2.13.0).
"""

import convt
import numpy as np
import pytest
from conftest import ConvCase, assert_close, conv_case_strategy, examples
from hypothesis import assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
nnf = torch.nn.functional

FUNCTIONAL_EXAMPLES = examples(800)
OUTPUT_SIZE_EXAMPLES = examples(200)
SEED_LAYER_EXAMPLES = examples(200)


@pytest.fixture(autouse=True, scope="module")
def torch_single_thread():
    """PyTorch on one thread: its thread pool makes each tiny call slow on a busy 2-core
    machine, and the results do not depend on it."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def tensor(a, requires_grad=False):
    return torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(requires_grad)


def numpy(t):
    return t.detach().numpy()


def torch_forward_and_grads(case):
    """PyTorch's output and its (grad_input, grad_weight, grad_bias) for grad_output ``dy``."""
    x, w, b, dy = case.arrays
    xt, wt = tensor(x, True), tensor(w, True)
    bt = tensor(b if b is not None else np.zeros(case.channels_out, case.dtype), True)
    # PyTorch runs with a zero bias when the case has none, so that it reports grad_bias.
    y = getattr(nnf, case.name)(xt, wt, bt, **case.backward_kwargs())
    y.backward(tensor(dy))
    return numpy(y), (numpy(xt.grad), numpy(wt.grad), numpy(bt.grad))


# PyTorch warns that it copies the input for padding='same' with an even kernel; that is its own
# business, not a problem of the test.
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@settings(max_examples=FUNCTIONAL_EXAMPLES)
@given(case=conv_case_strategy(max_size=6, max_channels=4))
def test_functional_matches_torch(case):
    expected_y, expected_grads = torch_forward_and_grads(case)
    assert_close(case.forward(), expected_y, case.dtype, f"{case.name} output")
    for name, got, expected in zip(
        ("grad_input", "grad_weight", "grad_bias"), case.backward(), expected_grads, strict=True
    ):
        assert_close(got, expected, case.dtype, f"{case.name} {name}")


def torch_conv_transpose(case, x, w, b, output_size):
    """``torch.nn.ConvTranspose{dims}d`` with the case's arguments and weights, called with
    ``output_size``."""
    module = getattr(torch.nn, f"ConvTranspose{case.dims}d")(
        case.channels_in,
        case.channels_out,
        case.kernel,
        stride=case.stride,
        padding=case.padding,
        groups=case.groups,
        bias=b is not None,
        dilation=case.dilation,
        dtype=torch.float64 if case.dtype == np.float64 else torch.float32,
    )
    with torch.no_grad():
        module.weight.copy_(tensor(w))
        if b is not None:
            module.bias.copy_(tensor(b))
    return numpy(module(tensor(x), output_size=list(output_size)))


def convt_conv_transpose(case, x, w, b, output_size):
    return getattr(convt.functional, case.name)(
        x,
        w,
        b,
        stride=case.stride,
        padding=case.padding,
        groups=case.groups,
        dilation=case.dilation,
        output_size=output_size,
    )


@settings(max_examples=OUTPUT_SIZE_EXAMPLES)
@given(
    case=conv_case_strategy(transposed=True, max_size=3),
    extra=st.lists(st.integers(0, 2), min_size=3, max_size=3),
    whole_shape=st.booleans(),
)
def test_output_size_as_torch_conv_transpose_module(case, extra, whole_shape):
    """``output_size`` works as in ``torch.nn.ConvTranspose{1,2,3}d.forward``: the spatial
    sizes, or (batched input) the whole output shape."""
    x, w, b, _ = case.arrays
    smallest = [n - op for n, op in zip(case.output_spatial, case.output_padding, strict=True)]
    steps = zip(smallest, extra[: case.dims], case.strides, strict=True)
    output_size = [m + e % s for m, e, s in steps]
    assume(min(output_size) > 0)
    if whole_shape and case.batch is not None:
        output_size = [case.batch, case.channels_out, *output_size]
    expected = torch_conv_transpose(case, x, w, b, output_size)
    got = convt_conv_transpose(case, x, w, b, output_size)
    assert_close(got, expected, case.dtype, f"{case.name} output_size={output_size}")


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_output_size_with_channels_for_unbatched_input(dims):
    """PyTorch takes the whole output shape for an unbatched input too: (C_out, *spatial)."""
    case = ConvCase(
        transposed=True,
        dims=dims,
        batch=None,
        groups=1,
        channels_in=2,
        channels_out=3,
        kernel=(2,) * dims,
        size=(3,) * dims,
        stride=2,
        padding=0,
        dilation=1,
        output_padding=(0,) * dims,
        output_size=None,
        bias=True,
        dtype=np.dtype(np.float64),
        layout="C",
        seed=5,
    )
    x, w, b, _ = case.arrays
    output_size = [3, *(7,) * dims]  # (3 - 1) * 2 + 2 = 6 is the smallest; 7 needs padding 1
    expected = torch_conv_transpose(case, x, w, b, output_size)
    assert expected.shape == (3, *(7,) * dims)
    got = convt_conv_transpose(case, x, w, b, output_size)
    assert_close(got, expected, case.dtype, f"output_size={output_size}")


# ---- the seed's layer functions ----


@st.composite
def seed_layer_case(draw):
    """A 2-D input, a kernel that fits it, strides 1-3, a dtype and a random seed."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    size = tuple(k + draw(st.integers(0, 6)) for k in kernel)
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    return size, kernel, strides, dtype, draw(st.integers(0, 2**32 - 1))


def seed_layer_arrays(case, forward):
    """``(x, w, strides, dtype, z, dz)``: random x and w, z = forward(w, x, strides) and a
    random gradient dz of z's shape."""
    size, kernel, strides, dtype, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(size).astype(dtype)
    w = rng.standard_normal(kernel).astype(dtype)
    z = forward(w, x, strides)
    return x, w, strides, dtype, z, rng.standard_normal(z.shape).astype(dtype)


def autograd(fn, x, w, dz):
    xt, wt = tensor(x, True), tensor(w, True)
    z = fn(xt[None, None], wt[None, None])[0, 0]
    z.backward(tensor(dz))
    return numpy(z), numpy(xt.grad), numpy(wt.grad)


@settings(max_examples=SEED_LAYER_EXAMPLES)
@given(seed_layer_case())
def test_cnn_layer_matches_torch_conv2d(case):
    """cnn_forward(w, x) == conv2d(x, w); cnn_backward gives autograd's (dx, dw)."""
    x, w, strides, dtype, z, dz = seed_layer_arrays(case, convt.cnn_forward)
    expected_z, expected_dx, expected_dw = autograd(
        lambda xt, wt: nnf.conv2d(xt, wt, stride=strides), x, w, dz
    )
    assert_close(z, expected_z, dtype, "cnn_forward")
    dx, dw = convt.cnn_backward(x, dz, w, strides)
    assert_close(dx, expected_dx, dtype, "cnn_backward dx")
    assert_close(dw, expected_dw, dtype, "cnn_backward dw")


@settings(max_examples=SEED_LAYER_EXAMPLES)
@given(seed_layer_case())
def test_fcn_layer_matches_torch_conv_transpose2d(case):
    """fcn_forward(w, x) == conv_transpose2d(x, rot180(w)); fcn_backward gives autograd's
    (dx, dw) for the kernel as stored (not rotated)."""
    x, w, strides, dtype, z, dz = seed_layer_arrays(case, convt.fcn_forward)
    expected_z, expected_dx, expected_dw = autograd(
        lambda xt, wt: nnf.conv_transpose2d(xt, torch.flip(wt, (2, 3)), stride=strides), x, w, dz
    )
    assert_close(z, expected_z, dtype, "fcn_forward")
    dx, dw = convt.fcn_backward(x, dz, w, strides)
    assert_close(dx, expected_dx, dtype, "fcn_backward dx")
    assert_close(dw, expected_dw, dtype, "fcn_backward dw")
