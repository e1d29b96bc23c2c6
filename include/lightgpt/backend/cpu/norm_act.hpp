// LayerNorm, GELU, residual add and the token + position embedding on the CPU. Row-wise work is
// split across OpenMP threads by rows; reductions over rows (parameter gradients) are split by
// column blocks, each walked in row order, so every result is independent of the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "../../core/elementwise.hpp"
#include "../../core/error.hpp"
#include "../../core/precision.hpp"
#include "../contract.hpp"
#include "eigen.hpp"

namespace lightgpt::cpu {

struct NormActOps {
  static constexpr double kLayerNormEps = 1e-5;

  // out = (in - mean) * rstd * weight + bias per row of C; mean and rstd are stored when non-null
  // (training) and skipped otherwise (inference).
  template <class T, class A>
  static void layernorm_forward(T* out, A* mean, A* rstd, const T* in, const T* weight,
                                const T* bias, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      const T* x = in + static_cast<std::size_t>(n) * C;
      A sum = 0;
      for (int c = 0; c < C; ++c) sum += A(x[c]);
      A m = sum / A(C);
      A squares = 0;
      for (int c = 0; c < C; ++c) {
        A centred = A(x[c]) - m;
        squares += centred * centred;
      }
      A s = A(1) / std::sqrt(squares / A(C) + A(kLayerNormEps));
      T* y = out + static_cast<std::size_t>(n) * C;
      for (int c = 0; c < C; ++c) y[c] = T((A(x[c]) - m) * s * A(weight[c]) + A(bias[c]));
      if (mean) mean[n] = m;
      if (rstd) rstd[n] = s;
    }
  }

  template <class T, class G, class A>
  static void layernorm_backward(Grad<T> din, Grad<G> dweight, Grad<G> dbias, const T* dout,
                                 const T* in, const T* weight, const A* mean, const A* rstd, int N,
                                 int C) {
    if (din) {
#pragma omp parallel for schedule(static)
      for (int n = 0; n < N; ++n) {
        const std::size_t row = static_cast<std::size_t>(n) * C;
        A m = mean[n], s = rstd[n];
        A dnorm_mean = 0, dnorm_norm_mean = 0;
        for (int c = 0; c < C; ++c) {
          A norm = (A(in[row + c]) - m) * s;
          A dnorm = A(dout[row + c]) * A(weight[c]);
          dnorm_mean += dnorm;
          dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= A(C);
        dnorm_norm_mean /= A(C);
        for (int c = 0; c < C; ++c) {
          A norm = (A(in[row + c]) - m) * s;
          A dnorm = A(dout[row + c]) * A(weight[c]);
          store(din, row + c, (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s);
        }
      }
    }
    if (dweight || dbias) {
      const int blocks = (C + detail::kColumnBlock - 1) / detail::kColumnBlock;
#pragma omp parallel for schedule(static)
      for (int block = 0; block < blocks; ++block) {
        const int c0 = block * detail::kColumnBlock;
        const int c1 = std::min(C, c0 + detail::kColumnBlock);
        A dw[detail::kColumnBlock] = {}, db[detail::kColumnBlock] = {};
        for (int n = 0; n < N; ++n) {
          const std::size_t row = static_cast<std::size_t>(n) * C;
          for (int c = c0; c < c1; ++c) {
            A norm = (A(in[row + c]) - mean[n]) * rstd[n];
            dw[c - c0] += A(dout[row + c]) * norm;
            db[c - c0] += A(dout[row + c]);
          }
        }
        for (int c = c0; c < c1; ++c) {
          if (dweight) store(dweight, c, dw[c - c0]);
          if (dbias) store(dbias, c, db[c - c0]);
        }
      }
    }
  }

  // GELU (core/elementwise.hpp's formulas) over chunks of kGeluChunk elements, the tanh of each
  // chunk vectorised (detail::gelu_tanh); out and din may alias in and dout.
  static constexpr int kGeluChunk = 256;

  template <class T>
  static void gelu_forward(T* out, const T* in, std::size_t count) {
    for_gelu_chunks(in, count, [&](std::size_t i, auto x, auto th) {
      using W = decltype(x);
      out[i] = T(W(0.5) * x * (W(1) + th));
    });
  }

  template <class T>
  static void gelu_backward(Grad<T> din, const T* dout, const T* in, std::size_t count) {
    for_gelu_chunks(in, count, [&](std::size_t i, auto x, auto th) {
      using W = decltype(x);
      constexpr W kSqrt2OverPi = W(0.7978845608028654);
      constexpr W kCubic = W(0.044715);
      const W slope = W(0.5) * (W(1) + th) +
                      W(0.5) * x * (W(1) - th * th) * kSqrt2OverPi * (W(1) + W(3) * kCubic * x * x);
      store(din, i, widen(dout[i]) * slope);
    });
  }

  template <class T>
  static void residual_forward(T* out, const T* a, const T* b, std::size_t count) {
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(count); ++i) {
      out[i] = T(widen(a[i]) + widen(b[i]));
    }
  }

  // Inverted dropout: out[i] = in[i] / (1 − p) where dropout_keep(seed, i) and 0 elsewhere. The
  // mask is a function of (seed, i) alone, so the backward is the same call on the gradient;
  // out may alias in.
  template <class T>
  static void dropout(T* out, const T* in, std::size_t count, double p, std::uint64_t seed) {
    using W = lightgpt::detail::widened_t<T>;
    const std::uint32_t threshold = lightgpt::detail::dropout_threshold(p);
    const W scale = W(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(count); ++i) {
      const bool keep =
          lightgpt::detail::dropout_keep(seed, static_cast<std::uint64_t>(i), threshold);
      out[i] = keep ? T(widen(in[i]) * scale) : T(0);
    }
  }

  // out[b, t, :] = wte[token(b, t)] + wpe[t]; row b of the tokens starts at b * row_stride.
  template <class T, class Tok>
  static void embedding_forward(T* out, const Tok* tokens, int row_stride, const T* wte,
                                const T* wpe, int B, int seq_len, int C) {
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * seq_len; ++bt) {
      const int b = bt / seq_len, t = bt % seq_len;
      const std::size_t token = static_cast<std::size_t>(tokens[b * row_stride + t]);
      const T* token_row = wte + token * C;
      const T* position_row = wpe + static_cast<std::size_t>(t) * C;
      T* y = out + static_cast<std::size_t>(bt) * C;
      for (int c = 0; c < C; ++c) y[c] = T(widen(token_row[c]) + widen(position_row[c]));
    }
  }

  // Scatter-adds dout into the rows of wte and wpe that the forward read. Always accumulates:
  // a scatter cannot overwrite rows it never visits.
  template <class T, class G, class Tok>
  // V (the number of distinct ids, when known) only narrows the GPU's sort; unused here.
  static void embedding_backward(Grad<G> dwte, Grad<G> dwpe, const T* dout, const Tok* tokens,
                                 int row_stride, int B, int seq_len, int C, int /*V*/ = 0) {
    LIGHTGPT_CHECK(dwte.mode == Mode::accumulate && dwpe.mode == Mode::accumulate,
                   "embedding_backward only accumulates");
    const int blocks = (C + detail::kColumnBlock - 1) / detail::kColumnBlock;
#pragma omp parallel for schedule(static)
    for (int block = 0; block < blocks; ++block) {
      const int c0 = block * detail::kColumnBlock;
      const int c1 = std::min(C, c0 + detail::kColumnBlock);
      for (int b = 0; b < B; ++b) {
        for (int t = 0; t < seq_len; ++t) {
          const std::size_t token = static_cast<std::size_t>(tokens[b * row_stride + t]);
          const T* g = dout + (static_cast<std::size_t>(b) * seq_len + t) * C;
          G* token_row = dwte.ptr + token * C;
          G* position_row = dwpe.ptr + static_cast<std::size_t>(t) * C;
          for (int c = c0; c < c1; ++c) {
            token_row[c] += G(widen(g[c]));
            position_row[c] += G(widen(g[c]));
          }
        }
      }
    }
  }

 private:
  // f(i, x, tanh(√(2/π)·(x + 0.044715·x³))) for every i < count, x = in[i] widened.
  template <class T, class F>
  static void for_gelu_chunks(const T* in, std::size_t count, F f) {
    using W = lightgpt::detail::widened_t<T>;
    const std::ptrdiff_t chunks =
        static_cast<std::ptrdiff_t>((count + kGeluChunk - 1) / kGeluChunk);
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t chunk = 0; chunk < chunks; ++chunk) {
      const std::size_t begin = static_cast<std::size_t>(chunk) * kGeluChunk;
      const int n = static_cast<int>(std::min<std::size_t>(kGeluChunk, count - begin));
      alignas(64) W th[kGeluChunk];
      detail::gelu_tanh(th, n, [&](int i) { return W(widen(in[begin + i])); });
      for (int i = 0; i < n; ++i) f(begin + i, W(widen(in[begin + i])), th[i]);
    }
  }

  template <class T>
  static auto widen(T x) {
    return lightgpt::detail::widen(x);
  }
  template <class T, class V>
  static void store(Grad<T> grad, std::size_t i, V value) {
    grad.ptr[i] = grad.mode == Mode::accumulate ? T(widen(grad.ptr[i]) + value) : T(value);
  }
};

}  // namespace lightgpt::cpu
