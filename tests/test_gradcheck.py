"""convt.gradcheck and convt.jacobian: every op and layer kind passes, wrong gradients fail, and the
Jacobians of seed 001 (the blog post on the gradients of convolution and deconvolution, listed in
docs/index.md) come out with its printed numbers."""

import convt
import numpy as np
import pytest
from convt import nn
from convt.gradcheck import GradcheckReport

F = convt.functional

# (op, input shape, weight shape, kwargs)
OPS = [
    ("conv1d", (2, 4, 7), (6, 2, 3), dict(stride=2, padding=1, dilation=2, groups=2)),
    ("conv2d", (1, 3, 6, 5), (2, 3, 3, 2), dict(stride=(2, 1), padding=(1, 0))),
    ("conv2d", (3, 5, 5), (4, 3, 2, 2), dict(padding="same", dilation=2)),  # unbatched
    ("conv3d", (1, 2, 4, 3, 4), (2, 1, 2, 2, 2), dict(padding=1, groups=2)),
    ("conv_transpose1d", (2, 4, 5), (4, 3, 3), dict(stride=3, padding=1, output_padding=2)),
    (
        "conv_transpose2d",
        (1, 4, 3, 4),
        (4, 2, 3, 3),
        dict(stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2)),
    ),
    (
        "conv_transpose3d",
        (1, 2, 2, 3, 2),
        (2, 2, 2, 1, 2),
        dict(stride=2, output_padding=(1, 0, 0)),
    ),
]


@pytest.mark.parametrize("with_bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize(("op", "x_shape", "w_shape", "kwargs"), OPS, ids=[o[0] for o in OPS])
def test_every_functional_op_passes(op, x_shape, w_shape, kwargs, with_bias):
    rng = np.random.default_rng(0)
    out_channels = w_shape[1] * kwargs.get("groups", 1) if "transpose" in op else w_shape[0]
    inputs = [rng.standard_normal(x_shape), rng.standard_normal(w_shape).astype(np.float32)]
    if with_bias:
        inputs.append(rng.standard_normal(out_channels))
    report = convt.gradcheck(getattr(F, op), tuple(inputs), generator=1, **kwargs)
    assert isinstance(report, GradcheckReport) and report and report.passed
    names = ["input", "weight", "bias"][: len(inputs)]
    assert [result.name for result in report.results] == names
    for result in report.results:
        assert result.passed and result.max_abs_error < 1e-6 and result.max_rel_error < 1e-7
    assert str(report).startswith(f"gradcheck {op}: PASS")
    assert inputs[1].dtype == np.float32  # the caller's arrays are not converted


# (layer, input shape)
LAYERS = [
    (lambda: nn.Conv1d(2, 4, 3, stride=2, padding=1, groups=2), (2, 2, 6)),
    (lambda: nn.Conv2d(2, 3, (2, 3), dilation=(2, 1), bias=False), (1, 2, 6, 5)),
    (lambda: nn.Conv3d(1, 2, 2, padding=1), (1, 1, 3, 2, 3)),
    (lambda: nn.ConvTranspose1d(2, 2, 3, stride=2, output_padding=1), (2, 2, 4)),
    (lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, groups=2), (1, 2, 3, 3)),
    (lambda: nn.ConvTranspose3d(2, 1, 2, stride=(1, 2, 1), bias=False), (1, 2, 2, 3, 2)),
    (
        lambda: nn.Sequential(
            nn.ConvTranspose2d(1, 2, 3), nn.Tanh(), nn.Conv2d(2, 1, 2), nn.Sigmoid()
        ),
        (2, 1, 3, 3),
    ),
    (lambda: nn.Sequential(nn.Conv1d(1, 2, 2), nn.ReLU()), (2, 1, 8)),
]
LAYER_IDS = ["conv1d", "conv2d", "conv3d", "convT1d", "convT2d", "convT3d", "tanh-sigmoid", "relu"]


@pytest.mark.parametrize(("make", "shape"), LAYERS, ids=LAYER_IDS)
def test_every_layer_kind_passes_and_is_left_as_it_was(make, shape):
    convt.manual_seed(0)
    layer = make()
    before = [(p, p.data, p.data.copy(), p.grad) for p in layer.parameters()]
    x = np.random.default_rng(1).standard_normal(shape)
    report = convt.gradcheck(layer, (x,), generator=2)
    assert report
    expected = ["input"] + [name for name, _ in layer.named_parameters()]
    assert [result.name for result in report.results] == expected
    for parameter, data, values, grad in before:
        assert parameter.data is data and parameter.grad is grad
        assert data.dtype == np.float32
        np.testing.assert_array_equal(data, values)
        assert not grad.any()


def test_jacobian_of_conv2d_is_seed_001s():
    """Seed 001, 1.2 and 1.3: conv2d of x = 1..9 (3x3) with kernel [[1, 2], [3, 4]]."""
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    k = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    dx = convt.jacobian(lambda x: F.conv2d(x, k), x)
    assert dx.shape == (1, 1, 2, 2, 1, 1, 3, 3)
    expected_dx = [
        [[1, 2, 0], [3, 4, 0], [0, 0, 0]],
        [[0, 1, 2], [0, 3, 4], [0, 0, 0]],
        [[0, 0, 0], [1, 2, 0], [3, 4, 0]],
        [[0, 0, 0], [0, 1, 2], [0, 3, 4]],
    ]
    np.testing.assert_allclose(dx.reshape(4, 3, 3), expected_dx, atol=1e-8)
    dk = convt.jacobian(lambda k: F.conv2d(x, k), k)
    expected_dk = [[[1, 2], [4, 5]], [[2, 3], [5, 6]], [[4, 5], [7, 8]], [[5, 6], [8, 9]]]
    np.testing.assert_allclose(dk.reshape(4, 2, 2), expected_dk, atol=1e-8)


def test_jacobian_of_conv_transpose2d_is_seed_001s():
    """Seed 001, 2.1-3.3: TensorFlow's conv2d_transpose (VALID, stride 1) of the same numbers."""
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    k = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    y = F.conv_transpose2d(x, k)
    expected_y = [[1, 4, 7, 6], [7, 23, 33, 24], [19, 53, 63, 42], [21, 52, 59, 36]]
    np.testing.assert_array_equal(y.reshape(4, 4), expected_y)
    dx = convt.jacobian(lambda x: F.conv_transpose2d(x, k), x).reshape(4, 4, 3, 3)
    dk = convt.jacobian(lambda k: F.conv_transpose2d(x, k), k).reshape(4, 4, 2, 2)
    assert dx[2][1][1][1] == pytest.approx(3.0, abs=1e-8)  # y32 over a22
    assert dk[2][1][1][0] == pytest.approx(5.0, abs=1e-8)  # y32 over k21
    # and the whole Jacobian is the transposed conv's matrix: J @ v == conv_transpose2d(v, k)
    v = np.random.default_rng(3).standard_normal((1, 1, 3, 3))
    np.testing.assert_allclose(dx.reshape(16, 9) @ v.reshape(9), F.conv_transpose2d(v, k).ravel())


def test_jacobian_of_a_nonlinear_function():
    x = np.linspace(-2, 2, 5)
    np.testing.assert_allclose(convt.jacobian(np.tanh, x), np.diag(1 - np.tanh(x) ** 2), atol=1e-9)
    assert convt.jacobian(lambda v: float(np.sum(v**2)), x).shape == (5,)


def scaled_backward(scale):
    def backward(grad_output, input, weight, **kwargs):
        grad_input, grad_weight, _ = F.conv2d_backward(grad_output, input, weight, **kwargs)
        return grad_input, scale * grad_weight

    return backward


def test_a_wrong_gradient_fails():
    rng = np.random.default_rng(4)
    inputs = (rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)))
    assert convt.gradcheck(F.conv2d, inputs, backward=scaled_backward(1.0), padding=1)
    with pytest.raises(convt.GradcheckError, match=r"conv2d for 'weight' does not match") as info:
        convt.gradcheck(F.conv2d, inputs, backward=scaled_backward(1.01), padding=1)
    assert isinstance(info.value, AssertionError)
    assert "worst at (" in str(info.value)
    report = info.value.report
    assert report["input"].passed and not report["weight"].passed
    report = convt.gradcheck(
        F.conv2d, inputs, backward=scaled_backward(2.0), padding=1, raise_exception=False
    )
    assert not report and not report.passed
    assert report["weight"].max_rel_error == pytest.approx(1.0, rel=1e-6)
    assert "weight" in str(report) and "FAIL" in str(report)


def test_a_wrong_layer_backward_fails():
    class WrongConv(nn.ConvTranspose2d):
        def backward(self, grad_output):
            self.bias.grad += 1.0  # a bias gradient off by one
            return super().backward(grad_output)

    report = convt.gradcheck(WrongConv(1, 2, 3), (np.ones((1, 1, 3, 3)),), raise_exception=False)
    assert not report
    assert [r.name for r in report.results if not r.passed] == ["bias"]
    with pytest.raises(AssertionError, match=r"for 'bias' does not match finite differences"):
        convt.gradcheck(WrongConv(1, 2, 3), np.ones((1, 1, 3, 3)))


def test_a_gradient_of_the_wrong_shape_fails():
    def backward(grad_output, input, weight, **kwargs):
        return F.conv1d_backward(grad_output, input, weight)[0], np.zeros(3)

    x, w = np.ones((1, 1, 4)), np.ones((1, 1, 2))
    report = convt.gradcheck(F.conv1d, (x, w), backward=backward, raise_exception=False)
    assert report["input"].passed and not report["weight"].passed
    assert "analytic gradient has shape (3,), expected shape (1, 1, 2)" in str(report)


def test_gradcheck_argument_errors():
    with pytest.raises(TypeError, match=r"no known gradient for"):
        convt.gradcheck(np.tanh, (np.ones(3),))
    with pytest.raises(TypeError, match=r"a Module takes no keyword arguments"):
        convt.gradcheck(nn.ReLU(), (np.ones(3),), stride=2)
    with pytest.raises(ValueError, match=r"a Module takes inputs=\(x,\), got 2 inputs"):
        convt.gradcheck(nn.ReLU(), (np.ones(3), np.ones(3)))


@pytest.mark.parametrize("eps", [0, -1e-6, float("nan"), float("inf")])
def test_a_step_that_cannot_difference_is_refused(eps):
    x, w = np.ones((1, 1, 4)), np.ones((1, 1, 2))
    with pytest.raises(ValueError, match=rf"gradcheck: eps must be a finite number > 0, got {eps}"):
        convt.gradcheck(F.conv1d, (x, w), eps=eps)
    with pytest.raises(ValueError, match=rf"jacobian: eps must be a finite number > 0, got {eps}"):
        convt.jacobian(np.tanh, x, eps=eps)


@pytest.mark.parametrize("name", ["atol", "rtol"])
@pytest.mark.parametrize("value", [-1e-3, float("nan"), float("inf")])
def test_a_tolerance_that_passes_or_fails_everything_is_refused(name, value):
    x, w = np.ones((1, 1, 4)), np.ones((1, 1, 2))
    with pytest.raises(ValueError, match=rf"gradcheck: {name} must be a finite number >= 0"):
        convt.gradcheck(F.conv1d, (x, w), **{name: value})


def test_tolerances_are_numbers():
    x, w = np.ones((1, 1, 4)), np.ones((1, 1, 2))
    with pytest.raises(TypeError, match=r"gradcheck: rtol must be a real number, got str"):
        convt.gradcheck(F.conv1d, (x, w), rtol="1e-3")
    with pytest.raises(TypeError, match=r"gradcheck: eps must be a real number, got bool"):
        convt.gradcheck(F.conv1d, (x, w), eps=True)
    assert convt.gradcheck(F.conv1d, (x, w), eps=np.float64(1e-6), atol=np.float32(1e-5), rtol=0)


def test_a_bound_on_evaluations_checks_a_sample_of_entries_and_says_so():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((1, 2, 9, 9)), rng.standard_normal((3, 2, 3, 3)), np.ones(3)
    report = convt.gradcheck(F.conv2d, (x, w, b), max_evaluations=40, generator=1)
    assert report.passed
    checked = {result.name: (result.checked, result.entries) for result in report.results}
    assert checked["input"][1] == 162 and checked["weight"][1] == 54 and checked["bias"][1] == 3
    assert sum(done for done, _ in checked.values()) <= 20
    assert all(1 <= done < entries for done, entries in checked.values())
    assert "of 162 entries, sampled" in str(report["input"])
    # without a bound, every entry
    full = convt.gradcheck(F.conv2d, (x, w, b))
    assert all(result.checked == result.entries for result in full.results)
    assert "sampled" not in str(full)


def test_a_sampled_check_still_finds_a_wrong_gradient():
    def backward(grad_output, input, weight):
        grad_input, grad_weight, _ = F.conv1d_backward(grad_output, input, weight)
        return grad_input * 1.01, grad_weight

    x, w = np.random.default_rng(2).standard_normal((2, 1, 50)), np.ones((1, 1, 3))
    report = convt.gradcheck(
        F.conv1d, (x, w), backward=backward, max_evaluations=10, raise_exception=False
    )
    assert not report["input"].passed and report["weight"].passed
    assert report["input"].checked < 100


def test_progress_shows_the_entries_to_check_before_it_starts(capsys):
    x, w = np.ones((1, 1, 6)), np.ones((1, 1, 2))
    assert convt.gradcheck(F.conv1d, (x, w), progress=True, max_evaluations=8)
    err = capsys.readouterr().err
    assert "gradcheck" in err and "/4" in err, err


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (1, ValueError, r"max_evaluations must be at least 2 \(one entry\), got 1"),
        (2.5, TypeError, r"max_evaluations must be an int or None, got float"),
    ],
)
def test_max_evaluations_is_checked(value, error, message):
    with pytest.raises(error, match=message):
        convt.gradcheck(F.conv1d, (np.ones((1, 1, 4)), np.ones((1, 1, 2))), max_evaluations=value)
