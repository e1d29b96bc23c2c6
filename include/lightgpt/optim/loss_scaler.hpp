// Dynamic loss scaling for fp16 training: the loss (hence every gradient) is multiplied by
// scale() so small gradients survive fp16's narrow range; a step whose gradients overflowed
// (non-finite global norm) is skipped and the scale halved; after growth_interval clean steps in a
// row the scale doubles. The state is part of checkpoints.
#pragma once

#include <cmath>
#include <cstdint>

#include "../core/error.hpp"
#include "../io/container.hpp"

namespace lightgpt {

struct LossScalerConfig {
  double initial_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  std::int64_t growth_interval = 1000;
  double min_scale = 1.0;

  void validate() const {
    LIGHTGPT_CHECK(initial_scale > 0 && std::isfinite(initial_scale),
                   "loss scaler: initial_scale must be positive and finite, got ", initial_scale);
    LIGHTGPT_CHECK(growth_factor >= 1, "loss scaler: growth_factor must be >= 1, got ",
                   growth_factor);
    LIGHTGPT_CHECK(backoff_factor > 0 && backoff_factor < 1,
                   "loss scaler: backoff_factor must lie in (0, 1), got ", backoff_factor);
    LIGHTGPT_CHECK(growth_interval > 0, "loss scaler: growth_interval must be positive, got ",
                   growth_interval);
    LIGHTGPT_CHECK(min_scale > 0, "loss scaler: min_scale must be positive, got ", min_scale);
  }
};

class LossScaler {
 public:
  explicit LossScaler(LossScalerConfig config = {}) : config_(config) {
    config_.validate();
    scale_ = config_.initial_scale;
  }

  double scale() const { return scale_; }
  std::int64_t skipped_steps() const { return skipped_; }
  std::int64_t clean_steps() const { return clean_; }
  void set_scale(double scale) {
    LIGHTGPT_CHECK(scale > 0 && std::isfinite(scale), "loss scale must be positive, got ", scale);
    scale_ = scale;
  }

  // Records one step's global gradient norm (unscaled); returns whether the step was applied.
  bool update(double grad_norm) {
    if (!std::isfinite(grad_norm)) {
      scale_ = std::max(config_.min_scale, scale_ * config_.backoff_factor);
      clean_ = 0;
      ++skipped_;
      return false;
    }
    if (++clean_ >= config_.growth_interval) {
      scale_ *= config_.growth_factor;
      clean_ = 0;
    }
    return true;
  }

  void write_section(CheckpointWriter& out) const {
    out.begin_section("loss_scaler");
    out.write_value(scale_);
    out.write_value(clean_);
    out.write_value(skipped_);
    out.end_section();
  }
  void read_section(const CheckpointReader& in) {
    SectionReader section = in.section("loss_scaler");
    const auto scale = section.read_value<double>();
    const auto clean = section.read_value<std::int64_t>();
    const auto skipped = section.read_value<std::int64_t>();
    LIGHTGPT_CHECK(section.at_end(), section.context(), ": unexpected bytes after the state");
    LIGHTGPT_CHECK(scale > 0 && std::isfinite(scale) && clean >= 0 && skipped >= 0,
                   section.context(), ": invalid loss scaler state (scale ", scale, ")");
    scale_ = scale;
    clean_ = clean;
    skipped_ = skipped;
  }

 private:
  LossScalerConfig config_;
  double scale_ = 1;
  std::int64_t clean_ = 0;
  std::int64_t skipped_ = 0;
};

}  // namespace lightgpt
