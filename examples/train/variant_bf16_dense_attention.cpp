#include <lightgpt/lightgpt.hpp>

#include "variants.hpp"

void lightgpt::examples::train_bf16_dense_attention(const RunOptions& options) {
  train_composition<GPT<Bf16, DenseHead<>, Attention, Cpu>>(options);
}
