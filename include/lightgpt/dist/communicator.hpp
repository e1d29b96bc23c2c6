// The collectives data-parallel training needs, as one small interface: sum all-reduce,
// reduce-scatter and all-gather over per-rank parts, broadcast, and a host-side sum for metrics.
// The two sums also start without waiting (start_*), returning a Request to wait on, so that a
// trainer can reduce one layer's gradients while the backward of the layers below still runs.
// Trainer talks only to this interface; the engines behind it (dist/mpi.hpp for host buffers,
// dist/nccl.hpp for device buffers) are separate headers that only distributed programs include,
// so nothing here needs mpi.h or nccl.h. SingleProcess is the world of one every run defaults to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <numeric>
#include <span>
#include <type_traits>
#include <vector>

namespace lightgpt {

// Element types the collectives carry. Gathers and broadcasts only move bytes, so 16-bit working
// weights travel as `bits16`; sums need an arithmetic type.
enum class DataType : std::uint8_t { f32, f64, i64, bits16 };

template <class T>
constexpr DataType data_type_of() {
  if constexpr (std::is_same_v<T, float>)
    return DataType::f32;
  else if constexpr (std::is_same_v<T, double>)
    return DataType::f64;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return DataType::i64;
  else {
    static_assert(sizeof(T) == 2, "collectives carry float, double, int64 or 16-bit values");
    return DataType::bits16;
  }
}

inline std::size_t data_type_size(DataType type) {
  switch (type) {
    case DataType::f32:
      return 4;
    case DataType::f64:
      return 8;
    case DataType::i64:
      return 8;
    case DataType::bits16:
      return 2;
  }
  return 0;
}

// A collective in flight. wait() returns once its result is in place (and rethrows what went
// wrong); test() says whether it has finished without blocking, and gives an engine without a
// progress thread of its own (MPI) the chance to move it along. A default Request is complete.
class Request {
 public:
  Request() = default;
  Request(std::function<bool()> test, std::function<void()> wait)
      : test_(std::move(test)), wait_(std::move(wait)) {}
  Request(Request&& other) noexcept { take(other); }
  Request& operator=(Request&& other) noexcept {
    if (this != &other) {
      finish_quietly();
      take(other);
    }
    return *this;
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  // Buffers must outlive the transfer, so a request dropped while pending is still waited for.
  ~Request() { finish_quietly(); }

  bool pending() const { return wait_ != nullptr; }
  bool test() {
    if (!pending()) return true;
    if (!test_()) return false;
    wait();
    return true;
  }
  void wait() {
    if (!pending()) return;
    const std::function<void()> finish = std::move(wait_);
    wait_ = nullptr;
    test_ = nullptr;
    finish();
  }

 private:
  void take(Request& other) noexcept {
    test_ = std::move(other.test_);
    wait_ = std::move(other.wait_);
    other.test_ = nullptr;
    other.wait_ = nullptr;
  }
  void finish_quietly() noexcept {
    try {
      wait();
    } catch (...) {
      // Unwinding from an earlier failure: that error is the one reported.
    }
  }

  std::function<bool()> test_;
  std::function<void()> wait_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Where the buffers of the collectives below live: device memory (NCCL) or host memory (MPI).
  virtual bool device_buffers() const = 0;

  // data[i] = Σ over ranks of data[i], on every rank.
  virtual void all_reduce_sum(void* data, std::size_t count, DataType type) = 0;
  // In place: `whole` holds Σ counts elements, rank r's part starting at Σ counts[<r]. On return
  // rank r's part holds the sum over ranks of that part; the other parts are left unspecified.
  virtual void reduce_scatter_sum(void* whole, std::span<const std::size_t> counts,
                                  DataType type) = 0;
  // In place: `whole` holds every rank's part at Σ counts[<r]; each rank sends its own part and
  // receives the others'.
  virtual void all_gather(void* whole, std::span<const std::size_t> counts, DataType type) = 0;
  virtual void broadcast(void* data, std::size_t count, DataType type, int root) = 0;
  // all_reduce_sum and reduce_scatter_sum, started: the buffer must stay untouched until the
  // request completes. For the same arguments the result is bit for bit what waiting at once
  // gives, whenever the wait comes. An engine without non-blocking collectives runs them here.
  virtual Request start_all_reduce_sum(void* data, std::size_t count, DataType type) {
    all_reduce_sum(data, count, type);
    return {};
  }
  virtual Request start_reduce_scatter_sum(void* whole, std::span<const std::size_t> counts,
                                           DataType type) {
    reduce_scatter_sum(whole, counts, type);
    return {};
  }
  // Sums of a few host doubles (losses, counts), whatever device_buffers() says.
  virtual void host_sum(double* values, std::size_t count) = 0;
  virtual void barrier() = 0;
};

// One process: every collective is the identity.
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  bool device_buffers() const override { return false; }
  void all_reduce_sum(void*, std::size_t, DataType) override {}
  void reduce_scatter_sum(void*, std::span<const std::size_t>, DataType) override {}
  void all_gather(void*, std::span<const std::size_t>, DataType) override {}
  void broadcast(void*, std::size_t, DataType, int) override {}
  void host_sum(double*, std::size_t) override {}
  void barrier() override {}
};

// Where each rank's part of a flat buffer starts: Σ counts[<r].
inline std::vector<std::size_t> part_offsets(std::span<const std::size_t> counts) {
  std::vector<std::size_t> offsets(counts.size() + 1, 0);
  std::partial_sum(counts.begin(), counts.end(), offsets.begin() + 1);
  return offsets;
}

}  // namespace lightgpt
