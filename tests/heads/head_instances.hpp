// The LightRNN compositions the head tests use, instantiated once in instances.cpp; the dense
// compositions come from the shared tests/instances.hpp.
#pragma once

#include "instances.hpp"

namespace lightgpt::testing {

using LightRnnFp32 = GPT<Fp32, LightRnnHead<>, Attention, Cpu>;
using LightRnnFp64 = GPT<Fp64, LightRnnHead<>, Attention, Cpu>;
using LightRnnMtp2Fp64 = GPT<Fp64, LightRnnHead<MTP<2>>, Attention, Cpu>;
using LightRnnMtp3Fp64 = GPT<Fp64, LightRnnHead<MTP<3>>, Attention, Cpu>;
using LightRnnMtp2Fp32 = GPT<Fp32, LightRnnHead<MTP<2>>, Attention, Cpu>;
using LightRnnMtp2Bf16 = GPT<Bf16, LightRnnHead<MTP<2>>, Attention, Cpu>;

}  // namespace lightgpt::testing

LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::LightRnnFp32, Fp32, LightRnnHead<>)
LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::LightRnnFp64, Fp64, LightRnnHead<>)
LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::LightRnnMtp2Fp64, Fp64,
                       LightRnnHead<lightgpt::MTP<2>>)
LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::LightRnnMtp3Fp64, Fp64,
                       LightRnnHead<lightgpt::MTP<3>>)
LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::LightRnnMtp2Fp32, Fp32,
                       LightRnnHead<lightgpt::MTP<2>>)
LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::LightRnnMtp2Bf16, Bf16,
                       LightRnnHead<lightgpt::MTP<2>>)
