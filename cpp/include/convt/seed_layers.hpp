#pragma once

#include "geometry.hpp"
#include "kernels.hpp"
#include "matrix.hpp"

// The single-channel layer functions of the question convt grew from, with exact gradients.
// cnn_* is a convolution layer; fcn_* a transposed convolution layer whose kernel is stored
// turned by 180 degrees, as in the question: fcn_forward(w, x) equals PyTorch's
// conv_transpose2d(x, rotate_180(w)).

namespace convt {

template <class T>
struct Gradients {
  Matrix<T> dx;
  Matrix<T> dw;
};

namespace detail {

template <class T>
ConvGeometry seed_geometry(const char* op, ConvKind kind, const Matrix<T>& input,
                           const Matrix<T>& kernel, Strides strides) {
  return matrix_geometry(op, kind, input.rows(), input.cols(), kernel.rows(), kernel.cols(),
                         strides);
}

template <class T>
void expect_gradient_shape(const char* op, const ConvGeometry& g, const Matrix<T>& dz) {
  const index_t rows = g.output_shape()[2];
  const index_t cols = g.output_shape()[3];
  if (dz.rows() != rows || dz.cols() != cols) {
    fail(op, ": dz must have shape ", matrix_shape(rows, cols), ", got ",
         matrix_shape(dz.rows(), dz.cols()));
  }
}

}  // namespace detail

// output = prev (*) weight: a valid cross-correlation (PyTorch's conv2d).
template <class T>
Matrix<T> cnn_forward(const Matrix<T>& weight, const Matrix<T>& prev, Strides strides = {1, 1}) {
  return prev.convolute_as("cnn_forward", weight, strides);
}

// The gradients of cnn_forward for its input (dx = dz scattered through the kernel, i.e.
// convolute_full with the kernel as it is; the question's version rotated it) and for its weight
// (dw = a_prev (*) dz).
template <class T>
Gradients<T> cnn_backward(const Matrix<T>& a_prev, const Matrix<T>& dz, const Matrix<T>& kernel,
                          Strides strides = {1, 1}) {
  const ConvGeometry g =
      detail::seed_geometry("cnn_backward", ConvKind::convolution, a_prev, kernel, strides);
  detail::expect_gradient_shape("cnn_backward", g, dz);
  Gradients<T> result{Matrix<T>(a_prev.rows(), a_prev.cols()),
                      Matrix<T>(kernel.rows(), kernel.cols())};
  conv_backward_input(g, dz.data(), kernel.data(), result.dx.data());
  conv_backward_weight(g, a_prev.data(), dz.data(), result.dw.data());
  return result;
}

// A transposed convolution as the question wrote it: prev.convolute_full(weight.rotate_180()).
template <class T>
Matrix<T> fcn_forward(const Matrix<T>& weight, const Matrix<T>& prev, Strides strides = {1, 1}) {
  return prev.convolute_full_as("fcn_forward", weight.rotate_180(), strides);
}

// The exact gradients of fcn_forward: dx = dz (*) rotate_180(kernel), and dw the weight gradient
// of the scatter, turned back by 180 degrees because fcn_forward turned the kernel.
template <class T>
Gradients<T> fcn_backward(const Matrix<T>& a_prev, const Matrix<T>& dz, const Matrix<T>& kernel,
                          Strides strides = {1, 1}) {
  const Matrix<T> rotated = kernel.rotate_180();
  const ConvGeometry g =
      detail::seed_geometry("fcn_backward", ConvKind::transposed, a_prev, rotated, strides);
  detail::expect_gradient_shape("fcn_backward", g, dz);
  Gradients<T> result{Matrix<T>(a_prev.rows(), a_prev.cols()),
                      Matrix<T>(kernel.rows(), kernel.cols())};
  conv_forward(g, dz.data(), rotated.data(), result.dx.data());
  Matrix<T> dw_rotated(kernel.rows(), kernel.cols());
  conv_backward_weight(g, dz.data(), a_prev.data(), dw_rotated.data());
  result.dw = dw_rotated.rotate_180();
  return result;
}

}  // namespace convt
