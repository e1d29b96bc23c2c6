// The parameter layout: every tensor of a model, by name, at a fixed element offset inside one
// flat allocation. Offsets are multiples of 128 elements, so every tensor is 256-byte aligned for
// any element type of 2 bytes or more, and the fp32 gradients, master weights and Adam moments
// use the same offsets in their own parallel allocations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "error.hpp"
#include "rng.hpp"

namespace lightgpt {

inline constexpr std::size_t kTensorAlignElements = 128;

// How a tensor is initialised (GPT-2's scheme: normal for matrices and embeddings, ones for
// LayerNorm gains, zeros for biases; `decay` for long-convolution filters).
struct TensorInfo;

struct Init {
  // A part's own scheme: value(tensor, i, rng) for element i of the flat tensor, drawing from the
  // tensor's own random stream, so the model's seed still decides every value.
  using Custom = std::function<double(const TensorInfo& tensor, std::size_t index, Rng& rng)>;

  enum class Kind { normal, zeros, ones, decay, custom } kind = Kind::zeros;
  double std = 0.0;
  // Leading rows that are initialised (the rest stay zero): used for the padded vocabulary.
  std::int64_t valid_rows = -1;
  // decay: a tensor (..., R, S) holds R filters of S taps; filter r is (1 - e^-a)·e^(-a·s) with
  // rates a spaced geometrically from slowest_rate (r = 0) to fastest_rate (r = R - 1).
  double slowest_rate = 0.0, fastest_rate = 0.0;
  Custom custom_value;

  static Init normal(double std_dev) { return {Kind::normal, std_dev, -1}; }
  static Init zeros() { return {Kind::zeros, 0.0, -1}; }
  static Init ones() { return {Kind::ones, 0.0, -1}; }
  static Init decay(double slowest, double fastest) {
    return {Kind::decay, 0.0, -1, slowest, fastest};
  }
  // E.g. a convolution that starts as the identity:
  //   Init::custom([](const TensorInfo&, std::size_t i, Rng&) { return i % K == 0 ? 1.0 : 0.0; })
  static Init custom(Custom value) {
    LIGHTGPT_CHECK(static_cast<bool>(value), "Init::custom needs a callable");
    Init init;
    init.kind = Kind::custom;
    init.custom_value = std::move(value);
    return init;
  }
};

struct TensorInfo {
  std::string name;
  std::vector<std::int64_t> shape;
  std::size_t offset = 0;  // in elements, from the start of the flat allocation
  std::size_t numel = 0;
  bool weight_decay = false;
  Init init;
  // A token table that no output reads: row i (dimension 0) is token i's, and a backward writes
  // the rows of its batch's input ids only, so few rows have a gradient in any one step. AdamW
  // may leave long-idle rows alone (optim/adamw.hpp), and a model on the CPU tracks the rows
  // written (ParameterStore::track_gradient_rows).
  bool sparse_rows = false;
  // Which part of the composition declared it ("head lightrnn<mtp=2>", "trunk", "mixer afno<8>").
  std::string part;
};

// A run of elements of the flat allocation: [offset, offset + count).
struct FlatRange {
  std::size_t offset = 0, count = 0;
  bool operator==(const FlatRange&) const = default;
};

class ParameterLayout {
 public:
  // Appends a tensor; the order of calls is the order in memory.
  // The part whose tensors the following add() calls declare, named in errors.
  void set_part(std::string part) { part_ = std::move(part); }

  void add(std::string name, std::vector<std::int64_t> shape, bool weight_decay, Init init,
           bool sparse_rows = false) {
    if (const TensorInfo* earlier = find(name)) {
      LIGHTGPT_CHECK(false, "parameter '", name, "' declared twice: by ",
                     earlier->part.empty() ? "an unnamed part" : earlier->part, " and by ",
                     part_.empty() ? "an unnamed part" : part_);
    }
    std::size_t numel = 1;
    for (std::int64_t dim : shape) {
      LIGHTGPT_CHECK(dim > 0, "parameter '", name, "' has a non-positive dimension ", dim);
      numel *= static_cast<std::size_t>(dim);
    }
    TensorInfo info{std::move(name), std::move(shape), size_, numel, weight_decay, std::move(init),
                    sparse_rows, part_};
    size_ = align(size_ + numel);
    tensors_.push_back(std::move(info));
  }

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // Total elements of the flat allocation, padding included.
  std::size_t size() const { return size_; }
  // Elements that belong to tensors (the parameter count).
  std::size_t num_parameters() const {
    return std::accumulate(tensors_.begin(), tensors_.end(), std::size_t{0},
                           [](std::size_t sum, const TensorInfo& t) { return sum + t.numel; });
  }

  const TensorInfo* find(const std::string& name) const {
    for (const TensorInfo& t : tensors_) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }
  const TensorInfo& at(const std::string& name) const {
    const TensorInfo* t = find(name);
    LIGHTGPT_CHECK(t != nullptr, "no parameter named '", name, "' in this model");
    return *t;
  }

  static std::size_t align(std::size_t elements) {
    return (elements + kTensorAlignElements - 1) / kTensorAlignElements * kTensorAlignElements;
  }

 private:
  std::vector<TensorInfo> tensors_;
  std::size_t size_ = 0;
  std::string part_;
};

// A named tensor's working values and gradient, bound to a model's flat allocations.
template <class T, class A>
struct BoundTensor {
  const char* name;
  T* value = nullptr;
  A* grad = nullptr;

  void bind(const ParameterLayout& layout, T* values, A* grads) {
    const std::size_t offset = layout.at(name).offset;
    value = values + offset;
    grad = grads + offset;
  }
};

}  // namespace lightgpt
