// AfnoMixer's kernels on the CPU, AfnoKernels<Cpu> = FftOps + AfnoOps. FftOps: the causal long
// convolution y[t] = Σ_{s≤t} k[t−s]·x[s] per channel, as one product of spectra: zero-padded to n ≥
// 2T − 1 no circular wrap-around reaches [0, T), and n is the next multiple of 4 whose only prime
// factors are 2, 3 and 5, so Eigen's kissfft runs its packed real transform and radix-2/3/4/5
// butterflies only (a prime T costs what its neighbours cost). Channels go in groups of
// kChannelGroup, gathered from the (B, T, C) layout into contiguous sequences, one group per OpenMP
// thread, so results do not depend on the thread count. AfnoOps: the per-token parts
// (block-diagonal linear layers, the sigmoid gate, soft-shrink with the residual) and the
// one-position convolution for decoding. 16-bit storage (bfloat16, half): the FFT, every sum and
// every element-wise formula run in fp32 (gather widens, the filter gradient is fp32) and each
// stored value is rounded once; the block linear layers widen into staging slots 0–4 and call their
// fp32 kernel.
//
// The FFT engine is Eigen's default, kissfft (BSD, header-only). Eigen's module can be switched to
// FFTW (EIGEN_FFTW_DEFAULT, linking fftw3f/fftw3); lightgpt does not test that path, and FFTW is
// GPL, which then binds the whole program, so it is never the default (docs/mixers.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstddef>
#include <type_traits>
#include <unsupported/Eigen/FFT>

#include "../../backend/contract.hpp"
#include "../../backend/cpu/eigen.hpp"
#include "../../core/error.hpp"
#include "../../core/precision.hpp"
#include "kernels.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace lightgpt::cpu {

struct FftOps {
  static constexpr int kChannelGroup = 16;
  static constexpr std::size_t kWorkerAlign = 64;  // elements

  // The transform length for sequences of T positions: the smallest multiple of 4 that is at
  // least 2T − 1 and has no prime factor above 5.
  static int fft_length(int seq_len) {
    int n = std::max(4, (2 * seq_len - 1 + 3) / 4 * 4);
    while (!smooth(n / 4)) n += 4;
    return n;
  }

  // Scratch (in elements of the accumulation type) the convolution kernels need for any T up to
  // max_T, for as many workers as OpenMP may run.
  static std::size_t causal_conv_scratch_size(int max_T) {
    return static_cast<std::size_t>(conv_workers()) * worker_scratch(fft_length(max_T));
  }

  // y[b, t, c] = Σ_{s≤t} filter[c·filter_stride + t − s] · x[b, s, c], for x and y (B, T, C).
  template <class T, class A>
  static void causal_conv_forward(T* y, const T* x, const T* filter, int filter_stride, int B,
                                  int seq_len, int C, A* scratch, std::size_t scratch_size) {
    const int n = fft_length(seq_len), bins = n / 2 + 1;
    const std::size_t per_worker = worker_scratch(n);
    const int workers = usable_workers(scratch_size, per_worker);
    const int groups = (C + kChannelGroup - 1) / kChannelGroup;
#pragma omp parallel for num_threads(workers) schedule(static)
    for (int group = 0; group < groups; ++group) {
      Workspace<A> w(scratch + static_cast<std::size_t>(worker_index()) * per_worker, n);
      const int c0 = group * kChannelGroup, width = std::min(kChannelGroup, C - c0);
      filter_spectra(w, filter, filter_stride, c0, width, seq_len, n);
      for (int b = 0; b < B; ++b) {
        const std::size_t batch = static_cast<std::size_t>(b) * seq_len * C;
        gather(w.rows, x + batch, seq_len, C, c0, width, n);
        for (int j = 0; j < width; ++j) {
          A* row = w.rows + static_cast<std::size_t>(j) * n;
          engine<A>().fwd(w.spectrum, row, n);
          const auto* k = w.filters + static_cast<std::size_t>(j) * bins;
          for (int f = 0; f < bins; ++f) w.spectrum[f] *= k[f];
          engine<A>().inv(row, w.spectrum, n);
        }
        scatter(Grad<T>{y + batch, Mode::overwrite}, w.rows, seq_len, C, c0, width, n);
      }
    }
  }

  // The adjoint of causal_conv_forward: dx[b, s, c] = Σ_{t≥s} dy[b, t, c] · k_c[t − s] and
  // dfilter[c·filter_stride + j] = Σ_b Σ_{t≥j} dy[b, t, c] · x[b, t − j, c] for j < T (taps at
  // j ≥ T are untouched). Either output may be null.
  template <class T, class A>
  static void causal_conv_backward(Grad<T> dx, Grad<A> dfilter, const T* dy, const T* x,
                                   const T* filter, int filter_stride, int B, int seq_len, int C,
                                   A* scratch, std::size_t scratch_size) {
    using Complex = std::complex<A>;
    const int n = fft_length(seq_len), bins = n / 2 + 1;
    const std::size_t per_worker = worker_scratch(n);
    const int workers = usable_workers(scratch_size, per_worker);
    const int groups = (C + kChannelGroup - 1) / kChannelGroup;
#pragma omp parallel for num_threads(workers) schedule(static)
    for (int group = 0; group < groups; ++group) {
      Workspace<A> w(scratch + static_cast<std::size_t>(worker_index()) * per_worker, n);
      const int c0 = group * kChannelGroup, width = std::min(kChannelGroup, C - c0);
      filter_spectra(w, filter, filter_stride, c0, width, seq_len, n);
      std::fill(w.filter_grads, w.filter_grads + static_cast<std::size_t>(width) * bins,
                Complex(0));
      for (int b = 0; b < B; ++b) {
        const std::size_t batch = static_cast<std::size_t>(b) * seq_len * C;
        gather(w.rows, dy + batch, seq_len, C, c0, width, n);
        for (int j = 0; j < width; ++j) {
          engine<A>().fwd(w.output_grads + static_cast<std::size_t>(j) * bins,
                          w.rows + static_cast<std::size_t>(j) * n, n);
        }
        if (dfilter) {
          gather(w.rows, x + batch, seq_len, C, c0, width, n);
          for (int j = 0; j < width; ++j) {
            engine<A>().fwd(w.spectrum, w.rows + static_cast<std::size_t>(j) * n, n);
            const Complex* g = w.output_grads + static_cast<std::size_t>(j) * bins;
            Complex* acc = w.filter_grads + static_cast<std::size_t>(j) * bins;
            for (int f = 0; f < bins; ++f) acc[f] += g[f] * std::conj(w.spectrum[f]);
          }
        }
        if (dx) {
          for (int j = 0; j < width; ++j) {
            const Complex* g = w.output_grads + static_cast<std::size_t>(j) * bins;
            const Complex* k = w.filters + static_cast<std::size_t>(j) * bins;
            for (int f = 0; f < bins; ++f) w.spectrum[f] = g[f] * std::conj(k[f]);
            engine<A>().inv(w.rows + static_cast<std::size_t>(j) * n, w.spectrum, n);
          }
          scatter(Grad<T>{dx.ptr + batch, dx.mode}, w.rows, seq_len, C, c0, width, n);
        }
      }
      if (dfilter) {
        const A scale = A(1) / A(n);
        for (int j = 0; j < width; ++j) {
          Complex* acc = w.filter_grads + static_cast<std::size_t>(j) * bins;
          for (int f = 0; f < bins; ++f) acc[f] *= scale;
          engine<A>().inv(w.rows, acc, n);
          A* taps = dfilter.ptr + static_cast<std::size_t>(c0 + j) * filter_stride;
          for (int s = 0; s < seq_len; ++s) {
            taps[s] = dfilter.mode == Mode::accumulate ? taps[s] + w.rows[s] : w.rows[s];
          }
        }
      }
    }
  }

 private:
  template <class A>
  struct Workspace {
    using Complex = std::complex<A>;
    // rows: kChannelGroup sequences of n; then spectra of n / 2 + 1 bins: one scratch spectrum
    // and, per channel of the group, the filter's, the output gradient's and the filter
    // gradient's.
    Workspace(A* base, int n) {
      const std::size_t bins = static_cast<std::size_t>(n / 2 + 1);
      rows = base;
      spectrum = reinterpret_cast<Complex*>(base + static_cast<std::size_t>(kChannelGroup) * n);
      filters = spectrum + bins;
      output_grads = filters + kChannelGroup * bins;
      filter_grads = output_grads + kChannelGroup * bins;
    }
    A* rows;
    Complex *spectrum, *filters, *output_grads, *filter_grads;
  };

  static std::size_t worker_scratch(int n) {
    const std::size_t bins = static_cast<std::size_t>(n / 2 + 1);
    const std::size_t elements =
        static_cast<std::size_t>(kChannelGroup) * n + 2 * (3 * kChannelGroup + 1) * bins;
    return (elements + kWorkerAlign - 1) / kWorkerAlign * kWorkerAlign;  // workers stay aligned
  }

  static bool smooth(int m) {
    for (int p : {2, 3, 5}) {
      while (m % p == 0) m /= p;
    }
    return m == 1;
  }

  static int conv_workers() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
  }
  static int worker_index() {
#if defined(_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
  }
  // Workers whose scratch fits: the thread count may have changed since the scratch was sized.
  static int usable_workers(std::size_t scratch_size, std::size_t per_worker) {
    const std::size_t fit = scratch_size / per_worker;
    LIGHTGPT_CHECK(fit >= 1, "causal convolution scratch of ", scratch_size,
                   " elements is smaller than one worker's ", per_worker,
                   "; size it with causal_conv_scratch_size(max_T)");
    return static_cast<int>(std::min<std::size_t>(fit, static_cast<std::size_t>(conv_workers())));
  }

  // One FFT engine per thread: kissfft caches twiddles and work buffers per length, so after the
  // first call of a length nothing is allocated. Unscaled: the 1/n goes into the filter spectra.
  template <class A>
  static Eigen::FFT<A>& engine() {
    using Fft = Eigen::FFT<A>;
    thread_local Fft fft(typename Fft::impl_type(),
                         static_cast<typename Fft::Flag>(Fft::HalfSpectrum | Fft::Unscaled));
    return fft;
  }

  // Spectra of the group's filters truncated to T taps, scaled by 1/n.
  template <class T, class A>
  static void filter_spectra(Workspace<A>& w, const T* filter, int filter_stride, int c0, int width,
                             int seq_len, int n) {
    const int bins = n / 2 + 1;
    const A scale = A(1) / A(n);
    for (int j = 0; j < width; ++j) {
      const T* taps = filter + static_cast<std::size_t>(c0 + j) * filter_stride;
      for (int s = 0; s < seq_len; ++s) w.rows[s] = A(taps[s]);
      std::fill(w.rows + seq_len, w.rows + n, A(0));
      auto* k = w.filters + static_cast<std::size_t>(j) * bins;
      engine<A>().fwd(k, w.rows, n);
      for (int f = 0; f < bins; ++f) k[f] *= scale;
    }
  }

  // rows[j][t] = in[t, c0 + j] for t < T, zero up to n.
  template <class T, class A>
  static void gather(A* rows, const T* in, int seq_len, int C, int c0, int width, int n) {
    for (int t = 0; t < seq_len; ++t) {
      const T* src = in + static_cast<std::size_t>(t) * C + c0;
      for (int j = 0; j < width; ++j) rows[static_cast<std::size_t>(j) * n + t] = A(src[j]);
    }
    for (int j = 0; j < width; ++j) {
      std::fill(rows + static_cast<std::size_t>(j) * n + seq_len,
                rows + static_cast<std::size_t>(j + 1) * n, A(0));
    }
  }

  // out[t, c0 + j] (=|+=) rows[j][t] for t < T.
  template <class T, class A>
  static void scatter(Grad<T> out, const A* rows, int seq_len, int C, int c0, int width, int n) {
    for (int t = 0; t < seq_len; ++t) {
      T* dst = out.ptr + static_cast<std::size_t>(t) * C + c0;
      for (int j = 0; j < width; ++j) {
        const A value = rows[static_cast<std::size_t>(j) * n + t];
        dst[j] = out.mode == Mode::accumulate ? T(A(dst[j]) + value) : T(value);
      }
    }
  }
};

struct AfnoOps {
  // Element-wise loops shorter than this run on the calling thread: a parallel region costs more
  // than the work (and much more when the cores are shared).
  static constexpr std::size_t kParallelElements = std::size_t(1) << 16;

  // out[N, blocks·OB]: block i of each row is in[:, block i of IB] · weight[i]ᵀ + bias (bias may
  // be null); weight is (blocks, OB, IB) row-major. 16-bit storage widens the operands into
  // staging slots 0 (in), 1 (weight), 2 (out) and 3 (bias), runs the fp32 kernel and rounds the
  // output once.
  template <class T>
  static void block_linear_forward(T* out, const T* in, const T* weight, const T* bias, int N,
                                   int blocks, int IB, int OB) {
    if constexpr (is_16bit_v<T>) {
      const std::size_t in_values = std::size_t(N) * blocks * IB;
      const std::size_t out_values = std::size_t(N) * blocks * OB;
      const std::size_t weight_values = std::size_t(blocks) * OB * IB;
      float* x = detail::staging(0, in_values);
      float* w = detail::staging(1, weight_values);
      float* y = detail::staging(2, out_values);
      float* b = nullptr;
      detail::widen_into(x, in, in_values);
      detail::widen_into(w, weight, weight_values);
      if (bias) {
        b = detail::staging(3, std::size_t(blocks) * OB);
        detail::widen_into(b, bias, std::size_t(blocks) * OB);
      }
      block_linear_forward_wide(y, static_cast<const float*>(x), static_cast<const float*>(w),
                                static_cast<const float*>(b), N, blocks, IB, OB);
      detail::round_into(out, y, out_values);
    } else {
      block_linear_forward_wide(out, in, weight, bias, N, blocks, IB, OB);
    }
  }

  // din[N, blocks·IB] = dout · weight per block; dweight[i] = dout[:, block i]ᵀ · in[:, block i];
  // dbias = Σ_rows dout. Any of the three may be null. The parameter gradients G are the storage
  // type, or fp32 for 16-bit storage, whose operands are widened into staging slots 0 (in),
  // 1 (weight), 2 (dout) and 4 (din, rounded once into din at the end).
  template <class T, class G>
  static void block_linear_backward(Grad<T> din, Grad<G> dweight, Grad<G> dbias, const T* dout,
                                    const T* in, const T* weight, int N, int blocks, int IB,
                                    int OB) {
    if constexpr (is_16bit_v<T>) {
      static_assert(std::is_same_v<G, float>, "16-bit layers keep fp32 parameter gradients");
      const std::size_t in_values = std::size_t(N) * blocks * IB;
      const std::size_t out_values = std::size_t(N) * blocks * OB;
      const std::size_t weight_values = std::size_t(blocks) * OB * IB;
      float* g = detail::staging(2, out_values);
      detail::widen_into(g, dout, out_values);
      float *x = nullptr, *w = nullptr, *dx = nullptr;
      if (dweight) {
        x = detail::staging(0, in_values);
        detail::widen_into(x, in, in_values);
      }
      if (din) {
        w = detail::staging(1, weight_values);
        dx = detail::staging(4, in_values);
        detail::widen_into(w, weight, weight_values);
      }
      block_linear_backward_wide(Grad<float>{dx, Mode::overwrite}, dweight, dbias,
                                 static_cast<const float*>(g), static_cast<const float*>(x),
                                 static_cast<const float*>(w), N, blocks, IB, OB);
      if (din) detail::round_into(din.ptr, dx, in_values, din.mode);
    } else {
      static_assert(std::is_same_v<G, T>, "fp32/fp64 layers keep gradients in their own type");
      block_linear_backward_wide(din, dweight, dbias, dout, in, weight, N, blocks, IB, OB);
    }
  }

  // v = u ⊙ σ(gate_pre).
  template <class T>
  static void sigmoid_gate_forward(T* v, const T* u, const T* gate_pre, std::size_t count) {
#pragma omp parallel for schedule(static) if (count >= kParallelElements)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(count); ++i) {
      v[i] = T(widen(u[i]) * sigmoid(widen(gate_pre[i])));
    }
  }

  // du = dv ⊙ σ(a), dgate_pre = dv ⊙ u ⊙ σ(a)(1 − σ(a)). Element-wise, so dgate_pre may alias dv.
  template <class T>
  static void sigmoid_gate_backward(Grad<T> du, Grad<T> dgate_pre, const T* dv, const T* u,
                                    const T* gate_pre, std::size_t count) {
    using W = lightgpt::detail::widened_t<T>;
#pragma omp parallel for schedule(static) if (count >= kParallelElements)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(count); ++i) {
      const W g = sigmoid(widen(gate_pre[i])), grad = widen(dv[i]);
      if (du) put(du, i, grad * g);
      if (dgate_pre) put(dgate_pre, i, grad * widen(u[i]) * g * (W(1) - g));
    }
  }

  // out = v + S_λ(z), S_λ the soft-shrink sign(z)·max(|z| − λ, 0).
  template <class T>
  static void shrink_residual_forward(T* out, const T* v, const T* z, double lambda,
                                      std::size_t count) {
    using W = lightgpt::detail::widened_t<T>;
    const W threshold = W(lambda);
#pragma omp parallel for schedule(static) if (count >= kParallelElements)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(count); ++i) {
      const W value = widen(z[i]);
      const W shrunk = value > threshold    ? value - threshold
                       : value < -threshold ? value + threshold
                                            : W(0);
      out[i] = T(widen(v[i]) + shrunk);
    }
  }

  // dv = dout, dz = dout where |z| > λ and 0 elsewhere.
  template <class T>
  static void shrink_residual_backward(Grad<T> dv, Grad<T> dz, const T* dout, const T* z,
                                       double lambda, std::size_t count) {
    using W = lightgpt::detail::widened_t<T>;
    const W threshold = W(lambda);
#pragma omp parallel for schedule(static) if (count >= kParallelElements)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(count); ++i) {
      const W grad = widen(dout[i]), value = widen(z[i]);
      if (dv) put(dv, i, grad);
      if (dz) put(dz, i, (value > threshold || value < -threshold) ? grad : W(0));
    }
  }

  // Decoding: stores x (C values) as position t of `history` (C rows of history_stride) and
  // writes y[c] = Σ_{s≤t} filter[c·filter_stride + t − s] · history[c·history_stride + s],
  // accumulated in A in order of s: O(t·C).
  template <class A, class T>
  static void causal_conv_step(T* y, T* history, int history_stride, const T* x, const T* filter,
                               int filter_stride, int t, int C) {
#pragma omp parallel for schedule(static) if (std::size_t(t + 1) * C >= kParallelElements)
    for (int c = 0; c < C; ++c) {
      T* past = history + static_cast<std::size_t>(c) * history_stride;
      const T* taps = filter + static_cast<std::size_t>(c) * filter_stride;
      past[t] = x[c];
      A sum = 0;
      for (int s = 0; s <= t; ++s) sum += A(taps[t - s]) * A(past[s]);
      y[c] = T(sum);
    }
  }

 private:
  // The kernels proper, for fp32/fp64 operands.
  template <class T>
  static void block_linear_forward_wide(T* out, const T* in, const T* weight, const T* bias, int N,
                                        int blocks, int IB, int OB) {
    const int in_stride = blocks * IB, out_stride = blocks * OB;
    for (int i = 0; i < blocks; ++i) {
      auto result = detail::strided(out + static_cast<std::size_t>(i) * OB, N, OB, out_stride);
      result.noalias() =
          detail::strided(in + static_cast<std::size_t>(i) * IB, N, IB, in_stride) *
          detail::view(weight + static_cast<std::size_t>(i) * OB * IB, OB, IB).transpose();
      if (bias) result.rowwise() += detail::row_vector(bias + static_cast<std::size_t>(i) * OB, OB);
    }
  }

  template <class T>
  static void block_linear_backward_wide(Grad<T> din, Grad<T> dweight, Grad<T> dbias, const T* dout,
                                         const T* in, const T* weight, int N, int blocks, int IB,
                                         int OB) {
    const int in_stride = blocks * IB, out_stride = blocks * OB;
    for (int i = 0; i < blocks; ++i) {
      auto grad_out = detail::strided(dout + static_cast<std::size_t>(i) * OB, N, OB, out_stride);
      const T* block_weight = weight + static_cast<std::size_t>(i) * OB * IB;
      if (din) {
        auto target = detail::strided(din.ptr + static_cast<std::size_t>(i) * IB, N, IB, in_stride);
        auto product = grad_out * detail::view(block_weight, OB, IB);
        if (din.mode == Mode::accumulate) {
          target.noalias() += product;
        } else {
          target.noalias() = product;
        }
      }
      if (dweight) {
        auto target = detail::view(dweight.ptr + static_cast<std::size_t>(i) * OB * IB, OB, IB);
        auto product = grad_out.transpose() *
                       detail::strided(in + static_cast<std::size_t>(i) * IB, N, IB, in_stride);
        if (dweight.mode == Mode::accumulate) {
          target.noalias() += product;
        } else {
          target.noalias() = product;
        }
      }
      if (dbias) {
        Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>> target(
            dbias.ptr + static_cast<std::size_t>(i) * OB, OB);
        if (dbias.mode == Mode::accumulate) {
          target += grad_out.colwise().sum();
        } else {
          target = grad_out.colwise().sum();
        }
      }
    }
  }

  template <class T>
  static auto widen(T x) {
    return lightgpt::detail::widen(x);
  }
  template <class W>
  static W sigmoid(W a) {
    return W(1) / (W(1) + std::exp(-a));
  }
  // Stores a widened value, rounding once (16-bit storage).
  template <class T, class W>
  static void put(Grad<T> grad, std::ptrdiff_t i, W value) {
    grad.ptr[i] = grad.mode == Mode::accumulate ? T(widen(grad.ptr[i]) + value) : T(value);
  }
};

}  // namespace lightgpt::cpu

namespace lightgpt {

template <>
struct AfnoKernels<Cpu> : cpu::FftOps, cpu::AfnoOps {};

}  // namespace lightgpt
