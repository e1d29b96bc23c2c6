// AdamW on its own, against values worked out by hand (DESIGN §5 defaults).
#include <gtest/gtest.h>

#include <cmath>
#include <lightgpt/lightgpt.hpp>

namespace lightgpt {
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

TEST(AdamW, RejectsInvalidHyperparameters) {
  AdamWConfig config;
  config.beta2 = 1.0;
  EXPECT_THROW(config.validate(), Error);
  config = {};
  config.eps = 0;
  EXPECT_THROW(config.validate(), Error);
}

}  // namespace
}  // namespace lightgpt
