// lightgpt for CUDA translation units (nvcc). Includes everything that is safe on the device
// side — never Eigen — plus the CUDA backend (Ops<Cuda>, Memory<Cuda>). Part 1 of the backend
// covers GPT<Fp32|Bf16|Fp16, DenseHead<MTP<k>>, Attention>; the LightRNN head and the AFNO mixer
// have no CUDA kernels yet.
#pragma once

#include "backend/cuda/device.cuh"
#include "backend/cuda/ops.cuh"
#include "backend/tags.hpp"
#include "core/concepts.hpp"
#include "core/config.hpp"
#include "core/elementwise.hpp"
#include "core/error.hpp"
#include "core/precision.hpp"
#include "heads/dense.hpp"
#include "heads/mtp.hpp"
#include "mixers/attention.hpp"
#include "model/gpt.hpp"
#include "optim/adamw.hpp"
#include "optim/schedule.hpp"
