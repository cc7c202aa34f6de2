#pragma once

#include <algorithm>
#include <type_traits>

#include "gemm.hpp"
#include "geometry.hpp"
#include "lowering.hpp"
#include "threading.hpp"
#include "workspace.hpp"

// The three kernels every layer is built from, on contiguous (N, C, spatial...) buffers.
//
//   kernel                 convolution layer     transposed convolution layer
//   conv_forward           forward               backward for input
//   conv_backward_input    backward for input    forward
//   conv_backward_weight   backward for weight   backward for weight (x and dy swap roles)
//
// plus the bias pair add/sum over the output's channels. Each lowers one group of one sample at a
// time through im2col / col2im into a GEMM, so scratch memory is bounded by one sample's lowered
// matrix whatever the batch size.

namespace convt {
namespace detail {

// Runs body(n) for every sample: in parallel over samples when one sample is too small to be
// worth splitting, serially (with each GEMM threaded inside) otherwise.
template <class Body>
void for_each_sample(const ConvGeometry& g, Body&& body) {
  const double work = static_cast<double>(g.lowered_rows()) * g.y_spatial() * g.y_channels;
  const int threads = threads_for(work) > 1 ? 1 : threads_for(work * g.batch);
  (void)threads;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (index_t n = 0; n < g.batch; ++n) body(n);
}

template <class T>
const T* lower(const ConvGeometry& g, const T* x_group) {
  if (g.is_pointwise()) return x_group;
  T* lowered = scratch<T>(Scratch::lowered, g.lowered_rows() * g.y_spatial());
  im2col(g, x_group, lowered);
  return lowered;
}

}  // namespace detail

// y = x (*) w: cross-correlation with stride, padding, dilation and groups, as PyTorch's conv.
// x: x_shape(), w: weight_shape(), y: y_shape(); y is overwritten.
template <class T>
void conv_forward(const ConvGeometry& g, const T* x, const T* w, T* y) {
  const index_t rows = g.lowered_rows();
  const index_t columns = g.y_spatial();
  const index_t x_group = g.x_channels_per_group() * g.x_spatial();
  const index_t y_group = g.y_channels_per_group() * columns;
  detail::for_each_sample(g, [&](index_t n) {
    for (index_t group = 0; group < g.groups; ++group) {
      const T* lowered = detail::lower(g, x + (n * g.groups + group) * x_group);
      gemm<T>(g.y_channels_per_group(), columns, rows,
              row_major(w + group * g.y_channels_per_group() * rows, rows),
              row_major(lowered, columns), y + (n * g.groups + group) * y_group, columns, false);
    }
  });
}

// dx = the adjoint of conv_forward applied to dy: the gradient of a convolution for its input,
// and the forward pass of a transposed convolution. dx is overwritten.
template <class T>
void conv_backward_input(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  const index_t rows = g.lowered_rows();
  const index_t columns = g.y_spatial();
  const index_t x_group = g.x_channels_per_group() * g.x_spatial();
  const index_t y_group = g.y_channels_per_group() * columns;
  detail::for_each_sample(g, [&](index_t n) {
    for (index_t group = 0; group < g.groups; ++group) {
      const MatrixOperand<T> weight_t =
          row_major(w + group * g.y_channels_per_group() * rows, rows).transposed();
      const MatrixOperand<T> dy_group = row_major(dy + (n * g.groups + group) * y_group, columns);
      T* dx_group = dx + (n * g.groups + group) * x_group;
      if (g.is_pointwise()) {
        gemm<T>(rows, columns, g.y_channels_per_group(), weight_t, dy_group, dx_group, columns,
                false);
      } else {
        T* lowered = detail::scratch<T>(detail::Scratch::lowered, rows * columns);
        gemm<T>(rows, columns, g.y_channels_per_group(), weight_t, dy_group, lowered, columns,
                false);
        detail::col2im(g, lowered, dx_group);
      }
    }
  });
}

// dw = the gradient of conv_forward for its weight: sum over samples of dy . im2col(x)^T.
// Samples are summed in order, so the result does not depend on the thread count. dw is
// overwritten.
template <class T>
void conv_backward_weight(const ConvGeometry& g, const T* x, const T* dy, T* dw) {
  const index_t rows = g.lowered_rows();
  const index_t columns = g.y_spatial();
  const index_t x_group = g.x_channels_per_group() * g.x_spatial();
  const index_t y_group = g.y_channels_per_group() * columns;
  if (g.batch == 0) std::fill(dw, dw + g.y_channels * rows, T(0));
  for (index_t group = 0; group < g.groups; ++group) {
    for (index_t n = 0; n < g.batch; ++n) {
      const T* lowered = detail::lower(g, x + (n * g.groups + group) * x_group);
      gemm<T>(g.y_channels_per_group(), rows, columns,
              row_major(dy + (n * g.groups + group) * y_group, columns),
              row_major(lowered, columns).transposed(),
              dw + group * g.y_channels_per_group() * rows, rows, n > 0);
    }
  }
}

// output[n, c, ...] += bias[c] over the layer's output (y for a convolution, x for a transposed
// one).
template <class T>
void add_bias(const ConvGeometry& g, const T* bias, T* output) {
  const index_t channels = g.output_channels();
  const index_t spatial = g.kind == ConvKind::convolution ? g.y_spatial() : g.x_spatial();
  for (index_t n = 0; n < g.batch; ++n) {
    for (index_t c = 0; c < channels; ++c) {
      T* plane = output + (n * channels + c) * spatial;
      const T value = bias[c];
      for (index_t i = 0; i < spatial; ++i) plane[i] += value;
    }
  }
}

// grad_bias[c] = sum of grad_output[n, c, ...], summed in double in a fixed order.
template <class T>
void bias_backward(const ConvGeometry& g, const T* grad_output, T* grad_bias) {
  const index_t channels = g.output_channels();
  const index_t spatial = g.kind == ConvKind::convolution ? g.y_spatial() : g.x_spatial();
  for (index_t c = 0; c < channels; ++c) {
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
  }
}

}  // namespace convt
