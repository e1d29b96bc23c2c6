// The CUDA umbrella compiles under nvcc without Eigen, and the shared per-element math gives the
// same results on the device as on the host.
#include <gtest/gtest.h>

#include <lightgpt/cuda.cuh>
#include <vector>

namespace lightgpt {
namespace {

__global__ void elementwise_kernel(const float* in, float* out, float* grad, bfloat16* rounded,
                                   int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    out[i] = detail::gelu(in[i]);
    grad[i] = detail::gelu_grad(in[i]);
    rounded[i] = detail::float_to_bf16(in[i] * 1.0037f);
  }
}

TEST(CudaDevice, SharedElementwiseMathAndBf16RoundingMatchTheHost) {
  if (!cuda::device_available()) GTEST_SKIP() << "no usable CUDA device";
  const int n = 1000;
  std::vector<float> in(n), out(n), grad(n);
  std::vector<bfloat16> rounded(n);
  for (int i = 0; i < n; ++i) in[i] = -6.0f + 12.0f * i / n;
  float *d_in, *d_out, *d_grad;
  bfloat16* d_rounded;
  LIGHTGPT_CUDA_CHECK(cudaMalloc(&d_rounded, n * sizeof(bfloat16)));
  LIGHTGPT_CUDA_CHECK(cudaMalloc(&d_in, n * sizeof(float)));
  LIGHTGPT_CUDA_CHECK(cudaMalloc(&d_out, n * sizeof(float)));
  LIGHTGPT_CUDA_CHECK(cudaMalloc(&d_grad, n * sizeof(float)));
  LIGHTGPT_CUDA_CHECK(cudaMemcpy(d_in, in.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  elementwise_kernel<<<(n + 255) / 256, 256>>>(d_in, d_out, d_grad, d_rounded, n);
  LIGHTGPT_CUDA_CHECK(cudaGetLastError());
  LIGHTGPT_CUDA_CHECK(cudaMemcpy(out.data(), d_out, n * sizeof(float), cudaMemcpyDeviceToHost));
  LIGHTGPT_CUDA_CHECK(cudaMemcpy(grad.data(), d_grad, n * sizeof(float), cudaMemcpyDeviceToHost));
  LIGHTGPT_CUDA_CHECK(
      cudaMemcpy(rounded.data(), d_rounded, n * sizeof(bfloat16), cudaMemcpyDeviceToHost));
  cudaFree(d_rounded);
  cudaFree(d_in);
  cudaFree(d_out);
  cudaFree(d_grad);
  for (int i = 0; i < n; ++i) {
    EXPECT_NEAR(out[i], detail::gelu(in[i]), 1e-6f) << in[i];
    EXPECT_NEAR(grad[i], detail::gelu_grad(in[i]), 1e-6f) << in[i];
    EXPECT_EQ(rounded[i].bits, detail::float_to_bf16(in[i] * 1.0037f).bits) << in[i];
  }
}

TEST(CudaDevice, ErrorsNameTheCall) {
  try {
    LIGHTGPT_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("cudaErrorInvalidValue"), std::string::npos);
  }
}

}  // namespace
}  // namespace lightgpt
