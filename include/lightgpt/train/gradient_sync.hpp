// GradientSync: sums a data-parallel step's gradients across ranks in buckets, started as soon as
// their gradients are final. A bucket is a run of layers (one flat range per stacked tensor of the
// blocks, GPT::layer_ranges) of about bucket_mb, or a piece of the rest of the layout; under
// ZeRO-1 each range is reduce-scattered to the ranks whose parts it crosses instead of summed
// everywhere. The plan is fixed at construction and every bucket goes through the same started
// collective in the same order whether it overlaps the backward or not, so both give the same
// sums bit for bit (docs/design.md, "Data parallelism").
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <span>
#include <vector>

#include "../core/layout.hpp"
#include "../dist/communicator.hpp"

namespace lightgpt {

class GradientSync {
 public:
  // Buckets of `model`'s gradients: runs of layers that fit in `bucket_elements` (one layer at
  // least), each range cut so that no message is longer. `shard_counts`: each rank's part of the
  // flat range under ZeRO-1; empty to all-reduce.
  template <class Model>
  GradientSync(Model& model, Communicator& comm, std::size_t bucket_elements,
               std::span<const std::size_t> shard_counts)
      : comm_(comm),
        type_(data_type_of<typename Model::A>()),
        gradients_(reinterpret_cast<std::byte*>(model.parameters().grads())) {
    // The sums write rows of the token tables that this rank's backward did not.
    model.parameters().track_gradient_rows(false);
    if (!shard_counts.empty()) shard_offsets_ = part_offsets(shard_counts);
    auto layer_elements = [&](int layer) { return total(model.layer_ranges(layer, layer + 1)); };
    for (int last = model.config().n_layer; last > 0;) {
      int first = last - 1;
      std::size_t elements = layer_elements(first);
      while (first > 0 && elements + layer_elements(first - 1) <= bucket_elements) {
        --first;
        elements += layer_elements(first);
      }
      add_bucket(first, model.layer_ranges(first, last), bucket_elements);
      last = first;
    }
    add_bucket(kAfterBackward, model.shared_ranges(), bucket_elements);
  }

  // The backward's hook: starts the buckets whose first layer is `layer` (their gradients are
  // final now), and lets the ones in flight progress.
  void layer_ready(int layer) {
    for (Bucket& bucket : buckets_) {
      if (bucket.first_layer == layer) start(bucket);
    }
    for (Request& request : in_flight_) request.test();
  }

  // After the last backward: starts what has not started, in plan order, and waits for all of it.
  // Returns the milliseconds spent blocked in the waits.
  double finish() {
    for (Bucket& bucket : buckets_) start(bucket);
    const auto begin = std::chrono::steady_clock::now();
    for (Request& request : in_flight_) request.wait();
    const auto end = std::chrono::steady_clock::now();
    in_flight_.clear();
    for (Bucket& bucket : buckets_) bucket.started = false;
    return std::chrono::duration<double, std::milli>(end - begin).count();
  }

 private:
  static constexpr int kAfterBackward = -1;

  struct Bucket {
    int first_layer;  // the layer whose readiness starts it; kAfterBackward: the rest
    std::vector<FlatRange> ranges;
    bool started = false;
  };

  static std::size_t total(const std::vector<FlatRange>& ranges) {
    std::size_t sum = 0;
    for (const FlatRange& range : ranges) sum += range.count;
    return sum;
  }

  // Ranges longer than a bucket are cut, so that no message exceeds bucket_mb.
  void add_bucket(int first_layer, const std::vector<FlatRange>& ranges,
                  std::size_t bucket_elements) {
    Bucket bucket{first_layer, {}};
    for (const FlatRange& range : ranges) {
      for (std::size_t at = 0; at < range.count; at += bucket_elements) {
        bucket.ranges.push_back({range.offset + at, std::min(bucket_elements, range.count - at)});
      }
    }
    buckets_.push_back(std::move(bucket));
  }

  void start(Bucket& bucket) {
    if (bucket.started) return;
    bucket.started = true;
    const std::size_t size = data_type_size(type_);
    for (const FlatRange& range : bucket.ranges) {
      std::byte* data = gradients_ + range.offset * size;
      if (shard_offsets_.empty()) {
        in_flight_.push_back(comm_.start_all_reduce_sum(data, range.count, type_));
      } else {
        const std::vector<std::size_t> counts = counts_within(range);
        in_flight_.push_back(comm_.start_reduce_scatter_sum(data, counts, type_));
      }
    }
  }

  // How much of `range` lies in each rank's part: the range's own reduce-scatter counts, as the
  // parts follow one another in rank order.
  std::vector<std::size_t> counts_within(const FlatRange& range) const {
    std::vector<std::size_t> counts(shard_offsets_.size() - 1, 0);
    const std::size_t end = range.offset + range.count;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      const std::size_t lo = std::max(range.offset, shard_offsets_[r]);
      const std::size_t hi = std::min(end, shard_offsets_[r + 1]);
      if (lo < hi) counts[r] = hi - lo;
    }
    return counts;
  }

  Communicator& comm_;
  DataType type_;
  std::byte* gradients_;
  std::vector<std::size_t> shard_offsets_;
  std::vector<Bucket> buckets_;
  std::vector<Request> in_flight_;
};

}  // namespace lightgpt
