// Per-element math shared by the CPU kernels and the CUDA kernels (LIGHTGPT_HD), so the CPU tests
// cover the exact formulas the GPU runs. GELU is GPT-2's tanh approximation.
#pragma once

#include <cmath>
#include <cstdint>

#include "platform.hpp"

namespace lightgpt::detail {

template <class A>
LIGHTGPT_HD inline A gelu(A x) {
  using std::tanh;
  constexpr A kSqrt2OverPi = A(0.7978845608028654);
  constexpr A kCubic = A(0.044715);
  A inner = kSqrt2OverPi * (x + kCubic * x * x * x);
  return A(0.5) * x * (A(1) + tanh(inner));
}

// d gelu(x) / dx.
template <class A>
LIGHTGPT_HD inline A gelu_grad(A x) {
  using std::tanh;
  constexpr A kSqrt2OverPi = A(0.7978845608028654);
  constexpr A kCubic = A(0.044715);
  A inner = kSqrt2OverPi * (x + kCubic * x * x * x);
  A t = tanh(inner);
  A sech2 = A(1) - t * t;
  return A(0.5) * (A(1) + t) + A(0.5) * x * sech2 * kSqrt2OverPi * (A(1) + A(3) * kCubic * x * x);
}

// One step of the online (streaming) softmax: folds a new logit into a running (max, sum of
// exp(logit - max)) pair without overflow.
template <class A>
struct OnlineSoftmax {
  A max = -INFINITY;
  A sum = 0;

  LIGHTGPT_HD void add(A logit) {
    using std::exp;
    if (logit > max) {
      sum = sum * exp(max - logit) + A(1);
      max = logit;
    } else {
      sum += exp(logit - max);
    }
  }
  LIGHTGPT_HD A log_sum_exp() const {
    using std::log;
    return max + log(sum);
  }
};

// Dropout's keep decision for element i under `seed`: a stateless hash, so the forward and the
// backward (and the CPU and the GPU) draw the same mask without storing it. An element is kept
// when the hash's top 24 bits are at least `threshold` = round(p · 2^24); see dropout_threshold.
LIGHTGPT_HD inline bool dropout_keep(std::uint64_t seed, std::uint64_t i, std::uint32_t threshold) {
  std::uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<std::uint32_t>(z >> 40) >= threshold;
}

// The seed under which element i draws the mask that element first + i draws under `seed`:
// dropout_keep(dropout_seed_from(seed, first), i, t) == dropout_keep(seed, first + i, t). A row
// group of a batch split (GPT::set_batch_split) draws its rows' part of the whole batch's masks.
LIGHTGPT_HD inline std::uint64_t dropout_seed_from(std::uint64_t seed, std::uint64_t first) {
  return seed + first * 0x9e3779b97f4a7c15ull;
}

inline std::uint32_t dropout_threshold(double p) {
  return static_cast<std::uint32_t>(std::lround(p * double(1u << 24)));
}

}  // namespace lightgpt::detail
