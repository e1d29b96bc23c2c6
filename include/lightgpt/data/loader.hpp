// Batches of training windows over one or many token shards. The shards form one token stream;
// row i of the stream is the window [i*T, i*T + T + K): its first T ids are the inputs and the
// id at t + j (1 <= j <= K) is input t's j-th future target. Sequential batches inside a shard
// are pure views (row_stride = T, rows overlapping by K); batches that cross a shard or are
// shuffled are gathered into one buffer the loader allocated up front (row_stride = T + K).
#pragma once

#include <glob.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <lightgpt/core/error.hpp>
#include <lightgpt/data/shard.hpp>

namespace lightgpt {

// B rows; row b starts at tokens + b * row_stride and holds T + K ids (K from LoaderOptions).
struct Batch {
  const std::uint16_t* tokens;
  int B;
  int T;
  int row_stride;
};

struct LoaderOptions {
  int B = 0;
  int T = 0;
  int K = 1;  // extra target ids per row: 1 for next-token prediction, mtp_depth for MTP heads
  bool shuffle = false;
  std::uint64_t seed = 0;
  int rank = 0;
  int world_size = 1;
  int vocab_size = 0;  // > 0: every shard token is checked to be below it at open
};

// Where a loader is, for checkpoints. All ranks share it; total_tokens and config guard
// against resuming on different data or with a different B, T, K, world size or shuffle.
struct LoaderPosition {
  std::uint64_t epoch = 0;
  std::uint64_t step = 0;  // steps taken in this epoch (one step = one batch on every rank)
  std::uint64_t total_tokens = 0;
  std::uint64_t config = 0;
};
static_assert(std::is_trivially_copyable_v<LoaderPosition>);

// Expands a glob such as "data/fineweb_train_*.bin" into its sorted matches; a path without
// wildcards is returned as is when it exists.
inline std::vector<std::filesystem::path> expand_shard_pattern(const std::string& pattern) {
  glob_t g{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
  std::vector<std::string> names;
  if (rc == 0) names.assign(g.gl_pathv, g.gl_pathv + g.gl_pathc);
  ::globfree(&g);
  LIGHTGPT_CHECK(rc == 0 || rc == GLOB_NOMATCH, "cannot expand shard pattern '", pattern, "'");
  LIGHTGPT_CHECK(!names.empty(), "no shard files match '", pattern, "'");
  std::sort(names.begin(), names.end());  // byte order, independent of the locale
  return {names.begin(), names.end()};
}

// How often each id occurs over every shard of `pattern` (vocab_size entries; ids are checked to
// be below vocab_size when each shard opens): the counts behind LightRnnCodebook::by_frequency.
inline std::vector<std::uint64_t> count_tokens(const std::string& pattern, int vocab_size) {
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(vocab_size), 0);
  for (const auto& path : expand_shard_pattern(pattern)) {
    const Shard shard(path, vocab_size);
    for (std::uint16_t token : shard.tokens()) ++counts[token];
  }
  return counts;
}

// Number of validation steps of B x T tokens (x world_size ranks) that `val_tokens` makes.
// Throws, naming the nearest usable values, when it is not a whole number of steps.
inline std::int64_t validation_steps(std::int64_t val_tokens, int B, int T, int world_size = 1) {
  LIGHTGPT_CHECK(B > 0 && T > 0 && world_size > 0,
                 "validation needs B, T and world_size > 0, got B=", B, " T=", T,
                 " world_size=", world_size);
  const std::int64_t step = std::int64_t{B} * T * world_size;
  const std::string what = world_size == 1 ? "B*T" : "B*T*world_size";
  LIGHTGPT_CHECK(val_tokens > 0, "val_tokens must be positive, got ", val_tokens,
                 ": use a multiple of ", what, " = ", step);
  if (val_tokens % step != 0) {
    const std::int64_t lower = val_tokens / step * step;
    throw Error(detail::concat(
        "val_tokens ", val_tokens, " is not a multiple of ", what, " = ", step, ": use val_tokens ",
        lower > 0 ? std::to_string(lower) + " or " : std::string(), lower + step));
  }
  return val_tokens / step;
}

class Loader {
 public:
  // `pattern` is a shard path or a glob (expanded and sorted).
  Loader(const std::string& pattern, const LoaderOptions& options)
      : Loader(expand_shard_pattern(pattern), options) {}

  Loader(const std::vector<std::filesystem::path>& files, const LoaderOptions& options)
      : options_(options) {
    const auto& o = options_;
    LIGHTGPT_CHECK(o.B > 0 && o.T > 0 && o.K >= 1,
                   "loader needs B > 0, T > 0 and K >= 1, got B=", o.B, " T=", o.T, " K=", o.K);
    LIGHTGPT_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "loader rank ",
                   o.rank, " is outside world_size ", o.world_size);
    LIGHTGPT_CHECK(!files.empty(), "loader was given no shard files");
    std::uint64_t offset = 0;
    for (const auto& file : files) {
      shards_.emplace_back(file, o.vocab_size);
      starts_.push_back(offset);
      offset += shards_.back().size();
    }
    starts_.push_back(offset);
    total_tokens_ = offset;
    const std::uint64_t window = std::uint64_t(o.T) + std::uint64_t(o.K);
    rows_ = total_tokens_ >= window ? (total_tokens_ - std::uint64_t(o.K)) / std::uint64_t(o.T) : 0;
    const std::uint64_t rows_per_step = std::uint64_t(o.B) * std::uint64_t(o.world_size);
    steps_per_epoch_ = rows_ / rows_per_step;
    LIGHTGPT_CHECK(steps_per_epoch_ > 0, "the ", files.size(), " shard(s) starting with '",
                   files.front().string(), "' hold ", total_tokens_, " tokens, which make ", rows_,
                   " windows of T+K = ", window,
                   " tokens; one step needs B*world_size = ", rows_per_step, " windows");
    if (o.shuffle) {
      LIGHTGPT_CHECK(rows_ <= std::numeric_limits<std::uint32_t>::max(), "shuffling ", rows_,
                     " windows exceeds the loader's 2^32 limit; use a larger T");
      permutation_.resize(rows_);
    }
    gather_.resize(std::size_t(o.B) * window);
    start_epoch();
  }

  // The next batch for this rank. The pointer stays valid until the next call to next().
  Batch next() {
    if (step_ == steps_per_epoch_) {
      ++epoch_;
      step_ = 0;
      start_epoch();
    }
    const auto& o = options_;
    const std::uint64_t first_row =
        (step_ * std::uint64_t(o.world_size) + std::uint64_t(o.rank)) * std::uint64_t(o.B);
    ++step_;
    const std::size_t window = std::size_t(o.T) + std::size_t(o.K);
    if (!o.shuffle) {
      const std::uint64_t begin = first_row * std::uint64_t(o.T);
      const std::uint64_t length = std::uint64_t(o.B) * std::uint64_t(o.T) + std::uint64_t(o.K);
      const std::size_t s = shard_of(begin);
      if (begin + length <= starts_[s + 1]) {
        return {shards_[s].tokens().data() + (begin - starts_[s]), o.B, o.T, o.T};
      }
      for (int b = 0; b < o.B; ++b)
        copy_tokens((first_row + std::uint64_t(b)) * std::uint64_t(o.T), window,
                    gather_.data() + std::size_t(b) * window);
    } else {
      for (int b = 0; b < o.B; ++b)
        copy_tokens(std::uint64_t(permutation_[first_row + std::uint64_t(b)]) * std::uint64_t(o.T),
                    window, gather_.data() + std::size_t(b) * window);
    }
    return {gather_.data(), o.B, o.T, static_cast<int>(window)};
  }

  LoaderPosition position() const { return {epoch_, step_, total_tokens_, config_hash()}; }

  void restore(const LoaderPosition& position) {
    LIGHTGPT_CHECK(position.total_tokens == total_tokens_,
                   "cannot resume the loader: the position "
                   "was saved over ",
                   position.total_tokens, " tokens but the shards now hold ", total_tokens_);
    LIGHTGPT_CHECK(position.config == config_hash(),
                   "cannot resume the loader: the position was "
                   "saved with a different B, T, K, world_size, shuffle or seed");
    LIGHTGPT_CHECK(position.step <= steps_per_epoch_, "cannot resume the loader: step ",
                   position.step, " is past the epoch's ", steps_per_epoch_, " steps");
    epoch_ = position.epoch;
    step_ = position.step;
    start_epoch();
  }

  // A position saved by a run of `saved_B` rows on each of `saved_world_size` ranks over the same
  // data: when its global batch is this loader's, the next batch is the one that run would read.
  void restore(const LoaderPosition& position, int saved_B, int saved_world_size) {
    const auto& o = options_;
    LIGHTGPT_CHECK(std::int64_t(saved_B) * saved_world_size == std::int64_t(o.B) * o.world_size,
                   "cannot resume the loader: the position was saved with B=", saved_B, " on ",
                   saved_world_size, " ranks, a global batch of ", saved_B * saved_world_size,
                   " rows, this run's is B=", o.B, " x ", o.world_size, " ranks");
    LIGHTGPT_CHECK(position.config == config_hash(saved_B, saved_world_size),
                   "cannot resume the loader: the position was saved with a different T, K, "
                   "shuffle or seed");
    restore({position.epoch, position.step, position.total_tokens, config_hash()});
  }

  // Validation steps for `val_tokens`, checked both for whole steps and against the data.
  std::int64_t validation_steps(std::int64_t val_tokens) const {
    const std::int64_t steps =
        lightgpt::validation_steps(val_tokens, options_.B, options_.T, options_.world_size);
    LIGHTGPT_CHECK(std::uint64_t(steps) <= steps_per_epoch_, "val_tokens ", val_tokens, " needs ",
                   steps, " steps but the validation shards only give ", steps_per_epoch_,
                   ": use val_tokens ",
                   steps_per_epoch_ * std::uint64_t(options_.B) * std::uint64_t(options_.T) *
                       std::uint64_t(options_.world_size),
                   " or less");
    return steps;
  }

  std::uint64_t steps_per_epoch() const { return steps_per_epoch_; }
  std::uint64_t total_tokens() const { return total_tokens_; }
  std::uint64_t epoch() const { return epoch_; }
  const LoaderOptions& options() const { return options_; }
  std::size_t num_shards() const { return shards_.size(); }

 private:
  std::size_t shard_of(std::uint64_t token) const {
    const auto it = std::upper_bound(starts_.begin(), starts_.end(), token);
    return static_cast<std::size_t>(it - starts_.begin()) - 1;
  }

  void copy_tokens(std::uint64_t begin, std::size_t count, std::uint16_t* dst) const {
    std::size_t s = shard_of(begin);
    while (count > 0) {
      // Empty shards have starts_[s] == starts_[s + 1]; step over them.
      while (begin >= starts_[s + 1]) ++s;
      const std::size_t local = std::size_t(begin - starts_[s]);
      const std::size_t n = std::min<std::size_t>(count, shards_[s].size() - local);
      std::memcpy(dst, shards_[s].tokens().data() + local, n * sizeof(std::uint16_t));
      dst += n;
      begin += n;
      count -= n;
    }
  }

  // SplitMix64: a fixed, platform-independent generator, so that a seed names the same
  // permutation everywhere (std::shuffle's distributions are implementation-defined).
  static std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  void start_epoch() {
    if (!options_.shuffle) return;
    for (std::uint64_t i = 0; i < rows_; ++i) permutation_[i] = static_cast<std::uint32_t>(i);
    std::uint64_t state = options_.seed ^ (0xD1B54A32D192ED03ull * (epoch_ + 1));
    for (std::uint64_t i = rows_ - 1; i > 0; --i) {
      // Rejection sampling keeps every j in [0, i] equally likely.
      const std::uint64_t bound = i + 1;
      const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() -
                                  std::numeric_limits<std::uint64_t>::max() % bound;
      std::uint64_t r;
      do r = splitmix64(state);
      while (r >= limit);
      std::swap(permutation_[i], permutation_[r % bound]);
    }
  }

  std::uint64_t config_hash() const { return config_hash(options_.B, options_.world_size); }
  std::uint64_t config_hash(int B, int world_size) const {
    const auto& o = options_;
    std::uint64_t h = 0xCBF29CE484222325ull;
    for (std::uint64_t v : {std::uint64_t(B), std::uint64_t(o.T), std::uint64_t(o.K),
                            std::uint64_t(world_size), std::uint64_t(o.shuffle), o.seed}) {
      h = (h ^ v) * 0x100000001B3ull;
      h ^= h >> 29;
    }
    return h;
  }

  LoaderOptions options_;
  std::vector<Shard> shards_;
  std::vector<std::uint64_t> starts_;  // first global token of each shard, then the total
  std::uint64_t total_tokens_ = 0;
  std::uint64_t rows_ = 0;
  std::uint64_t steps_per_epoch_ = 0;
  std::uint64_t epoch_ = 0;
  std::uint64_t step_ = 0;
  std::vector<std::uint32_t> permutation_;
  std::vector<std::uint16_t> gather_;
};

}  // namespace lightgpt
