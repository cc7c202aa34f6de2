"""Runs one fuzz case (cases.py) against the installed convt and says what went wrong, if
anything: a result unlike the plain-loop reference, an exception other than convt's own
ValueError or TypeError (or a MemoryError from an allocation larger than the machine), pybind11's
signature dump, or a message with a wrapped-around number."""

from __future__ import annotations

import pickle
import re
from typing import Any

import convt
import numpy as np
from convt import _core, functional, nn

from .. import reference
from .cases import array_shapes, expand, output_size

SIGNATURE_DUMP = "incompatible function arguments"
# NumPy's and C++'s words for an allocation that failed.
ALLOCATION_FAILED = ("Unable to allocate", "bad_alloc", "bad array new length")
# A size that wrapped around 64 bits: below -2**62, where no sum of bounded arguments reaches.
WRAPPED = re.compile(r"-\d{19,}")


class Finding(Exception):  # noqa: N818 (a finding, not an error of the fuzzer)
    """What a case found: its kind (a short phrase) and the detail."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


# ---- building arguments from their descriptions ----


def make_array(spec: dict[str, Any]) -> Any:
    with np.errstate(all="ignore"):  # NaN and 1e38 cast to integers, on purpose
        return arranged(spec)


def arranged(spec: dict[str, Any]) -> Any:
    rng = np.random.default_rng(spec["seed"])
    shape = tuple(spec["array"])
    size = int(np.prod(shape, dtype=object))
    values = np.asarray(rng.uniform(-1, 1, shape) if size else np.zeros(shape))
    flat = values.reshape(-1)
    if size and spec["fill"] in ("nan", "inf"):
        flat[rng.integers(0, size, 1 + size // 4)] = np.nan if spec["fill"] == "nan" else np.inf
    elif spec["fill"] == "huge":
        values = np.asarray(values * 1e38)
    elif spec["fill"] == "zero":
        values = np.zeros(shape)
    dtype = np.dtype(spec["dtype"])
    if dtype.kind == "M":
        array = (values * 1000).astype(np.int64).astype(dtype)
    elif dtype.kind in "iub":
        array = (values * 3).astype(dtype)
    else:
        array = values.astype(dtype)
    layout = spec["layout"]
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "strided" and array.ndim:
        wide = np.zeros((*array.shape[:-1], 2 * array.shape[-1]), array.dtype)
        wide[..., ::2] = array
        return wide[..., ::2]
    if layout == "readonly":
        array.flags.writeable = False
    elif layout == "unaligned" and array.dtype.itemsize > 1 and array.dtype.kind != "O":
        buffer = bytearray(array.nbytes + 1)
        view = np.frombuffer(buffer, array.dtype, count=array.size, offset=1).reshape(array.shape)
        view[...] = array
        return view
    elif layout == "byteswapped" and array.dtype.kind in "fiuc":
        return array.astype(array.dtype.newbyteorder())
    elif layout == "pickled":
        return pickle.loads(pickle.dumps(array))
    elif layout == "metadata" and array.dtype.kind != "O":
        return array.view(np.dtype(array.dtype, metadata={"unit": "m"}))
    elif layout == "broadcast" and size:
        return np.broadcast_to(array.reshape(-1)[:1].reshape(()), array.shape)
    elif layout == "list":
        return array.tolist()
    return array


def build(value: Any, arrays: dict[str, Any]) -> Any:
    """The Python value a JSON description stands for."""
    if isinstance(value, list):
        return [build(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "array" in value:
        return make_array(value)
    if "alias" in value:
        return arrays.get(value["alias"])
    (kind, payload), *_ = value.items()
    return {
        "float": lambda: float(payload),
        "bool": lambda: bool(payload),
        "none": lambda: None,
        "str": lambda: str(payload),
        "bytes": lambda: str(payload).encode(),
        "list": lambda: list(payload),
        "numpy": lambda: np.dtype(payload[0]).type(payload[1]),
        "array0d": lambda: np.array(payload),
        "object": object,
        "dict": dict,
    }[kind]()


# ---- valid cases: compared with the reference ----


def reference_call(config, x, w, b, dy):
    """The reference's (y, dx, dw, db), in float64, for batched arrays."""
    dims = config["dims"]
    stride, dilation = expand(config["stride"], dims), expand(config["dilation"], dims)
    if config["padding"] == "same":
        totals = [d * (k - 1) for k, d in zip(config["kernel"], dilation, strict=True)]
        pads = [(t // 2, t - t // 2) for t in totals]
    elif config["padding"] == "valid":
        pads = [(0, 0)] * dims
    else:
        pads = [(p, p) for p in expand(config["padding"], dims)]
    if config["transposed"]:
        op = expand(config["output_padding"], dims)
        groups = config["groups"]
        y = reference.conv_transpose_forward(x, w, b, stride, pads, op, groups, dilation)
        grads = reference.conv_transpose_backward(dy, x, w, stride, pads, op, groups, dilation)
    else:
        y = reference.conv_forward(x, w, b, stride, pads, dilation, config["groups"])
        grads = reference.conv_backward(dy, x, w, stride, pads, dilation, config["groups"])
    return (y, *grads)


def compare(name: str, actual, expected, dtype) -> None:
    if not isinstance(actual, np.ndarray) or actual.dtype != dtype:
        raise Finding(
            "wrong result", f"{name}: got {type(actual).__name__} {getattr(actual, 'dtype', '')}"
        )
    if actual.shape != expected.shape:
        raise Finding("wrong result", f"{name}: shape {actual.shape}, expected {expected.shape}")
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    if not np.allclose(actual, expected, rtol=tolerance, atol=tolerance * scale):
        error = float(np.abs(actual - expected).max())
        raise Finding("wrong result", f"{name}: max error {error:.3g} (scale {scale:.3g})")


def run_valid(config) -> int:
    shapes = array_shapes(config)
    dtype = np.dtype(config["dtype"])
    rng = np.random.default_rng(config["seed"])
    arrays = {}
    for name, layout in zip(
        ("input", "weight", "bias", "grad_output"), config["layouts"], strict=True
    ):
        spec = {
            "array": shapes[name],
            "dtype": config["dtype"],
            "layout": layout,
            "fill": "random",
            "seed": int(rng.integers(2**32)),
        }
        arrays[name] = make_array(spec)
    x, w, dy = arrays["input"], arrays["weight"], arrays["grad_output"]
    b = arrays["bias"] if config["bias"] else None
    op = getattr(functional, config["op"])
    backward = getattr(functional, f"{config['op']}_backward")
    keys = ["stride", "padding", "dilation", "groups"] + (
        ["output_padding"] if config["transposed"] else []
    )
    kwargs = {key: config[key] for key in keys}
    batched = config["batch"] is not None
    expected_shape = tuple(shapes["grad_output"])
    out = np.empty(expected_shape, dtype) if config["out"] else None
    y = op(x, w, b, **kwargs, out=out)
    if out is not None and y is not out and not np.shares_memory(y, out):
        raise Finding("wrong result", "the result is not the out= array")

    def batch(a):
        a = np.asarray(a, np.float64)
        return a if batched else a[None]

    expected = reference_call(
        config,
        batch(x),
        np.asarray(w, np.float64),
        None if b is None else np.asarray(b, np.float64),
        batch(dy),
    )
    reshape = (lambda a: a) if batched else (lambda a: a[0])
    compare(f"{config['op']} output", y, reshape(expected[0]), dtype)
    mask = tuple(config["output_mask"])
    gradients = backward(dy, x, w, **kwargs, output_mask=mask)
    for name, wanted, actual, exact in zip(
        ("grad_input", "grad_weight", "grad_bias"), mask, gradients, expected[1:], strict=True
    ):
        if not wanted:
            if actual is not None:
                raise Finding("wrong result", f"{name} was not asked for but returned")
            continue
        compare(
            f"{config['op']} {name}",
            actual,
            reshape(exact) if name == "grad_input" else exact,
            dtype,
        )
    return 2


# ---- hostile cases: any return, or convt's own ValueError / TypeError ----


def arguments(case) -> tuple[dict, dict]:
    """The case's positional (by name or position) and keyword arguments."""
    arrays: dict[str, Any] = {}
    args = {}
    for key, value in case["args"].items():
        args[key] = build(value, arrays)
        if isinstance(key, str):
            arrays[key] = args[key]
    return args, {key: build(value, arrays) for key, value in case["kwargs"].items()}


def call(case, args, kwargs) -> int:
    positional = (
        [args[key] for key in sorted(args, key=lambda k: int(k) if str(k).isdigit() else 0)]
        if all(str(k).isdigit() for k in args)
        else None
    )
    function = case["function"]
    if function.startswith("functional."):
        fn = getattr(functional, function.split(".", 1)[1])
        fn(*args.values(), **kwargs)
        return 1
    if function.startswith("nn."):
        layer = getattr(nn, function.split(".", 1)[1])(**kwargs)
        if case.get("pickle"):
            layer = pickle.loads(pickle.dumps(layer))
        y = layer(args["input"])
        layer.backward(np.ones_like(y))
        return 3
    if function in ("Matrix", "Matrix32"):
        matrix = getattr(convt, function)(*positional)
        index = tuple(build(v, {}) for v in case["index"])
        value = matrix[index]
        matrix[index] = value
        return 3
    if function == "_core.fma_peak_gflops":
        _core.fma_peak_gflops(*positional)
        return 1
    if function == "gradcheck":
        x, w = positional
        convt.gradcheck(functional.conv1d, (x, w), raise_exception=False, **kwargs)
        return 1
    if function in ("set_num_threads", "set_isa"):
        saved = convt.get_num_threads(), convt.get_isa()
        try:
            getattr(convt, function)(*positional)
        finally:
            convt.set_num_threads(saved[0])
            convt.set_isa(saved[1])
        return 1
    getattr(convt, function)(*positional, **kwargs)  # the seed functions
    return 1


def check_message(case, error: BaseException) -> None:
    message = str(error)
    where = f"{case['function']}: {type(error).__name__}"
    if SIGNATURE_DUMP in message:
        raise Finding("signature dump", f"{where}: {message.splitlines()[0]}")
    if "array(" in message:
        return  # the values of an array the case made, not a computed size
    for number in WRAPPED.findall(message):
        # -2**63 itself is what NumPy makes of a NaN or an infinity cast to int64
        if -(2**63) < int(number) < -(2**62) and number[1:] not in repr(case):
            raise Finding("wrapped number", f"{where}: {message}")


def run_case(case) -> int:
    """Runs ``case``; returns the number of calls it made, raises Finding for a finding."""
    if case["kind"] == "valid":
        try:
            return run_valid(case["config"])
        except Finding:
            raise
        except Exception as error:
            raise Finding(f"valid call raised {type(error).__name__}", str(error)[:300]) from error
    try:
        args, kwargs = arguments(case)
    except (MemoryError, ValueError):
        return 0  # an array this machine cannot make: nothing to call
    try:
        return call(case, args, kwargs)
    except (ValueError, TypeError) as error:
        check_message(case, error)
        return 1
    except convt.GradcheckError:
        return 1
    except MemoryError as error:
        # Arguments that ask for more memory than there is get what NumPy and PyTorch give them;
        # any other MemoryError is a finding.
        if not any(words in str(error) for words in ALLOCATION_FAILED):
            raise Finding("unexpected MemoryError", f"{case['function']}: {error}") from error
        return 1
    except Finding:
        raise
    except Exception as error:  # everything else is a finding
        detail = f"{case['function']}: {str(error)[:300]}"
        raise Finding(f"unexpected {type(error).__name__}", detail) from error


__all__ = ["Finding", "output_size", "run_case"]
