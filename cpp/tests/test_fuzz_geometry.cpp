// Random 64-bit arguments for the geometry's builders and the Matrix API: every call either
// throws convt::Error or gives a geometry whose sizes are the formula's (computed here in 128
// bits) and whose kernels, run wherever the arrays fit in memory, write nothing outside them and
// agree with the plain-loop reference. Run under AddressSanitizer and UBSan (CONVT_SANITIZE), a
// read or write out of bounds or a signed overflow anywhere on the way fails the test.
//
// CONVT_FUZZ_ITERATIONS (default 30000) and CONVT_FUZZ_SEED (default fixed) run it longer or
// elsewhere; a failure prints the seed and the case.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
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

using convt::ConvGeometry;
using convt::ConvKind;
using convt::ConvOptions;
using convt::index_t;
using convt::PaddingMode;
using convt::PaddingRule;
using convt::Shape;
__extension__ typedef __int128 wide;

constexpr index_t largest = std::numeric_limits<index_t>::max();
constexpr index_t smallest = std::numeric_limits<index_t>::min();
constexpr index_t max_elements = convt::detail::max_elements;

std::uint64_t setting(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::strtoull(text, nullptr, 10) : fallback;
}

// Draws 64-bit arguments: mostly small values, the rest near a power of two chosen once per case
// (so that huge paddings, strides and dilations of one case can cancel out and still make a
// valid geometry over a small array), or anything at all.
class Arguments {
 public:
  explicit Arguments(std::uint64_t seed) : rng_(seed) {}

  // Starts a case: a new scale, and how often its values are wild (never in a third of cases).
  void new_case() {
    scale_ = wide{1} << pick(10, 63);
    wild_ = pick(0, 2) == 0 ? 0 : static_cast<int>(pick(5, 40));
  }

  index_t pick(index_t low, index_t high) {
    return std::uniform_int_distribution<index_t>(low, high)(rng_);
  }
  bool chance(int percent) { return pick(0, 99) < percent; }

  // A value for a size, stride, padding, dilation or group count: small with probability
  // `small_percent`.
  index_t value(int small_percent, index_t low = 0, index_t high = 5) {
    if (chance(std::max(small_percent, 100 - wild_))) return pick(low, high);
    switch (pick(0, 5)) {
      case 0:
        return largest - pick(0, 2);
      case 1:
        return pick(0, 4) == 0 ? smallest : -pick(1, 3);
      case 2:
        return static_cast<index_t>(std::uniform_int_distribution<std::uint64_t>()(rng_));
      default: {
        // a * scale + b, clamped to 64 bits
        const wide v = pick(0, 3) * scale_ + pick(-3, 3);
        return v > largest ? largest : static_cast<index_t>(v);
      }
    }
  }

  Shape values(int dims, int small_percent, index_t low, index_t high) {
    std::size_t count = chance(50) ? 1 : static_cast<std::size_t>(dims);
    if (chance(3)) count = static_cast<std::size_t>(pick(0, 4));
    Shape result;
    for (std::size_t i = 0; i < count; ++i) result.push_back(value(small_percent, low, high));
    return result;
  }

 private:
  std::mt19937_64 rng_;
  wide scale_ = 1;
  int wild_ = 0;
};

struct Call {
  ConvKind kind = ConvKind::convolution;
  int dims = 2;
  Shape input;
  Shape weight;
  ConvOptions options;
};

std::string describe(const Call& call) {
  using convt::detail::format_values;
  const ConvOptions& o = call.options;
  return std::string(call.kind == ConvKind::convolution ? "convolution" : "transposed") +
         " dims=" + std::to_string(call.dims) + " input=" + format_values(call.input) +
         " weight=" + format_values(call.weight) + " stride=" + format_values(o.stride) +
         " padding=" + format_values(o.padding) + "/" + format_values(o.padding_after) +
         " rule=" + std::to_string(static_cast<int>(o.padding_rule)) +
         " mode=" + convt::padding_mode_name(o.padding_mode) +
         " dilation=" + format_values(o.dilation) + " groups=" + std::to_string(o.groups) +
         " output_padding=" + format_values(o.output_padding) +
         " output_size=" + format_values(o.output_size);
}

Call random_call(Arguments& a) {
  a.new_case();
  Call call;
  call.kind = a.chance(50) ? ConvKind::convolution : ConvKind::transposed;
  call.dims = a.chance(97) ? static_cast<int>(a.pick(1, 3)) : static_cast<int>(a.value(0));
  const int dims = std::max(1, std::min(call.dims, 3));
  const index_t groups = a.chance(85) ? a.pick(1, 2) : a.value(30, 0, 3);
  // Many channels in some cases, so that the GEMM paths run and not only the direct loops.
  const bool big = a.chance(30);
  const index_t per_group = a.chance(90) ? a.pick(1, big ? 12 : 2) : a.value(20, 0, 3);
  const index_t filters = a.chance(90) ? a.pick(big ? 4 : 1, big ? 12 : 2) : a.value(20, 0, 3);
  const bool batched = a.chance(80);
  if (batched) call.input.push_back(a.chance(80) ? a.pick(0, big ? 3 : 2) : a.value(20, -1, 3));
  // A convolution's input has groups * per_group channels, a transposed one's groups * filters;
  // the weight is (groups * filters, per_group, k...) either way.
  const wide channels = wide{groups} * (call.kind == ConvKind::convolution ? per_group : filters);
  call.input.push_back(a.chance(95) && channels <= largest ? static_cast<index_t>(channels)
                                                           : a.value(30, 0, 4));
  const wide weight_filters = wide{groups} * filters;
  const bool natural = a.chance(95) && weight_filters <= largest;
  call.weight = {call.kind == ConvKind::transposed ? call.input.back()
                 : natural                         ? static_cast<index_t>(weight_filters)
                                                   : a.value(50),
                 per_group};
  for (int d = 0; d < dims; ++d) {
    const index_t size = big ? (dims == 1 ? 64 : dims == 2 ? 14 : 6) : 6;
    call.input.push_back(a.chance(85) ? a.pick(1, size) : a.value(20, 0, 8));
    call.weight.push_back(a.chance(85) ? a.pick(1, 3) : a.value(30, 0, 4));
  }
  if (a.chance(3)) call.input.push_back(a.pick(1, 3));  // a rank the call does not take
  if (a.chance(3)) call.weight.push_back(a.pick(1, 3));
  ConvOptions& o = call.options;
  o.groups = groups;
  o.stride = a.values(dims, 70, 1, 3);
  o.padding = a.values(dims, 70, 0, 3);
  if (a.chance(30)) o.padding_after = a.values(dims, 70, 0, 3);
  o.dilation = a.values(dims, 75, 1, 3);
  o.output_padding = a.values(dims, 80, 0, 2);
  const index_t rule = a.pick(0, 9);
  o.padding_rule = rule == 0   ? PaddingRule::same
                   : rule == 1 ? PaddingRule::valid
                               : PaddingRule::explicit_values;
  const index_t mode = a.pick(0, 9);
  o.padding_mode = mode < 6    ? PaddingMode::zeros
                   : mode == 6 ? PaddingMode::reflect
                   : mode == 7 ? PaddingMode::replicate
                               : PaddingMode::circular;
  if (call.kind == ConvKind::transposed && a.chance(15)) {
    o.output_size = a.values(dims, 60, 1, 12);
  }
  return call;
}

ConvGeometry build(const Call& call) {
  return call.kind == ConvKind::convolution
             ? ConvGeometry::convolution(call.dims, call.input, call.weight, call.options)
             : ConvGeometry::transposed(call.dims, call.input, call.weight, call.options);
}

// The per-dimension value of a list that was accepted (one value or one per dimension).
index_t at(const Shape& values, int d, index_t fallback) {
  if (values.empty()) return fallback;
  return values.size() == 1 ? values[0] : values[static_cast<std::size_t>(d)];
}

// Everything an accepted geometry promises, recomputed from the call in 128 bits.
void check_accepted(const Call& call, const ConvGeometry& g) {
  const ConvOptions& o = call.options;
  ASSERT_EQ(g.dims, call.dims);
  ASSERT_GE(g.batch, 0);
  ASSERT_GE(g.groups, 1);
  ASSERT_EQ(g.x_channels % g.groups, 0);
  ASSERT_EQ(g.y_channels % g.groups, 0);
  for (int d = 0; d < g.dims; ++d) {
    const int a = g.axis(d);
    const index_t k = call.weight[2 + d];
    const index_t s = at(o.stride, d, 1);
    const index_t dilation = at(o.dilation, d, 1);
    ASSERT_EQ(g.kernel[a], k);
    ASSERT_EQ(g.stride[a], s);
    ASSERT_EQ(g.dilation[a], dilation);
    for (index_t v : {g.stride[a], g.dilation[a], g.padding_before[a], g.padding_after[a],
                      g.output_padding[a], g.x_size[a], g.y_size[a], g.kernel[a]}) {
      ASSERT_GE(v, 0);
      ASSERT_LE(v, max_elements);
    }
    const wide span = wide{dilation} * (k - 1) + 1;
    const wide before = g.padding_before[a];
    const wide after = g.padding_after[a];
    if (o.padding_rule == PaddingRule::explicit_values) {
      ASSERT_EQ(g.padding_before[a], at(o.padding, d, 0));
      ASSERT_EQ(g.padding_after[a],
                at(o.padding_after.empty() ? o.padding : o.padding_after, d, 0));
    }
    const index_t input_size = call.input[call.input.size() - call.dims + d];
    if (call.kind == ConvKind::convolution) {
      ASSERT_EQ(g.x_size[a], input_size);
      const wide y = (input_size + before + after - span) / s + 1;
      ASSERT_GE(y, 1);
      ASSERT_EQ(g.y_size[a], static_cast<index_t>(y));
    } else {
      ASSERT_EQ(g.y_size[a], input_size);
      const wide least = wide{input_size - 1} * s - before - after + span;
      const wide x = least + g.output_padding[a];
      ASSERT_EQ(g.x_size[a], static_cast<index_t>(x));
      ASSERT_GE(x, 1);
      if (o.output_size.empty() && o.padding_rule != PaddingRule::same) {
        ASSERT_EQ(g.output_padding[a], at(o.output_padding, d, 0));
      }
      ASSERT_TRUE(g.output_padding[a] < s || g.output_padding[a] < dilation ||
                  !o.output_size.empty());
    }
  }
  // Every tensor, and each of its samples, is addressable.
  for (const Shape& shape : {g.x_shape(), g.y_shape(), g.weight_shape()}) {
    wide total = 1;
    for (index_t size : shape) {
      ASSERT_GE(size, 0);
      if (size > 0) total *= size;
      ASSERT_LE(total, max_elements);
    }
  }
}

wide elements(const Shape& shape) {
  wide total = 1;
  for (index_t size : shape) total *= size;
  return total;
}

reference::Problem problem_of(const ConvGeometry& g) {
  reference::Problem p;
  p.dims = g.dims;
  p.batch = g.batch;
  p.groups = g.groups;
  p.x_channels = g.x_channels;
  p.y_channels = g.y_channels;
  p.mode = static_cast<reference::Mode>(static_cast<int>(g.padding_mode));
  for (int d = 0; d < g.dims; ++d) {
    const int a = g.axis(d);
    p.x_size[d] = g.x_size[a];
    p.y_size[d] = g.y_size[a];
    p.kernel[d] = g.kernel[a];
    p.stride[d] = g.stride[a];
    p.pad_before[d] = g.padding_before[a];
    p.pad_after[d] = g.padding_after[a];
    p.dilation[d] = g.dilation[a];
  }
  return p;
}

// Runs the three kernels and the bias pair on arrays exactly as large as the geometry says, so
// that AddressSanitizer catches any access past them, and compares with the reference.
void run_kernels(const ConvGeometry& g, std::mt19937& rng) {
  using test_util::absolute;
  using test_util::all_close;
  using test_util::random_vector;
  const reference::Problem p = problem_of(g);
  const auto x = random_vector<double>(rng, p.x_count());
  const auto w = random_vector<double>(rng, p.w_count());
  const auto dy = random_vector<double>(rng, p.y_count());
  std::vector<double> y(static_cast<std::size_t>(p.y_count()));
  std::vector<double> dx(static_cast<std::size_t>(p.x_count()));
  std::vector<double> dw(static_cast<std::size_t>(p.w_count()));
  std::vector<double> bias(static_cast<std::size_t>(g.output_channels()), 0.5);
  std::vector<double> grad_bias(bias.size());

  convt::conv_forward(g, x.data(), w.data(), y.data());
  EXPECT_TRUE(all_close(y.data(), reference::conv_forward(p, x, w),
                        reference::conv_forward(p, absolute(x), absolute(w))))
      << "conv_forward";
  convt::conv_backward_input(g, dy.data(), w.data(), dx.data());
  EXPECT_TRUE(all_close(dx.data(), reference::conv_backward_input(p, dy, w),
                        reference::conv_backward_input(p, absolute(dy), absolute(w))))
      << "conv_backward_input";
  convt::conv_backward_weight(g, x.data(), dy.data(), dw.data());
  EXPECT_TRUE(all_close(dw.data(), reference::conv_backward_weight(p, x, dy),
                        reference::conv_backward_weight(p, absolute(x), absolute(dy))))
      << "conv_backward_weight";
  // The layer's entry points, bias included, on the same arrays.
  const bool convolution = g.kind == ConvKind::convolution;
  std::vector<double>& output = convolution ? y : dx;
  const std::vector<double>& input = convolution ? x : dy;
  const std::vector<double>& grad_output = convolution ? dy : x;
  std::vector<double>& grad_input = convolution ? dx : y;
  convt::forward(g, input.data(), w.data(), bias.data(), output.data());
  convt::backward(g, grad_output.data(), input.data(), w.data(), grad_input.data(), dw.data(),
                  grad_bias.data());
}

// A batch of zero: the kernels must not read or write x or y (they get no memory at all) but
// still set the weight and bias gradients to zero, however large each sample would be.
void run_empty_batch(const ConvGeometry& g) {
  std::vector<double> w(static_cast<std::size_t>(elements(g.weight_shape())), 1.0);
  std::vector<double> bias(static_cast<std::size_t>(g.output_channels()), 1.0);
  std::vector<double> dw(w.size(), 1.0);
  std::vector<double> grad_bias(bias.size(), 1.0);
  double* none = nullptr;
  convt::forward<double>(g, none, w.data(), bias.data(), none);
  convt::backward<double>(g, none, none, w.data(), none, dw.data(), grad_bias.data());
  for (double value : dw) ASSERT_EQ(value, 0.0);
  for (double value : grad_bias) ASSERT_EQ(value, 0.0);
}

// Strides, paddings and dilations near 2**60 that still make small arrays, on each path that
// takes them (the stride-1 padded copy never does: its padded grid would be as large).
TEST(GeometryFuzz, HugeArgumentsOnEveryPath) {
  constexpr index_t huge = index_t{1} << 59;
  struct Expected {
    Call call;
    const char* forward;
    const char* backward_input;
  };
  auto options = [](Shape stride, Shape before, Shape after, Shape dilation) {
    ConvOptions o;
    o.stride = std::move(stride);
    o.padding = std::move(before);
    o.padding_after = std::move(after);
    o.dilation = std::move(dilation);
    return o;
  };
  const std::vector<Expected> cases = {
      // y is 2 x 40: both rows of outputs read only padding in the first dimension
      {{ConvKind::convolution,
        2,
        {1, 16, 3, 40},
        {16, 16, 1, 3},
        options({huge, 1}, {huge / 2, 1}, {huge / 2, 1}, {1})},
       "im2col",
       "col2im"},
      // one kernel tap reads x, the other lies 2**59 before it
      {{ConvKind::convolution, 1, {2, 16, 40}, {16, 16, 2}, options({1}, {huge}, {0}, {huge})},
       "im2col",
       "col2im"},
      {{ConvKind::convolution, 1, {1, 1, 5}, {1, 1, 1}, options({2 * huge - 1}, {2}, {2}, {1})},
       "direct",
       "direct"},
      {{ConvKind::convolution,
        1,
        {1, 1, 5},
        {1, 1, 3},
        options({3}, {huge / 2}, {huge / 2}, {huge / 2})},
       "direct",
       "direct"},
      // x is 1 x 40: (1 - 1) * stride - 2**59 + 2**59 * (2 - 1) + 1 = 1
      {{ConvKind::transposed,
        2,
        {1, 16, 1, 40},
        {16, 16, 2, 3},
        options({huge, 1}, {huge, 1}, {0, 1}, {huge, 1})},
       "im2col",
       "col2im"},
      {{ConvKind::transposed, 1, {2, 1, 1}, {1, 3, 2}, options({huge}, {huge}, {0}, {huge})},
       "direct",
       "direct"},
  };
  std::mt19937 data(7);
  for (const Expected& c : cases) {
    SCOPED_TRACE(describe(c.call));
    const ConvGeometry g = build(c.call);
    check_accepted(c.call, g);
    EXPECT_STREQ(algorithm_of(g, convt::Kernel::forward), c.forward);
    EXPECT_STREQ(algorithm_of(g, convt::Kernel::backward_input), c.backward_input);
    run_kernels(g, data);
  }
}

TEST(GeometryFuzz, RandomArgumentsAreRejectedOrComputedInBounds) {
  const std::uint64_t seed = setting("CONVT_FUZZ_SEED", 20261202);
  const std::uint64_t iterations = setting("CONVT_FUZZ_ITERATIONS", 30000);
  Arguments arguments(seed);
  std::mt19937 data(static_cast<std::mt19937::result_type>(seed));
  // A sanitizer report ends the process: CONVT_FUZZ_TRACE=1 names each case before it runs.
  const bool trace = setting("CONVT_FUZZ_TRACE", 0) != 0;
  std::map<std::string, int> paths;  // forward / input-gradient algorithm of computed cases
  std::uint64_t accepted = 0, computed = 0, empty = 0, huge_accepted = 0, huge_computed = 0;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    const Call call = random_call(arguments);
    SCOPED_TRACE("seed " + std::to_string(seed) + " case " + std::to_string(i) + ": " +
                 describe(call));
    ConvGeometry g;
    try {
      g = build(call);
    } catch (const convt::Error&) {
      continue;
    } catch (const std::exception& error) {
      FAIL() << "threw " << typeid(error).name() << " instead of convt::Error: " << error.what();
    }
    ++accepted;
    if (trace) std::cerr << "case " << i << ": " << describe(call) << "\n";
    check_accepted(call, g);
    if (testing::Test::HasFatalFailure()) return;
    // The algorithm choice does size arithmetic of its own.
    (void)algorithm_of(g, convt::Kernel::forward);
    (void)algorithm_of(g, convt::Kernel::backward_input);
    bool huge = false;
    for (int d = 0; d < convt::max_spatial_dims; ++d) {
      for (index_t v : {g.stride[d], g.padding_before[d], g.padding_after[d], g.dilation[d]}) {
        huge = huge || v >= (index_t{1} << 31);
      }
    }
    huge_accepted += huge;
    const double work = static_cast<double>(g.batch) * g.y_channels * g.lowered_rows() *
                        static_cast<double>(g.y_spatial());
    const bool weight_fits = elements(g.weight_shape()) <= (1 << 12);
    // A mode other than zeros reads a padded copy of x, as large as the padding makes it.
    wide padded = std::max<index_t>(g.batch, 1) * wide{g.x_channels};
    for (int d = 0; d < convt::max_spatial_dims; ++d) {
      const wide size = wide{g.x_size[d]} + g.padding_before[d] + g.padding_after[d];
      padded = size > (1 << 16) ? wide{1} << 20 : padded * size;  // stays within 128 bits
    }
    const bool padded_fits = g.padding_mode == PaddingMode::zeros || padded <= (1 << 16);
    if (g.batch == 0 && weight_fits) {  // the padded copy is never made for an empty batch
      ++empty;
      run_empty_batch(g);
    } else if (weight_fits && padded_fits && elements(g.x_shape()) <= (1 << 14) &&
               elements(g.y_shape()) <= (1 << 14) && work <= 2e6) {
      ++computed;
      huge_computed += huge;
      ++paths[std::string(algorithm_of(g, convt::Kernel::forward)) + "/" +
              algorithm_of(g, convt::Kernel::backward_input)];
      run_kernels(g, data);
    }
    if (testing::Test::HasFailure()) return;
  }
  std::cout << iterations << " calls: " << accepted << " accepted (" << huge_accepted
            << " with a stride, padding or dilation of 2**31 or more), " << computed
            << " computed against the reference (" << huge_computed << " of them with one), "
            << empty << " with an empty batch\n";
  for (const auto& [path, count] : paths) std::cout << "  " << path << ": " << count << "\n";
  EXPECT_GT(computed, iterations / 20);
  EXPECT_GT(huge_computed, iterations / 1000);
}

// The Matrix API with random 64-bit sizes and strides: a matrix too large to address, a negative
// size or a stride that is not positive is a convt::Error; anything else computes, with the
// seed's output sizes.
TEST(GeometryFuzz, MatrixArguments) {
  const std::uint64_t seed = setting("CONVT_FUZZ_SEED", 20261202);
  const std::uint64_t iterations = setting("CONVT_FUZZ_ITERATIONS", 30000) / 10;
  Arguments a(seed + 1);
  std::uint64_t computed = 0;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    a.new_case();
    const index_t rows = a.value(60, 0, 6);
    const index_t cols = a.value(60, 0, 6);
    SCOPED_TRACE("Matrix(" + std::to_string(rows) + ", " + std::to_string(cols) + ")");
    const wide count = wide{rows} * cols;
    if (rows < 0 || cols < 0 || (rows > 0 && cols > 0 && count > max_elements)) {
      EXPECT_THROW(convt::Matrix<double>(rows, cols), convt::Error);
      continue;
    }
    if (count > (1 << 16) || rows > (1 << 16) || cols > (1 << 16)) continue;  // would allocate
    convt::Matrix<double> x(rows, cols);
    for (index_t j = 0; j < x.size(); ++j) x.data()[j] = 1.0;
    EXPECT_THROW(x.at(a.value(50, -2, 6), largest), convt::Error);
    const convt::Matrix<double> kernel(a.pick(1, 3), a.pick(1, 3));
    const convt::Strides strides{a.value(70, -1, 3), a.value(70, -1, 3)};
    SCOPED_TRACE("strides (" + std::to_string(strides[0]) + ", " + std::to_string(strides[1]) +
                 ")");
    try {
      const convt::Matrix<double> y = x.convolute(kernel, strides);
      EXPECT_EQ(y.rows(), (rows - kernel.rows()) / strides[0] + 1);
      EXPECT_EQ(y.cols(), (cols - kernel.cols()) / strides[1] + 1);
      ++computed;
    } catch (const convt::Error&) {
    }
    // The scatter's output grows with the strides: only where it fits in memory.
    const wide full_rows = wide{rows - 1} * strides[0] + kernel.rows();
    const wide full_cols = wide{cols - 1} * strides[1] + kernel.cols();
    if (full_rows > (1 << 8) || full_cols > (1 << 8)) continue;
    try {
      const convt::Matrix<double> y = x.convolute_full(kernel, strides);
      EXPECT_EQ(y.rows(), wide{rows - 1} * strides[0] + kernel.rows());
      EXPECT_EQ(y.cols(), wide{cols - 1} * strides[1] + kernel.cols());
      ++computed;
    } catch (const convt::Error&) {
    }
    if (testing::Test::HasFailure()) return;
  }
  EXPECT_GT(computed, iterations / 10);
}

}  // namespace
