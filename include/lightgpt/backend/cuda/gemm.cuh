// Dense layers through cuBLASLt. Our matrices are row-major, weights (out, in) as in llm.c;
// cuBLASLt is column-major, so a row-major C[M, N] = op(A)·op(B) is issued as the column-major
// Cᵀ[N, M] = op(B)ᵀ·op(A)ᵀ: the operands swap and keep their transpose flags. One helper, gemm(),
// does that mapping once; every product of the backend (layers, attention) goes through it.
// Inputs bf16/fp16/fp32 with fp32 accumulation and fp32 scaling; outputs in the storage type or
// fp32 (parameter gradients, attention scores). fp32 products use TF32 tensor cores unless
// Context::set_allow_tf32(false). The forward bias is a cuBLASLt epilogue (one pass fewer); the
// bias gradient is a deterministic two-pass column sum (reduce.cuh). Heuristic results are cached
// per shape, types and operand alignment, so steady-state calls only build descriptors.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <type_traits>

#include "../../core/precision.hpp"
#include "../contract.hpp"
#include "context.cuh"
#include "reduce.cuh"

namespace lightgpt::cuda {

template <class T>
constexpr cudaDataType_t data_type() {
  if constexpr (std::is_same_v<T, float>) {
    return CUDA_R_32F;
  } else if constexpr (std::is_same_v<T, bfloat16>) {
    return CUDA_R_16BF;
  } else {
    static_assert(std::is_same_v<T, float16>, "CUDA kernels take float, bfloat16 or float16");
    return CUDA_R_16F;
  }
}

// Row-major C[M, N] (ld ldc) = alpha · op(A) · op(B) + beta · C, op(A) M × K and op(B) K × N, with
// A stored [M, K] (or [K, M] when trans_a) and leading dimension lda; likewise B. `batch` products
// at the given element strides. bias (length N, the type of C) is added to every row when non-null.
struct GemmCall {
  bool trans_a = false, trans_b = false;
  int M = 0, N = 0, K = 0;
  const void* A = nullptr;
  cudaDataType_t a_type = CUDA_R_32F;
  std::int64_t lda = 0, stride_a = 0;
  const void* B = nullptr;
  cudaDataType_t b_type = CUDA_R_32F;
  std::int64_t ldb = 0, stride_b = 0;
  void* C = nullptr;
  cudaDataType_t c_type = CUDA_R_32F;
  std::int64_t ldc = 0, stride_c = 0;
  int batch = 1;
  float alpha = 1.0f, beta = 0.0f;
  const void* bias = nullptr;
};

namespace kernels {

// The largest power of two (≤ 256) dividing the address: what cuBLASLt may assume about it.
inline std::uint32_t alignment_of(const void* ptr) {
  const auto address = reinterpret_cast<std::uintptr_t>(ptr);
  std::uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

// RAII holders for the cuBLASLt descriptors of one call.
struct LtDesc {
  cublasLtMatmulDesc_t desc = nullptr;
  ~LtDesc() {
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};
struct LtLayout {
  cublasLtMatrixLayout_t layout = nullptr;
  ~LtLayout() {
    if (layout) cublasLtMatrixLayoutDestroy(layout);
  }
};
struct LtPreference {
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtPreference() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
  }
};

inline void make_layout(LtLayout& holder, cudaDataType_t type, std::uint64_t rows,
                        std::uint64_t cols, std::int64_t ld, int batch, std::int64_t stride) {
  LIGHTGPT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&holder.layout, type, rows, cols, ld));
  if (batch > 1) {
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        holder.layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof(batch)));
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        holder.layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
}

using GemmKey = std::array<std::int64_t, 22>;

inline std::map<GemmKey, cublasLtMatmulHeuristicResult_t>& gemm_cache() {
  static std::map<GemmKey, cublasLtMatmulHeuristicResult_t> cache;
  return cache;
}
inline std::mutex& gemm_cache_mutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace kernels

inline void gemm(const GemmCall& call) {
  using namespace kernels;
  if (call.M == 0 || call.N == 0) return;
  LIGHTGPT_CHECK(call.K > 0, "gemm: K must be positive, got ", call.K);
  Context& ctx = context();

  const bool all_fp32 =
      call.a_type == CUDA_R_32F && call.b_type == CUDA_R_32F && call.c_type == CUDA_R_32F;
  const cublasComputeType_t compute =
      all_fp32 && ctx.allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;

  // Column-major view: D[m = N, n = M] = op(B_row)ᵀ-as-stored · op(A_row)ᵀ-as-stored.
  const cublasOperation_t op_a = call.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = call.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const std::uint64_t m = call.N, n = call.M, k = call.K;

  const bool use_bias = call.bias != nullptr && alignment_of(call.bias) >= 16;
  const cublasLtEpilogue_t epilogue = use_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;

  LtDesc desc;
  LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc.desc, compute, CUDA_R_32F));
  LIGHTGPT_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  LIGHTGPT_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(desc.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                       &epilogue, sizeof(epilogue)));
  if (use_bias) {
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        desc.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &call.bias, sizeof(call.bias)));
  }

  LtLayout a_layout, b_layout, c_layout;
  // The cuBLASLt "A" is our B: stored m × k (op N) or k × m (op T), column-major.
  make_layout(a_layout, call.b_type, op_a == CUBLAS_OP_N ? m : k, op_a == CUBLAS_OP_N ? k : m,
              call.ldb, call.batch, call.stride_b);
  make_layout(b_layout, call.a_type, op_b == CUBLAS_OP_N ? k : n, op_b == CUBLAS_OP_N ? n : k,
              call.lda, call.batch, call.stride_a);
  make_layout(c_layout, call.c_type, m, n, call.ldc, call.batch, call.stride_c);

  const std::uint32_t align_a = alignment_of(call.B), align_b = alignment_of(call.A),
                      align_c = alignment_of(call.C);
  // clang-format off
  const GemmKey key{ctx.device(), int(compute), int(op_a), int(op_b), std::int64_t(m),
                    std::int64_t(n), std::int64_t(k), call.lda, call.ldb, call.ldc,
                    call.stride_a, call.stride_b, call.stride_c, call.batch, int(call.a_type),
                    int(call.b_type), int(call.c_type), int(epilogue), align_a, align_b, align_c,
                    call.beta != 0.0f};
  // clang-format on

  cublasLtMatmulHeuristicResult_t heuristic{};
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(gemm_cache_mutex());
    auto found = gemm_cache().find(key);
    if (found != gemm_cache().end()) {
      heuristic = found->second;
      cached = true;
    }
  }
  if (!cached) {
    LtPreference pref;
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref.pref));
    const std::size_t workspace = ctx.workspace_bytes();
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof(align_a)));
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof(align_b)));
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c, sizeof(align_c)));
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c, sizeof(align_c)));
    int found = 0;
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(
        ctx.lt(), desc.desc, a_layout.layout, b_layout.layout, c_layout.layout, c_layout.layout,
        pref.pref, 1, &heuristic, &found));
    LIGHTGPT_CHECK(found > 0, "cuBLASLt has no algorithm for the product [", call.M, " x ", call.K,
                   "] x [", call.K, " x ", call.N, "] (batch ", call.batch, ", types ",
                   int(call.a_type), "/", int(call.b_type), " -> ", int(call.c_type), ")");
    std::lock_guard<std::mutex> lock(gemm_cache_mutex());
    gemm_cache().emplace(key, heuristic);
  }

  LIGHTGPT_CUBLAS_CHECK(cublasLtMatmul(ctx.lt(), desc.desc, &call.alpha, call.B, a_layout.layout,
                                       call.A, b_layout.layout, &call.beta, call.C, c_layout.layout,
                                       call.C, c_layout.layout, &heuristic.algo, ctx.workspace(),
                                       ctx.workspace_bytes(), ctx.stream()));
  if (call.bias != nullptr && !use_bias) {
    kernels::add_bias_rows(call.C, call.c_type, call.bias, call.M, call.N, call.ldc);
  }
}

struct GemmOps {
  // out[N, OC] = in[N, IC] · weight[OC, IC]ᵀ + bias[OC] (bias may be null).
  template <class T>
  static void matmul_forward(T* out, const T* in, const T* weight, const T* bias, int N, int IC,
                             int OC) {
    GemmCall call;
    call.trans_b = true;
    call.M = N, call.N = OC, call.K = IC;
    call.A = in, call.a_type = data_type<T>(), call.lda = IC;
    call.B = weight, call.b_type = data_type<T>(), call.ldb = IC;
    call.C = out, call.c_type = data_type<T>(), call.ldc = OC;
    call.bias = bias;
    gemm(call);
  }

  // din[N, IC] = dout · weight; dweight[OC, IC] = doutᵀ · in; dbias[OC] = Σ_rows dout. Parameter
  // gradients G are fp32 for every storage type on the GPU.
  template <class T, class G>
  static void matmul_backward(Grad<T> din, Grad<G> dweight, Grad<G> dbias, const T* dout,
                              const T* in, const T* weight, int N, int IC, int OC) {
    static_assert(std::is_same_v<G, float>, "CUDA layers keep fp32 parameter gradients");
    if (din) {
      GemmCall call;
      call.M = N, call.N = IC, call.K = OC;
      call.A = dout, call.a_type = data_type<T>(), call.lda = OC;
      call.B = weight, call.b_type = data_type<T>(), call.ldb = IC;
      call.C = din.ptr, call.c_type = data_type<T>(), call.ldc = IC;
      call.beta = din.mode == Mode::accumulate ? 1.0f : 0.0f;
      gemm(call);
    }
    if (dweight) {
      GemmCall call;
      call.trans_a = true;
      call.M = OC, call.N = IC, call.K = N;
      call.A = dout, call.a_type = data_type<T>(), call.lda = OC;
      call.B = in, call.b_type = data_type<T>(), call.ldb = IC;
      call.C = dweight.ptr, call.c_type = CUDA_R_32F, call.ldc = IC;
      call.beta = dweight.mode == Mode::accumulate ? 1.0f : 0.0f;
      gemm(call);
    }
    if (dbias) {
      kernels::column_sums(kernels::RowSum<T>{dout, OC}, N, OC, dbias.ptr,
                           dbias.mode == Mode::accumulate, nullptr, false);
    }
  }
};

}  // namespace lightgpt::cuda
