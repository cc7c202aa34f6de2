// GEMM throughput of each micro-kernel path, for reading the convolution figures against:
//   g++ -std=c++17 -O3 -fopenmp -I cpp/include benchmarks/gemm.cpp -o build/gemm && build/gemm
// Prints the best of ten runs of C (m x n) = A (m x k) . B (k x n) per instruction set, in
// GFLOP/s, and the FMA peak the probe measures.
#include <algorithm>
#include <chrono>
#include <convt/convt.hpp>
#include <cstdio>
#include <random>
#include <vector>

int main() {
  const convt::index_t shapes[][3] = {{512, 3136, 576}, {64, 3136, 576}, {64, 576, 3136}};
  std::mt19937 random(0);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::printf("FMA peak: %.0f GFLOP/s\n", convt::fma_peak_gflops(0.5));
  for (const auto& shape : shapes) {
    const convt::index_t m = shape[0], n = shape[1], k = shape[2];
    std::vector<float> a(m * k), b(k * n), c(m * n);
    for (float& value : a) value = uniform(random);
    for (float& value : b) value = uniform(random);
    for (convt::Isa isa : convt::supported_isas()) {
      convt::set_isa(isa);
      double best = 1e9;
      for (int run = 0; run < 10; ++run) {
        const auto start = std::chrono::steady_clock::now();
        convt::gemm<float>(m, n, k, convt::row_major(a.data(), k), convt::row_major(b.data(), n),
                           c.data(), n, false);
        const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
        best = std::min(best, elapsed.count());
      }
      std::printf("%-8s m %4ld n %4ld k %4ld: %7.3f ms %6.1f GFLOP/s\n", convt::isa_name(isa),
                  static_cast<long>(m), static_cast<long>(n), static_cast<long>(k), best * 1e3,
                  2.0 * m * n * k / best / 1e9);
    }
  }
}
