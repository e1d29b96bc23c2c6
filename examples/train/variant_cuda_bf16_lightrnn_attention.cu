#include <lightgpt/cuda.cuh>

#include "variants.hpp"

void lightgpt::examples::train_cuda_bf16_lightrnn_attention(const RunOptions& options) {
  train_composition<GPT<Bf16, LightRnnHead<>, Attention, Cuda>>(options);
}
