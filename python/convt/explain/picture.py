"""The explanation as ``python -m convt explain --save`` draws it with matplotlib: the input, the
kernel, the zero-inserted and padded input with the window of one output pixel, the flipped
kernel, and the number of products per output pixel, all drawn with cells of one size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .model import EXTRA, INPUT, PAD, TAP, ZERO, Explanation
from .text import arguments, size_formula, sizes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_COLOURS = {INPUT: "#9ecae1", ZERO: "#eeeeee", PAD: "#ffffff", EXTRA: "#fdd0a2", TAP: "#a1d99b"}
_RING_COLOURS = {INPUT: "#dadaeb", PAD: "#fdae6b"}


#: Inches: the figure's margins, the space between panels, and between the blocks of text.
MARGIN, GAP, SPACE = 0.3, 0.6, 0.15
#: The smallest font, in points, a cell's label is drawn at; cells too small for it stay blank.
SMALLEST_LABEL = 6.0


def draw(e: Explanation) -> Figure:
    """The explanation as a matplotlib Figure, sized to hold its text."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    (ah, aw), (H, W), (kh, kw) = e.axes, e.input_size, e.kernel_size  # noqa: N806
    (GH, GW), (OH, OW) = e.grid_size, e.output_size  # noqa: N806
    r, c = e.example_pixel()
    flipped = e.flipped_cells()
    shapes = [(H, W), (kh, kw), (GH, GW), (len(flipped), len(flipped[0])), (OH, OW)]
    if e.folds:  # the computed output with its ring, before it folds back
        shapes.insert(4, (ah.computed, aw.computed))
    cell = _cell_inches(shapes)
    fig = Figure()
    renderer = FigureCanvasAgg(fig).get_renderer()
    panels = [fig.add_axes((0, 0, 1, 1)) for _ in shapes]
    points = 72 * cell

    def cells(panel: Any, kinds: Any, texts: Any, colour: Any = _COLOURS.__getitem__, **kw: Any):
        return _cells(panel, kinds, texts, colour, points, renderer, **kw)

    labelled = [
        cells(
            panels[0],
            [[INPUT] * W] * H,
            [[e.input_label(i, j) for j in range(W)] for i in range(H)],
        ),
        cells(panels[1], [[TAP] * kw] * kh, e.kernel_cells()),
    ]
    panels[0].set_title(f"input x ({H}x{W})", fontsize=10)
    panels[1].set_title(f"kernel w ({kh}x{kw})", fontsize=10)
    texts = [
        [e.cell_text(i, j) if e.kinds[i][j] != PAD else "" for j in range(GW)] for i in range(GH)
    ]
    window = (*e.window_corner(r, c), ah.reach + 1, aw.reach + 1)
    labelled.append(cells(panels[2], e.kinds, texts, window=window))
    panels[2].set_title(f"zeros inserted, padded ({GH}x{GW})", fontsize=10)
    taps = [[TAP if t != "0" else ZERO for t in row] for row in flipped]
    labelled.append(cells(panels[3], taps, flipped))
    panels[3].set_title("w turned 180°", fontsize=10)
    output = panels[-1]
    if e.folds:
        ring = panels[4]
        texts = [[e.ring_text(u, v) for v in range(aw.computed)] for u in range(ah.computed)]
        labelled.append(cells(ring, e.ring_kinds(), texts, _RING_COLOURS.__getitem__))
        ring.add_patch(_frame(e.window_corner(0, 0), (OH, OW)))
        ring.set_title(f"computed {ah.computed}x{aw.computed}: the ring folds back", fontsize=10)
        ring.set_xlabel(f"padding_mode='{e.mode}': (yij) is added onto yij", fontsize=9)

    top = max(1, int(e.overlap.max()))
    shades = {n: _overlap_colour(n, top) for n in range(top + 1)}
    counts = [[int(v) for v in row] for row in e.overlap]
    texts = [[str(n) for n in row] for row in counts]
    labelled.append(cells(output, counts, texts, shades.__getitem__, window=(r, c, 1, 1)))
    output.set_title(f"output ({OH}x{OW}): products per pixel", fontsize=10)
    output.set_xlabel(
        "even overlap" if e.even else "uneven overlap: checkerboard artifacts", fontsize=9
    )

    formulas = [sizes(a, spaced=False) for a in (e.axes[:1] if ah == aw else e.axes)]
    title = fig.suptitle(
        f"ConvTranspose2d(1, 1, {arguments(e)}): {H}x{W} -> {OH}x{OW}\n"
        f"{size_formula(e, spaced=False)}:   " + ";   ".join(formulas),
        fontsize=11,
        va="top",
    )
    legend = "blue: input   grey: inserted zeros   white: padding"
    if any(EXTRA in row for row in e.kinds):
        legend += "   orange: output_padding"
    lines = [f"{legend}      red: {e.contribution_text(r, c)}"]
    if not all(labelled):
        lines.append("labels omitted: cells too small to read them; the text output has them all")
    note = fig.text(0.5, 0, "\n".join(lines), ha="center", va="bottom", fontsize=9)
    _fit(fig, panels, shapes, cell, title, note, renderer)
    return fig


def _cell_inches(shapes: Sequence[tuple[int, int]]) -> float:
    """The side of a cell: the panels side by side fill a figure of at most 18 x 10 inches,
    with cells of at most 0.45 inches."""
    gaps = len(shapes) - 1
    columns, rows = sum(w for _, w in shapes), max(h for h, _ in shapes)
    above, below = 1.3, 0.8  # the titles above the panels, the notes below
    width = min(18.0, max(10.0, 0.45 * columns + gaps * GAP + 2 * MARGIN))
    height = min(10.0, max(4.5, 0.45 * rows + above + below))
    return min((width - gaps * GAP - 2 * MARGIN) / columns, (height - above - below) / rows)


def _fit(
    fig: Figure,
    panels: Sequence[Any],
    shapes: Sequence[tuple[int, int]],
    cell: float,
    title: Any,
    note: Any,
    renderer: Any,
) -> None:
    """Sizes the figure to its panels and text, as the renderer measures the text: each panel
    gets a slot as wide as its cells, its title and its caption, the slots side by side; the
    title above them and the notes below, each as wide and tall as they are."""
    dpi = fig.dpi

    def inches(text: Any) -> tuple[float, float]:
        if not text.get_text():
            return 0.0, 0.0
        box = text.get_window_extent(renderer)
        return box.width / dpi, box.height / dpi

    slots = [
        max(w * cell, inches(p.title)[0], inches(p.xaxis.label)[0])
        for p, (_, w) in zip(panels, shapes, strict=True)
    ]
    # The title's 6 points of pad, the caption's 4: matplotlib's defaults.
    heads = max(inches(p.title)[1] for p in panels) + 6 / 72
    feet = max(inches(p.xaxis.label)[1] + 4 / 72 for p in panels)
    above = SPACE + inches(title)[1] + SPACE + heads
    below = SPACE + inches(note)[1] + SPACE + feet
    row = sum(slots) + GAP * (len(slots) - 1)
    rows = max(h for h, _ in shapes) * cell
    width = max(10.0, max(row, inches(title)[0], inches(note)[0]) + 2 * MARGIN)
    height = max(4.5, above + rows + below)
    fig.set_size_inches(width, height)
    x = (width - row) / 2
    for panel, (h, w), slot in zip(panels, shapes, slots, strict=True):
        left = x + (slot - w * cell) / 2
        bottom = below + (height - above - below - h * cell) / 2
        panel.set_position((left / width, bottom / height, w * cell / width, h * cell / height))
        x += slot + GAP
    title.set_y(1 - SPACE / height)
    note.set_y(SPACE / height)


def save(e: Explanation, path: str) -> None:
    """Draws the figure to ``path`` (PNG, SVG, PDF, ... by its extension)."""
    draw(e).savefig(path, dpi=120)


def _frame(corner: tuple[int, int], size: tuple[int, int]) -> Any:
    """A black frame around the output inside the computed grid."""
    from matplotlib.patches import Rectangle

    (r, c), (h, w) = corner, size
    return Rectangle((c - 0.5, r - 0.5), w, h, fill=False, edgecolor="#000000", linewidth=2)


def _overlap_colour(n: int, top: int) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    return colormaps["Purples"](0.1 + 0.55 * n / top)


def _cells(
    ax: Any,
    kinds: Sequence[Sequence[Any]],
    texts: Sequence[Sequence[str]],
    colour: Callable[[Any], Any],
    cell: float,
    renderer: Any,
    window: tuple[int, int, int, int] | None = None,
) -> bool:
    """Draws a table of cells, each ``cell`` points wide, on ``ax``: background
    ``colour(kind)``, grid lines, a red frame around ``window = (row, column, height, width)``,
    and the texts centred in their cells if they can be read there. Returns whether they were
    drawn."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    rows, cols = len(kinds), len(kinds[0])
    size = _label_points(texts, cell, renderer)
    # One collection, not a patch per cell: adding thousands of patches one by one takes
    # seconds.
    squares = [Rectangle((j - 0.5, i - 0.5), 1, 1) for i in range(rows) for j in range(cols)]
    colours = [colour(kinds[i][j]) for i in range(rows) for j in range(cols)]
    ax.add_collection(
        PatchCollection(squares, facecolors=colours, edgecolors="#888888", linewidths=0.6)
    )
    for i in range(rows):
        for j in range(cols):
            if size is not None and texts[i][j]:
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
    return size is not None


def _label_points(texts: Sequence[Sequence[str]], cell: float, renderer: Any) -> float | None:
    """The font size, in points, at which the widest text fills at most 85% of a cell ``cell``
    points wide (and 55% of its height, 11 points at most), as the renderer measures it; None
    when that is smaller than :data:`SMALLEST_LABEL`."""
    from matplotlib.font_manager import FontProperties

    size = min(11.0, 0.55 * cell)
    widest = max(
        renderer.get_text_width_height_descent(text, FontProperties(size=size), ismath=False)[0]
        for row in texts
        for text in row
    )
    widest *= 72 / renderer.dpi
    if widest > 0.85 * cell:
        size *= 0.85 * cell / widest
    return size if size >= SMALLEST_LABEL else None
