// ZeRO-1's partition and its sharded AdamW in one process (the multi-rank runs are tests/dist):
// the parts cover the layout and never split a row of a sparse_rows tensor, and a world of one
// updates exactly as AdamW does, moments included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <lightgpt/lightgpt.hpp>
#include <lightgpt/optim/zero.hpp>
#include <numeric>
#include <vector>

namespace lightgpt {
namespace zero_tests {
namespace {

ParameterLayout layout_with_sparse_rows() {
  ParameterLayout layout;
  layout.add("dense", {7, 5}, true, Init::normal(0.1));
  layout.add("rows", {40, 9}, false, Init::normal(0.1), /*sparse_rows=*/true);
  layout.add("bias", {13}, false, Init::zeros());
  return layout;
}

TEST(ZeroPartition, CoversTheLayoutWithoutSplittingASparseRow) {
  const ParameterLayout layout = layout_with_sparse_rows();
  const TensorInfo& rows = layout.at("rows");
  for (int world : {1, 2, 3, 5, 8}) {
    const std::vector<std::size_t> counts = shard_counts(layout, world);
    ASSERT_EQ(counts.size(), std::size_t(world));
    EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), std::size_t(0)), layout.size());
    std::size_t at = 0;
    for (std::size_t count : counts) {
      if (at > rows.offset && at < rows.offset + rows.numel) {
        EXPECT_EQ((at - rows.offset) % 9, 0u) << "world " << world << " cuts a row at " << at;
      }
      at += count;
    }
  }
  // Cuts land inside the sparse tensor for some world size, so the rounding above is exercised.
  const std::vector<std::size_t> two = shard_counts(layout, 2);
  EXPECT_GT(two[0], rows.offset);
  EXPECT_LT(two[0], rows.offset + rows.numel);
}

TEST(ShardedAdamW, AWorldOfOneUpdatesExactlyAsAdamW) {
  const ParameterLayout layout = layout_with_sparse_rows();
  ParameterStore<Fp64, Cpu> whole(layout), sharded(layout);
  whole.initialize(4);
  sharded.initialize(4);
  AdamWConfig config;
  config.grad_clip = 0.5;  // clipping engages: the norm must be the global one
  config.sparse_rows_window = 2;
  AdamW<Cpu, double> reference(layout, config);
  SingleProcess one;
  ShardedAdamW<Cpu, double> zero(layout, config, one);
  Rng rng(7);
  for (int step = 0; step < 4; ++step) {
    std::vector<double> grads(layout.size(), 0.0);
    for (const TensorInfo& t : layout.tensors()) {
      for (std::size_t i = 0; i < t.numel; ++i) {
        // Rows 0-9 of the sparse tensor only at the first step: the window then skips them.
        const bool idle = t.sparse_rows && step > 0 && i / 9 < 10;
        grads[t.offset + i] = idle ? 0.0 : rng.normal();
      }
    }
    std::copy(grads.begin(), grads.end(), whole.grads());
    std::copy(grads.begin(), grads.end(), sharded.grads());
    EXPECT_EQ(zero.step(sharded, 1e-2), reference.step(whole, 1e-2));
  }
  EXPECT_TRUE(std::equal(whole.master(), whole.master() + layout.size(), sharded.master()));
  AdamW<Cpu, double> gathered(layout, config);
  zero.gather(gathered);
  EXPECT_EQ(gathered.steps(), 4);
  EXPECT_TRUE(std::equal(reference.first_moment(), reference.first_moment() + layout.size(),
                         gathered.first_moment()));
  EXPECT_TRUE(std::equal(reference.second_moment(), reference.second_moment() + layout.size(),
                         gathered.second_moment()));
  const std::size_t rows = AdamW<Cpu, double>::sparse_row_count(layout);
  EXPECT_TRUE(std::equal(reference.last_gradient_steps(), reference.last_gradient_steps() + rows,
                         gathered.last_gradient_steps()));
  // And back: a sharded optimizer resumed from the gathered state continues identically.
  ShardedAdamW<Cpu, double> resumed(layout, config, one);
  resumed.scatter(gathered);
  AdamW<Cpu, double> again(layout, config);
  resumed.gather(again);
  EXPECT_TRUE(std::equal(gathered.second_moment(), gathered.second_moment() + layout.size(),
                         again.second_moment()));
  EXPECT_EQ(again.steps(), 4);
}

// A non-finite gradient in the part, or a non-finite watched loss, skips the sharded update as it
// does AdamW's: nothing moves, the sparse rows' state included, and the skip is counted.
TEST(ShardedAdamW, NonFiniteGradientOrLossSkipsTheUpdate) {
  const ParameterLayout layout = layout_with_sparse_rows();
  ParameterStore<Fp64, Cpu> store(layout);
  store.initialize(4);
  SingleProcess one;
  ShardedAdamW<Cpu, double> zero(layout, AdamWConfig{}, one);
  const std::vector<double> before(store.master(), store.master() + layout.size());
  std::fill(store.grads(), store.grads() + layout.size(), 0.25);
  const double finite_loss = 3.0, nan_loss = std::nan("");
  zero.queue_step(store, 1e-2, 1.0, &nan_loss, 1);
  UpdateResult result = zero.result();
  EXPECT_TRUE(result.skipped);
  EXPECT_EQ(result.skipped_total, 1);
  EXPECT_EQ(zero.steps(), 0);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), store.master()));
  store.grads()[layout.at("rows").offset] = std::numeric_limits<double>::infinity();
  zero.queue_step(store, 1e-2, 1.0, &finite_loss, 1);
  result = zero.result();
  EXPECT_TRUE(result.skipped);
  EXPECT_FALSE(std::isfinite(result.norm));
  EXPECT_EQ(result.skipped_total, 2);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), store.master()));
  AdamW<Cpu, double> gathered(layout, AdamWConfig{});
  zero.gather(gathered);
  const std::size_t rows = AdamW<Cpu, double>::sparse_row_count(layout);
  EXPECT_TRUE(std::all_of(gathered.last_gradient_steps(), gathered.last_gradient_steps() + rows,
                          [](std::int64_t seen) { return seen == kAdamWNeverSeen; }));
}

}  // namespace
}  // namespace zero_tests
}  // namespace lightgpt
