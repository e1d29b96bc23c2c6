// GradientSync inside the trainer, without MPI: a world of two whose collectives only record what
// they were given shows when each bucket starts. With overlap the layers' buckets start during
// the backward (before the embedding gradient exists), top layer first; without it the same
// buckets start in the same order after the backward; either way each is waited for once.
#include <gtest/gtest.h>

#include <algorithm>
#include <lightgpt/train/trainer.hpp>
#include <vector>

#include "fixture.hpp"
#include "two_rank_world.hpp"

namespace lightgpt::testing {
namespace gradient_sync_tests {
namespace {

// Rank 0 of two, whose peer adds zeros: every sum leaves the buffer as it is.
class RecordingWorld final : public TwoRankWorld {
 public:
  struct Start {
    std::size_t offset, count;
    bool during_backward;  // the embedding gradient (written last by backward) is still zero
  };

  explicit RecordingWorld(DenseFp32& model) : model_(model) {}

  Request start_all_reduce_sum(void* data, std::size_t count, DataType) override {
    return record(data, count);
  }
  Request start_reduce_scatter_sum(void* whole, std::span<const std::size_t> counts,
                                   DataType) override {
    std::size_t count = 0;
    for (std::size_t part : counts) count += part;
    return record(whole, count);
  }

  std::vector<Start> starts;
  int waits = 0;

 private:
  Request record(void* data, std::size_t count) {
    const float* grads = model_.parameters().grads();
    const TensorInfo& wpe = model_.parameters().layout().at("wpe");
    const bool zero = std::all_of(grads + wpe.offset, grads + wpe.offset + wpe.numel,
                                  [](float g) { return g == 0.0f; });
    starts.push_back({std::size_t(static_cast<const float*>(data) - grads), count, zero});
    return Request([] { return false; }, [this] { ++waits; });
  }

  DenseFp32& model_;
};

std::vector<RecordingWorld::Start> one_step(bool overlap, int zero_stage) {
  Fixture f;
  ModelConfig config = tiny_config();
  config.n_layer = 3;
  DenseFp32 model(config, 1);
  RecordingWorld world(model);
  LoaderOptions o = f.train_loader().options();
  o.world_size = 2;
  Loader train(f.train_shard, o);
  TrainConfig c = f.config(1);
  c.warmup = c.warmdown = 0;
  c.grad_accum = 1;
  c.overlap = overlap;
  c.zero_stage = zero_stage;
  c.bucket_mb = 1000 * 4 / 1048576.0;  // 1,000 values: one layer (880) per bucket
  Trainer<DenseFp32> trainer(model, c, train, nullptr, &world);
  trainer.step();
  EXPECT_EQ(world.waits, int(world.starts.size()));
  // The layers' ranges, top layer first, then the rest.
  std::vector<FlatRange> planned;
  for (int layer = 2; layer >= 0; --layer) {
    for (const FlatRange& range : model.layer_ranges(layer, layer + 1)) planned.push_back(range);
  }
  for (const FlatRange& range : model.shared_ranges()) {
    for (std::size_t at = 0; at < range.count; at += 1000) {
      planned.push_back({range.offset + at, std::min<std::size_t>(1000, range.count - at)});
    }
  }
  EXPECT_EQ(world.starts.size(), planned.size());
  for (std::size_t i = 0; i < std::min(planned.size(), world.starts.size()); ++i) {
    EXPECT_EQ(world.starts[i].offset, planned[i].offset) << "start " << i;
    EXPECT_EQ(world.starts[i].count, planned[i].count) << "start " << i;
  }
  return world.starts;
}

void expect_overlap_only_when_asked(int zero_stage) {
  const std::vector<RecordingWorld::Start> on = one_step(true, zero_stage);
  const std::vector<RecordingWorld::Start> off = one_step(false, zero_stage);
  ASSERT_EQ(on.size(), off.size());
  ModelConfig config = tiny_config();
  config.n_layer = 3;
  const std::size_t layer_starts = DenseFp32(config, 1).layer_ranges(0, 1).size() * 3;
  for (std::size_t i = 0; i < on.size(); ++i) {
    EXPECT_EQ(on[i].during_backward, i < layer_starts) << "start " << i;
    EXPECT_FALSE(off[i].during_backward) << "start " << i;
  }
}

TEST(GradientSync, StartsEachLayersSumsDuringTheBackwardOnlyWithOverlap) {
  expect_overlap_only_when_asked(0);
}
TEST(GradientSync, ReduceScattersTheSameRangesUnderZeroOne) { expect_overlap_only_when_asked(1); }

}  // namespace
}  // namespace gradient_sync_tests
}  // namespace lightgpt::testing
