// AfnoMixer's kernels on the GPU, AfnoKernels<Cuda> = FftOps + AfnoOps, the formulas of cpu.hpp.
// FftOps: the causal long convolution y[t] = Σ_{s≤t} k[t−s]·x[s] per channel as one product of
// spectra, for every (batch, channel) sequence at once: a tiled transpose gathers (B, T, C) into
// zero-padded fp32 rows of n + 2 floats, one batched in-place cuFFT R2C turns each into n/2 + 1
// bins, a kernel multiplies them by the filter spectra (with the 1/n of the round trip), one C2R
// brings them back and a transpose scatters the first T values. n is the CPU's length (the smallest
// 2/3/5-smooth multiple of 4 that is ≥ 2T − 1), so no circular wrap-around reaches [0, T). Every
// storage type runs the FFTs in fp32. The filter gradient Σ_b irfft(rfft(dy)·conj(rfft(x))) sums
// the batch per frequency bin in order (one thread per bin, no atomics), so it is bit-reproducible.
// cuFFT plans are made once per (direction, n, batch) and device, run on the context's stream,
// and take their work area from the cuBLASLt workspace (same stream, so never at the same time)
// or a grow-only buffer; the spectra live in a grow-only buffer per device, like the context's
// scratch slots: after the first call at the largest shape nothing is allocated. So the arena slot
// the mixer reserves (causal_conv_scratch_size) is empty on the GPU: the CPU's per-thread scratch
// depends on max_T only, the GPU's on B·C·n, which that contract does not see.
// AfnoOps: the block-diagonal linear layers as strided-batched cuBLASLt products over the blocks,
// the sigmoid gate, soft-shrink with the residual (the backward in one pass for both outputs), and
// the decoding step, one warp per channel.
#pragma once

#include <cuda_runtime.h>
#include <cufft.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "../../backend/contract.hpp"
#include "../../backend/cuda/context.cuh"
#include "../../backend/cuda/gemm.cuh"
#include "../../backend/cuda/norm_act.cuh"
#include "../../backend/cuda/reduce.cuh"
#include "../../core/error.hpp"
#include "../../core/precision.hpp"
#include "kernels.hpp"

namespace lightgpt::cuda {

inline void check_cufft(cufftResult status, const char* call) {
  LIGHTGPT_CHECK(status == CUFFT_SUCCESS, "cuFFT call ", call, " failed with status ",
                 static_cast<int>(status));
}

#define LIGHTGPT_CUFFT_CHECK(call) ::lightgpt::cuda::check_cufft((call), #call)

// The cuFFT state of one device: plans for in-place batched real transforms of rows of n + 2
// floats (n/2 + 1 complex bins), a grow-only buffer for the spectra and one for work areas larger
// than the cuBLASLt workspace. Created on first use and never destroyed, like Context.
class FftWorkspace {
 public:
  static FftWorkspace& current() {
    static std::mutex mutex;
    static std::map<int, FftWorkspace*> workspaces;
    Context& ctx = context();
    std::lock_guard<std::mutex> lock(mutex);
    FftWorkspace*& workspace = workspaces[ctx.device()];
    if (workspace == nullptr) workspace = new FftWorkspace(ctx);
    return *workspace;
  }

  // At least `floats` of device memory; the previous contents are not kept when it grows.
  float* buffer(std::size_t floats) {
    const std::size_t bytes = floats * sizeof(float);
    if (bytes > buffer_bytes_) {
      // cudaFree synchronises the device, so no queued kernel still uses the old buffer.
      device_release(buffer_);
      buffer_ = nullptr;
      buffer_bytes_ = 0;
      buffer_ = static_cast<float*>(device_allocate(bytes));
      buffer_bytes_ = bytes;
    }
    return buffer_;
  }

  // In place, `batch` rows of n + 2 floats from `rows` on: n reals → n/2 + 1 bins (forward,
  // unscaled) or back (inverse, unscaled: the round trip multiplies by n).
  void forward(float* rows, int n, std::int64_t batch) { execute(CUFFT_R2C, rows, n, batch); }
  void inverse(float* rows, int n, std::int64_t batch) { execute(CUFFT_C2R, rows, n, batch); }

 private:
  struct Plan {
    cufftHandle handle = 0;
    std::size_t work_bytes = 0;
  };
  using Key = std::tuple<int, int, std::int64_t>;  // (type, n, batch)

  explicit FftWorkspace(Context& ctx) : ctx_(ctx) {}

  const Plan& plan(cufftType type, int n, std::int64_t batch) {
    std::lock_guard<std::mutex> lock(mutex_);
    const Key key{static_cast<int>(type), n, batch};
    auto found = plans_.find(key);
    if (found != plans_.end()) return found->second;
    const long long bins = n / 2 + 1, pitch = 2 * bins;
    long long length = n;
    // Rows of `pitch` reals hold `bins` complex values in place.
    long long real_embed = pitch, complex_embed = bins;
    const bool r2c = type == CUFFT_R2C;
    Plan made;
    LIGHTGPT_CUFFT_CHECK(cufftCreate(&made.handle));
    try {
      LIGHTGPT_CUFFT_CHECK(cufftSetAutoAllocation(made.handle, 0));
      LIGHTGPT_CUFFT_CHECK(
          cufftMakePlanMany64(made.handle, 1, &length, r2c ? &real_embed : &complex_embed, 1,
                              r2c ? pitch : bins, r2c ? &complex_embed : &real_embed, 1,
                              r2c ? bins : pitch, type, batch, &made.work_bytes));
      LIGHTGPT_CUFFT_CHECK(cufftSetStream(made.handle, ctx_.stream()));
    } catch (const Error&) {
      cufftDestroy(made.handle);
      throw;
    }
    return plans_.emplace(key, made).first->second;
  }

  void* work_area(std::size_t bytes) {
    if (bytes <= ctx_.workspace_bytes()) return ctx_.workspace();
    if (bytes > work_bytes_) {
      device_release(work_);
      work_ = nullptr;
      work_bytes_ = 0;
      work_ = device_allocate(bytes);
      work_bytes_ = bytes;
    }
    return work_;
  }

  void execute(cufftType type, float* rows, int n, std::int64_t batch) {
    const Plan& p = plan(type, n, batch);
    LIGHTGPT_CUFFT_CHECK(cufftSetWorkArea(p.handle, work_area(p.work_bytes)));
    auto* spectra = reinterpret_cast<cufftComplex*>(rows);
    if (type == CUFFT_R2C) {
      LIGHTGPT_CUFFT_CHECK(cufftExecR2C(p.handle, rows, spectra));
    } else {
      LIGHTGPT_CUFFT_CHECK(cufftExecC2R(p.handle, spectra, rows));
    }
  }

  Context& ctx_;
  std::mutex mutex_;
  std::map<Key, Plan> plans_;
  float* buffer_ = nullptr;
  std::size_t buffer_bytes_ = 0;
  void* work_ = nullptr;
  std::size_t work_bytes_ = 0;
};

namespace kernels {

constexpr int kTransposeTile = 32;  // a tile of 32 positions × 32 channels
constexpr int kTransposeRows = 8;   // threadIdx.y: each thread moves 4 values of the tile

// rows[(b·C + c)·pitch + t] = in[(b·T + t)·C + c] in fp32 for t < T, zero for T ≤ t < pitch.
// blockIdx.x = b·time_tiles + tile of t, blockIdx.y = tile of c.
template <class T>
__global__ void gather_sequences_kernel(float* rows, const T* in, int seq_len, int C, int pitch,
                                        int time_tiles) {
  __shared__ float tile[kTransposeTile][kTransposeTile + 1];
  const int b = blockIdx.x / time_tiles, t0 = (blockIdx.x % time_tiles) * kTransposeTile;
  const int c0 = blockIdx.y * kTransposeTile;
  const std::size_t batch = static_cast<std::size_t>(b) * seq_len * C;
  for (int i = threadIdx.y; i < kTransposeTile; i += kTransposeRows) {
    const int t = t0 + i, c = c0 + threadIdx.x;  // reads run along c
    tile[i][threadIdx.x] = t < seq_len && c < C ? load(in, batch + std::size_t(t) * C + c) : 0.0f;
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTransposeTile; i += kTransposeRows) {
    const int c = c0 + i, t = t0 + threadIdx.x;  // writes run along t
    if (c < C && t < pitch) {
      rows[(static_cast<std::size_t>(b) * C + c) * pitch + t] = tile[threadIdx.x][i];
    }
  }
}

// out[(b·T + t)·C + c] (=|+=) rows[(b·C + c)·pitch + t] for t < T, rounded once to T.
// blockIdx.x = b·time_tiles + tile of t, blockIdx.y = tile of c.
template <class T>
__global__ void scatter_sequences_kernel(T* out, bool accumulate, const float* rows, int seq_len,
                                         int C, int pitch, int time_tiles) {
  __shared__ float tile[kTransposeTile][kTransposeTile + 1];
  const int b = blockIdx.x / time_tiles, t0 = (blockIdx.x % time_tiles) * kTransposeTile;
  const int c0 = blockIdx.y * kTransposeTile;
  for (int i = threadIdx.y; i < kTransposeTile; i += kTransposeRows) {
    const int c = c0 + i, t = t0 + threadIdx.x;  // reads run along t
    tile[i][threadIdx.x] =
        c < C && t < seq_len ? rows[(static_cast<std::size_t>(b) * C + c) * pitch + t] : 0.0f;
  }
  __syncthreads();
  const std::size_t batch = static_cast<std::size_t>(b) * seq_len * C;
  for (int i = threadIdx.y; i < kTransposeTile; i += kTransposeRows) {
    const int t = t0 + i, c = c0 + threadIdx.x;  // writes run along c
    if (t < seq_len && c < C)
      store(out, batch + std::size_t(t) * C + c, tile[threadIdx.x][i], accumulate);
  }
}

// rows[c·pitch + s] = filter[c·stride + s] in fp32 for s < T, zero for T ≤ s < pitch (taps at
// s ≥ T are never read).
template <class T>
__global__ void gather_filters_kernel(float* rows, const T* filter, int stride, int seq_len, int C,
                                      int pitch) {
  const std::size_t total = static_cast<std::size_t>(C) * pitch;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t c = i / pitch, s = i % pitch;
    rows[i] = s < std::size_t(seq_len) ? load(filter, c * stride + s) : 0.0f;
  }
}

// spectra[r, f] = spectra[r, f] · k · scale for the `rows` rows of `bins` bins, k the bin of
// filter r mod C (conjugated for the adjoint).
template <class Complex>
__global__ void multiply_spectra_kernel(Complex* spectra, const Complex* filters, std::size_t rows,
                                        int C, int bins, bool conjugate, float scale) {
  const std::size_t total = rows * bins;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t r = i / bins, f = i % bins, c = r % C;
    const Complex a = spectra[i];
    Complex k = filters[c * bins + f];
    if (conjugate) k.y = -k.y;
    spectra[i] = Complex{(a.x * k.x - a.y * k.y) * scale, (a.x * k.y + a.y * k.x) * scale};
  }
}

// grads[c, f] = scale · Σ_b dy[b·C + c, f] · conj(x[b·C + c, f]), the batch summed in order.
template <class Complex>
__global__ void filter_grad_spectra_kernel(Complex* grads, const Complex* dy, const Complex* x,
                                           int B, int C, int bins, float scale) {
  const std::size_t total = static_cast<std::size_t>(C) * bins;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    float re = 0.0f, im = 0.0f;
    for (int b = 0; b < B; ++b) {
      const std::size_t j = static_cast<std::size_t>(b) * total + i;  // row b·C + c, bin f
      const Complex g = dy[j], v = x[j];
      re += g.x * v.x + g.y * v.y;
      im += g.y * v.x - g.x * v.y;
    }
    grads[i] = Complex{re * scale, im * scale};
  }
}

// dfilter[c·stride + s] (=|+=) rows[c·pitch + s] for s < T (taps at s ≥ T untouched).
template <class A>
__global__ void store_filter_grads_kernel(A* dfilter, bool accumulate, const A* rows, int stride,
                                          int seq_len, int C, int pitch) {
  const std::size_t total = static_cast<std::size_t>(C) * seq_len;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t c = i / seq_len, s = i % seq_len;
    const A value = rows[c * pitch + s];
    A& tap = dfilter[c * stride + s];
    tap = accumulate ? tap + value : value;
  }
}

__device__ inline float gate_sigmoid(float a) { return 1.0f / (1.0f + expf(-a)); }

template <class T>
__global__ void sigmoid_gate_forward_kernel(T* v, const T* u, const T* gate_pre,
                                            std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    v[i] = T(load(u, i) * gate_sigmoid(load(gate_pre, i)));
  }
}

// Reads every input of element i before writing it: dgate_pre may alias dv.
template <class T>
__global__ void sigmoid_gate_backward_kernel(T* du, bool du_accumulate, T* dgate_pre,
                                             bool dgate_accumulate, const T* dv, const T* u,
                                             const T* gate_pre, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const float g = gate_sigmoid(load(gate_pre, i)), grad = load(dv, i), value = load(u, i);
    if (du) store(du, i, grad * g, du_accumulate);
    if (dgate_pre) store(dgate_pre, i, grad * value * g * (1.0f - g), dgate_accumulate);
  }
}

template <class T>
__global__ void shrink_residual_forward_kernel(T* out, const T* v, const T* z, float threshold,
                                               std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const float value = load(z, i);
    const float shrunk = value > threshold    ? value - threshold
                         : value < -threshold ? value + threshold
                                              : 0.0f;
    out[i] = T(load(v, i) + shrunk);
  }
}

template <class T>
__global__ void shrink_residual_backward_kernel(T* dv, bool dv_accumulate, T* dz,
                                                bool dz_accumulate, const T* dout, const T* z,
                                                float threshold, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const float grad = load(dout, i), value = load(z, i);
    if (dv) store(dv, i, grad, dv_accumulate);
    if (dz) store(dz, i, value > threshold || value < -threshold ? grad : 0.0f, dz_accumulate);
  }
}

constexpr int kStepChannelsPerBlock = 8;  // one warp per channel

// y[c] = Σ_{s≤t} filter[c·filter_stride + t − s] · past[s] with past[t] = x[c], which lane 0 also
// stores into the history (no lane reads it back, so there is no race).
template <class T>
__global__ void causal_conv_step_kernel(T* y, T* history, int history_stride, const T* x,
                                        const T* filter, int filter_stride, int t, int C) {
  const int c = blockIdx.x * kStepChannelsPerBlock + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (c >= C) return;
  T* past = history + static_cast<std::size_t>(c) * history_stride;
  const T* taps = filter + static_cast<std::size_t>(c) * filter_stride;
  const float current = load(x, c);
  float sum = 0.0f;
  for (int s = lane; s <= t; s += 32) sum += load(taps, t - s) * (s == t ? current : load(past, s));
  sum = warp_sum(sum);
  if (lane == 0) {
    past[t] = x[c];
    y[c] = T(sum);
  }
}

}  // namespace kernels

struct FftOps {
  // The transform length for sequences of T positions, the CPU's rule: the smallest multiple of 4
  // that is at least 2T − 1 and has no prime factor above 5.
  static int fft_length(int seq_len) {
    int n = (2 * seq_len - 1 + 3) / 4 * 4;
    if (n < 4) n = 4;
    while (!smooth(n / 4)) n += 4;
    return n;
  }

  // Nothing in the arena: the GPU buffers depend on B·C·n and live in FftWorkspace.
  static std::size_t causal_conv_scratch_size(int /*max_T*/) { return 0; }

  // y[b, t, c] = Σ_{s≤t} filter[c·filter_stride + t − s] · x[b, s, c], for x and y (B, T, C).
  template <class T, class A>
  static void causal_conv_forward(T* y, const T* x, const T* filter, int filter_stride, int B,
                                  int seq_len, int C, A* /*scratch*/,
                                  std::size_t /*scratch_size*/) {
    static_assert(std::is_same_v<A, float>, "the CUDA convolution accumulates in fp32");
    if (B == 0 || seq_len == 0 || C == 0) return;
    const Shape shape(B, seq_len, C);
    FftWorkspace& fft = FftWorkspace::current();
    float* rows = fft.buffer(region(shape.sequences, shape.pitch) + region(C, shape.pitch));
    float* filters = rows + region(shape.sequences, shape.pitch);
    filter_spectra(fft, filters, filter, filter_stride, shape);
    gather(rows, x, shape);
    fft.forward(rows, shape.n, shape.sequences);
    multiply(rows, filters, shape, false);
    fft.inverse(rows, shape.n, shape.sequences);
    scatter(Grad<T>{y, Mode::overwrite}, rows, shape);
  }

  // The adjoint of causal_conv_forward: dx[b, s, c] = Σ_{t≥s} dy[b, t, c] · k_c[t − s] and
  // dfilter[c·filter_stride + j] = Σ_b Σ_{t≥j} dy[b, t, c] · x[b, t − j, c] for j < T (taps at
  // j ≥ T are untouched). Either output may be null.
  template <class T, class A>
  static void causal_conv_backward(Grad<T> dx, Grad<A> dfilter, const T* dy, const T* x,
                                   const T* filter, int filter_stride, int B, int seq_len, int C,
                                   A* /*scratch*/, std::size_t /*scratch_size*/) {
    static_assert(std::is_same_v<A, float>, "the CUDA convolution keeps fp32 filter gradients");
    if ((!dx && !dfilter) || B == 0 || seq_len == 0 || C == 0) return;
    const Shape shape(B, seq_len, C);
    const std::size_t batch_floats = region(shape.sequences, shape.pitch);
    const std::size_t channel_floats = region(C, shape.pitch);
    FftWorkspace& fft = FftWorkspace::current();
    // output gradients | inputs (for dfilter) | filters (for dx) | filter gradients (for dfilter)
    const std::size_t input_floats = dfilter ? batch_floats : 0;
    const std::size_t filter_floats = dx ? channel_floats : 0;
    float* grads =
        fft.buffer(batch_floats + input_floats + filter_floats + (dfilter ? channel_floats : 0));
    float* inputs = grads + batch_floats;
    float* filters = inputs + input_floats;
    float* filter_grads = filters + filter_floats;
    gather(grads, dy, shape);
    fft.forward(grads, shape.n, shape.sequences);
    if (dfilter) {
      // Before dx: the C2R of dx overwrites the output gradients' spectra.
      gather(inputs, x, shape);
      fft.forward(inputs, shape.n, shape.sequences);
      const std::size_t bins = static_cast<std::size_t>(C) * shape.bins;
      kernels::filter_grad_spectra_kernel<<<elementwise_blocks(bins), 256, 0, context().stream()>>>(
          reinterpret_cast<float2*>(filter_grads), reinterpret_cast<const float2*>(grads),
          reinterpret_cast<const float2*>(inputs), B, C, shape.bins, 1.0f / float(shape.n));
      LIGHTGPT_CUDA_CHECK_LAUNCH();
      fft.inverse(filter_grads, shape.n, C);
      const std::size_t taps = static_cast<std::size_t>(C) * seq_len;
      kernels::store_filter_grads_kernel<<<elementwise_blocks(taps), 256, 0, context().stream()>>>(
          dfilter.ptr, dfilter.mode == Mode::accumulate, filter_grads, filter_stride, seq_len, C,
          shape.pitch);
      LIGHTGPT_CUDA_CHECK_LAUNCH();
    }
    if (dx) {
      filter_spectra(fft, filters, filter, filter_stride, shape);
      multiply(grads, filters, shape, true);
      fft.inverse(grads, shape.n, shape.sequences);
      scatter(dx, grads, shape);
    }
  }

 private:
  // One call's sizes: n-point transforms of B·C rows of pitch = n + 2 floats (bins complex).
  struct Shape {
    Shape(int b, int t, int c)
        : B(b),
          seq_len(t),
          C(c),
          n(fft_length(t)),
          bins(n / 2 + 1),
          pitch(n + 2),
          sequences(std::int64_t(b) * c) {
      LIGHTGPT_CHECK((C + kernels::kTransposeTile - 1) / kernels::kTransposeTile <= 65535,
                     "causal convolution: C = ", C, " channels exceed the transpose grid");
    }
    int B, seq_len, C, n, bins, pitch;
    std::int64_t sequences;
  };

  // Floats of `rows` rows of `pitch`, rounded up to 256 bytes so every region stays aligned.
  static std::size_t region(std::int64_t rows, int pitch) {
    const std::size_t floats = static_cast<std::size_t>(rows) * pitch;
    return (floats + 63) / 64 * 64;
  }

  static bool smooth(int m) {
    for (int p : {2, 3, 5}) {
      while (m % p == 0) m /= p;
    }
    return m == 1;
  }

  template <class T>
  static void gather(float* rows, const T* in, const Shape& s) {
    const int time_tiles = (s.pitch + kernels::kTransposeTile - 1) / kernels::kTransposeTile;
    const dim3 grid(static_cast<unsigned>(s.B) * time_tiles,
                    (s.C + kernels::kTransposeTile - 1) / kernels::kTransposeTile);
    kernels::gather_sequences_kernel<<<grid, dim3(kernels::kTransposeTile, kernels::kTransposeRows),
                                       0, context().stream()>>>(rows, in, s.seq_len, s.C, s.pitch,
                                                                time_tiles);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  template <class T>
  static void scatter(Grad<T> out, const float* rows, const Shape& s) {
    const int time_tiles = (s.seq_len + kernels::kTransposeTile - 1) / kernels::kTransposeTile;
    const dim3 grid(static_cast<unsigned>(s.B) * time_tiles,
                    (s.C + kernels::kTransposeTile - 1) / kernels::kTransposeTile);
    kernels::scatter_sequences_kernel<<<
        grid, dim3(kernels::kTransposeTile, kernels::kTransposeRows), 0, context().stream()>>>(
        out.ptr, out.mode == Mode::accumulate, rows, s.seq_len, s.C, s.pitch, time_tiles);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // Unscaled spectra of the C filters truncated to T taps (the 1/n goes into multiply()).
  template <class T>
  static void filter_spectra(FftWorkspace& fft, float* rows, const T* filter, int filter_stride,
                             const Shape& s) {
    const std::size_t total = static_cast<std::size_t>(s.C) * s.pitch;
    kernels::gather_filters_kernel<<<elementwise_blocks(total), 256, 0, context().stream()>>>(
        rows, filter, filter_stride, s.seq_len, s.C, s.pitch);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    fft.forward(rows, s.n, s.C);
  }

  static void multiply(float* rows, const float* filters, const Shape& s, bool conjugate) {
    const std::size_t total = static_cast<std::size_t>(s.sequences) * s.bins;
    kernels::multiply_spectra_kernel<<<elementwise_blocks(total), 256, 0, context().stream()>>>(
        reinterpret_cast<float2*>(rows), reinterpret_cast<const float2*>(filters),
        static_cast<std::size_t>(s.sequences), s.C, s.bins, conjugate, 1.0f / float(s.n));
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }
};

struct AfnoOps {
  // out[N, blocks·OB]: block i of each row is in[:, block i of IB] · weight[i]ᵀ + bias (bias may
  // be null); weight is (blocks, OB, IB) row-major. One strided-batched product over the blocks
  // (the blocks of a row interleave, so the batch stride is the block width); the bias goes
  // through the epilogue for a single block, else one pass over the output.
  template <class T>
  static void block_linear_forward(T* out, const T* in, const T* weight, const T* bias, int N,
                                   int blocks, int IB, int OB) {
    if (N == 0) return;
    GemmCall call;
    call.trans_b = true;
    call.M = N, call.N = OB, call.K = IB;
    call.A = in, call.a_type = data_type<T>(), call.lda = std::int64_t(blocks) * IB;
    call.stride_a = IB;
    call.B = weight, call.b_type = data_type<T>(), call.ldb = IB;
    call.stride_b = std::int64_t(OB) * IB;
    call.C = out, call.c_type = data_type<T>(), call.ldc = std::int64_t(blocks) * OB;
    call.stride_c = OB;
    call.batch = blocks;
    if (blocks == 1) call.bias = bias;
    gemm(call);
    if (bias != nullptr && blocks > 1) {
      kernels::add_bias_rows(out, data_type<T>(), bias, N, blocks * OB, std::int64_t(blocks) * OB);
    }
  }

  // din[N, blocks·IB] = dout · weight per block; dweight[i] = dout[:, block i]ᵀ · in[:, block i];
  // dbias = Σ_rows dout (deterministic column sums). Any of the three may be null; parameter
  // gradients are fp32.
  template <class T, class G>
  static void block_linear_backward(Grad<T> din, Grad<G> dweight, Grad<G> dbias, const T* dout,
                                    const T* in, const T* weight, int N, int blocks, int IB,
                                    int OB) {
    static_assert(std::is_same_v<G, float>, "CUDA layers keep fp32 parameter gradients");
    const std::int64_t in_width = std::int64_t(blocks) * IB, out_width = std::int64_t(blocks) * OB;
    if (din) {
      GemmCall call;
      call.M = N, call.N = IB, call.K = OB;
      call.A = dout, call.a_type = data_type<T>(), call.lda = out_width, call.stride_a = OB;
      call.B = weight, call.b_type = data_type<T>(), call.ldb = IB;
      call.stride_b = std::int64_t(OB) * IB;
      call.C = din.ptr, call.c_type = data_type<T>(), call.ldc = in_width, call.stride_c = IB;
      call.batch = blocks;
      call.beta = din.mode == Mode::accumulate ? 1.0f : 0.0f;
      gemm(call);
    }
    if (dweight) {
      GemmCall call;
      call.trans_a = true;
      call.M = OB, call.N = IB, call.K = N;
      call.A = dout, call.a_type = data_type<T>(), call.lda = out_width, call.stride_a = OB;
      call.B = in, call.b_type = data_type<T>(), call.ldb = in_width, call.stride_b = IB;
      call.C = dweight.ptr, call.c_type = CUDA_R_32F, call.ldc = IB;
      call.stride_c = std::int64_t(OB) * IB;
      call.batch = blocks;
      call.beta = dweight.mode == Mode::accumulate ? 1.0f : 0.0f;
      gemm(call);
    }
    if (dbias) {
      kernels::column_sums(kernels::RowSum<T>{dout, static_cast<int>(out_width)}, N,
                           static_cast<int>(out_width), dbias.ptr, dbias.mode == Mode::accumulate,
                           nullptr, false);
    }
  }

  // v = u ⊙ σ(gate_pre).
  template <class T>
  static void sigmoid_gate_forward(T* v, const T* u, const T* gate_pre, std::size_t count) {
    if (count == 0) return;
    kernels::sigmoid_gate_forward_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
        v, u, gate_pre, count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // du = dv ⊙ σ(a), dgate_pre = dv ⊙ u ⊙ σ(a)(1 − σ(a)). Element-wise, so dgate_pre may alias dv.
  template <class T>
  static void sigmoid_gate_backward(Grad<T> du, Grad<T> dgate_pre, const T* dv, const T* u,
                                    const T* gate_pre, std::size_t count) {
    if (count == 0 || (!du && !dgate_pre)) return;
    kernels::
        sigmoid_gate_backward_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
            du.ptr, du.mode == Mode::accumulate, dgate_pre.ptr, dgate_pre.mode == Mode::accumulate,
            dv, u, gate_pre, count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // out = v + S_λ(z), S_λ the soft-shrink sign(z)·max(|z| − λ, 0).
  template <class T>
  static void shrink_residual_forward(T* out, const T* v, const T* z, double lambda,
                                      std::size_t count) {
    if (count == 0) return;
    kernels::
        shrink_residual_forward_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
            out, v, z, float(lambda), count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // dv = dout, dz = dout where |z| > λ and 0 elsewhere, both in one pass.
  template <class T>
  static void shrink_residual_backward(Grad<T> dv, Grad<T> dz, const T* dout, const T* z,
                                       double lambda, std::size_t count) {
    if (count == 0 || (!dv && !dz)) return;
    kernels::
        shrink_residual_backward_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
            dv.ptr, dv.mode == Mode::accumulate, dz.ptr, dz.mode == Mode::accumulate, dout, z,
            float(lambda), count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // Decoding: stores x (C values, device memory) as position t of `history` (C rows of
  // history_stride) and writes y[c] = Σ_{s≤t} filter[c·filter_stride + t − s] ·
  // history[c·history_stride + s] in fp32: a warp per channel, O(t·C).
  template <class A, class T>
  static void causal_conv_step(T* y, T* history, int history_stride, const T* x, const T* filter,
                               int filter_stride, int t, int C) {
    static_assert(std::is_same_v<A, float>, "the CUDA convolution accumulates in fp32");
    if (C == 0) return;
    const int blocks = (C + kernels::kStepChannelsPerBlock - 1) / kernels::kStepChannelsPerBlock;
    kernels::causal_conv_step_kernel<<<blocks, 32 * kernels::kStepChannelsPerBlock, 0,
                                       context().stream()>>>(y, history, history_stride, x, filter,
                                                             filter_stride, t, C);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace lightgpt::cuda

namespace lightgpt {

template <>
struct AfnoKernels<Cuda> : cuda::FftOps, cuda::AfnoOps {};

}  // namespace lightgpt
