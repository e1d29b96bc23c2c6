// The bigram counter on a synthetic Zipf-distributed token stream (V = 50257, exponent 1.1, a
// first-order Markov twist so successors depend on the context): tokens per second, distinct
// bigrams and peak resident memory, up to 1e9 tokens.
//
//   bench_bigram --benchmark_filter='/1000000000'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <lightgpt/core/rng.hpp>
#include <lightgpt/loss/bigram.hpp>
#include <lightgpt/train/metrics.hpp>
#include <vector>

namespace {

constexpr int kVocab = 50257;

// Zipf sampler by inverse CDF over the ranks.
struct Zipf {
  std::vector<double> cdf;
  explicit Zipf(double exponent) : cdf(kVocab) {
    double total = 0;
    for (int r = 0; r < kVocab; ++r) cdf[r] = (total += std::pow(r + 1.0, -exponent));
    for (double& c : cdf) c /= total;
  }
  int operator()(lightgpt::Rng& rng) const {
    return int(std::lower_bound(cdf.begin(), cdf.end(), rng.uniform()) - cdf.begin());
  }
};

void BM_CountZipfStream(benchmark::State& state) {
  const auto tokens = static_cast<std::uint64_t>(state.range(0));
  const Zipf zipf(1.1);
  std::vector<std::uint16_t> chunk(std::size_t(1) << 24);
  for (auto _ : state) {
    lightgpt::BigramCounter counter(kVocab);
    lightgpt::Rng rng(1);
    int previous = 0;
    for (std::uint64_t done = 0; done < tokens; done += chunk.size()) {
      const std::size_t n = std::min<std::uint64_t>(chunk.size(), tokens - done);
      for (std::size_t i = 0; i < n; ++i) {
        // The rank is drawn from Zipf, then rotated by the previous token: each context has its
        // own (shifted) successor distribution, like text.
        previous = (zipf(rng) + 31 * (previous % 64)) % kVocab;
        chunk[i] = static_cast<std::uint16_t>(previous);
      }
      counter.add(std::span<const std::uint16_t>(chunk.data(), n));
    }
    const lightgpt::BigramTable table = counter.top_k(16);
    benchmark::DoNotOptimize(table.successors(0).data());
    state.counters["distinct_bigrams"] = double(counter.distinct());
    state.counters["table_MB"] = counter.memory_bytes() / 1e6;
  }
  state.counters["tokens/s"] =
      benchmark::Counter(double(tokens) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["peak_RSS_MB"] = lightgpt::peak_host_memory_mb();
}
BENCHMARK(BM_CountZipfStream)
    ->Arg(10'000'000)
    ->Arg(1'000'000'000)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
