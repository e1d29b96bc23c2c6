// Bootstrap reallocation inside the training loop (LightRnnHead): statistics come from the
// training forwards only, the codebook is re-placed every realloc_every steps, and the metrics
// record the cost before and after.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "fixture.hpp"
#include "head_instances.hpp"

namespace lightgpt::testing {
namespace trainer_lightrnn_tests {
namespace {

TEST(TrainerReallocation, ReplacesTheCodebookEveryNStepsFromTrainingForwardsOnly) {
  Fixture f;
  LightRnnFp32 model(tiny_config(), 4);
  Loader train = f.train_loader(), val = f.val_loader();
  TrainConfig c = f.config(6);
  c.realloc_every = 3;
  c.eval_every = 1;  // validation between every step must not leak into the statistics
  Trainer<LightRnnFp32> trainer(model, c, train, &val);

  const StepMetrics first = trainer.step();
  EXPECT_FALSE(first.reallocated);
  ASSERT_TRUE(model.head().collecting_statistics());
  const auto before = model.head().reallocation_statistics();
  trainer.validate();
  trainer.validate_by_position();
  EXPECT_EQ(model.head().reallocation_statistics(), before) << "validation added statistics";

  EXPECT_FALSE(trainer.step().reallocated);
  const auto cells_before = model.head().codebook();
  const StepMetrics third = trainer.step();
  ASSERT_TRUE(third.reallocated);
  EXPECT_GT(third.realloc_cost_before, 0);
  EXPECT_LE(third.realloc_cost_after, third.realloc_cost_before);
  if (third.realloc_moved > 0) {
    int changed = 0;
    for (int w = 0; w < tiny_config().vocab_size; ++w) {
      changed += model.head().codebook().cell(w) != cells_before.cell(w);
    }
    EXPECT_EQ(changed, third.realloc_moved);
  }
  EXPECT_FALSE(model.head().collecting_statistics());  // a new window starts with the next step
  EXPECT_FALSE(trainer.step().reallocated);
  EXPECT_TRUE(model.head().collecting_statistics());

  trainer.run();  // steps 5 and 6; the metrics of step 6 carry the reallocation
  const auto lines = lines_of(trainer.metrics_path());
  ASSERT_FALSE(lines.empty());
  EXPECT_FALSE(std::isnan(json_number(lines.back(), "realloc_cost_before"))) << lines.back();
  EXPECT_FALSE(std::isnan(json_number(lines.back(), "realloc_moved")));
  EXPECT_TRUE(std::isnan(json_number(lines.front(), "realloc_cost_before")));
}

// With --batch_split the statistics gather every row group's forward: the same as unsplit, up to
// rounding, and so the same codebook after the reallocation.
TEST(TrainerReallocation, BatchSplitGathersEveryGroupsStatistics) {
  Fixture f;
  struct Run {
    std::vector<float> statistics;
    std::vector<int> cells;
  };
  auto run = [&](int split) {
    LightRnnFp32 model(tiny_config(), 4);
    Loader train = f.train_loader();
    TrainConfig c = f.config(6);
    c.realloc_every = 2;
    c.batch_split = split;
    Trainer<LightRnnFp32> trainer(model, c, train, nullptr);
    trainer.step();
    Run r;
    r.statistics = model.head().reallocation_statistics();
    EXPECT_TRUE(trainer.step().reallocated);
    for (int w = 0; w < tiny_config().vocab_size; ++w)
      r.cells.push_back(model.head().codebook().cell(w));
    return r;
  };
  const Run whole = run(1), split = run(2);
  ASSERT_EQ(whole.statistics.size(), split.statistics.size());
  double largest = 0;
  for (float v : whole.statistics) largest = std::max(largest, double(std::abs(v)));
  ASSERT_GT(largest, 0);
  for (std::size_t i = 0; i < whole.statistics.size(); ++i) {
    EXPECT_NEAR(split.statistics[i], whole.statistics[i], 1e-4 * largest) << i;
  }
  EXPECT_EQ(split.cells, whole.cells);
}

TEST(TrainerReallocation, NeedsAPositiveIntervalOrZero) {
  TrainConfig c;
  c.realloc_every = -2;
  EXPECT_THROW(c.validate(), Error);
}

}  // namespace
}  // namespace trainer_lightrnn_tests
}  // namespace lightgpt::testing
