// ZeRO stage 1: AdamW whose moments are split across the ranks of a data-parallel run. The flat
// parameter range is cut into one contiguous part per rank (never inside a row of a sparse_rows
// tensor); each rank keeps the moments of its part only, updates that part from the summed
// gradients a reduce-scatter left there, and the ranks then all-gather the updated weights. The
// fp32 master weights of a 16-bit model are split alike: the store may keep only this rank's part
// (ParameterStore::keep_master_part), as step() reads no other. The update is AdamW's, element
// for element, so a sharded run matches an unsharded one.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "../dist/communicator.hpp"
#include "adamw.hpp"

namespace lightgpt {

// The element counts of each rank's part of `layout`'s flat range: as even as the rows of the
// sparse_rows tensors allow (their per-row state must stay with one rank).
inline std::vector<std::size_t> shard_counts(const ParameterLayout& layout, int world_size) {
  const std::size_t total = layout.size();
  std::vector<std::size_t> bounds(std::size_t(world_size) + 1, total);
  bounds[0] = 0;
  for (int r = 1; r < world_size; ++r) {
    std::size_t cut = total * std::size_t(r) / std::size_t(world_size);
    for (const TensorInfo& tensor : layout.tensors()) {
      if (!tensor.sparse_rows || cut <= tensor.offset || cut >= tensor.offset + tensor.numel) {
        continue;
      }
      const std::size_t row = tensor.numel / std::size_t(tensor.shape.front());
      cut = tensor.offset + (cut - tensor.offset + row / 2) / row * row;
    }
    bounds[std::size_t(r)] = std::max(cut, bounds[std::size_t(r) - 1]);
  }
  std::vector<std::size_t> counts(bounds.size() - 1);
  for (int r = 0; r < world_size; ++r) counts[r] = bounds[r + 1] - bounds[r];
  return counts;
}

template <class Backend, class A>
class ShardedAdamW {
 public:
  using O = Ops<Backend>;
  using Full = AdamW<Backend, A>;

  ShardedAdamW(const ParameterLayout& layout, AdamWConfig config, Communicator& comm)
      : layout_(layout),
        config_(config),
        comm_(comm),
        counts_(shard_counts(layout, comm.size())),
        offsets_(part_offsets(counts_)),
        begin_(offsets_[std::size_t(comm.rank())]),
        end_(offsets_[std::size_t(comm.rank()) + 1]) {
    config_.validate();
    for (const TensorInfo& tensor : layout_.tensors()) {
      const std::size_t lo = std::max(begin_, tensor.offset);
      const std::size_t hi = std::min(end_, tensor.offset + tensor.numel);
      if (lo < hi) {
        Piece piece{&tensor, lo, hi - lo, 0, 0, 0};
        if (tensor.sparse_rows) {
          piece.row_length = tensor.numel / std::size_t(tensor.shape.front());
          piece.rows = piece.count / piece.row_length;
          piece.seen_at = seen_rows_;
          seen_rows_ += piece.rows;
        }
        pieces_.push_back(piece);
      }
    }
    m_ = Buffer<A, Backend>(end_ - begin_);
    v_ = Buffer<A, Backend>(end_ - begin_);
    seen_ = Buffer<std::int64_t, Backend>(seen_rows_);
    O::fill_zero(m_.data(), m_.size());
    O::fill_zero(v_.data(), v_.size());
    const std::vector<std::int64_t> never(seen_rows_, kAdamWNeverSeen);
    O::copy_from_host(seen_.data(), never.data(), never.size());
  }

  ShardedAdamW(const ShardedAdamW&) = delete;
  ShardedAdamW& operator=(const ShardedAdamW&) = delete;

  // This rank's part of the flat range, and every rank's element count.
  std::size_t begin() const { return begin_; }
  std::size_t end() const { return end_; }
  std::span<const std::size_t> counts() const { return counts_; }
  std::int64_t steps() const { return steps_; }
  const AdamWConfig& config() const { return config_; }

  // AdamW::queue_step on this rank's part, whose gradients must already be summed over the ranks.
  // The global norm sums every rank's part in backend memory (an all-reduce of one value, no host
  // read); when it, or a watched value, is not finite nothing is updated, on any rank: the watched
  // values must be the same on every rank (the trainer's losses are summed over the ranks).
  template <class Store>
  void queue_step(Store& store, double lr, double grad_multiplier = 1.0,
                  const double* watched = nullptr, int watched_count = 0) {
    double* status = tracker_.status();
    O::sum_of_squares_into(status + UpdateStatus::squares, std::as_const(store).grads() + begin_,
                           end_ - begin_);
    if (comm_.size() > 1) comm_.all_reduce_sum(status + UpdateStatus::squares, 1, DataType::f64);
    O::decide_update(status, grad_multiplier, config_.grad_clip, watched, watched_count);
    ++steps_;
    for (const Piece& piece : pieces_) {
      const TensorInfo& tensor = *piece.tensor;
      const AdamWStep<A> update = config_.step_for<A>(tensor, lr, steps_);
      const std::size_t at = piece.begin, local = piece.begin - begin_;
      if (tensor.sparse_rows) {
        O::adamw_update_sparse_rows(store.values() + at, store.master_at(at), m_.data() + local,
                                    v_.data() + local, std::as_const(store).grads() + at,
                                    seen_.data() + piece.seen_at, piece.rows, piece.row_length,
                                    steps_, config_.sparse_rows_window, update, status);
      } else {
        O::adamw_update(store.values() + at, store.master_at(at), m_.data() + local,
                        v_.data() + local, std::as_const(store).grads() + at, piece.count, update,
                        status);
      }
    }
    tracker_.queued();
  }

  // The last queued update's decision, waiting for it.
  UpdateResult result() { return tracker_.result(steps_); }

  // queue_step and result() in one: the global norm, not finite when nothing was updated.
  template <class Store>
  double step(Store& store, double lr, double grad_multiplier = 1.0) {
    queue_step(store, lr, grad_multiplier);
    return result().norm;
  }

  // Every rank's state gathered into `full` (an AdamW over the same layout), on every rank: what a
  // checkpoint writes.
  void gather(Full& full) const {
    for (auto [part, whole] :
         {std::pair{m_.data(), full.first_moment()}, std::pair{v_.data(), full.second_moment()}}) {
      O::copy(whole + begin_, part, end_ - begin_);
      comm_.all_gather(whole, counts_, data_type_of<A>());
    }
    const std::vector<std::size_t> rows = row_counts();
    if (Full::sparse_row_count(layout_) > 0) {
      O::copy(full.last_gradient_steps() + row_begin_, seen_.data(), seen_rows_);
      comm_.all_gather(full.last_gradient_steps(), rows, DataType::i64);
    }
    full.set_steps(steps_);
  }

  // Takes this rank's part of `full` (read from a checkpoint, saved on any number of ranks).
  void scatter(const Full& full) {
    O::copy(m_.data(), full.first_moment() + begin_, end_ - begin_);
    O::copy(v_.data(), full.second_moment() + begin_, end_ - begin_);
    O::copy(seen_.data(), full.last_gradient_steps() + row_begin_, seen_rows_);
    steps_ = full.steps();
  }

 private:
  struct Piece {
    const TensorInfo* tensor;
    std::size_t begin, count;               // in the flat range
    std::size_t row_length, rows, seen_at;  // sparse_rows tensors: rows and their state
  };

  // Sparse rows of the whole layout before this rank's part: where its row state starts.
  std::size_t rows_before_part() const {
    std::size_t before = 0;
    for (const TensorInfo& tensor : layout_.tensors()) {
      if (!tensor.sparse_rows) continue;
      const std::size_t rows = std::size_t(tensor.shape.front()), row = tensor.numel / rows;
      if (tensor.offset + tensor.numel <= begin_)
        before += rows;
      else if (tensor.offset < begin_)
        before += (begin_ - tensor.offset) / row;
    }
    return before;
  }

  // Each rank's count of sparse rows, for gathering their last-gradient steps.
  std::vector<std::size_t> row_counts() const {
    std::vector<double> rows(counts_.size(), 0.0);
    rows[std::size_t(comm_.rank())] = double(seen_rows_);
    comm_.host_sum(rows.data(), rows.size());
    return {rows.begin(), rows.end()};
  }

  ParameterLayout layout_;
  AdamWConfig config_;
  Communicator& comm_;
  std::vector<std::size_t> counts_, offsets_;
  std::size_t begin_, end_;
  std::vector<Piece> pieces_;
  std::size_t seen_rows_ = 0;
  std::size_t row_begin_ = rows_before_part();
  Buffer<A, Backend> m_, v_;
  Buffer<std::int64_t, Backend> seen_;
  UpdateTracker<Backend> tracker_;
  std::int64_t steps_ = 0;
};

}  // namespace lightgpt
