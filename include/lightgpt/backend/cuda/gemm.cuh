// Dense layers through cuBLASLt. Our matrices are row-major, weights (out, in) as in llm.c;
// cuBLASLt is column-major, so a row-major C[M, N] = op(A)·op(B) is issued as the column-major
// Cᵀ[N, M] = op(B)ᵀ·op(A)ᵀ: the operands swap and keep their transpose flags. One helper, gemm(),
// does that mapping once; every product of the backend (layers, attention) goes through it.
// Inputs bf16/fp16/fp32 with fp32 accumulation and fp32 scaling; outputs in the storage type or
// fp32 (parameter gradients, attention scores). fp32 products use TF32 tensor cores unless
// Context::set_allow_tf32(false). The forward bias is a cuBLASLt epilogue (one pass fewer); the
// bias gradient is a deterministic two-pass column sum (reduce.cuh).
//
// Each distinct product (shape, strides, types, operand alignment, bias address) gets a plan on its
// first call: its cuBLASLt descriptors and the heuristic's algorithm, created once and never
// destroyed. A per-thread map in front of the process-wide one finds it without a lock, so a
// steady-state call is a hash lookup and cublasLtMatmul. The alignment the heuristic is told is
// what the base address, the leading dimension and the batch stride guarantee together, so a
// batched call with an odd stride gets an algorithm that is valid for every matrix of the batch;
// when no algorithm takes the bias epilogue, the bias becomes a separate pass.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <utility>

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

// The largest power of two (≤ 256) dividing `value`.
inline std::uint32_t power_of_two_dividing(std::uint64_t value) {
  std::uint32_t alignment = 256;
  while (alignment > 1 && value % alignment != 0) alignment /= 2;
  return alignment;
}
inline std::uint32_t alignment_of(const void* ptr) {
  return power_of_two_dividing(reinterpret_cast<std::uintptr_t>(ptr));
}
inline std::uint64_t element_bytes(cudaDataType_t type) { return type == CUDA_R_32F ? 4 : 2; }

// What cuBLASLt may assume about an operand's alignment, in bytes. Its columns start at
// base + j·ld and a batched call's matrices at base + i·stride (elements), so the base address's
// alignment only holds for all of them when ld and the batch stride keep it: attention's T = 13
// score rows (52 bytes) or AFNO's 12-channel 16-bit blocks (24-byte stride) do not. Telling the
// heuristic the lowered value makes it exclude the algorithms that would fault.
inline std::uint32_t operand_alignment(const void* ptr, cudaDataType_t type, std::int64_t ld,
                                       int batch, std::int64_t stride) {
  const std::uint64_t bytes = element_bytes(type);
  std::uint32_t alignment =
      std::min(alignment_of(ptr), power_of_two_dividing(std::uint64_t(ld) * bytes));
  if (batch > 1) {
    alignment = std::min(alignment, power_of_two_dividing(std::uint64_t(stride) * bytes));
  }
  return alignment;
}

// RAII holders for cuBLASLt objects while a plan is built; release() hands them to the plan.
struct LtDesc {
  cublasLtMatmulDesc_t desc = nullptr;
  ~LtDesc() {
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
  cublasLtMatmulDesc_t release() { return std::exchange(desc, nullptr); }
};
struct LtLayout {
  cublasLtMatrixLayout_t layout = nullptr;
  ~LtLayout() {
    if (layout) cublasLtMatrixLayoutDestroy(layout);
  }
  cublasLtMatrixLayout_t release() { return std::exchange(layout, nullptr); }
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

// Everything that selects a plan: device, compute type, the column-major operations and shape
// (m, n, k), leading dimensions, strides, batch, types, the three operand alignments, beta ≠ 0,
// and the bias address when the epilogue takes it (0 otherwise).
using GemmKey = std::array<std::int64_t, 22>;

struct GemmKeyHash {
  std::size_t operator()(const GemmKey& key) const noexcept {
    std::uint64_t hash = 14695981039346656037ull;  // FNV-1a over the words
    for (std::int64_t word : key) hash = (hash ^ std::uint64_t(word)) * 1099511628211ull;
    return static_cast<std::size_t>(hash);
  }
};

// One product's cuBLASLt descriptors and algorithm, created on its first call and never destroyed
// (like the context). cublasLtMatmul only reads them, so every thread shares one plan per key; the
// bias pointer is part of the key because the descriptor holds it (a model's biases live at fixed
// addresses, so this adds a handful of plans per model).
struct GemmPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;  // cuBLASLt's A, B, C (= D)
  cublasLtMatmulAlgo_t algo{};
  bool bias_epilogue = false;  // a call's bias without the epilogue is a separate pass
};

// Builds the plan of `call` (operand alignments in cuBLASLt's order A, B, C): the heuristic's
// first algorithm; with the bias epilogue when `bias_epilogue` and one exists, else without.
inline GemmPlan* make_plan(const GemmCall& call, cublasComputeType_t compute,
                           const std::array<std::uint32_t, 3>& alignment, bool bias_epilogue,
                           Context& ctx) {
  const cublasOperation_t op_a = call.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = call.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const std::uint64_t m = call.N, n = call.M, k = call.K;
  LtLayout a_layout, b_layout, c_layout;
  // The cuBLASLt "A" is our B: stored m × k (op N) or k × m (op T), column-major.
  make_layout(a_layout, call.b_type, op_a == CUBLAS_OP_N ? m : k, op_a == CUBLAS_OP_N ? k : m,
              call.ldb, call.batch, call.stride_b);
  make_layout(b_layout, call.a_type, op_b == CUBLAS_OP_N ? k : n, op_b == CUBLAS_OP_N ? n : k,
              call.lda, call.batch, call.stride_a);
  make_layout(c_layout, call.c_type, m, n, call.ldc, call.batch, call.stride_c);

  LtPreference pref;
  LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref.pref));
  const std::size_t workspace = ctx.workspace_bytes();
  LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
  const cublasLtMatmulPreferenceAttributes_t attributes[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i) {
    const std::uint32_t value = alignment[i < 3 ? i : 2];
    LIGHTGPT_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref.pref, attributes[i], &value, sizeof(value)));
  }

  for (bool epilogue : {bias_epilogue, false}) {
    LtDesc desc;
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc.desc, compute, CUDA_R_32F));
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                         &op_a, sizeof(op_a)));
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                         &op_b, sizeof(op_b)));
    const cublasLtEpilogue_t kind = epilogue ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                         &kind, sizeof(kind)));
    if (epilogue) {
      LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
          desc.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &call.bias, sizeof(call.bias)));
    }
    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    LIGHTGPT_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(
        ctx.lt(), desc.desc, a_layout.layout, b_layout.layout, c_layout.layout, c_layout.layout,
        pref.pref, 1, &heuristic, &found));
    if (found > 0) {
      auto* plan = new GemmPlan;
      plan->desc = desc.release();
      plan->a = a_layout.release();
      plan->b = b_layout.release();
      plan->c = c_layout.release();
      plan->algo = heuristic.algo;
      plan->bias_epilogue = epilogue;
      return plan;
    }
    if (!epilogue) break;  // the bias-free try has run (or was the only one)
  }
  throw Error(::lightgpt::detail::concat(
      "cuBLASLt has no algorithm for the product [", call.M, " x ", call.K, "] x [", call.K, " x ",
      call.N, "] (batch ", call.batch, ", types ", int(call.a_type), "/", int(call.b_type), " -> ",
      int(call.c_type), ", alignments ", alignment[1], "/", alignment[0], " -> ", alignment[2],
      " bytes)"));
}

// The plan for `key`: a lock-free per-thread map in front of the process-wide one, so a
// steady-state call costs one hash lookup.
inline const GemmPlan& gemm_plan(const GemmKey& key, const GemmCall& call,
                                 cublasComputeType_t compute,
                                 const std::array<std::uint32_t, 3>& alignment, bool bias_epilogue,
                                 Context& ctx) {
  thread_local std::unordered_map<GemmKey, const GemmPlan*, GemmKeyHash> local;
  const auto hit = local.find(key);
  if (hit != local.end()) return *hit->second;
  static std::mutex mutex;
  static auto* plans = new std::unordered_map<GemmKey, const GemmPlan*, GemmKeyHash>();
  const GemmPlan* plan = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex);
    const GemmPlan*& entry = (*plans)[key];
    if (entry == nullptr) entry = make_plan(call, compute, alignment, bias_epilogue, ctx);
    plan = entry;
  }
  local.emplace(key, plan);
  return *plan;
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
  // Column-major view: D[m = N, n = M] = op(B_row)ᵀ-as-stored · op(A_row)ᵀ-as-stored, so
  // cuBLASLt's A, B are our B, A.
  const std::array<std::uint32_t, 3> alignment{
      operand_alignment(call.B, call.b_type, call.ldb, call.batch, call.stride_b),
      operand_alignment(call.A, call.a_type, call.lda, call.batch, call.stride_a),
      operand_alignment(call.C, call.c_type, call.ldc, call.batch, call.stride_c)};
  const bool bias_epilogue = call.bias != nullptr && alignment_of(call.bias) >= 16;
  // clang-format off
  const GemmKey key{ctx.device(), int(compute), call.trans_a, call.trans_b, call.M, call.N, call.K,
                    call.lda, call.ldb, call.ldc, call.stride_a, call.stride_b, call.stride_c,
                    call.batch, int(call.a_type), int(call.b_type), int(call.c_type), alignment[0],
                    alignment[1], alignment[2], call.beta != 0.0f,
                    bias_epilogue ? std::int64_t(reinterpret_cast<std::uintptr_t>(call.bias)) : 0};
  // clang-format on
  const GemmPlan& plan = gemm_plan(key, call, compute, alignment, bias_epilogue, ctx);
  LIGHTGPT_CUBLAS_CHECK(cublasLtMatmul(
      ctx.lt(), plan.desc, &call.alpha, call.B, plan.a, call.A, plan.b, &call.beta, call.C, plan.c,
      call.C, plan.c, &plan.algo, ctx.workspace(), ctx.workspace_bytes(), ctx.stream()));
  if (call.bias != nullptr && !plan.bias_epilogue) {
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
