// NaN and infinity: padding contributes nothing, so a non-finite value reaches exactly the
// outputs whose sums have a term with it, on every path (direct loops, im2col, col2im, the
// stride-1 padded copy, pointwise), as in the plain-loop reference. A GEMM path multiplies the
// zeros of padding too, and 0 * inf would make NaN where the reference has a finite value.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "convt/convt.hpp"
#include "reference.hpp"
#include "test_util.hpp"

namespace {

// The name of the algorithm a geometry's plan takes for `kernel`.
const char* algorithm_of(const convt::ConvGeometry& g, convt::Kernel kernel) {
  return convt::algorithm_name(convt::Plan(g).algorithm(kernel));
}

using reference::Index;
using reference::Problem;

enum class Kind { finite, nan, positive_infinity, negative_infinity };

Kind kind_of(double value) {
  if (std::isnan(value)) return Kind::nan;
  if (std::isinf(value)) return value > 0 ? Kind::positive_infinity : Kind::negative_infinity;
  return Kind::finite;
}

const char* name_of(Kind kind) {
  switch (kind) {
    case Kind::finite:
      return "finite";
    case Kind::nan:
      return "nan";
    case Kind::positive_infinity:
      return "inf";
    default:
      return "-inf";
  }
}

// The non-finite elements of `actual` are those of `expected`, of the same kind (NaN, inf,
// -inf); the finite ones agree within the usual tolerance. A sum's kind does not depend on the
// order of its terms, so this holds for any summation order.
template <class T>
::testing::AssertionResult same_values(const std::vector<T>& actual,
                                       const std::vector<double>& expected,
                                       const std::vector<double>& magnitude) {
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const Kind want = kind_of(expected[i]);
    const Kind got = kind_of(static_cast<double>(actual[i]));
    if (want != got) {
      return ::testing::AssertionFailure()
             << "element " << i << " of " << expected.size() << ": got " << actual[i]
             << ", expected " << expected[i] << " (" << name_of(want) << ")";
    }
    const double bound = test_util::tolerance<T>() * (magnitude[i] + 1e-3);
    if (want == Kind::finite && !(std::abs(actual[i] - expected[i]) <= bound)) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << actual[i] << ", expected " << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// |values|, with the non-finite ones as 0: the magnitude of the finite sums.
template <class T>
std::vector<T> finite_magnitudes(const std::vector<T>& values) {
  std::vector<T> result(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    result[i] = std::isfinite(values[i]) ? std::abs(values[i]) : T(0);
  }
  return result;
}

// `values` with `count` random elements set to NaN, inf or -inf.
template <class T>
std::vector<T> poisoned(std::vector<T> values, int count, std::mt19937& rng) {
  const T specials[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                        -std::numeric_limits<T>::infinity()};
  std::uniform_int_distribution<std::size_t> position(0, values.size() - 1);
  std::uniform_int_distribution<int> which(0, 2);
  for (int i = 0; i < count; ++i) values[position(rng)] = specials[which(rng)];
  return values;
}

struct PathCase {
  std::string name;
  Problem p;
  const char* forward;         // the forward algorithm, also conv_backward_weight's
  const char* backward_input;  // the input gradient's algorithm
};

Problem problem(int dims, Index batch, Index x_channels, Index y_channels, reference::Extent x,
                reference::Extent kernel, Index stride, Index padding) {
  Problem p;
  p.dims = dims;
  p.batch = batch;
  p.x_channels = x_channels;
  p.y_channels = y_channels;
  p.x_size = x;
  p.kernel = kernel;
  for (int d = 0; d < dims; ++d) {
    p.stride[d] = stride;
    p.pad_before[d] = padding;
    p.pad_after[d] = padding;
  }
  p.y_size = reference::conv_output_size(p);
  return p;
}

std::vector<PathCase> path_cases() {
  return {
      // F.conv1d(np.ones((1, 1, 3)), [[[1, nan]]], padding=1) has a finite last output
      {"direct", problem(1, 1, 1, 1, {3, 1, 1}, {2, 1, 1}, 1, 1), "direct", "direct"},
      {"im2col", problem(2, 2, 16, 16, {16, 16, 1}, {3, 3, 1}, 2, 1), "im2col", "col2im"},
      {"shifted", problem(2, 2, 16, 20, {20, 20, 1}, {3, 3, 1}, 1, 1), "shifted", "shifted"},
      {"pointwise", problem(2, 2, 16, 16, {24, 24, 1}, {1, 1, 1}, 1, 0), "pointwise", "pointwise"},
  };
}

template <class T>
class NonFinite : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(NonFinite, Types);

// Each kernel with non-finite values in one operand at a time, several draws each.
TYPED_TEST(NonFinite, ReachExactlyTheOutputsWhoseSumsContainThem) {
  using T = TypeParam;
  using test_util::random_vector;
  std::mt19937 rng(31);
  for (const PathCase& c : path_cases()) {
    SCOPED_TRACE(c.name + ": " + test_util::describe(c.p));
    const Problem& p = c.p;
    const convt::ConvGeometry g = convt::ConvGeometry::convolution(
        p.dims, test_util::tensor_shape(p.batch, p.x_channels, p.x_size, p.dims),
        test_util::weight_shape(p), test_util::options_for(p));
    ASSERT_STREQ(algorithm_of(g, convt::Kernel::forward), c.forward);
    ASSERT_STREQ(algorithm_of(g, convt::Kernel::backward_input), c.backward_input);
    for (int draw = 0; draw < 6; ++draw) {
      // Poison the first operand on even draws, the second on odd ones.
      const bool first = draw % 2 == 0;
      const int count = draw < 2 ? 1 : draw < 4 ? 3 : 12;
      auto operand = [&](Index size, bool poison) {
        auto values = random_vector<T>(rng, size);
        return poison ? poisoned(std::move(values), count, rng) : values;
      };
      {
        const auto x = operand(p.x_count(), first);
        const auto w = operand(p.w_count(), !first);
        std::vector<T> y(static_cast<std::size_t>(p.y_count()));
        convt::conv_forward(g, x.data(), w.data(), y.data());
        EXPECT_TRUE(
            same_values(y, reference::conv_forward(p, x, w),
                        reference::conv_forward(p, finite_magnitudes(x), finite_magnitudes(w))))
            << "conv_forward, draw " << draw;
      }
      {
        const auto dy = operand(p.y_count(), first);
        const auto w = operand(p.w_count(), !first);
        std::vector<T> dx(static_cast<std::size_t>(p.x_count()));
        convt::conv_backward_input(g, dy.data(), w.data(), dx.data());
        EXPECT_TRUE(same_values(
            dx, reference::conv_backward_input(p, dy, w),
            reference::conv_backward_input(p, finite_magnitudes(dy), finite_magnitudes(w))))
            << "conv_backward_input, draw " << draw;
      }
      {
        const auto x = operand(p.x_count(), first);
        const auto dy = operand(p.y_count(), !first);
        std::vector<T> dw(static_cast<std::size_t>(p.w_count()));
        convt::conv_backward_weight(g, x.data(), dy.data(), dw.data());
        EXPECT_TRUE(same_values(
            dw, reference::conv_backward_weight(p, x, dy),
            reference::conv_backward_weight(p, finite_magnitudes(x), finite_magnitudes(dy))))
            << "conv_backward_weight, draw " << draw;
      }
    }
  }
}

// The example of the report, exactly: [nan, nan, nan, 1] with the padded tap of the last output
// contributing nothing (PyTorch, which multiplies the padding's zero by NaN, gives all NaN).
TEST(NonFiniteExample, PaddedTapsContributeNothing) {
  const auto g = convt::ConvGeometry::convolution(1, {1, 1, 3}, {1, 1, 2}, [] {
    convt::ConvOptions options;
    options.padding = {1};
    return options;
  }());
  const double x[] = {1, 1, 1};
  const double w[] = {1, std::numeric_limits<double>::quiet_NaN()};
  double y[4];
  convt::conv_forward(g, x, w, y);
  EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1]) && std::isnan(y[2]));
  EXPECT_EQ(y[3], 1.0);
}

}  // namespace
