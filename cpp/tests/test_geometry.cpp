// ConvGeometry: output sizes of convolutions and transposed convolutions in 1-3 dimensions, with
// every option, and one test per validation error asserting the exception type and the words of
// its message.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "convt/convt.hpp"
#include "test_util.hpp"

namespace {

using convt::ConvGeometry;
using convt::ConvOptions;
using convt::PaddingMode;
using convt::PaddingRule;
using convt::Shape;
using test_util::expect_error;

static_assert(std::is_base_of_v<std::invalid_argument, convt::Error>,
              "convt::Error must be a std::invalid_argument");

ConvOptions options(Shape stride, Shape padding, Shape dilation = {1}, convt::index_t groups = 1,
                    Shape output_padding = {0}) {
  ConvOptions o;
  o.stride = std::move(stride);
  o.padding = std::move(padding);
  o.dilation = std::move(dilation);
  o.groups = groups;
  o.output_padding = std::move(output_padding);
  return o;
}

// ---------------------------------------------------------------------------------------------
// Output sizes

TEST(ConvolutionSize, OneDimension) {
  // floor((10 + 0 - 2 * (3 - 1) - 1) / 1) + 1 = 6
  const ConvGeometry g =
      ConvGeometry::convolution(1, {4, 2, 10}, {5, 2, 3}, options({1}, {0}, {2}));
  EXPECT_EQ(g.output_shape(), (Shape{4, 5, 6}));
  EXPECT_EQ(g.name(), "conv1d");
  EXPECT_EQ(g.kind, convt::ConvKind::convolution);
  // Stride that does not divide: floor((11 + 2 - 3) / 3) + 1 = 4.
  EXPECT_EQ(ConvGeometry::convolution(1, {1, 1, 11}, {1, 1, 3}, options({3}, {1})).output_shape(),
            (Shape{1, 1, 4}));
}

TEST(ConvolutionSize, TwoDimensions) {
  // PyTorch: conv2d of a 5x5 input, 3x3 kernel, stride 2, padding 1 -> 3x3.
  const ConvGeometry g =
      ConvGeometry::convolution(2, {1, 1, 5, 5}, {1, 1, 3, 3}, options({2}, {1}));
  EXPECT_EQ(g.output_shape(), (Shape{1, 1, 3, 3}));
  EXPECT_EQ(g.weight_shape(), (Shape{1, 1, 3, 3}));
  // Per-dimension values and groups: weight (C_out, C_in / groups, kh, kw).
  const ConvGeometry h =
      ConvGeometry::convolution(2, {2, 6, 9, 8}, {4, 3, 3, 2}, options({2, 1}, {1, 0}, {1, 3}, 2));
  EXPECT_EQ(h.output_shape(), (Shape{2, 4, 5, 5}));
  EXPECT_EQ(h.x_channels_per_group(), 3);
  EXPECT_EQ(h.y_channels_per_group(), 2);
  EXPECT_EQ(h.lowered_rows(), 3 * 3 * 2);
}

TEST(ConvolutionSize, ThreeDimensions) {
  const ConvGeometry g = ConvGeometry::convolution(3, {2, 3, 7, 8, 9}, {5, 3, 3, 2, 1},
                                                   options({2, 1, 3}, {1, 0, 0}, {1, 2, 1}));
  // (7 + 2 - 3) / 2 + 1 = 4; (8 - 2 - 1) / 1 + 1 = 6; (9 - 1) / 3 + 1 = 3
  EXPECT_EQ(g.output_shape(), (Shape{2, 5, 4, 6, 3}));
  EXPECT_EQ(g.name(), "conv3d");
}

TEST(ConvolutionSize, AsymmetricPadding) {
  ConvOptions o = options({1}, {2, 0});
  o.padding_after = {0, 3};
  const ConvGeometry g = ConvGeometry::convolution(2, {1, 1, 4, 4}, {1, 1, 3, 3}, o);
  EXPECT_EQ(g.output_shape(), (Shape{1, 1, 4, 5}));
  EXPECT_EQ(g.padding_before[g.axis(0)], 2);
  EXPECT_EQ(g.padding_after[g.axis(0)], 0);
  EXPECT_EQ(g.padding_before[g.axis(1)], 0);
  EXPECT_EQ(g.padding_after[g.axis(1)], 3);
}

TEST(ConvolutionSize, SamePaddingKeepsTheSizeWithTheOddElementAfter) {
  ConvOptions o;
  o.padding_rule = PaddingRule::same;
  o.dilation = {1, 2};
  // Total padding dilation * (kernel - 1): (3, 4), split (1, 2) before and (2, 2) after.
  const ConvGeometry g = ConvGeometry::convolution(2, {1, 2, 10, 7}, {3, 2, 4, 3}, o);
  EXPECT_EQ(g.output_shape(), (Shape{1, 3, 10, 7}));
  EXPECT_EQ(g.padding_before[g.axis(0)], 1);
  EXPECT_EQ(g.padding_after[g.axis(0)], 2);
  EXPECT_EQ(g.padding_before[g.axis(1)], 2);
  EXPECT_EQ(g.padding_after[g.axis(1)], 2);
  o.dilation = {1};
  const ConvGeometry one = ConvGeometry::convolution(1, {3, 5}, {2, 3, 2}, o);
  EXPECT_EQ(one.output_shape(), (Shape{2, 5}));
  EXPECT_FALSE(one.batched);
}

TEST(ConvolutionSize, ValidPaddingIsNoPadding) {
  ConvOptions o;
  o.padding_rule = PaddingRule::valid;
  o.padding = {3};  // ignored in 'valid' mode
  const ConvGeometry g = ConvGeometry::convolution(3, {1, 1, 5, 6, 7}, {1, 1, 2, 3, 4}, o);
  EXPECT_EQ(g.output_shape(), (Shape{1, 1, 4, 4, 4}));
}

TEST(ConvolutionSize, UnbatchedAndEmptyBatch) {
  const ConvGeometry g = ConvGeometry::convolution(2, {3, 6, 6}, {2, 3, 3, 3});
  EXPECT_FALSE(g.batched);
  EXPECT_EQ(g.batch, 1);
  EXPECT_EQ(g.input_shape(), (Shape{3, 6, 6}));
  EXPECT_EQ(g.output_shape(), (Shape{2, 4, 4}));
  const ConvGeometry empty = ConvGeometry::convolution(2, {0, 3, 6, 6}, {2, 3, 3, 3});
  EXPECT_TRUE(empty.batched);
  EXPECT_EQ(empty.output_shape(), (Shape{0, 2, 4, 4}));
}

TEST(TransposedSize, OneDimension) {
  // (4 - 1) * 3 - 0 + 2 * (4 - 1) + 0 + 1 = 16
  const ConvGeometry g = ConvGeometry::transposed(1, {2, 3, 4}, {3, 5, 4}, options({3}, {0}, {2}));
  EXPECT_EQ(g.output_shape(), (Shape{2, 5, 16}));
  EXPECT_EQ(g.name(), "conv_transpose1d");
  EXPECT_EQ(g.kind, convt::ConvKind::transposed);
  EXPECT_EQ(g.input_channels(), 3);
  EXPECT_EQ(g.output_channels(), 5);
}

TEST(TransposedSize, TwoDimensions) {
  // PyTorch: ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1) doubles 3x3 to 6x6.
  const ConvGeometry g =
      ConvGeometry::transposed(2, {1, 4, 3, 3}, {4, 2, 3, 3}, options({2}, {1}, {1}, 1, {1}));
  EXPECT_EQ(g.output_shape(), (Shape{1, 2, 6, 6}));
  EXPECT_EQ(g.output_padding[g.axis(0)], 1);
  // The seed's example: a 3x3 input and a 2x2 kernel give a 4x4 output.
  EXPECT_EQ(ConvGeometry::transposed(2, {1, 1, 3, 3}, {1, 1, 2, 2}).output_shape(),
            (Shape{1, 1, 4, 4}));
  // Weight (C_in, C_out / groups, k...): 6 input channels, groups 3, 2 x 3 = 6 outputs.
  const ConvGeometry h =
      ConvGeometry::transposed(2, {2, 6, 4, 5}, {6, 2, 2, 3}, options({1, 2}, {0, 1}, {2, 1}, 3));
  EXPECT_EQ(h.output_shape(), (Shape{2, 6, 6, 9}));
}

TEST(TransposedSize, ThreeDimensions) {
  const ConvGeometry g = ConvGeometry::transposed(
      3, {1, 2, 2, 3, 4}, {2, 1, 3, 3, 2}, options({2, 1, 3}, {0, 1, 0}, {1, 1, 2}, 1, {1, 0, 2}));
  // (2-1)*2 + 3 + 1 = 6; (3-1)*1 - 2 + 3 = 3; (4-1)*3 + 2*1 + 1 + 2 = 14
  EXPECT_EQ(g.output_shape(), (Shape{1, 1, 6, 3, 14}));
  EXPECT_EQ(g.name(), "conv_transpose3d");
}

TEST(TransposedSize, OutputPaddingBelowDilationIsAllowed) {
  // PyTorch allows output_padding < max(stride, dilation).
  const ConvGeometry g =
      ConvGeometry::transposed(1, {1, 1, 4}, {1, 1, 1}, options({1}, {0}, {2}, 1, {1}));
  EXPECT_EQ(g.output_shape(), (Shape{1, 1, 5}));
}

TEST(TransposedSize, OutputSizePicksOutputPadding) {
  ConvOptions o = options({3}, {1});
  for (convt::index_t size : {7, 8, 9}) {  // (3 - 1) * 3 - 2 + 3 = 7, up to 7 + 3 - 1 = 9
    o.output_size = {size, 8};
    const ConvGeometry g = ConvGeometry::transposed(2, {1, 1, 3, 3}, {1, 1, 3, 3}, o);
    EXPECT_EQ(g.output_shape(), (Shape{1, 1, size, 8}));
    EXPECT_EQ(g.output_padding[g.axis(0)], size - 7);
    EXPECT_EQ(g.output_padding[g.axis(1)], 1);
  }
  // The full (N, C, spatial...) shape is accepted too, as by PyTorch's ConvTranspose2d.forward.
  o.output_size = {1, 1, 9, 7};
  EXPECT_EQ(ConvGeometry::transposed(2, {1, 1, 3, 3}, {1, 1, 3, 3}, o).output_shape(),
            (Shape{1, 1, 9, 7}));
}

TEST(TransposedSize, ValidPaddingAndUnbatched) {
  ConvOptions o;
  o.padding_rule = PaddingRule::valid;
  o.padding = {2};
  const ConvGeometry g = ConvGeometry::transposed(2, {3, 4, 4}, {3, 2, 3, 3}, o);
  EXPECT_FALSE(g.batched);
  EXPECT_EQ(g.output_shape(), (Shape{2, 6, 6}));
  EXPECT_EQ(g.input_shape(), (Shape{3, 4, 4}));
}

TEST(TransposedSize, IsTheAdjointShapeOfTheConvolution) {
  // A transposed convolution maps the convolution's output shape back to its input shape.
  for (convt::index_t x = 5; x < 12; ++x) {
    const ConvGeometry conv =
        ConvGeometry::convolution(1, {1, 2, x}, {3, 2, 3}, options({2}, {1}, {1}));
    const convt::index_t y = conv.output_shape()[2];
    const convt::index_t extra = (x + 2 - 3) % 2;
    const ConvGeometry transposed =
        ConvGeometry::transposed(1, {1, 3, y}, {3, 2, 3}, options({2}, {1}, {1}, 1, {extra}));
    EXPECT_EQ(transposed.output_shape(), (Shape{1, 2, x}));
  }
}

// ---------------------------------------------------------------------------------------------
// Work

TEST(MultiplyAdds, EachWeightOnceForEveryOutputPosition) {
  // Every y value sums one weight row (x channels of its group times the taps), so the count
  // is the weight's elements times the y positions of one channel, times the batch.
  const ConvGeometry conv =
      ConvGeometry::convolution(2, {3, 6, 11, 9}, {4, 3, 3, 2}, options({2, 1}, {1, 0}, {1, 2}, 2));
  EXPECT_EQ(conv.y_size[1] * conv.y_size[2], 6 * 7);
  EXPECT_DOUBLE_EQ(conv.multiply_adds(), 3.0 * (4 * 3 * 3 * 2) * (6 * 7));
  // The transposed layer with the same x and y sides does the same products.
  const ConvGeometry transposed =
      ConvGeometry::transposed(2, {3, 4, 6, 7}, {4, 3, 3, 2}, options({2, 1}, {1, 0}, {1, 2}, 2));
  EXPECT_EQ(transposed.x_shape(), conv.x_shape());
  EXPECT_DOUBLE_EQ(transposed.multiply_adds(), conv.multiply_adds());
  // Past 2^63 it still counts (in double) instead of wrapping.
  const ConvGeometry huge = ConvGeometry::convolution(1, {1 << 20, 1 << 10, 1 << 20},
                                                      {1 << 12, 1 << 10, 1}, options({1}, {0}));
  EXPECT_DOUBLE_EQ(huge.multiply_adds(), std::ldexp(1.0, 20 + 10 + 20 + 12));
}

TEST(LoweredElements, OneLoweredRowForEachGroupsYPosition) {
  // Groups 2, 3 x channels and 3x2 taps per group: each group's im2col matrix has 3 * 3 * 2 rows
  // and a column for each of its 6 * 7 y positions, in each of the 3 samples.
  const ConvGeometry conv =
      ConvGeometry::convolution(2, {3, 6, 11, 9}, {4, 3, 3, 2}, options({2, 1}, {1, 0}, {1, 2}, 2));
  EXPECT_DOUBLE_EQ(conv.lowered_elements(), 3.0 * 2 * (3 * 3 * 2) * (6 * 7));
  // Each lowered element meets every y channel of its group once.
  EXPECT_DOUBLE_EQ(conv.multiply_adds(), conv.lowered_elements() * conv.y_channels_per_group());
}

TEST(LayerWeightShape, IsTheWeightShapeOfTheLayersGeometry) {
  // PyTorch's layouts: (out, in / groups, k...) and (in, out / groups, k...).
  const Shape conv =
      ConvGeometry::layer_weight_shape(convt::ConvKind::convolution, 6, 4, {3, 2}, 2);
  EXPECT_EQ(conv, (Shape{4, 3, 3, 2}));
  const Shape transposed =
      ConvGeometry::layer_weight_shape(convt::ConvKind::transposed, 6, 4, {5}, 2);
  EXPECT_EQ(transposed, (Shape{6, 2, 5}));
  EXPECT_EQ(
      ConvGeometry::convolution(2, {1, 6, 7, 7}, conv, options({1}, {0}, {1}, 2)).weight_shape(),
      conv);
  EXPECT_EQ(
      ConvGeometry::transposed(1, {1, 6, 7}, transposed, options({1}, {0}, {1}, 2)).output_shape(),
      (Shape{1, 4, 11}));
}

TEST(LayerWeightShape, NamesTheArgumentThatDoesNotFit) {
  using convt::ConvKind;
  expect_error([] { ConvGeometry::layer_weight_shape(ConvKind::convolution, 3, 4, {3}, 2); },
               {"conv1d: in_channels (3) must be divisible by groups (2)"});
  expect_error(
      [] {
        ConvGeometry::layer_weight_shape(ConvKind::transposed, 4, 3, {3, 3}, 2);
      },
      {"conv_transpose2d: out_channels (3) must be divisible by groups (2)"});
  expect_error([] { ConvGeometry::layer_weight_shape(ConvKind::convolution, 4, 4, {3}, 0); },
               {"conv1d: groups (0) must be positive"});
  expect_error(
      [] {
        ConvGeometry::layer_weight_shape(ConvKind::convolution, 1, 1, {3, 0, 1});
      },
      {"conv3d: kernel_size (3, 0, 1) must be positive"});
  expect_error([] { ConvGeometry::layer_weight_shape(ConvKind::convolution, 1, 1, {}); },
               {"1, 2 or 3 spatial dimensions"});
  expect_error(
      [] {
        ConvGeometry::layer_weight_shape(ConvKind::convolution, convt::index_t{1} << 31,
                                         convt::index_t{1} << 31, {2, 2});
      },
      {"conv2d: the weight of shape", "more elements than this machine can address"});
}

// ---------------------------------------------------------------------------------------------
// Validation errors

TEST(GeometryErrors, ErrorIsAnInvalidArgument) {
  try {
    ConvGeometry::convolution(2, {1, 1, 5, 5}, {1, 1, 3, 3}, options({0}, {0}));
    FAIL() << "no exception";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "conv2d: stride (0) must be positive");
  }
}

TEST(GeometryErrors, OutputPaddingNotSmallerThanStrideOrDilation) {
  try {
    ConvGeometry::transposed(2, {1, 1, 3, 3}, {1, 1, 3, 3}, options({2}, {0}, {1}, 1, {2}));
    FAIL() << "no exception";
  } catch (const convt::Error& error) {
    EXPECT_STREQ(error.what(),
                 "conv_transpose2d: output_padding (2) must be smaller than stride (2) or "
                 "dilation (1)");
  }
}

TEST(GeometryErrors, SpatialDimensions) {
  expect_error(
      [] {
        ConvGeometry::convolution(4, {1, 1, 2, 2, 2, 2}, {1, 1, 1, 1, 1, 1});
      },
      {"1, 2 or 3 spatial dimensions", "got 4"});
  expect_error([] { ConvGeometry::transposed(0, {1, 1}, {1, 1}); }, {"got 0"});
}

TEST(GeometryErrors, InputRank) {
  expect_error(
      [] {
        ConvGeometry::convolution(2, {5, 5}, {1, 1, 3, 3});
      },
      {"conv2d: input must have 3 (unbatched) or 4 (batched) dimensions", "got 2", "(5, 5)"});
  expect_error(
      [] {
        ConvGeometry::transposed(1, {1, 1, 1, 5}, {1, 1, 3});
      },
      {"conv_transpose1d: input", "got 4"});
}

TEST(GeometryErrors, WeightRank) {
  expect_error(
      [] {
        ConvGeometry::convolution(2, {1, 1, 5, 5}, {1, 1, 3});
      },
      {"conv2d: weight must have 4 dimensions", "got 3", "(1, 1, 3)"});
}

TEST(GeometryErrors, NegativeBatch) {
  expect_error(
      [] {
        ConvGeometry::convolution(2, {-1, 1, 5, 5}, {1, 1, 3, 3});
      },
      {"conv2d", "negative batch size -1"});
}

TEST(GeometryErrors, EmptyInputOrWeightDimension) {
  expect_error(
      [] {
        ConvGeometry::convolution(2, {1, 1, 0, 5}, {1, 1, 3, 3});
      },
      {"conv2d: input of shape (1, 1, 0, 5)", "positive size"});
  expect_error(
      [] {
        ConvGeometry::convolution(2, {1, 0, 5, 5}, {1, 0, 3, 3});
      },
      {"input of shape (1, 0, 5, 5)"});
  expect_error(
      [] {
        ConvGeometry::transposed(2, {1, 1, 5, 5}, {1, 1, 3, 0});
      },
      {"conv_transpose2d: weight of shape (1, 1, 3, 0)", "positive size"});
}

TEST(GeometryErrors, Groups) {
  expect_error(
      [] {
        ConvGeometry::convolution(1, {1, 2, 5}, {2, 1, 3}, options({1}, {0}, {1}, 0));
      },
      {"conv1d: groups (0) must be positive"});
  expect_error(
      [] {
        ConvGeometry::convolution(1, {1, 2, 5}, {3, 1, 3}, options({1}, {0}, {1}, 2));
      },
      {"weight.shape[0] (out_channels = 3) must be divisible by groups (2)"});
  expect_error(
      [] {
        ConvGeometry::transposed(1, {1, 3, 5}, {3, 1, 3}, options({1}, {0}, {1}, 2));
      },
      {"conv_transpose1d: weight.shape[0] (in_channels = 3) must be divisible by groups (2)"});
}

TEST(GeometryErrors, ChannelMismatch) {
  expect_error(
      [] {
        ConvGeometry::convolution(2, {1, 3, 5, 5}, {4, 2, 3, 3});
      },
      {"conv2d: input has 3 channels", "weight.shape[1] (2) x groups (1) = 2"});
  expect_error(
      [] {
        ConvGeometry::transposed(2, {1, 3, 5, 5}, {4, 2, 3, 3});
      },
      {"conv_transpose2d: input has 3 channels", "weight.shape[0] (in_channels) is 4"});
}

TEST(GeometryErrors, NonPositiveStrideOrDilation) {
  expect_error(
      [] {
        ConvGeometry::convolution(2, {1, 1, 5, 5}, {1, 1, 3, 3}, options({2, -1}, {0}));
      },
      {"conv2d: stride (2, -1) must be positive"});
  expect_error(
      [] {
        ConvGeometry::transposed(2, {1, 1, 5, 5}, {1, 1, 3, 3}, options({1}, {0}, {0}));
      },
      {"conv_transpose2d: dilation (0) must be positive"});
}

TEST(GeometryErrors, NegativePadding) {
  expect_error(
      [] {
        ConvGeometry::convolution(2, {1, 1, 5, 5}, {1, 1, 3, 3}, options({1}, {-1}));
      },
      {"conv2d: padding (-1) must be non-negative"});
  ConvOptions o;
  o.padding_after = {0, -2};
  expect_error(
      [&] {
        ConvGeometry::convolution(2, {1, 1, 5, 5}, {1, 1, 3, 3}, o);
      },
      {"padding (0, -2) must be non-negative"});
}

TEST(GeometryErrors, WrongNumberOfPerDimensionValues) {
  expect_error(
      [] {
        ConvGeometry::convolution(2, {1, 1, 5, 5}, {1, 1, 3, 3}, options({1, 1, 1}, {0}));
      },
      {"conv2d: stride must have 1 or 2 values, got 3 (1, 1, 1)"});
  expect_error(
      [] {
        ConvGeometry::transposed(3, {1, 1, 5, 5, 5}, {1, 1, 3, 3, 3}, options({1}, {1, 1}));
      },
      {"conv_transpose3d: padding must have 1 or 3 values, got 2"});
}

TEST(GeometryErrors, KernelLargerThanPaddedInput) {
  expect_error(
      [] {
        ConvGeometry::convolution(2, {1, 1, 4, 9}, {1, 1, 5, 3});
      },
      {"conv2d: kernel size 5 with dilation 1 spans 5", "padded input size 4 (4 + 0 + 0)",
       "spatial dimension 0"});
  expect_error(
      [] {
        ConvGeometry::convolution(1, {1, 1, 6}, {1, 1, 3}, options({1}, {0}, {3}));
      },
      {"kernel size 3 with dilation 3 spans 7", "padded input size 6"});
}

TEST(GeometryErrors, NegativeOutputPadding) {
  expect_error(
      [] {
        ConvGeometry::transposed(1, {1, 1, 5}, {1, 1, 3}, options({2}, {0}, {1}, 1, {-1}));
      },
      {"conv_transpose1d: output_padding (-1) must be non-negative"});
}

TEST(GeometryErrors, OutputPaddingPerDimension) {
  expect_error(
      [] {
        ConvGeometry::transposed(2, {1, 1, 5, 5}, {1, 1, 3, 3},
                                 options({2, 3}, {0}, {1}, 1, {1, 3}));
      },
      {"output_padding (3) must be smaller than stride (3) or dilation (1)"});
}

TEST(GeometryErrors, OutputSize) {
  ConvOptions o = options({2}, {0});
  o.output_size = {7, 7, 7};
  expect_error(
      [&] {
        ConvGeometry::transposed(2, {1, 1, 3, 3}, {1, 1, 3, 3}, o);
      },
      {"conv_transpose2d: output_size must have 2 or 4 values, got 3 (7, 7, 7)"});
  o.output_size = {7, 9};  // valid sizes are 7 and 8
  expect_error(
      [&] {
        ConvGeometry::transposed(2, {1, 1, 3, 3}, {1, 1, 3, 3}, o);
      },
      {"output_size (7, 9) is not reachable", "spatial dimension 1", "range from 7 to 8",
       "input of size 3"});
  o.output_size = {6, 7};
  expect_error(
      [&] {
        ConvGeometry::transposed(2, {1, 1, 3, 3}, {1, 1, 3, 3}, o);
      },
      {"spatial dimension 0", "range from 7 to 8"});
}

TEST(GeometryErrors, NonPositiveTransposedOutputSize) {
  // (1 - 1) * 1 - 1 - 1 + 1 * (1 - 1) + 0 + 1 = -1
  expect_error(
      [] {
        ConvGeometry::transposed(1, {1, 1, 1}, {1, 1, 1}, options({1}, {1}));
      },
      {"conv_transpose1d: output size -1 in spatial dimension 0 is not positive"});
}

TEST(GeometryErrors, TooLargeToAddress) {
  const convt::index_t huge = convt::index_t{1} << 31;
  expect_error(
      [&] {
        ConvGeometry::convolution(2, {huge, huge, 1, huge}, {1, huge, 1, 1});
      },
      {"conv2d: the input of shape", "more elements than this machine can address"});
  expect_error(
      [&] {
        ConvGeometry::transposed(1, {huge, 1, huge}, {1, huge, 1});
      },
      {"conv_transpose1d", "more elements than this machine can address"});
}

// Sizes computed from huge strides, paddings or dilations must be reported, not wrap around
// into a plausible size (the sanitizer build also fails on any signed overflow on the way).
TEST(GeometryErrors, HugeArgumentsAreReportedNotWrapped) {
  const convt::index_t huge = convt::index_t{1} << 62;
  expect_error(
      [&] {
        ConvGeometry::convolution(1, {1, 1, 5}, {1, 1, 3}, options({1}, {0}, {huge}));
      },
      {"conv1d", "dilation"});
  expect_error(
      [&] {
        ConvGeometry::convolution(1, {1, 1, 5}, {1, 1, 3}, options({1}, {huge}));
      },
      {"conv1d", "padding"});
  expect_error(
      [&] {
        ConvGeometry::transposed(1, {1, 1, 5}, {1, 1, 1}, options({huge}, {0}));
      },
      {"conv_transpose1d", "stride"});
  expect_error(
      [&] {
        ConvGeometry::transposed(1, {1, 1, 5}, {1, 1, 3}, options({1}, {0}, {huge}));
      },
      {"conv_transpose1d", "dilation"});
  expect_error(
      [&] {
        ConvGeometry::transposed(2, {1, 1, 3, 3}, {1, 1, 2, 2}, options({huge}, {0}));
      },
      {"conv_transpose2d", "stride"});
}

TEST(GeometryErrors, ExpectShapeNamesTheArgument) {
  const ConvGeometry g = ConvGeometry::convolution(2, {1, 1, 5, 5}, {1, 1, 3, 3});
  EXPECT_NO_THROW(g.expect_shape("grad_output", {1, 1, 3, 3}, g.output_shape()));
  expect_error(
      [&] {
        g.expect_shape("grad_output", {1, 1, 4, 3}, g.output_shape());
      },
      {"conv2d: grad_output must have shape (1, 1, 3, 3), got (1, 1, 4, 3)"});
}

// ---------------------------------------------------------------------------------------------
// Receptive fields and chunk splits: what a chunk of a larger array needs from its neighbours

// Every range of outputs reads, clipped to x, the taps of its first and last outputs (at the far
// edge, x to its end); with the padding beyond the clipped ends, a convolution of that window
// gives exactly those outputs and the transposed convolution of those outputs that window.
TEST(ReceptiveField, IsTheSpanOfTheTapsAndItsWindowConvolvesToTheRange) {
  for (const ConvGeometry& g :
       {ConvGeometry::convolution(1, {1, 1, 11}, {1, 1, 3}, options({2}, {1})),
        ConvGeometry::convolution(1, {1, 1, 12}, {1, 1, 3}, options({3}, {4}, {2})),
        ConvGeometry::convolution(1, {1, 1, 9}, {1, 1, 2}, options({4}, {0})),
        ConvGeometry::transposed(1, {1, 1, 5}, {1, 1, 4}, options({2}, {1}, {1}, 1, {1})),
        ConvGeometry::transposed(1, {1, 1, 4}, {1, 1, 3}, options({3}, {2}, {2}, 1, {2})),
        ConvGeometry::transposed(1, {1, 1, 6}, {1, 1, 2}, options({3}, {0}, {1}, 1, {2}))}) {
    const convt::index_t a = g.axis(0);
    const convt::index_t span = g.dilation[a] * (g.kernel[a] - 1) + 1;
    for (convt::index_t y_begin = 0; y_begin < g.y_size[a]; ++y_begin) {
      for (convt::index_t y_end = y_begin + 1; y_end <= g.y_size[a]; ++y_end) {
        const ConvGeometry::Window w = g.receptive_field(0, y_begin, y_end);
        const convt::index_t first = y_begin * g.stride[a] - g.padding_before[a];
        const convt::index_t last = (y_end - 1) * g.stride[a] - g.padding_before[a] + span;
        const bool far_edge = y_end == g.y_size[a];
        SCOPED_TRACE(g.name() + " outputs " + std::to_string(y_begin) + ".." +
                     std::to_string(y_end));
        if (far_edge ? first >= g.x_size[a] : last <= 0) {
          EXPECT_EQ(w.begin, w.end);
          continue;
        }
        EXPECT_EQ(w.begin, std::max<convt::index_t>(first, 0));
        EXPECT_EQ(w.end, far_edge ? g.x_size[a] : std::min(last, g.x_size[a]));
        EXPECT_EQ(w.padding_before, w.begin - first);
        EXPECT_EQ(w.padding_after, far_edge ? g.padding_after[a] : last - w.end);
        EXPECT_EQ(w.output_padding, far_edge ? g.output_padding[a] : 0);
        ConvOptions local =
            options({g.stride[a]}, {w.padding_before}, {g.dilation[a]}, 1, {w.output_padding});
        local.padding_after = {w.padding_after};
        if (g.kind == convt::ConvKind::convolution) {
          const ConvGeometry chunk =
              ConvGeometry::convolution(1, {1, 1, w.end - w.begin}, {1, 1, g.kernel[a]}, local);
          EXPECT_EQ(chunk.y_size[a], y_end - y_begin);
        } else {
          const ConvGeometry chunk =
              ConvGeometry::transposed(1, {1, 1, y_end - y_begin}, {1, 1, g.kernel[a]}, local);
          EXPECT_EQ(chunk.x_size[a], w.end - w.begin);
        }
      }
    }
  }
  // Outputs that read padding only have an empty window.
  const ConvGeometry wide = ConvGeometry::convolution(1, {1, 1, 2}, {1, 1, 2}, options({1}, {3}));
  const ConvGeometry::Window w = wide.receptive_field(0, 0, 2);
  EXPECT_EQ(w.begin, w.end);
  EXPECT_EQ(w.padding_before + w.padding_after, 0);
}

TEST(ChunkSplits, KeepSameChunksHalveStrideTwoAndInvertEachOther) {
  // A stride-1 'same' convolution keeps its chunks; a stride-2 one halves them; the transposed
  // stride-2 layer that doubles its input doubles them.
  const ConvGeometry same =
      ConvGeometry::convolution(2, {1, 1, 12, 12}, {1, 1, 5, 3}, options({1}, {2, 1}));
  const ConvGeometry down = ConvGeometry::convolution(1, {1, 1, 16}, {1, 1, 3}, options({2}, {1}));
  const ConvGeometry up = ConvGeometry::transposed(1, {1, 1, 8}, {1, 1, 4}, options({2}, {1}));
  for (convt::index_t x = 0; x <= 12; ++x) {
    EXPECT_EQ(same.y_split(0, x), x);
    EXPECT_EQ(same.y_split(1, x), x);
    EXPECT_EQ(same.x_split(1, x), x);
  }
  for (convt::index_t y = 0; y <= 8; ++y) {
    EXPECT_EQ(down.x_split(0, y), 2 * y);
    EXPECT_EQ(down.y_split(0, 2 * y), y);
    EXPECT_EQ(up.x_split(0, y), 2 * y);
  }
  // Monotonic, ends to ends, and each output's centre lies in the chunk it is given to.
  const ConvGeometry odd =
      ConvGeometry::convolution(1, {1, 1, 23}, {1, 1, 4}, options({3}, {5}, {2}));
  const convt::index_t a = odd.axis(0);
  EXPECT_EQ(odd.y_split(0, 0), 0);
  EXPECT_EQ(odd.y_split(0, 23), odd.y_size[a]);
  EXPECT_EQ(odd.x_split(0, 0), 0);
  EXPECT_EQ(odd.x_split(0, odd.y_size[a]), 23);
  for (convt::index_t x = 1; x < 23; ++x) {
    const convt::index_t y = odd.y_split(0, x);
    EXPECT_LE(odd.y_split(0, x - 1), y);
    const convt::index_t centre = 3 * y - 5 + 3;
    if (y < odd.y_size[a]) {
      EXPECT_GE(centre, x);
    }
    if (y > 0) {
      EXPECT_LT(centre - 3, x);
    }
  }
}

TEST(GeometryErrors, ReceptiveFieldChecksItsRange) {
  const ConvGeometry g = ConvGeometry::convolution(2, {1, 1, 5, 5}, {1, 1, 3, 3});
  expect_error([&] { g.receptive_field(0, 2, 2); }, {"conv2d", "[2, 2)", "[0, 3)"});
  expect_error([&] { g.receptive_field(1, 0, 4); }, {"conv2d", "[0, 4)"});
  expect_error([&] { g.receptive_field(2, 0, 1); }, {"conv2d", "spatial dimension 2"});
  expect_error([&] { g.y_split(-1, 0); }, {"spatial dimension -1"});
}

}  // namespace
