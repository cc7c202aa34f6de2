"""The fuzzer's runner (tests/fuzz) is crash-safe: a worker that dies or hangs is replaced, and
the case it was running is saved as a reproducer that replays; a clean run exits 0."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fuzz(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "tests.fuzz", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_crashes_and_hangs_are_saved_as_reproducers(tmp_path):
    run = fuzz(
        "--minutes",
        "0.5",
        "--workers",
        "1",
        "--seed",
        "3",
        "--timeout",
        "5",
        "--findings",
        str(tmp_path),
        "--calls",
        "60",
        env={"CONVT_FUZZ_FAULTS": "crash@4,hang@9"},
    )
    assert run.returncode == 1, run.stdout + run.stderr
    saved = {path.name for path in tmp_path.glob("*.json")}
    assert {"crash-3-4.json", "hang-3-9.json"} <= saved, (saved, run.stdout)
    crash = json.loads((tmp_path / "crash-3-4.json").read_text())
    assert crash["case"]["seed"] == 3 and crash["case"]["index"] == 4
    # the worker went on after each: cases past the faults ran
    assert "calls in" in run.stdout
    replayed = fuzz("--replay", str(tmp_path / "crash-3-4.json"))
    assert '"index": 4' in replayed.stdout, replayed.stdout + replayed.stderr


def test_cases_are_the_same_in_every_process():
    from fuzz.cases import make_case

    assert make_case(11, 7) == make_case(11, 7)
    assert make_case(11, 7) != make_case(11, 8)


def test_an_allocation_larger_than_the_machine_is_an_answer_and_other_memory_errors_are_not():
    # A 16 TiB weight fails to allocate as NumPy's MemoryError, as PyTorch's would; a MemoryError
    # that is not an allocation's is a finding.
    script = """
from unittest import mock
from tests.fuzz.execute import Finding, run_case
case = {"kind": "hostile", "function": "nn.Conv1d", "args": {},
        "kwargs": {"in_channels": 2**40, "out_channels": 1, "kernel_size": 2}}
print("calls", run_case(case))
with mock.patch("convt.nn.Conv1d", side_effect=MemoryError("out of luck")):
    try:
        run_case(case)
    except Finding as finding:
        print("finding", finding.kind)
"""
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.stdout.split() == ["calls", "1", "finding", "unexpected", "MemoryError"], (
        run.stdout + run.stderr
    )
