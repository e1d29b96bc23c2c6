// lightgpt: GPT-2-family training with variants composed at compile time. This umbrella header
// is for host compilers (g++, clang++) and brings in the CPU backend; CUDA translation units
// include <lightgpt/cuda.cuh> instead (or as well). Each head and mixer comes as its policy
// (head.hpp / mixer.hpp) and its CPU kernels (cpu.hpp) from its own folder.
//
//   using Model = lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention,
//                               lightgpt::Cpu>;
#pragma once

#include "core/concepts.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "core/precision.hpp"
#include "core/rng.hpp"

#include "core/backend_tags.hpp"
#include "backend/cpu/ops.hpp"

#include "heads/dense.hpp"
#include "heads/lightrnn/cpu.hpp"
#include "heads/lightrnn/head.hpp"
#include "heads/mtp.hpp"
#include "loss/bigram.hpp"
#include "loss/cocont.hpp"
#include "mixers/afno/cpu.hpp"
#include "mixers/afno/mixer.hpp"
#include "mixers/attention/cpu.hpp"
#include "mixers/attention/mixer.hpp"
#include "model/gpt.hpp"

#include "optim/adamw.hpp"
#include "optim/schedule.hpp"

#include "io/checkpoint.hpp"
#include "io/llmc.hpp"
