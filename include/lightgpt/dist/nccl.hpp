// Nccl: the Communicator over NCCL for device buffers (the Cuda backend), one process per GPU.
// Rank 0's unique id reaches the other ranks through a host communicator (Mpi under mpirun or
// srun; SingleProcess for one GPU), which also carries the host-side sums.
// Collectives run on a stream of their own, after the backend's stream has reached them, and the
// host waits for each one while polling NCCL's asynchronous error: a peer that died or failed
// turns into ncclCommAbort and an Error after `timeout`, never into a hang. Started collectives
// (start_*) queue on the same stream and return at once; their wait polls the same way, for an
// event recorded after them. Include this header
// only in CUDA translation units of programs that link NCCL.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "../backend/cuda/context.cuh"
#include "communicator.hpp"

namespace lightgpt {

class Nccl final : public Communicator {
 public:
  // One GPU per process: the node-local rank (Mpi::local_rank) picks it, modulo the GPUs this
  // process sees, so that a launcher that already gives each process one GPU works too. Call
  // before any other CUDA work of the process. Returns the device.
  static int select_device(int local_rank) {
    int devices = 0;
    LIGHTGPT_CUDA_CHECK(cudaGetDeviceCount(&devices));
    LIGHTGPT_CHECK(devices > 0, "local rank ", local_rank, " sees no GPU");
    const int device = local_rank % devices;
    LIGHTGPT_CUDA_CHECK(cudaSetDevice(device));
    return device;
  }

  // Collective over the ranks of `host`, which must outlive this communicator.
  explicit Nccl(Communicator& host, std::chrono::milliseconds timeout = std::chrono::seconds(60))
      : host_(host), timeout_(timeout) {
    LIGHTGPT_CHECK(!host.device_buffers(), "Nccl needs a host communicator to start from");
    ncclUniqueId id{};
    if (host.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    static_assert(sizeof id % 2 == 0);
    host.broadcast(&id, sizeof id / 2, DataType::bits16, 0);
    LIGHTGPT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    LIGHTGPT_CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    // Non-blocking: initialisation and every call return at once, so that a lost peer is seen
    // by the polling below instead of blocking inside NCCL.
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    check(ncclCommInitRankConfig(&comm_, host.size(), id, host.rank(), &config),
          "ncclCommInitRankConfig");
    wait_for_comm("ncclCommInitRankConfig");
  }
  Nccl(const Nccl&) = delete;
  Nccl& operator=(const Nccl&) = delete;
  ~Nccl() override {
    if (comm_ != nullptr) {
      if (failed_)
        ncclCommAbort(comm_);
      else
        ncclCommDestroy(comm_);
    }
    if (ready_ != nullptr) cudaEventDestroy(ready_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  bool device_buffers() const override { return true; }

  void all_reduce_sum(void* data, std::size_t count, DataType type) override {
    begin();
    check(ncclAllReduce(data, data, count, arithmetic(type), ncclSum, comm_, stream_),
          "ncclAllReduce");
    finish("ncclAllReduce");
  }

  void reduce_scatter_sum(void* whole, std::span<const std::size_t> counts,
                          DataType type) override {
    begin();
    enqueue_reduce_scatter(whole, counts, type);
    finish("reduce-scatter");
  }

  Request start_all_reduce_sum(void* data, std::size_t count, DataType type) override {
    begin();
    check(ncclAllReduce(data, data, count, arithmetic(type), ncclSum, comm_, stream_),
          "ncclAllReduce");
    return started("ncclAllReduce");
  }

  Request start_reduce_scatter_sum(void* whole, std::span<const std::size_t> counts,
                                   DataType type) override {
    begin();
    enqueue_reduce_scatter(whole, counts, type);
    return started("reduce-scatter");
  }

  // Likewise one grouped broadcast per rank instead of ncclAllGather.
  void all_gather(void* whole, std::span<const std::size_t> counts, DataType type) override {
    const std::vector<std::size_t> offsets = part_offsets(counts);
    const std::size_t size = data_type_size(type);
    begin();
    check(ncclGroupStart(), "ncclGroupStart");
    for (std::size_t r = 0; r < counts.size(); ++r) {
      char* part = static_cast<char*>(whole) + offsets[r] * size;
      check(ncclBroadcast(part, part, counts[r] * size, ncclUint8, int(r), comm_, stream_),
            "ncclBroadcast");
    }
    check(ncclGroupEnd(), "ncclGroupEnd");
    finish("all-gather");
  }

  void broadcast(void* data, std::size_t count, DataType type, int root) override {
    begin();
    check(ncclBroadcast(data, data, count * data_type_size(type), ncclUint8, root, comm_, stream_),
          "ncclBroadcast");
    finish("ncclBroadcast");
  }

  void host_sum(double* values, std::size_t count) override { host_.host_sum(values, count); }
  void barrier() override { host_.barrier(); }

 private:
  static void check(ncclResult_t result, const char* call) {
    if (result == ncclSuccess || result == ncclInProgress) return;
    throw Error(detail::concat(call, " failed: ", ncclGetErrorString(result)));
  }
  static ncclDataType_t arithmetic(DataType type) {
    switch (type) {
      case DataType::f32:
        return ncclFloat32;
      case DataType::f64:
        return ncclFloat64;
      case DataType::i64:
        return ncclInt64;
      case DataType::bits16:
        break;
    }
    throw Error("NCCL: 16-bit values can be gathered and broadcast, not summed");
  }

  // Parts may differ in size, which ncclReduceScatter does not allow: one grouped reduce per
  // rank, each in place on that rank's part.
  void enqueue_reduce_scatter(void* whole, std::span<const std::size_t> counts, DataType type) {
    const std::vector<std::size_t> offsets = part_offsets(counts);
    const std::size_t size = data_type_size(type);
    check(ncclGroupStart(), "ncclGroupStart");
    for (std::size_t r = 0; r < counts.size(); ++r) {
      char* part = static_cast<char*>(whole) + offsets[r] * size;
      check(ncclReduce(part, part, counts[r], arithmetic(type), ncclSum, int(r), comm_, stream_),
            "ncclReduce");
    }
    check(ncclGroupEnd(), "ncclGroupEnd");
  }

  // A request for the collective just enqueued: complete once an event recorded after it on the
  // communication stream has been reached.
  Request started(const char* what) {
    wait_for_comm(what);
    cudaEvent_t raw = nullptr;
    LIGHTGPT_CUDA_CHECK(cudaEventCreateWithFlags(&raw, cudaEventDisableTiming));
    std::shared_ptr<std::remove_pointer_t<cudaEvent_t>> done(
        raw, [](cudaEvent_t event) { cudaEventDestroy(event); });
    LIGHTGPT_CUDA_CHECK(cudaEventRecord(done.get(), stream_));
    auto test = [this, done, what] {
      LIGHTGPT_CHECK(!failed_, "NCCL ", what, " waited on after a failed collective");
      const cudaError_t status = cudaEventQuery(done.get());
      if (status == cudaSuccess) return true;
      if (status != cudaErrorNotReady) LIGHTGPT_CUDA_CHECK(status);
      ncclResult_t state = ncclSuccess;
      ncclCommGetAsyncError(comm_, &state);
      if (state != ncclSuccess && state != ncclInProgress) fail(what, ncclGetErrorString(state));
      return false;
    };
    auto wait = [this, done, what] {
      LIGHTGPT_CHECK(!failed_, "NCCL ", what, " waited on after a failed collective");
      const auto start = std::chrono::steady_clock::now();
      for (;;) {
        const cudaError_t status = cudaEventQuery(done.get());
        if (status == cudaSuccess) return;
        if (status != cudaErrorNotReady) LIGHTGPT_CUDA_CHECK(status);
        poll(what, start);
      }
    };
    return {test, wait};
  }

  // The collective starts once the backend's stream has produced its input.
  void begin() {
    LIGHTGPT_CHECK(!failed_, "NCCL communicator used after a failed collective");
    LIGHTGPT_CUDA_CHECK(cudaEventRecord(ready_, cuda::context().stream()));
    LIGHTGPT_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
  }

  // Waits for the enqueued collective, polling for a peer's failure; the backend's later work is
  // queued after this returns, so it reads the result.
  void finish(const char* what) {
    wait_for_comm(what);
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t status = cudaStreamQuery(stream_);
      if (status == cudaSuccess) return;
      if (status != cudaErrorNotReady) LIGHTGPT_CUDA_CHECK(status);
      poll(what, start);
    }
  }

  // Until a non-blocking call has been issued completely.
  void wait_for_comm(const char* what) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      ncclResult_t state = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) fail(what, ncclGetErrorString(state));
      poll(what, start);
    }
  }

  void poll(const char* what, std::chrono::steady_clock::time_point start) {
    ncclResult_t state = ncclSuccess;
    ncclCommGetAsyncError(comm_, &state);
    if (state != ncclSuccess && state != ncclInProgress) fail(what, ncclGetErrorString(state));
    if (std::chrono::steady_clock::now() - start > timeout_) {
      fail(what, ("no progress for " + std::to_string(timeout_.count()) +
                  " ms: a peer rank has failed or stopped")
                     .c_str());
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }

  [[noreturn]] void fail(const char* what, const char* why) {
    failed_ = true;
    ncclCommAbort(comm_);
    comm_ = nullptr;
    throw Error(detail::concat("NCCL ", what, " on rank ", host_.rank(), " of ", host_.size(),
                               " failed: ", why));
  }

  Communicator& host_;
  std::chrono::milliseconds timeout_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  bool failed_ = false;
};

}  // namespace lightgpt
