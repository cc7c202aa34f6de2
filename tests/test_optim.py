"""convt.optim.SGD: the same steps as torch.optim.SGD given the same gradients."""

import numpy as np
import pytest
from convt import nn, optim

CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.02, momentum=0.5, dampening=0.1, weight_decay=0.1),
    dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.05, maximize=True),
    dict(lr=0.1, maximize=True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items())
)
def test_sgd_matches_torch_given_the_same_gradients(config, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    shapes = [(3, 2, 3, 3), (3,), (2, 5)]
    ours = [nn.Parameter(rng.standard_normal(shape).astype(dtype)) for shape in shapes]
    theirs = [torch.nn.Parameter(torch.tensor(p.data.copy())) for p in ours]
    opt, opt_t = optim.SGD(ours, **config), torch.optim.SGD(theirs, **config)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    for _ in range(6):
        opt.zero_grad()
        opt_t.zero_grad()
        for p, p_t in zip(ours, theirs, strict=True):
            grad = rng.standard_normal(p.shape).astype(dtype)
            p.grad += grad
            p_t.grad = torch.tensor(grad)
        opt.step()
        opt_t.step()
        for p, p_t in zip(ours, theirs, strict=True):
            assert p.data.dtype == dtype
            np.testing.assert_allclose(p.data, p_t.detach().numpy(), **tol)
            if config.get("momentum"):
                np.testing.assert_allclose(
                    opt.state[p]["momentum_buffer"],
                    opt_t.state[p_t]["momentum_buffer"].numpy(),
                    **tol,
                )


def test_training_matches_torch():
    """A few steps of a small network trained by convt and by PyTorch from the same weights."""
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(
        torch.nn.ConvTranspose2d(1, 3, 3, stride=2), torch.nn.Tanh(), torch.nn.Conv2d(3, 1, 3)
    ).double()
    f64 = np.float64
    ours = nn.Sequential(
        nn.ConvTranspose2d(1, 3, 3, stride=2, dtype=f64), nn.Tanh(), nn.Conv2d(3, 1, 3, dtype=f64)
    )
    ours.load_state_dict(theirs.state_dict())
    config = dict(lr=0.05, momentum=0.9, weight_decay=1e-3)
    opt, opt_t = (
        optim.SGD(ours.parameters(), **config),
        torch.optim.SGD(theirs.parameters(), **config),
    )
    loss_fn, loss_fn_t = nn.MSELoss(), torch.nn.MSELoss()
    rng = np.random.default_rng(1)
    x, target = rng.standard_normal((2, 1, 4, 4)), rng.standard_normal((2, 1, 7, 7))
    for _ in range(5):
        opt.zero_grad()
        loss = loss_fn(ours(x), target)
        ours.backward(loss_fn.backward())
        opt.step()
        opt_t.zero_grad()
        loss_t = loss_fn_t(theirs(torch.tensor(x)), torch.tensor(target))
        loss_t.backward()
        opt_t.step()
        assert loss == pytest.approx(loss_t.item(), rel=1e-10)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-10, atol=1e-12)


def test_step_updates_in_place_and_zero_grad():
    p = nn.Parameter(np.ones(3))
    data = p.data
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    p.grad += 2.0
    opt.step()
    assert p.data is data
    np.testing.assert_array_equal(p.data, [0.0, 0.0, 0.0])
    opt.zero_grad()
    assert not p.grad.any()
    opt.step()  # momentum carries on with a zero gradient: buffer 0.9 * 2
    np.testing.assert_allclose(p.data, [-0.9, -0.9, -0.9])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(lr=-1), ValueError, r"lr must be >= 0, got -1"),
        (dict(momentum=-0.1), ValueError, r"momentum must be >= 0"),
        (dict(weight_decay=-1), ValueError, r"weight_decay must be >= 0"),
        (dict(nesterov=True), ValueError, r"nesterov needs momentum > 0 and dampening 0"),
        (dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, r"dampening 0.1"),
    ],
)
def test_sgd_argument_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        optim.SGD([nn.Parameter(np.zeros(1))], **kwargs)


def test_sgd_params_errors():
    with pytest.raises(ValueError, match=r"params is empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match=r"params\[1\] must be a convt.nn.Parameter"):
        optim.SGD([nn.Parameter(np.zeros(1)), np.zeros(1)], lr=0.1)
