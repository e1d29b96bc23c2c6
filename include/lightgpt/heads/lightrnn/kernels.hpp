// LightRnnHead's kernel contract: the kernel family its impl calls through `using K =
// LightRnnKernels<Backend>;`. The primary template is declared and never defined, like
// Ops<Backend>: each backend's kernel file in this folder specialises it (cpu.hpp for Cpu, cuda.cuh
// for Cuda), so a backend whose kernel file was not included fails to compile where the part is
// used. Generic kernels stay in Ops<Backend>.
#pragma once

#include "../../core/backend_tags.hpp"

namespace lightgpt {

template <class Backend>
struct LightRnnKernels;

}  // namespace lightgpt
