// The AFNO compositions the mixer tests use (instantiated once in instances.cpp), and a harness
// that runs one AfnoMixerImpl on its own: its parameters in a ParameterStore, its activations and
// decoding caches in arenas, exactly as the model binds them.
#pragma once

#include <cstddef>
#include <vector>

#include "instances.hpp"

namespace lightgpt::testing {

using AfnoFp64 = GPT<Fp64, DenseHead<>, AfnoMixer<4>, Cpu>;
using AfnoFp32 = GPT<Fp32, DenseHead<>, AfnoMixer<4>, Cpu>;

template <class P, int NumBlocks>
class AfnoHarness {
 public:
  using Impl = detail::AfnoMixerImpl<Cpu, P, NumBlocks>;
  using T = typename P::storage_t;

  AfnoHarness(const ModelConfig& config, std::size_t positions, std::uint64_t seed)
      : config_(config), store_(make_layout(config)), mixer_(config) {
    store_.initialize(seed);
    mixer_.bind_parameters(store_.layout(), store_.values(), store_.grads());
    ArenaBinder measure;
    bind_all(measure, positions);
    arena_ = Buffer<std::byte, Cpu>(measure.bytes());
    ArenaBinder bind(arena_.data());
    bind_all(bind, positions);
    ArenaBinder measure_decode;
    mixer_.bind_decode(measure_decode);
    decode_arena_ = Buffer<std::byte, Cpu>(measure_decode.bytes());
    ArenaBinder bind_decode(decode_arena_.data());
    mixer_.bind_decode(bind_decode);
  }

  ParameterStore<P, Cpu>& parameters() { return store_; }
  Impl& mixer() { return mixer_; }

  // Replaces every parameter with N(0, scale²) draws (filters and all), so that no part of the
  // mixer sits at a special point of its initialisation.
  void randomize(double scale, std::uint64_t seed) {
    Rng rng(seed);
    for (const TensorInfo& tensor : store_.layout().tensors()) {
      std::vector<T> values(tensor.numel);
      for (T& value : values) value = T(scale * rng.normal());
      store_.write(tensor, values.data());
    }
  }

  std::vector<T> forward(int layer, const std::vector<T>& in, int B, int T_) {
    std::vector<T> out(in.size());
    mixer_.forward(layer, layer, out.data(), in.data(), B, T_, true);
    return out;
  }

  // Backward of the last forward of `layer`; din starts at `din_start` (accumulate) or is
  // overwritten.
  std::vector<T> backward(int layer, const std::vector<T>& dout, const std::vector<T>& in, int B,
                          int T_, Mode mode = Mode::overwrite, T din_start = T(0)) {
    std::vector<T> din(in.size(), din_start);
    mixer_.backward(layer, Grad<T>{din.data(), mode}, dout.data(), in.data(), B, T_);
    return din;
  }

 private:
  static ParameterLayout make_layout(const ModelConfig& config) {
    ParameterLayout layout;
    Impl::declare(layout, config);
    return layout;
  }
  void bind_all(ArenaBinder& bind, std::size_t positions) {
    mixer_.bind_activations(bind, config_.n_layer, positions);
    mixer_.bind_gradients(bind, positions);
  }

  ModelConfig config_;
  ParameterStore<P, Cpu> store_;
  Impl mixer_;
  Buffer<std::byte, Cpu> arena_, decode_arena_;
};

inline std::vector<double> normal_values(std::size_t count, std::uint64_t seed,
                                         double scale = 1.0) {
  Rng rng(seed);
  std::vector<double> values(count);
  for (double& value : values) value = scale * rng.normal();
  return values;
}

}  // namespace lightgpt::testing

LIGHTGPT_DECLARE_GPT(extern, lightgpt::testing::AfnoFp64, Fp64, DenseHead<>, AfnoMixer<4>)
LIGHTGPT_DECLARE_GPT(extern, lightgpt::testing::AfnoFp32, Fp32, DenseHead<>, AfnoMixer<4>)
extern template class lightgpt::detail::AfnoMixerImpl<lightgpt::Cpu, lightgpt::Fp64, 4>;
