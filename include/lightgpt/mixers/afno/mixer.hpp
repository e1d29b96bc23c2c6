// AfnoMixer<NumBlocks>: a causal token mixer after AFNO (Guibas et al. 2021), in three steps per
// layer, for input x (B, T, C):
//   u = k ∗ x       per-channel causal long convolution, u[t] = Σ_{s≤t} k[t−s]·x[s], computed as
//                   irfft(rfft(x)·rfft(k))[:T] at a zero-padded 2/3/5-smooth length ≥ 2T − 1;
//                   filters k are C × max_seq_len taps (truncated to T), initialised to decaying
//                   exponentials with rates from 1/max_seq_len to 1, so every channel starts as a
//                   moving average and early training is stable;
//   v = u ⊙ σ(x·Wgᵀ + bg)   the multiplicative gate (H3/Hyena's data-controlled gating), on by
//                   default (AfnoOptions::gate). A sigmoid keeps the gate in (0, 1): it opens at ½
//                   at initialisation, so filters and gate both get gradient from the first step,
//                   and it cannot amplify the convolution's output the way a linear gate can;
//   y = v + S_λ(W2·GELU(W1·v + b1) + b2)   AFNO's block-diagonal two-layer MLP (NumBlocks blocks,
//                   hidden width hidden_factor × C / NumBlocks), soft-shrink S_λ with
//                   λ = sparsity_threshold (AfnoOptions), and AFNO's residual ("+ bias" in its
//                   code).
// Only the convolution sees other positions, and everything between rfft and irfft is linear. That
// is the point: the original scripts ran the FFT over channels, so tokens never mixed, and their
// token-FFT variant put the MLP and soft-shrink on the sequence spectrum, where every bin depends
// on every position, so the output leaked the future (docs/design.md, "Differences from the
// original scripts"). Here the nonlinear parts act per token in the time domain, so causality holds
// by construction; the tests prove it.
//
// Parameters per layer (stacked over layers): afno_filter (C, max_seq_len), afno_gatew (C, C) and
// afno_gateb (C) when gated, afno_w1 (NumBlocks, H, C/NumBlocks), afno_b1 (NumBlocks·H),
// afno_w2 (NumBlocks, C/NumBlocks, H), afno_b2 (C). Cost O(T log T) per channel, memory linear in
// T. Decoding keeps each layer's past inputs and convolves directly, O(t·C) per position.
// With 16-bit storage (Bf16, Fp16) weights, activations and the decoding history are 16-bit; the
// FFTs, the direct sums and every element-wise formula run in fp32 and round once per store.
// The mixer's own kernels are AfnoKernels<Backend> (kernels.hpp; cpu.hpp, cuda.cuh in this
// folder), the generic ones Ops<Backend>; include this header and the backend's kernel file, or
// the umbrella lightgpt.hpp / cuda.cuh.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <tuple>

#include "../../backend/contract.hpp"
#include "../../core/backend_tags.hpp"
#include "../../core/config.hpp"
#include "../../core/error.hpp"
#include "../../core/layout.hpp"
#include "kernels.hpp"

namespace lightgpt {

// The settings AfnoMixer keeps in ModelConfig::options.
struct AfnoOptions {
  static constexpr int kMaxHiddenFactor = 64;
  // "afno.sparsity_threshold": λ of the soft-shrink after the block MLP.
  double sparsity_threshold = 0.01;
  // "afno.hidden_factor": hidden width of the block MLP, in multiples of C / NumBlocks.
  int hidden_factor = 1;
  // "afno.gate": the multiplicative gate σ(x·Wgᵀ + bg) on the convolution's output.
  bool gate = true;

  static constexpr auto fields =
      std::tuple{option_field("afno.sparsity_threshold", &AfnoOptions::sparsity_threshold),
                 option_field("afno.hidden_factor", &AfnoOptions::hidden_factor),
                 option_field("afno.gate", &AfnoOptions::gate)};

  void validate(const ModelConfig&) const {
    LIGHTGPT_CHECK(hidden_factor > 0 && hidden_factor <= kMaxHiddenFactor,
                   "ModelConfig option 'afno.hidden_factor' must lie in [1, ", kMaxHiddenFactor,
                   "], got ", hidden_factor);
    LIGHTGPT_CHECK(sparsity_threshold >= 0 && sparsity_threshold < 1e30,
                   "ModelConfig option 'afno.sparsity_threshold' must be finite and "
                   "non-negative, got ",
                   sparsity_threshold);
  }
};

namespace detail {

template <class Backend, class P, int NumBlocks>
class AfnoMixerImpl {
 public:
  using T = typename P::storage_t;
  using A = typename P::accum_t;
  using O = Ops<Backend>;
  using K = AfnoKernels<Backend>;

  explicit AfnoMixerImpl(const ModelConfig& config)
      : C_(checked_width(config)),
        L_(config.n_layer),
        max_T_(config.max_seq_len),
        block_(config.d_model / NumBlocks),
        hidden_(config.part<AfnoOptions>().hidden_factor * (config.d_model / NumBlocks)),
        gated_(config.part<AfnoOptions>().gate),
        lambda_(config.part<AfnoOptions>().sparsity_threshold) {}

  static void declare(ParameterLayout& layout, const ModelConfig& config) {
    const std::int64_t L = config.n_layer, C = checked_width(config), S = config.max_seq_len;
    const AfnoOptions options = config.part<AfnoOptions>();
    const std::int64_t block = C / NumBlocks, hidden = options.hidden_factor * block;
    layout.add("afno_filter", {L, C, S}, false, Init::decay(1.0 / double(S), 1.0));
    if (options.gate) {
      layout.add("afno_gatew", {L, C, C}, true, Init::normal(0.02));
      layout.add("afno_gateb", {L, C}, false, Init::zeros());
    }
    layout.add("afno_w1", {L, NumBlocks, hidden, block}, true, Init::normal(0.02));
    layout.add("afno_b1", {L, NumBlocks * hidden}, false, Init::zeros());
    layout.add("afno_w2", {L, NumBlocks, block, hidden}, true, Init::normal(0.02));
    layout.add("afno_b2", {L, C}, false, Init::zeros());
  }

  void bind_parameters(const ParameterLayout& layout, T* params, A* grads) {
    for (Tensor* tensor : {&filter_, &w1_, &b1_, &w2_, &b2_}) tensor->bind(layout, params, grads);
    if (gated_) {
      gatew_.bind(layout, params, grads);
      gateb_.bind(layout, params, grads);
    }
  }

  // Activations for `slots` layers (all layers when training, one when only inferring).
  template <class Bind>
  void bind_activations(Bind& bind, int slots, std::size_t positions) {
    const std::size_t values = static_cast<std::size_t>(slots) * positions * C_;
    const std::size_t hidden_values = static_cast<std::size_t>(slots) * positions * hidden_width();
    bind(conv_, values);
    if (gated_) {
      bind(gate_pre_, values);
      bind(gated_out_, values);
    }
    bind(hidden_pre_, hidden_values);
    bind(hidden_act_, hidden_values);
    bind(mlp_out_, values);
    conv_scratch_size_ = K::causal_conv_scratch_size(max_T_);
    bind(conv_scratch_, conv_scratch_size_);
  }
  // Gradient buffers shared by all layers.
  template <class Bind>
  void bind_gradients(Bind& bind, std::size_t positions) {
    bind(dmlp_, positions * C_);
    bind(dgated_, positions * C_);
    bind(dhidden_, positions * hidden_width());
  }

  // out = mix(in); `slot` selects the activation storage of this layer. The stored activations
  // are also the forward's workspace, so they are written whether or not backward follows.
  void forward(int layer, int slot, T* out, const T* in, int B, int seq_len,
               bool /*keep_for_backward*/) {
    const int N = B * seq_len;
    Slot s = slot_at(slot, N);
    K::causal_conv_forward(s.conv, in, filter(layer), max_T_, B, seq_len, C_, conv_scratch_,
                           conv_scratch_size_);
    mix_channels(layer, out, in, s, N);
  }

  // din (its mode) ← d/d(in); parameter gradients accumulate.
  void backward(int layer, Grad<T> din, const T* dout, const T* in, int B, int seq_len) {
    const int N = B * seq_len;
    const std::size_t values = static_cast<std::size_t>(N) * C_;
    Slot s = slot_at(layer, N);
    K::shrink_residual_backward(overwrite(dgated_), overwrite(dmlp_), dout, s.mlp_out, lambda_,
                                values);
    K::block_linear_backward(overwrite(dhidden_), accumulate(w2_.grad + w2_offset(layer)),
                             accumulate(b2_.grad + layer_C(layer)), dmlp_, s.hidden_act,
                             w2_.value + w2_offset(layer), N, NumBlocks, hidden_, block_);
    O::gelu_backward(overwrite(dhidden_), dhidden_, s.hidden_pre,
                     static_cast<std::size_t>(N) * hidden_width());
    K::block_linear_backward(accumulate(dgated_), accumulate(w1_.grad + w1_offset(layer)),
                             accumulate(b1_.grad + layer_hidden(layer)), dhidden_, s.gated,
                             w1_.value + w1_offset(layer), N, NumBlocks, block_, hidden_);
    const T* dconv = dgated_;
    if (gated_) {
      // d(conv) into dmlp_ (free now); d(gate pre-activation) in place of d(gated).
      K::sigmoid_gate_backward(overwrite(dmlp_), overwrite(dgated_), dgated_, s.conv, s.gate_pre,
                               values);
      dconv = dmlp_;
    }
    K::causal_conv_backward(din, accumulate(filter_.grad + filter_offset(layer)), dconv, in,
                            filter(layer), max_T_, B, seq_len, C_, conv_scratch_,
                            conv_scratch_size_);
    if (gated_) {
      O::matmul_backward(accumulate(din.ptr), accumulate(gatew_.grad + layer_CC(layer)),
                         accumulate(gateb_.grad + layer_C(layer)), dgated_, in,
                         gatew_.value + layer_CC(layer), N, C_, C_);
    }
  }

  // Incremental decoding of one sequence: each layer's past inputs (C × max_seq_len, channel-major
  // so the direct convolution reads both operands contiguously) plus one position of scratch.
  template <class Bind>
  void bind_decode(Bind& bind, int layers) {
    decode_layers_ = layers;
    bind(history_, static_cast<std::size_t>(layers) * C_ * max_T_);
    bind(decode_conv_, static_cast<std::size_t>(C_));
    if (gated_) {
      bind(decode_gate_pre_, static_cast<std::size_t>(C_));
      bind(decode_gated_, static_cast<std::size_t>(C_));
    }
    bind(decode_hidden_pre_, hidden_width());
    bind(decode_hidden_act_, hidden_width());
    bind(decode_mlp_out_, static_cast<std::size_t>(C_));
  }
  template <class Bind>
  void bind_decode(Bind& bind) {
    bind_decode(bind, L_);
  }

  // out[C] = the mixer output at position t from in[C] (this layer's input at t) and the inputs of
  // positions 0..t-1 given to earlier calls (t = 0 starts a new sequence): O(t·C) work.
  void decode(int layer, T* out, const T* in, int t) {
    LIGHTGPT_CHECK(layer >= 0 && layer < decode_layers_, "AfnoMixer::decode: layer ", layer,
                   " has no decoding cache (bound for ", decode_layers_, " layers)");
    LIGHTGPT_CHECK(t >= 0 && t < max_T_, "AfnoMixer::decode: position ", t,
                   " is outside [0, max_seq_len = ", max_T_, ")");
    K::template causal_conv_step<A>(decode_conv_,
                                    history_ + static_cast<std::size_t>(layer) * C_ * max_T_,
                                    max_T_, in, filter(layer), max_T_, t, C_);
    Slot s{decode_conv_,       decode_gate_pre_,   gated_ ? decode_gated_ : decode_conv_,
           decode_hidden_pre_, decode_hidden_act_, decode_mlp_out_};
    mix_channels(layer, out, in, s, 1);
  }

 private:
  using Tensor = BoundTensor<T, A>;
  // One layer's activations: conv = k ∗ x, gate_pre = x·Wgᵀ + bg, gated = v (conv when ungated),
  // hidden_pre/hidden_act = W1·v + b1 and its GELU, mlp_out = z before soft-shrink.
  struct Slot {
    T *conv, *gate_pre, *gated, *hidden_pre, *hidden_act, *mlp_out;
  };

  static int checked_width(const ModelConfig& config) {
    LIGHTGPT_CHECK(config.d_model % NumBlocks == 0, "ModelConfig.d_model (", config.d_model,
                   ") must be divisible by AfnoMixer's NumBlocks (", NumBlocks, ")");
    return config.d_model;
  }

  std::size_t hidden_width() const { return static_cast<std::size_t>(NumBlocks) * hidden_; }
  std::size_t layer_C(int layer) const { return static_cast<std::size_t>(layer) * C_; }
  std::size_t layer_CC(int layer) const { return layer_C(layer) * C_; }
  std::size_t layer_hidden(int layer) const {
    return static_cast<std::size_t>(layer) * hidden_width();
  }
  std::size_t filter_offset(int layer) const { return layer_C(layer) * max_T_; }
  std::size_t w1_offset(int layer) const { return layer_hidden(layer) * block_; }
  std::size_t w2_offset(int layer) const { return layer_C(layer) * hidden_; }
  const T* filter(int layer) const { return filter_.value + filter_offset(layer); }

  Slot slot_at(int slot, int N) const {
    const std::size_t values = static_cast<std::size_t>(slot) * N * C_;
    const std::size_t hidden_values = static_cast<std::size_t>(slot) * N * hidden_width();
    T* conv = conv_ + values;
    return {conv,
            gated_ ? gate_pre_ + values : nullptr,
            gated_ ? gated_out_ + values : conv,
            hidden_pre_ + hidden_values,
            hidden_act_ + hidden_values,
            mlp_out_ + values};
  }

  // Everything after the convolution acts on each position alone: gate, block MLP, shrink.
  void mix_channels(int layer, T* out, const T* in, const Slot& s, int N) {
    const std::size_t values = static_cast<std::size_t>(N) * C_;
    if (gated_) {
      O::matmul_forward(s.gate_pre, in, gatew_.value + layer_CC(layer),
                        gateb_.value + layer_C(layer), N, C_, C_);
      K::sigmoid_gate_forward(s.gated, s.conv, s.gate_pre, values);
    }
    K::block_linear_forward(s.hidden_pre, s.gated, w1_.value + w1_offset(layer),
                            b1_.value + layer_hidden(layer), N, NumBlocks, block_, hidden_);
    O::gelu_forward(s.hidden_act, s.hidden_pre, static_cast<std::size_t>(N) * hidden_width());
    K::block_linear_forward(s.mlp_out, s.hidden_act, w2_.value + w2_offset(layer),
                            b2_.value + layer_C(layer), N, NumBlocks, hidden_, block_);
    K::shrink_residual_forward(out, s.gated, s.mlp_out, lambda_, values);
  }

  int C_, L_, max_T_, block_, hidden_;
  bool gated_;
  double lambda_;
  Tensor filter_{"afno_filter"}, gatew_{"afno_gatew"}, gateb_{"afno_gateb"};
  Tensor w1_{"afno_w1"}, b1_{"afno_b1"}, w2_{"afno_w2"}, b2_{"afno_b2"};
  T *conv_ = nullptr, *gate_pre_ = nullptr, *gated_out_ = nullptr;
  T *hidden_pre_ = nullptr, *hidden_act_ = nullptr, *mlp_out_ = nullptr;
  A* conv_scratch_ = nullptr;
  std::size_t conv_scratch_size_ = 0;
  T *dmlp_ = nullptr, *dgated_ = nullptr, *dhidden_ = nullptr;
  int decode_layers_ = 0;
  T* history_ = nullptr;
  T *decode_conv_ = nullptr, *decode_gate_pre_ = nullptr, *decode_gated_ = nullptr;
  T *decode_hidden_pre_ = nullptr, *decode_hidden_act_ = nullptr, *decode_mlp_out_ = nullptr;
};

}  // namespace detail

// The causal FFT token mixer with NumBlocks blocks in its channel MLP (the original scripts'
// --afno_num_blocks; 8 for GPT-2 small). Its run-time settings are AfnoOptions.
template <int NumBlocks>
struct AfnoMixer {
  static_assert(NumBlocks >= 1,
                "AfnoMixer<NumBlocks>: NumBlocks must be at least 1 (the channel MLP has NumBlocks "
                "diagonal blocks; d_model must be divisible by it)");
  static constexpr bool is_mixer = true;
  static constexpr int num_blocks = NumBlocks;
  static std::string name() { return "afno<" + std::to_string(NumBlocks) + ">"; }
  using options = std::tuple<AfnoOptions>;

  template <class Backend, class P>
  using impl = detail::AfnoMixerImpl<Backend, P, NumBlocks>;
};

}  // namespace lightgpt
