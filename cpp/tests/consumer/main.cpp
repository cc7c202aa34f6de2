// Uses an installed convt as a C++ program with no Python does: the example of seed 001 (the
// blog post on the gradients of convolution and deconvolution, listed in docs/index.md), a
// transposed convolution of 1..9 with the kernel [[1, 2], [3, 4]] and its exact gradient; then a
// batched transposed convolution large enough to be threaded, compared with a plain loop. It
// prints whether it was built with OpenMP and how many threads the kernels used, so that a build
// without OpenMP can be seen to work single-threaded.

#include <cmath>
#include <convt/convt.hpp>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

bool seed_example_matches() {
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
  return ok && dx(1, 1) == 3 && dw.rotate_180()(1, 0) == 5;
}

// The largest difference between convt's conv_transpose2d(x, w, stride=2, padding=1) of shape
// (8, 16, 32, 32) -> (8, 8, 63, 63), about ten million multiply-adds, and the scatter written as
// plain loops: out[n, f, i*s + a - p, j*s + b - p] += x[n, c, i, j] * w[c, f, a, b].
double batched_difference() {
  const convt::index_t N = 8, C = 16, F = 8, H = 32, K = 3, S = 2, P = 1;
  convt::ConvOptions options;
  options.stride = {S};
  options.padding = {P};
  const auto g = convt::ConvGeometry::transposed(2, {N, C, H, H}, {C, F, K, K}, options);
  const convt::index_t O = g.output_shape()[2];
  std::vector<double> x(N * C * H * H), w(C * F * K * K), y(N * F * O * O), expected(y.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * i);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::cos(0.91 * i);
  convt::forward<double>(g, x.data(), w.data(), nullptr, y.data());
  for (convt::index_t n = 0; n < N; ++n)
    for (convt::index_t c = 0; c < C; ++c)
      for (convt::index_t f = 0; f < F; ++f)
        for (convt::index_t i = 0; i < H; ++i)
          for (convt::index_t j = 0; j < H; ++j)
            for (convt::index_t a = 0; a < K; ++a)
              for (convt::index_t b = 0; b < K; ++b) {
                const convt::index_t row = i * S + a - P, col = j * S + b - P;
                if (row < 0 || row >= O || col < 0 || col >= O) continue;
                expected[((n * F + f) * O + row) * O + col] +=
                    x[((n * C + c) * H + i) * H + j] * w[((c * F + f) * K + a) * K + b];
              }
  double largest = 0;
  for (std::size_t i = 0; i < y.size(); ++i)
    largest = std::fmax(largest, std::abs(y[i] - expected[i]));
  return largest;
}

}  // namespace

int main() {
  const bool seed_ok = seed_example_matches();
  std::printf("convt %s: conv_transpose2d(1..9, [[1, 2], [3, 4]]) %s\n", CONVT_VERSION_STRING,
              seed_ok ? "matches the seed" : "DOES NOT MATCH the seed");
  const double difference = batched_difference();
  const bool batched_ok = difference < 1e-9;
#ifdef _OPENMP
  const char* openmp = "with OpenMP";
#else
  const char* openmp = "without OpenMP";
#endif
  std::printf(
      "built %s, kernels on %d thread(s): batched conv_transpose2d %s a plain loop (%.1e)\n",
      openmp, convt::get_num_threads(), batched_ok ? "matches" : "DOES NOT MATCH", difference);
  return seed_ok && batched_ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
