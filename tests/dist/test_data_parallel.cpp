// Data-parallel training on MPI, run under `mpirun -np 2`: every rank also trains the independent
// reference — one process, one rank's batch times the rank count — and the two runs must agree
// (Fp64: losses, validation and every parameter within 1e-12 relative), with and without ZeRO-1,
// with gradient accumulation, for a dense and a LightRNN composition. Checkpoints written by the
// ranks resume bit for bit on as many ranks, and on one rank with the same parameters and moments.
// Overlapping the gradient sums with the backward changes no bit. A 16-bit model under ZeRO-1
// keeps only its rank's part of the fp32 master weights, trains exactly as without ZeRO, and its
// checkpoints hold the whole state.
#include <gtest/gtest.h>

#include <cmath>
#include <lightgpt/dist/mpi.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "../train/fixture.hpp"
#include "head_instances.hpp"

namespace lightgpt::testing {
namespace {

Mpi* world = nullptr;  // set by main

constexpr int kRowsPerRank = 4;
constexpr int kSteps = 10;

// Shards and run directories every rank sees: rank 0's scratch directory.
struct SharedFixture {
  std::optional<Fixture> own;
  std::filesystem::path dir;
  std::string train_shard, val_shard;
  SharedFixture() {
    std::string path;
    if (world->rank() == 0) {
      own.emplace();
      path = own->dir.path().string();
    }
    std::vector<char> bytes(4096, 0);
    std::copy(path.begin(), path.end(), bytes.begin());
    MPI_Bcast(bytes.data(), int(bytes.size()), MPI_CHAR, 0, world->comm());
    dir = std::string(bytes.data());
    train_shard = (dir / "train.bin").string();
    val_shard = (dir / "val.bin").string();
    world->barrier();
  }
  ~SharedFixture() { world->barrier(); }  // nobody reads after rank 0 removes the directory

  Loader train_loader(int B, int rank, int ranks, int K = 1) const {
    LoaderOptions o;
    o.B = B;
    o.T = 8;
    o.K = K;
    o.shuffle = true;
    o.seed = 9;
    o.rank = rank;
    o.world_size = ranks;
    o.vocab_size = tiny_config().vocab_size;
    return Loader(train_shard, o);
  }
  Loader val_loader() const {
    LoaderOptions o;
    o.B = 4;
    o.T = 8;
    o.vocab_size = tiny_config().vocab_size;
    return Loader(val_shard, o);
  }
  TrainConfig config(int B, const std::string& run, int zero_stage) const {
    TrainConfig c;
    c.batch_size = B;
    c.seq_len = 8;
    c.grad_accum = 2;
    c.steps = kSteps;
    c.learning_rate = 1e-2;
    c.warmup = 2;
    c.warmdown = 3;
    c.val_batches = 3;
    c.out_dir = (dir / run).string();
    c.console = false;
    c.zero_stage = zero_stage;
    c.bucket_mb = 0.001;  // several buckets even for the tiny model
    return c;
  }
};

template <class Model>
ModelConfig model_config() {
  ModelConfig config = tiny_config();
  // The LightRNN head's untied token table: a sparse_rows tensor, whose rows ZeRO keeps whole.
  if constexpr (!std::is_same_v<typename Model::head_policy, DenseHead<>>) {
    config.options.set("lightrnn.token_embedding", true);
  }
  return config;
}

void expect_close(double actual, double expected, const std::string& what) {
  EXPECT_LE(std::abs(actual - expected), 1e-12 * std::max(1.0, std::abs(expected)))
      << what << ": " << actual << " vs " << expected << " on rank " << world->rank();
}

template <class Model>
void expect_same_parameters(const Model& actual, const Model& expected, double tolerance) {
  for (const TensorInfo& tensor : expected.parameters().layout().tensors()) {
    const auto a = actual.parameters().read(tensor), e = expected.parameters().read(tensor);
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      worst = std::max(worst, std::abs(a[i] - e[i]) / std::max(1.0, std::abs(e[i])));
    }
    EXPECT_LE(worst, tolerance) << tensor.name << " on rank " << world->rank();
  }
}

// The bytes of the whole flat range of working weights, then of the master weights of
// [begin, end).
template <class Model>
std::vector<unsigned char> weights(Model& model, std::size_t begin, std::size_t end) {
  auto& store = model.parameters();
  const auto* values = reinterpret_cast<const unsigned char*>(store.values());
  const auto* master = reinterpret_cast<const unsigned char*>(store.master_at(begin));
  std::vector<unsigned char> bytes(values,
                                   values + store.layout().size() * sizeof(*store.values()));
  bytes.insert(bytes.end(), master, master + (end - begin) * sizeof(*store.master_at(begin)));
  return bytes;
}

// Runs kSteps data-parallel and as the one-process reference; compares losses, validation and
// parameters.
template <class Model>
void expect_matches_one_process(int zero_stage, std::int64_t realloc_every = 0) {
  SharedFixture f;
  const int ranks = world->size(), K = Model::mtp_depth;
  const std::string name = "dp" + std::to_string(zero_stage);
  Model model(model_config<Model>(), 5);
  Loader train = f.train_loader(kRowsPerRank, world->rank(), ranks, K), val = f.val_loader();
  TrainConfig config = f.config(kRowsPerRank, name, zero_stage);
  config.realloc_every = realloc_every;
  Trainer<Model> trainer(model, config, train, &val, world);

  Model reference(model_config<Model>(), 5);
  Loader ref_train = f.train_loader(kRowsPerRank * ranks, 0, 1, K), ref_val = f.val_loader();
  TrainConfig ref_config =
      f.config(kRowsPerRank * ranks, name + "-ref-" + std::to_string(world->rank()), 0);
  ref_config.realloc_every = realloc_every;
  Trainer<Model> one(reference, ref_config, ref_train, &ref_val);
  for (int i = 0; i < kSteps; ++i) {
    const StepMetrics m = trainer.step(), r = one.step();
    expect_close(m.train_loss, r.train_loss, "loss of step " + std::to_string(i + 1));
    expect_close(m.grad_norm, r.grad_norm, "gradient norm of step " + std::to_string(i + 1));
    EXPECT_EQ(m.tokens, r.tokens);
    EXPECT_EQ(m.reallocated, r.reallocated);
    EXPECT_EQ(m.realloc_moved, r.realloc_moved) << "step " << i + 1;
    if (m.reallocated) expect_close(m.realloc_cost_after, r.realloc_cost_after, "realloc cost");
  }
  expect_close(trainer.validate(), one.validate(), "validation loss");
  expect_same_parameters(model, reference, 1e-12);
  if constexpr (requires { model.head().codebook(); }) {
    for (int w = 0; w < tiny_config().vocab_size; ++w) {
      EXPECT_EQ(model.head().codebook().cell(w), reference.head().codebook().cell(w)) << w;
    }
  }
}

TEST(DataParallel, DenseMatchesOneProcessWithTheWholeBatch) {
  expect_matches_one_process<DenseFp64>(0);
}
TEST(DataParallel, DenseWithZeroOneMatchesOneProcess) { expect_matches_one_process<DenseFp64>(1); }
TEST(DataParallel, LightRnnMatchesOneProcessWithTheWholeBatch) {
  expect_matches_one_process<LightRnnFp64>(0);
}
TEST(DataParallel, LightRnnWithZeroOneMatchesOneProcess) {
  expect_matches_one_process<LightRnnFp64>(1);
}
// Reallocation every 4 steps: the ranks sum their statistics and re-place tokens alike.
TEST(DataParallel, LightRnnReallocatesAsOneProcess) {
  expect_matches_one_process<LightRnnFp64>(1, 4);
}

// The same run with the gradient sums started during the backward and after it: every loss,
// norm and parameter bit for bit, with and without ZeRO-1. Three layers, one per bucket, and
// gradient accumulation, whose first backward must start nothing.
template <class Model>
void expect_overlap_changes_nothing(int zero_stage) {
  SharedFixture f;
  const int ranks = world->size(), K = Model::mtp_depth;
  ModelConfig model_config_3 = model_config<Model>();
  model_config_3.n_layer = 3;
  Model overlapped(model_config_3, 5), after(model_config_3, 5);
  Loader train_a = f.train_loader(kRowsPerRank, world->rank(), ranks, K);
  Loader train_b = f.train_loader(kRowsPerRank, world->rank(), ranks, K);
  TrainConfig config = f.config(kRowsPerRank, "overlap" + std::to_string(zero_stage), zero_stage);
  config.bucket_mb = 1e-4;
  Trainer<Model> on(overlapped, config, train_a, nullptr, world);
  config.overlap = false;
  config.out_dir += "-off";
  Trainer<Model> off(after, config, train_b, nullptr, world);
  for (int i = 0; i < kSteps; ++i) {
    const StepMetrics a = on.step(), b = off.step();
    EXPECT_EQ(a.train_loss, b.train_loss) << "step " << i + 1;
    EXPECT_EQ(a.grad_norm, b.grad_norm) << "step " << i + 1;
    EXPECT_GE(a.comm_wait_ms, 0.0);
  }
  expect_same_parameters(overlapped, after, 0.0);
}

TEST(DataParallel, OverlappedSumsChangeNoBit) { expect_overlap_changes_nothing<DenseFp64>(0); }
TEST(DataParallel, OverlappedSumsChangeNoBitUnderZeroOne) {
  expect_overlap_changes_nothing<LightRnnFp64>(1);
}
TEST(DataParallel, OverlapIsReportedAsCommunicationWait) {
  using Model = DenseFp32;
  SharedFixture f;
  Model model(model_config<Model>(), 5);
  Loader train = f.train_loader(kRowsPerRank, world->rank(), world->size());
  TrainConfig config = f.config(kRowsPerRank, "comm-wait", 0);
  config.steps = 2;
  config.warmup = config.warmdown = 0;
  const TrainSummary summary = Trainer<Model>(model, config, train, nullptr, world).run();
  EXPECT_GE(summary.comm_wait_seconds, 0.0);
  EXPECT_LE(summary.comm_wait_seconds, summary.step_seconds);
  if (world->rank() == 0) {
    const std::vector<std::string> lines = lines_of(f.dir / "comm-wait" / "metrics.jsonl");
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[1].find("\"comm_wait_ms\":"), std::string::npos) << lines[1];
  }
}

// Bf16 with fp32 gradients and master weights. Without clipping (whose norm ZeRO-1 sums in
// another order) two ranks train bit for bit alike with and without ZeRO-1, which keeps each
// rank's part of the master weights only; the checkpoint of the sharded run holds every master
// weight and moment, as the unsharded run's does, and resumes on one rank and on two.
TEST(DataParallel, SixteenBitZeroOneShardsTheMasterWeights) {
  using Model = LightRnnMtp2Bf16;
  SharedFixture f;
  const int ranks = world->size(), K = Model::mtp_depth;
  const ModelConfig model_cfg = model_config<Model>();
  auto config = [&](const std::string& run, int zero_stage) {
    TrainConfig c = f.config(kRowsPerRank, run, zero_stage);
    c.adamw.grad_clip = 0;
    return c;
  };
  Model whole(model_cfg, 5), sharded(model_cfg, 5);
  const ParameterLayout& layout = whole.parameters().layout();
  const std::vector<std::size_t> offsets = part_offsets(shard_counts(layout, ranks));
  const std::size_t begin = offsets[std::size_t(world->rank())];
  const std::size_t end = offsets[std::size_t(world->rank()) + 1];
  Loader train_a = f.train_loader(kRowsPerRank, world->rank(), ranks, K);
  Loader train_b = f.train_loader(kRowsPerRank, world->rank(), ranks, K);
  Trainer<Model> plain(whole, config("bf16-whole", 0), train_a, nullptr, world);
  Trainer<Model> zero(sharded, config("bf16-zero", 1), train_b, nullptr, world);
  EXPECT_FALSE(sharded.parameters().holds_whole_master());
  EXPECT_THROW(sharded.parameters().master(), Error);
  EXPECT_THROW(sharded.parameters().master_at(end == layout.size() ? 0 : end + 1), Error);
  const std::filesystem::path whole_checkpoint = f.dir / "bf16-whole.ckpt";
  const std::filesystem::path zero_checkpoint = f.dir / "bf16-zero.ckpt";
  std::vector<double> uninterrupted;
  for (int i = 0; i < kSteps; ++i) {
    if (i == kSteps / 2) {
      plain.save(whole_checkpoint);
      zero.save(zero_checkpoint);
      EXPECT_FALSE(sharded.parameters().holds_whole_master()) << "after save";
    }
    const StepMetrics a = plain.step(), b = zero.step();
    EXPECT_EQ(a.train_loss, b.train_loss) << "step " << i + 1;
    uninterrupted.push_back(b.train_loss);
  }
  EXPECT_TRUE(weights(sharded, begin, end) == weights(whole, begin, end));

  // Both files hold the same whole state.
  Model from_whole(model_cfg, 71), from_zero(model_cfg, 72);
  Model::Optimizer whole_moments(layout, AdamWConfig{}), zero_moments(layout, AdamWConfig{});
  load_checkpoint(whole_checkpoint, from_whole, whole_moments);
  load_checkpoint(zero_checkpoint, from_zero, zero_moments);
  EXPECT_TRUE(weights(from_zero, 0, layout.size()) == weights(from_whole, 0, layout.size()));
  const std::size_t n = layout.size();
  EXPECT_TRUE(std::equal(whole_moments.first_moment(), whole_moments.first_moment() + n,
                         zero_moments.first_moment()));
  EXPECT_TRUE(std::equal(whole_moments.second_moment(), whole_moments.second_moment() + n,
                         zero_moments.second_moment()));

  // On as many ranks under ZeRO-1: the uninterrupted run, bit for bit.
  {
    Model model(model_cfg, 73);
    Loader train = f.train_loader(kRowsPerRank, world->rank(), ranks, K);
    Trainer<Model> again(model, config("bf16-again", 1), train, nullptr, world);
    again.resume(zero_checkpoint);
    EXPECT_FALSE(model.parameters().holds_whole_master());
    for (int i = kSteps / 2; i < kSteps; ++i) {
      EXPECT_EQ(again.step().train_loss, uninterrupted[std::size_t(i)]) << "step " << i + 1;
    }
    EXPECT_TRUE(weights(model, begin, end) == weights(sharded, begin, end));
  }
  // On one rank with the whole batch, unsharded: the saved weights and moments.
  Model model(model_cfg, 74);
  Loader train = f.train_loader(kRowsPerRank * ranks, 0, 1, K);
  TrainConfig one_config = config("bf16-one-" + std::to_string(world->rank()), 0);
  one_config.batch_size = kRowsPerRank * ranks;
  Trainer<Model> one(model, one_config, train, nullptr);
  one.resume(zero_checkpoint);
  EXPECT_TRUE(weights(model, 0, n) == weights(from_whole, 0, n));
  EXPECT_TRUE(std::equal(whole_moments.first_moment(), whole_moments.first_moment() + n,
                         one.optimizer().first_moment()));
  EXPECT_TRUE(std::equal(whole_moments.second_moment(), whole_moments.second_moment() + n,
                         one.optimizer().second_moment()));
}

// A non-finite loss on one rank only: the losses are summed across the ranks before the update
// decides, so every rank skips the same update and stops with the same error, weights untouched.
void expect_one_rank_non_finite_stops_every_rank(int zero_stage) {
  SharedFixture f;
  DenseFp64 model(model_config<DenseFp64>(), 5);
  Loader train = f.train_loader(kRowsPerRank, world->rank(), world->size());
  Trainer<DenseFp64> trainer(
      model, f.config(kRowsPerRank, "nonfinite" + std::to_string(zero_stage), zero_stage), train,
      nullptr, world);
  trainer.step();
  const TensorInfo& lnfw = model.parameters().layout().at("lnfw");
  const TensorInfo& fcw = model.parameters().layout().at("fcw");
  const std::vector<double> good = model.parameters().read(lnfw);
  if (world->rank() == 1) {
    model.parameters().write(lnfw, std::vector<double>(lnfw.numel, std::nan("")).data());
  }
  const std::vector<double> before = model.parameters().read(fcw);
  try {
    trainer.step();
    ADD_FAILURE() << "no error on rank " << world->rank();
  } catch (const Error& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("training stopped at step 2: the loss is not finite"), std::string::npos)
        << what << " on rank " << world->rank();
  }
  EXPECT_EQ(model.parameters().read(fcw), before) << "rank " << world->rank();
  EXPECT_EQ(trainer.steps_done(), 1);
  if (world->rank() == 1) model.parameters().write(lnfw, good.data());
}

TEST(DataParallel, ANonFiniteLossOnOneRankStopsEveryRankAlike) {
  expect_one_rank_non_finite_stops_every_rank(0);
  expect_one_rank_non_finite_stops_every_rank(1);
}

TEST(DataParallel, CheckpointResumesOnAsManyRanksAndOnOne) {
  using Model = LightRnnFp64;
  SharedFixture f;
  const int ranks = world->size();
  const std::filesystem::path checkpoint = f.dir / "half.ckpt";
  std::vector<double> uninterrupted;
  {
    Model model(model_config<Model>(), 5);
    Loader train = f.train_loader(kRowsPerRank, world->rank(), ranks);
    Trainer<Model> trainer(model, f.config(kRowsPerRank, "first", 1), train, nullptr, world);
    for (int i = 0; i < kSteps; ++i) {
      if (i == kSteps / 2) trainer.save(checkpoint);
      uninterrupted.push_back(trainer.step().train_loss);
    }
  }
  {
    Model model(model_config<Model>(), 77);  // every value comes from the file
    Loader train = f.train_loader(kRowsPerRank, world->rank(), ranks);
    Trainer<Model> trainer(model, f.config(kRowsPerRank, "again", 1), train, nullptr, world);
    trainer.resume(checkpoint);
    EXPECT_EQ(trainer.steps_done(), kSteps / 2);
    for (int i = kSteps / 2; i < kSteps; ++i) {
      EXPECT_EQ(trainer.step().train_loss, uninterrupted[std::size_t(i)]) << "step " << i + 1;
    }
  }
  // One process, the whole batch, no sharding: the same weights and moments, then the same run.
  Model saved(model_config<Model>(), 78);
  AdamW<Cpu, double> saved_optimizer(saved.parameters().layout(), AdamWConfig{});
  load_checkpoint(checkpoint, saved, saved_optimizer);
  Model model(model_config<Model>(), 79);
  Loader train = f.train_loader(kRowsPerRank * ranks, 0, 1);
  Trainer<Model> one(model,
                     f.config(kRowsPerRank * ranks, "one-" + std::to_string(world->rank()), 0),
                     train, nullptr);
  one.resume(checkpoint);
  expect_same_parameters(model, saved, 0.0);
  const std::size_t n = model.parameters().layout().size();
  EXPECT_TRUE(std::equal(saved_optimizer.first_moment(), saved_optimizer.first_moment() + n,
                         one.optimizer().first_moment()));
  EXPECT_TRUE(std::equal(saved_optimizer.second_moment(), saved_optimizer.second_moment() + n,
                         one.optimizer().second_moment()));
  EXPECT_EQ(one.optimizer().steps(), kSteps / 2);
  for (int i = kSteps / 2; i < kSteps; ++i) {
    expect_close(one.step().train_loss, uninterrupted[std::size_t(i)],
                 "resumed loss of step " + std::to_string(i + 1));
  }
}

}  // namespace
}  // namespace lightgpt::testing

int main(int argc, char** argv) {
  lightgpt::Mpi mpi(&argc, &argv);
  lightgpt::testing::world = &mpi;
  ::testing::InitGoogleTest(&argc, argv);
  // Every rank runs every test in the same order, so their collectives pair up; a rank whose
  // expectations fail exits non-zero, which fails the whole mpirun.
  return RUN_ALL_TESTS();
}
