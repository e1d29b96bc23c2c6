#include <gtest/gtest.h>

#include <lightgpt/optim/schedule.hpp>

namespace lightgpt {
namespace schedule_tests {
namespace {

TEST(LrSchedule, WarmupConstantWarmdown) {
  const LrSchedule schedule{.lr = 1.0, .warmup = 4, .warmdown = 5, .total_steps = 20};
  EXPECT_DOUBLE_EQ(schedule.at(0), 0.25);
  EXPECT_DOUBLE_EQ(schedule.at(3), 1.0);
  EXPECT_DOUBLE_EQ(schedule.at(4), 1.0);
  EXPECT_DOUBLE_EQ(schedule.at(14), 1.0);
  EXPECT_DOUBLE_EQ(schedule.at(15), 1.0);  // 5 steps remain: first warmdown step at lr·5/5
  EXPECT_DOUBLE_EQ(schedule.at(16), 0.8);
  EXPECT_DOUBLE_EQ(schedule.at(19), 0.2);
  EXPECT_DOUBLE_EQ(schedule.at(25), 0.0);
}

TEST(LrSchedule, ValidatesItsFields) {
  EXPECT_THROW((LrSchedule{.lr = 1, .warmup = 8, .warmdown = 8, .total_steps = 10}).validate(),
               Error);
  EXPECT_THROW((LrSchedule{.lr = -1, .warmup = 0, .warmdown = 0, .total_steps = 10}).validate(),
               Error);
  EXPECT_NO_THROW((LrSchedule{.lr = 1, .warmup = 2, .warmdown = 8, .total_steps = 10}).validate());
}

}  // namespace
}  // namespace schedule_tests
}  // namespace lightgpt
