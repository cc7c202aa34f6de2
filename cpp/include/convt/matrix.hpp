#pragma once

#include <array>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"
#include "geometry.hpp"
#include "kernels.hpp"

namespace convt {

using Strides = std::array<index_t, 2>;

namespace detail {

inline std::string matrix_shape(index_t rows, index_t cols) {
  return "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")";
}

// The geometry of a single-channel 2-D call: the seed's operations are the batched kernels with
// N = C = F = 1. Errors name the seed's operation `op` and its 2-D shapes, not the 4-D problem.
inline ConvGeometry matrix_geometry(const char* op, ConvKind kind, index_t rows, index_t cols,
                                    index_t kernel_rows, index_t kernel_cols, Strides strides) {
  if (rows <= 0 || cols <= 0) {
    fail(op, ": the input of shape ", matrix_shape(rows, cols), " must not be empty");
  }
  if (kernel_rows <= 0 || kernel_cols <= 0) {
    fail(op, ": the kernel of shape ", matrix_shape(kernel_rows, kernel_cols),
         " must not be empty");
  }
  if (strides[0] <= 0 || strides[1] <= 0) {
    fail(op, ": strides ", matrix_shape(strides[0], strides[1]), " must be positive");
  }
  if (kind == ConvKind::convolution && (kernel_rows > rows || kernel_cols > cols)) {
    fail(op, ": the kernel of shape ", matrix_shape(kernel_rows, kernel_cols),
         " is larger than the input of shape ", matrix_shape(rows, cols));
  }
  ConvOptions options;
  options.stride = {strides[0], strides[1]};
  const Shape input{1, 1, rows, cols};
  const Shape weight{1, 1, kernel_rows, kernel_cols};
  try {
    return kind == ConvKind::convolution ? ConvGeometry::convolution(2, input, weight, options)
                                         : ConvGeometry::transposed(2, input, weight, options);
  } catch (const Error& error) {
    // What is left (sizes beyond what can be addressed) reads the same with the seed's name.
    const std::string message = error.what();
    const std::size_t prefix = message.find(": ");
    fail(op, ": ", prefix == std::string::npos ? message : message.substr(prefix + 2));
  }
}

}  // namespace detail

// A row-major 2-D matrix that either owns its elements or views memory owned elsewhere (a
// NumPy array, say). Copying an owning matrix copies the elements; copying a view makes another
// view of the same memory.
template <class T>
class Matrix {
 public:
  Matrix() = default;
  Matrix(index_t rows, index_t cols) : storage_(allocate(rows, cols)), rows_(rows), cols_(cols) {
    data_ = storage_.data();
  }
  Matrix(std::initializer_list<std::initializer_list<T>> values)
      : Matrix(static_cast<index_t>(values.size()),
               values.size() ? static_cast<index_t>(values.begin()->size()) : 0) {
    index_t i = 0;
    for (const auto& row : values) {
      if (static_cast<index_t>(row.size()) != cols_) {
        detail::fail("Matrix: row ", i, " has ", row.size(), " values, expected ", cols_);
      }
      index_t j = 0;
      for (const T& value : row) (*this)(i, j++) = value;
      ++i;
    }
  }

  // A non-owning view of rows x cols elements at `data`, which must outlive the view.
  static Matrix view(T* data, index_t rows, index_t cols) {
    checked_size(rows, cols);
    Matrix matrix;
    matrix.data_ = data;
    matrix.rows_ = rows;
    matrix.cols_ = cols;
    return matrix;
  }

  Matrix(const Matrix& other) { *this = other; }
  Matrix(Matrix&& other) noexcept { *this = std::move(other); }
  Matrix& operator=(const Matrix& other) {
    if (this == &other) return *this;
    rows_ = other.rows_;
    cols_ = other.cols_;
    if (other.owns()) {
      storage_ = other.storage_;
      data_ = storage_.data();
    } else {
      storage_.clear();
      data_ = other.data_;
    }
    return *this;
  }
  Matrix& operator=(Matrix&& other) noexcept {
    const bool owning = other.owns();
    storage_ = std::move(other.storage_);
    data_ = owning ? storage_.data() : other.data_;
    rows_ = std::exchange(other.rows_, 0);
    cols_ = std::exchange(other.cols_, 0);
    other.data_ = nullptr;
    return *this;
  }

  index_t rows() const { return rows_; }
  index_t cols() const { return cols_; }
  index_t size() const { return rows_ * cols_; }
  bool owns() const { return !storage_.empty() && data_ == storage_.data(); }
  T* data() { return data_; }
  const T* data() const { return data_; }

  T& operator()(index_t i, index_t j) { return data_[i * cols_ + j]; }
  const T& operator()(index_t i, index_t j) const { return data_[i * cols_ + j]; }
  T& at(index_t i, index_t j) { return (*this)(check_index(i, j), j); }
  const T& at(index_t i, index_t j) const { return (*this)(check_index(i, j), j); }

  // Valid cross-correlation with this matrix as the input (the seed's `convolute`): the output
  // is ((rows - kernel.rows) / strides[0] + 1) x ((cols - kernel.cols) / strides[1] + 1).
  Matrix convolute(const Matrix& kernel, Strides strides = {1, 1}) const {
    return convolute_as("convolute", kernel, strides);
  }
  // convolute, with errors naming `op`.
  Matrix convolute_as(const char* op, const Matrix& kernel, Strides strides) const {
    const ConvGeometry g = geometry_with(op, kernel, strides, ConvKind::convolution);
    Matrix output(g.y_size[1], g.y_size[2]);
    conv_forward(g, data_, kernel.data_, output.data_);
    return output;
  }

  // The full (scatter) convolution of the seed's `convolute_full`:
  // output[i * s0 + a, j * s1 + b] += kernel[a, b] * self[i, j], of size
  // ((rows - 1) * s0 + kernel.rows) x ((cols - 1) * s1 + kernel.cols). It is the adjoint of
  // convolute with the same kernel, i.e. PyTorch's conv_transpose2d.
  Matrix convolute_full(const Matrix& kernel, Strides strides = {1, 1}) const {
    return convolute_full_as("convolute_full", kernel, strides);
  }
  // convolute_full, with errors naming `op`.
  Matrix convolute_full_as(const char* op, const Matrix& kernel, Strides strides) const {
    const ConvGeometry g = geometry_with(op, kernel, strides, ConvKind::transposed);
    Matrix output(g.x_size[1], g.x_size[2]);
    conv_backward_input(g, data_, kernel.data_, output.data_);
    return output;
  }

  // The matrix turned by 180 degrees: element (i, j) moves to (rows-1-i, cols-1-j).
  Matrix rotate_180() const {
    Matrix output(rows_, cols_);
    for (index_t i = 0; i < size(); ++i) output.data_[size() - 1 - i] = data_[i];
    return output;
  }

 private:
  static std::size_t checked_size(index_t rows, index_t cols) {
    if (rows < 0 || cols < 0)
      detail::fail("Matrix: rows (", rows, ") and cols (", cols, ") must not be negative");
    return static_cast<std::size_t>(
        detail::checked_product("Matrix", "a matrix", Shape{rows, cols}));
  }

  static std::vector<T> allocate(index_t rows, index_t cols) {
    const std::size_t size = checked_size(rows, cols);
    try {
      return std::vector<T>(size);
    } catch (const std::bad_alloc&) {
      detail::fail("Matrix: cannot allocate a ", rows, " x ", cols, " matrix");
    }
  }

  index_t check_index(index_t i, index_t j) const {
    if (i < 0 || i >= rows_ || j < 0 || j >= cols_) {
      detail::fail("Matrix: index (", i, ", ", j, ") is outside a ", rows_, " x ", cols_,
                   " matrix");
    }
    return i;
  }

  ConvGeometry geometry_with(const char* op, const Matrix& kernel, Strides strides,
                             ConvKind kind) const {
    return detail::matrix_geometry(op, kind, rows_, cols_, kernel.rows_, kernel.cols_, strides);
  }

  std::vector<T> storage_;
  T* data_ = nullptr;
  index_t rows_ = 0;
  index_t cols_ = 0;
};

}  // namespace convt
