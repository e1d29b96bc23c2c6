// Buffers and the activation arena. A Buffer owns one allocation of a backend's memory. The arena
// is planned by walking the model's activation list twice with an ArenaBinder: once to measure
// (every slot 256-byte aligned), once, after the single allocation, to bind the pointers.
#pragma once

#include <cstddef>
#include <utility>

#include "backend_tags.hpp"

namespace lightgpt {

inline constexpr std::size_t kArenaAlignBytes = 256;

template <class T, class Backend>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t count)
      : data_(static_cast<T*>(Memory<Backend>::allocate(count * sizeof(T)))), count_(count) {}
  ~Buffer() { Memory<Backend>::release(data_); }
  Buffer(Buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return count_; }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

class ArenaBinder {
 public:
  // With no base the binder only measures; pointers are set to null.
  explicit ArenaBinder(std::byte* base = nullptr) : base_(base) {}

  template <class T>
  void operator()(T*& slot, std::size_t count) {
    offset_ = (offset_ + kArenaAlignBytes - 1) / kArenaAlignBytes * kArenaAlignBytes;
    slot = base_ ? reinterpret_cast<T*>(base_ + offset_) : nullptr;
    offset_ += count * sizeof(T);
  }

  std::size_t bytes() const { return offset_; }

 private:
  std::byte* base_;
  std::size_t offset_ = 0;
};

}  // namespace lightgpt
