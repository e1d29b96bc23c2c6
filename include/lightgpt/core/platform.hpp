// Macros shared by host and device code. Per-element math that both backends use is marked
// LIGHTGPT_HD so that the CPU tests exercise exactly the code the CUDA kernels run.
#pragma once

#if defined(__CUDACC__)
#define LIGHTGPT_HD __host__ __device__
#else
#define LIGHTGPT_HD
#endif

namespace lightgpt::detail {

// True in a translation unit compiled by nvcc. Constant per TU, but every TU that names a `Cuda`
// model must be compiled by nvcc anyway (see model/gpt.hpp), so no ODR hazard arises.
#if defined(__CUDACC__)
inline constexpr bool compiling_with_nvcc = true;
#else
inline constexpr bool compiling_with_nvcc = false;
#endif

}  // namespace lightgpt::detail
