// GPT<Precision, Head, Mixer, Backend>: the composed model. It owns the parameter store (one
// layout: head input tensors, wpe, the blocks, lnf, head output tensors — llm.c's order for the
// dense composition) and one activation arena sized from (B, T), and runs the trunk through the
// backend's kernel contract only, so the same code serves every backend.
//
// Token windows: row b of a batch starts at tokens + b·row_stride and holds T + mtp_depth ids; the
// inputs are ids [0, T) and the depth-j target of position t is id t + j.
//
// Call map of one training step, in order (Trainer::step in train/trainer.hpp drives it; paths are
// under include/lightgpt/). Ops::f is a kernel of Ops<Backend>; [family] names its header,
// backend/cpu/<family>.hpp and backend/cuda/<family>.cuh alike, except that lightrnn, attention
// and afno are a part's own kernels, in its folder's cpu.hpp and cuda.cuh (heads/lightrnn/,
// mixers/attention/, mixers/afno/), reached through K = <Part>Kernels<Backend>. Head:: and
// Mixer:: stand for Head::impl and Mixer::impl. Dropout steps run only with dropout > 0. What the
// step computes: docs/design.md, "Training objective".
//   0   GPT::zero_grad → ParameterStore::zero_grad: Ops::fill_zero   [model/parameters.hpp; memory]
//   then for each of the grad_accum micro-batches:
//   forward
//   1   GPT::forward → stage_tokens: ids checked on the host, staged as int32       [model/gpt.hpp]
//   2     ensure_arena → bind_activations: arena sized and bound    [model/gpt.hpp; core/arena.hpp]
//   3     run_trunk → Head::embed_forward: token embedding + wpe   [heads/*.hpp; norm_act|lightrnn]
//   4     drop_embedding: Ops::dropout of the embedding                   [model/gpt.hpp; norm_act]
//   5     Blocks::forward for layer 0 … L−1, each:                                [model/block.hpp]
//   5a      Ops::layernorm_forward (ln1)                                                 [norm_act]
//   5b      Mixer::forward: mix(ln1)                              [mixers/attention|afno/mixer.hpp]
//   5c      Ops::dropout, Ops::residual_forward: x + mix                                 [norm_act]
//   5d      Ops::layernorm_forward (ln2)                                                 [norm_act]
//   5e      Ops::matmul_forward (fc), Ops::gelu_forward                            [gemm; norm_act]
//   5f      Ops::matmul_forward (fcproj)                                                     [gemm]
//   5g      Ops::dropout, Ops::residual_forward: + MLP                                   [norm_act]
//   6     Ops::layernorm_forward (lnf)                                    [model/gpt.hpp; norm_act]
//   7   Head::forward: logits, log-sum-exps, CE per MTP depth (+ CoCoNT KL); the trainer's
//       GPT::forward_summing adds each depth's mean into device memory (Ops::add_mean), unread
//                                          [heads/dense.hpp|lightrnn/head.hpp; gemm, loss|lightrnn]
//   backward
//   8   GPT::backward → Head::backward: d(objective)/d(lnf output) into dlnf, head gradients
//                                          [heads/dense.hpp|lightrnn/head.hpp; loss|lightrnn, gemm]
//   9     Ops::layernorm_backward (lnf), overwriting dresidual            [model/gpt.hpp; norm_act]
//   10    Blocks::backward for layer L−1 … 0, each (then the on_layer_ready hook, if any):
//                                                                             [model/block.hpp]
//   10a     Ops::dropout of dresidual with the MLP branch's mask                         [norm_act]
//   10b     Ops::matmul_backward (fcproj), Ops::gelu_backward                      [gemm; norm_act]
//   10c     Ops::matmul_backward (fc)                                                        [gemm]
//   10d     Ops::layernorm_backward (ln2), accumulating into dresidual                   [norm_act]
//   10e     Ops::dropout of dresidual with the mixer's mask                              [norm_act]
//   10f     Mixer::backward: d(ln1), the mixer's gradients        [mixers/attention|afno/mixer.hpp]
//   10g     Ops::layernorm_backward (ln1), accumulating into dresidual                   [norm_act]
//   11    drop_embedding: Ops::dropout of dresidual                       [model/gpt.hpp; norm_act]
//   12    Head::embed_backward: token-table and wpe gradients      [heads/*.hpp; norm_act|lightrnn]
//   update
//   13  AdamW::queue_step: Ops::sum_of_squares_into, Ops::decide_update (norm, clip, skip on a
//       non-finite norm or loss, in device memory), Ops::adamw_update(_sparse_rows) reading them
//                                                [optim/adamw.hpp, core/update_status.hpp; optim]
//   14  LossScaler::update (Fp16 only), before the next step's backward: adapts the scale from
//       the skip flag read back                          [optim/loss_scaler.hpp; train/trainer.hpp]
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../backend/contract.hpp"
#include "../backend/cpu/row_groups.hpp"
#include "../core/arena.hpp"
#include "../core/concepts.hpp"
#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/losses.hpp"
#include "../core/platform.hpp"
#include "../loss/bigram.hpp"
#include "../optim/adamw.hpp"
#include "block.hpp"
#include "contract.hpp"
#include "parameters.hpp"
#include "sampling.hpp"

namespace lightgpt {

template <class P, class Head, class Mixer, class Backend = Cuda>
class GPT {
  static_assert(PrecisionPolicy<P>,
                "GPT<P, Head, Mixer, Backend>: P must be a precision policy: lightgpt::Fp32, Bf16, "
                "Fp16 or Fp64");
  static_assert(BackendTag<Backend>,
                "GPT<P, Head, Mixer, Backend>: Backend must be lightgpt::Cpu or lightgpt::Cuda");
  static_assert(!(P::cpu_only && std::is_same_v<Backend, Cuda>),
                "GPT<Fp64, Head, Mixer, Cuda>: Fp64 exists for CPU gradient checks only; name the "
                "CPU backend: GPT<Fp64, Head, Mixer, lightgpt::Cpu>");
  static_assert(!std::is_same_v<Backend, Cuda> || detail::compiling_with_nvcc,
                "GPT<P, Head, Mixer> uses the Cuda backend (the default): compile this file with "
                "nvcc as CUDA, or name the CPU backend: GPT<P, Head, Mixer, lightgpt::Cpu>");
  static_assert(HeadPolicy<Head>,
                "GPT<P, Head, Mixer, Backend>: Head must be a head policy such as "
                "lightgpt::DenseHead<> or lightgpt::DenseHead<MTP<2>>");
  static_assert(MixerPolicy<Mixer>,
                "GPT<P, Head, Mixer, Backend>: Mixer must be a mixer policy such as "
                "lightgpt::Attention");
  static_assert(detail::backend_available<Backend>::value,
                "GPT<P, Head, Mixer, Backend>: this backend's kernels are not available; include "
                "<lightgpt/lightgpt.hpp> for Cpu (CUDA kernels come with <lightgpt/cuda.cuh>)");

 public:
  using precision = P;
  using head_policy = Head;
  using mixer_policy = Mixer;
  using backend = Backend;
  using T = typename P::storage_t;
  using A = typename P::accum_t;
  static constexpr int mtp_depth = Head::mtp_depth;
  // The parts' implementations for this backend and precision, checked against their contracts
  // (model/contract.hpp) member by member.
  using HeadImpl = typename Head::template impl<Backend, P>;
  using MixerImpl = typename Mixer::template impl<Backend, P>;
  static_assert(detail::check_head_contract<HeadImpl, T, A>());
  static_assert(detail::check_mixer_contract<MixerImpl, T, A>());
  // The optimizer whose types match this model's parameter store.
  using Optimizer = AdamW<Backend, A>;

  GPT(const ModelConfig& config, std::uint64_t seed)
      : config_(configured(config)),
        store_(make_layout(config_)),
        head_(config_),
        blocks_(config_) {
    store_.initialize(seed);
    bind_parameters();
    find_layer_tensors();
    track_token_rows();
  }

  GPT(const GPT&) = delete;
  GPT& operator=(const GPT&) = delete;

  const ModelConfig& config() const { return config_; }
  // What a checkpoint must match: head and mixer (precision and backend may differ).
  static std::string composition() { return "head=" + Head::name() + " mixer=" + Mixer::name(); }
  ParameterStore<P, Backend>& parameters() { return store_; }
  const ParameterStore<P, Backend>& parameters() const { return store_; }
  std::size_t num_parameters() const { return store_.layout().num_parameters(); }
  // The parameters a model of `config` would have, computed without building it.
  static std::size_t num_parameters(const ModelConfig& config) {
    return make_layout(configured(config)).num_parameters();
  }
  // `config` as a model of this composition keeps it: validated, with every option belonging to
  // a part and stored only when it differs from its default (docs/design.md, "Part options").
  static ModelConfig configured(const ModelConfig& config) {
    return detail::configure_parts<Head, Mixer>(config, composition());
  }
  // The config a file (`source`) states, checked against this model's: read as this composition
  // reads it, it must be equal; the error shows both.
  void check_config(const ModelConfig& stated, const std::string& source) const {
    ModelConfig as_built;
    try {
      as_built = configured(stated);
    } catch (const Error& error) {
      throw Error(detail::concat(source, ": ", error.message()));
    }
    LIGHTGPT_CHECK(as_built == config_, source, " was written for the config\n", stated.serialize(),
                   "but this model has\n", config_.serialize());
  }
  // The head's implementation, for head-specific state (e.g. LightRnnHead's codebook).
  auto& head() { return head_; }
  const auto& head() const { return head_; }

  // Weight of the auxiliary MTP losses (w_mtp), kDefaultMtpWeight = 0.35 until set; run-time
  // state, changing it rebuilds nothing. Irrelevant for MTP<1>.
  void set_mtp_weight(A weight) { mtp_weight_ = weight; }
  A mtp_weight() const { return mtp_weight_; }

  // Dropout of training forwards (GPT-2's embd_pdrop and resid_pdrop, one probability p for the
  // token + position embedding and for the mixer's and MLP's outputs before each residual add);
  // 0, the default, turns it off. evaluate(), log_probs() and decoding never drop. The masks
  // are hashes of the dropout seed, which advances after every training forward; a trainer that
  // must reproduce a run (resume) sets it per micro-step with set_dropout_seed.
  void set_dropout(A p) {
    LIGHTGPT_CHECK(p >= A(0) && p < A(1), "set_dropout: p must lie in [0, 1), got ", p);
    dropout_p_ = p;
  }
  A dropout() const { return dropout_p_; }
  void set_dropout_seed(std::uint64_t seed) { dropout_seed_ = seed; }
  std::uint64_t dropout_seed() const { return dropout_seed_; }

  // CoCoNT n-gram target smoothing (loss/cocont.hpp): with a bigram table set, the main loss of
  // training forwards becomes (1−α)·CE + α·KL(P_ngram ‖ P_θ) (LightRNN: at the row level), its KL
  // reported as losses().cocont; evaluate(), log_probs() and losses().main stay pure NLL. The
  // head uploads its targets once here; α is run-time state and changing it rebuilds nothing.
  void set_cocont(BigramTable table) requires
      head_contract::smooths_targets<HeadImpl, BigramTable> {
    LIGHTGPT_CHECK(table.vocab_size() == config_.vocab_size,
                   "set_cocont: the bigram table was built for vocab_size ", table.vocab_size(),
                   ", but the model has vocab_size ", config_.vocab_size);
    head_.set_cocont(std::move(table));
  }
  void clear_cocont() requires head_contract::smooths_targets<HeadImpl, BigramTable> {
    head_.clear_cocont();
  }
  // False for a head without n-gram smoothing (the capability is optional).
  bool cocont_enabled() const {
    if constexpr (head_contract::smooths_targets<HeadImpl, BigramTable>) {
      return head_.cocont_enabled();
    } else {
      return false;
    }
  }
  void set_cocont_alpha(A alpha) {
    LIGHTGPT_CHECK(alpha >= A(0) && alpha <= A(1),
                   "set_cocont_alpha: alpha must lie in [0, 1], got ", alpha);
    cocont_alpha_ = alpha;
  }
  A cocont_alpha() const { return cocont_alpha_; }

  // Sizes the activation arena for training batches of up to B·T positions. Optional: the first
  // forward() does it; calling it up front keeps every allocation out of the training loop.
  void reserve(int B, int seq_len) {
    check_shape(B, seq_len);
    if (splits(B)) {
      const std::vector<int> rows = plan_groups(B).second;
      for (std::size_t k = 0; k < rows.size(); ++k) {
        GPT& g = group(static_cast<int>(k));
        g.ensure_arena(true, static_cast<std::size_t>(rows[k]) * seq_len,
                       rows[k] * (seq_len + mtp_depth));
      }
      return;
    }
    ensure_arena(true, static_cast<std::size_t>(B) * seq_len, B * (seq_len + mtp_depth));
  }

  // Training forward: keeps the activations backward() needs and returns the main loss, the mean
  // next-token NLL in nats. losses() has every depth. row_stride defaults to T + mtp_depth.
  template <class Tok>
  requires std::is_integral_v<Tok> A forward(const Tok* tokens, int B, int seq_len,
                                             int row_stride = -1) {
    if (splits(B)) {
      split_forward(nullptr, tokens, B, seq_len, row_stride);
    } else {
      forward_rows(nullptr, tokens, B, seq_len, row_stride);
    }
    return losses_.main;
  }

  // forward() that reads no loss back: each depth's mean loss is added to loss_sums[depth - 1]
  // (mtp_depth doubles of backend memory), where a trainer sums a step's micro-batches and reads
  // them when it logs. losses() keeps the CoCoNT term only (a host read when CoCoNT is on).
  template <class Tok>
  requires std::is_integral_v<Tok> void forward_summing(double* loss_sums, const Tok* tokens,
                                                        int B, int seq_len, int row_stride = -1) {
    LIGHTGPT_CHECK(loss_sums != nullptr, "forward_summing: loss_sums is null");
    if (splits(B)) {
      split_forward(loss_sums, tokens, B, seq_len, row_stride);
    } else {
      forward_rows(loss_sums, tokens, B, seq_len, row_stride);
    }
  }

  const HeadLosses<A>& losses() const { return losses_; }

  // The next-token NLL of each position of the last forward() or evaluate(), into out[b·T + t]
  // (B·T values): what the mean loss averages, split by position.
  void token_losses(A* out) const {
    if (!group_rows_.empty()) {
      for (std::size_t k = 0; k < group_rows_.size(); ++k) {
        const GPT& g = group(static_cast<int>(k));
        O::copy_to_host(out + static_cast<std::size_t>(group_first_[k]) * seq_len_,
                        g.head_.token_losses(), static_cast<std::size_t>(g.batch_) * g.seq_len_);
      }
      return;
    }
    O::copy_to_host(out, head_.token_losses(), static_cast<std::size_t>(batch_) * seq_len_);
  }

  // Batch split (CPU; docs/design.md, "Batch split"): training forwards and backwards run a batch
  // of B rows as min(groups, B) runs of contiguous rows, whose sizes differ by at most one, each on
  // its own OpenMP thread through the whole model alone: the model's weights, activations and a
  // gradient buffer of its own. backward() then adds the groups' parameter gradients into the
  // model's, in group order. A small model's kernels are too short for two threads to share each
  // of them well (BENCHMARKS.md, "CPU: the batch split"); its groups meet twice per step. The
  // losses and gradients are the unsplit model's up to rounding, dropout included: each group
  // draws its rows' part of the whole batch's masks. The result depends on `groups`, not on the
  // thread count: use as many groups as threads. Each group costs a gradient buffer of
  // num_parameters() values.
  // evaluate(), log_probs() and decoding never split. 1, the default, turns it off.
  void set_batch_split(int groups) {
    LIGHTGPT_CHECK(groups >= 1 && groups <= kMaxBatchSplit,
                   "set_batch_split: groups must lie in [1, ", kMaxBatchSplit, "], got ", groups);
    LIGHTGPT_CHECK((groups == 1 || std::is_same_v<Backend, Cpu>),
                   "set_batch_split: the batch split is for the Cpu backend (a GPU runs the "
                   "whole batch in each kernel); got ",
                   groups, " groups for ", Backend::name);
    if constexpr (!head_contract::shares_state<HeadImpl>) {
      LIGHTGPT_CHECK(groups == 1, "set_batch_split: the head ", Head::name(),
                     " has no share_state(owner) (model/contract.hpp), so row groups could not "
                     "read its training state");
    }
    if constexpr (head_contract::collects_statistics<HeadImpl> &&
                  !head_contract::adds_statistics<HeadImpl>) {
      LIGHTGPT_CHECK(groups == 1, "set_batch_split: the head ", Head::name(),
                     " collects reallocation statistics but has no add_statistics_of(group, ...) "
                     "(model/contract.hpp) to gather its row groups'");
    }
    if constexpr (std::is_same_v<Backend, Cpu> && head_contract::shares_state<HeadImpl>) {
      groups_.clear();
      for (int k = 1; k < groups; ++k) {
        groups_.push_back(std::unique_ptr<GPT>(new GPT(*this, RowGroupTag{})));
      }
    }
    group_rows_.clear();
    group_first_.clear();
    backward_ready_ = false;
  }
  int batch_split() const { return static_cast<int>(groups_.size()) + 1; }

  // Called by backward() with layer l as soon as layer l's parameter gradients (layer_ranges(l,
  // l + 1)) are final for this backward, for l = L−1 … 0 in turn; on the Cuda backend, once the
  // kernels that produce them are queued on the backend's stream. Everything else
  // (shared_ranges()) is final only when backward() returns.
  using LayerReady = std::function<void(int layer)>;

  // Gradient of the training objective of the last forward() times grad_scale (1 / number of
  // gradient-accumulation micro-steps), accumulated into the parameter gradients; see LayerReady
  // for on_layer_ready, which lets data-parallel training reduce a layer's gradients while the
  // layers below it run their backward.
  void backward(A grad_scale = A(1), const LayerReady& on_layer_ready = {}) {
    LIGHTGPT_CHECK(backward_ready_,
                   "backward() needs a training forward() first (evaluate() and log_probs() "
                   "keep no activations)");
    if (group_rows_.empty()) {
      backward_rows(grad_scale, on_layer_ready);
      return;
    }
    // Each group's mean is over its own rows: weighted by its share of the batch, the groups'
    // gradients sum to the gradient of the mean over all of them.
    const int groups = static_cast<int>(group_rows_.size());
    const A batch = A(group_first_.back() + group_rows_.back());
    cpu::run_row_groups(groups, [&](int k) {
      group(k).backward_rows(grad_scale * A(group_rows_[std::size_t(k)]) / batch, {});
    });
    if constexpr (std::is_same_v<Backend, Cpu>) {
      for (const std::unique_ptr<GPT>& g : groups_) store_.take_gradients(g->store_);
    }
    backward_ready_ = false;
    if (on_layer_ready) {
      for (int layer = config_.n_layer - 1; layer >= 0; --layer) on_layer_ready(layer);
    }
  }

  void zero_grad() { store_.zero_grad(); }

 private:
  // backward() of the rows this model ran itself (all of the batch, or the first group's).
  void backward_rows(A grad_scale, const LayerReady& on_layer_ready) {
    LIGHTGPT_CHECK(backward_ready_, "backward() needs a training forward() first");
    const int N = batch_ * seq_len_;
    head_.backward(overwrite(dlnf_), lnf_, tokens_, window_, batch_, seq_len_, grad_scale / A(N),
                   mtp_weight_, cocont_alpha_);
    O::layernorm_backward(overwrite(dresidual_), accumulate(lnfw_.grad), accumulate(lnfb_.grad),
                          dlnf_, blocks_output_, lnfw_.value, lnf_mean_, lnf_rstd_, N, C());
    for (int layer = config_.n_layer - 1; layer >= 0; --layer) {
      const T* input = layer == 0 ? encoded_ : blocks_.output(layer - 1, N);
      blocks_.backward(layer, dresidual_, input, batch_, seq_len_);
      if (on_layer_ready) on_layer_ready(layer);
    }
    if (dropout_p_ > A(0)) drop_embedding(dresidual_);
    head_.embed_backward(dresidual_, tokens_, window_, wpe_.grad, batch_, seq_len_);
    if constexpr (std::is_same_v<Backend, Cpu>) {
      // The rows of the token tables written: the input ids (tokens_ is host memory here).
      for (int b = 0; b < batch_; ++b) {
        store_.note_gradient_rows(tokens_ + std::size_t(b) * window_, std::size_t(seq_len_));
      }
    }
    backward_ready_ = false;
  }

 public:
  // Where the parameters of layers [first, last) lie in the flat layout: one range per tensor of
  // the blocks (all stacked over the layers, so each layer run is contiguous within a tensor).
  std::vector<FlatRange> layer_ranges(int first, int last) const {
    LIGHTGPT_CHECK(0 <= first && first < last && last <= config_.n_layer, "layer_ranges: [",
                   first, ", ", last, ") is not a run of the model's ", config_.n_layer,
                   " layers");
    std::vector<FlatRange> ranges;
    for (const TensorInfo* tensor : layer_tensors_) {
      const std::size_t per_layer = tensor->numel / static_cast<std::size_t>(config_.n_layer);
      ranges.push_back({tensor->offset + std::size_t(first) * per_layer,
                        std::size_t(last - first) * per_layer});
    }
    return ranges;
  }
  // The rest of the flat layout (embeddings, final layer norm, head, and padding), in order.
  std::vector<FlatRange> shared_ranges() const {
    const TensorInfo& first = *layer_tensors_.front();
    const std::size_t end = store_.layout().at("lnfw").offset;
    return {{0, first.offset}, {end, store_.layout().size() - end}};
  }

  // Inference forward: mean next-token NLL of B windows of T + 1 ids (row_stride defaults to
  // T + 1), keeping no activations, so the arena is reused for any B·T it can hold.
  template <class Tok>
  requires std::is_integral_v<Tok> A evaluate(const Tok* tokens, int B, int seq_len,
                                              int row_stride = -1) {
    stage_tokens(tokens, B, seq_len, seq_len + 1, row_stride < 0 ? seq_len + 1 : row_stride, false,
                 "evaluate");
    run_trunk(false);
    return head_.forward(lnf_, tokens_, window_, batch_, seq_len_, 1).main;
  }

  // out[(b·T + t)·V + v] = log P(token v | inputs[b·T + 0 .. t]) for the V real tokens.
  template <class Tok>
  requires std::is_integral_v<Tok>
  void log_probs(const Tok* inputs, int B, int seq_len, A* out) {
    stage_tokens(inputs, B, seq_len, seq_len, seq_len, false, "log_probs");
    run_trunk(false);
    head_.log_probs(out, lnf_, B * seq_len);
  }

  // Incremental decoding of one sequence with the mixers' caches (attention's keys and values,
  // AFNO's past inputs): each call costs one position through the trunk, never the whole context.
  // decode_reset() starts a new sequence; decode(token) appends `token` and returns
  // log P(next token | the sequence so far) over the V real tokens.
  void decode_reset() { decode_position_ = 0; }
  int decode_position() const { return decode_position_; }

  std::span<const A> decode(int token) {
    static_assert(mixer_contract::decodes<MixerImpl, T>,
                  "GPT::decode and generate need a mixer with incremental decoding: Mixer::impl is "
                  "missing bind_decode(ArenaBinder&, int layers) or decode(int layer, T* out, "
                  "const T* in, int t)");
    LIGHTGPT_CHECK(token >= 0 && token < config_.vocab_size, "decode: token id ", token,
                   " is outside [0, vocab_size = ", config_.vocab_size, ")");
    LIGHTGPT_CHECK(decode_position_ < config_.max_seq_len,
                   "decode: the sequence already holds "
                   "max_seq_len = ",
                   config_.max_seq_len, " tokens; call decode_reset()");
    ensure_arena(false, 1, 1);
    if (decode_arena_.size() == 0) {
      ArenaBinder measure;
      bind_decode(measure);
      decode_arena_ = Buffer<std::byte, Backend>(measure.bytes());
    }
    ArenaBinder bind(decode_arena_.data());
    bind_decode(bind);

    const int t = decode_position_++;
    const std::int32_t id = token;
    O::copy_from_host(tokens_, &id, 1);
    head_.embed_forward(encoded_, tokens_, 1, wpe_.value + static_cast<std::size_t>(t) * C(), 1, 1);
    const T* x = encoded_;
    for (int layer = 0; layer < config_.n_layer; ++layer) x = blocks_.decode(layer, x, t);
    O::layernorm_forward(lnf_, static_cast<A*>(nullptr), static_cast<A*>(nullptr), x, lnfw_.value,
                         lnfb_.value, 1, C());
    head_.log_probs(decode_log_probs_, lnf_, 1);
    decode_host_.resize(static_cast<std::size_t>(config_.vocab_size));
    O::copy_to_host(decode_host_.data(), decode_log_probs_, decode_host_.size());
    return decode_host_;
  }

  // Continues `prompt` by up to max_new_tokens sampled tokens, calling on_token(id) for each as
  // soon as it is drawn (return false to stop). When the context reaches max_seq_len, decoding
  // restarts from its last half, so generation can run past the model's window.
  std::vector<std::int32_t> generate(std::span<const std::int32_t> prompt, int max_new_tokens,
                                     const SamplingOptions& options,
                                     const std::function<bool(std::int32_t)>& on_token = {}) {
    options.validate();
    LIGHTGPT_CHECK(!prompt.empty(), "generate: the prompt must hold at least one token");
    LIGHTGPT_CHECK(max_new_tokens >= 0, "generate: max_new_tokens must be non-negative, got ",
                   max_new_tokens);
    std::vector<std::int32_t> context(prompt.begin(), prompt.end());
    if (context.size() > static_cast<std::size_t>(config_.max_seq_len)) {
      context.erase(context.begin(), context.end() - config_.max_seq_len);
    }
    Rng rng(options.seed);
    std::vector<int> order;
    std::vector<std::int32_t> generated;
    decode_reset();
    std::span<const A> next;
    for (std::int32_t id : context) next = decode(id);
    for (int i = 0; i < max_new_tokens; ++i) {
      const auto id = static_cast<std::int32_t>(sample_token(next, options, rng, order));
      generated.push_back(id);
      context.push_back(id);
      if (on_token && !on_token(id)) break;
      if (i + 1 == max_new_tokens) break;
      if (decode_position_ == config_.max_seq_len) {
        context.erase(context.begin(), context.end() - config_.max_seq_len / 2);
        decode_reset();
        for (std::int32_t kept : context) next = decode(kept);
      } else {
        next = decode(id);
      }
    }
    return generated;
  }

 private:
  using O = Ops<Backend>;
  static constexpr int kMaxBatchSplit = 1024;

  // A row group of the batch split (set_batch_split): the model's configuration and weights, its
  // own head and mixer objects (pointed at `owner`'s head state), activations and gradients.
  struct RowGroupTag {};
  GPT(GPT& owner, RowGroupTag)
      : config_(owner.config_), store_(owner.store_), head_(config_), blocks_(config_) {
    if constexpr (head_contract::shares_state<HeadImpl>) head_.share_state(owner.head_);
    bind_parameters();
    track_token_rows();
    store_.zero_grad();
  }

  bool splits(int B) const { return !groups_.empty() && B > 1; }
  // Group k runs rows [first[k], first[k] + rows[k]); group 0 is this model.
  GPT& group(int k) { return k == 0 ? *this : *groups_[static_cast<std::size_t>(k - 1)]; }
  const GPT& group(int k) const {
    return k == 0 ? *this : *groups_[static_cast<std::size_t>(k - 1)];
  }
  std::pair<std::vector<int>, std::vector<int>> plan_groups(int B) const {
    const int groups = std::min(batch_split(), B);
    std::vector<int> first(static_cast<std::size_t>(groups)), rows(first.size());
    for (int k = 0, row = 0; k < groups; ++k) {
      first[std::size_t(k)] = row;
      rows[std::size_t(k)] = B / groups + (k < B % groups ? 1 : 0);
      row += rows[std::size_t(k)];
    }
    return {first, rows};
  }

  // A training forward of B rows on this model alone; with loss_sums, each depth's mean is added
  // there (host or backend memory, as forward_summing).
  template <class Tok>
  void forward_rows(double* loss_sums, const Tok* tokens, int B, int seq_len, int row_stride) {
    training_forward(tokens, B, seq_len, row_stride);
    if (loss_sums == nullptr) {
      losses_ = head_.forward(lnf_, tokens_, window_, batch_, seq_len_, mtp_depth, true);
    } else if constexpr (head_contract::sums_losses_in_place<HeadImpl, T, A>) {
      losses_ = head_.forward(lnf_, tokens_, window_, batch_, seq_len_, mtp_depth, true, loss_sums);
    } else {
      losses_ = head_.forward(lnf_, tokens_, window_, batch_, seq_len_, mtp_depth, true);
      double sums[kMaxMtpDepth];
      O::copy_to_host(sums, loss_sums, mtp_depth);
      for (int j = 0; j < mtp_depth; ++j) sums[j] += double(losses_.depth[j]);
      O::copy_from_host(loss_sums, sums, mtp_depth);
    }
  }

  // The training forward of the batch split: each group its rows, on its own thread; the losses
  // are the groups' means weighted by their rows, as the mean over the whole batch is. With
  // loss_sums (host memory: the split is CPU-only) they are added there.
  template <class Tok>
  void split_forward(double* loss_sums, const Tok* tokens, int B, int seq_len, int row_stride) {
    check_shape(B, seq_len);
    LIGHTGPT_CHECK(tokens != nullptr, "forward: tokens is null");
    const int stride = row_stride < 0 ? seq_len + mtp_depth : row_stride;
    LIGHTGPT_CHECK(stride > 0, "forward: row_stride must be positive, got ", row_stride);
    const auto plan = plan_groups(B);
    const std::vector<int>& first = plan.first;
    const std::vector<int>& rows = plan.second;
    const int groups = static_cast<int>(rows.size());
    for (int k = 1; k < groups; ++k) {
      GPT& g = group(k);
      g.mtp_weight_ = mtp_weight_;
      g.dropout_p_ = dropout_p_;
      g.cocont_alpha_ = cocont_alpha_;
      g.dropout_seed_ = dropout_seed_;
      g.first_row_ = first[std::size_t(k)];
    }
    std::vector<double> sums(static_cast<std::size_t>(groups) * kMaxMtpDepth, 0.0);
    cpu::run_row_groups(groups, [&](int k) {
      const std::size_t at = static_cast<std::size_t>(k);
      group(k).forward_rows(loss_sums != nullptr ? sums.data() + at * kMaxMtpDepth : nullptr,
                            tokens + static_cast<std::size_t>(first[at]) * stride, rows[at],
                            seq_len, stride);
    });
    if constexpr (head_contract::adds_statistics<HeadImpl>) {
      for (int k = 1; k < groups; ++k) {
        const GPT& g = group(k);
        head_.add_statistics_of(g.head_,
                                tokens + static_cast<std::size_t>(first[std::size_t(k)]) * stride,
                                stride, rows[std::size_t(k)], seq_len);
      }
    }
    HeadLosses<A> combined;
    combined.depths = losses_.depths;
    double main = 0, cocont = 0, depth[kMaxMtpDepth] = {};
    for (int k = 0; k < groups; ++k) {
      const double weight = double(rows[std::size_t(k)]) / double(B);
      const HeadLosses<A>& part = group(k).losses_;
      main += weight * double(part.main);
      cocont += weight * double(part.cocont);
      for (int j = 0; j < mtp_depth; ++j) {
        depth[j] += weight * (loss_sums != nullptr ? sums[std::size_t(k) * kMaxMtpDepth + j]
                                                   : double(part.depth[std::size_t(j)]));
      }
    }
    if (loss_sums != nullptr) {
      for (int j = 0; j < mtp_depth; ++j) loss_sums[j] += depth[j];
      main = depth[0];  // the groups' parts were added to their sums, not kept in losses_
    }
    combined.main = A(main);
    for (int j = 0; j < mtp_depth; ++j) combined.depth[std::size_t(j)] = A(depth[j]);
    combined.cocont = A(cocont);
    losses_ = combined;
    group_first_ = first;
    group_rows_ = rows;
  }

  // The trunk of a training forward, up to the head.
  template <class Tok>
  void training_forward(const Tok* tokens, int B, int seq_len, int row_stride) {
    const int window = seq_len + mtp_depth;
    stage_tokens(tokens, B, seq_len, window, row_stride < 0 ? window : row_stride, true, "forward");
    forward_dropout_seed_ = dropout_seed_++;
    blocks_.set_dropout(double(dropout_p_), forward_dropout_seed_, dropout_first_element());
    run_trunk(true);
    backward_ready_ = true;
  }
  using Tensor = BoundTensor<T, A>;

  static ParameterLayout make_layout(const ModelConfig& config) {
    ParameterLayout layout;
    const std::int64_t C = config.d_model;
    layout.set_part("head " + Head::name());
    HeadImpl::declare_input(layout, config);
    layout.set_part("trunk");
    layout.add("wpe", {config.max_seq_len, C}, false, Init::normal(0.02));
    detail::Blocks<Backend, P, MixerImpl>::declare(layout, config, "mixer " + Mixer::name());
    layout.add("lnfw", {C}, false, Init::ones());
    layout.add("lnfb", {C}, false, Init::zeros());
    layout.set_part("head " + Head::name());
    HeadImpl::declare_output(layout, config);
    config.check_parameter_bytes(checked_mul(std::uint64_t(layout.size()), 4, "ModelConfig"));
    return layout;
  }

  int C() const { return config_.d_model; }

  // The blocks' tensors: everything between wpe and lnfw (make_layout), each stacked over the
  // layers, as layer_ranges() needs.
  void find_layer_tensors() {
    const std::vector<TensorInfo>& tensors = store_.layout().tensors();
    bool inside = false;
    for (const TensorInfo& tensor : tensors) {
      if (tensor.name == "lnfw") break;
      if (inside) {
        LIGHTGPT_CHECK(tensor.shape.front() == config_.n_layer, "parameter '", tensor.name,
                       "' of ", tensor.part, " has shape[0] = ", tensor.shape.front(),
                       ", but every block tensor is stacked over the n_layer = ",
                       config_.n_layer, " layers");
        layer_tensors_.push_back(&tensor);
      }
      if (tensor.name == "wpe") inside = true;
    }
  }

  // A sparse_rows tensor is a token table (core/layout.hpp): the backward writes the rows of its
  // input ids only, and the store, told which, skips the others (ParameterStore::
  // track_gradient_rows; CPU only).
  void track_token_rows() {
    bool any = false;
    for (const TensorInfo& tensor : store_.layout().tensors()) {
      if (!tensor.sparse_rows) continue;
      LIGHTGPT_CHECK(tensor.shape.front() == config_.vocab_size, "parameter '", tensor.name,
                     "' of ", tensor.part, " is flagged sparse_rows, a token table, but has ",
                     tensor.shape.front(), " rows for vocab_size = ", config_.vocab_size);
      any = true;
    }
    if (any) store_.track_gradient_rows(true);
  }

  void bind_parameters() {
    const ParameterLayout& layout = store_.layout();
    for (Tensor* tensor : {&wpe_, &lnfw_, &lnfb_}) {
      tensor->bind(layout, store_.values(), store_.grads());
    }
    head_.bind_parameters(layout, store_.values(), store_.grads());
    blocks_.bind_parameters(layout, store_.values(), store_.grads());
  }

  void check_shape(int B, int seq_len) const {
    LIGHTGPT_CHECK(B > 0, "batch size B must be positive, got ", B);
    LIGHTGPT_CHECK(seq_len > 0, "sequence length T must be positive, got ", seq_len);
    LIGHTGPT_CHECK(seq_len <= config_.max_seq_len, "sequence length T (", seq_len,
                   ") exceeds ModelConfig.max_seq_len (", config_.max_seq_len, ")");
  }

  // Copies B windows of `window` ids into the arena as int32, checking every id against V.
  template <class Tok>
  void stage_tokens(const Tok* tokens, int B, int seq_len, int window, int row_stride,
                    bool training, const char* caller) {
    check_shape(B, seq_len);
    LIGHTGPT_CHECK(tokens != nullptr, caller, ": tokens is null");
    LIGHTGPT_CHECK(row_stride > 0, caller, ": row_stride must be positive, got ", row_stride);
    ensure_arena(training, static_cast<std::size_t>(B) * seq_len, B * window);
    const std::size_t count = static_cast<std::size_t>(B) * window;
    std::int32_t* staged = token_staging_.acquire(count);
    for (int b = 0; b < B; ++b) {
      for (int i = 0; i < window; ++i) {
        const long long id = static_cast<long long>(tokens[std::size_t(b) * row_stride + i]);
        LIGHTGPT_CHECK(id >= 0 && id < config_.vocab_size, caller, ": token id ", id, " at row ",
                       first_row_ + b, ", position ", i,
                       " is outside [0, vocab_size = ", config_.vocab_size, ")");
        staged[static_cast<std::size_t>(b) * window + i] = static_cast<std::int32_t>(id);
      }
    }
    token_staging_.upload(tokens_, count);
    group_rows_.clear();
    group_first_.clear();
    batch_ = B;
    seq_len_ = seq_len;
    window_ = window;
    backward_ready_ = false;
  }

  void run_trunk(bool training) {
    const int N = batch_ * seq_len_;
    head_.embed_forward(encoded_, tokens_, window_, wpe_.value, batch_, seq_len_);
    if (training && dropout_p_ > A(0)) drop_embedding(encoded_);
    const T* x = encoded_;
    for (int layer = 0; layer < config_.n_layer; ++layer) {
      x = blocks_.forward(layer, training ? layer : 0, x, batch_, seq_len_, training);
    }
    blocks_output_ = x;
    O::layernorm_forward(lnf_, training ? lnf_mean_ : nullptr, training ? lnf_rstd_ : nullptr, x,
                         lnfw_.value, lnfb_.value, N, C());
  }

  // The embedding's dropout mask (site 0) applied in place, to the embedding forward and to the
  // gradient reaching it.
  void drop_embedding(T* values) {
    O::dropout(values, values, static_cast<std::size_t>(batch_) * seq_len_ * C(),
               double(dropout_p_),
               detail::dropout_seed_from(
                   detail::Blocks<Backend, P, MixerImpl>::dropout_site_seed(forward_dropout_seed_, 0),
                   dropout_first_element()));
  }
  // Where this model's activations start in the batch whose dropout masks they draw: a row
  // group's part of the whole batch's (0 unless a row group).
  std::uint64_t dropout_first_element() const {
    return std::uint64_t(first_row_) * std::uint64_t(seq_len_) * std::uint64_t(C());
  }

  // Binds every activation for `positions` (all layers when training, one layer's worth when
  // not); grows the single allocation only when the request does not fit.
  void ensure_arena(bool training, std::size_t positions, int token_count) {
    ArenaBinder measure;
    bind_activations(measure, training, positions, token_count);
    if (measure.bytes() > arena_.size()) arena_ = Buffer<std::byte, Backend>(measure.bytes());
    ArenaBinder bind(arena_.data());
    bind_activations(bind, training, positions, token_count);
  }

  void bind_activations(ArenaBinder& bind, bool training, std::size_t positions, int token_count) {
    const std::size_t per_position = static_cast<std::size_t>(C());
    bind(tokens_, static_cast<std::size_t>(token_count));
    bind(encoded_, positions * per_position);
    bind(lnf_, positions * per_position);
    bind(lnf_mean_, positions);
    bind(lnf_rstd_, positions);
    blocks_.bind_activations(bind, training ? config_.n_layer : 1, positions);
    head_.bind_activations(bind, positions);
    if (training) {
      bind(dresidual_, positions * per_position);
      bind(dlnf_, positions * per_position);
      blocks_.bind_gradients(bind, positions);
    }
  }

  void bind_decode(ArenaBinder& bind) {
    blocks_.bind_decode(bind, config_.n_layer);
    bind(decode_log_probs_, static_cast<std::size_t>(config_.vocab_size));
  }

  ModelConfig config_;
  ParameterStore<P, Backend> store_;
  HeadImpl head_;
  detail::Blocks<Backend, P, MixerImpl> blocks_;
  Tensor wpe_{"wpe"}, lnfw_{"lnfw"}, lnfb_{"lnfb"};
  std::vector<const TensorInfo*> layer_tensors_;

  Buffer<std::byte, Backend> arena_;
  Buffer<std::byte, Backend> decode_arena_;
  A* decode_log_probs_ = nullptr;
  std::vector<A> decode_host_;
  int decode_position_ = 0;
  // Token ids validated on the host, then uploaded without stalling the stream.
  typename O::template HostStaging<std::int32_t> token_staging_;
  std::int32_t* tokens_ = nullptr;
  T *encoded_ = nullptr, *lnf_ = nullptr, *dresidual_ = nullptr, *dlnf_ = nullptr;
  A *lnf_mean_ = nullptr, *lnf_rstd_ = nullptr;
  const T* blocks_output_ = nullptr;

  // The batch split's other row groups (set_batch_split), and the rows each group ran in the last
  // training forward when it was split (empty otherwise).
  std::vector<std::unique_ptr<GPT>> groups_;
  std::vector<int> group_first_, group_rows_;

  int batch_ = 0, seq_len_ = 0, window_ = 0;
  int first_row_ = 0;  // a row group's first row in the batch (error messages, dropout masks)
  bool backward_ready_ = false;
  A mtp_weight_ = A(kDefaultMtpWeight);
  A dropout_p_ = A(0);
  std::uint64_t dropout_seed_ = 0, forward_dropout_seed_ = 0;
  A cocont_alpha_ = A(0.1);
  HeadLosses<A> losses_;
};

}  // namespace lightgpt
