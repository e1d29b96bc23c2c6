// lightgpt for CUDA translation units (nvcc). Includes everything that is safe on the device
// side — never Eigen — plus the CUDA backend (Ops<Cuda>, Memory<Cuda>): every head (DenseHead,
// LightRnnHead, with MTP<k> and CoCoNT) and mixer (Attention, AfnoMixer<N>) in Fp32, Bf16 or Fp16,
// each as its policy and its CUDA kernels (cuda.cuh) from its own folder.
#pragma once

#include "backend/cuda/device.cuh"
#include "backend/cuda/ops.cuh"
#include "core/backend_tags.hpp"
#include "core/concepts.hpp"
#include "core/config.hpp"
#include "core/elementwise.hpp"
#include "core/error.hpp"
#include "core/precision.hpp"
#include "heads/lightrnn/codebook.hpp"
#include "heads/dense.hpp"
#include "heads/lightrnn/cuda.cuh"
#include "heads/lightrnn/head.hpp"
#include "heads/mtp.hpp"
#include "loss/bigram.hpp"
#include "loss/cocont.hpp"
#include "mixers/afno/cuda.cuh"
#include "mixers/afno/mixer.hpp"
#include "mixers/attention/cuda.cuh"
#include "mixers/attention/mixer.hpp"
#include "model/gpt.hpp"
#include "optim/adamw.hpp"
#include "optim/schedule.hpp"
