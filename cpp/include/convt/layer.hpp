#pragma once

#include "geometry.hpp"
#include "plan.hpp"

// A layer's forward and backward passes, for either kind of layer the geometry describes, each
// planned for one call: the table in kernels.hpp, written once (in Plan). A layer run many times
// keeps a Plan instead.

namespace convt {

// output = layer(input) (+ bias). Shapes are the geometry's input_shape(), weight_shape(),
// output_shape(); bias has output_channels() values or is null.
template <class T>
void forward(const ConvGeometry& g, const T* input, const T* weight, const T* bias, T* output) {
  Plan(g).forward(input, weight, bias, output);
}

// The gradients of the loss for the layer's input, weight and bias, given its gradient for the
// output. Pass null for any gradient that is not wanted; each wanted one is overwritten.
template <class T>
void backward(const ConvGeometry& g, const T* grad_output, const T* input, const T* weight,
              T* grad_input, T* grad_weight, T* grad_bias) {
  Plan(g).backward(grad_output, input, weight, grad_input, grad_weight, grad_bias);
}

}  // namespace convt
