// Types shared by every backend's kernel contract. A backward kernel receives each of its outputs
// as a Grad<T>: a pointer plus an explicit mode, because residual streams and parameter gradients
// accumulate while scratch gradients are overwritten; a null pointer means "not needed".
#pragma once

#include <cstdint>
#include <limits>

#include <cstddef>

namespace lightgpt {

enum class Mode { overwrite, accumulate };

template <class T>
struct Grad {
  T* ptr = nullptr;
  Mode mode = Mode::overwrite;

  explicit operator bool() const { return ptr != nullptr; }
};

template <class T>
Grad<T> overwrite(T* ptr) {
  return {ptr, Mode::overwrite};
}
template <class T>
Grad<T> accumulate(T* ptr) {
  return {ptr, Mode::accumulate};
}

// One AdamW update's scalars; the bias corrections are 1 - beta^step, computed by the caller.
template <class A>
struct AdamWStep {
  A lr;
  A beta1;
  A beta2;
  A eps;
  A weight_decay;
  A bias_correction1;
  A bias_correction2;
  A grad_scale;  // multiplies every gradient first: global-norm clipping
};

// adamw_update_sparse_rows: the step at which a row had its last gradient, for rows never seen.
inline constexpr std::int64_t kAdamWNeverSeen = std::numeric_limits<std::int64_t>::min() / 4;

// What the loss kernels read (pointers into backend memory): for context token a, entries
// [offsets[a], offsets[a + 1]) of classes/probs form P_ngram(· | a) over token ids (dense) or
// table rows (LightRNN), and neg_entropy[a] = Σ p·log p. A null `offsets` means CoCoNT is off.
template <class A>
struct NgramTargets {
  const std::int32_t* offsets = nullptr;
  const std::int32_t* classes = nullptr;
  const A* probs = nullptr;
  const A* neg_entropy = nullptr;
  A alpha = 0;

  explicit operator bool() const { return offsets != nullptr; }
};

}  // namespace lightgpt
