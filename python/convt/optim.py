"""Optimizers that update :class:`convt.nn.Parameter` s in place, as ``torch.optim``.

``params`` is an iterable of parameters or of parameter groups, dicts with ``"params"`` and any
option to set for that group (``[{"params": encoder.parameters(), "lr": 1e-4}, ...]``); options
not given take the constructor's. ``state_dict()`` / ``load_state_dict()`` use PyTorch's layout
(parameters numbered in group order), and ``load_state_dict`` takes a ``torch.optim`` optimizer's
state dict too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .nn import Parameter

__all__ = ["SGD", "Adam", "Optimizer"]


class Optimizer:
    """What SGD and Adam share: parameter groups, per-parameter state and their state dicts."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, (Parameter, np.ndarray, Mapping)) or not isinstance(params, Iterable):
            raise TypeError(
                f"{name}: params must be an iterable of convt.nn.Parameter or of dicts, got "
                f"{type(params).__name__}"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: params must be an ordered iterable, got a set")
        self.defaults = defaults
        self.state: dict[Parameter, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: params is empty")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Adds a group (a dict with ``"params"`` and options), checked as the constructor's."""
        name = type(self).__name__
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise TypeError(f"{name}: a parameter group must be a dict with 'params'")
        unknown = sorted(set(param_group) - set(self.defaults) - {"params"})
        if unknown:
            raise ValueError(f"{name}: unknown options {unknown} in a parameter group")
        params = param_group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        index = sum(len(group["params"]) for group in self.param_groups)
        for offset, param in enumerate(params):
            if not isinstance(param, Parameter):
                raise TypeError(
                    f"{name}: params[{index + offset}] must be a convt.nn.Parameter, got {param!r}"
                )
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        group = {**self.defaults, **param_group, "params": params}
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group: dict[str, Any]) -> None:
        raise NotImplementedError

    @property
    def params(self) -> list[Parameter]:
        """Every parameter, in group order."""
        return [param for group in self.param_groups for param in group["params"]]

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Sets the gradient of every parameter to zero, or to None (a step then skips it)."""
        for param in self.params:
            param.zero_grad(set_to_none)

    def step(self) -> None:
        """Updates every parameter's ``data`` in place from its ``grad``; parameters whose
        ``grad`` is None are skipped, as PyTorch's."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    grad = -param.grad if group["maximize"] else param.grad
                    self._update(param, grad, group, self.state.setdefault(param, {}))

    def _update(self, param: Parameter, grad: Any, group: dict, state: dict) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{options..., "params": [indices]}]}``
        with copies of the arrays, parameters numbered in group order, as PyTorch's."""
        index = {id(p): i for i, p in enumerate(self.params)}
        state = {
            index[id(p)]: {k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in s.items()}
            for p, s in self.state.items()
            if s
        }
        groups = [
            {
                **{k: v for k, v in g.items() if k != "params"},
                "params": [index[id(p)] for p in g["params"]],
            }
            for g in self.param_groups
        ]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Takes the options and state of ``state_dict`` (this class's or ``torch.optim``'s of
        the same kind); the groups must have the same sizes. Nothing changes on an error."""
        name = type(self).__name__
        groups = list(state_dict["param_groups"])
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: it has {len(groups)} parameter groups, this optimizer "
                f"{len(self.param_groups)}"
            )
        params = self.params
        new_groups = []
        for i, (saved, own) in enumerate(zip(groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: parameter group {i} has {len(saved['params'])} "
                    f"parameters, this optimizer's {len(own['params'])}"
                )
            group = {**own, **{k: saved[k] for k in self.defaults if k in saved}}
            if "betas" in group:
                group["betas"] = tuple(float(b) for b in group["betas"])
            self._check(group)
            new_groups.append(group)
        ids = [i for saved in groups for i in saved["params"]]
        by_id = dict(zip(ids, params, strict=True))
        state: dict[Parameter, dict[str, Any]] = {}
        for key, values in state_dict["state"].items():
            if key not in by_id:
                raise ValueError(f"{name}.load_state_dict: state for unknown parameter {key!r}")
            param = by_id[key]
            state[param] = {}
            for k, v in values.items():
                if hasattr(v, "detach"):  # a torch.Tensor
                    v = v.detach().numpy()
                if np.ndim(v) == 0:
                    state[param][k] = float(v) if k == "step" else v
                    continue
                array = np.array(v, dtype=param.dtype)
                if array.shape != param.shape:
                    raise ValueError(
                        f"{name}.load_state_dict: state {k!r} of parameter {key} must have shape "
                        f"{param.shape}, got {array.shape}"
                    )
                state[param][k] = array
        for own, group in zip(self.param_groups, new_groups, strict=True):
            own.update(group)
        self.state = state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


def _at_least(name: str, arg: str, value: Any, least: float = 0.0) -> None:
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise TypeError(f"{name}: {arg} must be a number, got {value!r}")
    if not value >= least:  # NaN too
        raise ValueError(f"{name}: {arg} must be >= {least:g}, got {value}")


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD`` (the same update rule).

    Per parameter, with ``g = grad`` (``-grad`` if ``maximize``)::

        g = g + weight_decay * data
        buf = g (first step)  or  momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf      (when momentum != 0)
        data -= lr * g

    The momentum buffers are ``state[parameter]["momentum_buffer"]``.

    >>> import numpy as np
    >>> from convt import nn, optim
    >>> p = nn.Parameter(np.ones(2))
    >>> p.grad += 1.0
    >>> optim.SGD([p], lr=0.5).step()
    >>> p.data
    array([0.5, 0.5])
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        for arg in ("lr", "momentum", "weight_decay"):
            _at_least("SGD", arg, group[arg])
        _at_least("SGD", "dampening", group["dampening"], -math.inf)
        momentum, dampening = group["momentum"], group["dampening"]
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"SGD: nesterov needs momentum > 0 and dampening 0, got momentum {momentum} "
                f"and dampening {dampening}"
            )

    def _update(self, param: Parameter, grad: Any, group: dict, state: dict) -> None:
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data
        momentum = group["momentum"]
        if momentum != 0:
            buffer: np.ndarray | None = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = np.array(grad, dtype=param.dtype)
            else:
                buffer *= momentum
                buffer += (1 - group["dampening"]) * grad
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        param.data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (its defaults and update rule). Per parameter, at step
    ``t`` with ``g = grad`` (``-grad`` if ``maximize``)::

        g = g + weight_decay * data
        m = m + (1 - beta1) * (g - m);   v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)            (amsgrad; then v_max in place of v below)
        data -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The state is ``state[parameter]``: ``"step"``, ``"exp_avg"``, ``"exp_avg_sq"`` and, with
    amsgrad, ``"max_exp_avg_sq"``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        for arg in ("lr", "eps", "weight_decay"):
            _at_least("Adam", arg, group[arg])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair of numbers, got {betas!r}")
        for i, beta in enumerate(betas):
            _at_least("Adam", f"betas[{i}]", beta)
            if not beta < 1:
                raise ValueError(f"Adam: betas[{i}] must be < 1, got {beta}")
        group["betas"] = (float(betas[0]), float(betas[1]))

    def _update(self, param: Parameter, grad: Any, group: dict, state: dict) -> None:
        beta1, beta2 = group["betas"]
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = np.zeros_like(param.data)
            state["exp_avg_sq"] = np.zeros_like(param.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param.data)
        state["step"] += 1
        step = state["step"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            square = state.setdefault("max_exp_avg_sq", np.zeros_like(param.data))
            np.maximum(square, exp_avg_sq, out=square)
        else:
            square = exp_avg_sq
        denominator = np.sqrt(square) / math.sqrt(1 - beta2**step) + group["eps"]
        param.data -= (group["lr"] / (1 - beta1**step)) * exp_avg / denominator
