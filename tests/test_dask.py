"""convt.dask on the threaded scheduler: equal to convt.functional on the whole array for every
geometry and chunking, forward and every gradient; chunks laid out as documented (batch chunks
kept, spatial chunks following the input's through the stride, channels in one chunk); the
weight one node of the graph; gradients' reductions deterministic; errors named.

Cluster schedulers, data-parallel training and zarr stores are in test_dask_cluster.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

da = pytest.importorskip(
    "dask.array", reason="convt.dask needs the dask extra: pip install 'convt[dask]'"
)

import dask  # noqa: E402
from conftest import assert_close, conv_case_strategy, examples  # noqa: E402
from convt import dask as cd  # noqa: E402
from convt import functional  # noqa: E402
from dask.core import flatten  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

rng = np.random.default_rng(13)


@pytest.fixture(autouse=True)
def threads():
    with dask.config.set(scheduler="threads", num_workers=2):
        yield


@st.composite
def partitions(draw, size: int, most: int = 4) -> tuple[int, ...]:
    """A random split of ``size`` into 1 to ``most`` chunks (one chunk of 0 for size 0)."""
    if size <= 1:
        return (size,)
    cuts = draw(st.sets(st.integers(1, size - 1), max_size=min(most, size) - 1))
    bounds = [0, *sorted(cuts), size]
    return tuple(b - a for a, b in itertools.pairwise(bounds))


@st.composite
def chunked_cases(draw, **kwargs):
    """A random ConvCase with a random chunking of its input and of its grad_output."""
    case = draw(conv_case_strategy(**kwargs))
    x, _, _, dy = case.arrays
    x_chunks = tuple(draw(partitions(size)) for size in x.shape)
    dy_chunks = tuple(draw(partitions(size)) for size in dy.shape)
    return case, x_chunks, dy_chunks


@settings(max_examples=examples(80))
@given(chunked_cases())
def test_forward_and_gradients_equal_functional_on_the_whole_array(drawn):
    case, x_chunks, dy_chunks = drawn
    x, w, b, dy = case.arrays
    lazy_x = da.from_array(x, chunks=x_chunks)
    y = getattr(cd, case.name)(lazy_x, w, b, **case.kwargs())
    assert isinstance(y, da.Array)
    assert_close(y.compute(), case.forward(), case.dtype, "forward")
    batched = case.batch is not None
    if batched:
        assert y.chunks[0] == lazy_x.chunks[0]
    assert len(y.chunks[1 if batched else 0]) == 1

    lazy_dy = da.from_array(dy, chunks=dy_chunks)
    backward = getattr(cd, f"{case.name}_backward")
    lazy = backward(lazy_dy, lazy_x, w, **case.backward_kwargs())
    grads = dask.compute(*lazy)
    expected = case.backward()
    for what, got, want in zip(
        ("grad_input", "grad_weight", "grad_bias"), grads, expected, strict=True
    ):
        assert_close(got, want, case.dtype, what)
    channel_axis = 1 if batched else 0
    assert all(
        got == given_chunks
        for axis, (got, given_chunks) in enumerate(zip(lazy[0].chunks, lazy_x.chunks, strict=True))
        if axis != channel_axis
    ), "grad_input is chunked like the input"


@settings(max_examples=examples(40))
@given(chunked_cases(allow_large=False), st.sampled_from([(True, False, False),
                                                          (False, True, False),
                                                          (False, False, True),
                                                          (False, True, True)]))  # fmt: skip
def test_output_mask_skips_gradients(drawn, mask):
    case, x_chunks, dy_chunks = drawn
    x, w, _, dy = case.arrays
    backward = getattr(cd, f"{case.name}_backward")
    lazy = backward(
        da.from_array(dy, chunks=dy_chunks),
        da.from_array(x, chunks=x_chunks),
        w,
        output_mask=mask,
        **case.backward_kwargs(),
    )
    expected = case.backward(output_mask=mask)
    for wanted, got, want in zip(mask, lazy, expected, strict=True):
        if wanted:
            assert_close(got.compute(), want, case.dtype)
        else:
            assert got is None


# ---------------------------------------------------------------------------------------------
# How chunks map through a call


def test_a_same_convolution_keeps_its_chunks_and_a_stride_two_one_halves_them():
    x = rng.standard_normal((2, 3, 24, 20))
    lazy_x = da.from_array(x, chunks=(1, 3, (8, 10, 6), (6, 14)))
    w = rng.standard_normal((4, 3, 3, 5))
    same = cd.conv2d(lazy_x, w, padding="same")
    assert same.chunks == ((1, 1), (4,), (8, 10, 6), (6, 14))
    assert_close(same.compute(), functional.conv2d(x, w, padding="same"), np.float64)
    w_down = rng.standard_normal((4, 3, 3, 3))
    down = cd.conv2d(lazy_x, w_down, stride=2, padding=1)
    assert down.chunks == ((1, 1), (4,), (4, 5, 3), (3, 7))
    # The transposed layer that undoes the stride doubles them back.
    w_up = rng.standard_normal((4, 2, 4, 4))
    up = cd.conv_transpose2d(down, w_up, stride=2, padding=1)
    assert up.chunks == ((1, 1), (2,), (8, 10, 6), (6, 14))
    expected = functional.conv_transpose2d(
        functional.conv2d(x, w_down, stride=2, padding=1), w_up, stride=2, padding=1
    )
    assert_close(up.compute(), expected, np.float64)


def test_chunks_smaller_than_the_stride_are_handled():
    x = rng.standard_normal((1, 2, 17))
    lazy_x = da.from_array(x, chunks=(1, 2, 1))
    w = rng.standard_normal((3, 2, 2))
    y = cd.conv1d(lazy_x, w, stride=3, padding=2)
    assert all(size > 0 for size in y.chunks[2])
    assert_close(y.compute(), functional.conv1d(x, w, stride=3, padding=2), np.float64)
    w_t = rng.standard_normal((2, 3, 2))
    t = cd.conv_transpose1d(lazy_x, w_t, stride=3, output_padding=1)
    assert_close(
        t.compute(), functional.conv_transpose1d(x, w_t, stride=3, output_padding=1), np.float64
    )


def test_outputs_that_read_padding_only_hold_the_bias():
    x = rng.standard_normal((2, 1, 6))
    lazy_x = da.from_array(x, chunks=(1, 1, 2))
    w = rng.standard_normal((2, 1, 2))
    b = rng.standard_normal(2)
    y = cd.conv1d(lazy_x, w, b, padding=5)
    assert len(y.chunks[2]) > 1
    assert_close(y.compute(), functional.conv1d(x, w, b, padding=5), np.float64)
    dy = rng.standard_normal(y.shape)
    grads = dask.compute(
        *cd.conv1d_backward(da.from_array(dy, chunks=(1, 2, 3)), lazy_x, w, padding=5)
    )
    for got, want in zip(grads, functional.conv1d_backward(dy, x, w, padding=5), strict=True):
        assert_close(got, want, np.float64)
    # A transposed convolution whose input's first outputs fall in the cropped padding.
    w_t = rng.standard_normal((1, 2, 2))
    t = cd.conv_transpose1d(lazy_x, w_t, b, padding=3)
    assert_close(t.compute(), functional.conv_transpose1d(x, w_t, b, padding=3), np.float64)
    dt = rng.standard_normal(t.shape)
    lazy = cd.conv_transpose1d_backward(da.from_array(dt, chunks=2), lazy_x, w_t, padding=3)
    grads = dask.compute(*lazy)
    expected = functional.conv_transpose1d_backward(dt, x, w_t, padding=3)
    for got, want in zip(grads, expected, strict=True):
        assert_close(got, want, np.float64)


def test_same_padding_with_strides_for_both_layer_kinds():
    x = rng.standard_normal((2, 3, 23, 18))
    lazy_x = da.from_array(x, chunks=(1, 3, (7, 9, 7), (5, 13)))
    w = rng.standard_normal((4, 3, 4, 3))
    y = cd.conv2d(lazy_x, w, stride=(2, 3), padding="same")
    assert_close(y.compute(), functional.conv2d(x, w, stride=(2, 3), padding="same"), np.float64)
    w_t = rng.standard_normal((3, 2, 3, 4))
    t = cd.conv_transpose2d(lazy_x, w_t, stride=(2, 3), padding="same")
    expected = functional.conv_transpose2d(x, w_t, stride=(2, 3), padding="same")
    assert_close(t.compute(), expected, np.float64)
    dt = rng.standard_normal(t.shape)
    lazy = cd.conv_transpose2d_backward(dt, lazy_x, w_t, stride=(2, 3), padding="same")
    want = functional.conv_transpose2d_backward(dt, x, w_t, stride=(2, 3), padding="same")
    for got, wanted in zip(dask.compute(*lazy), want, strict=True):
        assert_close(got, wanted, np.float64)


def test_channels_are_rechunked_to_one_chunk():
    x = rng.standard_normal((2, 6, 9))
    w = rng.standard_normal((4, 3, 3))
    lazy_x = da.from_array(x, chunks=(1, 2, 5))
    y = cd.conv1d(lazy_x, w, groups=2, padding=1)
    assert y.chunks[1] == (4,)
    assert_close(y.compute(), functional.conv1d(x, w, groups=2, padding=1), np.float64)


def kernel_tasks(array) -> list[tuple]:
    """The tasks of the graph that call convt's forward kernels."""
    return [
        task
        for layer in array.dask.layers.values()
        for task in layer.values()
        if isinstance(task, tuple) and task[:1] == (cd._forward_task,)
    ]


def nodes_holding(array, value: np.ndarray) -> int:
    return len(
        {
            key
            for layer in array.dask.layers.values()
            for key, node in layer.items()
            if isinstance(node, np.ndarray) and node.shape == value.shape and np.all(node == value)
        }
    )


def test_a_batch_chunked_call_is_one_task_per_chunk_and_the_weight_one_node():
    x = da.from_array(rng.standard_normal((8, 3, 6, 6)), chunks=(2, 3, 6, 6))
    b = rng.standard_normal(4)
    for op, w in ((cd.conv2d, rng.standard_normal((4, 3, 3, 3))),
                  (cd.conv_transpose2d, rng.standard_normal((3, 4, 3, 3)))):  # fmt: skip
        y = op(x, w, b)
        assert len(kernel_tasks(y)) == 4
        assert all(task[1] is not None and len(task[1]) == 1 for task in kernel_tasks(y))
        assert nodes_holding(y, w) == 1, "the weight is one node of the graph"
        assert nodes_holding(y, b) == 1


def test_a_spatially_chunked_transposed_convolution_adds_each_overlap_once():
    y = rng.standard_normal((1, 2, 12))
    w = rng.standard_normal((2, 1, 4))
    lazy_y = da.from_array(y, chunks=(1, 2, 4))
    x = cd.conv_transpose1d(lazy_y, w, stride=2, padding=1)
    # Three contributions (one per input chunk), each computed once.
    assert len(kernel_tasks(x)) == 3
    assert x.chunks[2] == (8, 8, 8)
    assert_close(x.compute(), functional.conv_transpose1d(y, w, stride=2, padding=1), np.float64)


# ---------------------------------------------------------------------------------------------
# Gradient reductions


def test_weight_gradients_are_tree_sums_fixed_by_the_chunking():
    x = rng.standard_normal((8, 2, 12, 10)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((8, 3, 12, 10)).astype(np.float32)
    lazy_x = da.from_array(x, chunks=(2, 2, 6, 5))
    lazy_dy = da.from_array(dy, chunks=(2, 3, 6, 5))
    expected = functional.conv2d_backward(dy, x, w, padding=1)
    results = []
    for split_every in (2, 4, None):
        lazy = cd.conv2d_backward(lazy_dy, lazy_x, w, padding=1, split_every=split_every)
        for scheduler in ("threads", "sync", "threads"):
            results.append((split_every, dask.compute(*lazy, scheduler=scheduler)))
        for got, want in zip(results[-1][1], expected, strict=True):
            assert_close(got, want, np.float32)
    for split_every, grads in results:
        first = next(g for s, g in results if s == split_every)
        for got, again in zip(grads, first, strict=True):
            np.testing.assert_array_equal(got, again)
    # 16 partials two at a time: a tree of 8 + 4 + 2 additions of tuples, then grad_weight's
    # own of the last two; 16 at a time, that one alone.
    for split_every, tuples in ((2, 14), (16, 0)):
        lazy = cd.conv2d_backward(lazy_dy, lazy_x, w, padding=1, split_every=split_every)
        assert len(tasks_of(lazy[1], cd._add_partials)) == tuples
        assert len(tasks_of(lazy[1], cd._add_item)) == 1


def tasks_of(array, function) -> list[tuple]:
    """The tasks of an array's graph that call ``function``."""
    return [
        task
        for task in dict(array.dask).values()
        if isinstance(task, tuple) and task[:1] == (function,)
    ]


def computed_tasks(arrays, inputs) -> int:
    """The tasks a computation runs beyond its inputs' graphs, after dask's optimisation (as
    distributed would run them): kernel calls, halo cuts, sums, aliases; data nodes are not
    tasks."""
    from dask._task_spec import DataNode
    from dask.base import collections_to_expr

    graph = collections_to_expr(arrays, optimize_graph=True).optimize().__dask_graph__()
    given = {key for array in inputs for key in dict(array.dask)}
    return sum(
        1 for key, task in graph.items() if key not in given and not isinstance(task, DataNode)
    )


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "transposed"])
def test_a_batch_chunked_backward_is_two_tasks_per_chunk_and_one_reduction(transposed):
    x = da.from_array(rng.standard_normal((8, 3, 6, 6)), chunks=(1, 3, 6, 6))
    if transposed:
        op, w, size = cd.conv_transpose2d_backward, rng.standard_normal((3, 4, 3, 3)), 8
    else:
        op, w, size = cd.conv2d_backward, rng.standard_normal((4, 3, 3, 3)), 4
    dy = da.from_array(rng.standard_normal((8, 4, size, size)), chunks=(1, 4, size, size))
    grads = op(dy, x, w, split_every=4)
    # Per chunk one grad_input task (the chunk itself, not an item of a tuple) and one task
    # of partials; the partials added four at a time (2), then each gradient's sum of its
    # item of those (2), with no task taking items out of a tuple.
    grad_input, grad_weight, grad_bias = grads
    graph = dict(grad_input.dask)
    assert all(
        graph[key][:1] == (cd._grad_input_task,) for key in flatten(grad_input.__dask_keys__())
    )
    assert len(tasks_of(grad_weight, cd._parameter_task)) == 8
    assert computed_tasks(list(grads), [x, dy]) == 8 + 8 + 2 + 2
    assert nodes_holding(grad_weight, w) == 1, "the weight is one node of the graph"
    # The bias gradient comes with the chunks' partials, for a transposed convolution too.
    assert tasks_of(grad_bias, cd._parameter_task) == tasks_of(grad_weight, cd._parameter_task)
    expected = getattr(functional, op.__name__)(dy.compute(), x.compute(), w)
    for got, want in zip(dask.compute(*grads), expected, strict=True):
        assert_close(got, want, np.float64)


def test_a_transposed_bias_gradient_whose_windows_overlap_is_the_sum_of_grad_output():
    # Stride 1, kernel 3: each input chunk's window of grad_output overlaps its neighbours',
    # so the chunks cannot add up the bias gradient without counting the overlaps twice.
    y = rng.standard_normal((2, 3, 12))
    w = rng.standard_normal((3, 2, 3))
    dx = rng.standard_normal((2, 2, 14))
    lazy = cd.conv_transpose1d_backward(
        da.from_array(dx, chunks=(1, 2, 7)), da.from_array(y, chunks=(1, 3, 4)), w
    )
    assert not tasks_of(lazy[2], cd._parameter_task)
    for got, want in zip(
        dask.compute(*lazy), functional.conv_transpose1d_backward(dx, y, w), strict=True
    ):
        assert_close(got, want, np.float64)
    # Stride 3, kernel 3: the windows tile grad_output, and the chunks add the bias up.
    dx = rng.standard_normal((2, 2, 36))
    lazy = cd.conv_transpose1d_backward(
        da.from_array(dx, chunks=(1, 2, 5)), da.from_array(y, chunks=(1, 3, 4)), w, stride=3
    )
    assert len(tasks_of(lazy[2], cd._parameter_task)) == 6
    for got, want in zip(
        dask.compute(*lazy), functional.conv_transpose1d_backward(dx, y, w, stride=3), strict=True
    ):
        assert_close(got, want, np.float64)


def test_split_every_is_checked():
    x = da.from_array(rng.standard_normal((4, 1, 5)), chunks=(1, 1, 5))
    w = rng.standard_normal((1, 1, 3))
    dy = da.from_array(rng.standard_normal((4, 1, 3)), chunks=(1, 1, 3))
    with pytest.raises(ValueError, match=r"conv1d: split_every must be at least 2, got 1"):
        cd.conv1d_backward(dy, x, w, split_every=1)
    with pytest.raises(TypeError, match=r"conv1d: split_every must be an int, got 2.5"):
        cd.conv1d_backward(dy, x, w, split_every=2.5)


# ---------------------------------------------------------------------------------------------
# Arrays, dtypes, errors


def test_unbatched_input_and_numpy_input():
    x = rng.standard_normal((2, 7, 5))
    w = rng.standard_normal((3, 2, 3, 2))
    y = cd.conv2d(da.from_array(x, chunks=(2, 3, 5)), w, stride=(2, 1))
    assert y.shape == (3, 3, 4)
    assert_close(y.compute(), functional.conv2d(x, w, stride=(2, 1)), np.float64)
    assert_close(cd.conv2d(x, w).compute(), functional.conv2d(x, w), np.float64)
    dy = rng.standard_normal(y.shape)
    grads = dask.compute(*cd.conv2d_backward(dy, da.from_array(x, chunks=(2, 3, 5)), w, (2, 1)))
    for got, want in zip(grads, functional.conv2d_backward(dy, x, w, (2, 1)), strict=True):
        assert_close(got, want, np.float64)


@pytest.mark.parametrize(
    ("x_dtype", "w_dtype", "computed"),
    [
        (np.float32, np.float32, np.float32),
        (np.float32, np.float64, np.float64),
        (np.float16, np.float16, np.float32),
        (np.int64, np.float32, np.float64),
    ],
)
def test_arrays_are_brought_to_one_floating_dtype(x_dtype, w_dtype, computed):
    x = (4 * rng.standard_normal((2, 2, 9))).astype(x_dtype)
    w = rng.standard_normal((3, 2, 2)).astype(w_dtype)
    y = cd.conv1d(da.from_array(x, chunks=(1, 2, 4)), w, stride=2)
    assert y.dtype == computed
    assert_close(y.compute(), functional.conv1d(x, w, stride=2), computed)


def test_errors_name_the_argument():
    x = da.from_array(rng.standard_normal((2, 3, 8, 8)), chunks=(1, 3, 4, 4))
    w = rng.standard_normal((4, 3, 3, 3))
    with pytest.raises(ValueError, match="conv2d: stride"):
        cd.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="conv2d: input has 3 channels"):
        cd.conv2d(x, w[:, :2])
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding \(2\) must be smaller"):
        cd.conv_transpose2d(x, rng.standard_normal((3, 2, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(
        ValueError,
        match=r"conv2d: grad_output must have shape \(2, 4, 6, 6\), got \(2, 4, 5, 6\)",
    ):
        cd.conv2d_backward(da.zeros((2, 4, 5, 6)), x, w)
    with pytest.raises(ValueError, match="conv2d: output_mask must have 3 entries"):
        cd.conv2d_backward(da.zeros((2, 4, 6, 6)), x, w, output_mask=(True,))
    with pytest.raises(TypeError, match="conv2d: weight"):
        cd.conv2d(x, "weight")
    unknown = x[x[:, 0, 0, 0] > 0]
    with pytest.raises(ValueError, match="chunks of unknown size"):
        cd.conv2d(unknown, w)


# ---------------------------------------------------------------------------------------------
# Padding modes: the padded array's convolution and, for its adjoint, the ring folded back

MODE_CASES = [
    # dims, stride, padding, dilation, input chunks (spatial), grad chunks (spatial)
    (1, 1, 2, 1, ((4, 3, 6),), ((5, 8),)),
    (1, 3, ((3, 1),), 2, ((2, 2, 9),), ((1, 4),)),
    (2, 1, 1, 1, ((3, 6), (2, 3, 3)), ((4, 5), (8,))),
    (2, 2, ((2, 1), (0, 2)), 1, ((5, 4), (3, 5)), ((2, 3), (4, 2))),
    (2, (2, 1), "same", (1, 2), ((9,), (3, 3, 2)), ((2, 3), (8,))),
    (3, 2, ((1, 2), (2, 0), (1, 1)), 1, ((3, 3), (6,), (2, 4)), ((1, 3), (4,), (2, 2))),
]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
@pytest.mark.parametrize("case", MODE_CASES, ids=[f"{c[0]}d-{i}" for i, c in enumerate(MODE_CASES)])
def test_padding_modes_equal_functional_forward_and_backward(case, transposed, mode):
    dims, stride, padding, dilation, x_chunks, dy_chunks = case
    sizes = tuple(sum(c) for c in x_chunks)
    x = rng.standard_normal((2, 3, *sizes))
    w = rng.standard_normal((3, 2, *(3,) * dims) if transposed else (2, 3, *(3,) * dims))
    b = rng.standard_normal(2)
    name = f"conv_transpose{dims}d" if transposed else f"conv{dims}d"
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "padding_mode": mode}
    y = getattr(functional, name)(x, w, b, **kwargs)
    lazy_x = da.from_array(x, chunks=(1, 3, *x_chunks))
    lazy_y = getattr(cd, name)(lazy_x, w, b, **kwargs)
    assert_close(lazy_y.compute(), y, np.float64, "forward")
    if not transposed:
        assert len(lazy_y.chunks[2]) > 1 or len(x_chunks[0]) == 1, "the spatial chunks stay"

    dy = rng.standard_normal(y.shape)
    spread = tuple(c if sum(c) == s else (s,) for c, s in zip(dy_chunks, y.shape[2:], strict=True))
    lazy_dy = da.from_array(dy, chunks=(1, 2, *spread))
    lazy = getattr(cd, f"{name}_backward")(lazy_dy, lazy_x, w, **kwargs)
    expected = getattr(functional, f"{name}_backward")(dy, x, w, **kwargs)
    for what, got, want in zip(
        ("grad_input", "grad_weight", "grad_bias"), dask.compute(*lazy), expected, strict=True
    ):
        assert_close(got, want, np.float64, what)
    assert lazy[0].chunks[2:] == lazy_x.chunks[2:], "grad_input is chunked like the input"


@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_padding_modes_unbatched_and_masked(mode):
    x = rng.standard_normal((3, 11, 7))
    w = rng.standard_normal((3, 2, 3, 3))
    kwargs = {"stride": 2, "padding": 1, "padding_mode": mode}
    lazy_x = da.from_array(x, chunks=(3, 4, 4))
    y = cd.conv_transpose2d(lazy_x, w, **kwargs)
    expected = functional.conv_transpose2d(x, w, **kwargs)
    assert_close(y.compute(), expected, np.float64)
    dy = rng.standard_normal(expected.shape)
    grad_input, grad_weight, grad_bias = cd.conv_transpose2d_backward(
        dy, lazy_x, w, output_mask=(True, False, True), **kwargs
    )
    want = functional.conv_transpose2d_backward(dy, x, w, output_mask=(True, False, True), **kwargs)
    assert grad_weight is None
    assert_close(grad_input.compute(), want[0], np.float64)
    assert_close(grad_bias.compute(), want[2], np.float64)


def test_padding_modes_are_checked_as_functional_checks_them():
    x = da.from_array(rng.standard_normal((1, 2, 4, 4)), chunks=(1, 2, 2, 2))
    w = rng.standard_normal((2, 2, 3, 3))
    with pytest.raises(ValueError, match="conv2d: padding_mode must be"):
        cd.conv2d(x, w, padding=1, padding_mode="wrap")
    with pytest.raises(ValueError, match="reflect"):
        cd.conv2d(x, w, padding=4, padding_mode="reflect")
    with pytest.raises(TypeError, match="padding_mode must be a str"):
        cd.conv_transpose2d_backward(da.zeros((1, 2, 4, 4)), x, w, padding=1, padding_mode=1)
