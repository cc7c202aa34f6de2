#pragma once

#include "geometry.hpp"
#include "kernels.hpp"

// A layer's forward and backward passes, for either kind of layer the geometry describes: the
// table in kernels.hpp, written once.

namespace convt {

// output = layer(input) (+ bias). Shapes are the geometry's input_shape(), weight_shape(),
// output_shape(); bias has output_channels() values or is null.
template <class T>
void forward(const ConvGeometry& g, const T* input, const T* weight, const T* bias, T* output) {
  if (g.kind == ConvKind::convolution) {
    conv_forward(g, input, weight, output);
  } else {
    conv_backward_input(g, input, weight, output);
  }
  if (bias != nullptr) add_bias(g, bias, output);
}

// The gradients of the loss for the layer's input, weight and bias, given its gradient for the
// output. Pass null for any gradient that is not wanted; each wanted one is overwritten.
template <class T>
void backward(const ConvGeometry& g, const T* grad_output, const T* input, const T* weight,
              T* grad_input, T* grad_weight, T* grad_bias) {
  const bool convolution = g.kind == ConvKind::convolution;
  if (grad_input != nullptr) {
    if (convolution) {
      conv_backward_input(g, grad_output, weight, grad_input);
    } else {
      conv_forward(g, grad_output, weight, grad_input);
    }
  }
  if (grad_weight != nullptr) {
    // The weight gradient correlates the x side with the y side; for a transposed layer the
    // x side is the gradient of its output.
    conv_backward_weight(g, convolution ? input : grad_output, convolution ? grad_output : input,
                         grad_weight);
  }
  if (grad_bias != nullptr) bias_backward(g, grad_output, grad_bias);
}

}  // namespace convt
