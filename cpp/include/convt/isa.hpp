#pragma once

#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "error.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CONVT_X86_DISPATCH 1
// Functions compiled for one instruction set, called only after a run-time check.
#define CONVT_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define CONVT_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))
#else
#define CONVT_X86_DISPATCH 0
#endif

// Every AArch64 CPU has NEON (Advanced SIMD), so its kernels need no run-time check.
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVT_ARM_DISPATCH 1
#else
#define CONVT_ARM_DISPATCH 0
#endif

namespace convt {

// The instruction sets the GEMM micro-kernels are compiled for: portable code (16-byte vectors,
// which every target lowers to SIMD or scalar code), AVX2 and AVX-512 on x86-64, NEON on AArch64.
// The best one the CPU supports is chosen at run time; CONVT_ISA=portable|avx2|avx512|neon in the
// environment, or set_isa(), forces one so that every path can be tested on one machine.
enum class Isa { portable, avx2, avx512, neon };

inline constexpr Isa all_isas[] = {Isa::portable, Isa::avx2, Isa::avx512, Isa::neon};

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    case Isa::neon:
      return "neon";
    default:
      return "portable";
  }
}

inline bool isa_supported(Isa isa) {
#if CONVT_X86_DISPATCH
  switch (isa) {
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::neon:
      return false;
    default:
      return true;
  }
#elif CONVT_ARM_DISPATCH
  return isa == Isa::portable || isa == Isa::neon;
#else
  return isa == Isa::portable;
#endif
}

// The instruction sets this CPU supports, the best last.
inline std::vector<Isa> supported_isas() {
  std::vector<Isa> result;
  for (Isa isa : {Isa::portable, Isa::neon, Isa::avx2, Isa::avx512}) {
    if (isa_supported(isa)) result.push_back(isa);
  }
  return result;
}

inline Isa parse_isa(const std::string& name) {
  for (Isa isa : all_isas) {
    if (name == isa_name(isa)) return isa;
  }
  detail::fail("isa must be one of 'portable', 'avx2', 'avx512', 'neon', got '", name, "'");
}

namespace detail {

inline Isa best_isa() {
  const std::vector<Isa> isas = supported_isas();
  return isas.back();
}

inline Isa isa_from_environment() {
  const char* forced = std::getenv("CONVT_ISA");
  if (forced == nullptr || *forced == '\0') return best_isa();
  for (Isa isa : all_isas) {
    if (std::string(forced) != isa_name(isa)) continue;
    if (!isa_supported(isa)) fail("CONVT_ISA=", forced, " is not supported by this CPU");
    return isa;
  }
  fail("CONVT_ISA must be one of 'portable', 'avx2', 'avx512', 'neon', got '", forced, "'");
}

// Read from the environment by the first call that needs it; an invalid value is reported by
// every such call.
inline std::atomic<int>& isa_setting() {
  static std::atomic<int> setting{static_cast<int>(isa_from_environment())};
  return setting;
}

}  // namespace detail

inline Isa get_isa() { return static_cast<Isa>(detail::isa_setting().load()); }

inline void set_isa(Isa isa) {
  if (!isa_supported(isa))
    detail::fail("set_isa: '", isa_name(isa), "' is not supported by this CPU");
  detail::isa_setting().store(static_cast<int>(isa));
}

}  // namespace convt
