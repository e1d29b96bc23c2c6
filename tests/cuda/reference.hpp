// The CPU Fp32 reference for the CUDA tests, behind a plain interface: functions on host float
// buffers, compiled by the host compiler in reference.cpp (which includes Eigen) and linked into
// the CUDA test binary, whose .cu files never see Eigen (docs/design.md, "Backends"). Each op
// function runs Ops<Cpu> or AttentionKernels<Cpu> on fp32 data; outputs follow the same
// overwrite/accumulate modes as the GPU calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <lightgpt/core/config.hpp>
#include <vector>

#include "queued_updates.hpp"

namespace lightgpt::testing::reference {

void matmul_forward(float* out, const float* in, const float* weight, const float* bias, int N,
                    int IC, int OC);
// Null outputs are skipped; *_accumulate selects the mode of each output.
void matmul_backward(float* din, bool din_accumulate, float* dweight, bool dweight_accumulate,
                     float* dbias, bool dbias_accumulate, const float* dout, const float* in,
                     const float* weight, int N, int IC, int OC);

void layernorm_forward(float* out, float* mean, float* rstd, const float* in, const float* weight,
                       const float* bias, int N, int C);
void layernorm_backward(float* din, bool din_accumulate, float* dweight, float* dbias,
                        bool params_accumulate, const float* dout, const float* in,
                        const float* weight, const float* mean, const float* rstd, int N, int C);
void gelu_forward(float* out, const float* in, std::size_t count);
void gelu_backward(float* din, bool accumulate, const float* dout, const float* in,
                   std::size_t count);
void residual_forward(float* out, const float* a, const float* b, std::size_t count);
void dropout(float* out, const float* in, std::size_t count, double p, std::uint64_t seed);
void embedding_forward(float* out, const std::int32_t* tokens, int row_stride, const float* wte,
                       const float* wpe, int B, int T, int C);
void embedding_backward(float* dwte, float* dwpe, const float* dout, const std::int32_t* tokens,
                        int row_stride, int B, int T, int C);

void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int C, int NH);
void attention_backward(float* dqkv, bool accumulate, const float* dout, const float* qkv,
                        const float* out, const float* lse, int B, int T, int C, int NH);
void attention_decode(float* out, const float* qkv, int t, int C, int NH);

// One layer of the attention mixer, AttentionImpl<Cpu, Fp32> built from config (d_model, n_head,
// max_seq_len; n_layer 1), with `params` per tensor in its layout order: the forward of x [B, T, C]
// and the backward of dout (input gradient overwritten, parameter gradients from zero).
struct MixerStep {
  std::vector<float> out, din;
  std::vector<std::vector<float>> grads;  // per tensor, in layout order
};
MixerStep attention_mixer_step(const ModelConfig& config,
                               const std::vector<std::vector<float>>& params,
                               const std::vector<float>& x, const std::vector<float>& dout, int B,
                               int T);

void row_logsumexp(float* lse, const float* logits, int N, int V, int Vp);
void cross_entropy(float* losses, const float* lse, const float* logits,
                   const std::int32_t* targets, int row_stride, int B, int T, int Vp);
void cross_entropy_backward_inplace(float* logits, const float* lse, const std::int32_t* targets,
                                    int row_stride, const float* depth_weights, int depths,
                                    float scale, int B, int T, int V, int Vp);
void log_softmax(float* out, const float* logits, const float* lse, int N, int V, int Vp);
float mean(const float* values, std::size_t count);

double sum_of_squares(const float* values, std::size_t count);
struct AdamWScalars {
  float lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2, grad_scale;
};
void adamw_update(float* params, float* master, float* m, float* v, const float* grads,
                  std::size_t count, const AdamWScalars& step);
void adamw_update_sparse_rows(float* params, float* master, float* m, float* v, const float* grads,
                              std::int64_t* seen, std::size_t rows, std::size_t width,
                              std::int64_t step_index, int window, const AdamWScalars& step);

// run_queued_updates<Cpu> (queued_updates.hpp): the updates' clip and skip decisions on the CPU.
QueuedUpdates queued_updates(std::uint64_t seed, const std::vector<std::vector<float>>& grads,
                             const std::vector<double>& losses, double grad_multiplier,
                             double grad_clip);

// Whole-model runs of GPT<Fp32, DenseHead<>, Attention, Cpu> built with (config, seed).
struct StepResult {
  float loss = 0;
  std::vector<std::vector<float>> grads;  // per tensor, in layout order
};
// One forward and backward; dropout p with the model's default dropout seed (0).
StepResult training_step(const ModelConfig& config, std::uint64_t seed,
                         const std::vector<std::int32_t>& tokens, int B, int T,
                         double dropout = 0.0);
// Losses of `steps` AdamW steps (constant lr, default AdamWConfig), batch s at
// tokens + s·B·(T + 1).
std::vector<float> training_curve(const ModelConfig& config, std::uint64_t seed,
                                  const std::vector<std::int32_t>& tokens, int B, int T, int steps,
                                  double lr);
// log P over the V real tokens after each prefix of `sequence`, through the decode path.
std::vector<std::vector<float>> decode_log_probs(const ModelConfig& config, std::uint64_t seed,
                                                 const std::vector<std::int32_t>& sequence);

}  // namespace lightgpt::testing::reference
