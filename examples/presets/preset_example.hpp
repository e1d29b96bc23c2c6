// What the five preset examples share, so that each of them shows only its composition: their
// flags (--train_data, --val_data, --out_dir, --steps, --seed, --help) and the loaders and bigram
// table a preset needs. Backend-free: an example includes its backend's headers first.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include <lightgpt/core/error.hpp>
#include <lightgpt/data/loader.hpp>
#include <lightgpt/heads/codebook.hpp>
#include <lightgpt/loss/bigram.hpp>
#include <lightgpt/train/presets.hpp>

namespace lightgpt::examples {

struct PresetFlags {
  std::string train_data, val_data;
  std::uint64_t seed = 1;

  // Parses the flags into `preset` (--out_dir and --steps override its values). Returns the exit
  // code when the program should stop now (--help, a bad flag), else nullopt.
  std::optional<int> parse(int argc, char** argv, Preset& preset) {
    CLI::App app{"Train the '" + preset.name + "' preset: " + preset.composition + "\n" +
                 preset.summary};
    std::optional<long long> steps;
    preset.train.out_dir = "runs/" + preset.name;
    app.add_option("--train_data", train_data, "Training shards (path or glob)")->required();
    app.add_option("--val_data", val_data, "Validation shards (path or glob)")->required();
    app.add_option("--out_dir", preset.train.out_dir, "Checkpoint and metrics.jsonl directory")
        ->capture_default_str();
    app.add_option("--steps", steps, "Optimizer steps (default: the preset's " +
                                         std::to_string(preset.train.steps) + ")");
    app.add_option("--seed", seed, "Initialisation and shuffling seed")->capture_default_str();
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
      return app.exit(error);
    }
    if (steps) preset.train.steps = *steps;
    return std::nullopt;
  }

  // Shuffled training windows with the `mtp_depth` extra targets an MTP<k> head reads.
  Loader training_data(const Preset& preset, int mtp_depth) const {
    return Loader(train_data, options(preset, mtp_depth, true));
  }
  // The fixed validation windows (next token only).
  Loader validation_data(const Preset& preset) const {
    return Loader(val_data, options(preset, 1, false));
  }

  // CoCoNT's table: the top-K successors of every token, counted over the training shards.
  BigramTable bigram_table(const Preset& preset) const {
    BigramCounter counter(preset.model.vocab_size);
    for (const auto& path : expand_shard_pattern(train_data)) {
      counter.add(Shard(path, preset.model.vocab_size).tokens());
    }
    return counter.top_k(preset.ngram_k);
  }

  // What a preset asks of a fresh model beyond its config: a LightRNN head starts from the
  // frequency codebook (the most frequent training tokens fill row 0, the next R row 1, ...;
  // heads/codebook.hpp), and a preset with CoCoNT gets the bigram table of the training shards
  // and its α (loss/cocont.hpp).
  template <class Model>
  void prepare(Model& model, const Preset& preset) const {
    if constexpr (requires { model.head().codebook(); }) {
      model.head().set_codebook(LightRnnCodebook::by_frequency(
          count_tokens(train_data, preset.model.vocab_size), preset.model.lightrnn_table_rows()));
    }
    if (preset.use_cocont) {
      model.set_cocont(bigram_table(preset));
      model.set_cocont_alpha(static_cast<typename Model::A>(preset.cocont_alpha));
    }
  }

 private:
  LoaderOptions options(const Preset& preset, int depth, bool shuffle) const {
    LoaderOptions o;
    o.B = preset.train.batch_size;
    o.T = preset.train.seq_len;
    o.K = depth;
    o.shuffle = shuffle;
    o.seed = seed;
    o.vocab_size = preset.model.vocab_size;
    return o;
  }
};

// Runs `body`, turning any exception (bad data, a config the preset cannot take, a filesystem
// error, running out of memory) into a one-line message and exit code 1.
template <class Body>
int run_example(const char* program, Body&& body) {
  try {
    body();
    return 0;
  } catch (...) {
    return report_exception(program);
  }
}

}  // namespace lightgpt::examples
