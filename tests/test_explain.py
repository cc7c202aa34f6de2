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
