// A user mixer whose implementation lacks backward: GPT names the missing member.
#include <lightgpt/lightgpt.hpp>

template <class Backend, class P>
struct HalfMixerImpl {
  using T = typename P::storage_t;
  using A = typename P::accum_t;
  explicit HalfMixerImpl(const lightgpt::ModelConfig&) {}
  static void declare(lightgpt::ParameterLayout&, const lightgpt::ModelConfig&) {}
  void bind_parameters(const lightgpt::ParameterLayout&, T*, A*) {}
  void bind_activations(lightgpt::ArenaBinder&, int, std::size_t) {}
  void bind_gradients(lightgpt::ArenaBinder&, std::size_t) {}
  void forward(int, int, T*, const T*, int, int, bool) {}
};

struct HalfMixer {
  static constexpr bool is_mixer = true;
  static std::string name() { return "half"; }
  template <class Backend, class P>
  using impl = HalfMixerImpl<Backend, P>;
};

using Model = lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, HalfMixer, lightgpt::Cpu>;
int main() { return sizeof(Model) > 0 ? 0 : 1; }
