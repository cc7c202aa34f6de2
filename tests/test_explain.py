"""``convt.explain`` as a learner reads it: the sizes it teaches are the ones convt computes, and
the picture shows all of its text, inside the figure and large enough to read.

The command's output, step by step, is checked in test_cli.py and test_padding_sizes_and_cli.py.
"""

import re

import pytest
from convt import functional
from convt.explain import Axis, explain

# (input, kernel, stride, padding, output_padding, dilation, padding_mode)
GEOMETRIES = [
    ((3, 3), (3, 3), (2, 2), (1, 1), (1, 1), (1, 1), "zeros"),
    ((3, 4), (3, 2), (2, 1), (1, 1), (1, 0), (2, 2), "zeros"),
    ((5, 5), (3, 3), (2, 2), (3, 3), (1, 1), (1, 1), "zeros"),  # padding crops
    ((4, 4), (2, 2), (1, 1), (0, 0), (1, 1), (2, 2), "zeros"),  # output_padding >= stride
    ((3, 3), (3, 3), (2, 2), ((1, 2), (0, 1)), (0, 0), (1, 1), "zeros"),
    ((4, 3), (3, 2), (2, 1), ((1, 1), (1, 1)), (1, 0), (1, 1), "circular"),
    ((4, 4), (3, 3), (2, 2), ((1, 2), (2, 0)), (0, 0), (1, 1), "reflect"),
]


@pytest.mark.parametrize("size, kernel, stride, padding, op, dilation, mode", GEOMETRIES)
def test_the_size_formula_printed_is_worked_out_to_convts_size(
    size, kernel, stride, padding, op, dilation, mode
):
    e = explain(size, kernel, stride, padding, op, dilation, padding_mode=mode)
    expected = functional.output_size(
        size, kernel, stride, padding, dilation, transposed=True, output_padding=op
    )
    assert e.output_size == expected == e.output.shape
    step_1 = e.text().split("\n\n2. ")[0]
    worked = re.findall(r"^   (?:rows|columns|rows and columns): (.*) = (\d+)$", step_1, re.M)
    assert len(worked) == (1 if e.axes[0] == e.axes[1] else 2)
    for (formula, result), axis in zip(worked, e.axes, strict=False):
        # The learner's arithmetic gives the size convt computes.
        assert eval(formula, {}) == int(result) == axis.output


def test_an_axis_takes_its_sizes_from_convts_geometry(monkeypatch):
    axis = Axis(6, 5, 1, 2, 0, 1, 2, "circular")
    assert (axis.output, axis.computed, axis.grid, axis.sizes) == (6, 10, 14, range(6, 7))
    monkeypatch.setattr(functional, "output_size", lambda *args, **kwargs: 7)
    monkeypatch.setattr(functional, "valid_output_sizes", lambda *args, **kwargs: range(7, 9))
    other = Axis(6, 5, 1, 2, 0, 1, 2, "reflect")
    assert (other.output, other.computed, other.grid) == (7, 11, 15)
    assert other.sizes_to_same_input() == (7, 8)


# (input, kernel, stride, padding, output_padding, dilation, padding_mode) drawn: the issue's
# clipped caption, a ring beside the output, one cell, and cells too small for their labels.
DRAWN = [
    ((3, 4), (3, 2), (2, 1), (1, 1), (1, 0), (2, 2), "zeros"),
    ((4, 4), (3, 3), (2, 2), ((1, 2), (1, 2)), (0, 0), (1, 1), "circular"),
    ((1, 1), (1, 1), (3, 3), (0, 0), (2, 2), (1, 1), "zeros"),
    ((12, 12), (3, 3), (1, 1), (0, 0), (0, 0), (1, 1), "zeros"),
    ((20, 3), (5, 2), (2, 1), (1, 0), (1, 0), (1, 1), "zeros"),
]


def drawn(*geometry):
    """The figure of ``geometry`` as saved, and its renderer."""
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = explain(*geometry[:-1], padding_mode=geometry[-1]).figure()
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return figure, canvas.get_renderer()


def words(figure):
    """The texts that are not cell labels: the title, the panels' titles and captions, the
    notes."""
    texts = [*figure.texts]
    for panel in figure.axes:
        texts += [panel.title, panel.xaxis.label]
    return [text for text in texts if text.get_visible() and text.get_text()]


@pytest.mark.parametrize("geometry", DRAWN)
def test_the_picture_holds_all_its_text(geometry):
    figure, renderer = drawn(*geometry)
    inside = figure.bbox
    everything = words(figure) + [text for panel in figure.axes for text in panel.texts]
    for text in everything:
        box = text.get_window_extent(renderer)
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1, text.get_text()
        assert inside.y0 <= box.y0 and box.y1 <= inside.y1, text.get_text()
    # Nor does one title, caption or note cover another.
    boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in words(figure)]
    for n, (one, box) in enumerate(boxes):
        for other, box_2 in boxes[n + 1 :]:
            assert not box.overlaps(box_2), (one, other)


@pytest.mark.parametrize("geometry", DRAWN)
def test_the_picture_labels_a_cell_only_where_the_label_can_be_read(geometry):
    from convt.explain.picture import SMALLEST_LABEL

    figure, renderer = drawn(*geometry)
    blank = []
    for panel in figure.axes:
        rows, columns = (round(abs(b - a)) for a, b in (panel.get_ylim(), panel.get_xlim()))
        labels = [text for text in panel.texts if text.get_text()]
        if not labels:
            blank.append(panel.get_title())
        for text in labels:
            assert text.get_fontsize() >= SMALLEST_LABEL, text.get_text()
            j, i = text.get_position()
            cell = panel.transData.transform([(j - 0.5, i + 0.5), (j + 0.5, i - 0.5)])
            box = text.get_window_extent(renderer)
            assert cell[0][0] <= box.x0 and box.x1 <= cell[1][0], text.get_text()
            assert cell[0][1] <= box.y0 and box.y1 <= cell[1][1], text.get_text()
        assert rows * columns > 0
    note = figure.texts[-1].get_text()
    assert ("labels omitted: cells too small to read them" in note) == bool(blank)
    if geometry[0] == (12, 12):  # labels like a12,12 in cells of a quarter of an inch
        assert blank == ["input x (12x12)", "zeros inserted, padded (16x16)"]
    if geometry[0] == (3, 4):
        assert blank == []
