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


def draw(e: Explanation) -> Figure:
    """The explanation as a matplotlib Figure."""
    from matplotlib.figure import Figure

    (ah, aw), (H, W), (kh, kw) = e.axes, e.input_size, e.kernel_size  # noqa: N806
    (GH, GW), (OH, OW) = e.grid_size, e.output_size  # noqa: N806
    r, c = e.example_pixel()
    flipped = e.flipped_cells()
    shapes = [(H, W), (kh, kw), (GH, GW), (len(flipped), len(flipped[0])), (OH, OW)]
    if e.folds:  # the computed output with its ring, before it folds back
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
        panels.append(fig.add_axes((x / width, y / height, w * cell / width, h * cell / height)))
        x += w * cell + gap
    points = 72 * cell

    def colour(kind: str) -> str:
        return _COLOURS[kind]

    inputs = [[e.input_label(i, j) for j in range(W)] for i in range(H)]
    _cells(panels[0], [[INPUT] * W] * H, inputs, colour, points)
    panels[0].set_title(f"input x ({H}x{W})", fontsize=10)
    _cells(panels[1], [[TAP] * kw] * kh, e.kernel_cells(), colour, points)
    panels[1].set_title(f"kernel w ({kh}x{kw})", fontsize=10)
    texts = [
        [e.cell_text(i, j) if e.kinds[i][j] != PAD else "" for j in range(GW)] for i in range(GH)
    ]
    window = (*e.window_corner(r, c), ah.reach + 1, aw.reach + 1)
    _cells(panels[2], e.kinds, texts, colour, points, window=window)
    panels[2].set_title(f"zeros inserted, padded ({GH}x{GW})", fontsize=10)
    taps = [[TAP if t != "0" else ZERO for t in row] for row in flipped]
    _cells(panels[3], taps, flipped, colour, points)
    panels[3].set_title("w turned 180°", fontsize=10)
    if e.folds:
        ring = panels.pop(4)
        texts = [[e.ring_text(u, v) for v in range(aw.computed)] for u in range(ah.computed)]
        corner = e.window_corner(0, 0)
        _cells(ring, e.ring_kinds(), texts, _RING_COLOURS.__getitem__, points)
        ring.add_patch(_frame(corner, (OH, OW)))
        ring.set_title(f"computed {ah.computed}x{aw.computed}: the ring folds back", fontsize=10)
        ring.set_xlabel(f"padding_mode='{e.mode}': (yij) is added onto yij", fontsize=9)

    top = max(1, int(e.overlap.max()))
    shades = {n: _overlap_colour(n, top) for n in range(top + 1)}
    counts = [[int(v) for v in row] for row in e.overlap]
    texts = [[str(n) for n in row] for row in counts]
    _cells(panels[4], counts, texts, shades.__getitem__, points, window=(r, c, 1, 1))
    panels[4].set_title(f"output ({OH}x{OW}): products per pixel", fontsize=10)
    panels[4].set_xlabel(
        "even overlap" if e.even else "uneven overlap: checkerboard artifacts", fontsize=9
    )

    formulas = [sizes(a, spaced=False) for a in (e.axes[:1] if ah == aw else e.axes)]
    fig.suptitle(
        f"ConvTranspose2d(1, 1, {arguments(e)}): {H}x{W} -> {OH}x{OW}\n"
        f"{size_formula(e, spaced=False)}:   " + ";   ".join(formulas),
        fontsize=11,
        y=1 - 0.15 / height,
        va="top",
    )
    legend = "blue: input   grey: inserted zeros   white: padding"
    if any(EXTRA in row for row in e.kinds):
        legend += "   orange: output_padding"
    note = f"{legend}      red: {e.contribution_text(r, c)}"
    fig.text(0.5, 0.15 / height, note, ha="center", va="bottom", fontsize=9)
    return fig


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
