// A user head whose implementation lacks log_probs: GPT names the missing member.
#include <lightgpt/lightgpt.hpp>

template <class Backend, class P>
struct HalfHeadImpl {
  using T = typename P::storage_t;
  using A = typename P::accum_t;
  using Token = std::int32_t;
  explicit HalfHeadImpl(const lightgpt::ModelConfig&) {}
  static void declare_input(lightgpt::ParameterLayout&, const lightgpt::ModelConfig&) {}
  static void declare_output(lightgpt::ParameterLayout&, const lightgpt::ModelConfig&) {}
  void bind_parameters(const lightgpt::ParameterLayout&, T*, A*) {}
  void bind_activations(lightgpt::ArenaBinder&, std::size_t) {}
  void embed_forward(T*, const Token*, int, const T*, int, int) {}
  void embed_backward(const T*, const Token*, int, A*, int, int) {}
  lightgpt::HeadLosses<A> forward(const T*, const Token*, int, int, int, int, bool) { return {}; }
  const A* token_losses() const { return nullptr; }
  void backward(lightgpt::Grad<T>, const T*, const Token*, int, int, int, A, A, A) {}
};

struct HalfHead {
  static constexpr bool is_head = true;
  static constexpr int mtp_depth = 1;
  static std::string name() { return "half"; }
  template <class Backend, class P>
  using impl = HalfHeadImpl<Backend, P>;
};

using Model = lightgpt::GPT<lightgpt::Fp32, HalfHead, lightgpt::Attention, lightgpt::Cpu>;
int main() { return sizeof(Model) > 0 ? 0 : 1; }
