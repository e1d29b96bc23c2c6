// GPT-2 small (d12, V = 50257, T = 1024) training throughput in bf16 on one GPU: tokens/s and
// MFU for the largest batch that fits (tried from --batch down), with MFU stated twice — against
// the datasheet bf16 dense peak (989 TFLOP/s, H100/H200 SXM) and against the cuBLASLt rate this
// run measures at the model's own GEMM shapes. Where the time goes is estimated by timing each
// kernel family on its own at the step's shapes (CUDA events): GEMMs, attention, element-wise
// (LayerNorm, GELU, residual, embedding, loss) and the optimizer; "other" is the step minus their
// sum. A plain program (no Google Benchmark): the GPU machine runs it from the bundle and
// benchmarks/gpu/run.sh reads its `RESULT key=value` lines.
//
// The loss is checked, since a fast step that computes garbage is no result: the first step's
// loss (random weights, random tokens) must be within 1 nat of ln V = 10.825, and every loss
// must be finite. A failed check prints `RESULT loss_check=FAIL ...` and makes the exit status 1,
// after the timings (which are still worth having from a GPU that may be lent for minutes).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <lightgpt/cuda.cuh>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_common.cuh"

namespace {

using lightgpt::Cuda;
using Model = lightgpt::GPT<lightgpt::Bf16, lightgpt::DenseHead<>, lightgpt::Attention, Cuda>;
using T = lightgpt::bfloat16;
using O = lightgpt::Ops<Cuda>;
using K = lightgpt::AttentionKernels<Cuda>;

constexpr double kPeakBf16 = 989e12;
constexpr double kInitLossTolerance = 1.0;  // nats from ln V at initialisation

using lightgpt::bench::arg_int;
using lightgpt::bench::Device;
using lightgpt::bench::Timer;

}  // namespace

int main(int argc, char** argv) {
  if (!lightgpt::cuda::device_available()) {
    std::printf("no usable GPU\n");
    return 1;
  }
  const int seq_len = 1024;
  const int max_batch = arg_int(argc, argv, "--batch", 64);
  const int steps = arg_int(argc, argv, "--steps", 10);
  cudaDeviceProp props{};
  LIGHTGPT_CUDA_CHECK(cudaGetDeviceProperties(&props, 0));
  std::printf("RESULT gpu=%s\n", props.name);

  lightgpt::ModelConfig config;
  config.vocab_size = 50257;
  config.max_seq_len = seq_len;
  config.n_layer = 12;
  config.n_head = 12;
  config.d_model = 768;
  const int C = config.d_model, L = config.n_layer, NH = config.n_head;
  const int V = config.vocab_size, Vp = config.padded_vocab_size();

  Model model(config, 1337);
  lightgpt::AdamW<Cuda, float> optimizer(model.parameters().layout());

  // The largest batch that fits: reserve() allocates the whole training arena up front; a
  // failed step (scratch that grows on first use) also counts as not fitting.
  std::mt19937 engine(42);
  std::uniform_int_distribution<int> id(0, V - 1);
  std::vector<std::int32_t> tokens;
  int B = 0;
  float init_loss = 0;
  for (int candidate = max_batch; candidate >= 1; candidate /= 2) {
    try {
      model.reserve(candidate, seq_len);
      tokens.resize(std::size_t(candidate) * (seq_len + 1));
      for (auto& t : tokens) t = id(engine);
      model.zero_grad();
      init_loss = static_cast<float>(model.forward(tokens.data(), candidate, seq_len));
      model.backward();
      optimizer.step(model.parameters(), 6e-4);
      lightgpt::cuda::context().synchronize();
      B = candidate;
      break;
    } catch (const lightgpt::Error& error) {
      std::printf("batch %d does not fit: %s\n", candidate, error.what());
    }
  }
  if (B == 0) return 1;
  const std::size_t tokens_per_step = std::size_t(B) * seq_len;
  std::printf("RESULT batch=%d\n", B);
  // The first step's loss: a model at initialisation predicts close to uniformly, ln V nats.
  const double ln_v = std::log(double(V));
  std::string loss_failure;
  std::printf("RESULT loss_init=%.4f\n", init_loss);
  if (!std::isfinite(init_loss)) {
    loss_failure = "loss at initialisation is " + std::to_string(init_loss);
  } else if (std::fabs(init_loss - ln_v) > kInitLossTolerance) {
    char text[160];
    std::snprintf(text, sizeof text, "loss at initialisation %.4f is %.2f nats from ln V = %.4f",
                  init_loss, std::fabs(init_loss - ln_v), ln_v);
    loss_failure = text;
  }
  if (!loss_failure.empty()) std::fprintf(stderr, "bench_gpt2: FAIL: %s\n", loss_failure.c_str());
  std::fflush(stdout);

  Timer timer;
  float last_loss = 0;
  bool all_finite = true;
  const double step_s = timer.seconds(steps, [&] {
    model.zero_grad();
    last_loss = static_cast<float>(model.forward(tokens.data(), B, seq_len));
    all_finite = all_finite && std::isfinite(last_loss);
    model.backward();
    optimizer.step(model.parameters(), 6e-4);
  });

  // Model FLOPs per token (PaLM's convention): 6 per parameter that multiplies (wte at V rows,
  // not wpe) plus attention's 12·L·C·T (causal masking not discounted).
  const auto& layout = model.parameters().layout();
  const double params =
      double(model.num_parameters()) - double(layout.at("wpe").numel) - double(Vp - V) * C;
  const double flops_per_token = 6.0 * params + 12.0 * L * C * seq_len;
  const double tokens_per_s = tokens_per_step / step_s;
  const double achieved = tokens_per_s * flops_per_token;

  std::printf("RESULT loss_last=%.4f\n", last_loss);
  if (!all_finite && loss_failure.empty()) {
    loss_failure = "a training step's loss is not finite (last " + std::to_string(last_loss) + ")";
    std::fprintf(stderr, "bench_gpt2: FAIL: %s\n", loss_failure.c_str());
  }
  std::printf("RESULT loss_check=%s%s\n",
              loss_failure.empty() ? "ok" : "FAIL: ", loss_failure.c_str());
  std::printf("RESULT step_ms=%.2f\n", step_s * 1e3);
  std::printf("RESULT tokens_per_s=%.0f\n", tokens_per_s);
  std::printf("RESULT model_tflops=%.1f\n", achieved / 1e12);
  std::printf("RESULT mfu_peak=%.3f\n", achieved / kPeakBf16);
  std::fflush(stdout);

  // Where the time goes, each family alone at the step's shapes. Its buffers come on top of the
  // model's, so at the largest batch they may not fit: the figures above stand regardless.
  try {
    // The cuBLASLt rate at the model's GEMM shapes: one step's worth of the layer products
    // (forward and both backward products) and the tied head, timed alone.
    const int N = B * seq_len;
    Device<T> x(std::size_t(N) * 4 * C), y(std::size_t(N) * 4 * C), w(std::size_t(4) * C * C);
    Device<T> logits(std::size_t(N) * Vp), wte(std::size_t(Vp) * C);
    Device<float> dw(std::size_t(Vp) * C);
    x.fill(0.01f), w.fill(0.01f), wte.fill(0.01f), logits.fill(0.001f);
    struct Shape {
      int in, out;
    };
    const Shape shapes[] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};
    double gemm_flops = 0;
    const double gemm_s = timer.seconds(3, [&] {
      for (int layer = 0; layer < L; ++layer) {
        for (const Shape& s : shapes) {
          O::matmul_forward(y.ptr, x.ptr, w.ptr, static_cast<const T*>(nullptr), N, s.in, s.out);
          O::matmul_backward(lightgpt::overwrite(x.ptr), lightgpt::accumulate(dw.ptr),
                             lightgpt::Grad<float>{}, y.ptr, x.ptr, w.ptr, N, s.in, s.out);
        }
      }
      O::matmul_forward(logits.ptr, x.ptr, wte.ptr, static_cast<const T*>(nullptr), N, C, Vp);
      O::matmul_backward(lightgpt::overwrite(x.ptr), lightgpt::accumulate(dw.ptr),
                         lightgpt::Grad<float>{}, logits.ptr, x.ptr, wte.ptr, N, C, Vp);
    });
    for (const Shape& s : shapes) gemm_flops += 6.0 * N * s.in * s.out * L;
    gemm_flops += 6.0 * N * C * Vp;
    const double gemm_rate = gemm_flops / gemm_s;

    // Attention (forward + backward, all layers) alone.
    Device<T> qkv(std::size_t(N) * 3 * C), att(std::size_t(N) * C), dqkv(std::size_t(N) * 3 * C);
    Device<float> lse(std::size_t(N) * NH);
    Device<T> scratch(K::attention_scratch_size<T>(N, seq_len, C, NH));
    qkv.fill(0.01f), att.fill(0.01f);
    const double attention_s = timer.seconds(2, [&] {
      for (int layer = 0; layer < L; ++layer) {
        K::attention_forward(att.ptr, lse.ptr, qkv.ptr, B, seq_len, C, NH, scratch.ptr);
        K::attention_backward(lightgpt::overwrite(dqkv.ptr), att.ptr, qkv.ptr, att.ptr, lse.ptr, B,
                              seq_len, C, NH, scratch.ptr);
      }
    });

    // Element-wise families at the step's shapes: 2L+1 LayerNorms, L GELUs, 2L residual adds (each
    // forward and backward), the embedding and the fused cross-entropy.
    Device<T> a(std::size_t(N) * C), b(std::size_t(N) * C), wc(C);
    Device<float> mean(N), rstd(N), dwc(C), losses(N);
    Device<std::int32_t> ids(std::size_t(N) + B);
    a.fill(0.5f), b.fill(0.25f), wc.fill(1.0f);
    O::copy_from_host(ids.ptr, tokens.data(), ids.count);  // real ids: the embedding scatter sorts
    const double elementwise_s = timer.seconds(2, [&] {
      for (int i = 0; i < 2 * L + 1; ++i) {
        O::layernorm_forward(b.ptr, mean.ptr, rstd.ptr, a.ptr, wc.ptr, wc.ptr, N, C);
        O::layernorm_backward(lightgpt::accumulate(a.ptr), lightgpt::accumulate(dwc.ptr),
                              lightgpt::accumulate(dwc.ptr), b.ptr, a.ptr, wc.ptr, mean.ptr,
                              rstd.ptr, N, C);
      }
      for (int i = 0; i < L; ++i) {
        O::gelu_forward(y.ptr, x.ptr, std::size_t(N) * 4 * C);
        O::gelu_backward(lightgpt::overwrite(y.ptr), y.ptr, x.ptr, std::size_t(N) * 4 * C);
      }
      for (int i = 0; i < 2 * L; ++i) O::residual_forward(b.ptr, a.ptr, b.ptr, std::size_t(N) * C);
      O::embedding_forward(b.ptr, ids.ptr, seq_len + 1, wte.ptr, wte.ptr, B, seq_len, C);
      O::embedding_backward(lightgpt::accumulate(dw.ptr), lightgpt::accumulate(dw.ptr), b.ptr,
                            ids.ptr, seq_len + 1, B, seq_len, C);
      O::row_logsumexp(lse.ptr, logits.ptr, N, V, Vp);
      O::cross_entropy(losses.ptr, lse.ptr, logits.ptr, ids.ptr + 1, seq_len + 1, B, seq_len, Vp);
      const float weight = 1.0f;
      O::cross_entropy_backward_inplace(logits.ptr, lse.ptr, ids.ptr + 1, seq_len + 1, &weight, 1,
                                        1.0f / N, B, seq_len, V, Vp);
    });
    const double optimizer_s = timer.seconds(3, [&] { optimizer.step(model.parameters(), 6e-4); });
    std::printf("RESULT gemm_tflops=%.1f\n", gemm_rate / 1e12);
    std::printf("RESULT mfu_gemm=%.3f\n", achieved / gemm_rate);
    std::printf("RESULT time_gemm_ms=%.2f\n", gemm_s * 1e3);
    std::printf("RESULT time_attention_ms=%.2f\n", attention_s * 1e3);
    std::printf("RESULT time_elementwise_ms=%.2f\n", elementwise_s * 1e3);
    std::printf("RESULT time_optimizer_ms=%.2f\n", optimizer_s * 1e3);
    std::printf("RESULT time_other_ms=%.2f\n",
                (step_s - gemm_s - attention_s - elementwise_s - optimizer_s) * 1e3);
  } catch (const lightgpt::Error& error) {
    std::printf("component timings skipped: %s\n", error.what());
  }
  if (!loss_failure.empty()) {
    std::printf("bench_gpt2: FAIL: %s\n", loss_failure.c_str());
    return 1;
  }
  return 0;
}
