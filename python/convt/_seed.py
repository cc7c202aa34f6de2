"""The single-channel 2-D functions of the question convt grew from, over NumPy arrays.

``convolute`` is a valid cross-correlation and ``convolute_full`` its adjoint (the scatter "full"
convolution, PyTorch's ``conv_transpose2d``). ``cnn_*`` is a convolution layer; ``fcn_*`` a
transposed convolution layer whose kernel is stored turned by 180 degrees, as in the question:
``fcn_forward(w, x) == conv_transpose2d(x, rotate_180(w))``. The backward functions return the
exact gradients ``(dx, dw)``.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _core
from .functional import _ints, floating_arrays

__all__ = [
    "cnn_backward",
    "cnn_forward",
    "convolute",
    "convolute_full",
    "fcn_backward",
    "fcn_forward",
    "rotate_180",
]


def _strides(op: str, strides) -> tuple[int, ...]:
    values = _ints(op, "strides", strides)
    if isinstance(strides, numbers.Integral):
        return values * 2
    if len(values) != 2:
        raise ValueError(f"{op}: strides must have 2 values, got {tuple(values)!r}")
    return values


def convolute(X, W, strides=(1, 1)) -> np.ndarray:
    """Valid cross-correlation of X with W: ``out[i, j] = sum W[a, b] X[i*s0 + a, j*s1 + b]``."""
    X, W = floating_arrays("convolute", X=X, W=W)
    return _core.convolute(X, W, _strides("convolute", strides))


def convolute_full(X, W, strides=(1, 1)) -> np.ndarray:
    """Full (scatter) convolution: ``out[i*s0 + a, j*s1 + b] += W[a, b] X[i, j]``."""
    X, W = floating_arrays("convolute_full", X=X, W=W)
    return _core.convolute_full(X, W, _strides("convolute_full", strides))


def rotate_180(W) -> np.ndarray:
    """W turned by 180 degrees (``W[::-1, ::-1]`` as a new array)."""
    (W,) = floating_arrays("rotate_180", W=W)
    return _core.rotate_180(W)


def cnn_forward(weight, prev, strides=(1, 1)) -> np.ndarray:
    """Convolution layer: ``convolute(prev, weight)``, PyTorch's ``conv2d``."""
    weight, prev = floating_arrays("cnn_forward", weight=weight, prev=prev)
    return _core.cnn_forward(weight, prev, _strides("cnn_forward", strides))


def cnn_backward(a_prev, dz, kernel, strides=(1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw)`` of ``cnn_forward(kernel, a_prev)`` given dz, the output's gradient."""
    a_prev, dz, kernel = floating_arrays("cnn_backward", a_prev=a_prev, dz=dz, kernel=kernel)
    return _core.cnn_backward(a_prev, dz, kernel, _strides("cnn_backward", strides))


def fcn_forward(weight, prev, strides=(1, 1)) -> np.ndarray:
    """Transposed convolution layer: ``convolute_full(prev, rotate_180(weight))``."""
    weight, prev = floating_arrays("fcn_forward", weight=weight, prev=prev)
    return _core.fcn_forward(weight, prev, _strides("fcn_forward", strides))


def fcn_backward(a_prev, dz, kernel, strides=(1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw)`` of ``fcn_forward(kernel, a_prev)`` given dz, the output's gradient."""
    a_prev, dz, kernel = floating_arrays("fcn_backward", a_prev=a_prev, dz=dz, kernel=kernel)
    return _core.fcn_backward(a_prev, dz, kernel, _strides("fcn_backward", strides))
