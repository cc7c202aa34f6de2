// The second translation unit of test_two_units: see test_two_units_a.cpp.

#include <vector>

#include "convt/convt.hpp"

double layer_sum_in_unit_b() {
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
