// One nvcc translation unit for the tests of LightRnnHead and AfnoMixer on the GPU. nvcc pays for
// its headers (<lightgpt/cuda.cuh>, CUB, GoogleTest: about 20 CPU s) once per unit, so test_cuda
// compiles its test files as two units of similar cost rather than one each (see unit_core.cu).
#include "test_cuda_lightrnn.cu"
#include "test_cuda_afno.cu"
