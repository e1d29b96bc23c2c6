#include "afno_instances.hpp"

LIGHTGPT_DECLARE_GPT(, lightgpt::testing::AfnoFp64, Fp64, DenseHead<>, AfnoMixer<4>)
LIGHTGPT_DECLARE_GPT(, lightgpt::testing::AfnoFp32, Fp32, DenseHead<>, AfnoMixer<4>)
template class lightgpt::detail::AfnoMixerImpl<lightgpt::Cpu, lightgpt::Fp64, 4>;
