"""The shortcuts that keep seed-sized calls near the cost of a bare bound call give what the
long way gives: the direct kernels' threaded loops sum as the serial ones."""

import convt
import numpy as np
import pytest
from convt import functional

rng = np.random.default_rng(6)


def normal(shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_kernels_sum_alike_on_one_thread_and_several(dtype, num_threads):
    """A depthwise layer large enough for the direct kernels to take several threads, and a
    seed-sized one that takes one: results bitwise independent of the thread count."""
    calls, work = [], []
    for x_shape, w_shape in [((8, 64, 40, 40), (64, 1, 3, 3)), ((1, 1, 10, 10), (1, 1, 3, 3))]:
        x, w = normal(x_shape, dtype), normal(w_shape, dtype)
        groups = x_shape[1]
        g = convt.geometry("conv2d", x_shape, w_shape, padding=1, groups=groups)
        assert set(g.algorithms.values()) == {"direct"}
        work.append(g.multiply_adds)
        dy = normal(g.output_shape, dtype)
        calls.append(lambda x=x, w=w, k=groups: (functional.conv2d(x, w, padding=1, groups=k),))
        calls.append(
            lambda dy=dy, x=x, w=w, k=groups: functional.conv2d_backward(
                dy, x, w, padding=1, groups=k
            )
        )
    # The kernels split work of four million multiply-adds or more between threads.
    assert work[0] >= 4e6 > work[1]
    convt.set_num_threads(1)
    one = [call() for call in calls]
    convt.set_num_threads(2)
    for call, expected in zip(calls, one, strict=True):
        for got, want in zip(call(), expected, strict=True):
            assert got.tobytes() == want.tobytes()
