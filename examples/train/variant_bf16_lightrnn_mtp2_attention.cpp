#include <lightgpt/lightgpt.hpp>

#include "variants.hpp"

void lightgpt::examples::train_bf16_lightrnn_mtp2_attention(const RunOptions& options) {
  train_composition<GPT<Bf16, LightRnnHead<MTP<2>>, Attention, Cpu>>(options);
}
