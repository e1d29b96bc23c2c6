// 04 · dense-baseline: GPT-2 small as it is, on a GPU: the yardstick for 01–03.
//
//   using Model = GPT<Bf16, DenseHead<>, Attention>;
//                           └ output head: the tied V × C embedding matrix and one softmax over
//                             all V = 50257 tokens, as in GPT-2 and llm.c (the checkpoint
//                             converts to and from llm.c's format: examples/convert)
//   bf16 storage with fp32 master weights, attention, the Cuda backend by default.
//
// lightgpt::preset("dense-baseline") trains it with vanilla-lightrnn's schedule (batch 16 × 1024,
// 8 accumulation steps, lr 0.0045), without CoCoNT, so the two runs' val_loss curves compare
// directly (examples/plot overlays them). Run:
//
//   dense_baseline --train_data "data/fineweb10B/fineweb_train_*.bin" \
//                  --val_data "data/fineweb10B/fineweb_val_*.bin" --out_dir runs/dense
#include <lightgpt/cuda.cuh>
#include <lightgpt/train/trainer.hpp>

#include "../presets/preset_example.hpp"

using Model = lightgpt::GPT<lightgpt::Bf16, lightgpt::DenseHead<>, lightgpt::Attention>;

int main(int argc, char** argv) {
  lightgpt::Preset preset = lightgpt::preset("dense-baseline");
  lightgpt::examples::PresetFlags flags;
  if (const auto exit_code = flags.parse(argc, argv, preset)) return *exit_code;
  return lightgpt::examples::run_example("dense_baseline", [&] {
    lightgpt::Loader train = flags.training_data(preset, Model::mtp_depth);
    lightgpt::Loader val = flags.validation_data(preset);
    Model model(preset.model, flags.seed);  // nothing to prepare: no codebook, no CoCoNT
    lightgpt::Trainer<Model> trainer(model, preset.train, train, &val);
    const lightgpt::TrainSummary summary = trainer.run();
    std::printf("best val_loss %.4f after %lld steps\n", summary.best_val_loss,
                static_cast<long long>(summary.steps));
  });
}
