"""The command line: ``python -m convt demo`` trains the network of seed 000 (the question convt
grew from, listed in docs/index.md) and its loss falls."""

import re
import subprocess
import sys

import pytest
from convt.__main__ import main


def losses(output):
    first = float(re.search(r"first loss: +(\S+)", output).group(1))
    last = float(re.search(r"last loss: +(\S+)", output).group(1))
    return first, last


def test_python_m_convt_demo_runs_and_its_loss_falls():
    result = subprocess.run(
        [sys.executable, "-m", "convt", "demo", "--steps", "100", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    first, last = losses(result.stdout)
    assert last < 0.5 * first
    assert "the loss fell" in result.stdout
    assert "ConvTranspose2d(1, 1, kernel_size=(3, 3), stride=(1, 1), bias=False)" in result.stdout
    assert "100/100" in result.stderr  # the progress bar


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_demo_in_process(seed, capsys):
    assert main(["demo", "--steps", "30", "--seed", str(seed)]) == 0
    first, last = losses(capsys.readouterr().out)
    assert last < first


def test_demo_exits_1_when_the_loss_does_not_fall(capsys):
    assert main(["demo", "--steps", "5", "--lr", "0"]) == 1
    assert "the loss did NOT fall" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: command"),
        (["demo", "--steps", "0"], "--steps: expected a positive integer, got 0"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_exit_2_with_a_one_line_error(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_lists_demo(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "demo" in capsys.readouterr().out
