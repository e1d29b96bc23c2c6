#include <lightgpt/lightgpt.hpp>

#include "variants.hpp"

void lightgpt::examples::train_fp32_dense_attention(const RunOptions& options) {
  train_composition<GPT<Fp32, DenseHead<>, Attention, Cpu>>(options);
}
