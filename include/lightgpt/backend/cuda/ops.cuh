// The CUDA backend's kernel contract: Ops<Cuda> gathers the kernel families, each in its own
// header with the same name as its CPU counterpart, into the one name the model is written
// against. Part 1 covers the dense head and attention; the LightRNN head and the AFNO mixer's
// kernels (cuFFT) are not here yet, so those compositions fail to compile on Cuda where they call
// a missing function.
#pragma once

#include "../tags.hpp"
#include "attention.cuh"
#include "context.cuh"
#include "device.cuh"
#include "gemm.cuh"
#include "loss.cuh"
#include "memory.cuh"
#include "norm_act.cuh"
#include "optim.cuh"

namespace lightgpt {

template <>
struct Ops<Cuda> : cuda::MemoryOps,
                   cuda::GemmOps,
                   cuda::NormActOps,
                   cuda::AttentionOps,
                   cuda::LossOps,
                   cuda::OptimOps {};

template <>
struct detail::backend_available<Cuda> : std::true_type {};

}  // namespace lightgpt
