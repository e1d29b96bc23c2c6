// The CPU Fp32 reference behind reference_afno.hpp: AfnoKernels<Cpu>, the FFT and AFNO kernels, one
// AfnoMixerImpl<Cpu, Fp32, kAfnoBlocks> on its own, and GPT<Fp32, DenseHead<>,
// AfnoMixer<kAfnoBlocks>, Cpu>. Compiled by the host compiler; the CUDA tests link it.
#include "reference_afno.hpp"

#include <cstddef>
#include <lightgpt/lightgpt.hpp>
#include <lightgpt/testing/mixer_harness.hpp>

namespace lightgpt::testing::reference {
namespace {

using O = Ops<Cpu>;

using K = AfnoKernels<Cpu>;
using AfnoModel = GPT<Fp32, DenseHead<>, AfnoMixer<kAfnoBlocks>, Cpu>;

Grad<float> grad(float* ptr, bool accumulate) {
  return {ptr, accumulate ? Mode::accumulate : Mode::overwrite};
}

void write_all(ParameterStore<Fp32, Cpu>& store, const Parameters& params) {
  const auto& tensors = store.layout().tensors();
  LIGHTGPT_CHECK(params.size() == tensors.size(), "reference: ", params.size(),
                 " parameter tensors given for a layout of ", tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    LIGHTGPT_CHECK(params[i].size() == tensors[i].numel, "reference: tensor ", tensors[i].name,
                   " has ", tensors[i].numel, " values, ", params[i].size(), " given");
    store.write(tensors[i], params[i].data());
  }
}

// One AFNO layer with its parameters, activation arena and decoding cache, bound as the model
// binds them (one layer of activations).
class Layer : public MixerHarness<AfnoMixer<kAfnoBlocks>, Fp32, Cpu> {
 public:
  Layer(const ModelConfig& config, const Parameters& params, std::size_t positions)
      : MixerHarness(config, positions, 0, 1) {
    write_parameters(params);
  }
  ParameterStore<Fp32, Cpu>& store() { return parameters(); }
};

}  // namespace

int fft_length(int T) { return K::fft_length(T); }

void causal_conv_forward(float* y, const float* x, const float* filter, int filter_stride, int B,
                         int T, int C) {
  std::vector<float> scratch(K::causal_conv_scratch_size(T));
  K::causal_conv_forward(y, x, filter, filter_stride, B, T, C, scratch.data(), scratch.size());
}
void causal_conv_backward(float* dx, bool dx_accumulate, float* dfilter, bool dfilter_accumulate,
                          const float* dy, const float* x, const float* filter, int filter_stride,
                          int B, int T, int C) {
  std::vector<float> scratch(K::causal_conv_scratch_size(T));
  K::causal_conv_backward(grad(dx, dx_accumulate), grad(dfilter, dfilter_accumulate), dy, x, filter,
                          filter_stride, B, T, C, scratch.data(), scratch.size());
}
void causal_conv_step(float* y, float* history, int history_stride, const float* x,
                      const float* filter, int filter_stride, int t, int C) {
  K::causal_conv_step<float>(y, history, history_stride, x, filter, filter_stride, t, C);
}

void block_linear_forward(float* out, const float* in, const float* weight, const float* bias,
                          int N, int blocks, int IB, int OB) {
  K::block_linear_forward(out, in, weight, bias, N, blocks, IB, OB);
}
void block_linear_backward(float* din, bool din_accumulate, float* dweight, bool dweight_accumulate,
                           float* dbias, bool dbias_accumulate, const float* dout, const float* in,
                           const float* weight, int N, int blocks, int IB, int OB) {
  K::block_linear_backward(grad(din, din_accumulate), grad(dweight, dweight_accumulate),
                           grad(dbias, dbias_accumulate), dout, in, weight, N, blocks, IB, OB);
}
void sigmoid_gate_forward(float* v, const float* u, const float* gate_pre, std::size_t count) {
  K::sigmoid_gate_forward(v, u, gate_pre, count);
}
void sigmoid_gate_backward(float* du, bool du_accumulate, float* dgate_pre, bool dgate_accumulate,
                           const float* dv, const float* u, const float* gate_pre,
                           std::size_t count) {
  K::sigmoid_gate_backward(grad(du, du_accumulate), grad(dgate_pre, dgate_accumulate), dv, u,
                           gate_pre, count);
}
void shrink_residual_forward(float* out, const float* v, const float* z, double lambda,
                             std::size_t count) {
  K::shrink_residual_forward(out, v, z, lambda, count);
}
void shrink_residual_backward(float* dv, bool dv_accumulate, float* dz, bool dz_accumulate,
                              const float* dout, const float* z, double lambda, std::size_t count) {
  K::shrink_residual_backward(grad(dv, dv_accumulate), grad(dz, dz_accumulate), dout, z, lambda,
                              count);
}

AfnoLayerResult afno_layer(const ModelConfig& config, const Parameters& params,
                           const std::vector<float>& in, const std::vector<float>& dout, int B,
                           int T) {
  Layer layer(config, params, static_cast<std::size_t>(B) * T);
  AfnoLayerResult result;
  result.out.resize(in.size());
  result.din.resize(in.size());
  layer.mixer().forward(0, 0, result.out.data(), in.data(), B, T, true);
  layer.mixer().backward(0, overwrite(result.din.data()), dout.data(), in.data(), B, T);
  for (const TensorInfo& tensor : layer.store().layout().tensors()) {
    result.grads.push_back(layer.store().read_grad(tensor));
  }
  return result;
}

std::vector<std::vector<float>> afno_layer_decode(const ModelConfig& config,
                                                  const Parameters& params,
                                                  const std::vector<float>& in, int positions) {
  Layer layer(config, params, 1);
  const std::size_t C = static_cast<std::size_t>(config.d_model);
  std::vector<std::vector<float>> outputs;
  for (int t = 0; t < positions; ++t) {
    std::vector<float> out(C);
    layer.mixer().decode(0, out.data(), in.data() + t * C, t);
    outputs.push_back(std::move(out));
  }
  return outputs;
}

StepResult afno_training_step(const ModelConfig& config, std::uint64_t seed,
                              const Parameters& params, const std::vector<std::int32_t>& tokens,
                              int B, int T) {
  AfnoModel model(config, seed);
  if (!params.empty()) write_all(model.parameters(), params);
  StepResult result;
  model.zero_grad();
  result.loss = model.forward(tokens.data(), B, T);
  model.backward();
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    result.grads.push_back(model.parameters().read_grad(tensor));
  }
  return result;
}

std::vector<std::vector<float>> afno_decode_log_probs(const ModelConfig& config, std::uint64_t seed,
                                                      const Parameters& params,
                                                      const std::vector<std::int32_t>& sequence) {
  AfnoModel model(config, seed);
  if (!params.empty()) write_all(model.parameters(), params);
  std::vector<std::vector<float>> result;
  model.decode_reset();
  for (std::int32_t id : sequence) {
    const auto log_probs = model.decode(id);
    result.emplace_back(log_probs.begin(), log_probs.end());
  }
  return result;
}

}  // namespace lightgpt::testing::reference
