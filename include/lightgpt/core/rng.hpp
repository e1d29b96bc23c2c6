// Deterministic random numbers for initialisation and sampling: splitmix64 seeded per stream,
// so that a tensor's initial values depend only on (seed, tensor name), never on thread count,
// backend or the order in which tensors are laid out.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace lightgpt {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}

  // An independent stream for `name` derived from `seed` (FNV-1a of the name, then mixed).
  static Rng stream(std::uint64_t seed, std::string_view name) {
    std::uint64_t hash = 0xcbf29ce484222325ull;
    for (char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    return Rng(mix(seed ^ mix(hash)));
  }

  std::uint64_t next_u64() { return mix(state_ += 0x9e3779b97f4a7c15ull); }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  // Standard normal by Box-Muller; the second value of each pair is kept for the next call.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = uniform(), u2 = uniform();
    double radius = std::sqrt(-2.0 * std::log1p(-u1));  // 1 - u1 lies in (0, 1]
    double angle = 6.283185307179586 * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

  std::uint64_t state() const { return state_; }

 private:
  static std::uint64_t mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

  std::uint64_t state_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace lightgpt
