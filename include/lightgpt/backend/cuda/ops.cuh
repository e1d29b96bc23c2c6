// The CUDA backend's kernel contract: Ops<Cuda> gathers the kernel families, each in its own
// header with the same name as its CPU counterpart, into the one name the model is written
// against.
#pragma once

#include "../../core/backend_tags.hpp"
#include "attention.cuh"
#include "context.cuh"
#include "device.cuh"
#include "fft.cuh"
#include "gemm.cuh"
#include "lightrnn.cuh"
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
                   cuda::FftOps, cuda::AfnoOps,
                   cuda::LossOps,
                   cuda::LightRnnOps,
                   cuda::OptimOps {};

template <>
struct detail::backend_available<Cuda> : std::true_type {};

}  // namespace lightgpt
