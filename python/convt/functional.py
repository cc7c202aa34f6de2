"""Convolution and transposed convolution as functions, with PyTorch's names and argument order.

Every function takes NumPy arrays (or anything ``np.asarray`` accepts) shaped ``(N, C, *spatial)``
or, unbatched, ``(C, *spatial)``. The arrays of one call are brought to one floating dtype by
NumPy's promotion rules: float32 and float64 are computed natively, float16 is computed in
float32, integers and booleans in float64. An array that already has that dtype and is
C-contiguous is used in place; any other is converted once. Results have the computed dtype.

Weight layouts are PyTorch's: ``(C_out, C_in / groups, *kernel)`` for a convolution and
``(C_in, C_out / groups, *kernel)`` for a transposed convolution.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from . import _core, _operations
from ._operations import Operation

__all__ = [
    "PADDING_MODES",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv3d",
    "conv3d_backward",
    "conv_transpose1d",
    "conv_transpose1d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv_transpose3d",
    "conv_transpose3d_backward",
    "floating_arrays",
    "geometry",
    "output_size",
    "valid_output_sizes",
    "weight_shape",
]

IntOrTuple = int | Sequence[int]
Padding = str | int | Sequence[int] | Sequence[Sequence[int]]

#: What padding may hold, as PyTorch's ``padding_mode``: zeros, the input mirrored about its edge
#: (the edge not repeated), the edge repeated, or the input wrapped around.
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
Gradients = tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]


_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))
_ndarray = np.ndarray
_FLOAT32, _FLOAT64 = _NATIVE
# NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, numpy's bits of ndarray.flags.num.
_C_CONTIGUOUS_ALIGNED = 0x0001 | 0x0100


def _in_place(*arrays: Any) -> bool:
    """Whether floating_arrays would return these arrays as they are: ndarrays of float32 or
    float64, one dtype, C-contiguous and aligned. It is that function's first check, made
    without keyword arguments and with NumPy's own dtype objects compared by identity, which
    on a seed-sized call cost more than the convolution; an array it is unsure of (an equal
    dtype that is another object, say) takes floating_arrays, which decides."""
    first = arrays[0]
    dtype = first.dtype if type(first) is _ndarray else None
    if dtype is not _FLOAT64 and dtype is not _FLOAT32:
        return False
    for array in arrays:
        if (
            type(array) is not _ndarray
            or array.dtype is not dtype
            or array.flags.num & _C_CONTIGUOUS_ALIGNED != _C_CONTIGUOUS_ALIGNED
        ):
            return False
    return True


def floating_arrays(op: str, **arrays: Any) -> list[np.ndarray | None]:
    """Converts the named arrays to their common floating dtype; ``bias`` may be None."""
    values = list(arrays.values())
    dtype = None
    for name, array in arrays.items():
        if array is None:
            if name != "bias":
                raise TypeError(f"{op}: {name} must be an array, got None")
            continue
        if type(array) is not np.ndarray or not (array.flags.c_contiguous and array.flags.aligned):
            break
        if dtype is None:
            dtype = array.dtype
            if dtype not in _NATIVE:
                break
        elif array.dtype != dtype:
            break
    else:
        return values  # already computable in place: no conversion at all
    converted = {}
    for name, value in arrays.items():
        if value is None:
            if name != "bias":
                raise TypeError(f"{op}: {name} must be an array, got None")
            continue
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{op}: {name} must be a real numeric array, got dtype {array.dtype}")
        converted[name] = array
    # The machine's byte order and no metadata: what the kernels compute in.
    dtype = np.dtype(np.result_type(*converted.values()).type)
    if dtype.kind in "biu":
        dtype = np.dtype(np.float64)
    elif dtype == np.float16:
        dtype = np.dtype(np.float32)
    return [
        None if arrays[name] is None else _computable(converted[name], dtype) for name in arrays
    ]


def _computable(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` as a C-contiguous, aligned array of ``dtype``: itself when it is one."""
    # np.ascontiguousarray would make a 0-d array 1-d, and the shape in a message then be (1,).
    result = np.asarray(array, dtype=dtype, order="C")
    # NumPy hands back an unaligned array that needs no other conversion as it is; the kernels'
    # loads assume alignment, so such an array is copied once.
    return result if result.flags.aligned else result.copy()


# The largest stride, padding, dilation or size the C++ core takes (its message names the
# same bound); a Python int past 64 bits is refused here, before the binding's conversion.
_MOST = 2**60 - 1


def _in_range(op: str, name: str, values: tuple[int, ...]) -> tuple[int, ...]:
    if any(v >= 2**63 or v < -(2**63) for v in values):
        shown = f"({values[0]})" if len(values) == 1 else str(values)
        bound = f"at most {_MOST} (2**60 - 1)" if max(values) >= 2**63 else "non-negative"
        raise ValueError(f"{op}: {name} {shown} must be {bound}")
    return values


def _ints(op: str, name: str, value: IntOrTuple) -> tuple[int, ...]:
    # Plain ints and tuples of them, the common case, skip the slower abstract checks.
    if type(value) is int:
        return _in_range(op, name, (value,))
    if isinstance(value, (tuple, list)) and all(type(v) is int for v in value):
        return _in_range(op, name, tuple(value))
    values = [value] if isinstance(value, numbers.Integral) else value
    if (
        isinstance(values, (str, bytes))
        or not isinstance(values, Sequence)
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values)
    ):
        raise TypeError(f"{op}: {name} must be an int or a tuple of ints, got {value!r}")
    return _in_range(op, name, tuple(int(v) for v in values))


def _padding(op: str, padding: Padding) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    """``(before, after, rule)``: ``after`` is empty for symmetric padding. Asymmetric padding
    is one ``(before, after)`` pair per spatial dimension."""
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"{op}: padding must be 'valid', 'same' or numbers, got {padding!r}")
        return (0,), (), padding
    if isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list)) for p in padding):
        if not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in padding):
            raise ValueError(
                f"{op}: padding must be ints or one (before, after) pair per spatial dimension, "
                f"got {padding!r}"
            )
        before = _ints(op, "padding", [p[0] for p in padding])
        after = _ints(op, "padding", [p[1] for p in padding])
        return before, after, "explicit"
    return _ints(op, "padding", cast(IntOrTuple, padding)), (), "explicit"


def _padding_mode(op: str, padding_mode: Any) -> str:
    # The geometry checks the name too, and the amounts each mode allows; here the message can
    # name the function.
    if not isinstance(padding_mode, str):
        raise TypeError(f"{op}: padding_mode must be a str, got {padding_mode!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"{op}: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got "
            f"{padding_mode!r}"
        )
    return padding_mode


# Geometries of recent calls: a layer calls with the same shapes again and again, and building
# one costs more than a small convolution itself. Keys hold normalised (checked) arguments only.
_geometries: dict[tuple, Any] = {}


def _geometry(build, *key):
    geometry = _geometries.get(key)
    if geometry is None:
        geometry = build(*key[1:])
        if len(_geometries) >= 1024:
            _geometries.clear()
        _geometries[key] = geometry
    return geometry


def _each(values: tuple[int, ...], dims: int) -> tuple[int, ...]:
    """One value per spatial dimension, as a message about them should show them."""
    return values * dims if len(values) == 1 and dims > 1 else values


def _call_plan(
    operation: Operation,
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    stride: IntOrTuple,
    padding: Padding,
    dilation: IntOrTuple,
    groups: int,
    output_padding: IntOrTuple = 0,
    output_size: IntOrTuple | None = None,
    padding_mode: str = "zeros",
) -> _core.Plan:
    """The plan of a call of ``operation`` with arrays of these shapes (tuples of ints); the
    arguments are checked in the order of the function's signature."""
    # A call with the arguments of an earlier one, as a layer or a loop makes, skips their
    # checking and the plan's choice of algorithms, which cost more than a seed-sized
    # convolution. Only plain ints, strs and tuples of them are looked up as given: True, 1.0
    # and numpy's integers compare equal to 1, and must meet the checks that refuse the first
    # two. The key starts with the operation's name, whose hash str keeps, where the dataclass
    # would hash its fields in Python on every call.
    key = (operation.name, input_shape, weight_shape, stride, padding, dilation, groups,
           output_padding, output_size, padding_mode)  # fmt: skip
    plain = _plain(key[3:])
    if plain and (plan := _called.get(key)) is not None:
        return plan
    op, dims = operation.name, operation.dims
    before, after, rule = _padding(op, padding)
    before, after = _each(before, dims), _each(after, dims)
    strides = _each(_ints(op, "stride", stride), dims)
    shared = (dims, input_shape, weight_shape, strides, before, after, rule)
    if not operation.transposed:
        geometry = _geometry(
            _core.conv_geometry,
            "conv",
            *shared,
            _each(_ints(op, "dilation", dilation), dims),
            _integer(op, "groups", groups),
            _padding_mode(op, padding_mode),
        )
    else:
        geometry = _geometry(
            _core.conv_transpose_geometry,
            "conv_transpose",
            *shared,
            _each(_ints(op, "output_padding", output_padding), dims),
            _integer(op, "groups", groups),
            _each(_ints(op, "dilation", dilation), dims),
            () if output_size is None else _ints(op, "output_size", output_size),
            _padding_mode(op, padding_mode),
        )
    plan = _core.Plan(geometry)
    if plain:
        if len(_called) >= 1024:
            _called.clear()
        _called[key] = plan
    return plan


def _call_geometry(operation: Operation, *arguments: Any) -> _core.Geometry:
    """The geometry of a call of ``operation``: its plan's (see _call_plan)."""
    return _call_plan(operation, *arguments).geometry


# Plans by the arguments as given (see _call_plan), beside _geometries by the checked ones.
_called: dict[tuple, Any] = {}
_PLAIN_TYPES = (int, str, type(None))


def _plain(values: tuple) -> bool:
    for value in values:
        kind = type(value)
        if kind is tuple:
            if not _plain(value):
                return False
        elif kind not in _PLAIN_TYPES:
            return False
    return True


def _integer(op: str, name: str, value: int) -> int:
    if type(value) is not int and (
        not isinstance(value, numbers.Integral) or isinstance(value, bool)
    ):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    return _in_range(op, name, (int(value),))[0]


_ALL = (True, True, True)


def _backward(op, plan, grad_output, input, weight, output_mask, out) -> Gradients:
    if out is None and type(output_mask) is tuple and output_mask == _ALL:
        return _core.backward(plan, grad_output, input, weight, True, True, True)
    if not isinstance(output_mask, (tuple, list)):
        raise TypeError(f"{op}: output_mask must be a tuple of 3 bools, got {output_mask!r}")
    need = tuple(bool(m) for m in output_mask)
    if len(need) != 3:
        raise ValueError(f"{op}: output_mask must have 3 entries, got {len(need)}")
    # An array is not a tuple of them: iterating it would split it into its rows.
    if out is not None and not isinstance(out, (tuple, list)):
        raise TypeError(f"{op}: out must be a tuple of 3 arrays or None, got {type(out).__name__}")
    outs = (None, None, None) if out is None else tuple(out)
    if len(outs) != 3:
        raise ValueError(f"{op}: out must be a tuple of 3 arrays or None, got {len(outs)}")
    for value in outs:
        _output_array(op, value)
    return _core.backward(plan, grad_output, input, weight, *need, *outs)


def _output_array(op: str, out: Any) -> Any:
    """pybind11 would answer anything but an array with its signature: say it here."""
    if out is not None and not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: out must be a NumPy array or None, got {type(out).__name__}")
    return out


def _make_conv(operation: Operation):
    op = operation.name

    def conv(
        input,
        weight,
        bias=None,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        *,
        padding_mode="zeros",
        out=None,
    ):
        if not (_in_place(input, weight) if bias is None else _in_place(input, weight, bias)):
            input, weight, bias = floating_arrays(op, input=input, weight=weight, bias=bias)
        plan = _call_plan(
            operation, input.shape, weight.shape, stride, padding, dilation, groups,
            padding_mode=padding_mode,
        )  # fmt: skip
        return _core.forward(plan, input, weight, bias, _output_array(op, out))

    def backward(
        grad_output,
        input,
        weight,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        *,
        padding_mode="zeros",
        output_mask=(True, True, True),
        out=None,
    ) -> Gradients:
        if not _in_place(grad_output, input, weight):
            grad_output, input, weight = floating_arrays(
                op, grad_output=grad_output, input=input, weight=weight
            )
        plan = _call_plan(
            operation, input.shape, weight.shape, stride, padding, dilation, groups,
            padding_mode=padding_mode,
        )  # fmt: skip
        return _backward(op, plan, grad_output, input, weight, output_mask, out)

    conv.__doc__ = (
        f"{operation.dims}-D convolution (cross-correlation), as ``torch.nn.functional.{op}``."
        "\n\n``padding`` is an int, a tuple, one ``(before, after)`` pair per spatial dimension, "
        "'valid' or 'same' (TensorFlow's rule at any stride: output ``ceil(input / stride)``, "
        "the odd element after); ``padding_mode`` is what the padding holds, 'zeros', "
        "'reflect', 'replicate' or 'circular' (PyTorch's ``Conv*d`` modes); ``out`` receives "
        "the result."
    )
    backward.__doc__ = (
        f"Gradients of ``{op}`` for its input, weight and bias: ``(grad_input, grad_weight, "
        "grad_bias)``.\n\n``output_mask`` skips any of them (returned as None); ``out`` is a "
        "tuple of three arrays (or None) to write them to."
    )
    return _named(op, conv), _named(f"{op}_backward", backward)


def _make_conv_transpose(operation: Operation):
    op = operation.name

    def conv_transpose(
        input,
        weight,
        bias=None,
        stride=1,
        padding=0,
        output_padding=0,
        groups=1,
        dilation=1,
        *,
        output_size=None,
        padding_mode="zeros",
        out=None,
    ):
        if not (_in_place(input, weight) if bias is None else _in_place(input, weight, bias)):
            input, weight, bias = floating_arrays(op, input=input, weight=weight, bias=bias)
        plan = _call_plan(
            operation, input.shape, weight.shape, stride, padding, dilation, groups,
            output_padding, output_size, padding_mode,
        )  # fmt: skip
        return _core.forward(plan, input, weight, bias, _output_array(op, out))

    def backward(
        grad_output,
        input,
        weight,
        stride=1,
        padding=0,
        output_padding=0,
        groups=1,
        dilation=1,
        *,
        output_size=None,
        padding_mode="zeros",
        output_mask=(True, True, True),
        out=None,
    ) -> Gradients:
        if not _in_place(grad_output, input, weight):
            grad_output, input, weight = floating_arrays(
                op, grad_output=grad_output, input=input, weight=weight
            )
        plan = _call_plan(
            operation, input.shape, weight.shape, stride, padding, dilation, groups,
            output_padding, output_size, padding_mode,
        )  # fmt: skip
        return _backward(op, plan, grad_output, input, weight, output_mask, out)

    conv_transpose.__doc__ = (
        f"{operation.dims}-D transposed convolution, as ``torch.nn.functional.{op}``.\n\n"
        "It is the gradient of the convolution with the same arguments for its input, and so "
        "its adjoint, for every ``padding_mode``: with 'reflect', 'replicate' or 'circular' it "
        "scatters into the padded output and folds the padding ring back onto the elements it "
        "stands for. ``padding`` takes pairs and 'same' as the convolution's (with 'same' the "
        "output is ``input * stride`` unless ``output_size`` picks a smaller one). "
        f"``output_size`` picks ``output_padding`` as ``torch.nn.{operation.layer}.forward`` "
        "does (:func:`valid_output_sizes` gives the sizes it accepts); ``out`` receives the "
        "result."
    )
    backward.__doc__ = (
        f"Gradients of ``{op}`` for its input, weight and bias: ``(grad_input, grad_weight, "
        "grad_bias)``.\n\n``output_size`` is the forward call's, if it had one; ``output_mask`` "
        "skips any of them (returned as None); ``out`` is a tuple of three arrays (or None) to "
        "write them to."
    )
    return _named(op, conv_transpose), _named(f"{op}_backward", backward)


def _named(name: str, function: Any) -> Any:
    function.__name__ = function.__qualname__ = name
    return function


def _make(operation: Operation) -> tuple[Any, Any]:
    """The function of ``operation`` and its backward, with PyTorch's signatures."""
    return (_make_conv_transpose if operation.transposed else _make_conv)(operation)


conv1d, conv1d_backward = _make(_operations.CONV1D)
conv2d, conv2d_backward = _make(_operations.CONV2D)
conv3d, conv3d_backward = _make(_operations.CONV3D)
conv_transpose1d, conv_transpose1d_backward = _make(_operations.CONV_TRANSPOSE1D)
conv_transpose2d, conv_transpose2d_backward = _make(_operations.CONV_TRANSPOSE2D)
conv_transpose3d, conv_transpose3d_backward = _make(_operations.CONV_TRANSPOSE3D)


# ---- sizes, from the geometry the functions above would build ----


def geometry(
    op: str,
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    output_padding: IntOrTuple = 0,
    output_size: IntOrTuple | None = None,
    padding_mode: str = "zeros",
) -> _core.Geometry:
    """The geometry the function ``op`` (``"conv2d"``, ``"conv_transpose3d"``, ...) builds for
    arrays of these shapes: its output shape, weight shape, groups and multiply-adds, with no
    array allocated. The arguments are the function's, by keyword; ``output_padding`` and
    ``output_size`` are for transposed convolutions only. Raises what the function would.

    >>> import convt
    >>> g = convt.geometry("conv_transpose2d", (8, 4, 16, 16), (4, 2, 3, 3), stride=2,
    ...                    padding=1, output_padding=1)
    >>> g.output_shape, g.weight_shape, g.groups, g.multiply_adds
    ((8, 2, 32, 32), (4, 2, 3, 3), 1, 147456.0)
    """
    operation = _operations.operation("geometry", op)
    if not operation.transposed and (
        output_size is not None or any(_ints(op, "output_padding", output_padding))
    ):
        raise ValueError(
            f"geometry: output_padding and output_size are for transposed convolutions only, "
            f"not {op}"
        )
    return _call_geometry(
        operation,
        _ints(op, "input_shape", input_shape),
        _ints(op, "weight_shape", weight_shape),
        stride,
        padding,
        dilation,
        groups,
        output_padding,
        output_size,
        padding_mode,
    )


def weight_shape(
    op: str, in_channels: int, out_channels: int, kernel_size: IntOrTuple, groups: int = 1
) -> tuple[int, ...]:
    """The weight shape of ``op``'s layer (``convt.nn``'s and PyTorch's): ``(out_channels,
    in_channels / groups, *kernel_size)`` for a convolution, ``(in_channels, out_channels /
    groups, *kernel_size)`` for a transposed one. ValueError when a channel count is not
    divisible by ``groups``.

    >>> import convt
    >>> convt.weight_shape("conv2d", 6, 4, 3, groups=2)
    (4, 3, 3, 3)
    >>> convt.weight_shape("conv_transpose1d", 6, 4, 5)
    (6, 4, 5)
    """
    operation = _operations.operation("weight_shape", op)
    kernel = _each(_ints(op, "kernel_size", kernel_size), operation.dims)
    if len(kernel) != operation.dims:
        raise ValueError(
            f"{op}: kernel_size must be an int or {operation.dims} ints, got {kernel_size!r}"
        )
    return _core.layer_weight_shape(
        operation.transposed,
        _integer(op, "in_channels", in_channels),
        _integer(op, "out_channels", out_channels),
        kernel,
        _integer(op, "groups", groups),
    )


def _size_arguments(op: str, input_size: IntOrTuple, kernel_size: IntOrTuple):
    """``(dims, scalar, sizes, kernel)``: an int input size is one spatial dimension and gives
    int answers; a tuple gives one answer per dimension."""
    scalar = type(input_size) is int or (
        isinstance(input_size, numbers.Integral) and not isinstance(input_size, bool)
    )
    sizes = _ints(op, "input_size", input_size)
    dims = len(sizes)
    if dims not in (1, 2, 3):
        raise ValueError(f"{op}: input_size must have 1, 2 or 3 values, got {input_size!r}")
    kernel = _ints(op, "kernel_size", kernel_size)
    if len(kernel) == 1:
        kernel *= dims
    if len(kernel) != dims:
        raise ValueError(
            f"{op}: kernel_size must have 1 or {dims} values, like input_size, got {kernel_size!r}"
        )
    return dims, scalar, sizes, kernel


def _size_geometry(
    op, input_size, kernel_size, stride, padding, dilation, output_padding, transposed, mode
):
    dims, scalar, sizes, kernel = _size_arguments(op, input_size, kernel_size)
    # One sample, one channel: the sizes do not depend on the rest, and the geometry checks the
    # arguments as the layer would.
    if not transposed and output_padding != 0:
        raise ValueError(f"{op}: output_padding is for transposed convolutions only")
    # One sample, one channel: the sizes do not depend on the rest, and the geometry checks the
    # arguments as the layer would.
    try:
        geometry = _call_geometry(
            _operations.BY_KIND[dims, bool(transposed)], (1, 1, *sizes), (1, 1, *kernel), stride,
            padding, dilation, 1, output_padding, None, mode,
        )  # fmt: skip
    except (TypeError, ValueError) as error:  # the layer's message, said about this question
        raise type(error)(f"{op}: {error}") from None
    return scalar, geometry


def output_size(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    *,
    transposed: bool = False,
    output_padding: IntOrTuple = 0,
    padding_mode: str = "zeros",
) -> int | tuple[int, ...]:
    """The spatial output size of ``conv*d`` (or, with ``transposed=True``,
    ``conv_transpose*d``) for an input of ``input_size``: an int for an int, a tuple for a
    tuple. Arguments as the functions'; the geometry the function would build says the size,
    and rejects what it would reject.

    >>> from convt import functional as F
    >>> F.output_size(24, 3, stride=2, padding=1), F.output_size((23, 24), 3, 2, 1)
    (12, (12, 12))
    >>> F.output_size(12, 3, 2, 1, transposed=True, output_padding=1)
    24
    >>> F.output_size(10, 3, stride=4, padding="same")
    3
    >>> F.output_size(3, 3, stride=4, padding="same", transposed=True)
    12
    """
    op = "output_size"
    scalar, geometry = _size_geometry(
        op,
        input_size,
        kernel_size,
        stride,
        padding,
        dilation,
        output_padding,
        transposed,
        padding_mode,
    )
    sizes = tuple(geometry.x_size if transposed else geometry.y_size)
    return sizes[0] if scalar else sizes


def valid_output_sizes(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
) -> range | tuple[range, ...]:
    """The output sizes a transposed convolution of an input of ``input_size`` can give: the
    ``range`` that ``output_size=`` accepts (a tuple of ranges for a tuple), which is every size
    the convolution with the same arguments maps back to ``input_size``.

    A stride-``s`` convolution maps ``s`` neighbouring sizes to one (23 and 24 both convolve to
    12 with kernel 3, stride 2, padding 1), so its transpose must be told which to give back.

    >>> from convt import functional as F
    >>> F.valid_output_sizes(12, 3, stride=2, padding=1)
    range(23, 25)
    >>> F.valid_output_sizes((4, 5), 3, stride=(1, 3), padding="same")
    (range(4, 5), range(13, 16))
    """
    op = "valid_output_sizes"
    scalar, geometry = _size_geometry(
        op, input_size, kernel_size, stride, padding, dilation, 0, True, "zeros"
    )
    ranges = tuple(
        range(first, last + 1)
        for first, last in zip(geometry.output_size_first, geometry.output_size_last, strict=True)
    )
    return ranges[0] if scalar else ranges
