// DenseHead<MTP<K>>: GPT-2's tied head. The input embedding wte (V × C, padded to Vp rows) also
// scores the output, logits = h · wteᵀ, with a fused softmax cross-entropy that keeps only the
// per-row log-sum-exp (backward rewrites the logits into their gradient in place). MTP depths score
// the same logits against targets t+2 … t+K, so each extra depth costs no extra GEMM. With
// MtpOptions::adapter, depth j ≥ 2 scores its own adapted state h_j (mtp.hpp) and so has its
// own logits: one extra C × Vp product per depth, forward and backward. With CoCoNT
// (loss/cocont.hpp, set_cocont) depth 1 scores the soft target (1−α)·onehot + α·P_ngram inside the
// same fused backward, touching only the K listed ids of a row.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>

#include "../backend/contract.hpp"
#include "../core/config.hpp"
#include "../core/layout.hpp"
#include "../core/losses.hpp"
#include "../loss/cocont.hpp"
#include "mtp.hpp"

namespace lightgpt {
namespace detail {

template <class Backend, class P, int Depth>
class DenseHeadImpl {
 public:
  using T = typename P::storage_t;
  using A = typename P::accum_t;
  using O = Ops<Backend>;

  explicit DenseHeadImpl(const ModelConfig& config)
      : V_(config.vocab_size),
        Vp_(config.padded_vocab_size()),
        C_(config.d_model),
        adapters_(config) {}

  // Tensors laid out before the trunk (the tied embedding takes llm.c's first slot).
  static void declare_input(ParameterLayout& layout, const ModelConfig& config) {
    Init init = Init::normal(0.02);
    init.valid_rows = config.vocab_size;
    layout.add("wte", {config.padded_vocab_size(), config.d_model}, false, init);
  }
  // Tensors laid out after the trunk: only the MTP adapters, when enabled.
  static void declare_output(ParameterLayout& layout, const ModelConfig& config) {
    Adapters::declare(layout, config);
  }

  void bind_parameters(const ParameterLayout& layout, T* params, A* grads) {
    const std::size_t offset = layout.at("wte").offset;
    wte_ = params + offset;
    dwte_ = grads + offset;
    adapters_.bind_parameters(layout, params, grads);
  }

  // With adapters every depth keeps its own logits and log-sum-exps.
  template <class Bind>
  void bind_activations(Bind& bind, std::size_t positions) {
    const std::size_t depth_slots = adapters_.enabled() ? Depth : 1;
    bind(logits_, depth_slots * positions * Vp_);
    bind(lse_, depth_slots * positions);
    bind(losses_, positions * Depth);
    bind(cocont_kl_, 2 * positions);
    adapters_.bind_activations(bind, positions);
  }

  // CoCoNT targets: P_ngram(b | a) over the kept ids of `table`, uploaded once.
  void set_cocont(const BigramTable& table) {
    LIGHTGPT_CHECK(table.vocab_size() == V_, "DenseHead: the bigram table has vocab_size ",
                   table.vocab_size(), ", the model ", V_);
    ngram_.upload(token_ngram_targets(table));
  }
  void clear_cocont() { ngram_.clear(); }
  bool cocont_enabled() const { return ngram_.loaded(); }
  const NgramTable<A, Backend>& cocont_targets() const { return ngram_; }

  template <class Tok>
  void embed_forward(T* out, const Tok* tokens, int row_stride, const T* wpe, int B, int seq_len) {
    O::embedding_forward(out, tokens, row_stride, wte_, wpe, B, seq_len, C_);
  }
  template <class Tok>
  void embed_backward(const T* dout, const Tok* tokens, int row_stride, A* dwpe, int B,
                      int seq_len) {
    O::embedding_backward(accumulate(dwte_), accumulate(dwpe), dout, tokens, row_stride, B, seq_len,
                          C_, V_);
  }

  // Scores `depths` targets (1 = next token only) for each of the B·T hidden states; with
  // report_cocont (training forwards) and CoCoNT on, also the mean KL(P_ngram ‖ P_θ). With
  // loss_sums (backend memory) each depth's mean is added to loss_sums[depth - 1] there instead
  // of being read back, and the returned depths are 0.
  template <class Tok>
  HeadLosses<A> forward(const T* hidden, const Tok* tokens, int row_stride, int B, int seq_len,
                        int depths, bool report_cocont = false, double* loss_sums = nullptr) {
    const int N = B * seq_len;
    if (adapters_.enabled()) {
      return forward_adapted(hidden, tokens, row_stride, B, seq_len, depths, report_cocont,
                             loss_sums);
    }
    O::matmul_forward(logits_, hidden, wte_, static_cast<const T*>(nullptr), N, C_, Vp_);
    O::row_logsumexp(lse_, logits_, N, V_, Vp_);
    HeadLosses<A> losses;
    losses.depths = depths;
    for (int j = 1; j <= depths; ++j) {
      A* depth_losses = losses_ + static_cast<std::size_t>(j - 1) * N;
      O::cross_entropy(depth_losses, lse_, logits_, tokens + j, row_stride, B, seq_len, Vp_);
      score_depth(losses, j, depth_losses, N, loss_sums);
    }
    losses.main = losses.depth[0];
    if (report_cocont) losses.cocont = cocont_term(lse_, logits_, tokens, row_stride, B, seq_len);
    return losses;
  }

  // Per-position next-token NLL of the last forward (depth 1), on the device.
  const A* token_losses() const { return losses_; }

  // d/d(hidden) of scale · Σ_n [L_main(n) + w_mtp · mean_{j≥2} CE_j(n)], after forward(..., Depth),
  // where L_main = CE_1, or (1−α)·CE_1 + α·KL(P_ngram ‖ P_θ) with CoCoNT (α = cocont_alpha).
  template <class Tok>
  void backward(Grad<T> dhidden, const T* hidden, const Tok* tokens, int row_stride, int B,
                int seq_len, A scale, A mtp_weight, A cocont_alpha = A(0)) {
    const int N = B * seq_len;
    A weights[Depth];
    weights[0] = A(1);
    for (int j = 1; j < Depth; ++j) weights[j] = mtp_weight / A(Depth > 1 ? Depth - 1 : 1);
    if (adapters_.enabled()) {
      backward_adapted(dhidden, hidden, tokens, row_stride, B, seq_len, scale, weights,
                       cocont_alpha);
      return;
    }
    O::cross_entropy_backward_inplace(logits_, lse_, tokens + 1, row_stride, weights, Depth, scale,
                                      B, seq_len, V_, Vp_, tokens,
                                      targets_table().view(cocont_alpha));
    O::matmul_backward(dhidden, accumulate(dwte_), Grad<A>{}, logits_, hidden, wte_, N, C_, Vp_);
  }

  // Batch split (GPT::set_batch_split): a row group's head reads the CoCoNT targets of `owner`,
  // the model's own head, which outlives it.
  void share_state(const DenseHeadImpl& owner) { shared_ = &owner; }

  // out[n, v] = log P(v | hidden_n) over the V real tokens.
  void log_probs(A* out, const T* hidden, int N) {
    O::matmul_forward(logits_, hidden, wte_, static_cast<const T*>(nullptr), N, C_, Vp_);
    O::row_logsumexp(lse_, logits_, N, V_, Vp_);
    O::log_softmax(out, logits_, lse_, N, V_, Vp_);
  }

 private:
  using Adapters = MtpAdapters<Backend, P, Depth>;

  // The CoCoNT targets the kernels read: the owner's in a row group (share_state).
  const NgramTable<A, Backend>& targets_table() const {
    return shared_ != nullptr ? shared_->ngram_ : ngram_;
  }

  // Mean KL(P_ngram ‖ softmax) over the positions whose context token has a list (0 if none or
  // CoCoNT is off), from depth 1's logits and log-sum-exps.
  template <class Tok>
  A cocont_term(const A* lse, const T* logits, const Tok* tokens, int row_stride, int B,
                int seq_len) {
    if (!targets_table().loaded()) return A(0);
    const std::size_t N = static_cast<std::size_t>(B) * seq_len;
    O::ngram_kl(cocont_kl_, lse, logits, Vp_, tokens, row_stride, targets_table().view(A(0)), B,
                seq_len);
    const A covered = O::mean(cocont_kl_ + N, N);
    return covered > A(0) ? O::mean(cocont_kl_, N) / covered : A(0);
  }

  // Depth j's mean of the N per-position losses: added to loss_sums[j - 1] when given, else read.
  static void score_depth(HeadLosses<A>& losses, int j, const A* depth_losses, int N,
                          double* loss_sums) {
    if (loss_sums != nullptr) {
      O::add_mean(loss_sums + (j - 1), depth_losses, static_cast<std::size_t>(N));
    } else {
      losses.depth[j - 1] = O::mean(depth_losses, static_cast<std::size_t>(N));
    }
  }

  template <class Tok>
  HeadLosses<A> forward_adapted(const T* hidden, const Tok* tokens, int row_stride, int B,
                                int seq_len, int depths, bool report_cocont, double* loss_sums) {
    const int N = B * seq_len;
    HeadLosses<A> losses;
    losses.depths = depths;
    for (int j = 1; j <= depths; ++j) {
      const T* state = j == 1 ? hidden : adapters_.forward(j, hidden, N);
      T* logits = logits_ + static_cast<std::size_t>(j - 1) * N * Vp_;
      A* lse = lse_ + static_cast<std::size_t>(j - 1) * N;
      O::matmul_forward(logits, state, wte_, static_cast<const T*>(nullptr), N, C_, Vp_);
      O::row_logsumexp(lse, logits, N, V_, Vp_);
      A* depth_losses = losses_ + static_cast<std::size_t>(j - 1) * N;
      O::cross_entropy(depth_losses, lse, logits, tokens + j, row_stride, B, seq_len, Vp_);
      score_depth(losses, j, depth_losses, N, loss_sums);
    }
    losses.main = losses.depth[0];
    if (report_cocont) losses.cocont = cocont_term(lse_, logits_, tokens, row_stride, B, seq_len);
    return losses;
  }

  // Depth 1 writes dhidden (in its mode); each adapted depth adds its adapter's backward.
  template <class Tok>
  void backward_adapted(Grad<T> dhidden, const T* hidden, const Tok* tokens, int row_stride, int B,
                        int seq_len, A scale, const A* weights, A cocont_alpha) {
    const int N = B * seq_len;
    for (int j = 1; j <= Depth; ++j) {
      T* logits = logits_ + static_cast<std::size_t>(j - 1) * N * Vp_;
      const A* lse = lse_ + static_cast<std::size_t>(j - 1) * N;
      O::cross_entropy_backward_inplace(
          logits, lse, tokens + j, row_stride, weights + (j - 1), 1, scale, B, seq_len, V_, Vp_,
          tokens, j == 1 ? targets_table().view(cocont_alpha) : NgramTargets<A>{});
      if (j == 1) {
        O::matmul_backward(dhidden, accumulate(dwte_), Grad<A>{}, logits, hidden, wte_, N, C_, Vp_);
      } else {
        const T* state = adapters_.forward_output(j, N);
        O::matmul_backward(overwrite(adapters_.output_gradient()), accumulate(dwte_), Grad<A>{},
                           logits, state, wte_, N, C_, Vp_);
        adapters_.backward(j, hidden, dhidden.ptr, N);
      }
    }
  }

  int V_, Vp_, C_;
  Adapters adapters_;
  T* wte_ = nullptr;
  A* dwte_ = nullptr;
  T* logits_ = nullptr;
  A* lse_ = nullptr;
  A* losses_ = nullptr;
  A* cocont_kl_ = nullptr;  // KL per position, then 1 per position with an n-gram list
  NgramTable<A, Backend> ngram_;
  const DenseHeadImpl* shared_ = nullptr;  // the owner of a row group's head (share_state)
};

}  // namespace detail

// The tied dense head of GPT-2, optionally with multi-token prediction.
template <class Mtp = MTP<1>>
struct DenseHead {
  static_assert(MtpPolicy<Mtp>, "DenseHead<M>: M must be MTP<K>, e.g. DenseHead<MTP<2>>");
  static_assert(Mtp::depth <= kMaxMtpDepth, "DenseHead<MTP<K>>: K is limited to kMaxMtpDepth");
  static constexpr bool is_head = true;
  static constexpr int mtp_depth = Mtp::depth;
  static std::string name() { return "dense<mtp=" + std::to_string(mtp_depth) + ">"; }
  using options = std::tuple<MtpOptions>;

  template <class Backend, class P>
  using impl = detail::DenseHeadImpl<Backend, P, mtp_depth>;
};

}  // namespace lightgpt
