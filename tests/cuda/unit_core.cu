// One nvcc translation unit for the tests of the dense GPT path: the device probe, Ops<Cuda> and
// the attention kernels, the token-embedding backward, a training step's host reads and whole
// GPT<P, DenseHead<>, Attention, Cuda> models. nvcc pays for its headers (<lightgpt/cuda.cuh>,
// CUB, GoogleTest: about 20 CPU s) once per unit, so test_cuda compiles its test files as two
// units of similar cost rather than one each (BENCHMARKS.md, "CI build time"). Tests are written
// in the included files, each self-contained and in its own namespace so that they compile
// together; this file and unit_lightrnn_afno.cu are the only .cu files CMake compiles here.
#include "test_device.cu"
#include "test_cuda_ops.cu"
#include "test_cuda_embedding.cu"
#include "test_cuda_step.cu"
#include "test_cuda_model.cu"
