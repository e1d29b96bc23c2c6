// The losses a head reports for one forward pass: the main next-token NLL (what validation uses)
// and one value per MTP depth (depth 1 is the main loss itself), each a mean over B·T positions;
// with CoCoNT also its KL term, reported apart and never part of `main`.
#pragma once

#include <array>

namespace lightgpt {

inline constexpr int kMaxMtpDepth = 8;
// w_mtp, the weight of the mean auxiliary MTP loss, until set_mtp_weight or a trainer's schedule
// changes it (the original scripts' --mtp_weight 0.35). Without a weight MTP<k> would silently
// train as MTP<1>.
inline constexpr double kDefaultMtpWeight = 0.35;

template <class A>
struct HeadLosses {
  A main = 0;
  std::array<A, kMaxMtpDepth> depth{};  // depth[j - 1] = mean CE of the target t + j
  int depths = 1;
  // Mean KL(P_ngram ‖ P_θ) (row-level for LightRNN) over the positions whose context token has an
  // n-gram list, from training forwards; 0 when CoCoNT is off.
  A cocont = 0;
};

}  // namespace lightgpt
