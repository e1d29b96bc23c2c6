// 03 · afno: vanilla-lightrnn with a causal FFT token mixer instead of attention, on a GPU.
//
// Swapping the mixer is swapping one template argument:
//
//   using Model = GPT<Bf16, LightRnnHead<>, AfnoMixer<8>>;
//                                           └ token mixer: a causal long convolution over the
//                                             whole window through cuFFT (O(T log T) instead of
//                                             attention's O(T²)), a sigmoid gate, then an MLP of
//                                             8 diagonal blocks with soft-shrink
//                                             (mixers/afno/, docs/mixers.md)
//   Everything else is 02's model: bf16 storage, the LightRNN head, the Cuda backend by default.
//
// lightgpt::preset("afno") is vanilla-lightrnn's recipe (batch 16 × 1024, 8 accumulation steps,
// lr 0.0045, CoCoNT α 0.1) with the mixer changed. Run:
//
//   afno --train_data "data/fineweb10B/fineweb_train_*.bin" \
//        --val_data "data/fineweb10B/fineweb_val_*.bin" --out_dir runs/afno
#include <lightgpt/cuda.cuh>
#include <lightgpt/train/trainer.hpp>

#include "../presets/preset_example.hpp"

using Model = lightgpt::GPT<lightgpt::Bf16, lightgpt::LightRnnHead<>, lightgpt::AfnoMixer<8>>;

int main(int argc, char** argv) {
  lightgpt::Preset preset = lightgpt::preset("afno");
  lightgpt::examples::PresetFlags flags;
  if (const auto exit_code = flags.parse(argc, argv, preset)) return *exit_code;
  return lightgpt::examples::run_example("afno", [&] {
    lightgpt::Loader train = flags.training_data(preset, Model::mtp_depth);
    lightgpt::Loader val = flags.validation_data(preset);
    Model model(preset.model, flags.seed);
    flags.prepare(model, preset);  // frequency codebook, CoCoNT table (as in 02)
    lightgpt::Trainer<Model> trainer(model, preset.train, train, &val);
    const lightgpt::TrainSummary summary = trainer.run();
    std::printf("best val_loss %.4f after %lld steps\n", summary.best_val_loss,
                static_cast<long long>(summary.steps));
  });
}
