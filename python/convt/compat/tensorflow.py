"""TensorFlow's convolutions on convt's kernels: ``tf.nn.conv2d`` and ``tf.nn.conv2d_transpose``,
and their 1-D and 3-D forms, with TensorFlow's arguments, layouts and padding rules.

NumPy arrays (or anything ``np.asarray`` takes, TensorFlow tensors included) in, NumPy arrays
out; TensorFlow is not needed. Arrays are brought to one floating dtype as in
:mod:`convt.functional`.

* Data: ``data_format`` "NHWC" (TensorFlow's default; "NWC" and "NDHWC" in 1-D and 3-D) or
  "NCHW" ("NCW", "NCDHW"). convt computes channels-first, so channels-last input is transposed
  to it and the result back, which costs a copy of each; channels-first C-contiguous input is
  used in place.
* Filters: ``(k..., C_in / groups, C_out)`` for a convolution, ``(k..., C_out / groups, C_in)``
  for a transposed one (as TensorFlow, the number of groups is the channel count divided by
  that depth). Converting them to convt's layout copies them, which is cheap.
* ``strides`` and ``dilations``: an int, or a list of 1, ``dims`` or ``dims + 2`` ints (the last
  in ``data_format``'s order, with 1 for the batch and channel dimensions).
* ``padding``: "VALID" (none), "SAME" (output size ``ceil(input / stride)``, total padding
  ``max((output - 1) * stride + dilation * (kernel - 1) + 1 - input, 0)``, the odd element at
  the end), or explicit pairs ``[[0, 0], [top, bottom], [left, right], [0, 0]]`` in
  ``data_format``'s order (the spatial pairs alone are accepted too).

A transposed convolution is the gradient of the convolution with the same arguments for its
input (TensorFlow computes ``conv2d_transpose`` as ``conv2d_backprop_input``); its
``output_shape`` must be a size that this convolution maps back to the input's size, else
ValueError, as TensorFlow. The example of seed 001, a blog post that checks each number against
TensorFlow (docs/index.md lists the seeds):

>>> import numpy as np
>>> from convt.compat import tensorflow as tf
>>> x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
>>> filters = np.arange(1.0, 5.0).reshape(2, 2, 1, 1)
>>> tf.conv2d_transpose(x, filters, [1, 4, 4, 1], strides=1, padding="VALID")[0, :, :, 0]
array([[ 1.,  4.,  7.,  6.],
       [ 7., 23., 33., 24.],
       [19., 53., 63., 42.],
       [21., 52., 59., 36.]])
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _core, _operations, functional
from .._operations import Operation
from ..functional import floating_arrays

__all__ = [
    "conv1d",
    "conv1d_transpose",
    "conv2d",
    "conv2d_transpose",
    "conv3d",
    "conv3d_transpose",
    "same_padding",
]

# The data formats of each spatial rank: (channels last, channels first).
_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's padding "SAME" of one spatial dimension: ``(before, after)`` such that the
    output has ``ceil(size / stride)`` elements; the odd element goes after.

    >>> same_padding(5, 4, 2), same_padding(6, 3, 2), same_padding(3, 1, 3)
    ((1, 2), (0, 1), (0, 0))
    """
    if min(size, kernel, stride, dilation) <= 0:
        raise ValueError(
            f"same_padding: size ({size}), kernel ({kernel}), stride ({stride}) and dilation "
            f"({dilation}) must be positive"
        )
    geometry = functional.geometry(
        "conv1d", (1, 1, size), (1, 1, kernel), stride=stride, padding="same", dilation=dilation
    )
    return geometry.padding_before[0], geometry.padding_after[0]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _as_list(value: Any) -> Any:
    """Arrays, TensorFlow tensors and TensorShapes as (nested) lists; anything else as it is."""
    if isinstance(value, (Sequence, str, bytes)) or not hasattr(value, "__len__"):
        return value
    try:
        return np.asarray(value).tolist()
    except (TypeError, ValueError):
        return value


def _int_list(op: str, name: str, value: Any) -> list[int]:
    values = [value] if _is_int(value) else _as_list(value)
    if not isinstance(values, Sequence) or isinstance(values, str) or not all(map(_is_int, values)):
        raise TypeError(f"{op}: {name} must be an int or a list of ints, got {value!r}")
    return [int(v) for v in values]


def _channels_last(op: str, dims: int, data_format: str) -> bool:
    last, first = _FORMATS[dims]
    if data_format not in (last, first):
        raise ValueError(f"{op}: data_format must be {last!r} or {first!r}, got {data_format!r}")
    return data_format == last


def _spatial(values: list[Any], channels_last: bool) -> list[Any]:
    """The spatial entries of a per-dimension list in data_format's order."""
    return values[1:-1] if channels_last else values[2:]


def _per_dimension(
    op: str, name: str, value: Any, dims: int, channels_last: bool, data_format: str
) -> list[int]:
    """TensorFlow's strides or dilations (int, or 1, dims or dims + 2 ints) per spatial dim."""
    values = _int_list(op, name, 1 if value is None else value)
    if min(values, default=1) <= 0:
        raise ValueError(f"{op}: {name} must be positive, got {value!r}")
    if len(values) == 1:
        return values * dims
    if len(values) == dims:
        return values
    if len(values) == dims + 2:
        outer = [values[0], values[-1] if channels_last else values[1]]
        if outer != [1, 1]:
            raise ValueError(
                f"{op}: {name} must be 1 in the batch and channel dimensions of {data_format}, "
                f"got {value!r}"
            )
        return _spatial(values, channels_last)
    raise ValueError(
        f"{op}: {name} must be an int or a list of 1, {dims} or {dims + 2} ints, got {value!r}"
    )


def _padding(
    op: str,
    padding: Any,
    dims: int,
    channels_last: bool,
    data_format: str,
    sizes: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> tuple[list[int], list[int]]:
    """The padding before and after each spatial dimension. ``sizes`` are the spatial sizes of
    the convolution's input (the transposed convolution's output), which "SAME" depends on."""
    if isinstance(padding, str):
        if padding == "VALID":
            return [0] * dims, [0] * dims
        if padding == "SAME":
            if min(sizes) <= 0:
                raise ValueError(f"{op}: spatial sizes must be positive, got {tuple(sizes)}")
            pairs = [
                same_padding(*args) for args in zip(sizes, kernel, strides, dilations, strict=True)
            ]
            return [p[0] for p in pairs], [p[1] for p in pairs]
        raise ValueError(
            f"{op}: padding must be 'SAME', 'VALID' or a list of pairs, got {padding!r}"
        )
    pairs = _as_list(padding)
    if (
        not isinstance(pairs, Sequence)
        or len(pairs) not in (dims, dims + 2)
        or not all(isinstance(p, Sequence) and len(p) == 2 and all(map(_is_int, p)) for p in pairs)
    ):
        raise ValueError(
            f"{op}: explicit padding must be {dims + 2} pairs of ints in {data_format}'s order "
            f"(or the {dims} spatial pairs), got {padding!r}"
        )
    if len(pairs) == dims + 2:
        outer = [pairs[0], pairs[-1] if channels_last else pairs[1]]
        if any(list(p) != [0, 0] for p in outer):
            raise ValueError(
                f"{op}: explicit padding must be [0, 0] in the batch and channel dimensions of "
                f"{data_format}, got {padding!r}"
            )
        pairs = _spatial(list(pairs), channels_last)
    return [int(p[0]) for p in pairs], [int(p[1]) for p in pairs]


def _arrays(
    op: str, dims: int, input: Any, filters: Any, data_format: str
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The input channels-first (not yet contiguous) and the filters, of one floating dtype."""
    channels_last = _channels_last(op, dims, data_format)
    x, w = floating_arrays(op, input=input, filters=filters)
    assert x is not None and w is not None
    if x.ndim != dims + 2:
        raise ValueError(
            f"{op}: input must have {dims + 2} dimensions ({data_format}), got shape {x.shape}"
        )
    if w.ndim != dims + 2:
        raise ValueError(f"{op}: filters must have {dims + 2} dimensions, got shape {w.shape}")
    return (np.moveaxis(x, -1, 1) if channels_last else x), w, channels_last


def _weight(filters: np.ndarray) -> np.ndarray:
    """TensorFlow's (k..., a, b) filters as convt's (b, a, k...) weight."""
    return np.ascontiguousarray(np.moveaxis(filters, (-1, -2), (0, 1)))


def _result(y: np.ndarray, channels_last: bool) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(y, 1, -1)) if channels_last else y


def _conv(
    operation: Operation,
    input: Any,
    filters: Any,
    strides: Any,
    padding: Any,
    data_format: str,
    dilations: Any,
) -> np.ndarray:
    op, dims = operation.tensorflow, operation.dims
    x, w, channels_last = _arrays(op, dims, input, filters, data_format)
    channels, depth, filter_count = x.shape[1], w.shape[-2], w.shape[-1]
    groups = channels // depth if depth > 0 and channels % depth == 0 else 0
    if groups <= 0 or filter_count % groups:
        raise ValueError(
            f"{op}: the input's {channels} channels must be a multiple of filters.shape[{dims}] "
            f"({depth}), and filters.shape[{dims + 1}] ({filter_count}) of their ratio (groups)"
        )
    stride = _per_dimension(op, "strides", strides, dims, channels_last, data_format)
    dilation = _per_dimension(op, "dilations", dilations, dims, channels_last, data_format)
    before, after = _padding(
        op, padding, dims, channels_last, data_format, x.shape[2:], w.shape[:dims], stride, dilation
    )
    x, weight = np.ascontiguousarray(x), _weight(w)
    geometry = functional.geometry(
        operation.name, x.shape, weight.shape, stride=stride, padding=_pairs(before, after),
        dilation=dilation, groups=groups,
    )  # fmt: skip
    return _result(_core.forward(geometry, x, weight), channels_last)


def _pairs(before: list[int], after: list[int]) -> list[tuple[int, int]]:
    return list(zip(before, after, strict=True))


def _conv_transpose(
    operation: Operation,
    input: Any,
    filters: Any,
    output_shape: Any,
    strides: Any,
    padding: Any,
    data_format: str,
    dilations: Any,
) -> np.ndarray:
    op, dims = operation.tensorflow, operation.dims
    x, w, channels_last = _arrays(op, dims, input, filters, data_format)
    batch, channels_in, depth = x.shape[0], x.shape[1], w.shape[-2]
    if w.shape[-1] != channels_in:
        raise ValueError(
            f"{op}: input has {channels_in} channels, but filters.shape[{dims + 1}] (in_channels) "
            f"is {w.shape[-1]}"
        )
    shape = _int_list(op, "output_shape", output_shape)
    if len(shape) == dims + 2:
        sizes = _spatial(shape, channels_last)
        channels_out = shape[-1] if channels_last else shape[1]
        if shape[0] != batch:
            raise ValueError(f"{op}: output_shape {shape} has batch {shape[0]}, input has {batch}")
    elif len(shape) == dims:
        sizes, channels_out = shape, depth
    else:
        raise ValueError(
            f"{op}: output_shape must have {dims + 2} values ({data_format}) or {dims} (spatial), "
            f"got {shape}"
        )
    groups = channels_out // depth if depth > 0 and channels_out % depth == 0 else 0
    if groups <= 0 or channels_in % groups:
        raise ValueError(
            f"{op}: output_shape's {channels_out} channels must be a positive multiple of "
            f"filters.shape[{dims}] ({depth}), and the input's {channels_in} channels of their "
            "ratio (groups)"
        )
    stride = _per_dimension(op, "strides", strides, dims, channels_last, data_format)
    dilation = _per_dimension(op, "dilations", dilations, dims, channels_last, data_format)
    kernel = w.shape[:dims]
    before, after = _padding(
        op, padding, dims, channels_last, data_format, sizes, kernel, stride, dilation
    )
    x, weight = np.ascontiguousarray(x), _weight(w)
    # As TensorFlow: the convolution with these arguments must map output_shape to the input.
    conv = _operations.BY_KIND[dims, False].tensorflow
    try:
        image = functional.geometry(
            conv, [batch, channels_out, *sizes], weight.shape, stride=stride,
            padding=_pairs(before, after), dilation=dilation, groups=groups,
        )  # fmt: skip
    except ValueError as error:
        raise ValueError(
            f"{op}: output_shape {shape} is not a valid {conv} input: {error}"
        ) from None
    if list(image.y_size) != list(x.shape[2:]):
        raise ValueError(
            f"{op}: output_shape {shape} does not map back to the input: {conv} with these "
            f"strides, padding and dilations turns spatial size {tuple(sizes)} into "
            f"{image.y_size}, but the input's spatial size is {x.shape[2:]}"
        )
    geometry = functional.geometry(
        operation.name, x.shape, weight.shape, stride=stride, padding=_pairs(before, after),
        groups=groups, dilation=dilation, output_size=sizes,
    )  # fmt: skip
    return _result(_core.forward(geometry, x, weight), channels_last)


def _make_conv(operation: Operation) -> Any:
    channels_last = _FORMATS[operation.dims][0]

    # tf.nn.conv1d names its strides "stride".
    if operation.dims == 1:

        def conv(
            input: Any,
            filters: Any,
            stride: Any,
            padding: Any,
            data_format: str = channels_last,
            dilations: Any = None,
            name: str | None = None,
        ) -> np.ndarray:
            return _conv(operation, input, filters, stride, padding, data_format, dilations)

        return _documented(operation, conv, "C_in / groups, C_out")

    def conv_nd(
        input: Any,
        filters: Any,
        strides: Any,
        padding: Any,
        data_format: str = channels_last,
        dilations: Any = None,
        name: str | None = None,
    ) -> np.ndarray:
        return _conv(operation, input, filters, strides, padding, data_format, dilations)

    return _documented(operation, conv_nd, "C_in / groups, C_out")


def _make_conv_transpose(operation: Operation) -> Any:
    channels_last = _FORMATS[operation.dims][0]

    def conv_transpose(
        input: Any,
        filters: Any,
        output_shape: Any,
        strides: Any,
        padding: Any = "SAME",
        data_format: str = channels_last,
        dilations: Any = None,
        name: str | None = None,
    ) -> np.ndarray:
        return _conv_transpose(
            operation, input, filters, output_shape, strides, padding, data_format, dilations
        )

    return _documented(operation, conv_transpose, "C_out / groups, C_in")


def _documented(operation: Operation, function: Any, channels: str) -> Any:
    function.__name__ = function.__qualname__ = operation.tensorflow
    output_shape = (
        "; ``output_shape`` is the full output shape in ``data_format``'s order (or its spatial "
        "sizes alone)"
        if operation.transposed
        else ""
    )
    function.__doc__ = (
        f"``tf.nn.{operation.tensorflow}``: filters ``({operation.kernel_axes}, {channels})``"
        f"{output_shape}. ``name`` is ignored.{_EXAMPLES.get(operation.tensorflow, '')}"
    )
    return function


_EXAMPLES = {
    "conv2d": """

    >>> import numpy as np
    >>> from convt.compat import tensorflow as tf
    >>> x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    >>> tf.conv2d(x, np.ones((2, 2, 1, 1)), 1, "VALID")[0, :, :, 0]
    array([[12., 16.],
           [24., 28.]])
    """,
    "conv2d_transpose": """

    >>> import numpy as np
    >>> from convt.compat import tensorflow as tf
    >>> y = tf.conv2d_transpose(np.ones((1, 3, 3, 2)), np.ones((3, 3, 4, 2)), [1, 6, 6, 4], 2)
    >>> y.shape
    (1, 6, 6, 4)
    """,
}


def _make(operation: Operation) -> Any:
    """``tf.nn``'s function of ``operation``, with its signature."""
    return (_make_conv_transpose if operation.transposed else _make_conv)(operation)


conv1d = _make(_operations.CONV1D)
conv2d = _make(_operations.CONV2D)
conv3d = _make(_operations.CONV3D)
conv1d_transpose = _make(_operations.CONV_TRANSPOSE1D)
conv2d_transpose = _make(_operations.CONV_TRANSPOSE2D)
conv3d_transpose = _make(_operations.CONV_TRANSPOSE3D)
