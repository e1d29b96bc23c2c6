// Count-based reference points for a validation loss: the cross-entropy (nats per token) of the
// validation tokens under a unigram model and under an interpolated bigram model, both estimated
// from the training split. Like a model's loss, both score every token of a validation part that
// has a predecessor (the first token of a part is context only). A language model that uses its
// context must beat the bigram.
//
//   P_uni(b)    = (count(b) + 1) / (N + V)                      (add-one)
//   P_bi(b | a) = λ · count(a, b) / count(a) + (1 − λ) · P_uni(b)   (P_uni where count(a) = 0)
//
// λ is the grid value (0.05 … 0.95) with the lowest validation cross-entropy — chosen on the
// validation split itself, so the bigram figure is an optimistic (hard to beat) baseline.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "../core/error.hpp"

namespace lightgpt {

struct NgramBaselines {
  double unigram = 0;  // nats per token
  double bigram = 0;
  double lambda = 0;   // bigram interpolation weight chosen
};

inline NgramBaselines ngram_baselines(std::span<const std::span<const std::uint16_t>> train,
                                      std::span<const std::span<const std::uint16_t>> val,
                                      int vocab_size) {
  LIGHTGPT_CHECK(vocab_size > 0, "ngram_baselines: vocab_size must be positive");
  std::vector<std::uint64_t> unigram(static_cast<std::size_t>(vocab_size), 0);
  std::unordered_map<std::uint64_t, std::uint32_t> bigram;
  std::uint64_t total = 0;
  for (std::span<const std::uint16_t> part : train) {
    for (std::size_t i = 0; i < part.size(); ++i) {
      LIGHTGPT_CHECK(part[i] < vocab_size, "ngram_baselines: token ", part[i],
                     " is outside the vocabulary of ", vocab_size);
      ++unigram[part[i]];
      ++total;
      if (i + 1 < part.size()) ++bigram[std::uint64_t(part[i]) * vocab_size + part[i + 1]];
    }
  }
  std::vector<std::uint64_t> context(static_cast<std::size_t>(vocab_size), 0);
  for (const auto& [key, count] : bigram) context[key / vocab_size] += count;
  auto p_uni = [&](int b) { return (double(unigram[b]) + 1) / (double(total) + vocab_size); };

  struct Pair {
    double uni, bi;  // P_uni(b) and count(a, b) / count(a) (−1 without context counts)
  };
  std::vector<Pair> pairs;
  double uni_loss = 0;
  std::uint64_t uni_count = 0;
  for (std::span<const std::uint16_t> part : val) {
    for (std::size_t i = 0; i < part.size(); ++i) {
      LIGHTGPT_CHECK(part[i] < vocab_size, "ngram_baselines: token ", part[i],
                     " is outside the vocabulary of ", vocab_size);
      if (i + 1 == part.size()) continue;
      uni_loss -= std::log(p_uni(part[i + 1]));
      ++uni_count;
      const int a = part[i], b = part[i + 1];
      double bi = -1;
      if (context[a] > 0) {
        const auto it = bigram.find(std::uint64_t(a) * vocab_size + b);
        bi = double(it == bigram.end() ? 0 : it->second) / double(context[a]);
      }
      pairs.push_back({p_uni(b), bi});
    }
  }
  LIGHTGPT_CHECK(!pairs.empty(), "ngram_baselines: the validation split needs two tokens");
  NgramBaselines result;
  result.unigram = uni_loss / double(uni_count);
  result.bigram = INFINITY;
  for (int step = 1; step <= 19; ++step) {
    const double lambda = 0.05 * step;
    double loss = 0;
    for (const Pair& p : pairs) {
      loss -= std::log(p.bi < 0 ? p.uni : lambda * p.bi + (1 - lambda) * p.uni);
    }
    loss /= double(pairs.size());
    if (loss < result.bigram) {
      result.bigram = loss;
      result.lambda = lambda;
    }
  }
  return result;
}

}  // namespace lightgpt
