// What the binding files of convt._core share: checks of Python arguments and arrays, and the
// functions that bind each part of the module.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

namespace convt::bindings {

namespace py = pybind11;

template <class T>
using Array = py::array_t<T, py::array::c_style>;

// Whether the array's elements are T's, by NumPy's equivalence of dtypes rather than by identity:
// an array that went through pickle (to another process, say) has an equal dtype object, not
// the same one.
template <class T>
bool holds(const py::array& array) {
  return py::isinstance<py::array_t<T, 0>>(array);
}

inline std::string dtype_name(const py::array& array) {
  return py::str(array.dtype()).cast<std::string>();
}

// Whether the data pointer is aligned to the element size, as the kernels' loads assume.
inline bool aligned(const py::array& array) {
  return (array.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0;
}

// repr(value), for messages about arguments of the wrong type.
inline std::string describe(const py::handle& value) { return py::repr(value).cast<std::string>(); }

// An integer argument (an int or anything with __index__, but not a bool), checked here so that
// a wrong type or a size past 64 bits is convt's error, not pybind11's signature.
inline long long integer_argument(const std::string& op, const char* name,
                                  const py::handle& value) {
  if (py::isinstance<py::bool_>(value) || !PyIndex_Check(value.ptr())) {
    throw py::type_error(op + ": " + name + " must be an int, got " + describe(value));
  }
  const py::int_ number = py::reinterpret_steal<py::int_>(PyNumber_Index(value.ptr()));
  if (!number) throw py::error_already_set();
  int overflow = 0;
  const long long result = PyLong_AsLongLongAndOverflow(number.ptr(), &overflow);
  if (overflow != 0) {
    throw py::value_error(op + ": " + name + " (" + describe(number) + ") does not fit in 64 bits");
  }
  return result;
}

// Runs f with the GIL released, so other Python threads run while C++ computes.
template <class Function>
auto without_gil(Function&& f) {
  py::gil_scoped_release release;
  return f();
}

// The seed's single-channel functions and its Matrix (seed_bindings.cpp).
void bind_seed(py::module_& m);

}  // namespace convt::bindings
