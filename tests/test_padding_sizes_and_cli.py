"""Which output sizes a layer gives and a transposed layer accepts (output_size and
valid_output_sizes, both read from the geometry), and padding modes and asymmetric padding in
``python -m convt explain`` and ``gradcheck``.

The oracles: the shapes convt's functions return, the convolution mapping each accepted size
back to the input, the refusal of the sizes just outside the range, and for explain the output
of conv_transpose2d itself, which every listed product and every formulation must add up to.
"""

import importlib.util

import numpy as np
import pytest
from convt import functional
from convt.__main__ import main
from convt.explain import PAD, explain

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
MODES = ("zeros", "reflect", "replicate", "circular")


def run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


# (input size, kernel, stride, padding, dilation)
SIZES = [
    (12, 3, 2, 1, 1),
    (5, 4, 3, 0, 1),
    (7, 3, 1, 2, 2),
    (4, 2, 4, ((1, 2),), 1),
    (6, 5, 3, "same", 1),
    (3, 3, 5, "valid", 2),
]


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", SIZES)
def test_valid_output_sizes_are_exactly_those_output_size_accepts(
    size, kernel, stride, padding, dilation
):
    sizes = functional.valid_output_sizes(size, kernel, stride, padding, dilation)
    assert isinstance(sizes, range) and sizes.step == 1 and len(sizes) >= 1
    x = np.ones((1, 1, size))
    w = np.ones((1, 1, kernel))
    options = dict(stride=stride, padding=padding, dilation=dilation)
    for n in sizes:
        y = functional.conv_transpose1d(x, w, **options, output_size=(n,))
        assert y.shape[-1] == n
        # Each is a size the convolution with the same arguments maps back to the input.
        assert functional.conv1d(np.ones((1, 1, n)), w, **options).shape[-1] == size
        assert functional.output_size(n, kernel, **options) == size
    for n in (sizes.start - 1, sizes.stop):
        with pytest.raises(ValueError, match="not reachable"):
            functional.conv_transpose1d(x, w, **options, output_size=(n,))
    default = functional.conv_transpose1d(x, w, **options).shape[-1]
    assert functional.output_size(size, kernel, **options, transposed=True) == default
    assert default in sizes


def test_the_question_of_23_and_24():
    """Both convolve to 12, so the transposed layer must be told which to give back."""
    assert functional.output_size(23, 3, 2, 1) == functional.output_size(24, 3, 2, 1) == 12
    assert functional.valid_output_sizes(12, 3, stride=2, padding=1) == range(23, 25)


def test_tuples_give_one_answer_per_dimension():
    sizes = functional.valid_output_sizes((4, 6, 3), (3, 2, 1), (2, 3, 1), ((1, 1), (0, 2), (0, 0)))
    assert sizes == (range(7, 9), range(15, 18), range(3, 4))
    x = np.ones((1, 1, 4, 6, 3))
    w = np.ones((1, 1, 3, 2, 1))
    options = dict(stride=(2, 3, 1), padding=((1, 1), (0, 2), (0, 0)))
    assert functional.conv_transpose3d(x, w, **options).shape[2:] == tuple(r[0] for r in sizes)
    assert functional.output_size((4, 6, 3), (3, 2, 1), **options, transposed=True) == (7, 15, 3)
    assert functional.output_size((7, 16, 3), (3, 2, 1), **options) == (4, 6, 3)


@pytest.mark.parametrize("mode", MODES)
def test_output_size_is_the_shape_the_functions_give(mode):
    x = np.ones((1, 1, 9, 8))
    w = np.ones((1, 1, 3, 2))
    options = dict(stride=(2, 3), padding=((2, 1), (1, 0)), dilation=(1, 2), padding_mode=mode)
    assert (
        functional.output_size((9, 8), (3, 2), **options)
        == functional.conv2d(x, w, **options).shape[2:]
    )
    y = functional.conv_transpose2d(x, w, **options, output_padding=1)
    assert (
        functional.output_size((9, 8), (3, 2), **options, output_padding=1, transposed=True)
        == y.shape[2:]
    )


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: functional.output_size(4, 5), ValueError, r"output_size: conv1d: kernel size 5"),
        (lambda: functional.output_size((4, 4), (3, 3, 3)), ValueError, "kernel_size must have"),
        (lambda: functional.output_size(4, 3, output_padding=1), ValueError, "transposed"),
        (lambda: functional.output_size("4", 3), TypeError, "input_size must be an int"),
        (lambda: functional.valid_output_sizes(4, 3, stride=0), ValueError, "stride"),
        (
            lambda: functional.output_size(2, 1, padding=2, padding_mode="reflect"),
            ValueError,
            "reflect",
        ),
    ],
)
def test_size_questions_with_bad_arguments_are_refused(call, error, message):
    with pytest.raises(error, match=message):
        call()


# (input, kernel, stride, padding, output_padding, dilation, mode)
EXPLAINED = [
    ((3, 3), (3, 3), (2, 2), ((1, 2), (0, 1)), (0, 0), (1, 1), "zeros"),
    ((4, 3), (3, 2), (2, 1), ((1, 1), (1, 1)), (1, 0), (1, 1), "circular"),
    ((4, 4), (3, 3), (2, 2), ((1, 2), (2, 0)), (0, 0), (1, 1), "reflect"),
    ((3, 4), (2, 3), (1, 2), ((0, 1), (1, 1)), (0, 1), (1, 1), "replicate"),
    ((3, 3), (2, 2), (1, 1), ((1, 1), (1, 1)), (0, 0), (2, 2), "circular"),
    ((4, 4), (3, 3), (3, 3), ((3, 3), (3, 3)), (0, 0), (1, 1), "circular"),
]


@pytest.mark.parametrize("size, kernel, stride, padding, op, dilation, mode", EXPLAINED)
def test_explanation_with_a_mode_or_asymmetric_pads_is_what_convt_computes(
    size, kernel, stride, padding, op, dilation, mode
):
    e = explain(size, kernel, stride, padding, op, dilation, padding_mode=mode)
    x, w = e.x, e.w
    y = functional.conv_transpose2d(
        x[None, None], w[None, None], None, stride, padding, op, 1, dilation, padding_mode=mode
    )[0, 0]
    assert e.output_size == y.shape and np.array_equal(e.output, y)
    assert e.passed and all(value == 0 for value in e.differences.values())
    for r in range(y.shape[0]):
        for c in range(y.shape[1]):
            terms = e.contributions(r, c)
            assert sum(x[i, j] * w[a, b] for (i, j), (a, b) in terms) == y[r, c]
            assert e.overlap[r, c] == len(terms)
    sizes = functional.valid_output_sizes(size, kernel, stride, padding, dilation)
    assert e.valid_sizes == sizes
    text = e.text()
    shown = sizes[0] if e.axes[0] == e.axes[1] else sizes  # alike axes: one range for both
    assert f"= {shown}." in text.replace("\n   ", " ")
    # The ring: computed cells in parentheses, each naming the output it is added onto.
    assert ("4b. padding_mode=" in text) == (mode != "zeros")
    if mode != "zeros":
        (ah, aw) = e.axes
        kinds = e.ring_kinds()
        assert len(kinds) == ah.computed == y.shape[0] + sum(padding[0])
        ring = sum(row.count(PAD) for row in kinds)
        assert ring == ah.computed * aw.computed - y.size


def test_explain_names_pytorch_only_for_what_pytorch_has():
    assert "torch.nn.ConvTranspose2d" in explain(3, 3, padding=1).text()
    assert "convt.nn.ConvTranspose2d" in explain(3, 3, padding=((1, 0),)).text()
    assert "convt.nn.ConvTranspose2d" in explain(3, 3, padding=1, padding_mode="circular").text()


def test_explain_command_takes_a_mode_and_before_after_padding(capsys):
    argv = ["explain", "--input", "4", "--kernel", "3", "--stride", "2"]
    code, out, _ = run([*argv, "--padding", "1,2", "--padding-mode", "circular"], capsys)
    assert code == 0, out
    assert "padding=((1, 2), (1, 2)), padding_mode='circular'" in out
    assert "4b. padding_mode='circular': the ring folds back" in out
    assert "(y66) (y61)" in out
    code, out, _ = run([*argv, "--padding", "1,2x0", "--output-padding", "1"], capsys)
    assert code == 0 and "padding=((1, 2), (0, 0))" in out
    code, _, err = run([*argv, "--padding", "1,2,3"], capsys)
    assert code == 2 and "before,after per dimension" in err
    code, _, err = run([*argv, "--padding", "4", "--padding-mode", "reflect"], capsys)
    assert code == 2 and "padding_mode='reflect' needs padding smaller than the output" in err


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="needs matplotlib")
def test_explain_draws_the_ring(tmp_path, capsys):
    path = tmp_path / "ring.png"
    argv = ["explain", "--input", "3", "--kernel", "3", "--stride", "2", "--padding", "1"]
    code, _, _ = run([*argv, "--padding-mode", "reflect", "--save", str(path)], capsys)
    assert code == 0 and path.stat().st_size > 0
    figure = explain(3, 3, stride=2, padding=1, padding_mode="reflect").figure()
    titles = [ax.get_title() for ax in figure.axes]
    assert "computed 7x7: the ring folds back" in titles
    plain = explain(3, 3, stride=2, padding=1).figure()
    assert len(plain.axes) == len(figure.axes) - 1


@pytest.mark.parametrize("mode", MODES[1:])
@pytest.mark.parametrize(
    "op, extra",
    [
        ("conv1d", ["--padding", "2,1", "--size", "6"]),
        ("conv2d", ["--padding", "1,2x0,1", "--stride", "2", "--size", "5x4"]),
        ("conv3d", ["--padding", "1", "--kernel", "2", "--size", "3"]),
        ("conv_transpose1d", ["--padding", "0,2", "--stride", "2", "--size", "4"]),
        ("conv_transpose2d", ["--padding", "1,2", "--stride", "2", "--size", "4x3"]),
        ("conv_transpose3d", ["--padding", "1,0", "--kernel", "2", "--size", "3"]),
    ],
)
def test_gradcheck_command_passes_every_mode(op, extra, mode, capsys):
    code, out, err = run(["gradcheck", op, *extra, "--padding-mode", mode], capsys)
    assert code == 0, out + err
    assert f"padding_mode='{mode}'" in out.splitlines()[0]
    assert out.splitlines()[-1] == "PASS"
