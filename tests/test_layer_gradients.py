"""convt.nn gradients where a layer keeping only its latest input went wrong: a module used at
several places, one activation instance shared across positions, forwards that are never
backpropagated. Each gives PyTorch autograd's gradients, or a ValueError that says why."""

import threading

import numpy as np
import pytest
from convt import nn

torch = pytest.importorskip("torch")

F64 = np.float64
TOL = dict(rtol=1e-10, atol=1e-12)


def load(ours, theirs):
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def torch_gradients(model, x, dy):
    """Input gradient and parameter gradients (by name, shared ones once) of torch's autograd."""
    model.zero_grad()
    xt = torch.tensor(x, requires_grad=True)
    model(xt).backward(torch.tensor(dy))
    return xt.grad.numpy(), {name: p.grad.numpy() for name, p in model.named_parameters()}


def assert_same_gradients(ours, theirs, x, grad_input, dy):
    grad_input_t, grads_t = torch_gradients(theirs, x, dy)
    np.testing.assert_allclose(grad_input, grad_input_t, **TOL)
    assert [name for name, _ in ours.named_parameters()] == list(grads_t)
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(parameter.grad, grads_t[name], **TOL, err_msg=name)


def test_a_layer_used_twice_gets_both_uses_gradients():
    shared_t = torch.nn.Conv2d(2, 2, 3, padding=1).double()
    shared = load(nn.Conv2d(2, 2, 3, padding=1, dtype=F64), shared_t)[0]
    ours, theirs = nn.Sequential(shared, shared), torch.nn.Sequential(shared_t, shared_t)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 5))
    y = ours(x)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(y, theirs(torch.tensor(x)).detach().numpy(), **TOL)
    assert_same_gradients(ours, theirs, x, ours.backward(dy), dy)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # both names, as PyTorch
    assert len(ours.parameters()) == 2


@pytest.mark.parametrize(
    "make",
    [
        # the model: input gradient off by 0.21 and 0.weight's by 3.0 before
        lambda nn, dt: [
            nn.Conv2d(2, 2, 3, padding=1, dtype=dt),
            nn.Conv2d(2, 2, 3, padding=1, dtype=dt),
        ],
        # shapes that ended in NumPy's broadcast error: (1,4,4,4) against (1,2,8,8)
        lambda nn, dt: [
            nn.Conv2d(2, 4, 3, stride=2, padding=1, dtype=dt),
            nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, dtype=dt),
        ],
    ],
    ids=["same-shapes", "other-shapes"],
)
@pytest.mark.parametrize("name", ["ReLU", "Tanh", "Sigmoid"])
def test_one_activation_instance_after_every_layer(make, name):
    act, act_t = getattr(nn, name)(), getattr(torch.nn, name)()
    layers, layers_t = make(nn, F64), make(torch.nn, torch.float64)
    for layer, layer_t in zip(layers, layers_t, strict=True):
        layer.load_state_dict(layer_t.state_dict())
    ours = nn.Sequential(layers[0], act, layers[1], act)
    theirs = torch.nn.Sequential(layers_t[0], act_t, layers_t[1], act_t)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 8, 8))
    y = ours(x)
    dy = rng.standard_normal(y.shape)
    assert_same_gradients(ours, theirs, x, ours.backward(dy), dy)


class Tower(nn.Module):
    """A custom module calling one block three times and an activation between."""

    def __init__(self, block, act):
        self.block, self.act = block, act

    def forward(self, x):
        return self.block(self.act(self.block(self.act(self.block(x)))))

    def backward(self, grad_output):
        g = self.block.backward(grad_output)
        g = self.block.backward(self.act.backward(g))
        return self.block.backward(self.act.backward(g))


class TowerT(torch.nn.Module):
    def __init__(self, block, act):
        super().__init__()
        self.block, self.act = block, act

    def forward(self, x):
        return self.block(self.act(self.block(self.act(self.block(x)))))


def test_a_module_called_three_times_in_a_custom_forward():
    block_t = torch.nn.ConvTranspose1d(3, 3, 3, padding=1).double()
    block = load(nn.ConvTranspose1d(3, 3, 3, padding=1, dtype=F64), block_t)[0]
    ours, theirs = Tower(block, nn.Tanh()), TowerT(block_t, torch.nn.Tanh())
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6))
    dy = rng.standard_normal(ours(x).shape)
    assert_same_gradients(ours, theirs, x, ours.backward(dy), dy)


def models():
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(3, 1, 3)
    ).double()
    ours = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, dtype=F64), nn.ReLU(), nn.Conv2d(3, 1, 3, dtype=F64)
    )
    return load(ours, theirs)


@pytest.mark.parametrize("how", ["no_grad", "eval", "no_grad-decorator"])
def test_a_validation_forward_between_forward_and_backward(how):
    ours, theirs = models()
    rng = np.random.default_rng(3)
    x_train, x_val = rng.standard_normal((2, 1, 6, 6)), 10 * rng.standard_normal((3, 1, 6, 6))
    y = ours(x_train)
    if how == "no_grad":
        with nn.no_grad():
            ours(x_val)
        assert nn.is_grad_enabled()
    elif how == "eval":
        ours.eval()
        ours(x_val)
        ours.train()
    else:
        nn.no_grad()(ours)(x_val)
    dy = rng.standard_normal(y.shape)
    assert_same_gradients(ours, theirs, x_train, ours.backward(dy), dy)


def test_a_forward_that_backward_cannot_place_is_a_value_error():
    ours, theirs = models()
    rng = np.random.default_rng(4)
    x_train, x_val = rng.standard_normal((2, 1, 6, 6)), rng.standard_normal((2, 1, 6, 6))
    before = [p.grad.copy() for p in ours.parameters()]
    y = ours(x_train)
    ours(x_val)  # same shapes: only a loud failure tells the two apart
    dy = rng.standard_normal(y.shape)
    with pytest.raises(ValueError, match=r"ran forward in 2 separate calls.*no_grad\(\)"):
        ours.backward(dy)
    for grad, old in zip([p.grad for p in ours.parameters()], before, strict=True):
        np.testing.assert_array_equal(grad, old)  # nothing was added by the failed call
    # The records are dropped: the next step works, with PyTorch's gradients.
    ours.zero_grad()
    ours(x_train)
    assert_same_gradients(ours, theirs, x_train, ours.backward(dy), dy)


def test_a_shared_activation_called_from_outside_a_model_is_a_value_error():
    relu = nn.ReLU()
    conv1, conv2 = nn.Conv1d(1, 1, 2), nn.Conv1d(1, 1, 2)
    x = np.random.default_rng(5).standard_normal((1, 1, 6))
    y = relu(conv2(relu(conv1(x))))
    with pytest.raises(ValueError, match=r"ReLU ran forward in 2 separate calls"):
        relu.backward(np.ones_like(y))


def test_a_loss_evaluated_on_validation_data_without_no_grad_is_a_value_error():
    loss_fn = nn.MSELoss()
    loss_fn(np.ones(3), np.zeros(3))
    loss_fn(np.ones(4), np.zeros(4))
    with pytest.raises(ValueError, match=r"MSELoss.backward: MSELoss ran forward in 2"):
        loss_fn.backward()
    with nn.no_grad():
        loss_fn(np.ones(4), np.zeros(4))
    loss_fn(np.ones(3), 3 * np.ones(3))
    np.testing.assert_allclose(loss_fn.backward(), [-4 / 3] * 3)


@pytest.mark.parametrize(
    "layer",
    [nn.Conv2d(1, 1, 3), nn.ConvTranspose1d(1, 1, 2), nn.ReLU(), nn.Tanh(), nn.Sigmoid()],
    ids=repr,
)
def test_eval_and_no_grad_save_nothing(layer):
    x = np.ones((1, 1, 4, 4)) if "2d" in repr(layer) else np.ones((1, 1, 4))
    layer.eval()
    assert not layer.training
    y = layer(x)
    with pytest.raises(ValueError, match=r"last forward ran in eval mode, which saves nothing"):
        layer.backward(np.ones_like(y))
    assert not vars(layer).get("_records")
    layer.train()
    with nn.no_grad():
        assert not nn.is_grad_enabled()
        y = layer(x)
    with pytest.raises(ValueError, match=r"last forward ran inside no_grad\(\)"):
        layer.backward(np.ones_like(y))
    assert not vars(layer).get("_records")
    layer(x)
    assert layer.backward(np.ones_like(y)).shape == x.shape


def test_unbackpropagated_forwards_keep_one_call_not_all():
    layer = nn.Conv2d(1, 1, 3)
    for _ in range(50):  # inference without no_grad: records do not pile up
        layer(np.ones((1, 1, 8, 8)))
    assert len(vars(layer)["_records"]) == 1


def test_no_grad_is_per_thread():
    seen = []
    with nn.no_grad():
        thread = threading.Thread(target=lambda: seen.append(nn.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


def test_backward_in_reverse_of_two_uses_pairs_each_with_its_input():
    """Gradients accumulate over the two uses of a shared layer in whichever order the model
    computes them; a wrong pairing would give the gradient of one input twice."""
    layer_t = torch.nn.Conv1d(1, 1, 3).double()
    layer = load(nn.Conv1d(1, 1, 3, dtype=F64), layer_t)[0]
    ours, theirs = nn.Sequential(layer, layer), torch.nn.Sequential(layer_t, layer_t)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 1, 9))
    y = ours(x)
    dy = rng.standard_normal(y.shape)
    grad_input = ours.backward(dy)
    assert_same_gradients(ours, theirs, x, grad_input, dy)
    with pytest.raises(ValueError, match=r"Conv1d.backward was called before forward"):
        ours.backward(dy)
