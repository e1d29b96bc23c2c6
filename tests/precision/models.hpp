// 16-bit compositions of the precision tests, instantiated in instances.cpp. Their Fp32 AFNO
// reference, AfnoFp32, is the mixer tests' (instantiated in lightgpt_mixer_instances).
#pragma once

#include "afno_instances.hpp"
#include "instances.hpp"

namespace lightgpt::testing {
using DenseBf16 = GPT<Bf16, DenseHead<>, Attention, Cpu>;
using DenseFp16 = GPT<Fp16, DenseHead<>, Attention, Cpu>;
using Mtp2Bf16 = GPT<Bf16, DenseHead<MTP<2>>, Attention, Cpu>;
using Mtp2Fp32 = GPT<Fp32, DenseHead<MTP<2>>, Attention, Cpu>;
using AfnoBf16 = GPT<Bf16, DenseHead<>, AfnoMixer<4>, Cpu>;
using AfnoFp16 = GPT<Fp16, DenseHead<>, AfnoMixer<4>, Cpu>;
}  // namespace lightgpt::testing

LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::DenseBf16, Bf16, DenseHead<>)
LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::DenseFp16, Fp16, DenseHead<>)
LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::Mtp2Bf16, Bf16, DenseHead<lightgpt::MTP<2>>)
LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::Mtp2Fp32, Fp32, DenseHead<lightgpt::MTP<2>>)
LIGHTGPT_DECLARE_GPT(extern, lightgpt::testing::AfnoBf16, Bf16, DenseHead<>, AfnoMixer<4>)
LIGHTGPT_DECLARE_GPT(extern, lightgpt::testing::AfnoFp16, Fp16, DenseHead<>, AfnoMixer<4>)
