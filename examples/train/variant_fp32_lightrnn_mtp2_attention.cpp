#include <lightgpt/lightgpt.hpp>

#include "variants.hpp"

void lightgpt::examples::train_fp32_lightrnn_mtp2_attention(const RunOptions& options) {
  train_composition<GPT<Fp32, LightRnnHead<MTP<2>>, Attention, Cpu>>(options);
}
