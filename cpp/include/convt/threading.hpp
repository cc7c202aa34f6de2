#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

#include <atomic>

#include "error.hpp"

namespace convt {

namespace detail {

// 0: OpenMP's default. A process-wide setting, as torch.set_num_threads, rather than OpenMP's
// per-thread one, so that every Python thread sees it.
inline std::atomic<int>& thread_setting() {
  static std::atomic<int> threads{0};
  return threads;
}

}  // namespace detail

// Threads used by one call. Defaults to OpenMP's choice, which honours OMP_NUM_THREADS.
inline int get_num_threads() {
#ifdef _OPENMP
  const int threads = detail::thread_setting().load();
  return threads > 0 ? threads : omp_get_max_threads();
#else
  return 1;
#endif
}

inline void set_num_threads(int threads) {
  if (threads < 1) detail::fail("set_num_threads: threads (", threads, ") must be positive");
  detail::thread_setting().store(threads);
}

namespace detail {

// Threads worth starting for `work` multiply-adds. Starting a team and its barriers cost
// microseconds, far more when the machine is busy and a team member waits for a core, so below
// about four million multiply-adds (some tens of microseconds on one core) one thread does it
// all; nested calls stay serial.
inline int threads_for(double work) {
#ifdef _OPENMP
  if (omp_in_parallel() || work < 4.0e6) return 1;
  return get_num_threads();
#else
  (void)work;
  return 1;
#endif
}

}  // namespace detail
}  // namespace convt
