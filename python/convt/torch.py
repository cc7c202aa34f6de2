"""convt's kernels inside PyTorch's autograd, and conversion between ``torch.nn`` and ``convt.nn``.

Needs PyTorch (``pip install convt[torch]``); this module is the only one that imports it, so
``import convt`` works without it.

``conv1d`` ... ``conv_transpose3d`` have the signatures of ``torch.nn.functional``'s and are
``torch.autograd.Function`` s: the forward pass and the gradients for input, weight and bias are
computed by convt (only those that ``requires_grad`` asks for). Tensors must be CPU float32 or
float64, all of one dtype; contiguous ones are handed to convt without a copy
(``tensor.detach().numpy()``) and results come back without one (``torch.from_numpy``).

>>> import torch, convt.torch
>>> x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
>>> w = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
>>> y = convt.torch.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
>>> y.shape
torch.Size([1, 3, 10, 10])
>>> torch.autograd.gradcheck(lambda x, w: convt.torch.conv_transpose2d(x, w, stride=2), (x, w))
True

:func:`from_torch` turns a PyTorch layer (or a ``Sequential`` of them) into the equivalent
``convt.nn`` layers with the same weights, and :func:`to_torch` goes back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from . import _operations, functional, nn
from ._operations import Operation

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "from_torch",
    "to_torch",
]

_DTYPES = (torch.float32, torch.float64)


def _check_tensors(op: str, **tensors: torch.Tensor | None) -> None:
    """Raises TypeError or ValueError, naming the argument, unless every tensor given is a CPU
    float32 or float64 tensor of the first one's dtype."""
    dtype = None
    for name, tensor in tensors.items():
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.device.type != "cpu":
            raise ValueError(f"{op}: {name} must be on the CPU, got device {tensor.device}")
        if tensor.layout != torch.strided:
            raise TypeError(f"{op}: {name} must be a dense (strided) tensor, got {tensor.layout}")
        if tensor.dtype not in _DTYPES:
            raise TypeError(f"{op}: {name} must be float32 or float64, got {tensor.dtype}")
        if dtype is None:
            dtype = tensor.dtype
        elif tensor.dtype != dtype:
            raise TypeError(f"{op}: {name} must have the input's dtype {dtype}, got {tensor.dtype}")


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's memory as a NumPy array (no copy; convt copies it once if not contiguous)."""
    return tensor.detach().resolve_conj().resolve_neg().numpy()


class _Convolution(torch.autograd.Function):
    """One convt convolution or transposed convolution: ``op`` names the convt.functional
    function and ``options`` holds its keyword arguments."""

    @staticmethod
    def forward(
        ctx: Any,
        input: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        op: str,
        options: dict[str, Any],
    ) -> torch.Tensor:
        bias_array = None if bias is None else _numpy(bias)
        output = getattr(functional, op)(_numpy(input), _numpy(weight), bias_array, **options)
        ctx.save_for_backward(input, weight)
        ctx.op, ctx.options, ctx.has_bias = op, options, bias is not None
        return torch.from_numpy(output)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        input, weight = ctx.saved_tensors
        # With create_graph=True the gradients would have to be differentiable themselves; they
        # are not, so refuse rather than return second derivatives that are silently zero.
        if torch.is_grad_enabled() and any(t.requires_grad for t in (grad_output, input, weight)):
            raise RuntimeError(
                f"{ctx.op}: convt.torch computes first derivatives only; double backward "
                f"(create_graph=True) is not supported, use torch.nn.functional.{ctx.op}"
            )
        need_input, need_weight, need_bias = ctx.needs_input_grad[:3]
        backward = getattr(functional, ctx.op + "_backward")
        grads = backward(
            _numpy(grad_output),
            _numpy(input),
            _numpy(weight),
            **ctx.options,
            output_mask=(need_input, need_weight, need_bias and ctx.has_bias),
        )
        return (*(None if g is None else torch.from_numpy(g) for g in grads), None, None)


def _make_conv(operation: Operation) -> Callable[..., torch.Tensor]:
    op = operation.name

    def conv(
        input: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        *,
        padding_mode: str = "zeros",
    ) -> torch.Tensor:
        _check_tensors(op, input=input, weight=weight, bias=bias)
        options = {
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "groups": groups,
            "padding_mode": padding_mode,
        }
        return _Convolution.apply(input, weight, bias, op, options)

    return _documented(
        op,
        conv,
        "``padding`` is an int, a tuple, ``(before, after)`` pairs, 'valid' or 'same'; "
        "``padding_mode`` is that of ``torch.nn.Conv*d``.",
    )


def _make_conv_transpose(operation: Operation) -> Callable[..., torch.Tensor]:
    op = operation.name

    def conv_transpose(
        input: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        dilation: Any = 1,
        *,
        padding_mode: str = "zeros",
    ) -> torch.Tensor:
        _check_tensors(op, input=input, weight=weight, bias=bias)
        options = {
            "stride": stride,
            "padding": padding,
            "output_padding": output_padding,
            "groups": groups,
            "dilation": dilation,
            "padding_mode": padding_mode,
        }
        return _Convolution.apply(input, weight, bias, op, options)

    return _documented(
        op,
        conv_transpose,
        "``padding_mode`` may be 'reflect', 'replicate' or 'circular' too, which PyTorch's "
        "transposed layers refuse: the result is the adjoint of the convolution with that mode.",
    )


def _documented(op: str, function: Any, details: str) -> Callable[..., torch.Tensor]:
    function.__name__ = function.__qualname__ = op
    function.__doc__ = (
        f"``torch.nn.functional.{op}`` computed by convt, forward and backward (an autograd "
        f"Function).\n\n{details}"
    )
    return function


def _make(operation: Operation) -> Callable[..., torch.Tensor]:
    """``operation`` as an autograd Function with the signature of PyTorch's."""
    return (_make_conv_transpose if operation.transposed else _make_conv)(operation)


conv1d = _make(_operations.CONV1D)
conv2d = _make(_operations.CONV2D)
conv3d = _make(_operations.CONV3D)
conv_transpose1d = _make(_operations.CONV_TRANSPOSE1D)
conv_transpose2d = _make(_operations.CONV_TRANSPOSE2D)
conv_transpose3d = _make(_operations.CONV_TRANSPOSE3D)


# ---- layers: torch.nn <-> convt.nn ----

_CONVS: dict[type[torch.nn.Module], Callable[..., nn.Module]] = {
    getattr(torch.nn, operation.layer): getattr(nn, operation.layer)
    for operation in _operations.OPERATIONS
}
_ACTIVATIONS: dict[type[torch.nn.Module], Callable[[], nn.Module]] = {
    torch.nn.ReLU: nn.ReLU,
    torch.nn.Tanh: nn.Tanh,
    torch.nn.Sigmoid: nn.Sigmoid,
}
_SUPPORTED = "Conv1d-3d, ConvTranspose1d-3d, ReLU, Tanh, Sigmoid and Sequential of them"


def _type_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def from_torch(module: torch.nn.Module) -> nn.Module:
    """The ``convt.nn`` equivalent of a PyTorch layer, with copies of its weights.

    Converts ``torch.nn.Conv1d/2d/3d``, ``ConvTranspose1d/2d/3d``, ``ReLU``, ``Tanh``,
    ``Sigmoid`` and (nested) ``Sequential`` s of them; float64 weights stay float64, any other
    floating dtype becomes float32. Anything else, subclasses included (their ``forward`` may
    differ), raises TypeError naming the layer. Every ``padding_mode`` converts.

    >>> import numpy as np, torch, convt.torch
    >>> model = torch.nn.Sequential(torch.nn.ConvTranspose2d(1, 2, 3, stride=2), torch.nn.ReLU())
    >>> layers = convt.torch.from_torch(model)
    >>> x = np.ones((1, 1, 4, 4), np.float32)
    >>> bool(np.allclose(layers(x), model(torch.from_numpy(x)).detach().numpy(), atol=1e-6))
    True
    """
    return _from_torch(module, "module")


def _from_torch(module: Any, where: str) -> nn.Module:
    kind = type(module)
    if kind is torch.nn.Sequential:
        return nn.Sequential(
            *(_from_torch(child, f"{where}[{name}]") for name, child in module.named_children())
        )
    if kind in _ACTIVATIONS:
        return _ACTIVATIONS[kind]()
    if kind not in _CONVS:
        raise TypeError(
            f"from_torch: {where} is a {_type_name(kind)}, which convt cannot convert "
            f"(supported: torch.nn.{_SUPPORTED})"
        )
    float64 = module.weight.dtype == torch.float64
    layer = _CONVS[kind](
        **_layer_arguments(module),
        dtype=np.float64 if float64 else np.float32,
        # A generator of its own, so that the initial weights (overwritten below) are not drawn
        # from convt's default generator.
        generator=0,
    )
    dtype = torch.float64 if float64 else torch.float32
    layer.load_state_dict(
        {key: value.detach().to("cpu", dtype) for key, value in module.state_dict().items()}
    )
    return layer


def _layer_arguments(module: Any) -> dict[str, Any]:
    """The constructor arguments of a convolution layer, PyTorch's or convt's (they name them
    alike), but dtype, device and generator."""
    names = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation"]
    names += ["groups", "padding_mode"] + (["output_padding"] if module.transposed else [])
    return {name: getattr(module, name) for name in names} | {"bias": module.bias is not None}


def to_torch(module: nn.Module) -> torch.nn.Module:
    """The PyTorch equivalent of a ``convt.nn`` layer (or ``Sequential``), with copies of its
    weights: the reverse of :func:`from_torch`. Raises TypeError for any other module, and
    ValueError for a transposed layer whose ``padding_mode`` is not 'zeros' (PyTorch's refuse
    it; :func:`conv_transpose2d` and its kin compute it inside autograd)."""
    if type(module) is nn.Sequential:
        return torch.nn.Sequential(*(to_torch(child) for child in module))
    kind = type(module)
    for torch_kind, convt_kind in _ACTIVATIONS.items():
        if kind is convt_kind:
            return torch_kind()
    for torch_kind, convt_kind in _CONVS.items():
        if kind is convt_kind:
            return _conv_to_torch(module, torch_kind)
    raise TypeError(
        f"to_torch: {_type_name(kind)} has no PyTorch equivalent here (supported: convt.nn."
        f"{_SUPPORTED})"
    )


def _conv_to_torch(module: Any, torch_kind: type[torch.nn.Module]) -> torch.nn.Module:
    if module.transposed and module.padding_mode != "zeros":
        raise ValueError(
            f"to_torch: {type(module).__name__} has padding_mode={module.padding_mode!r}, which "
            f"torch.nn.{torch_kind.__name__} does not support (only 'zeros')"
        )
    layer = torch_kind(
        **_layer_arguments(module),
        dtype=torch.float64 if module.weight.dtype == np.float64 else torch.float32,
        # Allocated without initialisation (which would draw from torch's generator), then filled.
        device="meta",
    )
    layer = layer.to_empty(device="cpu")
    layer.load_state_dict(
        {key: torch.from_numpy(value) for key, value in module.state_dict().items()}
    )
    return layer
