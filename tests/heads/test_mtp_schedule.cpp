// MtpSchedule: linear ramp from 0, optional linear decay to 0 at the end of training.
#include <gtest/gtest.h>

#include <lightgpt/train/trainer.hpp>

#include "head_instances.hpp"

namespace lightgpt::testing {
namespace mtp_schedule_tests {
namespace {

TEST(MtpSchedule, RampsLinearlyThenHolds) {
  const MtpSchedule schedule{0.5, 100, false, 0};
  EXPECT_DOUBLE_EQ(schedule.at(0), 0.0);
  EXPECT_DOUBLE_EQ(schedule.at(25), 0.125);
  EXPECT_DOUBLE_EQ(schedule.at(100), 0.5);
  EXPECT_DOUBLE_EQ(schedule.at(100000), 0.5);
}

TEST(MtpSchedule, DefaultsToTheWeightOfTheModelAndTrainer) {
  EXPECT_DOUBLE_EQ(MtpSchedule{}.at(0), 0.35);
  EXPECT_DOUBLE_EQ(MtpSchedule{}.weight, TrainConfig{}.mtp_weight);
}

TEST(MtpSchedule, NoRampIsConstant) {
  EXPECT_DOUBLE_EQ((MtpSchedule{0.3, 0, false, 0}.at(0)), 0.3);
}

TEST(MtpSchedule, DecaysToZeroByTheLastStep) {
  const MtpSchedule schedule{1.0, 10, true, 110};
  EXPECT_DOUBLE_EQ(schedule.at(5), 0.5);
  EXPECT_DOUBLE_EQ(schedule.at(10), 1.0);
  EXPECT_DOUBLE_EQ(schedule.at(60), 0.5);
  EXPECT_DOUBLE_EQ(schedule.at(110), 0.0);
  EXPECT_DOUBLE_EQ(schedule.at(200), 0.0);
}

TEST(MtpSchedule, InvalidSettingsAreErrors) {
  EXPECT_THROW((MtpSchedule{1.0, 10, true, 10}.at(0)), Error);
  EXPECT_THROW((MtpSchedule{-1.0, 0, false, 0}.at(0)), Error);
  EXPECT_THROW((MtpSchedule{1.0, -5, false, 0}.at(0)), Error);
}

}  // namespace
}  // namespace mtp_schedule_tests
}  // namespace lightgpt::testing
