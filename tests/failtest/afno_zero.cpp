#include <lightgpt/lightgpt.hpp>

using Model =
    lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::AfnoMixer<0>, lightgpt::Cpu>;
int main() { return sizeof(Model) > 0 ? 0 : 1; }
