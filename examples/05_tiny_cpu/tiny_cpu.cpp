// 05 · tiny-cpu: a small LightRNN-head GPT that trains on the Brown corpus in minutes on two CPU
// cores, no GPU needed.
//
// In lightgpt a model variant is a type; each template argument swaps one part at compile time:
//
//   using Model = GPT<Fp32, LightRnnHead<>, Attention, Cpu>;
//                     │     │               │          └ backend: Eigen + OpenMP on the host
//                     │     │               │            (the default is Cuda)
//                     │     │               └ token mixer: causal self-attention
//                     │     └ output head: LightRNN, P(w) = P(row) · P(column | row) over an
//                     │       R × R table of tokens (R = 225 for GPT-2's 50257)
//                     └ precision: fp32 throughout
//
// lightgpt::preset("tiny-cpu") (train/presets.hpp) sizes the model for the CPU and holds its
// tuned learning rate and schedule; edit any field before the model is built. Its config sets
// LightRnnOptions::token_embedding: the input adds an untied vector per token to the
// row and column vectors, which a model this small needs to tell tokens apart; its TrainConfig
// sets dropout 0.1 (embedding and residual branches) for its six epochs of Brown. Prepare the data
// and run (from the build directory):
//
//   examples/prepare/prepare --brown --out data/brown
//   examples/05_tiny_cpu/tiny_cpu --train_data "data/brown/brown_train_*.bin" \
//                                 --val_data "data/brown/brown_val_*.bin"
#include <lightgpt/lightgpt.hpp>
#include <lightgpt/train/trainer.hpp>

#include "../presets/preset_example.hpp"

using Model = lightgpt::GPT<lightgpt::Fp32, lightgpt::LightRnnHead<>, lightgpt::Attention,
                            lightgpt::Cpu>;

int main(int argc, char** argv) {
  lightgpt::Preset preset = lightgpt::preset("tiny-cpu");
  lightgpt::examples::PresetFlags flags;
  if (const auto exit_code = flags.parse(argc, argv, preset)) return *exit_code;
  return lightgpt::examples::run_example("tiny_cpu", [&] {
    lightgpt::Loader train = flags.training_data(preset, Model::mtp_depth);
    lightgpt::Loader val = flags.validation_data(preset);
    Model model(preset.model, flags.seed);
    // The LightRNN table starts from the frequency codebook: the most frequent training tokens
    // fill row 0, the next R row 1, ... (examples/presets/preset_example.hpp).
    flags.prepare(model, preset);
    lightgpt::Trainer<Model> trainer(model, preset.train, train, &val);
    const lightgpt::TrainSummary summary = trainer.run();
    // A model that uses its context predicts better late in the window than early.
    const std::vector<double> by_position = trainer.validate_by_position();
    const std::size_t span = by_position.size() / 8;
    double early = 0, late = 0;
    for (std::size_t t = 0; t < span; ++t) {
      early += by_position[t] / double(span);
      late += by_position[by_position.size() - span + t] / double(span);
    }
    std::printf("best val_loss %.4f; first %zu positions %.4f, last %zu positions %.4f\n",
                summary.best_val_loss, span, early, span, late);
  });
}
