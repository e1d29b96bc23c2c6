// Host memory for the CPU backend: 256-byte aligned allocations, plain copies.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "../../core/backend_tags.hpp"

namespace lightgpt {

template <>
struct Memory<Cpu> {
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    std::size_t rounded = (bytes + 255) / 256 * 256;
    void* ptr = std::aligned_alloc(256, rounded);
    if (ptr == nullptr) throw std::bad_alloc();
    return ptr;
  }
  static void release(void* ptr) { std::free(ptr); }
};

namespace cpu {

struct MemoryOps {
  // Large fills (the gradients of a model, every step) are split across threads, guided as the
  // optimizer's passes are (backend/cpu/optim.hpp).
  template <class T>
  static void fill_zero(T* dst, std::size_t count) {
    constexpr std::size_t kChunk = std::size_t(1) << 18;
    if (count <= kChunk) {
      if (count) std::memset(static_cast<void*>(dst), 0, count * sizeof(T));
      return;
    }
    const auto chunks = static_cast<std::ptrdiff_t>((count + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(guided)
    for (std::ptrdiff_t chunk = 0; chunk < chunks; ++chunk) {
      const std::size_t begin = static_cast<std::size_t>(chunk) * kChunk;
      const std::size_t n = std::min(count - begin, kChunk);
      std::memset(static_cast<void*>(dst + begin), 0, n * sizeof(T));
    }
  }
  template <class T>
  static void copy(T* dst, const T* src, std::size_t count) {
    if (count) std::memcpy(static_cast<void*>(dst), src, count * sizeof(T));
  }
  // Host <-> backend copies; on the CPU both are plain copies.
  template <class T>
  static void copy_to_host(T* host_dst, const T* src, std::size_t count) {
    copy(host_dst, src, count);
  }
  template <class T>
  static void copy_from_host(T* dst, const T* host_src, std::size_t count) {
    copy(dst, host_src, count);
  }

  // A host buffer the caller fills and then uploads without waiting (the CUDA backend's pinned
  // staging); on the CPU the upload is a plain copy.
  template <class T>
  class HostStaging {
   public:
    T* acquire(std::size_t count) {
      if (buffer_.size() < count) buffer_.resize(count);
      return buffer_.data();
    }
    void upload(T* dst, std::size_t count) { copy(dst, buffer_.data(), count); }

   private:
    std::vector<T> buffer_;
  };

  // Values of backend memory the host reads later (the CUDA backend's asynchronous download);
  // on the CPU start() copies and wait() returns the copy.
  template <class T>
  class HostReadback {
   public:
    void start(const T* src, std::size_t count) { buffer_.assign(src, src + count); }
    const T* wait() const { return buffer_.data(); }

   private:
    std::vector<T> buffer_;
  };
};

}  // namespace cpu
}  // namespace lightgpt
