// CUDA runtime plumbing shared by every CUDA header: every runtime call is checked and a failure
// becomes a lightgpt::Error naming the call, and device presence is probed without assuming a
// driver exists (without one, cudaGetDeviceCount returns an error rather than zero devices).
#pragma once

#if !defined(__CUDACC__)
#error \
    "lightgpt/backend/cuda/*.cuh must be compiled by nvcc as CUDA; host code includes lightgpt/lightgpt.hpp"
#endif

#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

#include "../../core/error.hpp"

namespace lightgpt::cuda {

inline void check(cudaError_t status, const char* call) {
  LIGHTGPT_CHECK(status == cudaSuccess, "CUDA call ", call, " failed: ", cudaGetErrorName(status),
                 " (", cudaGetErrorString(status), ")");
}

// Why no GPU can be used, or "" when one can: the runtime's own error (no driver, a driver older
// than the runtime needs, no device visible) is kept so a skipped or failed test can print it.
// Probed once per process; the sticky error is cleared so later calls start clean.
inline const std::string& device_unavailable_reason() {
  static const std::string reason = [] {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      cudaGetLastError();
      return std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(status) + " (" +
             cudaGetErrorString(status) + ")";
    }
    if (count == 0) return std::string("cudaGetDeviceCount found no CUDA device");
    return std::string();
  }();
  return reason;
}

// True when at least one usable GPU is present; any runtime failure counts as "no GPU".
inline bool device_available() { return device_unavailable_reason().empty(); }

// True when the environment variable `name` is set to something other than "" or "0".
inline bool environment_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' && !(value[0] == '0' && value[1] == '\0');
}

// LIGHTGPT_POISON_ALLOCATIONS=1 fills every new device allocation (model arena, activation arena,
// context scratch, FFT buffers) with 0xFF bytes — a NaN in fp32, bf16 and fp16 — so a kernel that
// reads memory nothing wrote fails a test instead of reading a fresh zero page. Test runs set it.
inline bool poison_allocations() {
  static const bool poison = environment_flag("LIGHTGPT_POISON_ALLOCATIONS");
  return poison;
}

}  // namespace lightgpt::cuda

#define LIGHTGPT_CUDA_CHECK(call) ::lightgpt::cuda::check((call), #call)
