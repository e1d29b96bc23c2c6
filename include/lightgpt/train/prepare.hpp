// Everything a preset asks of a run beyond its types, in one place for every program that trains
// one (the `train` example and the per-preset trainers): the loaders over the token shards, the
// CoCoNT bigram table (loaded, or counted over the training shards), and a fresh model's start —
// a LightRNN head from the frequency codebook. Like presets.hpp, this layer names the parts.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "../data/loader.hpp"
#include "../data/shard.hpp"
#include "../heads/lightrnn/codebook.hpp"
#include "../heads/lightrnn/options.hpp"
#include "../loss/bigram.hpp"
#include "presets.hpp"

namespace lightgpt {

// Where a preset's run reads from, and the choices a preset leaves to the user.
struct PresetData {
  std::string train_data, val_data;  // shard paths or globs; val_data may be empty
  std::string ngram_path;            // CoCoNT table; empty: counted from the training shards
  // LightRNN's initial token → cell map: "frequency" (the most frequent training tokens first,
  // row by row) or "sequential" (id / R, id % R).
  std::string lightrnn_codebook = "frequency";
  std::uint64_t seed = 1;  // shuffling (the model's initialisation takes its own)
  int rank = 0, world_size = 1;  // data-parallel runs: this process's stride of the batches
};

// Shuffled training windows with the `mtp_depth` extra targets an MTP<k> head reads.
inline Loader preset_training_loader(const Preset& preset, const PresetData& data, int mtp_depth) {
  LoaderOptions o;
  o.B = preset.train.batch_size;
  o.T = preset.train.seq_len;
  o.K = mtp_depth;
  o.shuffle = true;
  o.seed = data.seed;
  o.rank = data.rank;
  o.world_size = data.world_size;
  o.vocab_size = preset.model.vocab_size;
  return Loader(data.train_data, o);
}

// The fixed validation windows: next token only, whatever the head.
inline Loader preset_validation_loader(const Preset& preset, const PresetData& data) {
  LoaderOptions o;
  o.B = preset.train.batch_size;
  o.T = preset.train.seq_len;
  o.K = 1;
  o.seed = data.seed;
  o.vocab_size = preset.model.vocab_size;
  return Loader(data.val_data, o);
}

// CoCoNT's table: data.ngram_path, or the top-K successors of every token counted over the
// training shards. Prints one line saying which.
inline BigramTable preset_bigram_table(const Preset& preset, const PresetData& data) {
  if (!data.ngram_path.empty()) {
    BigramTable table = BigramTable::load(data.ngram_path, preset.model.vocab_size, preset.ngram_k);
    std::printf("CoCoNT: %s (top-%d), alpha %g\n", data.ngram_path.c_str(), preset.ngram_k,
                preset.cocont_alpha);
    return table;
  }
  BigramCounter counter(preset.model.vocab_size);
  for (const auto& path : expand_shard_pattern(data.train_data)) {
    counter.add(Shard(path, preset.model.vocab_size).tokens());
  }
  std::printf("CoCoNT: bigram top-%d table built from %llu training tokens, alpha %g\n",
              preset.ngram_k, static_cast<unsigned long long>(counter.tokens()),
              preset.cocont_alpha);
  return counter.top_k(preset.ngram_k);
}

// What a preset asks of a model: CoCoNT's table and α when the preset smooths its targets, and,
// for a fresh model (not one about to be resumed, whose checkpoint holds its codebook), a LightRNN
// head's frequency codebook unless data.lightrnn_codebook says "sequential".
template <class Model>
void prepare_model(Model& model, const Preset& preset, const PresetData& data, bool fresh = true) {
  LIGHTGPT_CHECK(data.lightrnn_codebook == "frequency" || data.lightrnn_codebook == "sequential",
                 "--lightrnn_codebook must be 'frequency' or 'sequential', got '",
                 data.lightrnn_codebook, "'");
  if (preset.use_cocont) {
    if constexpr (requires(BigramTable table) { model.set_cocont(std::move(table)); }) {
      model.set_cocont(preset_bigram_table(preset, data));
      model.set_cocont_alpha(static_cast<typename Model::A>(preset.cocont_alpha));
    } else {
      LIGHTGPT_CHECK(false, "preset '", preset.name, "' uses CoCoNT, which ",
                     Model::composition(), " does not support");
    }
  }
  if constexpr (requires { model.head().codebook(); }) {
    if (fresh && data.lightrnn_codebook == "frequency") {
      model.head().set_codebook(LightRnnCodebook::by_frequency(
          count_tokens(data.train_data, preset.model.vocab_size),
          lightrnn_table_rows(preset.model)));
    }
  }
}

}  // namespace lightgpt
