// The CUDA umbrella compiles under nvcc without Eigen, and the shared per-element math gives the
// same results on the device as on the host.
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <lightgpt/cuda.cuh>
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "cuda_testing.cuh"

// A user's `using namespace lightgpt;` must leave CUDA's own ::half usable: the library's fp16
// storage type is lightgpt::float16, so `half` below is unambiguous. The directive sits in a
// namespace of its own, where names are looked up as under a global one, so that it reaches
// neither the other test files compiled in the same unit nor nvcc's generated host stubs at the
// end of the unit (they name GoogleTest's `testing::` unqualified, which lightgpt::testing would
// make ambiguous).
namespace user_code {
using namespace lightgpt;
static_assert(std::is_same_v<half, __half>, "::half must stay cuda_fp16.h's type");
static_assert(sizeof(float16) == sizeof(half) && sizeof(bfloat16) == 2);
}  // namespace user_code

namespace lightgpt::testing {
namespace cuda_device {

__global__ void elementwise_kernel(const float* in, float* out, float* grad, bfloat16* rounded,
                                   int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    out[i] = detail::gelu(in[i]);
    grad[i] = detail::gelu_grad(in[i]);
    rounded[i] = detail::float_to_bf16(in[i] * 1.0037f);
  }
}

// |a − b| in units of the last place of max(|b|, 2⁻¹⁰): device tanh/exp may differ from the host's
// by a few ulps, and an absolute bound that is right near 0 is one ulp from failing near |x| ≈ 5,
// where GELU's derivative approaches 1.
float ulps_apart(float a, float b) {
  const float scale = std::max(std::fabs(b), 0x1.0p-10f);
  const float ulp = std::nextafter(scale, INFINITY) - scale;
  return std::fabs(a - b) / ulp;
}

TEST(CudaDevice, SharedElementwiseMathAndBf16RoundingMatchTheHost) {
  LIGHTGPT_REQUIRE_GPU();
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
    EXPECT_LE(ulps_apart(out[i], detail::gelu(in[i])), 16.0f) << in[i];
    EXPECT_LE(ulps_apart(grad[i], detail::gelu_grad(in[i])), 16.0f) << in[i];
    EXPECT_EQ(rounded[i].bits, detail::float_to_bf16(in[i] * 1.0037f).bits) << in[i];
  }
}

// The probe keeps the runtime's own words: a machine without a usable GPU says why (no driver, a
// driver too old for this runtime, no device visible) instead of skipping in silence.
TEST(CudaDevice, UnavailableDeviceKeepsTheRuntimesReason) {
  const std::string& reason = cuda::device_unavailable_reason();
  if (cuda::device_available()) {
    EXPECT_TRUE(reason.empty()) << reason;
  } else {
    EXPECT_NE(reason.find("cudaGetDeviceCount"), std::string::npos) << reason;
    EXPECT_EQ(&reason, &cuda::device_unavailable_reason()) << "probed once per process";
  }
}

// With LIGHTGPT_POISON_ALLOCATIONS set (as the GPU check runs the tests), every new allocation
// reads back as all-ones bytes, so a kernel that reads what nothing wrote sees NaN.
TEST(CudaDevice, PoisonedAllocationsReadBackAsAllOnes) {
  LIGHTGPT_REQUIRE_GPU();
  if (!cuda::poison_allocations()) GTEST_SKIP() << "LIGHTGPT_POISON_ALLOCATIONS is not set";
  const std::size_t bytes = (std::size_t(1) << 20) + 3;
  void* device = Memory<Cuda>::allocate(bytes);
  std::vector<unsigned char> host(bytes, 0);
  LIGHTGPT_CUDA_CHECK(cudaMemcpy(host.data(), device, bytes, cudaMemcpyDeviceToHost));
  Memory<Cuda>::release(device);
  for (std::size_t i = 0; i < bytes; ++i) ASSERT_EQ(host[i], 0xff) << "byte " << i;
}

TEST(CudaDevice, ErrorsNameTheCall) {
  try {
    LIGHTGPT_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("cudaErrorInvalidValue"), std::string::npos);
  }
}

}  // namespace cuda_device
}  // namespace lightgpt::testing
