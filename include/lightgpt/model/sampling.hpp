// Drawing the next token from a model's next-token log-probabilities: temperature and top-k act
// on the full (joint) distribution over the V tokens — for LightRnnHead that is P(r)·P(c|r), never
// each factor separately. Temperature 0 is greedy decoding. Non-finite log-probabilities (a
// diverged model) are an error, never a token.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"

namespace lightgpt {

struct SamplingOptions {
  double temperature = 1.0;  // 0: always the most likely token
  int top_k = 0;             // 0: the whole vocabulary
  std::uint64_t seed = 0;

  void validate() const {
    LIGHTGPT_CHECK(temperature >= 0 && std::isfinite(temperature),
                   "sampling temperature must be finite and non-negative, got ", temperature);
    LIGHTGPT_CHECK(top_k >= 0, "sampling top_k must be 0 (off) or positive, got ", top_k);
  }
};

// Index of the sampled token. `order` is scratch (resized to log_probs.size()).
template <class A>
int sample_token(std::span<const A> log_probs, const SamplingOptions& options, Rng& rng,
                 std::vector<int>& order) {
  const int V = static_cast<int>(log_probs.size());
  LIGHTGPT_CHECK(V > 0, "sample_token: empty distribution");
  // A diverged model yields NaN or +inf; sampling from it would print garbage with success.
  bool any_finite = false;
  for (int i = 0; i < V; ++i) {
    LIGHTGPT_CHECK(!std::isnan(log_probs[i]) && log_probs[i] != std::numeric_limits<A>::infinity(),
                   "the model's next-token log-probability of token ", i, " is ",
                   double(log_probs[i]), ": its parameters have diverged, nothing can be sampled");
    any_finite = any_finite || std::isfinite(log_probs[i]);
  }
  LIGHTGPT_CHECK(any_finite, "the model gives every token log-probability -inf: its parameters "
                 "have diverged, nothing can be sampled");
  if (options.temperature == 0) {
    return static_cast<int>(std::max_element(log_probs.begin(), log_probs.end()) -
                            log_probs.begin());
  }
  order.resize(static_cast<std::size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  int kept = V;
  if (options.top_k > 0 && options.top_k < V) {
    kept = options.top_k;
    // Ties broken by token id, so the kept set does not depend on the sort implementation.
    std::nth_element(order.begin(), order.begin() + (kept - 1), order.end(), [&](int a, int b) {
      return log_probs[a] > log_probs[b] || (log_probs[a] == log_probs[b] && a < b);
    });
    std::sort(order.begin(), order.begin() + kept);
  }
  double top = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < kept; ++i) top = std::max(top, double(log_probs[order[i]]));
  double total = 0;
  for (int i = 0; i < kept; ++i) total += std::exp((double(log_probs[order[i]]) - top) / options.temperature);
  double u = rng.uniform() * total;
  for (int i = 0; i < kept; ++i) {
    u -= std::exp((double(log_probs[order[i]]) - top) / options.temperature);
    if (u < 0) return order[i];
  }
  return order[kept - 1];
}

}  // namespace lightgpt
