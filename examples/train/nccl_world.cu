// The NCCL side of `train`: one process per GPU, picked by the node-local rank, with a device
// communicator started from the MPI ranks. Its own translation unit, so that main.cpp never
// sees CUDA or NCCL headers.
#include <lightgpt/dist/nccl.hpp>
#include <memory>

namespace lightgpt::examples {

std::unique_ptr<Communicator> start_nccl(Communicator& host, int local_rank) {
  Nccl::select_device(local_rank);
  return std::make_unique<Nccl>(host);
}

}  // namespace lightgpt::examples
