// Helpers shared by the GPU benchmarks (plain CUDA programs that the GPU machine runs from the
// bundle): CUDA-event timing on the backend's stream, a device buffer, command-line flags, medians
// and the device's used memory. Results are printed as `RESULT key=value` lines for run.sh.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <lightgpt/cuda.cuh>
#include <vector>

namespace lightgpt::bench {

class Timer {
 public:
  Timer() {
    LIGHTGPT_CUDA_CHECK(cudaEventCreate(&start_));
    LIGHTGPT_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~Timer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Seconds per call of `body`, averaged over `repeats` after one warm-up call.
  double seconds(int repeats, const std::function<void()>& body) {
    body();
    return measure(repeats, body);
  }
  // Seconds of one call of `body`, no warm-up (for interleaved A/B samples).
  double once(const std::function<void()>& body) { return measure(1, body); }

 private:
  double measure(int repeats, const std::function<void()>& body) {
    cudaStream_t stream = cuda::context().stream();
    LIGHTGPT_CUDA_CHECK(cudaEventRecord(start_, stream));
    for (int i = 0; i < repeats; ++i) body();
    LIGHTGPT_CUDA_CHECK(cudaEventRecord(stop_, stream));
    LIGHTGPT_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    LIGHTGPT_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms * 1e-3 / repeats;
  }

  cudaEvent_t start_{}, stop_{};
};

template <class U>
struct Device {
  explicit Device(std::size_t n)
      : count(n), ptr(static_cast<U*>(cuda::device_allocate(n * sizeof(U)))) {}
  ~Device() { cuda::device_release(ptr); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  void fill(float value) {
    std::vector<U> host(count, U(value));
    Ops<Cuda>::copy_from_host(ptr, host.data(), count);
  }
  std::size_t count;
  U* ptr;
};

// The value after `name` (e.g. --batch 16), or `fallback` when absent.
inline int arg_int(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  }
  return fallback;
}
inline bool has_flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

// Bytes of device memory in use (by every process on the device).
inline std::size_t used_device_bytes() {
  std::size_t free = 0, total = 0;
  LIGHTGPT_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return total - free;
}

}  // namespace lightgpt::bench
