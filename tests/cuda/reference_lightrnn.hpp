// The CPU Fp32 reference for the CUDA LightRNN tests, behind a plain interface of host float
// buffers (reference_lightrnn.cpp, compiled by the host compiler, runs LightRnnKernels<Cpu> and
// GPT<Fp32, LightRnnHead<MTP<k>>, Attention, Cpu>; no .cu file sees Eigen). The op functions have
// the signatures and modes of the GPU calls (windows and codebook views over host memory); model
// functions build their model from (config, seed) exactly as the GPU tests do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <lightgpt/core/config.hpp>
#include <lightgpt/heads/lightrnn/kernels.hpp>
#include <lightgpt/loss/bigram.hpp>
#include <string>
#include <vector>

namespace lightgpt::testing::reference {

// ------------------------------------------------------------------------------------------ ops

using Windows = LightRnnWindows<std::int32_t>;

void lightrnn_embedding_forward(float* out, Windows inputs, LightRnnCodebookView codebook,
                                const float* row_table, const float* col_table,
                                const float* token_table, const float* wpe, int C);
void lightrnn_embedding_backward(float* drow_table, float* dcol_table, float* dtoken_table,
                                 float* dwpe, const float* dout, Windows inputs,
                                 LightRnnCodebookView codebook, int C);
void lightrnn_row_logsumexp(float* lse, const float* logits, const std::int32_t* row_count, int N,
                            int R);
void lightrnn_condition_forward(float* slope, float* state, const float* base,
                                const float* row_table, Windows targets,
                                LightRnnCodebookView codebook, int C);
void lightrnn_condition_rows(float* state, const float* base, const float* row_table,
                             int first_row, int rows, int N, int C);
void lightrnn_cross_entropy(float* losses, float* col_lse, const float* row_logits,
                            const float* row_lse, const float* col_logits, Windows targets,
                            LightRnnCodebookView codebook);

// CoCoNT row targets on the host (the fields of NgramTargets<float>); null offsets: off.
struct NgramHost {
  const std::int32_t* offsets = nullptr;
  const std::int32_t* classes = nullptr;
  const float* probs = nullptr;
  const float* neg_entropy = nullptr;
  float alpha = 0;
};
void lightrnn_row_backward_inplace(float* logits, const float* lse, Windows targets,
                                   LightRnnCodebookView codebook, const float* depth_weights,
                                   int depths, float scale, const std::int32_t* contexts,
                                   const NgramHost& ngram);
void lightrnn_column_backward_inplace(float* logits, const float* lse, Windows targets,
                                      LightRnnCodebookView codebook, float weight);
void lightrnn_condition_backward(float* dpre, const float* slope, float* drow_table,
                                 Windows targets, LightRnnCodebookView codebook, int C);
void lightrnn_log_probs_rows(float* out, const float* row_logits, const float* row_lse,
                             const float* col_logits, LightRnnCodebookView codebook, int first_row,
                             int rows, int N);
void lightrnn_accumulate_statistics(float* row_loss, float* col_loss, float* lse_scratch,
                                    const float* row_logits, const float* col_logits,
                                    Windows targets, int R);

// ------------------------------------------------------------------------------------- models

// GPT<Fp32, LightRnnHead<MTP<mtp_depth>>, Attention, Cpu> (mtp_depth 1 or 2) with these settings.
struct LightRnnSetup {
  int mtp_depth = 1;
  float mtp_weight = 0;
  const BigramTable* cocont = nullptr;  // CoCoNT off when null
  float cocont_alpha = 0.1f;
  std::vector<std::int32_t> token_cells;  // the codebook; empty: sequential
};

struct LightRnnStep {
  float loss = 0;
  std::vector<float> depth_losses;
  float cocont = 0;
  std::vector<std::vector<float>> grads;  // per tensor, in layout order
};

// One training step on B windows of T + mtp_depth ids.
LightRnnStep lightrnn_training_step(const ModelConfig& config, std::uint64_t seed,
                                    const LightRnnSetup& setup,
                                    const std::vector<std::int32_t>& tokens, int B, int T);
// log P over the V tokens at every position of B rows of T inputs (GPT::log_probs).
std::vector<float> lightrnn_log_probs(const ModelConfig& config, std::uint64_t seed,
                                      const LightRnnSetup& setup,
                                      const std::vector<std::int32_t>& inputs, int B, int T);
// log P over the V tokens after each prefix of `sequence`, through the decode path.
std::vector<std::vector<float>> lightrnn_decode_log_probs(
    const ModelConfig& config, std::uint64_t seed, const LightRnnSetup& setup,
    const std::vector<std::int32_t>& sequence);
// Reallocation statistics (row losses, then column losses, V × R each) after one evaluate() of B
// windows of T + 1 ids.
std::vector<float> lightrnn_statistics(const ModelConfig& config, std::uint64_t seed,
                                       const LightRnnSetup& setup,
                                       const std::vector<std::int32_t>& tokens, int B, int T);

// A checkpoint written on the GPU, loaded into GPT<Fp32, LightRnnHead<>, Attention, Cpu> (the
// config, parameters and codebook all come from the file): the mean NLL of B windows of T + 1
// ids, as the CPU evaluates it.
float lightrnn_checkpoint_evaluate(const std::string& path, const std::vector<std::int32_t>& tokens,
                                   int B, int T);

}  // namespace lightgpt::testing::reference
