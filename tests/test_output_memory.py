"""Large outputs live in convt's output pool: an array freed by the caller gives its buffer
back, the next call of the same size reuses it and takes no page faults for it, live outputs
never share memory, and convt._core.release_workspace() hands the kept buffers back."""

import resource

import numpy as np
from convt import _core, functional

rng = np.random.default_rng(7)
X = rng.standard_normal((4, 16, 64, 64)).astype(np.float32)  # outputs of 4 MiB
W = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)


def address(array):
    return array.__array_interface__["data"][0]


def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def test_a_freed_output_is_reused_without_page_faults():
    _core.release_workspace()  # no buffer of this size kept by an earlier test
    y = functional.conv2d(X, W, padding=1)
    first = address(y)
    expected = y.copy()
    del y
    before = minor_faults()
    again = functional.conv2d(X, W, padding=1)
    faults = minor_faults() - before
    assert address(again) == first
    assert faults < 100, f"{faults} page faults for a reused 4 MiB output"
    np.testing.assert_array_equal(again, expected)


def test_live_outputs_never_share_memory():
    outputs = [functional.conv2d(X, W, padding=1) for _ in range(3)]
    grads = functional.conv2d_backward(outputs[0], X, W, padding=1)
    arrays = outputs + [g for g in grads if g is not None]
    for i, a in enumerate(arrays):
        for b in arrays[i + 1 :]:
            assert not np.shares_memory(a, b)
    outputs[1][...] = 0  # writable, and writing one leaves the others alone
    assert np.abs(outputs[0]).sum() > 0 and np.abs(outputs[2]).sum() > 0


def test_small_outputs_are_plain_numpy_arrays():
    y = functional.conv2d(X[:1, :, :8, :8], W)
    assert y.flags["OWNDATA"]


def test_release_workspace_returns_kept_buffers():
    y = functional.conv2d(X, W, padding=1)
    del y
    assert _core.kept_output_bytes() >= X.nbytes
    _core.release_workspace()
    assert _core.kept_output_bytes() == 0


def test_outputs_outlive_the_pool_being_released():
    y = functional.conv2d(X, W, padding=1)
    expected = y.copy()
    _core.release_workspace()
    np.testing.assert_array_equal(y, expected)
    del y
    assert _core.kept_output_bytes() >= X.nbytes
