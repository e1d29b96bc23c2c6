#include <lightgpt/lightgpt.hpp>

#include "variants.hpp"

void lightgpt::examples::train_fp32_lightrnn_attention(const RunOptions& options) {
  train_composition<GPT<Fp32, LightRnnHead<>, Attention, Cpu>>(options);
}
