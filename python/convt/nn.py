"""Layers with a forward and a backward pass: ``torch.nn`` in miniature, in the style of micrograd.

A layer stores its hyperparameters and :class:`Parameter` s and calls :mod:`convt.functional`;
``forward`` caches what ``backward`` needs, and ``backward(grad_output)`` returns the gradient for
the input and *adds* the parameters' gradients to their ``.grad``. Constructor arguments, weight
layouts, default initialisation and ``state_dict`` keys are PyTorch's, so weights move both ways.

>>> import numpy as np, convt
>>> from convt import nn
>>> _ = convt.manual_seed(0)
>>> layer = nn.ConvTranspose2d(1, 2, 3, stride=2)
>>> y = layer(np.ones((1, 1, 4, 4), np.float32))
>>> y.shape, layer.backward(np.ones_like(y)).shape, layer.weight.grad.shape
((1, 2, 9, 9), (1, 1, 4, 4), (1, 2, 3, 3))
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from . import functional

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "MSELoss",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "default_generator",
    "manual_seed",
]

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Resets the package's default generator (used by layer initialisation), as
    ``torch.manual_seed``, and returns it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator() -> np.random.Generator:
    """The NumPy Generator that layers draw their initial weights from unless given one."""
    return _generator


class Parameter:
    """A trainable array ``data`` and the gradient ``grad`` accumulated for it, as
    ``torch.nn.Parameter``. ``grad`` is an array of zeros until a backward pass adds to it."""

    def __init__(self, data: Any) -> None:
        data = np.asarray(data)
        self.data = data if data.dtype.kind == "f" else data.astype(np.float64)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def zero_grad(self) -> None:
        """Sets ``grad`` to zero in place."""
        self.grad[...] = 0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` skipped, as PyTorch's namedtuple."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers, as ``torch.nn.Module``.

    Parameters are the :class:`Parameter` attributes of a module, then those of its child modules
    (attributes that are modules) under ``"<child>."``, which gives PyTorch's state_dict keys.
    """

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, grad_output: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        """All parameters, own first, then the children's in order."""
        return [parameter for _, parameter in self.named_parameters()]

    def zero_grad(self) -> None:
        """Sets every parameter's gradient to zero."""
        for parameter in self.parameters():
            parameter.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters under PyTorch's keys ("weight", "0.bias", ...)."""
        return {name: parameter.data.copy() for name, parameter in self.named_parameters()}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copies arrays (or anything ``np.asarray`` takes, e.g. PyTorch tensors) into the
        parameters, as ``torch.nn.Module.load_state_dict``.

        Raises ValueError naming the key for a missing or unexpected key (when ``strict``) and for
        a shape that differs; nothing is changed then.
        """
        own = dict(self.named_parameters())
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        if strict and (missing or unexpected):
            raise ValueError(
                f"load_state_dict: {type(self).__name__} has missing keys {missing} and "
                f"unexpected keys {unexpected}"
            )
        arrays = {}
        for key, value in state_dict.items():
            if key not in own:
                continue
            if hasattr(value, "detach"):  # a torch.Tensor, possibly requiring grad
                value = value.detach()
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                raise TypeError(f"load_state_dict: '{key}' must be a real array, got {array.dtype}")
            if array.shape != own[key].shape:
                raise ValueError(
                    f"load_state_dict: '{key}' must have shape {own[key].shape}, got {array.shape}"
                )
            arrays[key] = array
        for key, array in arrays.items():
            np.copyto(own[key].data, array, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        children = [f"({name}): {child!r}" for name, child in self.named_children()]
        if not children and "\n" not in extra:
            return f"{type(self).__name__}({extra})"
        body = "\n".join(([extra] if extra else []) + children).replace("\n", "\n  ")
        return f"{type(self).__name__}(\n  {body}\n)"


def _backward_before_forward(module: Module) -> ValueError:
    return ValueError(f"{type(module).__name__}.backward was called before forward")


class _ConvNd(Module):
    """What convolutions and transposed convolutions of 1-3 dims share: everything but the weight
    layout and ``output_padding``, which are chosen by the class attributes ``transposed`` and
    ``dims``."""

    dims: int
    transposed: bool

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        *,
        stride: Any,
        padding: Any,
        output_padding: Any,
        dilation: Any,
        groups: int,
        bias: bool,
        padding_mode: str,
        device: Any,
        dtype: Any,
        generator: Any,
    ) -> None:
        name = type(self).__name__
        if padding_mode not in functional.PADDING_MODES:
            raise ValueError(
                f"{name}: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', "
                f"got {padding_mode!r}"
            )
        if device is not None and str(device) != "cpu":
            raise ValueError(f"{name}: device must be None or 'cpu', got {device!r}")
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"{name}: dtype must be float32 or float64, got {dtype}")
        for arg, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("groups", groups),
        ):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value % groups:
                raise ValueError(f"{name}: {arg} ({value}) must be divisible by groups ({groups})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = self._tuple("kernel_size", kernel_size)
        if min(self.kernel_size) <= 0:
            raise ValueError(f"{name}: kernel_size must be positive, got {kernel_size!r}")
        self.stride = self._tuple("stride", stride)
        self.padding = padding if isinstance(padding, str) else self._tuple("padding", padding)
        self.dilation = self._tuple("dilation", dilation)
        self.output_padding = self._tuple("output_padding", output_padding)
        self.groups = int(groups)
        self.padding_mode = padding_mode

        channels = (
            (in_channels, out_channels // groups)
            if self.transposed
            else (out_channels, in_channels // groups)
        )
        shape = channels + self.kernel_size
        fan_in = shape[1] * math.prod(self.kernel_size)
        bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)), as PyTorch's reset_parameters
        rng = _generator if generator is None else np.random.default_rng(generator)
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(dtype))
        self.bias = (
            Parameter(rng.uniform(-bound, bound, out_channels).astype(dtype)) if bias else None
        )
        self._cache: tuple[np.ndarray, dict[str, Any]] | None = None

    def _tuple(self, arg: str, value: Any) -> tuple[int, ...]:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return (int(value),) * self.dims
        values = tuple(value) if isinstance(value, (tuple, list)) else ()
        if len(values) != self.dims or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values
        ):
            raise ValueError(
                f"{type(self).__name__}: {arg} must be an int or {self.dims} ints, got {value!r}"
            )
        return tuple(int(v) for v in values)

    def _function(self, suffix: str = "") -> Any:
        kind = "conv_transpose" if self.transposed else "conv"
        return getattr(functional, f"{kind}{self.dims}d{suffix}")

    def _options(self) -> dict[str, Any]:
        options = {
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "padding_mode": self.padding_mode,
        }
        if self.transposed:
            options["output_padding"] = self.output_padding
        return options

    def _forward(self, input: Any, options: dict[str, Any]) -> np.ndarray:
        input = np.asarray(input)
        bias = None if self.bias is None else self.bias.data
        output = self._function()(input, self.weight.data, bias, **options)
        self._cache = (input, options)
        return output

    def backward(self, grad_output: Any) -> np.ndarray:
        """Returns the gradient for the last forward's input and adds those of the weight and
        bias to their ``.grad``. Raises ValueError when no forward came before."""
        if self._cache is None:
            raise _backward_before_forward(self)
        input, options = self._cache
        grad_input, grad_weight, grad_bias = self._function("_backward")(
            grad_output,
            input,
            self.weight.data,
            **options,
            output_mask=(True, True, self.bias is not None),
        )
        self.weight.grad += grad_weight
        if self.bias is not None:
            self.bias.grad += grad_bias
        return grad_input

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding != (0,) * self.dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.dims:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self.dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s


class _Conv(_ConvNd):
    transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        generator: Any = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            output_padding=0,
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
            generator=generator,
        )

    def forward(self, input: Any) -> np.ndarray:
        return self._forward(input, self._options())


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        generator: Any = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
            generator=generator,
        )

    def forward(self, input: Any, output_size: Any = None) -> np.ndarray:
        """``output_size`` (spatial, or with the leading dims) picks ``output_padding`` for this
        call, as ``torch.nn.ConvTranspose2d.forward``."""
        options = self._options()
        if output_size is not None:
            options["output_size"] = output_size
        return self._forward(input, options)


class Conv1d(_Conv):
    """1-D convolution layer, as ``torch.nn.Conv1d``; weight ``(C_out, C_in / groups, k)``."""

    dims = 1


class Conv2d(_Conv):
    """2-D convolution layer, as ``torch.nn.Conv2d``; weight ``(C_out, C_in / groups, kH, kW)``."""

    dims = 2


class Conv3d(_Conv):
    """3-D convolution layer, as ``torch.nn.Conv3d``; weight
    ``(C_out, C_in / groups, kD, kH, kW)``."""

    dims = 3


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution layer, as ``torch.nn.ConvTranspose1d``; weight
    ``(C_in, C_out / groups, k)``."""

    dims = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution layer, as ``torch.nn.ConvTranspose2d``; weight
    ``(C_in, C_out / groups, kH, kW)``."""

    dims = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution layer, as ``torch.nn.ConvTranspose3d``; weight
    ``(C_in, C_out / groups, kD, kH, kW)``."""

    dims = 3


class _Activation(Module):
    """An elementwise function whose derivative is computed from what forward cached."""

    _cache: np.ndarray | None = None

    def backward(self, grad_output: Any) -> np.ndarray:
        """Returns the gradient for the last forward's input; ValueError before any forward."""
        if self._cache is None:
            raise _backward_before_forward(self)
        return np.asarray(grad_output) * self._derivative(self._cache)

    def _derivative(self, cache: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class ReLU(_Activation):
    """``max(x, 0)``, as ``torch.nn.ReLU``."""

    def forward(self, input: Any) -> np.ndarray:
        input = np.asarray(input)
        self._cache = input > 0
        return np.maximum(input, 0)

    def _derivative(self, positive: np.ndarray) -> np.ndarray:
        return positive


class Tanh(_Activation):
    """``tanh(x)``, as ``torch.nn.Tanh``."""

    def forward(self, input: Any) -> np.ndarray:
        self._cache = output = np.tanh(input)
        return output

    def _derivative(self, output: np.ndarray) -> np.ndarray:
        return 1 - output * output


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``, as ``torch.nn.Sigmoid`` (computed without overflow)."""

    def forward(self, input: Any) -> np.ndarray:
        input = np.asarray(input)
        self._cache = output = np.exp(-np.logaddexp(0, -input))
        return output

    def _derivative(self, output: np.ndarray) -> np.ndarray:
        return output * (1 - output)


class Sequential(Module):
    """Layers applied in order, as ``torch.nn.Sequential``; ``backward`` runs them in reverse.

    >>> from convt import nn
    >>> model = nn.Sequential(nn.ConvTranspose2d(1, 4, 3), nn.ReLU(), nn.ConvTranspose2d(4, 1, 3))
    >>> len(model), list(model.state_dict())
    (3, ['0.weight', '0.bias', '2.weight', '2.bias'])
    """

    def __init__(self, *layers: Module) -> None:
        for index, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {index} must be a Module, got {layer!r}")
        self._layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for index, layer in enumerate(self._layers):
            yield str(index), layer

    def forward(self, input: Any) -> Any:
        for layer in self._layers:
            input = layer(input)
        return input

    def backward(self, grad_output: Any) -> Any:
        """Runs every layer's backward, last first, and returns the gradient for the input."""
        for layer in reversed(self._layers):
            grad_output = layer.backward(grad_output)
        return grad_output

    def append(self, layer: Module) -> Sequential:
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential: layer must be a Module, got {layer!r}")
        self._layers.append(layer)
        return self

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(*self._layers[index])
        return self._layers[index]

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._layers)


class MSELoss(Module):
    """Mean (or summed) squared error, as ``torch.nn.MSELoss``; ``forward`` returns a float and
    ``backward()`` the gradient for ``input``."""

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"MSELoss: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self._difference: np.ndarray | None = None

    def forward(self, input: Any, target: Any) -> float:
        input, target = np.asarray(input), np.asarray(target)
        if input.shape != target.shape:
            raise ValueError(
                f"MSELoss: target must have the input's shape {input.shape}, got {target.shape}"
            )
        self._difference = difference = input - target
        total = float(np.sum(difference * difference))
        return total / difference.size if self.reduction == "mean" else total

    def backward(self) -> np.ndarray:  # type: ignore[override]
        """Returns the gradient of the last loss for its input; ValueError before any forward."""
        if self._difference is None:
            raise _backward_before_forward(self)
        scale = 2 / self._difference.size if self.reduction == "mean" else 2
        return scale * self._difference
