// Device memory for the CUDA backend: plain cudaMalloc/cudaFree (256-byte aligned by the runtime),
// fills and copies on the context's stream. Copies to and from the host synchronise the stream,
// so host buffers can be reused (or read) as soon as the call returns.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <new>

#include "../tags.hpp"
#include "context.cuh"

namespace lightgpt {

template <>
struct Memory<Cuda> {
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    return cuda::device_allocate(bytes);
  }
  static void release(void* ptr) noexcept { cuda::device_release(ptr); }
};

namespace cuda {

struct MemoryOps {
  template <class T>
  static void fill_zero(T* dst, std::size_t count) {
    if (count == 0) return;
    LIGHTGPT_CUDA_CHECK(cudaMemsetAsync(dst, 0, count * sizeof(T), context().stream()));
  }
  template <class T>
  static void copy(T* dst, const T* src, std::size_t count) {
    if (count == 0) return;
    LIGHTGPT_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, count * sizeof(T), cudaMemcpyDeviceToDevice, context().stream()));
  }
  template <class T>
  static void copy_to_host(T* host_dst, const T* src, std::size_t count) {
    if (count == 0) return;
    LIGHTGPT_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, count * sizeof(T), cudaMemcpyDeviceToHost,
                                        context().stream()));
    context().synchronize();
  }
  template <class T>
  static void copy_from_host(T* dst, const T* host_src, std::size_t count) {
    if (count == 0) return;
    LIGHTGPT_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, count * sizeof(T), cudaMemcpyHostToDevice,
                                        context().stream()));
    context().synchronize();
  }
};

}  // namespace cuda
}  // namespace lightgpt
