// 01 · fast-mtp-2step: GPT-2 small with the LightRNN head, two-token prediction and CoCoNT, on a
// GPU. The original scripts' fastest recipe.
//
// In lightgpt a model variant is a type. Each template argument swaps one part at compile time,
// and the compiler builds a trainer specialised for exactly that combination:
//
//   using Model = GPT<Bf16, LightRnnHead<MTP<2>>, Attention>;
//                     │     │             │       └ token mixer: causal self-attention
//                     │     │             └ multi-token prediction: also predict token t+2 from
//                     │     │               position t, reusing the row logits
//                     │     └ output head: LightRNN, tokens in an R × R table (R = 225 for
//                     │       GPT-2), P(w) = P(row) · P(column | row); 35× fewer head parameters
//                     └ storage precision (AdamW keeps fp32 master weights and moments)
//   The fourth argument, the backend, defaults to Cuda: this file is compiled by nvcc.
//
// lightgpt::preset("fast-mtp-2step") (train/presets.hpp) holds the model config and the original
// scripts' hyper-parameters: batch 24 × 512 tokens, 16 accumulation steps, lr 0.0032, warmup 500,
// warmdown 4000, MTP weight 0.35 ramped over 32 steps, CoCoNT α 0.1. Edit any field before the
// model is built. Run:
//
//   fast_mtp_2step --train_data "data/fineweb10B/fineweb_train_*.bin" \
//                  --val_data "data/fineweb10B/fineweb_val_*.bin" --out_dir runs/fast
#include <lightgpt/cuda.cuh>
#include <lightgpt/train/trainer.hpp>

#include "../presets/preset_example.hpp"

using Model = lightgpt::GPT<lightgpt::Bf16, lightgpt::LightRnnHead<lightgpt::MTP<2>>,
                            lightgpt::Attention>;

int main(int argc, char** argv) {
  lightgpt::Preset preset = lightgpt::preset("fast-mtp-2step");
  lightgpt::examples::PresetFlags flags;
  if (const auto exit_code = flags.parse(argc, argv, preset)) return *exit_code;
  return lightgpt::examples::run_example("fast_mtp_2step", [&] {
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
