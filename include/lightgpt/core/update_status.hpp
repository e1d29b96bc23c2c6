// What one optimizer update decided from the gradients' global norm: the norm, the clip scale and
// whether to skip, kept in backend memory beside the gradients. The update kernels read the scale
// and the skip flag there, so a step never waits for the host to see the norm; the host reads the
// status only when it asks for it (docs/design.md, "Host synchronisations").
#pragma once

#include <cmath>

#include "platform.hpp"

namespace lightgpt {

// Slots of an update status, an array of doubles in backend memory.
struct UpdateStatus {
  static constexpr int squares = 0;  // Σ g² of the gradients as stored, summed over every rank
  static constexpr int norm = 1;     // √squares · grad_multiplier: the norm the clip compares
  static constexpr int scale = 2;    // what the update multiplies every gradient by
  static constexpr int skip = 3;     // 1: the norm or a watched value is not finite
  static constexpr int skipped = 4;  // updates skipped since the status was created
  static constexpr int size = 5;
};

// The clip of global-norm clipping: grad_clip / norm when the norm exceeds grad_clip (0: never).
LIGHTGPT_HD inline double clip_factor(double norm, double grad_clip) {
  return grad_clip > 0 && norm > grad_clip ? grad_clip / norm : 1.0;
}

// Fills the norm, scale and skip slots from the squares slot: the host's arithmetic, run by the
// CPU backend directly and by one CUDA thread. `watched` (backend memory, may be null) are values
// any non-finite one of which skips the update too: a step's losses.
LIGHTGPT_HD inline void decide_update(double* status, double grad_multiplier, double grad_clip,
                                      const double* watched, int watched_count) {
  const double norm = sqrt(status[UpdateStatus::squares]) * grad_multiplier;
  // x - x is 0 exactly when x is finite; NaN for ±inf and NaN (no isfinite on both sides).
  bool finite = norm - norm == 0.0;
  for (int i = 0; i < watched_count; ++i) finite = finite && watched[i] - watched[i] == 0.0;
  status[UpdateStatus::norm] = norm;
  status[UpdateStatus::scale] = clip_factor(norm, grad_clip) * grad_multiplier;
  status[UpdateStatus::skip] = finite ? 0.0 : 1.0;
  if (!finite) status[UpdateStatus::skipped] += 1.0;
}

}  // namespace lightgpt
