#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace convt {

// Every invalid argument is reported through this type; its message names the operation, the
// argument and the values, e.g. "conv_transpose2d: output_padding (2) must be smaller than stride
// (2) or dilation (1)". The Python bindings translate it to ValueError.
class Error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {

template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream stream;
  (stream << ... << std::forward<Parts>(parts));
  return stream.str();
}

template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(concat(std::forward<Parts>(parts)...));
}

}  // namespace detail
}  // namespace convt
