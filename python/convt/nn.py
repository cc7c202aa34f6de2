"""Layers with a forward and a backward pass: ``torch.nn`` in miniature, in the style of micrograd.

A layer stores its hyperparameters and :class:`Parameter` s and calls :mod:`convt.functional`;
each ``forward`` saves what its ``backward`` needs (nothing in ``eval()`` mode or inside
:func:`no_grad`), and ``backward(grad_output)`` takes the latest such record, returns the gradient
for its input and *adds* the parameters' gradients to their ``.grad``. Constructor arguments, weight
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

import contextlib
import itertools
import math
import numbers
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from . import _core, _operations, functional

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
    "is_grad_enabled",
    "manual_seed",
    "no_grad",
]

_generator = np.random.default_rng()

# The most elements an array may have, as the geometry's bound: its bytes must be addressable.
_MOST_ELEMENTS = 2**60 - 1


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
    ``torch.nn.Parameter``. ``grad`` is an array of zeros until a backward pass adds to it (or
    None after ``zero_grad(set_to_none=True)``). Where NumPy asks for an array
    (``np.asarray(p)``, ``convt.functional.conv2d(x, layer.weight)``) it is ``data``."""

    def __init__(self, data: Any) -> None:
        data = np.asarray(data)
        self.data = data if data.dtype.kind == "f" else data.astype(np.float64)
        self.grad: np.ndarray | None = np.zeros_like(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy is False and dtype is not None and np.dtype(dtype) != self.dtype:
            raise ValueError("Parameter: a copy is needed to convert to another dtype")
        array = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return array.copy() if copy else array

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Sets ``grad`` to zero in place, or to None (optimizers then skip the parameter)."""
        if set_to_none:
            self.grad = None
        elif self.grad is None:
            self.grad = np.zeros_like(self.data)
        else:
            self.grad[...] = 0

    def accumulate(self, grad: Any) -> None:
        """Adds ``grad`` to ``grad`` (which becomes a copy of it when it is None)."""
        if self.grad is None:
            self.grad = np.array(grad, dtype=self.dtype)
        else:
            self.grad += grad

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` skipped, as PyTorch's namedtuple."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class _Recording(threading.local):
    """Per thread, as PyTorch's grad mode: whether forwards save for backward, and which
    outermost module call the current forward belongs to."""

    enabled = True
    depth = 0
    call = 0


_recording = _Recording()
_calls = itertools.count(1)
# The modules holding records, so that a backward that cannot place its call drops them all.
_holding: weakref.WeakSet[Module] = weakref.WeakSet()


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Forwards inside save nothing for backward, as ``torch.no_grad`` (also a decorator): for
    validation and inference, whose forwards are never backpropagated."""
    enabled = _recording.enabled
    _recording.enabled = False
    try:
        yield
    finally:
        _recording.enabled = enabled


def is_grad_enabled() -> bool:
    """False inside :func:`no_grad`."""
    return _recording.enabled


_NOT_COPIED = ("_records", "_unclaimed", "_skipped", "_plan", "_plan_key")


class Module:
    """Base class of layers, as ``torch.nn.Module``.

    Parameters are the :class:`Parameter` attributes of a module, then those of its child modules
    (attributes that are modules) under ``"<child>."``, which gives PyTorch's state_dict keys.

    Each forward, in training mode and outside :func:`no_grad`, saves what its backward needs
    (:meth:`save_for_backward`), and each backward takes the latest saved record
    (:meth:`saved_for_backward`): so a module used at several places of one model call, a
    ``Sequential(shared, shared)`` or one ``ReLU`` after every layer, gets each use's gradient.
    What belongs to one backward is what one outermost call (``model(x)``) saved; when a module
    holds records of several outermost calls, backward cannot know which one ``grad_output``
    belongs to and raises ValueError.
    """

    training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, grad_output: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _recording.depth == 0:
            _recording.call = next(_calls)
        _recording.depth += 1
        try:
            return self.forward(*args, **kwargs)
        finally:
            _recording.depth -= 1

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(vars(self).get(name), Parameter) and not (
            value is None or isinstance(value, Parameter)
        ):
            raise TypeError(
                f"cannot assign '{type(value).__module__}.{type(value).__qualname__}' as "
                f"parameter '{name}' "
                "(convt.nn.Parameter or None expected); to change its values, assign to "
                f"'{name}.data' or wrap the array in nn.Parameter"
            )
        object.__setattr__(self, name, value)

    def __getstate__(self) -> dict[str, Any]:
        # A copy (pickle, deepcopy) has no forward waiting for backward, as a copy of a torch
        # module carries no graph; a convolution's plan is made again where it runs.
        return {key: value for key, value in vars(self).items() if key not in _NOT_COPIED}

    def save_for_backward(self, record: Any) -> None:
        """Keeps ``record`` for the backward of this forward; nothing in eval mode or in
        :func:`no_grad`."""
        state = vars(self)
        if not (self.training and _recording.enabled):
            state["_skipped"] = "in eval mode" if not self.training else "inside no_grad()"
            return
        call = _recording.call if _recording.depth else next(_calls)
        records = state.setdefault("_records", [])
        if records and records[-1][0] != call:
            # An earlier call was not backpropagated: keep only the newest, and count the others
            # so that a backward that cannot know which one it belongs to says so.
            state["_unclaimed"] = state.get("_unclaimed", 0) + len({c for c, _ in records})
            records.clear()
        records.append((call, record))
        state["_skipped"] = None
        _holding.add(self)

    def saved_for_backward(self) -> Any:
        """The record of the latest forward not yet backpropagated, which it removes. Raises
        ValueError when there is none, or when records of several calls are waiting."""
        state, name = vars(self), type(self).__name__
        records = state.get("_records")
        unclaimed = state.pop("_unclaimed", 0)
        if unclaimed:
            # The other modules of the model hold records of the same calls: drop every record,
            # so that the next forward and backward start afresh.
            for module in list(_holding):
                vars(module).pop("_records", None)
                vars(module).pop("_unclaimed", None)
            _holding.clear()
            raise ValueError(
                f"{name}.backward: {name} ran forward in {unclaimed + 1} separate calls since "
                "its last backward, so backward cannot know which one grad_output belongs to "
                "(their records are dropped). Run the forwards you do not backpropagate "
                "(validation, inference) inside `with convt.nn.no_grad():` or after "
                "model.eval(), backpropagate each call before the next one, and call a module "
                "used at several places from one model (a Sequential or a Module's forward)"
            )
        if not records:
            skipped = state.get("_skipped")
            if skipped:
                raise ValueError(
                    f"{name}.backward: its last forward ran {skipped}, which saves nothing for "
                    "backward; run the forward to backpropagate in training mode (model.train()) "
                    "outside no_grad()"
                )
            raise ValueError(
                f"{name}.backward was called before forward, or more often than forward "
                "(each forward call is backpropagated once)"
            )
        return records.pop()[1]

    def train(self, mode: bool = True) -> Module:
        """Sets training mode on this module and its descendants (``eval()`` is
        ``train(False)``); in eval mode forwards save nothing for backward. Returns ``self``."""
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"train: mode must be a bool, got {mode!r}")
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> Module:
        """``train(False)``: forwards save nothing for backward, as for inference."""
        return self.train(False)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct submodules and their attribute names, each module once."""
        seen: set[int] = set()
        for name, value in self._child_items():
            if id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def _child_items(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """This module and all below it, depth first, as ``torch.nn.Module.named_modules``:
        a module reached twice is listed once unless ``remove_duplicate`` is False."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        children = self.named_children() if remove_duplicate else self._child_items()
        for name, child in children:
            path = f"{prefix}.{name}" if prefix else name
            yield from child.named_modules(memo, path, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def apply(self, fn: Any) -> Module:
        """Calls ``fn(module)`` on every child (recursively), then on ``self``; returns ``self``."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Each parameter with its state_dict key, own first, then the children's in order; a
        parameter reached twice (a shared layer) is listed once unless ``remove_duplicate`` is
        False."""
        seen: set[int] = set()
        modules = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else iter([(prefix, self)])
        )
        for module_prefix, module in modules:
            for name, value in vars(module).items():
                if not isinstance(value, Parameter):
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def parameters(self, recurse: bool = True) -> list[Parameter]:
        """All parameters, each once: own first, then the children's in order."""
        return [parameter for _, parameter in self.named_parameters(recurse=recurse)]

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Sets every parameter's gradient to zero, or to None (optimizers then skip it).
        PyTorch's default is ``set_to_none=True``; here ``.grad`` stays an array to add to."""
        for parameter in self.parameters():
            parameter.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters under PyTorch's keys ("weight", "0.bias", ...); a shared
        parameter appears under each of its names, as in PyTorch."""
        return {
            name: parameter.data.copy()
            for name, parameter in self.named_parameters(remove_duplicate=False)
        }

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copies arrays (or anything ``np.asarray`` takes, e.g. PyTorch tensors) into the
        parameters, as ``torch.nn.Module.load_state_dict``.

        Raises ValueError naming the key for a missing or unexpected key (when ``strict``) and for
        a shape that differs; nothing is changed then.
        """
        own = dict(self.named_parameters(remove_duplicate=False))
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
        children = [f"({name}): {child!r}" for name, child in self._child_items()]
        if not children and "\n" not in extra:
            return f"{type(self).__name__}({extra})"
        body = "\n".join(([extra] if extra else []) + children).replace("\n", "\n  ")
        return f"{type(self).__name__}(\n  {body}\n)"


class _ConvNd(Module):
    """What convolutions and transposed convolutions of 1-3 dims share: everything but the weight
    layout and ``output_padding``, which the subclass's operation chooses."""

    _operation: _operations.Operation
    dims: int
    transposed: bool

    def __init_subclass__(cls, operation: _operations.Operation | None = None, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if operation is None:  # a base of one kind, or a user's subclass of a layer
            return
        cls._operation, cls.dims = operation, operation.dims
        kind = "transposed convolution" if operation.transposed else "convolution"
        cls.__doc__ = (
            f"{operation.dims}-D {kind} layer, as ``torch.nn.{operation.layer}``; weight "
            f"``{operation.weight_layout}``."
        )

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
        in_channels, out_channels, groups = (
            self._count(arg, value)
            for arg, value in (
                ("in_channels", in_channels),
                ("out_channels", out_channels),
                ("groups", groups),
            )
        )
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"{name}: bias must be True or False, got {bias!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = self._tuple("kernel_size", kernel_size)
        if min(self.kernel_size) <= 0:
            raise ValueError(f"{name}: kernel_size must be positive, got {kernel_size!r}")
        self.stride = self._tuple("stride", stride)
        self.padding = self._padding(padding)
        self.dilation = self._tuple("dilation", dilation)
        self.output_padding = self._tuple("output_padding", output_padding)
        self.groups = groups
        self.padding_mode = padding_mode

        with self._said_by_layer():
            shape = functional.weight_shape(
                self._operation.name, in_channels, out_channels, self.kernel_size, groups
            )
        self._check_geometry(shape)
        fan_in = shape[1] * math.prod(self.kernel_size)
        bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)), as PyTorch's reset_parameters
        rng = _generator if generator is None else np.random.default_rng(generator)
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(dtype))
        self.bias = (
            Parameter(rng.uniform(-bound, bound, out_channels).astype(dtype)) if bias else None
        )

    def _padding(self, padding: Any) -> Any:
        """'valid', 'same', one int per dimension, or one ``(before, after)`` pair per
        dimension, as :mod:`convt.functional` takes."""
        if isinstance(padding, str):
            return padding
        if not (
            isinstance(padding, (tuple, list))
            and any(isinstance(p, (tuple, list)) for p in padding)
        ):
            return self._tuple("padding", padding)
        pairs = tuple(tuple(p) if isinstance(p, (tuple, list)) else () for p in padding)
        if len(pairs) != self.dims or not all(
            len(p) == 2
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in p)
            for p in pairs
        ):
            raise ValueError(
                f"{type(self).__name__}: padding must be an int, {self.dims} ints or "
                f"{self.dims} (before, after) pairs, got {padding!r}"
            )
        return tuple((int(a), int(b)) for a, b in pairs)

    def _count(self, arg: str, value: Any) -> int:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{type(self).__name__}: {arg} must be a positive int, got {value!r}")
        return int(value)

    @contextlib.contextmanager
    def _said_by_layer(self) -> Iterator[None]:
        """The functional API's errors, said by this layer: "Conv2d: ..." for "conv2d: ..."."""
        try:
            yield
        except (ValueError, TypeError) as error:
            op = self._operation.name
            raise type(error)(
                f"{type(self).__name__}: {str(error).removeprefix(op + ': ')}"
            ) from None

    def _check_geometry(self, weight_shape: tuple[int, ...]) -> None:
        """Raises the functional API's error for these arguments at construction, not at the
        first forward: the geometry of an input that every kernel tap fits is built once."""
        if isinstance(self.padding, str):
            pads = [(0, 0)] * self.dims
        else:
            pads = [p if isinstance(p, tuple) else (p, p) for p in self.padding]
        extents = [d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size, strict=True)]
        # A dilation below 1 gets the geometry's own message below, not a span computed from it.
        if all(d > 0 for d in self.dilation) and max(extents) > _MOST_ELEMENTS:
            raise ValueError(
                f"{type(self).__name__}: kernel_size {self.kernel_size} with dilation "
                f"{self.dilation} spans {tuple(extents)}, more than this machine can address"
            )
        if self.transposed:
            sizes = [
                1 + -(-(a + b) // max(s, 1)) for (a, b), s in zip(pads, self.stride, strict=True)
            ]
        else:
            sizes = [max(e, a + 1, b + 1) for e, (a, b) in zip(extents, pads, strict=True)]
        # A padding past the bound gets the geometry's own message, not an overflow here.
        sizes = [min(max(size, 1), _MOST_ELEMENTS) for size in sizes]
        with self._said_by_layer():
            functional.geometry(
                self._operation.name, (1, self.in_channels, *sizes), weight_shape, **self._options()
            )

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

    def _plan_for(self, input_shape: tuple[int, ...], options: dict[str, Any]) -> Any:
        """The layer's one plan, made again only when the input shape (or the configuration)
        changes: the algorithms are chosen once, and the packed weight is kept until the weight
        changes (the plan compares it bitwise on each call)."""
        key = (input_shape, self.weight.shape, options)
        state = vars(self)
        if state.get("_plan_key") != key:
            geometry = functional.geometry(
                self._operation.name, input_shape, self.weight.shape, **options
            )
            plan = _core.Plan(geometry)
            plan.keep_weights = True
            state["_plan"], state["_plan_key"] = plan, key
        return state["_plan"]

    def _forward(self, input: Any, options: dict[str, Any]) -> np.ndarray:
        op = self._operation.name
        weight = self.weight.data
        bias = None if self.bias is None else self.bias.data
        in_place = (
            functional._in_place(input, weight)
            if bias is None
            else functional._in_place(input, weight, bias)
        )
        if not in_place:
            input, weight, bias = functional.floating_arrays(
                op, input=input, weight=weight, bias=bias
            )
        assert input is not None and weight is not None  # only bias may be None
        output = _core.forward(self._plan_for(input.shape, options), input, weight, bias, None)
        self.save_for_backward((input, options))
        return output

    def backward(self, grad_output: Any) -> np.ndarray:
        """Returns the gradient for the latest forward's input and adds those of the weight and
        bias to their ``.grad``. Raises ValueError when no forward is waiting for it."""
        input, options = self.saved_for_backward()
        weight = self.weight.data
        if not functional._in_place(grad_output, input, weight):
            grad_output, input, weight = functional.floating_arrays(
                self._operation.name, grad_output=grad_output, input=input, weight=weight
            )
        assert grad_output is not None and input is not None and weight is not None
        plan = self._plan_for(input.shape, options)
        grad_input, grad_weight, grad_bias = _core.backward(
            plan, grad_output, input, weight, True, True, self.bias is not None
        )
        assert grad_input is not None and grad_weight is not None  # all three were asked for
        self.weight.accumulate(grad_weight)
        if self.bias is not None:
            self.bias.accumulate(grad_bias)
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


# One layer per operation of the table, which gives it its docstring and dims; its base gives it
# PyTorch's constructor of its kind.
class Conv1d(_Conv, operation=_operations.CONV1D):
    pass


class Conv2d(_Conv, operation=_operations.CONV2D):
    pass


class Conv3d(_Conv, operation=_operations.CONV3D):
    pass


class ConvTranspose1d(_ConvTranspose, operation=_operations.CONV_TRANSPOSE1D):
    pass


class ConvTranspose2d(_ConvTranspose, operation=_operations.CONV_TRANSPOSE2D):
    pass


class ConvTranspose3d(_ConvTranspose, operation=_operations.CONV_TRANSPOSE3D):
    pass


class _Activation(Module):
    """An elementwise function whose derivative is computed from what forward saved."""

    def backward(self, grad_output: Any) -> np.ndarray:
        """Returns the gradient for the latest forward's input; ValueError when no forward is
        waiting for it, or when ``grad_output`` has another shape than that forward's output."""
        saved = self.saved_for_backward()
        grad_output = np.asarray(grad_output)
        if grad_output.shape != saved.shape:
            raise ValueError(
                f"{type(self).__name__}.backward: grad_output must have the shape of the "
                f"forward's output {saved.shape}, got {grad_output.shape}"
            )
        return grad_output * self._derivative(saved)

    def _derivative(self, cache: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class ReLU(_Activation):
    """``max(x, 0)``, as ``torch.nn.ReLU``."""

    def forward(self, input: Any) -> np.ndarray:
        input = np.asarray(input)
        self.save_for_backward(input > 0)
        return np.maximum(input, 0)

    def _derivative(self, positive: np.ndarray) -> np.ndarray:
        return positive


class Tanh(_Activation):
    """``tanh(x)``, as ``torch.nn.Tanh``."""

    def forward(self, input: Any) -> np.ndarray:
        output = np.tanh(input)
        self.save_for_backward(output)
        return output

    def _derivative(self, output: np.ndarray) -> np.ndarray:
        return 1 - output * output


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``, as ``torch.nn.Sigmoid`` (computed without overflow)."""

    def forward(self, input: Any) -> np.ndarray:
        input = np.asarray(input)
        output = np.exp(-np.logaddexp(0, -input))
        self.save_for_backward(output)
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

    def _child_items(self) -> Iterator[tuple[str, Module]]:
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

    def forward(self, input: Any, target: Any) -> float:
        input, target = np.asarray(input), np.asarray(target)
        if input.shape != target.shape:
            raise ValueError(
                f"MSELoss: target must have the input's shape {input.shape}, got {target.shape}"
            )
        difference = input - target
        self.save_for_backward(difference)
        total = float(np.sum(difference * difference))
        return total / difference.size if self.reduction == "mean" else total

    def backward(self) -> np.ndarray:  # type: ignore[override]
        """Returns the gradient of the latest loss for its input; ValueError when no forward is
        waiting for it."""
        difference = self.saved_for_backward()
        scale = 2 / difference.size if self.reduction == "mean" else 2
        return scale * difference
