// The three kernels and the bias pair against the plain-loop reference (reference.hpp), for
// convolution and transposed convolution layers, float and double, over random configurations,
// each kernel by every algorithm that can compute it; the pointwise path; batch 0; and the
// adjoint identity <conv(x), y> == <x, conv_transpose(y)>.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "convt/convt.hpp"
#include "reference.hpp"
#include "test_util.hpp"

namespace {

using reference::Index;
using reference::Problem;
using test_util::absolute;
using test_util::all_close;
using test_util::Case;
using test_util::random_vector;

constexpr int random_configurations = 300;
constexpr int medium_configurations = 60;

template <class T>
std::vector<T> filled_with_nan(Index count) {
  return std::vector<T>(static_cast<std::size_t>(count), std::numeric_limits<T>::quiet_NaN());
}

convt::ConvGeometry convolution_geometry(const Problem& p) {
  return convt::ConvGeometry::convolution(
      p.dims, test_util::tensor_shape(p.batch, p.x_channels, p.x_size, p.dims),
      test_util::weight_shape(p), test_util::options_for(p));
}

convt::ConvGeometry transposed_geometry(const Case& c) {
  const Problem& p = c.p;
  return convt::ConvGeometry::transposed(
      p.dims, test_util::tensor_shape(p.batch, p.y_channels, p.y_size, p.dims),
      test_util::weight_shape(p), test_util::options_for(p, c.output_padding));
}

// A plan for each algorithm, taken by every kernel it can compute (the others take their
// fastest): together they run every (kernel, algorithm) pair the geometry allows.
std::vector<std::unique_ptr<convt::Plan>> every_algorithm(const convt::ConvGeometry& g) {
  const convt::Plan fastest(g);
  std::vector<std::unique_ptr<convt::Plan>> plans;
  for (convt::Algorithm algorithm : convt::all_algorithms) {
    std::array<convt::Algorithm, 3> chosen{};
    for (convt::Kernel kernel : convt::all_kernels) {
      const bool applies = convt::detail::algorithm_applies(g, kernel, algorithm);
      chosen[static_cast<std::size_t>(kernel)] = applies ? algorithm : fastest.algorithm(kernel);
    }
    plans.push_back(std::make_unique<convt::Plan>(g, chosen));
  }
  return plans;
}

std::string algorithms_of(const convt::Plan& plan) {
  std::string text;
  for (convt::Kernel kernel : convt::all_kernels) {
    text += std::string(convt::kernel_name(kernel)) + " " +
            convt::algorithm_name(plan.algorithm(kernel)) + "; ";
  }
  return text;
}

// A convolution layer: forward with bias, and every gradient, through the kernels one by one
// (with every algorithm that can compute them) and through convt::forward / convt::backward.
template <class T>
void check_convolution(const Problem& p, std::mt19937& rng) {
  SCOPED_TRACE(test_util::describe(p));
  const convt::ConvGeometry g = convolution_geometry(p);
  ASSERT_EQ(g.y_shape(), test_util::tensor_shape(p.batch, p.y_channels, p.y_size, p.dims));
  const auto x = random_vector<T>(rng, p.x_count());
  const auto w = random_vector<T>(rng, p.w_count());
  const auto b = random_vector<T>(rng, p.y_channels);
  const auto dy = random_vector<T>(rng, p.y_count());

  const auto y_ref = reference::conv_forward(p, x, w);
  const auto y_mag = reference::conv_forward(p, absolute(x), absolute(w));
  auto y = filled_with_nan<T>(p.y_count());
  convt::conv_forward(g, x.data(), w.data(), y.data());
  EXPECT_TRUE(all_close(y.data(), y_ref, y_mag)) << "conv_forward";

  const auto dx_ref = reference::conv_backward_input(p, dy, w);
  const auto dx_mag = reference::conv_backward_input(p, absolute(dy), absolute(w));
  auto dx = filled_with_nan<T>(p.x_count());
  convt::conv_backward_input(g, dy.data(), w.data(), dx.data());
  EXPECT_TRUE(all_close(dx.data(), dx_ref, dx_mag)) << "conv_backward_input";

  const auto dw_ref = reference::conv_backward_weight(p, x, dy);
  const auto dw_mag = reference::conv_backward_weight(p, absolute(x), absolute(dy));
  auto dw = filled_with_nan<T>(p.w_count());
  convt::conv_backward_weight(g, x.data(), dy.data(), dw.data());
  EXPECT_TRUE(all_close(dw.data(), dw_ref, dw_mag)) << "conv_backward_weight";

  for (const auto& plan : every_algorithm(g)) {
    SCOPED_TRACE(algorithms_of(*plan));
    std::fill(y.begin(), y.end(), std::numeric_limits<T>::quiet_NaN());
    plan->conv_forward(x.data(), w.data(), y.data());
    EXPECT_TRUE(all_close(y.data(), y_ref, y_mag)) << "conv_forward";
    std::fill(dx.begin(), dx.end(), std::numeric_limits<T>::quiet_NaN());
    plan->conv_backward_input(dy.data(), w.data(), dx.data());
    EXPECT_TRUE(all_close(dx.data(), dx_ref, dx_mag)) << "conv_backward_input";
    std::fill(dw.begin(), dw.end(), std::numeric_limits<T>::quiet_NaN());
    plan->conv_backward_weight(x.data(), dy.data(), dw.data());
    EXPECT_TRUE(all_close(dw.data(), dw_ref, dw_mag)) << "conv_backward_weight";
  }

  const auto out_ref = reference::add_bias(y_ref, b, p.batch, p.y_channels, p.y_spatial());
  const auto out_mag =
      reference::add_bias(y_mag, absolute(b), p.batch, p.y_channels, p.y_spatial());
  auto out = filled_with_nan<T>(p.y_count());
  convt::forward(g, x.data(), w.data(), b.data(), out.data());
  EXPECT_TRUE(all_close(out.data(), out_ref, out_mag)) << "forward";

  const auto db_ref = reference::bias_backward(dy, p.batch, p.y_channels, p.y_spatial());
  const auto db_mag = reference::bias_backward(absolute(dy), p.batch, p.y_channels, p.y_spatial());
  auto gx = filled_with_nan<T>(p.x_count());
  auto gw = filled_with_nan<T>(p.w_count());
  auto gb = filled_with_nan<T>(p.y_channels);
  convt::backward(g, dy.data(), x.data(), w.data(), gx.data(), gw.data(), gb.data());
  EXPECT_TRUE(all_close(gx.data(), dx_ref, dx_mag)) << "backward: grad_input";
  EXPECT_TRUE(all_close(gw.data(), dw_ref, dw_mag)) << "backward: grad_weight";
  EXPECT_TRUE(all_close(gb.data(), db_ref, db_mag)) << "backward: grad_bias";
}

// A transposed convolution layer: its forward pass is the reference's scatter (backward-input)
// loop, its input gradient the gather loop, its weight gradient the weight loop with the layer's
// output gradient on the x side.
template <class T>
void check_transposed(const Case& c, std::mt19937& rng) {
  const Problem& p = c.p;
  SCOPED_TRACE(test_util::describe(p));
  const convt::ConvGeometry g = transposed_geometry(c);
  ASSERT_EQ(g.output_shape(), test_util::tensor_shape(p.batch, p.x_channels, p.x_size, p.dims));
  const auto input = random_vector<T>(rng, p.y_count());
  const auto w = random_vector<T>(rng, p.w_count());
  const auto b = random_vector<T>(rng, p.x_channels);
  const auto grad_output = random_vector<T>(rng, p.x_count());

  const auto out_ref = reference::add_bias(reference::conv_backward_input(p, input, w), b, p.batch,
                                           p.x_channels, p.x_spatial());
  const auto out_mag =
      reference::add_bias(reference::conv_backward_input(p, absolute(input), absolute(w)),
                          absolute(b), p.batch, p.x_channels, p.x_spatial());
  auto out = filled_with_nan<T>(p.x_count());
  convt::forward(g, input.data(), w.data(), b.data(), out.data());
  EXPECT_TRUE(all_close(out.data(), out_ref, out_mag)) << "forward";

  const auto gx_ref = reference::conv_forward(p, grad_output, w);
  const auto gx_mag = reference::conv_forward(p, absolute(grad_output), absolute(w));
  const auto gw_ref = reference::conv_backward_weight(p, grad_output, input);
  const auto gw_mag = reference::conv_backward_weight(p, absolute(grad_output), absolute(input));
  const auto gb_ref = reference::bias_backward(grad_output, p.batch, p.x_channels, p.x_spatial());
  const auto gb_mag =
      reference::bias_backward(absolute(grad_output), p.batch, p.x_channels, p.x_spatial());
  auto gx = filled_with_nan<T>(p.y_count());
  auto gw = filled_with_nan<T>(p.w_count());
  auto gb = filled_with_nan<T>(p.x_channels);
  convt::backward(g, grad_output.data(), input.data(), w.data(), gx.data(), gw.data(), gb.data());
  EXPECT_TRUE(all_close(gx.data(), gx_ref, gx_mag)) << "backward: grad_input";
  EXPECT_TRUE(all_close(gw.data(), gw_ref, gw_mag)) << "backward: grad_weight";
  EXPECT_TRUE(all_close(gb.data(), gb_ref, gb_mag)) << "backward: grad_bias";

  for (const auto& plan : every_algorithm(g)) {
    SCOPED_TRACE(algorithms_of(*plan));
    std::fill(out.begin(), out.end(), std::numeric_limits<T>::quiet_NaN());
    plan->forward(input.data(), w.data(), b.data(), out.data());
    EXPECT_TRUE(all_close(out.data(), out_ref, out_mag)) << "forward";
    std::fill(gx.begin(), gx.end(), std::numeric_limits<T>::quiet_NaN());
    std::fill(gw.begin(), gw.end(), std::numeric_limits<T>::quiet_NaN());
    plan->backward(grad_output.data(), input.data(), w.data(), gx.data(), gw.data(),
                   static_cast<T*>(nullptr));
    EXPECT_TRUE(all_close(gx.data(), gx_ref, gx_mag)) << "backward: grad_input";
    EXPECT_TRUE(all_close(gw.data(), gw_ref, gw_mag)) << "backward: grad_weight";
  }

  // Only the wanted gradients are written.
  auto only_weight = filled_with_nan<T>(p.w_count());
  convt::backward<T>(g, grad_output.data(), input.data(), w.data(), nullptr, only_weight.data(),
                     nullptr);
  EXPECT_TRUE(all_close(only_weight.data(), gw_ref, gw_mag)) << "backward: grad_weight alone";
}

template <class T>
class Kernels : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Kernels, Types);

// Runs `configurations` random cases of one kind and size against the reference, and reports
// how many took convt's direct loops and how many its lowered GEMM path.
template <class T>
void check_random(std::uint32_t seed, bool transposed, test_util::CaseSize size,
                  int configurations) {
  std::mt19937 rng(seed);
  int direct = 0;
  for (int i = 0; i < configurations; ++i) {
    SCOPED_TRACE("configuration " + std::to_string(i));
    const Case c = test_util::random_case(rng, transposed, size);
    if (transposed) {
      direct += convt::detail::prefers_direct(transposed_geometry(c));
      check_transposed<T>(c, rng);
    } else {
      direct += convt::detail::prefers_direct(convolution_geometry(c.p));
      check_convolution<T>(c.p, rng);
    }
    if (::testing::Test::HasFailure()) return;  // one report is enough
  }
  std::cout << "      " << configurations << " random configurations: " << direct << " direct, "
            << configurations - direct << " lowered to GEMM\n";
}

TYPED_TEST(Kernels, ConvolutionMatchesReferenceOnSmallRandomConfigurations) {
  check_random<TypeParam>(20240601, false, test_util::CaseSize::small, random_configurations);
}

TYPED_TEST(Kernels, TransposedMatchesReferenceOnSmallRandomConfigurations) {
  check_random<TypeParam>(20240602, true, test_util::CaseSize::small, random_configurations);
}

TYPED_TEST(Kernels, ConvolutionMatchesReferenceOnMediumRandomConfigurations) {
  check_random<TypeParam>(20240604, false, test_util::CaseSize::medium, medium_configurations);
}

TYPED_TEST(Kernels, TransposedMatchesReferenceOnMediumRandomConfigurations) {
  check_random<TypeParam>(20240605, true, test_util::CaseSize::medium, medium_configurations);
}

// The lowered path on every instruction set the CPU supports (the tests above run on the best).
TYPED_TEST(Kernels, MatchReferenceOnEveryIsa) {
  const convt::Isa saved = convt::get_isa();
  for (convt::Isa isa : convt::supported_isas()) {
    SCOPED_TRACE(convt::isa_name(isa));
    convt::set_isa(isa);
    check_random<TypeParam>(20240606, false, test_util::CaseSize::medium, 20);
    check_random<TypeParam>(20240607, true, test_util::CaseSize::medium, 20);
  }
  convt::set_isa(saved);
}

// Samples too large for one block of the lowered matrix (2^21 elements when this was written)
// are lowered a slice of outputs at a time, and the slices end in the middle of output lines;
// small samples are lowered several at a time, the last block holding fewer.
TYPED_TEST(Kernels, LargeSamplesInSlicesAndSmallSamplesInGroups) {
  std::mt19937 rng(14);
  Problem p;
  p.dims = 2;
  p.batch = 1;
  p.x_channels = 128;
  p.y_channels = 2;
  p.x_size = {50, 47, 1};
  p.kernel = {3, 3, 1};
  p.pad_before = {1, 0, 0};
  p.pad_after = {0, 1, 0};
  p.y_size = reference::conv_output_size(p);  // 1152 lowered rows; 49 x 46 outputs
  ASSERT_EQ(p.y_size, (reference::Extent{49, 46, 1}));
  check_convolution<TypeParam>(p, rng);
  Case c{p, {1, 0, 0}};
  c.p.stride = {2, 1, 1};
  c.p.y_size = {25, 46, 1};
  c.p.x_size = {51, 47, 1};
  check_transposed<TypeParam>(c, rng);

  p.batch = 7;
  p.x_size = {21, 21, 1};
  p.pad_after = {0, 0, 0};
  p.pad_before = {0, 0, 0};
  p.y_size = reference::conv_output_size(p);  // 19 x 19 outputs per sample
  check_convolution<TypeParam>(p, rng);
}

// Strided lines whose taps along the last axis overlap, which col2im adds up a line at a time in
// its phases: every phase taken by several taps, through dilation and padding beyond the
// stride; a phase no tap reaches; a sample sliced in the middle of lines; odd and even lines;
// and a line too long to be held, which takes a tap at a time.
TYPED_TEST(Kernels, StridedLinesWithOverlappingTaps) {
  std::mt19937 rng(23);
  Problem p;
  p.dims = 2;
  p.x_channels = 64;  // 960 lowered rows: blocks of 512 columns, a sample's 798 outputs in two
  p.y_channels = 3;
  p.x_size = {20, 125, 1};
  p.kernel = {3, 5, 1};
  p.stride = {1, 3, 1};
  p.dilation = {1, 2, 1};
  p.pad_before = {1, 4, 0};
  p.pad_after = {0, 3, 0};
  p.y_size = reference::conv_output_size(p);
  ASSERT_EQ(p.y_size, (reference::Extent{19, 42, 1}));
  ASSERT_TRUE(convt::detail::plan_blocks(convolution_geometry(p)).sliced);
  ASSERT_TRUE(convt::detail::fuses_line_taps(convolution_geometry(p)));
  check_convolution<TypeParam>(p, rng);
  Case c{p, {0, 2, 0}};
  c.p.x_size = {20, 127, 1};
  check_transposed<TypeParam>(c, rng);

  Problem q;  // offsets 2 k - 1 are all odd: even elements take nothing
  q.dims = 1;
  q.batch = 3;
  q.groups = 2;
  q.x_channels = 4;
  q.y_channels = 6;
  q.x_size = {40, 1, 1};
  q.kernel = {3, 1, 1};
  q.stride = {2, 1, 1};
  q.dilation = {2, 1, 1};
  q.pad_before = {1, 0, 0};
  q.pad_after = {2, 0, 0};
  q.y_size = reference::conv_output_size(q);
  ASSERT_TRUE(convt::detail::fuses_line_taps(convolution_geometry(q)));
  check_convolution<TypeParam>(q, rng);
  q.x_size = {41, 1, 1};
  q.kernel = {4, 1, 1};
  q.dilation = {1, 1, 1};
  q.y_size = reference::conv_output_size(q);
  check_convolution<TypeParam>(q, rng);

  q.x_size = {1500, 1, 1};  // longer than col2im holds
  q.y_size = reference::conv_output_size(q);
  ASSERT_FALSE(convt::detail::fuses_line_taps(convolution_geometry(q)));
  check_convolution<TypeParam>(q, rng);
}

// Taps along the last axis that read 16 or more apart (a vocoder's up-sampling), which col2im
// adds 16 at a time: 70 taps in blocks of 16 and a last of 6, cut by padding at both ends of x;
// then a 2-d layer whose lines are cut by padding along the first axis.
TYPED_TEST(Kernels, StridedTapsAddedInBlocks) {
  std::mt19937 rng(29);
  Problem p;
  p.dims = 1;
  p.batch = 2;
  p.x_channels = 8;
  p.y_channels = 16;
  p.x_size = {150, 1, 1};
  p.kernel = {70, 1, 1};
  p.stride = {16, 1, 1};
  p.pad_before = {20, 0, 0};
  p.pad_after = {23, 0, 0};
  p.y_size = reference::conv_output_size(p);
  ASSERT_EQ(p.y_size, (reference::Extent{8, 1, 1}));
  const convt::ConvGeometry g = convolution_geometry(p);
  ASSERT_FALSE(convt::detail::fuses_line_taps(g));
  ASSERT_TRUE(convt::detail::adds_tap_blocks(g, {0, 1, 0, g.y_spatial()}));
  check_convolution<TypeParam>(p, rng);
  Case c{p, {5, 0, 0}};
  c.p.x_size = {144, 1, 1};  // (8 - 1) * 16 - 20 - 23 + 70 + 5
  check_transposed<TypeParam>(c, rng);

  Problem q;
  q.dims = 2;
  q.x_channels = 3;
  q.y_channels = 4;
  q.x_size = {5, 300, 1};
  q.kernel = {2, 66, 1};
  q.stride = {1, 17, 1};
  q.pad_before = {1, 30, 0};
  q.pad_after = {1, 30, 0};
  q.y_size = reference::conv_output_size(q);
  const convt::ConvGeometry h = convolution_geometry(q);
  ASSERT_TRUE(convt::detail::adds_tap_blocks(h, {0, 1, 0, h.y_spatial()}));
  check_convolution<TypeParam>(q, rng);
}

// A sample's outputs are cut into blocks of the plan's columns, but a last slice of less than
// half a block joins the one before it.
TEST(Blocks, LastSliceOfLessThanHalfABlockJoinsTheOneBefore) {
  using convt::index_t;
  const std::vector<std::pair<index_t, std::vector<index_t>>> cases{{300, {300}},
                                                                    {512, {512}},
                                                                    {648, {648}},
                                                                    {767, {767}},
                                                                    {768, {512, 256}},
                                                                    {1024, {512, 512}},
                                                                    {2254, {512, 512, 512, 718}}};
  for (const auto& [outputs, expected] : cases) {
    SCOPED_TRACE(std::to_string(outputs) + " outputs");
    const convt::ConvGeometry g =
        convt::ConvGeometry::convolution(1, {1, 1, outputs + 2}, {1, 1, 3}, convt::ConvOptions{});
    ASSERT_EQ(g.y_spatial(), outputs);
    std::vector<index_t> sizes;
    index_t next = 0;
    convt::detail::for_each_block_of_unit(g, convt::detail::BlockPlan{512, true, 1, 1}, 0,
                                          [&](convt::detail::ColumnBlock block) {
                                            EXPECT_EQ(block.first_output, next);
                                            EXPECT_EQ(block.samples, 1);
                                            next += block.outputs;
                                            sizes.push_back(block.outputs);
                                          });
    EXPECT_EQ(sizes, expected);
  }
}

// The input gradient reads w unpacked where a sample is one block by that same cut: a 3-D
// U-Net layer's 648 outputs per sample, and not 1210 (two blocks).
TEST(Blocks, WeightReadOnceWhereTheSampleIsOneBlock) {
  convt::ConvOptions options;
  const auto one =
      convt::ConvGeometry::convolution(3, {1, 256, 10, 11, 11}, {512, 256, 3, 3, 3}, options);
  ASSERT_EQ(one.y_spatial(), 648);
  ASSERT_TRUE(convt::detail::plan_blocks(one).sliced);
  const auto two =
      convt::ConvGeometry::convolution(3, {1, 256, 12, 13, 13}, {512, 256, 3, 3, 3}, options);
  ASSERT_EQ(two.y_spatial(), 1210);
  for (convt::Isa isa : convt::supported_isas()) {
    SCOPED_TRACE(convt::isa_name(isa));
    EXPECT_TRUE(convt::detail::reads_weight_once<float>(one, convt::Kernel::backward_input,
                                                        convt::Algorithm::col2im, isa));
    EXPECT_FALSE(convt::detail::reads_weight_once<float>(two, convt::Kernel::backward_input,
                                                         convt::Algorithm::col2im, isa));
  }
}

// A 1x1 kernel with unit stride and no padding lowers to the input itself.
TYPED_TEST(Kernels, PointwisePath) {
  std::mt19937 rng(7);
  for (int dims = 1; dims <= 3; ++dims) {
    for (Index groups : {1, 2}) {
      Problem p;
      p.dims = dims;
      p.batch = 2;
      p.groups = groups;
      p.x_channels = 4;
      p.y_channels = 6;
      for (int d = 0; d < dims; ++d) p.x_size[d] = 3 + d;
      p.y_size = reference::conv_output_size(p);
      ASSERT_TRUE(convolution_geometry(p).is_pointwise());
      check_convolution<TypeParam>(p, rng);
      Case c{p, {0, 0, 0}};
      ASSERT_TRUE(transposed_geometry(c).is_pointwise());
      check_transposed<TypeParam>(c, rng);
    }
  }
}

// Near the pointwise path but off it: a 1x1 kernel with a stride, with padding, or a transposed
// one whose output_padding makes the output larger than the input.
TYPED_TEST(Kernels, OneByOneKernelsOffThePointwisePath) {
  std::mt19937 rng(8);
  Problem p;
  p.dims = 2;
  p.batch = 2;
  p.x_channels = 3;
  p.y_channels = 2;
  p.x_size = {5, 6, 1};
  p.stride = {2, 1, 1};
  p.y_size = reference::conv_output_size(p);
  EXPECT_FALSE(convolution_geometry(p).is_pointwise());
  check_convolution<TypeParam>(p, rng);

  p.stride = {1, 1, 1};
  p.pad_before = {1, 0, 0};
  p.pad_after = {0, 1, 0};
  p.y_size = reference::conv_output_size(p);
  EXPECT_FALSE(convolution_geometry(p).is_pointwise());
  check_convolution<TypeParam>(p, rng);

  Case c;
  c.p.dims = 2;
  c.p.batch = 2;
  c.p.x_channels = 2;
  c.p.y_channels = 3;
  c.p.dilation = {2, 1, 1};
  c.output_padding = {1, 0, 0};
  c.p.y_size = {4, 3, 1};
  c.p.x_size = {5, 3, 1};
  EXPECT_FALSE(transposed_geometry(c).is_pointwise());
  check_transposed<TypeParam>(c, rng);
}

// Larger problems that go through the GEMM's blocking and the threaded paths.
TYPED_TEST(Kernels, LargerProblems) {
  std::mt19937 rng(9);
  Problem p;
  p.dims = 2;
  p.batch = 2;
  p.x_channels = 40;
  p.y_channels = 24;
  p.groups = 2;
  p.x_size = {19, 23, 1};
  p.kernel = {3, 3, 1};
  p.pad_before = {1, 1, 0};
  p.pad_after = {1, 1, 0};
  p.y_size = reference::conv_output_size(p);
  check_convolution<TypeParam>(p, rng);

  Case c;
  c.p = p;
  c.p.stride = {2, 2, 1};
  c.output_padding = {1, 0, 0};
  c.p.y_size = {10, 12, 1};
  c.p.x_size = {20, 23, 1};
  check_transposed<TypeParam>(c, rng);
}

// Stride-1 layers with enough channels read a zero-padded copy of their input in place
// (shifted.hpp): padding on both sides, padding beyond dilation * (kernel - 1) (the input
// gradient's copy then crops dy), several samples per block, a GEMM per output plane or per sample
// in 3-D, and a transposed layer with output_padding.
TYPED_TEST(Kernels, StrideOneLayersReadAPaddedCopy) {
  std::mt19937 rng(11);
  auto expect_shifted = [](const convt::ConvGeometry& g) {
    const convt::Plan plan(g);
    EXPECT_EQ(plan.algorithm(convt::Kernel::forward), convt::Algorithm::shifted);
    EXPECT_EQ(plan.algorithm(convt::Kernel::backward_input), convt::Algorithm::shifted);
  };
  Problem p;
  p.dims = 2;
  p.batch = 2;
  p.x_channels = 16;
  p.y_channels = 20;
  p.x_size = {41, 37, 1};
  p.kernel = {3, 3, 1};
  p.dilation = {1, 2, 1};
  p.pad_before = {1, 2, 0};
  p.pad_after = {1, 2, 0};
  p.y_size = reference::conv_output_size(p);
  expect_shifted(convolution_geometry(p));
  check_convolution<TypeParam>(p, rng);

  p.pad_before = {3, 2, 0};  // past dilation * (kernel - 1) = 2 in the first dimension
  p.pad_after = {2, 4, 0};
  p.y_size = reference::conv_output_size(p);
  expect_shifted(convolution_geometry(p));
  check_convolution<TypeParam>(p, rng);

  Problem small = p;  // several samples in one block
  small.batch = 5;
  small.x_size = {24, 22, 1};
  small.pad_before = {1, 1, 0};
  small.pad_after = {1, 1, 0};
  small.dilation = {1, 1, 1};
  small.y_size = reference::conv_output_size(small);
  expect_shifted(convolution_geometry(small));
  check_convolution<TypeParam>(small, rng);

  // One sample per block, computed one GEMM per output plane or one for the whole sample.
  auto check_volume = [&](Problem volume, bool plane_segments) {
    volume.y_size = reference::conv_output_size(volume);
    const convt::ConvGeometry g = convolution_geometry(volume);
    expect_shifted(g);
    EXPECT_EQ(convt::detail::forward_problem(g).plane_segments, plane_segments);
    check_convolution<TypeParam>(volume, rng);
  };
  // Output planes of 110 columns of the padded grid, three tiles each with the third nearly
  // empty: the whole sample takes fewer, padding planes and all.
  Problem volume;
  volume.dims = 3;
  volume.x_channels = 8;
  volume.y_channels = 12;
  volume.x_size = {6, 7, 14};
  volume.kernel = {3, 1, 3};
  volume.pad_before = {1, 0, 1};
  volume.pad_after = {1, 0, 1};
  check_volume(volume, false);
  // Planes of 1006 columns: a GEMM per plane skips the padding planes.
  volume.x_size = {4, 24, 40};
  volume.kernel = {3, 3, 3};
  volume.pad_before = {1, 1, 1};
  volume.pad_after = {1, 1, 1};
  check_volume(volume, true);

  Case c;
  c.p = p;
  c.p.dilation = {2, 2, 1};
  c.p.pad_before = {1, 2, 0};
  c.p.pad_after = {1, 2, 0};
  c.p.y_size = {40, 36, 1};
  c.output_padding = {1, 0, 0};
  // x = (y - 1) - 2 * padding + dilation * (kernel - 1) + output_padding + 1
  c.p.x_size = {39 - 2 + 4 + 1 + 1, 35 - 4 + 4 + 0 + 1, 1};
  expect_shifted(transposed_geometry(c));
  check_transposed<TypeParam>(c, rng);
}

TYPED_TEST(Kernels, UnbatchedInput) {
  using T = TypeParam;
  std::mt19937 rng(10);
  Problem p;
  p.dims = 2;
  p.x_channels = 2;
  p.y_channels = 3;
  p.x_size = {5, 4, 1};
  p.kernel = {2, 3, 1};
  p.y_size = reference::conv_output_size(p);
  const convt::ConvGeometry g = convt::ConvGeometry::convolution(
      2, {2, 5, 4}, test_util::weight_shape(p), test_util::options_for(p));
  EXPECT_FALSE(g.batched);
  EXPECT_EQ(g.output_shape(), (convt::Shape{3, 4, 2}));
  const auto x = random_vector<T>(rng, p.x_count());
  const auto w = random_vector<T>(rng, p.w_count());
  auto y = filled_with_nan<T>(p.y_count());
  convt::forward<T>(g, x.data(), w.data(), nullptr, y.data());
  EXPECT_TRUE(all_close(y.data(), reference::conv_forward(p, x, w),
                        reference::conv_forward(p, absolute(x), absolute(w))));
}

// An empty batch: nothing to compute, and the weight and bias gradients are zero sums.
TYPED_TEST(Kernels, EmptyBatch) {
  using T = TypeParam;
  for (bool transposed : {false, true}) {
    SCOPED_TRACE(transposed ? "transposed" : "convolution");
    const convt::Shape input{0, 4, 6, 5};
    const convt::Shape weight{4, 2, 3, 3};
    convt::ConvOptions options;
    options.groups = 2;
    options.padding = {1};
    const convt::ConvGeometry g = transposed
                                      ? convt::ConvGeometry::transposed(2, input, weight, options)
                                      : convt::ConvGeometry::convolution(2, input, weight, options);
    EXPECT_EQ(g.output_shape()[0], 0);
    std::vector<T> empty;
    const std::vector<T> w(4 * 2 * 3 * 3, T(1));
    const std::vector<T> b(4, T(1));
    convt::forward(g, empty.data(), w.data(), b.data(), empty.data());
    auto gw = filled_with_nan<T>(static_cast<Index>(w.size()));
    auto gb = filled_with_nan<T>(4);
    convt::backward(g, empty.data(), empty.data(), w.data(), empty.data(), gw.data(), gb.data());
    for (T value : gw) EXPECT_EQ(value, T(0));
    for (T value : gb) EXPECT_EQ(value, T(0));
  }
}

// The defining property of the transposed convolution: it is the adjoint of the convolution.
TYPED_TEST(Kernels, AdjointIdentity) {
  std::mt19937 rng(20240603);
  for (int i = 0; i < 200; ++i) {
    const Case c = test_util::random_case(rng, i % 2 == 1);
    SCOPED_TRACE(test_util::describe(c.p));
    test_util::expect_adjoint<TypeParam>(
        i % 2 == 1 ? transposed_geometry(c) : convolution_geometry(c.p), c.p, rng);
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace
