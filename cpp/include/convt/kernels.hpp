#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <type_traits>

#include "direct.hpp"
#include "gemm.hpp"
#include "geometry.hpp"
#include "lowering.hpp"
#include "padding.hpp"
#include "shifted.hpp"
#include "threading.hpp"
#include "workspace.hpp"

// The three kernels every layer is built from, on contiguous (N, C, spatial...) buffers.
//
//   kernel                 convolution layer     transposed convolution layer
//   conv_forward           forward               backward for input
//   conv_backward_input    backward for input    forward
//   conv_backward_weight   backward for weight   backward for weight (x and dy swap roles)
//
// plus the bias pair add/sum over the output's channels. Each lowers one group of one block of
// columns at a time (several small samples, or a slice of one large sample) into a GEMM, so
// scratch memory is bounded whatever the batch size: im2col packed into the GEMM's panels
// straight from x, or a GEMM into chunks of rows that col2im adds into dx. Stride-1 layers
// instead read a padded copy of their input in place (shifted.hpp), and tiny or depthwise ones
// skip the GEMM (direct.hpp). Which of these a kernel takes is an Algorithm, chosen once per
// geometry by a Plan (plan.hpp), which runs the kernels below.

namespace convt {

enum class Kernel { forward, backward_input, backward_weight };

// How a kernel computes a geometry.
enum class Algorithm {
  direct,     // sums straight over input lines, no GEMM: tiny and depthwise layers
  shifted,    // stride 1: a GEMM reading the rows of a padded copy of its input in place
  pointwise,  // 1x1, a sample or a slice of one per GEMM: the input is its own lowered matrix
  im2col,     // a GEMM packing slivers of the im2col matrix straight from x
  col2im,     // the input gradient: a GEMM into lowered rows, which col2im adds into dx
};

inline constexpr Kernel all_kernels[] = {Kernel::forward, Kernel::backward_input,
                                         Kernel::backward_weight};
inline constexpr Algorithm all_algorithms[] = {Algorithm::direct, Algorithm::shifted,
                                               Algorithm::pointwise, Algorithm::im2col,
                                               Algorithm::col2im};

inline const char* kernel_name(Kernel kernel) {
  switch (kernel) {
    case Kernel::forward:
      return "conv_forward";
    case Kernel::backward_input:
      return "conv_backward_input";
    default:
      return "conv_backward_weight";
  }
}

inline const char* algorithm_name(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::direct:
      return "direct";
    case Algorithm::shifted:
      return "shifted";
    case Algorithm::pointwise:
      return "pointwise";
    case Algorithm::im2col:
      return "im2col";
    default:
      return "col2im";
  }
}

namespace detail {

// Whether `algorithm` can compute `kernel` of `g` at all (the plan's choice among them is a
// matter of speed).
inline bool algorithm_applies(const ConvGeometry& g, Kernel kernel, Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::direct:
      return true;
    case Algorithm::shifted:
      return stride_one(g);
    case Algorithm::pointwise:
      return g.is_pointwise();
    case Algorithm::im2col:
      return kernel != Kernel::backward_input;
    default:
      return kernel == Kernel::backward_input;
  }
}

// The fastest algorithm for a kernel of `g`, by what each costs: the direct loops below a few
// thousand multiply-adds and for depthwise layers, whose GEMM would have one row; the shifted
// copy where it wastes few columns; a pointwise GEMM over x itself when a sample is wide enough
// for a GEMM of its own (narrower ones are gathered several samples at a time by im2col);
// otherwise im2col (x's lowering, shared by the forward pass and the weight gradient) or col2im.
inline Algorithm fastest_algorithm(const ConvGeometry& g, Kernel kernel) {
  constexpr index_t pointwise_min_columns = 512;
  if (prefers_direct(g)) return Algorithm::direct;
  const bool input_gradient = kernel == Kernel::backward_input;
  if (stride_one(g) && !g.is_pointwise() &&
      shifted_fits(input_gradient ? backward_input_problem(g) : forward_problem(g))) {
    return Algorithm::shifted;
  }
  if (g.is_pointwise() && g.y_spatial() >= pointwise_min_columns) return Algorithm::pointwise;
  return input_gradient ? Algorithm::col2im : Algorithm::im2col;
}

// How the kernels cut a call's columns into blocks: a pointwise GEMM reads one sample's x in
// place, so its blocks never hold several.
inline BlockPlan block_plan(const ConvGeometry& g, Algorithm algorithm) {
  BlockPlan plan = plan_blocks(g);
  if (algorithm == Algorithm::pointwise && !plan.sliced) plan = {plan.columns, false, 1, g.batch};
  return plan;
}

// The y side of one group over a column block, as a (y_channels_per_group x columns) matrix. A
// one-sample block is a view into y itself; a several-sample block is gathered into scratch
// (when `gather`, copying y's values; the caller fills it otherwise).
template <class T>
struct BlockOfY {
  T* data;  // T is const when the block is only read
  index_t ld;
  bool gathered;
};

template <class T>
BlockOfY<T> y_block(const ConvGeometry& g, T* y, index_t group, ColumnBlock block, bool gather) {
  const index_t outputs = g.y_spatial();
  const index_t rows = g.y_channels_per_group();
  T* first = y + (block.first_sample * g.y_channels + group * rows) * outputs;
  if (block.samples == 1) return {first + block.first_output, outputs, false};
  auto* scratch_block = scratch<std::remove_const_t<T>>(Scratch::gathered, rows * block.columns());
  if (gather) {
    for (index_t s = 0; s < block.samples; ++s) {
      for (index_t f = 0; f < rows; ++f) {
        std::copy_n(first + (s * g.y_channels + f) * outputs, outputs,
                    scratch_block + f * block.columns() + s * outputs);
      }
    }
  }
  return {scratch_block, block.columns(), true};
}

// Writes a gathered block back to y.
template <class T>
void scatter_y_block(const ConvGeometry& g, const BlockOfY<T>& from, T* y, index_t group,
                     ColumnBlock block) {
  if (!from.gathered) return;
  const index_t outputs = g.y_spatial();
  const index_t rows = g.y_channels_per_group();
  T* first = y + (block.first_sample * g.y_channels + group * rows) * outputs;
  for (index_t s = 0; s < block.samples; ++s) {
    for (index_t f = 0; f < rows; ++f) {
      std::copy_n(from.data + f * from.ld + s * outputs, outputs,
                  first + (s * g.y_channels + f) * outputs);
    }
  }
}

// The first x channel of `group` in the first sample of `block`.
template <class T>
T* x_group(const ConvGeometry& g, T* x, index_t group, ColumnBlock block) {
  return x + block.first_sample * g.x_channels * g.x_spatial() +
         group * g.x_channels_per_group() * g.x_spatial();
}

// C (+)= A . B with B the lowered x side of one group over a column block, or its transpose:
// x itself, read in place, for the pointwise algorithm (whose blocks hold one sample); im2col
// packed from x on the fly otherwise.
template <class T, class OperandA>
void gemm_lowered(const ConvGeometry& g, Algorithm algorithm, Isa isa, const KernelTap* taps,
                  const T* x, index_t group, ColumnBlock block, bool transposed, index_t m,
                  index_t n, index_t k, OperandA a, T* c, index_t ldc, bool accumulate) {
  const T* first = x_group(g, x, group, block);
  if (algorithm == Algorithm::pointwise) {
    const MatrixOperand<T> in_place{first + block.first_output, g.x_spatial(), 1};
    return gemm<T>(m, n, k, a, transposed ? in_place.transposed() : in_place, c, ldc, accumulate,
                   isa);
  }
  const LoweredOperand<T> lowered{&g,    taps, first,     g.x_channels * g.x_spatial(),
                                  block, 0,    transposed};
  gemm<T>(m, n, k, a, lowered, c, ldc, accumulate, isa);
}

// A lowered kernel's work for threads_for, in multiply-adds: its products and, but for the
// pointwise algorithm (which reads x in place), the lowered matrix's elements.
inline double lowered_work(const ConvGeometry& g, Algorithm algorithm) {
  const bool copies = algorithm != Algorithm::pointwise;
  return g.multiply_adds() + (copies ? lowered_element_work * g.lowered_elements() : 0.0);
}

// Runs body(block) for every block. With a unit for each thread, threads take whole units and
// each GEMM runs on one core, its operands staying in that core's cache; otherwise each GEMM is
// threaded. Either way each output is summed in the same order.
template <class Body>
void for_each_block(const ConvGeometry& g, Algorithm algorithm, Body&& body) {
  const BlockPlan plan = block_plan(g, algorithm);
  int threads = threads_for(lowered_work(g, algorithm));
  if (plan.units < threads) threads = 1;
  parallel_for(plan.units, threads,
               [&](index_t unit) { for_each_block_of_unit(g, plan, unit, body); });
}

// Channels per col2im chunk: about 2^17 lowered elements (half a megabyte of float), and a
// whole number of the instruction set's tile rows (each chunk's first row starts a tile of the
// packed weight).
inline index_t col2im_chunk_channels(const ConvGeometry& g, index_t columns, Isa isa) {
  constexpr index_t chunk_elements = index_t{1} << 17;
  const index_t rows = tile_rows(isa);
  const index_t channel_multiple = rows / std::gcd(rows, g.kernel_volume());
  const index_t wanted = chunk_elements / (columns * g.kernel_volume());
  return std::max(channel_multiple, wanted / channel_multiple * channel_multiple);
}

template <class T>
const T* group_weight(const ConvGeometry& g, const T* w, index_t group) {
  return w + group * g.y_channels_per_group() * g.lowered_rows();
}

// The weight as one kernel's GEMMs read it, one operand per group, packed for `isa`: w itself
// (y_channels_per_group x lowered_rows) for the forward pass and the shifted input gradient's
// flipped kernel, w transposed for the others. Kernels that read w unpacked (direct) or not at
// all (the weight gradient) have none.
// Whether none of `count` values is a NaN or an infinity: none has an all-ones exponent. The GEMM
// paths multiply the zeros of padding (and the padded copy's columns past the output's edge)
// with the other operand, where the sum has no term; 0 * inf is NaN, so with a non-finite value
// in that operand a call takes the direct loops, which form only the sum's terms. Padding
// contributes nothing, whatever the values.
template <class T>
bool all_finite(const T* values, index_t count) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr Bits exponent =
      sizeof(T) == 4 ? static_cast<Bits>(0x7f800000u) : static_cast<Bits>(0x7ff0000000000000u);
  Bits found = 0;  // an OR of comparisons, which the compiler vectorises for any instruction set
  for (index_t i = 0; i < count; ++i) {
    Bits bits;
    std::memcpy(&bits, values + i, sizeof bits);
    found |= static_cast<Bits>((bits & exponent) == exponent);
  }
  return found == 0;
}

inline bool packs_weight(Kernel kernel, Algorithm algorithm) {
  return kernel != Kernel::backward_weight && algorithm != Algorithm::direct;
}

// Whether a call that keeps no packing reads each of w's elements in one GEMM panel only: col2im
// over a single block of columns, no wider than the GEMM's panel. Packing all of w first would
// then write and read it once more (512 MiB for a vocoder's up-sampling) for no reuse, where the
// GEMM packs each panel of it into cache as it goes.
template <class T>
bool reads_weight_once(const ConvGeometry& g, Kernel kernel, Algorithm algorithm, Isa isa) {
  if (kernel != Kernel::backward_input || algorithm != Algorithm::col2im) return false;
  const BlockPlan plan = plan_blocks(g);
  const bool one_block =
      plan.sliced ? g.batch == 1 && slice_outputs(plan, g.y_spatial(), 0) == g.y_spatial()
                  : plan.units == 1;
  return one_block && g.y_spatial() * g.batch <= blocking_of<T>(isa).cols;
}

struct PackedShape {
  index_t m;
  index_t k;
};

inline PackedShape packed_weight_shape(const ConvGeometry& g, Kernel kernel, Algorithm algorithm) {
  if (kernel == Kernel::forward) return {g.y_channels_per_group(), g.lowered_rows()};
  if (algorithm == Algorithm::shifted) {
    return {g.x_channels_per_group(), g.y_channels_per_group() * g.kernel_volume()};
  }
  return {g.lowered_rows(), g.y_channels_per_group()};
}

// Elements pack_weight writes.
inline index_t packed_weight_size(const ConvGeometry& g, Kernel kernel, Algorithm algorithm,
                                  Isa isa) {
  if (!packs_weight(kernel, algorithm)) return 0;
  const PackedShape shape = packed_weight_shape(g, kernel, algorithm);
  return g.groups * packed_size(shape.m, shape.k, isa);
}

// Packs w for `kernel` into `buffer` (packed_weight_size elements, or the calling thread's
// scratch when null).
template <class T>
PackedOperands<T> pack_weight(const ConvGeometry& g, Kernel kernel, Algorithm algorithm, Isa isa,
                              const T* w, T* buffer) {
  const PackedShape shape = packed_weight_shape(g, kernel, algorithm);
  const index_t rows = g.lowered_rows();
  if (kernel == Kernel::forward) {
    return pack_each<T>(
        g.groups, shape.m, shape.k,
        [&](index_t group) { return row_major(group_weight(g, w, group), rows); }, isa, buffer);
  }
  if (algorithm == Algorithm::shifted) {
    const T* flipped = flip_weight(g, w);
    return pack_each<T>(
        g.groups, shape.m, shape.k,
        [&](index_t group) { return row_major(flipped + group * shape.m * shape.k, shape.k); }, isa,
        buffer);
  }
  return pack_each<T>(
      g.groups, shape.m, shape.k,
      [&](index_t group) { return row_major(group_weight(g, w, group), rows).transposed(); }, isa,
      buffer);
}

// What a kernel gets from its plan for one call: its algorithm, the instruction set read once
// at the start of the call, and the weight packed for it (unless packs_weight says none).
template <class T>
struct KernelCall {
  Algorithm algorithm;
  Isa isa;
  PackedOperands<T> weight;
};

// y = x (*) w: cross-correlation with stride, padding, dilation and groups, as PyTorch's conv.
// x: x_shape(), w: weight_shape(), y: y_shape(); y is overwritten.
template <class T>
void forward_kernel(const ConvGeometry& g, const KernelCall<T>& call, const T* x, const T* w,
                    T* y) {
  if (call.algorithm == Algorithm::direct ||
      (call.algorithm != Algorithm::pointwise && !all_finite(w, g.y_channels * g.lowered_rows()))) {
    return direct_forward(g, x, w, y);
  }
  if (call.algorithm == Algorithm::shifted) {
    return shifted_forward(forward_problem(g), x, call.weight, y, call.isa);
  }
  const index_t rows = g.lowered_rows();
  const KernelTap* taps = tap_table(g);
  for_each_block(g, call.algorithm, [&](ColumnBlock block) {
    for (index_t group = 0; group < g.groups; ++group) {
      const BlockOfY<T> out = y_block(g, y, group, block, false);
      gemm_lowered(g, call.algorithm, call.isa, taps, x, group, block, false,
                   g.y_channels_per_group(), block.columns(), rows, call.weight[group], out.data,
                   out.ld, false);
      scatter_y_block(g, out, y, group, block);
    }
  });
}

// dx = the adjoint of conv_forward applied to dy: the gradient of a convolution for its input,
// and the forward pass of a transposed convolution. dx is overwritten.
template <class T>
void backward_input_kernel(const ConvGeometry& g, const KernelCall<T>& call, const T* dy,
                           const T* w, T* dx) {
  // col2im forms only the sum's terms; the shifted path multiplies dy's padding with w.
  if (call.algorithm == Algorithm::direct ||
      (call.algorithm == Algorithm::shifted && !all_finite(w, g.y_channels * g.lowered_rows()))) {
    return direct_backward_input(g, dy, w, dx);
  }
  if (call.algorithm == Algorithm::shifted) {
    return shifted_forward(backward_input_problem(g), dy, call.weight, dx, call.isa);
  }
  const index_t rows = g.lowered_rows();
  const index_t sample_stride = g.x_channels * g.x_spatial();
  const bool pointwise = call.algorithm == Algorithm::pointwise;
  for_each_block(g, call.algorithm, [&](ColumnBlock block) {
    if (!pointwise && block.first_output == 0) {
      std::fill_n(dx + block.first_sample * sample_stride, block.samples * sample_stride, T(0));
    }
    for (index_t group = 0; group < g.groups; ++group) {
      const BlockOfY<const T> gradient = y_block(g, dy, group, block, true);
      T* dx_group = x_group(g, dx, group, block);
      if (pointwise) {
        gemm<T>(rows, block.columns(), g.y_channels_per_group(), call.weight[group],
                row_major(gradient.data, gradient.ld), dx_group + block.first_output, g.x_spatial(),
                false, call.isa);
        continue;
      }
      // A chunk of channels at a time, so that their lowered rows are still in the core's
      // cache when col2im adds them up. Chunks write disjoint channels of dx, so where the
      // threads do not already take whole blocks (a batch of one), each takes whole chunks: a
      // GEMM and its col2im on one core, with no team started and joined for each.
      const index_t chunk = col2im_chunk_channels(g, block.columns(), call.isa);
      const index_t taps = g.kernel_volume();
      const index_t chunks = (g.x_channels_per_group() + chunk - 1) / chunk;
      const double block_work = static_cast<double>(g.x_channels_per_group()) * taps *
                                block.columns() * g.y_channels_per_group();
      parallel_for(chunks, threads_for(block_work), [&](index_t index) {
        const index_t c0 = index * chunk;
        const index_t c1 = std::min(g.x_channels_per_group(), c0 + chunk);
        T* lowered = scratch<T>(Scratch::lowered, chunk * taps * block.columns());
        const MatrixOperand<T> b{gradient.data, gradient.ld, 1};
        const index_t m = (c1 - c0) * taps;
        if (call.weight.data == nullptr) {  // read once: the GEMM packs it panel by panel
          gemm<T>(m, block.columns(), g.y_channels_per_group(),
                  row_major(group_weight(g, w, group), rows).transposed().rows_from(c0 * taps), b,
                  lowered, block.columns(), false, call.isa);
        } else {
          gemm<T>(m, block.columns(), g.y_channels_per_group(),
                  call.weight[group].rows_from(c0 * taps), b, lowered, block.columns(), false,
                  call.isa);
        }
        col2im(g, lowered, block, dx_group, sample_stride, c0, c1);
      });
    }
  });
}

// dw = the sum over units of work of add_unit(unit, sum, accumulate), which adds the unit's
// share to `sum` (or writes it there unless `accumulate`). Units are dealt round-robin to a
// fixed number of partial sums, each summed in order by one thread and added up in order at the
// end, so the result is the same for any number of threads.
template <class T, class AddUnit>
void sum_in_lanes(index_t units, double work, index_t size, T* dw, AddUnit&& add_unit) {
  constexpr int lanes = 4;
  T* partial_sums = scratch<T>(Scratch::partial_sums, size * (lanes - 1));
  auto lane_sum = [&](index_t lane) { return lane == 0 ? dw : partial_sums + (lane - 1) * size; };
  bool started[lanes] = {false, false, false, false};
  int threads = std::min(threads_for(work), lanes);
  if (units < lanes) threads = 1;
  parallel_for(lanes, threads, [&](index_t lane) {
    for (index_t unit = lane; unit < units; unit += lanes) {
      add_unit(unit, lane_sum(lane), started[lane]);
      started[lane] = true;
    }
  });
  if (!started[0]) std::fill_n(dw, size, T(0));
  for (index_t lane = 1; lane < lanes; ++lane) {
    if (!started[lane]) continue;
    const T* sum = lane_sum(lane);
    for (index_t i = 0; i < size; ++i) dw[i] += sum[i];
  }
}

// dw = the gradient of conv_forward for its weight: the sum over column blocks of
// dy_block . lowered_block^T, summed the same way for any number of threads. dw is overwritten.
template <class T>
void backward_weight_kernel(const ConvGeometry& g, const KernelCall<T>& call, const T* x,
                            const T* dy, T* dw) {
  // Both GEMM paths multiply padding's zeros with dy, the shifted one the zeros of dy spread
  // past the output's edge with x too.
  const bool shifted = call.algorithm == Algorithm::shifted;
  if (call.algorithm == Algorithm::direct ||
      (call.algorithm != Algorithm::pointwise &&
       (!all_finite(dy, g.batch * g.y_channels * g.y_spatial()) ||
        (shifted && !all_finite(x, g.batch * g.x_channels * g.x_spatial()))))) {
    return direct_backward_weight(g, x, dy, dw);
  }
  const index_t rows = g.lowered_rows();
  const index_t size = g.y_channels * rows;
  if (call.algorithm == Algorithm::shifted) {
    const ShiftedProblem p = forward_problem(g);
    sum_in_lanes(sample_blocks(p), g.multiply_adds(), size, dw,
                 [&](index_t block, T* sum, bool accumulate) {
                   shifted_weight_block(p, x, dy, block, sum, accumulate, call.isa);
                 });
    return;
  }
  const KernelTap* taps = tap_table(g);
  const BlockPlan plan = block_plan(g, call.algorithm);
  const double work = lowered_work(g, call.algorithm);
  sum_in_lanes(plan.units, work, size, dw, [&](index_t unit, T* sum, bool accumulate) {
    for_each_block_of_unit(g, plan, unit, [&](ColumnBlock block) {
      for (index_t group = 0; group < g.groups; ++group) {
        const BlockOfY<const T> gradient = y_block(g, dy, group, block, true);
        gemm_lowered(g, call.algorithm, call.isa, taps, x, group, block, true,
                     g.y_channels_per_group(), rows, block.columns(),
                     MatrixOperand<T>{gradient.data, gradient.ld, 1},
                     sum + group * g.y_channels_per_group() * rows, rows, accumulate);
      }
      accumulate = true;
    });
  });
}

}  // namespace detail

// output[n, c, ...] += bias[c] over the layer's output (y for a convolution, x for a transposed
// one), threaded over planes.
template <class T>
void add_bias(const ConvGeometry& g, const T* bias, T* output) {
  const index_t channels = g.output_channels();
  const index_t spatial = g.kind == ConvKind::convolution ? g.y_spatial() : g.x_spatial();
  const index_t planes = g.batch * channels;
  detail::parallel_for(planes, detail::threads_for(4.0 * planes * spatial), [&](index_t plane) {
    T* values = output + plane * spatial;
    const T value = bias[plane % channels];
    for (index_t i = 0; i < spatial; ++i) values[i] += value;
  });
}

// grad_bias[c] = sum of grad_output[n, c, ...], summed in double in a fixed order by one thread
// per channel.
template <class T>
void bias_backward(const ConvGeometry& g, const T* grad_output, T* grad_bias) {
  const index_t channels = g.output_channels();
  const index_t spatial = g.kind == ConvKind::convolution ? g.y_spatial() : g.x_spatial();
  const double work = 4.0 * g.batch * channels * spatial;
  detail::parallel_for(channels, detail::threads_for(work), [&](index_t c) {
    double total = 0.0;
    for (index_t n = 0; n < g.batch; ++n) {
      const T* plane = grad_output + (n * channels + c) * spatial;
      double partial[4] = {0.0, 0.0, 0.0, 0.0};
      index_t i = 0;
      for (; i + 4 <= spatial; i += 4) {
        for (int lane = 0; lane < 4; ++lane) partial[lane] += plane[i + lane];
      }
      for (; i < spatial; ++i) partial[0] += plane[i];
      total += (partial[0] + partial[1]) + (partial[2] + partial[3]);
    }
    grad_bias[c] = static_cast<T>(total);
  });
}

}  // namespace convt
