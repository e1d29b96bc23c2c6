// The learning-rate schedule: linear warmup from 0 to `lr` over `warmup` steps, constant, then a
// linear warmdown to 0 over the last `warmdown` steps of `total_steps` (the original scripts'
// schedule).
#pragma once

#include "../core/error.hpp"

namespace lightgpt {

struct LrSchedule {
  double lr = 6e-4;
  long long warmup = 0;
  long long warmdown = 0;
  long long total_steps = 1;

  void validate() const {
    LIGHTGPT_CHECK(lr >= 0, "learning_rate must be non-negative, got ", lr);
    LIGHTGPT_CHECK(total_steps > 0, "total steps must be positive, got ", total_steps);
    LIGHTGPT_CHECK(warmup >= 0 && warmdown >= 0, "warmup (", warmup, ") and warmdown (", warmdown,
                   ") must be non-negative");
    LIGHTGPT_CHECK(warmup + warmdown <= total_steps, "warmup (", warmup, ") + warmdown (", warmdown,
                   ") exceeds the number of steps (", total_steps, ")");
  }

  // Learning rate of step `step` (0-based). Warmup step s uses lr·(s+1)/warmup, so the first
  // step already moves; the last step uses lr/warmdown, so no step is wasted at lr = 0.
  double at(long long step) const {
    if (step < warmup) return lr * double(step + 1) / double(warmup);
    const long long remaining = total_steps - step;
    if (remaining <= warmdown) return lr * double(remaining > 0 ? remaining : 0) / double(warmdown);
    return lr;
  }
};

}  // namespace lightgpt
