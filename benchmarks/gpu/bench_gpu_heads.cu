// Heads on the GPT-2 small trunk (d12, C 768, V 50257, T 1024) in bf16 on one GPU: the median
// training step (forward + backward + AdamW) of DenseHead<> against LightRnnHead<>, with the FLOP
// ratio that bounds the speed-up (both models counted analytically, below); the step overhead of
// LightRnnHead<MTP<2>> over MTP<1> and of CoCoNT (a synthetic top-16 bigram table) over plain
// LightRNN; and the device memory each composition takes (cudaMemGetInfo before construction and
// after its first steps: parameters, gradients, master weights, moments, activation arena, plus
// whatever shared scratch it was the first to grow). The four models live side by side and their
// steps are timed interleaved (A B C D, A B C D, ...), medians reported, so drifts in clock or
// temperature hit all alike. A plain program: benchmarks/gpu/run.sh reads its `RESULT` lines.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <lightgpt/cuda.cuh>
#include <lightgpt/heads/lightrnn/head.hpp>
#include <lightgpt/loss/bigram.hpp>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_common.cuh"

namespace {

namespace lg = lightgpt;
using lg::Cuda;
using Dense = lg::GPT<lg::Bf16, lg::DenseHead<>, lg::Attention, Cuda>;
using LightRnn = lg::GPT<lg::Bf16, lg::LightRnnHead<>, lg::Attention, Cuda>;
using LightRnnMtp2 = lg::GPT<lg::Bf16, lg::LightRnnHead<lg::MTP<2>>, lg::Attention, Cuda>;

constexpr int kT = 1024;
constexpr int kWindow = kT + 2;  // every model reads views of the same rows (MTP<2> needs T + 2)

// One composition with its optimizer, stepping on a fixed batch.
class Runner {
 public:
  virtual ~Runner() = default;
  virtual void step() = 0;
  virtual double parameters() const = 0;
};

template <class Model>
class ModelRunner : public Runner {
 public:
  ModelRunner(const lg::ModelConfig& config, const std::vector<std::int32_t>& tokens, int B,
              const std::function<void(Model&)>& setup)
      : model_(config, 1337), optimizer_(model_.parameters().layout()), tokens_(tokens), B_(B) {
    if (setup) setup(model_);
    model_.reserve(B, kT);
  }
  void step() override {
    model_.zero_grad();
    model_.forward(tokens_.data(), B_, kT, kWindow);
    model_.backward();
    optimizer_.step(model_.parameters(), 6e-4);
  }
  double parameters() const override { return double(model_.num_parameters()); }

 private:
  Model model_;
  lg::AdamW<Cuda, float> optimizer_;
  const std::vector<std::int32_t>& tokens_;
  int B_;
};

// A top-16 successor list for every token (distinct random ids, probabilities ∝ 1/(k+1)): the
// cost of CoCoNT does not depend on what the lists hold, only on their length.
lg::BigramTable synthetic_bigram(int V) {
  constexpr int K = 16;
  lg::BigramTable table(V, K);
  std::mt19937 engine(7);
  std::uniform_int_distribution<int> any(0, V - 1);
  std::vector<float> probs(K);
  float total = 0;
  for (int k = 0; k < K; ++k) total += 1.0f / float(k + 1);
  for (int k = 0; k < K; ++k) probs[k] = 1.0f / float(k + 1) / total;
  std::vector<std::uint32_t> ids;
  for (int a = 0; a < V; ++a) {
    ids.clear();
    while (static_cast<int>(ids.size()) < K) {
      const auto id = static_cast<std::uint32_t>(any(engine));
      bool seen = false;
      for (std::uint32_t other : ids) seen = seen || other == id;
      if (!seen) ids.push_back(id);
    }
    table.set(a, ids, probs);
  }
  return table;
}

struct Composition {
  const char* key;
  std::unique_ptr<Runner> runner;
  double memory_mib = 0;
  std::vector<double> samples;
};

// Builds a composition, warms it up (cuBLASLt heuristics, scratch growth) and records the device
// memory it took.
template <class Model>
Composition build(const char* key, const lg::ModelConfig& config,
                  const std::vector<std::int32_t>& tokens, int B,
                  const std::function<void(Model&)>& setup = {}) {
  Composition composition;
  composition.key = key;
  const std::size_t before = lg::bench::used_device_bytes();
  composition.runner = std::make_unique<ModelRunner<Model>>(config, tokens, B, setup);
  for (int i = 0; i < 2; ++i) composition.runner->step();
  lg::cuda::context().synchronize();
  composition.memory_mib = double(lg::bench::used_device_bytes() - before) / (1 << 20);
  return composition;
}

void print_help() {
  std::printf(
      "bench_gpu_heads: DenseHead<> vs LightRnnHead<> (and MTP<2>, CoCoNT) on the GPT-2 small\n"
      "trunk in bf16, T = 1024.\n"
      "  --batch B   sequences per step (default 16; halved until the four models fit)\n"
      "  --steps S   interleaved timed rounds after two warm-up steps (default 10)\n"
      "  --help      this text\n"
      "Prints RESULT key=value lines: step_ms_<composition> (medians), speedup_lightrnn,\n"
      "flop_ratio_bound, mtp2_overhead, cocont_overhead, mem_mib_<composition>.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (lg::bench::has_flag(argc, argv, "--help") || lg::bench::has_flag(argc, argv, "-h")) {
    print_help();
    return 0;
  }
  if (!lg::cuda::device_available()) {
    std::printf("no usable GPU: %s\n", lg::cuda::device_unavailable_reason().c_str());
    return 1;
  }
  const int max_batch = lg::bench::arg_int(argc, argv, "--batch", 16);
  const int rounds = lg::bench::arg_int(argc, argv, "--steps", 10);
  if (max_batch < 1 || rounds < 1) {
    std::printf("--batch and --steps must be positive\n");
    return 2;
  }
  cudaDeviceProp props{};
  LIGHTGPT_CUDA_CHECK(cudaGetDeviceProperties(&props, 0));
  std::printf("RESULT gpu=%s\n", props.name);
  lg::cuda::context();  // stream, cuBLASLt handle and workspace: counted in no composition

  lg::ModelConfig config = lg::ModelConfig::gpt2_small();
  config.max_seq_len = kT;
  const int V = config.vocab_size, Vp = config.padded_vocab_size(), C = config.d_model;
  const int L = config.n_layer, R = lightrnn_table_rows(config);
  const lg::BigramTable bigram = synthetic_bigram(V);

  std::mt19937 engine(42);
  std::uniform_int_distribution<int> id(0, V - 1);
  std::vector<std::int32_t> tokens;
  std::vector<Composition> compositions;
  int B = 0;
  for (int candidate = max_batch; candidate >= 1 && B == 0; candidate /= 2) {
    compositions.clear();
    try {
      tokens.resize(std::size_t(candidate) * kWindow);
      for (auto& t : tokens) t = id(engine);
      compositions.push_back(build<Dense>("dense", config, tokens, candidate));
      compositions.push_back(build<LightRnn>("lightrnn", config, tokens, candidate));
      compositions.push_back(build<LightRnnMtp2>("lightrnn_mtp2", config, tokens, candidate,
                                                 [](LightRnnMtp2& m) { m.set_mtp_weight(0.5f); }));
      compositions.push_back(build<LightRnn>("lightrnn_cocont", config, tokens, candidate,
                                             [&](LightRnn& m) { m.set_cocont(bigram); }));
      B = candidate;
    } catch (const lg::Error& error) {
      std::printf("batch %d does not fit: %s\n", candidate, error.what());
    }
  }
  if (B == 0) return 1;
  std::printf("RESULT heads_batch=%d\n", B);

  lg::bench::Timer timer;
  for (int round = 0; round < rounds; ++round) {
    for (Composition& c : compositions) {
      c.samples.push_back(timer.once([&] { c.runner->step(); }));
    }
  }
  double step_s[4];
  for (std::size_t i = 0; i < compositions.size(); ++i) {
    step_s[i] = lg::bench::median(compositions[i].samples);
    std::printf("RESULT step_ms_%s=%.2f\n", compositions[i].key, step_s[i] * 1e3);
  }

  // FLOPs per token of one training step (forward 2, backward 4 per multiply-add), counting the
  // products only: the trunk's 12·C² weights per layer and attention's full T × T score and value
  // products (the causal half is computed too); the dense head's C × Vp product (padded rows are
  // computed); LightRNN's row and column products (2·R·C) and the C × C conditioning step, which
  // MTP<2> shares (one more column product per extra depth).
  const double trunk = 6.0 * 12.0 * L * double(C) * C + 12.0 * L * double(C) * kT;
  const double dense_head = 6.0 * double(C) * Vp;
  const double lightrnn_head = 6.0 * (2.0 * R * C + double(C) * C);
  const double mtp2_head = lightrnn_head + 6.0 * R * C;
  const double bound = (trunk + dense_head) / (trunk + lightrnn_head);
  const double measured = step_s[0] / step_s[1];
  std::printf("RESULT flops_per_token_dense=%.4g\n", trunk + dense_head);
  std::printf("RESULT flops_per_token_lightrnn=%.4g\n", trunk + lightrnn_head);
  std::printf("RESULT flops_per_token_lightrnn_mtp2=%.4g\n", trunk + mtp2_head);
  std::printf("RESULT speedup_lightrnn=%.3f\n", measured);
  std::printf("RESULT flop_ratio_bound=%.3f\n", bound);
  std::printf("RESULT speedup_of_bound=%.3f\n", measured / bound);
  std::printf("RESULT mtp2_overhead=%.4f\n", step_s[2] / step_s[1] - 1.0);
  std::printf("RESULT mtp2_flop_overhead=%.4f\n",
              (trunk + mtp2_head) / (trunk + lightrnn_head) - 1);
  std::printf("RESULT cocont_overhead=%.4f\n", step_s[3] / step_s[1] - 1.0);
  for (const Composition& c : compositions) {
    std::printf("RESULT params_%s=%.0f\n", c.key, c.runner->parameters());
    std::printf("RESULT mem_mib_%s=%.0f\n", c.key, c.memory_mib);
  }
  return 0;
}
