// Limits the C++ core enforces on settings: a thread count beyond four per hardware thread, and a
// peak probe that could never end, are convt::Error naming the value.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "convt/convt.hpp"

namespace {

// Runs `call`, which must throw convt::Error whose message contains `words`.
template <class Call>
void expect_error(Call&& call, const std::string& words) {
  try {
    call();
    ADD_FAILURE() << "no exception; expected one mentioning '" << words << "'";
  } catch (const convt::Error& error) {
    EXPECT_NE(std::string(error.what()).find(words), std::string::npos) << error.what();
  }
}

TEST(ThreadLimit, FourPerHardwareThread) {
  const int most = convt::max_num_threads();
  EXPECT_EQ(most, 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const int saved = convt::get_num_threads();
  EXPECT_LE(saved, most);
  convt::set_num_threads(most);
#ifdef _OPENMP
  EXPECT_EQ(convt::get_num_threads(), most);
#endif
  for (int threads : {most + 1, 100000, std::numeric_limits<int>::max()}) {
    expect_error([&] { convt::set_num_threads(threads); },
                 "set_num_threads: threads (" + std::to_string(threads) + ") must be at most " +
                     std::to_string(most));
  }
  // A refused count leaves the setting as it was.
#ifdef _OPENMP
  EXPECT_EQ(convt::get_num_threads(), most);
#endif
  convt::set_num_threads(saved);
}

// OMP_NUM_THREADS beyond the limit (ctest runs this once with OMP_NUM_THREADS=100000) is
// bounded the same way: a call large enough to start threads starts at most max_num_threads().
TEST(ThreadLimit, DefaultIsBoundedToo) {
  EXPECT_LE(convt::get_num_threads(), convt::max_num_threads());
  // The depthwise layer of the report that made OpenMP fail to create 100000 threads.
  convt::ConvOptions options;
  options.groups = 64;
  options.padding = {1};
  const auto g = convt::ConvGeometry::convolution(2, {8, 64, 64, 64}, {64, 1, 3, 3}, options);
  const std::vector<float> x(8 * 64 * 64 * 64, 1.0f), w(64 * 9, 1.0f);
  std::vector<float> y(x.size());
  convt::forward<float>(g, x.data(), w.data(), nullptr, y.data());
  EXPECT_EQ(y[64 + 1], 9.0f);
  EXPECT_EQ(y[0], 4.0f);
}

TEST(PeakProbe, DurationMustBeFiniteAndPositive) {
  const double inf = std::numeric_limits<double>::infinity();
  for (double seconds : {inf, -inf, std::nan(""), 0.0, -1.0, 61.0, 1e300}) {
    expect_error([&] { convt::fma_peak_gflops(seconds); }, "fma_peak_gflops: seconds (");
  }
  EXPECT_GT(convt::fma_peak_gflops(0.01), 0.0);
}

}  // namespace
