// ParameterStore: the flat allocations behind a model's parameters, all in one layout — working
// weights (storage type), fp32/fp64 gradients, and fp32 master weights when the working type is
// 16-bit (for Fp32/Fp64 the working weights are the master weights). Host-side access by tensor
// serves initialisation, checkpoints and tests. Under ZeRO-1 a 16-bit store may keep the master
// weights of one part of the flat range only (keep_master_part), the part its rank updates.
// On the CPU a store may also track which rows of its sparse_rows tensors have a gradient
// (track_gradient_rows), so that zero_grad and AdamW pass over those rows only.
// A store may also borrow another store's working weights and own only gradients: a batch-split
// row group's (GPT::set_batch_split), which reads the model's weights and never updates them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../backend/cpu/row_groups.hpp"
#include "../core/arena.hpp"
#include "../core/backend_tags.hpp"
#include "../core/error.hpp"
#include "../core/layout.hpp"
#include "../core/rng.hpp"

namespace lightgpt {

template <class P, class Backend>
class ParameterStore {
 public:
  using T = typename P::storage_t;
  using A = typename P::accum_t;
  using O = Ops<Backend>;
  using backend = Backend;
  static constexpr bool has_separate_master = !std::is_same_v<T, A>;

  explicit ParameterStore(ParameterLayout layout)
      : layout_(std::move(layout)),
        values_(layout_.size()),
        grads_(layout_.size()),
        master_(has_separate_master ? layout_.size() : 0) {
    O::fill_zero(values_.data(), values_.size());
    O::fill_zero(grads_.data(), grads_.size());
    if constexpr (has_separate_master) O::fill_zero(master_.data(), master_.size());
  }
  // Gradients of its own for the working weights of `weights`, which must outlive this store; it
  // keeps no master weights, so it can be read and written through grads() only.
  explicit ParameterStore(ParameterStore& weights)
      : layout_(weights.layout_),
        shared_values_(weights.values()),
        grads_(layout_.size()),
        master_begin_(0),
        master_end_(0) {
    O::fill_zero(grads_.data(), grads_.size());
  }

  const ParameterLayout& layout() const { return layout_; }
  T* values() { return shared_values_ != nullptr ? shared_values_ : values_.data(); }
  const T* values() const { return const_cast<ParameterStore*>(this)->values(); }
  // Writable gradients: whoever asks may write any row, so the rows tracked since the last
  // zero_grad() no longer say where the non-zero gradients are (track_gradient_rows).
  A* grads() {
    rows_known_ = false;
    return grads_.data();
  }
  const A* grads() const { return grads_.data(); }
  // The whole master range; not while only a part is kept (master_at serves both).
  A* master() {
    if constexpr (has_separate_master) {
      LIGHTGPT_CHECK(holds_whole_master(), "ParameterStore::master(): only the master weights of [",
                     master_begin_, ", ", master_end_, ") are kept (keep_master_part)");
      return master_.data();
    } else {
      return values();
    }
  }
  const A* master() const { return const_cast<ParameterStore*>(this)->master(); }
  // The master weight of flat element `offset` onwards, which must lie in the part kept.
  A* master_at(std::size_t offset) {
    if constexpr (has_separate_master) {
      LIGHTGPT_CHECK(offset >= master_begin_ && offset <= master_end_, "master weight ", offset,
                     " is outside the part kept, [", master_begin_, ", ", master_end_, ")");
      return master_.data() + (offset - master_begin_);
    } else {
      return values() + offset;
    }
  }

  // Keeps the master weights of [begin, end) only, freeing the rest: ZeRO-1's memory saving for
  // 16-bit weights. Outside the part, read() returns the working weights widened. A no-op when
  // the working weights are the master weights.
  void keep_master_part(std::size_t begin, std::size_t end) {
    if constexpr (has_separate_master) {
      if (begin == master_begin_ && end == master_end_) return;
      LIGHTGPT_CHECK(master_begin_ <= begin && begin <= end && end <= master_end_,
                     "keep_master_part: [", begin, ", ", end, ") is not within the part kept, [",
                     master_begin_, ", ", master_end_, ")");
      Buffer<A, Backend> part(end - begin);
      O::copy(part.data(), master_.data() + (begin - master_begin_), end - begin);
      master_ = std::move(part);
      master_begin_ = begin;
      master_end_ = end;
    }
  }
  // The whole master range again, the part kept in place and the rest zero until written or
  // gathered (a checkpoint's all-gather, a resume's write()).
  void hold_whole_master() {
    if constexpr (has_separate_master) {
      if (holds_whole_master()) return;
      Buffer<A, Backend> whole(layout_.size());
      O::fill_zero(whole.data(), whole.size());
      O::copy(whole.data() + master_begin_, master_.data(), master_end_ - master_begin_);
      master_ = std::move(whole);
      master_begin_ = 0;
      master_end_ = layout_.size();
    }
  }
  bool holds_whole_master() const { return master_begin_ == 0 && master_end_ == layout_.size(); }

  void zero_grad() {
    if (rows_known_) {
      for (const FlatRange& range : nonzero_gradient_ranges()) {
        O::fill_zero(grads_.data() + range.offset, range.count);
      }
    } else {
      O::fill_zero(grads_.data(), grads_.size());
    }
    for (const std::int32_t row : rows_written_) row_written_[static_cast<std::size_t>(row)] = 0;
    rows_written_.clear();
    rows_known_ = tracking_rows_;
  }

  // Gradient rows. A token table (a sparse_rows tensor: row i is token i's, and only the rows of
  // a batch's input tokens get a gradient) is most of a small model's parameters, and on the CPU
  // zeroing its gradient, summing its squares and finding its rows with a gradient were three
  // passes over all of it every step, a sixth of a tiny-cpu step (BENCHMARKS.md, "CPU: the token
  // table's rows"). With tracking on, the model reports the rows its backward writes
  // (note_gradient_rows); until a writable grads() is handed out, every other gradient of those
  // tensors is known to be zero, and zero_grad, the norm and AdamW visit only the rows written,
  // with the same results bit for bit. Whoever writes gradients through a pointer taken earlier
  // (a data-parallel gradient sum: train/gradient_sync.hpp) turns tracking off. CPU only: on a
  // GPU the passes take microseconds; elsewhere this is a no-op and rows are never known.
  void track_gradient_rows(bool on) {
    if constexpr (!std::is_same_v<Backend, Cpu>) on = false;
    if (on && row_written_.empty()) {
      for (const TensorInfo& tensor : layout_.tensors()) {
        if (tensor.sparse_rows) {
          row_written_.resize(
              std::max(row_written_.size(), static_cast<std::size_t>(tensor.shape.front())));
        }
      }
    }
    tracking_rows_ = on;
    rows_known_ = false;  // known again from the next zero_grad()
  }
  // Rows `rows[i]` of every sparse_rows tensor may have a gradient from now on.
  void note_gradient_rows(const std::int32_t* rows, std::size_t count) {
    if (!tracking_rows_) return;
    for (std::size_t i = 0; i < count; ++i) {
      const std::int32_t row = rows[i];
      LIGHTGPT_CHECK(row >= 0 && static_cast<std::size_t>(row) < row_written_.size(),
                     "note_gradient_rows: row ", row, " is outside the token tables' [0, ",
                     row_written_.size(), ")");
      if (!row_written_[static_cast<std::size_t>(row)]) {
        row_written_[static_cast<std::size_t>(row)] = 1;
        rows_written_.push_back(row);
      }
    }
  }
  // True while every non-zero gradient lies in nonzero_gradient_ranges().
  bool gradient_rows_known() const { return rows_known_; }
  // With gradient_rows_known(): row r of the sparse_rows tensors may have a gradient only where
  // gradient_row_mask()[r] != 0.
  const std::uint8_t* gradient_row_mask() const { return row_written_.data(); }
  // With gradient_rows_known(): where the gradients may be non-zero, in order and disjoint, as
  // flat ranges: everything outside the sparse_rows tensors, and their rows written.
  std::vector<FlatRange> nonzero_gradient_ranges() const {
    LIGHTGPT_CHECK(rows_known_, "nonzero_gradient_ranges: the gradient rows are not known");
    std::vector<std::int32_t> rows = rows_written_;
    std::sort(rows.begin(), rows.end());
    std::vector<FlatRange> ranges;
    const auto add = [&ranges](std::size_t offset, std::size_t count) {
      if (count == 0) return;
      if (!ranges.empty() && ranges.back().offset + ranges.back().count == offset) {
        ranges.back().count += count;
      } else {
        ranges.push_back({offset, count});
      }
    };
    std::size_t done = 0;
    for (const TensorInfo& tensor : layout_.tensors()) {
      if (!tensor.sparse_rows) continue;
      add(done, tensor.offset - done);
      const std::size_t width = tensor.numel / static_cast<std::size_t>(tensor.shape.front());
      for (const std::int32_t row : rows) {
        if (row < tensor.shape.front()) add(tensor.offset + std::size_t(row) * width, width);
      }
      done = tensor.offset + tensor.numel;
    }
    add(done, grads_.size() - done);
    return ranges;
  }

  // Adds the gradients of `group` (a store of the same layout, e.g. a batch-split row group's)
  // into these, in place, and zeroes them there, visiting only those that may be non-zero; the
  // rows it had written become rows written here. CPU only.
  void take_gradients(ParameterStore& group) {
    static_assert(std::is_same_v<Backend, Cpu>, "ParameterStore::take_gradients is CPU-only");
    LIGHTGPT_CHECK(group.layout_.size() == layout_.size(), "take_gradients: a store of ",
                   group.layout_.size(), " parameters cannot add into one of ", layout_.size());
    const std::vector<FlatRange> ranges = group.rows_known_
                                              ? group.nonzero_gradient_ranges()
                                              : std::vector<FlatRange>{{0, group.grads_.size()}};
    cpu::add_and_clear(grads_.data(), group.grads_.data(), ranges);
    if (group.rows_known_) {
      note_gradient_rows(group.rows_written_.data(), group.rows_written_.size());
    } else {
      rows_known_ = false;
    }
    for (const std::int32_t row : group.rows_written_) {
      group.row_written_[static_cast<std::size_t>(row)] = 0;
    }
    group.rows_written_.clear();
    group.rows_known_ = group.tracking_rows_;
  }

  // GPT-2's initialisation; each tensor draws from its own stream of `seed`, keyed by its name.
  void initialize(std::uint64_t seed) {
    for (const TensorInfo& tensor : layout_.tensors()) {
      std::vector<A> host(tensor.numel, A(0));
      const std::size_t row = tensor.numel / static_cast<std::size_t>(tensor.shape.front());
      const std::size_t valid = tensor.init.valid_rows < 0
                                    ? tensor.numel
                                    : static_cast<std::size_t>(tensor.init.valid_rows) * row;
      Rng rng = Rng::stream(seed, tensor.name);
      for (std::size_t i = 0; i < valid; ++i) {
        switch (tensor.init.kind) {
          case Init::Kind::normal:
            host[i] = A(tensor.init.std * rng.normal());
            break;
          case Init::Kind::ones:
            host[i] = A(1);
            break;
          case Init::Kind::zeros:
            break;
          case Init::Kind::decay:
            host[i] = A(decay_tap(tensor, i));
            break;
          case Init::Kind::custom:
            host[i] = A(tensor.init.custom_value(tensor, i, rng));
            break;
        }
      }
      write(tensor, host.data());
    }
  }

  // Host copy of a tensor's master values.
  std::vector<A> read(const TensorInfo& tensor) const {
    std::vector<A> host(tensor.numel);
    if (holds_whole_master()) {
      O::copy_to_host(host.data(), master() + tensor.offset, tensor.numel);
      return host;
    }
    std::vector<T> working(tensor.numel);
    O::copy_to_host(working.data(), values() + tensor.offset, tensor.numel);
    for (std::size_t i = 0; i < tensor.numel; ++i) host[i] = static_cast<A>(working[i]);
    const std::size_t lo = std::max(tensor.offset, master_begin_);
    const std::size_t hi = std::min(tensor.offset + tensor.numel, master_end_);
    if (lo < hi) {
      O::copy_to_host(host.data() + (lo - tensor.offset), master_.data() + (lo - master_begin_),
                      hi - lo);
    }
    return host;
  }
  std::vector<A> read_grad(const TensorInfo& tensor) const {
    std::vector<A> host(tensor.numel);
    O::copy_to_host(host.data(), grads() + tensor.offset, tensor.numel);
    return host;
  }
  // Sets a tensor's master values (those kept) and working copy from host memory.
  void write(const TensorInfo& tensor, const A* host) {
    if (holds_whole_master()) {
      O::copy_from_host(master() + tensor.offset, host, tensor.numel);
    } else {
      const std::size_t lo = std::max(tensor.offset, master_begin_);
      const std::size_t hi = std::min(tensor.offset + tensor.numel, master_end_);
      if (lo < hi) {
        O::copy_from_host(master_.data() + (lo - master_begin_), host + (lo - tensor.offset),
                          hi - lo);
      }
    }
    if constexpr (has_separate_master) {
      std::vector<T> rounded(tensor.numel);
      for (std::size_t i = 0; i < tensor.numel; ++i) rounded[i] = T(host[i]);
      O::copy_from_host(values() + tensor.offset, rounded.data(), tensor.numel);
    }
  }

 private:
  // Element i of an Init::decay tensor (..., R, S): tap s of filter r.
  static double decay_tap(const TensorInfo& tensor, std::size_t i) {
    const std::size_t taps = static_cast<std::size_t>(tensor.shape.back());
    const std::size_t filters =
        tensor.shape.size() > 1 ? static_cast<std::size_t>(tensor.shape[tensor.shape.size() - 2])
                                : 1;
    const std::size_t r = (i / taps) % filters, s = i % taps;
    const double position = filters > 1 ? double(r) / double(filters - 1) : 1.0;
    const double rate = tensor.init.slowest_rate *
                        std::pow(tensor.init.fastest_rate / tensor.init.slowest_rate, position);
    return -std::expm1(-rate) * std::exp(-rate * double(s));
  }

  ParameterLayout layout_;
  Buffer<T, Backend> values_;
  T* shared_values_ = nullptr;  // another store's working weights, when borrowed
  Buffer<A, Backend> grads_;
  Buffer<A, Backend> master_;
  // The part of the flat range master_ holds (the whole of it unless keep_master_part).
  std::size_t master_begin_ = 0, master_end_ = layout_.size();
  // Gradient rows (track_gradient_rows): a mask over the token tables' rows and its set rows.
  bool tracking_rows_ = false, rows_known_ = false;
  std::vector<std::uint8_t> row_written_;
  std::vector<std::int32_t> rows_written_;
};

}  // namespace lightgpt
