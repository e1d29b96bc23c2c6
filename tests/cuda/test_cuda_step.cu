// A training step's host reads on the GPU: AdamW's clip and skip decided in device memory against
// the CPU Fp32 reference (a tiny max_norm, a NaN gradient, a non-finite loss, then a clean update),
// the losses summed on the device and read back once, and a step that makes the host wait for
// nothing (Context::host_waits).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cuda_testing.cuh"
#include "queued_updates.hpp"
#include "reference.hpp"

namespace lightgpt::testing {
namespace cuda_step {

class CudaStep : public CudaTest {};

// Update 1 clips at a tiny max_norm, 2 has a NaN gradient, 3 a non-finite loss, 4 is clean; the
// sparse table's rows 0-3 have gradients only in update 1, so the skipped updates must leave their
// last-gradient steps alone.
TEST_F(CudaStep, QueuedUpdatesClipAndSkipAsTheCpuFp32Reference) {
  LIGHTGPT_REQUIRE_GPU();
  const ParameterLayout layout = queued_updates_layout();
  const TensorInfo& rows = layout.at("rows");
  std::vector<std::vector<float>> grads;
  for (std::uint32_t s = 0; s < 4; ++s) {
    std::vector<float> g = random_values<float>(layout.size(), 100 + s);
    if (s > 0) std::fill_n(g.begin() + rows.offset, rows.numel / 2, 0.0f);
    grads.push_back(g);
  }
  grads[1][3] = std::nanf("");
  const std::vector<double> losses = {2.5, 2.4, std::numeric_limits<double>::infinity(), 2.3};
  const double multiplier = 0.25, max_norm = 1e-3;
  const QueuedUpdates expected = reference::queued_updates(5, grads, losses, multiplier, max_norm);
  const QueuedUpdates actual = run_queued_updates<Cuda>(5, grads, losses, multiplier, max_norm);

  ASSERT_EQ(actual.results.size(), expected.results.size());
  const bool skipped[] = {false, true, true, false};
  for (std::size_t s = 0; s < actual.results.size(); ++s) {
    const UpdateResult& a = actual.results[s];
    const UpdateResult& e = expected.results[s];
    EXPECT_EQ(e.skipped, skipped[s]) << "update " << s + 1;
    EXPECT_EQ(a.skipped, e.skipped) << "update " << s + 1;
    EXPECT_EQ(a.skipped_total, e.skipped_total) << "update " << s + 1;
    if (std::isfinite(e.norm)) {
      EXPECT_NEAR(a.norm, e.norm, 1e-12 * e.norm) << "update " << s + 1;
    } else {
      EXPECT_FALSE(std::isfinite(a.norm)) << "update " << s + 1;
    }
  }
  EXPECT_EQ(actual.steps, 2);
  EXPECT_EQ(actual.steps, expected.steps);
  LIGHTGPT_EXPECT_CLOSE(actual.master, expected.master, 1e-6);
  LIGHTGPT_EXPECT_CLOSE(actual.first_moment, expected.first_moment, 1e-6);
  LIGHTGPT_EXPECT_CLOSE(actual.second_moment, expected.second_moment, 1e-6);
  EXPECT_EQ(actual.last_gradient_steps, expected.last_gradient_steps);
}

ModelConfig model_config() {
  ModelConfig config;
  config.vocab_size = 61;
  config.max_seq_len = 16;
  config.n_layer = 2;
  config.n_head = 4;
  config.d_model = 64;
  return config;
}
constexpr int kB = 4, kT = 16;
constexpr std::uint64_t kSeed = 7;

// Two forwards summed into device memory, read back once, against the CPU Fp32 loss; then a
// whole step (forward, backward, queued update reading the losses) makes the host wait for
// nothing: no stream synchronisation, no read back.
TEST_F(CudaStep, LossesStayOnTheDeviceAndAStepWaitsForNothing) {
  LIGHTGPT_REQUIRE_GPU();
  const ModelConfig config = model_config();
  const auto tokens = random_ids(std::size_t(kB) * (kT + 1), config.vocab_size, 3);
  const reference::StepResult expected = reference::training_step(config, kSeed, tokens, kB, kT);

  GPT<Fp32, DenseHead<>, Attention, Cuda> model(config, kSeed);
  Buffer<double, Cuda> sums(kMaxMtpDepth);
  Ops<Cuda>::fill_zero(sums.data(), sums.size());
  model.forward_summing(sums.data(), tokens.data(), kB, kT);
  model.forward_summing(sums.data(), tokens.data(), kB, kT);
  Ops<Cuda>::HostReadback<double> readback;
  readback.start(sums.data(), 1);
  const double loss = readback.wait()[0] / 2;
  EXPECT_LT(std::abs(loss - expected.loss) / expected.loss, value_tolerance<float>())
      << "cpu " << expected.loss << ", gpu " << loss;

  AdamW<Cuda, float> optimizer(model.parameters().layout());
  for (int step = 0; step < 3; ++step) {
    const std::int64_t waits = cuda::context().host_waits();
    model.zero_grad();
    Ops<Cuda>::fill_zero(sums.data(), sums.size());
    model.forward_summing(sums.data(), tokens.data(), kB, kT);
    model.backward();
    optimizer.queue_step(model.parameters(), 1e-3, 1.0, sums.data(), 1);
    EXPECT_EQ(cuda::context().host_waits(), waits) << "step " << step + 1;
    const UpdateResult result = optimizer.result();
    EXPECT_FALSE(result.skipped);
    EXPECT_TRUE(std::isfinite(result.norm));
  }
  EXPECT_EQ(optimizer.steps(), 3);
}

}  // namespace cuda_step
}  // namespace lightgpt::testing
