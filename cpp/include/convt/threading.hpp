#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <atomic>
#include <exception>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "error.hpp"
#include "geometry.hpp"

namespace convt {

namespace detail {

// 0: OpenMP's default. A process-wide setting, as torch.set_num_threads, rather than OpenMP's
// per-thread one, so that every Python thread sees it.
inline std::atomic<int>& thread_setting() {
  static std::atomic<int> threads{0};
  return threads;
}

}  // namespace detail

// The most threads one call uses: four per hardware thread. More only adds the cost of starting
// them, and a count in the tens of thousands makes OpenMP fail to create its team, which it
// cannot report but by ending the process.
inline int max_num_threads() {
  static const int most = 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return most;
}

// Threads used by one call. Defaults to OpenMP's choice, which honours OMP_NUM_THREADS, up to
// max_num_threads().
inline int get_num_threads() {
#ifdef _OPENMP
  const int threads = detail::thread_setting().load();
  return threads > 0 ? threads : std::min(omp_get_max_threads(), max_num_threads());
#else
  return 1;
#endif
}

// Sets the threads of every later call, from 1 to max_num_threads(). As many threads are started
// (and joined) here first: if the system cannot create them (a process or memory limit), this
// throws convt::Error and the setting stays as it was, where OpenMP would have ended the
// process at the next call.
inline void set_num_threads(int threads) {
  if (threads < 1) detail::fail("set_num_threads: threads (", threads, ") must be positive");
  if (threads > max_num_threads()) {
    detail::fail("set_num_threads: threads (", threads, ") must be at most ", max_num_threads(),
                 " (four per hardware thread)");
  }
#ifdef _OPENMP
  std::vector<std::thread> trial;
  std::string failure;
  for (int t = 1; t < threads && failure.empty(); ++t) {
    try {
      trial.emplace_back([] {});
    } catch (const std::system_error& error) {
      failure = error.what();
    }
  }
  for (std::thread& thread : trial) thread.join();
  if (!failure.empty()) {
    detail::fail("set_num_threads: cannot start ", threads, " threads: ", failure);
  }
#endif
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

// The time of one element of a lowered matrix, copied or added one at a time by im2col or
// col2im, in multiply-adds (of which the micro-kernels do 16 or 32 a cycle): a lowered layer of
// few output channels spends most of its time there. LeNet's 16x1x28x28 -> 8 5x5 forward, 1.8
// million multiply-adds over 230,000 lowered elements, took 71 us on one thread and 40 us on two
// (Zen 5).
inline constexpr double lowered_element_work = 16.0;

// Runs body(i) for every i in [0, count) on `threads` threads, which take the next indices as
// they become free, so a thread that loses its core for a while delays no one. Callers make
// body(i) compute the same whichever thread runs it. An exception thrown on any thread is caught
// there and rethrown here once all have finished, as one must never leave an OpenMP region.
template <class Body>
void parallel_for(index_t count, int threads, Body&& body) {
  if (threads <= 1 || count <= 1) {
    for (index_t i = 0; i < count; ++i) body(i);
    return;
  }
  // Indices one at a time while there are fewer than 64 a thread (a kernel's units of work), in
  // runs of count / 64 a thread when there are more: taking one costs the threads an atomic
  // exchange, and adding the bias to DCGAN D's 16,384 planes of 64 outputs one at a time took
  // 1.8 ms of a 13.9 ms forward, in runs less than 0.1 ms (Zen 5).
  const index_t chunk = std::max<index_t>(1, count / (64 * index_t{threads}));
  std::exception_ptr failure;
#pragma omp parallel for num_threads(threads) schedule(dynamic, chunk)
  for (index_t i = 0; i < count; ++i) {
    try {
      body(i);
    } catch (...) {
#pragma omp critical(convt_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

// Runs body(i) for every i in [0, count) on `threads` threads, each taking one contiguous range
// of indices. With one thread the loop runs here: an OpenMP region with an if clause that is
// false still starts a team of one, which costs as much as a seed-sized kernel's sums.
template <class Body>
void parallel_for_static(index_t count, int threads, Body&& body) {
  if (threads <= 1 || count <= 1) {
    for (index_t i = 0; i < count; ++i) body(i);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (index_t i = 0; i < count; ++i) body(i);
}

}  // namespace detail
}  // namespace convt
