#include <lightgpt/lightgpt.hpp>

#include "variants.hpp"

void lightgpt::examples::train_fp32_lightrnn_afno8(const RunOptions& options) {
  train_composition<GPT<Fp32, LightRnnHead<>, AfnoMixer<8>, Cpu>>(options);
}
