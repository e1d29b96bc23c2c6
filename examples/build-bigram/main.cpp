// build-bigram — the CoCoNT n-gram table: for each token, its K most frequent successors in the
// training shards with P(b | a) renormalised over them (loss/bigram.hpp documents the file).
//
//   build-bigram --train_data 'data/brown/brown_train_*.bin' --out data/brown/bigram_top16.bin
//
// Counts are exact; memory grows with the number of distinct bigrams, not with V².
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <lightgpt/data/loader.hpp>
#include <lightgpt/data/shard.hpp>
#include <lightgpt/loss/bigram.hpp>
#include <lightgpt/train/metrics.hpp>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  CLI::App app{"Build the bigram top-K table that CoCoNT smoothing reads (--ngram_path)"};
  std::vector<std::string> patterns;
  std::string out;
  int k = 16, vocab_size = 50257;
  bool force = false;
  app.add_option("--train_data", patterns, "Training shards (paths or globs, in stream order)")
      ->required();
  app.add_option("-o,--out", out, "Table file to write")->required();
  app.add_option("--ngram_k", k, "Successors kept per token")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--vocab_size", vocab_size, "Vocabulary size V (the model's)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app.add_flag("-f,--force", force, "Replace an existing table");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help exits 0 with CLI11's text; a bad flag is one line and exit code 1.
    return error.get_exit_code() == 0 ? app.exit(error)
                                      : lightgpt::report_exception("build-bigram");
  }
  try {
    LIGHTGPT_CHECK(force || !std::filesystem::exists(out), "'", out,
                   "' exists; pass --force to replace it");
    std::vector<std::filesystem::path> files;
    for (const std::string& pattern : patterns) {
      for (auto& file : lightgpt::expand_shard_pattern(pattern)) files.push_back(file);
    }
    const auto start = std::chrono::steady_clock::now();
    lightgpt::BigramCounter counter(vocab_size);
    constexpr std::size_t kChunk = std::size_t(1) << 26;
    for (std::size_t i = 0; i < files.size(); ++i) {
      const lightgpt::Shard shard(files[i], vocab_size);
      const auto tokens = shard.tokens();
      for (std::size_t at = 0; at < tokens.size(); at += kChunk) {
        counter.add(tokens.subspan(at, std::min(kChunk, tokens.size() - at)));
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("[%zu/%zu] %s: %.1f M tokens counted, %.2f M distinct bigrams, table %.0f MB, "
                    "%.0f s\n",
                    i + 1, files.size(), files[i].filename().c_str(), counter.tokens() / 1e6,
                    counter.distinct() / 1e6, counter.memory_bytes() / 1e6, seconds);
        std::fflush(stdout);
      }
    }
    const lightgpt::BigramTable table = counter.top_k(k);
    table.save(out);
    std::size_t empty = 0;
    for (int a = 0; a < vocab_size; ++a) empty += table.successors(a).empty();
    std::printf("wrote %s: V = %d, K = %d, %zu tokens without successors; peak memory %.0f MB\n",
                out.c_str(), vocab_size, k, empty, lightgpt::peak_host_memory_mb());
  } catch (...) {
    return lightgpt::report_exception("build-bigram");
  }
  return 0;
}
