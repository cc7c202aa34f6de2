// Threads: every kernel gives bitwise the same result with 1 and 2 OpenMP threads, and several
// std::threads calling the kernels at once each get the serial result.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "convt/convt.hpp"
#include "test_util.hpp"

namespace {

using test_util::count;

using convt::ConvGeometry;
using convt::ConvOptions;
using convt::Shape;

// Restores the OpenMP thread count in use when the test started.
class ThreadCountGuard {
 public:
  ThreadCountGuard() : saved_(convt::get_num_threads()) {}
  ~ThreadCountGuard() { convt::set_num_threads(saved_); }
  ThreadCountGuard(const ThreadCountGuard&) = delete;
  ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

 private:
  int saved_;
};

struct Problem {
  std::string name;
  ConvGeometry g;
};

ConvOptions make_options(Shape stride, Shape padding, convt::index_t groups = 1,
                         Shape output_padding = {0}) {
  ConvOptions o;
  o.stride = std::move(stride);
  o.padding = std::move(padding);
  o.groups = groups;
  o.output_padding = std::move(output_padding);
  return o;
}

ConvOptions with_mode(ConvOptions o, convt::PaddingMode mode) {
  o.padding_mode = mode;
  return o;
}

// Problems large enough to start threads: one big sample (threads inside the GEMM and the
// lowering), many small samples, a transposed layer, a 3-D one, a pointwise one, and depthwise
// layers (which run without lowering), and padding that holds values (a padded copy, and a fold
// of the ring for the adjoint).
std::vector<Problem> problems() {
  // Each has about ten million multiply-adds per kernel, well above the few million below which
  // convt keeps to one thread.
  return {
      {"one large sample",
       ConvGeometry::convolution(2, {1, 32, 40, 40}, {32, 32, 3, 3}, make_options({1}, {1}))},
      {"many small samples",
       ConvGeometry::convolution(2, {128, 4, 14, 14}, {16, 4, 3, 3}, make_options({1}, {0}))},
      {"grouped transposed",
       ConvGeometry::transposed(2, {8, 32, 24, 24}, {32, 8, 4, 4}, make_options({2}, {1}, 2, {1}))},
      {"3-d", ConvGeometry::convolution(3, {4, 8, 12, 10, 11}, {24, 8, 3, 2, 3},
                                        make_options({1, 2, 1}, {1, 0, 1}))},
      {"1x1", ConvGeometry::convolution(1, {4, 64, 1000}, {96, 64, 1}, make_options({1}, {0}))},
      {"depthwise",
       ConvGeometry::convolution(2, {8, 32, 66, 66}, {32, 1, 3, 3}, make_options({1}, {1}, 32))},
      {"depthwise transposed", ConvGeometry::transposed(2, {8, 32, 64, 64}, {32, 1, 3, 3},
                                                        make_options({2}, {1}, 32, {1}))},
      {"reflect",
       ConvGeometry::convolution(2, {2, 32, 40, 40}, {32, 32, 3, 3},
                                 with_mode(make_options({1}, {2}), convt::PaddingMode::reflect))},
      {"circular transposed", ConvGeometry::transposed(2, {8, 32, 24, 24}, {32, 8, 4, 4},
                                                       with_mode(make_options({2}, {1}, 2, {1}),
                                                                 convt::PaddingMode::circular))},
  };
}

// Everything a layer computes: its output (with bias) and its three gradients, concatenated.
template <class T>
std::vector<T> run_layer(const ConvGeometry& g) {
  std::mt19937 rng(31);
  const auto input = test_util::random_vector<T>(rng, count(g.input_shape()));
  const auto weight = test_util::random_vector<T>(rng, count(g.weight_shape()));
  const auto bias = test_util::random_vector<T>(rng, g.output_channels());
  const auto grad_output = test_util::random_vector<T>(rng, count(g.output_shape()));
  std::vector<T> output(static_cast<std::size_t>(count(g.output_shape())));
  std::vector<T> grad_input(input.size()), grad_weight(weight.size()), grad_bias(bias.size());
  convt::forward(g, input.data(), weight.data(), bias.data(), output.data());
  convt::backward(g, grad_output.data(), input.data(), weight.data(), grad_input.data(),
                  grad_weight.data(), grad_bias.data());
  std::vector<T> all = output;
  all.insert(all.end(), grad_input.begin(), grad_input.end());
  all.insert(all.end(), grad_weight.begin(), grad_weight.end());
  all.insert(all.end(), grad_bias.begin(), grad_bias.end());
  return all;
}

template <class T>
class Threads : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Threads, Types);

TYPED_TEST(Threads, OneAndTwoOpenMPThreadsGiveBitwiseEqualResults) {
  const ThreadCountGuard guard;
  for (const Problem& problem : problems()) {
    SCOPED_TRACE(problem.name);
    convt::set_num_threads(1);
    const std::vector<TypeParam> serial = run_layer<TypeParam>(problem.g);
    convt::set_num_threads(2);
    const std::vector<TypeParam> parallel = run_layer<TypeParam>(problem.g);
    EXPECT_TRUE(test_util::bitwise_equal(serial, parallel));
  }
}

TYPED_TEST(Threads, ConcurrentCallersGetTheSerialResults) {
  const ThreadCountGuard guard;
  const std::vector<Problem> all = problems();
  convt::set_num_threads(1);
  std::vector<std::vector<TypeParam>> expected;
  for (const Problem& problem : all) expected.push_back(run_layer<TypeParam>(problem.g));

  // Each caller runs every problem, starting at a different one, twice, with two OpenMP threads
  // of its own.
  convt::set_num_threads(2);
  constexpr int callers = 4;
  std::vector<std::vector<std::vector<TypeParam>>> results(callers);
  std::vector<std::thread> threads;
  for (int caller = 0; caller < callers; ++caller) {
    threads.emplace_back([&, caller] {
      for (int round = 0; round < 2; ++round) {
        for (std::size_t i = 0; i < all.size(); ++i) {
          const std::size_t which = (i + static_cast<std::size_t>(caller)) % all.size();
          results[caller].push_back(run_layer<TypeParam>(all[which].g));
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  for (int caller = 0; caller < callers; ++caller) {
    ASSERT_EQ(results[caller].size(), 2 * all.size());
    for (std::size_t k = 0; k < results[caller].size(); ++k) {
      const std::size_t which = (k % all.size() + static_cast<std::size_t>(caller)) % all.size();
      EXPECT_TRUE(test_util::bitwise_equal(results[caller][k], expected[which]))
          << "caller " << caller << ", " << all[which].name;
    }
  }
}

TEST(ThreadSettings, SetAndGet) {
  const ThreadCountGuard guard;
  convt::set_num_threads(1);
  EXPECT_EQ(convt::get_num_threads(), 1);
#ifdef _OPENMP
  convt::set_num_threads(2);
  EXPECT_EQ(convt::get_num_threads(), 2);
#endif
  try {
    convt::set_num_threads(0);
    FAIL() << "no exception";
  } catch (const convt::Error& error) {
    EXPECT_STREQ(error.what(), "set_num_threads: threads (0) must be positive");
  }
}

// The thread count is one setting for the whole process, as torch.set_num_threads: threads
// started before or after the call see it.
TEST(ThreadSettings, OneSettingForEveryThread) {
  const ThreadCountGuard guard;
  convt::set_num_threads(1);
  int seen = 0;
  std::thread([&] { seen = convt::get_num_threads(); }).join();
  EXPECT_EQ(seen, 1);
#ifdef _OPENMP
  std::atomic<bool> set{false};
  std::atomic<int> seen_later{0};
  std::thread waiting([&] {
    while (!set.load()) std::this_thread::yield();
    seen_later = convt::get_num_threads();
  });
  convt::set_num_threads(2);
  set = true;
  waiting.join();
  EXPECT_EQ(seen_later.load(), 2);
#endif
}

// Scratch memory belongs to the calling thread: it is kept for the next call and can be given
// back.
TEST(ThreadSettings, WorkspaceIsPerThreadAndReleasable) {
  const ConvGeometry g = problems()[0].g;
  convt::release_workspace();
  EXPECT_EQ(convt::workspace_bytes(), 0u);
  run_layer<float>(g);
  EXPECT_GT(convt::workspace_bytes(), 0u);
  std::size_t other_thread_bytes = 1;
  std::thread([&] { other_thread_bytes = convt::workspace_bytes(); }).join();
  EXPECT_EQ(other_thread_bytes, 0u);
  convt::release_workspace();
  EXPECT_EQ(convt::workspace_bytes(), 0u);
}

// The output pool gives a freed buffer of the same size back, keeps no more than its limit,
// and is safe to use from several threads at once.
TEST(ThreadSettings, OutputPoolReusesBuffersWithinItsLimit) {
  convt::BufferPool pool;
  void* first = pool.take(1000);
  pool.give_back(first, 1000);
  EXPECT_EQ(pool.bytes_held(), 1024u);  // rounded up to whole 64-byte lines
  EXPECT_EQ(pool.take(1000), first);
  EXPECT_EQ(pool.bytes_held(), 0u);
  void* other = pool.take(2000);
  EXPECT_NE(other, first);
  pool.give_back(first, 1000);
  pool.give_back(other, 2000);

  constexpr std::size_t big = convt::BufferPool::max_bytes / 2 + 64;
  void* a = pool.take(big);
  void* b = pool.take(big);
  pool.give_back(a, big);
  pool.give_back(b, big);  // over the limit: freed, not kept
  EXPECT_LE(pool.bytes_held(), convt::BufferPool::max_bytes);
  pool.release();
  EXPECT_EQ(pool.bytes_held(), 0u);

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pool, t] {
      for (int i = 0; i < 1000; ++i) {
        const std::size_t bytes = 64 * static_cast<std::size_t>(1 + (i + t) % 7);
        auto* data = static_cast<unsigned char*>(pool.take(bytes));
        data[0] = data[bytes - 1] = 1;
        pool.give_back(data, bytes);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(pool.bytes_held(), convt::BufferPool::max_bytes);
}

// Buffers of a huge page or more start on a huge page's boundary, so that the kernel can back
// them with huge pages; every buffer is kept in 64-byte lines, not rounded to huge pages.
TEST(ThreadSettings, OutputPoolAlignsLargeBuffersToHugePages) {
  convt::BufferPool pool;
  constexpr std::size_t huge = convt::BufferPool::huge_page;
  void* large = pool.take(huge + 100);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(large) % huge, 0u);
  static_cast<unsigned char*>(large)[huge + 99] = 1;
  pool.give_back(large, huge + 100);
  EXPECT_EQ(pool.bytes_held(), huge + 128);
  EXPECT_EQ(pool.take(huge + 100), large);
  pool.give_back(large, huge + 100);
  void* small = pool.take(huge - 64);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(small) % convt::BufferPool::alignment, 0u);
  pool.give_back(small, huge - 64);
  EXPECT_EQ(pool.bytes_held(), 2 * huge + 64);
  pool.release();
}

}  // namespace
