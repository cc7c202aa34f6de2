// A batched conv2d layer as a C++ user writes one with convt: describe the problem once with
// ConvGeometry, run the forward pass, then the three gradients, and check one of them against a
// finite difference. The same geometry describes the matching transposed convolution (here,
// the input gradient is exactly conv_transpose2d of the output gradient).
//
//   batched_conv

#include <chrono>
#include <cmath>
#include <convt/convt.hpp>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace {

convt::index_t count(const convt::Shape& shape) {
  convt::index_t total = 1;
  for (convt::index_t size : shape) total *= size;
  return total;
}

std::vector<double> random_vector(std::mt19937& rng, convt::index_t size) {
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> values(static_cast<std::size_t>(size));
  for (double& value : values) value = uniform(rng);
  return values;
}

// loss = 1/2 sum(output^2) of the layer y = conv2d(x, w) + b.
double loss_of(const convt::ConvGeometry& g, const std::vector<double>& x,
               const std::vector<double>& w, const std::vector<double>& b) {
  std::vector<double> y(static_cast<std::size_t>(count(g.output_shape())));
  convt::forward(g, x.data(), w.data(), b.data(), y.data());
  double loss = 0;
  for (double value : y) loss += 0.5 * value * value;
  return loss;
}

}  // namespace

int main() {
  // Eight 3-channel 32x32 images, sixteen 3x3 filters, stride 2, padding 1 (PyTorch's
  // nn.Conv2d(3, 16, 3, stride=2, padding=1)).
  convt::ConvOptions options;
  options.stride = {2};
  options.padding = {1};
  const convt::ConvGeometry g =
      convt::ConvGeometry::convolution(2, {8, 3, 32, 32}, {16, 3, 3, 3}, options);
  const convt::Shape out = g.output_shape();
  std::printf("%s: input (8, 3, 32, 32), weight (16, 3, 3, 3) -> output (%td, %td, %td, %td)\n",
              g.name().c_str(), out[0], out[1], out[2], out[3]);

  std::mt19937 rng(1);
  const std::vector<double> x = random_vector(rng, count(g.input_shape()));
  std::vector<double> w = random_vector(rng, count(g.weight_shape()));
  const std::vector<double> b = random_vector(rng, g.output_channels());

  const auto start = std::chrono::steady_clock::now();
  std::vector<double> y(static_cast<std::size_t>(count(out)));
  convt::forward(g, x.data(), w.data(), b.data(), y.data());
  // For loss = 1/2 sum(y^2) the gradient for the output is y itself.
  std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
  convt::backward(g, y.data(), x.data(), w.data(), dx.data(), dw.data(), db.data());
  const double milliseconds =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("forward + backward: %.2f ms on %d thread(s), GEMM kernels for %s\n", milliseconds,
              convt::get_num_threads(), convt::isa_name(convt::get_isa()));

  // The input gradient is the transposed convolution of dy with the same weight: the geometry
  // of conv_transpose2d(dy, w, stride=2, padding=1, output_padding=1) gives back x's shape.
  options.output_padding = {1};
  const convt::ConvGeometry t = convt::ConvGeometry::transposed(2, out, {16, 3, 3, 3}, options);
  std::vector<double> transposed(x.size());
  convt::forward<double>(t, y.data(), w.data(), nullptr, transposed.data());
  double largest_difference = 0;
  for (std::size_t i = 0; i < dx.size(); ++i) {
    largest_difference = std::fmax(largest_difference, std::abs(dx[i] - transposed[i]));
  }
  std::printf("dx vs conv_transpose2d(dy, w): largest difference %.3g\n", largest_difference);

  // Central differences for a few weights.
  bool ok = largest_difference < 1e-12;
  const double h = 1e-5;
  for (std::size_t i : {std::size_t{0}, w.size() / 2, w.size() - 1}) {
    const double saved = w[i];
    w[i] = saved + h;
    const double plus = loss_of(g, x, w, b);
    w[i] = saved - h;
    const double minus = loss_of(g, x, w, b);
    w[i] = saved;
    const double numeric = (plus - minus) / (2 * h);
    const double error = std::abs(numeric - dw[i]) / std::fmax(1.0, std::abs(dw[i]));
    std::printf("dw[%zu] = %.6f, finite difference %.6f\n", i, dw[i], numeric);
    ok = ok && error < 1e-6;
  }
  std::printf(ok ? "gradients check out\n" : "GRADIENT MISMATCH\n");
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
