// Mpi: the Communicator over MPI for host buffers (the Cpu backend), and the process side of every
// distributed run: initialisation under mpirun or srun, rank discovery (global and node-local),
// barrier, and the failure path. A rank that fails calls abort(), which prints the rank and ends
// every other rank through MPI_Abort — a failed run exits non-zero everywhere instead of hanging
// in a collective. Include this header only in programs that link MPI (lightgpt::distributed).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "communicator.hpp"

namespace lightgpt {

class Mpi final : public Communicator {
 public:
  // Initialises MPI unless the program already did (then MPI is left for it to finalise).
  Mpi(int* argc, char*** argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_mpi_ = true;
    }
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    // A failed call returns its code, which check() turns into an Error naming the call; the
    // program's handler then aborts the whole job (fail()).
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm node;
    check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type");
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
  }
  Mpi(const Mpi&) = delete;
  Mpi& operator=(const Mpi&) = delete;
  ~Mpi() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // The rank among the processes of this node: the GPU a process drives.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  bool device_buffers() const override { return false; }
  MPI_Comm comm() const { return comm_; }

  void all_reduce_sum(void* data, std::size_t count, DataType type) override {
    const std::size_t size = data_type_size(type);
    for (std::size_t done = 0; done < count;) {
      const std::size_t n = std::min<std::size_t>(count - done, kMaxCount);
      check(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + done * size, int(n),
                          arithmetic(type), MPI_SUM, comm_),
            "MPI_Allreduce");
      done += n;
    }
  }

  void reduce_scatter_sum(void* whole, std::span<const std::size_t> counts,
                          DataType type) override {
    const std::vector<int> n = int_counts(counts, "reduce-scatter");
    const std::vector<std::size_t> offsets = part_offsets(counts);
    // MPI leaves the in-place result at the start of the buffer; it moves to this rank's part.
    check(MPI_Reduce_scatter(MPI_IN_PLACE, whole, n.data(), arithmetic(type), MPI_SUM, comm_),
          "MPI_Reduce_scatter");
    const std::size_t size = data_type_size(type);
    std::memmove(static_cast<char*>(whole) + offsets[rank_] * size, whole, counts[rank_] * size);
  }

  // Non-blocking twins of the two above. Blocking and non-blocking collectives may reduce in
  // different orders (Open MPI runs them through different components), so a caller that needs
  // identical sums either way uses these two alone.
  Request start_all_reduce_sum(void* data, std::size_t count, DataType type) override {
    auto requests = std::make_shared<std::vector<MPI_Request>>();
    const std::size_t size = data_type_size(type);
    for (std::size_t done = 0; done < count;) {
      const std::size_t n = std::min<std::size_t>(count - done, kMaxCount);
      MPI_Request request = MPI_REQUEST_NULL;
      check(MPI_Iallreduce(MPI_IN_PLACE, static_cast<char*>(data) + done * size, int(n),
                           arithmetic(type), MPI_SUM, comm_, &request),
            "MPI_Iallreduce");
      requests->push_back(request);
      done += n;
    }
    return pending(requests, [] {});
  }

  Request start_reduce_scatter_sum(void* whole, std::span<const std::size_t> counts,
                                   DataType type) override {
    // MPI reads the counts until the collective completes.
    auto n = std::make_shared<const std::vector<int>>(int_counts(counts, "reduce-scatter"));
    const std::size_t size = data_type_size(type);
    char* destination = static_cast<char*>(whole) + part_offsets(counts)[rank_] * size;
    const std::size_t bytes = counts[rank_] * size;
    auto requests = std::make_shared<std::vector<MPI_Request>>(1, MPI_REQUEST_NULL);
    check(MPI_Ireduce_scatter(MPI_IN_PLACE, whole, n->data(), arithmetic(type), MPI_SUM, comm_,
                              requests->data()),
          "MPI_Ireduce_scatter");
    return pending(requests,
                   [n, destination, whole, bytes] { std::memmove(destination, whole, bytes); });
  }

  void all_gather(void* whole, std::span<const std::size_t> counts, DataType type) override {
    const std::vector<int> n = int_counts(counts, "all-gather");
    std::vector<int> displacements(n.size(), 0);
    const std::vector<std::size_t> offsets = part_offsets(counts);
    LIGHTGPT_CHECK(offsets.back() <= kMaxCount, "all-gather of ", offsets.back(),
                   " elements exceeds MPI's int displacements");
    for (std::size_t r = 0; r < n.size(); ++r) displacements[r] = int(offsets[r]);
    check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, whole, n.data(), displacements.data(),
                         bytes_type(type), comm_),
          "MPI_Allgatherv");
  }

  void broadcast(void* data, std::size_t count, DataType type, int root) override {
    const std::size_t size = data_type_size(type);
    for (std::size_t done = 0; done < count;) {
      const std::size_t n = std::min<std::size_t>(count - done, kMaxCount);
      check(
          MPI_Bcast(static_cast<char*>(data) + done * size, int(n), bytes_type(type), root, comm_),
          "MPI_Bcast");
      done += n;
    }
  }

  void host_sum(double* values, std::size_t count) override {
    all_reduce_sum(values, count, DataType::f64);
  }
  void barrier() override { check(MPI_Barrier(comm_), "MPI_Barrier"); }

  // The failure path of a distributed program's catch (...): prints "program: rank r of n: what
  // failed" on stderr, then ends every rank of the job (MPI_Abort) with exit code 1. In a world
  // of one it just returns 1, as report_exception does.
  int fail(std::string_view program) noexcept {
    if (size_ == 1) return report_exception(program);
    const std::string name =
        std::string(program) + ": rank " + std::to_string(rank_) + " of " + std::to_string(size_);
    report_exception(name);
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }

 private:
  static constexpr std::size_t kMaxCount = std::size_t(1) << 30;

  static void check(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw Error(detail::concat(call, " failed: ", std::string(text, std::size_t(length))));
  }
  // A request over MPI's; `then` runs once they have all completed.
  template <class Then>
  static Request pending(std::shared_ptr<std::vector<MPI_Request>> requests, Then then) {
    auto test = [requests] {
      int done = 0;
      check(MPI_Testall(int(requests->size()), requests->data(), &done, MPI_STATUSES_IGNORE),
            "MPI_Testall");
      return done != 0;
    };
    auto wait = [requests, then] {
      check(MPI_Waitall(int(requests->size()), requests->data(), MPI_STATUSES_IGNORE),
            "MPI_Waitall");
      then();
    };
    return {test, wait};
  }

  static MPI_Datatype arithmetic(DataType type) {
    switch (type) {
      case DataType::f32:
        return MPI_FLOAT;
      case DataType::f64:
        return MPI_DOUBLE;
      case DataType::i64:
        return MPI_INT64_T;
      case DataType::bits16:
        break;
    }
    throw Error("MPI: 16-bit values can be gathered and broadcast, not summed");
  }
  // Gathers and broadcasts only copy, so any type of the right width serves.
  static MPI_Datatype bytes_type(DataType type) {
    return type == DataType::bits16 ? MPI_UINT16_T : arithmetic(type);
  }
  static std::vector<int> int_counts(std::span<const std::size_t> counts, const char* what) {
    std::vector<int> n;
    for (std::size_t count : counts) {
      LIGHTGPT_CHECK(count <= kMaxCount, what, " part of ", count,
                     " elements exceeds MPI's int counts");
      n.push_back(int(count));
    }
    return n;
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  bool owns_mpi_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

}  // namespace lightgpt
