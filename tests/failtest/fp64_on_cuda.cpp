#include <lightgpt/lightgpt.hpp>

using Model = lightgpt::GPT<lightgpt::Fp64, lightgpt::DenseHead<>, lightgpt::Attention,
                            lightgpt::Cuda>;
int main() { return sizeof(Model) > 0 ? 0 : 1; }
