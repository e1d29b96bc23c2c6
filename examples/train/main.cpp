// train — one binary for every preset, with the original scripts' flags.
//
//   train --preset tiny-cpu --train_data "data/brown/brown_train_*.bin"
//         --val_data 'data/brown/brown_val_*.bin' --out_dir runs/tiny
//
// A preset (--list-presets) fixes the composition and every hyper-parameter; each flag overrides
// one value. The flags --precision, --mtp_enabled/--mtp_max_steps, --mixer/--afno_num_blocks,
// --head and --backend choose among the compile-time compositions built into this binary
// (--list-variants); asking for one that is not built in is an error that says how to add it.
// The GPU presets (backend cuda) are built in when the build found nvcc.
//
// Built with MPI, it trains data-parallel on every rank an MPI launcher starts, one process per
// GPU for CUDA compositions (built in with NCCL), e.g.
//   mpirun -np 2 train --preset tiny-cpu --train_data ... --zero 1
// Only rank 0 prints and writes; a rank that fails ends all of them (docs/distributed.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compositions.hpp"

#if defined(LIGHTGPT_TRAIN_MPI)
#include <lightgpt/dist/mpi.hpp>
#endif

namespace lightgpt::examples {
#if defined(LIGHTGPT_TRAIN_NCCL)
// nccl_world.cu: the device communicator over the ranks of `host`, on this rank's GPU.
std::unique_ptr<Communicator> start_nccl(Communicator& host, int local_rank);
#endif
}  // namespace lightgpt::examples

namespace {

using lightgpt::examples::RunOptions;

using lightgpt::examples::Composition;
using lightgpt::examples::kCompositions;

std::string describe(const lightgpt::Preset& p) {
  std::string text = "--backend " + p.backend + " --precision " + p.precision + " --head " + p.head;
  text += p.mtp_depth > 1 ? " --mtp_enabled --mtp_max_steps " + std::to_string(p.mtp_depth) : "";
  text += " --mixer " + p.mixer;
  if (p.mixer == "afno") text += " --afno_num_blocks " + std::to_string(p.afno_num_blocks);
  return text;
}

const Composition& find_composition(const lightgpt::Preset& p) {
  for (const Composition& v : kCompositions) {
    if (p.backend == v.backend && p.precision == v.precision && p.head == v.head &&
        p.mtp_depth == v.mtp_depth &&
        p.mixer == v.mixer && (p.mixer != "afno" || p.afno_num_blocks == v.afno_num_blocks)) {
      return v;
    }
  }
#if !defined(LIGHTGPT_TRAIN_CUDA)
  if (p.backend == "cuda") {
    throw lightgpt::Error(lightgpt::detail::concat(
        "preset '", p.name, "' runs on the GPU (", describe(p),
        "), but this binary was built without CUDA (nvcc was not found when CMake configured "
        "the build, or LIGHTGPT_ENABLE_CUDA=OFF). Rebuild with nvcc, or run it on the CPU with "
        "--backend cpu"));
  }
#endif
  throw lightgpt::Error(lightgpt::detail::concat(
      "the composition ", describe(p),
      " is not built into this binary (see --list-variants). Either choose a built-in one with "
      "those flags, or add it: one line in examples/train/compositions.cmake"));
}

}  // namespace

int main(int argc, char** argv) {
#if defined(LIGHTGPT_TRAIN_MPI)
  std::optional<lightgpt::Mpi> mpi;
  try {
    mpi.emplace(&argc, &argv);
  } catch (...) {
    return lightgpt::report_exception("train");
  }
  if (mpi->rank() != 0) std::freopen("/dev/null", "w", stdout);  // one console: rank 0's
  // A failure on one rank ends every rank, naming the one that failed.
  const auto failed = [&] { return mpi->fail("train"); };
#else
  const auto failed = [] { return lightgpt::report_exception("train"); };
#endif
  CLI::App app{"Train a GPT-2-family model from a preset; every flag overrides the preset"};
  std::string preset_name = "tiny-cpu";
  bool list_presets = false, list_variants = false;
  RunOptions o;
  // Overrides, applied over the preset only when given.
  std::optional<int> batch_size, grad_accum, batch_split, seq_len, mtp_max_steps, afno_num_blocks,
      n_layer, n_head, d_model, lightrnn_rows, ngram_k, val_batches, zero, overlap;
  std::optional<long long> warmup, warmdown, mtp_rampup_steps, steps, eval_every,
      checkpoint_every, realloc_every, log_every;
  std::optional<double> learning_rate, dropout, mtp_weight, cocont_alpha, afno_sparsity_threshold,
      bucket_mb;
  std::optional<bool> mtp_enabled, use_cocont, lightrnn_token_embedding;
  std::optional<std::string> mixer, precision, head, backend, out_dir;
  std::string ngram_path;

  app.add_option("--preset", preset_name, "tiny-cpu, dense-baseline, vanilla-lightrnn, afno or "
                 "fast-mtp-2step (see --list-presets)")->capture_default_str();
  app.add_flag("--list-presets", list_presets, "Print the presets and exit");
  app.add_flag("--list-variants", list_variants, "Print the compositions built in and exit");
  app.add_option("--train_data", o.train_data, "Training shards (path or glob)");
  app.add_option("--val_data", o.val_data, "Validation shards (path or glob)");
  app.add_option("--out_dir", out_dir, "Checkpoint and metrics.jsonl directory (default: runs/<preset>)");
  app.add_option("--resume", o.resume, "Continue from this checkpoint")->check(CLI::ExistingFile);
  app.add_option("--seed", o.seed, "Initialisation and shuffling seed")->capture_default_str();
  app.add_option("--batch_size", batch_size, "Rows per micro-batch (B)");
  app.add_option("--grad_accum", grad_accum, "Micro-batches per optimizer step");
  app.add_option("--batch_split", batch_split,
                 "CPU: run each micro-batch as this many groups of rows, each through the whole "
                 "model on a thread of its own (0: one per OpenMP thread, as tiny-cpu does; 1: off)");
  app.add_option("--seq_len", seq_len, "Tokens per row (T)");
  app.add_option("--learning_rate", learning_rate, "Peak learning rate");
  app.add_option("--warmup", warmup, "Linear warmup steps");
  app.add_option("--warmdown", warmdown, "Linear warmdown steps at the end");
  app.add_option("--steps", steps, "Optimizer steps");
  app.add_option("--dropout", dropout,
                 "Dropout of the embedding and of each residual branch while training, in [0, 1)");
  app.add_option("--eval_every", eval_every, "Steps between validations (0: at the end only)");
  app.add_option("--val_batches", val_batches, "Fixed validation batches of B x (T+1) tokens");
  app.add_option("--checkpoint_every", checkpoint_every, "Steps between checkpoints (0: at the end)");
  app.add_option("--log_every", log_every,
                 "Steps between reads of the metrics (losses, gradient norm) from the device");
  app.add_option("--zero", zero,
                 "Data-parallel runs: 1 shards the AdamW moments (and the fp32 master weights of "
                 "16-bit models) across the ranks (ZeRO-1)")
      ->check(CLI::IsMember({0, 1}));
  app.add_option("--overlap", overlap,
                 "Data-parallel runs: 1 sums each bucket of gradients while the backward of the "
                 "layers below runs, 0 after the whole backward (the same result; default: 1 on "
                 "CUDA, 0 on the CPU, where the sums compete with the backward for the cores)")
      ->check(CLI::IsMember({0, 1}));
  app.add_option("--bucket_mb", bucket_mb,
                 "Data-parallel runs: megabytes of gradients summed per all-reduce (default 25)");
  app.add_option("--mtp_enabled", mtp_enabled, "Multi-token prediction on/off")
      ->expected(0, 1)->default_str("true");
  app.add_option("--mtp_max_steps", mtp_max_steps, "k of MTP<k>: predict t+1 ... t+k");
  app.add_option("--mtp_weight", mtp_weight, "Weight w of the mean auxiliary loss");
  app.add_option("--mtp_rampup_steps", mtp_rampup_steps, "Steps of the linear ramp of w");
  app.add_option("--use_cocont", use_cocont, "CoCoNT n-gram target smoothing on/off")
      ->expected(0, 1)->default_str("true");
  app.add_option("--cocont_alpha", cocont_alpha, "CoCoNT mixing weight alpha");
  app.add_option("--ngram_path", ngram_path,
                 "Bigram top-K table written by build-bigram (default: built from --train_data)")
      ->check(CLI::ExistingFile);
  app.add_option("--ngram_k", ngram_k, "Successors kept per token");
  app.add_option("--mixer", mixer, "Token mixer")->check(CLI::IsMember({"attention", "afno"}));
  app.add_option("--afno_num_blocks", afno_num_blocks, "Blocks of the AFNO MLP");
  app.add_option("--afno_sparsity_threshold", afno_sparsity_threshold, "AFNO soft-shrink lambda");
  app.add_option("--head", head, "Output head")->check(CLI::IsMember({"dense", "lightrnn"}));
  app.add_option("--lightrnn_rows", lightrnn_rows, "Rows R of the LightRNN table (0: ceil(sqrt V))");
  app.add_option("--lightrnn_token_embedding", lightrnn_token_embedding,
                 "LightRNN: add an untied V x C input vector per token (tiny-cpu: on)")
      ->expected(0, 1)->default_str("true");
  app.add_option("--realloc_every", realloc_every,
                 "LightRNN: re-place tokens every N steps from their row/column losses (0: never)");
  app.add_option("--lightrnn_codebook", o.lightrnn_codebook,
                 "Initial token-to-cell map: frequency (most frequent tokens first) or sequential")
      ->capture_default_str()
      ->check(CLI::IsMember({"frequency", "sequential"}));
  app.add_option("--precision", precision, "Storage precision")
      ->check(CLI::IsMember({"bf16", "fp16", "fp32"}));
  app.add_option("--backend", backend, "Where to train: cpu (Eigen) or cuda (the GPU presets)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--n_layer", n_layer, "Transformer blocks");
  app.add_option("--n_head", n_head, "Attention heads");
  app.add_option("--d_model", d_model, "Model width C");
#ifdef LIGHTGPT_ENCODER_JSON
  o.encoder_json = LIGHTGPT_ENCODER_JSON;
  o.vocab_bpe = LIGHTGPT_VOCAB_BPE;
  o.sample_tokens = 48;
#endif
  app.add_option("--encoder-json", o.encoder_json, "GPT-2 encoder.json (for the sample)");
  app.add_option("--vocab-bpe", o.vocab_bpe, "GPT-2 vocab.bpe (for the sample)");
  app.add_option("--prompt", o.prompt, "Prompt of the sample printed at the end")
      ->capture_default_str();
  app.add_option("--sample_tokens", o.sample_tokens, "Tokens to sample at the end (0: none)")
      ->capture_default_str();
  app.add_option("--temperature", o.sampling.temperature, "Sampling temperature")
      ->capture_default_str();
  app.add_option("--top_k", o.sampling.top_k, "Sample among the k most likely tokens (0: all)")
      ->capture_default_str();
  app.add_flag("--baselines,!--no-baselines", o.baselines,
               "Print unigram/bigram cross-entropies of the validation split (default: on for "
               "CPU presets)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help exits 0 with CLI11's text; a bad flag is one line and exit code 1.
    return error.get_exit_code() == 0 ? app.exit(error) : failed();
  }

  try {
    if (list_presets) {
      for (const lightgpt::Preset& p : lightgpt::presets()) {
        std::printf(
            "%-17s %s\n  %s; %s\n  B %d, grad_accum %d, batch_split %d, T %d, lr %g, "
            "warmup %lld, warmdown %lld, steps %lld\n",
            p.name.c_str(), p.composition.c_str(), p.summary.c_str(), describe(p).c_str(),
            p.train.batch_size, p.train.grad_accum, p.train.batch_split, p.train.seq_len,
            p.train.learning_rate, static_cast<long long>(p.train.warmup),
            static_cast<long long>(p.train.warmdown), static_cast<long long>(p.train.steps));
      }
      return 0;
    }
    if (list_variants) {
      for (const Composition& v : kCompositions) {
        std::printf("%-48s --backend %s --precision %s --head %s%s --mixer %s\n", v.type,
                    v.backend, v.precision, v.head,
                    v.mtp_depth > 1
                        ? (" --mtp_enabled --mtp_max_steps " + std::to_string(v.mtp_depth)).c_str()
                        : "",
                    v.mixer);
      }
      return 0;
    }
    LIGHTGPT_CHECK(!o.train_data.empty(), "--train_data is required (a shard path or glob)");
    lightgpt::Preset p = lightgpt::preset(preset_name);
    lightgpt::TrainConfig& t = p.train;
    auto apply = [](auto& target, const auto& value) {
      if (value) target = *value;
    };
    apply(t.batch_size, batch_size);
    apply(t.grad_accum, grad_accum);
    apply(t.seq_len, seq_len);
    apply(t.learning_rate, learning_rate);
    apply(t.warmup, warmup);
    apply(t.warmdown, warmdown);
    apply(t.steps, steps);
    apply(t.dropout, dropout);
    apply(t.eval_every, eval_every);
    apply(t.val_batches, val_batches);
    apply(t.checkpoint_every, checkpoint_every);
    apply(t.log_every, log_every);
    apply(t.zero_stage, zero);
    apply(t.bucket_mb, bucket_mb);
    apply(t.realloc_every, realloc_every);
    LIGHTGPT_CHECK(t.realloc_every == 0 || p.head == "lightrnn",
                   "--realloc_every needs the LightRNN head (--head lightrnn)");
    apply(t.mtp_weight, mtp_weight);
    apply(t.mtp_rampup_steps, mtp_rampup_steps);
    if (mtp_enabled) p.mtp_depth = *mtp_enabled ? (mtp_max_steps ? *mtp_max_steps : 2) : 1;
    else if (mtp_max_steps) p.mtp_depth = *mtp_max_steps;
    LIGHTGPT_CHECK(p.mtp_depth >= 1, "--mtp_max_steps must be at least 1, got ", p.mtp_depth);
    apply(p.use_cocont, use_cocont);
    apply(p.cocont_alpha, cocont_alpha);
    apply(p.ngram_k, ngram_k);
    apply(p.mixer, mixer);
    apply(p.afno_num_blocks, afno_num_blocks);
    apply(p.head, head);
    // The head's and mixer's own settings (ModelConfig::options): a preset's settings for a part
    // the run no longer has are dropped; a flag for such a part is an error.
    for (const auto& [part, used] : {std::pair{"lightrnn.", p.head == "lightrnn"},
                                     std::pair{"afno.", p.mixer == "afno"}}) {
      std::vector<std::string> unused;
      for (const auto& entry : p.model.options.entries()) {
        if (!used && entry.first.starts_with(part)) unused.push_back(entry.first);
      }
      for (const std::string& key : unused) p.model.options.erase(key);
    }
    LIGHTGPT_CHECK(p.head == "lightrnn" || !(lightrnn_rows || lightrnn_token_embedding),
                   "--lightrnn_rows and --lightrnn_token_embedding need --head lightrnn");
    LIGHTGPT_CHECK(p.mixer == "afno" || !afno_sparsity_threshold,
                   "--afno_sparsity_threshold needs --mixer afno");
    if (lightrnn_rows) p.model.options.set("lightrnn.rows", *lightrnn_rows);
    if (lightrnn_token_embedding) {
      p.model.options.set("lightrnn.token_embedding", *lightrnn_token_embedding);
    }
    if (afno_sparsity_threshold) {
      p.model.options.set("afno.sparsity_threshold", *afno_sparsity_threshold);
    }
    apply(p.precision, precision);
    apply(p.backend, backend);
    apply(t.batch_split, batch_split);
    // A CPU preset run on the GPU drops its batch split (each kernel there runs the whole batch);
    // asked for by flag, the trainer says why it cannot.
    if (p.backend == "cuda" && !batch_split) t.batch_split = 1;
    // Measured (BENCHMARKS.md, "Two MPI ranks against two threads"): on CPU ranks MPI's
    // non-blocking sums slow the backward more than they hide.
    t.overlap = overlap ? *overlap == 1 : p.backend == "cuda";
    if (app.count("--baselines") + app.count("--no-baselines") == 0) {
      o.baselines = p.backend == "cpu";
    }
    apply(p.model.n_layer, n_layer);
    apply(p.model.n_head, n_head);
    apply(p.model.d_model, d_model);
    t.out_dir = out_dir ? *out_dir : "runs/" + p.name;
    if (t.seq_len > p.model.max_seq_len) p.model.max_seq_len = t.seq_len;
    if (p.mtp_depth == 1) t.mtp_weight = 0;
    LIGHTGPT_CHECK(p.cocont_alpha >= 0 && p.cocont_alpha <= 1,
                   "--cocont_alpha must lie in [0, 1], got ", p.cocont_alpha);
    LIGHTGPT_CHECK(p.ngram_k >= 1, "--ngram_k must be positive, got ", p.ngram_k);
    LIGHTGPT_CHECK(ngram_path.empty() || p.use_cocont,
                   "--ngram_path is only read with --use_cocont");
    o.ngram_path = ngram_path;
    p.model.validate();
    t.validate();
    o.sampling.validate();
    const Composition& variant = find_composition(p);
    p.composition = variant.type;  // the composition that runs, flags applied
    o.preset = p;
#if defined(LIGHTGPT_TRAIN_MPI)
    o.host_comm = &*mpi;
#if defined(LIGHTGPT_TRAIN_NCCL)
    std::unique_ptr<lightgpt::Communicator> nccl;
    if (p.backend == "cuda" && mpi->size() > 1) {
      nccl = lightgpt::examples::start_nccl(*mpi, mpi->local_rank());
      o.device_comm = nccl.get();
    }
#endif
#endif
    variant.run(o);
  } catch (...) {
    return failed();
  }
  return 0;
}
