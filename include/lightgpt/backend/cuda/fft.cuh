// AFNO mixer kernels on the GPU (the formulas of backend/cpu/fft.hpp), FFTs through cuFFT.
#pragma once

namespace lightgpt::cuda {

struct FftOps {};
struct AfnoOps {};

}  // namespace lightgpt::cuda
