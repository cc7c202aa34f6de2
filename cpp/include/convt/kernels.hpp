#pragma once

#include <algorithm>
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
// skip the GEMM (direct.hpp). forward_algorithm / backward_input_algorithm say which.

namespace convt {
namespace detail {

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

// The lowered x side of one group over a column block, as a (lowered_rows x columns) operand:
// x itself for a one-sample pointwise block, else im2col packed on the fly.
template <class T>
struct LoweredX {
  bool pointwise;
  MatrixOperand<T> in_place;
  LoweredOperand<T> implicit;
};

template <class T>
LoweredX<T> lowered_x(const ConvGeometry& g, const KernelTap* taps, const T* x, index_t group,
                      ColumnBlock block) {
  const index_t sample_stride = g.x_channels * g.x_spatial();
  const T* first =
      x + block.first_sample * sample_stride + group * g.x_channels_per_group() * g.x_spatial();
  const bool pointwise = g.is_pointwise() && block.samples == 1;
  return {pointwise,
          {first + block.first_output, g.x_spatial(), 1},
          {&g, taps, first, sample_stride, block, 0, false}};
}

// gemm(m, n, k, a, B, ...) with B the lowered x side, or its transpose.
template <class T, class OperandA>
void gemm_lowered(index_t m, index_t n, index_t k, OperandA a, const LoweredX<T>& lowered,
                  bool transposed, T* c, index_t ldc, bool accumulate) {
  if (lowered.pointwise) {
    const MatrixOperand<T> b = transposed ? lowered.in_place.transposed() : lowered.in_place;
    return gemm<T>(m, n, k, a, b, c, ldc, accumulate);
  }
  LoweredOperand<T> b = lowered.implicit;
  b.transposed = transposed;
  gemm<T>(m, n, k, a, b, c, ldc, accumulate);
}

// Runs body(block) for every block. With a unit for each thread, threads take whole units and
// each GEMM runs on one core, its operands staying in that core's cache; otherwise each GEMM is
// threaded. Either way each output is summed in the same order.
template <class Body>
void for_each_block(const ConvGeometry& g, Body&& body) {
  const BlockPlan plan = plan_blocks(g);
  int threads = threads_for(g.multiply_adds());
  if (plan.units < threads) threads = 1;
  parallel_for(plan.units, threads,
               [&](index_t unit) { for_each_block_of_unit(g, plan, unit, body); });
}

// Channels per col2im chunk: about 2^17 lowered elements (half a megabyte of float), and a
// multiple of 24 channels so that each chunk's first row starts a packed tile of every
// instruction set (8, 6 or 4 rows).
inline index_t col2im_chunk_channels(const ConvGeometry& g, index_t columns) {
  constexpr index_t chunk_elements = index_t{1} << 17;
  constexpr index_t channel_multiple = 24;
  const index_t wanted = chunk_elements / (columns * g.kernel_volume());
  return std::max(channel_multiple, wanted / channel_multiple * channel_multiple);
}

template <class T>
const T* group_weight(const ConvGeometry& g, const T* w, index_t group) {
  return w + group * g.y_channels_per_group() * g.lowered_rows();
}

}  // namespace detail

// How conv_forward and conv_backward_weight compute a geometry: "direct" (tiny or depthwise
// layers, no GEMM), "shifted" (stride 1: a GEMM over a padded copy of x), "pointwise" (1x1: a
// GEMM over x itself) or "im2col" (a GEMM over im2col blocks of x, packed on the fly).
inline const char* forward_algorithm(const ConvGeometry& g) {
  if (detail::pads_with_values(g)) return forward_algorithm(detail::padded_geometry(g));
  if (detail::prefers_direct(g)) return "direct";
  if (detail::prefers_shifted_forward(g)) return "shifted";
  if (g.is_pointwise()) return "pointwise";
  return "im2col";
}

// How conv_backward_input computes it: "direct", "shifted" (stride 1: the forward pass of the
// flipped kernel over a padded copy of dy), "pointwise" or "col2im" (a GEMM into column blocks,
// added into dx).
inline const char* backward_input_algorithm(const ConvGeometry& g) {
  if (detail::pads_with_values(g)) return backward_input_algorithm(detail::padded_geometry(g));
  if (detail::prefers_direct(g)) return "direct";
  if (detail::prefers_shifted_backward_input(g)) return "shifted";
  if (g.is_pointwise()) return "pointwise";
  return "col2im";
}

// y = x (*) w: cross-correlation with stride, padding, dilation and groups, as PyTorch's conv.
// x: x_shape(), w: weight_shape(), y: y_shape(); y is overwritten.
template <class T>
void conv_forward(const ConvGeometry& g, const T* x, const T* w, T* y) {
  if (detail::pads_with_values(g)) {
    return detail::with_padded_x(
        g, x, [&](const ConvGeometry& padded, const T* px) { conv_forward(padded, px, w, y); });
  }
  if (detail::prefers_direct(g)) return detail::direct_forward(g, x, w, y);
  if (detail::prefers_shifted_forward(g))
    return detail::shifted_forward(detail::forward_problem(g), x, w, y);
  const index_t rows = g.lowered_rows();
  const detail::KernelTap* taps = detail::tap_table(g);
  const PackedOperands<T> weight = pack_each<T>(
      g.groups, g.y_channels_per_group(), rows,
      [&](index_t group) { return row_major(detail::group_weight(g, w, group), rows); });
  detail::for_each_block(g, [&](detail::ColumnBlock block) {
    for (index_t group = 0; group < g.groups; ++group) {
      const detail::BlockOfY<T> out = detail::y_block(g, y, group, block, false);
      detail::gemm_lowered(g.y_channels_per_group(), block.columns(), rows, weight[group],
                           detail::lowered_x(g, taps, x, group, block), false, out.data, out.ld,
                           false);
      detail::scatter_y_block(g, out, y, group, block);
    }
  });
}

// dx = the adjoint of conv_forward applied to dy: the gradient of a convolution for its input,
// and the forward pass of a transposed convolution. dx is overwritten.
template <class T>
void conv_backward_input(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  if (detail::pads_with_values(g)) {
    return detail::folded_into_x(g, dx, [&](const ConvGeometry& padded, T* pdx) {
      conv_backward_input(padded, dy, w, pdx);
    });
  }
  if (detail::prefers_direct(g)) return detail::direct_backward_input(g, dy, w, dx);
  if (detail::prefers_shifted_backward_input(g)) {
    return detail::shifted_forward(detail::backward_input_problem(g), dy, detail::flip_weight(g, w),
                                   dx);
  }
  const index_t rows = g.lowered_rows();
  const index_t sample_stride = g.x_channels * g.x_spatial();
  const PackedOperands<T> weight_t =
      pack_each<T>(g.groups, rows, g.y_channels_per_group(), [&](index_t group) {
        return row_major(detail::group_weight(g, w, group), rows).transposed();
      });
  detail::for_each_block(g, [&](detail::ColumnBlock block) {
    const bool direct = g.is_pointwise() && block.samples == 1;
    if (!direct && block.first_output == 0) {
      std::fill_n(dx + block.first_sample * sample_stride, block.samples * sample_stride, T(0));
    }
    for (index_t group = 0; group < g.groups; ++group) {
      const detail::BlockOfY<const T> gradient = detail::y_block(g, dy, group, block, true);
      T* dx_group = dx + block.first_sample * sample_stride +
                    group * g.x_channels_per_group() * g.x_spatial();
      if (direct) {
        gemm<T>(rows, block.columns(), g.y_channels_per_group(), weight_t[group],
                row_major(gradient.data, gradient.ld), dx_group + block.first_output, g.x_spatial(),
                false);
        continue;
      }
      // A chunk of channels at a time, so that their lowered rows are still in the core's
      // cache when col2im adds them up.
      const index_t chunk = detail::col2im_chunk_channels(g, block.columns());
      const index_t taps = g.kernel_volume();
      T* lowered = detail::scratch<T>(detail::Scratch::lowered, chunk * taps * block.columns());
      for (index_t c0 = 0; c0 < g.x_channels_per_group(); c0 += chunk) {
        const index_t c1 = std::min(g.x_channels_per_group(), c0 + chunk);
        gemm<T>((c1 - c0) * taps, block.columns(), g.y_channels_per_group(),
                weight_t[group].rows_from(c0 * taps),
                MatrixOperand<T>{gradient.data, gradient.ld, 1}, lowered, block.columns(), false);
        detail::col2im(g, lowered, block, dx_group, sample_stride, c0, c1);
      }
    }
  });
}

namespace detail {

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

}  // namespace detail

// dw = the gradient of conv_forward for its weight: the sum over column blocks of
// dy_block . lowered_block^T, summed the same way for any number of threads. dw is overwritten.
template <class T>
void conv_backward_weight(const ConvGeometry& g, const T* x, const T* dy, T* dw) {
  if (detail::pads_with_values(g)) {
    return detail::with_padded_x(g, x, [&](const ConvGeometry& padded, const T* px) {
      conv_backward_weight(padded, px, dy, dw);
    });
  }
  if (detail::prefers_direct(g)) return detail::direct_backward_weight(g, x, dy, dw);
  const index_t rows = g.lowered_rows();
  const index_t size = g.y_channels * rows;
  const double work = g.multiply_adds();
  if (detail::prefers_shifted_forward(g)) {
    const detail::ShiftedProblem p = detail::forward_problem(g);
    detail::sum_in_lanes(detail::sample_blocks(p), work, size, dw,
                         [&](index_t block, T* sum, bool accumulate) {
                           detail::shifted_weight_block(p, x, dy, block, sum, accumulate);
                         });
    return;
  }
  const detail::KernelTap* taps = detail::tap_table(g);
  const detail::BlockPlan plan = detail::plan_blocks(g);
  detail::sum_in_lanes(plan.units, work, size, dw, [&](index_t unit, T* sum, bool accumulate) {
    detail::for_each_block_of_unit(g, plan, unit, [&](detail::ColumnBlock block) {
      for (index_t group = 0; group < g.groups; ++group) {
        const detail::BlockOfY<const T> gradient = detail::y_block(g, dy, group, block, true);
        detail::gemm_lowered(g.y_channels_per_group(), rows, block.columns(),
                             MatrixOperand<T>{gradient.data, gradient.ld, 1},
                             detail::lowered_x(g, taps, x, group, block), true,
                             sum + group * g.y_channels_per_group() * rows, rows, accumulate);
      }
      accumulate = true;
    });
  });
}

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
