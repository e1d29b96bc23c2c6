// The AFNO compositions the mixer tests use (instantiated once in instances.cpp), and the mixer
// alone through lightgpt/testing/mixer_harness.hpp.
#pragma once

#include <cstddef>
#include <lightgpt/testing/mixer_harness.hpp>
#include <vector>

#include "instances.hpp"

namespace lightgpt::testing {

using AfnoFp64 = GPT<Fp64, DenseHead<>, AfnoMixer<4>, Cpu>;
using AfnoFp32 = GPT<Fp32, DenseHead<>, AfnoMixer<4>, Cpu>;

// One AfnoMixer<NumBlocks> alone, with activations and decoding caches for every layer.
template <class P, int NumBlocks>
struct AfnoHarness : MixerHarness<AfnoMixer<NumBlocks>, P, Cpu> {
  AfnoHarness(const ModelConfig& config, std::size_t positions, std::uint64_t seed)
      : MixerHarness<AfnoMixer<NumBlocks>, P, Cpu>(config, positions, seed, config.n_layer,
                                                   config.n_layer) {}
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
