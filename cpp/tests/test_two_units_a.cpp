// The umbrella header in one translation unit of a binary that has it in another
// (test_two_units_b.cpp) too: a function defined in a header without `inline` is defined twice
// and the link fails. Each unit also runs a layer, so the templates are instantiated in both.

#include <gtest/gtest.h>

#include <vector>

#include "convt/convt.hpp"

double layer_sum_in_unit_b();

namespace {

double layer_sum_in_unit_a() {
  const convt::ConvGeometry g = convt::ConvGeometry::transposed(2, {1, 2, 3, 3}, {2, 1, 2, 2});
  const std::vector<double> input(18, 1.0), weight(8, 0.5);
  std::vector<double> output(16);
  convt::forward<double>(g, input.data(), weight.data(), nullptr, output.data());
  const convt::Matrix<double> x{{1, 2}, {3, 4}};
  const convt::Matrix<double> y = convt::fcn_forward(x, x);
  double total = 0;
  for (double value : output) total += value;
  for (convt::index_t i = 0; i < y.size(); ++i) total += y.data()[i];
  return total;
}

}  // namespace

TEST(TwoUnits, BothUnitsLinkAndAgree) {
  // Sum of the transposed convolution: 18 inputs x 4 taps x 0.5 = 36; fcn_forward of [[1, 2],
  // [3, 4]] with itself sums to (1 + 2 + 3 + 4)^2 = 100.
  EXPECT_DOUBLE_EQ(layer_sum_in_unit_a(), 136.0);
  EXPECT_DOUBLE_EQ(layer_sum_in_unit_b(), 136.0);
  EXPECT_STREQ(CONVT_VERSION_STRING, "0.1.0");
}
