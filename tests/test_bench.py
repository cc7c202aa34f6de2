"""The benchmark report: its work counts come from the geometry, its summary keeps the seed-sized
cases apart from the layers, and without PyTorch it prints '-' where PyTorch's figures would be.
Nothing here asserts a speed: timings on a shared machine are for the bench to print."""

import math
import sys

import numpy as np
import pytest
from convt import _core, bench


@pytest.mark.parametrize("case", bench.CASES, ids=lambda case: case.name)
def test_work_is_the_weight_times_the_output_positions(case):
    """Each y value sums one weight row, so the multiply-adds are the weight's elements times
    the y positions of a channel, times the batch: counted here from the arrays' shapes."""
    geometry = case.geometry()
    small_side = geometry.input_shape if case.transposed else geometry.output_shape
    positions = math.prod(small_side[2:])
    assert geometry.multiply_adds == math.prod(case.weight_shape) * positions * small_side[0]
    assert case.forward_flops() == 2 * geometry.multiply_adds


def fake_result(case, convt_time, torch_time):
    return bench.Result(
        case, (convt_time, torch_time), (3 * convt_time, 3 * torch_time), (0.0, torch_time)
    )


def test_summary_gives_seed_sized_cases_and_layers_their_own_means():
    seed = next(c for c in bench.CASES if c.seed_sized)
    layer = next(c for c in bench.CASES if not c.seed_sized)
    table = bench.main_table([fake_result(seed, 1.0, 4.0), fake_result(layer, 1.0, 1.0)], 100.0)
    lines = [line for line in table.splitlines() if line.startswith("- ")]
    assert lines[0].startswith("- seed-sized cases (1): geometric mean forward 0.25,")
    assert lines[1].startswith("- layers (1): geometric mean forward 1.00,")
    assert lines[2].startswith("- all cases (2): geometric mean forward 0.50,")
    # With one kind only, there is no separate line for all cases.
    table = bench.main_table([fake_result(layer, 1.0, 2.0)], 100.0)
    assert [line[:12] for line in table.splitlines() if line.startswith("- ")] == ["- layers (1)"]


def test_without_pytorch_its_columns_say_dash_not_nan(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    seed = next(c for c in bench.CASES if c.seed_sized)
    report = bench.run(cases=[seed], repeats=3, budget=0.01, log=lambda line: None)
    assert "PyTorch not installed" in report
    assert "nan" not in report.lower()
    row = next(line for line in report.splitlines() if line.startswith(f"| {seed.name} |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    torch_cells = [cells[3], cells[4], cells[7], cells[8], cells[10].split(" / ")[1]]
    assert torch_cells == ["-"] * 5
    assert "geometric mean" not in report


def test_floor_probe_returns_a_new_array_of_the_first_ones_shape_and_dtype():
    a = np.ones((4, 5), dtype=np.float32)
    b = np.ones(3)
    result = _core.floor_probe(a, b)
    assert result.shape == a.shape and result.dtype == a.dtype
    assert not np.shares_memory(result, a) and not np.shares_memory(result, b)


def test_floor_report_gives_each_call_as_a_multiple_of_the_floor():
    report = bench.floor_report(repeats=3)
    assert report.startswith("Call overhead, float64: floor (_core.floor_probe) ")
    assert "_core.convolute 10x10 3x3" in report
    assert "functional.conv_transpose2d seed 000" in report
    assert report.count("x)") == 2
