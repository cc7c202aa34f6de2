// convt._core's bindings of the seed's single-channel functions over 2-D arrays: Matrix and
// Matrix32, convolute, convolute_full, rotate_180 and the seed's two layers.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <convt/convt.hpp>
#include <memory>
#include <string>
#include <utility>

#include "bindings.hpp"

namespace convt::bindings {
namespace {

using convt::index_t;

// The data of a 2-D array that the single-channel kernels read in place, checked for the
// shape and layout they read; the sizes are checked by the geometry or the Matrix.
template <class T>
const T* matrix_data(const py::array& array, const char* name) {
  if (array.ndim() != 2) {
    throw py::value_error(std::string(name) + " must be a 2-D array, got " +
                          std::to_string(array.ndim()) + " dimensions");
  }
  if (!holds<T>(array) || !(array.flags() & py::array::c_style) || !aligned(array)) {
    throw py::type_error(std::string(name) + " must be an aligned C-contiguous " +
                         dtype_name(Array<T>(0)) + " array, got " + dtype_name(array));
  }
  return static_cast<const T*>(array.data());
}

// A Matrix over the array's data, which the kernels only read: the const_cast never writes.
template <class T>
convt::Matrix<T> matrix_view(const py::array& array, const char* name) {
  // Checked first, in a statement of its own: the order in which arguments are evaluated is
  // unspecified, and array.shape(1) of a 1-D array would throw before the check could.
  T* data = const_cast<T*>(matrix_data<T>(array, name));
  return convt::Matrix<T>::view(data, array.shape(0), array.shape(1));
}

// The plan of a single-channel call, from the few this thread made last: a loop over
// seed-sized matrices calls with the same shapes again and again, and building and planning a
// geometry costs more than its sums. The geometry is Matrix::convolute's (matrix_geometry, whose
// errors name `op`), so the results are the Matrix methods' to the bit.
const convt::Plan& seed_plan(const char* op, convt::ConvKind kind, const py::array& x,
                             const py::array& w, convt::Strides strides) {
  struct Entry {
    std::array<index_t, 6> sizes;
    convt::ConvKind kind;
    std::unique_ptr<convt::Plan> plan;
  };
  constexpr std::size_t kept = 8;
  thread_local std::array<Entry, kept> entries;
  thread_local std::size_t next = 0;
  const std::array<index_t, 6> sizes{x.shape(0), x.shape(1), w.shape(0),
                                     w.shape(1), strides[0], strides[1]};
  for (const Entry& entry : entries) {
    if (entry.plan && entry.kind == kind && entry.sizes == sizes) return *entry.plan;
  }
  auto plan = std::make_unique<convt::Plan>(
      convt::detail::matrix_geometry(op, kind, sizes[0], sizes[1], sizes[2], sizes[3], strides));
  Entry& entry = entries[next++ % kept];
  entry = Entry{sizes, kind, std::move(plan)};
  return *entry.plan;
}

// A new rows x cols array, refused as a Matrix of that size would be when it cannot be had.
template <class T>
Array<T> new_matrix(index_t rows, index_t cols) {
  try {
    return Array<T>({rows, cols});
  } catch (const py::error_already_set& error) {
    if (!error.matches(PyExc_MemoryError)) throw;
  }
  convt::detail::fail("Matrix: cannot allocate a ", rows, " x ", cols, " matrix");
}

// Hands an owning Matrix's memory to NumPy without copying it.
template <class T>
py::array to_numpy(convt::Matrix<T>&& matrix) {
  auto* owner = new convt::Matrix<T>(std::move(matrix));
  py::capsule free_when_done(owner, [](void* p) { delete static_cast<convt::Matrix<T>*>(p); });
  return Array<T>({owner->rows(), owner->cols()}, owner->data(), free_when_done);
}

template <class Function>
py::object seed_call(const py::array& first, Function&& f) {
  if (holds<float>(first)) return f(float{});
  if (holds<double>(first)) return f(double{});
  throw py::type_error("arrays must be float32 or float64, got " + dtype_name(first));
}

// An index (i, j) of a Matrix.
std::pair<index_t, index_t> matrix_index(const py::object& index) {
  if (!py::isinstance<py::tuple>(index) || py::len(index) != 2) {
    throw py::type_error("Matrix: an index must be a pair (row, col), got " + describe(index));
  }
  const py::tuple pair = index;
  return {integer_argument("Matrix", "row", pair[0]), integer_argument("Matrix", "col", pair[1])};
}

template <class T>
void bind_matrix(py::module_& m, const char* name) {
  using M = convt::Matrix<T>;
  py::class_<M>(m, name, py::buffer_protocol())
      .def(py::init([](const py::object& rows, const py::object& cols) {
             return M(integer_argument("Matrix", "rows", rows),
                      integer_argument("Matrix", "cols", cols));
           }),
           py::arg("rows"), py::arg("cols"))
      .def(py::init([](const Array<T>& values) {
             if (values.ndim() != 2) {
               throw py::value_error("Matrix: values must be 2-D, got " +
                                     std::to_string(values.ndim()) + " dimensions");
             }
             M matrix(values.shape(0), values.shape(1));
             std::copy(values.data(), values.data() + values.size(), matrix.data());
             return matrix;
           }),
           py::arg("values"))
      .def_buffer([](M& matrix) {
        return py::buffer_info(
            matrix.data(), static_cast<index_t>(sizeof(T)), py::format_descriptor<T>::format(), 2,
            {matrix.rows(), matrix.cols()},
            {static_cast<index_t>(sizeof(T)) * matrix.cols(), static_cast<index_t>(sizeof(T))});
      })
      .def_property_readonly("rows", &M::rows)
      .def_property_readonly("cols", &M::cols)
      .def_property_readonly(
          "shape", [](const M& matrix) { return py::make_tuple(matrix.rows(), matrix.cols()); })
      .def("__getitem__",
           [](const M& matrix, const py::object& index) {
             const auto [i, j] = matrix_index(index);
             return matrix.at(i, j);
           })
      .def("__setitem__",
           [](M& matrix, const py::object& index, const py::object& value) {
             const auto [i, j] = matrix_index(index);
             if (py::isinstance<py::bool_>(value) || !PyNumber_Check(value.ptr()) ||
                 py::isinstance<py::str>(value)) {
               throw py::type_error("Matrix: a value must be a number, got " + describe(value));
             }
             matrix.at(i, j) = static_cast<T>(py::float_(value).cast<double>());
           })
      .def(
          "convolute",
          [](const M& self, const M& kernel, convt::Strides strides) {
            return without_gil([&] { return self.convolute(kernel, strides); });
          },
          py::arg("kernel"), py::arg("strides") = convt::Strides{1, 1})
      .def(
          "convolute_full",
          [](const M& self, const M& kernel, convt::Strides strides) {
            return without_gil([&] { return self.convolute_full(kernel, strides); });
          },
          py::arg("kernel"), py::arg("strides") = convt::Strides{1, 1})
      .def("rotate_180", &M::rotate_180)
      .def("__repr__", [name](const M& matrix) {
        return std::string(name) + "(" + std::to_string(matrix.rows()) + " x " +
               std::to_string(matrix.cols()) + ")";
      });
}

}  // namespace

void bind_seed(py::module_& m) {
  bind_matrix<double>(m, "Matrix");
  bind_matrix<float>(m, "Matrix32");

  // Matrix::convolute and convolute_full, planned once per shape and writing a new NumPy array.
  // convolute_full is the transposed convolution: the convolution's input gradient, run on X.
  for (const convt::ConvKind kind : {convt::ConvKind::convolution, convt::ConvKind::transposed}) {
    const bool full = kind == convt::ConvKind::transposed;
    const char* name = full ? "convolute_full" : "convolute";
    m.def(
        name,
        [name, full, kind](const py::array& x, const py::array& w, convt::Strides strides) {
          return seed_call(x, [&](auto zero) -> py::object {
            using T = decltype(zero);
            const T* input = matrix_data<T>(x, "X");
            const T* kernel = matrix_data<T>(w, "W");
            const convt::Plan& plan = seed_plan(name, kind, x, w, strides);
            const auto& size = full ? plan.geometry().x_size : plan.geometry().y_size;
            Array<T> output = new_matrix<T>(size[1], size[2]);
            T* result = output.mutable_data();
            without_gil([&] {
              if (full) {
                plan.conv_backward_input(input, kernel, result);
              } else {
                plan.conv_forward(input, kernel, result);
              }
            });
            return std::move(output);
          });
        },
        py::arg("X"), py::arg("W"), py::arg("strides") = convt::Strides{1, 1});
  }
  m.def(
      "rotate_180",
      [](const py::array& w) {
        return seed_call(w, [&](auto zero) -> py::object {
          using T = decltype(zero);
          return to_numpy(matrix_view<T>(w, "W").rotate_180());
        });
      },
      py::arg("W"));

  // forward(weight, prev) and backward(a_prev, dz, kernel) for both seed layers.
  auto bind_seed_layer = [&m](const char* forward_name, const char* backward_name, auto forward_fn,
                              auto backward_fn) {
    m.def(
        forward_name,
        [forward_fn](const py::array& weight, const py::array& prev, convt::Strides strides) {
          return seed_call(prev, [&](auto zero) -> py::object {
            using T = decltype(zero);
            const auto w = matrix_view<T>(weight, "weight");
            const auto x = matrix_view<T>(prev, "prev");
            return to_numpy(without_gil([&] { return forward_fn(w, x, strides); }));
          });
        },
        py::arg("weight"), py::arg("prev"), py::arg("strides") = convt::Strides{1, 1});
    m.def(
        backward_name,
        [backward_fn](const py::array& a_prev, const py::array& dz, const py::array& kernel,
                      convt::Strides strides) {
          return seed_call(a_prev, [&](auto zero) -> py::object {
            using T = decltype(zero);
            const auto x = matrix_view<T>(a_prev, "a_prev");
            const auto gradient = matrix_view<T>(dz, "dz");
            const auto w = matrix_view<T>(kernel, "kernel");
            auto result = without_gil([&] { return backward_fn(x, gradient, w, strides); });
            return py::make_tuple(to_numpy(std::move(result.dx)), to_numpy(std::move(result.dw)));
          });
        },
        py::arg("a_prev"), py::arg("dz"), py::arg("kernel"),
        py::arg("strides") = convt::Strides{1, 1});
  };
  bind_seed_layer(
      "cnn_forward", "cnn_backward",
      [](const auto& w, const auto& x, convt::Strides s) { return convt::cnn_forward(w, x, s); },
      [](const auto& x, const auto& dz, const auto& w, convt::Strides s) {
        return convt::cnn_backward(x, dz, w, s);
      });
  bind_seed_layer(
      "fcn_forward", "fcn_backward",
      [](const auto& w, const auto& x, convt::Strides s) { return convt::fcn_forward(w, x, s); },
      [](const auto& x, const auto& dz, const auto& w, convt::Strides s) {
        return convt::fcn_backward(x, dz, w, s);
      });
}

}  // namespace convt::bindings
