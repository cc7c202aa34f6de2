#pragma once

// A plain-loop reference for the three kernels and the bias pair, independent of convt: its own
// description of the problem, its own output-size arithmetic, float64 sums, and the loops of the
// seeds' naive algorithms (gather for the forward pass, scatter for the gradients), corrected for
// stride, asymmetric padding, dilation, groups and padding that holds values (PyTorch's
// padding_mode). Tensors are contiguous (N, C, d0, d1, d2); unused spatial dimensions have size 1.

#include <array>
#include <cstddef>
#include <vector>

namespace reference {

using Index = std::ptrdiff_t;
using Extent = std::array<Index, 3>;

// What a tap that falls in the padding reads: nothing, or the element of x that PyTorch's
// F.pad(mode) puts there.
enum class Mode { zeros, reflect, replicate, circular };

// The element of x (along an axis of `size`) that position i, outside [0, size) when it falls
// in the padding, reads; -1 for none. Reflection and wrapping repeat as often as needed, which
// PyTorch's rules on padding sizes never ask for.
inline Index padded_source(Mode mode, Index i, Index size) {
  if (i >= 0 && i < size) return i;
  switch (mode) {
    case Mode::zeros:
      return -1;
    case Mode::replicate:
      return i < 0 ? 0 : size - 1;
    case Mode::circular:
      return ((i % size) + size) % size;
    case Mode::reflect: {
      if (size == 1) return 0;
      const Index period = 2 * (size - 1);
      const Index r = ((i % period) + period) % period;
      return r < size ? r : period - r;
    }
  }
  return -1;
}

// One convolution y = x (*) w. `x` is the image side (a convolution's input, a transposed
// convolution's output), `y` the response side; w is (y_channels, x_channels / groups, k...).
struct Problem {
  int dims = 2;
  Index batch = 1;
  Index groups = 1;
  Index x_channels = 1;
  Index y_channels = 1;
  Extent x_size{1, 1, 1};
  Extent kernel{1, 1, 1};
  Extent stride{1, 1, 1};
  Extent pad_before{0, 0, 0};
  Extent pad_after{0, 0, 0};
  Extent dilation{1, 1, 1};
  Mode mode = Mode::zeros;
  Extent y_size{1, 1, 1};  // a convolution's: conv_output_size(); a transposed one's: its input

  Index x_spatial() const { return x_size[0] * x_size[1] * x_size[2]; }
  Index y_spatial() const { return y_size[0] * y_size[1] * y_size[2]; }
  Index kernel_volume() const { return kernel[0] * kernel[1] * kernel[2]; }
  Index x_per_group() const { return x_channels / groups; }
  Index y_per_group() const { return y_channels / groups; }
  Index x_count() const { return batch * x_channels * x_spatial(); }
  Index y_count() const { return batch * y_channels * y_spatial(); }
  Index w_count() const { return y_channels * x_per_group() * kernel_volume(); }
};

// A convolution's output size: floor((x + pad_before + pad_after - dilation * (kernel - 1) - 1)
// / stride) + 1 per dimension.
inline Extent conv_output_size(const Problem& p) {
  Extent y{1, 1, 1};
  for (int d = 0; d < 3; ++d) {
    y[d] =
        (p.x_size[d] + p.pad_before[d] + p.pad_after[d] - p.dilation[d] * (p.kernel[d] - 1) - 1) /
            p.stride[d] +
        1;
  }
  return y;
}

// Calls visit(x_index, y_index, w_index) for every multiply-add of the convolution:
// y[y_index] += w[w_index] * x[x_index]. Taps that fall in zero padding are skipped; taps that
// fall in padding holding values read the element of x it holds.
template <class Visit>
void for_each_term(const Problem& p, Visit&& visit) {
  const Extent& y = p.y_size;
  for (Index n = 0; n < p.batch; ++n) {
    for (Index f = 0; f < p.y_channels; ++f) {
      const Index group = f / p.y_per_group();
      for (Index o0 = 0; o0 < y[0]; ++o0) {
        for (Index o1 = 0; o1 < y[1]; ++o1) {
          for (Index o2 = 0; o2 < y[2]; ++o2) {
            const Index y_index = (((n * p.y_channels + f) * y[0] + o0) * y[1] + o1) * y[2] + o2;
            for (Index cg = 0; cg < p.x_per_group(); ++cg) {
              const Index c = group * p.x_per_group() + cg;
              for (Index k0 = 0; k0 < p.kernel[0]; ++k0) {
                const Index i0 = o0 * p.stride[0] - p.pad_before[0] + k0 * p.dilation[0];
                const Index j0 = padded_source(p.mode, i0, p.x_size[0]);
                if (j0 < 0) continue;
                for (Index k1 = 0; k1 < p.kernel[1]; ++k1) {
                  const Index i1 = o1 * p.stride[1] - p.pad_before[1] + k1 * p.dilation[1];
                  const Index j1 = padded_source(p.mode, i1, p.x_size[1]);
                  if (j1 < 0) continue;
                  for (Index k2 = 0; k2 < p.kernel[2]; ++k2) {
                    const Index i2 = o2 * p.stride[2] - p.pad_before[2] + k2 * p.dilation[2];
                    const Index j2 = padded_source(p.mode, i2, p.x_size[2]);
                    if (j2 < 0) continue;
                    const Index x_index =
                        (((n * p.x_channels + c) * p.x_size[0] + j0) * p.x_size[1] + j1) *
                            p.x_size[2] +
                        j2;
                    const Index w_index =
                        (((f * p.x_per_group() + cg) * p.kernel[0] + k0) * p.kernel[1] + k1) *
                            p.kernel[2] +
                        k2;
                    visit(x_index, y_index, w_index);
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

// y = x (*) w, gathered: each output sums its window.
template <class T>
std::vector<double> conv_forward(const Problem& p, const std::vector<T>& x,
                                 const std::vector<T>& w) {
  std::vector<double> y(static_cast<std::size_t>(p.y_count()), 0.0);
  for_each_term(p, [&](Index xi, Index yi, Index wi) {
    y[yi] += static_cast<double>(w[wi]) * static_cast<double>(x[xi]);
  });
  return y;
}

// dx: every output's gradient scattered back through the kernel onto the inputs it read.
template <class T>
std::vector<double> conv_backward_input(const Problem& p, const std::vector<T>& dy,
                                        const std::vector<T>& w) {
  std::vector<double> dx(static_cast<std::size_t>(p.x_count()), 0.0);
  for_each_term(p, [&](Index xi, Index yi, Index wi) {
    dx[xi] += static_cast<double>(w[wi]) * static_cast<double>(dy[yi]);
  });
  return dx;
}

// dw: every output's gradient times the input each tap read, summed over the batch.
template <class T>
std::vector<double> conv_backward_weight(const Problem& p, const std::vector<T>& x,
                                         const std::vector<T>& dy) {
  std::vector<double> dw(static_cast<std::size_t>(p.w_count()), 0.0);
  for_each_term(p, [&](Index xi, Index yi, Index wi) {
    dw[wi] += static_cast<double>(dy[yi]) * static_cast<double>(x[xi]);
  });
  return dw;
}

// output[n, c, ...] + bias[c] for an output of `channels` channels of `spatial` elements.
template <class T>
std::vector<double> add_bias(const std::vector<double>& output, const std::vector<T>& bias,
                             Index batch, Index channels, Index spatial) {
  std::vector<double> result = output;
  for (Index n = 0; n < batch; ++n) {
    for (Index c = 0; c < channels; ++c) {
      for (Index i = 0; i < spatial; ++i) result[(n * channels + c) * spatial + i] += bias[c];
    }
  }
  return result;
}

// sum over n and the spatial positions of grad_output[n, c, ...].
template <class T>
std::vector<double> bias_backward(const std::vector<T>& grad_output, Index batch, Index channels,
                                  Index spatial) {
  std::vector<double> result(static_cast<std::size_t>(channels), 0.0);
  for (Index n = 0; n < batch; ++n) {
    for (Index c = 0; c < channels; ++c) {
      for (Index i = 0; i < spatial; ++i)
        result[c] += grad_output[(n * channels + c) * spatial + i];
    }
  }
  return result;
}

}  // namespace reference
