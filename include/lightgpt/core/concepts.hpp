// What GPT<Precision, Head, Mixer, Backend> requires of its parameters, as concepts, so that a
// wrong composition fails at compile time with a message that names the parameter.
#pragma once

#include <concepts>
#include <type_traits>

#include "backend_tags.hpp"
#include "precision.hpp"

namespace lightgpt {

// A head policy (DenseHead<...>, LightRnnHead<...>) declares itself a head and its MTP depth.
template <class H>
concept HeadPolicy = requires {
  { H::is_head } -> std::convertible_to<bool>;
  { H::mtp_depth } -> std::convertible_to<int>;
}
&&H::is_head;

// A mixer policy (Attention, AfnoMixer<N>) declares itself a mixer.
template <class M>
concept MixerPolicy = requires {
  { M::is_mixer } -> std::convertible_to<bool>;
}
&&M::is_mixer;

template <class B>
concept BackendTag = std::is_same_v<B, Cpu> || std::is_same_v<B, Cuda>;

}  // namespace lightgpt
