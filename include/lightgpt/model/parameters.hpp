// ParameterStore: the flat allocations behind a model's parameters, all in one layout — working
// weights (storage type), fp32/fp64 gradients, and fp32 master weights when the working type is
// 16-bit (for Fp32/Fp64 the working weights are the master weights). Host-side access by tensor
// serves initialisation, checkpoints and tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../core/arena.hpp"
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

  const ParameterLayout& layout() const { return layout_; }
  T* values() { return values_.data(); }
  const T* values() const { return values_.data(); }
  A* grads() { return grads_.data(); }
  const A* grads() const { return grads_.data(); }
  A* master() {
    if constexpr (has_separate_master)
      return master_.data();
    else
      return values_.data();
  }
  const A* master() const { return const_cast<ParameterStore*>(this)->master(); }

  void zero_grad() { O::fill_zero(grads_.data(), grads_.size()); }

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
    O::copy_to_host(host.data(), master() + tensor.offset, tensor.numel);
    return host;
  }
  std::vector<A> read_grad(const TensorInfo& tensor) const {
    std::vector<A> host(tensor.numel);
    O::copy_to_host(host.data(), grads() + tensor.offset, tensor.numel);
    return host;
  }
  // Sets a tensor's master values (and working copy) from host memory.
  void write(const TensorInfo& tensor, const A* host) {
    O::copy_from_host(master() + tensor.offset, host, tensor.numel);
    if constexpr (has_separate_master) {
      std::vector<T> rounded(tensor.numel);
      for (std::size_t i = 0; i < tensor.numel; ++i) rounded[i] = T(host[i]);
      O::copy_from_host(values_.data() + tensor.offset, rounded.data(), tensor.numel);
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
  Buffer<A, Backend> grads_;
  Buffer<A, Backend> master_;
};

}  // namespace lightgpt
