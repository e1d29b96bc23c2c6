// The transformer blocks of the trunk, GPT-2's pre-LayerNorm layout, with the token mixer as a
// policy: x → x + mix(LN1(x)) → (that) + proj(GELU(fc(LN2(·)))). Per-layer tensors are stacked over
// layers in llm.c's order (ln1w, ln1b, <mixer>, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb).
// Training forwards may drop out the mixer's and the MLP's outputs before each residual add
// (GPT-2's resid_pdrop); the masks are recomputed from their seeds in the backward.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "../backend/contract.hpp"
#include "../core/config.hpp"
#include "../core/elementwise.hpp"
#include "../core/layout.hpp"

namespace lightgpt::detail {

template <class Backend, class P, class MixerImpl>
class Blocks {
 public:
  using T = typename P::storage_t;
  using A = typename P::accum_t;
  using O = Ops<Backend>;

  explicit Blocks(const ModelConfig& config) : mixer_(config), C_(config.d_model) {}

  // Everything between wpe and lnfw, in order.
  // The mixer's tensors are declared under `mixer_part`, the rest under "trunk".
  static void declare(ParameterLayout& layout, const ModelConfig& config,
                      const std::string& mixer_part) {
    const std::int64_t L = config.n_layer, C = config.d_model;
    const double projection_std = 0.02 / std::sqrt(2.0 * config.n_layer);
    layout.add("ln1w", {L, C}, false, Init::ones());
    layout.add("ln1b", {L, C}, false, Init::zeros());
    layout.set_part(mixer_part);
    MixerImpl::declare(layout, config);
    layout.set_part("trunk");
    layout.add("ln2w", {L, C}, false, Init::ones());
    layout.add("ln2b", {L, C}, false, Init::zeros());
    layout.add("fcw", {L, 4 * C, C}, true, Init::normal(0.02));
    layout.add("fcb", {L, 4 * C}, false, Init::zeros());
    layout.add("fcprojw", {L, C, 4 * C}, true, Init::normal(projection_std));
    layout.add("fcprojb", {L, C}, false, Init::zeros());
  }

  void bind_parameters(const ParameterLayout& layout, T* params, A* grads) {
    for (Tensor* tensor : {&ln1w_, &ln1b_, &ln2w_, &ln2b_, &fcw_, &fcb_, &fcprojw_, &fcprojb_}) {
      tensor->bind(layout, params, grads);
    }
    mixer_.bind_parameters(layout, params, grads);
  }

  template <class Bind>
  void bind_activations(Bind& bind, int slots, std::size_t positions) {
    const std::size_t per_layer = positions * C_;
    bind(ln1_, slots * per_layer);
    bind(ln1_mean_, slots * positions);
    bind(ln1_rstd_, slots * positions);
    bind(mixed_, slots * per_layer);
    bind(residual2_, slots * per_layer);
    bind(ln2_, slots * per_layer);
    bind(ln2_mean_, slots * positions);
    bind(ln2_rstd_, slots * positions);
    bind(fch_, slots * per_layer * 4);
    bind(fch_gelu_, slots * per_layer * 4);
    bind(fcproj_, slots * per_layer);
    bind(residual3_, slots * per_layer);
    mixer_.bind_activations(bind, slots, positions);
  }
  template <class Bind>
  void bind_gradients(Bind& bind, std::size_t positions) {
    bind(dln_, positions * C_);
    bind(dhidden_, positions * C_ * 4);
    mixer_.bind_gradients(bind, positions);
  }

  // Residual dropout for the following training forwards and their backwards: probability p
  // (0 turns it off) and the seed the masks derive from (each layer and site its own stream).
  // `first_element`: where these activations start in a larger batch whose masks they draw (a
  // row group's first row times T·C; detail::dropout_seed_from).
  void set_dropout(double p, std::uint64_t seed, std::uint64_t first_element = 0) {
    dropout_p_ = p;
    dropout_seed_ = seed;
    dropout_first_ = first_element;
  }

  // The seed of dropout site `site` (0: embedding; 1 + 2·layer + {0: mixer, 1: MLP}).
  static std::uint64_t dropout_site_seed(std::uint64_t seed, int site) {
    std::uint64_t z = seed ^ (0xd1b54a32d192ed03ull * static_cast<std::uint64_t>(site + 1));
    z = (z ^ (z >> 32)) * 0x9e3779b97f4a7c15ull;
    return z ^ (z >> 29);
  }

  // Runs layer `layer` on x, storing its activations in `slot`; returns the layer's output.
  // Without keep_for_backward the LayerNorm statistics and attention log-sum-exps are not kept.
  const T* forward(int layer, int slot, const T* x, int B, int seq_len, bool keep_for_backward) {
    const int N = B * seq_len;
    Slot s = slot_at(slot, N);
    const std::size_t lC = static_cast<std::size_t>(layer) * C_;
    O::layernorm_forward(s.ln1, keep_for_backward ? s.ln1_mean : nullptr,
                         keep_for_backward ? s.ln1_rstd : nullptr, x, ln1w_.value + lC,
                         ln1b_.value + lC, N, C_);
    const bool drop = keep_for_backward && dropout_p_ > 0;
    const std::size_t NC = static_cast<std::size_t>(N) * C_;
    mixer_.forward(layer, slot, s.mixed, s.ln1, B, seq_len, keep_for_backward);
    if (drop) O::dropout(s.mixed, s.mixed, NC, dropout_p_, site_seed(layer, 0));
    O::residual_forward(s.residual2, x, s.mixed, NC);
    O::layernorm_forward(s.ln2, keep_for_backward ? s.ln2_mean : nullptr,
                         keep_for_backward ? s.ln2_rstd : nullptr, s.residual2, ln2w_.value + lC,
                         ln2b_.value + lC, N, C_);
    O::matmul_forward(s.fch, s.ln2, fcw_.value + lC * 4 * C_, fcb_.value + lC * 4, N, C_, 4 * C_);
    O::gelu_forward(s.fch_gelu, s.fch, static_cast<std::size_t>(N) * 4 * C_);
    O::matmul_forward(s.fcproj, s.fch_gelu, fcprojw_.value + lC * 4 * C_, fcprojb_.value + lC, N,
                      4 * C_, C_);
    if (drop) O::dropout(s.fcproj, s.fcproj, NC, dropout_p_, site_seed(layer, 1));
    O::residual_forward(s.residual3, s.residual2, s.fcproj, NC);
    return s.residual3;
  }

  // dresidual holds d(loss)/d(output of `layer`) on entry and d(loss)/d(x) on return.
  void backward(int layer, T* dresidual, const T* x, int B, int seq_len) {
    const int N = B * seq_len;
    Slot s = slot_at(layer, N);
    const std::size_t lC = static_cast<std::size_t>(layer) * C_;
    const std::size_t NC = static_cast<std::size_t>(N) * C_;
    // With dropout, each branch sees the residual gradient through its mask: the MLP's copy in
    // dln_ and the mixer's in dhidden_, each free at that point.
    const T* dmlp = dresidual;
    if (dropout_p_ > 0) {
      O::dropout(dln_, dresidual, NC, dropout_p_, site_seed(layer, 1));
      dmlp = dln_;
    }
    O::matmul_backward(overwrite(dhidden_), accumulate(fcprojw_.grad + lC * 4 * C_),
                       accumulate(fcprojb_.grad + lC), dmlp, s.fch_gelu,
                       fcprojw_.value + lC * 4 * C_, N, 4 * C_, C_);
    O::gelu_backward(overwrite(dhidden_), dhidden_, s.fch, static_cast<std::size_t>(N) * 4 * C_);
    O::matmul_backward(overwrite(dln_), accumulate(fcw_.grad + lC * 4 * C_),
                       accumulate(fcb_.grad + lC * 4), dhidden_, s.ln2, fcw_.value + lC * 4 * C_, N,
                       C_, 4 * C_);
    O::layernorm_backward(accumulate(dresidual), accumulate(ln2w_.grad + lC),
                          accumulate(ln2b_.grad + lC), dln_, s.residual2, ln2w_.value + lC,
                          s.ln2_mean, s.ln2_rstd, N, C_);
    const T* dmixed = dresidual;
    if (dropout_p_ > 0) {
      O::dropout(dhidden_, dresidual, NC, dropout_p_, site_seed(layer, 0));
      dmixed = dhidden_;
    }
    mixer_.backward(layer, overwrite(dln_), dmixed, s.ln1, B, seq_len);
    O::layernorm_backward(accumulate(dresidual), accumulate(ln1w_.grad + lC),
                          accumulate(ln1b_.grad + lC), dln_, x, ln1w_.value + lC, s.ln1_mean,
                          s.ln1_rstd, N, C_);
  }

  // Incremental decoding of one sequence: per-layer mixer caches plus one position of scratch.
  template <class Bind>
  void bind_decode(Bind& bind, int layers) {
    const std::size_t C = static_cast<std::size_t>(C_);
    bind(decode_ln_, C);
    bind(decode_mixed_, C);
    bind(decode_residual2_, C);
    bind(decode_fch_, 4 * C);
    bind(decode_fch_gelu_, 4 * C);
    bind(decode_out_, 2 * C);
    bind(decode_stats_, 2);
    mixer_.bind_decode(bind, layers);
  }

  // Layer `layer` at position t of the sequence being decoded; x is the layer's input there (C
  // values). Returns the layer's output, valid until the next call.
  const T* decode(int layer, const T* x, int t) {
    const std::size_t lC = static_cast<std::size_t>(layer) * C_;
    T* out = decode_out_ + (layer % 2) * C_;
    O::layernorm_forward(decode_ln_, decode_stats_, decode_stats_ + 1, x, ln1w_.value + lC,
                         ln1b_.value + lC, 1, C_);
    mixer_.decode(layer, decode_mixed_, decode_ln_, t);
    O::residual_forward(decode_residual2_, x, decode_mixed_, static_cast<std::size_t>(C_));
    O::layernorm_forward(decode_ln_, decode_stats_, decode_stats_ + 1, decode_residual2_,
                         ln2w_.value + lC, ln2b_.value + lC, 1, C_);
    O::matmul_forward(decode_fch_, decode_ln_, fcw_.value + lC * 4 * C_, fcb_.value + lC * 4, 1, C_,
                      4 * C_);
    O::gelu_forward(decode_fch_gelu_, decode_fch_, static_cast<std::size_t>(4) * C_);
    O::matmul_forward(decode_mixed_, decode_fch_gelu_, fcprojw_.value + lC * 4 * C_,
                      fcprojb_.value + lC, 1, 4 * C_, C_);
    O::residual_forward(out, decode_residual2_, decode_mixed_, static_cast<std::size_t>(C_));
    return out;
  }

  const T* output(int slot, int N) const {
    return residual3_ + static_cast<std::size_t>(slot) * N * C_;
  }

 private:
  using Tensor = BoundTensor<T, A>;
  struct Slot {
    T *ln1, *mixed, *residual2, *ln2, *fch, *fch_gelu, *fcproj, *residual3;
    A *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd;
  };

  Slot slot_at(int slot, int N) const {
    const std::size_t rows = static_cast<std::size_t>(slot) * N, cols = rows * C_;
    return {ln1_ + cols,      mixed_ + cols,        residual2_ + cols, ln2_ + cols,
            fch_ + cols * 4,  fch_gelu_ + cols * 4, fcproj_ + cols,    residual3_ + cols,
            ln1_mean_ + rows, ln1_rstd_ + rows,     ln2_mean_ + rows,  ln2_rstd_ + rows};
  }

  std::uint64_t site_seed(int layer, int branch) const {
    return detail::dropout_seed_from(dropout_site_seed(dropout_seed_, 1 + 2 * layer + branch),
                                     dropout_first_);
  }

  MixerImpl mixer_;
  int C_;
  double dropout_p_ = 0;
  std::uint64_t dropout_seed_ = 0, dropout_first_ = 0;
  Tensor ln1w_{"ln1w"}, ln1b_{"ln1b"}, ln2w_{"ln2w"}, ln2b_{"ln2b"};
  Tensor fcw_{"fcw"}, fcb_{"fcb"}, fcprojw_{"fcprojw"}, fcprojb_{"fcprojb"};
  T *ln1_ = nullptr, *mixed_ = nullptr, *residual2_ = nullptr, *ln2_ = nullptr;
  T *fch_ = nullptr, *fch_gelu_ = nullptr, *fcproj_ = nullptr, *residual3_ = nullptr;
  A *ln1_mean_ = nullptr, *ln1_rstd_ = nullptr, *ln2_mean_ = nullptr, *ln2_rstd_ = nullptr;
  T *dln_ = nullptr, *dhidden_ = nullptr;
  T *decode_ln_ = nullptr, *decode_mixed_ = nullptr, *decode_residual2_ = nullptr;
  T *decode_fch_ = nullptr, *decode_fch_gelu_ = nullptr, *decode_out_ = nullptr;
  A* decode_stats_ = nullptr;
};

}  // namespace lightgpt::detail
