"""What ``convt explain`` shows, computed: the sizes (from the geometry convt builds), the grid of
zero-inserted and padded input cells, which input value and kernel tap reach which output, how
many products overlap on each output, whether they overlap evenly, and the output computed three
ways by convt. :mod:`.text` and :mod:`.picture` render it.

NumPy only lays out grids (zero insertion, padding, cropping); every sum is computed by convt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import functional
from .._seed import convolute, convolute_full, rotate_180

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Largest zero-inserted grid or output, per side, that :func:`explain` draws cell by cell.
MAX_CELLS = 48

# The kinds of cells of the zero-inserted, padded grid.
INPUT, ZERO, PAD, EXTRA, TAP = "input", "zero", "pad", "extra", "tap"
_MARK = {ZERO: "0", PAD: ".", EXTRA: "+"}


@dataclass(frozen=True)
class Axis:
    """One spatial dimension of the transposed convolution: input size ``I``, kernel ``k``,
    stride ``s``, padding ``p`` (before; ``q`` after, ``p`` when None), output_padding ``op``,
    dilation ``d``, and what the padding holds (``mode``, PyTorch's padding_mode).

    The output size and the sizes ``output_size=`` accepts are the ones the geometry convt
    builds for this dimension says; the other lengths follow from them and the layout."""

    I: int  # noqa: E741 (the formulas' name)
    k: int
    s: int
    p: int
    op: int
    d: int
    q: int | None = None
    mode: str = "zeros"

    @property
    def after_padding(self) -> int:
        return self.p if self.q is None else self.q

    @property
    def symmetric(self) -> bool:
        return self.after_padding == self.p

    @property
    def folds(self) -> bool:
        """Whether the padding holds values: the layer computes the padded output and folds
        its ring back instead of cropping it."""
        return self.mode != "zeros" and self.p + self.after_padding > 0

    @property
    def cropped(self) -> tuple[int, int]:
        """How much of the scatter result padding crops before and after."""
        return (0, 0) if self.folds else (self.p, self.after_padding)

    @property
    def reach(self) -> int:
        """``d*(k-1)``: how far the (dilated) kernel reaches past its first tap."""
        return self.d * (self.k - 1)

    @cached_property
    def output(self) -> int:
        """``O = (I-1)*s - p_before - p_after + d*(k-1) + op + 1``, as convt computes it."""
        size = functional.output_size(
            self.I,
            self.k,
            self.s,
            self._padding,
            self.d,
            transposed=True,
            output_padding=self.op,
            padding_mode=self.mode,
        )
        assert isinstance(size, int)
        return size

    @cached_property
    def sizes(self) -> range:
        """The output sizes ``output_size=`` accepts: every size the convolution with these
        arguments maps back to ``I``."""
        sizes = functional.valid_output_sizes(self.I, self.k, self.s, self._padding, self.d)
        assert isinstance(sizes, range)
        return sizes

    @property
    def _padding(self) -> tuple[tuple[int, int]]:
        return ((self.p, self.after_padding),)

    @property
    def inserted(self) -> int:
        """Length after inserting ``s-1`` zeros between neighbouring inputs: ``(I-1)*s + 1``."""
        return (self.I - 1) * self.s + 1

    @property
    def computed(self) -> int:
        """Length of what the valid convolution of the grid computes: the output, or with a
        mode the output with its padding ring around it."""
        return self.output + (self.p + self.after_padding if self.folds else 0)

    @property
    def grid(self) -> int:
        """Length of the zero-inserted, padded (or cropped) input: the window of the last
        computed position ends there."""
        return self.computed + self.reach

    @property
    def full(self) -> int:
        """Length of the uncropped scatter result, ``(I-1)*s + d*(k-1) + 1``: the output before
        padding crops it and output_padding extends it."""
        return self.output + self.p + self.after_padding - self.op

    @property
    def pad(self) -> int:
        """Zeros added before the zero-inserted input, ``d*(k-1) - p``; negative means that many
        are cropped instead."""
        return self.reach - self.cropped[0]

    @property
    def before(self) -> int:
        return self.pad

    @property
    def after(self) -> int:
        """Zeros added at the end: ``d*(k-1) - p_after + output_padding`` (negative: cropped)."""
        return self.grid - self.inserted - self.before

    def cell(self, g: int) -> tuple[str, int]:
        """The kind of grid cell ``g`` along this axis, and the input index for an input."""
        u = g - self.before  # position in the zero-inserted input
        if u < 0:
            return PAD, -1
        if u < self.inserted:
            return (INPUT, u // self.s) if u % self.s == 0 else (ZERO, -1)
        end = self.reach - self.cropped[1]
        return (PAD, -1) if u - self.inserted < max(end, 0) else (EXTRA, -1)

    def source(self, u: int) -> int:
        """The output element that computed position ``u`` is (or, in the ring, is added to):
        PyTorch's padding_mode rules, the ring reaching at most once around."""
        if not self.folds:
            return u
        i, n = u - self.p, self.output
        if 0 <= i < n:
            return i
        if self.mode == "circular":
            return i % n
        if self.mode == "reflect":
            return -i if i < 0 else 2 * (n - 1) - i
        return 0 if i < 0 else n - 1  # replicate

    def folded_from(self, o: int) -> list[int]:
        """The computed positions that end up in output ``o``: itself, and ring positions."""
        return [u for u in range(self.computed) if self.source(u) == o]

    def contributions(self, o: int) -> list[tuple[int, int]]:
        """The ``(input index i, tap a)`` pairs whose product lands on output ``o``: ``u =
        i*s + a*d - p`` for ``u = o``, or with a mode every ``u`` folded onto ``o``."""
        pairs = []
        for u in self.folded_from(o):
            for a in range(self.k):
                t = u + self.cropped[0] - a * self.d
                if t % self.s == 0 and 0 <= t // self.s < self.I:
                    pairs.append((t // self.s, a))
        return sorted(pairs)

    def phase_taps(self) -> list[int]:
        """How many kernel taps land on each of the ``s`` stride phases of the output."""
        return [sum(1 for a in range(self.k) if (a * self.d) % self.s == r) for r in range(self.s)]

    @property
    def even(self) -> bool:
        """Whether every stride phase gets as many taps: away from the borders every output
        sums as many products, and there is no checkerboard."""
        return len(set(self.phase_taps())) == 1

    def sizes_to_same_input(self) -> tuple[int, int]:
        """The range of sizes a convolution with these arguments maps to ``I``."""
        return self.sizes[0], self.sizes[-1]


def _pair(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) == 1:
        values = (values[0], values[0])
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"explain: {name} must be an int or 2 ints, got {value!r}")
    return int(values[0]), int(values[1])


def _label(prefix: str, r: int, c: int, wide: bool) -> str:
    return f"{prefix}{r + 1},{c + 1}" if wide else f"{prefix}{r + 1}{c + 1}"


def _dilate(w: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    """The kernel with ``d-1`` zeros inserted between its taps."""
    out = np.zeros([(n - 1) * d + 1 for n, d in zip(w.shape, dilation, strict=True)])
    out[:: dilation[0], :: dilation[1]] = w
    return out


def _pad_or_crop(a: np.ndarray, before: Sequence[int], after: Sequence[int]) -> np.ndarray:
    a = np.pad(a, [(max(0, b), max(0, e)) for b, e in zip(before, after, strict=True)])
    crop = tuple(
        slice(max(0, -b), n - max(0, -e)) for n, b, e in zip(a.shape, before, after, strict=True)
    )
    return a[crop]


@dataclass
class Explanation:
    """Everything ``convt explain`` shows; see :func:`explain`."""

    axes: tuple[Axis, Axis]
    x: np.ndarray  # the input, 1, 2, 3, ... row by row
    w: np.ndarray  # the kernel, 1, 2, 3, ... row by row (PyTorch's orientation)
    grid: np.ndarray  # the zero-inserted, padded input with x's values
    kinds: list[list[str]]  # the kind of each grid cell
    overlap: np.ndarray  # number of products summed into each output pixel
    results: dict[str, np.ndarray]  # the output by each formulation, and "reference"
    differences: dict[str, float] = field(default_factory=dict)

    # ---- sizes ----

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.axes[0].I, self.axes[1].I)

    @property
    def kernel_size(self) -> tuple[int, int]:
        return (self.axes[0].k, self.axes[1].k)

    @property
    def output_size(self) -> tuple[int, int]:
        return (self.axes[0].output, self.axes[1].output)

    @property
    def grid_size(self) -> tuple[int, int]:
        return (self.axes[0].grid, self.axes[1].grid)

    @property
    def valid_sizes(self) -> tuple[range, range]:
        """The sizes ``output_size=`` accepts, per axis."""
        return (self.axes[0].sizes, self.axes[1].sizes)

    @property
    def output(self) -> np.ndarray:
        return self.results["reference"]

    @property
    def passed(self) -> bool:
        return all(
            v == 0 or v <= 1e-9 * max(1.0, np.abs(self.output).max())
            for v in self.differences.values()
        )

    @property
    def max_difference(self) -> float:
        return max(self.differences.values())

    @property
    def folds(self) -> bool:
        """Whether the padding holds values (a padding_mode other than zeros)."""
        return any(axis.folds for axis in self.axes)

    @property
    def mode(self) -> str:
        return self.axes[0].mode

    @property
    def even(self) -> bool:
        """Whether the products overlap evenly along both axes: no checkerboard artifacts."""
        return all(axis.even for axis in self.axes)

    # ---- labels ----

    def _wide(self, sizes: Sequence[int]) -> bool:
        return max(sizes) > 9

    def input_label(self, i: int, j: int) -> str:
        return _label("a", i, j, self._wide(self.input_size))

    def kernel_label(self, a: int, b: int) -> str:
        return _label("w", a, b, self._wide(self.kernel_size))

    def output_label(self, r: int, c: int) -> str:
        return _label("y", r, c, self._wide(self.output_size))

    def cell_text(self, r: int, c: int) -> str:
        kind = self.kinds[r][c]
        if kind == INPUT:
            (_, i), (_, j) = self.axes[0].cell(r), self.axes[1].cell(c)
            return self.input_label(i, j)
        return _MARK[kind]

    def kernel_cells(self) -> list[list[str]]:
        kh, kw = self.kernel_size
        return [[self.kernel_label(a, b) for b in range(kw)] for a in range(kh)]

    def flipped_cells(self) -> list[list[str]]:
        """The kernel turned by 180 degrees, dilated (``0`` between taps)."""
        (ah, aw), (kh, kw) = self.axes, self.kernel_size
        return [
            [
                self.kernel_label(kh - 1 - r // ah.d, kw - 1 - c // aw.d)
                if r % ah.d == 0 and c % aw.d == 0
                else "0"
                for c in range(aw.reach + 1)
            ]
            for r in range(ah.reach + 1)
        ]

    # ---- which products make which output ----

    def contributions(self, r: int, c: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """``((i, j), (a, b))`` for every product ``x[i, j] * w[a, b]`` summed into output
        ``(r, c)`` (0-based)."""
        return [
            ((i, j), (a, b))
            for i, a in self.axes[0].contributions(r)
            for j, b in self.axes[1].contributions(c)
        ]

    def contribution_text(self, r: int, c: int) -> str:
        terms = [
            f"{self.input_label(i, j)}*{self.kernel_label(a, b)}"
            for (i, j), (a, b) in self.contributions(r, c)
        ]
        return f"{self.output_label(r, c)} = " + (" + ".join(terms) if terms else "0")

    def example_pixel(self) -> tuple[int, int]:
        """The first output pixel with the most products, the one the text and picture
        illustrate."""
        r, c = np.unravel_index(int(np.argmax(self.overlap)), self.overlap.shape)
        return int(r), int(c)

    def window_corner(self, r: int, c: int) -> tuple[int, int]:
        """The grid cell where the window of output ``(r, c)`` starts: its computed position
        (with a mode, inside the padding ring)."""
        (ah, aw) = self.axes
        return (r + (ah.p if ah.folds else 0), c + (aw.p if aw.folds else 0))

    def ring_text(self, u: int, v: int) -> str:
        """Computed cell ``(u, v)``: its output's label, in parentheses for a ring cell, which
        is added onto that output."""
        (ah, aw) = self.axes
        label = self.output_label(ah.source(u), aw.source(v))
        r, c = self.window_corner(0, 0)
        inside = 0 <= u - r < ah.output and 0 <= v - c < aw.output
        return label if inside else f"({label})"

    def ring_kinds(self) -> list[list[str]]:
        (ah, aw) = self.axes
        return [
            [INPUT if self.ring_text(u, v)[0] != "(" else PAD for v in range(aw.computed)]
            for u in range(ah.computed)
        ]

    # ---- renderings ----

    def text(self) -> str:
        """The explanation that ``python -m convt explain`` prints."""
        from .text import render

        return render(self)

    def figure(self) -> Figure:
        """The same as a matplotlib Figure: the input, the kernel, the zero-inserted and padded
        input with the window of one output pixel, the flipped kernel, and the number of
        products per output pixel, all drawn with cells of one size."""
        from .picture import draw

        return draw(self)

    def save(self, path: str) -> None:
        """Draws :meth:`figure` to ``path`` (PNG, SVG, PDF, ... by its extension)."""
        from .picture import save

        save(self, path)


def explain(
    input: int | Sequence[int],
    kernel: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | Sequence[Sequence[int]] = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    *,
    padding_mode: str = "zeros",
) -> Explanation:
    """Works out how ``conv_transpose2d`` with these arguments makes its output (each argument an
    int or ``(height, width)``; ``padding`` also ``((top, bottom), (left, right))``, or one
    ``(before, after)`` pair for both), computing it three ways with convt.

    With a ``padding_mode`` other than 'zeros' the padding is not cropped: the layer computes
    the output with its padding ring and folds the ring back onto the output, which the text
    and picture show.

    Raises ValueError, with convt's message, for arguments ``conv_transpose2d`` rejects (e.g.
    output_padding not smaller than stride or dilation), and for grids larger than
    :data:`MAX_CELLS` per side.
    """
    args = {
        "input": _pair("input", input),
        "kernel": _pair("kernel", kernel),
        "stride": _pair("stride", stride),
        "output_padding": _pair("output_padding", output_padding),
        "dilation": _pair("dilation", dilation),
    }
    for name in ("input", "kernel"):
        if min(args[name]) <= 0:
            raise ValueError(f"explain: {name} must be positive, got {args[name]}")
    pads = _padding_pairs(padding)
    if not isinstance(padding_mode, str) or padding_mode not in functional.PADDING_MODES:
        raise ValueError(
            "explain: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got "
            f"{padding_mode!r}"
        )
    symmetric = all(before == after for before, after in pads)
    size, ksize = args["input"], args["kernel"]
    x = np.arange(1.0, math.prod(size) + 1).reshape(size)
    w = np.arange(1.0, math.prod(ksize) + 1).reshape(ksize)
    options: dict[str, Any] = {
        "stride": args["stride"],
        "padding": tuple(before for before, _ in pads) if symmetric else pads,
        "dilation": args["dilation"],
        "padding_mode": padding_mode,
    }
    # convt validates the geometry (and names the argument) before anything is drawn.
    reference = functional.conv_transpose2d(
        x[None, None], w[None, None], output_padding=args["output_padding"], **options
    )[0, 0]
    axes = tuple(
        Axis(
            args["input"][i],
            args["kernel"][i],
            args["stride"][i],
            pads[i][0],
            args["output_padding"][i],
            args["dilation"][i],
            pads[i][1],
            padding_mode,
        )
        for i in range(2)
    )
    ah, aw = axes
    largest = max(ah.grid, aw.grid, ah.computed, aw.computed)
    if largest > MAX_CELLS:
        raise ValueError(
            f"explain draws every cell: the zero-inserted grid would be {ah.grid}x{aw.grid} and "
            f"the output {ah.output}x{aw.output}, more than {MAX_CELLS} per side; use a smaller "
            "input, kernel, stride or dilation"
        )

    # The zero-inserted, padded (or cropped) input: NumPy lays it out.
    inserted = np.zeros((ah.inserted, aw.inserted))
    inserted[:: ah.s, :: aw.s] = x
    grid = _pad_or_crop(inserted, (ah.before, aw.before), (ah.after, aw.after))
    kinds = []
    for r in range(ah.grid):
        kr = ah.cell(r)[0]
        row = []
        for c in range(aw.grid):
            kc = aw.cell(c)[0]
            pair = {kr, kc}
            kind = (
                EXTRA
                if EXTRA in pair
                else PAD
                if PAD in pair
                else INPUT
                if pair == {INPUT}
                else ZERO
            )
            row.append(kind)
        kinds.append(row)

    # The three formulations, each computed by convt.
    w_dilated = _dilate(w, args["dilation"])
    full = convolute_full(x, w_dilated, strides=args["stride"])
    (rb, _), (cb, _) = ah.cropped, aw.cropped
    scatter = np.zeros((ah.computed, aw.computed))
    kept = full[rb : rb + ah.computed, cb : cb + aw.computed]
    scatter[: kept.shape[0], : kept.shape[1]] = kept
    zero_insertion = convolute(grid, rotate_180(w_dilated))
    if ah.folds or aw.folds:
        # The fold is the adjoint of padding a copy with the mode: the transposed 1x1
        # convolution by one with that padding and mode, computed by convt.
        def fold(computed: np.ndarray) -> np.ndarray:
            one = np.ones((1, 1, 1, 1))
            ring = {"padding": options["padding"], "padding_mode": padding_mode}
            folded: np.ndarray = functional.conv_transpose2d(computed[None, None], one, **ring)
            return folded[0, 0]

        scatter, zero_insertion = fold(scatter), fold(zero_insertion)
    # The convolution that maps the output size back; its gradient for the input is the
    # transposed convolution. With output_padding >= stride (possible when dilation > stride)
    # it maps to more than the input size: the extra gradient rows are zeros.
    conv_output = functional.conv2d(
        np.zeros((1, 1, ah.output, aw.output)), w[None, None], **options
    )
    grad_output = np.zeros(conv_output.shape)
    grad_output[0, 0, : ah.I, : aw.I] = x
    backward_input = functional.conv2d_backward(
        grad_output,
        np.zeros((1, 1, ah.output, aw.output)),
        w[None, None],
        **options,
        output_mask=(True, False, False),
    )[0]
    assert backward_input is not None
    overlap = functional.conv_transpose2d(
        np.ones((1, 1, *size)),
        np.ones((1, 1, *ksize)),
        output_padding=args["output_padding"],
        **options,
    )[0, 0]

    results = {
        "i": scatter,
        "ii": zero_insertion,
        "iii": backward_input[0, 0],
        "reference": reference,
    }
    differences = {
        key: float(np.abs(results[key] - reference).max())
        if results[key].shape == reference.shape
        else math.inf
        for key in ("i", "ii", "iii")
    }
    return Explanation(
        axes=(ah, aw),
        x=x,
        w=w,
        grid=grid,
        kinds=kinds,
        overlap=np.rint(overlap).astype(int),
        results=results,
        differences=differences,
    )


def _padding_pairs(padding: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((top, bottom), (left, right))`` from an int, ``(height, width)``, two pairs, or one
    pair for both."""
    if isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list)) for p in padding):
        pairs = [tuple(p) if isinstance(p, (tuple, list)) else () for p in padding]
        if len(pairs) == 1:
            pairs *= 2
        if len(pairs) != 2 or not all(
            len(p) == 2 and all(isinstance(v, (int, np.integer)) for v in p) for p in pairs
        ):
            raise ValueError(
                "explain: padding must be an int, 2 ints, or (before, after) pairs, got "
                f"{padding!r}"
            )
        (a, b), (c, d) = pairs
        return (int(a), int(b)), (int(c), int(d))
    h, w = _pair("padding", padding)
    return (h, h), (w, w)
