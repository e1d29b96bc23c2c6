// The compile-time compositions built into the `train` binary. Each is instantiated in its own
// translation unit (variant_*.cpp for the CPU, variant_cuda_*.cu for the GPU), so they compile in
// parallel; adding one is a new file with one line, a declaration here and a row in the menu of
// main.cpp. A variant file includes its backend (<lightgpt/lightgpt.hpp> or <lightgpt/cuda.cuh>)
// before this header, which itself needs no backend.
#pragma once

#include "train.hpp"

namespace lightgpt::examples {

void train_fp32_dense_attention(const RunOptions&);
void train_fp32_lightrnn_attention(const RunOptions&);
void train_fp32_lightrnn_mtp2_attention(const RunOptions&);
void train_fp32_lightrnn_afno8(const RunOptions&);
void train_bf16_dense_attention(const RunOptions&);
void train_bf16_lightrnn_attention(const RunOptions&);
void train_bf16_lightrnn_mtp2_attention(const RunOptions&);
// Backend Cuda (variant_cuda_*.cu), built when the build found nvcc.
void train_cuda_bf16_dense_attention(const RunOptions&);
void train_cuda_bf16_lightrnn_attention(const RunOptions&);
void train_cuda_bf16_lightrnn_mtp2_attention(const RunOptions&);
void train_cuda_bf16_lightrnn_afno8(const RunOptions&);

}  // namespace lightgpt::examples
