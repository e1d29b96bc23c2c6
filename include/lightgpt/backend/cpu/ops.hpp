// The CPU backend's kernel contract: Ops<Cpu> gathers the kernel families, each defined in its
// own header, into the one name the model is written against.
#pragma once

#include "attention.hpp"
#include "fft.hpp"
#include "gemm.hpp"
#include "lightrnn.hpp"
#include "loss.hpp"
#include "memory.hpp"
#include "norm_act.hpp"
#include "optim.hpp"

namespace lightgpt {

template <>
struct Ops<Cpu> : cpu::MemoryOps,
                  cpu::GemmOps,
                  cpu::NormActOps,
                  cpu::AttentionOps,
                  cpu::FftOps, cpu::AfnoOps,
                  cpu::LossOps,
                  cpu::LightRnnOps,
                  cpu::OptimOps {};

template <>
struct detail::backend_available<Cpu> : std::true_type {};

}  // namespace lightgpt
