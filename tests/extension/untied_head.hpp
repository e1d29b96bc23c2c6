// A head written outside the library: an untied input embedding and output matrix (V × C each)
// with a plain softmax cross-entropy, next token only. It implements the head contract
// (lightgpt/model/contract.hpp) and none of the optional capabilities (no CoCoNT, no codebook, no
// checkpoint sections of its own), on the CPU backend with plain loops. docs/extending.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <lightgpt/lightgpt.hpp>
#include <string>
#include <type_traits>

namespace research {

template <class Backend, class P>
class UntiedHeadImpl {
  static_assert(std::is_same_v<Backend, lightgpt::Cpu>, "UntiedHead runs on the CPU backend");

 public:
  using T = typename P::storage_t;
  using A = typename P::accum_t;

  explicit UntiedHeadImpl(const lightgpt::ModelConfig& config)
      : V_(config.vocab_size), C_(config.d_model) {}

  static void declare_input(lightgpt::ParameterLayout& layout,
                            const lightgpt::ModelConfig& config) {
    layout.add("embed", {config.vocab_size, config.d_model}, true, lightgpt::Init::normal(0.02));
  }
  static void declare_output(lightgpt::ParameterLayout& layout,
                             const lightgpt::ModelConfig& config) {
    layout.add("unembed", {config.vocab_size, config.d_model}, true,
               lightgpt::Init::normal(0.02));
  }

  void bind_parameters(const lightgpt::ParameterLayout& layout, T* params, A* grads) {
    embed_.bind(layout, params, grads);
    unembed_.bind(layout, params, grads);
  }

  // Log-probabilities and per-position losses of the last forward.
  void bind_activations(lightgpt::ArenaBinder& bind, std::size_t positions) {
    bind(log_probs_, positions * V_);
    bind(losses_, positions);
  }

  template <class Tok>
  void embed_forward(T* out, const Tok* tokens, int row_stride, const T* wpe, int B, int seq_len) {
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < seq_len; ++t) {
        const T* row = embed_.value + std::size_t(tokens[b * row_stride + t]) * C_;
        T* o = out + (std::size_t(b) * seq_len + t) * C_;
        for (int c = 0; c < C_; ++c) o[c] = T(A(row[c]) + A(wpe[std::size_t(t) * C_ + c]));
      }
    }
  }
  template <class Tok>
  void embed_backward(const T* dout, const Tok* tokens, int row_stride, A* dwpe, int B,
                      int seq_len) {
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < seq_len; ++t) {
        A* drow = embed_.grad + std::size_t(tokens[b * row_stride + t]) * C_;
        const T* g = dout + (std::size_t(b) * seq_len + t) * C_;
        for (int c = 0; c < C_; ++c) {
          drow[c] += A(g[c]);
          dwpe[std::size_t(t) * C_ + c] += A(g[c]);
        }
      }
    }
  }

  template <class Tok>
  lightgpt::HeadLosses<A> forward(const T* hidden, const Tok* tokens, int row_stride, int B,
                                  int seq_len, int depths, bool /*training*/ = false) {
    LIGHTGPT_CHECK(depths == 1, "UntiedHead predicts the next token only");
    const int N = B * seq_len;
    log_probs(log_probs_, hidden, N);
    double sum = 0;
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < seq_len; ++t) {
        const std::size_t n = std::size_t(b) * seq_len + t;
        const int target = int(tokens[b * row_stride + t + 1]);
        losses_[n] = -log_probs_[n * V_ + target];
        sum += double(losses_[n]);
      }
    }
    lightgpt::HeadLosses<A> result;
    result.main = result.depth[0] = A(sum / N);
    return result;
  }
  const A* token_losses() const { return losses_; }

  // d(scale · Σ CE)/dlogits = scale · (softmax − one-hot), then through the output matrix.
  template <class Tok>
  void backward(lightgpt::Grad<T> dhidden, const T* hidden, const Tok* tokens, int row_stride,
                int B, int seq_len, A scale, A /*mtp_weight*/, A /*smoothing*/) {
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < seq_len; ++t) {
        const std::size_t n = std::size_t(b) * seq_len + t;
        const int target = int(tokens[b * row_stride + t + 1]);
        const T* h = hidden + n * C_;
        T* dh = dhidden.ptr + n * C_;
        std::vector<A> g(C_, A(0));
        for (int v = 0; v < V_; ++v) {
          const A dlogit = scale * (std::exp(log_probs_[n * V_ + v]) - A(v == target ? 1 : 0));
          const T* w = unembed_.value + std::size_t(v) * C_;
          A* dw = unembed_.grad + std::size_t(v) * C_;
          for (int c = 0; c < C_; ++c) {
            g[c] += dlogit * A(w[c]);
            dw[c] += dlogit * A(h[c]);
          }
        }
        const bool accumulate = dhidden.mode == lightgpt::Mode::accumulate;
        for (int c = 0; c < C_; ++c) dh[c] = T((accumulate ? A(dh[c]) : A(0)) + g[c]);
      }
    }
  }

  void log_probs(A* out, const T* hidden, int N) {
    for (int n = 0; n < N; ++n) {
      A* row = out + std::size_t(n) * V_;
      const T* h = hidden + std::size_t(n) * C_;
      A max = -INFINITY;
      for (int v = 0; v < V_; ++v) {
        const T* w = unembed_.value + std::size_t(v) * C_;
        A logit = 0;
        for (int c = 0; c < C_; ++c) logit += A(h[c]) * A(w[c]);
        row[v] = logit;
        max = std::max(max, logit);
      }
      A total = 0;
      for (int v = 0; v < V_; ++v) total += std::exp(row[v] - max);
      const A log_total = max + std::log(total);
      for (int v = 0; v < V_; ++v) row[v] -= log_total;
    }
  }

 private:
  int V_, C_;
  lightgpt::BoundTensor<T, A> embed_{"embed"}, unembed_{"unembed"};
  A* log_probs_ = nullptr;
  A* losses_ = nullptr;
};

struct UntiedHead {
  static constexpr bool is_head = true;
  static constexpr int mtp_depth = 1;
  static std::string name() { return "untied"; }

  template <class Backend, class P>
  using impl = UntiedHeadImpl<Backend, P>;
};

}  // namespace research
