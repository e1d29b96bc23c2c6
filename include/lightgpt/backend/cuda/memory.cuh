// Device memory for the CUDA backend: plain cudaMalloc/cudaFree (256-byte aligned by the runtime),
// fills and copies on the context's stream. Copies to and from the host synchronise the stream,
// so host buffers can be reused (or read) as soon as the call returns; HostStaging uploads from
// pinned memory without that wait, and HostReadback downloads into pinned memory, waiting (when
// the host asks for the values) only for the work queued before the download.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <new>

#include "../../core/backend_tags.hpp"
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

  // Uploads that do not stall the stream (a training step's tokens): the host fills pinned memory
  // from acquire() and upload() queues the copy behind the work already on the stream, so the host
  // goes on launching while the GPU is still busy with the previous step. acquire() waits only
  // for this buffer's previous upload, which the host must not overwrite while it is in flight.
  template <class T>
  class HostStaging {
   public:
    HostStaging() = default;
    HostStaging(const HostStaging&) = delete;
    HostStaging& operator=(const HostStaging&) = delete;
    ~HostStaging() {
      if (uploaded_ != nullptr) {
        cudaEventSynchronize(uploaded_);
        cudaEventDestroy(uploaded_);
      }
      if (buffer_ != nullptr) cudaFreeHost(buffer_);
      cudaGetLastError();
    }

    T* acquire(std::size_t count) {
      if (uploaded_ != nullptr) LIGHTGPT_CUDA_CHECK(cudaEventSynchronize(uploaded_));
      if (count > capacity_) {
        if (buffer_ != nullptr) LIGHTGPT_CUDA_CHECK(cudaFreeHost(buffer_));
        buffer_ = nullptr;
        capacity_ = 0;
        LIGHTGPT_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&buffer_), count * sizeof(T)));
        capacity_ = count;
      }
      return buffer_;
    }
    void upload(T* dst, std::size_t count) {
      if (count == 0) return;
      LIGHTGPT_CHECK(count <= capacity_, "HostStaging::upload of ", count,
                     " values from a buffer of ", capacity_);
      const cudaStream_t stream = context().stream();
      if (uploaded_ == nullptr) {
        LIGHTGPT_CUDA_CHECK(cudaEventCreateWithFlags(&uploaded_, cudaEventDisableTiming));
      }
      LIGHTGPT_CUDA_CHECK(
          cudaMemcpyAsync(dst, buffer_, count * sizeof(T), cudaMemcpyHostToDevice, stream));
      LIGHTGPT_CUDA_CHECK(cudaEventRecord(uploaded_, stream));
    }

   private:
    T* buffer_ = nullptr;
    std::size_t capacity_ = 0;
    cudaEvent_t uploaded_ = nullptr;
  };

  // Values the stream computes and the host reads later (a step's losses and update status):
  // start() queues their copy into pinned memory, wait() blocks until that copy is done, not for
  // work queued after it, and returns them. A start() replaces the values of the previous one.
  template <class T>
  class HostReadback {
   public:
    HostReadback() = default;
    HostReadback(const HostReadback&) = delete;
    HostReadback& operator=(const HostReadback&) = delete;
    ~HostReadback() {
      if (copied_ != nullptr) {
        cudaEventSynchronize(copied_);
        cudaEventDestroy(copied_);
      }
      if (buffer_ != nullptr) cudaFreeHost(buffer_);
      cudaGetLastError();
    }

    void start(const T* src, std::size_t count) {
      if (count == 0) return;
      if (count > capacity_) {
        if (copied_ != nullptr) LIGHTGPT_CUDA_CHECK(cudaEventSynchronize(copied_));
        if (buffer_ != nullptr) LIGHTGPT_CUDA_CHECK(cudaFreeHost(buffer_));
        buffer_ = nullptr;
        capacity_ = 0;
        LIGHTGPT_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&buffer_), count * sizeof(T)));
        capacity_ = count;
      }
      if (copied_ == nullptr) {
        LIGHTGPT_CUDA_CHECK(cudaEventCreateWithFlags(&copied_, cudaEventDisableTiming));
      }
      const cudaStream_t stream = context().stream();
      LIGHTGPT_CUDA_CHECK(
          cudaMemcpyAsync(buffer_, src, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
      LIGHTGPT_CUDA_CHECK(cudaEventRecord(copied_, stream));
    }
    const T* wait() const {
      if (copied_ != nullptr) {
        context().count_host_wait();
        LIGHTGPT_CUDA_CHECK(cudaEventSynchronize(copied_));
      }
      return buffer_;
    }

   private:
    T* buffer_ = nullptr;
    std::size_t capacity_ = 0;
    cudaEvent_t copied_ = nullptr;
  };
};

}  // namespace cuda
}  // namespace lightgpt
