"""convt.functional equals the plain-loop float64 reference (tests/reference.py): forward and every
gradient, for random configurations of every argument, in float32 and float64.

The properties draw their configurations with hypothesis (see ``conv_case_strategy`` in
conftest.py); the profile is derandomized, so CI runs the same examples every time. The counts
are the ``*_EXAMPLES`` constants below.
"""

import dataclasses
import pickle

import convt
import numpy as np
import pytest
import reference
from conftest import ConvCase, assert_close, conv_case_strategy, examples
from convt import functional
from hypothesis import event, given, settings
from hypothesis import strategies as st

FORWARD_EXAMPLES = examples(1500)
BACKWARD_EXAMPLES = examples(1500)


def describe(case) -> None:
    """Records which corners a drawn case covers (shown by --hypothesis-show-statistics)."""
    event(f"{case.name} {case.dtype}")
    event("unbatched" if case.batch is None else f"batch {case.batch}")
    event(f"padding {type(case.padding).__name__}")
    if case.groups > 1:
        event("groups > 1")
    if case.transposed:
        if case.output_size is not None:
            event(f"output_size with {len(case.output_size)} values")
        if any(op >= s for op, s in zip(case.output_padding, case.strides, strict=True)):
            event("output_padding >= stride (allowed by dilation)")


def nan_array(shape, dtype):
    return np.full(shape, np.nan, dtype)


@settings(max_examples=FORWARD_EXAMPLES)
@given(case=conv_case_strategy(), use_out=st.booleans())
def test_forward_matches_reference(case, use_out):
    describe(case)
    out = nan_array(case.output_shape, case.dtype) if use_out else None
    result = case.forward(out=out)
    if use_out:
        assert result is out
    assert_close(result, case.reference_forward(), case.dtype, f"{case.name} output")


@settings(max_examples=BACKWARD_EXAMPLES)
@given(
    case=conv_case_strategy(),
    mask=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    use_out=st.booleans(),
)
def test_backward_matches_reference(case, mask, use_out):
    describe(case)
    x, w, _, _ = case.arrays
    shapes = (x.shape, w.shape, (case.channels_out,))
    out = (
        tuple(nan_array(s, case.dtype) if m else None for s, m in zip(shapes, mask, strict=True))
        if use_out
        else None
    )
    grads = case.backward(output_mask=mask, out=out)
    assert isinstance(grads, tuple) and len(grads) == 3
    expected = case.reference_backward()
    for name, want, got, given_out, expected_grad in zip(
        ("grad_input", "grad_weight", "grad_bias"),
        mask,
        grads,
        out or (None, None, None),
        expected,
        strict=True,
    ):
        if not want:
            assert got is None, f"{name} was not asked for"
            continue
        if given_out is not None:
            assert got is given_out, f"{name} must be written to out"
        assert_close(got, expected_grad, case.dtype, f"{case.name} {name}")


# ---- corners named explicitly, so that they are covered whatever hypothesis draws ----


def make_case(**overrides) -> ConvCase:
    fields = dict(
        transposed=True,
        dims=2,
        batch=2,
        groups=1,
        channels_in=2,
        channels_out=3,
        kernel=(3, 2),
        size=(4, 3),
        stride=1,
        padding=0,
        dilation=1,
        output_padding=(0, 0),
        output_size=None,
        bias=True,
        dtype=np.dtype(np.float64),
        layout="C",
        seed=1234,
    )
    fields.update(overrides)
    return ConvCase(**fields)


CORNERS = {
    "output_padding >= stride, allowed by dilation": make_case(
        stride=(1, 2), dilation=(3, 3), output_padding=(2, 2)
    ),
    "output_padding 1d, stride 1 dilation 2": make_case(
        dims=1, kernel=(3,), size=(5,), stride=1, dilation=2, output_padding=(1,)
    ),
    "output_size as spatial sizes": make_case(
        stride=(3, 2), output_padding=(2, 1), output_size=(14, 7)
    ),
    "output_size as the whole output shape": make_case(
        stride=(3, 2), output_padding=(1, 0), output_size=(2, 3, 13, 6)
    ),
    "batch 0, transposed": make_case(batch=0, stride=2, padding=1, output_padding=(1, 1)),
    "batch 0, convolution": make_case(transposed=False, batch=0, groups=3, channels_in=3),
    "unbatched, transposed 3d": make_case(
        dims=3,
        batch=None,
        kernel=(2, 1, 3),
        size=(2, 3, 2),
        stride=(2, 1, 1),
        output_padding=(1, 0, 0),
        groups=2,
        channels_in=4,
        channels_out=2,
    ),
    "unbatched, convolution 1d": make_case(
        transposed=False, dims=1, batch=None, kernel=(3,), size=(7,), stride=2, padding=1
    ),
    "padding same, even kernel (asymmetric)": make_case(
        transposed=False, kernel=(4, 2), size=(5, 6), padding="same", dilation=(1, 3)
    ),
    "padding valid": make_case(transposed=False, size=(6, 6), stride=(2, 3), padding="valid"),
    "depthwise": make_case(transposed=False, groups=3, channels_in=3, channels_out=6, size=(5, 5)),
    "per-dimension padding, stride and dilation": make_case(
        transposed=False,
        dims=3,
        kernel=(2, 3, 1),
        size=(4, 7, 3),
        stride=(1, 2, 3),
        padding=(0, 2, 1),
        dilation=(2, 1, 3),
    ),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CORNERS))
def test_corner_matches_reference(name, dtype):
    case = dataclasses.replace(CORNERS[name], dtype=np.dtype(dtype))
    assert case.forward().shape == case.output_shape
    assert_close(case.forward(), case.reference_forward(), case.dtype, f"{name}: output")
    for label, got, expected in zip(
        ("grad_input", "grad_weight", "grad_bias"),
        case.backward(),
        case.reference_backward(),
        strict=True,
    ):
        assert_close(got, expected, case.dtype, f"{name}: {label}")


def test_batch_zero_gradients_are_zero():
    """With no samples the weight and bias gradients are sums of nothing: zeros, not garbage."""
    case = CORNERS["batch 0, convolution"]
    _, grad_weight, grad_bias = case.backward()
    assert grad_weight.shape == case.weight_shape and not grad_weight.any()
    assert grad_bias.shape == (case.channels_out,) and not grad_bias.any()


# ---- dtypes: NumPy promotion decides the computed dtype ----

rng = np.random.default_rng(7)
X = rng.standard_normal((2, 3, 6))
W = rng.standard_normal((4, 3, 3))


@pytest.mark.parametrize(
    ("x_dtype", "w_dtype", "computed"),
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64),
        (np.float32, np.float64, np.float64),
        (np.float16, np.float16, np.float32),
        (np.float16, np.float32, np.float32),
        (np.int32, np.int64, np.float64),
        (np.int64, np.float32, np.float64),
        (np.bool_, np.float64, np.float64),
    ],
)
def test_inputs_are_promoted_to_one_floating_dtype(x_dtype, w_dtype, computed):
    x = (X > 0) if x_dtype is np.bool_ else (3 * X).astype(x_dtype)
    w = (2 * W).astype(w_dtype)
    expected = reference.conv_forward(
        x.astype(np.float64), w.astype(np.float64), None, (1,), ((1, 1),), (1,), 1
    )
    assert_close(functional.conv1d(x, w, padding=1), expected, computed)
    grad_output = expected.astype(computed)
    grad_input, grad_weight, grad_bias = functional.conv1d_backward(grad_output, x, w, padding=1)
    assert grad_input.dtype == grad_weight.dtype == grad_bias.dtype == computed


def test_lists_are_accepted_as_arrays():
    expected = functional.conv1d(X, W, padding=1)
    assert_close(functional.conv1d(X.tolist(), W.tolist(), padding=1), expected, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_arrays_that_went_through_pickle_are_used_as_they_are(dtype):
    """An unpickled array (another process's, a cluster worker's) has a dtype equal to float32's
    or float64's, but not the same object."""
    x, w = X.astype(dtype), W.astype(dtype)
    x_copy, w_copy = pickle.loads(pickle.dumps((x, w)))
    assert x_copy.dtype is not np.dtype(dtype)
    assert_close(
        functional.conv1d(x_copy, w_copy, padding=1), functional.conv1d(x, w, padding=1), dtype
    )
    grad_output = functional.conv1d(x, w, padding=1)
    for got, expected in zip(
        functional.conv1d_backward(grad_output, x_copy, w_copy, padding=1),
        functional.conv1d_backward(grad_output, x, w, padding=1),
        strict=True,
    ):
        assert_close(got, expected, dtype)
    assert_close(convt.convolute(x_copy[0], x_copy[0]), convt.convolute(x[0], x[0]), dtype)


def test_seed_matrix_functions_match_reference():
    """convolute is conv2d and convolute_full conv_transpose2d with N = C = 1 (DESIGN.md)."""
    x = rng.standard_normal((7, 6))
    w = rng.standard_normal((3, 2))
    strides = (2, 1)
    forward = reference.conv_forward(
        x[None, None], w[None, None], None, strides, ((0, 0),) * 2, (1, 1), 1
    )
    assert_close(convt.convolute(x, w, strides), forward[0, 0], np.float64)
    full = reference.conv_transpose_forward(
        x[None, None], w[None, None], None, strides, ((0, 0),) * 2, (0, 0), 1, (1, 1)
    )
    assert_close(convt.convolute_full(x, w, strides), full[0, 0], np.float64)
