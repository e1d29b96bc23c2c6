// LightRNN head kernels on the GPU (the formulas of backend/cpu/lightrnn.hpp).
#pragma once

namespace lightgpt::cuda {

struct LightRnnOps {};

}  // namespace lightgpt::cuda
