// Padding beyond zeros: the geometry's padding rules (TensorFlow's 'same' for every stride and
// for transposed layers, the output sizes a transposed layer can reach) and padding modes (their
// validation, and the kernels against the plain-loop reference, which reads the padding through
// its own index arithmetic). A transposed convolution with a mode is the adjoint of the
// convolution with that mode: checked by the adjoint identity and against the explicit matrix.

#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "convt/convt.hpp"
#include "reference.hpp"
#include "test_util.hpp"

namespace {

using convt::ConvGeometry;
using convt::ConvOptions;
using convt::PaddingMode;
using convt::PaddingRule;
using convt::Shape;
using reference::Index;
using reference::Mode;
using reference::Problem;
using test_util::absolute;
using test_util::all_close;
using test_util::Case;
using test_util::expect_error;
using test_util::random_vector;

ConvOptions same_options(Shape stride, Shape dilation = {1}) {
  ConvOptions o;
  o.stride = std::move(stride);
  o.dilation = std::move(dilation);
  o.padding_rule = PaddingRule::same;
  return o;
}

ConvOptions mode_options(PaddingMode mode, Shape padding, Shape padding_after = {}) {
  ConvOptions o;
  o.padding = std::move(padding);
  o.padding_after = std::move(padding_after);
  o.padding_mode = mode;
  return o;
}

// ---------------------------------------------------------------------------------------------
// 'same'

// TensorFlow's rule: output ceil(input / stride), total padding max((output - 1) * stride +
// dilation * (kernel - 1) + 1 - input, 0), the smaller half before.
TEST(SamePadding, ConvolutionWithStrides) {
  struct Expected {
    Index input, kernel, stride, dilation, output, before, after;
  };
  for (const Expected& e : std::initializer_list<Expected>{{10, 3, 2, 1, 5, 0, 1},
                                                           {7, 4, 3, 1, 3, 1, 2},
                                                           {10, 1, 3, 1, 4, 0, 0},
                                                           {9, 3, 2, 2, 5, 2, 2},
                                                           {5, 5, 1, 1, 5, 2, 2},
                                                           {2, 5, 1, 1, 2, 2, 2},
                                                           {11, 2, 4, 1, 3, 0, 0}}) {
    SCOPED_TRACE("input " + std::to_string(e.input) + " kernel " + std::to_string(e.kernel) +
                 " stride " + std::to_string(e.stride));
    const ConvGeometry g = ConvGeometry::convolution(1, {1, 1, e.input}, {1, 1, e.kernel},
                                                     same_options({e.stride}, {e.dilation}));
    EXPECT_EQ(g.y_size[2], e.output);
    EXPECT_EQ(g.padding_before[2], e.before);
    EXPECT_EQ(g.padding_after[2], e.after);
  }
}

// A transposed layer with 'same' is the adjoint of the 'same' convolution whose output is its
// input: output input x stride (or a smaller size with the same ceil, through output_size),
// cropped by what that convolution pads.
TEST(SamePadding, TransposedIsTheAdjointOfTheSameConvolution) {
  for (Index input = 1; input <= 6; ++input) {
    for (Index kernel = 1; kernel <= 6; ++kernel) {
      for (Index stride = 1; stride <= 4; ++stride) {
        for (Index dilation = 1; dilation <= 2; ++dilation) {
          SCOPED_TRACE("input " + std::to_string(input) + " kernel " + std::to_string(kernel) +
                       " stride " + std::to_string(stride) + " dilation " +
                       std::to_string(dilation));
          ConvOptions o = same_options({stride}, {dilation});
          const ConvGeometry t = ConvGeometry::transposed(1, {1, 1, input}, {1, 1, kernel}, o);
          EXPECT_EQ(t.x_size[2], input * stride);
          EXPECT_EQ(t.output_size_first[2], (input - 1) * stride + 1);
          EXPECT_EQ(t.output_size_last[2], input * stride);
          for (Index size = t.output_size_first[2]; size <= t.output_size_last[2]; ++size) {
            o.output_size = {size};
            const ConvGeometry picked =
                ConvGeometry::transposed(1, {1, 1, input}, {1, 1, kernel}, o);
            const ConvGeometry c = ConvGeometry::convolution(1, {1, 1, size}, {1, 1, kernel},
                                                             same_options({stride}, {dilation}));
            EXPECT_EQ(picked.x_size[2], size);
            EXPECT_EQ(c.y_size[2], input);
            EXPECT_EQ(picked.padding_before[2], c.padding_before[2]);
            EXPECT_EQ(picked.padding_after[2], c.padding_after[2]);
            EXPECT_LT(picked.output_padding[2], stride);
          }
        }
      }
    }
  }
}

TEST(SamePadding, TransposedTwoDimensions) {
  // Kernel 4, stride 2 (DCGAN): crop 1 and 1; kernel 3, stride 2: crop 0 and 1.
  const ConvGeometry g = ConvGeometry::transposed(2, {1, 2, 4, 5}, {2, 3, 4, 3}, same_options({2}));
  EXPECT_EQ(g.output_shape(), (Shape{1, 3, 8, 10}));
  EXPECT_EQ(g.padding_before[g.axis(0)], 1);
  EXPECT_EQ(g.padding_after[g.axis(0)], 1);
  EXPECT_EQ(g.padding_before[g.axis(1)], 0);
  EXPECT_EQ(g.padding_after[g.axis(1)], 1);
}

TEST(SamePadding, Errors) {
  ConvOptions o = same_options({2});
  o.output_size = {6};
  expect_error(
      [&] {
        ConvGeometry::transposed(1, {1, 1, 4}, {1, 1, 3}, o);
      },
      {"conv_transpose1d: output_size (6,) is not reachable with padding='same'",
       "valid sizes range from 7 to 8"});
  o.output_size = {};
  o.output_padding = {1};
  expect_error(
      [&] {
        ConvGeometry::transposed(1, {1, 1, 4}, {1, 1, 3}, o);
      },
      {"conv_transpose1d: output_padding (1) cannot be combined with padding='same'"});
}

// ---------------------------------------------------------------------------------------------
// Output sizes a transposed layer reaches

TEST(OutputSizes, TheStrideManySizesThatConvolveToTheInput) {
  // Inputs of 23 and 24 both convolve to 12 with kernel 3, stride 2, padding 1.
  ConvOptions o;
  o.stride = {2};
  o.padding = {1};
  const ConvGeometry g = ConvGeometry::transposed(1, {1, 1, 12}, {1, 1, 3}, o);
  EXPECT_EQ(g.output_size_first[2], 23);
  EXPECT_EQ(g.output_size_last[2], 24);
  for (Index size : {23, 24}) {
    EXPECT_EQ(ConvGeometry::convolution(1, {1, 1, size}, {1, 1, 3}, o).y_size[2], 12);
  }
  o.stride = {3, 1};
  o.padding = {0};
  const ConvGeometry two = ConvGeometry::transposed(2, {1, 1, 4, 4}, {1, 1, 2, 2}, o);
  EXPECT_EQ(two.output_size_first[two.axis(0)], 11);
  EXPECT_EQ(two.output_size_last[two.axis(0)], 13);
  EXPECT_EQ(two.output_size_first[two.axis(1)], 5);
  EXPECT_EQ(two.output_size_last[two.axis(1)], 5);
}

// ---------------------------------------------------------------------------------------------
// Padding modes: names and validation

TEST(PaddingModes, NamesRoundTrip) {
  for (PaddingMode mode :
       {PaddingMode::zeros, PaddingMode::reflect, PaddingMode::replicate, PaddingMode::circular}) {
    EXPECT_EQ(convt::parse_padding_mode(convt::padding_mode_name(mode)), mode);
  }
  expect_error(
      [] { convt::parse_padding_mode("mirror"); },
      {"padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got 'mirror'"});
}

TEST(PaddingModes, TheGeometryCarriesTheMode) {
  const ConvGeometry g = ConvGeometry::convolution(2, {1, 1, 5, 5}, {1, 1, 3, 3},
                                                   mode_options(PaddingMode::circular, {1}));
  EXPECT_EQ(g.padding_mode, PaddingMode::circular);
  EXPECT_TRUE(convt::detail::pads_with_values(g));
  // Without padding a mode changes nothing, and the zero-padding path runs.
  const ConvGeometry none = ConvGeometry::convolution(2, {1, 1, 5, 5}, {1, 1, 3, 3},
                                                      mode_options(PaddingMode::reflect, {0}));
  EXPECT_FALSE(convt::detail::pads_with_values(none));
  EXPECT_FALSE(convt::detail::pads_with_values(ConvGeometry::convolution(
      2, {1, 1, 5, 5}, {1, 1, 3, 3}, mode_options(PaddingMode::zeros, {1}))));
}

// PyTorch's rules: reflect needs padding smaller than the padded size, circular at most it,
// replicate anything. For a transposed layer the padded array is its output.
TEST(PaddingModes, PyTorchRulesOnPaddingSizes) {
  expect_error(
      [] {
        ConvGeometry::convolution(1, {1, 1, 3}, {1, 1, 3}, mode_options(PaddingMode::reflect, {3}));
      },
      {"conv1d: padding_mode='reflect' needs padding smaller than the input size",
       "got padding 3 before and 3 after an input of size 3 in spatial dimension 0"});
  expect_error(
      [] {
        ConvGeometry::convolution(2, {1, 1, 5, 3}, {1, 1, 3, 3},
                                  mode_options(PaddingMode::reflect, {1, 0}, {1, 3}));
      },
      {"conv2d: padding_mode='reflect'", "0 before and 3 after", "spatial dimension 1"});
  EXPECT_NO_THROW(
      ConvGeometry::convolution(1, {1, 1, 3}, {1, 1, 3}, mode_options(PaddingMode::reflect, {2})));
  expect_error(
      [] {
        ConvGeometry::convolution(1, {1, 1, 3}, {1, 1, 3},
                                  mode_options(PaddingMode::circular, {4}));
      },
      {"conv1d: padding_mode='circular' needs padding at most the input size",
       "got padding 4 before and 4 after"});
  EXPECT_NO_THROW(
      ConvGeometry::convolution(1, {1, 1, 3}, {1, 1, 3}, mode_options(PaddingMode::circular, {3})));
  EXPECT_NO_THROW(ConvGeometry::convolution(1, {1, 1, 1}, {1, 1, 3},
                                            mode_options(PaddingMode::replicate, {5})));
  // A transposed layer whose output is 1 along the first axis (input 1, kernel 3, padding 1).
  expect_error(
      [] {
        ConvGeometry::transposed(3, {1, 1, 1, 2, 2}, {1, 1, 3, 1, 1},
                                 mode_options(PaddingMode::reflect, {1, 0, 0}));
      },
      {"conv_transpose3d: padding_mode='reflect' needs padding smaller than the output size",
       "an output of size 1 in spatial dimension 0"});
}

// ---------------------------------------------------------------------------------------------
// Padding modes: the kernels

// By hand, x = (1, 2, 3) and a kernel of three ones with padding 1:
//   reflect (2 | 1 2 3 | 2) -> 5 6 7; replicate (1 | 1 2 3 | 3) -> 4 6 8;
//   circular (3 | 1 2 3 | 1) -> 6 6 6.
// The transposed layer scatters y = (1, 0, 0) into the padded grid (1 1 1 0 0) and folds it:
// circular wraps the 1 before onto the last element (1 1 1), reflect mirrors it onto the second
// (1 2 0), replicate adds it to the first (2 1 0).
TEST(PaddingModes, OneDimensionByHand) {
  const std::vector<double> x{1, 2, 3};
  const std::vector<double> w{1, 1, 1};
  const std::vector<double> unit{1, 0, 0};
  struct Expected {
    PaddingMode mode;
    std::vector<double> forward;
    std::vector<double> transposed;
  };
  for (const Expected& e : {Expected{PaddingMode::reflect, {5, 6, 7}, {1, 2, 0}},
                            Expected{PaddingMode::replicate, {4, 6, 8}, {2, 1, 0}},
                            Expected{PaddingMode::circular, {6, 6, 6}, {1, 1, 1}}}) {
    SCOPED_TRACE(convt::padding_mode_name(e.mode));
    const ConvOptions o = mode_options(e.mode, {1});
    std::vector<double> y(3), t(3);
    convt::forward(ConvGeometry::convolution(1, {1, 1, 3}, {1, 1, 3}, o), x.data(), w.data(),
                   static_cast<const double*>(nullptr), y.data());
    EXPECT_EQ(y, e.forward);
    convt::forward(ConvGeometry::transposed(1, {1, 1, 3}, {1, 1, 3}, o), unit.data(), w.data(),
                   static_cast<const double*>(nullptr), t.data());
    EXPECT_EQ(t, e.transposed);
  }
}

convt::ConvGeometry convolution_geometry(const Problem& p) {
  return ConvGeometry::convolution(p.dims,
                                   test_util::tensor_shape(p.batch, p.x_channels, p.x_size, p.dims),
                                   test_util::weight_shape(p), test_util::options_for(p));
}

convt::ConvGeometry transposed_geometry(const Case& c) {
  const Problem& p = c.p;
  return ConvGeometry::transposed(
      p.dims, test_util::tensor_shape(p.batch, p.y_channels, p.y_size, p.dims),
      test_util::weight_shape(p), test_util::options_for(p, c.output_padding));
}

// A random case with a padding mode whose padding PyTorch's rules allow, and some padding.
Case random_mode_case(std::mt19937& rng, bool transposed, Mode mode,
                      test_util::CaseSize size = test_util::CaseSize::small) {
  for (;;) {
    Case c = test_util::random_case(rng, transposed, size);
    c.p.mode = mode;
    bool allowed = true, padded = false;
    for (int d = 0; d < c.p.dims; ++d) {
      const Index largest = std::max(c.p.pad_before[d], c.p.pad_after[d]);
      padded = padded || largest > 0;
      if (mode == Mode::reflect ? largest >= c.p.x_size[d] : largest > c.p.x_size[d]) {
        allowed = mode == Mode::replicate;
      }
    }
    if (allowed && padded) return c;
  }
}

constexpr Mode value_modes[] = {Mode::reflect, Mode::replicate, Mode::circular};

template <class T>
std::vector<T> nan_vector(Index count) {
  return std::vector<T>(static_cast<std::size_t>(count), std::numeric_limits<T>::quiet_NaN());
}

// Every kernel of either layer kind, through convt::forward / convt::backward, against the
// reference: a convolution's forward pass is the reference's gather, its input gradient the
// scatter (which adds ring taps onto the elements they read: the fold), its weight gradient the
// weight loop; a transposed layer swaps the first two.
template <class T>
void check_layer(const Case& c, bool transposed, std::mt19937& rng) {
  const Problem& p = c.p;
  SCOPED_TRACE(test_util::describe(p) + (transposed ? " transposed" : " convolution"));
  const ConvGeometry g = transposed ? transposed_geometry(c) : convolution_geometry(p);
  ASSERT_EQ(g.x_shape(), test_util::tensor_shape(p.batch, p.x_channels, p.x_size, p.dims));
  ASSERT_EQ(g.y_shape(), test_util::tensor_shape(p.batch, p.y_channels, p.y_size, p.dims));
  const Index in_count = transposed ? p.y_count() : p.x_count();
  const Index out_count = transposed ? p.x_count() : p.y_count();
  const auto input = random_vector<T>(rng, in_count);
  const auto w = random_vector<T>(rng, p.w_count());
  const auto grad_output = random_vector<T>(rng, out_count);
  auto gather = [&](const auto& x, const auto& weight) {
    return reference::conv_forward(p, x, weight);
  };
  auto scatter = [&](const auto& y, const auto& weight) {
    return reference::conv_backward_input(p, y, weight);
  };
  const auto& x_side = transposed ? grad_output : input;
  const auto& y_side = transposed ? input : grad_output;

  const auto out_ref = transposed ? scatter(input, w) : gather(input, w);
  const auto out_mag =
      transposed ? scatter(absolute(input), absolute(w)) : gather(absolute(input), absolute(w));
  const auto gx_ref = transposed ? gather(grad_output, w) : scatter(grad_output, w);
  const auto gx_mag = transposed ? gather(absolute(grad_output), absolute(w))
                                 : scatter(absolute(grad_output), absolute(w));
  const auto gw_ref = reference::conv_backward_weight(p, x_side, y_side);
  const auto gw_mag = reference::conv_backward_weight(p, absolute(x_side), absolute(y_side));

  auto out = nan_vector<T>(out_count);
  convt::forward(g, input.data(), w.data(), static_cast<const T*>(nullptr), out.data());
  EXPECT_TRUE(all_close(out.data(), out_ref, out_mag)) << "forward";
  auto gx = nan_vector<T>(in_count);
  auto gw = nan_vector<T>(p.w_count());
  convt::backward(g, grad_output.data(), input.data(), w.data(), gx.data(), gw.data(),
                  static_cast<T*>(nullptr));
  EXPECT_TRUE(all_close(gx.data(), gx_ref, gx_mag)) << "grad_input";
  EXPECT_TRUE(all_close(gw.data(), gw_ref, gw_mag)) << "grad_weight";
}

template <class T>
class Modes : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Modes, Types);

TYPED_TEST(Modes, MatchTheReferenceOnRandomConfigurations) {
  std::mt19937 rng(20261202);
  for (Mode mode : value_modes) {
    for (int i = 0; i < 120; ++i) {
      const bool transposed = i % 2 == 1;
      const auto size = i % 6 < 2 ? test_util::CaseSize::medium : test_util::CaseSize::small;
      check_layer<TypeParam>(random_mode_case(rng, transposed, mode, size), transposed, rng);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

// Paths the random cases may miss: stride-1 layers with enough channels for the shifted path,
// a pointwise-sized kernel with padding, a 3-D depthwise layer, batch 0 and unbatched input.
TYPED_TEST(Modes, EveryKernelPath) {
  std::mt19937 rng(7);
  for (Mode mode : value_modes) {
    Case c;
    Problem& p = c.p;
    p.mode = mode;
    p.batch = 2;
    p.x_channels = 16;
    p.y_channels = 20;
    p.x_size = {19, 17, 1};
    p.kernel = {3, 3, 1};
    p.pad_before = {2, 1, 0};
    p.pad_after = {1, 3, 0};
    p.y_size = reference::conv_output_size(p);
    EXPECT_EQ(convt::Plan(convolution_geometry(p)).algorithm(convt::Kernel::forward),
              convt::Algorithm::shifted);
    check_layer<TypeParam>(c, false, rng);

    Case one = c;  // a 1x1 kernel reads only the padding's ring at the edges of y
    one.p.kernel = {1, 1, 1};
    one.p.y_size = reference::conv_output_size(one.p);
    check_layer<TypeParam>(one, false, rng);

    Case depthwise;
    Problem& q = depthwise.p;
    q.mode = mode;
    q.dims = 3;
    q.groups = q.x_channels = q.y_channels = 4;
    q.kernel = {3, 2, 3};
    q.stride = {2, 1, 2};
    q.pad_before = {1, 1, 2};
    q.pad_after = {2, 0, 1};
    q.y_size = {4, 5, 6};  // the transposed layer's input
    // x = (y - 1) * stride - padding before - after + kernel
    q.x_size = {(4 - 1) * 2 - 3 + 3, (5 - 1) - 1 + 2, (6 - 1) * 2 - 3 + 3};
    check_layer<TypeParam>(depthwise, true, rng);

    Case empty = c;
    empty.p.batch = 0;
    check_layer<TypeParam>(empty, false, rng);
    check_layer<TypeParam>(empty, true, rng);
  }
}

// <conv_m(x), y> == <x, convT_m(y)> and <conv_m(x; w), dy> == <w, dw_m(x, dy)>.
TYPED_TEST(Modes, AdjointIdentity) {
  std::mt19937 rng(20261203);
  for (Mode mode : value_modes) {
    for (int i = 0; i < 60; ++i) {
      const bool transposed = i % 2 == 1;
      const Case c = random_mode_case(rng, transposed, mode);
      SCOPED_TRACE(test_util::describe(c.p));
      test_util::expect_adjoint<TypeParam>(
          transposed ? transposed_geometry(c) : convolution_geometry(c.p), c.p, rng);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

// The transposed layer with mode m, column by column, is the transpose of the explicit matrix
// of the convolution with mode m.
TEST(Modes, TransposedLayerIsTheTransposeOfTheConvolutionMatrix) {
  std::mt19937 rng(5);
  for (Mode mode : value_modes) {
    for (int i = 0; i < 8; ++i) {
      Case c = random_mode_case(rng, true, mode);
      c.p.batch = 1;
      const Problem& p = c.p;
      // output_padding at least the stride (allowed below the dilation) makes x larger than any
      // input whose convolution has y's size: that transposed layer is the adjoint of a
      // convolution cropped to y, which this test does not build.
      if (reference::conv_output_size(p) != p.y_size) {
        --i;
        continue;
      }
      SCOPED_TRACE(test_util::describe(p));
      const ConvGeometry conv = convolution_geometry(p);
      const ConvGeometry transposed = transposed_geometry(c);
      const auto w = random_vector<double>(rng, p.w_count());
      const Index rows = p.y_count(), cols = p.x_count();
      // matrix[r * cols + k] = conv_m(e_k)[r]
      std::vector<double> matrix(static_cast<std::size_t>(rows * cols));
      std::vector<double> unit(static_cast<std::size_t>(cols), 0.0), column(rows);
      for (Index k = 0; k < cols; ++k) {
        unit[k] = 1.0;
        convt::conv_forward(conv, unit.data(), w.data(), column.data());
        for (Index r = 0; r < rows; ++r) matrix[r * cols + k] = column[r];
        unit[k] = 0.0;
      }
      std::vector<double> y_unit(static_cast<std::size_t>(rows), 0.0), image(cols);
      for (Index r = 0; r < rows; ++r) {
        y_unit[r] = 1.0;
        convt::forward(transposed, y_unit.data(), w.data(), static_cast<const double*>(nullptr),
                       image.data());
        for (Index k = 0; k < cols; ++k) {
          ASSERT_NEAR(image[k], matrix[r * cols + k], 1e-12) << "row " << r << " column " << k;
        }
        y_unit[r] = 0.0;
      }
    }
  }
}

}  // namespace
