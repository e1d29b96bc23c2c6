// Helpers shared by the CUDA tests: device arrays that upload and download through fp32 (rounding
// to the storage type on the way up), NaN poisoning of outputs, random inputs, the typed-test list
// and the norm-wise comparison of docs/design.md, "Numerics and determinism", against the CPU
// reference.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <lightgpt/cuda.cuh>
#include <random>
#include <string>
#include <vector>

namespace lightgpt::testing {

// Without a usable GPU a CUDA test skips, printing the runtime's reason — unless the environment
// sets LIGHTGPT_REQUIRE_GPU (the GPU check does), where "no GPU" is itself the failure to report.
inline bool gpu_required() { return cuda::environment_flag("LIGHTGPT_REQUIRE_GPU"); }

#define LIGHTGPT_REQUIRE_GPU()                                                           \
  if (::lightgpt::cuda::device_available()) {                                            \
  } else if (::lightgpt::testing::gpu_required())                                        \
    FAIL() << "no usable GPU and LIGHTGPT_REQUIRE_GPU is set: "                          \
           << ::lightgpt::cuda::device_unavailable_reason();                             \
  else                                                                                   \
    GTEST_SKIP() << "no usable GPU: " << ::lightgpt::cuda::device_unavailable_reason()

template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t count) : count_(count) {
    LIGHTGPT_CUDA_CHECK(cudaMalloc(&ptr_, std::max<std::size_t>(count, 1) * sizeof(T)));
    poison();
  }
  explicit DeviceArray(const std::vector<float>& host) : DeviceArray(host.size()) { upload(host); }
  // Values already of the device type (token ids).
  explicit DeviceArray(const std::vector<T>& host) requires(!std::is_same_v<T, float>)
      : DeviceArray(host.size()) {
    Ops<Cuda>::copy_from_host(ptr_, host.data(), host.size());
  }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() { return ptr_; }
  const T* get() const { return ptr_; }
  std::size_t size() const { return count_; }

  void upload(const std::vector<float>& host) {
    std::vector<T> converted(host.size());
    for (std::size_t i = 0; i < host.size(); ++i) converted[i] = T(host[i]);
    Ops<Cuda>::copy_from_host(ptr_, converted.data(), converted.size());
  }
  std::vector<float> download() const {
    std::vector<T> host(count_);
    Ops<Cuda>::copy_to_host(host.data(), ptr_, count_);
    std::vector<float> widened(count_);
    for (std::size_t i = 0; i < count_; ++i) widened[i] = static_cast<float>(host[i]);
    return widened;
  }
  // All bits set: a NaN in fp32, bf16 and fp16 alike, so an unwritten output cannot pass.
  void poison() {
    LIGHTGPT_CUDA_CHECK(cudaMemset(ptr_, 0xff, std::max<std::size_t>(count_, 1) * sizeof(T)));
  }

 private:
  T* ptr_ = nullptr;
  std::size_t count_;
};

// Values in [-scale, scale), never zero, rounded to T and back so the reference sees exactly the
// inputs the GPU sees.
template <class T>
std::vector<float> random_values(std::size_t count, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::vector<float> values(count);
  for (float& x : values) {
    do {
      x = static_cast<float>(T(uniform(engine)));
    } while (x == 0.0f);
  }
  return values;
}

inline std::vector<std::int32_t> random_ids(std::size_t count, int vocab, std::uint32_t seed) {
  std::mt19937 engine(seed);
  std::uniform_int_distribution<int> uniform(0, vocab - 1);
  std::vector<std::int32_t> ids(count);
  for (auto& id : ids) id = uniform(engine);
  return ids;
}

// ‖actual − expected‖₂ / ‖expected‖₂ (infinite when actual has a NaN or expected is all zero).
inline double relative_error(const std::vector<float>& actual, const std::vector<float>& expected) {
  if (actual.size() != expected.size()) return INFINITY;
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    if (!std::isfinite(actual[i])) return INFINITY;
    diff += (double(actual[i]) - expected[i]) * (double(actual[i]) - expected[i]);
    norm += double(expected[i]) * expected[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : (diff == 0 ? 0.0 : INFINITY);
}

// docs/design.md, "Numerics and determinism": values (forward outputs, losses) within 1e-5 for fp32
// without TF32 and 1e-2 for 16-bit storage; gradients within 1e-4 and 5e-2, norm-wise.
template <class T>
constexpr double value_tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-2;
}
template <class T>
constexpr double gradient_tolerance() {
  return std::is_same_v<T, float> ? 1e-4 : 5e-2;
}

#define LIGHTGPT_EXPECT_CLOSE(actual, expected, tolerance) \
  EXPECT_LT(::lightgpt::testing::relative_error((actual), (expected)), (tolerance)) << #actual

using StorageTypes = ::testing::Types<float, bfloat16, float16>;

struct StorageTypeNames {
  template <class T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, float>) return "fp32";
    if constexpr (std::is_same_v<T, bfloat16>) return "bf16";
    return "fp16";
  }
};

// Turns TF32 off for the test (the fp32 tolerances of docs/design.md, "Numerics and determinism"
// assume full fp32 products).
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_available()) cuda::context().set_allow_tf32(false);
  }
  void TearDown() override {
    if (cuda::device_available()) cuda::context().set_allow_tf32(true);
  }
};

}  // namespace lightgpt::testing
