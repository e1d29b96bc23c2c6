// The original scripts' recommended runs plus two of ours, as data: the composition each one is
// (a C++ type, spelled out for the example trainers), its ModelConfig and its TrainConfig. Model
// sizes follow GPT-2 small (d12) unless a preset says otherwise; every default step count is at
// least warmup + warmdown; every flag of the `train` example overrides a preset value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "trainer.hpp"

namespace lightgpt {

struct Preset {
  std::string name;
  std::string summary;
  std::string composition;  // the GPT<...> type the preset trains
  // The composition as the `train` example's flags choose it.
  std::string head;       // "dense" or "lightrnn"
  int mtp_depth = 1;      // k of MTP<k>
  std::string mixer;      // "attention" or "afno"
  int afno_num_blocks = 8;
  std::string precision;  // "bf16", "fp16" or "fp32"
  std::string backend;    // "cuda" or "cpu"
  ModelConfig model;
  TrainConfig train;
  // CoCoNT n-gram smoothing of the main loss (a training-only term).
  bool use_cocont = false;
  double cocont_alpha = 0.1;
  int ngram_k = 16;
};

namespace detail {

inline Preset d12_preset(std::string name, std::string summary, std::string composition,
                         std::string head, int mtp_depth, std::string mixer) {
  Preset p;
  p.name = std::move(name);
  p.summary = std::move(summary);
  p.composition = std::move(composition);
  p.head = std::move(head);
  p.mtp_depth = mtp_depth;
  p.mixer = std::move(mixer);
  p.precision = "bf16";
  p.backend = "cuda";
  p.model = ModelConfig::gpt2_small();
  p.train.eval_every = 250;
  p.train.val_batches = 20;
  p.train.checkpoint_every = 1000;
  return p;
}

}  // namespace detail

inline const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = [] {
    std::vector<Preset> list;
    {
      Preset p = detail::d12_preset(
          "fast-mtp-2step",
          "the original scripts' default: LightRNN head, MTP 2 (w 0.35, ramp 32), CoCoNT 0.1, "
          "attention",
          "GPT<Bf16, LightRnnHead<MTP<2>>, Attention>", "lightrnn", 2, "attention");
      p.model.max_seq_len = 512;
      p.train.batch_size = 24;
      p.train.grad_accum = 16;
      p.train.seq_len = 512;
      p.train.learning_rate = 0.0032;
      p.train.warmup = 500;
      p.train.warmdown = 4000;
      p.train.steps = 5100;  // 196,608 tokens per step: 1.0 B tokens
      p.train.mtp_weight = 0.35;
      p.train.mtp_rampup_steps = 32;
      p.use_cocont = true;
      list.push_back(p);
    }
    {
      Preset p = detail::d12_preset("vanilla-lightrnn",
                                    "LightRNN head with CoCoNT 0.1, no MTP, attention",
                                    "GPT<Bf16, LightRnnHead<>, Attention>", "lightrnn", 1,
                                    "attention");
      p.train.batch_size = 16;
      p.train.grad_accum = 8;
      p.train.seq_len = 1024;
      p.train.learning_rate = 0.0045;
      p.train.warmup = 256;
      p.train.warmdown = 3000;
      p.train.steps = 7600;  // 131,072 tokens per step: 1.0 B tokens
      p.use_cocont = true;
      list.push_back(p);
    }
    {
      Preset p = list.back();
      p.name = "afno";
      p.summary = "vanilla-lightrnn with the causal FFT mixer AfnoMixer<8> instead of attention";
      p.composition = "GPT<Bf16, LightRnnHead<>, AfnoMixer<8>>";
      p.mixer = "afno";
      list.push_back(p);
    }
    {
      Preset p = list[1];
      p.name = "dense-baseline";
      p.summary = "GPT-2 small as it is: the tied dense head and attention, for comparison";
      p.composition = "GPT<Bf16, DenseHead<>, Attention>";
      p.head = "dense";
      p.use_cocont = false;
      list.push_back(p);
    }
    {
      Preset p;
      p.name = "tiny-cpu";
      p.summary =
          "a small LightRNN-head model with attention that trains on the Brown corpus in a few "
          "minutes on two CPU cores";
      p.composition = "GPT<Fp32, LightRnnHead<>, Attention, Cpu>";
      p.head = "lightrnn";
      p.mixer = "attention";
      p.precision = "fp32";
      p.backend = "cpu";
      // Sized for tokens per second: on ~1 M training tokens the loss falls with tokens seen
      // much more than with width or depth (4 layers at C = 192 reached the same loss per token
      // at a third of the speed). The untied token embedding lets the trunk tell tokens apart
      // (6.77 → 6.56 at T = 64), and short windows in wide batches learn more per token (T = 16,
      // B = 32: 6.49) with a loss that still falls along the window. 14000 steps of 512 tokens
      // are about 6 epochs of Brown, where dropout 0.1 starts to pay (6.349 → 6.342); about 4
      // minutes on two cores. Validation scores the whole split. docs/training.md has the runs.
      p.model.max_seq_len = 16;
      p.model.n_layer = 2;
      p.model.n_head = 4;
      p.model.d_model = 128;
      p.model.options.set("lightrnn.token_embedding", true);
      p.train.batch_size = 32;
      p.train.grad_accum = 1;
      // One row group per thread, each through the whole model alone, rather than every small
      // kernel shared by the threads (BENCHMARKS.md, "CPU: the batch split"). Like the threads'
      // shares of the products before it, the groups follow the thread count, and so do the bits.
      p.train.batch_split = 0;
      p.train.seq_len = 16;
      p.train.learning_rate = 5e-3;
      p.train.warmup = 100;
      p.train.warmdown = 4000;
      p.train.steps = 14000;
      p.train.dropout = 0.1;
      p.train.eval_every = 2000;
      p.train.val_batches = 0;
      p.train.checkpoint_every = 2000;
      list.push_back(p);
    }
    return list;
  }();
  return all;
}

inline const Preset& preset(std::string_view name) {
  std::string names;
  for (const Preset& p : presets()) {
    if (p.name == name) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  throw Error(detail::concat("unknown preset '", name, "'; the presets are: ", names));
}

}  // namespace lightgpt
