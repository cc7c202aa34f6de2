// Times each kernel of one layer in C++, with no Python in the way: the figures to read a
// profile against (valgrind --tool=callgrind runs it as it is).
//   g++ -std=c++17 -O3 -fopenmp -I cpp/include benchmarks/kernels.cpp -o build/kernels
//   build/kernels conv 32x64x56x56 64x64x3x3 stride=1 padding=1
//   build/kernels transposed 64x512x8x8 512x256x4x4 stride=2 padding=1 [repeats=10]
// The arguments are the layer kind, the input and weight shapes (as PyTorch's), and any of
// stride, padding, dilation, groups and output_padding (one value for every dimension). Prints
// each kernel's path and best time of `repeats` runs, and its share of the FMA peak.
#include <algorithm>
#include <chrono>
#include <convt/convt.hpp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

convt::Shape parse_shape(const std::string& text) {
  convt::Shape shape;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('x', start), text.size());
    shape.push_back(std::stol(text.substr(start, end - start)));
    start = end + 1;
  }
  return shape;
}

template <class Body>
double best_seconds(int repeats, Body&& body) {
  double best = 1e30;
  for (int run = 0; run < repeats; ++run) {
    const auto start = std::chrono::steady_clock::now();
    body();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: %s conv|transposed INPUTxSHAPE WEIGHTxSHAPE [stride=S] [padding=P] "
                 "[dilation=D] [groups=G] [output_padding=O] [repeats=R]\n",
                 argv[0]);
    return 2;
  }
  const bool transposed = std::string(argv[1]) == "transposed";
  const convt::Shape input = parse_shape(argv[2]);
  const convt::Shape weight = parse_shape(argv[3]);
  convt::ConvOptions options;
  int repeats = 10;
  for (int i = 4; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::size_t equals = arg.find('=');
    const std::string key = arg.substr(0, equals);
    const long value = std::stol(arg.substr(equals + 1));
    if (key == "stride") options.stride = {value};
    if (key == "padding") options.padding = {value};
    if (key == "dilation") options.dilation = {value};
    if (key == "groups") options.groups = value;
    if (key == "output_padding") options.output_padding = {value};
    if (key == "repeats") repeats = static_cast<int>(value);
  }
  const int dims = static_cast<int>(weight.size()) - 2;
  const convt::ConvGeometry g =
      transposed ? convt::ConvGeometry::transposed(dims, input, weight, options)
                 : convt::ConvGeometry::convolution(dims, input, weight, options);
  const convt::Plan plan(g);
  auto size = [](const convt::Shape& shape) {
    convt::index_t total = 1;
    for (convt::index_t extent : shape) total *= extent;
    return static_cast<std::size_t>(total);
  };
  std::mt19937 random(0);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> x(size(g.x_shape())), w(size(g.weight_shape())), y(size(g.y_shape()));
  std::vector<float> dx(x.size()), dw(w.size()), dy(y.size());
  for (float& value : x) value = uniform(random);
  for (float& value : w) value = uniform(random);
  for (float& value : dy) value = uniform(random);
  const double peak = repeats > 1 ? convt::fma_peak_gflops(0.2) : 0.0;
  std::printf("%s input %s weight %s, %.3g multiply-adds, ISA %s, %d threads, peak %.0f GFLOP/s\n",
              g.name().c_str(), convt::detail::format_values(input).c_str(),
              convt::detail::format_values(weight).c_str(), g.multiply_adds(),
              convt::isa_name(convt::get_isa()), convt::get_num_threads(), peak);
  const struct {
    convt::Kernel kernel;
    std::function<void()> run;
  } kernels[] = {
      {convt::Kernel::forward, [&] { plan.conv_forward(x.data(), w.data(), y.data()); }},
      {convt::Kernel::backward_input,
       [&] { plan.conv_backward_input(dy.data(), w.data(), dx.data()); }},
      {convt::Kernel::backward_weight,
       [&] { plan.conv_backward_weight(x.data(), dy.data(), dw.data()); }},
  };
  for (const auto& kernel : kernels) {
    const double seconds = best_seconds(repeats, kernel.run);
    const double rate = 2.0 * g.multiply_adds() / seconds / 1e9;
    std::printf("  %-22s %-10s %9.3f ms %7.1f GFLOP/s (%.0f%%)\n",
                convt::kernel_name(kernel.kernel),
                convt::algorithm_name(plan.algorithm(kernel.kernel)), seconds * 1e3, rate,
                peak > 0 ? 100.0 * rate / peak : 0.0);
  }
}
