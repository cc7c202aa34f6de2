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
from typing import Any

import numpy as np

from . import _core

__all__ = [
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
]

IntOrTuple = int | Sequence[int]
Padding = str | int | Sequence[int]
Gradients = tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]


_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))


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
    result = np.ascontiguousarray(array, dtype=dtype)
    # NumPy hands back an unaligned array that needs no other conversion as it is; the kernels'
    # loads assume alignment, so such an array is copied once.
    return result if result.flags.aligned else result.copy()


# The largest stride, padding, dilation or size the C++ core takes (its message names the
# same bound); a Python int past 64 bits is refused here, before the binding's conversion.
_MOST = 2**60 - 1


def _in_range(op: str, name: str, values: tuple[int, ...]) -> tuple[int, ...]:
    if any(v >= 2**63 or v < -(2**63) for v in values):
        shown = values[0] if len(values) == 1 else values
        bound = f"at most {_MOST} (2**60 - 1)" if max(values) >= 2**63 else "non-negative"
        raise ValueError(f"{op}: {name} ({shown}) must be {bound}")
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


def _padding(op: str, padding: Padding) -> tuple[tuple[int, ...], str]:
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"{op}: padding must be 'valid', 'same' or numbers, got {padding!r}")
        return (0,), padding
    return _ints(op, "padding", padding), "explicit"


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


def _conv_geometry(dims, input, weight, stride, padding, dilation, groups):
    op = f"conv{dims}d"
    pad, mode = _padding(op, padding)
    return _geometry(
        _core.conv_geometry,
        "conv",
        dims,
        input.shape,
        weight.shape,
        _ints(op, "stride", stride),
        pad,
        (),
        mode,
        _ints(op, "dilation", dilation),
        _group_count(op, groups),
    )


def _conv_transpose_geometry(
    dims, input, weight, stride, padding, output_padding, groups, dilation, output_size
):
    op = f"conv_transpose{dims}d"
    pad, mode = _padding(op, padding)
    return _geometry(
        _core.conv_transpose_geometry,
        "conv_transpose",
        dims,
        input.shape,
        weight.shape,
        _ints(op, "stride", stride),
        pad,
        (),
        mode,
        _ints(op, "output_padding", output_padding),
        _group_count(op, groups),
        _ints(op, "dilation", dilation),
        () if output_size is None else _ints(op, "output_size", output_size),
    )


def _group_count(op: str, groups: int) -> int:
    if type(groups) is not int and (
        not isinstance(groups, numbers.Integral) or isinstance(groups, bool)
    ):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    return _in_range(op, "groups", (int(groups),))[0]


def _backward(op, geometry, grad_output, input, weight, output_mask, out) -> Gradients:
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
    return _core.backward(geometry, grad_output, input, weight, *need, *outs)


def _output_array(op: str, out: Any) -> Any:
    """pybind11 would answer anything but an array with its signature: say it here."""
    if out is not None and not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: out must be a NumPy array or None, got {type(out).__name__}")
    return out


def _make_conv(dims: int):
    op = f"conv{dims}d"

    def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, out=None):
        input, weight, bias = floating_arrays(op, input=input, weight=weight, bias=bias)
        geometry = _conv_geometry(dims, input, weight, stride, padding, dilation, groups)
        return _core.forward(geometry, input, weight, bias, _output_array(op, out))

    def backward(
        grad_output,
        input,
        weight,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        *,
        output_mask=(True, True, True),
        out=None,
    ) -> Gradients:
        grad_output, input, weight = floating_arrays(
            op, grad_output=grad_output, input=input, weight=weight
        )
        geometry = _conv_geometry(dims, input, weight, stride, padding, dilation, groups)
        return _backward(op, geometry, grad_output, input, weight, output_mask, out)

    conv.__name__ = conv.__qualname__ = op
    conv.__doc__ = (
        f"{dims}-D convolution (cross-correlation), as ``torch.nn.functional.{op}``.\n\n"
        "``padding`` is an int, a tuple, 'valid' or 'same'; ``out`` receives the result."
    )
    backward.__name__ = backward.__qualname__ = f"{op}_backward"
    backward.__doc__ = (
        f"Gradients of ``{op}`` for its input, weight and bias: ``(grad_input, grad_weight, "
        "grad_bias)``.\n\n``output_mask`` skips any of them (returned as None); ``out`` is a "
        "tuple of three arrays (or None) to write them to."
    )
    return conv, backward


def _make_conv_transpose(dims: int):
    op = f"conv_transpose{dims}d"

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
        out=None,
    ):
        input, weight, bias = floating_arrays(op, input=input, weight=weight, bias=bias)
        geometry = _conv_transpose_geometry(
            dims, input, weight, stride, padding, output_padding, groups, dilation, output_size
        )
        return _core.forward(geometry, input, weight, bias, _output_array(op, out))

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
        output_mask=(True, True, True),
        out=None,
    ) -> Gradients:
        grad_output, input, weight = floating_arrays(
            op, grad_output=grad_output, input=input, weight=weight
        )
        geometry = _conv_transpose_geometry(
            dims, input, weight, stride, padding, output_padding, groups, dilation, output_size
        )
        return _backward(op, geometry, grad_output, input, weight, output_mask, out)

    conv_transpose.__name__ = conv_transpose.__qualname__ = op
    conv_transpose.__doc__ = (
        f"{dims}-D transposed convolution, as ``torch.nn.functional.{op}``.\n\n"
        "It is the gradient of the convolution with the same arguments for its input. "
        "``output_size`` picks ``output_padding`` as ``torch.nn.ConvTranspose{dims}d.forward`` "
        "does; ``out`` receives the result."
    )
    backward.__name__ = backward.__qualname__ = f"{op}_backward"
    backward.__doc__ = (
        f"Gradients of ``{op}`` for its input, weight and bias: ``(grad_input, grad_weight, "
        "grad_bias)``.\n\n``output_size`` is the forward call's, if it had one; ``output_mask`` "
        "skips any of them (returned as None); ``out`` is a tuple of three arrays (or None) to "
        "write them to."
    )
    return conv_transpose, backward


conv1d, conv1d_backward = _make_conv(1)
conv2d, conv2d_backward = _make_conv(2)
conv3d, conv3d_backward = _make_conv(3)
conv_transpose1d, conv_transpose1d_backward = _make_conv_transpose(1)
conv_transpose2d, conv_transpose2d_backward = _make_conv_transpose(2)
conv_transpose3d, conv_transpose3d_backward = _make_conv_transpose(3)
