// Plans: each kernel's algorithm chosen once and reported by the same value that drives it; a
// forced algorithm that cannot compute its kernel refused; kept weights reused only while the
// weight is bitwise the same (whoever changed it, however), for each instruction set, and safe
// when several threads run one plan at once.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <string>
#include <thread>
#include <vector>

#include "convt/convt.hpp"
#include "test_util.hpp"

namespace {

using convt::Algorithm;
using convt::ConvGeometry;
using convt::Kernel;
using convt::Plan;
using convt::Shape;

ConvGeometry strided_transposed() {
  convt::ConvOptions options;
  options.stride = {2};
  options.padding = {1};
  return ConvGeometry::transposed(2, {4, 24, 9, 9}, {24, 16, 4, 4}, options);
}

ConvGeometry stride_one() {
  convt::ConvOptions options;
  options.padding = {1};
  return ConvGeometry::convolution(2, {2, 16, 30, 30}, {24, 16, 3, 3}, options);
}

template <class T>
std::vector<T> layer_forward(const Plan& plan, const std::vector<T>& input,
                             const std::vector<T>& weight) {
  const ConvGeometry& g = plan.geometry();
  std::vector<T> output(static_cast<std::size_t>(test_util::count(g.output_shape())));
  plan.forward(input.data(), weight.data(), static_cast<const T*>(nullptr), output.data());
  return output;
}

TEST(Plan, ChoosesOnceAndTheWeightGradientFollowsTheForwardPass) {
  for (const ConvGeometry& g : {strided_transposed(), stride_one()}) {
    const Plan plan(g);
    for (Kernel kernel : convt::all_kernels) {
      EXPECT_TRUE(convt::detail::algorithm_applies(g, kernel, plan.algorithm(kernel)));
    }
    EXPECT_EQ(plan.algorithm(Kernel::backward_weight), plan.algorithm(Kernel::forward));
  }
  EXPECT_EQ(Plan(stride_one()).algorithm(Kernel::forward), Algorithm::shifted);
  EXPECT_EQ(Plan(strided_transposed()).algorithm(Kernel::backward_input), Algorithm::col2im);
}

TEST(Plan, RefusesAnAlgorithmThatCannotComputeItsKernel) {
  const std::array<Algorithm, 3> shifted{Algorithm::shifted, Algorithm::shifted,
                                         Algorithm::shifted};
  try {
    Plan plan(strided_transposed(), shifted);
    ADD_FAILURE() << "a strided geometry took the shifted algorithm";
  } catch (const convt::Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("conv_transpose2d"), std::string::npos) << message;
    EXPECT_NE(message.find("conv_forward"), std::string::npos) << message;
    EXPECT_NE(message.find("shifted"), std::string::npos) << message;
  }
  EXPECT_THROW(Plan(stride_one(), {Algorithm::col2im, Algorithm::col2im, Algorithm::im2col}),
               convt::Error);
  EXPECT_THROW(Plan(stride_one(), {Algorithm::im2col, Algorithm::im2col, Algorithm::im2col}),
               convt::Error);
  EXPECT_NO_THROW(Plan(stride_one(), {Algorithm::im2col, Algorithm::col2im, Algorithm::direct}));
}

TEST(Plan, KeptWeightsAreReusedOnlyWhileTheWeightIsUnchanged) {
  std::mt19937 rng(3);
  for (const ConvGeometry& g : {strided_transposed(), stride_one()}) {
    SCOPED_TRACE(g.name());
    Plan plan(g);
    const Plan fresh(g);
    auto input = test_util::random_vector<float>(rng, test_util::count(g.input_shape()));
    auto weight = test_util::random_vector<float>(rng, test_util::count(g.weight_shape()));
    EXPECT_FALSE(plan.keeps_weights());
    layer_forward(plan, input, weight);
    EXPECT_EQ(plan.kept_packings(), 0u);
    EXPECT_EQ(plan.kept_bytes(), 0u);

    plan.keep_weights(true);
    EXPECT_TRUE(plan.keeps_weights());
    const auto expected = layer_forward(fresh, input, weight);
    for (int call = 0; call < 3; ++call) EXPECT_EQ(layer_forward(plan, input, weight), expected);
    EXPECT_EQ(plan.kept_packings(), 1u) << "an unchanged weight is packed once";
    EXPECT_GE(plan.kept_bytes(), 2 * weight.size() * sizeof(float));

    // One element changed in place, where no one told the plan: packed again.
    weight[weight.size() / 2] += 1.0f;
    EXPECT_EQ(layer_forward(plan, input, weight), layer_forward(fresh, input, weight));
    EXPECT_EQ(plan.kept_packings(), 2u);
    // The same values at another address are the same weight.
    const std::vector<float> copy = weight;
    EXPECT_EQ(layer_forward(plan, input, copy), layer_forward(fresh, input, weight));
    EXPECT_EQ(plan.kept_packings(), 2u);

    // The input gradient of a convolution packs the weight another way, kept beside it.
    const std::vector<float> grad_output =
        test_util::random_vector<float>(rng, test_util::count(g.output_shape()));
    std::vector<float> kept_gradient(input.size()), fresh_gradient(input.size());
    for (int call = 0; call < 2; ++call) {
      plan.backward(grad_output.data(), input.data(), weight.data(), kept_gradient.data(),
                    static_cast<float*>(nullptr), static_cast<float*>(nullptr));
    }
    fresh.backward(grad_output.data(), input.data(), weight.data(), fresh_gradient.data(),
                   static_cast<float*>(nullptr), static_cast<float*>(nullptr));
    EXPECT_EQ(kept_gradient, fresh_gradient);
    EXPECT_EQ(plan.kept_packings(), 3u);

    plan.keep_weights(false);
    EXPECT_EQ(plan.kept_bytes(), 0u);
    EXPECT_EQ(layer_forward(plan, input, weight), layer_forward(fresh, input, weight));
  }
}

TEST(Plan, KeptWeightsFollowTheInstructionSet) {
  const convt::Isa saved = convt::get_isa();
  std::mt19937 rng(4);
  const ConvGeometry g = strided_transposed();
  Plan plan(g);
  plan.keep_weights(true);
  const Plan fresh(g);
  const auto input = test_util::random_vector<double>(rng, test_util::count(g.input_shape()));
  const auto weight = test_util::random_vector<double>(rng, test_util::count(g.weight_shape()));
  std::size_t packings = 0;
  for (convt::Isa isa : convt::supported_isas()) {
    SCOPED_TRACE(convt::isa_name(isa));
    convt::set_isa(isa);
    EXPECT_EQ(layer_forward(plan, input, weight), layer_forward(fresh, input, weight));
    EXPECT_EQ(plan.kept_packings(), ++packings) << "packed again for another tile";
  }
  convt::set_isa(saved);
}

TEST(Plan, ThreadsShareOnePlanWithTheirOwnWeights) {
  const ConvGeometry g = stride_one();
  Plan plan(g);
  plan.keep_weights(true);
  const Plan fresh(g);
  std::mt19937 rng(5);
  const auto input = test_util::random_vector<float>(rng, test_util::count(g.input_shape()));
  std::vector<std::vector<float>> weights, expected;
  for (int t = 0; t < 4; ++t) {
    weights.push_back(test_util::random_vector<float>(rng, test_util::count(g.weight_shape())));
    expected.push_back(layer_forward(fresh, input, weights.back()));
  }
  std::vector<int> wrong(weights.size(), 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < weights.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int call = 0; call < 6; ++call) {
        // Two threads take turns with one weight, so a kept packing is reused and replaced
        // while others read theirs.
        const std::size_t which = (t + static_cast<std::size_t>(call)) % weights.size();
        wrong[t] += layer_forward(plan, input, weights[which]) != expected[which];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong, std::vector<int>(weights.size(), 0));
}

}  // namespace
