#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "geometry.hpp"
#include "threading.hpp"
#include "workspace.hpp"

// Padding that holds values: PyTorch's padding_mode 'reflect', 'replicate' and 'circular'.
//
// A convolution whose padding holds values is the zero-padding convolution of a padded copy of
// x: conv_m = conv o P, where P copies x into the larger grid and fills the ring around it from
// x. Its adjoint, which is both the convolution's input gradient and the forward pass of the
// transposed convolution with that mode, is P^T o conv^T: the zero-padding kernel writes the
// whole padded grid, and the fold P^T adds each ring element back onto the element of x it was
// copied from (wrap-add for circular, mirror-add for reflect, edge-add for replicate). The weight
// gradient correlates dy with the padded copy. 'zeros' never comes here: its kernels treat the
// padding as a bounds check.

namespace convt {
namespace detail {

// True when the kernels must pad x with values: a mode other than zeros, some padding, and some
// samples (an empty batch reads nothing, however large each sample would be).
inline bool pads_with_values(const ConvGeometry& g) {
  if (g.padding_mode == PaddingMode::zeros || g.batch == 0) return false;
  for (int d = 0; d < max_spatial_dims; ++d) {
    if (g.padding_before[d] != 0 || g.padding_after[d] != 0) return true;
  }
  return false;
}

// The geometry of the same convolution over x already padded: no padding, x grown by it.
inline ConvGeometry padded_geometry(const ConvGeometry& g) {
  ConvGeometry padded = g;
  for (int d = 0; d < max_spatial_dims; ++d) {
    padded.x_size[d] += g.padding_before[d] + g.padding_after[d];
    padded.padding_before[d] = padded.padding_after[d] = 0;
  }
  padded.padding_mode = PaddingMode::zeros;
  return padded;
}

// The element of x (along one axis of `size` elements, padded by `before`) that padded
// position u holds. The geometry has checked that one reflection or one wrap reaches it.
inline index_t padding_source(PaddingMode mode, index_t u, index_t before, index_t size) {
  const index_t i = u - before;
  if (i >= 0 && i < size) return i;
  switch (mode) {
    case PaddingMode::reflect:
      return i < 0 ? -i : 2 * (size - 1) - i;
    case PaddingMode::circular:
      return i < 0 ? i + size : i - size;
    default:  // replicate
      return i < 0 ? 0 : size - 1;
  }
}

// Per axis, the source in x of every padded position, and the sizes on both sides.
struct PaddingMap {
  Extent size;
  Extent padded;
  Extent before;
  std::array<std::vector<index_t>, max_spatial_dims> source;

  explicit PaddingMap(const ConvGeometry& g) : size(g.x_size), before(g.padding_before) {
    for (int d = 0; d < max_spatial_dims; ++d) {
      padded[d] = g.x_size[d] + g.padding_before[d] + g.padding_after[d];
      source[d].resize(static_cast<std::size_t>(padded[d]));
      for (index_t u = 0; u < padded[d]; ++u) {
        source[d][u] = padding_source(g.padding_mode, u, before[d], size[d]);
      }
    }
  }

  index_t size_spatial() const { return size[0] * size[1] * size[2]; }
  index_t padded_spatial() const { return padded[0] * padded[1] * padded[2]; }
  // The start in x of the row that padded row (u0, u1) reads.
  index_t source_row(index_t u0, index_t u1) const {
    return (source[0][u0] * size[1] + source[1][u1]) * size[2];
  }
};

// Runs row(x_row, padded_row) for each row (along the last axis) of the padded grid of every
// (sample, channel) plane, x_row being the row of x it is filled from. A plane's rows run in
// order on one thread; planes run in parallel when there is enough work.
template <class T, class U, class Row>
void for_each_padded_row(const ConvGeometry& g, const PaddingMap& map, T* x, U* padded, Row&& row) {
  const index_t planes = g.batch * g.x_channels;
  const double work = 2.0 * static_cast<double>(planes) * map.padded_spatial();
  parallel_for(planes, threads_for(work), [&](index_t plane) {
    T* x_plane = x + plane * map.size_spatial();
    U* padded_plane = padded + plane * map.padded_spatial();
    for (index_t u0 = 0; u0 < map.padded[0]; ++u0) {
      for (index_t u1 = 0; u1 < map.padded[1]; ++u1) {
        row(x_plane + map.source_row(u0, u1),
            padded_plane + (u0 * map.padded[1] + u1) * map.padded[2]);
      }
    }
  });
}

// padded = P x: every plane of x copied into the middle of its padded plane, the ring filled
// from x by the geometry's mode.
template <class T>
void pad_x(const ConvGeometry& g, const PaddingMap& map, const T* x, T* padded) {
  const index_t before = map.before[2], size = map.size[2], end = map.padded[2];
  const std::vector<index_t>& source = map.source[2];
  for_each_padded_row(g, map, x, padded, [&](const T* from, T* to) {
    std::copy_n(from, size, to + before);
    for (index_t u = 0; u < before; ++u) to[u] = from[source[u]];
    for (index_t u = before + size; u < end; ++u) to[u] = from[source[u]];
  });
}

// x = P^T padded: each element of x is the sum of the padded elements copied from it, added in
// the padded grid's order whatever the number of threads. x is overwritten.
template <class T>
void fold_padding(const ConvGeometry& g, const PaddingMap& map, const T* padded, T* x) {
  const index_t before = map.before[2], size = map.size[2], end = map.padded[2];
  const std::vector<index_t>& source = map.source[2];
  std::fill_n(x, g.batch * g.x_channels * map.size_spatial(), T(0));
  for_each_padded_row(g, map, x, padded, [&](T* to, const T* from) {
    for (index_t i = 0; i < size; ++i) to[i] += from[before + i];
    for (index_t u = 0; u < before; ++u) to[source[u]] += from[u];
    for (index_t u = before + size; u < end; ++u) to[source[u]] += from[u];
  });
}

// The padded x of one call, in a buffer of the output pool: a padded copy as large as the
// whole batch costs no page faults once a call of its size has run.
template <class T>
class PaddedX {
 public:
  // The copy is allocated first: when it cannot be (a huge padding), that is a convt::Error,
  // before the map of its positions asks for memory too.
  explicit PaddedX(const ConvGeometry& g)
      : geometry_(padded_geometry(g)),
        bytes_(sizeof(T) * static_cast<std::size_t>(g.batch * g.x_channels) *
               static_cast<std::size_t>(geometry_.x_spatial())),
        data_(static_cast<T*>(output_pool().take(bytes_))),
        map_(g) {}
  ~PaddedX() { output_pool().give_back(data_, bytes_); }
  PaddedX(const PaddedX&) = delete;
  PaddedX& operator=(const PaddedX&) = delete;

  const PaddingMap& map() const { return map_; }
  const ConvGeometry& geometry() const { return geometry_; }
  T* data() const { return data_; }

 private:
  ConvGeometry geometry_;
  std::size_t bytes_;
  T* data_;
  PaddingMap map_;
};

// kernel(padded_geometry, padded_x) on x padded by the geometry's mode: the forward pass and
// the weight gradient.
template <class T, class Kernel>
void with_padded_x(const ConvGeometry& g, const T* x, Kernel&& kernel) {
  const PaddedX<T> padded(g);
  pad_x(g, padded.map(), x, padded.data());
  kernel(padded.geometry(), static_cast<const T*>(padded.data()));
}

// kernel(padded_geometry, padded_dx) writes the adjoint into the padded grid, which is then
// folded into dx: the input gradient.
template <class T, class Kernel>
void folded_into_x(const ConvGeometry& g, T* dx, Kernel&& kernel) {
  const PaddedX<T> padded(g);
  kernel(padded.geometry(), padded.data());
  fold_padding(g, padded.map(), static_cast<const T*>(padded.data()), dx);
}

}  // namespace detail
}  // namespace convt
