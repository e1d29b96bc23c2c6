// The training loop end to end on a tiny shard: it learns, logs every metric, follows the
// schedules, resumes bit for bit, and refuses bad checkpoints, bad flags and non-finite losses.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <lightgpt/train/trainer.hpp>
#include <string>
#include <vector>

#include "fixture.hpp"

namespace lightgpt::testing {
namespace trainer_tests {
namespace {

TEST(Trainer, LearnsLogsEveryMetricAndFollowsTheSchedule) {
  Fixture f;
  DenseFp32 model(tiny_config(), 1);
  Loader train = f.train_loader(), val = f.val_loader();
  Trainer<DenseFp32> trainer(model, f.config(30), train, &val);
  const double before = trainer.validate();
  const TrainSummary summary = trainer.run();
  EXPECT_EQ(summary.steps, 30);
  EXPECT_LT(summary.final_val_loss, before - 0.5) << "validation loss did not fall";
  EXPECT_LE(summary.best_val_loss, summary.final_val_loss);

  const auto lines = lines_of(trainer.metrics_path());
  ASSERT_EQ(lines.size(), 30u);
  const LrSchedule schedule = f.config(30).schedule();
  for (const std::string& line : lines) {
    for (const char* key : {"step", "tokens", "train_loss", "lr", "grad_norm", "tokens_per_s",
                            "step_ms", "peak_memory_mb"}) {
      EXPECT_FALSE(std::isnan(json_number(line, key))) << key << " missing in " << line;
    }
    const auto step = static_cast<long long>(json_number(line, "step"));
    EXPECT_NEAR(json_number(line, "lr"), schedule.at(step - 1), 1e-8 * schedule.lr) << line;
    EXPECT_EQ(static_cast<long long>(json_number(line, "tokens")), step * 2 * 4 * 8);
    EXPECT_EQ(!std::isnan(json_number(line, "val_loss")), step % 5 == 0) << line;
  }
  // Warmup 2: steps 1, 2 use lr/2, lr; warmdown 3: the last step uses lr/3.
  EXPECT_NEAR(json_number(lines[0], "lr"), 5e-3, 1e-12);
  EXPECT_NEAR(json_number(lines[1], "lr"), 1e-2, 1e-12);
  EXPECT_NEAR(json_number(lines[29], "lr"), 1e-2 / 3, 1e-11);
  EXPECT_TRUE(std::filesystem::exists(trainer.checkpoint_path()));

  // Per-position losses average to the validation loss of the same batches.
  const std::vector<double> by_position = trainer.validate_by_position();
  ASSERT_EQ(by_position.size(), 8u);
  double mean = 0;
  for (double value : by_position) mean += value / 8;
  EXPECT_NEAR(mean, trainer.validate(), 1e-5);
}

TEST(Trainer, MtpWeightRampsAndDecays) {
  TrainConfig c;
  c.steps = 10;
  c.mtp_weight = 0.4;
  c.mtp_rampup_steps = 4;
  EXPECT_DOUBLE_EQ(c.mtp_weight_at(0), 0.1);
  EXPECT_DOUBLE_EQ(c.mtp_weight_at(3), 0.4);
  EXPECT_DOUBLE_EQ(c.mtp_weight_at(9), 0.4);
  c.mtp_decay = true;
  EXPECT_DOUBLE_EQ(c.mtp_weight_at(4), 0.4 * 5 / 6);
  EXPECT_DOUBLE_EQ(c.mtp_weight_at(9), 0.0);
}

TEST(Trainer, MtpModelReportsEveryDepth) {
  Fixture f;
  Mtp2Fp64 model(tiny_config(), 1);
  Loader train = f.train_loader(2), val = f.val_loader();
  TrainConfig c = f.config(5);
  c.mtp_weight = 0.5;
  Trainer<Mtp2Fp64> trainer(model, c, train, &val);
  const StepMetrics m = trainer.step();
  EXPECT_EQ(m.depths, 2);
  EXPECT_GT(m.depth_loss[1], 0);
  EXPECT_DOUBLE_EQ(m.mtp_weight, 0.5);
}

// Runs `config` for 8 steps uninterrupted and as 4 + save + resume + 4; returns the first run's
// losses after checking that the resumed run repeats them bit for bit.
std::vector<double> expect_bit_exact_resume(Fixture& f, const TrainConfig& config,
                                            const std::filesystem::path& checkpoint) {
  std::vector<double> uninterrupted;
  {
    DenseFp32 model(tiny_config(), 3);
    Loader train = f.train_loader(), val = f.val_loader();
    Trainer<DenseFp32> trainer(model, config, train, &val);
    for (int i = 0; i < 8; ++i) uninterrupted.push_back(trainer.step().train_loss);
  }
  {
    DenseFp32 model(tiny_config(), 3);
    Loader train = f.train_loader(), val = f.val_loader();
    Trainer<DenseFp32> trainer(model, config, train, &val);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(trainer.step().train_loss, uninterrupted[i]);
    trainer.save(checkpoint);
  }
  DenseFp32 model(tiny_config(), 99);  // different initial weights: all state comes from the file
  Loader train = f.train_loader(), val = f.val_loader();
  Trainer<DenseFp32> trainer(model, config, train, &val);
  trainer.resume(checkpoint);
  EXPECT_EQ(trainer.steps_done(), 4);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(trainer.step().train_loss, uninterrupted[i]) << i;
  return uninterrupted;
}

TEST(Trainer, ResumeReproducesTheUninterruptedRunBitForBit) {
  Fixture f;
  const auto checkpoint = f.dir / "half.ckpt";
  expect_bit_exact_resume(f, f.config(8), checkpoint);

  // The metrics of a resumed run() drop records past the checkpoint.
  TrainConfig c = f.config(8);
  {
    DenseFp32 first(tiny_config(), 3);
    Loader t1 = f.train_loader(), v1 = f.val_loader();
    Trainer<DenseFp32> full(first, c, t1, &v1);
    full.run();
  }
  DenseFp32 second(tiny_config(), 3);
  Loader t2 = f.train_loader(), v2 = f.val_loader();
  Trainer<DenseFp32> resumed(second, c, t2, &v2);
  resumed.resume(checkpoint);
  resumed.run();
  const auto lines = lines_of(resumed.metrics_path());
  ASSERT_EQ(lines.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(json_number(lines[i], "step"), i + 1);
}

// The dropout masks follow from the step, so a resumed run draws the ones the uninterrupted run
// drew; and they do act (the losses differ from the run without dropout).
TEST(Trainer, ResumeWithDropoutReproducesTheRunBitForBit) {
  Fixture f;
  TrainConfig dropped = f.config(8);
  dropped.dropout = 0.2;
  const auto with = expect_bit_exact_resume(f, dropped, f.dir / "dropout.ckpt");
  std::vector<double> without;
  DenseFp32 model(tiny_config(), 3);
  Loader train = f.train_loader(), val = f.val_loader();
  Trainer<DenseFp32> trainer(model, f.config(8), train, &val);
  for (int i = 0; i < 8; ++i) without.push_back(trainer.step().train_loss);
  EXPECT_NE(with, without);
}

// --batch_split runs each micro-batch as row groups on threads of their own: the same training up
// to rounding, dropout included, and a resumed split run repeats its masks and bits.
TEST(Trainer, BatchSplitTrainsTheSameAndResumesBitForBit) {
  Fixture f;
  auto losses = [&](int split) {
    DenseFp32 model(tiny_config(), 3);
    Loader train = f.train_loader(), val = f.val_loader();
    TrainConfig c = f.config(8);
    c.batch_split = split;
    c.dropout = 0.2;
    Trainer<DenseFp32> trainer(model, c, train, &val);
    EXPECT_EQ(model.batch_split(), split == 0 ? std::min(cpu::max_threads(), c.batch_size) : split);
    std::vector<double> out;
    for (int i = 0; i < 8; ++i) out.push_back(trainer.step().train_loss);
    out.push_back(trainer.validate());
    return out;
  };
  const std::vector<double> whole = losses(1), split = losses(2), per_thread = losses(0);
  ASSERT_EQ(whole.size(), split.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    EXPECT_NEAR(split[i], whole[i], 1e-4 * std::abs(whole[i])) << i;
    EXPECT_NEAR(per_thread[i], whole[i], 1e-4 * std::abs(whole[i])) << i;
  }
  EXPECT_LT(split[7], split[0]);  // and it learns

  TrainConfig dropped = f.config(8);
  dropped.batch_split = 3;  // groups of 2, 1 and 1 rows
  dropped.dropout = 0.2;
  expect_bit_exact_resume(f, dropped, f.dir / "split.ckpt");
}

TEST(Trainer, RejectsCorruptOrMismatchedCheckpoints) {
  Fixture f;
  DenseFp32 model(tiny_config(), 3);
  Loader train = f.train_loader(), val = f.val_loader();
  Trainer<DenseFp32> trainer(model, f.config(8), train, &val);
  trainer.step();
  const auto path = f.dir / "run.ckpt";
  trainer.save(path);

  auto bytes = read_bytes(path);
  bytes[bytes.size() / 2] ^= 0x40;
  const auto corrupt = f.dir / "corrupt.ckpt";
  write_bytes(corrupt, bytes);
  EXPECT_THROW(trainer.resume(corrupt), Error);

  TrainConfig other = f.config(8);
  other.grad_accum = 1;
  DenseFp32 model2(tiny_config(), 3);
  Loader train2 = f.train_loader(), val2 = f.val_loader();
  Trainer<DenseFp32> mismatched(model2, other, train2, &val2);
  EXPECT_THROW(mismatched.resume(path), Error);

  DenseFp64 model3(tiny_config(), 3);  // same composition and config, other precision: loads
  Loader train3 = f.train_loader(), val3 = f.val_loader();
  Trainer<DenseFp64> fp64(model3, f.config(8), train3, &val3);
  EXPECT_NO_THROW(fp64.resume(path));
  Mtp2Fp64 model4(tiny_config(), 3);  // another composition: refused
  Loader train4 = f.train_loader(2), val4 = f.val_loader();
  Trainer<Mtp2Fp64> mtp(model4, f.config(8), train4, &val4);
  EXPECT_THROW(mtp.resume(path), Error);
}

TEST(Trainer, NonFiniteLossStopsWithAClearMessageAndKeepsTheCheckpoint) {
  Fixture f;
  DenseFp32 model(tiny_config(), 3);
  Loader train = f.train_loader(), val = f.val_loader();
  Trainer<DenseFp32> trainer(model, f.config(8), train, &val);
  trainer.step();
  trainer.save(trainer.checkpoint_path());
  const auto saved = read_bytes(trainer.checkpoint_path());
  const TensorInfo& lnfw = model.parameters().layout().at("lnfw");
  std::vector<float> poisoned(lnfw.numel, std::nanf(""));
  model.parameters().write(lnfw, poisoned.data());
  try {
    trainer.step();
    FAIL() << "no error";
  } catch (const Error& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("not finite"), std::string::npos) << what;
    EXPECT_NE(what.find("is intact"), std::string::npos) << what;
  }
  EXPECT_EQ(read_bytes(trainer.checkpoint_path()), saved);
  EXPECT_EQ(trainer.steps_done(), 1);
}

// Reading the metrics every third step changes nothing the run computes: the same weights, and
// records only at the steps read (and the end).
TEST(Trainer, LogEveryReadsTheMetricsLessOftenAndTrainsTheSame) {
  Fixture f;
  std::vector<std::vector<float>> weights;
  for (int every : {1, 3}) {
    DenseFp32 model(tiny_config(), 3);
    Loader train = f.train_loader();
    TrainConfig config = f.config(7);
    config.log_every = every;
    config.eval_every = 0;
    config.out_dir = (f.dir / ("every" + std::to_string(every))).string();
    Trainer<DenseFp32> trainer(model, config, train, nullptr);
    trainer.run();
    weights.push_back(model.parameters().read(model.parameters().layout().at("fcw")));
    const auto lines = lines_of(trainer.metrics_path());
    if (every == 3) {
      ASSERT_EQ(lines.size(), 3u);
      EXPECT_EQ(json_number(lines[0], "step"), 3);
      EXPECT_EQ(json_number(lines[1], "step"), 6);
      EXPECT_EQ(json_number(lines[2], "step"), 7);
    }
  }
  EXPECT_EQ(weights[0], weights[1]);
  TrainConfig bad = f.config(2);
  bad.log_every = 0;
  EXPECT_THROW(bad.validate(), Error);
}

// A non-finite step between reads updates nothing and stops the run at the next read, which
// says so; a step queued after it trains on.
TEST(Trainer, NonFiniteStepBetweenReadsIsFoundAtTheNextRead) {
  Fixture f;
  DenseFp32 model(tiny_config(), 3);
  Loader train = f.train_loader();
  Trainer<DenseFp32> trainer(model, f.config(8), train, nullptr);
  trainer.step();
  const TensorInfo& lnfw = model.parameters().layout().at("lnfw");
  const std::vector<float> good = model.parameters().read(lnfw);
  model.parameters().write(lnfw, std::vector<float>(lnfw.numel, std::nanf("")).data());
  trainer.queue_step();
  EXPECT_EQ(trainer.optimizer().steps(), 2);  // assumed taken until read
  model.parameters().write(lnfw, good.data());
  trainer.queue_step();
  try {
    trainer.last_step();
    FAIL() << "no error";
  } catch (const Error& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("training stopped at step 3: a step since the last read"),
              std::string::npos)
        << what;
  }
  EXPECT_EQ(trainer.optimizer().steps(), 2);  // step 2 was skipped
}

// A flipped byte in the 'step' section (checksum recomputed) was once ignored by resume().
TEST(Trainer, ResumeValidatesTheStepSectionAndTheTrainerState) {
  Fixture f;
  DenseFp32 model(tiny_config(), 3);
  Loader train = f.train_loader(), val = f.val_loader();
  Trainer<DenseFp32> trainer(model, f.config(8), train, &val);
  trainer.step();
  const auto path = f.dir / "run.ckpt";
  trainer.save(path);
  const std::vector<char> bytes = read_bytes(path);

  // Rewrites one section of the saved file, every checksum valid, and returns resume's message.
  auto resume_with = [&](const std::string& name, auto&& mutate) {
    CheckpointReader in(path);
    const auto corrupt = f.dir / ("corrupt-" + name + ".ckpt");
    {
      CheckpointWriter out(corrupt);
      for (const char* section : {"config", "composition", "parameters", "adamw", "trainer",
                                  "loss_scaler", "step"}) {
        if (!in.has(section)) continue;
        std::string payload(in.section(section).rest());
        if (name == section) mutate(payload);
        out.add_section(section, payload);
      }
      out.commit();
    }
    try {
      trainer.resume(corrupt);
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(resume_with("step", [](std::string& p) { p[0] ^= 0x04; })
                .find("section 'step' (5) disagrees with section 'trainer' (step 1"),
            std::string::npos);
  EXPECT_NE(resume_with("trainer", [](std::string& p) { p[8] ^= 0x01; }).find("tokens"),
            std::string::npos);
  EXPECT_NE(resume_with("adamw", [](std::string& p) { p[0] = 9; }).find("section 'adamw'"),
            std::string::npos);
  EXPECT_NE(resume_with("trainer", [](std::string& p) {
              const double inf = std::numeric_limits<double>::infinity();
              std::memcpy(p.data() + p.size() - 8, &inf, 8);
            }).find("best val_loss inf"),
            std::string::npos);
  EXPECT_EQ(resume_with("none", [](std::string&) {}), "accepted");
  EXPECT_EQ(read_bytes(path), bytes);
}

// A learning rate of 1e30 makes step 1's update overflow: the validation loss of that state is
// NaN, and training stops before the state is checkpointed (it once wrote it and called it intact).
TEST(Trainer, DivergedRunStopsBeforeCheckpointingTheDivergedState) {
  Fixture f;
  DenseFp32 model(tiny_config(), 3);
  Loader train = f.train_loader(), val = f.val_loader();
  TrainConfig config = f.config(8);
  config.learning_rate = 1e30;
  config.warmup = config.warmdown = 0;
  config.eval_every = 1;
  config.checkpoint_every = 1;
  Trainer<DenseFp32> trainer(model, config, train, &val);
  try {
    trainer.run();
    FAIL() << "no error";
  } catch (const Error& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("training stopped at step 1"), std::string::npos) << what;
    EXPECT_NE(what.find("not finite"), std::string::npos) << what;
    EXPECT_NE(what.find("no checkpoint was written"), std::string::npos) << what;
  }
  EXPECT_FALSE(std::filesystem::exists(trainer.checkpoint_path()));
  EXPECT_FALSE(std::filesystem::exists(trainer.checkpoint_path().string() + ".tmp"));
}

// The checkpoint writer itself refuses non-finite state, here an overflowed AdamW moment, and the
// run names the step it stopped at.
TEST(Trainer, CheckpointWriterRefusesNonFiniteOptimizerState) {
  Fixture f;
  DenseFp32 model(tiny_config(), 3);
  Loader train = f.train_loader();
  TrainConfig config = f.config(2);
  config.warmup = config.warmdown = 0;
  config.eval_every = 0;
  Trainer<DenseFp32> trainer(model, config, train, nullptr);
  trainer.step();
  trainer.optimizer().second_moment()[0] = std::numeric_limits<float>::infinity();
  try {
    trainer.save(trainer.checkpoint_path());
    FAIL() << "no error";
  } catch (const Error& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("refusing to write checkpoint"), std::string::npos) << what;
    EXPECT_NE(what.find("AdamW second-moment tensor 'wte' holds inf"), std::string::npos) << what;
  }
  EXPECT_FALSE(std::filesystem::exists(trainer.checkpoint_path()));
  EXPECT_FALSE(std::filesystem::exists(trainer.checkpoint_path().string() + ".tmp"));
  try {
    trainer.run();  // the moment turns the next update into NaN parameters
    FAIL() << "no error";
  } catch (const Error& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("training stopped at step 2: refusing to write checkpoint"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("no checkpoint was written yet"), std::string::npos) << what;
  }
  EXPECT_FALSE(std::filesystem::exists(trainer.checkpoint_path()));
}

TEST(Trainer, RemovesAStaleCheckpointTemporaryAndRejectsAFileAsOutDir) {
  Fixture f;
  TrainConfig config = f.config(8);
  std::filesystem::create_directories(config.out_dir);
  const std::string stale = (std::filesystem::path(config.out_dir) / "checkpoint.bin.tmp").string();
  write_bytes(stale, std::vector<char>(4096, 'x'));
  DenseFp32 model(tiny_config(), 3);
  Loader train = f.train_loader(), val = f.val_loader();
  Trainer<DenseFp32> trainer(model, config, train, &val);
  EXPECT_FALSE(std::filesystem::exists(stale));

  config.out_dir = f.train_shard;  // an existing file
  try {
    Trainer<DenseFp32> refused(model, config, train, &val);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("--out_dir '" + f.train_shard + "'"),
              std::string::npos)
        << error.what();
  }
}

TEST(Trainer, BadSettingsNameTheFlag) {
  Fixture f;
  auto message = [&](TrainConfig c) {
    try {
      c.validate();
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string();
  };
  TrainConfig c = f.config(8);
  c.grad_accum = 0;
  EXPECT_NE(message(c).find("--grad_accum"), std::string::npos);
  c = f.config(8);
  c.warmup = 6;
  EXPECT_NE(message(c).find("--warmdown"), std::string::npos);
  c = f.config(8);
  c.learning_rate = std::nan("");
  EXPECT_NE(message(c).find("--learning_rate"), std::string::npos);
  c = f.config(8);
  c.dropout = 1.0;
  EXPECT_NE(message(c).find("--dropout"), std::string::npos);
  c = f.config(8);
  c.batch_split = -1;
  EXPECT_NE(message(c).find("--batch_split"), std::string::npos);

  DenseFp32 model(tiny_config(), 3);
  Loader train = f.train_loader(2), val = f.val_loader();  // K = 2 for a next-token model
  EXPECT_THROW(Trainer<DenseFp32>(model, f.config(8), train, &val), Error);
  Loader train1 = f.train_loader();
  TrainConfig many = f.config(8);
  many.val_batches = 1000;
  EXPECT_THROW(Trainer<DenseFp32>(model, many, train1, &val), Error);
}

}  // namespace
}  // namespace trainer_tests
}  // namespace lightgpt::testing
