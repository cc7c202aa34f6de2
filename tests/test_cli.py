"""The command line as a new user meets it: ``python -m convt demo | gradcheck | explain | bench``.

Each command is run at least once as a real process (exit code, key output lines, no traceback);
the many configurations run in-process through ``convt.__main__.main`` to keep the suite quick.
"""

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys

import convt
import numpy as np
import pytest
from convt import bench as bench_module
from convt import functional
from convt.__main__ import build_parser, main
from convt.explain import EXTRA, INPUT, PAD, ZERO, explain

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_matplotlib = pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
COMMANDS = ("demo", "gradcheck", "explain", "bench")
PNG = b"\x89PNG\r\n\x1a\n"


def run(*args, env_code=None, timeout=120):
    """``python -m convt *args`` in a new process; ``env_code`` runs first instead (e.g. to
    hide matplotlib), then the command line."""
    if env_code is None:
        argv = [sys.executable, "-m", "convt", *args]
    else:
        call = f"import sys\nfrom convt.__main__ import main\nsys.exit(main({list(args)!r}))"
        code = f"{env_code}\n{call}"
        argv = [sys.executable, "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def run_in_process(argv, capsys):
    """``main(argv)`` with argparse's SystemExit turned into its code; returns (code, out, err)."""
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, prefix, fragment=""):
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prefix}: error: "), err
    assert fragment in lines[0]


# ---- the program as a whole ----


def test_help_lists_every_command_with_examples():
    result = run("--help")
    assert result.returncode == 0 and result.stderr == ""
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command
    assert "examples:" in result.stdout
    assert "python -m convt explain --input 3 --kernel 3 --stride 2" in result.stdout


def test_version(capsys):
    code, out, _ = run_in_process(["--version"], capsys)
    assert code == 0 and out.strip() == f"convt {convt.__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command, capsys):
    code, out, err = run_in_process([command, "--help"], capsys)
    assert code == 0 and err == ""
    assert out.startswith(f"usage: convt {command}")
    assert "examples:" in out
    assert f"python -m convt {command}" in out
    assert "``" not in out  # docstring markup stays out of the help


def epilog_examples():
    """Every ``python -m convt ...`` line of every command's --help examples."""
    parser = build_parser()
    actions = next(a for a in parser._actions if a.dest == "command")
    examples = []
    for command, subparser in actions.choices.items():
        text = re.sub(r"\\\n\s*", "", subparser.epilog)
        for line in text.splitlines():
            line = line.split("(")[0].strip()  # drop trailing remarks in parentheses
            if line.startswith("python -m convt "):
                examples.append((command, shlex.split(line)[3:]))
    return examples


EXAMPLES = epilog_examples()


@pytest.mark.parametrize(("command", "argv"), EXAMPLES, ids=[" ".join(a) for _, a in EXAMPLES])
def test_the_examples_in_help_work(command, argv, tmp_path, monkeypatch, capsys):
    if command == "bench" and "--list" not in argv:
        pytest.skip("the benchmark suite takes minutes; test_bench_runs_a_chosen_case runs it")
    if "--save" in argv and not HAS_MATPLOTLIB:
        pytest.skip("matplotlib is not installed")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_in_process(argv, capsys)
    assert code == 0, out + err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "prefix", "fragment"),
    [
        ([], "convt", "the following arguments are required: command"),
        (["frobnicate"], "convt", "invalid choice: 'frobnicate'"),
        (["demo", "--steps", "-3"], "convt demo", "--steps: expected a positive integer, got -3"),
        (["demo", "--seed", "-1"], "convt demo", "--seed"),
        (["demo", "--save", "/no/such/dir/demo.png"], "convt demo", "no such directory"),
        (["demo", "--save", "demo.unknown"], "convt demo", "cannot tell the image type"),
        (["gradcheck"], "convt gradcheck", "the following arguments are required: op"),
        (["gradcheck", "conv4d"], "convt gradcheck", "invalid choice: 'conv4d'"),
        (
            ["gradcheck", "conv1d", "--kernel", "3x3"],
            "convt gradcheck",
            "expected 1 value for a 1-D layer, got 2",
        ),
        (["gradcheck", "conv2d", "--kernel", "3x3x3x3"], "convt gradcheck", "at most 3 values"),
        (["gradcheck", "conv2d", "--kernel", "0"], "convt gradcheck", "positive integers"),
        (["gradcheck", "conv2d", "--stride", "two"], "convt gradcheck", "expected an integer"),
        (["gradcheck", "conv2d", "--output-padding", "1"], "convt gradcheck", "only transposed"),
        (["gradcheck", "conv2d", "--groups", "2"], "convt gradcheck", "divisible by --groups"),
        (["gradcheck", "conv2d", "--dtype", "float16"], "convt gradcheck", "invalid choice"),
        (["gradcheck", "conv2d", "--size", "2", "--kernel", "5"], "convt gradcheck", "conv2d:"),
        (
            ["gradcheck", "conv_transpose2d", "--stride", "2", "--output-padding", "2"],
            "convt gradcheck",
            "conv_transpose2d: output_padding (2) must be smaller than stride (2) or dilation (1)",
        ),
        (["explain", "--input", "0"], "convt explain", "positive integers"),
        (["explain", "--input", "3x4x5"], "convt explain", "at most 2 values"),
        (["explain", "--padding", "-1"], "convt explain", "non-negative integers"),
        (["explain", "--kernel", "3", "--padding", "5"], "convt explain", "is not positive"),
        (["explain", "--input", "40", "--stride", "3"], "convt explain", "draws every cell"),
        (["bench", "--case", "no such case"], "convt bench", "no case matches"),
        (["bench", "--repeats", "0"], "convt bench", "positive integer"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(argv, prefix, fragment, capsys):
    code, _, err = run_in_process(argv, capsys)
    assert_one_line_error(code, err, prefix, fragment)


def test_impossible_geometry_is_a_one_line_error_in_a_real_process():
    result = run(
        "explain", "--input", "3", "--kernel", "3", "--stride", "2", "--output-padding", "2"
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "convt explain: error: conv_transpose2d: output_padding (2) must be smaller than "
        "stride (2) or dilation (1)\n"
    )


@pytest.mark.skipif(shutil.which("convt") is None, reason="the convt script is not on PATH")
def test_the_console_script():
    result = subprocess.run(
        ["convt", "explain", "--input", "2", "--kernel", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "PASS" in result.stdout


# ---- demo ----


def test_demo_trains_both_networks_as_a_new_user_sees_it():
    result = run("demo", "--steps", "60", "--seed", "3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "demo (a): seed 000's network, 10x10 -> 14x14" in out
    assert "ConvTranspose2d(1, 1, kernel_size=(3, 3), stride=(1, 1), bias=False)" in out
    assert "demo (b): up-sampling 8x8 -> 16x16" in out
    assert "ConvTranspose2d(3, 8, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))" in out
    assert "(1): ReLU()" in out
    firsts = [float(v) for v in re.findall(r"first loss: +(\S+)", out)]
    lasts = [float(v) for v in re.findall(r"last loss: +(\S+)", out)]
    assert len(firsts) == len(lasts) == 2
    assert all(last < 0.5 * first for first, last in zip(firsts, lasts, strict=True))
    assert out.count("the loss fell") == 2 and out.rstrip().endswith("both losses fell")
    # a progress bar per network, with the loss
    assert "(a) training" in result.stderr and "(b) training" in result.stderr
    assert result.stderr.count("60/60") >= 2 and "loss=" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "0"], "the loss did NOT fall"),
        (["--lr-upsample", "0"], "the loss did NOT fall"),
        (["--steps", "1"], "a loss did NOT fall"),
    ],
)
def test_demo_exits_1_when_a_loss_does_not_fall(argv, message, capsys):
    code, out, _ = run_in_process(["demo", "--steps", "5", *argv], capsys)
    assert code == 1
    assert message in out and "a loss did NOT fall" in out


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_demo_upsampling_learns_to_beat_nearest_neighbour(seed, capsys):
    code, out, _ = run_in_process(["demo", "--seed", str(seed)], capsys)
    assert code == 0
    last = float(re.findall(r"last loss: +(\S+)", out)[1])
    nearest = float(re.search(r"nearest-neighbour up-sampling: (\S+)\)", out).group(1))
    assert last < nearest


@needs_matplotlib
def test_demo_save_draws_a_png(tmp_path):
    path = tmp_path / "demo.png"
    result = run("demo", "--steps", "20", "--save", str(path))
    assert result.returncode == 0, result.stderr
    assert f"saved {path}" in result.stdout
    assert path.read_bytes().startswith(PNG)


@pytest.mark.parametrize("command", [["demo", "--steps", "5"], ["explain"]])
def test_save_without_matplotlib_is_a_clear_one_line_error(command, tmp_path):
    path = tmp_path / "out.png"
    hide = "import sys\nsys.modules['matplotlib'] = None  # as if it were not installed"
    result = run(*command, "--save", str(path), env_code=hide)
    assert_one_line_error(result.returncode, result.stderr, f"convt {command[0]}", "matplotlib")
    assert "pip install" in result.stderr
    assert result.stdout == "" and not path.exists()  # it fails before doing the work


# ---- gradcheck ----


def test_gradcheck_the_issue_command():
    command = (
        "gradcheck conv_transpose2d --in-channels 2 --out-channels 3 --kernel 3 --stride 2 "
        "--padding 1 --output-padding 1 --dilation 1 --groups 1 --size 5 --dtype float64"
    )
    result = run(*shlex.split(command))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "gradcheck conv_transpose2d(stride=2, padding=1, output_padding=1, groups=1, "
        "dilation=1), float64"
    )
    assert "input (2, 2, 5, 5), weight (2, 3, 3, 3), bias (3,) -> output (2, 3, 10, 10)" in lines[1]
    for name in ("dx (input)", "dw (weight)", "db (bias)"):
        line = next(line for line in lines if line.strip().startswith(name))
        match = re.search(r"max abs error (\S+)  max rel error (\S+)  PASS$", line)
        assert match, line
        assert float(match.group(1)) < 1e-6 and float(match.group(2)) < 1e-6
    assert lines[-1] == "PASS"


# (op, extra arguments): every layer kind, 1-3 dims, with stride, padding, dilation and groups
LAYERS = [
    (
        "conv1d",
        "--stride 2 --padding 1 --dilation 2 --groups 2 --in-channels 4 --out-channels 2 --size 9",
    ),
    ("conv2d", "--stride 2x1 --padding 1x0 --kernel 3x2 --size 6x5"),
    ("conv3d", "--padding 1 --kernel 2 --groups 2 --in-channels 2 --out-channels 4 --size 3"),
    ("conv_transpose1d", "--stride 3 --padding 1 --output-padding 2 --size 4"),
    (
        "conv_transpose2d",
        "--stride 2 --padding 1 --output-padding 1 --dilation 2 --groups 2 --in-channels 4 "
        "--out-channels 2 --size 3",
    ),
    ("conv_transpose3d", "--kernel 2x3x2 --stride 2x1x2 --output-padding 1x0x0 --size 2x3x2"),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("op", "extra"), LAYERS, ids=[layer[0] for layer in LAYERS])
def test_gradcheck_passes_for_every_layer_kind(op, extra, dtype, capsys):
    argv = ["gradcheck", op, *extra.split(), "--dtype", dtype, "--batch", "2", "--seed", "4"]
    code, out, err = run_in_process(argv, capsys)
    assert code == 0, out + err
    assert out.count("PASS") == 4 and out.rstrip().endswith("PASS")
    assert f", {dtype}" in out.splitlines()[0]


def test_gradcheck_no_bias_checks_two_gradients(capsys):
    code, out, _ = run_in_process(["gradcheck", "conv_transpose1d", "--no-bias"], capsys)
    assert code == 0
    assert "no bias" in out and "db (bias)" not in out and out.count("PASS") == 3


def test_gradcheck_fails_with_exit_1_for_a_wrong_gradient(monkeypatch, capsys):
    correct = functional.conv_transpose2d_backward

    def wrong(*args, **kwargs):
        dx, dw, db = correct(*args, **kwargs)
        return dx, np.flip(dw, axis=(-2, -1)), db  # seed 000's bug: the kernel turned

    monkeypatch.setattr(functional, "conv_transpose2d_backward", wrong)
    code, out, _ = run_in_process(["gradcheck", "conv_transpose2d", "--stride", "2"], capsys)
    assert code == 1
    lines = out.splitlines()
    assert re.search(r"dx \(input\) .* PASS$", next(ln for ln in lines if "dx (input)" in ln))
    assert re.search(r"dw \(weight\) .* FAIL  \(worst at ", next(ln for ln in lines if "dw" in ln))
    assert lines[-1] == "FAIL"


# ---- explain ----


ISSUE_EXPLAIN = "explain --input 3 --kernel 3 --stride 2 --padding 1 --output-padding 1"


def test_explain_the_issue_command():
    result = run(*ISSUE_EXPLAIN.split())
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    expected_lines = [
        "torch.nn.ConvTranspose2d(1, 1, kernel_size=3, stride=2, padding=1, output_padding=1)",
        "   rows and columns: (3 - 1)*2 - 2*1 + 1*(3 - 1) + 1 + 1 = 6",
        "   output: 6x6",
        "      pad d*(k - 1) - p = 1*(3 - 1) - 1 = 1 on each side, output_padding 1 more at the "
        "end -> 8",
        "      .   .   .   .   .   .   .   +",
        "      . a11   0 a12   0 a13   .   +",
        "      .   0   0   0   0   0   .   +",
        "      +   +   +   +   +   +   +   +",
        "    w11 w12 w13    w33 w32 w31",
        "    a21   0 a22     w13 w12 w11",
        "   y22 = a11*w33 + a12*w31 + a21*w13 + a22*w11",
        "   y11 = a11*w22",
        "   y66 = a33*w33",
        "    2 4 2 4 2 2",
        "   rows and columns: the 3 taps (dilation 1) fall on the 2 stride phases as 2 + 1",
        "       56 119  64 135  72  81",
        "   max |difference| from y: (i) 0, (ii) 0, (iii) 0   PASS",
    ]
    lines = out.splitlines()
    for line in expected_lines:
        assert line in lines, line
    assert "checkerboard artifacts" in out


# (input, kernel, stride, padding, output_padding, dilation)
GEOMETRIES = [
    ("3", "2", "1", "0", "0", "1"),  # seed 001
    ("4", "3", "1", "1", "0", "1"),
    ("3", "3", "2", "0", "0", "1"),
    ("3", "4", "2", "1", "0", "1"),  # even overlap
    ("4", "3", "3", "1", "2", "1"),
    ("2", "5", "3", "2", "1", "1"),
    ("3", "3", "2", "1", "1", "2"),
    ("4", "2", "1", "0", "1", "2"),  # output_padding >= stride, allowed by the dilation
    ("5", "3", "1", "3", "0", "1"),  # padding beyond the kernel's reach: cropped
    ("5", "3", "2", "3", "1", "1"),  # cropped, and output_padding
    ("3x5", "2x3", "2x1", "0x2", "1x0", "1x2"),
    ("1", "1", "3", "0", "2", "1"),
    ("6x2", "3x1", "3x2", "1x0", "0x1", "3x1"),
]


@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "op", "dilation"), GEOMETRIES)
def test_explain_three_formulations_agree(size, kernel, stride, padding, op, dilation, capsys):
    argv = ["explain", "--input", size, "--kernel", kernel, "--stride", stride, "--padding"]
    argv += [padding, "--output-padding", op, "--dilation", dilation]
    code, out, err = run_in_process(argv, capsys)
    assert code == 0, out + err
    assert out.rstrip().endswith("(i) 0, (ii) 0, (iii) 0   PASS")


def pair(text):
    values = [int(v) for v in text.split("x")]
    return tuple(values * 2) if len(values) == 1 else tuple(values)


@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "op", "dilation"), GEOMETRIES)
def test_explanation_is_what_convt_computes(size, kernel, stride, padding, op, dilation):
    size, kernel, stride = pair(size), pair(kernel), pair(stride)
    padding, op, dilation = pair(padding), pair(op), pair(dilation)
    e = explain(size, kernel, stride, padding, op, dilation)
    x, w = e.x, e.w
    y = functional.conv_transpose2d(
        x[None, None], w[None, None], None, stride, padding, op, 1, dilation
    )[0, 0]
    assert e.output_size == y.shape and np.array_equal(e.output, y)
    assert all(value == 0 for value in e.differences.values())
    for key in ("i", "ii", "iii"):
        assert np.array_equal(e.results[key], y)
    # The products listed for each output pixel are the ones that make it, and the overlap
    # count is their number.
    for r in range(y.shape[0]):
        for c in range(y.shape[1]):
            terms = e.contributions(r, c)
            assert sum(x[i, j] * w[a, b] for (i, j), (a, b) in terms) == y[r, c]
            assert e.overlap[r, c] == len(terms)
    # The grid holds the input values at their cells, zeros elsewhere, and its kinds add up.
    kinds = np.array(e.kinds)
    assert e.grid.shape == kinds.shape == e.grid_size
    assert set(np.unique(kinds)) <= {INPUT, ZERO, PAD, EXTRA}
    assert np.all(e.grid[kinds != INPUT] == 0)
    assert sorted(e.grid[kinds == INPUT].tolist()) == sorted(
        v for v in e.grid.ravel().tolist() if v
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--kernel", "4", "--stride", "2", "--padding", "1"], "Even: each stride phase"),
        (["--kernel", "3", "--stride", "2"], "fall on the 2 stride phases as 2 + 1"),
        (["--kernel", "2", "--stride", "2", "--dilation", "2"], "some outputs get no input"),
        (["--kernel", "3"], "Stride 1: away from the borders every output sums all the taps."),
        (["--input", "5", "--padding", "3"], "crop 1 from each side instead"),
        (["--input", "3x4", "--stride", "2x1"], "   columns: 4 (no zeros to insert);"),
    ],
)
def test_explain_notes(argv, expected, capsys):
    code, out, _ = run_in_process(["explain", *argv], capsys)
    assert code == 0
    assert expected in out


def test_explain_numbers_match_seed_001(capsys):
    code, out, _ = run_in_process(["explain", "--input", "3", "--kernel", "2"], capsys)
    assert code == 0
    assert "   y32 = a21*w22 + a22*w21 + a31*w12 + a32*w11" in out.splitlines()


@needs_matplotlib
def test_explain_save_draws_a_png(tmp_path, capsys):
    path = tmp_path / "explain.png"
    code, out, _ = run_in_process([*ISSUE_EXPLAIN.split(), "--save", str(path)], capsys)
    assert code == 0 and out.rstrip().endswith(f"saved {path}")
    assert path.read_bytes().startswith(PNG)
    from matplotlib.image import imread

    height, width, _ = imread(path).shape
    assert width > height > 300


# ---- bench ----


def test_bench_lists_its_cases(capsys):
    code, out, _ = run_in_process(["bench", "--list"], capsys)
    assert code == 0
    assert out.splitlines() == [
        f"{case.name}{'  (quick)' if case.quick else ''}" for case in bench_module.CASES
    ]
    code, out, _ = run_in_process(["bench", "--list", "--quick", "--case", "dcgan"], capsys)
    assert out.splitlines() == ["DCGAN G 256x16x16 -> 128  (quick)"]


def test_bench_runs_a_chosen_case(tmp_path, capsys):
    path = tmp_path / "results.md"
    argv = ["bench", "--case", "seed 000 10x10", "--repeats", "3", "--budget", "0.05"]
    code, out, err = run_in_process([*argv, "--output", str(path)], capsys)
    assert code == 0, err
    assert out.startswith("Machine: ")
    assert "| case | dtype | fwd convt | fwd torch |" in out
    rows = [line for line in out.splitlines() if line.startswith("| seed 000")]
    assert len(rows) == 1 and rows[0].startswith("| seed 000 10x10 3x3 transposed | float32 |")
    assert path.read_text() == out
    assert "FMA peak" in err and f"wrote {path}" in err  # progress on stderr
