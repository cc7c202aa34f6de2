#pragma once

#include <algorithm>
#include <cstring>

#include "geometry.hpp"
#include "threading.hpp"

namespace convt {
namespace detail {

// The outputs o in [first, last) of one dimension whose tap o * stride + offset lands inside
// [0, size); outside that range the tap reads padding.
struct TapRange {
  index_t first;
  index_t last;
};

inline TapRange tap_range(index_t offset, index_t stride, index_t size, index_t outputs) {
  const index_t first = offset >= 0 ? 0 : std::min(outputs, (-offset + stride - 1) / stride);
  const index_t last = offset >= size ? 0 : std::min(outputs, (size - 1 - offset) / stride + 1);
  return {first, std::max(first, last)};
}

// Visits every (row, output line) of the im2col matrix of one group of one sample. A row is an
// (input channel, kernel tap) pair; an output line is a run of outputs along the last spatial
// dimension. `visit(row, channel, column, x_offset, range)` receives the offset of the line's
// first element in the lowered matrix, the offset in the channel's input of the element that
// output 0 of the line would read, and the outputs whose reads fall inside the input.
template <class Visit>
void for_each_lowered_line(const ConvGeometry& g, index_t channel, Visit&& visit) {
  const index_t taps = g.kernel_volume();
  for (index_t tap = 0; tap < taps; ++tap) {
    const index_t k2 = tap % g.kernel[2];
    const index_t k1 = tap / g.kernel[2] % g.kernel[1];
    const index_t k0 = tap / (g.kernel[2] * g.kernel[1]);
    const index_t row = channel * taps + tap;
    const index_t offset0 = k0 * g.dilation[0] - g.padding_before[0];
    const index_t offset1 = k1 * g.dilation[1] - g.padding_before[1];
    const index_t offset2 = k2 * g.dilation[2] - g.padding_before[2];
    const TapRange range2 = tap_range(offset2, g.stride[2], g.x_size[2], g.y_size[2]);
    for (index_t o0 = 0; o0 < g.y_size[0]; ++o0) {
      const index_t i0 = o0 * g.stride[0] + offset0;
      for (index_t o1 = 0; o1 < g.y_size[1]; ++o1) {
        const index_t i1 = o1 * g.stride[1] + offset1;
        const index_t column = (o0 * g.y_size[1] + o1) * g.y_size[2];
        const bool inside = i0 >= 0 && i0 < g.x_size[0] && i1 >= 0 && i1 < g.x_size[1];
        const TapRange range = inside ? range2 : TapRange{0, 0};
        visit(row, column, (i0 * g.x_size[1] + i1) * g.x_size[2] + offset2, range);
      }
    }
  }
}

// lowered[(c, tap), o] = x[c, o * stride - padding_before + tap * dilation], zero in the padding.
// `x` points at the group's first channel of one sample; `lowered` has lowered_rows() rows of
// y_spatial() columns.
template <class T>
void im2col(const ConvGeometry& g, const T* x, T* lowered) {
  const index_t channels = g.x_channels_per_group();
  const index_t columns = g.y_spatial();
  const index_t line = g.y_size[2];
  const index_t stride = g.stride[2];
  const int threads = threads_for(static_cast<double>(g.lowered_rows()) * columns);
  (void)threads;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (index_t c = 0; c < channels; ++c) {
    const T* source = x + c * g.x_spatial();
    for_each_lowered_line(g, c, [&](index_t row, index_t column, index_t x_offset, TapRange range) {
      T* out = lowered + row * columns + column;
      std::fill(out, out + range.first, T(0));
      const T* in = source + x_offset;
      if (stride == 1) {
        std::copy(in + range.first, in + range.last, out + range.first);
      } else {
        for (index_t o = range.first; o < range.last; ++o) out[o] = in[o * stride];
      }
      std::fill(out + range.last, out + line, T(0));
    });
  }
}

// The adjoint of im2col: x[c, i] += lowered[(c, tap), o] for every (tap, o) that reads i.
// Each thread owns whole channels, so the sums run in the same order for any thread count.
template <class T>
void col2im(const ConvGeometry& g, const T* lowered, T* x) {
  const index_t channels = g.x_channels_per_group();
  const index_t columns = g.y_spatial();
  const index_t stride = g.stride[2];
  const int threads = threads_for(static_cast<double>(g.lowered_rows()) * columns);
  (void)threads;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (index_t c = 0; c < channels; ++c) {
    T* target = x + c * g.x_spatial();
    std::fill(target, target + g.x_spatial(), T(0));
    for_each_lowered_line(g, c, [&](index_t row, index_t column, index_t x_offset, TapRange range) {
      const T* in = lowered + row * columns + column;
      T* out = target + x_offset;
      for (index_t o = range.first; o < range.last; ++o) out[o * stride] += in[o];
    });
  }
}

}  // namespace detail
}  // namespace convt
