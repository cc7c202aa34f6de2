#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "error.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

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

// Memory for the arrays calls return, kept once they are freed so that a later call returning
// the same size reuses it: a fresh large block costs a page fault per 4 KiB (about a
// microsecond each here) before anything is computed, and glibc hands large freed blocks back
// to the system whenever other allocations come between two calls. The pool keeps at most
// `max_bytes` of freed buffers; beyond that they are freed.
class BufferPool {
 public:
  static constexpr std::size_t alignment = 64;
  static constexpr std::size_t max_bytes = std::size_t{512} << 20;
  // Buffers of at least this size start on a boundary of it, and the whole huge pages inside
  // them are offered to Linux for transparent huge pages: a fresh 512 MiB weight gradient (a
  // vocoder layer's, too large to keep) took 131,072 faults on pages of 4 KiB. Their sizes stay
  // in 64-byte lines: rounded to whole huge pages, 40 buffers of 2.6 MiB took 160 MiB resident.
  static constexpr std::size_t huge_page = std::size_t{2} << 20;

  // A buffer of `bytes` (a kept one when there is one), aligned to 64 bytes.
  void* take(std::size_t bytes) {
    const std::size_t size = rounded(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto kept = free_.find(size);
      if (kept != free_.end()) {
        void* data = kept->second;
        free_.erase(kept);
        held_ -= size;
        return data;
      }
    }
    // posix_memalign, as aligned_alloc asks for a size that is a multiple of the alignment.
    void* data = nullptr;
    if (posix_memalign(&data, size >= huge_page ? huge_page : alignment, size) != 0) {
      throw Error("convt: cannot allocate " + std::to_string(size) + " bytes for an output");
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // Advice: failure changes nothing.
    if (size >= huge_page) madvise(data, size / huge_page * huge_page, MADV_HUGEPAGE);
#endif
    return data;
  }

  // Takes back a buffer `take(bytes)` returned.
  void give_back(void* data, std::size_t bytes) {
    const std::size_t size = rounded(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (held_ + size <= max_bytes) {
        free_.emplace(size, data);
        held_ += size;
        return;
      }
    }
    std::free(data);
  }

  std::size_t bytes_held() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return held_;
  }

  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& kept : free_) std::free(kept.second);
    free_.clear();
    held_ = 0;
  }

  ~BufferPool() { release(); }

 private:
  static std::size_t rounded(std::size_t bytes) {
    return (std::max<std::size_t>(bytes, 1) + alignment - 1) / alignment * alignment;
  }

  mutable std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;
  std::size_t held_ = 0;
};

// The process's pool for returned arrays (the Python bindings use it for large outputs).
inline BufferPool& output_pool() {
  static BufferPool pool;
  return pool;
}

// Bytes of scratch the calling thread holds for reuse by later calls.
inline std::size_t workspace_bytes() { return detail::thread_arena().bytes_held(); }

// Gives the calling thread's scratch, and the buffers kept for outputs, back to the system.
inline void release_workspace() {
  detail::thread_arena().release();
  output_pool().release();
}

}  // namespace convt
