"""How a 2-D transposed convolution makes its output, with its own numbers: ``convt explain``.

:func:`explain` works out, for one input size, kernel, stride, padding, output_padding and
dilation (each per dimension: height, width), everything ``python -m convt explain`` prints and
draws: the output size, the zero-inserted and padded input, the flipped kernel, which input
values and kernel taps make each output value, how many of them overlap on each output pixel,
and the output computed three ways by convt (scatter, zero insertion + convolution with the
flipped kernel, and the backward-input pass of a convolution), which must agree.

NumPy only lays out grids (zero insertion, padding, cropping); every sum is computed by convt.

>>> from convt.explain import explain
>>> e = explain(3, 3, stride=2, padding=1, output_padding=1)
>>> e.output_size, e.grid_size, e.passed
((6, 6), (8, 8), True)
>>> e.contribution_text(1, 1)
'y22 = a11*w33 + a12*w31 + a21*w13 + a22*w11'
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import functional
from ._seed import convolute, convolute_full, rotate_180

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Axis", "Explanation", "explain"]

#: Largest zero-inserted grid or output, per side, that :func:`explain` draws cell by cell.
MAX_CELLS = 48
#: How many output pixels the text lists one by one.
MAX_LISTED = 100

# The kinds of cells of the zero-inserted, padded grid, and how the text shows them.
INPUT, ZERO, PAD, EXTRA, TAP = "input", "zero", "pad", "extra", "tap"
_MARK = {ZERO: "0", PAD: ".", EXTRA: "+"}


@dataclass(frozen=True)
class Axis:
    """One spatial dimension of the transposed convolution: input size ``I``, kernel ``k``,
    stride ``s``, padding ``p`` (before; ``q`` after, ``p`` when None), output_padding ``op``,
    dilation ``d``, and what the padding holds (``mode``, PyTorch's padding_mode)."""

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

    @property
    def output(self) -> int:
        """``O = (I-1)*s - p_before - p_after + d*(k-1) + op + 1``."""
        return (self.I - 1) * self.s - self.p - self.after_padding + self.reach + self.op + 1

    @property
    def inserted(self) -> int:
        """Length after inserting ``s-1`` zeros between neighbouring inputs: ``(I-1)*s + 1``."""
        return (self.I - 1) * self.s + 1

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
        return self.reach - self.cropped[1] + self.op

    @property
    def grid(self) -> int:
        """Length of the zero-inserted, padded (or cropped) input."""
        return self.inserted + self.before + self.after

    @property
    def computed(self) -> int:
        """Length of what the valid convolution of the grid computes: the output, or with a
        mode the output with its padding ring around it."""
        return self.grid - self.reach

    @property
    def full(self) -> int:
        """Length of the uncropped scatter result, ``(I-1)*s + d*(k-1) + 1``."""
        return self.inserted + self.reach

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

    def sizes_to_same_input(self) -> tuple[int, int]:
        """The range of sizes a convolution with these arguments maps to ``I``."""
        smallest = self.output - self.op
        return smallest, smallest + self.s - 1

    def padding_text(self) -> str:
        """``2*p``, or ``p_before - p_after`` as the output formula subtracts them."""
        return f"2*{self.p}" if self.symmetric else f"{self.p} - {self.after_padding}"


def _pair(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) == 1:
        values = (values[0], values[0])
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"explain: {name} must be an int or 2 ints, got {value!r}")
    return int(values[0]), int(values[1])


def _maps(axis: Axis) -> str:
    lo, hi = axis.sizes_to_same_input()
    return f"only {lo} to {axis.I}" if lo == hi else f"every size from {lo} to {hi} to {axis.I}"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, width=92, initial_indent="   ", subsequent_indent="   ")


def _picks(axis: Axis) -> str:
    lo = axis.output - axis.op
    text = f"output_padding {axis.op} picks {lo} + {axis.op} = {axis.output}"
    if axis.op >= axis.s:
        text += f" (output_padding >= stride is allowed as dilation {axis.d} > stride)"
    return text


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


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _table(cells: Sequence[Sequence[str]], indent: str = "    ") -> str:
    width = max((len(c) for row in cells for c in row), default=1)
    return "\n".join(indent + " ".join(c.rjust(width) for c in row) for row in cells)


def _side_by_side(
    left: Sequence[Sequence[str]], right: Sequence[Sequence[str]], middle: str = ""
) -> str:
    """Two tables next to each other, vertically centred, ``middle`` between them."""
    width = max(len(c) for row in (*left, *right) for c in row)
    lines_l = [" ".join(c.rjust(width) for c in row) for row in left]
    lines_r = [" ".join(c.rjust(width) for c in row) for row in right]
    rows = max(len(lines_l), len(lines_r))
    lines_l = _centre(lines_l, rows)
    lines_r = _centre(lines_r, rows)
    gap = " " * (len(middle) + 4)
    return "\n".join(
        "    " + a + (f"  {middle}  " if middle and i == rows // 2 else gap) + b
        for i, (a, b) in enumerate(zip(lines_l, lines_r, strict=True))
    ).rstrip()


def _centre(lines: list[str], rows: int) -> list[str]:
    width = max((len(line) for line in lines), default=0)
    top = (rows - len(lines)) // 2
    blank = [" " * width]
    return blank * top + lines + blank * (rows - len(lines) - top)


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
    valid_sizes: tuple[range, ...] = ()  # the sizes output_size= accepts, per axis

    # ---- sizes and labels ----

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

    # ---- text ----

    def text(self) -> str:
        """The explanation that ``python -m convt explain`` prints."""
        (ah, aw), (H, W), (OH, OW) = self.axes, self.input_size, self.output_size  # noqa: N806
        kh, kw = self.kernel_size
        symmetric = all(axis.symmetric for axis in self.axes)
        # PyTorch's transposed layers take neither asymmetric padding nor a padding_mode.
        library = "torch" if symmetric and not self.folds else "convt"
        pads = "2*p" if symmetric else "p_before - p_after"
        out = [
            f"Transposed convolution of a {H}x{W} input by a {kh}x{kw} kernel:",
            f"{library}.nn.ConvTranspose2d(1, 1, {self._arguments()})",
            "",
            f"1. Output size: O = (I - 1)*s - {pads} + d*(k - 1) + output_padding + 1",
        ]
        for axis, name in self._axes_named():
            out.append(
                f"   {name}: ({axis.I} - 1)*{axis.s} - {axis.padding_text()} + "
                f"{axis.d}*({axis.k} - 1) + {axis.op} + 1 = {axis.output}"
            )
        out.append(f"   output: {OH}x{OW}")
        out += self._output_padding_note()
        out += self._valid_sizes_note()

        out += [
            "",
            "2. The input with stride - 1 zeros between neighbours, padded by d*(k - 1) - p",
        ]
        for axis, name in self._axes_named():
            out += self._grid_lines(axis, name)
        legend = "aij: input x[i-1, j-1]   0: inserted zero   .: padding"
        if any(EXTRA in row for row in self.kinds):
            legend += "   +: output_padding"
        out.append(f"   {legend}")
        out.append(
            _table(
                [
                    [self.cell_text(r, c) for c in range(self.grid_size[1])]
                    for r in range(self.grid_size[0])
                ]
            )
        )

        out += ["", "3. The kernel w, and w turned by 180 degrees (convt.rotate_180) for step 4"]
        if (ah.d, aw.d) != (1, 1):
            out.append(f"   dilation {self._value('d')}: d - 1 zeros between the taps")
        out.append(_side_by_side(self._kernel_cells(), self._flipped_cells()))

        r, c = self.example_pixel()
        gr, gc = self.window_corner(r, c)
        sh, sw = ah.reach + 1, aw.reach + 1
        out += [
            "",
            "4. Each output is the flipped kernel times a window of the grid (valid convolution):",
            f"   {self.output_label(r, c)} uses grid rows {gr + 1}-{gr + sh}, "
            f"columns {gc + 1}-{gc + sw}"
            + (", and the ring cells folded onto it (step 4b)" if self.folds else ""),
        ]
        window = [[self.cell_text(gr + i, gc + j) for j in range(sw)] for i in range(sh)]
        out.append(_side_by_side(window, self._flipped_cells(), middle="*"))
        out.append(f"   {self.contribution_text(r, c)}")
        if self.folds:
            out += self._fold_lines()

        out += [
            "",
            "5. Every output (scatter: x[i] * w[a] lands on o = i*s + a*d - p, per dimension)",
        ]
        shown = [(rr, cc) for rr in range(OH) for cc in range(OW)][:MAX_LISTED]
        out += [f"   {self.contribution_text(rr, cc)}" for rr, cc in shown]
        if len(shown) < OH * OW:
            out.append(f"   ... and {OH * OW - len(shown)} more")

        out += ["", "6. Products summed into each output pixel (conv_transpose2d of ones by ones)"]
        out.append(_table([[str(int(v)) for v in row] for row in self.overlap]))
        out += self._overlap_note()

        out += [
            "",
            f"7. Three ways to compute it, all by convt, with x = 1..{H * W} and w = 1..{kh * kw}",
            "   x:",
            _table([[_fmt(v) for v in row] for row in self.x], "      "),
            "   w:",
            _table([[_fmt(v) for v in row] for row in self.w], "      "),
            f"   y = conv_transpose2d(x, w, {self._call_arguments(transposed=True)}):",
            _table([[_fmt(v) for v in row] for row in self.output], "      "),
        ]
        out += self._formulations()
        diffs = ", ".join(f"({key}) {v:.3g}" for key, v in self.differences.items())
        verdict = "PASS" if self.passed else "FAIL"
        out.append(f"   max |difference| from y: {diffs}   {verdict}")
        return "\n".join(out)

    @property
    def folds(self) -> bool:
        """Whether the padding holds values (a padding_mode other than zeros)."""
        return any(axis.folds for axis in self.axes)

    @property
    def mode(self) -> str:
        return self.axes[0].mode

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

    def _valid_sizes_note(self) -> list[str]:
        sizes = self.valid_sizes
        if self.axes[0] == self.axes[1]:
            a = self.axes[0]
            pad = str(a.p) if a.symmetric else f"(({a.p}, {a.after_padding}),)"
            call = f"{a.I}, {a.k}, stride={a.s}, padding={pad}, dilation={a.d}"
            shown = str(sizes[0])
        else:
            call = (
                f"{self.input_size}, {self.kernel_size}, stride={self._value('s')}, "
                f"padding={self._value('p')}, dilation={self._value('d')}"
            )
            shown = str(sizes)
        return _wrap(
            f"The sizes output_size= accepts: convt.functional.valid_output_sizes({call}) = "
            f"{shown}."
        )

    def _fold_lines(self) -> list[str]:
        (ah, aw) = self.axes
        how = {
            "circular": "wrapped around (the last rows onto the first, the first onto the last)",
            "reflect": "mirrored about the edge (the edge itself not repeated)",
            "replicate": "onto the edge row or column",
        }[self.mode]
        out = [
            "",
            f"4b. padding_mode='{self.mode}': the ring folds back",
            *_wrap(
                f"The valid convolution computes the output with its padding ring, "
                f"{ah.computed}x{aw.computed}; each ring cell (in parentheses) is added onto the "
                f"output it names, {how}. This is the adjoint of the convolution that reads "
                "the ring from its input (PyTorch's Conv2d with this padding_mode)."
            ),
        ]
        cells = [[self.ring_text(u, v) for v in range(aw.computed)] for u in range(ah.computed)]
        out.append(_table(cells))
        r, c = self.example_pixel()
        folded = [f"({u + 1},{v + 1})" for u in ah.folded_from(r) for v in aw.folded_from(c)]
        out.append(
            f"   {self.output_label(r, c)} sums the computed cells at (row, column) "
            + ", ".join(folded)
        )
        return out

    def _axes_named(self) -> list[tuple[Axis, str]]:
        """``[(axis, "rows and columns")]`` when both axes are alike, else one entry each."""
        if self.axes[0] == self.axes[1]:
            return [(self.axes[0], "rows and columns")]
        return list(zip(self.axes, ("rows", "columns"), strict=True))

    def _value(self, name: str) -> str:
        if name == "p" and not all(axis.symmetric for axis in self.axes):
            pairs = [(axis.p, axis.after_padding) for axis in self.axes]
            return f"({pairs[0]}, {pairs[1]})"
        a, b = (getattr(axis, name) for axis in self.axes)
        return str(a) if a == b else f"({a}, {b})"

    def _arguments(self) -> str:
        return f"kernel_size={self._value('k')}, " + self._call_arguments(transposed=True)

    def _call_arguments(self, transposed: bool) -> str:
        names = [("s", "stride", 1), ("p", "padding", 0)]
        names += [("op", "output_padding", 0)] if transposed else []
        names += [("d", "dilation", 1)]
        parts = [
            f"{arg}={self._value(name)}"
            for name, arg, default in names
            if self._value(name) != str(default) or arg == "stride"
        ]
        if self.mode != "zeros":
            parts.append(f"padding_mode='{self.mode}'")
        return ", ".join(parts)

    def _output_padding_note(self) -> list[str]:
        conv = f"Conv2d(1, 1, kernel_size={self._value('k')}, {self._call_arguments(False)})"
        (oh, ow), (h, w) = self.output_size, self.input_size
        if all(axis.s == 1 and axis.op == 0 for axis in self.axes):
            return _wrap(f"The convolution {conv} maps {oh}x{ow} back to {h}x{w}.")
        if self.axes[0] == self.axes[1]:
            axis = self.axes[0]
            maps, picks = f"{_maps(axis)}", f"{_picks(axis)}"
        else:
            maps = "; ".join(f"{name}: {_maps(axis)}" for axis, name in self._axes_named())
            picks = "; ".join(f"{name}: {_picks(axis)}" for axis, name in self._axes_named())
        return _wrap(
            f"The convolution {conv} maps {maps}. The transposed convolution is its gradient "
            f"for the input and must be told which size to give back: {picks}."
        )

    def _grid_lines(self, axis: Axis, name: str) -> list[str]:
        zeros = (
            f"{axis.I} -> {axis.inserted} with {axis.s - 1} zero(s) between neighbours"
            if axis.s > 1 and axis.I > 1
            else f"{axis.I} (no zeros to insert)"
        )
        end = f", output_padding {axis.op} more at the end" if axis.op else ""
        if axis.folds:
            pad = f"pad d*(k - 1) = {axis.d}*({axis.k} - 1) = {axis.reach} on each side"
            return [
                f"   {name}: {zeros};",
                f"      {pad}{end} -> {axis.grid}",
                f"      (padding_mode='{axis.mode}' crops nothing: its ring folds back, step 4b)",
            ]
        if not axis.symmetric:
            after = axis.reach - axis.after_padding
            pad = (
                f"d*(k - 1) - p_before = {axis.pad} before, d*(k - 1) - p_after = {after} after"
                " (negative: cropped)"
            )
            return [f"   {name}: {zeros};", f"      {pad}{end} -> {axis.grid}"]
        pad = f"d*(k - 1) - p = {axis.d}*({axis.k} - 1) - {axis.p} = {axis.pad}"
        if axis.pad >= 0:
            pad = f"pad {pad} on each side"
        else:
            pad = f"{pad} < 0: crop {-axis.pad} from each side instead"
        return [f"   {name}: {zeros};", f"      {pad}{end} -> {axis.grid}"]

    def _kernel_cells(self) -> list[list[str]]:
        kh, kw = self.kernel_size
        return [[self.kernel_label(a, b) for b in range(kw)] for a in range(kh)]

    def _flipped_cells(self) -> list[list[str]]:
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

    def _overlap_note(self) -> list[str]:
        uneven = []
        for axis, name in self._axes_named():
            taps = axis.phase_taps()
            if len(set(taps)) > 1:
                split = " + ".join(str(t) for t in taps)
                line = (
                    f"   {name}: the {axis.k} taps (dilation {axis.d}) fall on the {axis.s} "
                    f"stride phases as {split}"
                )
                uneven.append(line + (": some outputs get no input at all" if 0 in taps else ""))
        if not uneven:
            if (self.axes[0].s, self.axes[1].s) == (1, 1):
                return ["   Stride 1: away from the borders every output sums all the taps."]
            return [
                "   Even: each stride phase gets the same number of taps (kernel divisible by",
                "   the stride), so away from the borders every output sums as many products.",
            ]
        return [
            "   Uneven:",
            *uneven,
            "   so neighbouring outputs sum different numbers of products. This is where the",
            "   checkerboard artifacts of transposed convolutions come from (Odena, Dumoulin and",
            "   Olah, 'Deconvolution and Checkerboard Artifacts', Distill 2016); a kernel size",
            "   divisible by the stride (e.g. 4 with stride 2) overlaps evenly.",
        ]

    def _formulations(self) -> list[str]:
        (ah, aw), (oh, ow) = self.axes, self.output_size
        dilated = (ah.d, aw.d) != (1, 1)
        kernel = "w_dilated" if dilated else "w"
        (rb, _), (cb, _) = ah.cropped, aw.cropped
        ch, cw = ah.computed, aw.computed
        past = rb + ch > ah.full or cb + cw > aw.full
        fold = (
            [
                "         then fold the ring: convt.functional.conv_transpose2d(that, ones 1x1, "
                f"padding={self._value('p')},",
                f"         padding_mode='{self.mode}'), the adjoint of padding a copy with it",
            ]
            if self.folds
            else []
        )
        lines = [
            "   (i)   scatter: each x[i, j] adds x[i, j] * w to the output block at "
            "(i*s - p, j*s - p)",
            f"         convt.convolute_full(x, {kernel}, strides=({ah.s}, {aw.s})) is "
            f"{ah.full}x{aw.full};",
            f"         keep rows {rb + 1}-{rb + ch}, columns {cb + 1}-{cb + cw}"
            + (" (zeros past its end)" if past else ""),
            *fold,
            "   (ii)  zero insertion, padding, then a valid convolution with the flipped kernel:",
            f"         convt.convolute(grid, convt.rotate_180({kernel})), grid of step 2",
            *fold,
            f"   (iii) the gradient for the input of the convolution of a {oh}x{ow} input:",
            f"         convt.functional.conv2d_backward(x, zeros {oh}x{ow}, w, "
            f"{self._call_arguments(False)},",
            "                                          output_mask=(True, False, False))[0]",
        ]
        if dilated:
            lines.insert(0, "   (w_dilated: w with d - 1 zeros between its taps, as in step 3)")
        return lines

    # ---- picture ----

    def figure(self) -> Figure:
        """The same as a matplotlib Figure: the input, the kernel, the zero-inserted and padded
        input with the window of one output pixel, the flipped kernel, and the number of
        products per output pixel, all drawn with cells of one size."""
        from matplotlib.figure import Figure

        (ah, aw), (H, W), (kh, kw) = self.axes, self.input_size, self.kernel_size  # noqa: N806
        (GH, GW), (OH, OW) = self.grid_size, self.output_size  # noqa: N806
        r, c = self.example_pixel()
        flipped = self._flipped_cells()
        shapes = [(H, W), (kh, kw), (GH, GW), (len(flipped), len(flipped[0])), (OH, OW)]
        if self.folds:  # the computed output with its ring, before it folds back
            shapes.insert(4, (ah.computed, aw.computed))
        gaps = len(shapes) - 1
        columns, rows = sum(w for _, w in shapes), max(h for h, _ in shapes)
        # Inches: margins, gaps between panels, room for the titles above and the notes below.
        margin, gap, above, below = 0.3, 0.6, 1.3, 0.8
        width = min(18.0, max(10.0, 0.45 * columns + gaps * gap + 2 * margin))
        height = min(10.0, max(4.5, 0.45 * rows + above + below))
        cell = min((width - gaps * gap - 2 * margin) / columns, (height - above - below) / rows)
        fig = Figure(figsize=(width, height))
        panels = []
        x = (width - columns * cell - gaps * gap) / 2
        for h, w in shapes:
            y = below + (height - above - below - h * cell) / 2
            panels.append(
                fig.add_axes((x / width, y / height, w * cell / width, h * cell / height))
            )
            x += w * cell + gap
        points = 72 * cell

        def colour(kind: str) -> str:
            return _COLOURS[kind]

        inputs = [[self.input_label(i, j) for j in range(W)] for i in range(H)]
        _cells(panels[0], [[INPUT] * W] * H, inputs, colour, points)
        panels[0].set_title(f"input x ({H}x{W})", fontsize=10)
        _cells(panels[1], [[TAP] * kw] * kh, self._kernel_cells(), colour, points)
        panels[1].set_title(f"kernel w ({kh}x{kw})", fontsize=10)
        texts = [
            [self.cell_text(i, j) if self.kinds[i][j] != PAD else "" for j in range(GW)]
            for i in range(GH)
        ]
        window = (*self.window_corner(r, c), ah.reach + 1, aw.reach + 1)
        _cells(panels[2], self.kinds, texts, colour, points, window=window)
        panels[2].set_title(f"zeros inserted, padded ({GH}x{GW})", fontsize=10)
        taps = [[TAP if t != "0" else ZERO for t in row] for row in flipped]
        _cells(panels[3], taps, flipped, colour, points)
        panels[3].set_title("w turned 180°", fontsize=10)
        if self.folds:
            ring = panels.pop(4)
            texts = [[self.ring_text(u, v) for v in range(aw.computed)] for u in range(ah.computed)]
            corner = self.window_corner(0, 0)
            _cells(ring, self.ring_kinds(), texts, _RING_COLOURS.__getitem__, points)
            ring.add_patch(_frame(corner, (OH, OW)))
            ring.set_title(
                f"computed {ah.computed}x{aw.computed}: the ring folds back", fontsize=10
            )
            ring.set_xlabel(f"padding_mode='{self.mode}': (yij) is added onto yij", fontsize=9)

        top = max(1, int(self.overlap.max()))
        shades = {n: _overlap_colour(n, top) for n in range(top + 1)}
        counts = [[int(v) for v in row] for row in self.overlap]
        texts = [[str(n) for n in row] for row in counts]
        _cells(panels[4], counts, texts, shades.__getitem__, points, window=(r, c, 1, 1))
        panels[4].set_title(f"output ({OH}x{OW}): products per pixel", fontsize=10)
        even = all(len(set(axis.phase_taps())) == 1 for axis in self.axes)
        panels[4].set_xlabel(
            "even overlap" if even else "uneven overlap: checkerboard artifacts", fontsize=9
        )

        formulas = [
            f"({a.I}-1)*{a.s} - {a.padding_text()} + {a.d}*({a.k}-1) + {a.op} + 1 = {a.output}"
            for a in (self.axes[:1] if ah == aw else self.axes)
        ]
        pads = "2*p" if all(axis.symmetric for axis in self.axes) else "p_before - p_after"
        fig.suptitle(
            f"ConvTranspose2d(1, 1, {self._arguments()}): {H}x{W} -> {OH}x{OW}\n"
            f"O = (I-1)*s - {pads} + d*(k-1) + output_padding + 1:   " + ";   ".join(formulas),
            fontsize=11,
            y=1 - 0.15 / height,
            va="top",
        )
        legend = "blue: input   grey: inserted zeros   white: padding"
        if any(EXTRA in row for row in self.kinds):
            legend += "   orange: output_padding"
        note = f"{legend}      red: {self.contribution_text(r, c)}"
        fig.text(0.5, 0.15 / height, note, ha="center", va="bottom", fontsize=9)
        return fig

    def save(self, path: str) -> None:
        """Draws :meth:`figure` to ``path`` (PNG, SVG, PDF, ... by its extension)."""
        self.figure().savefig(path, dpi=120)


_RING_COLOURS = {INPUT: "#dadaeb", PAD: "#fdae6b"}


def _frame(corner: tuple[int, int], size: tuple[int, int]) -> Any:
    """A black frame around the output inside the computed grid."""
    from matplotlib.patches import Rectangle

    (r, c), (h, w) = corner, size
    return Rectangle((c - 0.5, r - 0.5), w, h, fill=False, edgecolor="#000000", linewidth=2)


_COLOURS = {INPUT: "#9ecae1", ZERO: "#eeeeee", PAD: "#ffffff", EXTRA: "#fdd0a2", TAP: "#a1d99b"}


def _overlap_colour(n: int, top: int) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    return colormaps["Purples"](0.1 + 0.55 * n / top)


def _cells(
    ax: Any,
    kinds: Sequence[Sequence[Any]],
    texts: Sequence[Sequence[str]],
    colour: Callable[[Any], Any],
    cell: float,
    window: tuple[int, int, int, int] | None = None,
) -> None:
    """Draws a table of cells, each about ``cell`` points wide, on ``ax``: background
    ``colour(kind)``, centred text, grid lines, and a red frame around ``window = (row, column,
    height, width)``."""
    from matplotlib.patches import Rectangle

    rows, cols = len(kinds), len(kinds[0])
    longest = max(len(t) for row in texts for t in row)
    # A character is about 0.6 of the font size wide: fill at most 80% of the cell.
    size = max(4.0, min(11.0, 0.8 * cell / (0.6 * max(2, longest)), 0.55 * cell))
    for i in range(rows):
        for j in range(cols):
            ax.add_patch(
                Rectangle(
                    (j - 0.5, i - 0.5),
                    1,
                    1,
                    facecolor=colour(kinds[i][j]),
                    edgecolor="#888888",
                    linewidth=0.6,
                )
            )
            ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=size)
    if window is not None:
        r, c, h, w = window
        ax.add_patch(
            Rectangle((c - 0.5, r - 0.5), w, h, fill=False, edgecolor="#d62728", linewidth=2.5)
        )
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


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
    if reference.shape != (ah.output, aw.output):  # the formula printed is the one convt uses
        raise AssertionError(f"explain: output {reference.shape} != {(ah.output, aw.output)}")
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
        valid_sizes=_as_tuple(
            functional.valid_output_sizes(
                size, ksize, args["stride"], options["padding"], args["dilation"]
            )
        ),
    )


def _as_tuple(sizes: range | tuple[range, ...]) -> tuple[range, ...]:
    return sizes if isinstance(sizes, tuple) else (sizes,)


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
