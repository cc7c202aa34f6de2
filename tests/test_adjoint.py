"""Transposed convolution is the adjoint of convolution:
<conv(x, w), y> == <x, conv_transpose(y, w)> for every geometry (dims, stride, padding,
dilation, groups, output_padding), in float64.

The identity ties the two forward functions together without any reference. Checked both ways
(from a convolution's geometry, and from a transposed convolution's, whose output_padding may
reach past the stride when the dilation allows it), and for the weight: the weight gradient is
the adjoint of the map w -> layer(x, w).
"""

import numpy as np
from conftest import conv_case_strategy, examples
from convt import functional
from hypothesis import given, settings

CONV_EXAMPLES = examples(1000)
CONV_TRANSPOSE_EXAMPLES = examples(1000)
WEIGHT_EXAMPLES = examples(500)


def cases(transposed=None, allow_strings=False):
    return conv_case_strategy(
        transposed=transposed,
        dtype=np.float64,
        max_size=6,
        max_channels=4,
        allow_strings=allow_strings,
    )


def inner(a, b):
    """<a, b>, summed without BLAS (whose threads only slow such small products down)."""
    return float(np.sum(a * b))


def assert_inner_products_equal(a1, b1, a2, b2):
    """<a1, b1> == <a2, b2> up to rounding, relative to the size of the products."""
    assert a1.shape == b1.shape and a2.shape == b2.shape
    lhs, rhs = inner(a1, b1), inner(a2, b2)
    scale = max(1.0, inner(np.abs(a1), np.abs(b1)), inner(np.abs(a2), np.abs(b2)))
    assert abs(lhs - rhs) <= 1e-12 * scale, f"<.,.> {lhs} != {rhs}"


def common_kwargs(case):
    return dict(
        stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups
    )


@settings(max_examples=CONV_EXAMPLES)
@given(case=cases(transposed=False))
def test_conv_transpose_is_the_adjoint_of_conv(case):
    x, w, _, y = case.arrays  # y: a random array of conv(x, w)'s shape
    # the output_padding that brings the transposed convolution back to x's size
    output_padding = tuple(
        (n + p0 + p1 - d * (k - 1) - 1) % s
        for n, (p0, p1), d, k, s in zip(
            case.size, case.pads, case.dilations, case.kernel, case.strides, strict=True
        )
    )
    forward = getattr(functional, f"conv{case.dims}d")(x, w, **common_kwargs(case))
    adjoint = getattr(functional, f"conv_transpose{case.dims}d")(
        y, w, output_padding=output_padding, **common_kwargs(case)
    )
    assert adjoint.shape == x.shape
    assert_inner_products_equal(forward, y, x, adjoint)


@settings(max_examples=CONV_TRANSPOSE_EXAMPLES)
@given(case=cases(transposed=True))
def test_conv_is_the_adjoint_of_conv_transpose(case):
    """The convolution of y has at least x's size; with output_padding >= stride (allowed by the
    dilation) it has more, and the adjoint is its leading part: the trailing positions of y are
    reached by no element of x."""
    x, w, _, y = case.arrays  # y: a random array of conv_transpose(x, w)'s shape
    forward = getattr(functional, f"conv_transpose{case.dims}d")(
        x, w, output_padding=case.output_padding, **common_kwargs(case)
    )
    adjoint = getattr(functional, f"conv{case.dims}d")(y, w, **common_kwargs(case))
    extra = [a - n for a, n in zip(adjoint.shape[-case.dims :], case.size, strict=True)]
    steps = zip(extra, case.output_padding, case.strides, strict=True)
    assert all(e == op // s for e, op, s in steps)
    adjoint = adjoint[(..., *(slice(0, n) for n in case.size))]
    assert_inner_products_equal(forward, y, x, adjoint)


@settings(max_examples=WEIGHT_EXAMPLES)
@given(case=cases(allow_strings=True))
def test_weight_gradient_is_the_adjoint_of_the_weight_map(case):
    """<layer(x, w), dy> == <w, grad_weight(dy, x)>: the layer is linear in its weight."""
    x, w, _, dy = case.arrays
    output = getattr(functional, case.name)(x, w, **case.kwargs())
    _, grad_weight, _ = case.backward(output_mask=(False, True, False))
    assert_inner_products_equal(output, dy, w, grad_weight)
