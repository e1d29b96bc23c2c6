// What the five preset examples share, so that each of them shows only its composition: their
// flags (--train_data, --val_data, --out_dir, --steps, --seed, --help), handed to the library's
// preset preparation (train/prepare.hpp). Backend-free: an example includes its backend first.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include <lightgpt/core/error.hpp>
#include <lightgpt/train/prepare.hpp>
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

  // The preset's data and model preparation: train/prepare.hpp, as `train` does it.
  PresetData data() const {
    PresetData d;
    d.train_data = train_data;
    d.val_data = val_data;
    d.seed = seed;
    return d;
  }
  Loader training_data(const Preset& preset, int mtp_depth) const {
    return preset_training_loader(preset, data(), mtp_depth);
  }
  Loader validation_data(const Preset& preset) const {
    return preset_validation_loader(preset, data());
  }
  template <class Model>
  void prepare(Model& model, const Preset& preset) const {
    prepare_model(model, preset, data());
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
