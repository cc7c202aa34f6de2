"""Bad input raises ValueError or TypeError whose message names the argument and the offending
values; nothing crashes the interpreter. One test per class of error (DESIGN.md, issue 2 §5).

Calls that could take the interpreter down if the library got them wrong (sizes that overflow or
cannot be allocated) run in a subprocess.
"""

import functools
import json
import os
import re
import subprocess
import sys
import textwrap

import convt
import numpy as np
import pytest
from convt import functional, nn

OPS = [f"conv{d}d" for d in (1, 2, 3)] + [f"conv_transpose{d}d" for d in (1, 2, 3)]


def raises(exception, call, *words):
    """Runs ``call``; it must raise ``exception`` with every one of ``words`` in its message."""
    with pytest.raises(exception) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} is not in the message {message!r}"
    return message


def valid_call(op: str, backward: bool = False):
    """A valid call of ``op`` (or its backward) with 4 input channels, 6 output channels,
    groups=2, kernel 3 and input size 5 in every dimension: ``(function, args, kwargs)``."""
    dims = int(op[-2])
    transposed = op.startswith("conv_transpose")
    x = np.ones((2, 4, *(5,) * dims))
    w = np.ones((4, 3, *(3,) * dims)) if transposed else np.ones((6, 2, *(3,) * dims))
    kwargs = dict(groups=2)
    if not backward:
        return getattr(functional, op), (x, w), kwargs
    y_size = 7 if transposed else 3
    dy = np.ones((2, 6, *(y_size,) * dims))
    return getattr(functional, f"{op}_backward"), (dy, x, w), kwargs


def call_with(op, backward=False, **overrides):
    """The valid call of ``op`` with some keyword arguments changed, as a thunk."""
    fn, args, kwargs = valid_call(op, backward)
    return lambda: fn(*args, **{**kwargs, **overrides})


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("op", OPS)
def test_valid_calls_work(op, backward):
    """The calls the tests below break are valid as they are."""
    call_with(op, backward)()


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    "argument, value",
    [("stride", True), ("stride", 1.0), ("dilation", (1.0,)), ("groups", 2.0), ("padding", False)],
)
def test_a_repeated_call_checks_arguments_that_compare_equal_to_its_own(
    op, backward, argument, value
):
    """Calls repeating an earlier call's arguments skip their checks; True and 1.0 equal 1 and
    hash alike, and are refused all the same."""
    fn, args, kwargs = valid_call(op, backward)
    dims = int(op[-2])
    plain = {"stride": 1, "dilation": (1,) * dims, "groups": 2, "padding": 0}[argument]
    if argument == "dilation":
        value = value * dims
    fn(*args, **{**kwargs, argument: plain})
    fn(*args, **{**kwargs, argument: plain})
    with pytest.raises(TypeError, match=argument):
        fn(*args, **{**kwargs, argument: value})


def test_a_repeated_call_gives_the_first_calls_result():
    x = np.arange(2 * 4 * 5 * 5, dtype=np.float64).reshape(2, 4, 5, 5)
    w = np.linspace(-1, 1, 6 * 2 * 3 * 3).reshape(6, 2, 3, 3)
    first = functional.conv2d(x, w, stride=2, padding=(1, 0), groups=2)
    again = functional.conv2d(x, w, stride=2, padding=(1, 0), groups=2)
    other = functional.conv2d(x, w, stride=(2, 1), padding=(1, 0), groups=2)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (2, 6, 3, 2) and other.shape == (2, 6, 3, 3)


# ---- shapes ----


def test_input_channels_must_match_the_weight():
    x, w = np.ones((1, 4, 5, 5)), np.ones((6, 3, 3, 3))
    raises(ValueError, lambda: functional.conv2d(x, w), "conv2d", "4 channels", "weight.shape[1]")
    raises(
        ValueError,
        lambda: functional.conv_transpose2d(np.ones((1, 5, 4, 4)), np.ones((6, 2, 3, 3))),
        "conv_transpose2d",
        "5 channels",
        "weight.shape[0]",
        "6",
    )


def test_bias_shape_must_be_output_channels():
    raises(ValueError, call_with("conv2d", bias=np.ones(5)), "bias", "(6,)", "(5,)")
    raises(ValueError, call_with("conv_transpose1d", bias=np.ones((6, 1))), "bias", "(6, 1)")


@pytest.mark.parametrize("op", OPS)
def test_grad_output_shape_must_be_the_output_shape(op):
    fn, (dy, x, w), kwargs = valid_call(op, backward=True)
    bad = dy[..., :-1]
    raises(
        ValueError, lambda: fn(bad, x, w, **kwargs), "grad_output", str(dy.shape), str(bad.shape)
    )
    raises(ValueError, lambda: fn(dy[0], x, w, **kwargs), "grad_output", str(dy[0].shape))


def test_seed_gradient_shape_must_be_the_output_shape():
    raises(
        ValueError,
        lambda: convt.cnn_backward(np.ones((3, 3)), np.ones((3, 3)), np.ones((2, 2))),
        "dz",
        "2, 2",
        "3, 3",
    )
    raises(
        ValueError,
        lambda: convt.fcn_backward(np.ones((3, 3)), np.ones((3, 3)), np.ones((2, 2))),
        "dz",
        "4, 4",
        "3, 3",
    )


# ---- groups ----


def test_channels_must_be_divisible_by_groups():
    raises(
        ValueError,
        lambda: functional.conv2d(np.ones((1, 4, 5, 5)), np.ones((5, 2, 3, 3)), groups=2),
        "out_channels = 5",
        "groups (2)",
    )
    raises(
        ValueError,
        lambda: functional.conv2d(np.ones((1, 3, 5, 5)), np.ones((6, 1, 3, 3)), groups=2),
        "3 channels",
        "groups (2)",
    )
    raises(
        ValueError,
        lambda: functional.conv_transpose2d(np.ones((1, 6, 4, 4)), np.ones((6, 2, 3, 3)), groups=4),
        "in_channels = 6",
        "groups (4)",
    )


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("groups", [0, -2])
def test_groups_must_be_positive(op, groups):
    raises(ValueError, call_with(op, groups=groups), "groups", f"({groups})", "positive")


# ---- stride, dilation, padding, output_padding ----


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    ("argument", "value"),
    [("stride", 0), ("stride", -1), ("dilation", 0), ("dilation", -2)],
)
def test_stride_and_dilation_must_be_positive(op, backward, argument, value):
    dims = int(op[-2])
    per_dim = (1,) * (dims - 1) + (value,)
    raises(
        ValueError, call_with(op, backward, **{argument: value}), argument, str(value), "positive"
    )
    named = "(" + ", ".join(map(str, per_dim)) + ")"  # one value as (0), not Python's (0,)
    raises(ValueError, call_with(op, backward, **{argument: per_dim}), argument, named)


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("op", OPS)
def test_padding_must_not_be_negative(op, backward):
    raises(ValueError, call_with(op, backward, padding=-1), "padding", "-1", "non-negative")


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("argument", ["stride", "padding", "dilation"])
def test_per_dimension_arguments_need_one_value_per_dimension(op, argument):
    dims = int(op[-2])
    values = (1,) * (dims + 1)
    raises(ValueError, call_with(op, **{argument: values}), argument, str(values))


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("stride", 1.5),
        ("stride", "1"),
        ("padding", 1.0),
        ("dilation", [1, None]),
        ("groups", 2.0),
        ("output_padding", "0"),
        ("output_size", "7"),
    ],
)
def test_arguments_must_be_ints(argument, value):
    raises(TypeError, call_with("conv_transpose1d", **{argument: value}), argument, repr(value))


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_output_padding_must_be_smaller_than_stride_or_dilation(dims, backward):
    op = f"conv_transpose{dims}d"
    message = raises(
        ValueError,
        call_with(op, backward=backward, stride=2, dilation=2, output_padding=2),
        "output_padding (2)",
        "stride (2)",
        "dilation (2)",
    )
    assert "smaller" in message
    if not backward:  # allowed when the dilation is larger: PyTorch's rule
        call_with(op, stride=2, dilation=3, output_padding=2)()


def test_output_padding_must_not_be_negative():
    raises(ValueError, call_with("conv_transpose2d", output_padding=-1), "output_padding", "-1")


def test_output_size_must_be_positive():
    """A transposed convolution whose padding eats its whole output."""
    x, w = np.ones((1, 2, 1, 1)), np.ones((2, 3, 3, 3))
    raises(
        ValueError,
        lambda: functional.conv_transpose2d(x, w, padding=2),
        "output size -1",
        "not positive",
        "padding 2",
    )


def test_kernel_must_fit_the_padded_input():
    x, w = np.ones((1, 1, 5, 5)), np.ones((1, 1, 7, 3))
    raises(ValueError, lambda: functional.conv2d(x, w), "kernel size 7", "padded input size 5")
    raises(ValueError, lambda: functional.conv2d(x, w, padding=(0, 1)), "padded input size 5")
    functional.conv2d(x, w, padding=1)  # 5 + 2 = 7 fits
    raises(
        ValueError,
        lambda: functional.conv1d(np.ones((1, 1, 4)), np.ones((1, 1, 2)), dilation=4),
        "dilation 4",
        "spans 5",
        "padded input size 4",
    )
    raises(
        ValueError,
        lambda: convt.convolute(np.ones((3, 3)), np.ones((4, 2))),
        "convolute: the kernel of shape (4, 2) is larger than the input of shape (3, 3)",
    )


# ---- padding strings ----


@pytest.mark.parametrize("padding", ["full", "SAME", ""])
def test_padding_string_must_be_valid_or_same(padding):
    raises(ValueError, call_with("conv2d", padding=padding), "padding", repr(padding))


def test_padding_same_leaves_output_padding_to_output_size():
    raises(
        ValueError,
        call_with("conv_transpose2d", padding="same", stride=2, output_padding=1),
        "conv_transpose2d",
        "output_padding (1, 1) cannot be combined with padding='same'",
        "output_size",
    )


# ---- output_size ----


def test_output_size_must_be_reachable():
    # input 5, stride 2, kernel 3: sizes 11 and 12 are reachable
    call = call_with("conv_transpose2d", stride=2, output_size=(13, 11))
    raises(ValueError, call, "output_size (13, 11)", "not reachable", "11 to 12")
    call = call_with("conv_transpose1d", stride=2, output_size=[10])
    raises(ValueError, call, "output_size (10,)", "11 to 12")
    raises(ValueError, call_with("conv_transpose1d", output_size=[0]), "output_size (0,)")


def test_output_size_must_have_one_value_per_dimension():
    call = call_with("conv_transpose2d", output_size=(7, 7, 7))
    raises(ValueError, call, "output_size", "(7, 7, 7)")


# ---- rank ----


@pytest.mark.parametrize("op", OPS)
def test_input_and_weight_rank(op):
    fn, (x, w), kwargs = valid_call(op)
    raises(ValueError, lambda: fn(x[None], w, **kwargs), "input", str(x[None].shape))
    raises(ValueError, lambda: fn(x[0, 0], w, **kwargs), "input", str(x[0, 0].shape))
    raises(ValueError, lambda: fn(x, w[0], **kwargs), "weight", str(w[0].shape))


def test_zero_sized_dimensions():
    raises(
        ValueError, lambda: functional.conv1d(np.ones((1, 0, 3)), np.ones((1, 0, 3))), "(1, 0, 3)"
    )
    raises(
        ValueError, lambda: functional.conv1d(np.ones((1, 1, 0)), np.ones((1, 1, 1))), "(1, 1, 0)"
    )
    raises(
        ValueError, lambda: functional.conv1d(np.ones((1, 1, 3)), np.ones((1, 1, 0))), "(1, 1, 0)"
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: convt.convolute(np.ones((3, 3, 3)), np.ones((2, 2))),
        lambda: convt.convolute_full(np.ones((3, 3)), np.ones(2)),
        lambda: convt.rotate_180(np.ones((2, 2, 1))),
        lambda: convt.cnn_forward(np.ones((2, 2)), np.ones(9)),
        lambda: convt.fcn_backward(np.ones((3, 3)), np.ones((4, 4, 1)), np.ones((2, 2))),
        lambda: convt.Matrix(np.ones((2, 2, 2))),
    ],
    ids=["convolute", "convolute_full", "rotate_180", "cnn_forward", "fcn_backward", "Matrix"],
)
def test_seed_functions_take_2d_arrays(call):
    raises(ValueError, call, "2-D", "dimensions")


# ---- out= ----


def conv_call():
    x, w = np.ones((1, 4, 5, 5)), np.ones((6, 2, 3, 3))
    return x, w, lambda out: functional.conv2d(x, w, groups=2, out=out)


def test_out_must_have_the_output_shape():
    _, _, call = conv_call()
    raises(ValueError, lambda: call(np.zeros((1, 6, 3, 4))), "out", "(1, 6, 3, 3)", "(1, 6, 3, 4)")


def test_out_must_have_the_computed_dtype():
    _, _, call = conv_call()
    raises(TypeError, lambda: call(np.zeros((1, 6, 3, 3), np.float32)), "out", "float64", "float32")


def test_out_must_be_c_contiguous():
    _, _, call = conv_call()
    raises(ValueError, lambda: call(np.zeros((1, 6, 3, 6))[..., ::2]), "out", "C-contiguous")
    raises(ValueError, lambda: call(np.zeros((1, 6, 3, 3), order="F")), "out", "C-contiguous")


def test_out_must_be_writable():
    _, _, call = conv_call()
    out = np.zeros((1, 6, 3, 3))
    out.flags.writeable = False
    raises(ValueError, lambda: call(out), "out", "writable")


def test_out_must_not_overlap_an_input():
    x, w, call = conv_call()
    raises(ValueError, lambda: call(x.reshape(-1)[:54].reshape(1, 6, 3, 3)), "out", "share memory")
    raises(ValueError, lambda: call(w.reshape(-1)[:54].reshape(1, 6, 3, 3)), "out", "share memory")
    x = np.ones((1, 2, 5))
    raises(
        ValueError, lambda: functional.conv1d(x, np.ones((2, 2, 1)), out=x), "out", "share memory"
    )


def test_out_must_be_an_array():
    _, _, call = conv_call()
    raises(TypeError, lambda: call(np.zeros((1, 6, 3, 3)).tolist()), "out")


def test_backward_out_is_three_arrays():
    fn, (dy, x, w), kwargs = valid_call("conv2d", backward=True)
    raises(ValueError, lambda: fn(dy, x, w, out=(None, None), **kwargs), "out", "3", "2")
    bad = (np.zeros(x.shape, np.float32), None, None)
    raises(TypeError, lambda: fn(dy, x, w, out=bad, **kwargs), "grad_input", "float64", "float32")
    bad = (None, np.zeros(w.shape[::-1]), None)
    raises(ValueError, lambda: fn(dy, x, w, out=bad, **kwargs), "grad_weight", str(w.shape[::-1]))
    bad = (None, None, dy.reshape(-1)[:6])
    raises(ValueError, lambda: fn(dy, x, w, out=bad, **kwargs), "grad_bias", "share memory")


def test_backward_outs_must_not_overlap_each_other():
    """grad_weight and grad_bias written to one buffer would corrupt each other."""
    fn, (dy, x, w), kwargs = valid_call("conv1d", backward=True)
    buffer = np.zeros(w.size)
    out = (None, buffer.reshape(w.shape), buffer[: dy.shape[1]])
    raises(ValueError, lambda: fn(dy, x, w, out=out, **kwargs), "share memory")


def test_output_mask_has_three_entries():
    fn, (dy, x, w), kwargs = valid_call("conv2d", backward=True)
    raises(
        ValueError, lambda: fn(dy, x, w, output_mask=(True, False), **kwargs), "output_mask", "2"
    )


# ---- non-numeric arrays ----


@pytest.mark.parametrize(
    "bad",
    [np.array(["a", "b"]), np.array([b"a"]), np.array([{}, 1], dtype=object), np.ones(3, complex)],
    ids=["str", "bytes", "object", "complex"],
)
@pytest.mark.parametrize("argument", ["input", "weight", "bias", "grad_output"])
def test_arrays_must_be_real_numbers(argument, bad):
    arrays = dict(
        input=np.ones((1, 2, 5)),
        weight=np.ones((2, 2, 3)),
        bias=None,
        grad_output=np.ones((1, 2, 3)),
    )
    arrays[argument] = bad if argument == "bias" else bad[:1].reshape(1, 1, 1)
    if argument == "grad_output":
        fn, args = (
            functional.conv1d_backward,
            (arrays["grad_output"], arrays["input"], arrays["weight"]),
        )
    else:
        fn, args = functional.conv1d, (arrays["input"], arrays["weight"], arrays["bias"])
    raises(TypeError, lambda: fn(*args), argument, str(bad.dtype))


@pytest.mark.parametrize("name", ["convolute", "convolute_full", "cnn_forward", "fcn_forward"])
def test_seed_arrays_must_be_real_numbers(name):
    raises(
        TypeError,
        lambda: getattr(convt, name)(np.ones((3, 3), complex), np.ones((2, 2))),
        "complex128",
    )
    raises(TypeError, lambda: getattr(convt, name)(np.ones((3, 3)), np.array([["a"]])), "<U1")


def test_missing_array_is_a_type_error():
    raises(TypeError, lambda: functional.conv1d(None, np.ones((1, 1, 3))), "input")
    raises(TypeError, lambda: functional.conv1d(np.ones((1, 1, 3)), None), "weight")


# ---- the seed functions' strides ----


SEED_CALLS = {
    "convolute": lambda s: convt.convolute(np.ones((5, 5)), np.ones((2, 2)), s),
    "convolute_full": lambda s: convt.convolute_full(np.ones((5, 5)), np.ones((2, 2)), s),
    "cnn_forward": lambda s: convt.cnn_forward(np.ones((2, 2)), np.ones((5, 5)), s),
    "cnn_backward": lambda s: convt.cnn_backward(
        np.ones((5, 5)), np.ones((4, 4)), np.ones((2, 2)), s
    ),
    "fcn_forward": lambda s: convt.fcn_forward(np.ones((2, 2)), np.ones((5, 5)), s),
    "fcn_backward": lambda s: convt.fcn_backward(
        np.ones((5, 5)), np.ones((6, 6)), np.ones((2, 2)), s
    ),
    "Matrix.convolute": lambda s: convt.Matrix(np.ones((5, 5))).convolute(convt.Matrix(2, 2), s),
    "Matrix.convolute_full": lambda s: convt.Matrix(np.ones((5, 5))).convolute_full(
        convt.Matrix(2, 2), s
    ),
}


@pytest.mark.parametrize("name", list(SEED_CALLS))
@pytest.mark.parametrize(
    ("strides", "exception", "words"),
    [
        ((0, 1), ValueError, ["stride", "(0, 1)", "positive"]),
        ((1, -2), ValueError, ["stride", "(1, -2)", "positive"]),
        ((1, 1, 1), (ValueError, TypeError), ["strides", "(1, 1, 1)"]),
        ((1,), (ValueError, TypeError), ["strides", "(1,)"]),
        ((1.5, 1), TypeError, ["strides", "1.5"]),
        (None, TypeError, ["strides", "None"]),
    ],
    ids=["zero", "negative", "three", "one", "float", "None"],
)
def test_seed_strides(name, strides, exception, words):
    SEED_CALLS[name]((1, 1))  # valid
    raises(exception, lambda: SEED_CALLS[name](strides), *words)


# ---- Matrix ----


def test_matrix_size_must_not_be_negative():
    raises(ValueError, lambda: convt.Matrix(-1, 2), "rows (-1)", "cols (2)")


def test_matrix_index_must_be_inside():
    matrix = convt.Matrix(2, 3)
    for index in [(2, 0), (0, 3), (-1, 0)]:
        raises((IndexError, ValueError), lambda index=index: matrix[index], str(index), "2 x 3")


# ---- settings ----


@pytest.mark.parametrize("threads", [0, -3])
def test_thread_count_must_be_positive(threads, num_threads):
    raises(ValueError, lambda: convt.set_num_threads(threads), "threads", f"({threads})")


def test_thread_count_is_at_most_four_per_hardware_thread(num_threads):
    """100000 threads once crashed OpenMP in its next parallel call; the count is bounded."""
    most = 4 * (os.cpu_count() or 1)
    convt.set_num_threads(most)
    assert convt.get_num_threads() == most
    for threads in (most + 1, 40000, 100000):
        raises(
            ValueError, functools.partial(convt.set_num_threads, threads), f"({threads})", f"{most}"
        )
    assert convt.get_num_threads() == most


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), 0.0, -1.0, 61.0])
def test_peak_probe_duration_is_validated(seconds):
    """fma_peak_gflops(inf) never returned, with the GIL released and no way to interrupt it."""
    raises(ValueError, lambda: convt._core.fma_peak_gflops(seconds), "seconds", "at most 60")


# ---- sizes that overflow or cannot be allocated (in a subprocess: a crash fails the test) ----


def run_isolated(code: str) -> dict:
    """Runs ``code`` (which calls convt) in a fresh interpreter and returns what it raised:
    ``{"type": name or None, "message": text}``. A crash fails the test with the child's
    output. The child's address space is capped at 4 GiB, so that a huge allocation fails
    however the machine overcommits memory."""
    script = textwrap.dedent(
        """
        import os, resource
        if "asan" not in os.environ.get("LD_PRELOAD", ""):  # the sanitizer needs the space
            resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        import json, numpy as np, convt
        from convt import functional
        try:
            result = {CODE}
            outcome = {"type": None, "message": repr(getattr(result, "shape", result))}
        except Exception as error:
            outcome = {"type": type(error).__name__, "message": str(error)}
        print(json.dumps(outcome))
        """
    ).replace("{CODE}", code)
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == 0, (
        f"the interpreter died (exit code {child.returncode}) running {code}\n"
        f"stdout: {child.stdout}\nstderr: {child.stderr}"
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


OVERFLOWING = {
    # the output's element count overflows 64 bits
    "output elements": (
        "functional.conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 1, 1)), stride=2**40)",
        ["output", "(1, 1, 1099511627777, 1099511627777)"],
    ),
    # (5 - 1) * 2**62 wraps around to 0: the output size must not silently become 1
    "output size": (
        "functional.conv_transpose1d(np.ones((1, 1, 5)), np.ones((1, 1, 1)), stride=2**62)",
        ["stride", str(2**62)],
    ),
    # 2**62 + 1 elements: the element count fits in 64 bits, the bytes do not
    "output bytes": (
        "functional.conv_transpose1d(np.ones((1, 1, 2)), np.ones((1, 1, 1)), stride=2**62)",
        ["stride", str(2**62)],
    ),
    "dilated kernel": (
        "functional.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 3)), dilation=2**62)",
        ["dilation", str(2**62)],
    ),
    "padding": (
        "functional.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 3)), padding=2**62)",
        ["padding", str(2**62)],
    ),
    "transposed dilation": (
        "functional.conv_transpose1d(np.ones((1, 1, 5)), np.ones((1, 1, 3)), dilation=2**62)",
        ["dilation", str(2**62)],
    ),
    "seed strides": (
        "convt.convolute_full(np.ones((3, 3)), np.ones((2, 2)), (2**62, 1))",
        ["stride", str(2**62)],
    ),
    "beyond int64": (
        "functional.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 3)), stride=2**70)",
        ["stride", str(2**70)],
    ),
}


@pytest.mark.parametrize("name", list(OVERFLOWING))
def test_sizes_that_overflow_are_rejected(name):
    code, words = OVERFLOWING[name]
    outcome = run_isolated(code)
    assert outcome["type"] in ("ValueError", "TypeError"), f"{code} gave {outcome}"
    for word in words:
        assert word in outcome["message"], f"{word!r} is not in {outcome['message']!r}"
    # an overflowed intermediate shows up as a huge negative number
    assert not re.search(r"-\d{12,}", outcome["message"]), outcome["message"]


# Calls that read and wrote outside their arrays: a stride or padding so large that the
# kernels' offsets overflowed. Each must be a ValueError naming the argument, in a child that
# survives it.
CORRUPTING = {
    "forward, stride 2**63 - 1": (
        "functional.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 1)), stride=2**63 - 1, "
        "padding=2**32)",
        ["stride", str(2**63 - 1), "at most"],
    ),
    "backward, stride 2**63 - 1": (
        "functional.conv1d_backward(np.ones((1, 1, 1)), np.ones((1, 1, 5)), np.ones((1, 1, 1)),"
        " stride=2**63 - 1, padding=2**32)",
        ["stride", str(2**63 - 1)],
    ),
    "garbage instead of padding": (
        "functional.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 1)), stride=2**63 - 1, padding=2)",
        ["stride", str(2**63 - 1)],
    ),
    "2-D backward": (
        "functional.conv2d_backward(np.ones((1, 1, 1, 2)), np.ones((1, 1, 3, 3)), "
        "np.ones((1, 1, 2, 2)), stride=9223372036854775807, padding=(0, 2), dilation=(3, 3))",
        ["stride", "9223372036854775807"],
    ),
    "padding beyond 2**60": (
        "functional.conv_transpose1d(np.ones((1, 1, 1)), np.ones((1, 1, 2)), "
        "padding=2**61, dilation=2**61)",
        [str(2**61), "at most", "2**60"],
    ),
    # Padding modes other than zeros read a padded copy of x, sized by the padding.
    # 2-D: the padded copy's element count overflowed 64 bits, so a wrapped, small buffer
    # would have been filled with the whole padded grid
    "overflowing copy": (
        "convt._core.forward(convt._core.conv_geometry(2, (1, 1, 3, 3), (1, 1, 1, 1), "
        "(2**60 - 1,), (2**58,), (), 'explicit', (1,), 1, 'replicate'), "
        "np.ones((1, 1, 3, 3)), np.ones((1, 1, 1, 1)))",
        ["padding_mode='replicate'", "more elements than this machine can address"],
    ),
    # 1-D: 2**41 padded elements, 16 TiB, cannot be allocated
    "unallocatable copy": (
        "convt._core.forward(convt._core.conv_geometry(1, (1, 1, 5), (1, 1, 1), "
        "(2**41,), (2**41,), (), 'explicit', (1,), 1, 'replicate'), "
        "np.ones((1, 1, 5)), np.ones((1, 1, 1)))",
        ["cannot allocate"],
    ),
}


@pytest.mark.parametrize("name", list(CORRUPTING))
def test_huge_strides_and_paddings_are_rejected(name):
    code, words = CORRUPTING[name]
    outcome = run_isolated(code)
    assert outcome["type"] == "ValueError", f"{code} gave {outcome}"
    for word in words:
        assert word in outcome["message"], f"{word!r} is not in {outcome['message']!r}"


def test_strides_and_paddings_up_to_2_60_compute_what_pytorch_does():
    """Below the bound a huge stride or padding is computed, not refused: PyTorch gives 0 here
    (the output's only tap reads the padding)."""
    y = functional.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 1)), stride=2**60 - 1, padding=2)
    assert y.shape == (1, 1, 1) and y[0, 0, 0] == 0
    # each output has one tap on x[0] and one 2**58 away from it, in the padding
    x = np.arange(1.0, 6.0)[None, None]
    y = functional.conv1d(x, np.ones((1, 1, 2)), stride=2**58, padding=2**58, dilation=2**58)
    assert y.tolist() == [[[1.0, 1.0]]]


def test_thread_creation_failure_is_an_error_not_an_exit():
    """With its address space nearly exhausted a process cannot start threads; OpenMP would end
    it (`libgomp: Thread creation failed`), set_num_threads raises instead and calls go on."""
    most = 4 * (os.cpu_count() or 1)
    if most < 4:
        pytest.skip("needs at least 4 threads allowed")
    script = textwrap.dedent(
        f"""
        import resource
        import numpy as np, convt
        from convt import functional
        convt.set_num_threads(1)
        with open("/proc/self/status") as status:
            used = next(int(line.split()[1]) for line in status if line.startswith("VmSize"))
        limit = (used + 16 * 1024) * 1024   # 16 MiB more: not enough for 3 thread stacks
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
        try:
            convt.set_num_threads({most})
            print("no error")
        except ValueError as error:
            print("ValueError:", error)
        print(convt.get_num_threads())
        print(functional.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 2))).sum())
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert child.returncode == 0, child.stderr
    lines = child.stdout.splitlines()
    assert lines[0].startswith("ValueError: set_num_threads: cannot start"), child.stdout
    assert lines[1:] == ["1", "8.0"], child.stdout


UNALLOCATABLE = {
    # 8 TiB outputs from small inputs
    "conv_transpose2d output": (
        "functional.conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 1, 1)), stride=2**20)",
        "(1, 1, 1048577, 1048577)",
    ),
    "conv2d output": (
        "functional.conv2d(np.ones((1, 1, 1, 1)), np.ones((1, 1, 1, 1)), padding=2**19)",
        "(1, 1, 1048577, 1048577)",
    ),
    "convolute_full output": (
        "convt.convolute_full(np.ones((2, 2)), np.ones((1, 1)), (2**20, 2**20))",
        "1048577",
    ),
    "fcn_forward output": (
        "convt.fcn_forward(np.ones((1, 1)), np.ones((2, 2)), (2**20, 2**20))",
        "1048577",
    ),
    "Matrix": ("convt.Matrix(2**20, 2**20)", "1048576"),
}


@pytest.mark.parametrize("name", list(UNALLOCATABLE))
def test_sizes_that_cannot_be_allocated_raise_value_error(name):
    """Memory that cannot be had is a ValueError naming the shape (DESIGN.md), not a
    MemoryError, and never an abort from an exception escaping a parallel region."""
    code, shape_word = UNALLOCATABLE[name]
    outcome = run_isolated(code)
    assert outcome["type"] == "ValueError", f"{code} gave {outcome}"
    assert shape_word in outcome["message"], outcome["message"]


# ---- convt's own words, never pybind11's signature ----

SIGNATURE_DUMPS = {
    "stride past 64 bits": (
        lambda: functional.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 1)), stride=2**63),
        ValueError,
        ["stride", str(2**63), "at most"],
    ),
    "groups past 64 bits": (
        lambda: functional.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 1)), groups=2**64),
        ValueError,
        ["groups", str(2**64)],
    ),
    "out a list": (
        lambda: functional.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 1)), out=[0.0] * 5),
        TypeError,
        ["out must be a NumPy array", "list"],
    ),
    "backward out an array": (
        lambda: functional.conv1d_backward(
            np.ones((3, 1, 5)), np.ones((3, 1, 5)), np.ones((1, 1, 1)), out=np.ones((3, 1, 5))
        ),
        TypeError,
        ["out must be a tuple of 3 arrays", "ndarray"],
    ),
    "output_mask None": (
        lambda: functional.conv1d_backward(
            np.ones((1, 1, 5)), np.ones((1, 1, 5)), np.ones((1, 1, 1)), output_mask=None
        ),
        TypeError,
        ["output_mask", "None"],
    ),
    "Matrix rows past 64 bits": (lambda: convt.Matrix(2**63, 1), ValueError, ["rows", "64 bits"]),
    "Matrix rows a float": (lambda: convt.Matrix(1.5, 2), TypeError, ["rows", "1.5"]),
    "Matrix index a str": (lambda: convt.Matrix(2, 2)["a"], TypeError, ["index", "'a'"]),
    "Matrix index a float": (lambda: convt.Matrix(2, 2)[0, 1.5], TypeError, ["col", "1.5"]),
    "threads past int": (
        lambda: convt.set_num_threads(2**31),
        ValueError,
        [str(2**31), "at most"],
    ),
    "threads a float": (lambda: convt.set_num_threads(1.5), TypeError, ["threads", "1.5"]),
    "threads a bool": (lambda: convt.set_num_threads(True), TypeError, ["threads", "True"]),
    "isa None": (lambda: convt.set_isa(None), TypeError, ["isa", "None"]),
    "isa bytes": (lambda: convt.set_isa(b"avx2"), TypeError, ["isa", "b'avx2'"]),
    "peak seconds None": (
        lambda: convt._core.fma_peak_gflops(None),
        TypeError,
        ["seconds", "None"],
    ),
}


@pytest.mark.parametrize("name", list(SIGNATURE_DUMPS))
def test_wrong_arguments_get_convts_own_error(name, num_threads, isa):
    call, exception, words = SIGNATURE_DUMPS[name]
    message = raises(exception, call, *words)
    assert "incompatible function arguments" not in message


@pytest.mark.parametrize(
    ("dilation", "words"),
    [
        ((-(2**63), 2**63), ["dilation", f"({-(2**63)}, {2**63})", "at most"]),
        ((-1, 2**62), ["dilation", f"(-1, {2**62})", "positive"]),
        ((0, 1), ["dilation", "(0, 1)", "positive"]),
    ],
)
def test_a_layer_names_a_bad_dilation_before_the_span_it_would_make(dilation, words):
    message = raises(
        ValueError, lambda: nn.Conv2d(1, 2, (2, 2), padding="same", dilation=dilation), *words
    )
    assert "spans" not in message and "((" not in message


@pytest.mark.parametrize("name", ["conv2d", "conv_transpose2d"])
def test_a_scalar_stride_is_named_once_per_spatial_dimension(name):
    x, w = np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"stride \(0, 0\) must be positive"):
        getattr(functional, name)(x, w, stride=0)
    with pytest.raises(ValueError, match=r"padding \(-1, -1\) must be non-negative"):
        getattr(functional, name)(x, w, padding=-1)


def test_a_python_scalar_input_reports_shape_empty():
    with pytest.raises(ValueError, match=r"got 0 with shape \(\)"):
        functional.conv2d(1.0, np.ones((1, 1, 3, 3)))


def test_a_list_as_out_gets_convts_own_type_error():
    with pytest.raises(TypeError, match="conv2d: out must be a NumPy array or None, got list"):
        functional.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), out=[0])


@pytest.mark.parametrize("name", ["conv1d", "conv_transpose1d"])
@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("stride", 0, "stride (0) must be positive"),
        ("dilation", -2, "dilation (-2) must be positive"),
        ("padding", -1, "padding (-1) must be non-negative"),
    ],
)
@pytest.mark.parametrize("given", [int, lambda v: (v,)], ids=["int", "tuple"])
def test_a_one_dimensional_argument_is_named_as_one_value(name, argument, value, message, given):
    x, w = np.ones((1, 1, 5)), np.ones((1, 1, 3))
    with pytest.raises(ValueError) as error:
        getattr(functional, name)(x, w, **{argument: given(value)})
    assert str(error.value) == f"{name}: {message}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"output_padding": -1}, "output_padding (-1) must be non-negative"),
        (
            {"output_padding": 1, "stride": 2, "padding": "same"},
            "output_padding (1) cannot be combined with padding='same'; give output_size instead",
        ),
    ],
)
def test_a_one_dimensional_output_padding_is_named_as_one_value(options, message):
    with pytest.raises(ValueError) as error:
        functional.conv_transpose1d(np.ones((1, 1, 5)), np.ones((1, 1, 3)), **options)
    assert str(error.value) == f"conv_transpose1d: {message}"
