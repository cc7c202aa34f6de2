#pragma once

#include <algorithm>

#include "geometry.hpp"
#include "lowering.hpp"
#include "threading.hpp"

// Convolution without lowering: the sums run straight over input lines, with no im2col matrix
// and no packing. It wins where a GEMM would be mostly overhead: problems of a few thousand
// multiply-adds (the seed's 10x10 layers), and depthwise layers, whose GEMM would have a single
// row per group.

namespace convt {
namespace detail {

// Direct kernels serve depthwise layers (one input channel and few output channels per group)
// and problems too small to amortise packing.
inline bool prefers_direct(const ConvGeometry& g) {
  const bool depthwise = g.x_channels_per_group() == 1 && g.y_channels_per_group() <= 4;
  return depthwise || g.multiply_adds() <= 32768.0;
}

// Calls visit(x_plane, y_plane, f, c) for every (sample, y channel, x channel of its group),
// threaded over (sample, y channel) so that each y plane is owned by one thread.
template <class Visit>
void for_each_y_plane(const ConvGeometry& g, Visit&& visit) {
  const index_t planes = g.batch * g.y_channels;
  parallel_for_static(planes, threads_for(g.multiply_adds()), [&](index_t plane) {
    const index_t n = plane / g.y_channels;
    const index_t f = plane % g.y_channels;
    const index_t group = f / g.y_channels_per_group();
    for (index_t c = 0; c < g.x_channels_per_group(); ++c) {
      visit(n * g.x_channels + group * g.x_channels_per_group() + c, plane, f, c);
    }
  });
}

// out[o] += weight * in[o] for o in [first, last); x and y never overlap, which lets the
// compiler vectorise it.
template <class T>
void axpy(T* __restrict out, const T* __restrict in, T weight, index_t first, index_t last) {
  for (index_t o = first; o < last; ++o) out[o] += weight * in[o];
}

template <class T>
void direct_forward(const ConvGeometry& g, const T* x, const T* w, T* y) {
  const index_t outputs = g.y_spatial();
  const index_t stride = g.stride[2];
  std::fill_n(y, g.batch * g.y_channels * outputs, T(0));
  for_each_y_plane(g, [&](index_t x_plane, index_t y_plane, index_t f, index_t c) {
    const T* source = x + x_plane * g.x_spatial();
    T* target = y + y_plane * outputs;
    const T* weights = w + f * g.lowered_rows();
    for_each_lowered_line(g, c, 0, outputs,
                          [&](index_t row, index_t column, index_t x_offset, index_t count) {
                            const T weight = weights[row];
                            const T* in = source + x_offset;
                            T* out = target + column;
                            if (stride == 1) {
                              axpy(out, in, weight, 0, count);
                            } else {
                              for (index_t o = 0; o < count; ++o) {
                                out[o] += weight * in[o * stride];
                              }
                            }
                          });
  });
}

// Scatters every y plane into x; threaded over x planes (sample, x channel), each of which
// gathers from the y channels of its group in order.
template <class T>
void direct_backward_input(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  const index_t outputs = g.y_spatial();
  const index_t stride = g.stride[2];
  const index_t planes = g.batch * g.x_channels;
  parallel_for_static(planes, threads_for(g.multiply_adds()), [&](index_t plane) {
    const index_t n = plane / g.x_channels;
    const index_t group = plane % g.x_channels / g.x_channels_per_group();
    const index_t c = plane % g.x_channels_per_group();
    T* target = dx + plane * g.x_spatial();
    std::fill_n(target, g.x_spatial(), T(0));
    for (index_t fg = 0; fg < g.y_channels_per_group(); ++fg) {
      const index_t f = group * g.y_channels_per_group() + fg;
      const T* source = dy + (n * g.y_channels + f) * outputs;
      const T* weights = w + f * g.lowered_rows();
      for_each_lowered_line(g, c, 0, outputs,
                            [&](index_t row, index_t column, index_t x_offset, index_t count) {
                              const T weight = weights[row];
                              const T* in = source + column;
                              T* out = target + x_offset;
                              if (stride == 1) {
                                axpy(out, in, weight, 0, count);
                              } else {
                                for (index_t o = 0; o < count; ++o) {
                                  out[o * stride] += weight * in[o];
                                }
                              }
                            });
    }
  });
}

// sum of a[o] * b[o * stride] for o in [0, count), in lanes that the compiler vectorises when
// the stride is one. The order is fixed, so the result is too.
template <class T>
T strided_dot(const T* a, const T* b, index_t stride, index_t count) {
  constexpr int lanes = 8;
  T partial[lanes] = {};
  const index_t last = count;
  index_t o = 0;
  if (stride == 1) {
    for (; o + lanes <= last; o += lanes) {
      for (int j = 0; j < lanes; ++j) partial[j] += a[o + j] * b[o + j];
    }
  }
  for (; o < last; ++o) partial[0] += a[o] * b[o * stride];
  T sum = 0;
  for (int j = 0; j < lanes; ++j) sum += partial[j];
  return sum;
}

// Threaded over weight rows (y channel, x channel); each sums over samples in order.
template <class T>
void direct_backward_weight(const ConvGeometry& g, const T* x, const T* dy, T* dw) {
  const index_t outputs = g.y_spatial();
  const index_t stride = g.stride[2];
  const index_t rows = g.y_channels * g.x_channels_per_group();
  parallel_for_static(rows, threads_for(g.multiply_adds()), [&](index_t weight_row) {
    const index_t f = weight_row / g.x_channels_per_group();
    const index_t c = weight_row % g.x_channels_per_group();
    const index_t group = f / g.y_channels_per_group();
    T* target = dw + f * g.lowered_rows();
    std::fill_n(target + c * g.kernel_volume(), g.kernel_volume(), T(0));
    for (index_t n = 0; n < g.batch; ++n) {
      const T* source =
          x + (n * g.x_channels + group * g.x_channels_per_group() + c) * g.x_spatial();
      const T* gradient = dy + (n * g.y_channels + f) * outputs;
      for_each_lowered_line(
          g, c, 0, outputs, [&](index_t row, index_t column, index_t x_offset, index_t count) {
            target[row] += strided_dot(gradient + column, source + x_offset, stride, count);
          });
    }
  });
}

}  // namespace detail
}  // namespace convt
