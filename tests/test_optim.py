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


# --- parameter groups, state dicts, argument checks, Adam -------------------------------------


def torch_twins(shapes, dtype, seed=0):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    ours = [nn.Parameter(rng.standard_normal(shape).astype(dtype)) for shape in shapes]
    theirs = [torch.nn.Parameter(torch.tensor(p.data.copy())) for p in ours]
    return ours, theirs


def step_both(opt, opt_t, ours, theirs, rng, steps, dtype):
    import torch

    tol = dict(rtol=2e-6, atol=2e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    for _ in range(steps):
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


def groups_of(params, options):
    return [{"params": params[:1], **options[0]}, {"params": params[1:], **options[1]}]


def test_sgd_parameter_groups_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = torch_twins([(3, 2, 3), (4,), (2, 2)], np.float64)
    options = [dict(lr=0.3, momentum=0.5), dict(weight_decay=0.1, nesterov=True)]
    defaults = dict(lr=0.05, momentum=0.9)
    opt = optim.SGD(groups_of(ours, options), **defaults)
    opt_t = torch.optim.SGD(groups_of(theirs, options), **defaults)
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in opt_t.param_groups]
    step_both(opt, opt_t, ours, theirs, np.random.default_rng(1), 4, np.float64)
    opt.param_groups[1]["lr"] = opt_t.param_groups[1]["lr"] = 0.5  # a schedule's change
    step_both(opt, opt_t, ours, theirs, np.random.default_rng(2), 2, np.float64)


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_state_dict_round_trips_and_loads_torchs(kind):
    torch = pytest.importorskip("torch")
    options = (
        dict(lr=0.05, momentum=0.9)
        if kind == "SGD"
        else dict(lr=0.01, betas=(0.8, 0.99), amsgrad=True)
    )
    ours, theirs = torch_twins([(2, 3), (3,)], np.float64)
    opt, opt_t = (
        getattr(optim, kind)(ours, **options),
        getattr(torch.optim, kind)(theirs, **options),
    )
    step_both(opt, opt_t, ours, theirs, np.random.default_rng(3), 3, np.float64)
    state = opt.state_dict()
    assert list(state["state"]) == [0, 1]
    assert state["param_groups"][0]["params"] == [0, 1]
    # A fresh optimizer given either state dict continues as the trained ones do.
    for source in (state, opt_t.state_dict()):
        twins = [nn.Parameter(p.data.copy()) for p in ours]
        fresh = getattr(optim, kind)(twins, lr=1.0)
        fresh.load_state_dict(source)
        assert fresh.param_groups[0]["lr"] == options["lr"]
        for p, q in zip(twins, ours, strict=True):
            for key, value in opt.state[q].items():
                np.testing.assert_allclose(fresh.state[p][key], value, rtol=1e-12, atol=1e-15)
        del twins
    key = next(k for k, v in state["state"][0].items() if np.ndim(v))
    state["state"][0][key][...] = 7.0  # a copy, not the live state
    assert not any(np.any(v == 7.0) for v in opt.state[ours[0]].values() if np.ndim(v))
    with pytest.raises(ValueError, match=r"parameter group 0 has 2 parameters, this optimizer's 1"):
        getattr(optim, kind)(ours[:1]).load_state_dict(state)


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        ("SGD", dict(lr=-1)),
        ("SGD", dict(momentum=-0.1)),
        ("SGD", dict(weight_decay=-1)),
        ("SGD", dict(nesterov=True)),
        ("SGD", dict(lr=0.1, nesterov=True, momentum=0.9, dampening=0.1)),
        ("Adam", dict(lr=-1)),
        ("Adam", dict(eps=-1e-8)),
        ("Adam", dict(betas=(1.0, 0.999))),
        ("Adam", dict(betas=(0.9, -0.1))),
        ("Adam", dict(weight_decay=-1)),
    ],
)
def test_argument_errors_where_torch_raises(kind, kwargs):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        getattr(torch.optim, kind)([torch.nn.Parameter(torch.zeros(1))], **kwargs)
    with pytest.raises(ValueError, match=rf"{kind}: "):
        getattr(optim, kind)([nn.Parameter(np.zeros(1))], **kwargs)


def test_params_errors_where_torch_raises():
    torch = pytest.importorskip("torch")
    p, p_t = nn.Parameter(np.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(TypeError):
        torch.optim.SGD(p_t, lr=0.1)
    with pytest.raises(TypeError, match=r"params must be an iterable"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match=r"more than one parameter group"):
        torch.optim.SGD([{"params": [p_t]}, {"params": [p_t]}], lr=0.1)
    with pytest.raises(ValueError, match=r"more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match=r"ordered iterable, got a set"):
        optim.Adam({p})
    with pytest.raises(ValueError, match=r"unknown options \['betas'\]"):
        optim.SGD([{"params": [p], "betas": (0.9, 0.9)}], lr=0.1)


ADAM_CONFIGS = [
    dict(),
    dict(lr=0.01),
    dict(lr=0.02, betas=(0.5, 0.9), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.05, amsgrad=True, weight_decay=0.01, maximize=True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "config", ADAM_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default"
)
def test_adam_matches_torch_step_for_step(config, dtype):
    torch = pytest.importorskip("torch")
    ours, theirs = torch_twins([(3, 2, 3, 3), (3,), (2, 5)], dtype)
    opt, opt_t = optim.Adam(ours, **config), torch.optim.Adam(theirs, **config)
    assert {k: v for k, v in opt.defaults.items()} == {k: opt_t.defaults[k] for k in opt.defaults}
    step_both(opt, opt_t, ours, theirs, np.random.default_rng(4), 8, dtype)
    for p, p_t in zip(ours, theirs, strict=True):
        state, state_t = opt.state[p], opt_t.state[p_t]
        assert state["step"] == float(state_t["step"])
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if key in state_t:
                tol = dict(rtol=1e-5, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12)
                np.testing.assert_allclose(state[key], state_t[key].numpy(), **tol)


def test_adam_trains_a_network_as_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.Tanh(), torch.nn.ConvTranspose2d(3, 1, 2)
    ).double()
    f64 = np.float64
    ours = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, dtype=f64), nn.Tanh(), nn.ConvTranspose2d(3, 1, 2, dtype=f64)
    )
    ours.load_state_dict(theirs.state_dict())
    opt, opt_t = (
        optim.Adam(ours.parameters(), lr=0.01),
        torch.optim.Adam(theirs.parameters(), lr=0.01),
    )
    rng = np.random.default_rng(5)
    x, target = rng.standard_normal((2, 1, 5, 5)), rng.standard_normal((2, 1, 6, 6))
    loss_fn, loss_fn_t = nn.MSELoss(), torch.nn.MSELoss()
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
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-9, atol=1e-12)
