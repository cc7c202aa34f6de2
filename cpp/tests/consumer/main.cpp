// Uses the installed convt: the seed 001 example, a transposed convolution of 1..9 with the
// kernel [[1, 2], [3, 4]], and its exact gradient.

#include <convt/convt.hpp>
#include <cstdio>
#include <cstdlib>

int main() {
  const convt::Matrix<float> x{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
  const convt::Matrix<float> k{{1, 2}, {3, 4}};
  // fcn_forward turns its kernel by 180 degrees, as in the seed: this is conv_transpose2d(x, k).
  const convt::Matrix<float> y = convt::fcn_forward(k.rotate_180(), x);
  const float expected[16] = {1, 4, 7, 6, 7, 23, 33, 24, 19, 53, 63, 42, 21, 52, 59, 36};
  bool ok = y.rows() == 4 && y.cols() == 4;
  for (int i = 0; ok && i < 16; ++i) ok = y.data()[i] == expected[i];

  convt::Matrix<float> dz(4, 4);
  for (convt::index_t i = 0; i < dz.size(); ++i) dz.data()[i] = 0;
  dz(2, 1) = 1;
  const auto [dx, dw] = convt::fcn_backward(x, dz, k.rotate_180());
  ok = ok && dx(1, 1) == 3 && dw.rotate_180()(1, 0) == 5;

  std::printf("convt %s: conv_transpose2d(1..9, [[1, 2], [3, 4]]) %s\n", CONVT_VERSION_STRING,
              ok ? "matches the seed" : "DOES NOT MATCH the seed");
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
