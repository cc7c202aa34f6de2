"""Optimizers that update :class:`convt.nn.Parameter` s in place, as ``torch.optim``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .nn import Parameter

__all__ = ["SGD"]


class SGD:
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD`` (the same update rule).

    Per parameter, with ``g = grad`` (``-grad`` if ``maximize``)::

        g = g + weight_decay * data
        buf = g (first step)  or  momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf      (when momentum != 0)
        data -= lr * g

    The momentum buffers are ``state[parameter]["momentum_buffer"]``. Unlike PyTorch, whose
    ``zero_grad`` sets gradients to None so that unused parameters are skipped, every parameter
    takes part in every step (its gradient is zero if nothing was added to it).

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
        params: Iterable[Parameter],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        if lr < 0:
            raise ValueError(f"SGD: lr must be >= 0, got {lr}")
        if momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"SGD: nesterov needs momentum > 0 and dampening 0, got momentum {momentum} "
                f"and dampening {dampening}"
            )
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD: params is empty")
        for index, param in enumerate(self.params):
            if not isinstance(param, Parameter):
                raise TypeError(f"SGD: params[{index}] must be a convt.nn.Parameter, got {param!r}")
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov, self.maximize = weight_decay, nesterov, maximize
        self.state: dict[Parameter, dict[str, Any]] = {}

    def zero_grad(self) -> None:
        """Sets the gradient of every parameter to zero."""
        for param in self.params:
            param.zero_grad()

    def step(self) -> None:
        """Updates every parameter's ``data`` in place from its ``grad``."""
        for param in self.params:
            if param.grad is None:
                continue  # zero_grad(set_to_none=True) and no backward since: as PyTorch
            grad = -param.grad if self.maximize else param.grad
            if self.weight_decay != 0:
                grad = grad + self.weight_decay * param.data
            if self.momentum != 0:
                state = self.state.setdefault(param, {})
                buffer: np.ndarray | None = state.get("momentum_buffer")
                if buffer is None:
                    buffer = state["momentum_buffer"] = np.array(grad, dtype=param.dtype)
                else:
                    buffer *= self.momentum
                    buffer += (1 - self.dampening) * grad
                grad = grad + self.momentum * buffer if self.nesterov else buffer
            param.data -= self.lr * grad

    def __repr__(self) -> str:
        options = (
            f"lr={self.lr}, momentum={self.momentum}, dampening={self.dampening}, "
            f"weight_decay={self.weight_decay}, nesterov={self.nesterov}, maximize={self.maximize}"
        )
        return f"SGD({len(self.params)} parameters, {options})"
