// Precision policies: the first parameter of GPT<...>. A policy names the storage type of working
// weights and activations (`storage_t`) and the type of every reduction, parameter gradient,
// master weight and optimizer moment (`accum_t`). 16-bit storage always accumulates in fp32.
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "platform.hpp"

namespace lightgpt {

// bfloat16 as raw bits: usable from host and device without pulling in Eigen or cuda_bf16.h.
struct bfloat16 {
  std::uint16_t bits;
};
// IEEE binary16 as raw bits.
struct half {
  std::uint16_t bits;
};

namespace detail {

// Round-to-nearest-even from fp32; NaN stays a (quiet) NaN.
LIGHTGPT_HD inline bfloat16 float_to_bf16(float x) {
  std::uint32_t u;
  static_assert(sizeof(u) == sizeof(x));
  __builtin_memcpy(&u, &x, sizeof(u));
  if ((u & 0x7fffffffu) > 0x7f800000u) return {static_cast<std::uint16_t>((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return {static_cast<std::uint16_t>(u >> 16)};
}

LIGHTGPT_HD inline float bf16_to_float(bfloat16 x) {
  std::uint32_t u = static_cast<std::uint32_t>(x.bits) << 16;
  float f;
  __builtin_memcpy(&f, &u, sizeof(f));
  return f;
}

}  // namespace detail

struct Fp32 {
  using storage_t = float;
  using accum_t = float;
  static constexpr std::string_view name = "fp32";
  static constexpr bool cpu_only = false;
};

// Double precision, CPU only: the reference for finite-difference gradient checks.
struct Fp64 {
  using storage_t = double;
  using accum_t = double;
  static constexpr std::string_view name = "fp64";
  static constexpr bool cpu_only = true;
};

struct Bf16 {
  using storage_t = bfloat16;
  using accum_t = float;
  static constexpr std::string_view name = "bf16";
  static constexpr bool cpu_only = false;
};

// fp16 storage; training with it uses dynamic loss scaling.
struct Fp16 {
  using storage_t = half;
  using accum_t = float;
  static constexpr std::string_view name = "fp16";
  static constexpr bool cpu_only = false;
};

template <class P>
concept PrecisionPolicy = requires {
  typename P::storage_t;
  typename P::accum_t;
  { P::name } -> std::convertible_to<std::string_view>;
  { P::cpu_only } -> std::convertible_to<bool>;
};

}  // namespace lightgpt
