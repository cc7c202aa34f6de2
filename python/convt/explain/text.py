"""The explanation as ``python -m convt explain`` prints it: seven numbered steps, from the
output size to the three formulations that must agree."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from .model import EXTRA, Axis, Explanation

#: How many output pixels the text lists one by one.
MAX_LISTED = 100


def render(e: Explanation) -> str:
    """The explanation that ``python -m convt explain`` prints."""
    (ah, aw), (H, W), (OH, OW) = e.axes, e.input_size, e.output_size  # noqa: N806
    kh, kw = e.kernel_size
    symmetric = all(axis.symmetric for axis in e.axes)
    # PyTorch's transposed layers take neither asymmetric padding nor a padding_mode.
    library = "torch" if symmetric and not e.folds else "convt"
    out = [
        f"Transposed convolution of a {H}x{W} input by a {kh}x{kw} kernel:",
        f"{library}.nn.ConvTranspose2d(1, 1, {arguments(e)})",
        "",
        f"1. Output size: {size_formula(e, spaced=True)}",
    ]
    for axis, name in _axes_named(e):
        out.append(f"   {name}: {sizes(axis, spaced=True)}")
    out.append(f"   output: {OH}x{OW}")
    out += _output_padding_note(e)
    out += _valid_sizes_note(e)

    out += [
        "",
        "2. The input with stride - 1 zeros between neighbours, padded by d*(k - 1) - p",
    ]
    for axis, name in _axes_named(e):
        out += _grid_lines(axis, name)
    legend = "aij: input x[i-1, j-1]   0: inserted zero   .: padding"
    if any(EXTRA in row for row in e.kinds):
        legend += "   +: output_padding"
    out.append(f"   {legend}")
    out.append(
        _table([[e.cell_text(r, c) for c in range(e.grid_size[1])] for r in range(e.grid_size[0])])
    )

    out += ["", "3. The kernel w, and w turned by 180 degrees (convt.rotate_180) for step 4"]
    if (ah.d, aw.d) != (1, 1):
        out.append(f"   dilation {_value(e, 'd')}: d - 1 zeros between the taps")
    out.append(_side_by_side(e.kernel_cells(), e.flipped_cells()))

    r, c = e.example_pixel()
    gr, gc = e.window_corner(r, c)
    sh, sw = ah.reach + 1, aw.reach + 1
    out += [
        "",
        "4. Each output is the flipped kernel times a window of the grid (valid convolution):",
        f"   {e.output_label(r, c)} uses grid rows {gr + 1}-{gr + sh}, "
        f"columns {gc + 1}-{gc + sw}"
        + (", and the ring cells folded onto it (step 4b)" if e.folds else ""),
    ]
    window = [[e.cell_text(gr + i, gc + j) for j in range(sw)] for i in range(sh)]
    out.append(_side_by_side(window, e.flipped_cells(), middle="*"))
    out.append(f"   {e.contribution_text(r, c)}")
    if e.folds:
        out += _fold_lines(e)

    out += [
        "",
        "5. Every output (scatter: x[i] * w[a] lands on o = i*s + a*d - p, per dimension)",
    ]
    shown = [(rr, cc) for rr in range(OH) for cc in range(OW)][:MAX_LISTED]
    out += [f"   {e.contribution_text(rr, cc)}" for rr, cc in shown]
    if len(shown) < OH * OW:
        out.append(f"   ... and {OH * OW - len(shown)} more")

    out += ["", "6. Products summed into each output pixel (conv_transpose2d of ones by ones)"]
    out.append(_table([[str(int(v)) for v in row] for row in e.overlap]))
    out += _overlap_note(e)

    out += [
        "",
        f"7. Three ways to compute it, all by convt, with x = 1..{H * W} and w = 1..{kh * kw}",
        "   x:",
        _table([[_fmt(v) for v in row] for row in e.x], "      "),
        "   w:",
        _table([[_fmt(v) for v in row] for row in e.w], "      "),
        f"   y = conv_transpose2d(x, w, {_call_arguments(e, transposed=True)}):",
        _table([[_fmt(v) for v in row] for row in e.output], "      "),
    ]
    out += _formulations(e)
    diffs = ", ".join(f"({key}) {v:.3g}" for key, v in e.differences.items())
    verdict = "PASS" if e.passed else "FAIL"
    out.append(f"   max |difference| from y: {diffs}   {verdict}")
    return "\n".join(out)


# ---- the words the text and the picture share ----


def arguments(e: Explanation) -> str:
    """The layer's arguments as PyTorch spells them: ``kernel_size=3, stride=2, ...``."""
    return f"kernel_size={_value(e, 'k')}, " + _call_arguments(e, transposed=True)


def size_formula(e: Explanation, spaced: bool) -> str:
    """The output size formula, ``O = (I - 1)*s - 2*p + ...``."""
    pads = "2*p" if all(axis.symmetric for axis in e.axes) else "p_before - p_after"
    formula = f"O = (I - 1)*s - {pads} + d*(k - 1) + output_padding + 1"
    return formula if spaced else formula.replace(" - 1)", "-1)")


def sizes(axis: Axis, spaced: bool) -> str:
    """The formula with this axis's numbers, and the size convt computes."""
    one = " - 1" if spaced else "-1"
    return (
        f"({axis.I}{one})*{axis.s} - {_padding_text(axis)} + {axis.d}*({axis.k}{one}) + "
        f"{axis.op} + 1 = {axis.output}"
    )


# ---- the steps' notes ----


def _padding_text(axis: Axis) -> str:
    """``2*p``, or ``p_before - p_after`` as the output formula subtracts them."""
    return f"2*{axis.p}" if axis.symmetric else f"{axis.p} - {axis.after_padding}"


def _maps(axis: Axis) -> str:
    lo, hi = axis.sizes_to_same_input()
    return f"only {lo} to {axis.I}" if lo == hi else f"every size from {lo} to {hi} to {axis.I}"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, width=92, initial_indent="   ", subsequent_indent="   ")


def _picks(axis: Axis) -> str:
    lo = axis.sizes[0]
    text = f"output_padding {axis.op} picks {lo} + {axis.op} = {axis.output}"
    if axis.op >= axis.s:
        text += f" (output_padding >= stride is allowed as dilation {axis.d} > stride)"
    return text


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


def _valid_sizes_note(e: Explanation) -> list[str]:
    valid = e.valid_sizes
    if e.axes[0] == e.axes[1]:
        a = e.axes[0]
        pad = str(a.p) if a.symmetric else f"(({a.p}, {a.after_padding}),)"
        call = f"{a.I}, {a.k}, stride={a.s}, padding={pad}, dilation={a.d}"
        shown = str(valid[0])
    else:
        call = (
            f"{e.input_size}, {e.kernel_size}, stride={_value(e, 's')}, "
            f"padding={_value(e, 'p')}, dilation={_value(e, 'd')}"
        )
        shown = str(valid)
    return _wrap(
        f"The sizes output_size= accepts: convt.functional.valid_output_sizes({call}) = {shown}."
    )


def _fold_lines(e: Explanation) -> list[str]:
    (ah, aw) = e.axes
    how = {
        "circular": "wrapped around (the last rows onto the first, the first onto the last)",
        "reflect": "mirrored about the edge (the edge itself not repeated)",
        "replicate": "onto the edge row or column",
    }[e.mode]
    out = [
        "",
        f"4b. padding_mode='{e.mode}': the ring folds back",
        *_wrap(
            f"The valid convolution computes the output with its padding ring, "
            f"{ah.computed}x{aw.computed}; each ring cell (in parentheses) is added onto the "
            f"output it names, {how}. This is the adjoint of the convolution that reads "
            "the ring from its input (PyTorch's Conv2d with this padding_mode)."
        ),
    ]
    cells = [[e.ring_text(u, v) for v in range(aw.computed)] for u in range(ah.computed)]
    out.append(_table(cells))
    r, c = e.example_pixel()
    folded = [f"({u + 1},{v + 1})" for u in ah.folded_from(r) for v in aw.folded_from(c)]
    out.append(
        f"   {e.output_label(r, c)} sums the computed cells at (row, column) " + ", ".join(folded)
    )
    return out


def _axes_named(e: Explanation) -> list[tuple[Axis, str]]:
    """``[(axis, "rows and columns")]`` when both axes are alike, else one entry each."""
    if e.axes[0] == e.axes[1]:
        return [(e.axes[0], "rows and columns")]
    return list(zip(e.axes, ("rows", "columns"), strict=True))


def _value(e: Explanation, name: str) -> str:
    if name == "p" and not all(axis.symmetric for axis in e.axes):
        pairs = [(axis.p, axis.after_padding) for axis in e.axes]
        return f"({pairs[0]}, {pairs[1]})"
    a, b = (getattr(axis, name) for axis in e.axes)
    return str(a) if a == b else f"({a}, {b})"


def _call_arguments(e: Explanation, transposed: bool) -> str:
    names = [("s", "stride", 1), ("p", "padding", 0)]
    names += [("op", "output_padding", 0)] if transposed else []
    names += [("d", "dilation", 1)]
    parts = [
        f"{arg}={_value(e, name)}"
        for name, arg, default in names
        if _value(e, name) != str(default) or arg == "stride"
    ]
    if e.mode != "zeros":
        parts.append(f"padding_mode='{e.mode}'")
    return ", ".join(parts)


def _output_padding_note(e: Explanation) -> list[str]:
    conv = f"Conv2d(1, 1, kernel_size={_value(e, 'k')}, {_call_arguments(e, False)})"
    (oh, ow), (h, w) = e.output_size, e.input_size
    if all(axis.s == 1 and axis.op == 0 for axis in e.axes):
        return _wrap(f"The convolution {conv} maps {oh}x{ow} back to {h}x{w}.")
    if e.axes[0] == e.axes[1]:
        axis = e.axes[0]
        maps, picks = _maps(axis), _picks(axis)
    else:
        maps = "; ".join(f"{name}: {_maps(axis)}" for axis, name in _axes_named(e))
        picks = "; ".join(f"{name}: {_picks(axis)}" for axis, name in _axes_named(e))
    return _wrap(
        f"The convolution {conv} maps {maps}. The transposed convolution is its gradient "
        f"for the input and must be told which size to give back: {picks}."
    )


def _grid_lines(axis: Axis, name: str) -> list[str]:
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


def _overlap_note(e: Explanation) -> list[str]:
    uneven = []
    for axis, name in _axes_named(e):
        if not axis.even:
            taps = axis.phase_taps()
            split = " + ".join(str(t) for t in taps)
            line = (
                f"   {name}: the {axis.k} taps (dilation {axis.d}) fall on the {axis.s} "
                f"stride phases as {split}"
            )
            uneven.append(line + (": some outputs get no input at all" if 0 in taps else ""))
    if not uneven:
        if (e.axes[0].s, e.axes[1].s) == (1, 1):
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


def _formulations(e: Explanation) -> list[str]:
    (ah, aw), (oh, ow) = e.axes, e.output_size
    dilated = (ah.d, aw.d) != (1, 1)
    kernel = "w_dilated" if dilated else "w"
    (rb, _), (cb, _) = ah.cropped, aw.cropped
    ch, cw = ah.computed, aw.computed
    past = rb + ch > ah.full or cb + cw > aw.full
    fold = (
        [
            "         then fold the ring: convt.functional.conv_transpose2d(that, ones 1x1, "
            f"padding={_value(e, 'p')},",
            f"         padding_mode='{e.mode}'), the adjoint of padding a copy with it",
        ]
        if e.folds
        else []
    )
    lines = [
        "   (i)   scatter: each x[i, j] adds x[i, j] * w to the output block at (i*s - p, j*s - p)",
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
        f"{_call_arguments(e, False)},",
        "                                          output_mask=(True, False, False))[0]",
    ]
    if dilated:
        lines.insert(0, "   (w_dilated: w with d - 1 zeros between its taps, as in step 3)")
    return lines
