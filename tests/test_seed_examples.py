"""The worked examples of the seeds (the texts convt grew from, listed in docs/index.md) with
their printed numbers, and seed 000's naive loops as the oracle of the single-channel functions.

* 000, the question whose hand-written C++ transposed-convolution layer's weights diverged: its
  answer's ``convolute`` / ``convolute_full`` / ``convolute_full_backward`` loops, its linear-loss
  check of the gradients, and the question's two-layer transposed-convolution network;
* 001, the blog post on the gradients of convolution and deconvolution: TensorFlow's
  conv2d_transpose of 1..9 with [[1, 2], [3, 4]] and the Jacobians it prints;
* 002, the textbook chapter on the backward pass by col2im: one sample, and two samples with
  three channels;
* 004, the course notes on a naive convolution layer: their all-ones example.
"""

# The seed's names (X, W, dZ, ...) are kept so that the loops read as the seed wrote them.
# ruff: noqa: N803, N806, SIM113

import convt
import numpy as np
import pytest
from convt import functional

# ---- the seed's loops (000), kept as written apart from layout; they are the oracle ----


def seed_convolute(X, W, strides=(1, 1)):
    new_row = int((X.shape[0] - W.shape[0]) / strides[0] + 1)
    new_col = int((X.shape[1] - W.shape[1]) / strides[1] + 1)
    out = np.zeros((new_row, new_col), dtype=float)
    x_last = 0
    y_last = 0
    for x in range(0, X.shape[0] - (W.shape[0] - 1), strides[0]):
        for y in range(0, X.shape[1] - (W.shape[1] - 1), strides[1]):
            amt = 0.0
            for i in range(0, W.shape[0]):
                for j in range(0, W.shape[1]):
                    amt += W[i][j] * X[x + i][y + j]
            out[x_last][y_last] = amt
            y_last += 1
        x_last += 1
        y_last = 0
    return out


def seed_convolute_full(X, W, strides=(1, 1)):
    row_num = (X.shape[0] - 1) * strides[0] + W.shape[0]
    col_num = (X.shape[1] - 1) * strides[1] + W.shape[1]
    output = np.zeros([row_num, col_num])
    for i in range(0, X.shape[0]):
        i_prime = i * strides[0]
        for j in range(0, X.shape[1]):
            j_prime = j * strides[1]
            for k_row in range(W.shape[0]):
                for k_col in range(W.shape[1]):
                    output[i_prime + k_row, j_prime + k_col] += W[k_row, k_col] * X[i, j]
    return output


def seed_convolute_full_backward(X, dZ, dW, strides=(1, 1)):
    for i in range(0, X.shape[0]):
        i_prime = i * strides[0]
        for j in range(0, X.shape[1]):
            j_prime = j * strides[1]
            for k_row in range(dW.shape[0]):
                for k_col in range(dW.shape[1]):
                    dW[k_row, k_col] += dZ[i_prime + k_row, j_prime + k_col] * X[i, j]
    return dW


def seed_convolute_backward(X, dZ, W, strides=(1, 1)):
    """The gradients of seed_convolute by the answer's rule: keep the loops, and where the
    forward does ``amt += W[i][j] * X[x+i][y+j]``, accumulate both products' gradients."""
    dX, dW = np.zeros(X.shape), np.zeros(W.shape)
    for x_last, x in enumerate(range(0, X.shape[0] - (W.shape[0] - 1), strides[0])):
        for y_last, y in enumerate(range(0, X.shape[1] - (W.shape[1] - 1), strides[1])):
            for i in range(0, W.shape[0]):
                for j in range(0, W.shape[1]):
                    dW[i][j] += dZ[x_last][y_last] * X[x + i][y + j]
                    dX[x + i][y + j] += dZ[x_last][y_last] * W[i][j]
    return dX, dW


def seed_fcn_forward(W, X, strides=(1, 1)):
    return seed_convolute_full(X, np.rot90(np.rot90(W)), strides)


def seed_fcn_backward(X, dZ, kernel, strides=(1, 1)):
    """The answer's corrected fcn_backward (with strides passed through)."""
    dw = seed_convolute_full_backward(X, dZ, np.zeros(kernel.shape), strides)
    dw = np.rot90(np.rot90(dw))
    dx = seed_convolute(dZ, np.rot90(np.rot90(kernel)), strides)
    return dx, dw


SHAPES = [  # (input, kernel, strides)
    ((5, 5), (3, 3), (1, 1)),
    ((1, 1), (1, 1), (1, 1)),
    ((7, 4), (2, 3), (2, 1)),
    ((6, 9), (3, 3), (3, 2)),
    ((8, 8), (8, 1), (1, 3)),
    ((4, 10), (1, 4), (2, 2)),
]


def random_case(shape, kernel, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(kernel).astype(dtype)


def assert_matches(actual, expected, dtype=np.float64):
    assert isinstance(actual, np.ndarray) and actual.dtype == dtype
    assert actual.shape == expected.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * max(1, abs(expected).max()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "kernel", "strides"), SHAPES)
def test_seed_matrix_functions_match_the_seed_loops(shape, kernel, strides, dtype):
    x, w = random_case(shape, kernel, dtype)
    assert_matches(convt.convolute(x, w, strides), seed_convolute(x, w, strides), dtype)
    assert_matches(convt.convolute_full(x, w, strides), seed_convolute_full(x, w, strides), dtype)
    assert_matches(convt.rotate_180(w), np.rot90(np.rot90(w)), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "kernel", "strides"), SHAPES)
def test_seed_layers_match_the_seed_loops(shape, kernel, strides, dtype):
    x, w = random_case(shape, kernel, dtype)
    rng = np.random.default_rng(1)

    z = convt.cnn_forward(w, x, strides)
    assert_matches(z, seed_convolute(x, w, strides), dtype)
    dz = rng.standard_normal(z.shape).astype(dtype)
    dx, dw = convt.cnn_backward(x, dz, w, strides)
    expected_dx, expected_dw = seed_convolute_backward(x, dz, w, strides)
    assert_matches(dx, expected_dx, dtype)
    assert_matches(dw, expected_dw, dtype)

    z = convt.fcn_forward(w, x, strides)
    assert_matches(z, seed_fcn_forward(w, x, strides), dtype)
    dz = rng.standard_normal(z.shape).astype(dtype)
    dx, dw = convt.fcn_backward(x, dz, w, strides)
    expected_dx, expected_dw = seed_fcn_backward(x, dz, w, strides)
    assert_matches(dx, expected_dx, dtype)
    assert_matches(dw, expected_dw, dtype)


def test_seed_functions_accept_an_int_stride():
    x, w = random_case((7, 7), (3, 3))
    assert_matches(convt.convolute(x, w, 2), seed_convolute(x, w, (2, 2)))
    assert_matches(convt.fcn_forward(w, x, 2), seed_fcn_forward(w, x, (2, 2)))


# ---- convt.Matrix ----


@pytest.mark.parametrize(
    ("matrix_type", "dtype"), [("Matrix", np.float64), ("Matrix32", np.float32)]
)
def test_matrix_is_a_zero_copy_view_for_numpy(matrix_type, dtype):
    values = np.arange(12, dtype=dtype).reshape(3, 4)
    matrix = getattr(convt, matrix_type)(values)
    assert (matrix.rows, matrix.cols, matrix.shape) == (3, 4, (3, 4))
    view = np.asarray(matrix)
    assert view.dtype == dtype and view.shape == (3, 4)
    np.testing.assert_array_equal(view, values)
    values[0, 0] = 100  # the constructor copied its values
    assert matrix[0, 0] == 0

    view[1, 2] = 42  # writing through the NumPy view changes the Matrix
    assert matrix[1, 2] == 42
    matrix[2, 3] = -7  # and writing the Matrix changes the view
    assert view[2, 3] == -7
    assert np.shares_memory(view, np.asarray(matrix))


def test_new_matrix_is_zero():
    np.testing.assert_array_equal(np.asarray(convt.Matrix(2, 3)), np.zeros((2, 3)))


@pytest.mark.parametrize(("shape", "kernel", "strides"), SHAPES)
def test_matrix_methods_match_the_seed_loops(shape, kernel, strides):
    x, w = random_case(shape, kernel)
    matrix, kernel_matrix = convt.Matrix(x), convt.Matrix(w)
    assert_matches(
        np.asarray(matrix.convolute(kernel_matrix, strides)), seed_convolute(x, w, strides)
    )
    assert_matches(
        np.asarray(matrix.convolute_full(kernel_matrix, strides)),
        seed_convolute_full(x, w, strides),
    )
    assert_matches(np.asarray(kernel_matrix.rotate_180()), np.rot90(np.rot90(w)))


# ---- seed 000: the linear-loss check and the two-layer network ----


@pytest.mark.parametrize("strides", [(1, 1), (2, 3)])
@pytest.mark.parametrize(
    ("forward", "backward"),
    [(convt.fcn_forward, convt.fcn_backward), (convt.cnn_forward, convt.cnn_backward)],
    ids=["fcn", "cnn"],
)
def test_seed000_predicted_loss_change_equals_actual(forward, backward, strides):
    """The answer's check: with the linear loss F = sum(Z * dZ), the change predicted from the
    gradient equals the actual change, for the weight and for the input (float64)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 20))
    W = rng.standard_normal((5, 5))
    Z = forward(W, X, strides)
    dZ = rng.standard_normal(Z.shape)
    F = np.sum(Z * dZ)
    dX, dW = backward(X, dZ, W, strides)

    W_ = W + rng.standard_normal(W.shape)
    predicted = np.sum(dW * (W_ - W))
    actual = np.sum(forward(W_, X, strides) * dZ) - F
    assert predicted == pytest.approx(actual, rel=1e-10, abs=1e-10 * abs(F))

    X_ = X + rng.standard_normal(X.shape)
    predicted = np.sum(dX * (X_ - X))
    actual = np.sum(forward(W, X_, strides) * dZ) - F
    assert predicted == pytest.approx(actual, rel=1e-10, abs=1e-10 * abs(F))


def test_seed000_two_layer_transposed_network_learns():
    """The question's network, 10x10 -> 12x12 -> 14x14 through two 3x3 transposed convolutions,
    trained by plain gradient descent on 0.5 * sum((y - label)^2) with the exact gradients: the
    loss falls by an order of magnitude and ends below that of predicting zeros."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 10))
    weights = [rng.standard_normal((3, 3)), rng.standard_normal((3, 3))]
    label = rng.standard_normal((14, 14))
    losses = []
    for _ in range(300):
        hidden = convt.fcn_forward(weights[0], x)
        y = convt.fcn_forward(weights[1], hidden)
        assert hidden.shape == (12, 12) and y.shape == (14, 14)
        dz = y - label
        losses.append(0.5 * np.sum(dz**2))
        d_hidden, dw1 = convt.fcn_backward(hidden, dz, weights[1])
        _, dw0 = convt.fcn_backward(x, d_hidden, weights[0])
        weights[1] = weights[1] - 5e-4 * dw1
        weights[0] = weights[0] - 5e-4 * dw0
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0] / 10
    assert losses[-1] < 0.5 * np.sum(label**2)


# ---- seed 001: conv2d_transpose of 1..9 with [[1, 2], [3, 4]] ----

X001 = np.arange(1, 10, dtype=np.float64).reshape(3, 3)
K001 = np.array([[1.0, 2.0], [3.0, 4.0]])
Y001 = np.array(
    [[1, 4, 7, 6], [7, 23, 33, 24], [19, 53, 63, 42], [21, 52, 59, 36]], dtype=np.float64
)


def test_seed001_transposed_convolution():
    y = functional.conv_transpose2d(X001[None, None], K001[None, None])
    np.testing.assert_array_equal(y[0, 0], Y001)
    np.testing.assert_array_equal(convt.convolute_full(X001, K001), Y001)
    np.testing.assert_array_equal(convt.fcn_forward(convt.rotate_180(K001), X001), Y001)


def test_seed001_equals_convolution_of_padded_input_with_flipped_kernel():
    padded = np.pad(X001, 1)
    flipped = np.array([[4.0, 3.0], [2.0, 1.0]])
    np.testing.assert_array_equal(convt.rotate_180(K001), flipped)
    y = functional.conv2d(padded[None, None], flipped[None, None])
    np.testing.assert_array_equal(y[0, 0], Y001)
    np.testing.assert_array_equal(convt.convolute(padded, flipped), Y001)
    # the same padding done by the convolution itself
    y = functional.conv2d(X001[None, None], flipped[None, None], padding=1)
    np.testing.assert_array_equal(y[0, 0], Y001)


# Jacobians of the valid convolution y = conv2d(x, k) (2x2 output), as the seed prints them
# (one 3x3 block per output element y11, y12, y21, y22).
JACOBIAN_INPUT_001 = np.array(
    [
        [[1, 2, 0], [3, 4, 0], [0, 0, 0]],
        [[0, 1, 2], [0, 3, 4], [0, 0, 0]],
        [[0, 0, 0], [1, 2, 0], [3, 4, 0]],
        [[0, 0, 0], [0, 1, 2], [0, 3, 4]],
    ],
    dtype=np.float64,
)
JACOBIAN_KERNEL_001 = np.array(
    [
        [[1, 2], [4, 5]],
        [[2, 3], [5, 6]],
        [[4, 5], [7, 8]],
        [[5, 6], [8, 9]],
    ],
    dtype=np.float64,
)


def jacobian_rows(backward, x, w, output_shape):
    """The Jacobians of one layer output for the input and the weight, from its backward
    function with a one-hot grad_output per output element."""
    rows_x, rows_w = [], []
    for index in np.ndindex(*output_shape):
        grad_output = np.zeros(output_shape)
        grad_output[index] = 1.0
        grad_input, grad_weight, _ = backward(grad_output, x, w)
        rows_x.append(grad_input)
        rows_w.append(grad_weight)
    shape = tuple(output_shape)
    return np.array(rows_x).reshape(shape + x.shape), np.array(rows_w).reshape(shape + w.shape)


def test_seed001_convolution_jacobians_from_one_hot_gradients():
    x, w = X001[None, None], K001[None, None]
    jx, jw = jacobian_rows(functional.conv2d_backward, x, w, (1, 1, 2, 2))
    np.testing.assert_array_equal(jx.reshape(4, 3, 3), JACOBIAN_INPUT_001)
    np.testing.assert_array_equal(jw.reshape(4, 2, 2), JACOBIAN_KERNEL_001)


def test_seed001_transposed_convolution_jacobians_from_one_hot_gradients():
    """dy32 / da22 = 3 and dy32 / dk21 = 5 (0-based: y[2, 1], x[1, 1], k[1, 0])."""
    x, w = X001[None, None], K001[None, None]
    jx, jw = jacobian_rows(functional.conv_transpose2d_backward, x, w, (1, 1, 4, 4))
    jx, jw = jx.reshape(4, 4, 3, 3), jw.reshape(4, 4, 2, 2)
    assert jx[2][1][1][1] == 3.0
    assert jw[2][1][1][0] == 5.0
    # and every entry: y[o] = sum_i x[i] k[o - i], so dy[o]/dx[i] = k[o - i], dy[o]/dk[t] = x[o - t]
    for o0, o1, i0, i1 in np.ndindex(4, 4, 3, 3):
        t0, t1 = o0 - i0, o1 - i1
        inside = 0 <= t0 < 2 and 0 <= t1 < 2
        assert jx[o0, o1, i0, i1] == (K001[t0, t1] if inside else 0.0)
    for o0, o1, t0, t1 in np.ndindex(4, 4, 2, 2):
        i0, i1 = o0 - t0, o1 - t1
        inside = 0 <= i0 < 3 and 0 <= i1 < 3
        assert jw[o0, o1, t0, t1] == (X001[i0, i1] if inside else 0.0)


def test_seed001_jacobians_from_convt_jacobian():
    """convt.jacobian (central differences in float64) gives the printed Jacobians up to its
    finite-difference error."""
    x, w = X001[None, None], K001[None, None]

    def close(actual, expected):
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)

    jx = convt.jacobian(lambda a: functional.conv2d(a, w), x)
    assert jx.shape == (1, 1, 2, 2, 1, 1, 3, 3)
    close(jx.reshape(4, 3, 3), JACOBIAN_INPUT_001)
    close(
        convt.jacobian(lambda k: functional.conv2d(x, k), w).reshape(4, 2, 2), JACOBIAN_KERNEL_001
    )
    jx = convt.jacobian(lambda a: functional.conv_transpose2d(a, w), x)
    jw = convt.jacobian(lambda k: functional.conv_transpose2d(x, k), w)
    assert jx.shape == (1, 1, 4, 4, 1, 1, 3, 3) and jw.shape == (1, 1, 4, 4, 1, 1, 2, 2)
    close(jx.reshape(4, 4, 3, 3)[2][1][1][1], 3.0)
    close(jw.reshape(4, 4, 2, 2)[2][1][1][0], 5.0)


# ---- seed 002: im2col / col2im backward ----


def test_seed002_one_sample_one_channel():
    x = np.arange(9).reshape(1, 1, 3, 3)
    w = np.arange(4).reshape(1, 1, 2, 2)
    delta_in = np.arange(4).reshape(1, 1, 2, 2)
    delta_out, dw, db = functional.conv2d_backward(delta_in, x, w)
    np.testing.assert_array_equal(db, [6.0])
    np.testing.assert_array_equal(dw, [[[[19.0, 25.0], [37.0, 43.0]]]])
    np.testing.assert_array_equal(
        delta_out, [[[[0.0, 0.0, 1.0], [0.0, 4.0, 6.0], [4.0, 12.0, 9.0]]]]
    )


def test_seed002_two_samples_three_channels():
    """The seed divides dW (not delta_out) by the batch size 2."""
    x = np.arange(54).reshape(2, 3, 3, 3)
    w = np.arange(24).reshape(2, 3, 2, 2)
    delta_in = np.arange(16).reshape(2, 2, 2, 2)
    delta_out, dw, db = functional.conv2d_backward(delta_in, x, w)
    expected_dw = np.array(
        [
            [
                [[564, 586], [630, 652]],
                [[762, 784], [828, 850]],
                [[960, 982], [1026, 1048]],
            ],
            [
                [[812, 850], [926, 964]],
                [[1154, 1192], [1268, 1306]],
                [[1496, 1534], [1610, 1648]],
            ],
        ],
        dtype=np.float64,
    )
    np.testing.assert_array_equal(dw / 2, expected_dw)
    expected_delta_out = np.array(
        [
            [
                [[48, 112, 66], [128, 296, 172], [88, 200, 114]],
                [[64, 152, 90], [176, 408, 236], [120, 272, 154]],
                [[80, 192, 114], [224, 520, 300], [152, 344, 194]],
            ],
            [
                [[144, 320, 178], [352, 776, 428], [216, 472, 258]],
                [[224, 488, 266], [528, 1144, 620], [312, 672, 362]],
                [[304, 656, 354], [704, 1512, 812], [408, 872, 466]],
            ],
        ],
        dtype=np.float64,
    )
    np.testing.assert_array_equal(delta_out, expected_delta_out)
    # dB is delta_in summed per output channel (the seed's formula, before its division)
    np.testing.assert_array_equal(db, delta_in.sum(axis=(0, 2, 3)))


# ---- seed 004: the all-ones example ----


def test_seed004_ones():
    x = np.ones((2, 3, 4, 4))
    w = np.ones((2, 3, 3, 3))
    b = np.array([1, 2])
    out = functional.conv2d(x, w, b)
    assert out.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(out[:, 0], np.full((2, 2, 2), 28.0))
    np.testing.assert_array_equal(out[:, 1], np.full((2, 2, 2), 29.0))

    dx, dw, db = functional.conv2d_backward(np.ones((2, 2, 2, 2)), x, w)
    np.testing.assert_array_equal(dw, np.full((2, 3, 3, 3), 8.0))
    pattern = np.array([[2, 4, 4, 2], [4, 8, 8, 4], [4, 8, 8, 4], [2, 4, 4, 2]], dtype=np.float64)
    np.testing.assert_array_equal(dx, np.broadcast_to(pattern, (2, 3, 4, 4)))
    np.testing.assert_array_equal(db, [8.0, 8.0])
