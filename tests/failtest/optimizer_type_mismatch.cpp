// An fp32 optimizer stepping an Fp64 model: a static_assert names the mismatch and the fix.
#include <lightgpt/lightgpt.hpp>

using Model = lightgpt::GPT<lightgpt::Fp64, lightgpt::DenseHead<>, lightgpt::Attention,
                            lightgpt::Cpu>;
int main() {
  lightgpt::ModelConfig config;
  Model model(config, 1);
  lightgpt::AdamW<lightgpt::Cpu, float> optimizer(model.parameters().layout());
  optimizer.step(model.parameters(), 1e-3);
}
