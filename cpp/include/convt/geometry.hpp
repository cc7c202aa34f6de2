#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"

namespace convt {

using index_t = std::ptrdiff_t;
using Shape = std::vector<index_t>;

inline constexpr int max_spatial_dims = 3;

// Per spatial dimension values, right-aligned: a 2-D problem uses entries 1 and 2 and entry 0
// holds a neutral value (size 1, stride 1, padding 0), so that loops written for three dimensions
// serve one and two and the last entry is always the contiguous one.
using Extent = std::array<index_t, max_spatial_dims>;

// How the padding amounts are found: as given, none ("valid"), or TensorFlow's "same" (a
// convolution's output is ceil(input / stride), a transposed one's input x stride).
enum class PaddingRule { explicit_values, valid, same };

// What the padding holds, as PyTorch's padding_mode: zeros, the input mirrored about its edge
// (without repeating the edge), the edge repeated, or the input wrapped around.
enum class PaddingMode { zeros, reflect, replicate, circular };

inline const char* padding_mode_name(PaddingMode mode) {
  switch (mode) {
    case PaddingMode::zeros:
      return "zeros";
    case PaddingMode::reflect:
      return "reflect";
    case PaddingMode::replicate:
      return "replicate";
    case PaddingMode::circular:
      return "circular";
  }
  return "?";
}

inline PaddingMode parse_padding_mode(const std::string& name) {
  for (PaddingMode mode :
       {PaddingMode::zeros, PaddingMode::reflect, PaddingMode::replicate, PaddingMode::circular}) {
    if (name == padding_mode_name(mode)) return mode;
  }
  throw Error("padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got '" + name +
              "'");
}

enum class ConvKind { convolution, transposed };

// The arguments of a call as a user gives them: each per-dimension list holds one value (used for
// every spatial dimension) or one value per dimension.
struct ConvOptions {
  Shape stride{1};
  Shape padding{0};       // before each spatial dimension, and after it unless padding_after is set
  Shape padding_after{};  // empty: symmetric padding
  PaddingRule padding_rule = PaddingRule::explicit_values;
  PaddingMode padding_mode = PaddingMode::zeros;
  Shape dilation{1};
  index_t groups = 1;
  Shape output_padding{0};  // transposed convolution only
  Shape output_size{};      // transposed convolution only; when set it decides output_padding
};

namespace detail {

inline std::string format_values(const Shape& values) {
  std::string text = "(";
  for (std::size_t i = 0; i < values.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(values[i]);
  }
  return text + (values.size() == 1 ? ",)" : ")");
}

// An argument's values as the messages name them: one value as "(2)", as groups (2) is named;
// several as "(1, 2)". Shapes keep Python's "(2,)".
inline std::string format_arguments(const Shape& values) {
  return values.size() == 1 ? "(" + std::to_string(values[0]) + ")" : format_values(values);
}

inline std::string format_extent(const Extent& values, int dims) {
  return format_arguments(Shape(values.end() - dims, values.end()));
}

// The most elements one array may have: its bytes, at 8 per element, must be addressable.
inline constexpr index_t max_elements = std::numeric_limits<index_t>::max() / 8;

// The element count of `shape`. As NumPy, the sizes other than zero must multiply to an
// addressable count even when one is zero, so that offsets within one sample of an empty batch
// are in range too.
inline index_t checked_product(const std::string& op, const char* what, const Shape& shape) {
  index_t nonzero = 1;
  bool empty = false;
  for (index_t value : shape) {
    empty = empty || value == 0;
    if (value != 0 &&
        (__builtin_mul_overflow(nonzero, value, &nonzero) || nonzero > max_elements)) {
      fail(op, ": ", what, " of shape ", format_values(shape),
           " has more elements than this machine can address");
    }
  }
  return empty ? 0 : nonzero;
}

// The position (k0, k1, k2) of tap `tap` of a kernel, taps numbered in row-major order (the
// order of the weight's last axes and of the lowered matrix's rows).
inline Extent kernel_position(const Extent& kernel, index_t tap) {
  return {tap / (kernel[2] * kernel[1]), tap / kernel[2] % kernel[1], tap % kernel[2]};
}

}  // namespace detail

// The geometry of one convolution y = x (*) w, computed and validated once per call and passed
// by const reference to every kernel.
//
// A convolution layer maps its input x to its output y. A transposed convolution layer is the
// adjoint of that same convolution: its input has the shape of y and its output the shape of x.
// So `x` below is always the larger, "image" side and `y` the "response" side, whatever the
// layer, and the weight is always (y_channels, x_channels / groups, kernel...), which is
// PyTorch's conv layout (C_out, C_in/groups, k...) and its transposed-conv layout
// (C_in, C_out/groups, k...) at once.
struct ConvGeometry {
  ConvKind kind = ConvKind::convolution;
  int dims = 2;
  bool batched = true;  // false: the layer's input had no batch dimension (batch is then 1)
  index_t batch = 1;
  index_t groups = 1;
  index_t x_channels = 1;
  index_t y_channels = 1;
  Extent x_size{1, 1, 1};
  Extent y_size{1, 1, 1};
  Extent kernel{1, 1, 1};
  Extent stride{1, 1, 1};
  Extent padding_before{0, 0, 0};
  Extent padding_after{0, 0, 0};
  PaddingMode padding_mode = PaddingMode::zeros;  // what the padding of x holds
  Extent dilation{1, 1, 1};
  Extent output_padding{0, 0, 0};  // transposed convolution: x_size beyond the smallest valid one
  // Transposed convolution: the output sizes output_size may ask for, first and last.
  Extent output_size_first{1, 1, 1};
  Extent output_size_last{1, 1, 1};

  static ConvGeometry convolution(int dims, const Shape& input, const Shape& weight,
                                  const ConvOptions& options = {});
  static ConvGeometry transposed(int dims, const Shape& input, const Shape& weight,
                                 const ConvOptions& options = {});
  // The weight shape of a layer of this kind, from its channels and kernel alone (before it
  // sees an input): (y_channels, x_channels / groups, kernel...), which is PyTorch's
  // (out_channels, in_channels / groups, kernel...) for a convolution and
  // (in_channels, out_channels / groups, kernel...) for a transposed one.
  static Shape layer_weight_shape(ConvKind kind, index_t in_channels, index_t out_channels,
                                  const Shape& kernel, index_t groups = 1);

  // The Extent entry of spatial dimension d (0 <= d < dims).
  int axis(int d) const { return max_spatial_dims - dims + d; }

  // "conv2d" or "conv_transpose2d": the prefix of every message about this call.
  std::string name() const {
    return std::string(kind == ConvKind::convolution ? "conv" : "conv_transpose") +
           std::to_string(dims) + "d";
  }

  index_t x_spatial() const { return x_size[0] * x_size[1] * x_size[2]; }
  index_t y_spatial() const { return y_size[0] * y_size[1] * y_size[2]; }
  index_t kernel_volume() const { return kernel[0] * kernel[1] * kernel[2]; }
  index_t x_channels_per_group() const { return x_channels / groups; }
  index_t y_channels_per_group() const { return y_channels / groups; }
  // Rows of the im2col matrix of one group: one per (input channel, kernel tap).
  index_t lowered_rows() const { return x_channels_per_group() * kernel_volume(); }
  // The convolution's multiply-adds: each of the y side's values sums one weight row of
  // lowered_rows() taps. Each of the three kernels does this many (the input gradient and the
  // weight gradient form the same products in another order). A double, as the product of
  // two addressable sizes can pass 2^63.
  double multiply_adds() const {
    return static_cast<double>(batch) * static_cast<double>(y_channels) *
           static_cast<double>(lowered_rows()) * static_cast<double>(y_spatial());
  }
  // Elements of the im2col matrices of every sample and group: lowered_rows() for each
  // position of each group's y side.
  double lowered_elements() const {
    return static_cast<double>(batch) * static_cast<double>(groups) *
           static_cast<double>(lowered_rows()) * static_cast<double>(y_spatial());
  }

  Shape x_shape() const { return tensor_shape(x_channels, x_size); }
  Shape y_shape() const { return tensor_shape(y_channels, y_size); }
  Shape weight_shape() const {
    Shape shape{y_channels, x_channels_per_group()};
    shape.insert(shape.end(), kernel.end() - dims, kernel.end());
    return shape;
  }
  Shape input_shape() const { return kind == ConvKind::convolution ? x_shape() : y_shape(); }
  Shape output_shape() const { return kind == ConvKind::convolution ? y_shape() : x_shape(); }
  index_t input_channels() const { return kind == ConvKind::convolution ? x_channels : y_channels; }
  index_t output_channels() const {
    return kind == ConvKind::convolution ? y_channels : x_channels;
  }

  // A 1x1 kernel with unit stride, no padding and equal x and y sizes (a transposed
  // convolution's output_padding can make x larger): the im2col matrix is x itself.
  bool is_pointwise() const {
    for (int d = 0; d < max_spatial_dims; ++d) {
      if (kernel[d] != 1 || stride[d] != 1 || padding_before[d] != 0 || padding_after[d] != 0 ||
          x_size[d] != y_size[d]) {
        return false;
      }
    }
    return true;
  }

  // A range [begin, end) of x along one spatial dimension, the padding beyond its two ends, and
  // the output_padding a transposed convolution needs to reach its end.
  struct Window {
    index_t begin;
    index_t end;
    index_t padding_before;
    index_t padding_after;
    index_t output_padding;
  };

  // Along spatial dimension d, the x that outputs y[y_begin, y_end) read (their receptive
  // field), clipped to x, with the padding that lies beyond it: what one chunk of a larger array
  // needs from its neighbours, with padding only at the array's own edges. A convolution of
  // x[begin, end) with that padding gives exactly y[y_begin, y_end), and the transposed
  // convolution of y[y_begin, y_end) with it (and its output_padding) gives their whole
  // contribution to x[begin, end). A range that ends at the far edge of y takes x to its far
  // edge too, where a convolution ignores what its last output does not reach and a transposed
  // one puts its output_padding. Empty (begin == end) when those outputs read padding only.
  Window receptive_field(int d, index_t y_begin, index_t y_end) const {
    const int a = checked_axis(d);
    if (y_begin < 0 || y_end <= y_begin || y_end > y_size[a]) {
      detail::fail(name(), ": the outputs [", y_begin, ", ", y_end, ") of spatial dimension ", d,
                   " must be a non-empty range within [0, ", y_size[a], ")");
    }
    const index_t first = y_begin * stride[a] - padding_before[a];
    const index_t begin = std::min(std::max<index_t>(first, 0), x_size[a]);
    if (y_end == y_size[a]) {
      if (begin == x_size[a]) return {begin, begin, 0, 0, 0};
      return {begin, x_size[a], begin - first, padding_after[a], output_padding[a]};
    }
    const index_t last =
        (y_end - 1) * stride[a] - padding_before[a] + dilation[a] * (kernel[a] - 1) + 1;
    const index_t end = std::min(last, x_size[a]);
    if (end <= begin) return {begin, begin, 0, 0, 0};
    return {begin, end, begin - first, last - end, 0};
  }

  // Where a split of x at position x falls in y along spatial dimension d: at the first output
  // whose receptive field is centred at or after x, so that each output goes with the chunk of x
  // around the centre of what it reads (a stride-1 'same' convolution keeps its chunks, a
  // stride-2 one halves them). The ends map to the ends: 0 to 0 and x_size to y_size.
  index_t y_split(int d, index_t x) const {
    const int a = checked_axis(d);
    if (x <= 0) return 0;
    if (x >= x_size[a]) return y_size[a];
    const index_t numerator = x + padding_before[a] - dilation[a] * (kernel[a] - 1) / 2;
    const index_t y =
        numerator <= 0 ? -(-numerator / stride[a]) : (numerator + stride[a] - 1) / stride[a];
    return std::min(std::max<index_t>(y, 0), y_size[a]);
  }

  // The inverse of y_split: where a split of y before output y falls in x (the centre of that
  // output's receptive field), with 0 mapped to 0 and y_size to x_size.
  index_t x_split(int d, index_t y) const {
    const int a = checked_axis(d);
    if (y <= 0) return 0;
    if (y >= y_size[a]) return x_size[a];
    const index_t x = y * stride[a] - padding_before[a] + dilation[a] * (kernel[a] - 1) / 2;
    return std::min(std::max<index_t>(x, 0), x_size[a]);
  }

  // Throws convt::Error naming `argument` unless `actual` equals `expected`.
  void expect_shape(const char* argument, const Shape& actual, const Shape& expected) const {
    if (actual != expected) {
      detail::fail(name(), ": ", argument, " must have shape ", detail::format_values(expected),
                   ", got ", detail::format_values(actual));
    }
  }

 private:
  int checked_axis(int d) const {
    if (d < 0 || d >= dims) {
      detail::fail(name(), ": spatial dimension ", d, " is not one of the ", dims);
    }
    return axis(d);
  }

  Shape tensor_shape(index_t channels, const Extent& size) const {
    Shape shape;
    if (batched) shape.push_back(batch);
    shape.push_back(channels);
    shape.insert(shape.end(), size.end() - dims, size.end());
    return shape;
  }

  // A geometry of this kind and rank with nothing else set: its name() is that of the call.
  static ConvGeometry of_kind(ConvKind kind, int dims);
  // Reads the parts common to both kinds: ranks, batch, per-dimension options.
  static ConvGeometry common(ConvKind kind, int dims, const Shape& input, const Shape& weight,
                             const ConvOptions& options);
  void check_addressable() const;
  void check_padding_mode() const;
};

namespace detail {

// Size arithmetic in 128 bits, so that a huge stride, padding or dilation is reported instead of
// wrapping around into a plausible size.
__extension__ typedef __int128 wide_t;

inline void check_size_range(const std::string& op, wide_t value, int d, index_t input,
                             index_t kernel, index_t stride, index_t padding_before,
                             index_t padding_after, index_t dilation) {
  if (value > max_elements || value < -max_elements) {
    fail(op, ": stride ", stride, ", padding ", padding_before, " + ", padding_after, ", dilation ",
         dilation, " and kernel ", kernel, " with input size ", input,
         " give a size beyond what can be addressed in spatial dimension ", d);
  }
}

// per_group x groups channels, which must be addressable.
inline index_t channels_of_groups(const std::string& op, index_t per_group, index_t groups) {
  index_t channels = 0;
  if (__builtin_mul_overflow(per_group, groups, &channels) || channels > max_elements) {
    fail(op, ": weight.shape[1] (", per_group, ") x groups (", groups,
         ") channels are more than this machine can address");
  }
  return channels;
}

inline Extent per_dimension(const std::string& op, const char* argument, const Shape& values,
                            int dims, index_t neutral) {
  if (values.size() != 1 && values.size() != static_cast<std::size_t>(dims)) {
    fail(op, ": ", argument, " must have 1 or ", dims, " values, got ", values.size(), " ",
         format_values(values));
  }
  Extent extent{neutral, neutral, neutral};
  for (int d = 0; d < dims; ++d) {
    extent[max_spatial_dims - dims + d] = values.size() == 1 ? values[0] : values[d];
  }
  return extent;
}

// Every value in [least, max_elements]: with each stride, padding, dilation and output_padding
// at most max_elements (2**60), every sum of a few of them, and every offset a kernel computes
// from them, fits in index_t.
inline void require_all(const std::string& op, const char* argument, const Shape& values,
                        index_t least) {
  for (index_t value : values) {
    if (value < least) {
      fail(op, ": ", argument, " ", format_arguments(values), " must be ",
           least > 0 ? "positive" : "non-negative");
    }
    if (value > max_elements) {
      fail(op, ": ", argument, " ", format_arguments(values), " must be at most ", max_elements,
           " (2**60 - 1)");
    }
  }
}

}  // namespace detail

inline ConvGeometry ConvGeometry::of_kind(ConvKind kind, int dims) {
  if (dims < 1 || dims > max_spatial_dims) {
    detail::fail("convt supports 1, 2 or 3 spatial dimensions, got ", dims);
  }
  ConvGeometry g;
  g.kind = kind;
  g.dims = dims;
  return g;
}

inline ConvGeometry ConvGeometry::common(ConvKind kind, int dims, const Shape& input,
                                         const Shape& weight, const ConvOptions& options) {
  using detail::fail;
  using detail::format_values;
  ConvGeometry g = of_kind(kind, dims);
  const std::string op = g.name();
  const auto rank = static_cast<index_t>(input.size());
  if (rank != dims + 1 && rank != dims + 2) {
    fail(op, ": input must have ", dims + 1, " (unbatched) or ", dims + 2,
         " (batched) dimensions, got ", rank, " with shape ", format_values(input));
  }
  if (static_cast<index_t>(weight.size()) != dims + 2) {
    fail(op, ": weight must have ", dims + 2, " dimensions, got ", weight.size(), " with shape ",
         format_values(weight));
  }
  g.batched = rank == dims + 2;
  g.batch = g.batched ? input[0] : 1;
  if (g.batch < 0) fail(op, ": input has a negative batch size ", g.batch);
  for (std::size_t i = g.batched ? 1 : 0; i < input.size(); ++i) {
    if (input[i] <= 0) {
      fail(op, ": input of shape ", format_values(input),
           " must have a positive size in every dimension but the batch");
    }
  }
  for (index_t size : weight) {
    if (size <= 0) {
      fail(op, ": weight of shape ", format_values(weight),
           " must have a positive size in every dimension");
    }
  }
  if (options.groups <= 0) fail(op, ": groups (", options.groups, ") must be positive");
  g.groups = options.groups;
  g.padding_mode = options.padding_mode;

  detail::require_all(op, "stride", options.stride, 1);
  detail::require_all(op, "dilation", options.dilation, 1);
  detail::require_all(op, "padding", options.padding, 0);
  detail::require_all(op, "padding", options.padding_after, 0);
  g.stride = detail::per_dimension(op, "stride", options.stride, dims, 1);
  g.dilation = detail::per_dimension(op, "dilation", options.dilation, dims, 1);
  g.padding_before = detail::per_dimension(op, "padding", options.padding, dims, 0);
  g.padding_after = options.padding_after.empty()
                        ? g.padding_before
                        : detail::per_dimension(op, "padding", options.padding_after, dims, 0);
  for (int d = 0; d < dims; ++d) g.kernel[g.axis(d)] = weight[2 + d];
  return g;
}

inline void ConvGeometry::check_addressable() const {
  const std::string op = name();
  detail::checked_product(op, "the input", input_shape());
  detail::checked_product(op, "the output", output_shape());
  detail::checked_product(op, "the weight", weight_shape());
  if (padding_mode != PaddingMode::zeros) {
    // The kernels read a copy of x padded with values; its size is computed from these.
    Shape padded = x_shape();
    for (int d = 0; d < dims; ++d) {
      const int a = axis(d);
      padded[padded.size() - dims + d] += padding_before[a] + padding_after[a];
    }
    const std::string what =
        std::string("x padded by padding_mode='") + padding_mode_name(padding_mode) + "'";
    detail::checked_product(op, what.c_str(), padded);
  }
}

// PyTorch's rules for the padding of x (a convolution's input, a transposed convolution's
// output): a reflection must not reach past the far edge, nor may circular padding wrap around
// more than once.
inline void ConvGeometry::check_padding_mode() const {
  if (padding_mode != PaddingMode::reflect && padding_mode != PaddingMode::circular) return;
  const bool reflect = padding_mode == PaddingMode::reflect;
  const char* side = kind == ConvKind::convolution ? "input" : "output";
  for (int d = 0; d < dims; ++d) {
    const int a = axis(d);
    const index_t largest = std::max(padding_before[a], padding_after[a]);
    if (reflect ? largest >= x_size[a] : largest > x_size[a]) {
      detail::fail(name(), ": padding_mode='", padding_mode_name(padding_mode), "' needs padding ",
                   reflect ? "smaller than" : "at most", " the ", side, " size, got padding ",
                   padding_before[a], " before and ", padding_after[a], " after an ", side,
                   " of size ", x_size[a], " in spatial dimension ", d);
    }
  }
}

inline Shape ConvGeometry::layer_weight_shape(ConvKind kind, index_t in_channels,
                                              index_t out_channels, const Shape& kernel,
                                              index_t groups) {
  using detail::fail;
  const auto dims = static_cast<int>(kernel.size());
  ConvGeometry g = of_kind(kind, dims);
  const std::string op = g.name();
  for (const auto& [name, value] : {std::pair<const char*, index_t>{"in_channels", in_channels},
                                    {"out_channels", out_channels},
                                    {"groups", groups}}) {
    if (value <= 0) fail(op, ": ", name, " (", value, ") must be positive");
  }
  for (const auto& [name, value] : {std::pair<const char*, index_t>{"in_channels", in_channels},
                                    {"out_channels", out_channels}}) {
    if (value % groups != 0) {
      fail(op, ": ", name, " (", value, ") must be divisible by groups (", groups, ")");
    }
  }
  for (index_t size : kernel) {
    if (size <= 0) fail(op, ": kernel_size ", detail::format_values(kernel), " must be positive");
  }
  const bool convolution = kind == ConvKind::convolution;
  g.groups = groups;
  g.y_channels = convolution ? out_channels : in_channels;
  g.x_channels = convolution ? in_channels : out_channels;
  std::copy(kernel.begin(), kernel.end(), g.kernel.end() - dims);
  Shape shape = g.weight_shape();
  detail::checked_product(op, "the weight", shape);
  return shape;
}

inline ConvGeometry ConvGeometry::convolution(int dims, const Shape& input, const Shape& weight,
                                              const ConvOptions& options) {
  using detail::fail;
  ConvGeometry g = common(ConvKind::convolution, dims, input, weight, options);
  const std::string op = g.name();
  const std::size_t first_spatial = g.batched ? 2 : 1;
  g.x_channels = input[first_spatial - 1];
  g.y_channels = weight[0];
  if (g.y_channels % g.groups != 0) {
    fail(op, ": weight.shape[0] (out_channels = ", g.y_channels, ") must be divisible by groups (",
         g.groups, ")");
  }
  if (g.x_channels != detail::channels_of_groups(op, weight[1], g.groups)) {
    fail(op, ": input has ", g.x_channels, " channels, but weight.shape[1] (", weight[1],
         ") x groups (", g.groups, ") = ", weight[1] * g.groups);
  }
  if (options.padding_rule != PaddingRule::explicit_values) {
    for (int d = 0; d < dims; ++d) {
      const int a = g.axis(d);
      index_t total = 0;
      if (options.padding_rule == PaddingRule::same) {
        // TensorFlow's rule, which is PyTorch's at stride 1: the output has ceil(input /
        // stride) elements and the odd padding element goes after.
        const index_t size = input[first_spatial + d];
        const detail::wide_t needed =
            (detail::wide_t(size) + g.stride[a] - 1) / g.stride[a] * g.stride[a] - g.stride[a] +
            detail::wide_t(g.dilation[a]) * (g.kernel[a] - 1) + 1 - size;
        detail::check_size_range(op, needed, d, size, g.kernel[a], g.stride[a], 0, 0,
                                 g.dilation[a]);
        total = std::max<index_t>(0, static_cast<index_t>(needed));
      }
      g.padding_before[a] = total / 2;
      g.padding_after[a] = total - total / 2;
    }
  }
  for (int d = 0; d < dims; ++d) {
    const int a = g.axis(d);
    g.x_size[a] = input[first_spatial + d];
    const detail::wide_t wide_padded =
        detail::wide_t(g.x_size[a]) + g.padding_before[a] + g.padding_after[a];
    const detail::wide_t wide_kernel = detail::wide_t(g.dilation[a]) * (g.kernel[a] - 1) + 1;
    for (detail::wide_t value : {wide_padded, wide_kernel}) {
      detail::check_size_range(op, value, d, g.x_size[a], g.kernel[a], g.stride[a],
                               g.padding_before[a], g.padding_after[a], g.dilation[a]);
    }
    const auto padded = static_cast<index_t>(wide_padded);
    const auto dilated_kernel = static_cast<index_t>(wide_kernel);
    if (dilated_kernel > padded) {
      fail(op, ": kernel size ", g.kernel[a], " with dilation ", g.dilation[a], " spans ",
           dilated_kernel, ", more than the padded input size ", padded, " (", g.x_size[a], " + ",
           g.padding_before[a], " + ", g.padding_after[a], ") in spatial dimension ", d);
    }
    g.y_size[a] = (padded - dilated_kernel) / g.stride[a] + 1;
  }
  g.check_padding_mode();
  g.check_addressable();
  return g;
}

inline ConvGeometry ConvGeometry::transposed(int dims, const Shape& input, const Shape& weight,
                                             const ConvOptions& options) {
  using detail::fail;
  ConvGeometry g = common(ConvKind::transposed, dims, input, weight, options);
  const std::string op = g.name();
  const std::size_t first_spatial = g.batched ? 2 : 1;
  g.y_channels = input[first_spatial - 1];
  if (g.y_channels != weight[0]) {
    fail(op, ": input has ", g.y_channels, " channels, but weight.shape[0] (in_channels) is ",
         weight[0]);
  }
  if (g.y_channels % g.groups != 0) {
    fail(op, ": weight.shape[0] (in_channels = ", g.y_channels, ") must be divisible by groups (",
         g.groups, ")");
  }
  g.x_channels = detail::channels_of_groups(op, weight[1], g.groups);
  if (options.padding_rule == PaddingRule::valid) {
    g.padding_before = g.padding_after = Extent{0, 0, 0};
  }
  const bool same = options.padding_rule == PaddingRule::same;
  detail::require_all(op, "output_padding", options.output_padding, 0);
  Extent output_padding =
      detail::per_dimension(op, "output_padding", options.output_padding, dims, 0);
  if (same && output_padding != Extent{0, 0, 0}) {
    fail(op, ": output_padding ", detail::format_extent(output_padding, dims),
         " cannot be combined with padding='same'; give output_size instead");
  }
  // As PyTorch: output_size holds the spatial sizes, optionally after the batch and channel
  // sizes (channel only, for unbatched input).
  Shape requested = options.output_size;
  const std::size_t leading = g.batched ? 2 : 1;
  if (requested.size() == static_cast<std::size_t>(dims) + leading) {
    requested.erase(requested.begin(), requested.begin() + leading);
  }
  if (!requested.empty() && requested.size() != static_cast<std::size_t>(dims)) {
    fail(op, ": output_size must have ", dims, " or ", dims + leading, " values, got ",
         options.output_size.size(), " ", detail::format_values(options.output_size));
  }
  for (int d = 0; d < dims; ++d) {
    const int a = g.axis(d);
    g.y_size[a] = input[first_spatial + d];
    const detail::wide_t span = detail::wide_t(g.dilation[a]) * (g.kernel[a] - 1) + 1;
    if (same) {
      // TensorFlow's rule: the output is a size whose 'same' convolution gives back the input
      // (ceil(output / stride) == input), input x stride unless output_size picks a smaller
      // one, cropped by what that convolution pads.
      const detail::wide_t last = detail::wide_t(g.y_size[a]) * g.stride[a];
      detail::check_size_range(op, last + span, d, g.y_size[a], g.kernel[a], g.stride[a], 0, 0,
                               g.dilation[a]);
      g.output_size_last[a] = static_cast<index_t>(last);
      g.output_size_first[a] = g.output_size_last[a] - g.stride[a] + 1;
      const index_t size = requested.empty() ? g.output_size_last[a] : requested[d];
      if (size < g.output_size_first[a] || size > g.output_size_last[a]) {
        fail(op, ": output_size ", detail::format_values(requested),
             " is not reachable with padding='same': in spatial dimension ", d,
             " the valid sizes range from ", g.output_size_first[a], " to ", g.output_size_last[a],
             " for an input of size ", g.y_size[a]);
      }
      const index_t total = std::max<index_t>(
          0, static_cast<index_t>((detail::wide_t(g.y_size[a]) - 1) * g.stride[a] + span - size));
      g.padding_before[a] = total / 2;
      g.padding_after[a] = total - total / 2;
      g.x_size[a] = size;
      output_padding[a] =
          size -
          static_cast<index_t>((detail::wide_t(g.y_size[a]) - 1) * g.stride[a] - total + span);
      continue;
    }
    const detail::wide_t wide_smallest = (detail::wide_t(g.y_size[a]) - 1) * g.stride[a] -
                                         g.padding_before[a] - g.padding_after[a] + span;
    detail::check_size_range(op, wide_smallest + g.stride[a], d, g.y_size[a], g.kernel[a],
                             g.stride[a], g.padding_before[a], g.padding_after[a], g.dilation[a]);
    const auto smallest = static_cast<index_t>(wide_smallest);
    // As PyTorch's ConvTranspose*d.forward: output_size picks output_padding.
    g.output_size_first[a] = smallest;
    g.output_size_last[a] = smallest + g.stride[a] - 1;
    if (!requested.empty()) {
      if (requested[d] < smallest || requested[d] > g.output_size_last[a]) {
        fail(op, ": output_size ", detail::format_values(requested),
             " is not reachable: in "
             "spatial dimension ",
             d, " the valid sizes range from ", smallest, " to ", g.output_size_last[a],
             " for an input of size ", g.y_size[a]);
      }
      output_padding[a] = requested[d] - smallest;
    } else if (output_padding[a] >= g.stride[a] && output_padding[a] >= g.dilation[a]) {
      fail(op, ": output_padding (", output_padding[a], ") must be smaller than stride (",
           g.stride[a], ") or dilation (", g.dilation[a], ")");
    }
    g.x_size[a] = smallest + output_padding[a];
    if (g.x_size[a] <= 0) {
      fail(op, ": output size ", g.x_size[a], " in spatial dimension ", d,
           " is not positive: (input ", g.y_size[a], " - 1) x stride ", g.stride[a], " - padding ",
           g.padding_before[a], " - ", g.padding_after[a], " + dilation ", g.dilation[a],
           " x (kernel ", g.kernel[a], " - 1) + output_padding ", output_padding[a], " + 1");
    }
  }
  g.check_padding_mode();
  g.output_padding = output_padding;
  g.check_addressable();
  return g;
}

}  // namespace convt
