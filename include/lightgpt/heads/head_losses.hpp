// The losses a head reports for one forward pass: the main next-token NLL (what validation uses)
// and one value per MTP depth (depth 1 is the main loss itself), each a mean over B·T positions.
#pragma once

#include <array>

namespace lightgpt {

inline constexpr int kMaxMtpDepth = 8;

template <class A>
struct HeadLosses {
  A main = 0;
  std::array<A, kMaxMtpDepth> depth{};  // depth[j - 1] = mean CE of the target t + j
  int depths = 1;
};

}  // namespace lightgpt
