// A mixer on its own, bound exactly as the model binds it: its parameters in a ParameterStore of
// their own, activations for `slots` layers and backward's scratch in one arena, and a decoding
// cache for `decode_layers` layers — so a mixer (the library's or a user's) can be tested, gradient-
// checked or compared across backends without a whole model around it. Works on any backend:
// the pointer overloads take the backend's memory, the vector overloads copy through the host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../backend/contract.hpp"
#include "../core/arena.hpp"
#include "../core/config.hpp"
#include "../core/layout.hpp"
#include "../core/rng.hpp"
#include "../model/contract.hpp"
#include "../model/parameters.hpp"

namespace lightgpt::testing {

template <class Mixer, class P, class Backend>
class MixerHarness {
 public:
  using Impl = typename Mixer::template impl<Backend, P>;
  using T = typename P::storage_t;
  using A = typename P::accum_t;
  static_assert(detail::check_mixer_contract<Impl, T, A>());

  // Parameters from `seed` as the model would draw them; activations for up to `positions`
  // positions in each of `slots` layers (slot = layer when slots > 1, else 0). With `poison`, the
  // arenas start as all-ones bytes (NaN in every float type), so a read of memory that nothing
  // wrote cannot pass.
  MixerHarness(const ModelConfig& config, std::size_t positions, std::uint64_t seed, int slots,
               int decode_layers = 1, bool poison = false)
      : store_(make_layout(config)), mixer_(config), slots_(slots) {
    store_.initialize(seed);
    mixer_.bind_parameters(store_.layout(), store_.values(), store_.grads());
    ArenaBinder measure;
    bind_all(measure, positions);
    arena_ = make_arena(measure.bytes(), poison);
    ArenaBinder bind(arena_.data());
    bind_all(bind, positions);
    if constexpr (mixer_contract::decodes<Impl, T>) {
      ArenaBinder measure_decode;
      mixer_.bind_decode(measure_decode, decode_layers);
      decode_arena_ = make_arena(measure_decode.bytes(), poison);
      ArenaBinder bind_decode(decode_arena_.data());
      mixer_.bind_decode(bind_decode, decode_layers);
    }
  }

  ParameterStore<P, Backend>& parameters() { return store_; }
  Impl& mixer() { return mixer_; }

  // Every parameter replaced with N(0, scale²) draws, so that no part of the mixer sits at a
  // special point of its initialisation.
  void randomize(double scale, std::uint64_t seed) {
    Rng rng(seed);
    for (const TensorInfo& tensor : store_.layout().tensors()) {
      std::vector<A> values(tensor.numel);
      for (A& value : values) value = A(scale * rng.normal());
      store_.write(tensor, values.data());
    }
  }
  // Parameters given per tensor, in layout order.
  template <class V>
  void write_parameters(const std::vector<std::vector<V>>& values) {
    const auto& tensors = store_.layout().tensors();
    LIGHTGPT_CHECK(values.size() == tensors.size(), "MixerHarness: ", values.size(),
                   " tensors given for a layout of ", tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      LIGHTGPT_CHECK(values[i].size() == tensors[i].numel, "MixerHarness: tensor ",
                     tensors[i].name, " has ", tensors[i].numel, " values, ", values[i].size(),
                     " given");
      std::vector<A> converted(values[i].begin(), values[i].end());
      store_.write(tensors[i], converted.data());
    }
  }

  // Backend memory in and out; forward keeps what backward needs.
  void forward(int layer, T* out, const T* in, int B, int seq_len) {
    mixer_.forward(layer, slot(layer), out, in, B, seq_len, true);
  }
  // Backward of the last forward of `layer`; parameter gradients accumulate into the store.
  void backward(int layer, Grad<T> din, const T* dout, const T* in, int B, int seq_len) {
    mixer_.backward(layer, din, dout, in, B, seq_len);
  }

  // Host vectors in and out (copied to and from the backend).
  std::vector<T> forward(int layer, const std::vector<T>& in, int B, int seq_len) {
    Buffer<T, Backend> in_device = upload(in), out_device(in.size());
    forward(layer, out_device.data(), in_device.data(), B, seq_len);
    return download(out_device);
  }
  // din starts at `din_start` everywhere; with Mode::accumulate backward adds to it.
  std::vector<T> backward(int layer, const std::vector<T>& dout, const std::vector<T>& in, int B,
                          int seq_len, Mode mode = Mode::overwrite, T din_start = T(0)) {
    Buffer<T, Backend> in_device = upload(in), dout_device = upload(dout);
    Buffer<T, Backend> din_device = upload(std::vector<T>(in.size(), din_start));
    backward(layer, Grad<T>{din_device.data(), mode}, dout_device.data(), in_device.data(), B,
             seq_len);
    return download(din_device);
  }

 private:
  using O = Ops<Backend>;

  static ParameterLayout make_layout(const ModelConfig& config) {
    ParameterLayout layout;
    Impl::declare(layout, config);
    return layout;
  }
  void bind_all(ArenaBinder& bind, std::size_t positions) {
    mixer_.bind_activations(bind, slots_, positions);
    mixer_.bind_gradients(bind, positions);
  }
  static Buffer<std::byte, Backend> make_arena(std::size_t bytes, bool poison) {
    Buffer<std::byte, Backend> arena(bytes);
    if (poison && bytes > 0) {
      const std::vector<std::byte> ones(bytes, std::byte{0xff});
      O::copy_from_host(arena.data(), ones.data(), bytes);
    }
    return arena;
  }
  int slot(int layer) const { return slots_ > 1 ? layer : 0; }
  static Buffer<T, Backend> upload(const std::vector<T>& host) {
    Buffer<T, Backend> device(host.size());
    O::copy_from_host(device.data(), host.data(), host.size());
    return device;
  }
  static std::vector<T> download(const Buffer<T, Backend>& device) {
    std::vector<T> host(device.size());
    O::copy_to_host(host.data(), device.data(), host.size());
    return host;
  }

  ParameterStore<P, Backend> store_;
  Impl mixer_;
  int slots_;
  Buffer<std::byte, Backend> arena_, decode_arena_;
};

}  // namespace lightgpt::testing
