// The body of the `train` example, written once for every composition: build the model from the
// preset's config, open the shards, optionally print the n-gram baselines, run the Trainer, show
// how the validation loss falls along the window, and print a sample. Backend-free: the variant
// translation unit includes the backend's headers first.
#pragma once

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include <lightgpt/data/loader.hpp>
#include <lightgpt/dist/communicator.hpp>
#include <lightgpt/heads/lightrnn/codebook.hpp>
#include <lightgpt/heads/dense.hpp>
#include <lightgpt/heads/lightrnn/head.hpp>
#include <lightgpt/loss/bigram.hpp>
#include <lightgpt/mixers/afno/mixer.hpp>
#include <lightgpt/mixers/attention/mixer.hpp>
#include <lightgpt/model/gpt.hpp>
#include <lightgpt/model/sampling.hpp>
#include <lightgpt/train/baselines.hpp>
#include <lightgpt/train/prepare.hpp>
#include <lightgpt/train/presets.hpp>
#include <lightgpt/train/trainer.hpp>

#if defined(LIGHTGPT_HAVE_TOKENIZER)
#include <lightgpt/data/bpe.hpp>
#endif

namespace lightgpt::examples {

struct RunOptions {
  Preset preset;  // with every flag applied
  // LightRNN's initial token → cell map: "frequency" (the most frequent training tokens first,
  // row by row) or "sequential" (id / R, id % R).
  std::string lightrnn_codebook = "frequency";
  std::string train_data, val_data, resume;
  std::string ngram_path;  // CoCoNT table; empty: built from the training shards
  std::uint64_t seed = 1;
  bool baselines = false;
  // The sample printed at the end (when the tokenizer files are known).
  std::string encoder_json, vocab_bpe, prompt = "The";
  int sample_tokens = 0;
  SamplingOptions sampling;
  // Data-parallel runs (mpirun, srun): the ranks, as a communicator for host buffers (CPU
  // compositions) and one for device buffers (CUDA compositions); null: one process.
  Communicator* host_comm = nullptr;
  Communicator* device_comm = nullptr;

  PresetData data() const {
    PresetData d;
    d.train_data = train_data;
    d.val_data = val_data;
    d.ngram_path = ngram_path;
    d.lightrnn_codebook = lightrnn_codebook;
    d.seed = seed;
    if (host_comm != nullptr) {
      d.rank = host_comm->rank();
      d.world_size = host_comm->size();
    }
    return d;
  }
};

// The baselines on exactly the tokens validation scores: the first `scored` targets of the
// validation stream (its first scored + 1 tokens, across shards as the loader reads them).
inline NgramBaselines print_baselines(const RunOptions& options, int vocab_size,
                                      std::uint64_t scored) {
  std::vector<Shard> train;
  for (const auto& path : expand_shard_pattern(options.train_data)) train.emplace_back(path);
  std::vector<std::span<const std::uint16_t>> train_parts;
  for (const Shard& s : train) train_parts.push_back(s.tokens());
  std::vector<std::uint16_t> stream;
  for (const auto& path : expand_shard_pattern(options.val_data)) {
    if (stream.size() > scored) break;
    const Shard shard(path);
    const auto tokens = shard.tokens();
    const std::size_t take = std::min<std::size_t>(tokens.size(), scored + 1 - stream.size());
    stream.insert(stream.end(), tokens.begin(), tokens.begin() + take);
  }
  const std::span<const std::uint16_t> val_parts[] = {stream};
  const NgramBaselines b = ngram_baselines(train_parts, val_parts, vocab_size);
  std::printf("baselines on the %llu validation tokens scored: unigram %.4f, interpolated bigram "
              "%.4f (lambda %.2f)\n", static_cast<unsigned long long>(stream.size() - 1),
              b.unigram, b.bigram, b.lambda);
  return b;
}

// <out_dir>/summary.json: what a comparison of runs reads (examples/results): the composition,
// its size, the final validation loss and its profile along the window, time and memory.
inline void write_summary(const std::string& out_dir, const std::string& composition,
                          std::size_t parameters, const TrainSummary& summary,
                          const std::vector<double>& by_position,
                          const std::optional<NgramBaselines>& baselines) {
  nlohmann::ordered_json json;
  json["composition"] = composition;
  json["parameters"] = parameters;
  json["steps"] = summary.steps;
  json["seconds"] = summary.seconds;
  json["peak_memory_mb"] = summary.peak_memory_mb;
  json["final_val_loss"] = summary.final_val_loss;
  json["val_loss_by_position"] = by_position;
  if (baselines) {
    json["unigram_loss"] = baselines->unigram;
    json["bigram_loss"] = baselines->bigram;
  }
  const std::filesystem::path path = std::filesystem::path(out_dir) / "summary.json";
  std::ofstream file(path);
  file << json.dump(1) << "\n";
  LIGHTGPT_CHECK(file.good(), "writing '", path.string(), "' failed");
}

template <class Model>
void train_composition(const RunOptions& options) {
  const Preset& p = options.preset;
  const TrainConfig& train_config = p.train;
  const PresetData data = options.data();
  Communicator* comm =
      std::is_same_v<typename Model::backend, Cpu> ? options.host_comm : options.device_comm;
  LIGHTGPT_CHECK(data.world_size == 1 || comm != nullptr, "training ", Model::composition(),
                 " on ", data.world_size, " ranks needs NCCL, which this binary was built without");
  const bool rank0 = data.rank == 0;
  Loader train = preset_training_loader(p, data, Model::mtp_depth);
  std::optional<Loader> val;
  if (!options.val_data.empty()) val.emplace(preset_validation_loader(p, data));

  // Parameters, gradients, a master copy and AdamW's two moments: about five values each.
  std::optional<Model> built;
  allocating("the model (" + std::to_string(p.model.n_layer) + " layers, d_model " +
                 std::to_string(p.model.d_model) + ") with its optimizer state",
             checked_mul(Model::num_parameters(p.model), 5 * sizeof(float), "model"),
             [&] { built.emplace(p.model, options.seed); });
  Model& model = *built;
  prepare_model(model, p, data, /*fresh=*/options.resume.empty());
  std::printf("%s: %s\n  %s, %zu parameters (%d layers, C = %d, T = %d)\n", p.name.c_str(),
              p.composition.c_str(), Model::composition().c_str(), model.num_parameters(),
              p.model.n_layer, p.model.d_model, train_config.seq_len);
  std::printf("  %d x %d tokens x %d micro-steps x %d ranks = %d tokens per step, %lld steps; "
              "train %s (%llu tokens)\n",
              train_config.batch_size, train_config.seq_len, train_config.grad_accum,
              data.world_size,
              train_config.batch_size * train_config.seq_len * train_config.grad_accum *
                  data.world_size,
              static_cast<long long>(train_config.steps), options.train_data.c_str(),
              static_cast<unsigned long long>(train.total_tokens()));
  std::optional<NgramBaselines> baselines;
  if (options.baselines && val && rank0) {
    const std::uint64_t batches = train_config.val_batches > 0
                                      ? std::uint64_t(train_config.val_batches)
                                      : val->steps_per_epoch();
    baselines = print_baselines(options, p.model.vocab_size,
                    batches * std::uint64_t(train_config.batch_size) *
                        std::uint64_t(train_config.seq_len));
  }
  std::fflush(stdout);

  // The activations of one micro-batch: B rows of T positions, each as costly as a position of a
  // full-length row (the attention scores shrink with T, the estimate errs on the large side).
  const std::uint64_t activation_bytes = checked_mul(
      checked_mul(p.model.activation_bytes_per_row() / std::uint64_t(p.model.max_seq_len),
                  std::uint64_t(train_config.seq_len), "activations"),
      std::uint64_t(train_config.batch_size) * std::uint64_t(Model::mtp_depth), "activations");
  std::optional<Trainer<Model>> built_trainer;
  allocating("the activations of a " + std::to_string(train_config.batch_size) + " x " +
                 std::to_string(train_config.seq_len) + " batch",
             activation_bytes,
             [&] {
               built_trainer.emplace(model, train_config, train, val ? &*val : nullptr, comm);
             });
  Trainer<Model>& trainer = *built_trainer;
  if (model.batch_split() > 1 && rank0) {
    std::printf("  each micro-batch runs as %d row groups in parallel (--batch_split %d)\n",
                model.batch_split(), train_config.batch_split);
  }
  if (!options.resume.empty()) {
    trainer.resume(options.resume);
    std::printf("resumed from %s at step %lld\n", options.resume.c_str(),
                static_cast<long long>(trainer.steps_done()));
  }
  const TrainSummary summary = trainer.run();
  if (val) {
    std::printf("final val_loss %.4f\n", summary.final_val_loss);
    const std::vector<double> by_position = trainer.validate_by_position();
    const int T = static_cast<int>(by_position.size()), span = std::max(1, T / 8);
    double early = 0, late = 0;
    for (int t = 0; t < span; ++t) {
      early += by_position[t] / span;
      late += by_position[T - span + t] / span;
    }
    std::printf("val_loss by position: first %d positions %.4f, last %d positions %.4f\n", span,
                early, span, late);
    if (rank0) {
      write_summary(train_config.out_dir, Model::composition(), model.num_parameters(), summary,
                    by_position, baselines);
    }
  }
#if defined(LIGHTGPT_HAVE_TOKENIZER)
  if (options.sample_tokens > 0 && !options.encoder_json.empty() && rank0) {
    const Tokenizer tokenizer(options.encoder_json, options.vocab_bpe);
    std::vector<std::int32_t> prompt;
    for (int id : tokenizer.encode(options.prompt)) prompt.push_back(id);
    const auto generated = model.generate(prompt, options.sample_tokens, options.sampling);
    std::printf("sample: %s%s\n", options.prompt.c_str(),
                tokenizer.decode(std::span<const std::int32_t>(generated)).c_str());
  }
#endif
  std::fflush(stdout);
}

}  // namespace lightgpt::examples
