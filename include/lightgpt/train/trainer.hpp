// Trainer<Model>: the training loop every example shares. One step = grad_accum micro-batches of
// forward/backward (each scaled by 1/grad_accum) and one AdamW update at the scheduled learning
// rate (warmup → constant → linear warmdown), with the MTP weight ramped over its own schedule.
// It validates on a fixed set of batches every eval_every steps, logs every metric to
// <out_dir>/metrics.jsonl and one line per step to the console, and writes atomic checkpoints
// (model, optimizer, loader position, RNG, step) that resume() continues bit for bit on the CPU.
// A non-finite train or validation loss stops the run before that state is ever checkpointed.
// Given a Communicator of several ranks it trains data-parallel: each rank reads its stride of
// the batches, gradients are summed across ranks (or reduce-scattered under ZeRO-1, with the
// moments sharded) in buckets that start during the last backward (train/gradient_sync.hpp),
// validation is split across ranks, and only rank 0 prints and writes files.
// A step's losses, gradient norm and skip decision stay in backend memory (the update reads them
// there); the host reads them every log_every steps, at validations, checkpoints and the end.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "../backend/cpu/row_groups.hpp"
#include "../core/error.hpp"
#include "../core/losses.hpp"
#include "../core/precision.hpp"
#include "../core/rng.hpp"
#include "../data/loader.hpp"
#include "../dist/communicator.hpp"
#include "../io/checkpoint.hpp"
#include "../optim/adamw.hpp"
#include "../optim/loss_scaler.hpp"
#include "../optim/schedule.hpp"
#include "../optim/zero.hpp"
#include "gradient_sync.hpp"
#include "metrics.hpp"

namespace lightgpt {

struct TrainConfig {
  int batch_size = 8;   // B, rows per micro-batch
  int seq_len = 64;     // T
  int grad_accum = 1;   // micro-batches per optimizer step
  // CPU: run each micro-batch as this many row groups, each through the whole model on a thread
  // of its own (GPT::set_batch_split; docs/training.md, "CPU threads"); 0: one group per OpenMP
  // thread, at most batch_size. The result depends on the number of groups, not of threads.
  int batch_split = 1;
  std::int64_t steps = 100;
  double learning_rate = 1e-3;
  std::int64_t warmup = 0;
  std::int64_t warmdown = 0;
  AdamWConfig adamw;
  // MTP: w_mtp ramps linearly from 0 to mtp_weight over mtp_rampup_steps, then (mtp_decay) falls
  // linearly to 0 by the last step.
  double mtp_weight = kDefaultMtpWeight;
  std::int64_t mtp_rampup_steps = 0;
  bool mtp_decay = false;
  // Dropout of the embedding and of each residual branch in training forwards (GPT::set_dropout);
  // 0 turns it off. The masks follow from the step, so a resumed run draws the same ones.
  double dropout = 0.0;
  std::int64_t eval_every = 0;        // 0: validate only at the end
  // Steps between reads of the metrics (losses, gradient norm): the only per-step host waits of
  // a Cuda run (fp16's loss scaler aside). A non-finite step is found at the next read.
  std::int64_t log_every = 1;
  int val_batches = 8;                // fixed validation batches of B × (T + 1) tokens; 0: all
  std::int64_t checkpoint_every = 0;  // 0: checkpoint only at the end
  // LightRNN bootstrap reallocation: every realloc_every steps the codebook is re-placed from the
  // row/column losses of those steps' training forwards (0: never). A resumed run restarts the
  // statistics window, so it matches the uninterrupted run only up to the next reallocation.
  std::int64_t realloc_every = 0;
  std::string out_dir = "out";
  bool console = true;  // one line per step on stdout
  // Data-parallel runs: 1 shards the AdamW moments across the ranks (ZeRO stage 1), 0 keeps a
  // whole copy on every rank. Gradients are summed in buckets of bucket_mb megabytes, each
  // started as soon as the last backward has produced it (overlap), or all after that backward
  // (no overlap: the same sums bit for bit, to measure what overlapping gains).
  int zero_stage = 0;
  double bucket_mb = 25;
  bool overlap = true;

  void validate() const {
    auto positive = [](auto value, const char* flag) {
      LIGHTGPT_CHECK(value > 0, flag, " must be positive, got ", value);
    };
    positive(batch_size, "--batch_size");
    positive(seq_len, "--seq_len");
    positive(grad_accum, "--grad_accum");
    LIGHTGPT_CHECK(batch_split >= 0 && batch_split <= 1024,
                   "--batch_split must lie in [0, 1024] (0: one group per thread), got ",
                   batch_split);
    positive(steps, "--steps");
    LIGHTGPT_CHECK(val_batches >= 0,
                   "--val_batches must be 0 (the whole validation split) or positive, got ",
                   val_batches);
    LIGHTGPT_CHECK(learning_rate >= 0 && std::isfinite(learning_rate),
                   "--learning_rate must be finite and non-negative, got ", learning_rate);
    LIGHTGPT_CHECK(warmup >= 0, "--warmup must be non-negative, got ", warmup);
    LIGHTGPT_CHECK(warmdown >= 0, "--warmdown must be non-negative, got ", warmdown);
    LIGHTGPT_CHECK(warmup + warmdown <= steps, "--warmup (", warmup, ") + --warmdown (", warmdown,
                   ") exceeds --steps (", steps, ")");
    LIGHTGPT_CHECK(mtp_weight >= 0 && std::isfinite(mtp_weight),
                   "--mtp_weight must be finite and non-negative, got ", mtp_weight);
    LIGHTGPT_CHECK(mtp_rampup_steps >= 0, "--mtp_rampup_steps must be non-negative, got ",
                   mtp_rampup_steps);
    LIGHTGPT_CHECK(dropout >= 0 && dropout < 1, "--dropout must lie in [0, 1), got ", dropout);
    LIGHTGPT_CHECK(eval_every >= 0, "--eval_every must be 0 (end only) or positive, got ",
                   eval_every);
    positive(log_every, "--log_every");
    LIGHTGPT_CHECK(checkpoint_every >= 0,
                   "--checkpoint_every must be 0 (end only) or positive, got ", checkpoint_every);
    LIGHTGPT_CHECK(!out_dir.empty(), "--out_dir must not be empty");
    LIGHTGPT_CHECK(realloc_every >= 0, "--realloc_every must be 0 (never) or positive, got ",
                   realloc_every);
    LIGHTGPT_CHECK(zero_stage == 0 || zero_stage == 1, "--zero must be 0 or 1, got ",
                   zero_stage);
    LIGHTGPT_CHECK(bucket_mb > 0 && std::isfinite(bucket_mb),
                   "--bucket_mb must be positive, got ", bucket_mb);
    adamw.validate();
  }

  LrSchedule schedule() const { return {learning_rate, warmup, warmdown, steps}; }

  // w_mtp at 0-based `step`: (step+1)/rampup during the ramp, then constant, or with mtp_decay a
  // linear fall to 0 over the steps after the ramp.
  double mtp_weight_at(std::int64_t step) const {
    if (step < mtp_rampup_steps) return mtp_weight * double(step + 1) / double(mtp_rampup_steps);
    if (!mtp_decay) return mtp_weight;
    const std::int64_t span = steps - mtp_rampup_steps;
    if (span <= 0) return mtp_weight;
    return mtp_weight * double(std::max<std::int64_t>(steps - step - 1, 0)) / double(span);
  }
};

// What one optimizer step measured. Losses are means over the step's micro-batches.
struct StepMetrics {
  std::int64_t step = 0;  // 1-based: the number of optimizer steps taken so far
  std::int64_t tokens = 0;  // training tokens seen (inputs), all steps so far
  double train_loss = 0;    // next-token NLL (nats)
  double depth_loss[8] = {};
  int depths = 1;
  double lr = 0, grad_norm = 0, mtp_weight = 0;
  // step_ms and comm_wait_ms average the interval_steps steps since the previous read.
  double tokens_per_second = 0, step_ms = 0, peak_memory_mb = 0;
  std::int64_t interval_steps = 1;
  // Data-parallel runs: time blocked on communication (waits for the gradient sums, the loss
  // sums, the ZeRO-1 all-gather of the weights).
  double comm_wait_ms = 0;
  // CoCoNT (when the model has a table): mean KL(P_ngram ‖ P_θ), a training-only term.
  double cocont = 0;
  bool has_cocont = false;
  // Fp16 only: the loss scale this step used, and whether its gradients overflowed (skipped).
  double loss_scale = 1;
  bool skipped = false;
  // LightRNN reallocation at the end of this step (when one ran): the accumulated cost under the
  // old and the proposed map, and how many tokens moved (0 when the new map was not accepted).
  bool reallocated = false;
  double realloc_cost_before = 0, realloc_cost_after = 0;
  int realloc_moved = 0;
};

struct TrainSummary {
  std::int64_t steps = 0;
  double final_val_loss = std::nan("");
  double best_val_loss = std::nan("");
  double seconds = 0;
  double peak_memory_mb = 0;
  // Over the steps of this run(): time blocked on communication, and the steps' own time.
  double comm_wait_seconds = 0, step_seconds = 0;
};

template <class Model>
class Trainer {
 public:
  using A = typename Model::A;
  using Backend = typename Model::backend;
  using Optimizer = typename Model::Optimizer;
  using Store = std::remove_reference_t<decltype(std::declval<Model&>().parameters())>;
  // fp16 trains with dynamic loss scaling; the other precisions never overflow their gradients.
  static constexpr bool kLossScaling = std::is_same_v<typename Model::precision, Fp16>;
  // Where the model's buffers live, which the communicator's collectives must reach.
  static constexpr bool kHostMemory = std::is_same_v<Backend, Cpu>;

  // `val` may be null (no validation). Loaders must yield B × (T + mtp_depth) training windows and
  // B × (T + 1) validation windows of the configured sizes. With `comm` (null: one process) the
  // training loader reads this rank's stride (its rank and world_size) and the validation loader
  // the whole split, of which each rank scores every world_size-th batch.
  Trainer(Model& model, const TrainConfig& config, Loader& train, Loader* val,
          Communicator* comm = nullptr)
      : model_(model),
        config_(validated(config)),
        train_(train),
        val_(val),
        comm_(comm != nullptr ? *comm : single_process_),
        optimizer_(sharded() ? ParameterLayout() : model.parameters().layout(), config_.adamw) {
    const LoaderOptions& t = train.options();
    LIGHTGPT_CHECK(t.rank == comm_.rank() && t.world_size == comm_.size(),
                   "the training loader reads rank ", t.rank, " of ", t.world_size,
                   " but this process is rank ", comm_.rank(), " of ", comm_.size());
    if (comm_.size() > 1) {
      LIGHTGPT_CHECK(comm_.device_buffers() == !kHostMemory,
                     "the communicator works on ", comm_.device_buffers() ? "device" : "host",
                     " buffers but the model lives on the ", Backend::name,
                     " backend: use Mpi for Cpu models and Nccl for Cuda models");
      LIGHTGPT_CHECK(config_.realloc_every == 0 || kSummableStatistics,
                     "--realloc_every across ranks needs a head whose reallocation statistics "
                     "can be summed (reallocation_statistics_buffer())");
    }
    if (sharded()) sharded_.emplace(model.parameters().layout(), config_.adamw, comm_);
    if (comm_.size() > 1) {
      const auto bucket = std::size_t(config_.bucket_mb * 1048576.0 / sizeof(A));
      sync_.emplace(model, comm_, std::max<std::size_t>(1, bucket),
                    sharded() ? sharded_->counts() : std::span<const std::size_t>());
    }
    LIGHTGPT_CHECK(t.B == config_.batch_size && t.T == config_.seq_len && t.K == Model::mtp_depth,
                   "the training loader yields B=", t.B, " T=", t.T, " K=", t.K,
                   " but the trainer needs B=", config_.batch_size, " T=", config_.seq_len,
                   " K=mtp_depth=", Model::mtp_depth);
    LIGHTGPT_CHECK(config_.seq_len <= model.config().max_seq_len, "--seq_len (", config_.seq_len,
                   ") exceeds the model's max_seq_len (", model.config().max_seq_len, ")");
    if (val_ != nullptr) {
      const LoaderOptions& v = val_->options();
      LIGHTGPT_CHECK(v.T == config_.seq_len && v.K == 1, "the validation loader yields T=", v.T,
                     " K=", v.K, " but validation needs next-token windows: T=", config_.seq_len,
                     " K=1");
      LIGHTGPT_CHECK(v.world_size == 1, "the validation loader must read the whole split "
                     "(world_size 1); the trainer divides its batches among the ranks");
      LIGHTGPT_CHECK(std::uint64_t(config_.val_batches) <= val_->steps_per_epoch(),
                     "--val_batches (", config_.val_batches, ") exceeds the ",
                     val_->steps_per_epoch(), " batches the validation shards hold");
      if (config_.val_batches == 0) config_.val_batches = int(val_->steps_per_epoch());
      val_start_ = val_->position();
    }
    if (writes_files()) {
      std::error_code error;
      std::filesystem::create_directories(config_.out_dir, error);
      LIGHTGPT_CHECK(!error && std::filesystem::is_directory(config_.out_dir, error),
                     "--out_dir '", config_.out_dir, "' cannot be used as a directory",
                     error ? ": " + error.message() : std::string(" (a file of that name exists)"));
      // A checkpoint temporary left by a killed run is never a checkpoint; it is removed here,
      // and in any case by the next save.
      detail::remove_stale_temporary(checkpoint_path().string() + ".tmp");
    }
    apply_batch_split();
    model_.reserve(config_.batch_size, config_.seq_len);
    broadcast_parameters();
    keep_master_part();
  }

  const TrainConfig& config() const { return config_; }
  // The optimizer of an unsharded run (under ZeRO-1 each rank holds only its part, sharded()).
  Optimizer& optimizer() { return optimizer_; }
  bool sharded() const { return config_.zero_stage == 1; }
  const Communicator& communicator() const { return comm_; }
  LossScaler& loss_scaler() { return scaler_; }
  std::int64_t steps_done() const { return step_; }
  std::int64_t tokens_seen() const { return tokens_; }
  std::filesystem::path checkpoint_path() const {
    return std::filesystem::path(config_.out_dir) / "checkpoint.bin";
  }
  std::filesystem::path metrics_path() const {
    return std::filesystem::path(config_.out_dir) / "metrics.jsonl";
  }

  // Continues the run saved in `path`: model, optimizer moments, step, loader position, RNG.
  void resume(const std::filesystem::path& path) {
    model_.parameters().hold_whole_master();
    CheckpointReader in(path);
    read_model_sections(in, model_);
    if (sharded()) {
      Optimizer whole(model_.parameters().layout(), config_.adamw);
      read_optimizer_section(in, whole);
      sharded_->scatter(whole);
    } else {
      read_optimizer_section(in, optimizer_);
    }
    SectionReader section = in.section("trainer");
    const auto step = section.read_value<std::int64_t>();
    const auto tokens = section.read_value<std::int64_t>();
    const auto grad_accum = section.read_value<std::int64_t>();
    const auto position = section.read_value<LoaderPosition>();
    const auto rng_state = section.read_value<std::uint64_t>();
    const auto best = section.read_value<double>();
    LIGHTGPT_CHECK(section.at_end(), section.context(), ": unexpected bytes after the state");
    scaler_.read_section(in);
    // Every section must agree with the others: a corrupted one is an error, never ignored.
    const std::uint64_t stored_step = read_step_section(in);
    const std::string source = "checkpoint '" + path.string() + "'";
    LIGHTGPT_CHECK(grad_accum == config_.grad_accum, source, " was trained with --grad_accum ",
                   grad_accum, ", this run has ", config_.grad_accum);
    LIGHTGPT_CHECK(step >= 0 && step <= config_.steps, source, " is at step ", step,
                   ", beyond --steps ", config_.steps);
    LIGHTGPT_CHECK(stored_step == static_cast<std::uint64_t>(step), source, ": section 'step' (",
                   stored_step, ") disagrees with section 'trainer' (step ", step,
                   "; corrupted file)");
    const std::int64_t adam_steps = sharded() ? sharded_->steps() : optimizer_.steps();
    LIGHTGPT_CHECK(adam_steps <= step, source, ": section 'adamw' has taken ", adam_steps,
                   " steps, more than the run's ", step, " (corrupted file)");
    const std::int64_t per_step = tokens_per_step();
    LIGHTGPT_CHECK(tokens == step * per_step, source, ": section 'trainer' counts ", tokens,
                   " tokens, but ", step, " steps of ", per_step, " tokens make ", step * per_step,
                   " (corrupted file, or another --batch_size or --seq_len)");
    LIGHTGPT_CHECK(std::isnan(best) || std::isfinite(best), source,
                   ": section 'trainer' holds the best val_loss ", best, " (corrupted file)");
    // A run saved on another number of ranks continues where it stopped when its global batch
    // (B × ranks) is this run's; the section is absent from single-process checkpoints.
    std::int64_t saved_ranks = 1, saved_batch = config_.batch_size * comm_.size();
    if (in.has("data_parallel")) {
      SectionReader ranks = in.section("data_parallel");
      saved_ranks = ranks.read_value<std::int64_t>();
      saved_batch = ranks.read_value<std::int64_t>();
      LIGHTGPT_CHECK(ranks.at_end() && saved_ranks > 0 && saved_batch > 0, ranks.context(),
                     ": not a rank count and batch size (corrupted file)");
    }
    if (saved_ranks == comm_.size()) {
      train_.restore(position);
    } else {
      train_.restore(position, int(saved_batch), int(saved_ranks));
    }
    step_ = step;
    tokens_ = tokens;
    rng_ = Rng(rng_state);
    best_val_ = best;
    if (writes_files()) log_ = MetricsLog(metrics_path(), step_);
    broadcast_parameters();
    keep_master_part();
  }

  // Writes the whole training state atomically (the previous file stays intact until the rename).
  // Every rank calls it (ZeRO-1 gathers the moments); rank 0 writes.
  void save(const std::filesystem::path& path) const {
    LIGHTGPT_CHECK(!unread_, "save() after queue_step() needs last_step() first: a skipped "
                   "update is known only once read");
    std::optional<Optimizer> gathered;
    if (sharded()) {
      gathered.emplace(model_.parameters().layout(), config_.adamw);
      sharded_->gather(*gathered);
      if constexpr (Store::has_separate_master) {
        // The file holds every master weight; each rank keeps its part again once it is written.
        model_.parameters().hold_whole_master();
        comm_.all_gather(model_.parameters().master(), sharded_->counts(), data_type_of<A>());
      }
    }
    if (writes_files()) write_checkpoint(path, gathered ? *gathered : optimizer_);
    keep_master_part();
  }

 private:
  void write_checkpoint(const std::filesystem::path& path, const Optimizer& optimizer) const {
    CheckpointWriter out(path);
    write_model_sections(out, model_);
    write_optimizer_section(out, optimizer);
    out.begin_section("trainer");
    out.write_value(step_);
    out.write_value(tokens_);
    out.write_value(static_cast<std::int64_t>(config_.grad_accum));
    out.write_value(train_.position());
    out.write_value(rng_.state());
    out.write_value(best_val_);
    out.end_section();
    scaler_.write_section(out);
    if (comm_.size() > 1) {
      out.begin_section("data_parallel");
      out.write_value(static_cast<std::int64_t>(comm_.size()));
      out.write_value(static_cast<std::int64_t>(config_.batch_size));
      out.end_section();
    }
    out.begin_section("step");
    out.write_value(static_cast<std::uint64_t>(step_));
    out.end_section();
    out.commit();
  }

 public:
  // Mean next-token NLL over the fixed validation batches (the same batches every time).
  double validate() {
    LIGHTGPT_CHECK(val_ != nullptr, "validate() needs a validation loader");
    const StatisticsPause pause(model_);
    val_->restore(val_start_);
    double total = 0;
    for (int i = 0; i < config_.val_batches; ++i) {
      const Batch batch = val_->next();
      if (i % comm_.size() != comm_.rank()) continue;
      total += double(model_.evaluate(batch.tokens, batch.B, batch.T, batch.row_stride));
    }
    if (comm_.size() > 1) comm_.host_sum(&total, 1);
    return total / config_.val_batches;
  }

  // Mean next-token NLL at each position 0..T-1 of the window over the rows of the fixed
  // validation batches: a model that uses its context does better late in the window.
  std::vector<double> validate_by_position() {
    LIGHTGPT_CHECK(val_ != nullptr, "validate_by_position() needs a validation loader");
    const int T = config_.seq_len;
    std::vector<A> losses(static_cast<std::size_t>(config_.batch_size) * T);
    std::vector<double> nll(static_cast<std::size_t>(T), 0.0);
    std::int64_t rows = 0;
    const StatisticsPause pause(model_);
    val_->restore(val_start_);
    for (int i = 0; i < config_.val_batches; ++i) {
      const Batch batch = val_->next();
      if (i % comm_.size() != comm_.rank()) continue;
      model_.evaluate(batch.tokens, batch.B, batch.T, batch.row_stride);
      model_.token_losses(losses.data());
      for (int b = 0; b < batch.B; ++b, ++rows) {
        for (int t = 0; t < T; ++t) nll[t] += double(losses[static_cast<std::size_t>(b) * T + t]);
      }
    }
    if (comm_.size() > 1) {
      nll.push_back(double(rows));
      comm_.host_sum(nll.data(), nll.size());
      rows = std::int64_t(nll.back());
      nll.pop_back();
    }
    for (double& value : nll) value /= double(rows);
    return nll;
  }

  // One optimizer step and its metrics. Throws lightgpt::Error, updating nothing, when the loss or
  // the gradient norm is not finite.
  StepMetrics step() {
    queue_step();
    return last_step();
  }

  // One optimizer step, queued without reading anything back: the losses are summed in backend
  // memory and the update takes its clip and skip decision from there. Under fp16 the loss scaler
  // first takes the previous update's overflow decision, read once this step's first forward is
  // queued. last_step() reads the metrics.
  void queue_step() {
    const auto start = std::chrono::steady_clock::now();
    if (!unread_) {
      interval_start_ = start;
      interval_comm_wait_ms_ = 0;
    }
    StepMetrics m;
    m.lr = config_.schedule().at(step_);
    m.mtp_weight = config_.mtp_weight_at(step_);
    model_.set_mtp_weight(A(m.mtp_weight));
    model_.zero_grad();
    if constexpr (kReallocatable) {
      if (config_.realloc_every > 0 && !model_.head().collecting_statistics()) {
        model_.head().begin_reallocation_statistics();
      }
    }
    Ops<Backend>::fill_zero(loss_sums_.data(), loss_sums_.size());
    model_.set_dropout(A(config_.dropout));
    for (int micro = 0; micro < config_.grad_accum; ++micro) {
      const Batch batch = train_.next();
      // Each rank draws its own masks (rank 0 those of a single-process run).
      model_.set_dropout_seed((train_.options().seed * 0x9e3779b97f4a7c15ull +
                               std::uint64_t(step_) * std::uint64_t(config_.grad_accum) +
                               std::uint64_t(micro)) ^
                              (std::uint64_t(comm_.rank()) * 0xbf58476d1ce4e5b9ull));
      model_.forward_summing(loss_sums_.data(), batch.tokens, batch.B, batch.T,
                             batch.row_stride);
      if constexpr (requires { model_.cocont_enabled(); }) {
        m.has_cocont = model_.cocont_enabled();
        m.cocont += double(model_.losses().cocont) / config_.grad_accum;
      }
      if (micro == 0) {
        if constexpr (kLossScaling) settle_loss_scaler();
        m.loss_scale = kLossScaling ? scaler_.scale() : 1.0;
      }
      // Each rank's gradients are already divided by the rank count: the sum across ranks is the
      // mean over the global batch.
      const A scale = A(m.loss_scale / (double(config_.grad_accum) * comm_.size()));
      // Only the last backward produces final gradients, so only it starts their sums.
      if (sync_ && config_.overlap && micro + 1 == config_.grad_accum) {
        model_.backward(scale, [this](int layer) { sync_->layer_ready(layer); });
      } else {
        model_.backward(scale);
      }
    }
    m.depths = Model::mtp_depth;
    // The global norm of the update reads every gradient: all sums are waited for here.
    if (sync_) m.comm_wait_ms += sync_->finish();
    // Every rank's loss sums, so that every rank skips (or takes) the same update.
    if (comm_.size() > 1) {
      m.comm_wait_ms += timed(
          [&] { comm_.all_reduce_sum(loss_sums_.data(), m.depths, DataType::f64); });
    }
    if (sharded()) {
      sharded_->queue_step(model_.parameters(), m.lr, 1.0 / m.loss_scale, loss_sums_.data(),
                           m.depths);
      // Every rank's updated part to every rank (after a skipped step too: nothing changed).
      if (comm_.size() > 1) {
        m.comm_wait_ms += timed([&] {
          comm_.all_gather(model_.parameters().values(), sharded_->counts(),
                           data_type_of<typename Store::T>());
        });
      }
    } else {
      optimizer_.queue_step(model_.parameters(), m.lr, 1.0 / m.loss_scale, loss_sums_.data(),
                            m.depths);
    }
    loss_readback_->start(loss_sums_.data(), std::size_t(m.depths));
    scaler_pending_ = kLossScaling;
    unread_ = true;
    ++step_;
    if constexpr (kReallocatable) {
      if (config_.realloc_every > 0 && step_ % config_.realloc_every == 0) {
        if constexpr (kSummableStatistics) {
          if (comm_.size() > 1) {
            const auto statistics = model_.head().reallocation_statistics_buffer();
            comm_.all_reduce_sum(statistics.data(), statistics.size(), data_type_of<A>());
          }
        }
        const auto report = model_.head().reallocate();
        m.reallocated = true;
        m.realloc_cost_before = report.cost_before;
        m.realloc_cost_after = report.cost_after;
        m.realloc_moved = report.moved;
      }
    }
    tokens_ += tokens_per_step();
    m.step = step_;
    m.tokens = tokens_;
    interval_comm_wait_ms_ += m.comm_wait_ms;
    queued_ = m;
  }

  // The metrics of the last queued step, read back (waiting for it); step_ms and tokens_per_second
  // average the steps since the previous read. Throws lightgpt::Error when a step since then had a
  // non-finite loss or gradient norm (under fp16 a non-finite norm is an overflow, which skips the
  // step): that step updated nothing, and when it is the last one it is not counted as taken.
  StepMetrics last_step() {
    LIGHTGPT_CHECK(step_ > 0 && queued_.step == step_, "last_step() before any step");
    StepMetrics m = queued_;
    const bool fresh = unread_;
    unread_ = false;
    const double* sums = loss_readback_->wait();
    for (int j = 0; j < m.depths; ++j) {
      m.depth_loss[j] = sums[j] / config_.grad_accum / comm_.size();
    }
    if (comm_.size() > 1 && fresh) {
      comm_.host_sum(&m.cocont, 1);
      m.cocont /= comm_.size();
    }
    m.train_loss = m.depth_loss[0];
    const UpdateResult update = update_result();
    m.grad_norm = update.norm;
    if constexpr (kLossScaling) {
      settle_loss_scaler();
      m.skipped = update.skipped;  // overflow: skipped, the scale backed off
    } else if (update.skipped_total > skipped_seen_) {
      skipped_seen_ = update.skipped_total;
      LIGHTGPT_CHECK(update.skipped, "training stopped at step ", step_,
                     ": a step since the last read of the metrics had a non-finite loss or "
                     "gradient norm and updated nothing",
                     checkpoint_note());
      const std::int64_t failed = step_;
      --step_;
      tokens_ -= tokens_per_step();
      LIGHTGPT_CHECK(std::isfinite(m.train_loss), "training stopped at step ", failed,
                     ": the loss is not finite (", m.train_loss, "); nothing was updated",
                     checkpoint_note());
      throw Error(detail::concat("training stopped at step ", failed,
                                 ": the gradient norm is not finite (", m.grad_norm,
                                 "); nothing was updated", checkpoint_note()));
    }
    const auto now = std::chrono::steady_clock::now();
    const std::int64_t steps = std::max<std::int64_t>(1, step_ - read_step_);
    read_step_ = step_;
    m.interval_steps = steps;
    m.step_ms =
        std::chrono::duration<double, std::milli>(now - interval_start_).count() / double(steps);
    m.comm_wait_ms = interval_comm_wait_ms_ / double(steps);
    m.tokens_per_second = double(tokens_per_step()) / (m.step_ms / 1000.0);
    m.peak_memory_mb = peak_host_memory_mb();
    return m;
  }

  // Runs to config().steps from wherever the trainer is (0, or a resumed step).
  TrainSummary run() {
    if (log_.path().empty() && writes_files()) {
      log_ = MetricsLog(metrics_path(), step_ > 0 ? step_ : -1);
    }
    const auto start = std::chrono::steady_clock::now();
    const std::int64_t first = step_;
    TrainSummary summary;
    double last_val = std::nan("");
    while (step_ < config_.steps) {
      queue_step();
      const bool evaluate = val_ != nullptr && ((config_.eval_every > 0 &&
                                                 step_ % config_.eval_every == 0) ||
                                                step_ == config_.steps);
      const bool checkpoint =
          (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0) ||
          step_ == config_.steps;
      if (step_ % config_.log_every != 0 && !evaluate && !checkpoint) continue;
      const StepMetrics m = last_step();
      summary.comm_wait_seconds += m.comm_wait_ms * double(m.interval_steps) / 1000.0;
      summary.step_seconds += m.step_ms * double(m.interval_steps) / 1000.0;
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double eta = elapsed / double(step_ - first) * double(config_.steps - step_);
      JsonRecord record;
      record.add("step", m.step).add("tokens", m.tokens).add("train_loss", m.train_loss);
      for (int j = 1; j < m.depths; ++j) {
        record.add("mtp_loss_" + std::to_string(j + 1), m.depth_loss[j]);
      }
      if (m.depths > 1) record.add("mtp_weight", m.mtp_weight);
      if (m.has_cocont) record.add("cocont_kl", m.cocont);
      if (m.reallocated) {
        record.add("realloc_cost_before", m.realloc_cost_before)
            .add("realloc_cost_after", m.realloc_cost_after)
            .add("realloc_moved", std::int64_t(m.realloc_moved));
      }
      record.add("lr", m.lr).add("grad_norm", m.grad_norm);
      record.add("tokens_per_s", m.tokens_per_second).add("step_ms", m.step_ms);
      record.add("peak_memory_mb", m.peak_memory_mb);
      if (comm_.size() > 1) record.add("comm_wait_ms", m.comm_wait_ms);
      if (kLossScaling) {
        record.add("loss_scale", m.loss_scale).add("skipped", std::int64_t(m.skipped));
      }
      if (evaluate) {
        last_val = validate();
        record.add("val_loss", last_val);
        if (!std::isfinite(last_val)) {
          log_.write(record);
          throw Error(detail::concat("training stopped at step ", step_,
                                     ": the validation loss is not finite (", last_val,
                                     "); the model has diverged and was not checkpointed",
                                     checkpoint_note()));
        }
        if (!(best_val_ <= last_val)) best_val_ = last_val;
      }
      log_.write(record);
      if (config_.console && writes_files()) {
        std::printf("step %*lld/%lld | loss %.4f", digits(), static_cast<long long>(m.step),
                    static_cast<long long>(config_.steps), m.train_loss);
        for (int j = 1; j < m.depths; ++j) std::printf(" | mtp%d %.4f", j + 1, m.depth_loss[j]);
        if (m.has_cocont) std::printf(" | kl %.4f", m.cocont);
        std::printf(" | lr %.2e | norm %.3f | %.0f tok/s | %.0f ms | ETA %s", m.lr, m.grad_norm,
                    m.tokens_per_second, m.step_ms, format_duration(eta).c_str());
        if (kLossScaling) std::printf(" | scale %g%s", m.loss_scale, m.skipped ? " (skipped)" : "");
        if (m.reallocated) {
          std::printf(" | realloc cost %.4g -> %.4g, %d moved", m.realloc_cost_before,
                      m.realloc_cost_after, m.realloc_moved);
        }
        if (evaluate) std::printf(" | val_loss %.4f", last_val);
        std::printf("\n");
        std::fflush(stdout);
      }
      if (checkpoint) {
        try {
          save(checkpoint_path());
        } catch (const Error& error) {
          throw Error(detail::concat("training stopped at step ", step_, ": ",
                                     error.message(),
                                     checkpoint_note()));
        }
      }
    }
    summary.steps = step_;
    summary.final_val_loss = last_val;
    summary.best_val_loss = best_val_;
    summary.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    summary.peak_memory_mb = peak_host_memory_mb();
    if (config_.console && writes_files()) {
      std::printf("done: %lld steps in %s, peak memory %.0f MB", static_cast<long long>(step_),
                  format_duration(summary.seconds).c_str(), summary.peak_memory_mb);
      if (!std::isnan(best_val_)) std::printf(", best val_loss %.4f", best_val_);
      if (comm_.size() > 1) {
        std::printf(", comm wait %.2f s (%.1f%% of step time)", summary.comm_wait_seconds,
                    100.0 * summary.comm_wait_seconds / std::max(summary.step_seconds, 1e-9));
      }
      std::printf("\ncheckpoint: %s\nmetrics: %s\n", checkpoint_path().c_str(),
                  metrics_path().c_str());
      std::fflush(stdout);
    }
    return summary;
  }

 private:
  // A head that can re-place its tokens from statistics of the training forwards (LightRNN's
  // bootstrap reallocation), detected on the head itself.
  static constexpr bool kReallocatable = requires(Model& m) {
    m.head().reallocate();
    m.head().pause_reallocation_statistics(true);
  };

  // Reallocation statistics that data-parallel ranks sum before re-placing tokens.
  static constexpr bool kSummableStatistics =
      requires(Model& m) { m.head().reallocation_statistics_buffer(); };

  // Keeps validation forwards out of the reallocation statistics.
  struct StatisticsPause {
    Model& model;
    explicit StatisticsPause(Model& m) : model(m) {
      if constexpr (kReallocatable) model.head().pause_reallocation_statistics(true);
    }
    ~StatisticsPause() {
      if constexpr (kReallocatable) model.head().pause_reallocation_statistics(false);
    }
  };

  bool writes_files() const { return comm_.rank() == 0; }
  // Training tokens of one optimizer step, over every rank.
  std::int64_t tokens_per_step() const {
    return std::int64_t(config_.grad_accum) * config_.batch_size * config_.seq_len * comm_.size();
  }

  // --batch_split: the row groups of each micro-batch (CPU; 0: one per OpenMP thread).
  void apply_batch_split() {
    int groups = config_.batch_split;
    if (groups == 0) groups = std::min(cpu::max_threads(), config_.batch_size);
    if (groups == 1) return;
    if constexpr (!std::is_same_v<Backend, Cpu>) {
      LIGHTGPT_CHECK(false, "--batch_split ", config_.batch_split,
                     " is for the cpu backend; "
                     "this model runs on ",
                     Backend::name, " (use 1)");
    } else if constexpr (!requires(Model & m) { m.set_batch_split(groups); }) {
      LIGHTGPT_CHECK(false, "--batch_split ", config_.batch_split, ": ", Model::composition(),
                     " cannot split its batches (use 1)");
    } else {
      model_.set_batch_split(groups);
    }
  }

  // Every rank starts from rank 0's weights, whatever each initialised or read.
  void broadcast_parameters() {
    if (comm_.size() == 1) return;
    auto& store = model_.parameters();
    comm_.broadcast(store.master(), store.layout().size(), data_type_of<A>(), 0);
    if constexpr (Store::has_separate_master) {
      comm_.broadcast(store.values(), store.layout().size(),
                      data_type_of<typename Store::T>(), 0);
    }
  }

  // The last queued update's decision (the optimizer's host read).
  UpdateResult update_result() { return sharded() ? sharded_->result() : optimizer_.result(); }

  // Fp16: the loss scaler takes the last update's overflow decision. A skip with a finite norm
  // was a non-finite loss, which no loss scale mends: the run stops.
  void settle_loss_scaler() {
    if (!scaler_pending_) return;
    scaler_pending_ = false;
    const UpdateResult update = update_result();
    LIGHTGPT_CHECK(!update.skipped || !std::isfinite(update.norm), "training stopped at step ",
                   step_, ": the loss is not finite; nothing was updated", checkpoint_note());
    scaler_.update(update.norm);
  }

  // Under ZeRO-1 a 16-bit model keeps the fp32 master weights of this rank's part only.
  void keep_master_part() const {
    if (sharded()) model_.parameters().keep_master_part(sharded_->begin(), sharded_->end());
  }

  // Milliseconds `collective` keeps this rank waiting.
  template <class Collective>
  static double timed(Collective&& collective) {
    const auto start = std::chrono::steady_clock::now();
    collective();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  }

  static TrainConfig validated(const TrainConfig& config) {
    config.validate();
    return config;
  }
  int digits() const { return static_cast<int>(std::to_string(config_.steps).size()); }
  std::string checkpoint_note() const {
    return std::filesystem::exists(checkpoint_path())
               ? "; the last checkpoint, " + checkpoint_path().string() + ", is intact"
               : "; no checkpoint was written yet";
  }

  Model& model_;
  TrainConfig config_;
  Loader& train_;
  Loader* val_;
  SingleProcess single_process_;
  Communicator& comm_;
  Optimizer optimizer_;
  std::optional<ShardedAdamW<Backend, A>> sharded_;
  std::optional<GradientSync> sync_;
  LossScaler scaler_;
  // The step's mean losses per depth, summed over micro-batches (and ranks) in backend memory.
  Buffer<double, Backend> loss_sums_{std::size_t(kMaxMtpDepth)};
  std::unique_ptr<typename Ops<Backend>::template HostReadback<double>> loss_readback_ =
      std::make_unique<typename Ops<Backend>::template HostReadback<double>>();
  StepMetrics queued_;      // the last queued step's metrics known on the host
  bool unread_ = false;     // queued_ was not read back yet
  bool scaler_pending_ = false;  // fp16: the scaler has not taken the last update's decision
  std::int64_t skipped_seen_ = 0;  // skipped updates already reported (non-fp16: failures)
  std::int64_t read_step_ = 0;
  std::chrono::steady_clock::time_point interval_start_;
  double interval_comm_wait_ms_ = 0;  // communication waits of the steps since the last read
  LoaderPosition val_start_{};
  MetricsLog log_;
  Rng rng_{0x6c69676874677074ull};
  std::int64_t step_ = 0;
  std::int64_t tokens_ = 0;
  double best_val_ = std::nan("");
};

}  // namespace lightgpt
