#pragma once

#include <algorithm>

#include "gemm.hpp"
#include "geometry.hpp"
#include "threading.hpp"
#include "workspace.hpp"

// Stride-1 convolutions without im2col.
//
// With unit strides, output o reads input o + tap * dilation - padding_before. In a copy of the
// input padded with zeros (cropped where the padding is negative), output o reads padded
// position o + tap * dilation, and once the padded grid is flattened that is one offset per tap:
// the lowered row of (channel, tap) is the channel's padded plane read from the tap's offset on.
// The GEMM reads those rows in place through a RowTable, so the lowering costs one copy of the
// input instead of one per tap. The price is that the GEMM also computes the padded grid's
// positions past the output's edge, which are dropped; `shifted_fits` weighs the two.

namespace convt {
namespace detail {

// out[n, f, o] = sum over (c, tap) of weight[f, c, tap] * in[n, c, o + tap * dilation - before],
// zero outside `in`, for each group: the forward pass of a stride-1 convolution, or its
// backward pass for the input with a flipped kernel (`backward_input_problem`).
struct ShiftedProblem {
  index_t batch = 1;
  index_t groups = 1;
  index_t in_channels = 1;   // per group
  index_t out_channels = 1;  // per group
  Extent in_size{1, 1, 1};
  Extent out_size{1, 1, 1};
  Extent kernel{1, 1, 1};
  Extent dilation{1, 1, 1};
  Extent before{0, 0, 0};       // may be negative: the copy then crops
  Extent padded{1, 1, 1};       // out_size + dilation * (kernel - 1)
  double multiply_adds = 0;     // the geometry's, for the threads' estimate
  bool plane_segments = false;  // blocks of one sample take one GEMM per output plane

  index_t taps() const { return kernel[0] * kernel[1] * kernel[2]; }
  index_t depth() const { return in_channels * taps(); }
  index_t in_spatial() const { return in_size[0] * in_size[1] * in_size[2]; }
  index_t out_spatial() const { return out_size[0] * out_size[1] * out_size[2]; }
  index_t padded_spatial() const { return padded[0] * padded[1] * padded[2]; }
  // Position of padded point (u0, u1, u2) in the flattened padded grid.
  index_t flat(index_t u0, index_t u1, index_t u2) const {
    return (u0 * padded[1] + u1) * padded[2] + u2;
  }
  // Columns of the padded grid from output point (o0, 0, 0) to the last output of its plane.
  index_t plane_columns() const { return flat(0, out_size[1] - 1, out_size[2] - 1) + 1; }
  // Samples per block: enough for a GEMM several panels wide, at least one.
  index_t samples_per_block() const {
    constexpr index_t wanted_columns = 4096;
    return std::clamp<index_t>(wanted_columns / padded_spatial(), 1, batch);
  }
};

// The columns of a block that one GEMM computes: output planes [first_plane, first_plane +
// planes) (planes along the first of the three axes) of each of the block's samples, as columns
// [first_column, first_column + columns) of the block's padded grid. A block of several samples
// is one segment; a sample on its own is one segment per plane, which skips the padding planes
// between them.
struct Segment {
  index_t first_plane;
  index_t planes;
  index_t first_column;
  index_t columns;
};

inline index_t segment_count(const ShiftedProblem& p) {
  return p.plane_segments ? p.out_size[0] : 1;
}

inline Segment segment(const ShiftedProblem& p, index_t samples, index_t index) {
  if (p.plane_segments) return {index, 1, p.flat(index, 0, 0), p.plane_columns()};
  const index_t last_plane = p.flat(p.out_size[0] - 1, 0, 0) + p.plane_columns();
  return {0, p.out_size[0], 0, (samples - 1) * p.padded_spatial() + last_plane};
}

// A GEMM computes whole register tiles of columns; the shifted lowering counts its columns in
// the widest tile's, AVX-512's in float32, whatever the instruction set, so that its choices
// are the same on every CPU.
constexpr index_t column_granule = tile_size<Isa::avx512, float>().cols;

inline index_t granules(index_t columns) { return ceil_div(columns, column_granule); }

// Columns the GEMMs of a block of `samples` compute, in whole granules.
inline index_t computed_columns(const ShiftedProblem& p, index_t samples) {
  return segment_count(p) * granules(segment(p, samples, 0).columns) * column_granule;
}

inline ShiftedProblem shifted_common(const ConvGeometry& g, index_t in_channels,
                                     index_t out_channels, const Extent& in_size,
                                     const Extent& out_size) {
  ShiftedProblem p;
  p.batch = g.batch;
  p.groups = g.groups;
  p.in_channels = in_channels;
  p.out_channels = out_channels;
  p.in_size = in_size;
  p.out_size = out_size;
  p.kernel = g.kernel;
  p.dilation = g.dilation;
  p.multiply_adds = g.multiply_adds();
  for (int d = 0; d < max_spatial_dims; ++d) {
    p.padded[d] = out_size[d] + g.dilation[d] * (g.kernel[d] - 1);
  }
  // A sample on its own can skip the padding planes between its output planes, one GEMM per
  // plane, where that computes fewer tiles of columns: for 3x3x3 over 16x32x32 it saves 4%;
  // for 3x3x3 over 8x9x9, whose planes are 97 columns (three tiles, two full), it would take
  // 24 tiles where the whole sample takes 20.
  if (p.samples_per_block() == 1) {
    p.plane_segments = out_size[0] * granules(p.plane_columns()) <
                       granules(p.flat(out_size[0] - 1, 0, 0) + p.plane_columns());
  }
  return p;
}

// conv_forward of a stride-1 geometry: x in, y out, padded as the geometry says.
inline ShiftedProblem forward_problem(const ConvGeometry& g) {
  ShiftedProblem p =
      shifted_common(g, g.x_channels_per_group(), g.y_channels_per_group(), g.x_size, g.y_size);
  p.before = g.padding_before;
  return p;
}

// conv_backward_input of a stride-1 geometry as a convolution of dy: dx[i] sums
// w[f, c, tap] * dy[i + padding_before - tap * dilation], which is dy padded by
// dilation * (kernel - 1) - padding_before correlated with the kernel flipped end to end
// and its channel axes swapped (`flip_weight`).
inline ShiftedProblem backward_input_problem(const ConvGeometry& g) {
  ShiftedProblem p =
      shifted_common(g, g.y_channels_per_group(), g.x_channels_per_group(), g.y_size, g.x_size);
  for (int d = 0; d < max_spatial_dims; ++d) {
    p.before[d] = g.dilation[d] * (g.kernel[d] - 1) - g.padding_before[d];
  }
  return p;
}

// Whether a problem suits the shifted lowering: bounded scratch, few wasted columns, and
// enough output rows to reuse each packed row of the padded copy (the layer's first
// convolution, with its 1 or 3 input channels, computes its input gradient better by col2im).
inline bool shifted_fits(const ShiftedProblem& p) {
  constexpr index_t max_plane_elements = index_t{1} << 22;
  constexpr index_t min_rows = 8;
  // In double: with a large padding or dilation the padded grid's size need not fit index_t.
  const double planes = static_cast<double>(std::max(p.in_channels, p.out_channels)) *
                        static_cast<double>(p.padded[0]) * static_cast<double>(p.padded[1]) *
                        static_cast<double>(p.padded[2]);
  if (planes > static_cast<double>(max_plane_elements)) return false;
  if (p.out_channels < min_rows) return false;
  const index_t samples = p.samples_per_block();
  const double computed = static_cast<double>(computed_columns(p, samples));
  // The columns of a sample the geometry's multiply-adds pay for: its outputs for the forward
  // pass; for the input gradient, dy's positions, fewer than dx's by the border that its
  // padding fills with zeros (a 3x3x3 kernel over 8x9x9 gives 10x11x11, twice the work).
  const double useful = p.multiply_adds / (static_cast<double>(p.batch) * p.groups *
                                           static_cast<double>(p.out_channels) * p.depth());
  // At most a quarter more columns than that: a 3x3 layer over 28x28 images (15% more)
  // runs faster this way than through im2col, one over 14x14 images (30% more) slower.
  return 4 * computed <= 5 * samples * useful;
}

// Unit strides: what the shifted lowering needs.
inline bool stride_one(const ConvGeometry& g) {
  for (int d = 0; d < max_spatial_dims; ++d) {
    if (g.stride[d] != 1) return false;
  }
  return true;
}

// padded[c][s][u] = in[s, c, u - before] for the block's samples, zero outside `in`. `in`
// points at the group's first channel of the block's first sample.
template <class T>
void pad_block(const ShiftedProblem& p, const T* in, index_t in_sample_stride, index_t samples,
               T* padded) {
  const index_t plane = p.padded_spatial();
  const index_t row = p.padded[2];
  const index_t copy_first = std::clamp<index_t>(p.before[2], 0, row);
  const index_t copy_last = std::clamp<index_t>(p.in_size[2] + p.before[2], copy_first, row);
  for (index_t c = 0; c < p.in_channels; ++c) {
    for (index_t s = 0; s < samples; ++s) {
      const T* source = in + s * in_sample_stride + c * p.in_spatial();
      T* target = padded + (c * samples + s) * plane;
      for (index_t u0 = 0; u0 < p.padded[0]; ++u0) {
        const index_t i0 = u0 - p.before[0];
        for (index_t u1 = 0; u1 < p.padded[1]; ++u1) {
          const index_t i1 = u1 - p.before[1];
          T* out = target + p.flat(u0, u1, 0);
          if (i0 < 0 || i0 >= p.in_size[0] || i1 < 0 || i1 >= p.in_size[1]) {
            std::fill_n(out, row, T(0));
            continue;
          }
          const T* line = source + (i0 * p.in_size[1] + i1) * p.in_size[2] - p.before[2];
          std::fill(out, out + copy_first, T(0));
          std::copy(line + copy_first, line + copy_last, out + copy_first);
          std::fill(out + copy_last, out + row, T(0));
        }
      }
    }
  }
}

// The RowTable of a padded block: row (c, tap) starts at channel c's run, offset by the tap.
template <class T>
RowTable<T> shifted_rows(const ShiftedProblem& p, const T* padded, index_t samples) {
  const index_t taps = p.taps();
  const T** rows = scratch<const T*>(Scratch::row_table, p.depth());
  for (index_t tap = 0; tap < taps; ++tap) {
    const Extent k = kernel_position(p.kernel, tap);
    const index_t offset = p.flat(k[0] * p.dilation[0], k[1] * p.dilation[1], k[2] * p.dilation[2]);
    for (index_t c = 0; c < p.in_channels; ++c) {
      rows[c * taps + tap] = padded + c * samples * p.padded_spatial() + offset;
    }
  }
  return {rows, 0, false};
}

// Calls visit(s, column, point) for every output line of a segment: s is the sample in the
// block, `column` the segment column of the line's first output, `point` that output's offset in
// the sample's output plane.
template <class Visit>
void for_each_output_line(const ShiftedProblem& p, index_t samples, const Segment& segment,
                          Visit&& visit) {
  for (index_t s = 0; s < samples; ++s) {
    for (index_t o0 = segment.first_plane; o0 < segment.first_plane + segment.planes; ++o0) {
      for (index_t o1 = 0; o1 < p.out_size[1]; ++o1) {
        visit(s, s * p.padded_spatial() + p.flat(o0, o1, 0) - segment.first_column,
              (o0 * p.out_size[1] + o1) * p.out_size[2]);
      }
    }
  }
}

// Blocks of whole samples.
inline index_t sample_blocks(const ShiftedProblem& p) {
  const index_t per_block = p.samples_per_block();
  return (p.batch + per_block - 1) / per_block;
}

// Calls body(first_sample, samples) for block `block`.
template <class Body>
void with_sample_block(const ShiftedProblem& p, index_t block, Body&& body) {
  const index_t per_block = p.samples_per_block();
  const index_t first = block * per_block;
  body(first, std::min(per_block, p.batch - first));
}

// The block's padded input for one group, and its RowTable.
template <class T>
RowTable<T> padded_block(const ShiftedProblem& p, const T* in, index_t group, index_t first,
                         index_t samples) {
  const index_t sample_stride = p.groups * p.in_channels * p.in_spatial();
  T* padded = scratch<T>(Scratch::lowered, p.in_channels * samples * p.padded_spatial());
  pad_block(p, in + first * sample_stride + group * p.in_channels * p.in_spatial(), sample_stride,
            samples, padded);
  return shifted_rows(p, padded, samples);
}

// The first output of group `group` of sample `first`.
template <class T>
T* group_output(const ShiftedProblem& p, T* out, index_t group, index_t first) {
  return out + (first * p.groups + group) * p.out_channels * p.out_spatial();
}

// out = the ShiftedProblem's correlation of `in` with the weight `packed` holds, one operand
// (out_channels x depth) per group. out is overwritten.
template <class T>
void shifted_forward(const ShiftedProblem& p, const T* in, const PackedOperands<T>& packed, T* out,
                     Isa isa) {
  const index_t depth = p.depth();
  const index_t sample_stride = p.groups * p.out_channels * p.out_spatial();
  // Threads take whole blocks when there are enough (each GEMM then runs on one core) and
  // split each GEMM otherwise.
  const index_t blocks = sample_blocks(p);
  int threads = threads_for(p.multiply_adds);
  if (blocks < threads) threads = 1;
  parallel_for(blocks, threads, [&](index_t block) {
    with_sample_block(p, block, [&](index_t first, index_t samples) {
      for (index_t group = 0; group < p.groups; ++group) {
        RowTable<T> rows = padded_block(p, in, group, first, samples);
        T* target = group_output(p, out, group, first);
        for (index_t index = 0; index < segment_count(p); ++index) {
          const Segment part = segment(p, samples, index);
          rows.offset = part.first_column;
          T* result = scratch<T>(Scratch::gathered, p.out_channels * part.columns);
          gemm<T>(p.out_channels, part.columns, depth, packed[group], rows, result, part.columns,
                  false, isa);
          for_each_output_line(p, samples, part, [&](index_t s, index_t column, index_t point) {
            for (index_t f = 0; f < p.out_channels; ++f) {
              std::copy_n(result + f * part.columns + column, p.out_size[2],
                          target + s * sample_stride + f * p.out_spatial() + point);
            }
          });
        }
      }
    });
  });
}

// Adds block `block`'s share of the weight gradient, d out . lowered(in)^T, to `sum` (groups x
// out_channels x depth), or writes it there unless `accumulate`. The output gradient is spread
// over the padded grid's columns, zero at the positions past the output's edge.
template <class T>
void shifted_weight_block(const ShiftedProblem& p, const T* in, const T* grad_out, index_t block,
                          T* sum, bool accumulate, Isa isa) {
  const index_t depth = p.depth();
  const index_t sample_stride = p.groups * p.out_channels * p.out_spatial();
  with_sample_block(p, block, [&](index_t first, index_t samples) {
    for (index_t group = 0; group < p.groups; ++group) {
      RowTable<T> rows = padded_block(p, in, group, first, samples);
      rows.transposed = true;
      const T* source = group_output(p, grad_out, group, first);
      T* group_sum = sum + group * p.out_channels * depth;
      for (index_t index = 0; index < segment_count(p); ++index) {
        const Segment part = segment(p, samples, index);
        rows.offset = part.first_column;
        T* spread = scratch<T>(Scratch::gathered, p.out_channels * part.columns);
        std::fill_n(spread, p.out_channels * part.columns, T(0));
        for_each_output_line(p, samples, part, [&](index_t s, index_t column, index_t point) {
          for (index_t f = 0; f < p.out_channels; ++f) {
            std::copy_n(source + s * sample_stride + f * p.out_spatial() + point, p.out_size[2],
                        spread + f * part.columns + column);
          }
        });
        gemm<T>(p.out_channels, depth, part.columns, row_major(spread, part.columns), rows,
                group_sum, depth, accumulate || index > 0, isa);
      }
    }
  });
}

// flipped[g][c][f][tap] = weight[g][f][c][taps - 1 - tap]: the kernel of backward_input_problem.
template <class T>
const T* flip_weight(const ConvGeometry& g, const T* weight) {
  const index_t taps = g.kernel_volume();
  const index_t filters = g.y_channels_per_group();
  const index_t channels = g.x_channels_per_group();
  T* flipped = scratch<T>(Scratch::flipped_weight, g.y_channels * channels * taps);
  for (index_t group = 0; group < g.groups; ++group) {
    const T* from = weight + group * filters * channels * taps;
    T* to = flipped + group * filters * channels * taps;
    for (index_t f = 0; f < filters; ++f) {
      for (index_t c = 0; c < channels; ++c) {
        const T* kernel = from + (f * channels + c) * taps;
        std::reverse_copy(kernel, kernel + taps, to + (c * filters + f) * taps);
      }
    }
  }
  return flipped;
}

}  // namespace detail
}  // namespace convt
