// Backend tags: the last parameter of GPT<...>. A backend is a tag type plus a specialisation of
// `Ops<Backend>` (the kernel contract the model is written against) and `Memory<Backend>`.
#pragma once

#include <string_view>
#include <type_traits>

namespace lightgpt {

// Eigen + OpenMP on the host.
struct Cpu {
  static constexpr std::string_view name = "cpu";
};

// cuBLASLt, cuFFT, CUB and Thrust on an NVIDIA GPU. The default backend in every translation unit.
struct Cuda {
  static constexpr std::string_view name = "cuda";
};

// The kernel contract. Specialised in backend/<name>/ops.hpp; the primary template is never
// defined, so a backend whose headers were not included fails to compile where it is used.
template <class Backend>
struct Ops;

// Raw memory of a backend: allocate, free, fill, copy to and from host.
template <class Backend>
struct Memory;

namespace detail {
// True once a backend's kernel headers have been included (specialised by each backend).
template <class Backend>
struct backend_available : std::false_type {};
}  // namespace detail

}  // namespace lightgpt
