"""convt.nn: layers against torch.nn loaded with the same weights, initialisation, gradient
accumulation, Sequential, activations, MSELoss, the DESIGN.md "In use" snippet, and errors."""

import math

import convt
import numpy as np
import pytest
from convt import nn

# (class name, constructor args, constructor kwargs, input shape)
LAYERS = [
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=1, dilation=2, groups=2), (2, 4, 11)),
    ("Conv1d", (3, 2, 4), dict(padding="same", bias=False), (2, 3, 7)),
    ("Conv2d", (3, 4, (3, 2)), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2)), (2, 3, 7, 8)),
    ("Conv2d", (4, 4, 3), dict(groups=4, padding=1, bias=False), (1, 4, 5, 5)),
    ("Conv3d", (2, 4, 2), dict(stride=(1, 2, 1), padding=1, groups=2), (2, 2, 3, 4, 3)),
    (
        "ConvTranspose1d",
        (4, 6, 3),
        dict(stride=3, padding=1, output_padding=2, groups=2),
        (2, 4, 5),
    ),
    (
        "ConvTranspose2d",
        (4, 6, (3, 2)),
        dict(stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2)),
        (2, 4, 4, 5),
    ),
    ("ConvTranspose2d", (1, 1, 3), dict(bias=False), (1, 1, 10, 10)),
    (
        "ConvTranspose3d",
        (2, 3, 2),
        dict(stride=2, output_padding=(1, 0, 1), bias=False),
        (1, 2, 3, 2, 3),
    ),
    ("ConvTranspose3d", (2, 2, (1, 2, 3)), dict(padding=(0, 1, 1), dilation=2), (2, 2, 3, 3, 3)),
]
IDS = [f"{name}-{i}" for i, (name, *_) in enumerate(LAYERS)]


def torch_pair(name, args, kwargs, dtype=np.float32):
    """A convt layer and a torch.nn layer of the same kind with the same (PyTorch's) weights."""
    torch = pytest.importorskip("torch")
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    theirs = getattr(torch.nn, name)(*args, dtype=torch_dtype, **kwargs)
    ours = getattr(nn, name)(*args, dtype=dtype, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def torch_forward_backward(module, x, dy, **forward_kwargs):
    """Output and gradients (input, then each parameter by name) of a torch module."""
    import torch

    xt = torch.tensor(x, requires_grad=True)
    y = module(xt, **forward_kwargs)
    y.backward(torch.tensor(dy))
    grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    return y.detach().numpy(), xt.grad.numpy(), grads


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), LAYERS, ids=IDS)
def test_layer_matches_torch(name, args, kwargs, shape, dtype):
    ours, theirs = torch_pair(name, args, kwargs, dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    y = ours(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grad_input = ours.backward(dy)
    y_t, grad_input_t, grads_t = torch_forward_backward(theirs, x, dy)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert y.dtype == dtype and grad_input.dtype == dtype
    np.testing.assert_allclose(y, y_t, **tol)
    np.testing.assert_allclose(grad_input, grad_input_t, **tol)
    assert [key for key, _ in ours.named_parameters()] == list(grads_t)
    for key, parameter in ours.named_parameters():
        assert parameter.grad.dtype == dtype
        np.testing.assert_allclose(parameter.grad, grads_t[key], **tol, err_msg=key)


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), LAYERS, ids=IDS)
def test_repr_and_state_dict_match_torch(name, args, kwargs, shape):
    ours, theirs = torch_pair(name, args, kwargs)
    assert repr(ours) == repr(theirs)
    state, state_t = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(state_t)
    for key in state:
        assert state[key].shape == tuple(state_t[key].shape)
        np.testing.assert_array_equal(state[key], state_t[key].numpy())
    assert ours.weight.dtype == np.float32


def test_unbatched_input_and_output_size_match_torch():
    ours, theirs = torch_pair("ConvTranspose2d", (2, 3, 3), dict(stride=2, padding=1))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 4)).astype(np.float32)  # unbatched (C, H, W)
    for output_size in (None, (8, 8), [1, 3, 8, 8][-2:]):
        kwargs = {} if output_size is None else dict(output_size=output_size)
        ours.zero_grad()
        theirs.zero_grad()
        y = ours(x, **kwargs)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        y_t, grad_input_t, grads_t = torch_forward_backward(theirs, x, dy, **kwargs)
        assert y.shape == y_t.shape
        np.testing.assert_allclose(y, y_t, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ours.backward(dy), grad_input_t, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ours.weight.grad, grads_t["weight"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("Conv2d", (64, 32, 3), {}),
        ("Conv1d", (48, 16, 5), {}),
        ("ConvTranspose2d", (32, 64, 3), {}),
        ("ConvTranspose3d", (16, 24, 2), {}),
        ("Conv2d", (128, 32, 3), dict(groups=2)),
        ("ConvTranspose1d", (32, 96, 4), dict(groups=4)),
    ],
)
def test_default_initialisation_matches_torch(name, args, kwargs):
    torch = pytest.importorskip("torch")
    convt.manual_seed(0)
    ours = getattr(nn, name)(*args, **kwargs)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    assert ours.weight.shape == tuple(theirs.weight.shape)
    assert ours.bias.shape == tuple(theirs.bias.shape)
    assert ours.weight.dtype == ours.bias.dtype == np.float32
    # kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = shape[1] * k...
    bound = 1 / math.sqrt(math.prod(ours.weight.shape[1:]))
    for w, w_t in ((ours.weight.data, theirs.weight.detach().numpy()),):
        for sample in (w, w_t):
            assert np.abs(sample).max() <= bound
            assert np.abs(sample).max() > 0.99 * bound
            assert abs(sample.mean()) < 0.05 * bound
            assert sample.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    for b in (ours.bias.data, theirs.bias.detach().numpy()):
        assert np.abs(b).max() <= bound
        assert np.abs(b).max() > 0.5 * bound


def test_generator_and_manual_seed():
    convt.manual_seed(3)
    a = nn.Conv2d(2, 3, 3)
    convt.manual_seed(3)
    b = nn.Conv2d(2, 3, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    state = nn.default_generator().bit_generator.state
    c = nn.Conv2d(2, 3, 3, generator=np.random.default_rng(7))
    d = nn.Conv2d(2, 3, 3, generator=7)
    assert nn.default_generator().bit_generator.state == state  # the default was not used
    np.testing.assert_array_equal(c.weight.data, d.weight.data)
    assert not np.array_equal(a.weight.data, c.weight.data)
    assert nn.Conv2d(1, 1, 1, dtype=np.float64).weight.dtype == np.float64


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), LAYERS[::3], ids=IDS[::3])
def test_gradients_accumulate_until_zero_grad(name, args, kwargs, shape):
    layer = getattr(nn, name)(*args, dtype=np.float64, **kwargs)
    rng = np.random.default_rng(2)
    x1, x2 = rng.standard_normal(shape), rng.standard_normal(shape)
    dy = rng.standard_normal(layer(x1).shape)

    def grads():
        return [p.grad.copy() for p in layer.parameters()]

    layer.backward(dy)
    once = grads()
    with pytest.raises(ValueError, match=r"more often than forward"):
        layer.backward(dy)  # as PyTorch, one forward is backpropagated once
    layer(x1)
    layer.backward(dy)  # the same forward again: twice the gradient
    for twice, single in zip(grads(), once, strict=True):
        np.testing.assert_allclose(twice, 2 * single, rtol=1e-12)
    layer.zero_grad()
    assert all(not g.any() for g in grads())
    layer(x2)
    layer.backward(dy)
    second = grads()
    layer.zero_grad()
    layer(x1)
    layer.backward(dy)
    layer(x2)
    layer.backward(dy)
    for total, a, b in zip(grads(), once, second, strict=True):
        np.testing.assert_allclose(total, a + b, rtol=1e-12)


def test_sequential_matches_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(
        torch.nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 3, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.ConvTranspose2d(3, 1, 2),
        torch.nn.Sigmoid(),
    )
    ours = nn.Sequential(
        nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 3, 3, padding=1),
        nn.Tanh(),
        nn.ConvTranspose2d(3, 1, 2),
        nn.Sigmoid(),
    )
    ours.load_state_dict(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    assert len(ours) == 6 and isinstance(ours[1], nn.ReLU) and len(ours[2:]) == 4
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    y = ours(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    y_t, grad_input_t, grads_t = torch_forward_backward(theirs, x, dy)
    np.testing.assert_allclose(y, y_t, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours.backward(dy), grad_input_t, rtol=1e-4, atol=1e-6)
    for key, parameter in ours.named_parameters():
        np.testing.assert_allclose(parameter.grad, grads_t[key], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["ReLU", "Tanh", "Sigmoid"])
def test_activations_match_torch(name):
    torch = pytest.importorskip("torch")
    x = np.concatenate([np.linspace(-5, 5, 41), [-100.0, -30.0, 0.0, 30.0, 100.0]])
    for dtype in (np.float32, np.float64):
        layer = getattr(nn, name)()
        xd = x.astype(dtype)
        y = layer(xd)
        dy = np.linspace(-1, 1, x.size).astype(dtype)
        y_t, grad_input_t, _ = torch_forward_backward(getattr(torch.nn, name)(), xd, dy)
        # 1 - y*y and y*(1 - y) near y = 1 magnify the last-bit differences of the two y's
        tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
        assert y.dtype == dtype and repr(layer) == f"{name}()"
        np.testing.assert_allclose(y, y_t, **tol)
        np.testing.assert_allclose(layer.backward(dy), grad_input_t, **tol)
        assert layer.parameters() == []


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_loss_matches_torch(reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x, target = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    loss_fn = nn.MSELoss(reduction)
    loss = loss_fn(x, target)
    xt = torch.tensor(x, requires_grad=True)
    loss_t = torch.nn.MSELoss(reduction=reduction)(xt, torch.tensor(target))
    loss_t.backward()
    assert isinstance(loss, float)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(loss_fn.backward(), xt.grad.numpy(), rtol=1e-12)
    assert loss_fn.forward(x, x) == 0.0


def test_design_in_use_snippet_runs_and_its_loss_falls():
    snippet = """
import numpy as np, convt
from convt import nn, optim

model = nn.Sequential(nn.ConvTranspose2d(1, 4, 3), nn.ReLU(), nn.ConvTranspose2d(4, 1, 3))
opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
loss_fn = nn.MSELoss()
x = np.random.randn(8, 1, 10, 10).astype(np.float32)
target = np.random.randn(8, 1, 14, 14).astype(np.float32)
for step in range(100):
    opt.zero_grad()
    loss = loss_fn(model(x), target)     # forward
    model.backward(loss_fn.backward())   # backward: gradients land on the parameters
    opt.step()
"""
    forward = "    loss = loss_fn(model(x), target)     # forward\n"
    assert forward in snippet
    recorded = snippet.replace(forward, forward + "    losses.append(loss)\n")
    np.random.seed(0)
    convt.manual_seed(0)
    namespace = {"losses": []}
    exec(recorded, namespace)
    losses = namespace["losses"]
    assert len(losses) == 100 and np.isfinite(losses).all()
    assert losses[-1] < 0.99 * losses[0]


def test_parameter_and_module_basics():
    p = nn.Parameter([1, 2, 3])
    assert p.dtype == np.float64 and p.shape == (3,) and not p.grad.any()
    assert repr(p) == "Parameter(shape=(3,), dtype=float64)"
    layer = nn.Conv2d(1, 2, 3, bias=False)
    assert layer.bias is None and list(layer.state_dict()) == ["weight"]
    assert layer.parameters() == [layer.weight]


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [
        nn.Conv1d(1, 1, 1),
        nn.Conv2d(1, 1, 1),
        nn.Conv3d(1, 1, 1),
        nn.ConvTranspose1d(1, 1, 1),
        nn.ConvTranspose2d(1, 1, 1),
        nn.ConvTranspose3d(1, 1, 1),
        nn.ReLU(),
        nn.Tanh(),
        nn.Sigmoid(),
        nn.Sequential(nn.Conv1d(1, 1, 1), nn.ReLU()),
    ],
    ids=repr,
)
def test_backward_before_forward_raises(layer):
    with pytest.raises(ValueError, match=r"backward was called before forward"):
        layer.backward(np.ones((1, 1, 1)))


def test_mse_backward_before_forward_raises():
    with pytest.raises(ValueError, match=r"MSELoss.backward was called before forward"):
        nn.MSELoss().backward()


def test_load_state_dict_errors_name_the_key_and_change_nothing():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.ConvTranspose2d(2, 1, 3))
    before = model.state_dict()
    bad = dict(before)
    bad["2.weight"] = np.zeros((1, 2, 3, 3))
    bad["0.bias"] = np.zeros(2)  # valid, but must not be applied when another key is wrong
    with pytest.raises(ValueError, match=r"'2\.weight' must have shape \(2, 1, 3, 3\), got \(1, 2"):
        model.load_state_dict(bad)
    missing = {k: v for k, v in before.items() if k != "0.bias"}
    with pytest.raises(ValueError, match=r"missing keys \['0\.bias'\]"):
        model.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected keys \['1\.weight'\]"):
        model.load_state_dict({**before, "1.weight": np.zeros(1)})
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    result = model.load_state_dict(missing, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == []
    with pytest.raises(TypeError, match=r"'0\.bias' must be a real array"):
        model.load_state_dict({**before, "0.bias": np.array(["a", "b"])})


def test_load_state_dict_accepts_torch_tensors_that_require_grad():
    torch = pytest.importorskip("torch")
    layer = nn.Conv1d(2, 3, 2)
    weight = torch.nn.Parameter(torch.ones(3, 2, 2, dtype=torch.float64))
    layer.load_state_dict({"weight": weight, "bias": [1, 2, 3]})
    np.testing.assert_array_equal(layer.weight.data, np.ones((3, 2, 2)))
    np.testing.assert_array_equal(layer.bias.data, [1, 2, 3])
    assert layer.weight.dtype == layer.bias.dtype == np.float32


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: nn.Conv2d(1, 1, 3, padding_mode="mirror"), r"padding_mode must be 'zeros', 're"),
        (lambda: nn.ConvTranspose2d(1, 1, 3, device="cuda"), r"device must be None or 'cpu'"),
        (lambda: nn.Conv2d(3, 4, 3, groups=2), r"in_channels \(3\) must be divisible by groups"),
        (lambda: nn.ConvTranspose1d(4, 3, 3, groups=2), r"out_channels \(3\) must be divisible"),
        (lambda: nn.Conv2d(1, 1, 3, dtype=np.int32), r"dtype must be float32 or float64"),
        (lambda: nn.Conv3d(1, 1, (3, 3)), r"kernel_size must be an int or 3 ints, got \(3, 3\)"),
        (lambda: nn.Conv1d(0, 1, 3), r"in_channels must be a positive int, got 0"),
        (lambda: nn.Conv1d(1, 1, 0), r"kernel_size must be positive"),
        (lambda: nn.MSELoss("none"), r"reduction must be 'mean' or 'sum'"),
    ],
)
def test_constructor_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_forward_errors_come_from_functional():
    with pytest.raises(ValueError, match=r"output_padding"):
        nn.ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"target must have the input's shape \(2, 3\)"):
        nn.MSELoss()(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"layer 1 must be a Module"):
        nn.Sequential(nn.ReLU(), np.tanh)
