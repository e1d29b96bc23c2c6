// The CPU Fp32 reference behind reference_lightrnn.hpp: LightRnnKernels<Cpu>, the LightRNN kernels
// and the LightRnnHead compositions instantiated in tests/heads (head_instances.hpp). Compiled by
// the host compiler; the CUDA tests link it.
#include "reference_lightrnn.hpp"

#include <head_instances.hpp>
#include <lightgpt/lightgpt.hpp>
#include <utility>

namespace lightgpt::testing::reference {
namespace {

using O = Ops<Cpu>;

using K = LightRnnKernels<Cpu>;

NgramTargets<float> targets_view(const NgramHost& ngram) {
  return {ngram.offsets, ngram.classes, ngram.probs, ngram.neg_entropy, ngram.alpha};
}

template <class Model>
void apply(Model& model, const LightRnnSetup& setup) {
  model.set_mtp_weight(setup.mtp_weight);
  if (!setup.token_cells.empty()) {
    model.head().set_codebook(
        LightRnnCodebook::from_cells(lightrnn_table_rows(model.config()), setup.token_cells));
  }
  if (setup.cocont != nullptr) {
    model.set_cocont(*setup.cocont);
    model.set_cocont_alpha(setup.cocont_alpha);
  }
}

// Runs `body` on the composition of the setup's MTP depth.
template <class Body>
auto with_model(const ModelConfig& config, std::uint64_t seed, const LightRnnSetup& setup,
                Body&& body) {
  LIGHTGPT_CHECK(setup.mtp_depth == 1 || setup.mtp_depth == 2,
                 "reference: LightRnnHead MTP depth 1 or 2, got ", setup.mtp_depth);
  if (setup.mtp_depth == 1) {
    LightRnnFp32 model(config, seed);
    apply(model, setup);
    return body(model);
  }
  LightRnnMtp2Fp32 model(config, seed);
  apply(model, setup);
  return body(model);
}

}  // namespace

void lightrnn_embedding_forward(float* out, Windows inputs, LightRnnCodebookView codebook,
                                const float* row_table, const float* col_table,
                                const float* token_table, const float* wpe, int C) {
  K::lightrnn_embedding_forward(out, inputs, codebook, row_table, col_table, token_table, wpe, C);
}
void lightrnn_embedding_backward(float* drow_table, float* dcol_table, float* dtoken_table,
                                 float* dwpe, const float* dout, Windows inputs,
                                 LightRnnCodebookView codebook, int C) {
  K::lightrnn_embedding_backward(drow_table, dcol_table, dtoken_table, dwpe, dout, inputs, codebook,
                                 C);
}
void lightrnn_row_logsumexp(float* lse, const float* logits, const std::int32_t* row_count, int N,
                            int R) {
  K::lightrnn_row_logsumexp(lse, logits, row_count, N, R);
}
void lightrnn_condition_forward(float* slope, float* state, const float* base,
                                const float* row_table, Windows targets,
                                LightRnnCodebookView codebook, int C) {
  K::lightrnn_condition_forward(slope, state, base, row_table, targets, codebook, C);
}
void lightrnn_condition_rows(float* state, const float* base, const float* row_table, int first_row,
                             int rows, int N, int C) {
  K::lightrnn_condition_rows(state, base, row_table, first_row, rows, N, C);
}
void lightrnn_cross_entropy(float* losses, float* col_lse, const float* row_logits,
                            const float* row_lse, const float* col_logits, Windows targets,
                            LightRnnCodebookView codebook) {
  K::lightrnn_cross_entropy(losses, col_lse, row_logits, row_lse, col_logits, targets, codebook);
}
void lightrnn_row_backward_inplace(float* logits, const float* lse, Windows targets,
                                   LightRnnCodebookView codebook, const float* depth_weights,
                                   int depths, float scale, const std::int32_t* contexts,
                                   const NgramHost& ngram) {
  K::lightrnn_row_backward_inplace(logits, lse, targets, codebook, depth_weights, depths, scale,
                                   contexts, targets_view(ngram));
}
void lightrnn_column_backward_inplace(float* logits, const float* lse, Windows targets,
                                      LightRnnCodebookView codebook, float weight) {
  K::lightrnn_column_backward_inplace(logits, lse, targets, codebook, weight);
}
void lightrnn_condition_backward(float* dpre, const float* slope, float* drow_table,
                                 Windows targets, LightRnnCodebookView codebook, int C) {
  K::lightrnn_condition_backward(dpre, slope, drow_table, targets, codebook, C);
}
void lightrnn_log_probs_rows(float* out, const float* row_logits, const float* row_lse,
                             const float* col_logits, LightRnnCodebookView codebook, int first_row,
                             int rows, int N) {
  K::lightrnn_log_probs_rows(out, row_logits, row_lse, col_logits, codebook, first_row, rows, N);
}
void lightrnn_accumulate_statistics(float* row_loss, float* col_loss, float* lse_scratch,
                                    const float* row_logits, const float* col_logits,
                                    Windows targets, int R) {
  K::lightrnn_accumulate_statistics(row_loss, col_loss, lse_scratch, row_logits, col_logits,
                                    targets, R);
}

LightRnnStep lightrnn_training_step(const ModelConfig& config, std::uint64_t seed,
                                    const LightRnnSetup& setup,
                                    const std::vector<std::int32_t>& tokens, int B, int T) {
  return with_model(config, seed, setup, [&](auto& model) {
    LightRnnStep result;
    model.zero_grad();
    result.loss = model.forward(tokens.data(), B, T);
    model.backward();
    const auto& losses = model.losses();
    for (int j = 0; j < losses.depths; ++j) result.depth_losses.push_back(losses.depth[j]);
    result.cocont = losses.cocont;
    for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
      result.grads.push_back(model.parameters().read_grad(tensor));
    }
    return result;
  });
}

std::vector<float> lightrnn_log_probs(const ModelConfig& config, std::uint64_t seed,
                                      const LightRnnSetup& setup,
                                      const std::vector<std::int32_t>& inputs, int B, int T) {
  return with_model(config, seed, setup, [&](auto& model) {
    std::vector<float> out(std::size_t(B) * T * config.vocab_size);
    model.log_probs(inputs.data(), B, T, out.data());
    return out;
  });
}

std::vector<std::vector<float>> lightrnn_decode_log_probs(
    const ModelConfig& config, std::uint64_t seed, const LightRnnSetup& setup,
    const std::vector<std::int32_t>& sequence) {
  return with_model(config, seed, setup, [&](auto& model) {
    std::vector<std::vector<float>> result;
    model.decode_reset();
    for (std::int32_t id : sequence) {
      const auto log_probs = model.decode(id);
      result.emplace_back(log_probs.begin(), log_probs.end());
    }
    return result;
  });
}

std::vector<float> lightrnn_statistics(const ModelConfig& config, std::uint64_t seed,
                                       const LightRnnSetup& setup,
                                       const std::vector<std::int32_t>& tokens, int B, int T) {
  return with_model(config, seed, setup, [&](auto& model) {
    model.head().begin_reallocation_statistics();
    model.evaluate(tokens.data(), B, T);
    return model.head().reallocation_statistics();
  });
}

float lightrnn_checkpoint_evaluate(const std::string& path, const std::vector<std::int32_t>& tokens,
                                   int B, int T) {
  const CheckpointReader in(path);
  const ModelConfig config =
      ModelConfig::parse(in.section("config").rest(), "checkpoint '" + path + "'");
  GPT<Fp32, LightRnnHead<>, Attention, Cpu> model(config, 0);
  load_checkpoint(path, model);
  return model.evaluate(tokens.data(), B, T);
}

}  // namespace lightgpt::testing::reference
