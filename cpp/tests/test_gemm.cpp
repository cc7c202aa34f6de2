// convt::gemm against a naive triple loop, for every instruction set this CPU supports: plain and
// transposed operands, accumulate on and off, sizes that end in partial register tiles and that
// cross the cache blocks (k > 256, m > 480, n > 4096), and k == 0.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
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

// Sizes past each cache block: the depth (256), the rows (480) and, once, the columns (4096).
TYPED_TEST(Gemm, MatchesNaiveLoopAcrossCacheBlocks) {
  const IsaGuard guard;
  std::mt19937 rng(12);
  for (convt::Isa isa : convt::supported_isas()) {
    convt::set_isa(isa);
    check_gemm<TypeParam>(rng, {9, 21, 300}, false, false, false, 21);
    check_gemm<TypeParam>(rng, {9, 21, 513}, true, true, true, 24);
    check_gemm<TypeParam>(rng, {487, 19, 11}, false, true, false, 19);
    check_gemm<TypeParam>(rng, {500, 40, 260}, true, false, true, 40);
  }
  convt::set_isa(convt::supported_isas().back());
  check_gemm<TypeParam>(rng, {3, 4100, 5}, false, false, false, 4100);
  check_gemm<TypeParam>(rng, {7, 4099, 270}, false, true, true, 4101);
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
  if (value == "portable" || value == "avx2" || value == "avx512") {
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
  for (convt::Isa isa : {convt::Isa::portable, convt::Isa::avx2, convt::Isa::avx512}) {
    EXPECT_EQ(convt::parse_isa(convt::isa_name(isa)), isa);
  }
  try {
    convt::parse_isa("sse9");
    FAIL() << "parse_isa accepted 'sse9'";
  } catch (const convt::Error& error) {
    EXPECT_NE(std::string(error.what()).find("'sse9'"), std::string::npos) << error.what();
  }
  for (convt::Isa isa : {convt::Isa::avx2, convt::Isa::avx512}) {
    if (!convt::isa_supported(isa)) {
      EXPECT_THROW(convt::set_isa(isa), convt::Error);
    }
  }
}

}  // namespace
