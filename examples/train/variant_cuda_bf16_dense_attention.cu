#include <lightgpt/cuda.cuh>

#include "variants.hpp"

void lightgpt::examples::train_cuda_bf16_dense_attention(const RunOptions& options) {
  train_composition<GPT<Bf16, DenseHead<>, Attention, Cuda>>(options);
}
