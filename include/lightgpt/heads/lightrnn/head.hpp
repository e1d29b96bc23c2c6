// LightRnnHead<MTP<K>> (Li et al., NeurIPS 2016; docs/heads.md, "LightRnnHead"): every token sits
// in one cell (r, c) of an R × R table (LightRnnCodebook). Input embedding E_row[r] + E_col[c],
// plus an untied vector per token with LightRnnOptions::token_embedding (indexed by token id,
// so reallocation leaves it in place); output P(w | h) = P(r | h) · P(c | h, r) with row logits
// h·E_rowᵀ and column logits s(h, r)·E_colᵀ over the same two tables, where s is one step of the
// paper's recurrence, nonlinear in h and the row: s = GELU(W·h + z_r + b) by default, with a
// learned vector z_r per row (the paper feeds the row embedding through a learned map; a free
// vector per row is that map's most general form), or GELU(h + E_row[r]) without parameters. A
// purely additive s = h + E_row[r] is not used: it gives P(c | h, r) ∝ exp(h·E_col[c] +
// E_row[r]·E_col[c]), so the row only adds a static row–column bias and cannot change how h is
// read. Training conditions on the true row; empty rows and cells are masked, so the probabilities
// of exactly the V real tokens sum to 1. MTP depths j ≥ 2 reuse the row logits (unless adapted) and
// cost one conditioning step and one column product each. Cost per position: two C × R products and
// one C × C, against the dense head's C × V. With CoCoNT (loss/cocont.hpp, set_cocont) depth 1's
// row loss scores the soft target (1−α)·onehot(row) + α·P_ngram,row; the row distributions are
// rebuilt from the bigram table whenever the codebook changes (set_codebook, reallocate).
// The head's own kernels are LightRnnKernels<Backend> (kernels.hpp; cpu.hpp, cuda.cuh in this
// folder), the generic ones Ops<Backend>; include this header and the backend's kernel file, or
// the umbrella lightgpt.hpp / cuda.cuh.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../../backend/contract.hpp"
#include "../../core/arena.hpp"
#include "../../core/config.hpp"
#include "../../core/error.hpp"
#include "../../core/layout.hpp"
#include "../../core/rng.hpp"
#include "../../io/container.hpp"
#include "../../loss/cocont.hpp"
#include "codebook.hpp"
#include "../../core/losses.hpp"
#include "../mtp.hpp"
#include "kernels.hpp"
#include "options.hpp"

namespace lightgpt {
namespace detail {

template <class Backend, class P, int Depth>
class LightRnnHeadImpl {
 public:
  using T = typename P::storage_t;
  using A = typename P::accum_t;
  using O = Ops<Backend>;
  using K = LightRnnKernels<Backend>;

  static constexpr const char* kCodebookSection = "lightrnn_codebook";

  explicit LightRnnHeadImpl(const ModelConfig& config)
      : V_(config.vocab_size),
        R_(lightrnn_table_rows(config)),
        C_(config.d_model),
        linear_(config.part<LightRnnOptions>().conditioning == RowConditioning::linear_gelu),
        adapters_(config),
        codebook_(LightRnnCodebook::sequential(V_, R_)),
        token_cell_(static_cast<std::size_t>(V_)),
        cell_token_(static_cast<std::size_t>(R_) * R_),
        row_count_(static_cast<std::size_t>(R_)) {
    upload_codebook();
  }

  // The two tables, tied between input and output, take the input embedding's place.
  static void declare_input(ParameterLayout& layout, const ModelConfig& config) {
    const LightRnnOptions options = config.part<LightRnnOptions>();
    const std::int64_t R = options.table_rows(config.vocab_size), C = config.d_model;
    layout.add("lightrnn_row", {R, C}, false, Init::normal(0.02));
    layout.add("lightrnn_col", {R, C}, false, Init::normal(0.02));
    if (options.token_embedding) {
      layout.add("lightrnn_token", {config.vocab_size, C}, false, Init::normal(0.02),
                 /*sparse_rows=*/true);
    }
  }
  // After the trunk: the conditioning step's W, b and row vectors z_r (linear_gelu only), then
  // MTP adapters. z_r starts at the scale of W·h for a unit-variance h (std 0.02·√C), so that the
  // column distribution depends on the row from the first step; E_row[r] in its place (std 0.02)
  // is swamped by W·h and the head spends its first hundreds of steps near the factorised
  // P(r)·P(c).
  static void declare_output(ParameterLayout& layout, const ModelConfig& config) {
    const LightRnnOptions options = config.part<LightRnnOptions>();
    if (options.conditioning == RowConditioning::linear_gelu) {
      const std::int64_t R = options.table_rows(config.vocab_size), C = config.d_model;
      layout.add("lightrnn_w", {C, C}, true, Init::normal(0.02));
      layout.add("lightrnn_b", {C}, false, Init::zeros());
      layout.add("lightrnn_z", {R, C}, false, Init::normal(0.02 * std::sqrt(double(C))));
    }
    Adapters::declare(layout, config);
  }

  void bind_parameters(const ParameterLayout& layout, T* params, A* grads) {
    row_.bind(layout, params, grads);
    col_.bind(layout, params, grads);
    if (layout.find(token_.name) != nullptr) token_.bind(layout, params, grads);
    if (linear_) {
      w_.bind(layout, params, grads);
      b_.bind(layout, params, grads);
      z_.bind(layout, params, grads);
    }
    adapters_.bind_parameters(layout, params, grads);
  }

  template <class Bind>
  void bind_activations(Bind& bind, std::size_t positions) {
    const std::size_t row_slots = adapters_.enabled() ? Depth : 1;
    bind(row_logits_, row_slots * positions * R_);
    bind(row_lse_, row_slots * positions);
    bind(slope_, Depth * positions * C_);
    bind(state_, state_pairs(positions) * C_);
    bind(col_logits_, state_pairs(positions) * R_);
    bind(col_lse_, Depth * positions);
    bind(losses_, Depth * positions);
    bind(dstate_, positions * C_);
    bind(base_, positions * C_);
    bind(statistics_lse_, 2 * positions);
    bind(cocont_kl_, 2 * positions);
    adapters_.bind_activations(bind, positions);
  }

  // CoCoNT targets: P_ngram(row | a) under the current codebook, uploaded now and rebuilt on
  // every codebook change (the table is kept on the host for that).
  void set_cocont(BigramTable table) {
    LIGHTGPT_CHECK(table.vocab_size() == V_, "LightRnnHead: the bigram table has vocab_size ",
                   table.vocab_size(), ", the model ", V_);
    cocont_table_ = std::move(table);
    upload_cocont();
  }
  void clear_cocont() {
    cocont_table_.reset();
    ngram_.clear();
  }
  bool cocont_enabled() const { return ngram_.loaded(); }
  const NgramTable<A, Backend>& cocont_targets() const { return ngram_; }

  template <class Tok>
  void embed_forward(T* out, const Tok* tokens, int row_stride, const T* wpe, int B, int seq_len) {
    K::lightrnn_embedding_forward(out, LightRnnWindows<Tok>{tokens, row_stride, B, seq_len},
                                  codebook_view(), row_.value, col_.value, token_.value, wpe, C_);
  }
  template <class Tok>
  void embed_backward(const T* dout, const Tok* tokens, int row_stride, A* dwpe, int B,
                      int seq_len) {
    K::lightrnn_embedding_backward(row_.grad, col_.grad, token_.grad, dwpe, dout,
                                   LightRnnWindows<Tok>{tokens, row_stride, B, seq_len},
                                   codebook_view(), C_);
  }

  // Scores `depths` targets for each of the B·T hidden states; depth[j-1] is the full token NLL
  // -log P(r) - log P(c | r) of target t + j. With report_cocont (training forwards) and CoCoNT
  // on, also the mean row-level KL(P_ngram,row ‖ P_row). With loss_sums (backend memory) each
  // depth's mean is added to loss_sums[depth - 1] there instead of being read back, and the
  // returned depths are 0.
  template <class Tok>
  HeadLosses<A> forward(const T* hidden, const Tok* tokens, int row_stride, int B, int seq_len,
                        int depths, bool report_cocont = false, double* loss_sums = nullptr) {
    const int N = B * seq_len;
    // The windows of depth j's targets, j ids ahead of the inputs.
    auto targets = [&](int j) { return LightRnnWindows<Tok>{tokens + j, row_stride, B, seq_len}; };
    HeadLosses<A> losses;
    losses.depths = depths;
    for (int j = 1; j <= depths; ++j) {
      const T* h = j == 1 || !adapters_.enabled() ? hidden : adapters_.forward(j, hidden, N);
      if (j == 1 || adapters_.enabled()) {
        O::matmul_forward(row_logits(j, N), h, row_.value, static_cast<const T*>(nullptr), N, C_,
                          R_);
        K::lightrnn_row_logsumexp(row_lse(j, N), row_logits(j, N), codebook_view().row_count, N,
                                  R_);
      }
      // W·h + b is the same for every depth that scores the shared state: computed once.
      if (linear_ && (j == 1 || adapters_.enabled())) {
        O::matmul_forward(base_, h, w_.value, b_.value, N, C_, C_);
      }
      K::lightrnn_condition_forward(slope(j, N), state(j, N), linear_ ? base_ : h, row_vectors(),
                                    targets(j), codebook_view(), C_);
      O::matmul_forward(col_logits(j, N), state(j, N), col_.value, static_cast<const T*>(nullptr),
                        N, C_, R_);
      A* depth_losses = losses_ + static_cast<std::size_t>(j - 1) * N;
      K::lightrnn_cross_entropy(depth_losses, col_lse(j, N), row_logits(j, N), row_lse(j, N),
                                col_logits(j, N), targets(j), codebook_view());
      if (loss_sums != nullptr) {
        O::add_mean(loss_sums + (j - 1), depth_losses, static_cast<std::size_t>(N));
      } else {
        losses.depth[j - 1] = O::mean(depth_losses, static_cast<std::size_t>(N));
      }
    }
    losses.main = losses.depth[0];
    if (report_cocont && targets_table().loaded()) {
      const std::size_t count = static_cast<std::size_t>(N);
      O::ngram_kl(cocont_kl_, row_lse(1, N), row_logits(1, N), R_, tokens, row_stride,
                  targets_table().view(A(0)), B, seq_len);
      const A covered = O::mean(cocont_kl_ + count, count);
      losses.cocont = covered > A(0) ? O::mean(cocont_kl_, count) / covered : A(0);
    }
    if (statistics_.size() > 0 && !statistics_paused_) {
      K::lightrnn_accumulate_statistics(statistics_.data(), statistics_.data() + table_cells(),
                                        statistics_lse_, row_logits(1, N), col_logits(1, N),
                                        targets(1), R_);
    }
    return losses;
  }

  // Per-position next-token NLL of the last forward (depth 1), on the device.
  const A* token_losses() const { return losses_; }

  // d/d(hidden) of scale · Σ_n [L_main(n) + w_mtp · mean_{j≥2} CE_j(n)], after forward(..., Depth),
  // where L_main = CE_1, or with CoCoNT (α = cocont_alpha) (1−α)·CE(row) + α·KL(P_ngram,row ‖
  // P_row) + CE(col | row). Depths that score the shared state sum their conditioning gradients
  // first, so the C × C products of the backward run once, not once per depth.
  template <class Tok>
  void backward(Grad<T> dhidden, const T* hidden, const Tok* tokens, int row_stride, int B,
                int seq_len, A scale, A mtp_weight, A cocont_alpha = A(0)) {
    const int N = B * seq_len;
    auto targets = [&](int j) { return LightRnnWindows<Tok>{tokens + j, row_stride, B, seq_len}; };
    A weights[Depth];
    weights[0] = A(1);
    for (int j = 1; j < Depth; ++j) weights[j] = mtp_weight / A(Depth > 1 ? Depth - 1 : 1);
    const std::size_t count = static_cast<std::size_t>(N) * C_;
    T* dpre_sum = base_;
    for (int j = 1; j <= Depth; ++j) {
      const bool adapted = j > 1 && adapters_.enabled();
      if (j == 1 || adapted) {
        // Without adapters every depth's row term shares the depth-1 row logits. d/dh_j goes to
        // dhidden (depth 1, in dhidden's mode) or to the adapter's output gradient.
        const int row_depths = adapters_.enabled() ? 1 : Depth;
        K::lightrnn_row_backward_inplace(
            row_logits(j, N), row_lse(j, N), targets(j), codebook_view(), weights + (j - 1),
            row_depths, scale, tokens,
            j == 1 ? targets_table().view(cocont_alpha) : NgramTargets<A>{});
        const Grad<T> dh = adapted ? overwrite(adapters_.output_gradient()) : dhidden;
        O::matmul_backward(dh, accumulate(row_.grad), Grad<A>{}, row_logits(j, N),
                           adapted ? adapters_.forward_output(j, N) : hidden, row_.value, N, C_,
                           R_);
      }
      T* dpre = j == 1 ? dpre_sum : dstate_;
      K::lightrnn_column_backward_inplace(col_logits(j, N), col_lse(j, N), targets(j),
                                          codebook_view(), scale * weights[j - 1]);
      O::matmul_backward(overwrite(dpre), accumulate(col_.grad), Grad<A>{}, col_logits(j, N),
                         state(j, N), col_.value, N, C_, R_);
      K::lightrnn_condition_backward(dpre, slope(j, N), linear_ ? z_.grad : row_.grad, targets(j),
                                     codebook_view(), C_);
      if (adapted) {
        conditioning_backward(adapters_.output_gradient(), dpre, adapters_.forward_output(j, N), N);
        adapters_.backward(j, hidden, dhidden.ptr, N);
      } else if (j > 1) {
        O::residual_forward(dpre_sum, dpre_sum, dpre, count);
      }
    }
    conditioning_backward(dhidden.ptr, dpre_sum, hidden, N);
  }

  // out[n, v] = log P(v | hidden_n) over the V real tokens: the row distribution once, then the
  // column distributions of s(h, r) for groups of consecutive non-empty rows r, each group one
  // conditioning step, one C × R product over all its (row, position) pairs and one pass writing
  // the log-probabilities. A group takes as many rows as the state buffers hold: every row when
  // decoding one position, so a decoded token costs a handful of launches, not three per row.
  void log_probs(A* out, const T* hidden, int N) {
    if (N == 0) return;
    O::matmul_forward(row_logits_, hidden, row_.value, static_cast<const T*>(nullptr), N, C_, R_);
    K::lightrnn_row_logsumexp(row_lse_, row_logits_, row_count_.data(), N, R_);
    const T* base = hidden;
    if (linear_) {
      O::matmul_forward(base_, hidden, w_.value, b_.value, N, C_, C_);
      base = base_;
    }
    const std::vector<std::int32_t>& counts = codebook_.row_counts();
    const int group = static_cast<int>(state_pairs(N) / N);
    for (int first = 0; first < R_;) {
      if (counts[first] == 0) {
        ++first;
        continue;
      }
      int rows = std::min(group, R_ - first);
      while (counts[first + rows - 1] == 0) --rows;
      K::lightrnn_condition_rows(state_, base, row_vectors(), first, rows, N, C_);
      O::matmul_forward(col_logits_, state_, col_.value, static_cast<const T*>(nullptr), rows * N,
                        C_, R_);
      K::lightrnn_log_probs_rows(out, row_logits_, row_lse_, col_logits_, codebook_view(), first,
                                 rows, N);
      first += rows;
    }
  }

  const LightRnnCodebook& codebook() const { return codebook_; }

  // Replaces the token → cell map (the tables are kept). Statistics being collected are reset.
  void set_codebook(LightRnnCodebook codebook) {
    LIGHTGPT_CHECK(codebook.vocab_size() == V_ && codebook.rows() == R_,
                   "LightRnnHead: a codebook of ", codebook.vocab_size(), " tokens in ",
                   codebook.rows(), " rows does not fit this model (vocab_size ", V_, ", ", R_,
                   " rows)");
    codebook_ = std::move(codebook);
    upload_codebook();
    if (statistics_.size() > 0) O::fill_zero(statistics_.data(), statistics_.size());
  }

  // Starts accumulating l_r(w, i) and l_c(w, j) (V × R each, in backend memory) on every forward
  // until reallocate() or end_reallocation_statistics(); off by default, so training pays nothing.
  void begin_reallocation_statistics() {
    if (statistics_.size() == 0) statistics_ = Buffer<A, Backend>(2 * table_cells());
    O::fill_zero(statistics_.data(), statistics_.size());
  }
  void end_reallocation_statistics() { statistics_ = Buffer<A, Backend>(); }
  bool collecting_statistics() const { return statistics_.size() > 0; }
  // While paused, forwards (e.g. validation) add nothing to the statistics being collected.
  void pause_reallocation_statistics(bool paused) { statistics_paused_ = paused; }

  // Host copies of the accumulated statistics: row losses then column losses, V × R each.
  std::vector<A> reallocation_statistics() const {
    LIGHTGPT_CHECK(statistics_.size() > 0,
                   "LightRnnHead: no reallocation statistics; call begin_reallocation_statistics() "
                   "and run forward passes first");
    std::vector<A> host(statistics_.size());
    O::copy_to_host(host.data(), statistics_.data(), host.size());
    return host;
  }

  // The accumulators themselves, in backend memory (empty when not collecting): data-parallel
  // training sums them over the ranks before reallocate(), so that every rank re-places the
  // tokens from the statistics of the whole batch.
  std::span<A> reallocation_statistics_buffer() { return {statistics_.data(), statistics_.size()}; }

  // Bootstrap reallocation from the statistics gathered since begin_reallocation_statistics();
  // ends the collection. The row/column tables are kept; only the token → cell map can change.
  ReallocationReport reallocate(ReallocationOptions options = {}) {
    const std::vector<A> host = reallocation_statistics();
    ReallocationReport report =
        codebook_.reallocate(host.data(), host.data() + table_cells(), options);
    if (report.accepted) upload_codebook();
    end_reallocation_statistics();
    return report;
  }

  // Batch split (GPT::set_batch_split): a row group's head reads the codebook and CoCoNT targets
  // of `owner`, the model's own head, which outlives it, so that every change to them (a
  // reallocation, a checkpoint's codebook) reaches the groups. A group collects no reallocation
  // statistics itself: the owner adds those of each group's forward (add_statistics_of).
  void share_state(const LightRnnHeadImpl& owner) { shared_ = &owner; }
  // Adds, while collecting, the statistics of `group`'s last training forward over the windows
  // `tokens` (B rows of row_stride ids); between that forward and its backward, which overwrites
  // the logits they are computed from.
  template <class Tok>
  void add_statistics_of(const LightRnnHeadImpl& group, const Tok* tokens, int row_stride, int B,
                         int seq_len) {
    if (statistics_.size() == 0 || statistics_paused_) return;
    const int N = B * seq_len;
    K::lightrnn_accumulate_statistics(statistics_.data(), statistics_.data() + table_cells(),
                                      group.statistics_lse_, group.row_logits(1, N),
                                      group.col_logits(1, N),
                                      LightRnnWindows<Tok>{tokens + 1, row_stride, B, seq_len}, R_);
  }

  // Checkpoint support (io/checkpoint.hpp): the codebook travels as its own section. Templates
  // over the container, so that a safetensors file (io/safetensors.hpp) carries it as well.
  template <class SectionWriter>
  void write_sections(SectionWriter& out) const {
    out.add_section(kCodebookSection, codebook_.serialize());
  }
  template <class SectionSource>
  void read_sections(const SectionSource& in) {
    LIGHTGPT_CHECK(in.has(kCodebookSection), "'", in.path().string(), "' has no section '",
                   kCodebookSection, "' (a LightRnnHead model needs it)");
    SectionReader section = in.section(kCodebookSection);
    set_codebook(LightRnnCodebook::parse(section.rest(), section.context(), V_, R_));
  }

 private:
  using Adapters = MtpAdapters<Backend, P, Depth>;

  // The codebook's arrays in backend memory, as the kernels read them.
  LightRnnCodebookView codebook_view() const {
    const LightRnnHeadImpl& owner = shared_ != nullptr ? *shared_ : *this;
    return {owner.token_cell_.data(), owner.cell_token_.data(), owner.row_count_.data(), R_, V_};
  }
  // The CoCoNT row targets the kernels read: the owner's in a row group (share_state).
  const NgramTable<A, Backend>& targets_table() const {
    return shared_ != nullptr ? shared_->ngram_ : ngram_;
  }
  // The row's vector in the conditioning step: z_r with W (linear_gelu), else E_row[r].
  const T* row_vectors() const { return linear_ ? z_.value : row_.value; }
  // (row, position) pairs the conditioned states and column logits hold: one per depth and
  // position for training, and at least R, so that log_probs conditions one position on all rows.
  std::size_t state_pairs(std::size_t positions) const {
    return std::max<std::size_t>(Depth * positions, static_cast<std::size_t>(R_));
  }
  std::size_t table_cells() const { return static_cast<std::size_t>(V_) * R_; }

  T* row_logits(int j, int N) const {
    return row_logits_ + (adapters_.enabled() ? std::size_t(j - 1) * N * R_ : 0);
  }
  A* row_lse(int j, int N) const {
    return row_lse_ + (adapters_.enabled() ? std::size_t(j - 1) * N : 0);
  }
  T* slope(int j, int N) const { return slope_ + std::size_t(j - 1) * N * C_; }
  T* state(int j, int N) const { return state_ + std::size_t(j - 1) * N * C_; }
  T* col_logits(int j, int N) const { return col_logits_ + std::size_t(j - 1) * N * R_; }
  A* col_lse(int j, int N) const { return col_lse_ + std::size_t(j - 1) * N; }

  // Accumulates d/dh of the conditioning step into dh, given dpre = d/d(pre) at state input h.
  void conditioning_backward(T* dh, const T* dpre, const T* h, int N) {
    if (linear_) {
      O::matmul_backward(accumulate(dh), accumulate(w_.grad), accumulate(b_.grad), dpre, h,
                         w_.value, N, C_, C_);
    } else {
      O::residual_forward(dh, dh, dpre, static_cast<std::size_t>(N) * C_);
    }
  }

  void upload_codebook() {
    O::copy_from_host(token_cell_.data(), codebook_.token_cells().data(), token_cell_.size());
    O::copy_from_host(cell_token_.data(), codebook_.cell_tokens().data(), cell_token_.size());
    O::copy_from_host(row_count_.data(), codebook_.row_counts().data(), row_count_.size());
    upload_cocont();
  }

  // The row targets depend on the map: rebuilt from the kept table for the current codebook.
  void upload_cocont() {
    if (cocont_table_) ngram_.upload(row_ngram_targets(*cocont_table_, codebook_));
  }

  int V_, R_, C_;
  bool linear_;
  Adapters adapters_;
  LightRnnCodebook codebook_;
  Buffer<std::int32_t, Backend> token_cell_, cell_token_, row_count_;
  Buffer<A, Backend> statistics_;
  bool statistics_paused_ = false;
  BoundTensor<T, A> token_{"lightrnn_token"};  // bound only with LightRnnOptions::token_embedding
  BoundTensor<T, A> row_{"lightrnn_row"}, col_{"lightrnn_col"}, w_{"lightrnn_w"}, b_{"lightrnn_b"},
      z_{"lightrnn_z"};
  T *row_logits_ = nullptr, *slope_ = nullptr, *state_ = nullptr, *col_logits_ = nullptr,
    *dstate_ = nullptr, *base_ = nullptr;
  A *row_lse_ = nullptr, *col_lse_ = nullptr, *losses_ = nullptr, *statistics_lse_ = nullptr;
  A* cocont_kl_ = nullptr;  // row KL per position, then 1 per position with an n-gram list
  std::optional<BigramTable> cocont_table_;
  NgramTable<A, Backend> ngram_;
  const LightRnnHeadImpl* shared_ = nullptr;  // the owner of a row group's head (share_state)
};

}  // namespace detail

// LightRNN's factorised head (3·R·C + C² + C parameters instead of V·C), optionally with
// multi-token prediction.
template <class Mtp = MTP<1>>
struct LightRnnHead {
  static_assert(MtpPolicy<Mtp>, "LightRnnHead<M>: M must be MTP<K>, e.g. LightRnnHead<MTP<2>>");
  static_assert(Mtp::depth <= kMaxMtpDepth, "LightRnnHead<MTP<K>>: K is limited to kMaxMtpDepth");
  static constexpr bool is_head = true;
  static constexpr int mtp_depth = Mtp::depth;
  static std::string name() { return "lightrnn<mtp=" + std::to_string(mtp_depth) + ">"; }
  using options = std::tuple<LightRnnOptions, MtpOptions>;

  template <class Backend, class P>
  using impl = detail::LightRnnHeadImpl<Backend, P, mtp_depth>;
};

}  // namespace lightgpt
