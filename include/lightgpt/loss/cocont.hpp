// CoCoNT n-gram target smoothing (docs/design.md, "Training objective" and "Differences from the
// original scripts"): the main next-token loss also pulls the model's distribution towards the
// bigram distribution P(· | a) of the context token a, the input token at position t (the token
// just before the target), taken from a top-K BigramTable (bigram.hpp).
//
// The original scripts write the LightRNN row loss as loss_row = −[(1−α)·log P(row=r) +
// α·KL(P_ngram ‖ P_row)]. That has a sign error: the minus in front also negates the KL, so
// minimising it *maximises* KL(P_ngram ‖ P_row) and drives the model away from the n-gram
// distribution. What is minimised here (and what backward() differentiates) is
//   dense:    L_main = (1−α)·CE(token) + α·KL(P_ngram ‖ P_θ)          KL over the kept K ids
//   LightRNN: L_main = (1−α)·CE(row) + α·KL(P_ngram,row ‖ P_row) + CE(col | true row)
//             with P_ngram(row = r | a) = Σ_{b ∈ topK(a)} P(b | a)·[row(b) = r]
// and plain CE where the context token has no successor list. Since KL(p ‖ q) = Σ p log p − Σ p log
// q and the first sum is a constant, this is one cross-entropy against the soft target
// (1−α)·onehot(target) + α·P_ngram, whose gradient w.r.t. the logits is softmax − target: the heads
// fold it into their fused softmax cross-entropy backward, touching only the ≤ K listed entries.
//
// Each non-empty list is renormalised to sum to exactly 1 (in double) so that this identity holds;
// the tables are built on the host and uploaded once into backend memory (NgramTable), the
// LightRNN row distributions again whenever the codebook changes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "../backend/contract.hpp"
#include "../core/arena.hpp"
#include "../core/error.hpp"
#include "../heads/lightrnn/codebook.hpp"
#include "bigram.hpp"

namespace lightgpt {

// Host form of the per-context sparse distributions, in double; built from a BigramTable.
struct NgramDistributions {
  std::vector<std::int32_t> offsets;  // V + 1
  std::vector<std::int32_t> classes;  // token ids or rows, ascending within a context
  std::vector<double> probs;          // each non-empty context sums to 1
  std::vector<double> neg_entropy;    // V

  int contexts() const { return static_cast<int>(neg_entropy.size()); }
  std::span<const std::int32_t> classes_of(int a) const {
    return {classes.data() + offsets[a], static_cast<std::size_t>(offsets[a + 1] - offsets[a])};
  }
  std::span<const double> probs_of(int a) const {
    return {probs.data() + offsets[a], static_cast<std::size_t>(offsets[a + 1] - offsets[a])};
  }
};

namespace detail {

// Appends one context's (class, weight) pairs: equal classes merged, sorted by class, renormalised.
inline void append_distribution(NgramDistributions& out,
                                std::vector<std::pair<int, double>>& pairs) {
  std::sort(pairs.begin(), pairs.end());
  double total = 0;
  for (const auto& pair : pairs) total += pair.second;
  const std::size_t first = out.classes.size();
  for (const auto& [cls, weight] : pairs) {
    if (out.classes.size() > first && out.classes.back() == cls) {
      out.probs.back() += weight / total;
    } else {
      out.classes.push_back(cls);
      out.probs.push_back(weight / total);
    }
  }
  double neg_entropy = 0;
  for (std::size_t i = first; i < out.probs.size(); ++i)
    neg_entropy += out.probs[i] * std::log(out.probs[i]);
  out.neg_entropy.push_back(neg_entropy);
  out.offsets.push_back(static_cast<std::int32_t>(out.classes.size()));
}

// `class_of(b)` maps a successor token to the class the loss scores (itself, or its row).
template <class ClassOf>
NgramDistributions build_distributions(const BigramTable& table, ClassOf class_of) {
  const int V = table.vocab_size();
  NgramDistributions out;
  out.offsets.reserve(static_cast<std::size_t>(V) + 1);
  out.neg_entropy.reserve(static_cast<std::size_t>(V));
  out.offsets.push_back(0);
  std::vector<std::pair<int, double>> pairs;
  for (int a = 0; a < V; ++a) {
    const auto ids = table.successors(a);
    const auto probs = table.probabilities(a);
    pairs.clear();
    for (std::size_t k = 0; k < ids.size(); ++k) {
      LIGHTGPT_CHECK(
          ids[k] < static_cast<std::uint32_t>(V) && probs[k] > 0 && std::isfinite(probs[k]),
          "CoCoNT: bigram list of token ", a, " has an invalid entry (id ", ids[k],
          ", probability ", probs[k], ")");
      pairs.emplace_back(class_of(static_cast<int>(ids[k])), double(probs[k]));
    }
    append_distribution(out, pairs);
  }
  return out;
}

}  // namespace detail

// Dense head: P_ngram(b | a) over the kept ids b of the table.
inline NgramDistributions token_ngram_targets(const BigramTable& table) {
  return detail::build_distributions(table, [](int b) { return b; });
}

// LightRNN head: P_ngram(row = r | a) = Σ_{b ∈ topK(a)} P(b | a)·[row(b) = r] under `codebook`
// (at most K rows per context). Rebuild it whenever the codebook changes.
inline NgramDistributions row_ngram_targets(const BigramTable& table,
                                            const LightRnnCodebook& codebook) {
  LIGHTGPT_CHECK(table.vocab_size() == codebook.vocab_size(),
                 "CoCoNT: the bigram table has V = ", table.vocab_size(),
                 " but the LightRNN codebook has V = ", codebook.vocab_size());
  return detail::build_distributions(table, [&](int b) { return codebook.row(b); });
}

// The distributions in backend memory, uploaded once (no allocation during training steps).
template <class A, class Backend>
class NgramTable {
 public:
  void upload(const NgramDistributions& host) {
    std::vector<A> probs(host.probs.begin(), host.probs.end());
    std::vector<A> neg_entropy(host.neg_entropy.begin(), host.neg_entropy.end());
    offsets_ = Buffer<std::int32_t, Backend>(host.offsets.size());
    classes_ = Buffer<std::int32_t, Backend>(std::max<std::size_t>(host.classes.size(), 1));
    probs_ = Buffer<A, Backend>(std::max<std::size_t>(probs.size(), 1));
    neg_entropy_ = Buffer<A, Backend>(neg_entropy.size());
    using O = Ops<Backend>;
    O::copy_from_host(offsets_.data(), host.offsets.data(), host.offsets.size());
    O::copy_from_host(classes_.data(), host.classes.data(), host.classes.size());
    O::copy_from_host(probs_.data(), probs.data(), probs.size());
    O::copy_from_host(neg_entropy_.data(), neg_entropy.data(), neg_entropy.size());
  }
  void clear() { *this = NgramTable(); }
  bool loaded() const { return offsets_.size() > 0; }

  // Host copy of what the kernels read (probabilities converted back from A), for tests.
  NgramDistributions download() const {
    NgramDistributions host;
    if (!loaded()) return host;
    using O = Ops<Backend>;
    host.offsets.resize(offsets_.size());
    O::copy_to_host(host.offsets.data(), offsets_.data(), offsets_.size());
    const std::size_t count = static_cast<std::size_t>(host.offsets.back());
    std::vector<A> probs(count), neg_entropy(neg_entropy_.size());
    host.classes.resize(count);
    O::copy_to_host(host.classes.data(), classes_.data(), count);
    O::copy_to_host(probs.data(), probs_.data(), count);
    O::copy_to_host(neg_entropy.data(), neg_entropy_.data(), neg_entropy.size());
    host.probs.assign(probs.begin(), probs.end());
    host.neg_entropy.assign(neg_entropy.begin(), neg_entropy.end());
    return host;
  }

  // The kernels' view with weight alpha; an empty view (CoCoNT off) when nothing is loaded.
  NgramTargets<A> view(A alpha) const {
    if (!loaded()) return {};
    return {offsets_.data(), classes_.data(), probs_.data(), neg_entropy_.data(), alpha};
  }

 private:
  Buffer<std::int32_t, Backend> offsets_, classes_;
  Buffer<A, Backend> probs_, neg_entropy_;
};

}  // namespace lightgpt
