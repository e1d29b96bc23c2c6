#include "models.hpp"

LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::DenseBf16, Bf16, DenseHead<>)
LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::DenseFp16, Fp16, DenseHead<>)
LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::Mtp2Bf16, Bf16, DenseHead<lightgpt::MTP<2>>)
LIGHTGPT_DECLARE_MODEL(, lightgpt::testing::Mtp2Fp32, Fp32, DenseHead<lightgpt::MTP<2>>)
LIGHTGPT_DECLARE_GPT(, lightgpt::testing::AfnoBf16, Bf16, DenseHead<>, AfnoMixer<4>)
LIGHTGPT_DECLARE_GPT(, lightgpt::testing::AfnoFp16, Fp16, DenseHead<>, AfnoMixer<4>)
