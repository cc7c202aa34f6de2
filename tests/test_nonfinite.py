"""NaN and infinity follow the sums' terms: padding contributes nothing, so a non-finite value
reaches exactly the outputs whose sums have a term with it, on every kernel path, for the forward
pass and every gradient, as in the plain-loop reference.

PyTorch computes as if the input were padded with explicit zeros, so there ``0 * nan`` forms
and a NaN weight also reaches the outputs whose window only overlaps the padding: the two agree
wherever no padding is read, and differ there (docs/limits.md).
"""

import numpy as np
import pytest
import reference
from convt import _core, functional

# name: (input shape, weight shape, stride, padding, the path Geometry.algorithms reports)
PATHS = {
    "direct": ((1, 1, 3), (1, 1, 2), 1, 1, "direct"),
    "im2col": ((2, 16, 16, 16), (16, 16, 3, 3), 2, 1, "im2col"),
    "shifted": ((2, 16, 20, 20), (20, 16, 3, 3), 1, 1, "shifted"),
    "pointwise": ((2, 16, 24, 24), (16, 16, 1, 1), 1, 0, "pointwise"),
}
SPECIALS = np.array([np.nan, np.inf, -np.inf])


def geometry(path):
    """The convolution geometry of a case of PATHS."""
    x_shape, w_shape, stride, padding, _ = PATHS[path]
    return _core.conv_geometry(
        len(x_shape) - 2, x_shape, w_shape, (stride,), (padding,), (), "explicit", (1,), 1
    )


def poisoned(rng, shape, count, dtype):
    """Random values in [-1, 1) with ``count`` of them NaN, inf or -inf."""
    values = rng.uniform(-1, 1, shape)
    flat = values.reshape(-1)
    flat[rng.integers(0, flat.size, count)] = rng.choice(SPECIALS, count)
    return values.astype(dtype)


def assert_same_values(actual, expected, dtype, what):
    """The same NaN and infinite elements; the finite ones close."""
    for kind in (np.isnan, np.isposinf, np.isneginf):
        mismatch = np.flatnonzero(kind(actual) != kind(expected))
        assert mismatch.size == 0, (
            f"{what}: {kind.__name__} differs at {mismatch[:5]} of {actual.size}: got "
            f"{actual.reshape(-1)[mismatch[:5]]}, expected {expected.reshape(-1)[mismatch[:5]]}"
        )
    finite = np.isfinite(expected)
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=tolerance, atol=tolerance)


def reference_gradients(transposed, dy, x, w, stride, padding):
    pads = [(padding, padding)] * (x.ndim - 2)
    strides, ones = [stride] * (x.ndim - 2), [1] * (x.ndim - 2)
    with np.errstate(invalid="ignore", over="ignore"):
        if transposed:
            y = reference.conv_transpose_forward(
                x, w, None, strides, pads, [0] * len(ones), 1, ones
            )
            grads = reference.conv_transpose_backward(
                dy, x, w, strides, pads, [0] * len(ones), 1, ones
            )
        else:
            y = reference.conv_forward(x, w, None, strides, pads, ones, 1)
            grads = reference.conv_backward(dy, x, w, strides, pads, ones, 1)
    return y, grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
@pytest.mark.parametrize("path", list(PATHS))
def test_non_finite_values_reach_exactly_the_sums_that_contain_them(path, transposed, dtype):
    x_shape, w_shape, stride, padding, _ = PATHS[path]
    dims = len(x_shape) - 2
    rng = np.random.default_rng(list(PATHS).index(path))
    if transposed:
        # the transposed layer whose kernels are the convolution's: its input is the y side
        x_shape = geometry(path).output_shape
        op = getattr(functional, f"conv_transpose{dims}d")
    else:
        op = getattr(functional, f"conv{dims}d")
    backward = getattr(functional, f"{op.__name__}_backward")
    for draw, count in enumerate([1, 3, 12, 1, 3, 12]):
        poison_first = draw < 3  # the input and the output's gradient, then the weight
        x = poisoned(rng, x_shape, count if poison_first else 0, dtype)
        w = poisoned(rng, w_shape, 0 if poison_first else count, dtype)
        y = op(x, w, stride=stride, padding=padding)
        dy = poisoned(rng, y.shape, count if poison_first else 0, dtype)
        y_ref, (dx_ref, dw_ref, db_ref) = reference_gradients(
            transposed,
            dy.astype(np.float64),
            x.astype(np.float64),
            w.astype(np.float64),
            stride,
            padding,
        )
        assert_same_values(y, y_ref, dtype, f"{op.__name__}, draw {draw}")
        for name, actual, expected in zip(
            ("grad_input", "grad_weight", "grad_bias"),
            backward(dy, x, w, stride=stride, padding=padding),
            (dx_ref, dw_ref, db_ref),
            strict=True,
        ):
            assert_same_values(actual, expected, dtype, f"{op.__name__} {name}, draw {draw}")


@pytest.mark.parametrize("path", list(PATHS))
def test_the_cases_take_the_paths_they_name(path):
    assert geometry(path).algorithms["conv_forward"] == PATHS[path][4]


def test_padding_contributes_nothing_where_pytorch_multiplies_zero_by_nan():
    """The report's example both ways: convt's last output reads x and the padding, whose term is
    not formed; PyTorch forms 0 * nan there."""
    torch = pytest.importorskip("torch")
    x, w = np.ones((1, 1, 3)), np.array([[[1.0, np.nan]]])
    y = functional.conv1d(x, w, padding=1)
    assert np.isnan(y[0, 0, :3]).all() and y[0, 0, 3] == 1.0
    expected = torch.nn.functional.conv1d(torch.from_numpy(x), torch.from_numpy(w), padding=1)
    assert torch.isnan(expected).all()
    # Without padding no zero is multiplied anywhere, and the two agree element for element.
    rng = np.random.default_rng(5)
    x = poisoned(rng, (2, 3, 9, 9), 4, np.float64)
    w = poisoned(rng, (4, 3, 3, 3), 2, np.float64)
    y = functional.conv2d(x, w, stride=2)
    with np.errstate(invalid="ignore"):
        expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=2)
    assert_same_values(y, expected.numpy(), np.float64, "conv2d without padding")
