// The compositions the tests use, instantiated once in instances.cpp (explicit instantiation) so
// that each test translation unit only declares them; plus small shared helpers.
#pragma once

#include <cstdint>
#include <lightgpt/lightgpt.hpp>
#include <vector>

namespace lightgpt::testing {

using DenseFp32 = GPT<Fp32, DenseHead<>, Attention, Cpu>;
using DenseFp64 = GPT<Fp64, DenseHead<>, Attention, Cpu>;
using Mtp2Fp64 = GPT<Fp64, DenseHead<MTP<2>>, Attention, Cpu>;
using Mtp3Fp64 = GPT<Fp64, DenseHead<MTP<3>>, Attention, Cpu>;

// Small enough for finite differences, large enough to exercise padding (V = 23 pads to 128),
// several heads, several layers and attention blocks.
inline ModelConfig tiny_config() {
  ModelConfig config;
  config.vocab_size = 23;
  config.max_seq_len = 12;
  config.n_layer = 2;
  config.n_head = 2;
  config.d_model = 8;
  return config;
}

// B rows of `window` ids from a fixed pseudo-random sequence.
inline std::vector<std::int32_t> random_tokens(int count, int vocab, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(count));
  for (std::int32_t& id : tokens) id = static_cast<std::int32_t>(rng.next_u64() % vocab);
  return tokens;
}

// Copies every tensor of `from` into `to` (any precision or backend, same composition).
template <class From, class To>
void copy_parameters(const From& from, To& to) {
  using A = typename To::A;
  for (const TensorInfo& tensor : from.parameters().layout().tensors()) {
    const auto values = from.parameters().read(tensor);
    std::vector<A> converted(values.begin(), values.end());
    to.parameters().write(to.parameters().layout().at(tensor.name), converted.data());
  }
}

}  // namespace lightgpt::testing

// Explicit instantiation (EXTERN empty) or its declaration (EXTERN = extern) of one composition
// and the member templates the tests call.
#define LIGHTGPT_DECLARE_GPT(EXTERN, Model, Precision, Head, Mixer)                             \
  EXTERN template class lightgpt::GPT<lightgpt::Precision, lightgpt::Head, lightgpt::Mixer,     \
                                      lightgpt::Cpu>;                                           \
  EXTERN template Model::A Model::forward<std::int32_t>(const std::int32_t*, int, int, int);    \
  EXTERN template Model::A Model::forward<std::uint16_t>(const std::uint16_t*, int, int, int);  \
  EXTERN template Model::A Model::evaluate<std::int32_t>(const std::int32_t*, int, int, int);   \
  EXTERN template void Model::log_probs<std::int32_t>(const std::int32_t*, int, int, Model::A*);
#define LIGHTGPT_DECLARE_MODEL(EXTERN, Model, Precision, Head) \
  LIGHTGPT_DECLARE_GPT(EXTERN, Model, Precision, Head, Attention)

LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::DenseFp32, Fp32, DenseHead<>)
LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::DenseFp64, Fp64, DenseHead<>)
LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::Mtp2Fp64, Fp64, DenseHead<lightgpt::MTP<2>>)
LIGHTGPT_DECLARE_MODEL(extern, lightgpt::testing::Mtp3Fp64, Fp64, DenseHead<lightgpt::MTP<3>>)
