"""Every GEMM micro-kernel (convt.supported_isas(): portable, avx2, avx512), forced with
convt.set_isa or the CONVT_ISA environment variable, agrees with the plain-loop reference on
shapes that reach its edge cases: partial register tiles, depth blocking (K > 256), row blocking
(M > 480), column blocking (N > 4096), and each way of lowering (Geometry.algorithm: the
stride-1 shifted copy with its padding, cropping and segments, the 1x1 pointwise path and
im2col), for the forward pass and every gradient, in float32 and float64."""

import functools
import json
import os
import subprocess
import sys

import convt
import numpy as np
import pytest
import reference
from conftest import assert_close
from convt import _core, functional

ISAS = convt.supported_isas()

# name: (transposed, input shape, weight shape, stride, padding, dilation, groups, output_padding)
# Sizes are odd or just past multiples of the tile widths (4/6/12 rows, 8/16/32 columns) and the
# blocking limits; the comments name the GEMM dimensions (M x N x K) each case pushes.
CASES = {
    "odd tiles 2d": (False, (3, 5, 23, 21), (9, 5, 3, 3), (1, 1), (1, 1), (1, 1), 1, None),
    "deep K > 256": (False, (2, 40, 6, 7), (9, 40, 3, 3), (1, 1), (1, 0), (1, 1), 1, None),
    "M > 480 forward": (False, (2, 3, 45), (500, 3, 3), (1,), (1,), (1,), 1, None),
    # col2im's GEMM has x channels * taps = 490 rows
    "M > 480 input gradient": (False, (2, 7, 80), (5, 7, 70), (1,), (2,), (1,), 1, None),
    "N > 4096": (False, (1, 2, 5003), (9, 2, 3), (1,), (0,), (1,), 1, None),
    "pointwise": (False, (2, 17, 9, 7), (33, 17, 1, 1), (1, 1), (0, 0), (1, 1), 1, None),
    "pointwise grouped": (False, (3, 18, 7, 9), (36, 6, 1, 1), (1, 1), (0, 0), (1, 1), 3, None),
    # wide enough for a GEMM per sample over x itself
    "pointwise wide": (False, (2, 17, 24, 23), (33, 17, 1, 1), (1, 1), (0, 0), (1, 1), 1, None),
    # x's rows 4 KiB (float32) and 8 KiB (float64) apart: the GEMM packs what it would read
    # in place, whose rows would share an L1 set
    "pointwise rows 4 KiB apart": (
        False,
        (2, 17, 32, 32),
        (33, 17, 1, 1),
        (1, 1),
        (0, 0),
        (1, 1),
        1,
        None,
    ),
    "pointwise wide grouped transposed": (
        True,
        (2, 12, 40, 15),
        (12, 5, 1, 1),
        (1, 1),
        (0, 0),
        (1, 1),
        2,
        (0, 0),
    ),
    "strided dilated grouped 3d": (
        False,
        (2, 6, 7, 6, 5),
        (10, 3, 2, 3, 2),
        (2, 1, 1),
        (1, 1, 1),
        (1, 2, 1),
        2,
        None,
    ),
    "transposed odd tiles": (True, (3, 13, 7, 9), (13, 5, 3, 2), (2, 1), (1, 0), (1, 1), 1, (1, 0)),
    "transposed pointwise": (
        True,
        (2, 33, 9, 7),
        (33, 17, 1, 1),
        (1, 1),
        (0, 0),
        (1, 1),
        1,
        (0, 0),
    ),
    "transposed deep": (True, (2, 300, 5), (300, 7, 3), (3,), (1,), (2,), 1, (2,)),
    "transposed long": (True, (1, 3, 4500), (3, 2, 2), (1,), (0,), (1,), 1, (0,)),
    "shifted deep": (False, (2, 40, 20, 20), (30, 40, 3, 3), (1, 1), (1, 1), (1, 1), 1, None),
    # padding beyond dilation * (kernel - 1): the input gradient's padded copy crops dy
    "shifted cropping": (False, (2, 8, 17, 16), (9, 8, 3, 3), (1, 1), (3, 2), (1, 1), 1, None),
    "shifted transposed dilated": (
        True,
        (2, 9, 40, 38),
        (9, 8, 3, 3),
        (1, 1),
        (1, 2),
        (2, 2),
        1,
        (1, 0),
    ),
    # one sample per block, its output planes 799 columns of the padded grid: a GEMM per plane
    "shifted 3d planes grouped": (
        False,
        (1, 16, 4, 20, 40),
        (16, 8, 3, 3, 2),
        (1, 1, 1),
        (1, 1, 0),
        (1, 1, 1),
        2,
        None,
    ),
    # one sample per block, its planes 110 columns (three tiles, the third nearly empty): one
    # GEMM over the whole sample
    "shifted 3d sample": (
        False,
        (1, 8, 6, 7, 14),
        (8, 8, 3, 1, 3),
        (1, 1, 1),
        (1, 0, 1),
        (1, 1, 1),
        1,
        None,
    ),
    # several samples per block, padding planes between them
    "shifted 3d samples": (
        False,
        (3, 8, 2, 20, 20),
        (8, 8, 1, 3, 3),
        (1, 1, 1),
        (0, 1, 1),
        (1, 1, 1),
        1,
        None,
    ),
    "shifted small images": (False, (5, 3, 20, 18), (8, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, None),
    # col2im a chunk of 24 channels at a time: 60 per group, chunks of 24, 24 and 12
    "col2im chunks": (False, (1, 120, 3000), (4, 60, 5), (2,), (2,), (1,), 2, None),
    # stride 1, but the padded grid would be four times the output: im2col
    "stride 1 wasteful": (False, (2, 16, 8, 8), (16, 16, 5, 5), (1, 1), (0, 0), (1, 1), 1, None),
    # col2im adds 16 taps along the last axis at a time where they read 16 or more apart (a
    # vocoder's up-sampling): 70 taps in blocks of 16 and a last of 6, cut at both ends of x
    "col2im tap blocks": (True, (2, 16, 9), (16, 8, 70), (16,), (20,), (1,), 1, (3,)),
    # the same along the last axis of a 2-d layer, its lines cut by padding on the first
    "col2im tap blocks 2d": (
        False,
        (1, 3, 5, 300),
        (4, 3, 2, 66),
        (1, 17),
        (1, 30),
        (1, 1),
        1,
        None,
    ),
}

# The paths of conv_forward (and conv_backward_weight, which lowers x the same way) and of
# conv_backward_input, as Geometry.algorithms names them.
ALGORITHMS = {
    "odd tiles 2d": ("shifted", "col2im"),
    "deep K > 256": ("im2col", "col2im"),
    "M > 480 forward": ("shifted", "col2im"),
    "M > 480 input gradient": ("im2col", "col2im"),
    "N > 4096": ("shifted", "col2im"),
    "pointwise": ("im2col", "col2im"),
    "pointwise grouped": ("im2col", "col2im"),
    "pointwise wide": ("pointwise", "pointwise"),
    "pointwise rows 4 KiB apart": ("pointwise", "pointwise"),
    "pointwise wide grouped transposed": ("pointwise", "pointwise"),
    "strided dilated grouped 3d": ("im2col", "col2im"),
    "transposed odd tiles": ("im2col", "col2im"),
    "transposed pointwise": ("im2col", "col2im"),
    "transposed deep": ("im2col", "col2im"),
    "transposed long": ("im2col", "col2im"),
    "shifted deep": ("shifted", "shifted"),
    "shifted cropping": ("shifted", "shifted"),
    "shifted transposed dilated": ("shifted", "shifted"),
    "shifted 3d planes grouped": ("shifted", "shifted"),
    "shifted 3d sample": ("shifted", "shifted"),
    "shifted 3d samples": ("shifted", "shifted"),
    "shifted small images": ("shifted", "col2im"),
    "col2im chunks": ("im2col", "col2im"),
    "stride 1 wasteful": ("im2col", "col2im"),
    "col2im tap blocks": ("im2col", "col2im"),
    "col2im tap blocks 2d": ("im2col", "col2im"),
}


@functools.cache
def case_arrays(name):
    """Input, weight, bias and output gradient (float32 values held in float64, so the one
    reference serves both dtypes) and the reference ``(output, grad_input, grad_weight,
    grad_bias)``."""
    transposed, x_shape, w_shape, stride, padding, dilation, groups, output_padding = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))

    def normal(shape):
        return rng.standard_normal(shape).astype(np.float32).astype(np.float64)

    x, w = normal(x_shape), normal(w_shape)
    pads = tuple((p, p) for p in padding)
    out_channels = w_shape[1] * groups if transposed else w_shape[0]
    b = normal((out_channels,))
    if transposed:
        y = reference.conv_transpose_forward(
            x, w, b, stride, pads, output_padding, groups, dilation
        )
        dy = normal(y.shape)
        grads = reference.conv_transpose_backward(
            dy, x, w, stride, pads, output_padding, groups, dilation
        )
    else:
        y = reference.conv_forward(x, w, b, stride, pads, dilation, groups)
        dy = normal(y.shape)
        grads = reference.conv_backward(dy, x, w, stride, pads, dilation, groups)
    return (x, w, b, dy), (y, *grads)


def geometry(name, x_shape=None, w_shape=None):
    transposed, shape, case_w_shape, stride, padding, dilation, groups, output_padding = CASES[name]
    kind = "conv_transpose" if transposed else "conv"
    extra = {"output_padding": output_padding} if transposed else {}
    return functional.geometry(
        f"{kind}{len(shape) - 2}d", x_shape or shape, w_shape or case_w_shape, stride=stride,
        padding=padding, dilation=dilation, groups=groups, **extra,
    )  # fmt: skip


KERNELS = ("conv_forward", "conv_backward_input", "conv_backward_weight")
ALL_ALGORITHMS = ("direct", "shifted", "pointwise", "im2col", "col2im")


def plans(geometry):
    """A plan for each algorithm, taken by every kernel it can compute (the others take their
    fastest): together they run every (kernel, algorithm) pair the geometry allows."""
    result = {}
    for algorithm in ALL_ALGORITHMS:
        chosen = {}
        for kernel in KERNELS:
            try:
                _core.Plan(geometry, {kernel: algorithm})
            except ValueError:
                continue
            chosen[kernel] = algorithm
        if chosen:
            result[algorithm] = _core.Plan(geometry, chosen)
    return result


def run_plan(plan, x, w, b, dy):
    """The layer's output and its three gradients, through one plan."""
    y = _core.forward(plan, x, w, b)
    return (y, *_core.backward(plan, dy, x, w, True, True, True))


@pytest.mark.parametrize("name", list(CASES))
def test_each_case_takes_the_path_it_is_named_for(name):
    assert set(ALGORITHMS) == set(CASES)
    forward, backward_input = ALGORITHMS[name]
    assert geometry(name).algorithms == {
        "conv_forward": forward,
        "conv_backward_input": backward_input,
        "conv_backward_weight": forward,
    }


def test_a_stride_1_layer_too_large_for_one_padded_copy_falls_back_to_im2col():
    """The shifted path holds one sample's padded group in scratch, up to 2**22 elements."""
    assert geometry("shifted deep", (1, 40, 400, 400)).algorithms["conv_forward"] == "im2col"
    assert geometry("shifted deep", (1, 40, 300, 300)).algorithms["conv_forward"] == "shifted"


def test_few_input_channels_take_col2im_for_the_input_gradient():
    """With fewer than 8 input channels the shifted input gradient would reuse each packed row
    of dy fewer than 8 times; col2im's GEMM has a row per (channel, tap) instead."""
    paths = geometry("shifted deep", (2, 3, 40, 40), (16, 3, 3, 3)).algorithms
    assert paths["conv_forward"] == "shifted"
    assert paths["conv_backward_input"] == "col2im"


def test_tiny_and_depthwise_layers_skip_the_gemm():
    assert set(geometry("odd tiles 2d", (1, 5, 3, 3)).algorithms.values()) == {"direct"}
    depthwise = functional.geometry("conv2d", (2, 8, 30, 30), (8, 1, 3, 3), padding=1, groups=8)
    assert set(depthwise.algorithms.values()) == {"direct"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("isa_name", ISAS)
def test_every_algorithm_matches_reference(isa_name, name, dtype, isa):
    convt.set_isa(isa_name)
    assert convt.get_isa() == isa_name
    (x, w, b, dy), expected = case_arrays(name)
    x, w, b, dy = (a.astype(dtype) for a in (x, w, b, dy))
    g = geometry(name, x.shape, w.shape)
    for algorithm, plan in plans(g).items():
        # col2im's GEMM reads a weight used once unpacked, and a plan's kept packing otherwise.
        for keep in (False, True) if algorithm == "col2im" else (False,):
            plan.keep_weights = keep
            got = run_plan(plan, x, w, b, dy)
            for label, value, reference_value in zip(
                ("output", "grad_input", "grad_weight", "grad_bias"), got, expected, strict=True
            ):
                where = f"{isa_name} {name} {algorithm}{' kept' if keep else ''}: {label}"
                assert_close(value, reference_value, dtype, where)


def test_every_algorithm_runs_on_some_case():
    """The cases above reach every (kernel, algorithm) pair the kernels have."""
    reached = set()
    for name in CASES:
        for algorithm, plan in plans(geometry(name)).items():
            reached |= {(kernel, a) for kernel, a in plan.algorithms.items() if a == algorithm}
    expected = {(k, a) for k in KERNELS for a in ALL_ALGORITHMS}
    expected -= {("conv_backward_input", "im2col")}
    expected -= {(k, "col2im") for k in ("conv_forward", "conv_backward_weight")}
    assert reached == expected


# Shapes large enough for convt's own threads: many small samples per block, a slice of one
# large sample, one sample whose GEMMs are split between threads, strided and pointwise.
THREADED = {
    "small samples": (False, (16, 8, 12, 12), (16, 8, 3, 3), 1, 1),
    "large samples": (False, (2, 32, 40, 40), (48, 32, 3, 3), 1, 1),
    "one sample": (False, (1, 32, 48, 48), (32, 32, 3, 3), 1, 1),
    "strided transposed": (True, (4, 32, 16, 16), (32, 16, 4, 4), 2, 1),
    "pointwise": (False, (3, 64, 24, 24), (96, 64, 1, 1), 1, 0),
}


@pytest.mark.parametrize("name", list(THREADED))
def test_every_algorithm_gives_the_same_bits_for_any_thread_count(name, num_threads):
    transposed, x_shape, w_shape, stride, padding = THREADED[name]
    rng = np.random.default_rng(7)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[1] if transposed else w_shape[0]).astype(np.float32)
    build = _core.conv_transpose_geometry if transposed else _core.conv_geometry
    extra = ((0,), 1, (1,), ()) if transposed else ((1,), 1)
    g = build(2, x_shape, w_shape, (stride,), (padding,), (), "explicit", *extra)
    dy = rng.standard_normal(g.output_shape).astype(np.float32)
    for algorithm, plan in plans(g).items():
        convt.set_num_threads(1)
        serial = run_plan(plan, x, w, b, dy)
        convt.set_num_threads(2)
        threaded = run_plan(plan, x, w, b, dy)
        for one, two in zip(serial, threaded, strict=True):
            assert np.array_equal(one, two), f"{name} {algorithm}"


def test_portable_is_always_supported():
    assert ISAS[0] == "portable"
    assert set(ISAS) <= {"portable", "avx2", "avx512"}


@pytest.mark.parametrize("bad", ["sse9", "AVX2", "", "avx512 "])
def test_unknown_isa_is_a_value_error(bad, isa):
    with pytest.raises(ValueError, match="isa") as info:
        convt.set_isa(bad)
    assert repr(bad) in str(info.value)
    assert convt.get_isa() == isa  # unchanged


@pytest.mark.parametrize("name", sorted({"avx2", "avx512"} - set(ISAS)) or ["none"])
def test_isa_this_cpu_lacks_is_a_value_error(name, isa):
    if name == "none":
        pytest.skip("this CPU supports every micro-kernel")
    with pytest.raises(ValueError, match=name):
        convt.set_isa(name)


def run_with_environment(code, **env):
    child = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, f"exit code {child.returncode}\n{child.stdout}\n{child.stderr}"
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_environment_variable_forces_the_portable_kernel():
    code = """
import json, numpy as np, convt
x, w = np.ones((4, 16, 20, 20)), np.ones((16, 16, 3, 3))
y = convt.functional.conv2d(x, w)
print(json.dumps({"isa": convt.get_isa(), "ok": bool((y == 16 * 3 * 3).all())}))
"""
    assert run_with_environment(code, CONVT_ISA="portable") == {"isa": "portable", "ok": True}


def test_bad_environment_variable_is_a_value_error_not_a_crash():
    """An unknown CONVT_ISA is reported as a ValueError naming the variable and its value, by
    the first call that needs it, and never takes the interpreter down."""
    code = """
import json, numpy as np
outcomes = []
for step in ("import", "get_isa", "small", "large"):
    try:
        import convt
        if step == "get_isa":
            convt.get_isa()
        elif step == "small":
            convt.functional.conv1d(np.ones((1, 1, 3)), np.ones((1, 1, 2)))
        elif step == "large":
            convt.functional.conv2d(np.ones((4, 16, 32, 32)), np.ones((16, 16, 3, 3)))
        outcomes.append([step, None, ""])
    except Exception as error:
        outcomes.append([step, type(error).__name__, str(error)])
print(json.dumps(outcomes))
"""
    outcomes = run_with_environment(code, CONVT_ISA="bogus")
    errors = [(step, kind, message) for step, kind, message in outcomes if kind is not None]
    assert errors, f"CONVT_ISA=bogus was silently accepted: {outcomes}"
    for step, kind, message in errors:
        assert kind == "ValueError", (step, kind, message)
        assert "CONVT_ISA" in message and "bogus" in message, (step, message)
