// The CPU Fp32 reference for the CUDA AFNO tests, behind the same kind of plain interface as
// reference.hpp: host float buffers in, AfnoKernels<Cpu> (mixers/afno/cpu.hpp) or the CPU AfnoMixer out,
// compiled by the host compiler in reference_afno.cpp so that no .cu file sees Eigen. Outputs
// follow the overwrite/accumulate modes of the GPU calls; null outputs are skipped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <lightgpt/core/config.hpp>
#include <vector>

#include "reference.hpp"

namespace lightgpt::testing::reference {

int fft_length(int T);
void causal_conv_forward(float* y, const float* x, const float* filter, int filter_stride, int B,
                         int T, int C);
void causal_conv_backward(float* dx, bool dx_accumulate, float* dfilter, bool dfilter_accumulate,
                          const float* dy, const float* x, const float* filter, int filter_stride,
                          int B, int T, int C);
void causal_conv_step(float* y, float* history, int history_stride, const float* x,
                      const float* filter, int filter_stride, int t, int C);

void block_linear_forward(float* out, const float* in, const float* weight, const float* bias,
                          int N, int blocks, int IB, int OB);
void block_linear_backward(float* din, bool din_accumulate, float* dweight, bool dweight_accumulate,
                           float* dbias, bool dbias_accumulate, const float* dout, const float* in,
                           const float* weight, int N, int blocks, int IB, int OB);
void sigmoid_gate_forward(float* v, const float* u, const float* gate_pre, std::size_t count);
void sigmoid_gate_backward(float* du, bool du_accumulate, float* dgate_pre, bool dgate_accumulate,
                           const float* dv, const float* u, const float* gate_pre,
                           std::size_t count);
void shrink_residual_forward(float* out, const float* v, const float* z, double lambda,
                             std::size_t count);
void shrink_residual_backward(float* dv, bool dv_accumulate, float* dz, bool dz_accumulate,
                              const float* dout, const float* z, double lambda, std::size_t count);

// The mixer and model runs use AfnoMixer<kAfnoBlocks>.
constexpr int kAfnoBlocks = 8;
// Values of every parameter tensor, in layout order.
using Parameters = std::vector<std::vector<float>>;

// Layer 0 of AfnoMixerImpl<Cpu, Fp32, kAfnoBlocks> for `config` with the given parameters: the
// forward output for in (B, T, C), then the backward of dout: din (overwritten) and the
// parameter gradients (per tensor, accumulated from zero).
struct AfnoLayerResult {
  std::vector<float> out, din;
  Parameters grads;
};
AfnoLayerResult afno_layer(const ModelConfig& config, const Parameters& params,
                           const std::vector<float>& in, const std::vector<float>& dout, int B,
                           int T);
// The same layer decoding one sequence of `positions` inputs (rows of C): its output per position.
std::vector<std::vector<float>> afno_layer_decode(const ModelConfig& config,
                                                  const Parameters& params,
                                                  const std::vector<float>& in, int positions);

// GPT<Fp32, DenseHead<>, AfnoMixer<kAfnoBlocks>, Cpu> built with (config, seed), its parameters
// then replaced by `params` unless that is empty: one training step, and the decode path's
// log P over the V real tokens after each prefix of `sequence`.
StepResult afno_training_step(const ModelConfig& config, std::uint64_t seed,
                              const Parameters& params, const std::vector<std::int32_t>& tokens,
                              int B, int T);
std::vector<std::vector<float>> afno_decode_log_probs(const ModelConfig& config, std::uint64_t seed,
                                                      const Parameters& params,
                                                      const std::vector<std::int32_t>& sequence);

}  // namespace lightgpt::testing::reference
