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
