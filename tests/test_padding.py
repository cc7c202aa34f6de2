"""Padding beyond PyTorch's: padding="same" for every stride and for transposed layers, with
TensorFlow's sizes and pad split.

The oracles: convt.compat.tensorflow's SAME (TensorFlow's rules, checked against TensorFlow's
documented formulas in test_tensorflow_compat.py), and for the transposed layer the adjoint
identity with the 'same' convolution it transposes.
"""

import itertools

import numpy as np
import pytest
from conftest import assert_close
from convt import functional
from convt.compat import tensorflow as tfc

RNG = np.random.default_rng(12)

SAME_CASES = [
    # (dims, input size, kernel, stride, dilation)
    (1, 10, 3, 2, 1),
    (1, 7, 4, 3, 1),
    (1, 11, 2, 4, 1),
    (2, 9, 3, 2, 2),
    (2, 8, 4, 2, 1),
    (2, 6, 5, 3, 1),
    (2, 5, 1, 3, 1),
    (3, 7, 3, 2, 1),
]


def _filters(weight):
    """convt's (b, a, k...) weight as TensorFlow's (k..., a, b) filters."""
    return np.moveaxis(weight, (0, 1), (-1, -2))


def _ncx(dims):
    return {1: "NCW", 2: "NCHW", 3: "NCDHW"}[dims]


@pytest.mark.parametrize("dims, size, kernel, stride, dilation", SAME_CASES)
def test_same_convolution_is_tensorflows_same(dims, size, kernel, stride, dilation):
    x = RNG.standard_normal((2, 3, *(size,) * dims))
    w = RNG.standard_normal((4, 3, *(kernel,) * dims))
    conv = getattr(functional, f"conv{dims}d")
    y = conv(x, w, stride=stride, padding="same", dilation=dilation)
    assert y.shape[2:] == (-(-size // stride),) * dims
    tf_conv = getattr(tfc, f"conv{dims}d")
    expected = tf_conv(x, _filters(w), stride, "SAME", data_format=_ncx(dims), dilations=dilation)
    assert_close(y, expected, np.float64)


@pytest.mark.parametrize("dims, size, kernel, stride, dilation", SAME_CASES)
def test_same_transposed_convolution_is_tensorflows_same(dims, size, kernel, stride, dilation):
    x = RNG.standard_normal((2, 4, *(size,) * dims))
    w = RNG.standard_normal((4, 3, *(kernel,) * dims))
    conv_transpose = getattr(functional, f"conv_transpose{dims}d")
    tf_conv_transpose = getattr(tfc, f"conv{dims}d_transpose")
    y = conv_transpose(x, w, stride=stride, padding="same", dilation=dilation)
    assert y.shape == (2, 3, *(size * stride,) * dims)
    for out in sorted({size * stride, (size - 1) * stride + 1}):
        shape = (out,) * dims
        y = conv_transpose(
            x, w, stride=stride, padding="same", dilation=dilation, output_size=shape
        )
        expected = tf_conv_transpose(
            x, _filters(w), [2, 3, *shape], stride, "SAME", _ncx(dims), dilations=dilation
        )
        assert_close(y, expected, np.float64)


@pytest.mark.parametrize(
    "size, kernel, stride", list(itertools.product((3, 4), (1, 2, 3, 4), (1, 2, 3)))
)
def test_same_transposed_convolution_is_the_adjoint_of_same_convolution(size, kernel, stride):
    """<conv_same(x), y> == <x, conv_transpose_same(y)> for every output size 'same' allows."""
    w = RNG.standard_normal((2, 3, kernel, kernel))
    y = RNG.standard_normal((1, 2, size, size))
    for out in range((size - 1) * stride + 1, size * stride + 1):
        x = RNG.standard_normal((1, 3, out, out))
        conv_x = functional.conv2d(x, w, stride=stride, padding="same")
        assert conv_x.shape == y.shape
        transpose_y = functional.conv_transpose2d(
            y, w, stride=stride, padding="same", output_size=(out, out)
        )
        assert np.isclose(np.vdot(conv_x, y), np.vdot(x, transpose_y), rtol=1e-12)
        dx, _, _ = functional.conv2d_backward(y, x, w, stride=stride, padding="same")
        assert_close(dx, transpose_y, np.float64)


def test_same_transposed_rejects_sizes_same_cannot_give():
    with pytest.raises(ValueError, match=r"not reachable with padding='same'.* from 7 to 8"):
        functional.conv_transpose1d(
            np.ones((1, 1, 4)), np.ones((1, 1, 3)), stride=2, padding="same", output_size=(6,)
        )
