"""Arrays whose dtype is float64 or float32 by NumPy's equality but not the same object, or whose
memory is laid out unusually, give the results of plain arrays: unpickled arrays (which crossed
a process boundary), dtypes with metadata, native-byte-order views, byte-swapped arrays, and
arrays whose data is not aligned to the element size (copied once, as the kernels' loads assume
alignment). Direct callers of convt._core get a TypeError for an unaligned array instead."""

import pickle

import convt
import numpy as np
import pytest
from convt import _core, functional, nn


def unaligned(array):
    """A copy of ``array`` whose data starts one byte past an aligned address."""
    buffer = bytearray(array.nbytes + 1)
    view = np.frombuffer(buffer, array.dtype, count=array.size, offset=1).reshape(array.shape)
    view[...] = array
    assert not view.flags.aligned
    return view


LAYOUTS = {
    "unpickled": lambda a: pickle.loads(pickle.dumps(a)),
    "metadata": lambda a: a.view(np.dtype(a.dtype, metadata={"unit": "m"})),
    "native-order view": lambda a: a.view(a.dtype.newbyteorder("=")),
    "byte-swapped": lambda a: a.astype(a.dtype.newbyteorder()),
    "unaligned": unaligned,
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_functional_calls_take_every_layout(layout, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 5)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    expected = functional.conv2d(x, w, b, padding=1)
    change = LAYOUTS[layout]
    y = functional.conv2d(change(x), change(w), change(b), padding=1)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, expected)
    dy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(
        functional.conv2d_backward(change(dy), change(x), change(w), padding=1),
        functional.conv2d_backward(dy, x, w, padding=1),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        convt.convolute(change(x[0, 0]), change(w[0, 0])), convt.convolute(x[0, 0], w[0, 0])
    )


def test_an_unpickled_layer_runs():
    layer = nn.Conv2d(1, 2, 3)
    x = np.ones((1, 1, 5, 5), np.float32)
    expected = layer(x)
    copy = pickle.loads(pickle.dumps(layer))
    np.testing.assert_array_equal(copy(x), expected)
    copy.backward(np.ones_like(expected))


def test_unpickled_arrays_go_to_core_as_they_are():
    x = pickle.loads(pickle.dumps(np.ones((1, 1, 3, 3))))
    w = pickle.loads(pickle.dumps(np.ones((1, 1, 2, 2))))
    geometry = _core.conv_geometry(2, x.shape, w.shape, (1,), (0,), (), "explicit", (1,), 1)
    assert _core.forward(geometry, x, w).tolist() == [[[[4.0, 4.0], [4.0, 4.0]]]]


def test_core_refuses_unaligned_arrays():
    x, w = unaligned(np.ones((1, 1, 3, 3))), np.ones((1, 1, 2, 2))
    geometry = _core.conv_geometry(2, x.shape, w.shape, (1,), (0,), (), "explicit", (1,), 1)
    with pytest.raises(TypeError, match="input must be C-contiguous and aligned"):
        _core.forward(geometry, x, w)
    with pytest.raises(ValueError, match="out must be a writable, aligned C-contiguous array"):
        _core.forward(geometry, np.ones((1, 1, 3, 3)), w, None, unaligned(np.ones((1, 1, 2, 2))))
