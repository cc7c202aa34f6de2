#pragma once

#include <algorithm>
#include <cstring>

#include "geometry.hpp"
#include "threading.hpp"
#include "workspace.hpp"

namespace convt {
namespace detail {

// A block of the lowered matrix's columns: outputs [first_output, first_output + outputs) of
// each of the samples [first_sample, first_sample + samples). Column (s, o) of the block is
// s * outputs + (o - first_output). Small images are lowered several samples at a time, so the
// GEMM gets enough columns; large ones one slice at a time, so scratch stays bounded.
struct ColumnBlock {
  index_t first_sample;
  index_t samples;
  index_t first_output;
  index_t outputs;

  index_t columns() const { return samples * outputs; }
};

// Elements of scratch one lowered block may take: with the GEMM's packed panels it stays within
// a core's L2 cache.
inline constexpr index_t lowered_block_elements = index_t{1} << 18;

// How a call's columns are cut into blocks, and the blocks into units of work: a unit is one
// block of whole samples, or all the slices of one large sample. Units write disjoint parts of
// x, so threads can take whole units; the blocks of a unit run in order.
struct BlockPlan {
  index_t columns;    // columns per block (slice_outputs says how a sliced sample is cut)
  bool sliced;        // a sample spans several blocks
  index_t per_block;  // samples per block when not sliced
  index_t units;
};

inline BlockPlan plan_blocks(const ConvGeometry& g) {
  const index_t outputs = g.y_spatial();
  const index_t columns = std::max<index_t>(512, lowered_block_elements / g.lowered_rows());
  if (outputs >= columns) return {columns, true, 1, g.batch};
  const index_t per_block = columns / outputs;
  return {columns, false, per_block, (g.batch + per_block - 1) / per_block};
}

// Outputs in the slice of a sliced sample that starts at output `first`: a block's columns,
// but a last slice of less than half a block joins the one before it: alone it made a GEMM too
// narrow to share between threads (a 3-D U-Net layer's 648 outputs were GEMMs of 512 and 136
// columns, the second split 1 : 2 tiles).
inline index_t slice_outputs(const BlockPlan& plan, index_t outputs, index_t first) {
  const index_t count = std::min(plan.columns, outputs - first);
  return outputs - first - count < plan.columns / 2 ? outputs - first : count;
}

// Calls body(block) for the blocks of one unit, in order.
template <class Body>
void for_each_block_of_unit(const ConvGeometry& g, const BlockPlan& plan, index_t unit,
                            Body&& body) {
  const index_t outputs = g.y_spatial();
  if (plan.sliced) {
    for (index_t first = 0, count = 0; first < outputs; first += count) {
      count = slice_outputs(plan, outputs, first);
      body(ColumnBlock{unit, 1, first, count});
    }
    return;
  }
  const index_t n = unit * plan.per_block;
  body(ColumnBlock{n, std::min(plan.per_block, g.batch - n), 0, outputs});
}

// The outputs o in [first, last) of one dimension whose tap o * stride + offset lands inside
// [0, size); outside that range the tap reads padding.
struct Range {
  index_t first;
  index_t last;
};

inline Range tap_range(index_t offset, index_t stride, index_t size, index_t outputs) {
  // Divides only by strides above one: a seed-sized kernel would spend more on its divisions
  // than on its sums.
  const auto over_stride = [stride](index_t value) { return stride == 1 ? value : value / stride; };
  const index_t first = offset >= 0 ? 0 : std::min(outputs, over_stride(-offset + stride - 1));
  const index_t last = offset >= size ? 0 : std::min(outputs, over_stride(size - 1 - offset) + 1);
  return {first, std::max(first, last)};
}

// One kernel tap as the lowering reads it: the offsets of its reads from output position times
// stride, and the outputs along a line whose reads fall inside x.
struct KernelTap {
  index_t offset0;
  index_t offset1;
  index_t offset2;
  Range inside;
};

inline KernelTap kernel_tap(const ConvGeometry& g, index_t tap) {
  const Extent k = kernel_position(g.kernel, tap);
  const index_t offset2 = k[2] * g.dilation[2] - g.padding_before[2];
  return {k[0] * g.dilation[0] - g.padding_before[0], k[1] * g.dilation[1] - g.padding_before[1],
          offset2, tap_range(offset2, g.stride[2], g.x_size[2], g.y_size[2])};
}

// The lines of outputs along the last spatial axis that outputs [first_output, first_output +
// outputs) touch, as line indices and as planes of lines, formed once per walk: the (tap, line)
// visits of a small problem are few enough that a division per tap would show.
struct OutputLines {
  index_t first_output;
  index_t end_output;
  index_t first_line;
  index_t end_line;
  index_t first_plane;
  index_t end_plane;
};

inline OutputLines output_lines(const ConvGeometry& g, index_t first_output, index_t outputs) {
  const index_t end_output = first_output + outputs;
  const index_t first_line = first_output / g.y_size[2];
  const index_t end_line = (end_output - 1) / g.y_size[2] + 1;
  return {first_output,
          end_output,
          first_line,
          end_line,
          first_line / g.y_size[1],
          (end_line - 1) / g.y_size[1] + 1};
}

// The one walk of lines: for a tap whose reads are offset by (offset0, offset1) along the two
// outer axes, visit(start, x_line) for each line of outputs in `span` whose reads fall inside x
// along those axes (inside0, inside1: the outputs for which they do), with `start` the line's
// first output and `x_line` the offset in the channel of x of the line it reads. Only those
// lines: lines are often a few outputs long, and what a line costs beyond its run is what
// col2im and the direct loops spend.
template <class Visit>
void for_each_output_line(const ConvGeometry& g, const OutputLines& span, index_t offset0,
                          Range inside0, index_t offset1, Range inside1, Visit&& visit) {
  const index_t lines = g.y_size[1];
  const index_t o0_end = std::min(inside0.last, span.end_plane);
  for (index_t o0 = std::max(inside0.first, span.first_plane); o0 < o0_end; ++o0) {
    const index_t plane_line = o0 * lines;
    const index_t x_plane = (o0 * g.stride[0] + offset0) * g.x_size[1];
    const index_t o1_end = std::min(inside1.last, span.end_line - plane_line);
    for (index_t o1 = std::max(inside1.first, span.first_line - plane_line); o1 < o1_end; ++o1) {
      visit((plane_line + o1) * g.y_size[2], (x_plane + o1 * g.stride[1] + offset1) * g.x_size[2]);
    }
  }
}

// Visits the lowered matrix of one input channel, outputs [first_output, first_output +
// outputs): one call per (kernel tap, line of outputs along the last spatial axis) for the run of
// outputs of the line, inside the block, whose reads fall inside the input (the rest read
// padding and are not visited). visit(row, column, x_offset, count) gets the row (channel, tap),
// the block column of the run's first output, the offset in the channel of the input it reads,
// and the run's length; output j of the run reads x_offset + j * stride[2]. Offsets are formed
// only for reads inside the input, so that no padding, however large, moves them out of range.
template <class Visit>
void for_each_lowered_line(const ConvGeometry& g, index_t channel, index_t first_output,
                           index_t outputs, Visit&& visit) {
  const OutputLines span = output_lines(g, first_output, outputs);
  const bool whole_planes = first_output == 0 && outputs == g.y_spatial();
  // Taps in row-major order, their offsets and ranges formed axis by axis: dividing a flat tap
  // index would cost more than a small problem's sums.
  index_t row = channel * g.kernel_volume();
  for (index_t k0 = 0; k0 < g.kernel[0]; ++k0) {
    const index_t offset0 = k0 * g.dilation[0] - g.padding_before[0];
    const Range inside0 = tap_range(offset0, g.stride[0], g.x_size[0], g.y_size[0]);
    for (index_t k1 = 0; k1 < g.kernel[1]; ++k1) {
      const index_t offset1 = k1 * g.dilation[1] - g.padding_before[1];
      const Range inside1 = tap_range(offset1, g.stride[1], g.x_size[1], g.y_size[1]);
      for (index_t k2 = 0; k2 < g.kernel[2]; ++k2, ++row) {
        const index_t offset2 = k2 * g.dilation[2] - g.padding_before[2];
        const Range reads = tap_range(offset2, g.stride[2], g.x_size[2], g.y_size[2]);
        if (reads.first == reads.last) continue;
        // The visitor's values by copy, so that they stay in registers across the walk.
        const index_t end_output = span.end_output;
        const index_t stride2 = g.stride[2];
        if (whole_planes) {
          // Every line's run is the tap's reads: no clamping to a block, one offset per tap.
          const index_t count = reads.last - reads.first;
          const index_t x_shift = reads.first * stride2 + offset2;
          const index_t first = reads.first;
          for_each_output_line(g, span, offset0, inside0, offset1, inside1,
                               [&visit, row, first, x_shift, count](index_t start, index_t x_line) {
                                 visit(row, start + first, x_line + x_shift, count);
                               });
          continue;
        }
        for_each_output_line(g, span, offset0, inside0, offset1, inside1,
                             [&visit, row, reads, first_output, end_output, stride2, offset2](
                                 index_t start, index_t x_line) {
                               const index_t first = std::max(first_output, start + reads.first);
                               const index_t last = std::min(end_output, start + reads.last);
                               if (first < last) {
                                 visit(row, first - first_output,
                                       x_line + (first - start) * stride2 + offset2, last - first);
                               }
                             });
      }
    }
  }
}

// Short runs of a line, copied and cleared with plain loops: lines are often only a few
// elements long, where calling memcpy and memset costs more than the copy.
template <class T>
void clear_run(T* __restrict out, index_t first, index_t last) {
  for (index_t o = first; o < last; ++o) out[o] = T(0);
}

template <class T>
void copy_run(T* __restrict out, const T* __restrict in, index_t first, index_t last) {
  for (index_t o = first; o < last; ++o) out[o] = in[o];
}

// The geometry's kernel taps, in lowered-row order, in the calling thread's scratch.
inline const KernelTap* tap_table(const ConvGeometry& g) {
  const index_t count = g.kernel_volume();
  KernelTap* taps = scratch<KernelTap>(Scratch::taps, count);
  for (index_t tap = 0; tap < count; ++tap) taps[tap] = kernel_tap(g, tap);
  return taps;
}

// A run of consecutive block columns inside one line of outputs of one sample: columns
// [column, column + length) are outputs (o0, o1, o2 .. o2 + length) of a sample of the block,
// whose reads start, before a tap's offsets, at (x0, x1) = (o0, o1) * stride in the channel that
// is `sample_offset` from the block's first sample's.
struct OutputRun {
  index_t column;
  index_t length;
  index_t o2;
  index_t x0;
  index_t x1;
  index_t sample_offset;
};

// Cuts block columns [first, first + count) into runs; returns how many.
inline index_t output_runs(const ConvGeometry& g, ColumnBlock block, index_t x_sample_stride,
                           index_t first, index_t count, OutputRun* runs) {
  const index_t line_length = g.y_size[2];
  index_t made = 0;
  index_t sample = first / block.outputs;
  index_t o = block.first_output + first % block.outputs;
  for (index_t column = first; column < first + count;) {
    const index_t o2 = o % line_length;
    const index_t line = o / line_length;
    const index_t sample_end = (sample + 1) * block.outputs;
    const index_t length =
        std::min({line_length - o2, first + count - column, sample_end - column});
    const index_t x0 = line / g.y_size[1] * g.stride[0];
    const index_t x1 = line % g.y_size[1] * g.stride[1];
    runs[made++] = {column - first, length, o2, x0, x1, sample * x_sample_stride};
    column += length;
    o += length;
    if (column == sample_end) {
      ++sample;
      o = block.first_output;
    }
  }
  return made;
}

// The im2col matrix of one group over a column block, or its transpose, never stored: the
// GEMM packs each sliver it needs straight from x, so the lowered block is written once, into
// the cache-resident packed panel, and never read back from memory.
template <class T>
struct LoweredOperand {
  static constexpr bool packs_itself = true;
  // Runs of lowered columns one pass of `pack` cuts at most: a sliver's columns, or a stretch of
  // the depth of a transposed operand's sliver (whatever depth the GEMM blocks by).
  static constexpr index_t max_run_columns = 256;

  const ConvGeometry* g;
  const KernelTap* taps;  // tap_table(*g)
  const T* x;             // the group's first channel of the block's first sample
  index_t x_sample_stride;
  ColumnBlock block;
  index_t first;  // lowered column (row, when transposed) that is this operand's column 0
  bool transposed;

  LoweredOperand columns_from(index_t column) const {
    LoweredOperand shifted = *this;
    shifted.first += column;
    return shifted;
  }

  // Where a run of a lowered row reads, which depends on the row's tap alone, not on its
  // channel: `zeros_before` columns of padding, then `copied` columns read from the channel's
  // plane at `offset`, stride apart, then padding to the run's end.
  struct RunSource {
    index_t offset;
    index_t zeros_before;
    index_t copied;
  };

  // The offset is formed only for reads inside x, so that no padding, however large, moves it
  // out of range.
  RunSource source(const KernelTap& tap, const OutputRun& run) const {
    const index_t i0 = run.x0 + tap.offset0;
    const index_t i1 = run.x1 + tap.offset1;
    if (i0 < 0 || i0 >= g->x_size[0] || i1 < 0 || i1 >= g->x_size[1]) return {0, run.length, 0};
    const index_t end = run.o2 + run.length;
    const index_t first = std::clamp(tap.inside.first, run.o2, end);
    const index_t last = std::clamp(tap.inside.last, first, end);
    if (first == last) return {0, run.length, 0};
    return {run.sample_offset + (i0 * g->x_size[1] + i1) * g->x_size[2] + first * g->stride[2] +
                tap.offset2,
            first - run.o2, last - first};
  }

  // out[(column - run.column) * out_step] = lowered[row][column] over a run whose row reads
  // `plane`. The input is addressed only where the run reads inside it.
  void fill(const T* plane, const RunSource& source, index_t length, T* out,
            index_t out_step) const {
    for (index_t o = 0; o < source.zeros_before; ++o) out[o * out_step] = T(0);
    if (source.copied > 0) {
      const index_t stride = g->stride[2];
      const T* line = plane + source.offset;
      T* target = out + source.zeros_before * out_step;
      if (out_step == 1 && stride == 1) {
        copy_run(target, line, 0, source.copied);
      } else if (out_step == 1 && stride == 2) {
        // A constant stride (DCGAN's), which the compiler vectorises with shuffles.
        for (index_t o = 0; o < source.copied; ++o) target[o] = line[2 * o];
      } else {
        for (index_t o = 0; o < source.copied; ++o) target[o * out_step] = line[o * stride];
      }
    }
    for (index_t o = source.zeros_before + source.copied; o < length; ++o) out[o * out_step] = T(0);
  }

  // Calls body(tap, i, plane, step) once for each tap among lowered rows first_row + i, i <
  // rows, with i the first such row, `plane` its channel's, and `step` the kernel's taps (the
  // rows from one of the tap's rows to the next, each a plane further on). Rows of one tap read
  // their channels at the same places, so what a run reads is worked out once per tap and shared
  // by every channel of the depth a sliver spans.
  template <class Body>
  void for_each_row_by_tap(index_t first_row, index_t rows, Body&& body) const {
    const index_t count = g->kernel_volume();
    const index_t first_tap = first_row % count;
    const T* first_plane = x + first_row / count * g->x_spatial();
    for (index_t i = 0; i < std::min(count, rows); ++i) {
      const index_t tap = first_tap + i < count ? first_tap + i : first_tap + i - count;
      const T* plane = first_tap + i < count ? first_plane : first_plane + g->x_spatial();
      body(taps[tap], i, plane, count);
    }
  }

  // The GEMM's packing of one sliver: out[p * TILE + j] = B(p0 + p, column + j) for p < depth,
  // j < count, zero for count <= j < TILE, where B is this operand.
  template <int TILE>
  void pack(index_t p0, index_t depth, index_t column, index_t count, T* out) const {
    static_assert(TILE <= max_run_columns, "a sliver's columns must fit the table of runs");
    OutputRun runs[max_run_columns];
    RunSource sources[max_run_columns];
    const index_t plane_step = g->x_spatial();
    if (!transposed) {
      const index_t made = output_runs(*g, block, x_sample_stride, first + column, count, runs);
      for_each_row_by_tap(
          p0, depth,
          [&](const KernelTap& tap, index_t p, const T* plane, index_t taps_per_channel) {
            // A tap with one row here (a layer of few channels, or more taps than the depth) has
            // nothing to share: the table would only add its stores and loads.
            const bool shared = p + taps_per_channel < depth;
            if (shared) {
              for (index_t r = 0; r < made; ++r) sources[r] = source(tap, runs[r]);
            }
            for (; p < depth; p += taps_per_channel, plane += plane_step) {
              T* target = out + p * TILE;
              for (index_t r = 0; r < made; ++r) {
                fill(plane, shared ? sources[r] : source(tap, runs[r]), runs[r].length,
                     target + runs[r].column, 1);
              }
              clear_run(target, count, TILE);
            }
          });
      return;
    }
    // Transposed: B(p, j) = lowered[first + j][p], so a sliver takes `count` lowered rows over
    // lowered columns [p0, p0 + depth), written TILE apart, a table of runs at a time.
    for (index_t part = 0; part < depth; part += max_run_columns) {
      const index_t made = output_runs(*g, block, x_sample_stride, p0 + part,
                                       std::min(max_run_columns, depth - part), runs);
      T* part_out = out + part * TILE;
      for_each_row_by_tap(
          first + column, count,
          [&](const KernelTap& tap, index_t j, const T* plane, index_t taps_per_channel) {
            for (index_t r = 0; r < made; ++r) sources[r] = source(tap, runs[r]);
            for (; j < count; j += taps_per_channel, plane += plane_step) {
              for (index_t r = 0; r < made; ++r) {
                fill(plane, sources[r], runs[r].length, part_out + runs[r].column * TILE + j, TILE);
              }
            }
          });
    }
    for (index_t p = 0; p < depth; ++p) clear_run(out + p * TILE, count, TILE);
  }
};

// out[o] += in[o] for o in [first, last); the lowered matrix and x never overlap.
template <class T>
void add_to(T* __restrict out, const T* __restrict in, index_t first, index_t last) {
  for (index_t o = first; o < last; ++o) out[o] += in[o];
}

// Elements of one line of x that col2im_fused_lines holds, split by phase, on the stack, and the
// most taps along the last axis it takes.
inline constexpr index_t fused_line_elements = 1024;
inline constexpr index_t fused_line_taps = 64;

// Whether col2im adds a line's taps along the last axis together (col2im_fused_lines): when
// more of them land on each element of x than one, and x's line and the taps fit its tables.
inline bool fuses_line_taps(const ConvGeometry& g) {
  return g.stride[2] > 1 && g.kernel[2] > g.stride[2] && g.kernel[2] <= fused_line_taps &&
         g.x_size[2] + g.stride[2] <= fused_line_elements;
}

// Element i = j * stride + phase of a line of x is held at phases[phase * length + j]. Tap k2
// along the last axis adds output o2 of a line to element (o2 + shift) * stride + phase, for
// the outputs o2 in `reads`.
struct LinePhases {
  struct Tap {
    Range reads;
    index_t held;  // phase * length + shift
  };
  struct Phase {
    index_t elements;  // of x's line in this phase
    index_t first_shift;
    index_t last_shift;  // past the largest shift of the phase's taps; first_shift when none
  };
  index_t length;
  Tap taps[fused_line_taps];
  Phase phases[fused_line_taps];
};

inline LinePhases line_phases(const ConvGeometry& g) {
  const index_t stride = g.stride[2];
  LinePhases table{};
  table.length = (g.x_size[2] + stride - 1) / stride;
  for (index_t phase = 0; phase < stride; ++phase) {
    table.phases[phase] = {(g.x_size[2] - phase + stride - 1) / stride, 0, 0};
  }
  bool seen[fused_line_taps] = {};
  for (index_t k2 = 0; k2 < g.kernel[2]; ++k2) {
    const index_t offset2 = k2 * g.dilation[2] - g.padding_before[2];
    const index_t phase = (offset2 % stride + stride) % stride;
    const index_t shift = (offset2 - phase) / stride;
    table.taps[k2] = {tap_range(offset2, stride, g.x_size[2], g.y_size[2]),
                      phase * table.length + shift};
    LinePhases::Phase& held = table.phases[phase];
    held.first_shift = seen[phase] ? std::min(held.first_shift, shift) : shift;
    held.last_shift = seen[phase] ? std::max(held.last_shift, shift + 1) : shift + 1;
    seen[phase] = true;
  }
  return table;
}

// even[j] = line[2 j] and odd[j] = line[2 j + 1] over a line of `size` elements, and back: the
// phases of a stride-2 line, whole, in a loop the compiler vectorises.
template <class T>
void split_in_two(const T* __restrict line, T* __restrict even, T* __restrict odd, index_t size) {
  const index_t pairs = size / 2;
  for (index_t j = 0; j < pairs; ++j) {
    even[j] = line[2 * j];
    odd[j] = line[2 * j + 1];
  }
  if (size % 2 != 0) even[pairs] = line[size - 1];
}

template <class T>
void join_two(const T* __restrict even, const T* __restrict odd, T* __restrict line, index_t size) {
  const index_t pairs = size / 2;
  for (index_t j = 0; j < pairs; ++j) {
    line[2 * j] = even[j];
    line[2 * j + 1] = odd[j];
  }
  if (size % 2 != 0) line[size - 1] = even[pairs];
}

// The elements of a line that outputs [o2_first, o2_end) reach, moved between x's line and its
// phases (into the phases, or back when `back`).
template <class T>
void split_phases(const LinePhases& table, index_t stride, index_t o2_first, index_t o2_end,
                  T* line, T* phases, bool back) {
  for (index_t phase = 0; phase < stride; ++phase) {
    const LinePhases::Phase& p = table.phases[phase];
    if (p.first_shift == p.last_shift) continue;
    T* held = phases + phase * table.length;
    const index_t first = std::max<index_t>(0, o2_first + p.first_shift);
    const index_t last = std::min(p.elements, o2_end + p.last_shift - 1);
    T* element = line + first * stride + phase;
    for (index_t j = first; j < last; ++j, element += stride) {
      if (back) {
        *element = held[j];
      } else {
        held[j] = *element;
      }
    }
  }
}

// col2im of one (sample, channel) plane with the taps along the last axis of each line of x
// added together. The taps of one phase modulo the stride add contiguous runs of lowered values
// to contiguous elements of that phase, so each line is gathered into its phases once, takes
// every tap's run with vector adds, and is scattered back: rather than a strided read-add-write
// of x per tap. Each element still takes its terms in lowered-row order, the sum col2im forms.
template <class T>
void col2im_fused_lines(const ConvGeometry& g, const LinePhases& table, const T* rows,
                        index_t columns, ColumnBlock block, T* plane) {
  const index_t stride = g.stride[2];
  const index_t K2 = g.kernel[2];
  const OutputLines span = output_lines(g, block.first_output, block.outputs);
  T phases[fused_line_elements];
  for (index_t outer = 0; outer < g.kernel_volume(); outer += K2) {
    const KernelTap along = kernel_tap(g, outer);
    const T* tap_rows = rows + outer * columns;
    // The visitor's values by copy, so that they stay in registers across the walk.
    const index_t first_output = block.first_output;
    const index_t end_output = span.end_output;
    const index_t line_length = g.y_size[2];
    const index_t x_length = g.x_size[2];
    const index_t length = table.length;
    for_each_output_line(
        g, span, along.offset0, tap_range(along.offset0, g.stride[0], g.x_size[0], g.y_size[0]),
        along.offset1, tap_range(along.offset1, g.stride[1], g.x_size[1], g.y_size[1]),
        [&table, &phases, plane, tap_rows, columns, stride, K2, first_output, end_output,
         line_length, x_length, length](index_t start, index_t x_line) {
          // The outputs of the line inside the block, and for each phase the elements they
          // reach.
          const index_t o2_first = std::max(first_output, start) - start;
          const index_t o2_end = std::min(end_output, start + line_length) - start;
          T* line = plane + x_line;
          if (stride == 2) {
            split_in_two(line, phases, phases + length, x_length);
          } else {
            split_phases(table, stride, o2_first, o2_end, line, phases, false);
          }
          for (index_t k2 = 0; k2 < K2; ++k2) {
            const LinePhases::Tap& tap = table.taps[k2];
            const index_t first = std::max(o2_first, tap.reads.first);
            const index_t last = std::min(o2_end, tap.reads.last);
            if (first >= last) continue;
            add_to(phases + tap.held + first,
                   tap_rows + k2 * columns + (start + first - first_output), 0, last - first);
          }
          if (stride == 2) {
            join_two(phases, phases + length, line, x_length);
          } else {
            split_phases(table, stride, o2_first, o2_end, line, phases, true);
          }
        });
  }
}

// Taps along the last axis that col2im_tap_blocks adds at a time, and whether it takes a block:
// a line whose consecutive taps (no dilation) read at least this far apart for each output, so
// that the plain walk's adds, one tap's outputs `stride` apart, each touch a line of x of their
// own, and whose blocks hold whole samples. A vocoder's transposed convolution (kernel 1024,
// stride 256) spent 31% of its forward pass in those adds.
inline constexpr index_t tap_block = 16;

inline bool adds_tap_blocks(const ConvGeometry& g, ColumnBlock block) {
  return g.dilation[2] == 1 && g.stride[2] >= tap_block && g.kernel[2] >= tap_block &&
         block.first_output == 0 && block.outputs == g.y_spatial();
}

// col2im of one channel of one sample whose block holds the whole sample (adds_tap_blocks):
// for each line of outputs and each run of tap_block taps along the last axis, output o2's
// sums go to the tap_block consecutive elements of x from o2 * stride + tap - padding. Each x
// element still takes its terms in the order of the taps.
template <class T>
void col2im_tap_blocks(const ConvGeometry& g, const T* tap_rows, index_t columns, T* plane) {
  const index_t K2 = g.kernel[2];
  const index_t stride = g.stride[2];
  const index_t x_length = g.x_size[2];
  const OutputLines span = output_lines(g, 0, g.y_spatial());
  // for_each_lowered_line's walk, with the taps along the last axis inside each line instead
  // of outside it.
  for (index_t k0 = 0; k0 < g.kernel[0]; ++k0) {
    const index_t offset0 = k0 * g.dilation[0] - g.padding_before[0];
    const Range inside0 = tap_range(offset0, g.stride[0], g.x_size[0], g.y_size[0]);
    for (index_t k1 = 0; k1 < g.kernel[1]; ++k1) {
      const index_t offset1 = k1 * g.dilation[1] - g.padding_before[1];
      const Range inside1 = tap_range(offset1, g.stride[1], g.x_size[1], g.y_size[1]);
      const T* rows = tap_rows + (k0 * g.kernel[1] + k1) * K2 * columns;
      for_each_output_line(g, span, offset0, inside0, offset1, inside1,
                           [&](index_t start, index_t x_line) {
                             T* line = plane + x_line;
                             for (index_t first_tap = 0; first_tap < K2; first_tap += tap_block) {
                               const index_t taps = std::min(tap_block, K2 - first_tap);
                               const T* block_rows = rows + first_tap * columns + start;
                               for (index_t o2 = 0; o2 < g.y_size[2]; ++o2) {
                                 const index_t i = o2 * stride + first_tap - g.padding_before[2];
                                 const T* terms = block_rows + o2;
                                 const index_t first = std::max<index_t>(0, -i);
                                 const index_t last = std::min(taps, x_length - i);
                                 for (index_t t = first; t < last; ++t) {
                                   line[i + t] += terms[t * columns];
                                 }
                               }
                             }
                           });
    }
  }
}

// The adjoint of im2col: x[s, c, i] += lowered[(c, tap), (s, o)] for every (tap, o) reading i,
// where lowered[(c, tap), (s, o)] stands for x[s, c, o * stride - padding_before + tap * dilation],
// for the channels [first_channel, last_channel) whose rows `lowered` holds.
// Each thread owns whole (sample, channel) planes, so every sum runs in the same order for any
// thread count.
template <class T>
void col2im(const ConvGeometry& g, const T* lowered, ColumnBlock block, T* x,
            index_t x_sample_stride, index_t first_channel, index_t last_channel) {
  const index_t channels = last_channel - first_channel;
  const index_t first_row = first_channel * g.kernel_volume();
  const index_t columns = block.columns();
  const index_t stride = g.stride[2];
  const int threads = threads_for(static_cast<double>(channels) * g.kernel_volume() * columns);
  const bool fused = fuses_line_taps(g);
  const LinePhases table = fused ? line_phases(g) : LinePhases{};
  const bool tap_blocks = !fused && adds_tap_blocks(g, block);
  parallel_for_static(block.samples * channels, threads, [&](index_t job) {
    const index_t s = job / channels;
    const index_t c = first_channel + job % channels;
    T* target = x + s * x_sample_stride + c * g.x_spatial();
    const T* sample_columns = lowered + s * block.outputs;
    const T* tap_rows = sample_columns + (c - first_channel) * g.kernel_volume() * columns;
    if (fused) return col2im_fused_lines(g, table, tap_rows, columns, block, target);
    if (tap_blocks) return col2im_tap_blocks(g, tap_rows, columns, target);
    for_each_lowered_line(g, c, block.first_output, block.outputs,
                          [&](index_t row, index_t column, index_t x_offset, index_t count) {
                            const T* in = sample_columns + (row - first_row) * columns + column;
                            T* out = target + x_offset;
                            if (stride == 1) {
                              add_to(out, in, 0, count);
                            } else {
                              for (index_t o = 0; o < count; ++o) out[o * stride] += in[o];
                            }
                          });
  });
}

}  // namespace detail
}  // namespace convt
