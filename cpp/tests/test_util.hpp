#pragma once

// Helpers shared by the tests: random data, comparisons with a tolerance scaled by the size of
// the terms summed, and the translation from a reference::Problem to convt's arguments.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "convt/convt.hpp"
#include "reference.hpp"

namespace test_util {

// Elements of an array of `shape`.
inline convt::index_t count(const convt::Shape& shape) {
  convt::index_t total = 1;
  for (convt::index_t size : shape) total *= size;
  return total;
}

template <class T>
std::vector<T> random_vector(std::mt19937& rng, std::ptrdiff_t count) {
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<T> values(static_cast<std::size_t>(count));
  for (T& value : values) value = static_cast<T>(uniform(rng));
  return values;
}

template <class T>
std::vector<T> absolute(const std::vector<T>& values) {
  std::vector<T> result(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) result[i] = std::abs(values[i]);
  return result;
}

// Relative tolerance on the sum of the absolute values of the terms: a sum of n terms computed
// in T is off by at most n * epsilon times that, and blocked sums stay far below it.
template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-13;
}

// Checks actual[i] against expected[i] within tolerance<T>() * (magnitude[i] + 1e-3), where
// magnitude[i] is the sum of the absolute values of the terms that make up expected[i].
template <class T>
::testing::AssertionResult all_close(const T* actual, const std::vector<double>& expected,
                                     const std::vector<double>& magnitude) {
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double bound = tolerance<T>() * (magnitude[i] + 1e-3);
    const double error = std::abs(static_cast<double>(actual[i]) - expected[i]);
    if (!(error <= bound)) {  // also catches NaN
      return ::testing::AssertionFailure()
             << "element " << i << " of " << expected.size() << ": got " << actual[i]
             << ", expected " << expected[i] << " (error " << error << ", bound " << bound << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// Exact equality of two buffers, bit for bit.
template <class T>
::testing::AssertionResult bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) {
      return ::testing::AssertionFailure()
             << "element " << i << " differs: " << a[i] << " vs " << b[i];
    }
  }
  return ::testing::AssertionSuccess();
}

inline convt::Shape first(const reference::Extent& extent, int dims) {
  return convt::Shape(extent.begin(), extent.begin() + dims);
}

// Runs `call`, which must throw convt::Error whose message contains each of `words`.
template <class Call>
void expect_error(Call&& call, std::initializer_list<const char*> words) {
  try {
    call();
    ADD_FAILURE() << "no exception; expected one mentioning '" << *words.begin() << "'";
  } catch (const convt::Error& error) {
    const std::string message = error.what();
    for (const char* word : words) {
      EXPECT_NE(message.find(word), std::string::npos)
          << "message \"" << message << "\" lacks \"" << word << "\"";
    }
  } catch (const std::exception& error) {
    ADD_FAILURE() << "threw another type: " << error.what();
  }
}

// The defining property of the transposed convolution, for geometry g of problem p:
// <conv(x), y> == <x, conv_transpose(y)>, and the weight gradient is the adjoint in w,
// <conv(x; w), dy> == <w, dw(x, dy)>.
template <class T>
void expect_adjoint(const convt::ConvGeometry& g, const reference::Problem& p, std::mt19937& rng) {
  // Dot products of a few hundred terms summed in double: float's rounding of each kernel
  // output dominates.
  const double relative = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  const auto x = random_vector<T>(rng, p.x_count());
  const auto y = random_vector<T>(rng, p.y_count());
  const auto w = random_vector<T>(rng, p.w_count());
  std::vector<T> conv_x(y.size()), transpose_y(x.size()), dw(w.size());
  convt::conv_forward(g, x.data(), w.data(), conv_x.data());
  convt::conv_backward_input(g, y.data(), w.data(), transpose_y.data());
  convt::conv_backward_weight(g, x.data(), y.data(), dw.data());
  double lhs = 0, rhs = 0, weight_side = 0, scale = 0;
  for (std::size_t j = 0; j < y.size(); ++j) {
    lhs += static_cast<double>(conv_x[j]) * y[j];
    scale += std::abs(static_cast<double>(conv_x[j]) * y[j]);
  }
  for (std::size_t j = 0; j < x.size(); ++j) rhs += static_cast<double>(x[j]) * transpose_y[j];
  for (std::size_t j = 0; j < w.size(); ++j) weight_side += static_cast<double>(w[j]) * dw[j];
  const double bound = relative * (scale + 1.0) * std::sqrt(static_cast<double>(p.w_count()));
  EXPECT_NEAR(lhs, rhs, bound);
  EXPECT_NEAR(lhs, weight_side, bound);
}

inline convt::PaddingMode padding_mode(reference::Mode mode) {
  switch (mode) {
    case reference::Mode::reflect:
      return convt::PaddingMode::reflect;
    case reference::Mode::replicate:
      return convt::PaddingMode::replicate;
    case reference::Mode::circular:
      return convt::PaddingMode::circular;
    default:
      return convt::PaddingMode::zeros;
  }
}

// The options of a convolution or transposed convolution that computes problem `p`.
inline convt::ConvOptions options_for(const reference::Problem& p,
                                      const reference::Extent& output_padding = {0, 0, 0}) {
  convt::ConvOptions options;
  options.stride = first(p.stride, p.dims);
  options.padding = first(p.pad_before, p.dims);
  options.padding_after = first(p.pad_after, p.dims);
  options.padding_mode = padding_mode(p.mode);
  options.dilation = first(p.dilation, p.dims);
  options.groups = p.groups;
  options.output_padding = first(output_padding, p.dims);
  return options;
}

inline convt::Shape tensor_shape(convt::index_t batch, convt::index_t channels,
                                 const reference::Extent& size, int dims) {
  convt::Shape shape{batch, channels};
  shape.insert(shape.end(), size.begin(), size.begin() + dims);
  return shape;
}

inline convt::Shape weight_shape(const reference::Problem& p) {
  return tensor_shape(p.y_channels, p.x_per_group(), p.kernel, p.dims);
}

// A readable one-line description of a problem, for failure messages.
inline std::string describe(const reference::Problem& p) {
  auto list = [&](const reference::Extent& e) {
    std::string text = "(";
    for (int d = 0; d < p.dims; ++d) text += (d ? "," : "") + std::to_string(e[d]);
    return text + ")";
  };
  return std::to_string(p.dims) + "-d N=" + std::to_string(p.batch) +
         " groups=" + std::to_string(p.groups) + " Cx=" + std::to_string(p.x_channels) +
         " Cy=" + std::to_string(p.y_channels) + " x=" + list(p.x_size) + " y=" + list(p.y_size) +
         " k=" + list(p.kernel) + " stride=" + list(p.stride) + " pad=" + list(p.pad_before) + "/" +
         list(p.pad_after) + " dilation=" + list(p.dilation) +
         (p.mode == reference::Mode::zeros
              ? ""
              : std::string(" mode=") + convt::padding_mode_name(padding_mode(p.mode)));
}

// A convolution (or a transposed convolution, with its output_padding) drawn at random: 1-3
// spatial dimensions, groups, kernel, stride, dilation and asymmetric padding per dimension.
// Small cases have a few thousand multiply-adds at most, the size of the seed's examples; medium
// ones up to 2^20, with more channels, a quarter of them depthwise (one input channel per group),
// so that both the direct loops and the lowered GEMM path run.
enum class CaseSize { small, medium };

struct Case {
  reference::Problem p;
  reference::Extent output_padding{0, 0, 0};
};

// Multiply-adds of a problem: batch x y channels x (x channels per group x kernel) x y size.
inline double multiply_adds(const reference::Problem& p) {
  return static_cast<double>(p.batch) * p.y_channels * p.x_per_group() * p.kernel_volume() *
         p.y_spatial();
}

inline Case random_case(std::mt19937& rng, bool transposed, CaseSize size = CaseSize::small) {
  using reference::Index;
  auto pick = [&](Index low, Index high) {
    return std::uniform_int_distribution<Index>(low, high)(rng);
  };
  const bool medium = size == CaseSize::medium;
  for (;;) {
    Case c;
    reference::Problem& p = c.p;
    p.dims = static_cast<int>(pick(1, 3));
    bool depthwise = false;
    if (medium) {
      p.batch = pick(1, 4);
      depthwise = pick(0, 3) == 0;
      p.groups = depthwise ? pick(4, 16) : pick(1, 3);
      p.x_channels = p.groups * (depthwise ? 1 : pick(2, 6));
      p.y_channels = p.groups * (depthwise ? pick(1, 2) : pick(3, 8));
    } else {
      p.batch = pick(1, 3);
      p.groups = pick(1, 3);
      p.x_channels = p.groups * pick(1, 3);
      p.y_channels = p.groups * pick(1, 3);
    }
    const bool three = p.dims == 3;
    // Extra input (or output) size beyond the smallest valid one, per dimension.
    const Index extra = medium ? (p.dims == 1 ? 60 : three ? 6 : 14) : (three ? 4 : 8);
    for (int d = 0; d < p.dims; ++d) {
      p.kernel[d] = pick(1, three ? 3 : 4);
      p.stride[d] = pick(1, 3);
      p.dilation[d] = pick(1, 3);
      p.pad_before[d] = pick(0, 2);
      p.pad_after[d] = pick(0, 2);
      const Index span = p.dilation[d] * (p.kernel[d] - 1) + 1;
      if (transposed) {
        c.output_padding[d] = pick(0, std::max(p.stride[d], p.dilation[d]) - 1);
        Index y = pick(1, medium ? extra / 2 : (three ? 4 : 6));
        auto x_for = [&](Index y_size) {
          return (y_size - 1) * p.stride[d] - p.pad_before[d] - p.pad_after[d] + span +
                 c.output_padding[d];
        };
        while (x_for(y) < 1) ++y;
        p.y_size[d] = y;
        p.x_size[d] = x_for(y);
      } else {
        const Index smallest = std::max<Index>(1, span - p.pad_before[d] - p.pad_after[d]);
        p.x_size[d] = smallest + pick(0, extra);
      }
    }
    if (!transposed) p.y_size = reference::conv_output_size(p);
    const double work = multiply_adds(p);
    const double least = depthwise ? 8192.0 : 65536.0;
    if (!medium || (work >= least && work <= 1048576.0)) return c;
  }
}

}  // namespace test_util
