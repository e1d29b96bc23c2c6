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

struct bfloat16;
struct float16;

namespace detail {

LIGHTGPT_HD inline std::uint32_t float_bits(float x) {
  std::uint32_t u;
  static_assert(sizeof(u) == sizeof(x));
  __builtin_memcpy(&u, &x, sizeof(u));
  return u;
}
LIGHTGPT_HD inline float bits_float(std::uint32_t u) {
  float f;
  __builtin_memcpy(&f, &u, sizeof(f));
  return f;
}

// Round-to-nearest-even from fp32 to bfloat16 bits; NaN stays a (quiet) NaN.
LIGHTGPT_HD inline std::uint16_t bf16_bits(float x) {
  std::uint32_t u = float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

// Round-to-nearest-even from fp32 to IEEE binary16 bits: overflow gives ±inf, tiny values become
// subnormals or ±0, NaN stays a (quiet) NaN.
LIGHTGPT_HD inline std::uint16_t half_bits(float x) {
  const std::uint32_t u = float_bits(x);
  const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);  // NaN
  if (magnitude >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // ≥ 65520: inf
  if (magnitude < 0x38800000u) {
    // Below the smallest normal (2^-14): a subnormal, rounded to nearest even at 2^-24.
    if (magnitude < 0x33000000u) return sign;  // < 2^-25: rounds to 0
    const std::uint32_t exponent = magnitude >> 23;
    const std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - exponent;  // 14..24 for exponents 112..102
    std::uint32_t result = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (result & 1u))) ++result;
    return static_cast<std::uint16_t>(sign | result);
  }
  std::uint32_t rebased = magnitude - 0x38000000u;  // exponent bias 127 → 15
  rebased += 0xfffu + ((rebased >> 13) & 1u);
  return static_cast<std::uint16_t>(sign | (rebased >> 13));
}

LIGHTGPT_HD inline float half_to_float_bits(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) return bits_float(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {
    // ±0 or a subnormal: mantissa · 2^-24.
    const float value = static_cast<float>(mantissa) * 5.9604644775390625e-08f;
    return sign ? -value : value;
  }
  return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

}  // namespace detail

// bfloat16 and IEEE binary16 storage. Plain 16-bit values that host and device code share without
// Eigen or cuda_bf16.h (same bits as Eigen::bfloat16 / __nv_bfloat16 and Eigen::half / __half).
// They convert explicitly, with round-to-nearest-even on the way down; they have no arithmetic:
// kernels widen to fp32, compute, and round once when they store.
struct bfloat16 {
  std::uint16_t bits;

  bfloat16() = default;
  template <class U>
  requires std::is_arithmetic_v<U> LIGHTGPT_HD explicit bfloat16(U value)
      : bits(detail::bf16_bits(static_cast<float>(value))) {}
  LIGHTGPT_HD static bfloat16 from_bits(std::uint16_t raw) {
    bfloat16 b;
    b.bits = raw;
    return b;
  }
  LIGHTGPT_HD explicit operator float() const {
    return detail::bits_float(static_cast<std::uint32_t>(bits) << 16);
  }
  LIGHTGPT_HD explicit operator double() const { return static_cast<float>(*this); }
};

struct float16 {
  std::uint16_t bits;

  float16() = default;
  template <class U>
  requires std::is_arithmetic_v<U> LIGHTGPT_HD explicit float16(U value)
      : bits(detail::half_bits(static_cast<float>(value))) {}
  LIGHTGPT_HD static float16 from_bits(std::uint16_t raw) {
    float16 h;
    h.bits = raw;
    return h;
  }
  LIGHTGPT_HD explicit operator float() const { return detail::half_to_float_bits(bits); }
  LIGHTGPT_HD explicit operator double() const { return static_cast<float>(*this); }
};

template <class T>
inline constexpr bool is_16bit_v = std::is_same_v<T, bfloat16> || std::is_same_v<T, float16>;

namespace detail {

LIGHTGPT_HD inline bfloat16 float_to_bf16(float x) { return bfloat16::from_bits(bf16_bits(x)); }
LIGHTGPT_HD inline float bf16_to_float(bfloat16 x) { return static_cast<float>(x); }
LIGHTGPT_HD inline float16 float_to_half(float x) { return float16::from_bits(half_bits(x)); }
LIGHTGPT_HD inline float half_to_float(float16 x) { return static_cast<float>(x); }

// The arithmetic type of a storage type: fp32 for the 16-bit types, the type itself otherwise.
template <class T>
struct widened {
  using type = T;
};
template <>
struct widened<bfloat16> {
  using type = float;
};
template <>
struct widened<float16> {
  using type = float;
};
template <class T>
using widened_t = typename widened<T>::type;

template <class T>
LIGHTGPT_HD inline widened_t<T> widen(T x) {
  return static_cast<widened_t<T>>(x);
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
  using storage_t = float16;
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
