// Tokenizer throughput on English text: the detagged Brown corpus (about 6 MB), encoded on one
// thread and with encode_parallel on all cores. Bytes/s is input UTF-8 bytes per second.
#include <benchmark/benchmark.h>

#include <string>
#include <thread>

#include <lightgpt/data/bpe.hpp>
#include <lightgpt/data/brown.hpp>

namespace {

const lightgpt::Tokenizer& tokenizer() {
  static const lightgpt::Tokenizer tok(LIGHTGPT_ENCODER_JSON, LIGHTGPT_VOCAB_BPE);
  return tok;
}

const std::string& brown_text() {
  static const std::string text = [] {
    std::string all;
    for (const auto& file : lightgpt::brown_files(LIGHTGPT_BROWN_DIR))
      all += lightgpt::brown_to_text(lightgpt::detail::read_text_file(file)) + "\n\n";
    return all;
  }();
  return text;
}

void BM_EncodeOneThread(benchmark::State& state) {
  const auto& text = brown_text();
  const auto& tok = tokenizer();
  std::size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tok.encode(text);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(text.size()));
  state.counters["tokens"] = double(tokens);
}
BENCHMARK(BM_EncodeOneThread)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_EncodeAllCores(benchmark::State& state) {
  const auto& text = brown_text();
  const auto& tok = tokenizer();
  for (auto _ : state) {
    auto ids = tok.encode_parallel(text);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(text.size()));
  state.counters["threads"] = double(std::thread::hardware_concurrency());
}
BENCHMARK(BM_EncodeAllCores)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Decode(benchmark::State& state) {
  const auto& tok = tokenizer();
  const auto ids = tok.encode(brown_text());
  for (auto _ : state) benchmark::DoNotOptimize(tok.decode(ids).data());
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(ids.size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
