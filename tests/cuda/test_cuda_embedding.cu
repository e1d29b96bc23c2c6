// The token-embedding backward at GPT-2's shape against the CPU Fp32 reference (reference.hpp):
// V = 50257 (Vp = 50304), C = 768, B·T = 8192 positions, half of them the end-of-text token —
// a run of 4096 sorted entries, 128 of the keyed sums' chunks — plus two runs that start and end
// inside chunks, for fp32, bf16 and fp16 storage of the incoming gradient. Sorting 16 key bits
// (V given) and 31 (V unknown) must give the same bits, and so must a second run.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <set>
#include <vector>

#include "cuda_testing.cuh"
#include "reference.hpp"

namespace lightgpt::testing {
namespace cuda_embedding {

using O = Ops<Cuda>;
namespace ref = reference;

template <class T>
class CudaEmbedding : public CudaTest {};
TYPED_TEST_SUITE(CudaEmbedding, StorageTypes, StorageTypeNames);

TYPED_TEST(CudaEmbedding, TokenBackwardAtGpt2ShapeWithAFrequentToken) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int V = 50257, Vp = 50304, C = 768, B = 8, seq_len = 1024, row_stride = seq_len + 1;
  // The end-of-text token is the largest id: 15 key bits would not hold it.
  const int eot = 50256, the = 262, comma = 11;
  auto tokens = random_ids(std::size_t(B) * row_stride, V, 81);
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < seq_len; ++t) {
      std::int32_t& id = tokens[std::size_t(b) * row_stride + t];
      if (t % 2 == 0) {
        id = eot;  // 4096 positions
      } else if (t % 8 == 1) {
        id = the;  // 1024
      } else if (t % 16 == 3) {
        id = comma;  // 512
      }
    }
  }
  const auto dout = random_values<T>(std::size_t(B) * seq_len * C, 82);
  const auto dwte_start = random_values<float>(std::size_t(Vp) * C, 83);
  const auto dwpe_start = random_values<float>(std::size_t(seq_len) * C, 84);

  std::vector<float> dwte = dwte_start, dwpe = dwpe_start;
  ref::embedding_backward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), row_stride, B,
                          seq_len, C);

  DeviceArray<std::int32_t> d_tokens(tokens);
  DeviceArray<T> d_dout(dout);
  DeviceArray<float> d_dwte(dwte_start), d_dwpe(dwpe_start);
  O::embedding_backward(accumulate(d_dwte.get()), accumulate(d_dwpe.get()), d_dout.get(),
                        d_tokens.get(), row_stride, B, seq_len, C, V);
  const auto first = d_dwte.download();

  // Both sides add the same (storage-rounded) values in fp32, so fp32's tolerance holds for every
  // storage type. The frequent rows are checked on their own: in the whole table the random start
  // values would dilute an error in them.
  const double tolerance = gradient_tolerance<float>();
  EXPECT_LT(relative_error(first, dwte), tolerance);
  EXPECT_LT(relative_error(d_dwpe.download(), dwpe), tolerance);
  for (const int id : {eot, the, comma}) {
    const auto row = [&](const std::vector<float>& table) {
      return std::vector<float>(table.begin() + std::size_t(id) * C,
                                table.begin() + std::size_t(id + 1) * C);
    };
    EXPECT_LT(relative_error(row(first), row(dwte)), tolerance) << "token " << id;
  }
  // Rows no position holds (the padding rows among them) keep their bits.
  std::set<std::int32_t> seen;
  for (int b = 0; b < B; ++b) {
    seen.insert(tokens.begin() + std::size_t(b) * row_stride,
                tokens.begin() + std::size_t(b) * row_stride + seq_len);
  }
  std::size_t changed = 0;
  for (int v = 0; v < Vp; ++v) {
    if (seen.count(v) != 0) continue;
    for (std::size_t i = std::size_t(v) * C; i < std::size_t(v + 1) * C; ++i) {
      changed += first[i] != dwte_start[i];
    }
  }
  EXPECT_EQ(changed, 0u) << "elements of rows no position holds were written";

  // All 31 bits of an int32 id (V unknown), then 16 bits again: the same sorted order, the same
  // sums, the same bits; the second run is timed.
  for (const int vocabulary : {0, V}) {
    DeviceArray<float> again(dwte_start);
    cudaEvent_t start, stop;
    LIGHTGPT_CUDA_CHECK(cudaEventCreate(&start));
    LIGHTGPT_CUDA_CHECK(cudaEventCreate(&stop));
    LIGHTGPT_CUDA_CHECK(cudaEventRecord(start, cuda::context().stream()));
    O::embedding_backward(accumulate(again.get()), accumulate(static_cast<float*>(nullptr)),
                          d_dout.get(), d_tokens.get(), row_stride, B, seq_len, C, vocabulary);
    LIGHTGPT_CUDA_CHECK(cudaEventRecord(stop, cuda::context().stream()));
    LIGHTGPT_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    LIGHTGPT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::printf("token embedding backward, %d positions, %s: %.3f ms\n", B * seq_len,
                vocabulary > 0 ? "16 key bits" : "31 key bits", ms);
    EXPECT_TRUE(again.download() == first) << (vocabulary > 0 ? "second run" : "31 key bits");
  }
}

}  // namespace cuda_embedding
}  // namespace lightgpt::testing
