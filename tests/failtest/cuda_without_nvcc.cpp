#include <lightgpt/lightgpt.hpp>

// No backend named: the default is Cuda, which a host compiler cannot build.
using Model = lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention>;
int main() { return sizeof(Model) > 0 ? 0 : 1; }
