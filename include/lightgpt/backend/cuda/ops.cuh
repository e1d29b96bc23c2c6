// The CUDA backend's kernel contract: Ops<Cuda> gathers the generic kernel families (memory, GEMM,
// norms and activations, losses, optimizer), each in its own header with the same name as its CPU
// counterpart, into the one name the model is written against. A head's or mixer's own kernels
// live in its folder (heads/<name>/cuda.cuh, mixers/<name>/cuda.cuh).
#pragma once

#include "../../core/backend_tags.hpp"
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
                   cuda::LossOps,
                   cuda::OptimOps {};

template <>
struct detail::backend_available<Cuda> : std::true_type {};

}  // namespace lightgpt
