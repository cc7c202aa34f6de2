#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

#include "error.hpp"

namespace convt {

// Threads used by one call. Defaults to OpenMP's choice, which honours OMP_NUM_THREADS.
inline int get_num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline void set_num_threads(int threads) {
  if (threads < 1) detail::fail("set_num_threads: threads (", threads, ") must be positive");
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
}

namespace detail {

// Threads worth starting for `work` multiply-adds: starting a team costs a few microseconds, in
// which one core does about a million multiply-adds, and nested calls stay serial.
inline int threads_for(double work) {
#ifdef _OPENMP
  if (omp_in_parallel() || work < 1.0e6) return 1;
  return omp_get_max_threads();
#else
  (void)work;
  return 1;
#endif
}

}  // namespace detail
}  // namespace convt
