// CUDA runtime plumbing shared by every CUDA header: every runtime call is checked and a failure
// becomes a lightgpt::Error naming the call, and device presence is probed without assuming a
// driver exists (without one, cudaGetDeviceCount returns an error rather than zero devices).
#pragma once

#if !defined(__CUDACC__)
#error \
    "lightgpt/backend/cuda/*.cuh must be compiled by nvcc as CUDA; host code includes lightgpt/lightgpt.hpp"
#endif

#include <cuda_runtime.h>

#include "../../core/error.hpp"

namespace lightgpt::cuda {

inline void check(cudaError_t status, const char* call) {
  LIGHTGPT_CHECK(status == cudaSuccess, "CUDA call ", call, " failed: ", cudaGetErrorName(status),
                 " (", cudaGetErrorString(status), ")");
}

// True when at least one usable GPU is present; any runtime failure counts as "no GPU".
inline bool device_available() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later probes start clean
    return false;
  }
  return count > 0;
}

}  // namespace lightgpt::cuda

#define LIGHTGPT_CUDA_CHECK(call) ::lightgpt::cuda::check((call), #call)
