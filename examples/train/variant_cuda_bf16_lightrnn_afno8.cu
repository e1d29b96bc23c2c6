#include <lightgpt/cuda.cuh>

#include "variants.hpp"

void lightgpt::examples::train_cuda_bf16_lightrnn_afno8(const RunOptions& options) {
  train_composition<GPT<Bf16, LightRnnHead<>, AfnoMixer<8>, Cuda>>(options);
}
