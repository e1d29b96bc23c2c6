// A world of two ranks in one process, for tests of what data-parallel training does around its
// collectives: this process is rank 0 of 2 with host buffers, and every collective does nothing
// (and every started one has finished) unless a test overrides it.
#pragma once

#include <lightgpt/dist/communicator.hpp>

namespace lightgpt::testing {

class TwoRankWorld : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  bool device_buffers() const override { return false; }
  void all_reduce_sum(void*, std::size_t, DataType) override {}
  void reduce_scatter_sum(void*, std::span<const std::size_t>, DataType) override {}
  void all_gather(void*, std::span<const std::size_t>, DataType) override {}
  void broadcast(void*, std::size_t, DataType, int) override {}
  void host_sum(double*, std::size_t) override {}
  void barrier() override {}
  Request start_all_reduce_sum(void*, std::size_t, DataType) override { return {}; }
  Request start_reduce_scatter_sum(void*, std::span<const std::size_t>, DataType) override {
    return {};
  }
};

}  // namespace lightgpt::testing
