#pragma once

#include <chrono>

#include "gemm.hpp"
#include "isa.hpp"
#include "threading.hpp"

// A probe of the machine's float32 multiply-add throughput, so that benchmark figures can be read
// as a share of what the CPU can do at most.

namespace convt {
namespace detail {

// Independent chains of vector multiply-adds in registers: enough of them to cover the FMA
// latency on every core the probe runs on.
template <int VECTOR_BYTES>
__attribute__((always_inline)) inline double fma_chains(long iterations) {
  using Vector = typename VectorOf<float, VECTOR_BYTES>::type;
  constexpr int chains = 12;
  Vector sum[chains];
  const Vector scale = Vector{} + 0.999999f;
  const Vector step = Vector{} + 1.0e-7f;
  for (int c = 0; c < chains; ++c) sum[c] = Vector{} + static_cast<float>(c);
  for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < chains; ++c) sum[c] = sum[c] * scale + step;
  }
  float total = 0;
  for (int c = 0; c < chains; ++c) total += sum[c][0];
  return total;
}

inline double fma_chains_portable(long iterations) { return fma_chains<16>(iterations); }
#if CONVT_X86_DISPATCH
CONVT_TARGET_AVX2 inline double fma_chains_avx2(long iterations) {
  return fma_chains<32>(iterations);
}
CONVT_TARGET_AVX512 inline double fma_chains_avx512(long iterations) {
  return fma_chains<64>(iterations);
}
#endif

}  // namespace detail

// float32 GFLOP/s of multiply-adds (two operations each) on all threads, with the widest vectors
// of the current ISA, measured for about `seconds` (more than 0, at most 60: the probe cannot be
// interrupted).
inline double fma_peak_gflops(double seconds) {
  if (!(seconds > 0 && seconds <= 60)) {
    detail::fail("fma_peak_gflops: seconds (", seconds, ") must be more than 0 and at most 60");
  }
  const Isa isa = get_isa();
  // The portable and NEON probes run on 16-byte vectors.
  const int lanes = isa == Isa::avx512 ? 16 : isa == Isa::avx2 ? 8 : 4;
  const long iterations = 1 << 20;
  const int threads = get_num_threads();
  long rounds = 0;
  double sink = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
#pragma omp parallel for num_threads(threads) reduction(+ : sink) schedule(static)
    for (int t = 0; t < threads; ++t) {
#if CONVT_X86_DISPATCH
      if (isa == Isa::avx512) {
        sink += detail::fma_chains_avx512(iterations);
        continue;
      }
      if (isa == Isa::avx2) {
        sink += detail::fma_chains_avx2(iterations);
        continue;
      }
#endif
      sink += detail::fma_chains_portable(iterations);
    }
    ++rounds;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  volatile double keep = sink;
  (void)keep;
  return 2.0 * 12 * lanes * static_cast<double>(iterations) * rounds * threads / elapsed / 1e9;
}

}  // namespace convt
