// The CPU Fp32 reference behind reference.hpp: Ops<Cpu>, AttentionKernels<Cpu>, the attention mixer
// and GPT<Fp32, DenseHead<>, Attention, Cpu> on host buffers. Compiled by the host compiler; the
// CUDA tests link it.
#include "reference.hpp"

#include <instances.hpp>
#include <lightgpt/lightgpt.hpp>
#include <lightgpt/testing/mixer_harness.hpp>

namespace lightgpt::testing::reference {
namespace {

using O = Ops<Cpu>;

using K = AttentionKernels<Cpu>;

Grad<float> grad(float* ptr, bool accumulate) {
  return {ptr, accumulate ? Mode::accumulate : Mode::overwrite};
}

}  // namespace

void matmul_forward(float* out, const float* in, const float* weight, const float* bias, int N,
                    int IC, int OC) {
  O::matmul_forward(out, in, weight, bias, N, IC, OC);
}
void matmul_backward(float* din, bool din_accumulate, float* dweight, bool dweight_accumulate,
                     float* dbias, bool dbias_accumulate, const float* dout, const float* in,
                     const float* weight, int N, int IC, int OC) {
  O::matmul_backward(grad(din, din_accumulate), grad(dweight, dweight_accumulate),
                     grad(dbias, dbias_accumulate), dout, in, weight, N, IC, OC);
}

void layernorm_forward(float* out, float* mean, float* rstd, const float* in, const float* weight,
                       const float* bias, int N, int C) {
  O::layernorm_forward(out, mean, rstd, in, weight, bias, N, C);
}
void layernorm_backward(float* din, bool din_accumulate, float* dweight, float* dbias,
                        bool params_accumulate, const float* dout, const float* in,
                        const float* weight, const float* mean, const float* rstd, int N, int C) {
  O::layernorm_backward(grad(din, din_accumulate), grad(dweight, params_accumulate),
                        grad(dbias, params_accumulate), dout, in, weight, mean, rstd, N, C);
}
void gelu_forward(float* out, const float* in, std::size_t count) {
  O::gelu_forward(out, in, count);
}
void gelu_backward(float* din, bool accumulate, const float* dout, const float* in,
                   std::size_t count) {
  O::gelu_backward(grad(din, accumulate), dout, in, count);
}
void residual_forward(float* out, const float* a, const float* b, std::size_t count) {
  O::residual_forward(out, a, b, count);
}

void dropout(float* out, const float* in, std::size_t count, double p, std::uint64_t seed) {
  O::dropout(out, in, count, p, seed);
}
void embedding_forward(float* out, const std::int32_t* tokens, int row_stride, const float* wte,
                       const float* wpe, int B, int T, int C) {
  O::embedding_forward(out, tokens, row_stride, wte, wpe, B, T, C);
}
void embedding_backward(float* dwte, float* dwpe, const float* dout, const std::int32_t* tokens,
                        int row_stride, int B, int T, int C) {
  O::embedding_backward(accumulate(dwte), accumulate(dwpe), dout, tokens, row_stride, B, T, C);
}

void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int C, int NH) {
  std::vector<float> scratch(K::attention_scratch_size(T));
  K::attention_forward(out, lse, qkv, B, T, C, NH, scratch.data());
}
void attention_backward(float* dqkv, bool accumulate, const float* dout, const float* qkv,
                        const float* out, const float* lse, int B, int T, int C, int NH) {
  std::vector<float> scratch(K::attention_scratch_size(T));
  K::attention_backward(grad(dqkv, accumulate), dout, qkv, out, lse, B, T, C, NH, scratch.data());
}
void attention_decode(float* out, const float* qkv, int t, int C, int NH) {
  std::vector<float> scores(K::attention_decode_scratch_size<float>(t + 1, C, NH));
  K::attention_decode(out, qkv, t, C, NH, scores.data());
}

MixerStep attention_mixer_step(const ModelConfig& config,
                               const std::vector<std::vector<float>>& params,
                               const std::vector<float>& x, const std::vector<float>& dout, int B,
                               int T) {
  MixerHarness<Attention, Fp32, Cpu> layer(config, static_cast<std::size_t>(B) * T, 0, 1);
  layer.write_parameters(params);
  MixerStep step{layer.forward(0, x, B, T), layer.backward(0, dout, x, B, T), {}};
  for (const TensorInfo& tensor : layer.parameters().layout().tensors()) {
    step.grads.push_back(layer.parameters().read_grad(tensor));
  }
  return step;
}

void row_logsumexp(float* lse, const float* logits, int N, int V, int Vp) {
  O::row_logsumexp(lse, logits, N, V, Vp);
}
void cross_entropy(float* losses, const float* lse, const float* logits,
                   const std::int32_t* targets, int row_stride, int B, int T, int Vp) {
  O::cross_entropy(losses, lse, logits, targets, row_stride, B, T, Vp);
}
void cross_entropy_backward_inplace(float* logits, const float* lse, const std::int32_t* targets,
                                    int row_stride, const float* depth_weights, int depths,
                                    float scale, int B, int T, int V, int Vp) {
  O::cross_entropy_backward_inplace(logits, lse, targets, row_stride, depth_weights, depths, scale,
                                    B, T, V, Vp);
}
void log_softmax(float* out, const float* logits, const float* lse, int N, int V, int Vp) {
  O::log_softmax(out, logits, lse, N, V, Vp);
}
float mean(const float* values, std::size_t count) { return O::mean(values, count); }

double sum_of_squares(const float* values, std::size_t count) {
  return O::sum_of_squares(values, count);
}
AdamWStep<float> adamw_step(const AdamWScalars& s) {
  return {s.lr,  s.beta1, s.beta2, s.eps, s.weight_decay, s.bias_correction1, s.bias_correction2,
          s.grad_scale};
}
void adamw_update(float* params, float* master, float* m, float* v, const float* grads,
                  std::size_t count, const AdamWScalars& s) {
  O::adamw_update(params, master, m, v, grads, count, adamw_step(s));
}
void adamw_update_sparse_rows(float* params, float* master, float* m, float* v, const float* grads,
                              std::int64_t* seen, std::size_t rows, std::size_t width,
                              std::int64_t step_index, int window, const AdamWScalars& s) {
  O::adamw_update_sparse_rows(params, master, m, v, grads, seen, rows, width, step_index, window,
                              adamw_step(s));
}

StepResult training_step(const ModelConfig& config, std::uint64_t seed,
                         const std::vector<std::int32_t>& tokens, int B, int T, double dropout) {
  DenseFp32 model(config, seed);
  model.set_dropout(float(dropout));
  StepResult result;
  model.zero_grad();
  result.loss = model.forward(tokens.data(), B, T);
  model.backward();
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    result.grads.push_back(model.parameters().read_grad(tensor));
  }
  return result;
}

std::vector<float> training_curve(const ModelConfig& config, std::uint64_t seed,
                                  const std::vector<std::int32_t>& tokens, int B, int T, int steps,
                                  double lr) {
  DenseFp32 model(config, seed);
  AdamW<Cpu, float> optimizer(model.parameters().layout());
  std::vector<float> losses;
  const std::size_t batch = static_cast<std::size_t>(B) * (T + 1);
  for (int step = 0; step < steps; ++step) {
    model.zero_grad();
    losses.push_back(model.forward(tokens.data() + step * batch, B, T));
    model.backward();
    optimizer.step(model.parameters(), lr);
  }
  return losses;
}

std::vector<std::vector<float>> decode_log_probs(const ModelConfig& config, std::uint64_t seed,
                                                 const std::vector<std::int32_t>& sequence) {
  DenseFp32 model(config, seed);
  std::vector<std::vector<float>> result;
  model.decode_reset();
  for (std::int32_t id : sequence) {
    const auto log_probs = model.decode(id);
    result.emplace_back(log_probs.begin(), log_probs.end());
  }
  return result;
}

QueuedUpdates queued_updates(std::uint64_t seed, const std::vector<std::vector<float>>& grads,
                             const std::vector<double>& losses, double grad_multiplier,
                             double grad_clip) {
  return run_queued_updates<Cpu>(seed, grads, losses, grad_multiplier, grad_clip);
}

}  // namespace lightgpt::testing::reference
