// Head benchmarks (Google Benchmark), fp32 on the CPU at GPT-2 small's shapes (V = 50257,
// C = 768, R = 225): forward + backward of DenseHead<MTP<k>> and LightRnnHead<MTP<k>> on their
// own (hidden states in, d(hidden) out), and LightRnnCodebook::reallocate at V = 50257. The
// LightRNN/dense speed-up is compared with the FLOP ratio V·C / (2·R·C + C²) ≈ 41.3.
#include <benchmark/benchmark.h>

#include <lightgpt/lightgpt.hpp>
#include <memory>
#include <vector>

namespace {

using namespace lightgpt;

// One head implementation bound to its own parameters and activations, on N = positions random
// hidden states and random targets.
template <class Head>
struct HeadFixture {
  using Impl = typename Head::template impl<Cpu, Fp32>;
  static constexpr int D = Head::mtp_depth;

  explicit HeadFixture(int positions) : N(positions) {
    Impl::declare_input(layout, config);
    Impl::declare_output(layout, config);
    store = std::make_unique<ParameterStore<Fp32, Cpu>>(layout);
    store->initialize(1);
    impl = std::make_unique<Impl>(config);
    impl->bind_parameters(layout, store->values(), store->grads());
    ArenaBinder measure;
    impl->bind_activations(measure, std::size_t(N));
    arena = Buffer<std::byte, Cpu>(measure.bytes());
    ArenaBinder bind(arena.data());
    impl->bind_activations(bind, std::size_t(N));
    Rng rng(3);
    hidden.resize(std::size_t(N) * config.d_model);
    for (float& h : hidden) h = float(rng.normal());
    dhidden.resize(hidden.size());
    tokens.resize(std::size_t(N) + D);
    for (std::int32_t& id : tokens) id = std::int32_t(rng.next_u64() % config.vocab_size);
  }

  void step() {
    impl->forward(hidden.data(), tokens.data(), N + D, 1, N, D);
    impl->backward(overwrite(dhidden.data()), hidden.data(), tokens.data(), N + D, 1, N,
                   1.0f / float(N), 0.5f);
  }

  ModelConfig config = ModelConfig::gpt2_small();
  int N;
  ParameterLayout layout;
  std::unique_ptr<ParameterStore<Fp32, Cpu>> store;
  std::unique_ptr<Impl> impl;
  Buffer<std::byte, Cpu> arena;
  std::vector<float> hidden, dhidden;
  std::vector<std::int32_t> tokens;
};

template <class Head>
void BM_HeadForwardBackward(benchmark::State& state) {
  HeadFixture<Head> fixture(int(state.range(0)));
  for (auto _ : state) {
    fixture.step();
    benchmark::DoNotOptimize(fixture.dhidden.data());
  }
  state.counters["tok/s"] =
      benchmark::Counter(double(fixture.N) * state.iterations(), benchmark::Counter::kIsRate);
  const double C = fixture.config.d_model, Vp = fixture.config.padded_vocab_size();
  if (Head::name().rfind("dense", 0) == 0) {
    // The three C × Vp products (logits, d(hidden), d(wte)).
    state.counters["GEMM GFLOP/s"] = benchmark::Counter(
        6.0 * fixture.N * C * Vp * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  }
}

// Dense heads take seconds per step at these shapes: one iteration per repetition.
BENCHMARK_TEMPLATE(BM_HeadForwardBackward, DenseHead<MTP<1>>)
    ->Arg(1024)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_HeadForwardBackward, DenseHead<MTP<2>>)
    ->Arg(1024)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_HeadForwardBackward, DenseHead<MTP<3>>)
    ->Arg(1024)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_HeadForwardBackward, LightRnnHead<MTP<1>>)
    ->Arg(1024)
    ->Arg(4096)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_HeadForwardBackward, LightRnnHead<MTP<2>>)
    ->Arg(1024)
    ->Arg(4096)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_HeadForwardBackward, LightRnnHead<MTP<3>>)
    ->Arg(1024)
    ->Arg(4096)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Bootstrap reallocation of the full GPT-2 vocabulary from V × R statistics in which each token
// prefers some cell (with token-dependent scales, as frequencies give), starting from a random map.
void BM_Reallocate(benchmark::State& state) {
  const int V = 50257, R = 225;
  Rng rng(7);
  std::vector<float> rows(std::size_t(V) * R), cols(rows.size());
  for (int w = 0; w < V; ++w) {
    const float scale = float(1 + rng.next_u64() % 100);
    for (int i = 0; i < R; ++i) {
      rows[std::size_t(w) * R + i] = scale * float(5 + rng.uniform());
      cols[std::size_t(w) * R + i] = scale * float(5 + rng.uniform());
    }
  }
  const LightRnnCodebook start = LightRnnCodebook::random(V, R, 1);
  int moved = 0;
  for (auto _ : state) {
    state.PauseTiming();
    LightRnnCodebook codebook = start;
    state.ResumeTiming();
    moved = codebook.reallocate(rows.data(), cols.data()).moved;
    benchmark::DoNotOptimize(moved);
  }
  state.counters["moved"] = moved;
}
BENCHMARK(BM_Reallocate)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
