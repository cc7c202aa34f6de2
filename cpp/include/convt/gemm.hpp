#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

#include "cpu.hpp"
#include "geometry.hpp"
#include "isa.hpp"
#include "threading.hpp"
#include "workspace.hpp"

#if CONVT_ARM_DISPATCH
#include <arm_neon.h>
#endif

namespace convt {

// A read-only matrix operand: element (i, j) is data[i * row_stride + j * col_stride], so a
// transposed operand is the same memory with its strides swapped.
template <class T>
struct MatrixOperand {
  static constexpr bool packs_itself = false;
  const T* data;
  index_t row_stride;
  index_t col_stride;

  T operator()(index_t i, index_t j) const { return data[i * row_stride + j * col_stride]; }
  MatrixOperand transposed() const { return {data, col_stride, row_stride}; }
  MatrixOperand rows_from(index_t row) const {
    return {data + row * row_stride, row_stride, col_stride};
  }
  MatrixOperand columns_from(index_t col) const {
    return {data + col * col_stride, row_stride, col_stride};
  }

  // How the packing reads it: along rows when they are contiguous, else along columns.
  bool rows_contiguous() const { return col_stride == 1; }
  const T* at(index_t i, index_t j) const { return data + i * row_stride + j * col_stride; }
  index_t column_step() const { return row_stride; }
};

template <class T>
MatrixOperand<T> row_major(const T* data, index_t cols) {
  return {data, cols, 1};
}

// A read-only matrix given by a table of row pointers: element (i, j) is rows[i][offset + j],
// or, transposed, rows[j][offset + i]. The lowered matrix of a stride-1 convolution is one (see
// shifted.hpp): each of its rows is a run of the padded input.
template <class T>
struct RowTable {
  static constexpr bool packs_itself = false;
  const T* const* rows;
  index_t offset;
  bool transposed;

  RowTable columns_from(index_t col) const {
    return transposed ? RowTable{rows + col, offset, true} : RowTable{rows, offset + col, false};
  }
  bool rows_contiguous() const { return !transposed; }
  const T* at(index_t i, index_t j) const {
    return transposed ? rows[j] + offset + i : rows[i] + offset + j;
  }
  index_t column_step() const { return 1; }
};

// The A operand packed once for one instruction set's micro-kernels (pack_for_gemm), so that
// the GEMMs of many blocks share one packing: slivers of the tile's rows, each stored
// [depth][tile rows] and zero-padded past the last row.
template <class T>
struct PackedA {
  const T* data;
  index_t depth;
  Isa isa;

  // `row` is a multiple of the tile's rows.
  PackedA rows_from(index_t row) const { return {data + row * depth, depth, isa}; }
};

namespace detail {

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// Register tile of each instruction set's micro-kernel: ROWS rows of A times VECTORS SIMD
// vectors of BYTES bytes of B's columns. AVX-512's 8 x 3 vectors keeps 24 of its 32 registers
// accumulating and fits layers whose channel counts are multiples of 8 without padding rows.
// NEON also has 32 registers, of 16 bytes: its kernel loads the tile's A values as vectors and
// multiplies by lane, so a step of R x V takes R*V accumulators, V registers of B and R / lanes
// of A, and costs V + R / lanes loads for R*V multiply-adds. Compiled by g++ 12 for aarch64, the
// steps with 32 accumulators (8 x 4, 16 x 2) spill 12 to 16 registers to the stack per step;
// those with 24 (8 x 3, 12 x 2, 6 x 4) spill none, even in float64 where 8 x 3 takes 31
// registers. Of these, 8 x 3 and 12 x 2 make 4.8 multiply-adds per load (6 x 4: 4), and 8 rows
// pad no layer whose channels are a multiple of 8.
// Beside the tile, in_place_rows: the most rows of A for which the GEMM reads the slivers of a
// B matrix in place (gemm_serial says why and how it was measured).
template <Isa ISA>
struct TileOf;
template <>
struct TileOf<Isa::portable> {
  static constexpr int rows = 4, vectors = 2, bytes = 16, in_place_rows = 8 * rows;
};
template <>
struct TileOf<Isa::avx2> {
  static constexpr int rows = 6, vectors = 2, bytes = 32, in_place_rows = rows / 2;
};
template <>
struct TileOf<Isa::avx512> {
  static constexpr int rows = 8, vectors = 3, bytes = 64, in_place_rows = 2 * rows;
};
template <>
struct TileOf<Isa::neon> {
  static constexpr int rows = 8, vectors = 3, bytes = 16, in_place_rows = 8 * rows;
};

// GCC/Clang vector types; the attribute needs a concrete element type, hence one line each.
template <class T, int BYTES>
struct VectorOf;
#define CONVT_VECTOR_TYPE(T, BYTES)                     \
  template <>                                           \
  struct VectorOf<T, BYTES> {                           \
    typedef T type __attribute__((vector_size(BYTES))); \
  };
CONVT_VECTOR_TYPE(float, 16)
CONVT_VECTOR_TYPE(float, 32)
CONVT_VECTOR_TYPE(float, 64)
CONVT_VECTOR_TYPE(double, 16)
CONVT_VECTOR_TYPE(double, 32)
CONVT_VECTOR_TYPE(double, 64)
#undef CONVT_VECTOR_TYPE

// Where the micro-kernel reads row p of its B sliver: packed, at b + p * tile columns, or in
// place, at rows[p] + offset (a RowTable's full sliver, which then needs no packing).
template <class T>
struct PackedSliver {
  const T* b;
  const T* row(index_t p, int tile_cols) const { return b + p * tile_cols; }
};

template <class T>
struct SliverInPlace {
  const T* const* rows;
  index_t offset;
  const T* row(index_t p, int) const { return rows[p] + offset; }
};

// One step of the register tile: sum[r][v] += a[r] * b_row[v], each A value broadcast from
// memory (AVX-512's multiply-add takes it as its memory operand).
template <int ROWS, int VECTORS, class T, class Vector>
__attribute__((always_inline)) inline void broadcast_step(Vector (&sum)[ROWS][VECTORS], const T* a,
                                                          const Vector (&b_row)[VECTORS]) {
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) {
    // Subtracting +0 is exact for every value, so the compiler folds it and broadcasts a[r]
    // straight from memory; adding +0 does not fold (-0 + 0 is +0) and costs a scalar addition
    // and a register broadcast per row.
    const Vector a_value = a[r] - Vector{};
#pragma GCC unroll 4
    for (int v = 0; v < VECTORS; ++v) sum[r][v] += a_value * b_row[v];
  }
}

#if CONVT_ARM_DISPATCH
// NEON: the tile's A values in ROWS / lanes vector loads, each multiplied into B by lane (fmla by
// element). The lane is a template argument because the instruction encodes it.
inline float32x4_t load_lanes(const float* a) { return vld1q_f32(a); }
inline float64x2_t load_lanes(const double* a) { return vld1q_f64(a); }

template <int LANE>
float32x4_t multiply_add_lane(float32x4_t sum, float32x4_t b, float32x4_t a) {
  return vfmaq_laneq_f32(sum, b, a, LANE);
}
template <int LANE>
float64x2_t multiply_add_lane(float64x2_t sum, float64x2_t b, float64x2_t a) {
  return vfmaq_laneq_f64(sum, b, a, LANE);
}

template <int LANE, int VECTORS, class Vector>
__attribute__((always_inline)) inline void lane_row(Vector (&sum)[VECTORS],
                                                    const Vector (&b_row)[VECTORS], Vector a) {
#pragma GCC unroll 4
  for (int v = 0; v < VECTORS; ++v) sum[v] = multiply_add_lane<LANE>(sum[v], b_row[v], a);
}

template <int ROWS, int VECTORS, class T, class Vector, int... ROW>
__attribute__((always_inline)) inline void lane_step(Vector (&sum)[ROWS][VECTORS], const T* a,
                                                     const Vector (&b_row)[VECTORS],
                                                     std::integer_sequence<int, ROW...>) {
  constexpr int lanes = 16 / static_cast<int>(sizeof(T));
  static_assert(ROWS % lanes == 0, "the tile's rows are whole vectors of A");
  Vector a_values[ROWS / lanes];
#pragma GCC unroll 8
  for (int i = 0; i < ROWS / lanes; ++i) a_values[i] = load_lanes(a + lanes * i);
  (lane_row<ROW % lanes>(sum[ROW], b_row, a_values[ROW / lanes]), ...);
}
#endif

// C[0:rows, 0:cols] (+)= A_sliver . B_sliver over depth `depth`, where the A sliver is packed as
// [depth][Tile::rows] and B's rows are read as `Sliver` says, on the first ROWS of the tile's
// rows and the first VECTORS of its vectors of columns (all of them but at the edges of C, where
// fewer may do). Written once with GCC/Clang vector types; the wrappers below compile it for
// each instruction set.
template <class T, Isa ISA, class Sliver, int ROWS = TileOf<ISA>::rows,
          int VECTORS = TileOf<ISA>::vectors>
__attribute__((always_inline)) inline void micro_kernel_body(index_t depth, const T* a, Sliver b,
                                                             T* c, index_t ldc, index_t rows,
                                                             index_t cols, bool accumulate) {
  constexpr int a_step = TileOf<ISA>::rows;  // an A sliver's stride from one depth to the next
  using Vector = typename VectorOf<T, TileOf<ISA>::bytes>::type;
  constexpr int lanes = TileOf<ISA>::bytes / static_cast<int>(sizeof(T));
  constexpr int sliver_cols = TileOf<ISA>::vectors * lanes;  // a B row's stride in the sliver
  constexpr int tile_cols = VECTORS * lanes;
  Vector sum[ROWS][VECTORS];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < VECTORS; ++v) sum[r][v] = Vector{};
  }
  // The C tile was last touched a whole panel of B ago and has left the L2 by now: fetching it
  // while the multiply-adds run keeps its reads and writes at the end from stalling the core.
  for (index_t r = 0; r < rows; ++r) {
    const char* row = reinterpret_cast<const char*>(c + r * ldc);
    for (index_t byte = 0; byte < cols * index_t{sizeof(T)}; byte += 64) {
      __builtin_prefetch(row + byte, 1, 3);
    }
    __builtin_prefetch(row + cols * index_t{sizeof(T)} - 1, 1, 3);
  }
  for (index_t p = 0; p < depth; ++p) {
    Vector b_row[VECTORS];
    const T* b_p = b.row(p, sliver_cols);
#pragma GCC unroll 4
    for (int v = 0; v < VECTORS; ++v) std::memcpy(&b_row[v], b_p + v * lanes, sizeof(Vector));
#if CONVT_ARM_DISPATCH
    if constexpr (ISA == Isa::neon) {
      lane_step(sum, a + p * a_step, b_row, std::make_integer_sequence<int, ROWS>{});
      continue;
    }
#endif
    broadcast_step(sum, a + p * a_step, b_row);
  }
  if (rows == ROWS && cols == tile_cols) {
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) {
#pragma GCC unroll 4
      for (int v = 0; v < VECTORS; ++v) {
        T* target = c + r * ldc + v * lanes;
        if (accumulate) {
          Vector previous;
          std::memcpy(&previous, target, sizeof(Vector));
          sum[r][v] += previous;
        }
        std::memcpy(target, &sum[r][v], sizeof(Vector));
      }
    }
    return;
  }
  T partial[ROWS][tile_cols];
  std::memcpy(partial, sum, sizeof(partial));
  for (index_t r = 0; r < rows; ++r) {
    for (index_t j = 0; j < cols; ++j) {
      c[r * ldc + j] = (accumulate ? c[r * ldc + j] : T(0)) + partial[r][j];
    }
  }
}

template <class T>
using MicroKernel = void (*)(index_t, const T*, const T*, T*, index_t, index_t, index_t, bool);
template <class T>
using MicroKernelInPlace = void (*)(index_t, const T*, const T* const*, index_t, T*, index_t,
                                    index_t, index_t, bool);

// Packs `width` columns of a transposed operand (whose columns are contiguous): out[q * out_step
// + r] = columns[r][q] for r < width (at most 16) and q < rows, a multiple of width, transposed
// in registers a square at a time. An instruction set without one packs four columns by four
// rows instead.
template <class T>
struct ColumnTransposer {
  void (*transpose)(const T* const* columns, index_t rows, T* out, index_t out_step);
  int width;
};

// One instruction set's micro-kernel for element type T, reading B packed or in place; the
// packed one narrowed to its first one or two vectors of columns; and both on half the tile's
// rows. The tiles at C's edges take the smallest that covers them: a GEMM over 100 columns
// computes 112 on AVX-512 instead of 144, and one of 4 rows (a layer with 4 output channels, or
// 4 a group) computes 4 rows instead of 8.
template <class T>
struct Kernels {
  MicroKernel<T> packed;
  MicroKernelInPlace<T> in_place;
  MicroKernel<T> narrow[2];
  MicroKernel<T> half_rows;
  MicroKernelInPlace<T> half_rows_in_place;
  int rows;         // of the tile
  int vectors;      // of the tile
  int vector_cols;  // columns of a vector
  ColumnTransposer<T> transposer;

  MicroKernel<T> packed_for(index_t tile_rows, index_t cols) const {
    if (2 * tile_rows <= rows) return half_rows;
    const index_t needed = ceil_div(cols, vector_cols);
    return needed < vectors ? narrow[needed - 1] : packed;
  }
  MicroKernelInPlace<T> in_place_for(index_t tile_rows) const {
    return 2 * tile_rows <= rows ? half_rows_in_place : in_place;
  }
};

#define CONVT_MICRO_KERNEL(NAME, TARGET, T, ISA)                                                  \
  TARGET inline void NAME(index_t depth, const T* a, const T* b, T* c, index_t ldc, index_t rows, \
                          index_t cols, bool accumulate) {                                        \
    micro_kernel_body<T, ISA>(depth, a, PackedSliver<T>{b}, c, ldc, rows, cols, accumulate);      \
  }                                                                                               \
  TARGET inline void NAME##_in_place(index_t depth, const T* a, const T* const* b_rows,           \
                                     index_t b_offset, T* c, index_t ldc, index_t rows,           \
                                     index_t cols, bool accumulate) {                             \
    micro_kernel_body<T, ISA>(depth, a, SliverInPlace<T>{b_rows, b_offset}, c, ldc, rows, cols,   \
                              accumulate);                                                        \
  }                                                                                               \
  template <int VECTORS>                                                                          \
  TARGET inline void NAME##_narrow(index_t depth, const T* a, const T* b, T* c, index_t ldc,      \
                                   index_t rows, index_t cols, bool accumulate) {                 \
    micro_kernel_body<T, ISA, PackedSliver<T>, TileOf<ISA>::rows,                                 \
                      std::min(VECTORS, TileOf<ISA>::vectors)>(depth, a, PackedSliver<T>{b}, c,   \
                                                               ldc, rows, cols, accumulate);      \
  }                                                                                               \
  TARGET inline void NAME##_half_rows(index_t depth, const T* a, const T* b, T* c, index_t ldc,   \
                                      index_t rows, index_t cols, bool accumulate) {              \
    micro_kernel_body<T, ISA, PackedSliver<T>, TileOf<ISA>::rows / 2>(                            \
        depth, a, PackedSliver<T>{b}, c, ldc, rows, cols, accumulate);                            \
  }                                                                                               \
  TARGET inline void NAME##_half_rows_in_place(index_t depth, const T* a, const T* const* b_rows, \
                                               index_t b_offset, T* c, index_t ldc, index_t rows, \
                                               index_t cols, bool accumulate) {                   \
    micro_kernel_body<T, ISA, SliverInPlace<T>, TileOf<ISA>::rows / 2>(                           \
        depth, a, SliverInPlace<T>{b_rows, b_offset}, c, ldc, rows, cols, accumulate);            \
  }

// The portable kernels use 16-byte vectors, which every target lowers to SIMD or scalar code.
CONVT_MICRO_KERNEL(micro_kernel_portable_f32, , float, Isa::portable)
CONVT_MICRO_KERNEL(micro_kernel_portable_f64, , double, Isa::portable)
#if CONVT_X86_DISPATCH
CONVT_MICRO_KERNEL(micro_kernel_avx2_f32, CONVT_TARGET_AVX2, float, Isa::avx2)
CONVT_MICRO_KERNEL(micro_kernel_avx2_f64, CONVT_TARGET_AVX2, double, Isa::avx2)
CONVT_MICRO_KERNEL(micro_kernel_avx512_f32, CONVT_TARGET_AVX512, float, Isa::avx512)
CONVT_MICRO_KERNEL(micro_kernel_avx512_f64, CONVT_TARGET_AVX512, double, Isa::avx512)
#endif
#if CONVT_ARM_DISPATCH
CONVT_MICRO_KERNEL(micro_kernel_neon_f32, , float, Isa::neon)
CONVT_MICRO_KERNEL(micro_kernel_neon_f64, , double, Isa::neon)
#endif
#undef CONVT_MICRO_KERNEL

}  // namespace detail

// Cache blocking of the GEMM, in elements: a depth x cols panel of B stays in the L3 cache, a
// rows x depth block of A in the core's L2 cache, one depth x tile-columns sliver of B in L1.
// Rows and columns are whole register tiles.
struct Blocking {
  index_t depth;
  index_t rows;
  index_t cols;
};

// The deepest panel: the micro-kernel's table of B's row addresses lives on the stack.
constexpr index_t max_gemm_depth = 256;

// Blocking for a micro-kernel of tile_rows x tile_cols elements of element_bytes each, on a CPU
// with these caches: a pure function, so that the blocking of any CPU can be tested on any.
//  - depth: the micro-kernel keeps one depth x tile_cols sliver of B in L1 while the A slivers
//    of a block stream past it, so the sliver may fill the L1 data cache, up to the deepest
//    panel the kernels take;
//  - rows: the A block (rows x depth) stays in L2 while every sliver of the B panel passes it.
//    One way of the L2 goes to what streams through it (B's slivers, C's tiles), and the block
//    takes half of the rest;
//  - cols: each thread packs a B panel (depth x cols) of its own, which stays in the L3 while
//    every A block of the GEMM passes it; the L3 is shared by up to eight cores (a Zen core
//    complex), so a panel takes an eighth of it, or half of the L2 when there is no L3.
// Rows and columns are whole register tiles, at least one.
inline Blocking derive_blocking(const CacheSizes& caches, int tile_rows, int tile_cols,
                                int element_bytes) {
  constexpr index_t depth_step = 8;
  const index_t sliver_row = index_t{tile_cols} * element_bytes;
  const index_t depth = std::clamp<index_t>(caches.l1d / sliver_row / depth_step * depth_step,
                                            depth_step, max_gemm_depth);
  const int ways = caches.l2_ways > 1 ? caches.l2_ways : 8;
  const index_t a_bytes = caches.l2 * (ways - 1) / (2 * ways);
  const index_t rows = std::max<index_t>(1, a_bytes / (depth * element_bytes) / tile_rows);
  const index_t panel_bytes = caches.l3 > 0 ? caches.l3 / 8 : caches.l2 / 2;
  const index_t cols = std::max<index_t>(1, panel_bytes / (depth * element_bytes) / tile_cols);
  return {depth, rows * tile_rows, cols * tile_cols};
}

namespace detail {

// Packs slivers [first_sliver, first_sliver + slivers) of A's rows [row0, row0 + rows) over
// depth [p0, p0 + depth), each sliver TILE_ROWS rows (zeros past the last row) stored
// depth-major.
template <int TILE_ROWS, class T>
void pack_a(MatrixOperand<T> a, index_t row0, index_t rows, index_t p0, index_t depth,
            index_t first_sliver, index_t slivers, T* packed) {
  const index_t end = first_sliver + slivers;
  const index_t full_end = std::min(end, rows / TILE_ROWS);  // slivers with no row missing
  auto sliver_rows = [&](index_t s) { return std::min<index_t>(TILE_ROWS, rows - s * TILE_ROWS); };
  if (a.col_stride == 1) {
    // Rows are contiguous: read each along its length.
    for (index_t s = first_sliver; s < end; ++s) {
      T* out = packed + s * TILE_ROWS * depth;
      for (index_t r = 0; r < sliver_rows(s); ++r) {
        const T* row = a.data + (row0 + s * TILE_ROWS + r) * a.row_stride + p0;
        for (index_t p = 0; p < depth; ++p) out[p * TILE_ROWS + r] = row[p];
      }
    }
  } else {
    // A transposed operand's rows are its columns: read a few of them at a time across all
    // the slivers, each from consecutive lines, and write each sliver's part of them to
    // consecutive lines. One sliver at a time would take a few elements from each of `depth`
    // columns, lines far apart that evict one another before the next sliver reads the rest;
    // one column at a time across the slivers wrote its pieces a sliver (16 KiB) apart, and
    // packed a 6912 x 512 operand at 8 GB/s.
    constexpr index_t columns_at_once = 16;
    const index_t contiguous_end = a.row_stride == 1 ? full_end : first_sliver;
    for (index_t p1 = 0; p1 < depth; p1 += columns_at_once) {
      const index_t p2 = std::min(depth, p1 + columns_at_once);
      for (index_t s = first_sliver; s < contiguous_end; ++s) {
        const T* from = a.data + (row0 + s * TILE_ROWS) + (p0 + p1) * a.col_stride;
        T* out = packed + s * TILE_ROWS * depth + p1 * TILE_ROWS;
        for (index_t p = 0; p < p2 - p1; ++p) {
          for (int r = 0; r < TILE_ROWS; ++r) out[p * TILE_ROWS + r] = from[p * a.col_stride + r];
        }
      }
    }
    for (index_t p = 0; p < depth; ++p) {
      const T* column = a.data + row0 * a.row_stride + (p0 + p) * a.col_stride;
      T* out = packed + p * TILE_ROWS;
      for (index_t s = contiguous_end; s < end; ++s) {
        for (index_t r = 0; r < sliver_rows(s); ++r) {
          out[s * TILE_ROWS * depth + r] = column[(s * TILE_ROWS + r) * a.row_stride];
        }
      }
    }
  }
  for (index_t s = std::max(first_sliver, full_end); s < end; ++s) {
    T* out = packed + s * TILE_ROWS * depth;
    for (index_t p = 0; p < depth; ++p) {
      std::fill(out + p * TILE_ROWS + sliver_rows(s), out + (p + 1) * TILE_ROWS, T(0));
    }
  }
}

// The register tile of an instruction set's micro-kernel for element type T, in elements.
struct TileSize {
  int rows;
  int cols;
  int in_place_rows;  // TileOf::in_place_rows
};

template <Isa ISA, class T>
constexpr TileSize tile_size() {
  return {TileOf<ISA>::rows, TileOf<ISA>::vectors * TileOf<ISA>::bytes / int{sizeof(T)},
          TileOf<ISA>::in_place_rows};
}

template <class T>
TileSize tile_size(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return tile_size<Isa::avx512, T>();
    case Isa::avx2:
      return tile_size<Isa::avx2, T>();
    case Isa::neon:
      return tile_size<Isa::neon, T>();
    default:
      return tile_size<Isa::portable, T>();
  }
}

inline int tile_rows(Isa isa) { return tile_size<float>(isa).rows; }

// `text` is CONVT_GEMM_BLOCKING: comma-separated depth=N, rows=N, cols=N, each optional; rows and
// columns are rounded up to whole tiles.
inline Blocking override_blocking(Blocking blocking, TileSize tile, const std::string& text) {
  const bool valid = for_each_setting(text, [&](const std::string& key, const std::string& value) {
    index_t* target = key == "depth"  ? &blocking.depth
                      : key == "rows" ? &blocking.rows
                      : key == "cols" ? &blocking.cols
                                      : nullptr;
    const bool digits = !value.empty() && value.size() < 10 &&
                        value.find_first_not_of("0123456789") == std::string::npos;
    if (target == nullptr || !digits) return false;
    *target = std::stol(value);
    return *target > 0 && (key != "depth" || *target <= max_gemm_depth);
  });
  if (!valid) {
    fail("CONVT_GEMM_BLOCKING must be comma-separated depth=N (1 to ", max_gemm_depth,
         "), rows=N or cols=N with N positive, got '", text, "'");
  }
  blocking.rows = ceil_div(blocking.rows, tile.rows) * tile.rows;
  blocking.cols = ceil_div(blocking.cols, tile.cols) * tile.cols;
  return blocking;
}

template <class T>
Blocking blocking_for(Isa isa) {
  const TileSize tile = tile_size<T>(isa);
  Blocking blocking = derive_blocking(cache_sizes(), tile.rows, tile.cols, int{sizeof(T)});
  const char* forced = std::getenv("CONVT_GEMM_BLOCKING");
  if (forced != nullptr && *forced != '\0') blocking = override_blocking(blocking, tile, forced);
  return blocking;
}

// Each instruction set's blocking for T, derived once per process.
template <class T>
const Blocking& blocking_of(Isa isa) {
  static const Blocking table[] = {blocking_for<T>(Isa::portable), blocking_for<T>(Isa::avx2),
                                   blocking_for<T>(Isa::avx512), blocking_for<T>(Isa::neon)};
  return table[static_cast<int>(isa)];
}

// Lane shuffles of two vectors, as GCC and Clang spell them.
#if defined(__clang__)
#define CONVT_SHUFFLE(MASK, A, B, ...) __builtin_shufflevector(A, B, __VA_ARGS__)
#else
#define CONVT_SHUFFLE(MASK, A, B, ...) __builtin_shuffle(A, B, MASK{__VA_ARGS__})
#endif

// out[q * out_step + r] = columns[r][p + q] for q, r < 4.
inline void transpose_4x4(const float* const* columns, index_t p, float* out, index_t out_step) {
  using Vector = VectorOf<float, 16>::type;
  using Mask = int __attribute__((vector_size(16)));
  Vector v[4];
  for (int r = 0; r < 4; ++r) std::memcpy(&v[r], columns[r] + p, sizeof(Vector));
  const Vector low01 = CONVT_SHUFFLE(Mask, v[0], v[1], 0, 4, 1, 5);
  const Vector high01 = CONVT_SHUFFLE(Mask, v[0], v[1], 2, 6, 3, 7);
  const Vector low23 = CONVT_SHUFFLE(Mask, v[2], v[3], 0, 4, 1, 5);
  const Vector high23 = CONVT_SHUFFLE(Mask, v[2], v[3], 2, 6, 3, 7);
  const Vector rows[4] = {CONVT_SHUFFLE(Mask, low01, low23, 0, 1, 4, 5),
                          CONVT_SHUFFLE(Mask, low01, low23, 2, 3, 6, 7),
                          CONVT_SHUFFLE(Mask, high01, high23, 0, 1, 4, 5),
                          CONVT_SHUFFLE(Mask, high01, high23, 2, 3, 6, 7)};
  for (int q = 0; q < 4; ++q) std::memcpy(out + q * out_step, &rows[q], sizeof(Vector));
}

inline void transpose_4x4(const double* const* columns, index_t p, double* out, index_t out_step) {
  using Vector = VectorOf<double, 16>::type;
  using Mask = long long __attribute__((vector_size(16)));
  for (int half = 0; half < 2; ++half) {
    Vector v[4];
    for (int r = 0; r < 4; ++r) std::memcpy(&v[r], columns[r] + p + 2 * half, sizeof(Vector));
    const Vector rows[4] = {
        CONVT_SHUFFLE(Mask, v[0], v[1], 0, 2), CONVT_SHUFFLE(Mask, v[2], v[3], 0, 2),
        CONVT_SHUFFLE(Mask, v[0], v[1], 1, 3), CONVT_SHUFFLE(Mask, v[2], v[3], 1, 3)};
    for (int q = 0; q < 2; ++q) {
      std::memcpy(out + (2 * half + q) * out_step, &rows[2 * q], sizeof(Vector));
      std::memcpy(out + (2 * half + q) * out_step + 2, &rows[2 * q + 1], sizeof(Vector));
    }
  }
}
#if CONVT_X86_DISPATCH
// ColumnTransposer's transpose for float, 8 columns (AVX2) or 16 (AVX-512) at a time: a square
// of 8 x 8 takes 24 shuffles where the 4 x 4 squares take 32, one of 16 x 16 takes 56 where
// they take 128, and each load and store moves a whole vector.
CONVT_TARGET_AVX2 inline void transpose_columns_avx2(const float* const* columns, index_t rows,
                                                     float* out, index_t out_step) {
  using Vector = VectorOf<float, 32>::type;
  using Mask = int __attribute__((vector_size(32)));
  for (index_t p = 0; p < rows; p += 8) {
    Vector v[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) std::memcpy(&v[r], columns[r] + p, sizeof(Vector));
    // Pairs of rows interleaved, then pairs of pairs: each 128-bit lane of u[4 * h + q] holds
    // column q (low lane) or q + 4 (high lane) of rows 4h .. 4h + 3.
    Vector t[8];
#pragma GCC unroll 4
    for (int r = 0; r < 8; r += 2) {
      t[r] = CONVT_SHUFFLE(Mask, v[r], v[r + 1], 0, 8, 1, 9, 4, 12, 5, 13);
      t[r + 1] = CONVT_SHUFFLE(Mask, v[r], v[r + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    Vector u[8];
#pragma GCC unroll 2
    for (int h = 0; h < 8; h += 4) {
      u[h] = CONVT_SHUFFLE(Mask, t[h], t[h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[h + 1] = CONVT_SHUFFLE(Mask, t[h], t[h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
      u[h + 2] = CONVT_SHUFFLE(Mask, t[h + 1], t[h + 3], 0, 1, 8, 9, 4, 5, 12, 13);
      u[h + 3] = CONVT_SHUFFLE(Mask, t[h + 1], t[h + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    float* target = out + p * out_step;
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const Vector low = CONVT_SHUFFLE(Mask, u[q], u[q + 4], 0, 1, 2, 3, 8, 9, 10, 11);
      const Vector high = CONVT_SHUFFLE(Mask, u[q], u[q + 4], 4, 5, 6, 7, 12, 13, 14, 15);
      std::memcpy(target + q * out_step, &low, sizeof(Vector));
      std::memcpy(target + (q + 4) * out_step, &high, sizeof(Vector));
    }
  }
}

CONVT_TARGET_AVX512 inline void transpose_columns_avx512(const float* const* columns, index_t rows,
                                                         float* out, index_t out_step) {
  using Vector = VectorOf<float, 64>::type;
  using Mask = int __attribute__((vector_size(64)));
  for (index_t p = 0; p < rows; p += 16) {
    Vector v[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) std::memcpy(&v[r], columns[r] + p, sizeof(Vector));
    // As in transpose_columns_avx2: lane L of u[4 * h + q] holds column 4L + q of rows 4h ..
    // 4h + 3; the last two steps gather each column's four lanes.
    Vector t[16];
#pragma GCC unroll 8
    for (int r = 0; r < 16; r += 2) {
      t[r] = CONVT_SHUFFLE(Mask, v[r], v[r + 1], 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28,
                           13, 29);
      t[r + 1] = CONVT_SHUFFLE(Mask, v[r], v[r + 1], 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14,
                               30, 15, 31);
    }
    Vector u[16];
#pragma GCC unroll 4
    for (int h = 0; h < 16; h += 4) {
      u[h] = CONVT_SHUFFLE(Mask, t[h], t[h + 2], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13,
                           28, 29);
      u[h + 1] = CONVT_SHUFFLE(Mask, t[h], t[h + 2], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14,
                               15, 30, 31);
      u[h + 2] = CONVT_SHUFFLE(Mask, t[h + 1], t[h + 3], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25,
                               12, 13, 28, 29);
      u[h + 3] = CONVT_SHUFFLE(Mask, t[h + 1], t[h + 3], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27,
                               14, 15, 30, 31);
    }
    float* target = out + p * out_step;
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      // Lanes (0, 1) and (2, 3) of rows 0-7 (x) and of rows 8-15 (y), then each lane of the four.
      const Vector x_low = CONVT_SHUFFLE(Mask, u[q], u[q + 4], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18,
                                         19, 20, 21, 22, 23);
      const Vector x_high = CONVT_SHUFFLE(Mask, u[q], u[q + 4], 8, 9, 10, 11, 12, 13, 14, 15, 24,
                                          25, 26, 27, 28, 29, 30, 31);
      const Vector y_low = CONVT_SHUFFLE(Mask, u[q + 8], u[q + 12], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17,
                                         18, 19, 20, 21, 22, 23);
      const Vector y_high = CONVT_SHUFFLE(Mask, u[q + 8], u[q + 12], 8, 9, 10, 11, 12, 13, 14, 15,
                                          24, 25, 26, 27, 28, 29, 30, 31);
      const Vector column[4] = {CONVT_SHUFFLE(Mask, x_low, y_low, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17,
                                              18, 19, 24, 25, 26, 27),
                                CONVT_SHUFFLE(Mask, x_low, y_low, 4, 5, 6, 7, 12, 13, 14, 15, 20,
                                              21, 22, 23, 28, 29, 30, 31),
                                CONVT_SHUFFLE(Mask, x_high, y_high, 0, 1, 2, 3, 8, 9, 10, 11, 16,
                                              17, 18, 19, 24, 25, 26, 27),
                                CONVT_SHUFFLE(Mask, x_high, y_high, 4, 5, 6, 7, 12, 13, 14, 15, 20,
                                              21, 22, 23, 28, 29, 30, 31)};
#pragma GCC unroll 4
      for (int lane = 0; lane < 4; ++lane) {
        std::memcpy(target + (4 * lane + q) * out_step, &column[lane], sizeof(Vector));
      }
    }
  }
}
#endif
#undef CONVT_SHUFFLE

// Each instruction set's ColumnTransposer for T: none but AVX2's and AVX-512's for float.
template <class T, Isa ISA>
constexpr ColumnTransposer<T> column_transposer() {
#if CONVT_X86_DISPATCH
  if constexpr (std::is_same_v<T, float> && ISA == Isa::avx2) return {transpose_columns_avx2, 8};
  if constexpr (std::is_same_v<T, float> && ISA == Isa::avx512) {
    return {transpose_columns_avx512, 16};
  }
#endif
  return {nullptr, 0};
}

// Packs B's rows [p0, p0 + depth) and columns [first, first + count) as [depth][TILE_COLS].
template <int TILE_COLS, class T, class OperandB>
void pack_b_from_memory(OperandB b, index_t p0, index_t depth, index_t first, index_t count, T* out,
                        ColumnTransposer<T> transposer) {
  if (b.rows_contiguous()) {
    if (count == TILE_COLS) {
      // A whole sliver: a fixed-length copy the compiler unrolls, not a library call per row.
      for (index_t p = 0; p < depth; ++p) {
        const T* row = b.at(p0 + p, first);
        T* target = out + p * TILE_COLS;
        for (int j = 0; j < TILE_COLS; ++j) target[j] = row[j];
      }
      return;
    }
    for (index_t p = 0; p < depth; ++p) {
      std::copy_n(b.at(p0 + p, first), count, out + p * TILE_COLS);
      std::fill(out + p * TILE_COLS + count, out + (p + 1) * TILE_COLS, T(0));
    }
    return;
  }
  // Columns are contiguous (a transposed operand): read each along its length, a stretch of
  // rows at a time so that the rows being written stay in L1.
  constexpr index_t stretch = 64;
  const index_t step = b.column_step();
  if (step == 1) {
    // Squares of the transposer's width, then four columns by four rows at a time, transposed
    // in registers: one load and one store per four elements instead of one of each per element.
    index_t j = 0;
    if (transposer.width > 0) {
      const index_t width = transposer.width;
      const index_t square_rows = depth / width * width;
      for (; j + width <= count; j += width) {
        const T* columns[16];
        for (index_t q = 0; q < width; ++q) columns[q] = b.at(p0, first + j + q);
        transposer.transpose(columns, square_rows, out + j, TILE_COLS);
        for (index_t p = square_rows; p < depth; ++p) {
          for (index_t q = 0; q < width; ++q) out[p * TILE_COLS + j + q] = columns[q][p];
        }
      }
    }
    const index_t whole_columns = count / 4 * 4;
    const index_t whole_rows = depth / 4 * 4;
    for (; j < whole_columns; j += 4) {
      const T* columns[4] = {b.at(p0, first + j), b.at(p0, first + j + 1), b.at(p0, first + j + 2),
                             b.at(p0, first + j + 3)};
      for (index_t p = 0; p < whole_rows; p += 4)
        transpose_4x4(columns, p, out + p * TILE_COLS + j, TILE_COLS);
      for (index_t p = whole_rows; p < depth; ++p) {
        for (int q = 0; q < 4; ++q) out[p * TILE_COLS + j + q] = columns[q][p];
      }
    }
    for (; j < count; ++j) {
      const T* column = b.at(p0, first + j);
      for (index_t p = 0; p < depth; ++p) out[p * TILE_COLS + j] = column[p];
    }
    for (index_t p = 0; p < depth; ++p) {
      std::fill(out + p * TILE_COLS + count, out + (p + 1) * TILE_COLS, T(0));
    }
    return;
  }
  for (index_t p1 = 0; p1 < depth; p1 += stretch) {
    const index_t p2 = std::min(depth, p1 + stretch);
    for (index_t j = 0; j < count; ++j) {
      const T* column = b.at(p0, first + j);
      for (index_t p = p1; p < p2; ++p) out[p * TILE_COLS + j] = column[p * step];
    }
  }
  for (index_t p = 0; p < depth; ++p) {
    std::fill(out + p * TILE_COLS + count, out + (p + 1) * TILE_COLS, T(0));
  }
}

template <int TILE_COLS, class T, class OperandB>
void pack_b(OperandB b, index_t p0, index_t depth, index_t col0, index_t cols, index_t sliver,
            T* out, ColumnTransposer<T> transposer) {
  const index_t first = col0 + sliver * TILE_COLS;
  const index_t count = std::min<index_t>(TILE_COLS, cols - sliver * TILE_COLS);
  if constexpr (OperandB::packs_itself) {
    b.template pack<TILE_COLS>(p0, depth, first, count, out);
  } else {
    pack_b_from_memory<TILE_COLS>(b, p0, depth, first, count, out, transposer);
  }
}

// The most rows of A for which a GEMM reads the whole slivers of a B with contiguous rows in
// place (gemm_serial says why): eight slivers of A for a row table, the tile's in_place_rows for
// a matrix.
constexpr index_t max_in_place_rows(TileSize tile, bool row_table) {
  return row_table ? 8 * index_t{tile.rows} : index_t{tile.in_place_rows};
}

// Panel sizes of one GEMM, chosen from the whole problem and rounded to whole tiles, which is
// what the packed buffers hold: every part of it (the whole, or one thread's share) is blocked
// the same way, so each element of C is summed in the same order.
struct Panels {
  index_t rows;
  index_t cols;
  index_t depth;
};

// One thread's blocked GEMM over its share of C, packing into its own buffers (A only when it is
// not packed already).
template <class T, int TILE_ROWS, int TILE_COLS, int IN_PLACE_ROWS, class OperandA, class OperandB>
void gemm_serial(index_t m, index_t n, index_t k, OperandA a, OperandB b, T* c, index_t ldc,
                 bool accumulate, Kernels<T> kernel, Panels panels, T* packed_a, T* packed_b) {
  constexpr bool prepacked = std::is_same_v<OperandA, PackedA<T>>;
  // Whole slivers of a B whose rows are contiguous are read in place, through a table of row
  // addresses, when A has few rows: copying a sliver then costs as much as the multiply-adds that
  // use it. With more rows the copy pays for itself, as every A sliver then reads the B sliver from
  // consecutive lines rather than from a few lines of each of `depth` rows far apart. Where that
  // limit lies depends on how far apart the rows are. A row table's rows (shifted.hpp) are runs of
  // a few channels of the padded input, several to a page: read in place, a 3-D layer's GEMMs of 32
  // rows took 15% (avx512) and 21% (avx2) less time on an Ice Lake Xeon, one thread, and eight
  // slivers of A are the limit. A matrix's rows are a whole row of B apart, each on a page of its
  // own once B is 4 KiB wide: on the same Xeon, GEMMs over 3136 columns and 576 deep took up to 35%
  // more time (float64: 22%) read in place from 3 slivers of A on (avx512, B's rows not 64-byte
  // aligned, as NumPy's and malloc's large blocks are not) and from one whole sliver on (avx2:
  // 20-67% more at 6 rows, aligned); half a sliver's rows, which make fewer multiply-adds of each B
  // value, took 9-37% less time in place on both (benchmarks/RESULTS.md has the table).
  // TileOf::in_place_rows gives each instruction set's limit; a col2im GEMM of 216 rows over 648
  // columns took 25% less time with B packed.
  bool in_place = false;
  if constexpr (!OperandB::packs_itself) {
    constexpr TileSize tile{TILE_ROWS, TILE_COLS, IN_PLACE_ROWS};
    in_place =
        b.rows_contiguous() && m <= max_in_place_rows(tile, std::is_same_v<OperandB, RowTable<T>>);
    // Unless its rows are a multiple of 1 KiB apart: then the sliver's rows fall in at most a
    // quarter of an L1 way's sets (4 KiB a way on x86 cores) and evict each other while A's
    // slivers stream past, which made 512 x 4096 x 4096 run at half OpenBLAS's speed.
    if (in_place && k > 1) {
      const auto stride =
          reinterpret_cast<const char*>(b.at(1, 0)) - reinterpret_cast<const char*>(b.at(0, 0));
      if (stride % 1024 == 0) in_place = false;
    }
  }
  const T* panel_rows[max_gemm_depth];
  for (index_t col0 = 0; col0 < n; col0 += panels.cols) {
    const index_t cols = std::min(panels.cols, n - col0);
    const index_t col_slivers = ceil_div(cols, TILE_COLS);
    const index_t whole_slivers = in_place ? cols / TILE_COLS : 0;
    for (index_t p0 = 0; p0 < k; p0 += panels.depth) {
      const index_t depth = std::min(panels.depth, k - p0);
      const bool add = accumulate || p0 > 0;
      const T* const* b_rows = panel_rows;
      index_t b_offset = 0;
      if constexpr (std::is_same_v<OperandB, RowTable<T>>) {
        b_rows = b.rows + p0;
        b_offset = b.offset + col0;
      } else if constexpr (!OperandB::packs_itself) {
        for (index_t p = 0; in_place && p < depth; ++p) panel_rows[p] = b.at(p0 + p, col0);
      }
      for (index_t row0 = 0; row0 < m; row0 += panels.rows) {
        const index_t rows = std::min(panels.rows, m - row0);
        const index_t row_slivers = ceil_div(rows, TILE_ROWS);
        const T* a_panel;
        index_t a_sliver_size;
        if constexpr (prepacked) {
          a_panel = a.data + row0 * a.depth + p0 * TILE_ROWS;
          a_sliver_size = TILE_ROWS * a.depth;
        } else {
          pack_a<TILE_ROWS>(a, row0, rows, p0, depth, 0, row_slivers, packed_a);
          a_panel = packed_a;
          a_sliver_size = TILE_ROWS * depth;
        }
        for (index_t js = 0; js < col_slivers; ++js) {
          // Each B sliver is packed just before the first block of rows uses it, while it is
          // still in L1 and L2, rather than the whole panel first, which sent the panel out to
          // the L3 and read it back. When there is only that one block of rows, the sliver is
          // not used again and every one is packed into the same place, which stays in cache
          // instead of taking a fresh line from memory for each it writes.
          const bool one_block = m <= panels.rows;
          const index_t sliver_offset = one_block ? 0 : js * TILE_COLS * depth;
          if (row0 == 0 && js >= whole_slivers) {
            pack_b<TILE_COLS>(b, p0, depth, col0, cols, js, packed_b + sliver_offset,
                              kernel.transposer);
          }
          for (index_t is = 0; is < row_slivers; ++is) {
            const index_t i = is * TILE_ROWS;
            const index_t j = js * TILE_COLS;
            const T* a_sliver = a_panel + is * a_sliver_size;
            T* c_tile = c + (row0 + i) * ldc + col0 + j;
            const index_t tile_rows = std::min<index_t>(TILE_ROWS, rows - i);
            const index_t tile_cols = std::min<index_t>(TILE_COLS, cols - j);
            if (js < whole_slivers) {
              kernel.in_place_for(tile_rows)(depth, a_sliver, b_rows, b_offset + j, c_tile, ldc,
                                             tile_rows, tile_cols, add);
              continue;
            }
            kernel.packed_for(tile_rows, tile_cols)(depth, a_sliver, packed_b + sliver_offset,
                                                    c_tile, ldc, tile_rows, tile_cols, add);
          }
        }
      }
    }
  }
}

// Threads split C into contiguous bands of whole tiles (of columns when there are enough,
// else of rows) and each computes its band alone: one fork and one join per GEMM, no barrier
// in between, which matters when a core is shared and a waiting thread loses its time slice.
template <class T, int TILE_ROWS, int TILE_COLS, int IN_PLACE_ROWS, class OperandA, class OperandB>
void gemm_blocked(index_t m, index_t n, index_t k, OperandA a, OperandB b, T* c, index_t ldc,
                  bool accumulate, Kernels<T> kernel, const Blocking& blocking) {
  const Panels panels{std::min<index_t>(blocking.rows, ceil_div(m, TILE_ROWS) * TILE_ROWS),
                      std::min<index_t>(blocking.cols, ceil_div(n, TILE_COLS) * TILE_COLS),
                      std::min<index_t>(blocking.depth, k)};
  const index_t a_size = panels.rows * panels.depth;
  const index_t b_size = panels.cols * panels.depth;
  // An operand that packs itself is a lowered matrix, each of whose elements is gathered.
  const double gathers = OperandB::packs_itself ? lowered_element_work * k * n : 0.0;
  const int threads = threads_for(static_cast<double>(m) * n * k + gathers);
  T* packed_a = scratch<T>(Scratch::packed_a, a_size * threads);
  T* packed_b = scratch<T>(Scratch::packed_b, b_size * threads);
  if (threads == 1) {
    gemm_serial<T, TILE_ROWS, TILE_COLS, IN_PLACE_ROWS>(m, n, k, a, b, c, ldc, accumulate, kernel,
                                                        panels, packed_a, packed_b);
    return;
  }
  const index_t col_tiles = ceil_div(n, TILE_COLS);
  const index_t row_tiles = ceil_div(m, TILE_ROWS);
  const bool by_columns = col_tiles >= threads || col_tiles >= row_tiles;
  const index_t tiles = by_columns ? col_tiles : row_tiles;
#pragma omp parallel num_threads(threads)
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    const index_t first = tiles * t / threads;
    const index_t last = tiles * (t + 1) / threads;
    if (by_columns) {
      const index_t col0 = first * TILE_COLS;
      const index_t cols = std::min(last * TILE_COLS, n) - col0;
      if (cols > 0) {
        gemm_serial<T, TILE_ROWS, TILE_COLS, IN_PLACE_ROWS>(
            m, cols, k, a, b.columns_from(col0), c + col0, ldc, accumulate, kernel, panels,
            packed_a + t * a_size, packed_b + t * b_size);
      }
    } else {
      const index_t row0 = first * TILE_ROWS;
      const index_t rows = std::min(last * TILE_ROWS, m) - row0;
      if (rows > 0) {
        gemm_serial<T, TILE_ROWS, TILE_COLS, IN_PLACE_ROWS>(
            rows, n, k, a.rows_from(row0), b, c + row0 * ldc, ldc, accumulate, kernel, panels,
            packed_a + t * a_size, packed_b + t * b_size);
      }
    }
  }
}

template <class T, Isa ISA, class OperandA, class OperandB>
void gemm_with(Kernels<T> kernel, index_t m, index_t n, index_t k, OperandA a, OperandB b, T* c,
               index_t ldc, bool accumulate) {
  constexpr TileSize tile = tile_size<ISA, T>();
  gemm_blocked<T, tile.rows, tile.cols, tile.in_place_rows>(m, n, k, a, b, c, ldc, accumulate,
                                                            kernel, blocking_of<T>(ISA));
}

// The micro-kernels of one element type, by instruction set.
#define CONVT_KERNELS(ISA_NAME, T, SUFFIX)                                                       \
  static constexpr Kernels<T> ISA_NAME{micro_kernel_##ISA_NAME##_##SUFFIX,                       \
                                       micro_kernel_##ISA_NAME##_##SUFFIX##_in_place,            \
                                       {micro_kernel_##ISA_NAME##_##SUFFIX##_narrow<1>,          \
                                        micro_kernel_##ISA_NAME##_##SUFFIX##_narrow<2>},         \
                                       micro_kernel_##ISA_NAME##_##SUFFIX##_half_rows,           \
                                       micro_kernel_##ISA_NAME##_##SUFFIX##_half_rows_in_place,  \
                                       TileOf<Isa::ISA_NAME>::rows,                              \
                                       TileOf<Isa::ISA_NAME>::vectors,                           \
                                       TileOf<Isa::ISA_NAME>::bytes / int{sizeof(T)},            \
                                       column_transposer<T, Isa::ISA_NAME>()};                   \
  static_assert(TileOf<Isa::ISA_NAME>::vectors <= 3, "Kernels::narrow covers the other widths"); \
  static_assert(TileOf<Isa::ISA_NAME>::rows % 2 == 0, "Kernels::half_rows takes half the rows");
template <class T>
struct MicroKernels;
template <>
struct MicroKernels<float> {
  CONVT_KERNELS(portable, float, f32)
#if CONVT_X86_DISPATCH
  CONVT_KERNELS(avx2, float, f32)
  CONVT_KERNELS(avx512, float, f32)
#endif
#if CONVT_ARM_DISPATCH
  CONVT_KERNELS(neon, float, f32)
#endif
};
template <>
struct MicroKernels<double> {
  CONVT_KERNELS(portable, double, f64)
#if CONVT_X86_DISPATCH
  CONVT_KERNELS(avx2, double, f64)
  CONVT_KERNELS(avx512, double, f64)
#endif
#if CONVT_ARM_DISPATCH
  CONVT_KERNELS(neon, double, f64)
#endif
};
#undef CONVT_KERNELS

template <class T, class OperandA, class OperandB>
void gemm_dispatch(Isa isa, index_t m, index_t n, index_t k, OperandA a, OperandB b, T* c,
                   index_t ldc, bool accumulate) {
#if CONVT_X86_DISPATCH
  if (isa == Isa::avx512) {
    return gemm_with<T, Isa::avx512>(MicroKernels<T>::avx512, m, n, k, a, b, c, ldc, accumulate);
  }
  if (isa == Isa::avx2) {
    return gemm_with<T, Isa::avx2>(MicroKernels<T>::avx2, m, n, k, a, b, c, ldc, accumulate);
  }
#endif
#if CONVT_ARM_DISPATCH
  if (isa == Isa::neon) {
    return gemm_with<T, Isa::neon>(MicroKernels<T>::neon, m, n, k, a, b, c, ldc, accumulate);
  }
#endif
  (void)isa;
  gemm_with<T, Isa::portable>(MicroKernels<T>::portable, m, n, k, a, b, c, ldc, accumulate);
}

}  // namespace detail

// C (m x n, row-major, leading dimension ldc) = A (m x k) . B (k x n), or C += A . B when
// `accumulate` is set. A is a MatrixOperand<T> or a PackedA<T> (from pack_for_gemm), B a
// MatrixOperand<T> or a RowTable<T>. Each element of C is summed in the
// same order whatever the number of threads, so results do not depend on it. `isa` is the
// instruction set of an A that is not packed already (a caller making several GEMMs of one
// result reads it once, so that set_isa from another thread cannot change it midway).
template <class T, class OperandA, class OperandB>
void gemm(index_t m, index_t n, index_t k, OperandA a, OperandB b, T* c, index_t ldc,
          bool accumulate, Isa isa = get_isa()) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "convt computes in float or double");
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) {
      for (index_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    }
    return;
  }
  // A packed operand was packed for one instruction set's tiles, and is multiplied with it.
  if constexpr (std::is_same_v<OperandA, PackedA<T>>) isa = a.isa;
  detail::gemm_dispatch(isa, m, n, k, a, b, c, ldc, accumulate);
}

// What the GEMM does on this CPU for element type T and an instruction set: the caches it read,
// the micro-kernel's register tile and the cache blocking derived from them.
struct GemmConfig {
  Isa isa;
  CacheSizes caches;
  int tile_rows;
  int tile_cols;
  Blocking blocking;
};

template <class T>
GemmConfig gemm_config(Isa isa = get_isa()) {
  const detail::TileSize tile = detail::tile_size<T>(isa);
  return {isa, cache_sizes(), tile.rows, tile.cols, detail::blocking_of<T>(isa)};
}

// Elements pack_for_gemm writes for an m x k operand on the current instruction set.
inline index_t packed_size(index_t m, index_t k, Isa isa = get_isa()) {
  const int rows = detail::tile_rows(isa);
  return detail::ceil_div(m, rows) * rows * k;
}

// Packs A (m x k) into `buffer` (packed_size(m, k, isa) elements) for gemm on instruction set
// `isa`, for use by any number of GEMMs and threads.
template <class T>
PackedA<T> pack_for_gemm(index_t m, index_t k, MatrixOperand<T> a, T* buffer, Isa isa = get_isa()) {
  // A memory-bound copy, threaded in blocks of slivers whose packing fits half the L2, so that
  // a transposed A's lines are read whole.
  const int rows = detail::tile_rows(isa);
  const index_t slivers = detail::ceil_div(m, rows);
  const index_t sliver_bytes = static_cast<index_t>(sizeof(T)) * rows * std::max<index_t>(k, 1);
  const index_t per_block =
      std::max<index_t>(1, static_cast<index_t>(cache_sizes().l2 / 2) / sliver_bytes);
  const index_t blocks = detail::ceil_div(slivers, per_block);
  auto pack = [&](auto tile) {
    detail::parallel_for(blocks, detail::threads_for(static_cast<double>(m) * k), [&](index_t b) {
      const index_t first = b * per_block;
      detail::pack_a<decltype(tile)::rows>(a, 0, m, 0, k, first,
                                           std::min(per_block, slivers - first), buffer);
    });
  };
  switch (isa) {
    case Isa::avx512:
      pack(detail::TileOf<Isa::avx512>{});
      break;
    case Isa::avx2:
      pack(detail::TileOf<Isa::avx2>{});
      break;
    case Isa::neon:
      pack(detail::TileOf<Isa::neon>{});
      break;
    default:
      pack(detail::TileOf<Isa::portable>{});
  }
  return {buffer, k, isa};
}

// `count` operands of m x k packed one after another, the i-th read as operands[i].
template <class T>
struct PackedOperands {
  const T* data;
  index_t m;
  index_t k;
  Isa isa;

  PackedA<T> operator[](index_t i) const { return {data + i * packed_size(m, k, isa), k, isa}; }
};

// Packs operand_of(i) (m x k) for i < count into `buffer` (count * packed_size(m, k, isa)
// elements; the calling thread's scratch when null): a layer's weights, one operand per group,
// packed once and shared by every block and thread.
template <class T, class OperandOf>
PackedOperands<T> pack_each(index_t count, index_t m, index_t k, OperandOf&& operand_of,
                            Isa isa = get_isa(), T* buffer = nullptr) {
  const index_t size = packed_size(m, k, isa);
  if (buffer == nullptr) buffer = detail::scratch<T>(detail::Scratch::packed_weight, count * size);
  for (index_t i = 0; i < count; ++i) pack_for_gemm<T>(m, k, operand_of(i), buffer + i * size, isa);
  return {buffer, m, k, isa};
}

}  // namespace convt
