// convt._core: binds the C++ library to NumPy. Arrays of the computed dtype that are C-contiguous
// are used in place; the Python package converts anything else once before calling here.
// Outputs are allocated by NumPy (or given as `out`) and the GIL is released around every kernel.

#include "bindings.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <convt/convt.hpp>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

namespace py = pybind11;
using namespace convt::bindings;
using convt::ConvGeometry;
using convt::index_t;
using convt::Shape;

namespace {

Shape shape_of(const py::array& array) {
  return Shape(array.shape(), array.shape() + array.ndim());
}

// Whether the array has the shape `expected`, read where NumPy keeps it.
bool has_shape(const py::array& array, const Shape& expected) {
  return array.ndim() == static_cast<py::ssize_t>(expected.size()) &&
         std::equal(expected.begin(), expected.end(), array.shape());
}

// Checks what the Python package guarantees, so that direct callers of _core get an error
// instead of a wrong answer: dtype, contiguity, alignment, shape.
template <class T>
const T* input_data(const ConvGeometry& g, const py::array& array, const char* name,
                    const Shape& expected) {
  if (!holds<T>(array)) {
    throw py::type_error(g.name() + ": " + name + " must be a C-contiguous " +
                         dtype_name(Array<T>(0)) + " array, got " + dtype_name(array));
  }
  if (!(array.flags() & py::array::c_style) || !aligned(array)) {
    throw py::type_error(g.name() + ": " + name + " must be C-contiguous and aligned");
  }
  if (!has_shape(array, expected)) g.expect_shape(name, shape_of(array), expected);
  return static_cast<const T*>(array.data());
}

bool overlaps(const py::array& a, const py::array& b) {
  const auto* a_begin = static_cast<const char*>(a.data());
  const auto* b_begin = static_cast<const char*>(b.data());
  return a_begin < b_begin + b.nbytes() && b_begin < a_begin + a.nbytes();
}

// A new C-contiguous array. Large ones live in buffers of convt's output pool, which takes them
// back when the array is freed, so steady-state calls take no page faults for their outputs.
template <class T>
Array<T> new_array(const Shape& shape) {
  constexpr std::size_t pooled_from = std::size_t{1} << 20;
  constexpr std::size_t header = convt::BufferPool::alignment;  // holds the buffer's size
  std::size_t bytes = sizeof(T);
  for (convt::index_t extent : shape) bytes *= static_cast<std::size_t>(extent);
  if (bytes < pooled_from) return Array<T>(shape);
  auto* buffer = static_cast<unsigned char*>(convt::output_pool().take(header + bytes));
  std::memcpy(buffer, &bytes, sizeof bytes);
  py::capsule owner(buffer, [](void* pointer) {
    std::size_t size = 0;
    std::memcpy(&size, pointer, sizeof size);
    convt::output_pool().give_back(pointer, header + size);
  });
  return Array<T>(shape, reinterpret_cast<T*>(buffer + header), owner);
}

// The output: `out` when given (checked for dtype, shape, contiguity, writability and overlap
// with the inputs), a new NumPy array otherwise.
template <class T>
Array<T> output_array(const ConvGeometry& g, const std::optional<py::array>& out, const char* name,
                      const Shape& shape, std::initializer_list<const py::array*> inputs) {
  if (!out) {
    try {
      return new_array<T>(shape);
    } catch (const py::error_already_set& error) {
      if (!error.matches(PyExc_MemoryError)) throw;
    } catch (const convt::Error&) {
    }
    throw py::value_error(g.name() + ": cannot allocate " + name + " of shape " +
                          convt::detail::format_values(shape));
  }
  const py::array& given = *out;
  if (!holds<T>(given)) {
    throw py::type_error(g.name() + ": " + name + " must have dtype " + dtype_name(Array<T>(0)) +
                         ", got " + dtype_name(given));
  }
  if (!(given.flags() & py::array::c_style) || !given.writeable() || !aligned(given)) {
    throw py::value_error(g.name() + ": " + name +
                          " must be a writable, aligned C-contiguous array");
  }
  if (!has_shape(given, shape)) g.expect_shape(name, shape_of(given), shape);
  for (const py::array* input : inputs) {
    if (input != nullptr && overlaps(given, *input)) {
      throw py::value_error(g.name() + ": " + name + " must not share memory with an input");
    }
  }
  return py::reinterpret_borrow<Array<T>>(given);
}

template <class Function>
auto by_dtype(const ConvGeometry& g, const py::array& array, const char* name, Function&& f) {
  if (holds<float>(array)) return f(float{});
  if (holds<double>(array)) return f(double{});
  throw py::type_error(g.name() + ": " + name + " must be float32 or float64, got " +
                       dtype_name(array));
}

py::array forward_with(const convt::Plan& plan, const py::array& input, const py::array& weight,
                       const std::optional<py::array>& bias, const std::optional<py::array>& out) {
  const ConvGeometry& g = plan.geometry();
  return by_dtype(g, input, "input", [&](auto zero) -> py::array {
    using T = decltype(zero);
    const T* x = input_data<T>(g, input, "input", plan.input_shape());
    const T* w = input_data<T>(g, weight, "weight", plan.weight_shape());
    const T* b = bias ? input_data<T>(g, *bias, "bias", plan.bias_shape()) : nullptr;
    Array<T> result = output_array<T>(g, out, "out", plan.output_shape(),
                                      {&input, &weight, bias ? &*bias : nullptr});
    T* y = result.mutable_data();
    without_gil([&] { plan.forward(x, w, b, y); });
    return result;
  });
}

using MaybeArray = std::optional<py::array>;

std::tuple<py::object, py::object, py::object> backward_with(
    const convt::Plan& plan, const py::array& grad_output, const py::array& input,
    const py::array& weight, bool need_input, bool need_weight, bool need_bias,
    const MaybeArray& out_input, const MaybeArray& out_weight, const MaybeArray& out_bias) {
  const ConvGeometry& g = plan.geometry();
  return by_dtype(g, grad_output, "grad_output", [&](auto zero) {
    using T = decltype(zero);
    const T* dy = input_data<T>(g, grad_output, "grad_output", plan.output_shape());
    const T* x = need_weight ? input_data<T>(g, input, "input", plan.input_shape()) : nullptr;
    const T* w = need_input ? input_data<T>(g, weight, "weight", plan.weight_shape()) : nullptr;
    const std::initializer_list<const py::array*> inputs{&grad_output, &input, &weight};
    std::optional<Array<T>> dx, dw, db;
    if (need_input) dx = output_array<T>(g, out_input, "grad_input", plan.input_shape(), inputs);
    if (need_weight)
      dw = output_array<T>(g, out_weight, "grad_weight", plan.weight_shape(), inputs);
    if (need_bias) db = output_array<T>(g, out_bias, "grad_bias", plan.bias_shape(), inputs);
    const MaybeArray* outs[] = {&out_input, &out_weight, &out_bias};
    for (int i = 0; i < 3; ++i) {
      for (int j = i + 1; j < 3; ++j) {
        if (*outs[i] && *outs[j] && overlaps(**outs[i], **outs[j])) {
          throw py::value_error(g.name() + ": the out arrays must not share memory");
        }
      }
    }
    T* dx_data = dx ? dx->mutable_data() : nullptr;
    T* dw_data = dw ? dw->mutable_data() : nullptr;
    T* db_data = db ? db->mutable_data() : nullptr;
    without_gil([&] { plan.backward(dy, x, w, dx_data, dw_data, db_data); });
    auto as_object = [](std::optional<Array<T>>& array) -> py::object {
      return array ? py::object(std::move(*array)) : py::none();
    };
    return std::make_tuple(as_object(dx), as_object(dw), as_object(db));
  });
}

// Calls f(plan) with the plan `plan_or_geometry` is, or a geometry's plan for this call.
template <class Function>
auto with_plan(const py::handle& plan_or_geometry, Function&& f) {
  if (py::isinstance<convt::Plan>(plan_or_geometry)) {
    return f(plan_or_geometry.cast<const convt::Plan&>());
  }
  if (!py::isinstance<ConvGeometry>(plan_or_geometry)) {
    throw py::type_error(
        "plan must be a Plan or a Geometry, got " +
        py::str(py::type::of(plan_or_geometry).attr("__name__")).cast<std::string>());
  }
  return f(convt::Plan(plan_or_geometry.cast<const ConvGeometry&>()));
}

py::array forward(const py::handle& plan, const py::array& input, const py::array& weight,
                  const std::optional<py::array>& bias, const std::optional<py::array>& out) {
  return with_plan(plan,
                   [&](const convt::Plan& p) { return forward_with(p, input, weight, bias, out); });
}

std::tuple<py::object, py::object, py::object> backward(
    const py::handle& plan, const py::array& grad_output, const py::array& input,
    const py::array& weight, bool need_input, bool need_weight, bool need_bias,
    const MaybeArray& out_input, const MaybeArray& out_weight, const MaybeArray& out_bias) {
  return with_plan(plan, [&](const convt::Plan& p) {
    return backward_with(p, grad_output, input, weight, need_input, need_weight, need_bias,
                         out_input, out_weight, out_bias);
  });
}

convt::PaddingRule padding_rule(const std::string& name) {
  if (name == "explicit") return convt::PaddingRule::explicit_values;
  if (name == "valid") return convt::PaddingRule::valid;
  if (name == "same") return convt::PaddingRule::same;
  throw py::value_error("padding must be 'valid', 'same' or numbers, got '" + name + "'");
}

convt::ConvOptions options(const Shape& stride, const Shape& padding, const Shape& padding_after,
                           const std::string& rule, const std::string& mode, const Shape& dilation,
                           index_t groups, const Shape& output_padding, const Shape& output_size) {
  convt::ConvOptions result;
  result.stride = stride;
  result.padding = padding;
  result.padding_after = padding_after;
  result.padding_rule = padding_rule(rule);
  result.padding_mode = convt::parse_padding_mode(mode);
  result.dilation = dilation;
  result.groups = groups;
  result.output_padding = output_padding;
  result.output_size = output_size;
  return result;
}

py::tuple spatial(const ConvGeometry& g, const convt::Extent& values) {
  return py::cast(Shape(values.end() - g.dims, values.end()));
}

// {"conv_forward": "im2col", ...}: the algorithm each kernel takes.
py::dict algorithm_names(const convt::Plan& plan) {
  py::dict names;
  for (convt::Kernel kernel : convt::all_kernels) {
    names[convt::kernel_name(kernel)] = convt::algorithm_name(plan.algorithm(kernel));
  }
  return names;
}

// A plan taking the algorithms `chosen` names, and its fastest choice for the kernels it omits.
std::unique_ptr<convt::Plan> plan_with(const ConvGeometry& g,
                                       const std::map<std::string, std::string>& chosen) {
  const convt::Plan fastest(g);
  std::array<convt::Algorithm, 3> algorithms{};
  std::size_t used = 0;
  for (convt::Kernel kernel : convt::all_kernels) {
    convt::Algorithm& algorithm = algorithms[static_cast<std::size_t>(kernel)];
    algorithm = fastest.algorithm(kernel);
    const auto named = chosen.find(convt::kernel_name(kernel));
    if (named == chosen.end()) continue;
    ++used;
    bool known = false;
    for (convt::Algorithm candidate : convt::all_algorithms) {
      if (named->second == convt::algorithm_name(candidate)) {
        algorithm = candidate;
        known = true;
      }
    }
    if (!known) {
      throw py::value_error("Plan: unknown algorithm '" + named->second + "' for " + named->first);
    }
  }
  if (used != chosen.size()) {
    throw py::value_error(
        "Plan: algorithms are given for the kernels 'conv_forward', 'conv_backward_input' and "
        "'conv_backward_weight' only");
  }
  return std::make_unique<convt::Plan>(g, algorithms);
}

// An operand read where it lies, transposed views included: its strides in elements.
template <class T>
convt::MatrixOperand<T> operand_of(const py::array& array, const char* name) {
  const auto itemsize = static_cast<py::ssize_t>(sizeof(T));
  if (array.strides(0) % itemsize != 0 || array.strides(1) % itemsize != 0) {
    throw py::value_error(std::string("gemm: ") + name + "'s strides must be whole elements");
  }
  return {static_cast<const T*>(array.data()), array.strides(0) / itemsize,
          array.strides(1) / itemsize};
}

// C = A . B, or C += A . B when `accumulate`, for 2-D arrays of one floating dtype with any
// strides: the GEMM under the kernels, bound for benchmarks/gemm.py.
py::array gemm(const py::array& a, const py::array& b, const std::optional<py::array>& out,
               bool accumulate) {
  if (a.ndim() != 2 || b.ndim() != 2 || a.shape(1) != b.shape(0)) {
    throw py::value_error("gemm: a and b must be 2-D with a.shape[1] == b.shape[0], got shapes " +
                          convt::detail::format_values(shape_of(a)) + " and " +
                          convt::detail::format_values(shape_of(b)));
  }
  if (!a.dtype().is(b.dtype())) {
    throw py::type_error("gemm: a and b must have one dtype, got " + dtype_name(a) + " and " +
                         dtype_name(b));
  }
  const auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    const index_t m = a.shape(0), n = b.shape(1), k = a.shape(1);
    Array<T> c;
    if (out) {
      c = py::reinterpret_borrow<Array<T>>(*out);
      if (!out->dtype().is(a.dtype()) || !(out->flags() & py::array::c_style) ||
          !out->writeable() || shape_of(*out) != Shape{m, n}) {
        throw py::value_error("gemm: out must be a writable C-contiguous " + dtype_name(a) +
                              " array of shape " + convt::detail::format_values(Shape{m, n}));
      }
      if (overlaps(*out, a) || overlaps(*out, b)) {
        throw py::value_error("gemm: out must not share memory with a or b");
      }
    } else {
      c = Array<T>({m, n});
      accumulate = false;
    }
    const convt::MatrixOperand<T> a_operand = operand_of<T>(a, "a");
    const convt::MatrixOperand<T> b_operand = operand_of<T>(b, "b");
    T* c_data = c.mutable_data();
    without_gil([&] { convt::gemm<T>(m, n, k, a_operand, b_operand, c_data, n, accumulate); });
    return c;
  };
  if (a.dtype().is(py::dtype::of<float>())) return run(float{});
  if (a.dtype().is(py::dtype::of<double>())) return run(double{});
  throw py::type_error("gemm: a and b must be float32 or float64, got " + dtype_name(a));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "convt's C++ core. Private: use the convt package.";
  m.attr("__version__") = CONVT_VERSION_STRING;

  py::class_<ConvGeometry>(m, "Geometry",
                           "The validated geometry of one convolution or transposed convolution "
                           "call: sizes, weight shape, groups and multiply-adds.")
      .def_property_readonly("name", &ConvGeometry::name)
      .def_property_readonly(
          "transposed", [](const ConvGeometry& g) { return g.kind == convt::ConvKind::transposed; })
      .def_readonly("dims", &ConvGeometry::dims)
      .def_readonly("batched", &ConvGeometry::batched)
      .def_readonly("batch", &ConvGeometry::batch)
      .def_readonly("groups", &ConvGeometry::groups)
      .def_readonly("x_channels", &ConvGeometry::x_channels)
      .def_readonly("y_channels", &ConvGeometry::y_channels)
      .def_property_readonly("x_size", [](const ConvGeometry& g) { return spatial(g, g.x_size); })
      .def_property_readonly("y_size", [](const ConvGeometry& g) { return spatial(g, g.y_size); })
      .def_property_readonly("kernel", [](const ConvGeometry& g) { return spatial(g, g.kernel); })
      .def_property_readonly("stride", [](const ConvGeometry& g) { return spatial(g, g.stride); })
      .def_property_readonly("padding_before",
                             [](const ConvGeometry& g) { return spatial(g, g.padding_before); })
      .def_property_readonly("padding_after",
                             [](const ConvGeometry& g) { return spatial(g, g.padding_after); })
      .def_property_readonly("dilation",
                             [](const ConvGeometry& g) { return spatial(g, g.dilation); })
      .def_property_readonly("output_padding",
                             [](const ConvGeometry& g) { return spatial(g, g.output_padding); })
      .def_property_readonly(
          "padding_mode",
          [](const ConvGeometry& g) { return convt::padding_mode_name(g.padding_mode); })
      .def_property_readonly("output_size_first",
                             [](const ConvGeometry& g) { return spatial(g, g.output_size_first); })
      .def_property_readonly("output_size_last",
                             [](const ConvGeometry& g) { return spatial(g, g.output_size_last); })
      .def_property_readonly("algorithms",
                             [](const ConvGeometry& g) { return algorithm_names(convt::Plan(g)); })
      .def_property_readonly("input_size",
                             [](const ConvGeometry& g) {
                               return spatial(
                                   g, g.kind == convt::ConvKind::convolution ? g.x_size : g.y_size);
                             })
      .def_property_readonly("output_size",
                             [](const ConvGeometry& g) {
                               return spatial(
                                   g, g.kind == convt::ConvKind::convolution ? g.y_size : g.x_size);
                             })
      .def_property_readonly("multiply_adds", &ConvGeometry::multiply_adds)
      .def_property_readonly(
          "input_shape", [](const ConvGeometry& g) { return py::tuple(py::cast(g.input_shape())); })
      .def_property_readonly(
          "output_shape",
          [](const ConvGeometry& g) { return py::tuple(py::cast(g.output_shape())); })
      .def_property_readonly(
          "weight_shape",
          [](const ConvGeometry& g) { return py::tuple(py::cast(g.weight_shape())); })
      .def(
          "receptive_field",
          [](const ConvGeometry& g, int dim, index_t y_begin, index_t y_end) {
            const ConvGeometry::Window w = g.receptive_field(dim, y_begin, y_end);
            return py::make_tuple(w.begin, w.end, w.padding_before, w.padding_after,
                                  w.output_padding);
          },
          py::arg("dim"), py::arg("y_begin"), py::arg("y_end"))
      .def("y_split", &ConvGeometry::y_split, py::arg("dim"), py::arg("x"))
      .def("x_split", &ConvGeometry::x_split, py::arg("dim"), py::arg("y"))
      .def("__repr__", [](const ConvGeometry& g) {
        return "<Geometry " + g.name() + " input " + convt::detail::format_values(g.input_shape()) +
               " weight " + convt::detail::format_values(g.weight_shape()) + " output " +
               convt::detail::format_values(g.output_shape()) + ">";
      });

  m.def(
      "conv_geometry",
      [](int dims, const Shape& input, const Shape& weight, const Shape& stride,
         const Shape& padding, const Shape& padding_after, const std::string& rule,
         const Shape& dilation, index_t groups, const std::string& mode) {
        return ConvGeometry::convolution(
            dims, input, weight,
            options(stride, padding, padding_after, rule, mode, dilation, groups, {0}, {}));
      },
      py::arg("dims"), py::arg("input_shape"), py::arg("weight_shape"), py::arg("stride"),
      py::arg("padding"), py::arg("padding_after"), py::arg("padding_rule"), py::arg("dilation"),
      py::arg("groups"), py::arg("padding_mode") = "zeros");
  m.def(
      "conv_transpose_geometry",
      [](int dims, const Shape& input, const Shape& weight, const Shape& stride,
         const Shape& padding, const Shape& padding_after, const std::string& rule,
         const Shape& output_padding, index_t groups, const Shape& dilation,
         const Shape& output_size, const std::string& mode) {
        return ConvGeometry::transposed(dims, input, weight,
                                        options(stride, padding, padding_after, rule, mode,
                                                dilation, groups, output_padding, output_size));
      },
      py::arg("dims"), py::arg("input_shape"), py::arg("weight_shape"), py::arg("stride"),
      py::arg("padding"), py::arg("padding_after"), py::arg("padding_rule"),
      py::arg("output_padding"), py::arg("groups"), py::arg("dilation"), py::arg("output_size"),
      py::arg("padding_mode") = "zeros");
  m.def(
      "layer_weight_shape",
      [](bool transposed, index_t in_channels, index_t out_channels, const Shape& kernel_size,
         index_t groups) {
        const auto kind = transposed ? convt::ConvKind::transposed : convt::ConvKind::convolution;
        return py::tuple(py::cast(ConvGeometry::layer_weight_shape(kind, in_channels, out_channels,
                                                                   kernel_size, groups)));
      },
      py::arg("transposed"), py::arg("in_channels"), py::arg("out_channels"),
      py::arg("kernel_size"), py::arg("groups") = 1);

  py::class_<convt::Plan>(m, "Plan")
      .def(py::init<const ConvGeometry&>(), py::arg("geometry"))
      .def(py::init(&plan_with), py::arg("geometry"), py::arg("algorithms"))
      .def_property_readonly("geometry", &convt::Plan::geometry)
      .def_property_readonly("algorithms", &algorithm_names)
      .def_property("keep_weights", &convt::Plan::keeps_weights, &convt::Plan::keep_weights)
      .def_property_readonly("kept_bytes", &convt::Plan::kept_bytes)
      .def_property_readonly("kept_packings", &convt::Plan::kept_packings)
      .def("__repr__", [](const convt::Plan& plan) {
        const ConvGeometry& g = plan.geometry();
        std::string text =
            "<Plan " + g.name() + " input " + convt::detail::format_values(g.input_shape()) + ":";
        for (convt::Kernel kernel : convt::all_kernels) {
          text += std::string(" ") + convt::kernel_name(kernel) + " " +
                  convt::algorithm_name(plan.algorithm(kernel));
        }
        return text + ">";
      });
  m.def("forward", &forward, py::arg("plan"), py::arg("input"), py::arg("weight"),
        py::arg("bias") = py::none(), py::arg("out") = py::none());
  m.def("backward", &backward, py::arg("plan"), py::arg("grad_output"), py::arg("input"),
        py::arg("weight"), py::arg("need_input"), py::arg("need_weight"), py::arg("need_bias"),
        py::arg("out_input") = py::none(), py::arg("out_weight") = py::none(),
        py::arg("out_bias") = py::none());

  bind_seed(m);

  m.def("get_num_threads", &convt::get_num_threads);
  m.def(
      "set_num_threads",
      [](const py::object& threads) {
        const long long count = integer_argument("set_num_threads", "threads", threads);
        // Beyond int, the C++ check gets the nearest int, which it refuses as it would the count.
        const long long most = std::numeric_limits<int>::max();
        if (count > most || count < -most) {
          throw py::value_error("set_num_threads: threads (" + std::to_string(count) +
                                ") must be " +
                                (count > 0 ? "at most " + std::to_string(convt::max_num_threads())
                                           : std::string("positive")));
        }
        convt::set_num_threads(static_cast<int>(count));
      },
      py::arg("threads"));
  m.def("get_isa", [] { return std::string(convt::isa_name(convt::get_isa())); });
  m.def(
      "set_isa",
      [](const py::object& name) {
        if (!py::isinstance<py::str>(name)) {
          throw py::type_error("set_isa: isa must be a str, got " + describe(name));
        }
        convt::set_isa(convt::parse_isa(name.cast<std::string>()));
      },
      py::arg("isa"));
  m.def("supported_isas", [] {
    std::vector<std::string> names;
    for (convt::Isa isa : convt::supported_isas()) names.emplace_back(convt::isa_name(isa));
    return names;
  });
  m.def("gemm_config", [] {
    const convt::CacheSizes& caches = convt::cache_sizes();
    py::dict config;
    config["isa"] = convt::isa_name(convt::get_isa());
    config["caches"] = py::dict(py::arg("l1d") = caches.l1d, py::arg("l2") = caches.l2,
                                py::arg("l2_ways") = caches.l2_ways, py::arg("l3") = caches.l3,
                                py::arg("source") = caches.source);
    const auto blocking = [](const convt::GemmConfig& c) {
      return py::dict(py::arg("tile") = py::make_tuple(c.tile_rows, c.tile_cols),
                      py::arg("depth") = c.blocking.depth, py::arg("rows") = c.blocking.rows,
                      py::arg("cols") = c.blocking.cols);
    };
    config["float32"] = blocking(convt::gemm_config<float>());
    config["float64"] = blocking(convt::gemm_config<double>());
    return config;
  });
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("out") = py::none(),
        py::arg("accumulate") = false);
  m.def(
      "fma_peak_gflops",
      [](const py::object& value) {
        if (py::isinstance<py::bool_>(value) || !PyNumber_Check(value.ptr()) ||
            py::isinstance<py::str>(value)) {
          throw py::type_error("fma_peak_gflops: seconds must be a number, got " + describe(value));
        }
        const double seconds = py::float_(value);
        return without_gil([&] { return convt::fma_peak_gflops(seconds); });
      },
      py::arg("seconds"));
  // The least a bound call can cost that takes two arrays and returns a new one (a's shape and
  // dtype, uninitialised): the floor the bench holds the seed-sized calls' overhead against.
  m.def(
      "floor_probe",
      [](const py::array& a, const py::array& b) {
        (void)b;
        return py::array(a.dtype(), std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
      },
      py::arg("a"), py::arg("b"));
  m.def("workspace_bytes", &convt::workspace_bytes);
  m.def("release_workspace", &convt::release_workspace);
  m.def("kept_output_bytes", [] { return convt::output_pool().bytes_held(); });
}
