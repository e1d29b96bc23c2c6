// Fourth-order central finite differences in Fp64 against backward() for sampled elements of every
// parameter tensor of DenseHead<MTP<k>> and LightRnnHead<MTP<k>>, k = 1, 2, 3, for the objective
// L_main + w · mean_{j≥2} L_aux(j): both LightRNN conditionings, empty rows and scattered empty
// cells, the untied token embedding, and the per-depth MTP adapter.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include <lightgpt/testing/gradcheck.hpp>

#include "head_instances.hpp"

namespace lightgpt::testing {
namespace head_gradcheck_tests {
namespace {

constexpr int kB = 2, kT = 6;

template <class Model>
void check_every_tensor(const ModelConfig& config, double mtp_weight,
                        const std::function<void(Model&)>& prepare = {}) {
  Model model(config, 7);
  if (prepare) prepare(model);
  model.set_mtp_weight(mtp_weight);
  const auto tokens = random_tokens(kB * (kT + Model::mtp_depth), config.vocab_size, 11);
  // Fourth-order central differences: truncation O(h⁴), so 1e-6 relative is meaningful even where
  // LayerNorm makes the third derivatives large.
  GradCheckOptions options;
  options.order = 4;
  options.step = 1e-4;
  const GradCheckReport report =
      gradient_check(model, training_objective<Model>(tokens, kB, kT), options);
  EXPECT_EQ(report.failures(1e-6), "");
  // Every tensor takes part in the objective (padding rows of wte aside).
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    double grad_norm = 0;
    for (double g : model.parameters().read_grad(tensor)) grad_norm += g * g;
    EXPECT_GT(grad_norm, 0.0) << tensor.name;
  }
}

ModelConfig with_adapter() {
  ModelConfig config = tiny_config();
  config.options.set("mtp.adapter", true);
  return config;
}
// V = 23 in a 6 × 6 table: rows 4 and 5 are empty.
ModelConfig with_empty_rows() {
  ModelConfig config = tiny_config();
  config.options.set("lightrnn.rows", 6);
  return config;
}
ModelConfig parameter_free() {
  ModelConfig config = tiny_config();
  config.options.set("lightrnn.conditioning", RowConditioning::gelu);
  return config;
}
template <class Model>
void scatter_cells(Model& model) {
  model.head().set_codebook(
      LightRnnCodebook::random(model.config().vocab_size, lightrnn_table_rows(model.config()), 5));
}

TEST(HeadGradCheck, DenseMtp1) { check_every_tensor<DenseFp64>(tiny_config(), 0.0); }
TEST(HeadGradCheck, DenseMtp2) { check_every_tensor<Mtp2Fp64>(tiny_config(), 0.35); }
TEST(HeadGradCheck, DenseMtp3) { check_every_tensor<Mtp3Fp64>(tiny_config(), 0.5); }
TEST(HeadGradCheck, DenseMtp2Adapter) { check_every_tensor<Mtp2Fp64>(with_adapter(), 0.6); }
TEST(HeadGradCheck, DenseMtp3Adapter) { check_every_tensor<Mtp3Fp64>(with_adapter(), 0.5); }

TEST(HeadGradCheck, LightRnnMtp1) { check_every_tensor<LightRnnFp64>(tiny_config(), 0.0); }
TEST(HeadGradCheck, LightRnnMtp2) { check_every_tensor<LightRnnMtp2Fp64>(tiny_config(), 0.35); }
TEST(HeadGradCheck, LightRnnMtp3) { check_every_tensor<LightRnnMtp3Fp64>(tiny_config(), 0.5); }
TEST(HeadGradCheck, LightRnnMtp1ParameterFree) {
  check_every_tensor<LightRnnFp64>(parameter_free(), 0.0);
}
TEST(HeadGradCheck, LightRnnMtp3ParameterFree) {
  check_every_tensor<LightRnnMtp3Fp64>(parameter_free(), 0.5);
}
TEST(HeadGradCheck, LightRnnMtp1EmptyRows) {
  check_every_tensor<LightRnnFp64>(with_empty_rows(), 0.0);
}
TEST(HeadGradCheck, LightRnnMtp2ScatteredEmptyCells) {
  check_every_tensor<LightRnnMtp2Fp64>(with_empty_rows(), 0.4, scatter_cells<LightRnnMtp2Fp64>);
}
TEST(HeadGradCheck, LightRnnMtp2TokenEmbeddingScatteredCells) {
  ModelConfig config = with_empty_rows();
  config.options.set("lightrnn.token_embedding", true);
  check_every_tensor<LightRnnMtp2Fp64>(config, 0.4, scatter_cells<LightRnnMtp2Fp64>);
}
TEST(HeadGradCheck, LightRnnMtp2Adapter) {
  check_every_tensor<LightRnnMtp2Fp64>(with_adapter(), 0.6);
}
TEST(HeadGradCheck, LightRnnMtp3AdapterParameterFree) {
  ModelConfig config = with_adapter();
  config.options.set("lightrnn.conditioning", RowConditioning::gelu);
  check_every_tensor<LightRnnMtp3Fp64>(config, 0.5, scatter_cells<LightRnnMtp3Fp64>);
}

}  // namespace
}  // namespace head_gradcheck_tests
}  // namespace lightgpt::testing
