// The per-device state every CUDA kernel family shares: one stream, one cuBLASLt handle with its
// workspace, the device's limits (SM count, shared memory) and grow-only scratch slots for the
// CUB calls and two-pass reductions. Created lazily on first use, one per device and process, and
// deliberately never destroyed (the CUDA runtime may already be shut down when statics die).
// All kernels of the backend run on context().stream(), so the order of operations is the order of
// the calls; host copies synchronise that stream.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

#include "device.cuh"

namespace lightgpt::cuda {

inline void check_cublas(cublasStatus_t status, const char* call) {
  LIGHTGPT_CHECK(status == CUBLAS_STATUS_SUCCESS, "cuBLAS call ", call, " failed with status ",
                 static_cast<int>(status));
}

#define LIGHTGPT_CUBLAS_CHECK(call) ::lightgpt::cuda::check_cublas((call), #call)

// Launch errors are sticky per kernel launch; checked right after every launch.
#define LIGHTGPT_CUDA_CHECK_LAUNCH() LIGHTGPT_CUDA_CHECK(cudaGetLastError())

// cudaMalloc with the failure turned into a lightgpt::Error, and the new memory poisoned when
// LIGHTGPT_POISON_ALLOCATIONS is set (device.cuh). Running out of memory is recoverable
// (a caller may retry with a smaller batch), so the runtime's last error is cleared first: later
// launch checks must not report it again.
inline void* device_allocate(std::size_t bytes) {
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();
    LIGHTGPT_CHECK(false, "cudaMalloc of ", bytes, " bytes failed: ", cudaGetErrorName(status),
                   " (", cudaGetErrorString(status), ")");
  }
  // Synchronous on purpose: the poison must land before any stream's first write.
  if (poison_allocations()) LIGHTGPT_CUDA_CHECK(cudaMemset(ptr, 0xff, bytes));
  return ptr;
}
// cudaFree for destructors: a failure is cleared, never thrown.
inline void device_release(void* ptr) noexcept {
  if (ptr != nullptr && cudaFree(ptr) != cudaSuccess) cudaGetLastError();
}

// Grow-only scratch slots, one per use, so two uses never share memory within one operation.
enum class Scratch : int {
  column_partials = 0,  // partial column sums of the deterministic two-pass reductions
  cub_temp = 1,         // CUB's temporary storage and per-block partial sums
  token_sort = 2,       // the embedding backward's sorted (token, position) pairs
  scalar = 3,           // single results copied back to the host
  count = 4
};

class Context {
 public:
  // cuBLASLt's recommended workspace for Hopper.
  static constexpr std::size_t kWorkspaceBytes = std::size_t(32) << 20;

  // The context of the current device, created on first use. Every kernel call asks for it, so
  // the hot path is cudaGetDevice (a read of the runtime's per-thread state) and a compare with
  // this thread's last answer; the mutex is taken only when a thread meets a device anew.
  // Contexts are never destroyed, so a cached pointer stays valid.
  static Context& current() {
    int device = 0;
    LIGHTGPT_CUDA_CHECK(cudaGetDevice(&device));
    thread_local int last_device = -1;
    thread_local Context* last = nullptr;
    if (device != last_device) {
      static std::mutex mutex;
      static std::map<int, Context*> contexts;
      std::lock_guard<std::mutex> lock(mutex);
      Context*& context = contexts[device];
      if (context == nullptr) context = new Context(device);
      last = context;
      last_device = device;
    }
    return *last;
  }

  cudaStream_t stream() const { return stream_; }
  cublasLtHandle_t lt() const { return lt_; }
  void* workspace() const { return workspace_; }
  std::size_t workspace_bytes() const { return kWorkspaceBytes; }
  int sm_count() const { return sm_count_; }
  std::size_t shared_memory_per_block() const { return shared_per_block_; }

  // At least `bytes` of device memory for `slot`; the previous contents are not kept when it grows.
  void* scratch(Scratch slot, std::size_t bytes) {
    Slot& s = slots_[static_cast<int>(slot)];
    if (bytes > s.bytes) {
      // cudaFree synchronises the device, so no queued kernel still uses the old buffer.
      device_release(s.ptr);
      s.ptr = nullptr;
      s.bytes = 0;
      s.ptr = device_allocate(bytes);
      s.bytes = bytes;
    }
    return s.ptr;
  }

  void synchronize() {
    ++host_waits_;
    LIGHTGPT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  // Times the host has waited for the stream's work (synchronize, and reads of values the stream
  // computed): what a training step must not do, and what a test counts.
  std::int64_t host_waits() const { return host_waits_; }
  void count_host_wait() { ++host_waits_; }

  // TF32 tensor cores for fp32 GEMMs (10-bit mantissa products, fp32 accumulation): faster, but
  // fp32 results then differ from the CPU reference by ~1e-3 relative. On by default; the fp32
  // tests that hold the 1e-5 tolerance of docs/design.md, "Numerics and determinism" turn it off.
  bool allow_tf32() const { return allow_tf32_; }
  void set_allow_tf32(bool allow) { allow_tf32_ = allow; }

  int device() const { return device_; }

 private:
  explicit Context(int device) : device_(device) {
    cudaDeviceProp props{};
    LIGHTGPT_CUDA_CHECK(cudaGetDeviceProperties(&props, device));
    sm_count_ = props.multiProcessorCount;
    shared_per_block_ = props.sharedMemPerBlock;
    // A blocking stream: it also orders against work on the legacy default stream (plain
    // cudaMemcpy in user code).
    LIGHTGPT_CUDA_CHECK(cudaStreamCreate(&stream_));
    LIGHTGPT_CUBLAS_CHECK(cublasLtCreate(&lt_));
    workspace_ = device_allocate(kWorkspaceBytes);
  }

  struct Slot {
    void* ptr = nullptr;
    std::size_t bytes = 0;
  };

  int device_ = 0;
  int sm_count_ = 0;
  std::size_t shared_per_block_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
  Slot slots_[static_cast<int>(Scratch::count)];
  bool allow_tf32_ = true;
  std::int64_t host_waits_ = 0;
};

inline Context& context() { return Context::current(); }

// Blocks and threads for an element-wise launch over `count` items: enough blocks to fill the
// device a few times over, the rest covered by grid-stride loops.
inline unsigned elementwise_blocks(std::size_t count, int threads = 256) {
  const std::size_t needed = (count + threads - 1) / threads;
  const std::size_t cap = static_cast<std::size_t>(context().sm_count()) * 32;
  const std::size_t blocks = needed < cap ? needed : cap;
  return static_cast<unsigned>(blocks > 0 ? blocks : 1);
}

}  // namespace lightgpt::cuda
