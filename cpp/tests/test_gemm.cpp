// convt::gemm against a naive triple loop, for every instruction set this CPU supports: plain and
// transposed operands, accumulate on and off, sizes that end in partial register tiles and that
// cross the cache blocks, and k == 0; the cache sizes it reads and the blocking it derives from
// them; the instruction set's selection.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "convt/convt.hpp"
#include "test_util.hpp"

namespace {

using convt::index_t;

// Restores the instruction set in use when the test started.
class IsaGuard {
 public:
  IsaGuard() : saved_(convt::get_isa()) {}
  ~IsaGuard() { convt::set_isa(saved_); }
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;

 private:
  convt::Isa saved_;
};

struct Size {
  index_t m, n, k;
};

// A (m x k) and B (k x n) stored either row-major or as the transpose of a row-major matrix.
template <class T>
struct Operands {
  std::vector<T> a, b;
  convt::MatrixOperand<T> a_operand, b_operand;
};

template <class T>
Operands<T> make_operands(std::mt19937& rng, Size s, bool transpose_a, bool transpose_b) {
  Operands<T> o;
  o.a = test_util::random_vector<T>(rng, s.m * s.k);
  o.b = test_util::random_vector<T>(rng, s.k * s.n);
  // A transposed operand of shape (m x k) is the row-major (k x m) matrix read with swapped
  // strides.
  o.a_operand = transpose_a ? convt::row_major(o.a.data(), s.m).transposed()
                            : convt::row_major(o.a.data(), s.k);
  o.b_operand = transpose_b ? convt::row_major(o.b.data(), s.k).transposed()
                            : convt::row_major(o.b.data(), s.n);
  return o;
}

// C (with leading dimension ldc >= n) = C0 * accumulate + A . B, in double, and the sum of the
// absolute values of the terms for the tolerance.
template <class T>
void naive_gemm(Size s, convt::MatrixOperand<T> a, convt::MatrixOperand<T> b,
                const std::vector<T>& c0, index_t ldc, bool accumulate,
                std::vector<double>& expected, std::vector<double>& magnitude) {
  expected.assign(c0.begin(), c0.end());
  magnitude.assign(c0.size(), 0.0);
  for (index_t i = 0; i < s.m; ++i) {
    for (index_t j = 0; j < s.n; ++j) {
      double sum = accumulate ? static_cast<double>(c0[i * ldc + j]) : 0.0;
      double size = std::abs(sum);
      for (index_t p = 0; p < s.k; ++p) {
        sum += static_cast<double>(a(i, p)) * static_cast<double>(b(p, j));
        size += std::abs(static_cast<double>(a(i, p)) * static_cast<double>(b(p, j)));
      }
      expected[i * ldc + j] = sum;
      magnitude[i * ldc + j] = size;
    }
  }
}

std::string describe(Size s, bool ta, bool tb, bool accumulate, index_t ldc) {
  return std::string(convt::isa_name(convt::get_isa())) + " m=" + std::to_string(s.m) +
         " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) + " ldc=" + std::to_string(ldc) +
         (ta ? " A^T" : "") + (tb ? " B^T" : "") + (accumulate ? " accumulate" : "");
}

template <class T>
void check_gemm(std::mt19937& rng, Size s, bool ta, bool tb, bool accumulate, index_t ldc) {
  SCOPED_TRACE(describe(s, ta, tb, accumulate, ldc));
  const Operands<T> o = make_operands<T>(rng, s, ta, tb);
  // Columns past n in each row of C belong to someone else and must not change.
  std::vector<T> c = test_util::random_vector<T>(rng, s.m * ldc);
  std::vector<double> expected, magnitude;
  naive_gemm(s, o.a_operand, o.b_operand, c, ldc, accumulate, expected, magnitude);
  convt::gemm<T>(s.m, s.n, s.k, o.a_operand, o.b_operand, c.data(), ldc, accumulate);
  ASSERT_TRUE(test_util::all_close(c.data(), expected, magnitude));
}

template <class T>
class Gemm : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Gemm, Types);

TYPED_TEST(Gemm, SupportedIsasIncludePortable) {
  const std::vector<convt::Isa> isas = convt::supported_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), convt::Isa::portable);
  EXPECT_TRUE(convt::isa_supported(convt::get_isa()));
#if defined(__aarch64__)
  // So that the tests which run every supported instruction set cover the NEON kernels.
  EXPECT_EQ(isas.back(), convt::Isa::neon);
#endif
}

// Every combination of transposition and accumulation on sizes around the register tiles
// (4, 6 and 12 rows; 8 to 32 columns).
TYPED_TEST(Gemm, MatchesNaiveLoopOnSmallAndEdgeSizes) {
  const IsaGuard guard;
  std::mt19937 rng(11);
  const std::vector<Size> sizes{{1, 1, 1},  {1, 17, 3},  {5, 1, 4},   {4, 8, 2},   {6, 16, 5},
                                {7, 9, 13}, {12, 32, 8}, {13, 33, 7}, {25, 65, 31}};
  for (convt::Isa isa : convt::supported_isas()) {
    convt::set_isa(isa);
    for (const Size& s : sizes) {
      for (int flags = 0; flags < 8; ++flags) {
        const bool ta = flags & 1, tb = flags & 2, accumulate = flags & 4;
        check_gemm<TypeParam>(rng, s, ta, tb, accumulate, s.n);
      }
      check_gemm<TypeParam>(rng, s, false, false, true, s.n + 3);  // C inside a wider matrix
    }
  }
}

// Sizes past each cache block in use (ctest also runs this binary with small blocks forced
// through CONVT_GEMM_BLOCKING, where every size below crosses several).
TYPED_TEST(Gemm, MatchesNaiveLoopAcrossCacheBlocks) {
  const IsaGuard guard;
  std::mt19937 rng(12);
  for (convt::Isa isa : convt::supported_isas()) {
    convt::set_isa(isa);
    const convt::Blocking blocks = convt::gemm_config<TypeParam>().blocking;
    const index_t depth = blocks.depth, rows = blocks.rows;
    check_gemm<TypeParam>(rng, {9, 21, depth + 44}, false, false, false, 21);
    check_gemm<TypeParam>(rng, {9, 21, 2 * depth + 1}, true, true, true, 24);
    check_gemm<TypeParam>(rng, {rows + 7, 19, 11}, false, true, false, 19);
    check_gemm<TypeParam>(rng, {rows + 20, 40, depth + 4}, true, false, true, 40);
  }
  convt::set_isa(convt::supported_isas().back());
  const index_t cols = convt::gemm_config<TypeParam>().blocking.cols;
  check_gemm<TypeParam>(rng, {3, cols + 4, 5}, false, false, false, cols + 4);
  check_gemm<TypeParam>(rng, {7, cols + 3, 270}, false, true, true, cols + 5);
}

// Each element of C is summed in one order whatever the number of threads, whether the threads
// split C by columns (a wide C) or by rows (C one register tile wide).
TYPED_TEST(Gemm, OneAndTwoThreadsGiveBitwiseEqualResults) {
  using T = TypeParam;
  const IsaGuard guard;
  const int saved_threads = convt::get_num_threads();
  std::mt19937 rng(14);
  for (convt::Isa isa : convt::supported_isas()) {
    convt::set_isa(isa);
    for (const Size s : {Size{40, 700, 300}, Size{700, 4, 2000}}) {
      SCOPED_TRACE(describe(s, false, false, false, s.n));
      const Operands<T> o = make_operands<T>(rng, s, false, true);
      std::vector<std::vector<T>> results;
      for (int threads : {1, 2}) {
        convt::set_num_threads(threads);
        std::vector<T> c(static_cast<std::size_t>(s.m * s.n));
        convt::gemm<T>(s.m, s.n, s.k, o.a_operand, o.b_operand, c.data(), s.n, false);
        results.push_back(c);
      }
      EXPECT_EQ(results[0], results[1]);
    }
  }
  convt::set_num_threads(saved_threads);
}

// A GEMM with few rows of A reads B's slivers in place, one with more packs them: the rows the
// two share come out with the same bits, and right, whether B is a matrix or a row table (whose
// limits differ).
TYPED_TEST(Gemm, BReadInPlaceOrPackedGivesTheSameBits) {
  using T = TypeParam;
  const IsaGuard guard;
  const int saved_threads = convt::get_num_threads();
  convt::set_num_threads(1);  // so that no thread's band of rows falls below the limit
  std::mt19937 rng(15);
  for (convt::Isa isa : convt::supported_isas()) {
    convt::set_isa(isa);
    const convt::detail::TileSize tile = convt::detail::tile_size<T>(isa);
    const index_t few_matrix = convt::detail::max_in_place_rows(tile, false);
    const index_t few_table = convt::detail::max_in_place_rows(tile, true);
    ASSERT_GE(few_matrix, 1);
    ASSERT_GE(few_table, few_matrix);
    const Size s{few_table + 5, 101, 37};
    SCOPED_TRACE(describe(s, false, false, false, s.n));
    const Operands<T> o = make_operands<T>(rng, s, false, false);
    std::vector<const T*> rows(static_cast<std::size_t>(s.k));
    for (index_t p = 0; p < s.k; ++p) rows[p] = o.b_operand.at(p, 0);
    const convt::RowTable<T> table{rows.data(), 0, false};
    std::vector<double> expected, magnitude;
    std::vector<T> zeros(static_cast<std::size_t>(s.m * s.n));
    naive_gemm(s, o.a_operand, o.b_operand, zeros, s.n, false, expected, magnitude);
    auto product = [&](index_t m, auto b) {
      std::vector<T> c(static_cast<std::size_t>(s.m * s.n));
      convt::gemm<T>(m, s.n, s.k, o.a_operand, b, c.data(), s.n, false);
      return c;
    };
    for (const auto& packed : {product(s.m, o.b_operand), product(s.m, table)}) {
      ASSERT_TRUE(test_util::all_close(packed.data(), expected, magnitude));
      const std::vector<T> matrix_in_place = product(few_matrix, o.b_operand);
      const std::vector<T> table_in_place = product(few_table, table);
      EXPECT_TRUE(std::equal(matrix_in_place.begin(), matrix_in_place.begin() + few_matrix * s.n,
                             packed.begin()));
      EXPECT_TRUE(std::equal(table_in_place.begin(), table_in_place.begin() + few_table * s.n,
                             packed.begin()));
    }
  }
  convt::set_num_threads(saved_threads);
}

// An empty sum: C = 0 without accumulation, C unchanged with it; an empty C is not touched.
TYPED_TEST(Gemm, EmptyDepthAndEmptyResult) {
  using T = TypeParam;
  const IsaGuard guard;
  for (convt::Isa isa : convt::supported_isas()) {
    convt::set_isa(isa);
    const T a = 0, b = 0;
    std::vector<T> c{1, 2, 3, 4, 5, 6, 7, 8, 9};  // a 2 x 3 block with ldc = 4, then a sentinel
    convt::gemm<T>(2, 3, 0, convt::row_major(&a, 0), convt::row_major(&b, 3), c.data(), 4, true);
    EXPECT_EQ(c, (std::vector<T>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
    convt::gemm<T>(2, 3, 0, convt::row_major(&a, 0), convt::row_major(&b, 3), c.data(), 4, false);
    EXPECT_EQ(c, (std::vector<T>{0, 0, 0, 4, 0, 0, 0, 8, 9}));
    convt::gemm<T>(0, 3, 5, convt::row_major(&a, 5), convt::row_major(&b, 3), c.data(), 4, false);
    convt::gemm<T>(2, 0, 5, convt::row_major(&a, 5), convt::row_major(&b, 0), c.data(), 4, false);
    EXPECT_EQ(c, (std::vector<T>{0, 0, 0, 4, 0, 0, 0, 8, 9}));
  }
}

// An A packed once (a layer's weight) gives the GEMM of A itself, whether A's rows or its
// columns are contiguous or neither: a depth long enough that a few slivers fill half the L2,
// so the packing takes several blocks, a last sliver with rows missing, and enough elements
// that two threads pack it.
TYPED_TEST(Gemm, PackedOnceMatchesNaiveLoopForEveryLayoutOfA) {
  using T = TypeParam;
  const IsaGuard guard;
  std::mt19937 rng(14);
  const Size s{1001, 7, 4096};
  const auto values = test_util::random_vector<T>(rng, 2 * s.m * s.k);
  const auto b = test_util::random_vector<T>(rng, s.k * s.n);
  const convt::MatrixOperand<T> layouts[] = {
      convt::row_major(values.data(), s.k),               // rows contiguous
      convt::row_major(values.data(), s.m).transposed(),  // columns contiguous
      {values.data(), 1, 2 * s.m},                        // columns contiguous, 2m apart
      {values.data(), 2 * s.k, 1},                        // rows contiguous, 2k apart
      {values.data(), 2, 2 * s.m},                        // neither
  };

  std::vector<double> expected, magnitude;
  for (convt::Isa isa : convt::supported_isas()) {
    convt::set_isa(isa);
    for (const convt::MatrixOperand<T>& a : layouts) {
      SCOPED_TRACE(std::string(convt::isa_name(isa)) + " A strides " +
                   std::to_string(a.row_stride) + ", " + std::to_string(a.col_stride));
      std::vector<T> packed(static_cast<std::size_t>(convt::packed_size(s.m, s.k, isa)));
      const convt::PackedA<T> packed_a = convt::pack_for_gemm<T>(s.m, s.k, a, packed.data(), isa);
      std::vector<T> c(static_cast<std::size_t>(s.m * s.n));
      naive_gemm(s, a, convt::row_major(b.data(), s.n), c, s.n, false, expected, magnitude);
      convt::gemm<T>(s.m, s.n, s.k, packed_a, convt::row_major(b.data(), s.n), c.data(), s.n,
                     false);
      ASSERT_TRUE(test_util::all_close(c.data(), expected, magnitude));
    }
  }
}

// Each instruction set computes the same convolution (the kernels above the GEMM do not depend
// on it).
TYPED_TEST(Gemm, KernelsAgreeAcrossIsas) {
  using T = TypeParam;
  const IsaGuard guard;
  std::mt19937 rng(13);
  const convt::Shape input{2, 6, 11, 9}, weight{8, 3, 3, 2};
  convt::ConvOptions options;
  options.groups = 2;
  options.stride = {2, 1};
  options.padding = {1, 0};
  const convt::ConvGeometry g = convt::ConvGeometry::convolution(2, input, weight, options);
  const auto x = test_util::random_vector<T>(rng, 2 * 6 * 11 * 9);
  const auto w = test_util::random_vector<T>(rng, 8 * 3 * 3 * 2);
  const index_t y_count = 2 * 8 * g.y_spatial();
  std::vector<T> first(static_cast<std::size_t>(y_count));
  convt::set_isa(convt::Isa::portable);
  convt::conv_forward(g, x.data(), w.data(), first.data());
  for (convt::Isa isa : convt::supported_isas()) {
    convt::set_isa(isa);
    std::vector<T> y(static_cast<std::size_t>(y_count));
    convt::conv_forward(g, x.data(), w.data(), y.data());
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(y[i], first[i], test_util::tolerance<T>() * 20) << convt::isa_name(isa);
    }
  }
}

// CONVT_ISA in the environment picks the instruction set, and a value that names none is an
// error naming the variable and the value. ctest runs this test once more with
// CONVT_ISA=portable (with the whole binary) and once with CONVT_ISA=bogus.
TEST(Isa, EnvironmentVariableForcesOne) {
  const char* forced = std::getenv("CONVT_ISA");
  if (forced == nullptr || *forced == '\0') {
    EXPECT_EQ(convt::get_isa(), convt::supported_isas().back()) << "the best one by default";
    return;
  }
  const std::string value = forced;
  if (value == "portable" || value == "avx2" || value == "avx512" || value == "neon") {
    if (convt::isa_supported(convt::parse_isa(value))) {
      EXPECT_EQ(convt::get_isa(), convt::parse_isa(value));
      return;
    }
  }
  try {
    convt::get_isa();
    FAIL() << "CONVT_ISA=" << value << " was accepted";
  } catch (const convt::Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("CONVT_ISA"), std::string::npos) << message;
    EXPECT_NE(message.find(value), std::string::npos) << message;
  }
}

TEST(Isa, NamesParseAndUnknownNamesThrow) {
  for (convt::Isa isa : convt::all_isas) EXPECT_EQ(convt::parse_isa(convt::isa_name(isa)), isa);
  try {
    convt::parse_isa("sse9");
    FAIL() << "parse_isa accepted 'sse9'";
  } catch (const convt::Error& error) {
    EXPECT_NE(std::string(error.what()).find("'sse9'"), std::string::npos) << error.what();
  }
  for (convt::Isa isa : convt::all_isas) {
    if (!convt::isa_supported(isa)) {
      EXPECT_THROW(convt::set_isa(isa), convt::Error);
    }
  }
}

// Expects call() to throw a convt::Error naming the environment variable and quoting its value.
template <class Call>
void expect_rejected(const std::string& variable, const std::string& value, Call&& call) {
  try {
    call();
    ADD_FAILURE() << variable << "=" << value << " was accepted";
  } catch (const convt::Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(variable), std::string::npos) << message;
    EXPECT_NE(message.find("'" + value + "'"), std::string::npos) << message;
  }
}

namespace caches {

using convt::CacheSizes;
using convt::detail::parse_cache_size;

constexpr std::int64_t KiB = 1 << 10, MiB = 1 << 20;

TEST(Caches, SizesParseAsSysfsAndPeopleWriteThem) {
  EXPECT_EQ(parse_cache_size("48K"), 48 * KiB);
  EXPECT_EQ(parse_cache_size("1024K"), MiB);
  EXPECT_EQ(parse_cache_size("32M"), 32 * MiB);
  EXPECT_EQ(parse_cache_size("32MiB"), 32 * MiB);
  EXPECT_EQ(parse_cache_size("512kb"), 512 * KiB);
  EXPECT_EQ(parse_cache_size("1G"), 1024 * MiB);
  EXPECT_EQ(parse_cache_size("65536"), 64 * KiB);
  for (const char* bad : {"", "K", "12Q", "-4K", "1.5M", "99999999999999K"}) {
    EXPECT_EQ(parse_cache_size(bad), -1) << bad;
  }
}

// A directory laid out as Linux's /sys/devices/system/cpu/cpu0, removed at the end of the test.
class FakeCpu {
 public:
  explicit FakeCpu(const std::string& name) : root_(testing::TempDir() + "convt-" + name) {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  ~FakeCpu() { std::filesystem::remove_all(root_); }
  FakeCpu(const FakeCpu&) = delete;
  FakeCpu& operator=(const FakeCpu&) = delete;

  void add(int index, const std::string& level, const std::string& type, const std::string& size,
           int ways = 0) {
    const std::string dir = root_ + "/cache/index" + std::to_string(index);
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/level") << level << "\n";
    std::ofstream(dir + "/type") << type << "\n";
    std::ofstream(dir + "/size") << size << "\n";
    if (ways > 0) std::ofstream(dir + "/ways_of_associativity") << ways << "\n";
  }
  const std::string& path() const { return root_; }

 private:
  std::string root_;
};

TEST(Caches, ReadFromSysfs) {
  FakeCpu zen3("zen3");
  zen3.add(0, "1", "Data", "32K");
  zen3.add(1, "1", "Instruction", "32K");
  zen3.add(2, "2", "Unified", "512K", 8);
  zen3.add(3, "3", "Unified", "32768K", 16);
  const CacheSizes caches = convt::detail::caches_from_sysfs(zen3.path());
  EXPECT_EQ(caches.l1d, 32 * KiB);
  EXPECT_EQ(caches.l2, 512 * KiB);
  EXPECT_EQ(caches.l2_ways, 8);
  EXPECT_EQ(caches.l3, 32 * MiB);
  EXPECT_EQ(caches.source, "sysfs");

  // Many Arm cores have no L3; a machine may describe no caches at all.
  FakeCpu arm("arm");
  arm.add(0, "1", "Data", "64K");
  arm.add(1, "1", "Instruction", "64K");
  arm.add(2, "2", "Unified", "1024K");
  const CacheSizes no_l3 = convt::detail::caches_from_sysfs(arm.path());
  EXPECT_EQ(no_l3.l1d, 64 * KiB);
  EXPECT_EQ(no_l3.l2, MiB);
  EXPECT_EQ(no_l3.l3, 0);
  EXPECT_EQ(no_l3.l2_ways, 0);
  FakeCpu empty("empty");
  const CacheSizes nothing = convt::detail::caches_from_sysfs(empty.path());
  EXPECT_EQ(nothing.l1d, 0);
  EXPECT_EQ(nothing.l2, 0);
}

// This machine's caches: whatever the source, sizes the blocking can use.
TEST(Caches, ThisMachineHasUsableSizes) {
  const CacheSizes& caches = convt::cache_sizes();
  EXPECT_GE(caches.l1d, 4 * KiB) << caches.source;
  EXPECT_GE(caches.l2, caches.l1d) << caches.source;
  EXPECT_GE(caches.l3, 0) << caches.source;
  EXPECT_FALSE(caches.source.empty());
  const char* forced = std::getenv("CONVT_CACHE_SIZES");
  if (forced != nullptr && *forced != '\0') {
    EXPECT_NE(caches.source.find("CONVT_CACHE_SIZES"), std::string::npos) << caches.source;
    EXPECT_EQ(caches.l2, convt::detail::override_caches(caches, forced).l2);
  }
}

TEST(Caches, EnvironmentOverridesSomeOrAll) {
  const CacheSizes zen5{48 * KiB, MiB, 32 * MiB, 16, "sysfs"};
  const CacheSizes zen3 = convt::detail::override_caches(zen5, "l1d=32K,l2=512K");
  EXPECT_EQ(zen3.l1d, 32 * KiB);
  EXPECT_EQ(zen3.l2, 512 * KiB);
  EXPECT_EQ(zen3.l3, 32 * MiB);
  EXPECT_EQ(zen3.source, "sysfs + CONVT_CACHE_SIZES");
  EXPECT_EQ(zen3.l2_ways, 16);
  EXPECT_EQ(convt::detail::override_caches(zen5, "l3=0").l3, 0);
  EXPECT_EQ(convt::detail::override_caches(zen5, "l2_ways=8").l2_ways, 8);
  for (const char* bad :
       {"l1d", "l1d=", "l1d=0", "l4=1M", "l2=1M,", "l2=big", "L2=1M", "l2_ways=0", "l2_ways=8K"}) {
    expect_rejected("CONVT_CACHE_SIZES", bad, [&] { convt::detail::override_caches(zen5, bad); });
  }
}

}  // namespace caches

namespace blocking {

using caches::KiB;
using caches::MiB;
using convt::Blocking;
using convt::CacheSizes;
using convt::derive_blocking;

void expect_blocking(const Blocking& actual, const Blocking& expected) {
  EXPECT_EQ(actual.depth, expected.depth);
  EXPECT_EQ(actual.rows, expected.rows);
  EXPECT_EQ(actual.cols, expected.cols);
}

// The blocking float32 AVX-512 derives on the CPU where it was measured, a Zen 5 core (48 KiB
// L1d, 1 MiB 16-way L2, 32 MiB L3): 256 deep, 480 rows (the fastest of 240 to 720 there, with
// 512 as fast) and about 4096 columns, which is the blocking that measured best there.
TEST(Blocking, Zen5Avx512IsTheOneMeasuredBestThere) {
  const CacheSizes zen5{48 * KiB, MiB, 32 * MiB, 16, "test"};
  expect_blocking(derive_blocking(zen5, 8, 48, 4), {256, 480, 4080});
}

// A Zen 3 core (32 KiB L1d, 512 KiB 8-way L2): AVX2's A block must leave room in the L2, where
// 480 rows of 256 (all of it) did not.
TEST(Blocking, Zen3Avx2KeepsTheABlockWithinHalfTheL2) {
  const CacheSizes zen3{32 * KiB, 512 * KiB, 32 * MiB, 8, "test"};
  const Blocking f32 = derive_blocking(zen3, 6, 16, 4);
  expect_blocking(f32, {256, 222, 4096});
  EXPECT_LE(f32.rows * f32.depth * 4, 256 * KiB);
  const Blocking f64 = derive_blocking(zen3, 6, 8, 8);
  EXPECT_LE(f64.rows * f64.depth * 8, 256 * KiB);
}

// For any CPU: whole tiles, at most the deepest panel, a B sliver within L1, an A block within
// half the L2, and never less than one tile, however small the caches.
TEST(Blocking, FitsTheCachesOfEveryCpu) {
  const std::vector<CacheSizes> cpus{
      {48 * KiB, MiB, 32 * MiB, 16, "Zen 5"},
      {32 * KiB, 512 * KiB, 32 * MiB, 8, "Zen 3"},
      {32 * KiB, 256 * KiB, 8 * MiB, 4, "Skylake client"},
      {48 * KiB, 2 * MiB, 36 * MiB, 16, "Sapphire Rapids"},
      {64 * KiB, MiB, 32 * MiB, 8, "Neoverse N1"},
      {128 * KiB, 12 * MiB, 0, 12, "Apple M1, no L3"},
      {32 * KiB, 512 * KiB, 8 * MiB, 0, "associativity unknown"},
      {4 * KiB, 16 * KiB, 0, 2, "tiny"},
      convt::detail::fallback_caches(),
  };
  const struct {
    int rows, cols, bytes;
  } tiles[] = {{8, 48, 4}, {8, 24, 8}, {6, 16, 4}, {6, 8, 8}, {8, 12, 4}, {8, 6, 8}, {4, 8, 4}};
  for (const CacheSizes& cpu : cpus) {
    for (const auto& tile : tiles) {
      SCOPED_TRACE(cpu.source + ", tile " + std::to_string(tile.rows) + " x " +
                   std::to_string(tile.cols) + " of " + std::to_string(tile.bytes) + " bytes");
      const Blocking b = derive_blocking(cpu, tile.rows, tile.cols, tile.bytes);
      EXPECT_GE(b.depth, 8);
      EXPECT_LE(b.depth, convt::max_gemm_depth);
      EXPECT_EQ(b.depth % 8, 0);
      EXPECT_GE(b.rows, tile.rows);
      EXPECT_EQ(b.rows % tile.rows, 0);
      EXPECT_GE(b.cols, tile.cols);
      EXPECT_EQ(b.cols % tile.cols, 0);
      if (b.depth > 8) {
        EXPECT_LE(b.depth * tile.cols * tile.bytes, cpu.l1d);
      }
      if (b.rows > tile.rows) {
        EXPECT_LE(b.rows * b.depth * tile.bytes, cpu.l2 / 2);
      }
      if (b.cols > tile.cols) {
        EXPECT_LE(b.cols * b.depth * tile.bytes, cpu.l3 > 0 ? cpu.l3 / 8 : cpu.l2 / 2);
      }
      // Larger caches never give smaller blocks.
      CacheSizes larger = cpu;
      larger.l1d *= 2;
      larger.l2 *= 2;
      larger.l3 *= 2;
      const Blocking bigger = derive_blocking(larger, tile.rows, tile.cols, tile.bytes);
      EXPECT_GE(bigger.depth, b.depth);
      EXPECT_GE(bigger.rows * bigger.depth, b.rows * b.depth);
      EXPECT_GE(bigger.cols * bigger.depth, b.cols * b.depth);
    }
  }
}

// What the GEMM uses is derived from this machine's caches, unless CONVT_GEMM_BLOCKING (which
// ctest sets for one run of this binary) says otherwise.
TYPED_TEST(Gemm, BlockingInUseIsDerivedFromTheCaches) {
  for (convt::Isa isa : convt::supported_isas()) {
    SCOPED_TRACE(convt::isa_name(isa));
    const convt::GemmConfig config = convt::gemm_config<TypeParam>(isa);
    EXPECT_EQ(config.isa, isa);
    EXPECT_EQ(config.caches.l2, convt::cache_sizes().l2);
    EXPECT_EQ(config.tile_rows, convt::detail::tile_rows(isa));
    Blocking expected = derive_blocking(convt::cache_sizes(), config.tile_rows, config.tile_cols,
                                        int{sizeof(TypeParam)});
    const char* forced = std::getenv("CONVT_GEMM_BLOCKING");
    if (forced != nullptr && *forced != '\0') {
      expected = convt::detail::override_blocking(expected,
                                                  convt::detail::tile_size<TypeParam>(isa), forced);
    }
    expect_blocking(config.blocking, expected);
  }
}

TEST(Blocking, EnvironmentOverridesSomeOrAllRoundedToTiles) {
  const Blocking derived{256, 480, 4080};
  const convt::detail::TileSize tile{8, 48, 16};
  expect_blocking(convt::detail::override_blocking(derived, tile, "rows=100"), {256, 104, 4080});
  expect_blocking(convt::detail::override_blocking(derived, tile, "depth=64,cols=1"),
                  {64, 480, 48});
  expect_blocking(convt::detail::override_blocking(derived, tile, "cols=4096,rows=8,depth=256"),
                  {256, 8, 4128});
  for (const char* bad :
       {"rows", "rows=", "rows=0", "depth=257", "depth=-1", "cols=4k", "width=4", "rows=8,"}) {
    expect_rejected("CONVT_GEMM_BLOCKING", bad,
                    [&] { convt::detail::override_blocking(derived, tile, bad); });
  }
}

}  // namespace blocking

}  // namespace
