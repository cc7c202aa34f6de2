// Matrix<T> (owning and view semantics, bounds, rotate_180, convolute, convolute_full), the seed
// 000 layer functions, and the worked examples of seeds 000, 001, 002 and 004 with their exact
// numbers.

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "convt/convt.hpp"
#include "test_util.hpp"

namespace {

using convt::index_t;
using convt::Matrix;
using convt::Strides;

// A plain row-major grid of doubles, independent of Matrix.
struct Grid {
  index_t rows = 0, cols = 0;
  std::vector<double> values;
  Grid(index_t r, index_t c) : rows(r), cols(c), values(static_cast<std::size_t>(r * c), 0.0) {}
  double& operator()(index_t i, index_t j) { return values[i * cols + j]; }
  double operator()(index_t i, index_t j) const { return values[i * cols + j]; }
};

template <class T>
Grid to_grid(const Matrix<T>& m) {
  Grid g(m.rows(), m.cols());
  for (index_t i = 0; i < m.rows(); ++i) {
    for (index_t j = 0; j < m.cols(); ++j) g(i, j) = m(i, j);
  }
  return g;
}

// The seeds are the texts convt grew from (docs/index.md lists them). Seed 000, the question whose
// hand-written transposed-convolution layer's weights diverged: its `convolute`, loop for loop, a
// valid cross-correlation with strides.
Grid seed_convolute(const Grid& x, const Grid& w, Strides strides) {
  Grid out((x.rows - w.rows) / strides[0] + 1, (x.cols - w.cols) / strides[1] + 1);
  index_t x_last = 0;
  for (index_t r = 0; r < x.rows - (w.rows - 1); r += strides[0]) {
    index_t y_last = 0;
    for (index_t c = 0; c < x.cols - (w.cols - 1); c += strides[1]) {
      double amount = 0.0;
      for (index_t i = 0; i < w.rows; ++i) {
        for (index_t j = 0; j < w.cols; ++j) amount += w(i, j) * x(r + i, c + j);
      }
      out(x_last, y_last) = amount;
      ++y_last;
    }
    ++x_last;
  }
  return out;
}

// Seed 000's `convolute_full`: every input scatters the kernel at its strided position.
Grid seed_convolute_full(const Grid& x, const Grid& w, Strides strides) {
  Grid out((x.rows - 1) * strides[0] + w.rows, (x.cols - 1) * strides[1] + w.cols);
  for (index_t i = 0; i < x.rows; ++i) {
    for (index_t j = 0; j < x.cols; ++j) {
      for (index_t a = 0; a < w.rows; ++a) {
        for (index_t b = 0; b < w.cols; ++b) {
          out(i * strides[0] + a, j * strides[1] + b) += w(a, b) * x(i, j);
        }
      }
    }
  }
  return out;
}

template <class T>
Matrix<T> random_matrix(std::mt19937& rng, index_t rows, index_t cols) {
  Matrix<T> m(rows, cols);
  const std::vector<T> values = test_util::random_vector<T>(rng, rows * cols);
  std::copy(values.begin(), values.end(), m.data());
  return m;
}

template <class T>
Matrix<T> from_values(index_t rows, index_t cols, const std::vector<double>& values) {
  Matrix<T> m(rows, cols);
  for (index_t i = 0; i < rows * cols; ++i) m.data()[i] = static_cast<T>(values[i]);
  return m;
}

template <class T>
::testing::AssertionResult matrix_equals(const Matrix<T>& m, index_t rows, index_t cols,
                                         const std::vector<double>& expected) {
  if (m.rows() != rows || m.cols() != cols) {
    return ::testing::AssertionFailure()
           << "shape " << m.rows() << " x " << m.cols() << ", expected " << rows << " x " << cols;
  }
  for (index_t i = 0; i < rows * cols; ++i) {
    if (m.data()[i] != static_cast<T>(expected[i])) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << m.data()[i] << ", expected " << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

template <class T>
::testing::AssertionResult matrix_close(const Matrix<T>& m, const Grid& expected,
                                        const Grid& magnitude) {
  if (m.rows() != expected.rows || m.cols() != expected.cols) {
    return ::testing::AssertionFailure()
           << "shape " << m.rows() << " x " << m.cols() << ", expected " << expected.rows << " x "
           << expected.cols;
  }
  return test_util::all_close(m.data(), expected.values, magnitude.values);
}

Grid absolute(Grid g) {
  for (double& v : g.values) v = std::abs(v);
  return g;
}

// ---------------------------------------------------------------------------------------------
// Owning matrices and views

TEST(MatrixSemantics, OwningMatrixCopiesDeeply) {
  Matrix<float> a{{1, 2, 3}, {4, 5, 6}};
  ASSERT_TRUE(a.owns());
  Matrix<float> b = a;
  EXPECT_TRUE(b.owns());
  EXPECT_NE(b.data(), a.data());
  b(0, 0) = 99;
  EXPECT_EQ(a(0, 0), 1);
  Matrix<float> c(5, 5);
  c = a;
  EXPECT_TRUE(c.owns());
  EXPECT_EQ(c.rows(), 2);
  EXPECT_EQ(c.cols(), 3);
  c(1, 2) = -1;
  EXPECT_EQ(a(1, 2), 6);
  c = c;  // self-assignment keeps the elements
  EXPECT_EQ(c(1, 2), -1);
}

TEST(MatrixSemantics, CopyingAViewAliases) {
  std::vector<double> buffer{1, 2, 3, 4, 5, 6};
  Matrix<double> view = Matrix<double>::view(buffer.data(), 2, 3);
  EXPECT_FALSE(view.owns());
  EXPECT_EQ(view.data(), buffer.data());
  Matrix<double> copy = view;
  EXPECT_FALSE(copy.owns());
  EXPECT_EQ(copy.data(), buffer.data());
  copy(1, 2) = 60;
  EXPECT_EQ(buffer[5], 60);
  EXPECT_EQ(view(1, 2), 60);
  // Assigning a view to an owning matrix makes it a view too.
  Matrix<double> owning(2, 2);
  owning = view;
  EXPECT_FALSE(owning.owns());
  owning(0, 0) = 10;
  EXPECT_EQ(buffer[0], 10);
  // Writing through the view changes the external memory; a deep copy needs an owning source.
  view(0, 1) = 20;
  EXPECT_EQ(buffer[1], 20);
}

TEST(MatrixSemantics, MoveKeepsTheElementsAndEmptiesTheSource) {
  Matrix<float> a{{1, 2}, {3, 4}};
  const float* elements = a.data();
  Matrix<float> b = std::move(a);
  EXPECT_TRUE(b.owns());
  EXPECT_EQ(b.data(), elements);
  EXPECT_EQ(b(1, 1), 4);
  EXPECT_EQ(a.rows(), 0);  // NOLINT(bugprone-use-after-move): the moved-from state is promised
  EXPECT_EQ(a.cols(), 0);
  EXPECT_EQ(a.data(), nullptr);

  std::vector<float> buffer{7, 8, 9};
  Matrix<float> view = Matrix<float>::view(buffer.data(), 1, 3);
  Matrix<float> moved;
  moved = std::move(view);
  EXPECT_FALSE(moved.owns());
  EXPECT_EQ(moved.data(), buffer.data());
  EXPECT_EQ(view.rows(), 0);  // NOLINT(bugprone-use-after-move)
}

TEST(MatrixSemantics, ShapeAndElementAccess) {
  const Matrix<double> m{{1, 2, 3}, {4, 5, 6}};
  EXPECT_EQ(m.rows(), 2);
  EXPECT_EQ(m.cols(), 3);
  EXPECT_EQ(m.size(), 6);
  EXPECT_EQ(m(1, 0), 4);
  EXPECT_EQ(m.at(0, 2), 3);
  const Matrix<double> empty;
  EXPECT_EQ(empty.size(), 0);
}

TEST(MatrixSemantics, AtChecksBounds) {
  Matrix<float> m(2, 3);
  try {
    m.at(2, 0);
    FAIL() << "no exception";
  } catch (const convt::Error& error) {
    EXPECT_STREQ(error.what(), "Matrix: index (2, 0) is outside a 2 x 3 matrix");
  }
  EXPECT_THROW(m.at(0, 3), convt::Error);
  EXPECT_THROW(m.at(-1, 0), convt::Error);
  EXPECT_THROW(m.at(0, -1), std::invalid_argument);
  const Matrix<float>& constant = m;
  EXPECT_THROW(constant.at(5, 5), convt::Error);
  m.at(1, 2) = 3;
  EXPECT_EQ(constant.at(1, 2), 3);
}

TEST(MatrixSemantics, InvalidConstruction) {
  try {
    Matrix<float> ragged{{1, 2, 3}, {4, 5}};
    FAIL() << "no exception";
  } catch (const convt::Error& error) {
    EXPECT_STREQ(error.what(), "Matrix: row 1 has 2 values, expected 3");
  }
  try {
    Matrix<float> negative(-1, 3);
    FAIL() << "no exception";
  } catch (const convt::Error& error) {
    EXPECT_NE(std::string(error.what()).find("rows (-1)"), std::string::npos) << error.what();
  }
  float element = 0;
  EXPECT_THROW(Matrix<float>::view(&element, 1, -1), convt::Error);
}

TEST(MatrixSemantics, Rotate180) {
  const Matrix<double> m{{1, 2, 3}, {4, 5, 6}};
  EXPECT_TRUE(matrix_equals(m.rotate_180(), 2, 3, {6, 5, 4, 3, 2, 1}));
  EXPECT_TRUE(matrix_equals(m.rotate_180().rotate_180(), 2, 3, {1, 2, 3, 4, 5, 6}));
  const Matrix<float> column{{1}, {2}, {3}};
  EXPECT_TRUE(matrix_equals(column.rotate_180(), 3, 1, {3, 2, 1}));
}

// ---------------------------------------------------------------------------------------------
// convolute and convolute_full against the seed's loops

template <class T>
class SeedLoops : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(SeedLoops, Types);

TYPED_TEST(SeedLoops, ConvoluteWithStrides) {
  std::mt19937 rng(21);
  std::uniform_int_distribution<index_t> size(1, 12), stride(1, 3);
  for (int i = 0; i < 200; ++i) {
    const index_t kr = std::uniform_int_distribution<index_t>(1, 5)(rng);
    const index_t kc = std::uniform_int_distribution<index_t>(1, 5)(rng);
    const Matrix<TypeParam> x =
        random_matrix<TypeParam>(rng, kr + size(rng) - 1, kc + size(rng) - 1);
    const Matrix<TypeParam> w = random_matrix<TypeParam>(rng, kr, kc);
    const Strides strides{stride(rng), stride(rng)};
    SCOPED_TRACE(std::to_string(x.rows()) + "x" + std::to_string(x.cols()) + " kernel " +
                 std::to_string(kr) + "x" + std::to_string(kc) + " strides " +
                 std::to_string(strides[0]) + "," + std::to_string(strides[1]));
    const Grid expected = seed_convolute(to_grid(x), to_grid(w), strides);
    const Grid magnitude = seed_convolute(absolute(to_grid(x)), absolute(to_grid(w)), strides);
    ASSERT_TRUE(matrix_close(x.convolute(w, strides), expected, magnitude));
    ASSERT_TRUE(matrix_close(convt::cnn_forward(w, x, strides), expected, magnitude));
  }
}

TYPED_TEST(SeedLoops, ConvoluteFullWithStrides) {
  std::mt19937 rng(22);
  std::uniform_int_distribution<index_t> size(1, 9), kernel(1, 5), stride(1, 3);
  for (int i = 0; i < 200; ++i) {
    const Matrix<TypeParam> x = random_matrix<TypeParam>(rng, size(rng), size(rng));
    const Matrix<TypeParam> w = random_matrix<TypeParam>(rng, kernel(rng), kernel(rng));
    const Strides strides{stride(rng), stride(rng)};
    const Grid expected = seed_convolute_full(to_grid(x), to_grid(w), strides);
    const Grid magnitude = seed_convolute_full(absolute(to_grid(x)), absolute(to_grid(w)), strides);
    ASSERT_TRUE(matrix_close(x.convolute_full(w, strides), expected, magnitude));
    // The seed's convention: fcn_forward turns its kernel by 180 degrees first.
    ASSERT_TRUE(matrix_close(convt::fcn_forward(w.rotate_180(), x, strides), expected, magnitude));
  }
}

TYPED_TEST(SeedLoops, ViewsAreUsedInPlace) {
  std::vector<TypeParam> x_values(20), w_values{1, 0, 0, -1};
  std::iota(x_values.begin(), x_values.end(), TypeParam(0));
  const Matrix<TypeParam> x = Matrix<TypeParam>::view(x_values.data(), 4, 5);
  const Matrix<TypeParam> w = Matrix<TypeParam>::view(w_values.data(), 2, 2);
  // x[i, j] - x[i + 1, j + 1] = -6 everywhere.
  EXPECT_TRUE(matrix_equals(x.convolute(w), 3, 4, std::vector<double>(12, -6.0)));
}

// cnn_backward's gradients are the seed's scatter (dx, with the kernel as it is) and the
// correlation of the input with dz (dw).
TYPED_TEST(SeedLoops, CnnBackwardGradients) {
  std::mt19937 rng(23);
  for (Strides strides : {Strides{1, 1}, Strides{2, 3}}) {
    const Matrix<TypeParam> x = random_matrix<TypeParam>(rng, 11, 10);
    const Matrix<TypeParam> w = random_matrix<TypeParam>(rng, 3, 2);
    const Matrix<TypeParam> y = convt::cnn_forward(w, x, strides);
    const Matrix<TypeParam> dz = random_matrix<TypeParam>(rng, y.rows(), y.cols());
    const convt::Gradients<TypeParam> grads = convt::cnn_backward(x, dz, w, strides);
    Grid dx_expected = seed_convolute_full(to_grid(dz), to_grid(w), strides);
    Grid dx_magnitude = seed_convolute_full(absolute(to_grid(dz)), absolute(to_grid(w)), strides);
    // Rows and columns of x that no output reads have a zero gradient; the scatter stops short.
    Grid dx_full(x.rows(), x.cols()), dx_full_magnitude(x.rows(), x.cols());
    for (index_t i = 0; i < dx_expected.rows; ++i) {
      for (index_t j = 0; j < dx_expected.cols; ++j) {
        dx_full(i, j) = dx_expected(i, j);
        dx_full_magnitude(i, j) = dx_magnitude(i, j);
      }
    }
    EXPECT_TRUE(matrix_close(grads.dx, dx_full, dx_full_magnitude));
    // dw[a, b] = sum over outputs (i, j) of dz[i, j] * x[i * s0 + a, j * s1 + b].
    Grid dw(3, 2), dw_magnitude(3, 2);
    for (index_t i = 0; i < dz.rows(); ++i) {
      for (index_t j = 0; j < dz.cols(); ++j) {
        for (index_t a = 0; a < 3; ++a) {
          for (index_t b = 0; b < 2; ++b) {
            const double term = double(dz(i, j)) * x(i * strides[0] + a, j * strides[1] + b);
            dw(a, b) += term;
            dw_magnitude(a, b) += std::abs(term);
          }
        }
      }
    }
    EXPECT_TRUE(matrix_close(grads.dw, dw, dw_magnitude));
  }
}

TEST(SeedLayers, WrongGradientShape) {
  const Matrix<float> x(5, 5), w(3, 3), dz(2, 2);
  try {
    convt::cnn_backward(x, dz, w);
    FAIL() << "no exception";
  } catch (const convt::Error& error) {
    EXPECT_STREQ(error.what(), "cnn_backward: dz must have shape (3, 3), got (2, 2)");
  }
  try {
    convt::fcn_backward(x, dz, w);
    FAIL() << "no exception";
  } catch (const convt::Error& error) {
    EXPECT_STREQ(error.what(), "fcn_backward: dz must have shape (7, 7), got (2, 2)");
  }
  EXPECT_THROW(x.convolute(Matrix<float>(6, 1)), convt::Error);
}

// The seed's functions name themselves and their 2-D shapes, not the 4-D problem they run as.
TEST(SeedLayers, ErrorsNameTheSeedFunction) {
  const Matrix<float> x(5, 5), w(3, 3), empty(0, 3);
  auto message = [](auto&& call) {
    try {
      call();
    } catch (const convt::Error& error) {
      return std::string(error.what());
    }
    return std::string("no exception");
  };
  EXPECT_EQ(message([&] { empty.convolute(w); }),
            "convolute: the input of shape (0, 3) must not be empty");
  EXPECT_EQ(message([&] {
              x.convolute_full(w, {0, 0});
            }),
            "convolute_full: strides (0, 0) must be positive");
  EXPECT_EQ(message([&] { convt::cnn_forward(Matrix<float>(6, 1), x); }),
            "cnn_forward: the kernel of shape (6, 1) is larger than the input of shape (5, 5)");
  EXPECT_EQ(message([&] {
              convt::fcn_forward(w, x, {convt::index_t{1} << 62, 1});
            }),
            "fcn_forward: stride (4611686018427387904, 1) must be at most 1152921504606846975 "
            "(2**60 - 1)");
}

// ---------------------------------------------------------------------------------------------
// Seed 000: the linear-loss check. For F = sum(Z * dZ), which is linear in W and in X, the change
// predicted by the gradients equals the actual change of F for any perturbation.

enum class Layer { cnn, fcn };

void check_linear_loss(Layer layer, Strides strides, std::mt19937& rng) {
  SCOPED_TRACE(std::string(layer == Layer::cnn ? "cnn" : "fcn") + " strides " +
               std::to_string(strides[0]) + "," + std::to_string(strides[1]));
  const auto forward = [&](const Matrix<double>& w, const Matrix<double>& x) {
    return layer == Layer::cnn ? convt::cnn_forward(w, x, strides)
                               : convt::fcn_forward(w, x, strides);
  };
  const auto backward = [&](const Matrix<double>& x, const Matrix<double>& dz,
                            const Matrix<double>& w) {
    return layer == Layer::cnn ? convt::cnn_backward(x, dz, w, strides)
                               : convt::fcn_backward(x, dz, w, strides);
  };
  const auto loss = [](const Matrix<double>& z, const Matrix<double>& dz) {
    double total = 0;
    for (index_t i = 0; i < z.size(); ++i) total += z.data()[i] * dz.data()[i];
    return total;
  };
  const auto dot = [](const Matrix<double>& a, const Matrix<double>& b) {
    double total = 0;
    for (index_t i = 0; i < a.size(); ++i) total += a.data()[i] * b.data()[i];
    return total;
  };
  const auto plus = [](const Matrix<double>& a, const Matrix<double>& b) {
    Matrix<double> sum(a.rows(), a.cols());
    for (index_t i = 0; i < a.size(); ++i) sum.data()[i] = a.data()[i] + b.data()[i];
    return sum;
  };

  const Matrix<double> x = random_matrix<double>(rng, 20, 20);
  const Matrix<double> w = random_matrix<double>(rng, 5, 5);
  const Matrix<double> z = forward(w, x);
  const Matrix<double> dz = random_matrix<double>(rng, z.rows(), z.cols());
  const double f = loss(z, dz);
  const convt::Gradients<double> grads = backward(x, dz, w);
  ASSERT_EQ(grads.dw.rows(), 5);
  ASSERT_EQ(grads.dx.rows(), 20);

  const Matrix<double> dw_step = random_matrix<double>(rng, 5, 5);
  const double predicted_w = dot(grads.dw, dw_step);
  const double actual_w = loss(forward(plus(w, dw_step), x), dz) - f;
  EXPECT_NEAR(predicted_w, actual_w, 1e-9 * (1 + std::abs(actual_w)));

  const Matrix<double> dx_step = random_matrix<double>(rng, 20, 20);
  const double predicted_x = dot(grads.dx, dx_step);
  const double actual_x = loss(forward(w, plus(x, dx_step)), dz) - f;
  EXPECT_NEAR(predicted_x, actual_x, 1e-9 * (1 + std::abs(actual_x)));
}

TEST(Seed000, LinearLossCheckCnnBackward) {
  std::mt19937 rng(0);
  for (Strides strides : {Strides{1, 1}, Strides{2, 2}, Strides{3, 1}}) {
    check_linear_loss(Layer::cnn, strides, rng);
  }
}

TEST(Seed000, LinearLossCheckFcnBackward) {
  std::mt19937 rng(1);
  for (Strides strides : {Strides{1, 1}, Strides{2, 2}, Strides{1, 3}}) {
    check_linear_loss(Layer::fcn, strides, rng);
  }
}

// The question's fcn_backward was wrong: dw = dz (*) a_prev is not the gradient. The corrected
// one is the answer's convolute_full_backward, turned back by 180 degrees.
TEST(Seed000, FcnBackwardIsTheAnswersFormula) {
  std::mt19937 rng(2);
  const Matrix<double> x = random_matrix<double>(rng, 6, 7);
  const Matrix<double> w = random_matrix<double>(rng, 3, 2);
  const Matrix<double> z = convt::fcn_forward(w, x);
  const Matrix<double> dz = random_matrix<double>(rng, z.rows(), z.cols());
  const convt::Gradients<double> grads = convt::fcn_backward(x, dz, w);
  // convolute_full_backward: dW[a, b] += dZ[i + a, j + b] * X[i, j], then rot90 twice.
  Grid dw(3, 2);
  for (index_t i = 0; i < x.rows(); ++i) {
    for (index_t j = 0; j < x.cols(); ++j) {
      for (index_t a = 0; a < 3; ++a) {
        for (index_t b = 0; b < 2; ++b) dw(a, b) += dz(i + a, j + b) * x(i, j);
      }
    }
  }
  Grid rotated(3, 2);
  for (index_t a = 0; a < 3; ++a) {
    for (index_t b = 0; b < 2; ++b) rotated(a, b) = dw(2 - a, 1 - b);
  }
  // dx = dZ (*) rot180(kernel), as in the answer.
  const Grid dx = seed_convolute(to_grid(dz), to_grid(w.rotate_180()), {1, 1});
  for (index_t a = 0; a < 3; ++a) {
    for (index_t b = 0; b < 2; ++b) EXPECT_NEAR(grads.dw(a, b), rotated(a, b), 1e-12);
  }
  for (index_t i = 0; i < 6; ++i) {
    for (index_t j = 0; j < 7; ++j) EXPECT_NEAR(grads.dx(i, j), dx(i, j), 1e-12);
  }
}

// ---------------------------------------------------------------------------------------------
// Seed 001, the blog post on the gradients of convolution and deconvolution: TensorFlow's worked
// example. conv2d_transpose of 1..9 with the kernel [[1, 2], [3, 4]] equals conv2d of the
// zero-padded input with the kernel turned by 180 degrees.

const std::vector<double> seed001_output{1, 4, 7, 6, 7, 23, 33, 24, 19, 53, 63, 42, 21, 52, 59, 36};

template <class T>
class Seed001 : public ::testing::Test {};
TYPED_TEST_SUITE(Seed001, Types);

TYPED_TEST(Seed001, TransposedConvolutionNumbers) {
  using T = TypeParam;
  const Matrix<T> x{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
  const Matrix<T> k{{1, 2}, {3, 4}};
  EXPECT_TRUE(matrix_equals(x.convolute_full(k), 4, 4, seed001_output));
  EXPECT_TRUE(matrix_equals(convt::fcn_forward(k.rotate_180(), x), 4, 4, seed001_output));
  EXPECT_TRUE(
      matrix_equals(convt::fcn_forward(Matrix<T>{{4, 3}, {2, 1}}, x), 4, 4, seed001_output));
  const Matrix<T> padded{
      {0, 0, 0, 0, 0}, {0, 1, 2, 3, 0}, {0, 4, 5, 6, 0}, {0, 7, 8, 9, 0}, {0, 0, 0, 0, 0}};
  EXPECT_TRUE(matrix_equals(padded.convolute(Matrix<T>{{4, 3}, {2, 1}}), 4, 4, seed001_output));
  // The same through the batched kernels: conv_transpose2d with weight (1, 1, 2, 2).
  const convt::ConvGeometry g = convt::ConvGeometry::transposed(2, {1, 1, 3, 3}, {1, 1, 2, 2});
  std::vector<T> y(16);
  convt::forward<T>(g, x.data(), k.data(), nullptr, y.data());
  EXPECT_TRUE(matrix_equals(Matrix<T>::view(y.data(), 4, 4), 4, 4, seed001_output));
}

// The Jacobians printed in the seed: for y = conv2d(x, k) with x = 1..9, the gradient of each
// y[i, j] for x (a one-hot dz through cnn_backward) and for k.
TYPED_TEST(Seed001, ConvolutionJacobians) {
  using T = TypeParam;
  const Matrix<T> x{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
  const Matrix<T> k{{1, 2}, {3, 4}};
  const std::vector<std::vector<double>> input_jacobian{{1, 2, 0, 3, 4, 0, 0, 0, 0},
                                                        {0, 1, 2, 0, 3, 4, 0, 0, 0},
                                                        {0, 0, 0, 1, 2, 0, 3, 4, 0},
                                                        {0, 0, 0, 0, 1, 2, 0, 3, 4}};
  const std::vector<std::vector<double>> kernel_jacobian{
      {1, 2, 4, 5}, {2, 3, 5, 6}, {4, 5, 7, 8}, {5, 6, 8, 9}};
  for (index_t output = 0; output < 4; ++output) {
    Matrix<T> dz(2, 2);
    std::fill(dz.data(), dz.data() + 4, T(0));
    dz.data()[output] = 1;
    const convt::Gradients<T> grads = convt::cnn_backward(x, dz, k);
    EXPECT_TRUE(matrix_equals(grads.dx, 3, 3, input_jacobian[output])) << "y" << output;
    EXPECT_TRUE(matrix_equals(grads.dw, 2, 2, kernel_jacobian[output])) << "y" << output;
  }
}

// "[2][1][1][1] = 3": d y[2, 1] / d x[1, 1] of the transposed convolution is 3, and
// "[2][1][1][0] = 5": d y[2, 1] / d k[1, 0] is 5.
TYPED_TEST(Seed001, TransposedConvolutionJacobianEntries) {
  using T = TypeParam;
  const Matrix<T> x{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
  const Matrix<T> k{{1, 2}, {3, 4}};
  Matrix<T> dz(4, 4);
  std::fill(dz.data(), dz.data() + 16, T(0));
  dz(2, 1) = 1;
  // fcn_* store the kernel turned by 180 degrees: fcn_forward(rotate_180(k), x) is
  // conv2d_transpose(x, k), and the gradient for k is the turned-back gradient for its argument.
  const convt::Gradients<T> grads = convt::fcn_backward(x, dz, k.rotate_180());
  EXPECT_EQ(grads.dx(1, 1), T(3));
  EXPECT_EQ(grads.dw.rotate_180()(1, 0), T(5));
  EXPECT_TRUE(matrix_equals(grads.dx, 3, 3, {0, 0, 0, 4, 3, 0, 2, 1, 0}));
}

// ---------------------------------------------------------------------------------------------
// Seed 002, the textbook chapter on the backward pass by col2im: its im2col / col2im worked
// examples.

TEST(Seed002, SingleSampleIm2colAndGradients) {
  const convt::ConvGeometry g = convt::ConvGeometry::convolution(2, {1, 1, 3, 3}, {1, 1, 2, 2});
  std::vector<double> x(9);
  std::iota(x.begin(), x.end(), 0.0);
  const std::vector<double> w{0, 1, 2, 3};
  const std::vector<double> delta_in{0, 1, 2, 3};

  // col_x: one row per output position, one column per kernel tap. dW = col_x^T . delta, so a
  // delta that is one at output o alone gives row o of col_x as the weight gradient.
  const std::vector<std::vector<double>> col_x{
      {0, 1, 3, 4}, {1, 2, 4, 5}, {3, 4, 6, 7}, {4, 5, 7, 8}};
  for (std::size_t output = 0; output < 4; ++output) {
    std::vector<double> one_hot(4, 0.0), row(4, -1.0);
    one_hot[output] = 1;
    convt::conv_backward_weight(g, x.data(), one_hot.data(), row.data());
    EXPECT_EQ(row, col_x[output]) << "row " << output << " of col_x";
  }

  std::vector<double> dw(4), db(1), dx(9);
  convt::backward(g, delta_in.data(), x.data(), w.data(), dx.data(), dw.data(), db.data());
  EXPECT_EQ(dw, (std::vector<double>{19, 25, 37, 43}));
  EXPECT_EQ(db, (std::vector<double>{6}));
  EXPECT_EQ(dx, (std::vector<double>{0, 0, 1, 0, 4, 6, 4, 12, 9}));

  // delta_out = col2im(dcol) with dcol = delta_in_2d . col_w^T: each output's delta times the
  // kernel, scattered back and summed where windows overlap.
  const std::vector<std::vector<double>> dcol{
      {0, 0, 0, 0}, {0, 1, 2, 3}, {0, 2, 4, 6}, {0, 3, 6, 9}};
  std::vector<double> scattered(9, 0.0);
  for (int output = 0; output < 4; ++output) {
    for (int tap = 0; tap < 4; ++tap) {
      scattered[(output / 2 + tap / 2) * 3 + output % 2 + tap % 2] += dcol[output][tap];
    }
  }
  EXPECT_EQ(scattered, dx);
}

// Two samples, three input channels, two filters. The seed divides dW and dB by the batch size;
// convt, as PyTorch, sums, so its dW is twice the seed's.
TEST(Seed002, TwoSamplesThreeChannels) {
  const convt::ConvGeometry g = convt::ConvGeometry::convolution(2, {2, 3, 3, 3}, {2, 3, 2, 2});
  std::vector<double> x(54), w(24), delta_in(16);
  std::iota(x.begin(), x.end(), 0.0);
  std::iota(w.begin(), w.end(), 0.0);
  std::iota(delta_in.begin(), delta_in.end(), 0.0);
  std::vector<double> dx(54), dw(24), db(2);
  convt::backward(g, delta_in.data(), x.data(), w.data(), dx.data(), dw.data(), db.data());

  const std::vector<double> seed_dw{564,  586,  630,  652,  762,  784,  828,  850,
                                    960,  982,  1026, 1048, 812,  850,  926,  964,
                                    1154, 1192, 1268, 1306, 1496, 1534, 1610, 1648};
  for (std::size_t i = 0; i < dw.size(); ++i) EXPECT_EQ(dw[i], 2 * seed_dw[i]) << i;
  EXPECT_EQ(db, (std::vector<double>{0 + 1 + 2 + 3 + 8 + 9 + 10 + 11,
                                     4 + 5 + 6 + 7 + 12 + 13 + 14 + 15}));
  const std::vector<double> delta_out{
      48,  112, 66,  128, 296,  172, 88,  200, 114,   // sample 1, channel 1
      64,  152, 90,  176, 408,  236, 120, 272, 154,   // channel 2
      80,  192, 114, 224, 520,  300, 152, 344, 194,   // channel 3
      144, 320, 178, 352, 776,  428, 216, 472, 258,   // sample 2, channel 1
      224, 488, 266, 528, 1144, 620, 312, 672, 362,   // channel 2
      304, 656, 354, 704, 1512, 812, 408, 872, 466};  // channel 3
  EXPECT_EQ(dx, delta_out);
}

// ---------------------------------------------------------------------------------------------
// Seed 004, the course notes on a naive convolution layer: the layer on ones.

TEST(Seed004, OnesForwardAndBackward) {
  const convt::ConvGeometry g = convt::ConvGeometry::convolution(2, {2, 3, 4, 4}, {2, 3, 3, 3});
  ASSERT_EQ(g.output_shape(), (convt::Shape{2, 2, 2, 2}));
  const std::vector<float> x(2 * 3 * 4 * 4, 1.0f), w(2 * 3 * 3 * 3, 1.0f), b{1, 2};
  std::vector<float> out(16);
  convt::forward(g, x.data(), w.data(), b.data(), out.data());
  for (int n = 0; n < 2; ++n) {
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(out[n * 8 + i], 28.0f);
      EXPECT_EQ(out[n * 8 + 4 + i], 29.0f);
    }
  }
  const std::vector<float> dout(16, 1.0f);
  std::vector<float> dx(x.size()), dw(w.size()), db(2);
  convt::backward(g, dout.data(), x.data(), w.data(), dx.data(), dw.data(), db.data());
  for (float value : dw) EXPECT_EQ(value, 8.0f);
  EXPECT_EQ(db, (std::vector<float>{8, 8}));
  const std::vector<float> plane{2, 4, 4, 2, 4, 8, 8, 4, 4, 8, 8, 4, 2, 4, 4, 2};
  for (int plane_index = 0; plane_index < 6; ++plane_index) {
    EXPECT_EQ(std::vector<float>(dx.begin() + plane_index * 16, dx.begin() + plane_index * 16 + 16),
              plane)
        << "plane " << plane_index;
  }
}

}  // namespace
