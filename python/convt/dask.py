"""Convolution and transposed convolution over Dask arrays: the functions of
:mod:`convt.functional`, lazy, chunked along the batch, along spatial axes, or both.

Each function takes a ``dask.array.Array`` input shaped ``(N, C, *spatial)`` or, unbatched,
``(C, *spatial)`` (anything else is wrapped by ``dask.array.asarray``), a NumPy weight and bias,
and the arguments of its :mod:`convt.functional` namesake; it returns a lazy ``dask.array.Array``
equal to that function's result on the whole array. Nothing runs until it is computed, on
whichever scheduler is active: threads, processes, or a ``distributed.Client`` of a cluster.

- Chunked along the batch, a call is one task per batch chunk. The weight and bias are one node
  of the graph, sent to each worker once, not once per task.
- Chunked along spatial axes, each output chunk is computed from exactly the input its outputs
  read (their receptive field, which the geometry gives: the kernel's extent with dilation,
  stride aligned), padded only at the array's own edges. Output chunks follow the input's: each
  output goes with the input chunk holding the centre of what it reads, so a stride-1 "same"
  convolution keeps its chunks and a stride-2 one halves them. Any chunking works, whatever the
  stride. A transposed convolution computes each input chunk's contribution once and adds the
  overlapping parts of neighbouring chunks' contributions.
- Channels are never split: an input chunked along its channel axis is rechunked to one chunk.
- A ``padding_mode`` other than 'zeros' pads the input with ``dask.array.pad`` and convolves
  that with no padding; a transposed convolution, its adjoint, folds its output's ring back.

The backward functions return ``(grad_input, grad_weight, grad_bias)``, all lazy: ``grad_input``
chunked like the input, ``grad_weight`` and ``grad_bias`` the sums of per-chunk partial gradients
added up as one tree (``split_every`` partials at a time, by default dask's ``split_every``
setting or 4) in the chunks' order, so the same chunking always gives the same bits. A chunk is
two tasks, its grad_input and its partials. Compute them together (``dask.compute(*grads)``) to
share their tasks.

This module needs the ``dask`` extra: ``pip install "convt[dask]"``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from functools import partial
from itertools import product
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from . import _core, _operations, functional
from ._operations import Operation
from .functional import IntOrTuple, Padding

__all__ = [
    "backward",
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
]

Gradients = tuple[da.Array | None, da.Array | None, da.Array | None]

# The partials each task of a gradient's reduction adds, unless said otherwise.
_SPLIT_EVERY = 4


# ---------------------------------------------------------------------------------------------
# Planning: which part of which chunk each task reads. Sizes come from the geometry; this only
# lays its ranges over the chunks.


def _bounds(sizes: Sequence[int]) -> list[int]:
    """The boundaries of chunks of these sizes: 0, then each chunk's end."""
    bounds = [0]
    for size in sizes:
        bounds.append(bounds[-1] + size)
    return bounds


def _split(bounds: Sequence[int], split: Callable[[int], int]) -> list[int]:
    """Boundaries mapped to the other side of a convolution, empty chunks dropped."""
    mapped = [split(bound) for bound in bounds]
    return [bound for i, bound in enumerate(mapped) if i == 0 or bound != mapped[i - 1]]


def _pieces(bounds: Sequence[int], begin: int, end: int) -> list[tuple[int, slice, slice]]:
    """``(chunk, slice within the chunk, slice within [begin, end))`` of each chunk the range
    [begin, end) overlaps."""
    pieces = []
    for chunk in range(len(bounds) - 1):
        low, high = max(begin, bounds[chunk]), min(end, bounds[chunk + 1])
        if low < high:
            pieces.append(
                (
                    chunk,
                    slice(low - bounds[chunk], high - bounds[chunk]),
                    slice(low - begin, high - begin),
                )
            )
    return pieces


class _Plan:
    """How one call splits along its spatial axes: the ranges of y (the response side) its
    tasks compute or read, and the window of x (the image side) each range reads."""

    def __init__(self, geometry: Any, y_bounds: Sequence[Sequence[int]]) -> None:
        self.geometry = geometry
        self.y_bounds = [list(bounds) for bounds in y_bounds]
        # Per axis and y chunk: (begin, end, padding_before, padding_after, output_padding).
        self.windows = [
            [geometry.receptive_field(d, bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
            for d, bounds in enumerate(self.y_bounds)
        ]

    def y_chunks(self) -> list[tuple[int, ...]]:
        return [tuple(np.diff(bounds).tolist()) for bounds in self.y_bounds]

    def blocks(self) -> list[tuple[int, ...]]:
        """The index of every y chunk along the spatial axes, in row-major order."""
        return list(product(*(range(len(windows)) for windows in self.windows)))

    def window(self, block: tuple[int, ...]) -> list[tuple[int, int, int, int, int]]:
        return [self.windows[d][i] for d, i in enumerate(block)]

    def pads(self, block: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
        """The padding before and after, and the output_padding, of the task of this block."""
        window = self.window(block)
        return tuple(tuple(w[k] for w in window) for k in (2, 3, 4))

    def empty(self, block: tuple[int, ...]) -> bool:
        """Whether the outputs of this block read padding only."""
        return any(w[0] == w[1] for w in self.window(block))

    def y_shape(self, block: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(self.y_bounds[d][i + 1] - self.y_bounds[d][i] for d, i in enumerate(block))


class _Halos:
    """The halos cut from the chunks of one array: one task per chunk cuts every piece of it that
    its neighbours' windows read, where the chunk is, so that the pieces travel to the tasks
    that read them and the chunks themselves do not."""

    def __init__(self, name: str, source: str) -> None:
        self.name, self.source = name, source
        self.pieces: dict[tuple, list[tuple[slice, ...]]] = {}

    def piece(self, index: tuple[int, ...], where: tuple[slice, ...]) -> tuple[tuple, int]:
        """The key of the task that cuts chunk ``index``'s pieces, and which of them this is."""
        wanted = self.pieces.setdefault(index, [])
        if where not in wanted:
            wanted.append(where)
        return (self.name, *index), wanted.index(where)

    def layer(self) -> tuple[str, dict, set]:
        tasks = {
            (self.name, *index): (_cut, (self.source, *index), wanted)
            for index, wanted in self.pieces.items()
        }
        return self.name, tasks, {self.source}


def _read(
    name: str,
    batch: int,
    x_bounds: Sequence[Sequence[int]],
    window: Sequence[tuple],
    halos: _Halos,
) -> tuple[list, list] | None:
    """The keys of the chunks of x (array ``name``, batch chunk ``batch``) or of their halos that
    a window overlaps, and for each what to take from it and where that goes in the window;
    None for an empty window."""
    per_axis = [_pieces(bounds, w[0], w[1]) for bounds, w in zip(x_bounds, window, strict=True)]
    if any(not pieces for pieces in per_axis):
        return None
    everything = (slice(None), slice(None))
    keys: list[tuple] = []
    placements: list[tuple] = []
    for combination in product(*per_axis):
        index = (batch, 0, *(piece[0] for piece in combination))
        where = (*everything, *(piece[1] for piece in combination))
        target = (*everything, *(piece[2] for piece in combination))
        whole = all(
            piece[1].stop - piece[1].start == bounds[piece[0] + 1] - bounds[piece[0]]
            for piece, bounds in zip(combination, x_bounds, strict=True)
        )
        if whole:
            keys.append((name, *index))
            placements.append((where, target))
        else:
            key, which = halos.piece(index, where)
            keys.append(key)
            placements.append((which, target))
    return keys, placements


def _key(*parts: Any) -> tuple:
    """A task key from its parts (a function, so that ``d[_key(name, *index)]`` reads as a
    subscript on every Python ``convt`` supports)."""
    return parts


def _window_shape(window: Sequence[tuple]) -> tuple[int, ...]:
    return tuple(w[1] - w[0] for w in window)


# ---------------------------------------------------------------------------------------------
# Tasks: what runs on a worker. Plain functions of arrays and tuples, so that any scheduler can
# ship them.


def _cut(chunk: np.ndarray, pieces: list[tuple[slice, ...]]) -> tuple[np.ndarray, ...]:
    """Halos: copies of parts of a chunk, so that the chunk itself can be freed."""
    return tuple(chunk[where].copy() for where in pieces)


def _assemble(parts: list, placements: list, spatial: tuple[int, ...]) -> np.ndarray:
    """One window of an array, from its chunks and halos: each placement says what to take
    from its part (slices of a chunk, or which of a tuple of halos) and where it goes."""
    first = parts[0][placements[0][0]]
    if len(parts) == 1:
        return first
    out = np.empty(first.shape[:2] + spatial, dtype=first.dtype)
    for part, (source, target) in zip(parts, placements, strict=True):
        out[target] = part[source]
    return out


def _local_geometry(spec: tuple, input_shape: tuple[int, ...], pads: tuple) -> Any:
    """The geometry of one task's call: the whole call's, with the task's own padding."""
    transposed, dims, weight_shape, stride, dilation, groups = spec
    before, after, output_padding = pads
    if transposed:
        return _core.conv_transpose_geometry(
            dims, input_shape, weight_shape, stride, before, after, "explicit",
            output_padding, groups, dilation, ()
        )  # fmt: skip
    return _core.conv_geometry(
        dims, input_shape, weight_shape, stride, before, after, "explicit", dilation, groups
    )


def _forward_task(parts, placements, spatial, weight, bias, spec, pads, empty_shape):
    """One chunk of a forward call: of a convolution's output, from the window of the input
    its outputs read; of a transposed convolution, an input chunk's contribution to its
    window of the output."""
    if parts is None:  # outputs that read padding only: the bias alone
        out = np.zeros(empty_shape, dtype=weight.dtype)
        if bias is not None:
            out += bias.reshape((-1,) + (1,) * (len(empty_shape) - 2))
        return out
    input, weight, bias = functional.floating_arrays(
        "convt.dask", input=_assemble(parts, placements, spatial), weight=weight, bias=bias
    )
    return _core.forward(_local_geometry(spec, input.shape, pads), input, weight, bias)


def _grad_input_task(
    grad_output, grad_placements, grad_spatial, input_shape, weight, spec, pads, empty_shape
):
    """The input gradient of one chunk: for a convolution, a grad_output chunk's share of the
    window of the input it read; for a transposed convolution, an input chunk's whole gradient,
    from the window of grad_output it wrote."""
    if grad_output is None:  # the window is padding only
        return np.zeros(empty_shape, weight.dtype)
    grad_output, weight = functional.floating_arrays(
        "convt.dask",
        grad_output=_assemble(grad_output, grad_placements, grad_spatial),
        weight=weight,
    )
    geometry = _local_geometry(spec, input_shape, pads)
    # The kernel reads no input for grad_input alone.
    unread = np.empty(0, weight.dtype)
    return _core.backward(geometry, grad_output, unread, weight, True, False, False)[0]


def _parameter_task(
    grad_output, grad_placements, grad_spatial, input, input_placements, input_spatial,
    weight, spec, pads, need, channels,
):  # fmt: skip
    """One chunk's partial gradients of the weight and bias, ``(grad_weight, grad_bias)``
    (None where not needed): for a convolution, of a grad_output chunk and the window of the
    input it read; for a transposed convolution, of an input chunk and the window of
    grad_output it wrote, whose bias partial is asked for only where those windows tile
    grad_output."""
    transposed = spec[0]
    need_weight, need_bias = need
    if (input if not transposed else grad_output) is None:  # the window is padding only
        grad_weight = np.zeros_like(weight) if need_weight else None
        grad_bias = None
        if need_bias and transposed:
            grad_bias = np.zeros(channels, weight.dtype)
        elif need_bias:
            dy = _assemble(grad_output, grad_placements, grad_spatial)
            grad_bias = dy.sum(axis=(0, *range(2, dy.ndim)), dtype=weight.dtype)
        return grad_weight, grad_bias
    grad_output, input, weight = functional.floating_arrays(
        "convt.dask",
        grad_output=_assemble(grad_output, grad_placements, grad_spatial),
        input=_assemble(input, input_placements, input_spatial),
        weight=weight,
    )
    geometry = _local_geometry(spec, input.shape, pads)
    return _core.backward(geometry, grad_output, input, weight, False, need_weight, need_bias)[1:]


def _add_up(parts, placements, shape, dtype, bias):
    """One chunk of an output that several chunks' contributions overlap: their sum (and the
    bias), added in a fixed order."""
    out = np.zeros(shape, dtype=dtype)
    if bias is not None:
        out += bias.reshape((-1,) + (1,) * (len(shape) - 2))
    for part, (source, target) in zip(parts, placements, strict=True):
        out[target] += part[source]
    return out


def _add_item(parts: list, index: int) -> np.ndarray:
    """Item ``index`` of tuples of partial sums, added up in the order given."""
    total = np.array(parts[0][index], copy=True)
    for part in parts[1:]:
        total += part[index]
    return total


def _add_partials(parts: list) -> tuple:
    """Tuples of partial sums added item by item, in the order given (None stays None)."""
    return tuple(
        None if item is None else _add_item(parts, index) for index, item in enumerate(parts[0])
    )


# ---------------------------------------------------------------------------------------------
# Graph building


def _prepare(op: str, input: Any, weight: Any, bias: Any, dims: int):
    """The input as a batched dask array of the computed dtype with its channels in one chunk,
    the weight and bias as NumPy arrays of that dtype, and whether the input had no batch."""
    array = input if isinstance(input, da.Array) else da.asarray(input)
    if any(np.isnan(size) for sizes in array.chunks for size in sizes):
        raise ValueError(
            f"{op}: input has chunks of unknown size; call its compute_chunk_sizes() first"
        )
    empty = np.empty((0,) * array.ndim, dtype=array.dtype)
    sample, weight, bias = functional.floating_arrays(op, input=empty, weight=weight, bias=bias)
    assert sample is not None  # an input was passed, so one comes back
    if array.dtype != sample.dtype:
        array = array.astype(sample.dtype)
    unbatched = array.ndim == dims + 1
    if unbatched:
        array = array[None]
    if array.ndim == dims + 2 and len(array.chunks[1]) > 1:
        array = array.rechunk({1: -1})
    return array, weight, bias, unbatched


def _grad_output(op: str, grad_output: Any, like: da.Array, expected: tuple, unbatched: bool):
    """grad_output as a batched dask array with ``like``'s batch chunks and one channel chunk."""
    array = grad_output if isinstance(grad_output, da.Array) else da.asarray(grad_output)
    if unbatched:
        array = array[None]
    if tuple(array.shape) != tuple(expected):
        shown, got = tuple(expected), tuple(array.shape)
        if unbatched:
            shown, got = shown[1:], got[1:]
        raise ValueError(f"{op}: grad_output must have shape {shown}, got {got}")
    if array.dtype != like.dtype:
        array = array.astype(like.dtype)
    if array.chunks[0] != like.chunks[0] or len(array.chunks[1]) > 1:
        array = array.rechunk({0: like.chunks[0], 1: -1})
    return array


def _literal(prefix: str, value: np.ndarray | None) -> tuple[str | None, dict]:
    """A key for a NumPy array in the graph: one node, so each worker receives it once."""
    if value is None:
        return None, {}
    key = f"{prefix}-{tokenize(value)}"
    return key, {key: value}


def _spec(geometry: Any, weight: np.ndarray) -> tuple:
    return (
        geometry.transposed,
        geometry.dims,
        tuple(weight.shape),
        geometry.stride,
        geometry.dilation,
        geometry.groups,
    )


def _token(*parts: Any) -> str:
    return tokenize(*parts)


def _graph(collections: Sequence[da.Array], layers: Sequence[tuple[str, dict, set]]):
    """The graph of dask collections followed by layers of our own: ``(name, tasks, names of
    the layers they read)``."""
    base = HighLevelGraph.merge(*(c.__dask_graph__() for c in collections))
    all_layers: dict[str, Any] = dict(base.layers)
    dependencies = {name: set(on) for name, on in base.dependencies.items()}
    for name, tasks, on in layers:
        all_layers[name] = tasks
        dependencies[name] = set(on)
    return HighLevelGraph(all_layers, dependencies)


def _array(graph: HighLevelGraph, name: str, chunks: tuple, dtype: np.dtype) -> da.Array:
    return da.Array(graph, name, chunks, meta=np.empty((0,) * len(chunks), dtype=dtype))


def _reach(plan: _Plan, x_bounds: Sequence[Sequence[int]]) -> list[list[list[int]]]:
    """Per axis and chunk of x: the y chunks whose windows reach it."""
    return [
        [
            [i for i, w in enumerate(windows) if w[0] < bounds[c + 1] and w[1] > bounds[c]]
            for c in range(len(bounds) - 1)
        ]
        for windows, bounds in zip(plan.windows, x_bounds, strict=True)
    ]


def _exact(plan: _Plan, x_bounds: Sequence[Sequence[int]]) -> dict[tuple, tuple]:
    """The chunks of x that the window of one y block covers exactly, and nothing else
    reaches, each with that block."""
    reach = _reach(plan, x_bounds)
    exact = {}
    for chunk in product(*(range(len(bounds) - 1) for bounds in x_bounds)):
        sources = [reach[d][c] for d, c in enumerate(chunk)]
        if all(
            len(s) == 1 and plan.windows[d][s[0]][:2] == (x_bounds[d][c], x_bounds[d][c + 1])
            for d, (s, c) in enumerate(zip(sources, chunk, strict=True))
        ):
            exact[chunk] = tuple(s[0] for s in sources)
    return exact


def _tiled(plan: _Plan, x_bounds: Sequence[Sequence[int]]) -> bool:
    """Whether the windows of the y chunks tile x: along each axis, one after the other from
    its start to its end, so that every element of x is in exactly one window."""
    for windows, bounds in zip(plan.windows, x_bounds, strict=True):
        end = 0
        for begin, stop, *_ in windows:
            if begin == stop:
                continue
            if begin != end:
                return False
            end = stop
        if end != bounds[-1]:
            return False
    return True


def _sum_layer(
    name: str,
    contributions: dict[tuple, tuple],
    parts: dict[tuple, Any],
    plan: _Plan,
    x_bounds: Sequence[Sequence[int]],
    batch_chunks: tuple[int, ...],
    channels: int,
    dtype: np.dtype,
    bias_key: str | None,
) -> dict:
    """Tasks adding up overlapping contributions into the chunks of x that ``x_bounds`` give.

    ``contributions`` maps ``(batch chunk, *y block)`` to the key of that block's contribution
    to its window of x (blocks whose window is empty are absent), and ``parts`` holds their
    tasks. A chunk of x that one contribution covers exactly (:func:`_exact`) is that
    contribution's task itself, moved out of ``parts`` under the chunk's key, so that it is one
    task and not two; it must then hold the bias."""
    reach = _reach(plan, x_bounds)
    exact = _exact(plan, x_bounds)
    everything = (slice(None), slice(None))
    layer: dict = {}
    for chunk in product(*(range(len(bounds) - 1) for bounds in x_bounds)):
        if chunk in exact:
            for n in range(len(batch_chunks)):
                layer[_key(name, n, 0, *chunk)] = parts.pop(contributions[_key(n, *exact[chunk])])
            continue
        sources = [reach[d][c] for d, c in enumerate(chunk)]
        ranges = [(x_bounds[d][c], x_bounds[d][c + 1]) for d, c in enumerate(chunk)]
        for n, batch in enumerate(batch_chunks):
            keys, placements = [], []
            for block in product(*sources):
                if (n, *block) not in contributions:
                    continue
                source, target = [], []
                for w, (begin, end) in zip(plan.window(block), ranges, strict=True):
                    low, high = max(w[0], begin), min(w[1], end)
                    source.append(slice(low - w[0], high - w[0]))
                    target.append(slice(low - begin, high - begin))
                keys.append(contributions[_key(n, *block)])
                placements.append(((*everything, *source), (*everything, *target)))
            shape = (batch, channels, *(end - begin for begin, end in ranges))
            layer[_key(name, n, 0, *chunk)] = (_add_up, keys, placements, shape, dtype, bias_key)
    return layer


def _chunks(bounds: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    return [tuple(np.diff(b).tolist()) for b in bounds]


# A padding mode with values is the convolution, with no padding, of the padded array (dask's
# pad, whose 'reflect', 'edge' and 'wrap' are PyTorch's 'reflect', 'replicate' and 'circular');
# its adjoint folds the padded grid's ring back onto the array.
_DASK_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad(array: da.Array, geometry: Any) -> da.Array:
    """``array`` with the ring that the geometry's padding mode puts around it."""
    pairs = [(0, 0), (0, 0), *zip(geometry.padding_before, geometry.padding_after, strict=True)]
    return da.pad(array, pairs, mode=_DASK_MODES[geometry.padding_mode])


def _fold(padded: da.Array, geometry: Any, chunks: tuple | None = None) -> da.Array:
    """The adjoint of :func:`_pad`: each ring cell added onto the cell it was read from. The
    result has ``chunks``, or by default the padded array's chunks without the ring."""
    mode = geometry.padding_mode
    pads = list(zip(geometry.padding_before, geometry.padding_after, strict=True))
    if chunks is None:
        inner = [slice(b, size - a) for (b, a), size in zip(pads, padded.shape[2:], strict=True)]
        where = (slice(None), slice(None), *inner)
        chunks = padded[where].chunks
    out = padded
    for axis, (before, after) in enumerate(pads, start=2):
        size = out.shape[axis] - before - after

        def take(begin: int, end: int, array: da.Array = out, axis: int = axis) -> da.Array:
            return array[(slice(None),) * axis + (slice(begin, end),)]

        # (the first cell a ring lands on, its values in the order they land)
        rings: list[tuple[int, da.Array]] = []
        if before:
            ring = take(0, before)
            if mode == "circular":
                rings.append((size - before, ring))
            elif mode == "replicate":
                rings.append((0, ring.sum(axis=axis, keepdims=True)))
            else:
                rings.append((1, da.flip(ring, axis)))
        if after:
            ring = take(before + size, before + size + after)
            if mode == "circular":
                rings.append((0, ring))
            elif mode == "replicate":
                rings.append((size - 1, ring.sum(axis=axis, keepdims=True)))
            else:
                rings.append((size - 1 - after, da.flip(ring, axis)))
        core = take(before, before + size)
        for first, ring in rings:
            widths = [(0, 0)] * out.ndim
            widths[axis] = (first, size - first - ring.shape[axis])
            core = core + da.pad(ring, widths, mode="constant")
        out = core
    return out.rechunk(chunks)


def _unpadded(geometry: Any, shape: tuple[int, ...], weight: np.ndarray) -> Any:
    """The geometry of the same call on the padded grid, with no padding of its own."""
    zeros = (0,) * geometry.dims
    if geometry.transposed:
        return _core.conv_transpose_geometry(
            geometry.dims, shape, weight.shape, geometry.stride, zeros, zeros, "explicit",
            geometry.output_padding, geometry.groups, geometry.dilation, ()
        )  # fmt: skip
    return _core.conv_geometry(
        geometry.dims, shape, weight.shape, geometry.stride, zeros, zeros, "explicit",
        geometry.dilation, geometry.groups,
    )  # fmt: skip


def _forward_with_mode(geometry: Any, x: da.Array, weight, bias, unbatched: bool) -> da.Array:
    """A forward call: with a padding mode that holds values, the convolution of the padded
    input, or the fold of the transposed convolution's padded output (its bias added once,
    after the fold)."""
    if geometry.padding_mode == "zeros":
        return _forward(geometry, x, weight, bias, unbatched)
    if not geometry.transposed:
        padded = _pad(x, geometry)
        unpadded = _unpadded(geometry, padded.shape, weight)
        return _forward(unpadded, padded, weight, bias, unbatched)
    grid = _forward(_unpadded(geometry, x.shape, weight), x, weight, None, False)
    result = _fold(grid, geometry)
    if bias is not None:
        result = result + bias.reshape((-1,) + (1,) * geometry.dims)
    return result[0] if unbatched else result


def _backward_with_mode(
    geometry: Any, grad_output: da.Array, input: da.Array, weight, unbatched: bool,
    output_mask: Sequence[bool], split_every: Any,
) -> Gradients:  # fmt: skip
    """The gradients of a call: with a padding mode that holds values, through the padded
    grid, a convolution's input gradient folded and a transposed convolution's grad_output
    padded."""
    if geometry.padding_mode == "zeros":
        return _backward(geometry, grad_output, input, weight, unbatched, output_mask, split_every)
    need = tuple(bool(m) for m in output_mask)
    if len(need) != 3:
        raise ValueError(f"{geometry.name}: output_mask must have 3 entries, got {len(need)}")
    if not geometry.transposed:
        padded = _pad(input, geometry)
        unpadded = _unpadded(geometry, padded.shape, weight)
        grad_padded, grad_weight, grad_bias = _backward(
            unpadded, grad_output, padded, weight, False, need, split_every
        )
        grad_input = None if grad_padded is None else _fold(grad_padded, geometry, input.chunks)
    else:
        unpadded = _unpadded(geometry, input.shape, weight)
        padded = _pad(grad_output, geometry).rechunk({0: input.chunks[0]})
        grad_input, grad_weight, _ = _backward(
            unpadded, padded, input, weight, False, (*need[:2], False), split_every
        )
        grad_bias = None
        if need[2]:
            axes = (0, *range(2, grad_output.ndim))
            grad_bias = grad_output.sum(axis=axes, split_every=split_every, dtype=weight.dtype)
    if unbatched and grad_input is not None:
        grad_input = grad_input[0]
    return grad_input, grad_weight, grad_bias


def _forward(geometry: Any, x: da.Array, weight, bias, unbatched: bool) -> da.Array:
    op = geometry.name
    dims = geometry.dims
    dtype = weight.dtype
    weight_key, weight_layer = _literal("convt-weight", weight)
    bias_key, bias_layer = _literal("convt-bias", bias)
    spec = _spec(geometry, weight)
    pads = (geometry.padding_before, geometry.padding_after, geometry.output_padding)
    token = _token(op, x.name, weight_key, bias_key, spec, pads)
    name = f"{op}-{token}"
    in_bounds = [_bounds(sizes) for sizes in x.chunks[2:]]
    batch_chunks = x.chunks[0]
    channels = geometry.output_shape[1]

    if not geometry.transposed:
        # Each chunk of the output from the window of the input its outputs read.
        plan = _Plan(
            geometry,
            [_split(b, partial(geometry.y_split, d)) for d, b in enumerate(in_bounds)],
        )
        layer = {**weight_layer, **bias_layer}
        halos = _Halos(f"{op}-halo-{token}", x.name)
        for n, block in product(range(len(batch_chunks)), plan.blocks()):
            window = plan.window(block)
            read = _read(x.name, n, in_bounds, window, halos)
            parts, placements = read if read is not None else (None, None)
            layer[_key(name, n, 0, *block)] = (
                _forward_task, parts, placements, _window_shape(window), weight_key, bias_key,
                spec, plan.pads(block), (batch_chunks[n], channels, *plan.y_shape(block)),
            )  # fmt: skip
        graph = _graph([x], [halos.layer(), (name, layer, {x.name, halos.name})])
        chunks = (batch_chunks, (channels,), *plan.y_chunks())
    else:
        # Each input chunk's contribution to its window of the output, then each chunk of the
        # output as the sum of the contributions that reach it.
        plan = _Plan(geometry, in_bounds)
        x_bounds = [_split(b, partial(geometry.x_split, d)) for d, b in enumerate(in_bounds)]
        part_name = f"{op}-part-{token}"
        contributions = {
            (n, *block): (part_name, n, 0, *block)
            for n, block in product(range(len(batch_chunks)), plan.blocks())
            if not plan.empty(block)
        }
        exact = set(_exact(plan, x_bounds).values())
        whole = [((slice(None),) * (dims + 2),) * 2]
        part_layer = {**weight_layer, **bias_layer}
        for (n, *rest), key in contributions.items():
            block = tuple(rest)
            part_layer[key] = (
                _forward_task, [(x.name, n, 0, *block)], whole, plan.y_shape(block), weight_key,
                bias_key if block in exact else None, spec, plan.pads(block), None,
            )  # fmt: skip
        layer = _sum_layer(
            name, contributions, part_layer, plan, x_bounds, batch_chunks, channels, dtype, bias_key
        )
        graph = _graph([x], [(part_name, part_layer, {x.name}), (name, layer, {x.name, part_name})])
        chunks = (batch_chunks, (channels,), *_chunks(x_bounds))
    result = _array(graph, name, chunks, dtype)
    return result[0] if unbatched else result


def _split_every(op: str, split_every: Any) -> int:
    """The partials each task of a reduction adds: ``split_every``, or by default dask's
    ``split_every`` setting or 4."""
    if split_every is None:
        split_every = dask.config.get("split_every", None) or _SPLIT_EVERY
    if isinstance(split_every, bool) or not isinstance(split_every, int | np.integer):
        raise TypeError(f"{op}: split_every must be an int, got {split_every!r}")
    if split_every < 2:
        raise ValueError(f"{op}: split_every must be at least 2, got {split_every}")
    return int(split_every)


def _tree(name: str, leaves: Sequence[tuple], split_every: int) -> tuple[dict, list[tuple]]:
    """Tasks adding up the tuples of partial sums at ``leaves`` item by item, ``split_every``
    at a time, level by level, always in the leaves' order, so that the same leaves give the
    same bits, until ``split_every`` or fewer remain: the tasks and the keys of those."""
    tasks: dict = {}
    keys = list(leaves)
    level = 0
    while len(keys) > split_every:
        groups = [keys[i : i + split_every] for i in range(0, len(keys), split_every)]
        keys = []
        for i, group in enumerate(groups):
            tasks[_key(name, level, i)] = (_add_partials, group)
            keys.append(_key(name, level, i))
        level += 1
    return tasks, keys


def _totals(
    collections: Sequence[da.Array],
    layers: Sequence[tuple[str, dict, set]],
    name: str,
    leaves: Sequence[tuple],
    wanted: dict[int, tuple[str, tuple[int, ...], np.dtype]],
    split_every: int,
) -> dict[int, da.Array]:
    """The sums over ``leaves`` (keys of tuples of partial sums) of the items ``wanted`` gives
    (as the name, shape and dtype of each sum's array): one tree for all of them, whose last
    level each array adds up its item of. That last addition is the array's own task, rather
    than a total of tuples and a task taking the item out of it: one task fewer, and one
    exchange with the scheduler fewer between the last partial and the result."""
    tasks, last = _tree(name, leaves, split_every)
    on = {layer[0] for layer in layers}
    tree = [(name, tasks, on)] if tasks else []
    arrays = {}
    for index, (label, shape, dtype) in wanted.items():
        key = _key(label, *(0,) * len(shape))
        layer = (label, {key: (_add_item, last, index)}, {name} if tasks else on)
        graph = _graph(collections, [*layers, *tree, layer])
        arrays[index] = _array(graph, label, tuple((size,) for size in shape), dtype)
    return arrays


def _backward(
    geometry: Any,
    grad_output: da.Array,
    input: da.Array,
    weight: np.ndarray,
    unbatched: bool,
    output_mask: Sequence[bool],
    split_every: Any,
) -> Gradients:
    op = geometry.name
    need = tuple(bool(m) for m in output_mask)
    if len(need) != 3:
        raise ValueError(f"{op}: output_mask must have 3 entries, got {len(need)}")
    need_input, need_weight, need_bias = need
    split_every = _split_every(op, split_every)
    transposed = geometry.transposed
    dims = geometry.dims
    dtype = weight.dtype
    weight_key, weight_layer = _literal("convt-weight", weight)
    spec = _spec(geometry, weight)
    pads = (geometry.padding_before, geometry.padding_after, geometry.output_padding)
    token = _token(op, grad_output.name, input.name, weight_key, spec, pads, need, split_every)
    batch_chunks = input.chunks[0]
    channels = geometry.output_shape[1]
    # Tasks go by the chunks of the y side (grad_output's for a convolution, the input's for a
    # transposed one) and read windows of the x side, the other array. A chunk's grad_input
    # and its parameters' partials are two tasks: their kernels share no work, and each result
    # is then a chunk or a partial itself, with no task to take it out of a tuple.
    y_array, x_array = (input, grad_output) if transposed else (grad_output, input)
    plan = _Plan(geometry, [_bounds(sizes) for sizes in y_array.chunks[2:]])
    x_bounds = [_bounds(sizes) for sizes in x_array.chunks[2:]]
    # A transposed convolution's bias gradient is the sum of its grad_output, the x side: the
    # chunks' tasks add it up where their windows of grad_output do not overlap.
    bias_in_chunks = need_bias and (not transposed or _tiled(plan, x_bounds))
    whole = [((slice(None),) * (dims + 2),) * 2]
    halos = _Halos(f"{op}-halo-{token}", x_array.name)
    reads = {}
    for n, block in product(range(len(batch_chunks)), plan.blocks()):
        window = plan.window(block)
        read = _read(x_array.name, n, x_bounds, window, halos)
        x_args = (*(read if read is not None else (None, None)), _window_shape(window))
        y_args = ([(y_array.name, n, 0, *block)], whole, plan.y_shape(block))
        reads[n, block] = (x_args, y_args)
    collections = [input, grad_output]
    layers = [halos.layer()]
    on = {input.name, grad_output.name, halos.name}

    grad_input = grad_weight = grad_bias = None
    if need_input:
        name = f"{op}-grad-input-{token}"
        share = f"{name}-share"
        tasks = {}
        for (n, block), (x_args, y_args) in reads.items():
            if transposed:  # each input chunk's gradient is whole in its task
                y_shape = (batch_chunks[n], y_array.shape[1], *plan.y_shape(block))
                tasks[_key(name, n, 0, *block)] = (
                    _grad_input_task, *x_args, y_shape, weight_key, spec, plan.pads(block),
                    y_shape,
                )  # fmt: skip
            elif not plan.empty(block):  # the windows' shares, added up into input chunks
                x_shape = (batch_chunks[n], x_array.shape[1], *_window_shape(plan.window(block)))
                tasks[_key(share, n, 0, *block)] = (
                    _grad_input_task, *y_args, x_shape, weight_key, spec, plan.pads(block), None,
                )  # fmt: skip
        if transposed:
            layers_in = [(name, {**weight_layer, **tasks}, on)]
        else:
            contributions = {(key[1], *key[3:]): key for key in tasks}
            layer = _sum_layer(
                name, contributions, tasks, plan, x_bounds, batch_chunks, input.shape[1], dtype,
                None,
            )  # fmt: skip
            layers_in = [
                (share, {**weight_layer, **tasks}, on),
                (name, {**weight_layer, **layer}, {*on, share}),
            ]
        grad_input = _array(_graph(collections, [*layers, *layers_in]), name, input.chunks, dtype)
        if unbatched:
            grad_input = grad_input[0]

    if need_weight or bias_in_chunks:
        partials = f"{op}-partials-{token}"
        tasks = dict(weight_layer)
        leaves = []
        for (n, block), (x_args, y_args) in reads.items():
            grad_args, input_args = (x_args, y_args) if transposed else (y_args, x_args)
            leaves.append(_key(partials, n, 0, *block))
            tasks[leaves[-1]] = (
                _parameter_task, *grad_args, *input_args, weight_key, spec, plan.pads(block),
                (need_weight, bias_in_chunks), channels,
            )  # fmt: skip
        wanted = {}
        if need_weight:
            wanted[0] = (f"{op}-grad-weight-{token}", tuple(weight.shape), dtype)
        if bias_in_chunks:
            wanted[1] = (f"{op}-grad-bias-{token}", (channels,), dtype)
        sums = _totals(
            collections, [*layers, (partials, tasks, on)], f"{op}-sum-{token}", leaves, wanted,
            split_every,
        )  # fmt: skip
        grad_weight, grad_bias = sums.get(0), sums.get(1)
    if need_bias and not bias_in_chunks:
        axes = (0, *range(2, grad_output.ndim))
        grad_bias = grad_output.sum(axis=axes, split_every=split_every, dtype=dtype)
    return grad_input, grad_weight, grad_bias


# ---------------------------------------------------------------------------------------------
# Data-parallel training


def _model_task(model, loss_fn, input, target, share):
    """One batch chunk's share of a model's loss and of its parameters' gradients."""
    model, loss_fn = copy.deepcopy(model), copy.deepcopy(loss_fn)
    model.zero_grad()
    loss = loss_fn(model(input), target)
    model.backward(share * loss_fn.backward())
    return (np.asarray(share * loss), *(parameter.grad for parameter in model.parameters()))


def backward(model: Any, loss_fn: Any, input: Any, target: Any, *, split_every: int | None = None):
    """A data-parallel forward and backward pass: the loss of a :mod:`convt.nn` model on a batch
    held as a dask array, with each parameter's gradient added to its ``grad`` as
    ``model.backward`` would. Returns the loss, a float.

    Each batch chunk runs on a worker with a copy of the model (sent once per worker); the
    loss and the gradients of the chunks, each weighted by the chunk's share of the batch for a
    mean loss, are added up as a tree (``split_every`` at a time), so that the result is the
    whole batch's on one machine. ``loss_fn`` is a loss module with ``reduction`` 'mean' or
    'sum', such as ``convt.nn.MSELoss``. It computes at once, on the active scheduler.
    """
    parameters = model.parameters()
    reduction = getattr(loss_fn, "reduction", None)
    if reduction not in ("mean", "sum"):
        raise ValueError(
            f"convt.dask.backward: loss_fn must have reduction 'mean' or 'sum', got {reduction!r}"
        )
    x = input if isinstance(input, da.Array) else da.asarray(input)
    t = target if isinstance(target, da.Array) else da.asarray(target)
    if x.shape[0] != t.shape[0]:
        raise ValueError(
            f"convt.dask.backward: target must have the input's batch size {x.shape[0]}, "
            f"got {t.shape[0]}"
        )
    x = x.rechunk({axis: -1 for axis in range(1, x.ndim)})
    t = t.rechunk({0: x.chunks[0], **{axis: -1 for axis in range(1, t.ndim)}})
    model_key = f"convt-model-{tokenize(model)}"
    model_layer = {model_key: model, f"{model_key}-loss": loss_fn}
    split_every = _split_every("convt.dask.backward", split_every)
    token = tokenize(model_key, x.name, t.name, split_every)
    results = f"convt-gradients-{token}"
    tasks: dict[Any, Any] = dict(model_layer)
    leaves = []
    batch = x.shape[0]
    zeros_x, zeros_t = (0,) * (x.ndim - 1), (0,) * (t.ndim - 1)
    for n, size in enumerate(x.chunks[0]):
        share = size / batch if reduction == "mean" else 1.0
        leaves.append(_key(results, n))
        tasks[leaves[-1]] = (
            _model_task, model_key, f"{model_key}-loss", (x.name, n, *zeros_x),
            (t.name, n, *zeros_t), share,
        )  # fmt: skip
    wanted = {
        i: (f"{results}-{i}", shape, dtype)
        for i, (shape, dtype) in enumerate(
            [((), np.dtype(np.float64))] + [(p.shape, p.dtype) for p in parameters]
        )
    }
    totals = _totals(
        [x, t], [(results, tasks, {x.name, t.name})], f"{results}-sum", leaves, wanted,
        split_every,
    ).values()  # fmt: skip
    loss, *grads = dask.compute(*totals)
    for parameter, grad in zip(parameters, grads, strict=True):
        parameter.grad += grad
    return float(loss)


# ---------------------------------------------------------------------------------------------
# The public functions


def _name_backward(backward: Callable, op: str) -> None:
    backward.__name__ = backward.__qualname__ = f"{op}_backward"
    backward.__doc__ = (
        f"Gradients of ``{op}`` over dask arrays: lazy ``(grad_input, grad_weight, grad_bias)``."
        "\n\n``grad_input`` is chunked like ``input``; ``grad_weight`` and ``grad_bias`` add up "
        "the chunks' partial gradients as a tree, ``split_every`` at a time."
    )


def _make_conv(operation: Operation):
    op, dims = operation.name, operation.dims

    def conv(
        input: Any,
        weight: Any,
        bias: Any = None,
        stride: IntOrTuple = 1,
        padding: Padding = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        *,
        padding_mode: str = "zeros",
    ) -> da.Array:
        x, weight, bias, unbatched = _prepare(op, input, weight, bias, dims)
        geometry = functional.geometry(
            op, x.shape, weight.shape, stride=stride, padding=padding, dilation=dilation,
            groups=groups, padding_mode=padding_mode,
        )  # fmt: skip
        return _forward_with_mode(geometry, x, weight, bias, unbatched)

    def backward(
        grad_output: Any,
        input: Any,
        weight: Any,
        stride: IntOrTuple = 1,
        padding: Padding = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        *,
        padding_mode: str = "zeros",
        output_mask: Sequence[bool] = (True, True, True),
        split_every: int | None = None,
    ) -> Gradients:
        x, weight, _, unbatched = _prepare(op, input, weight, None, dims)
        geometry = functional.geometry(
            op, x.shape, weight.shape, stride=stride, padding=padding, dilation=dilation,
            groups=groups, padding_mode=padding_mode,
        )  # fmt: skip
        dy = _grad_output(op, grad_output, x, geometry.output_shape, unbatched)
        return _backward_with_mode(geometry, dy, x, weight, unbatched, output_mask, split_every)

    conv.__name__ = conv.__qualname__ = op
    conv.__doc__ = (
        f"{dims}-D convolution of a dask array, lazy: ``convt.functional.{op}`` chunk by "
        "chunk.\n\nChunks along the batch and spatial axes stay; each output chunk reads the "
        "input its outputs need. Channels are rechunked to one chunk."
    )
    _name_backward(backward, op)
    return conv, backward


def _make_conv_transpose(operation: Operation):
    op, dims = operation.name, operation.dims

    def conv_transpose(
        input: Any,
        weight: Any,
        bias: Any = None,
        stride: IntOrTuple = 1,
        padding: Padding = 0,
        output_padding: IntOrTuple = 0,
        groups: int = 1,
        dilation: IntOrTuple = 1,
        *,
        output_size: IntOrTuple | None = None,
        padding_mode: str = "zeros",
    ) -> da.Array:
        y, weight, bias, unbatched = _prepare(op, input, weight, bias, dims)
        geometry = functional.geometry(
            op, y.shape, weight.shape, stride=stride, padding=padding,
            output_padding=output_padding, groups=groups, dilation=dilation,
            output_size=output_size, padding_mode=padding_mode,
        )  # fmt: skip
        return _forward_with_mode(geometry, y, weight, bias, unbatched)

    def backward(
        grad_output: Any,
        input: Any,
        weight: Any,
        stride: IntOrTuple = 1,
        padding: Padding = 0,
        output_padding: IntOrTuple = 0,
        groups: int = 1,
        dilation: IntOrTuple = 1,
        *,
        output_size: IntOrTuple | None = None,
        padding_mode: str = "zeros",
        output_mask: Sequence[bool] = (True, True, True),
        split_every: int | None = None,
    ) -> Gradients:
        y, weight, _, unbatched = _prepare(op, input, weight, None, dims)
        geometry = functional.geometry(
            op, y.shape, weight.shape, stride=stride, padding=padding,
            output_padding=output_padding, groups=groups, dilation=dilation,
            output_size=output_size, padding_mode=padding_mode,
        )  # fmt: skip
        dx = _grad_output(op, grad_output, y, geometry.output_shape, unbatched)
        return _backward_with_mode(geometry, dx, y, weight, unbatched, output_mask, split_every)

    conv_transpose.__name__ = conv_transpose.__qualname__ = op
    conv_transpose.__doc__ = (
        f"{dims}-D transposed convolution of a dask array, lazy: ``convt.functional.{op}`` "
        "chunk by chunk.\n\nEach input chunk's contribution is computed once; where "
        "neighbouring contributions overlap, they are added. Output chunks follow the input's "
        "(scaled by the stride). Channels are rechunked to one chunk."
    )
    _name_backward(backward, op)
    return conv_transpose, backward


def _make(operation: Operation) -> tuple[Any, Any]:
    """``operation`` over dask arrays and its backward, with convt.functional's signatures."""
    return (_make_conv_transpose if operation.transposed else _make_conv)(operation)


conv1d, conv1d_backward = _make(_operations.CONV1D)
conv2d, conv2d_backward = _make(_operations.CONV2D)
conv3d, conv3d_backward = _make(_operations.CONV3D)
conv_transpose1d, conv_transpose1d_backward = _make(_operations.CONV_TRANSPOSE1D)
conv_transpose2d, conv_transpose2d_backward = _make(_operations.CONV_TRANSPOSE2D)
conv_transpose3d, conv_transpose3d_backward = _make(_operations.CONV_TRANSPOSE3D)
