"""The shortcuts that keep seed-sized calls near the cost of a bare bound call give what the
long way gives: the arrays convt.functional uses in place are exactly those floating_arrays
returns as they are, a call's plan is looked up only by plain arguments, the backward pass's
default mask skips its checks only when nothing is skipped, the seed functions' plans are told
apart by kind, sizes and strides, and the direct kernels' threaded loops sum as the serial ones."""

import pickle

import convt
import numpy as np
import pytest
import reference
from convt import _core, functional

rng = np.random.default_rng(6)


def normal(shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def unaligned(array):
    buffer = bytearray(array.nbytes + 1)
    view = np.frombuffer(buffer, array.dtype, count=array.size, offset=1).reshape(array.shape)
    view[...] = array
    return view


class Subclass(np.ndarray):
    pass


def read_only(array):
    array = array.copy()
    array.flags.writeable = False
    return array


VARIANTS = {
    "float64": lambda a: a,
    "float32": lambda a: a.astype(np.float32),
    "Fortran order": np.asfortranarray,
    "strided": lambda a: np.repeat(a, 2, axis=-1)[..., ::2],
    "unaligned": unaligned,
    "byte-swapped": lambda a: a.astype(a.dtype.newbyteorder()),
    "metadata": lambda a: a.view(np.dtype(a.dtype, metadata={"unit": "m"})),
    "unpickled": lambda a: pickle.loads(pickle.dumps(a)),
    "subclass": lambda a: a.view(Subclass),
    "read-only": read_only,
    "float16": lambda a: a.astype(np.float16),
    "int": lambda a: a.astype(np.int64),
    "list": lambda a: a.tolist(),
}


@pytest.mark.parametrize("second", list(VARIANTS))
@pytest.mark.parametrize("first", list(VARIANTS))
def test_arrays_used_in_place_are_those_floating_arrays_keeps(first, second):
    """Where the shortcut says an array is used as it is, floating_arrays returns that very
    array; the two plain dtypes take the shortcut, so it is what the tests above time."""
    x = VARIANTS[first](normal((1, 2, 5, 5)))
    w = VARIANTS[second](normal((2, 2, 3, 3)))
    kept = functional.floating_arrays("conv2d", input=x, weight=w, bias=None)
    if functional._in_place(x, w):
        assert kept[0] is x and kept[1] is w
    if first == second and first in ("float64", "float32"):
        assert functional._in_place(x, w)
        assert functional._in_place(x, w, x[0, 0, 0])
    if {first, second} == {"float64", "float32"}:
        assert not functional._in_place(x, w)
    expected = reference.conv_forward(
        np.asarray(x, np.float64),
        np.asarray(w, np.float64),
        None,
        (1, 1),
        ((0, 0), (0, 0)),
        (1, 1),
        1,
    )
    got = functional.conv2d(x, w)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_a_bias_of_another_dtype_is_converted_with_the_rest():
    x, w = normal((1, 2, 5, 5)), normal((3, 2, 3, 3))
    b = normal(3, np.float32)
    assert not functional._in_place(x, w, b)
    got = functional.conv2d(x, w, b)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, functional.conv2d(x, w, b.astype(np.float64)))


def test_a_plan_is_looked_up_only_by_plain_arguments():
    """After a call with stride 1, the values equal to 1 that the checks refuse are still
    refused, and those they accept give the same result."""
    x, w = normal((1, 1, 6, 6)), normal((1, 1, 3, 3))
    expected = functional.conv_transpose2d(x, w, stride=1, padding=0)
    assert functional.conv_transpose2d(x, w, stride=1, padding=0) is not expected
    for refused in (True, 1.0):
        with pytest.raises(TypeError, match="conv_transpose2d: stride must be an int"):
            functional.conv_transpose2d(x, w, stride=refused)
        with pytest.raises(TypeError, match="conv_transpose2d: stride must be an int"):
            functional.conv_transpose2d(x, w, stride=(refused, 1))
    with pytest.raises(TypeError, match="conv_transpose2d: groups must be an int"):
        functional.conv_transpose2d(x, w, groups=True)
    for accepted in (np.int64(1), [1, 1], (1, 1), (np.int32(1), 1)):
        np.testing.assert_array_equal(
            functional.conv_transpose2d(x, w, stride=accepted, padding=0), expected
        )
    strided = functional.conv_transpose2d(x, w, stride=2)
    assert strided.shape == (1, 1, 13, 13)
    assert functional.conv_transpose2d(x, w, stride=(2, 1)).shape == (1, 1, 13, 8)


def test_the_plan_of_a_call_is_the_geometry_of_its_arguments():
    x, w = normal((2, 3, 7, 6)), normal((3, 4, 3, 2))
    first = functional._call_plan(
        functional._operations.CONV_TRANSPOSE2D, x.shape, w.shape, 2, 1, 1, 1, 1, None, "zeros"
    )
    again = functional._call_plan(
        functional._operations.CONV_TRANSPOSE2D, x.shape, w.shape, 2, 1, 1, 1, 1, None, "zeros"
    )
    assert again is first
    g = convt.geometry("conv_transpose2d", x.shape, w.shape, stride=2, padding=1,
                       output_padding=1)  # fmt: skip
    assert first.geometry.output_shape == g.output_shape == (2, 4, 14, 11)
    as_conv = functional._call_plan(
        functional._operations.CONV2D, (2, 4, 14, 11), (3, 4, 3, 2), 2, 1, 1, 1, 0, None, "zeros"
    )
    assert as_conv is not first and as_conv.geometry.output_shape == (2, 3, 7, 6)


@pytest.mark.parametrize(
    "mask", [(True, True, True), [True, True, True], (1, 1, 1), (np.True_,) * 3]
)
def test_every_spelling_of_the_full_mask_gives_all_three_gradients(mask):
    x, w, dy = normal((2, 2, 5, 5)), normal((3, 2, 3, 3)), normal((2, 3, 3, 3))
    expected = functional.conv2d_backward(dy, x, w)
    got = functional.conv2d_backward(dy, x, w, output_mask=mask)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


def test_a_partial_mask_and_out_arrays_are_still_honoured():
    x, w, dy = normal((2, 2, 5, 5)), normal((3, 2, 3, 3)), normal((2, 3, 3, 3))
    dx, dw, db = functional.conv2d_backward(dy, x, w)
    got = functional.conv2d_backward(dy, x, w, output_mask=(True, False, True))
    assert got[1] is None
    np.testing.assert_array_equal(got[0], dx)
    np.testing.assert_array_equal(got[2], db)
    outs = (np.empty_like(dx), np.empty_like(dw), np.empty_like(db))
    written = functional.conv2d_backward(dy, x, w, out=outs)
    for o, r, e in zip(outs, written, (dx, dw, db), strict=True):
        assert r is o
        np.testing.assert_array_equal(o, e)
    with pytest.raises(ValueError, match="output_mask must have 3 entries"):
        functional.conv2d_backward(dy, x, w, output_mask=(True, True))


def matrix_method(x, w, strides, full):
    m, k = convt.Matrix(x), convt.Matrix(w)
    return np.array(m.convolute_full(k, strides) if full else m.convolute(k, strides))


def test_seed_functions_give_the_matrix_methods_results_for_many_shapes_at_once():
    """More shapes than the seed plans kept per thread, convolute and convolute_full of the
    same sizes, and the same sizes with other strides, interleaved: each call gets its own
    geometry's result, bitwise that of the Matrix methods."""
    cases = []
    for rows, cols, k_rows, k_cols in [(10, 10, 3, 3), (7, 9, 2, 4), (5, 5, 5, 5), (12, 4, 3, 1)]:
        for strides in [(1, 1), (2, 1), (1, 3)]:
            x, w = normal((rows, cols)), normal((k_rows, k_cols))
            cases += [(x, w, strides, False), (x, w, strides, True)]
    order = [i for _ in range(3) for i in rng.permutation(len(cases))]
    for i in order:
        x, w, strides, full = cases[i]
        call = convt.convolute_full if full else convt.convolute
        got = call(x, w, strides)
        expected = matrix_method(x, w, strides, full)
        assert got.shape == expected.shape and got.tobytes() == expected.tobytes(), (i, full)


def test_seed_functions_keep_their_messages():
    x = normal((4, 4))
    with pytest.raises(ValueError, match=r"convolute: the kernel of shape \(5, 1\) is larger"):
        _core.convolute(x, normal((5, 1)))
    with pytest.raises(ValueError, match=r"convolute_full: strides \(0, 1\) must be positive"):
        _core.convolute_full(x, normal((2, 2)), (0, 1))
    with pytest.raises(ValueError, match="W must be a 2-D array, got 3 dimensions"):
        _core.convolute(x, normal((1, 2, 2)))
    with pytest.raises(TypeError, match="W must be an aligned C-contiguous float64 array"):
        _core.convolute(x, normal((2, 2), np.float32))
    assert _core.convolute(x, normal((2, 2))).shape == (3, 3)


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
