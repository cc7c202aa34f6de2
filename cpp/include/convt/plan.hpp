#pragma once

#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "error.hpp"
#include "geometry.hpp"
#include "isa.hpp"
#include "kernels.hpp"

// A layer configuration planned once and run many times, as oneDNN's primitives and XNNPACK's
// operators are: the plan holds the validated geometry and the algorithm each kernel takes, which
// drives the kernel and is the name it reports, and on request keeps the weight packed for its
// kernels from one call to the next.

namespace convt {

namespace detail {

// One kernel's weight packed for one instruction set, with the weight it was packed from: a call
// reuses it only when its weight is bitwise the same, so a weight changed by any means (an
// optimiser, a copy into it, a write through another view) is packed again, never read stale.
template <class T>
struct KeptWeight {
  Isa isa = Isa::portable;
  std::vector<T> source;
  std::vector<T> packed;
  PackedOperands<T> operands{nullptr, 0, 0, Isa::portable};
};

// The kept weights of a plan: per element type, one for conv_forward and one for
// conv_backward_input (the weight gradient reads no weight).
struct KeptWeights {
  std::mutex mutex;
  std::atomic<std::size_t> packings{0};
  std::shared_ptr<KeptWeight<float>> floats[2];
  std::shared_ptr<KeptWeight<double>> doubles[2];

  template <class T>
  std::shared_ptr<KeptWeight<T>>& slot(Kernel kernel) {
    const int index = kernel == Kernel::forward ? 0 : 1;
    if constexpr (std::is_same_v<T, float>) {
      return floats[index];
    } else {
      return doubles[index];
    }
  }
};

}  // namespace detail

class Plan {
 public:
  // Chooses each kernel's algorithm for `geometry` (validated when it was built).
  explicit Plan(const ConvGeometry& geometry)
      : geometry_(geometry), kernel_geometry_(kernel_geometry(geometry)), shapes_(geometry) {
    for (Kernel kernel : all_kernels) {
      algorithms_[index(kernel)] = detail::fastest_algorithm(kernel_geometry_, kernel);
    }
    // The weight gradient lowers x as the forward pass does, and shares its choice.
    algorithms_[index(Kernel::backward_weight)] = algorithms_[index(Kernel::forward)];
  }

  // Takes the given algorithm for each kernel (in the order of all_kernels), as tests do to run
  // every path; convt::Error if one cannot compute its kernel for this geometry.
  Plan(const ConvGeometry& geometry, const std::array<Algorithm, 3>& algorithms)
      : geometry_(geometry),
        kernel_geometry_(kernel_geometry(geometry)),
        shapes_(geometry),
        algorithms_(algorithms) {
    for (Kernel kernel : all_kernels) {
      if (!detail::algorithm_applies(kernel_geometry_, kernel, algorithm(kernel))) {
        detail::fail(geometry.name(), ": ", kernel_name(kernel), " cannot take the ",
                     algorithm_name(algorithm(kernel)), " algorithm for this geometry");
      }
    }
  }

  const ConvGeometry& geometry() const { return geometry_; }
  Algorithm algorithm(Kernel kernel) const { return algorithms_[index(kernel)]; }
  // The geometry's input_shape(), weight_shape(), output_shape() and bias shape, formed once:
  // a seed-sized call that checked its arrays against shapes formed anew would spend more on
  // allocating them than on its sums.
  const Shape& input_shape() const { return shapes_.input; }
  const Shape& weight_shape() const { return shapes_.weight; }
  const Shape& output_shape() const { return shapes_.output; }
  const Shape& bias_shape() const { return shapes_.bias; }

  // Keep the packed weights between calls (off by default): each call then compares its weight
  // with the one they were packed from (one pass over it) instead of packing it again. It costs
  // memory for two copies of the weight per kernel; worth it where weights rarely change
  // (inference), not where each call brings new ones (training).
  void keep_weights(bool keep) {
    std::lock_guard<std::mutex> lock(kept_mutex_);
    if (keep && !kept_) kept_ = std::make_shared<detail::KeptWeights>();
    if (!keep) kept_.reset();
  }
  bool keeps_weights() const {
    std::lock_guard<std::mutex> lock(kept_mutex_);
    return kept_ != nullptr;
  }
  // How many times the kept weights were packed (once per kernel, dtype and instruction set,
  // and again each time a call brings a weight that differs from the kept one).
  std::size_t kept_packings() const {
    std::shared_ptr<detail::KeptWeights> kept = kept_weights();
    return kept ? kept->packings.load() : 0;
  }
  // Bytes the kept weights hold.
  std::size_t kept_bytes() const {
    std::shared_ptr<detail::KeptWeights> kept = kept_weights();
    if (!kept) return 0;
    std::lock_guard<std::mutex> lock(kept->mutex);
    std::size_t total = 0;
    auto add = [&](const auto& weight) {
      if (weight) {
        using T = typename std::decay_t<decltype(weight->source)>::value_type;
        total += (weight->source.size() + weight->packed.size()) * sizeof(T);
      }
    };
    for (const auto& weight : kept->floats) add(weight);
    for (const auto& weight : kept->doubles) add(weight);
    return total;
  }

  // The three kernels (kernels.hpp), each with the instruction set read once at its start.
  // y = x (*) w; y is overwritten.
  template <class T>
  void conv_forward(const T* x, const T* w, T* y) const {
    run(Kernel::forward, get_isa(), w, [&](const auto& call) { forward_pass(call, x, w, y); });
  }
  // dx = the adjoint of conv_forward applied to dy; dx is overwritten.
  template <class T>
  void conv_backward_input(const T* dy, const T* w, T* dx) const {
    run(Kernel::backward_input, get_isa(), w,
        [&](const auto& call) { input_gradient_pass(call, dy, w, dx); });
  }
  // dw = the gradient of conv_forward for its weight; dw is overwritten.
  template <class T>
  void conv_backward_weight(const T* x, const T* dy, T* dw) const {
    run<T>(Kernel::backward_weight, get_isa(), nullptr,
           [&](const auto& call) { weight_gradient_pass(call, x, dy, dw); });
  }

  // The layer: output = layer(input) (+ bias). Shapes are the geometry's input_shape(),
  // weight_shape(), output_shape(); bias has output_channels() values or is null.
  template <class T>
  void forward(const T* input, const T* weight, const T* bias, T* output) const {
    const Isa isa = get_isa();
    if (geometry_.kind == ConvKind::convolution) {
      run(Kernel::forward, isa, weight,
          [&](const auto& call) { forward_pass(call, input, weight, output); });
    } else {
      run(Kernel::backward_input, isa, weight,
          [&](const auto& call) { input_gradient_pass(call, input, weight, output); });
    }
    if (bias != nullptr) add_bias(geometry_, bias, output);
  }

  // The gradients of the loss for the layer's input, weight and bias, given its gradient for the
  // output. Pass null for any gradient that is not wanted; each wanted one is overwritten. One
  // instruction set serves the whole call.
  template <class T>
  void backward(const T* grad_output, const T* input, const T* weight, T* grad_input,
                T* grad_weight, T* grad_bias) const {
    const Isa isa = get_isa();
    const bool convolution = geometry_.kind == ConvKind::convolution;
    if (grad_input != nullptr) {
      if (convolution) {
        run(Kernel::backward_input, isa, weight,
            [&](const auto& call) { input_gradient_pass(call, grad_output, weight, grad_input); });
      } else {
        run(Kernel::forward, isa, weight,
            [&](const auto& call) { forward_pass(call, grad_output, weight, grad_input); });
      }
    }
    if (grad_weight != nullptr) {
      // The weight gradient correlates the x side with the y side; for a transposed layer the
      // x side is the gradient of its output.
      const T* x = convolution ? input : grad_output;
      const T* dy = convolution ? grad_output : input;
      run<T>(Kernel::backward_weight, isa, nullptr,
             [&](const auto& call) { weight_gradient_pass(call, x, dy, grad_weight); });
    }
    if (grad_bias != nullptr) bias_backward(geometry_, grad_output, grad_bias);
  }

 private:
  static int index(Kernel kernel) { return static_cast<int>(kernel); }

  // The geometry the kernels compute: the plan's, or, for padding that holds values, the same
  // convolution over x padded by the geometry's mode (padding.hpp).
  static ConvGeometry kernel_geometry(const ConvGeometry& g) {
    return detail::pads_with_values(g) ? detail::padded_geometry(g) : g;
  }

  // Each kernel on the kernel geometry: x padded first, or dx folded from the padded grid, when
  // the padding holds values.
  template <class T>
  void forward_pass(const detail::KernelCall<T>& call, const T* x, const T* w, T* y) const {
    if (!detail::pads_with_values(geometry_))
      return detail::forward_kernel(geometry_, call, x, w, y);
    detail::with_padded_x(geometry_, x, [&](const ConvGeometry& padded, const T* padded_x) {
      detail::forward_kernel(padded, call, padded_x, w, y);
    });
  }
  template <class T>
  void input_gradient_pass(const detail::KernelCall<T>& call, const T* dy, const T* w,
                           T* dx) const {
    if (!detail::pads_with_values(geometry_)) {
      return detail::backward_input_kernel(geometry_, call, dy, w, dx);
    }
    detail::folded_into_x(geometry_, dx, [&](const ConvGeometry& padded, T* padded_dx) {
      detail::backward_input_kernel(padded, call, dy, w, padded_dx);
    });
  }
  template <class T>
  void weight_gradient_pass(const detail::KernelCall<T>& call, const T* x, const T* dy,
                            T* dw) const {
    if (!detail::pads_with_values(geometry_)) {
      return detail::backward_weight_kernel(geometry_, call, x, dy, dw);
    }
    detail::with_padded_x(geometry_, x, [&](const ConvGeometry& padded, const T* padded_x) {
      detail::backward_weight_kernel(padded, call, padded_x, dy, dw);
    });
  }

  std::shared_ptr<detail::KeptWeights> kept_weights() const {
    std::lock_guard<std::mutex> lock(kept_mutex_);
    return kept_;
  }

  // Runs body(call) with the kernel's algorithm, `isa`, and w packed for them: kept from an
  // earlier call when the plan keeps weights and w is unchanged, else packed now.
  template <class T, class Body>
  void run(Kernel kernel, Isa isa, const T* w, Body&& body) const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "convt computes in float or double");
    detail::KernelCall<T> call{algorithm(kernel), isa, {nullptr, 0, 0, isa}};
    if (!detail::packs_weight(kernel, call.algorithm)) return body(call);
    std::shared_ptr<detail::KeptWeights> kept = kept_weights();
    if (!kept) {
      if (detail::reads_weight_once<T>(kernel_geometry_, kernel, call.algorithm, isa)) {
        return body(call);
      }
      call.weight =
          detail::pack_weight<T>(kernel_geometry_, kernel, call.algorithm, isa, w, nullptr);
      return body(call);
    }
    const std::shared_ptr<const detail::KeptWeight<T>> packed = kept_weight(*kept, kernel, isa, w);
    call.weight = packed->operands;
    body(call);
  }

  // The kept packing of w for `kernel`, made again first if w or the instruction set changed.
  // Packings are never changed while a call may read them: one held by a running call is left
  // to it, and a new one takes its place.
  template <class T>
  std::shared_ptr<const detail::KeptWeight<T>> kept_weight(detail::KeptWeights& kept, Kernel kernel,
                                                           Isa isa, const T* w) const {
    const std::size_t count =
        static_cast<std::size_t>(geometry_.y_channels * geometry_.lowered_rows());
    std::shared_ptr<detail::KeptWeight<T>> weight;
    {
      std::lock_guard<std::mutex> lock(kept.mutex);
      weight = kept.slot<T>(kernel);
    }
    if (weight && weight->isa == isa &&
        std::memcmp(weight->source.data(), w, count * sizeof(T)) == 0) {
      return weight;
    }
    {
      std::lock_guard<std::mutex> lock(kept.mutex);
      std::shared_ptr<detail::KeptWeight<T>>& slot = kept.slot<T>(kernel);
      // Reuse the stale packing's memory when no call holds it (the slot and this function do).
      if (!(weight && slot == weight && weight.use_count() == 2)) weight.reset();
      if (slot == weight) slot.reset();
    }
    if (!weight) weight = std::make_shared<detail::KeptWeight<T>>();
    const Algorithm chosen = algorithm(kernel);
    weight->isa = isa;
    weight->source.assign(w, w + count);
    weight->packed.resize(static_cast<std::size_t>(
        detail::packed_weight_size(kernel_geometry_, kernel, chosen, isa)));
    weight->operands =
        detail::pack_weight(kernel_geometry_, kernel, chosen, isa, w, weight->packed.data());
    ++kept.packings;
    {
      std::lock_guard<std::mutex> lock(kept.mutex);
      kept.slot<T>(kernel) = weight;
    }
    return weight;
  }

  struct Shapes {
    explicit Shapes(const ConvGeometry& g)
        : input(g.input_shape()),
          weight(g.weight_shape()),
          output(g.output_shape()),
          bias{g.output_channels()} {}
    Shape input, weight, output, bias;
  };

  ConvGeometry geometry_;
  ConvGeometry kernel_geometry_;
  Shapes shapes_;
  std::array<Algorithm, 3> algorithms_{};
  mutable std::mutex kept_mutex_;
  std::shared_ptr<detail::KeptWeights> kept_;
};

// The kernels for one call, planned for it alone (a Plan runs many).
template <class T>
void conv_forward(const ConvGeometry& g, const T* x, const T* w, T* y) {
  Plan(g).conv_forward(x, w, y);
}

template <class T>
void conv_backward_input(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  Plan(g).conv_backward_input(dy, w, dx);
}

template <class T>
void conv_backward_weight(const ConvGeometry& g, const T* x, const T* dy, T* dw) {
  Plan(g).conv_backward_weight(x, dy, dw);
}

}  // namespace convt
