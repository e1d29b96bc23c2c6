// Every op of Ops<Cuda> and AttentionKernels<Cuda> that the dense head, attention, the trunk and
// AdamW call, against the CPU Fp32 reference (reference.hpp), for fp32, bf16 and fp16 storage.
// Inputs are random and never zero; every output is poisoned (NaN) before the GPU call, or holds
// random values where the op accumulates, so unwritten elements and wrong modes fail. Tolerances:
// docs/design.md, "Numerics and determinism". Also: batched products whose strides break 16-byte
// alignment, the attention mixer below max_seq_len with its scratch sized by the batch's T (and,
// without a GPU, the size arithmetic itself), fp16 attention gradients small enough to be
// subnormal, and decoding against the full forward.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <lightgpt/testing/mixer_harness.hpp>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda_testing.cuh"
#include "reference.hpp"

namespace lightgpt::testing {
namespace cuda_ops {

using O = Ops<Cuda>;

using K = AttentionKernels<Cuda>;
namespace ref = reference;

template <class T>
class CudaOps : public CudaTest {};
TYPED_TEST_SUITE(CudaOps, StorageTypes, StorageTypeNames);

// ---------------------------------------------------------------------------------------- GEMM

// Bias aligned (the cuBLASLt epilogue), misaligned by one element (the separate bias kernel),
// absent, and aligned at another address (the cached plan of the first variant holds the first
// bias pointer, so it must not serve this call).
TYPED_TEST(CudaOps, MatmulForwardWithAndWithoutBias) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int N = 37, IC = 64, OC = 96;
  const auto in = random_values<T>(std::size_t(N) * IC, 1);
  const auto weight = random_values<T>(std::size_t(OC) * IC, 2, 0.2f);
  const auto bias = random_values<T>(OC + 16, 3);
  DeviceArray<T> d_in(in), d_weight(weight), d_bias(bias), d_out(std::size_t(N) * OC);
  const int offsets[4] = {0, 1, -1, 16};
  for (int variant = 0; variant < 4; ++variant) {
    const int offset = offsets[variant];
    const float* host_bias = offset < 0 ? nullptr : bias.data() + offset;
    const T* device_bias = offset < 0 ? nullptr : d_bias.get() + offset;
    std::vector<float> expected(std::size_t(N) * OC);
    ref::matmul_forward(expected.data(), in.data(), weight.data(), host_bias, N, IC, OC);
    d_out.poison();
    O::matmul_forward(d_out.get(), d_in.get(), d_weight.get(), device_bias, N, IC, OC);
    EXPECT_LT(relative_error(d_out.download(), expected), value_tolerance<T>())
        << "variant " << variant;
  }
}

// Both mode combinations the model uses; N large enough for several row chunks in the bias sum.
TYPED_TEST(CudaOps, MatmulBackwardOverwritesAndAccumulates) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int N = 300, IC = 48, OC = 80;
  const auto dout = random_values<T>(std::size_t(N) * OC, 4);
  const auto in = random_values<T>(std::size_t(N) * IC, 5);
  const auto weight = random_values<T>(std::size_t(OC) * IC, 6, 0.2f);
  DeviceArray<T> d_dout(dout), d_in(in), d_weight(weight);
  for (bool first_mode : {false, true}) {
    const bool din_acc = !first_mode, param_acc = first_mode;
    auto din = random_values<T>(std::size_t(N) * IC, 7);
    auto dweight = random_values<float>(std::size_t(OC) * IC, 8);
    auto dbias = random_values<float>(OC, 9);
    DeviceArray<T> d_din(din);
    DeviceArray<float> d_dweight(dweight), d_dbias(dbias);
    if (!din_acc) d_din.poison();
    if (!param_acc) {
      d_dweight.poison();
      d_dbias.poison();
    }
    ref::matmul_backward(din.data(), din_acc, dweight.data(), param_acc, dbias.data(), param_acc,
                         dout.data(), in.data(), weight.data(), N, IC, OC);
    O::matmul_backward(Grad<T>{d_din.get(), din_acc ? Mode::accumulate : Mode::overwrite},
                       Grad<float>{d_dweight.get(), param_acc ? Mode::accumulate : Mode::overwrite},
                       Grad<float>{d_dbias.get(), param_acc ? Mode::accumulate : Mode::overwrite},
                       d_dout.get(), d_in.get(), d_weight.get(), N, IC, OC);
    EXPECT_LT(relative_error(d_din.download(), din), gradient_tolerance<T>()) << first_mode;
    EXPECT_LT(relative_error(d_dweight.download(), dweight), gradient_tolerance<T>()) << first_mode;
    EXPECT_LT(relative_error(d_dbias.download(), dbias), gradient_tolerance<T>()) << first_mode;
  }
}

// Strided-batched products (as attention and AFNO issue them) whose leading dimensions and batch
// strides are odd element counts, so no matrix after the first is 16-byte aligned, with the
// operands' base pointers one element past an aligned address; each batch entry against the CPU.
TYPED_TEST(CudaOps, BatchedGemmWithUnalignedStrides) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int batch = 3, M = 13, N = 7, K = 5;
  const std::int64_t stride_a = M * K + 2, stride_b = N * K + 2, stride_c = M * N + 2;
  const auto a = random_values<T>(1 + batch * stride_a, 14);
  const auto b = random_values<T>(1 + batch * stride_b, 15);
  DeviceArray<T> d_a(a), d_b(b), d_c(1 + batch * stride_c);
  cuda::GemmCall call;
  call.trans_b = true;  // C = A · Bᵀ, B stored [N, K] as a weight
  call.M = M, call.N = N, call.K = K;
  call.A = d_a.get() + 1, call.a_type = cuda::data_type<T>(), call.lda = K;
  call.stride_a = stride_a;
  call.B = d_b.get() + 1, call.b_type = cuda::data_type<T>(), call.ldb = K;
  call.stride_b = stride_b;
  call.C = d_c.get() + 1, call.c_type = cuda::data_type<T>(), call.ldc = N;
  call.stride_c = stride_c;
  call.batch = batch;
  cuda::gemm(call);
  const auto c = d_c.download();
  for (int i = 0; i < batch; ++i) {
    std::vector<float> expected(std::size_t(M) * N);
    ref::matmul_forward(expected.data(), a.data() + 1 + i * stride_a, b.data() + 1 + i * stride_b,
                        nullptr, M, K, N);
    const std::vector<float> actual(c.begin() + 1 + i * stride_c,
                                    c.begin() + 1 + i * stride_c + M * N);
    EXPECT_LT(relative_error(actual, expected), value_tolerance<T>()) << "batch entry " << i;
  }
  // The element before the first matrix and the gaps between them stay untouched (NaN).
  for (std::size_t j = 0; j < c.size(); ++j) {
    const bool inside = j >= 1 && (j - 1) % stride_c < std::size_t(M) * N;
    if (!inside) EXPECT_TRUE(std::isnan(c[j])) << "element " << j;
  }
}

// Only the input gradient (the head's call passes no bias gradient).
TYPED_TEST(CudaOps, MatmulBackwardSkipsNullOutputs) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int N = 20, IC = 32, OC = 128;
  const auto dout = random_values<T>(std::size_t(N) * OC, 10);
  const auto in = random_values<T>(std::size_t(N) * IC, 11);
  const auto weight = random_values<T>(std::size_t(OC) * IC, 12);
  std::vector<float> din(std::size_t(N) * IC), dweight = random_values<float>(OC * IC, 13);
  DeviceArray<T> d_dout(dout), d_in(in), d_weight(weight), d_din(din.size());
  DeviceArray<float> d_dweight(dweight);
  ref::matmul_backward(din.data(), false, dweight.data(), true, nullptr, false, dout.data(),
                       in.data(), weight.data(), N, IC, OC);
  O::matmul_backward(overwrite(d_din.get()), accumulate(d_dweight.get()), Grad<float>{},
                     d_dout.get(), d_in.get(), d_weight.get(), N, IC, OC);
  EXPECT_LT(relative_error(d_din.download(), din), gradient_tolerance<T>());
  EXPECT_LT(relative_error(d_dweight.download(), dweight), gradient_tolerance<T>());
}

// ------------------------------------------------------------------------ LayerNorm, GELU, add

TYPED_TEST(CudaOps, LayerNormForward) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int N = 50, C = 96;
  const auto in = random_values<T>(std::size_t(N) * C, 14, 2.0f);
  const auto weight = random_values<T>(C, 15), bias = random_values<T>(C, 16);
  std::vector<float> out(std::size_t(N) * C), mean(N), rstd(N);
  ref::layernorm_forward(out.data(), mean.data(), rstd.data(), in.data(), weight.data(),
                         bias.data(), N, C);
  DeviceArray<T> d_in(in), d_weight(weight), d_bias(bias), d_out(out.size());
  DeviceArray<float> d_mean(N), d_rstd(N);
  O::layernorm_forward(d_out.get(), d_mean.get(), d_rstd.get(), d_in.get(), d_weight.get(),
                       d_bias.get(), N, C);
  EXPECT_LT(relative_error(d_out.download(), out), value_tolerance<T>());
  EXPECT_LT(relative_error(d_mean.download(), mean), 1e-5);
  EXPECT_LT(relative_error(d_rstd.download(), rstd), 1e-5);
  // Inference: no statistics.
  d_out.poison();
  O::layernorm_forward(d_out.get(), static_cast<float*>(nullptr), static_cast<float*>(nullptr),
                       d_in.get(), d_weight.get(), d_bias.get(), N, C);
  EXPECT_LT(relative_error(d_out.download(), out), value_tolerance<T>());
}

TYPED_TEST(CudaOps, LayerNormBackwardAccumulates) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int N = 300, C = 72;
  const auto in = random_values<T>(std::size_t(N) * C, 17, 2.0f);
  const auto weight = random_values<T>(C, 18), bias = random_values<T>(C, 19);
  const auto dout = random_values<T>(std::size_t(N) * C, 20);
  std::vector<float> out(std::size_t(N) * C), mean(N), rstd(N);
  ref::layernorm_forward(out.data(), mean.data(), rstd.data(), in.data(), weight.data(),
                         bias.data(), N, C);
  auto din = random_values<T>(std::size_t(N) * C, 21);
  auto dweight = random_values<float>(C, 22), dbias = random_values<float>(C, 23);
  DeviceArray<T> d_in(in), d_weight(weight), d_dout(dout), d_din(din);
  DeviceArray<float> d_mean(mean), d_rstd(rstd), d_dweight(dweight), d_dbias(dbias);
  ref::layernorm_backward(din.data(), true, dweight.data(), dbias.data(), true, dout.data(),
                          in.data(), weight.data(), mean.data(), rstd.data(), N, C);
  O::layernorm_backward(accumulate(d_din.get()), accumulate(d_dweight.get()),
                        accumulate(d_dbias.get()), d_dout.get(), d_in.get(), d_weight.get(),
                        d_mean.get(), d_rstd.get(), N, C);
  EXPECT_LT(relative_error(d_din.download(), din), gradient_tolerance<T>());
  EXPECT_LT(relative_error(d_dweight.download(), dweight), gradient_tolerance<T>());
  EXPECT_LT(relative_error(d_dbias.download(), dbias), gradient_tolerance<T>());
}

TYPED_TEST(CudaOps, GeluForwardBackwardInPlaceAndResidual) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const std::size_t count = 10007;
  const auto in = random_values<T>(count, 24, 4.0f), other = random_values<T>(count, 25);
  const auto dout = random_values<T>(count, 26);
  std::vector<float> out(count), din(dout), sum(count);
  ref::gelu_forward(out.data(), in.data(), count);
  ref::gelu_backward(din.data(), false, din.data(), in.data(), count);
  ref::residual_forward(sum.data(), in.data(), other.data(), count);
  DeviceArray<T> d_in(in), d_other(other), d_out(count), d_grad(dout), d_sum(count);
  O::gelu_forward(d_out.get(), d_in.get(), count);
  O::gelu_backward(overwrite(d_grad.get()), d_grad.get(), d_in.get(), count);  // as the model
  O::residual_forward(d_sum.get(), d_in.get(), d_other.get(), count);
  EXPECT_LT(relative_error(d_out.download(), out), value_tolerance<T>());
  EXPECT_LT(relative_error(d_grad.download(), din), gradient_tolerance<T>());
  EXPECT_LT(relative_error(d_sum.download(), sum), value_tolerance<T>());
  // Accumulating backward; in-place residual (out aliases a), as the MTP adapters call it.
  auto acc = random_values<T>(count, 27);
  DeviceArray<T> d_acc(acc);
  ref::gelu_backward(acc.data(), true, dout.data(), in.data(), count);
  d_grad.upload(dout);
  O::gelu_backward(accumulate(d_acc.get()), d_grad.get(), d_in.get(), count);
  EXPECT_LT(relative_error(d_acc.download(), acc), gradient_tolerance<T>());
  O::residual_forward(d_in.get(), d_in.get(), d_other.get(), count);
  EXPECT_LT(relative_error(d_in.download(), sum), value_tolerance<T>());
}

// The same mask as the CPU's (a hash of seed and index), in place and out of place; fp32 values
// are bit-identical, and every storage type zeroes exactly the CPU's elements.
TYPED_TEST(CudaOps, DropoutDrawsTheCpuMask) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const std::size_t count = 100003;
  const auto in = random_values<T>(count, 31);
  std::vector<float> expected(count);
  ref::dropout(expected.data(), in.data(), count, 0.3, 77);
  DeviceArray<T> d_in(in), d_out(count);
  O::dropout(d_out.get(), d_in.get(), count, 0.3, 77);
  O::dropout(d_in.get(), d_in.get(), count, 0.3, 77);
  const auto out = d_out.download(), in_place = d_in.download();
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_EQ(out[i] == 0.0f, expected[i] == 0.0f) << i;
    ASSERT_EQ(in_place[i], out[i]) << i;
  }
  if constexpr (std::is_same_v<T, float>) EXPECT_EQ(out, expected);
  EXPECT_LT(relative_error(out, expected), value_tolerance<T>());
}

// ------------------------------------------------------------------------------------ Embedding

// Repeated tokens (a small id range) and a row stride longer than T, as in a training window.
TYPED_TEST(CudaOps, EmbeddingForwardAndDeterministicBackward) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int V = 40, B = 3, seq_len = 7, C = 48, row_stride = 9;
  std::vector<std::int32_t> tokens = random_ids(std::size_t(B) * row_stride, 10, 28);
  const auto wte = random_values<T>(std::size_t(V) * C, 29);
  const auto wpe = random_values<T>(std::size_t(seq_len) * C, 30);
  const auto dout = random_values<T>(std::size_t(B) * seq_len * C, 31);
  std::vector<float> out(std::size_t(B) * seq_len * C);
  ref::embedding_forward(out.data(), tokens.data(), row_stride, wte.data(), wpe.data(), B, seq_len,
                         C);
  DeviceArray<std::int32_t> d_tokens(tokens);
  DeviceArray<T> d_wte(wte), d_wpe(wpe), d_out(out.size()), d_dout(dout);
  O::embedding_forward(d_out.get(), d_tokens.get(), row_stride, d_wte.get(), d_wpe.get(), B,
                       seq_len, C);
  EXPECT_LT(relative_error(d_out.download(), out), value_tolerance<T>());

  auto dwte = random_values<float>(std::size_t(V) * C, 32);
  auto dwpe = random_values<float>(std::size_t(seq_len) * C, 33);
  DeviceArray<float> d_dwte(dwte), d_dwpe(dwpe);
  ref::embedding_backward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), row_stride, B,
                          seq_len, C);
  O::embedding_backward(accumulate(d_dwte.get()), accumulate(d_dwpe.get()), d_dout.get(),
                        d_tokens.get(), row_stride, B, seq_len, C);
  const auto first_dwte = d_dwte.download();
  EXPECT_LT(relative_error(first_dwte, dwte), gradient_tolerance<T>());
  EXPECT_LT(relative_error(d_dwpe.download(), dwpe), gradient_tolerance<T>());
  // Deterministic: the same accumulation again from the same start gives the same bits.
  DeviceArray<float> again(random_values<float>(std::size_t(V) * C, 32));
  O::embedding_backward(accumulate(again.get()), accumulate(d_dwpe.get()), d_dout.get(),
                        d_tokens.get(), row_stride, B, seq_len, C);
  EXPECT_EQ(again.download(), first_dwte);
}

// ------------------------------------------------------------------------------------ Attention

struct AttentionShape {
  int B, T, C, NH;
};

template <class T>
void check_attention(const AttentionShape& s, std::uint32_t seed) {
  const std::size_t positions = std::size_t(s.B) * s.T;
  const auto qkv = random_values<T>(positions * 3 * s.C, seed, 1.5f);
  const auto dout = random_values<T>(positions * s.C, seed + 1);
  std::vector<float> out(positions * s.C), lse(positions * s.NH);
  ref::attention_forward(out.data(), lse.data(), qkv.data(), s.B, s.T, s.C, s.NH);
  std::vector<float> dqkv(positions * 3 * s.C);
  ref::attention_backward(dqkv.data(), false, dout.data(), qkv.data(), out.data(), lse.data(), s.B,
                          s.T, s.C, s.NH);

  DeviceArray<T> d_qkv(qkv), d_dout(dout), d_out(out.size()), d_dqkv(dqkv.size());
  DeviceArray<float> d_lse(lse.size());
  // Scratch of exactly the size this call asks for (NaN-poisoned).
  DeviceArray<T> scratch(K::attention_scratch_size<T>(positions, s.T, s.C, s.NH));
  K::attention_forward(d_out.get(), d_lse.get(), d_qkv.get(), s.B, s.T, s.C, s.NH, scratch.get());
  const auto gpu_out = d_out.download();
  EXPECT_LT(relative_error(gpu_out, out), value_tolerance<T>());
  EXPECT_LT(relative_error(d_lse.download(), lse), 1e-5);

  // Backward from the GPU's own forward (as in training), overwrite then accumulate.
  K::attention_backward(overwrite(d_dqkv.get()), d_dout.get(), d_qkv.get(), d_out.get(),
                        d_lse.get(), s.B, s.T, s.C, s.NH, scratch.get());
  EXPECT_LT(relative_error(d_dqkv.download(), dqkv), gradient_tolerance<T>());
  auto acc = random_values<T>(dqkv.size(), seed + 2);
  d_dqkv.upload(acc);
  ref::attention_backward(acc.data(), true, dout.data(), qkv.data(), out.data(), lse.data(), s.B,
                          s.T, s.C, s.NH);
  K::attention_backward(accumulate(d_dqkv.get()), d_dout.get(), d_qkv.get(), d_out.get(),
                        d_lse.get(), s.B, s.T, s.C, s.NH, scratch.get());
  EXPECT_LT(relative_error(d_dqkv.download(), acc), gradient_tolerance<T>());

  // Inference forward: no log-sum-exps.
  d_out.poison();
  K::attention_forward(d_out.get(), static_cast<float*>(nullptr), d_qkv.get(), s.B, s.T, s.C, s.NH,
                       scratch.get());
  EXPECT_LT(relative_error(d_out.download(), out), value_tolerance<T>());
}

// T = 13: score rows of 52 bytes and batch strides of 676, so no score matrix after the first is
// 16-byte aligned for the batched products.
TYPED_TEST(CudaOps, AttentionSmallHeads) {
  LIGHTGPT_REQUIRE_GPU();
  check_attention<TypeParam>({2, 13, 64, 4}, 40);
}
// T = 70 > 64 (rows longer than two warp strides; 280-byte score rows), hs = 32.
TYPED_TEST(CudaOps, AttentionLongerRows) {
  LIGHTGPT_REQUIRE_GPU();
  check_attention<TypeParam>({3, 70, 96, 3}, 50);
}

// fp16 gradients small enough that dS = P∘(dP − <dy, y>)·scale lies in fp16's subnormal range
// (dy within ±1e-4, most of it subnormal itself). The CPU computes P and dS in fp32 and rounds
// dq | dk | dv once; the GPU must round alike, so the comparison is against the CPU's fp16 result
// (the fp32 reference rounded to fp16, from the same fp16 output y and log-sum-exps) at 1e-3.
// Rounding P and dS to fp16 instead gives about 5e-3 here, the fp32-exact path about 5e-5.
class CudaAttentionFp16 : public CudaTest {};
TEST_F(CudaAttentionFp16, SmallGradientsKeepTheirBits) {
  LIGHTGPT_REQUIRE_GPU();
  const AttentionShape s{2, 70, 96, 3};
  const std::size_t positions = std::size_t(s.B) * s.T;
  const auto qkv = random_values<float16>(positions * 3 * s.C, 55, 1.5f);
  const auto dout = random_values<float16>(positions * s.C, 56, 1e-4f);
  std::vector<float> out(positions * s.C), lse(positions * s.NH);
  ref::attention_forward(out.data(), lse.data(), qkv.data(), s.B, s.T, s.C, s.NH);
  for (float& y : out) y = static_cast<float>(float16(y));  // the stored forward output
  std::vector<float> expected(positions * 3 * s.C);
  ref::attention_backward(expected.data(), false, dout.data(), qkv.data(), out.data(), lse.data(),
                          s.B, s.T, s.C, s.NH);
  for (float& g : expected) g = static_cast<float>(float16(g));

  DeviceArray<float16> d_qkv(qkv), d_dout(dout), d_out(out), d_dqkv(expected.size());
  DeviceArray<float> d_lse(lse);
  DeviceArray<float16> scratch(K::attention_scratch_size<float16>(positions, s.T, s.C, s.NH));
  K::attention_backward(overwrite(d_dqkv.get()), d_dout.get(), d_qkv.get(), d_out.get(),
                        d_lse.get(), s.B, s.T, s.C, s.NH, scratch.get());
  EXPECT_LT(relative_error(d_dqkv.download(), expected), 1e-3);
}

template <class T>
using PrecisionOf = std::conditional_t<std::is_same_v<T, float>, Fp32,
                                       std::conditional_t<std::is_same_v<T, bfloat16>, Bf16, Fp16>>;

// The mixer at T = 13 and 40 with max_seq_len = 256: output, input and parameter gradients against
// the CPU; its scratch is what the largest call's (B·T, T) needs — grown by the longer call, kept
// for the shorter one after it — far below what max_seq_len would ask for.
TYPED_TEST(CudaOps, AttentionMixerBelowMaxSeqLen) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  ModelConfig config;
  config.n_layer = 1;
  config.d_model = 64;
  config.n_head = 4;
  config.max_seq_len = 256;
  const int C = config.d_model, NH = config.n_head;
  MixerHarness<Attention, PrecisionOf<T>, Cuda> layer(config, 40, 0, 1);
  std::vector<std::vector<float>> params;
  for (const TensorInfo& tensor : layer.parameters().layout().tensors()) {
    params.push_back(random_values<T>(tensor.numel, 100 + std::uint32_t(params.size()), 0.2f));
  }
  layer.write_parameters(params);
  std::size_t largest = 0;
  std::uint32_t seed = 110;
  for (const auto& [B, seq_len] : {std::pair{2, 13}, std::pair{1, 40}, std::pair{2, 13}}) {
    const std::size_t positions = std::size_t(B) * seq_len;
    const auto x = random_values<T>(positions * C, seed++);
    const auto dout = random_values<T>(positions * C, seed++);
    const auto expected = ref::attention_mixer_step(config, params, x, dout, B, seq_len);
    DeviceArray<T> d_x(x), d_dout(dout), d_out(x.size()), d_din(x.size());
    layer.parameters().zero_grad();
    layer.forward(0, d_out.get(), d_x.get(), B, seq_len);
    layer.backward(0, overwrite(d_din.get()), d_dout.get(), d_x.get(), B, seq_len);
    EXPECT_LT(relative_error(d_out.download(), expected.out), value_tolerance<T>())
        << "T " << seq_len;
    EXPECT_LT(relative_error(d_din.download(), expected.din), gradient_tolerance<T>())
        << "T " << seq_len;
    const auto& tensors = layer.parameters().layout().tensors();
    ASSERT_EQ(tensors.size(), expected.grads.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      EXPECT_LT(relative_error(layer.parameters().read_grad(tensors[i]), expected.grads[i]),
                gradient_tolerance<T>())
          << "T " << seq_len << ", " << tensors[i].name;
    }
    largest = std::max(largest, K::attention_scratch_size<T>(positions, seq_len, C, NH));
    EXPECT_EQ(layer.mixer().scratch_size(), largest) << "T " << seq_len;
  }
  EXPECT_LT(largest, K::attention_scratch_size<T>(40, config.max_seq_len, C, NH) / 4);
}

// Host arithmetic only (runs without a GPU): the scratch follows the T it is given. GPT-2 small at
// B = 16 needs 7 fp32 head copies of B·T·C plus two fp32 score arrays of B·NH·T² (about 1.96 GB
// at T = 1024, 0.29 GB at T = 256), and for the same positions a shorter T needs fewer scores.
TEST(CudaAttentionScratch, FollowsTheBatchLength) {
  const int B = 16, C = 768, NH = 12;
  auto bytes = [&](int seq_len) {
    return K::attention_scratch_size<bfloat16>(std::size_t(B) * seq_len, seq_len, C, NH) *
           sizeof(bfloat16);
  };
  auto exact = [&](int seq_len) {
    const double positions = double(B) * seq_len;
    return 4.0 * (7 * positions * C + 2 * positions * NH * seq_len);
  };
  for (int seq_len : {13, 256, 1024}) {
    EXPECT_GE(double(bytes(seq_len)), exact(seq_len)) << "T = " << seq_len;
    EXPECT_LE(double(bytes(seq_len)), exact(seq_len) + 8 * 256) << "T = " << seq_len;
  }
  EXPECT_LT(bytes(1024), std::size_t(2) << 30);
  // Same positions, shorter sequences: the score arrays shrink with T.
  EXPECT_LT(K::attention_scratch_size<float>(16384, 256, C, NH),
            K::attention_scratch_size<float>(16384, 1024, C, NH) / 2);
}

// Decoding position t against the cached rows 0..t equals row t of the full forward over the same
// q | k | v and the CPU's decode: one chunk of 64 cached positions, exactly one, one more, several;
// head sizes 16 and 64.
TYPED_TEST(CudaOps, AttentionDecodeMatchesTheForwardAndTheCpu) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int seq_len = 200;
  for (const auto& [C, NH] : {std::pair{64, 4}, std::pair{128, 2}}) {
    const auto qkv = random_values<T>(std::size_t(seq_len) * 3 * C, 60 + C, 1.5f);
    DeviceArray<T> d_qkv(qkv), d_forward(std::size_t(seq_len) * C), d_out(C);
    DeviceArray<T> scratch(K::attention_scratch_size<T>(seq_len, seq_len, C, NH));
    K::attention_forward(d_forward.get(), static_cast<float*>(nullptr), d_qkv.get(), 1, seq_len, C,
                         NH, scratch.get());
    const auto forward = d_forward.download();
    for (int t : {0, 9, 63, 64, 65, 130, 199}) {
      std::vector<float> expected(C);
      ref::attention_decode(expected.data(), qkv.data(), t, C, NH);
      DeviceArray<float> decode_scratch(K::attention_decode_scratch_size<float>(t + 1, C, NH));
      d_out.poison();
      K::attention_decode(d_out.get(), d_qkv.get(), t, C, NH, decode_scratch.get());
      const auto out = d_out.download();
      const std::vector<float> row(forward.begin() + std::size_t(t) * C,
                                   forward.begin() + std::size_t(t + 1) * C);
      EXPECT_LT(relative_error(out, expected), value_tolerance<T>()) << "C " << C << ", t " << t;
      EXPECT_LT(relative_error(out, row), value_tolerance<T>()) << "C " << C << ", t " << t;
    }
  }
}

// ----------------------------------------------------------------------------------------- Loss

TYPED_TEST(CudaOps, FusedCrossEntropyForwardAndBackward) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int B = 2, seq_len = 5, N = B * seq_len, V = 1000, Vp = 1024, depths = 2,
            row_stride = seq_len + 3;
  auto logits = random_values<T>(std::size_t(N) * Vp, 70, 4.0f);
  const std::vector<std::int32_t> targets = random_ids(std::size_t(B) * row_stride, V, 71);
  DeviceArray<T> d_logits(logits);
  DeviceArray<std::int32_t> d_targets(targets);

  std::vector<float> lse(N), losses(N), log_probs(std::size_t(N) * V);
  ref::row_logsumexp(lse.data(), logits.data(), N, V, Vp);
  ref::cross_entropy(losses.data(), lse.data(), logits.data(), targets.data() + 1, row_stride, B,
                     seq_len, Vp);
  ref::log_softmax(log_probs.data(), logits.data(), lse.data(), N, V, Vp);
  DeviceArray<float> d_lse(N), d_losses(N), d_log_probs(log_probs.size());
  O::row_logsumexp(d_lse.get(), d_logits.get(), N, V, Vp);
  O::cross_entropy(d_losses.get(), d_lse.get(), d_logits.get(), d_targets.get() + 1, row_stride, B,
                   seq_len, Vp);
  O::log_softmax(d_log_probs.get(), d_logits.get(), d_lse.get(), N, V, Vp);
  EXPECT_LT(relative_error(d_lse.download(), lse), 1e-5);
  EXPECT_LT(relative_error(d_losses.download(), losses), 1e-5);
  EXPECT_LT(relative_error(d_log_probs.download(), log_probs), 1e-5);
  const float expected_mean = ref::mean(losses.data(), N);
  EXPECT_NEAR(O::mean(d_losses.get(), N), expected_mean, 1e-5 * std::abs(expected_mean));

  // Backward: depth weights from the host, padding columns zeroed, logits rewritten in place.
  const float weights[depths] = {1.0f, 0.3f};
  const float scale = 1.0f / N;
  d_lse.upload(lse);
  ref::cross_entropy_backward_inplace(logits.data(), lse.data(), targets.data() + 1, row_stride,
                                      weights, depths, scale, B, seq_len, V, Vp);
  O::cross_entropy_backward_inplace(d_logits.get(), d_lse.get(), d_targets.get() + 1, row_stride,
                                    weights, depths, scale, B, seq_len, V, Vp);
  EXPECT_LT(relative_error(d_logits.download(), logits), gradient_tolerance<T>());
}

// CoCoNT: depth 1 of a position whose context token has an n-gram list scores the soft target
// (1 − α)·onehot + α·P_ngram; ngram_kl gives KL(P_ngram ‖ softmax) and a coverage flag. The view
// is any struct with NgramTargets' fields (loss/cocont.hpp); the expected values are computed
// here from the definitions.
struct TestNgram {
  const std::int32_t* offsets;
  const std::int32_t* classes;
  const float* probs;
  const float* neg_entropy;
  float alpha;
};

TYPED_TEST(CudaOps, CocontSoftTargetAndKl) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int B = 2, seq_len = 5, N = B * seq_len, V = 50, Vp = 64, row_stride = seq_len + 1;
  const float alpha = 0.4f, scale = 1.0f / N;
  // Even context ids have a list of three successors; odd ones have none.
  std::vector<std::int32_t> offsets{0}, classes;
  std::vector<float> probs, neg_entropy(V, 0.0f);
  for (int a = 0; a < V; ++a) {
    if (a % 2 == 0) {
      const float p[3] = {0.5f, 0.3f, 0.2f};
      for (int k = 0; k < 3; ++k) {
        classes.push_back((a + 7 * k) % V);
        probs.push_back(p[k]);
        neg_entropy[a] += p[k] * std::log(p[k]);
      }
    }
    offsets.push_back(static_cast<std::int32_t>(classes.size()));
  }
  const std::vector<std::int32_t> tokens = random_ids(std::size_t(B) * row_stride, V, 90);
  auto logits = random_values<T>(std::size_t(N) * Vp, 91, 3.0f);
  std::vector<float> lse(N);
  ref::row_logsumexp(lse.data(), logits.data(), N, V, Vp);

  std::vector<float> kl(2 * N), grad(logits);
  for (int n = 0; n < N; ++n) {
    const std::size_t position = std::size_t(n / seq_len) * row_stride + n % seq_len;
    const int a = tokens[position], target = tokens[position + 1];
    const int begin = offsets[a], end = offsets[a + 1];
    float* row = grad.data() + std::size_t(n) * Vp;
    for (int v = 0; v < Vp; ++v) row[v] = v < V ? scale * std::exp(row[v] - lse[n]) : 0.0f;
    const float smoothing = begin < end ? alpha : 0.0f;
    row[target] -= scale * (1.0f - smoothing);
    float cross = 0;
    for (int k = begin; k < end; ++k) {
      row[classes[k]] -= scale * smoothing * probs[k];
      cross += probs[k] * (logits[std::size_t(n) * Vp + classes[k]] - lse[n]);
    }
    kl[n] = begin < end ? neg_entropy[a] - cross : 0.0f;
    kl[N + n] = begin < end ? 1.0f : 0.0f;
  }

  DeviceArray<T> d_logits(logits);
  DeviceArray<std::int32_t> d_tokens(tokens), d_offsets(offsets), d_classes(classes);
  DeviceArray<float> d_probs(probs), d_neg_entropy(neg_entropy), d_lse(lse), d_kl(2 * N);
  const TestNgram ngram{d_offsets.get(), d_classes.get(), d_probs.get(), d_neg_entropy.get(),
                        alpha};
  O::ngram_kl(d_kl.get(), d_lse.get(), d_logits.get(), Vp, d_tokens.get(), row_stride, ngram, B,
              seq_len);
  EXPECT_LT(relative_error(d_kl.download(), kl), 1e-5);
  const float weight = 1.0f;
  O::cross_entropy_backward_inplace(d_logits.get(), d_lse.get(), d_tokens.get() + 1, row_stride,
                                    &weight, 1, scale, B, seq_len, V, Vp,
                                    static_cast<const std::int32_t*>(d_tokens.get()), ngram);
  EXPECT_LT(relative_error(d_logits.download(), grad), gradient_tolerance<T>());
}

// -------------------------------------------------------------------------------------- AdamW

TYPED_TEST(CudaOps, AdamWUpdateAndGradientNorm) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const std::size_t count = 100003;
  const auto grads = random_values<float>(count, 80, 0.1f);
  const double expected_norm = ref::sum_of_squares(grads.data(), count);
  DeviceArray<float> d_grads(grads);
  EXPECT_NEAR(O::sum_of_squares(d_grads.get(), count), expected_norm, 1e-9 * expected_norm);
  EXPECT_EQ(O::sum_of_squares(d_grads.get(), count), O::sum_of_squares(d_grads.get(), count));

  auto master = random_values<float>(count, 81);
  auto m = random_values<float>(count, 82, 0.01f);
  auto v = random_values<float>(count, 83, 0.01f);
  for (float& x : v) x = std::abs(x);
  std::vector<float> params(count);
  const ref::AdamWScalars s{1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.271f, 0.0975f, 0.5f};
  DeviceArray<float> d_master(master), d_m(m), d_v(v);
  DeviceArray<T> d_params(count);
  ref::adamw_update(params.data(), master.data(), m.data(), v.data(), grads.data(), count, s);
  const AdamWStep<float> step{
      s.lr,        s.beta1, s.beta2, s.eps, s.weight_decay, s.bias_correction1, s.bias_correction2,
      s.grad_scale};
  O::adamw_update(d_params.get(), d_master.get(), d_m.get(), d_v.get(), d_grads.get(), count, step);
  EXPECT_LT(relative_error(d_master.download(), master), 1e-6);
  EXPECT_LT(relative_error(d_m.download(), m), 1e-6);
  EXPECT_LT(relative_error(d_v.download(), v), 1e-6);
  EXPECT_LT(relative_error(d_params.download(), params), value_tolerance<T>());
}

// 300 rows of 70 (a partial last warp pass): rows with a gradient, rows idle within the window,
// rows idle past it (left alone), and rows whose moments catch up on the skipped steps.
TYPED_TEST(CudaOps, AdamWSparseRowsMatchTheCpu) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const std::size_t rows = 300, width = 70, count = rows * width;
  const std::int64_t step_index = 50;
  const int window = 10;
  auto grads = random_values<float>(count, 84, 0.1f);
  std::vector<std::int64_t> seen(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    if (r % 3 != 0) std::fill(grads.begin() + r * width, grads.begin() + (r + 1) * width, 0.0f);
    seen[r] = r % 5 == 0 ? kAdamWNeverSeen : step_index - 1 - std::int64_t(r % 23);
  }
  auto master = random_values<float>(count, 85);
  auto m = random_values<float>(count, 86, 0.01f);
  auto v = random_values<float>(count, 87, 0.01f);
  for (float& x : v) x = std::abs(x);
  std::vector<float> params(count);
  const ref::AdamWScalars s{1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, 0.99f, 0.92f, 1.0f};
  DeviceArray<float> d_grads(grads), d_master(master), d_m(m), d_v(v);
  DeviceArray<std::int64_t> d_seen(seen);
  DeviceArray<T> d_params(count);
  ref::adamw_update_sparse_rows(params.data(), master.data(), m.data(), v.data(), grads.data(),
                                seen.data(), rows, width, step_index, window, s);
  const AdamWStep<float> step{
      s.lr,        s.beta1, s.beta2, s.eps, s.weight_decay, s.bias_correction1, s.bias_correction2,
      s.grad_scale};
  O::adamw_update_sparse_rows(d_params.get(), d_master.get(), d_m.get(), d_v.get(), d_grads.get(),
                              d_seen.get(), rows, width, step_index, window, step);
  std::vector<std::int64_t> device_seen(rows);
  Ops<Cuda>::copy_to_host(device_seen.data(), d_seen.get(), rows);
  EXPECT_EQ(device_seen, seen);
  EXPECT_LT(relative_error(d_master.download(), master), 1e-6);
  EXPECT_LT(relative_error(d_m.download(), m), 1e-6);
  EXPECT_LT(relative_error(d_v.download(), v), 1e-6);
}

}  // namespace cuda_ops
}  // namespace lightgpt::testing
