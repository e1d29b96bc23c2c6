// 02 · vanilla-lightrnn: GPT-2 small with LightRNN's factorised embedding and softmax and CoCoNT
// target smoothing, on a GPU; next-token prediction only.
//
// In lightgpt a model variant is a type; each template argument swaps one part at compile time:
//
//   using Model = GPT<Bf16, LightRnnHead<>, Attention>;
//                     │     │               └ token mixer: causal self-attention
//                     │     └ output head: LightRNN. Every token sits in one cell (r, c) of an
//                     │       R × R table; its input embedding is E_row[r] + E_col[c] and
//                     │       P(w | h) = P(r | h) · P(c | h, r), two small softmaxes of R classes
//                     │       instead of one of V (LightRnnHead<MTP<k>> adds MTP, see 01)
//                     └ storage precision (AdamW keeps fp32 master weights and moments)
//   The fourth argument, the backend, defaults to Cuda: this file is compiled by nvcc.
//
// lightgpt::preset("vanilla-lightrnn") holds the original scripts' hyper-parameters: batch 16 ×
// 1024 tokens, 8 accumulation steps, lr 0.0045, warmup 256, warmdown 3000, CoCoNT α 0.1. Run:
//
//   vanilla_lightrnn --train_data "data/fineweb10B/fineweb_train_*.bin" \
//                    --val_data "data/fineweb10B/fineweb_val_*.bin" --out_dir runs/vanilla
#include <lightgpt/cuda.cuh>
#include <lightgpt/train/trainer.hpp>

#include "../presets/preset_example.hpp"

using Model = lightgpt::GPT<lightgpt::Bf16, lightgpt::LightRnnHead<>, lightgpt::Attention>;

int main(int argc, char** argv) {
  lightgpt::Preset preset = lightgpt::preset("vanilla-lightrnn");
  lightgpt::examples::PresetFlags flags;
  if (const auto exit_code = flags.parse(argc, argv, preset)) return *exit_code;
  return lightgpt::examples::run_example("vanilla_lightrnn", [&] {
    lightgpt::Loader train = flags.training_data(preset, Model::mtp_depth);
    lightgpt::Loader val = flags.validation_data(preset);
    Model model(preset.model, flags.seed);
    // The frequency codebook for the LightRNN table, and CoCoNT's bigram table: the row loss
    // also fits the bigram's row distribution with weight α (examples/presets/preset_example.hpp).
    flags.prepare(model, preset);
    lightgpt::Trainer<Model> trainer(model, preset.train, train, &val);
    const lightgpt::TrainSummary summary = trainer.run();
    std::printf("best val_loss %.4f after %lld steps\n", summary.best_val_loss,
                static_cast<long long>(summary.steps));
  });
}
