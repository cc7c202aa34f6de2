// One GEMM shape, repeated, for reading the GEMM under a profiler or against its generated code
// (benchmarks/gemm.py times it against OpenBLAS):
//   g++ -std=c++17 -O3 -fopenmp -I cpp/include benchmarks/gemm.cpp -o build/gemm
//   build/gemm 64 3136 576                    # m n k: best of 10, each ISA this CPU has
//   CONVT_ISA=avx2 OMP_NUM_THREADS=1 valgrind --tool=callgrind build/gemm 64 3136 576 double 2
// Arguments: m n k [float|double] [repeats] [bt] (bt: B is read transposed, as the weight
// gradient reads the lowered input). Prints the blocking in use and, per ISA, the best time.
#include <algorithm>
#include <chrono>
#include <convt/convt.hpp>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

template <class T>
void run(convt::index_t m, convt::index_t n, convt::index_t k, int repeats, bool transpose_b) {
  std::mt19937 random(0);
  std::uniform_real_distribution<T> uniform(-1, 1);
  std::vector<T> a(m * k), b(k * n), c(m * n);
  for (T& value : a) value = uniform(random);
  for (T& value : b) value = uniform(random);
  const auto a_operand = convt::row_major(a.data(), k);
  const auto b_operand =
      transpose_b ? convt::row_major(b.data(), k).transposed() : convt::row_major(b.data(), n);
  const char* forced = std::getenv("CONVT_ISA");
  const std::vector<convt::Isa> isas = forced != nullptr && *forced
                                           ? std::vector<convt::Isa>{convt::get_isa()}
                                           : convt::supported_isas();
  for (convt::Isa isa : isas) {
    convt::set_isa(isa);
    const convt::GemmConfig config = convt::gemm_config<T>();
    double best = 1e9;
    for (int run = 0; run < repeats; ++run) {
      const auto start = std::chrono::steady_clock::now();
      convt::gemm<T>(m, n, k, a_operand, b_operand, c.data(), n, false);
      best = std::min(
          best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::printf("%-8s tile %d x %-2d blocks %3ld x %4ld x %5ld: %9.3f ms %6.1f GFLOP/s\n",
                convt::isa_name(isa), config.tile_rows, config.tile_cols,
                static_cast<long>(config.blocking.depth), static_cast<long>(config.blocking.rows),
                static_cast<long>(config.blocking.cols), best * 1e3, 2.0 * m * n * k / best / 1e9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s m n k [float|double] [repeats] [bt]\n", argv[0]);
    return 2;
  }
  const convt::index_t m = std::atol(argv[1]), n = std::atol(argv[2]), k = std::atol(argv[3]);
  const std::string type = argc > 4 ? argv[4] : "float";
  const int repeats = argc > 5 ? std::atoi(argv[5]) : 10;
  const bool transpose_b = argc > 6 && std::string(argv[6]) == "bt";
  const convt::CacheSizes& caches = convt::cache_sizes();
  std::printf("caches: L1d %ld KiB, L2 %ld KiB (%d-way), L3 %ld KiB (%s); %d threads\n",
              static_cast<long>(caches.l1d >> 10), static_cast<long>(caches.l2 >> 10),
              caches.l2_ways, static_cast<long>(caches.l3 >> 10), caches.source.c_str(),
              convt::get_num_threads());
  if (type == "double") {
    run<double>(m, n, k, repeats, transpose_b);
  } else {
    run<float>(m, n, k, repeats, transpose_b);
  }
}
