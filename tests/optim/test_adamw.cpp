// AdamW on its own, against values worked out by hand (docs/design.md, "Optimizer" defaults), and
// its row-sparse update against the dense one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <lightgpt/lightgpt.hpp>
#include <vector>

#include "scratch.hpp"

namespace lightgpt {
namespace adamw_tests {
namespace {

struct TwoTensors {
  ParameterStore<Fp64, Cpu> store;
  const TensorInfo& matrix() const { return store.layout().at("matrix"); }
  const TensorInfo& bias() const { return store.layout().at("bias"); }

  static ParameterLayout layout() {
    ParameterLayout layout;
    layout.add("matrix", {1, 2}, true, Init::zeros());
    layout.add("bias", {1}, false, Init::zeros());
    return layout;
  }
  TwoTensors() : store(layout()) {
    const double matrix_values[] = {1.0, -0.5}, bias_values[] = {1.0};
    store.write(matrix(), matrix_values);
    store.write(bias(), bias_values);
  }
  void set_grads(double m0, double m1, double b0) {
    double* g = store.grads();
    g[matrix().offset] = m0;
    g[matrix().offset + 1] = m1;
    g[bias().offset] = b0;
  }
};

TEST(AdamW, FirstTwoStepsMatchHandComputedValues) {
  TwoTensors model;
  AdamWConfig config;
  config.grad_clip = 0;  // clipping is tested separately
  AdamW<Cpu, double> optimizer(model.store.layout(), config);
  model.set_grads(0.5, 0.25, -2.0);
  const double norm = optimizer.step(model.store, 0.1);
  EXPECT_DOUBLE_EQ(norm, std::sqrt(0.25 + 0.0625 + 4.0));
  // Step 1: m̂ = g and v̂ = g², so the Adam direction is g / (|g| + eps) ≈ sign(g).
  // matrix[0]: 1 - 0.1·(0.5/(0.5+1e-8) + 0.1·1)
  auto matrix = model.store.read(model.matrix());
  EXPECT_NEAR(matrix[0], 1.0 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.1 * 1.0), 1e-15);
  EXPECT_NEAR(matrix[1], -0.5 - 0.1 * (0.25 / (0.25 + 1e-8) + 0.1 * -0.5), 1e-15);
  // The bias is not decayed: 1 + 0.1·(2/(2+1e-8)).
  EXPECT_NEAR(model.store.read(model.bias())[0], 1.0 + 0.1 * (2.0 / (2.0 + 1e-8)), 1e-15);

  // Step 2 with g = 1 on matrix[0]: m = 0.9·0.05 + 0.1·1 = 0.145, v = 0.95·0.0125 + 0.05 =
  // 0.061875; m̂ = 0.145/0.19, v̂ = 0.061875/0.0975.
  const double w1 = matrix[0];
  model.set_grads(1.0, 0.0, 0.0);
  optimizer.step(model.store, 0.1);
  const double m_hat = 0.145 / 0.19, v_hat = 0.061875 / 0.0975;
  matrix = model.store.read(model.matrix());
  EXPECT_NEAR(matrix[0], w1 - 0.1 * (m_hat / (std::sqrt(v_hat) + 1e-8) + 0.1 * w1), 1e-14);
  EXPECT_EQ(optimizer.steps(), 2);
}

TEST(AdamW, ClipsByTheGlobalNorm) {
  TwoTensors clipped, scaled;
  AdamWConfig config;
  config.grad_clip = 1.0;
  AdamW<Cpu, double> a(clipped.store.layout(), config), b(scaled.store.layout(), config);
  clipped.set_grads(30.0, 40.0, 0.0);  // norm 50 -> scaled by 1/50
  scaled.set_grads(0.6, 0.8, 0.0);     // already norm 1
  EXPECT_DOUBLE_EQ(a.step(clipped.store, 0.1), 50.0);
  b.step(scaled.store, 0.1);
  EXPECT_EQ(a.first_moment()[0], b.first_moment()[0]);
  EXPECT_EQ(a.second_moment()[1], b.second_moment()[1]);
}

TEST(AdamW, NonFiniteGradientsLeaveWeightsUntouched) {
  TwoTensors model;
  AdamW<Cpu, double> optimizer(model.store.layout());
  model.set_grads(NAN, 0.0, 0.0);
  EXPECT_TRUE(std::isnan(optimizer.step(model.store, 0.1)));
  EXPECT_EQ(model.store.read(model.matrix())[0], 1.0);
  EXPECT_EQ(optimizer.steps(), 0);
}

// The clip decided in the update status against the arithmetic the host used to do: the norm is
// √Σg² · multiplier and the update is that of gradients already multiplied by
// min(1, grad_clip / norm) · multiplier, bit for bit.
TEST(AdamW, QueuedUpdateClipsAtATinyMaxNormAsTheHostArithmeticDid) {
  TwoTensors queued, reference;
  AdamWConfig config;
  config.grad_clip = 1e-6;
  AdamW<Cpu, double> a(queued.store.layout(), config);
  AdamWConfig unclipped = config;
  unclipped.grad_clip = 0;
  AdamW<Cpu, double> b(reference.store.layout(), unclipped);
  const double multiplier = 0.5;
  const double norm = std::sqrt(9.0 + 16.0 + 144.0) * multiplier;
  const double scale = (config.grad_clip / norm) * multiplier;
  queued.set_grads(3.0, 4.0, 12.0);
  reference.set_grads(3.0 * scale, 4.0 * scale, 12.0 * scale);
  a.queue_step(queued.store, 0.1, multiplier);
  b.step(reference.store, 0.1);
  const UpdateResult result = a.result();
  EXPECT_EQ(result.norm, norm);
  EXPECT_FALSE(result.skipped);
  EXPECT_EQ(result.skipped_total, 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a.first_moment()[i], b.first_moment()[i]) << i;
    EXPECT_EQ(a.second_moment()[i], b.second_moment()[i]) << i;
    EXPECT_EQ(queued.store.master()[i], reference.store.master()[i]) << i;
  }
  EXPECT_EQ(a.steps(), 1);
}

// A non-finite watched value (a step's loss) or gradient skips the update, which the status
// counts; the bias corrections of the next update taken count only the updates taken.
TEST(AdamW, NonFiniteLossOrGradientSkipsTheQueuedUpdateAndIsCounted) {
  TwoTensors model, reference;
  AdamW<Cpu, double> optimizer(model.store.layout()), untouched(reference.store.layout());
  const std::vector<double> before = model.store.read(model.matrix());
  const double losses[] = {2.0, std::numeric_limits<double>::infinity()};
  model.set_grads(0.5, 0.25, -2.0);
  optimizer.queue_step(model.store, 0.1, 1.0, losses, 2);
  UpdateResult result = optimizer.result();
  EXPECT_TRUE(result.skipped);
  EXPECT_TRUE(std::isfinite(result.norm));
  EXPECT_EQ(result.skipped_total, 1);
  EXPECT_EQ(optimizer.steps(), 0);
  EXPECT_EQ(model.store.read(model.matrix()), before);
  EXPECT_EQ(optimizer.first_moment()[0], 0.0);

  model.set_grads(NAN, 0.25, -2.0);
  optimizer.queue_step(model.store, 0.1, 1.0, losses, 1);
  result = optimizer.result();
  EXPECT_TRUE(result.skipped);
  EXPECT_TRUE(std::isnan(result.norm));
  EXPECT_EQ(result.skipped_total, 2);
  EXPECT_EQ(optimizer.steps(), 0);
  EXPECT_EQ(model.store.read(model.matrix()), before);

  model.set_grads(0.5, 0.25, -2.0);
  reference.set_grads(0.5, 0.25, -2.0);
  optimizer.queue_step(model.store, 0.1, 1.0, losses, 1);
  untouched.step(reference.store, 0.1);
  result = optimizer.result();
  EXPECT_FALSE(result.skipped);
  EXPECT_EQ(result.skipped_total, 2);
  EXPECT_EQ(optimizer.steps(), 1);
  EXPECT_EQ(model.store.read(model.matrix()), reference.store.read(reference.matrix()));
}

// A 4 × 3 table flagged sparse_rows against the same table updated densely, window 3. Row 0 has
// a gradient every step, row 1 at odd steps (idle less than the window), row 2 at steps 1 and
// 10 (idle 8 steps: left alone for steps 5–9), row 3 never.
struct SparseTable {
  ParameterStore<Fp64, Cpu> store;
  explicit SparseTable(bool sparse) : store(layout(sparse)) {
    const double values[] = {1, 2, 3, -1, -2, -3, 0.5, 0.25, -0.5, 4, 5, 6};
    store.write(table(), values);
  }
  static ParameterLayout layout(bool sparse) {
    ParameterLayout layout;
    layout.add("table", {4, 3}, false, Init::zeros(), sparse);
    return layout;
  }
  const TensorInfo& table() const { return store.layout().at("table"); }
  std::vector<double> row(int r) const {
    const auto all = store.read(table());
    return {all.begin() + 3 * r, all.begin() + 3 * r + 3};
  }
  void set_grads(int step) {
    double* g = store.grads() + table().offset;
    std::fill(g, g + 12, 0.0);
    for (int c = 0; c < 3; ++c) g[c] = 0.1 * (c + 1) * (step % 2 ? 1 : -1);
    if (step % 2 == 1) g[3] = 0.7, g[5] = -0.2;
    if (step == 1 || step == 10) g[6] = -0.4, g[7] = 0.9, g[8] = 0.3;
  }
};

// The table flagged sparse_rows and its dense twin, each with its own AdamW (no clipping), fed
// the same gradients.
struct SparseAndDense {
  SparseTable sparse{true}, dense{false};
  AdamW<Cpu, double> a, b;
  explicit SparseAndDense(AdamWConfig config)
      : a(sparse.store.layout(), clipless(config)), b(dense.store.layout(), clipless(config)) {}
  void step(int step, double lr) {
    sparse.set_grads(step);
    dense.set_grads(step);
    a.step(sparse.store, lr);
    b.step(dense.store, lr);
  }
  static AdamWConfig clipless(AdamWConfig config) {
    config.grad_clip = 0;
    return config;
  }
};

TEST(AdamW, SparseRowsMatchDenseAdamWButForLongIdleRows) {
  AdamWConfig config;
  config.sparse_rows_window = 3;
  SparseAndDense pair(config);
  const SparseTable &sparse = pair.sparse, &dense = pair.dense;
  const AdamW<Cpu, double> &a = pair.a, &b = pair.b;
  std::vector<double> row2_at_4, row2_at_9;
  for (int step = 1; step <= 10; ++step) {
    pair.step(step, 0.1);
    EXPECT_EQ(sparse.row(0), dense.row(0)) << "step " << step;
    EXPECT_EQ(sparse.row(1), dense.row(1)) << "step " << step;
    EXPECT_EQ(sparse.row(3), (std::vector<double>{4, 5, 6})) << "step " << step;
    EXPECT_EQ(dense.row(3), (std::vector<double>{4, 5, 6})) << "step " << step;
    if (step <= 4) EXPECT_EQ(sparse.row(2), dense.row(2)) << "step " << step;
    if (step == 4) row2_at_4 = dense.row(2);
    if (step == 9) row2_at_9 = dense.row(2);
    if (step > 4 && step < 10) EXPECT_EQ(sparse.row(2), row2_at_4) << "left alone, step " << step;
  }
  EXPECT_EQ(a.last_gradient_steps()[0], 10);
  EXPECT_EQ(a.last_gradient_steps()[1], 9);
  EXPECT_EQ(a.last_gradient_steps()[2], 10);
  EXPECT_EQ(a.last_gradient_steps()[3], kAdamWNeverSeen);
  // At step 10 row 2's moments caught up with the 5 skipped steps' decay, so both took the same
  // step; the weights differ by exactly the dense run's drift over steps 5–9, and it was not zero.
  const std::size_t at = sparse.table().offset + 6;
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(a.first_moment()[at + c], b.first_moment()[at + c], 1e-15);
    EXPECT_NEAR(a.second_moment()[at + c], b.second_moment()[at + c], 1e-15);
    const double drift = row2_at_4[c] - row2_at_9[c];
    EXPECT_GT(std::abs(drift), 1e-4) << c;
    EXPECT_NEAR(sparse.row(2)[c] - dense.row(2)[c], drift, 1e-12) << c;
  }
}

// sparse_rows_lr_scale multiplies the sparse tensors' learning rate and nothing else: the first
// Adam step moves each element with a gradient by lr (its sign against the gradient's), so the
// sparse table moves by 3 · 0.1 where a dense copy moves by 0.1.
TEST(AdamW, SparseRowsLearningRateScale) {
  AdamWConfig config;
  config.sparse_rows_lr_scale = 3;
  SparseAndDense pair(config);
  const auto before = pair.sparse.row(0);
  pair.step(1, 0.1);
  for (int c = 0; c < 3; ++c) {  // row 0's gradient is 0.1·(c + 1) > 0 at step 1
    EXPECT_NEAR(pair.sparse.row(0)[c], before[c] - 0.3, 1e-6) << c;
    EXPECT_NEAR(pair.dense.row(0)[c], before[c] - 0.1, 1e-6) << c;
  }
}

// The rows' last-gradient steps travel with the moments in the checkpoint; a file without them
// is refused for a layout with sparse rows.
TEST(AdamW, SparseRowStepsRoundTripThroughTheCheckpoint) {
  testing::TempDir dir;
  AdamWConfig config;
  config.sparse_rows_window = 3;
  SparseTable table(true);
  AdamW<Cpu, double> optimizer(table.store.layout(), config);
  for (int step = 1; step <= 4; ++step) {
    table.set_grads(step);
    optimizer.step(table.store, 0.1);
  }
  {
    CheckpointWriter out(dir.path() / "opt.ckpt");
    write_optimizer_section(out, optimizer);
    out.commit();
  }
  AdamW<Cpu, double> restored(table.store.layout(), config);
  read_optimizer_section(CheckpointReader(dir.path() / "opt.ckpt"), restored);
  EXPECT_EQ(restored.steps(), 4);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(restored.last_gradient_steps()[r], optimizer.last_gradient_steps()[r]) << r;
  }
  {
    CheckpointWriter out(dir.path() / "dense.ckpt");
    SparseTable dense(false);  // the same tensor, not flagged: no adamw_rows section
    write_optimizer_section(out, AdamW<Cpu, double>(dense.store.layout()));
    out.commit();
  }
  try {
    read_optimizer_section(CheckpointReader(dir.path() / "dense.ckpt"), restored);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("adamw_rows"), std::string::npos) << error.what();
  }
}

TEST(AdamW, RejectsInvalidHyperparameters) {
  AdamWConfig config;
  config.beta2 = 1.0;
  EXPECT_THROW(config.validate(), Error);
  config = {};
  config.eps = 0;
  EXPECT_THROW(config.validate(), Error);
  config = {};
  config.sparse_rows_window = -1;
  EXPECT_THROW(config.validate(), Error);
  config = {};
  config.sparse_rows_lr_scale = 0;
  EXPECT_THROW(config.validate(), Error);
}

}  // namespace
}  // namespace adamw_tests
}  // namespace lightgpt
