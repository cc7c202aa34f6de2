"""convt.torch: convt's kernels as PyTorch autograd Functions, and layers converted between
torch.nn and convt.nn with their weights.

The Functions are checked with torch.autograd.gradcheck (float64) and against
torch.nn.functional for random configurations (forward and every gradient). Skipped when PyTorch
is not installed (CI installs torch==2.13.0), except the check that ``import convt`` does not
import it.
"""

import doctest
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_close, conv_case_strategy, examples
from convt import functional, nn
from hypothesis import given, settings


def test_import_convt_does_not_import_torch():
    code = (
        "import sys, convt, convt.functional, convt.nn, convt.compat.tensorflow\n"
        "assert 'torch' not in sys.modules, 'import convt imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


torch = pytest.importorskip("torch")
import convt.torch as ct  # noqa: E402  (needs torch)

F = torch.nn.functional
PARITY_EXAMPLES = examples(200)
OPS = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]


@pytest.fixture(autouse=True, scope="module")
def torch_single_thread():
    """PyTorch on one thread: small calls are faster so on a busy machine."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def tensor(a, requires_grad=False):
    return torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(requires_grad)


# ---- the autograd Functions ----

# op, input shape, weight shape, keyword arguments (small, so that gradcheck is quick)
GRADCHECK_CASES = [
    ("conv1d", (2, 2, 7), (3, 2, 3), dict(stride=2, padding=1)),
    ("conv2d", (1, 4, 5, 6), (4, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), groups=2)),
    ("conv2d", (3, 5, 5), (2, 3, 3, 3), dict(padding="same", dilation=2)),
    ("conv3d", (1, 2, 4, 3, 4), (2, 2, 2, 2, 2), dict(stride=(1, 2, 1), padding=1)),
    ("conv_transpose1d", (2, 2, 4), (2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    (
        "conv_transpose2d",
        (1, 4, 3, 3),
        (4, 1, 3, 2),
        dict(stride=2, padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2)),
    ),
    ("conv_transpose2d", (2, 3, 3), (2, 2, 2, 2), dict(stride=3)),
    ("conv_transpose3d", (1, 2, 2, 3, 2), (2, 2, 2, 2, 2), dict(stride=(2, 1, 2), padding=1)),
]


@pytest.mark.parametrize(("op", "input_shape", "weight_shape", "kwargs"), GRADCHECK_CASES)
def test_gradcheck(op, input_shape, weight_shape, kwargs):
    rng = np.random.default_rng(len(input_shape) + sum(weight_shape))
    x = tensor(rng.standard_normal(input_shape), True)
    w = tensor(rng.standard_normal(weight_shape), True)
    channels_out = (
        weight_shape[1] * kwargs.get("groups", 1) if "transpose" in op else weight_shape[0]
    )
    b = tensor(rng.standard_normal(channels_out), True)
    function = getattr(ct, op)
    assert torch.autograd.gradcheck(lambda x, w, b: function(x, w, b, **kwargs), (x, w, b))


@settings(max_examples=PARITY_EXAMPLES)
@given(case=conv_case_strategy(allow_strings=True))
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_matches_torch_functional(case):
    """Output and the gradients for input, weight and bias equal PyTorch's, for random
    configurations (1-3 dims, stride, padding, dilation, groups, output_padding, batch 0-3 or
    unbatched, float32 and float64, contiguous or not)."""
    x, w, b, dy = case.arrays
    kwargs = case.backward_kwargs()
    results = []
    for function in (getattr(ct, case.name), getattr(F, case.name)):
        xt = torch.from_numpy(x).requires_grad_(True)  # x may be non-contiguous
        wt, bt = tensor(w, True), None if b is None else tensor(b, True)
        y = function(xt, wt, bt, **kwargs)
        y.backward(tensor(dy))
        grads = [xt.grad, wt.grad, None if bt is None else bt.grad]
        results.append([y.detach().numpy()] + [None if g is None else g.numpy() for g in grads])
    for name, got, expected in zip(["output", "input", "weight", "bias"], *results, strict=True):
        if expected is None:
            assert got is None
        else:
            assert_close(got, expected, case.dtype, f"{case.name} {name}")


def test_only_the_gradients_asked_for_are_computed(monkeypatch):
    masks = []
    backward = functional.conv2d_backward

    def spy(*args, output_mask, **kwargs):
        masks.append(output_mask)
        return backward(*args, output_mask=output_mask, **kwargs)

    monkeypatch.setattr(functional, "conv2d_backward", spy)
    x, w, b = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3), torch.randn(3)
    for need in [(True, False, False), (False, True, False), (False, False, True)]:
        args = [t.clone().requires_grad_(r) for t, r in zip((x, w, b), need, strict=True)]
        ct.conv2d(*args, padding=1).sum().backward()
        assert [t.grad is not None for t in args] == list(need)
    ct.conv2d(x.requires_grad_(), w).sum().backward()  # no bias: no bias gradient either
    only_input, only_weight, only_bias = (
        (True, False, False),
        (False, True, False),
        (False, False, True),
    )
    assert masks == [only_input, only_weight, only_bias, only_input]


def test_tensors_are_passed_and_returned_without_copies(monkeypatch):
    seen = []
    forward = functional.conv_transpose2d

    def spy(input, weight, bias, **kwargs):
        seen.extend([input, weight])
        output = forward(input, weight, bias, **kwargs)
        seen.append(output)
        return output

    monkeypatch.setattr(functional, "conv_transpose2d", spy)
    x, w = torch.randn(2, 3, 4, 4), torch.randn(3, 2, 3, 3)
    y = ct.conv_transpose2d(x, w, stride=2)
    assert np.shares_memory(seen[0], x.numpy()) and np.shares_memory(seen[1], w.numpy())
    assert np.shares_memory(seen[2], y.detach().numpy())


def test_errors_name_the_argument():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    with pytest.raises(TypeError, match=r"conv2d: input must be a torch\.Tensor, got ndarray"):
        ct.conv2d(x.numpy(), w)
    with pytest.raises(
        TypeError, match=r"conv2d: weight must have the input's dtype torch.float32"
    ):
        ct.conv2d(x, w.double())
    with pytest.raises(
        TypeError, match=r"conv2d: bias must be float32 or float64, got torch\.int64"
    ):
        ct.conv2d(x, w, torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="conv2d: input must be on the CPU, got device meta"):
        ct.conv2d(x.to("meta"), w)
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding \(2\) must be smaller"):
        ct.conv_transpose2d(x, w.transpose(0, 1), stride=2, output_padding=2)


def test_double_backward_is_refused():
    """Second derivatives would silently be zero, so create_graph=True is an error."""
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"conv2d: convt\.torch computes first derivatives only"):
        torch.autograd.grad(ct.conv2d(x, w).sum(), x, create_graph=True)
    (grad,) = torch.autograd.grad(ct.conv2d(x, w).sum(), x)  # without create_graph: fine
    assert grad.shape == x.shape


def test_inputs_modified_after_forward_are_detected():
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    w = torch.randn(1, 1, 2, 2, requires_grad=True)
    y = ct.conv2d(x, w)
    with torch.no_grad():
        w.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# ---- converting layers ----


def torch_model(dtype=torch.float32):
    torch.manual_seed(0)
    up = torch.nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=2)
    last = torch.nn.Conv2d(4, 1, 2, padding="same", bias=False)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        up,
        torch.nn.Tanh(),
        torch.nn.Sequential(last, torch.nn.Sigmoid()),
    )
    return model.to(dtype)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_from_torch_gives_the_same_outputs_and_gradients(dtype):
    model = torch_model(dtype)
    layers = ct.from_torch(model)
    assert isinstance(layers, nn.Sequential) and isinstance(layers[4][0], nn.Conv2d)
    assert list(layers.state_dict()) == list(model.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 2, 8, 8)).astype(layers[0].weight.dtype)
    xt = torch.from_numpy(x).requires_grad_(True)
    expected = model(xt)
    got = layers(x)
    dtype_np = np.float64 if dtype == torch.float64 else np.float32
    assert_close(got, expected.detach().numpy(), dtype_np, "output")
    dy = np.ones_like(got)
    expected.backward(torch.from_numpy(dy))
    assert_close(layers.backward(dy), xt.grad.numpy(), dtype_np, "input gradient")
    grads = {name: p.grad for name, p in layers.named_parameters()}
    for name, parameter in model.named_parameters():
        assert_close(grads[name], parameter.grad.numpy(), dtype_np, f"{name} gradient")


@pytest.mark.parametrize(
    "module",
    [
        lambda: torch.nn.Conv1d(3, 6, 4, stride=2, padding=1, dilation=2, groups=3),
        lambda: torch.nn.Conv3d(2, 3, (1, 2, 3), padding="valid", bias=False),
        lambda: torch.nn.ConvTranspose1d(2, 3, 3, stride=3, output_padding=2),
        lambda: torch.nn.ConvTranspose3d(2, 2, 2, stride=2, padding=(0, 1, 0), dilation=2),
    ],
)
def test_from_torch_and_back_for_each_kind(module):
    layer = module()
    converted = ct.from_torch(layer)
    assert type(converted).__name__ == type(layer).__name__
    x = np.random.default_rng(1).standard_normal((2, layer.in_channels, *[5] * converted.dims))
    x = x.astype(np.float32)
    expected = layer(torch.from_numpy(x)).detach().numpy()
    assert_close(converted(x), expected, np.float32)
    back = ct.to_torch(converted)
    assert type(back) is type(layer) and repr(back) == repr(layer)
    assert_close(back(torch.from_numpy(x)).detach().numpy(), expected, np.float32)


def test_to_torch_of_a_convt_model():
    model = nn.Sequential(
        nn.ConvTranspose2d(1, 3, 3, stride=2, dtype=np.float64),
        nn.ReLU(),
        nn.Conv2d(3, 2, 3, padding=1, dtype=np.float64),
        nn.Sigmoid(),
    )
    rng_state = torch.random.get_rng_state()
    converted = ct.to_torch(model)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # no initialisation drawn
    assert converted[0].weight.dtype == torch.float64
    x = np.random.default_rng(2).standard_normal((2, 1, 4, 4))
    assert_close(converted(torch.from_numpy(x)).detach().numpy(), model(x), np.float64)
    for key, value in converted.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), model.state_dict()[key])
    with pytest.raises(TypeError, match=r"to_torch: convt.nn.MSELoss has no PyTorch equivalent"):
        ct.to_torch(nn.MSELoss())


def test_unsupported_layers_are_named():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    with pytest.raises(TypeError, match=r"module\[1\] is a torch.nn.modules.batchnorm.BatchNorm2d"):
        ct.from_torch(model)

    class MyConv(torch.nn.Conv2d):
        def forward(self, input):
            return super().forward(2 * input)

    with pytest.raises(TypeError, match=r"module is a .*MyConv, which convt cannot convert"):
        ct.from_torch(MyConv(1, 1, 3))


def test_from_torch_leaves_convts_generator_alone():
    import convt

    generator = convt.manual_seed(7)
    state = generator.bit_generator.state
    ct.from_torch(torch.nn.ConvTranspose2d(2, 2, 3))
    assert convt.nn.default_generator().bit_generator.state == state


def test_docstring_examples():
    assert doctest.testmod(ct, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
