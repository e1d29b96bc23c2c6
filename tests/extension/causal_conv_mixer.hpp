// A token mixer written outside the library, as a researcher would: a causal depthwise
// convolution over K positions d apart, y[t, c] = b[c] + Σ_k w[c, k] · x[t − k·d, c]. The dilation
// d is a run-time setting kept in the model's config (CausalConvOptions, key
// "causal-conv.dilation", default 1), so checkpoints carry it. It knows nothing of the library's
// internals beyond the mixer contract (lightgpt/model/contract.hpp) and runs on the CPU backend
// with plain loops. docs/extending.md.
#pragma once

#include <lightgpt/lightgpt.hpp>
#include <string>
#include <tuple>
#include <type_traits>

namespace research {

struct CausalConvOptions {
  int dilation = 1;  // d: the taps read positions t, t − d, t − 2d, …

  static constexpr auto fields =
      std::tuple{lightgpt::option_field("causal-conv.dilation", &CausalConvOptions::dilation)};
  void validate(const lightgpt::ModelConfig& config) const {
    LIGHTGPT_CHECK(dilation >= 1 && dilation <= config.max_seq_len,
                   "option causal-conv.dilation must lie in [1, max_seq_len], got ", dilation);
  }
};

template <class Backend, class P, int K>
class CausalConvMixerImpl {
  static_assert(std::is_same_v<Backend, lightgpt::Cpu>, "CausalConvMixer runs on the CPU backend");

 public:
  using T = typename P::storage_t;
  using A = typename P::accum_t;

  explicit CausalConvMixerImpl(const lightgpt::ModelConfig& config)
      : C_(config.d_model), dilation_(config.part<CausalConvOptions>().dilation) {}

  // Per-layer tensors, stacked over layers: K taps per channel and a bias. The first tap starts
  // near 1 so that a fresh block passes its input through.
  static void declare(lightgpt::ParameterLayout& layout, const lightgpt::ModelConfig& config) {
    const std::int64_t L = config.n_layer, C = config.d_model;
    layout.add("convw", {L, C, K}, true,
               lightgpt::Init::custom([](const lightgpt::TensorInfo&, std::size_t i,
                                         lightgpt::Rng& rng) {
                 return (i % K == 0 ? 1.0 : 0.0) + 0.02 * rng.normal();
               }));
    layout.add("convb", {L, C}, false, lightgpt::Init::zeros());
  }

  void bind_parameters(const lightgpt::ParameterLayout& layout, T* params, A* grads) {
    weight_.bind(layout, params, grads);
    bias_.bind(layout, params, grads);
  }

  // Backward needs only the layer's input, which the model keeps: no activations of its own.
  void bind_activations(lightgpt::ArenaBinder&, int, std::size_t) {}
  void bind_gradients(lightgpt::ArenaBinder&, std::size_t) {}

  void forward(int layer, int /*slot*/, T* out, const T* in, int B, int seq_len, bool) {
    const T* w = weight_.value + std::size_t(layer) * C_ * K;
    const T* b = bias_.value + std::size_t(layer) * C_;
    for (int row = 0; row < B; ++row) {
      for (int t = 0; t < seq_len; ++t) {
        const std::size_t at = (std::size_t(row) * seq_len + t) * C_;
        for (int c = 0; c < C_; ++c) {
          A sum = A(b[c]);
          for (int k = 0; k < K && k * dilation_ <= t; ++k) {
            sum += A(w[c * K + k]) * A(in[at - std::size_t(k) * dilation_ * C_ + c]);
          }
          out[at + c] = T(sum);
        }
      }
    }
  }

  void backward(int layer, lightgpt::Grad<T> din, const T* dout, const T* in, int B,
                int seq_len) {
    const std::size_t count = std::size_t(B) * seq_len * C_;
    const T* w = weight_.value + std::size_t(layer) * C_ * K;
    A* dw = weight_.grad + std::size_t(layer) * C_ * K;
    A* db = bias_.grad + std::size_t(layer) * C_;
    if (din.mode == lightgpt::Mode::overwrite) {
      for (std::size_t i = 0; i < count; ++i) din.ptr[i] = T(0);
    }
    for (int row = 0; row < B; ++row) {
      for (int t = 0; t < seq_len; ++t) {
        const std::size_t at = (std::size_t(row) * seq_len + t) * C_;
        for (int c = 0; c < C_; ++c) {
          const A g = A(dout[at + c]);
          db[c] += g;
          for (int k = 0; k < K && k * dilation_ <= t; ++k) {
            const std::size_t source = at - std::size_t(k) * dilation_ * C_ + c;
            dw[c * K + k] += g * A(in[source]);
            din.ptr[source] = T(A(din.ptr[source]) + A(w[c * K + k]) * g);
          }
        }
      }
    }
  }

  // Decoding keeps the last (K − 1)·d + 1 inputs of each layer, in a ring.
  void bind_decode(lightgpt::ArenaBinder& bind, int layers) {
    bind(history_, std::size_t(layers) * history_length() * C_);
  }
  void decode(int layer, T* out, const T* in, int t) {
    const int H = history_length();
    T* history = history_ + std::size_t(layer) * H * C_;
    for (int c = 0; c < C_; ++c) history[(t % H) * C_ + c] = in[c];
    const T* w = weight_.value + std::size_t(layer) * C_ * K;
    const T* b = bias_.value + std::size_t(layer) * C_;
    for (int c = 0; c < C_; ++c) {
      A sum = A(b[c]);
      for (int k = 0; k < K && k * dilation_ <= t; ++k) {
        sum += A(w[c * K + k]) * A(history[((t - k * dilation_) % H) * C_ + c]);
      }
      out[c] = T(sum);
    }
  }

 private:
  int history_length() const { return (K - 1) * dilation_ + 1; }

  int C_, dilation_;
  lightgpt::BoundTensor<T, A> weight_{"convw"}, bias_{"convb"};
  T* history_ = nullptr;
};

// The policy type users name in GPT<P, Head, CausalConvMixer<K>, Cpu>.
template <int K>
struct CausalConvMixer {
  static_assert(K >= 1, "CausalConvMixer<K>: K must be at least 1");
  static constexpr bool is_mixer = true;
  static std::string name() { return "causal-conv<" + std::to_string(K) + ">"; }
  using options = std::tuple<CausalConvOptions>;

  template <class Backend, class P>
  using impl = CausalConvMixerImpl<Backend, P, K>;
};

}  // namespace research
