"""Threads: Python threads calling convt at once get bitwise the results of serial calls, the
results do not depend on convt's thread count, and the GIL is released while C++ computes."""

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import convt
import numpy as np
import pytest
from convt import functional

rng = np.random.default_rng(2024)


def normal(shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def layer_calls(dtype):
    """(name, call) pairs covering forward and backward of both kinds of layer, from tiny
    shapes to ones large enough for convt's own threads (several samples per GEMM, a slice of
    one sample, one sample's GEMMs split between threads, pointwise, grouped, strided)."""
    calls = []
    shapes = [  # (input, weight, kwargs) of a convolution
        ((2, 3, 7), (4, 3, 3), dict(stride=2, padding=1)),
        ((1, 4, 9, 8), (6, 2, 3, 2), dict(groups=2, dilation=(2, 1), padding=(1, 0))),
        ((2, 2, 5, 4, 6), (2, 2, 2, 3, 1), dict(stride=(1, 2, 3))),
        ((16, 8, 12, 12), (16, 8, 3, 3), dict(padding=1)),  # many small samples
        ((2, 32, 40, 40), (48, 32, 3, 3), dict(padding=1)),  # large samples
        ((1, 32, 48, 48), (32, 32, 3, 3), dict(padding=1)),  # one sample: threaded GEMMs
        ((1, 8, 10, 24, 24), (8, 8, 3, 3, 3), dict(padding=1)),  # a GEMM per output plane
        ((3, 64, 24, 24), (96, 64, 1, 1), dict()),  # pointwise
        ((16, 1, 28, 28), (8, 1, 5, 5), dict()),  # few multiply-adds, threaded for its lowering
        ((2, 300, 16, 16), (20, 300, 2, 2), dict(stride=2)),  # deep reduction
        ((2, 16, 4000), (8, 16, 5), dict(dilation=3)),  # long 1-d signal
        # One block of one sample: the input gradient's chunks of channels split between threads.
        ((1, 64, 32, 32), (64, 64, 3, 3), dict(stride=2, padding=1)),
        ((1, 32, 2048), (32, 32, 64), dict(stride=16, padding=8)),  # an uneven last chunk
    ]
    for x_shape, w_shape, kwargs in shapes:
        dims = len(x_shape) - 2
        x, w = normal(x_shape, dtype), normal(w_shape, dtype)
        b = normal(w_shape[:1], dtype)
        conv = getattr(functional, f"conv{dims}d")
        conv_backward = getattr(functional, f"conv{dims}d_backward")
        conv_transpose = getattr(functional, f"conv_transpose{dims}d")
        conv_transpose_backward = getattr(functional, f"conv_transpose{dims}d_backward")
        y = conv(x, w, b, **kwargs)
        dy = normal(y.shape, dtype)
        dz = normal(conv_transpose(dy, w, **kwargs).shape, dtype)
        label = f"{dtype.__name__} {x_shape} {w_shape}"
        calls += [
            (f"conv {label}", lambda x=x, w=w, b=b, k=kwargs, f=conv: f(x, w, b, **k)),
            (
                f"conv backward {label}",
                lambda dy=dy, x=x, w=w, k=kwargs, f=conv_backward: f(dy, x, w, **k),
            ),
            (f"transpose {label}", lambda dy=dy, w=w, k=kwargs, f=conv_transpose: f(dy, w, **k)),
            (
                f"transpose backward {label}",
                lambda dz=dz, dy=dy, w=w, k=kwargs, f=conv_transpose_backward: f(dz, dy, w, **k),
            ),
        ]
    a, k = normal((61, 47), dtype), normal((5, 4), dtype)
    dz = normal(convt.fcn_forward(k, a, (2, 3)).shape, dtype)
    calls += [
        (f"cnn_forward {dtype.__name__}", lambda: convt.cnn_forward(k, a, (2, 1))),
        (f"fcn_forward {dtype.__name__}", lambda: convt.fcn_forward(k, a, (2, 3))),
        (f"fcn_backward {dtype.__name__}", lambda: convt.fcn_backward(a, dz, k, (2, 3))),
    ]
    return calls


@pytest.fixture(scope="module")
def calls():
    return layer_calls(np.float32) + layer_calls(np.float64)


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def assert_bitwise_equal(got, expected, name):
    for g, e in zip(as_tuple(got), as_tuple(expected), strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape, name
        assert g.tobytes() == e.tobytes(), f"{name}: results differ"


def test_concurrent_calls_match_serial_calls(calls):
    serial = {name: call() for name, call in calls}
    order = [i for i in range(len(calls)) for _ in range(3)]
    np.random.default_rng(0).shuffle(order)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(calls[i][0], pool.submit(calls[i][1])) for i in order]
        for name, future in futures:
            assert_bitwise_equal(future.result(), serial[name], name)


@pytest.mark.parametrize("threads", [2, 3])
def test_results_do_not_depend_on_the_thread_count(threads, num_threads, calls):
    convt.set_num_threads(1)
    assert convt.get_num_threads() == 1
    one = {name: call() for name, call in calls}
    convt.set_num_threads(threads)
    assert convt.get_num_threads() == threads
    for name, call in calls:
        assert_bitwise_equal(call(), one[name], f"{name} with {threads} threads")


def test_an_isa_set_during_a_call_does_not_change_that_call(isa):
    """A call reads the instruction set once: set_isa from another thread while it runs gives
    it bitwise the result of one instruction set (each sums in its own order, and the portable
    kernels without fused multiply-adds), never a mixture."""
    isas = convt.supported_isas()
    if len(isas) < 2:
        pytest.skip("this CPU supports one micro-kernel only")
    # A weight gradient of many blocks, each its own GEMM, summed into four partial sums.
    x = normal((64, 16, 20, 20), np.float32)
    w = normal((32, 16, 3, 3), np.float32)
    dy = normal((64, 32, 9, 9), np.float32)

    def call():
        return functional.conv2d_backward(dy, x, w, stride=2, output_mask=(True, True, False))

    expected = {}
    for name in isas:
        convt.set_isa(name)
        expected[name] = call()
    assert len({e[1].tobytes() for e in expected.values()}) > 1, "the ISAs sum alike here"
    stop = threading.Event()

    def switch():
        while not stop.is_set():
            for name in isas:
                convt.set_isa(name)

    switcher = threading.Thread(target=switch)
    switcher.start()
    try:
        results = [call() for _ in range(20)]
    finally:
        stop.set()
        switcher.join()
    for got in results:
        matches = [
            name
            for name, e in expected.items()
            if all(g.tobytes() == v.tobytes() for g, v in zip(got[:2], e[:2], strict=True))
        ]
        assert matches, "a call mixed instruction sets"


def test_thread_count_applies_to_every_thread(num_threads):
    """As torch.set_num_threads: the setting is the process's, not the calling thread's."""
    convt.set_num_threads(1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        seen = list(pool.map(lambda _: convt.get_num_threads(), range(4)))
    assert seen == [1] * 4


def test_thread_count_follows_omp_num_threads():
    code = "import convt; print(convt.get_num_threads())"
    for value in ("1", "3"):
        env = {**os.environ, "OMP_NUM_THREADS": value}
        child = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert child.stdout.strip() == value


# ---- the GIL ----


def long_call(name, scale):
    """A call that runs long enough (tens of milliseconds and more, growing with ``scale``) for
    another thread to be woken while it computes. Its arrays are C-contiguous of the computed
    dtype, so convt uses them as they are."""
    if name.startswith("conv"):
        x = normal((scale, 32, 64, 64), np.float32)
        w = normal((64, 32, 3, 3), np.float32)
        y = normal((scale, 64, 62, 62), np.float32)
        return {
            "conv2d": lambda: functional.conv2d(x, w),
            "conv2d_backward": lambda: functional.conv2d_backward(y, x, w),
            "conv_transpose2d": lambda: functional.conv_transpose2d(y, w),
        }[name]
    a, k = normal((400 * scale, 400), np.float64), normal((9, 9), np.float64)
    if name == "cnn_forward":
        return lambda: convt.cnn_forward(k, a)
    if name == "fcn_backward":
        x = normal((400 * scale - 8, 392), np.float64)
        return lambda: convt.fcn_backward(x, a, k)
    matrix, kernel = convt.Matrix(a), convt.Matrix(k)
    return lambda: matrix.convolute(kernel)


def another_thread_ran_during(call) -> bool:
    """Whether another Python thread ran while ``call`` was running.

    With the switch interval set far beyond the test's length, CPython never takes the GIL from a
    thread: another thread gets it only when the holder releases it. The observer thread waits
    (without the GIL) until just before the call, then needs the GIL to record whether the call
    had finished. The arrays are already C-contiguous of the computed dtype, so nothing before
    the C++ kernel releases the GIL: the observer sees the call running only if the kernel
    releases it. No timing is measured.
    """
    go = threading.Event()
    finished = [False]
    seen_running = []

    def observe():
        go.wait()
        seen_running.append(not finished[0])

    observer = threading.Thread(target=observe)
    observer.start()
    go.set()
    call()
    finished[0] = True
    observer.join()
    return seen_running[0]


@pytest.mark.parametrize(
    "name",
    [
        "conv2d",
        "conv2d_backward",
        "conv_transpose2d",
        "cnn_forward",
        "fcn_backward",
        "Matrix.convolute",
    ],
)
def test_gil_is_released_while_computing(name):
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        # The observer must be scheduled by the OS while the call runs; on a busy machine a
        # short call may end first, so a few tries grow the problem. Holding the GIL fails
        # every try.
        ran = any(another_thread_ran_during(long_call(name, scale)) for scale in (1, 2, 4, 8, 16))
    finally:
        sys.setswitchinterval(interval)
    assert ran, f"{name}: no other thread ran while it computed"
