#include <lightgpt/lightgpt.hpp>

using Model = lightgpt::GPT<lightgpt::Bf16, lightgpt::DenseHead<>, lightgpt::Attention,
                            lightgpt::Cpu>;
int main() { return sizeof(Model) > 0 ? 0 : 1; }
