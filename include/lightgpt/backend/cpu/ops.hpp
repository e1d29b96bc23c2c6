// The CPU backend's kernel contract: Ops<Cpu> gathers the generic kernel families (memory, GEMM,
// norms and activations, losses, optimizer), each defined in its own header, into the one name
// the model is written against. A head's or mixer's own kernels live in its folder
// (heads/<name>/cpu.hpp, mixers/<name>/cpu.hpp) and are reached through its own trait.
#pragma once

#include "gemm.hpp"
#include "loss.hpp"
#include "memory.hpp"
#include "norm_act.hpp"
#include "optim.hpp"

namespace lightgpt {

template <>
struct Ops<Cpu> : cpu::MemoryOps,
                  cpu::GemmOps,
                  cpu::NormActOps,
                  cpu::LossOps,
                  cpu::OptimOps {};

template <>
struct detail::backend_available<Cpu> : std::true_type {};

}  // namespace lightgpt
