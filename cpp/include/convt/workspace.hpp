#pragma once

#include <array>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "error.hpp"

namespace convt {
namespace detail {

// Scratch memory that lives as long as the calling thread and only grows: a call reuses what
// the previous call on the same thread left, so steady-state calls allocate nothing and take no
// page faults. Each user thread has its own, so concurrent calls never share scratch.
enum class Scratch {
  lowered,
  gathered,
  packed_a,
  packed_b,
  partial_sums,
  row_table,
  flipped_weight,
  packed_weight,
  taps,
  count
};

class ScratchArena {
 public:
  void* get(Scratch slot, std::size_t bytes) {
    Buffer& buffer = buffers_[static_cast<std::size_t>(slot)];
    if (bytes > buffer.capacity) {
      buffer.data.reset();
      const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
      buffer.data.reset(static_cast<unsigned char*>(std::aligned_alloc(alignment, rounded)));
      if (!buffer.data) {
        throw Error("convt: cannot allocate " + std::to_string(rounded) + " bytes of scratch");
      }
      buffer.capacity = rounded;
    }
    return buffer.data.get();
  }

  std::size_t bytes_held() const {
    std::size_t total = 0;
    for (const Buffer& buffer : buffers_) total += buffer.capacity;
    return total;
  }

  void release() {
    for (Buffer& buffer : buffers_) {
      buffer.data.reset();
      buffer.capacity = 0;
    }
  }

  static constexpr std::size_t alignment = 64;

 private:
  struct Free {
    void operator()(unsigned char* pointer) const { std::free(pointer); }
  };
  struct Buffer {
    std::unique_ptr<unsigned char, Free> data;
    std::size_t capacity = 0;
  };
  std::array<Buffer, static_cast<std::size_t>(Scratch::count)> buffers_;
};

inline ScratchArena& thread_arena() {
  thread_local ScratchArena arena;
  return arena;
}

template <class T>
T* scratch(Scratch slot, std::size_t count) {
  return static_cast<T*>(thread_arena().get(slot, count * sizeof(T)));
}

}  // namespace detail

// Bytes of scratch the calling thread holds for reuse by later calls.
inline std::size_t workspace_bytes() { return detail::thread_arena().bytes_held(); }

// Gives the calling thread's scratch back to the system.
inline void release_workspace() { detail::thread_arena().release(); }

}  // namespace convt
