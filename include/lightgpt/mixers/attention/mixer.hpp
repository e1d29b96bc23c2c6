// Attention: GPT-2's causal multi-head self-attention as a token mixer. Parameters per layer, in
// llm.c's slots: qkvw (3C × C, fused Q|K|V), qkvb, attprojw (C × C), attprojb. Activations kept for
// backward: the fused qkv, the attention output before the projection, and one log-sum-exp per
// (head, query); the backward recomputes attention probabilities from them. The kernels' scratch
// (on the GPU, B·NH·T² scores) is sized by the T of the batch, which only the calls know, so it
// lives outside the arena in one buffer shared by all layers, grown to the largest call so far.
// The mixer's own kernels are AttentionKernels<Backend> (kernels.hpp; cpu.hpp, cuda.cuh in this
// folder), the generic ones Ops<Backend>; include this header and the backend's kernel file, or
// the umbrella lightgpt.hpp / cuda.cuh.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "../../backend/contract.hpp"
#include "../../core/arena.hpp"
#include "../../core/config.hpp"
#include "../../core/layout.hpp"
#include "kernels.hpp"

namespace lightgpt {
namespace detail {

template <class Backend, class P>
class AttentionImpl {
 public:
  using T = typename P::storage_t;
  using A = typename P::accum_t;
  using O = Ops<Backend>;
  using K = AttentionKernels<Backend>;

  explicit AttentionImpl(const ModelConfig& config)
      : C_(config.d_model), NH_(config.n_head), max_T_(config.max_seq_len) {}

  // Per-layer tensors, stacked over layers, in the trunk's mixer slot.
  static void declare(ParameterLayout& layout, const ModelConfig& config) {
    const std::int64_t L = config.n_layer, C = config.d_model;
    const double projection_std = 0.02 / std::sqrt(2.0 * config.n_layer);
    layout.add("qkvw", {L, 3 * C, C}, true, Init::normal(0.02));
    layout.add("qkvb", {L, 3 * C}, false, Init::zeros());
    layout.add("attprojw", {L, C, C}, true, Init::normal(projection_std));
    layout.add("attprojb", {L, C}, false, Init::zeros());
  }

  void bind_parameters(const ParameterLayout& layout, T* params, A* grads) {
    for (Tensor* tensor : {&qkvw_, &qkvb_, &attprojw_, &attprojb_})
      tensor->bind(layout, params, grads);
  }

  // Activations for `slots` layers (all layers when training, one when only inferring).
  template <class Bind>
  void bind_activations(Bind& bind, int slots, std::size_t positions) {
    const std::size_t C = static_cast<std::size_t>(C_);
    bind(qkv_, slots * positions * 3 * C);
    bind(atty_, slots * positions * C);
    bind(lse_, slots * positions * NH_);
  }
  // Gradient buffers shared by all layers.
  template <class Bind>
  void bind_gradients(Bind& bind, std::size_t positions) {
    bind(dqkv_, positions * 3 * C_);
    bind(datty_, positions * C_);
  }

  // Incremental decoding (one sequence): the fused q | k | v of every position so far, per layer,
  // is the KV cache.
  template <class Bind>
  void bind_decode(Bind& bind, int layers) {
    bind(cache_, static_cast<std::size_t>(layers) * max_T_ * 3 * C_);
    bind(decode_atty_, static_cast<std::size_t>(C_));
    bind(decode_scratch_, K::template attention_decode_scratch_size<A>(max_T_, C_, NH_));
  }

  // out[C] = the mixer output at position t from in[C] (this layer's input at t) and the inputs of
  // positions 0..t-1 given to earlier calls: O(t·C) work.
  void decode(int layer, T* out, const T* in, int t) {
    const std::size_t layer_C = static_cast<std::size_t>(layer) * C_;
    T* qkv = cache_ + static_cast<std::size_t>(layer) * max_T_ * 3 * C_;
    O::matmul_forward(qkv + static_cast<std::size_t>(t) * 3 * C_, in,
                      qkvw_.value + layer_C * 3 * C_, qkvb_.value + layer_C * 3, 1, C_, 3 * C_);
    K::attention_decode(decode_atty_, static_cast<const T*>(qkv), t, C_, NH_, decode_scratch_);
    O::matmul_forward(out, decode_atty_, attprojw_.value + layer_C * C_, attprojb_.value + layer_C,
                      1, C_, C_);
  }

  // out = attention(in) projected; `slot` selects the activation storage of this layer.
  void forward(int layer, int slot, T* out, const T* in, int B, int seq_len,
               bool keep_for_backward) {
    const int N = B * seq_len;
    const std::size_t layer_C = static_cast<std::size_t>(layer) * C_;
    T* qkv = qkv_ + static_cast<std::size_t>(slot) * N * 3 * C_;
    T* atty = atty_ + static_cast<std::size_t>(slot) * N * C_;
    A* lse = keep_for_backward ? lse_ + static_cast<std::size_t>(slot) * N * NH_ : nullptr;
    O::matmul_forward(qkv, in, qkvw_.value + layer_C * 3 * C_, qkvb_.value + layer_C * 3, N, C_,
                      3 * C_);
    K::attention_forward(atty, lse, qkv, B, seq_len, C_, NH_, scratch(B, seq_len));
    O::matmul_forward(out, atty, attprojw_.value + layer_C * C_, attprojb_.value + layer_C, N, C_,
                      C_);
  }

  void backward(int layer, Grad<T> din, const T* dout, const T* in, int B, int seq_len) {
    const int N = B * seq_len;
    const std::size_t layer_C = static_cast<std::size_t>(layer) * C_;
    const T* qkv = qkv_ + static_cast<std::size_t>(layer) * N * 3 * C_;
    const T* atty = atty_ + static_cast<std::size_t>(layer) * N * C_;
    const A* lse = lse_ + static_cast<std::size_t>(layer) * N * NH_;
    O::matmul_backward(overwrite(datty_), accumulate(attprojw_.grad + layer_C * C_),
                       accumulate(attprojb_.grad + layer_C), dout, atty,
                       attprojw_.value + layer_C * C_, N, C_, C_);
    K::attention_backward(overwrite(dqkv_), datty_, qkv, atty, lse, B, seq_len, C_, NH_,
                          scratch(B, seq_len));
    O::matmul_backward(din, accumulate(qkvw_.grad + layer_C * 3 * C_),
                       accumulate(qkvb_.grad + layer_C * 3), dqkv_, in,
                       qkvw_.value + layer_C * 3 * C_, N, C_, 3 * C_);
  }

  // Elements of kernel scratch held: what the largest call so far needed.
  std::size_t scratch_size() const { return scratch_.size(); }

 private:
  using Tensor = BoundTensor<T, A>;

  // The scratch of a (B, seq_len) call. Growing releases the old buffer first, so the two never
  // coexist (on the GPU the release waits for the kernels still using it).
  T* scratch(int B, int seq_len) {
    const std::size_t needed = K::template attention_scratch_size<T>(
        static_cast<std::size_t>(B) * seq_len, seq_len, C_, NH_);
    if (needed > scratch_.size()) {
      scratch_ = Buffer<T, Backend>();
      scratch_ = Buffer<T, Backend>(needed);
    }
    return scratch_.data();
  }

  int C_, NH_, max_T_;
  Tensor qkvw_{"qkvw"}, qkvb_{"qkvb"}, attprojw_{"attprojw"}, attprojb_{"attprojb"};
  T* qkv_ = nullptr;
  T* atty_ = nullptr;
  A* lse_ = nullptr;
  Buffer<T, Backend> scratch_;
  T* dqkv_ = nullptr;
  T* datty_ = nullptr;
  T* cache_ = nullptr;
  T* decode_atty_ = nullptr;
  A* decode_scratch_ = nullptr;
};

}  // namespace detail

// Causal multi-head self-attention (GPT-2's).
struct Attention {
  static constexpr bool is_mixer = true;
  static std::string name() { return "attention"; }

  template <class Backend, class P>
  using impl = detail::AttentionImpl<Backend, P>;
};

}  // namespace lightgpt
