// The contract of a head and of a mixer implementation: what GPT<P, Head, Mixer, Backend> calls on
// `Head::impl<Backend, P>` and `Mixer::impl<Backend, P>`, written down once as concepts whose
// members each carry a one-line comment. GPT checks them member by member where it instantiates
// the parts, so a missing member is reported by name. Optional capabilities (CoCoNT targets,
// codebook reallocation, incremental decoding, checkpoint sections of their own) are detected with
// `requires`; a part without them still composes. docs/design.md, "The composition contract".
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "../backend/contract.hpp"
#include "../core/arena.hpp"
#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/layout.hpp"
#include "../core/losses.hpp"

namespace lightgpt {

// ---------------------------------------------------------------------------------------------
// Options. A head or mixer policy with settings of its own declares them as Options structs
// (`using options = std::tuple<MyOptions>;`, each meeting PartOptionsType in core/config.hpp);
// its implementation reads them with config.part<MyOptions>(). GPT keeps a config in which every
// option belongs to one of its parts and holds a valid, non-default value (docs/design.md,
// "Part options").

template <class Policy>
struct options_of {
  using type = std::tuple<>;
};
template <class Policy>
  requires requires { typename Policy::options; }
struct options_of<Policy> {
  using type = typename Policy::options;
};

namespace detail {

template <class Tuple>
struct PartOptionsList;
template <class... O>
struct PartOptionsList<std::tuple<O...>> {
  static_assert((PartOptionsType<O> && ...),
                "a part's `options` must list Options structs, each with defaults, a `fields` "
                "table of option_field(key, &Options::member) and validate(const ModelConfig&)");
  static void store(const ModelConfig& from, ModelConfig& to) {
    auto one = [&](auto settings) {
      settings.validate(from);
      to.set_part(settings);
    };
    (one(from.template part<O>()), ...);
  }
  static bool declares(std::string_view key) {
    return (ModelConfig::template declares<O>(key) || ...);
  }
  static void list(std::string& keys) {
    auto one = [&](const auto&... field) {
      ((keys += (keys.empty() ? "" : ", ") + std::string(field.key)), ...);
    };
    (std::apply(one, O::fields), ...);
  }
};

// `config` checked for a model of these parts: the trunk validated, each part's options read,
// validated and stored in canonical form; an option that no part declares is an error naming
// the composition and the options it has.
template <class... Policies>
ModelConfig configure_parts(const ModelConfig& config, const std::string& composition) {
  config.validate();
  ModelConfig result = config;
  result.options = {};
  (PartOptionsList<typename options_of<Policies>::type>::store(config, result), ...);
  for (const auto& [key, value] : config.options.entries()) {
    if ((PartOptionsList<typename options_of<Policies>::type>::declares(key) || ...)) continue;
    std::string known;
    (PartOptionsList<typename options_of<Policies>::type>::list(known), ...);
    throw Error(concat("ModelConfig option '", key, "' is not a setting of ", composition,
                       known.empty() ? std::string("; its parts take no options")
                                     : "; its parts take: " + known));
  }
  return result;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Mixers. T is the storage type, A the accumulation type of the precision policy P; activations
// come from the model's arena through an ArenaBinder, parameters from its one allocation. A part
// may also own scratch that grows with the calls it sees (attention's scores, sized by the T of
// the batch rather than max_seq_len).
namespace mixer_contract {

// Built from the model's configuration (widths, heads, its own options).
template <class M>
concept constructible = std::constructible_from<M, const ModelConfig&>;

// static declare(layout, config): adds its per-layer tensors, stacked over layers, to the layout.
template <class M>
concept declares = requires(ParameterLayout& layout, const ModelConfig& config) {
  M::declare(layout, config);
};

// bind_parameters(layout, params, grads): finds its tensors in the one parameter allocation.
template <class M, class T, class A>
concept binds_parameters = requires(M& m, const ParameterLayout& layout, T* params, A* grads) {
  m.bind_parameters(layout, params, grads);
};

// bind_activations(bind, slots, positions): what forward keeps, for `slots` layers of positions.
template <class M>
concept binds_activations = requires(M& m, ArenaBinder& bind, int slots, std::size_t positions) {
  m.bind_activations(bind, slots, positions);
};

// bind_gradients(bind, positions): backward's scratch, shared by every layer.
template <class M>
concept binds_gradients = requires(M& m, ArenaBinder& bind, std::size_t positions) {
  m.bind_gradients(bind, positions);
};

// forward(layer, slot, out, in, B, T, keep_for_backward): out[B·T·C] = mix(in), causal in t.
template <class M, class T>
concept has_forward = requires(M& m, int layer, T* out, const T* in, int B, int seq_len,
                               bool keep) { m.forward(layer, layer, out, in, B, seq_len, keep); };

// backward(layer, din, dout, in, B, T): din (overwrite or accumulate) and the parameter
// gradients (accumulated) of this layer's forward.
template <class M, class T>
concept has_backward = requires(M& m, int layer, Grad<T> din, const T* dout, const T* in, int B,
                                int seq_len) { m.backward(layer, din, dout, in, B, seq_len); };

// Optional: bind_decode(bind, layers) and decode(layer, out, in, t) — one position at a time with
// a cache of the past, for GPT::decode and GPT::generate.
template <class M, class T>
concept decodes = requires(M& m, ArenaBinder& bind, int layer, T* out, const T* in) {
  m.bind_decode(bind, layer);
  m.decode(layer, out, in, layer);
};

}  // namespace mixer_contract

template <class M, class T, class A>
concept MixerImplementation =
    mixer_contract::constructible<M> && mixer_contract::declares<M> &&
    mixer_contract::binds_parameters<M, T, A> && mixer_contract::binds_activations<M> &&
    mixer_contract::binds_gradients<M> && mixer_contract::has_forward<M, T> &&
    mixer_contract::has_backward<M, T>;

// ---------------------------------------------------------------------------------------------
// Heads: the token embedding on the way in, the output distribution and its loss on the way out.
// Token ids reach them as the model's device copy of the batch (int32, row_stride apart).
namespace head_contract {

using Token = std::int32_t;

template <class H>
concept constructible = std::constructible_from<H, const ModelConfig&>;

// static declare_input / declare_output(layout, config): its tensors before wpe and after lnf.
template <class H>
concept declares = requires(ParameterLayout& layout, const ModelConfig& config) {
  H::declare_input(layout, config);
  H::declare_output(layout, config);
};

// bind_parameters(layout, params, grads): finds its tensors in the one parameter allocation.
template <class H, class T, class A>
concept binds_parameters = requires(H& h, const ParameterLayout& layout, T* params, A* grads) {
  h.bind_parameters(layout, params, grads);
};

// bind_activations(bind, positions): logits, per-position losses and whatever backward needs.
template <class H>
concept binds_activations = requires(H& h, ArenaBinder& bind, std::size_t positions) {
  h.bind_activations(bind, positions);
};

// embed_forward(out, tokens, row_stride, wpe, B, T): out = token embedding + wpe rows.
template <class H, class T>
concept embeds = requires(H& h, T* out, const Token* tokens, int row_stride, const T* wpe, int B,
                          int seq_len) { h.embed_forward(out, tokens, row_stride, wpe, B, seq_len); };

// embed_backward(dout, tokens, row_stride, dwpe, B, T): accumulates the embedding gradients.
template <class H, class T, class A>
concept embeds_backward = requires(H& h, const T* dout, const Token* tokens, int row_stride,
                                   A* dwpe, int B, int seq_len) {
  h.embed_backward(dout, tokens, row_stride, dwpe, B, seq_len);
};

// forward(hidden, tokens, row_stride, B, T, depths, training) -> HeadLosses<A>: the mean loss of
// each of `depths` targets (1 = next token), from the final layer norm's output.
template <class H, class T, class A>
concept has_forward = requires(H& h, const T* hidden, const Token* tokens, int row_stride, int B,
                               int seq_len, int depths, bool training) {
  { h.forward(hidden, tokens, row_stride, B, seq_len, depths, training) }
      -> std::same_as<HeadLosses<A>>;
};

// Optional: forward(hidden, tokens, row_stride, B, T, depths, training, loss_sums) adds each
// depth's mean loss to loss_sums[depth - 1] (backend memory) instead of reading it back, so that a
// training step reads nothing; without it GPT::forward_summing reads and adds on the host.
template <class H, class T, class A>
concept sums_losses_in_place = requires(H& h, const T* hidden, const Token* tokens,
                                        int row_stride, int B, int seq_len, int depths,
                                        bool training, double* loss_sums) {
  { h.forward(hidden, tokens, row_stride, B, seq_len, depths, training, loss_sums) }
      -> std::same_as<HeadLosses<A>>;
};

// token_losses() -> const A*: the B·T next-token NLLs of the last forward, in the arena.
template <class H, class A>
concept reports_token_losses = requires(const H& h) {
  { h.token_losses() } -> std::convertible_to<const A*>;
};

// backward(dhidden, hidden, tokens, row_stride, B, T, scale, mtp_weight, smoothing): the gradient
// of the training objective times `scale` (1 / (B·T · micro-steps)); `smoothing` is the CoCoNT α,
// 0 for a head without n-gram smoothing.
template <class H, class T, class A>
concept has_backward = requires(H& h, Grad<T> dhidden, const T* hidden, const Token* tokens,
                                int row_stride, int B, int seq_len, A scale) {
  h.backward(dhidden, hidden, tokens, row_stride, B, seq_len, scale, scale, scale);
};

// log_probs(out, hidden, N): out[n·V + v] = log P(v | hidden n) over the V real tokens.
template <class H, class T, class A>
concept has_log_probs = requires(H& h, A* out, const T* hidden, int N) {
  h.log_probs(out, hidden, N);
};

// Optional: CoCoNT n-gram target smoothing (set_cocont(table), clear_cocont(), cocont_enabled()).
template <class H, class Table>
concept smooths_targets = requires(H& h, const H& c, Table table) {
  h.set_cocont(std::move(table));
  h.clear_cocont();
  { c.cocont_enabled() } -> std::convertible_to<bool>;
};

// Optional: share_state(owner): from now on read the training state that is not a parameter (a
// codebook, CoCoNT targets) from `owner`, a head of the same model that outlives this one. GPT's
// batch split (set_batch_split, CPU) builds a head per row group and points it at the model's;
// a head without training state besides its parameters provides an empty one.
template <class H>
concept shares_state = requires(H& h, const H& owner) {
  h.share_state(owner);
};

// Optional, with reallocation statistics (collecting_statistics()): add_statistics_of(group,
// tokens, row_stride, B, T) adds those of a row group's last training forward to this head's.
template <class H>
concept adds_statistics = requires(H& h, const H& group, const Token* tokens, int n) {
  h.add_statistics_of(group, tokens, n, n, n);
};
template <class H>
concept collects_statistics = requires(const H& h) {
  { h.collecting_statistics() } -> std::convertible_to<bool>;
};

}  // namespace head_contract

template <class H, class T, class A>
concept HeadImplementation =
    head_contract::constructible<H> && head_contract::declares<H> &&
    head_contract::binds_parameters<H, T, A> && head_contract::binds_activations<H> &&
    head_contract::embeds<H, T> && head_contract::embeds_backward<H, T, A> &&
    head_contract::has_forward<H, T, A> && head_contract::reports_token_losses<H, A> &&
    head_contract::has_backward<H, T, A> && head_contract::has_log_probs<H, T, A>;

namespace detail {

// One static_assert per member, so the compiler names what is missing.
template <class M, class T, class A>
constexpr bool check_mixer_contract() {
  using namespace mixer_contract;
  static_assert(constructible<M>, "Mixer::impl must be constructible from const ModelConfig&");
  static_assert(declares<M>,
                "Mixer::impl is missing static declare(ParameterLayout&, const ModelConfig&)");
  static_assert(binds_parameters<M, T, A>,
                "Mixer::impl is missing bind_parameters(const ParameterLayout&, T* params, "
                "A* grads)");
  static_assert(binds_activations<M>,
                "Mixer::impl is missing bind_activations(ArenaBinder&, int slots, std::size_t "
                "positions)");
  static_assert(binds_gradients<M>,
                "Mixer::impl is missing bind_gradients(ArenaBinder&, std::size_t positions)");
  static_assert(has_forward<M, T>,
                "Mixer::impl is missing forward(int layer, int slot, T* out, const T* in, int B, "
                "int T, bool keep_for_backward)");
  static_assert(has_backward<M, T>,
                "Mixer::impl is missing backward(int layer, Grad<T> din, const T* dout, const T* "
                "in, int B, int T)");
  return true;
}

template <class H, class T, class A>
constexpr bool check_head_contract() {
  using namespace head_contract;
  static_assert(constructible<H>, "Head::impl must be constructible from const ModelConfig&");
  static_assert(declares<H>,
                "Head::impl is missing static declare_input and declare_output"
                "(ParameterLayout&, const ModelConfig&)");
  static_assert(binds_parameters<H, T, A>,
                "Head::impl is missing bind_parameters(const ParameterLayout&, T* params, "
                "A* grads)");
  static_assert(binds_activations<H>,
                "Head::impl is missing bind_activations(ArenaBinder&, std::size_t positions)");
  static_assert(embeds<H, T>,
                "Head::impl is missing embed_forward(T* out, const int32_t* tokens, int "
                "row_stride, const T* wpe, int B, int T)");
  static_assert(embeds_backward<H, T, A>,
                "Head::impl is missing embed_backward(const T* dout, const int32_t* tokens, int "
                "row_stride, A* dwpe, int B, int T)");
  static_assert(has_forward<H, T, A>,
                "Head::impl is missing forward(const T* hidden, const int32_t* tokens, int "
                "row_stride, int B, int T, int depths, bool training) -> HeadLosses<A>");
  static_assert(reports_token_losses<H, A>,
                "Head::impl is missing token_losses() const -> const A*");
  static_assert(has_backward<H, T, A>,
                "Head::impl is missing backward(Grad<T> dhidden, const T* hidden, const int32_t* "
                "tokens, int row_stride, int B, int T, A scale, A mtp_weight, A smoothing)");
  static_assert(has_log_probs<H, T, A>,
                "Head::impl is missing log_probs(A* out, const T* hidden, int N)");
  return true;
}

}  // namespace detail
}  // namespace lightgpt
