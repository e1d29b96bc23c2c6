// Writes the files the reliability tests feed to the programs: `make_inputs bad DIR` writes the
// bad inputs (and the valid ones they are cut from), `make_inputs seeds DIR` the seed corpora of
// the fuzz targets (DIR/<target>/seed*), which are committed under fuzz/corpus.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "bad_inputs.hpp"

namespace fs = std::filesystem;
using namespace lightgpt;
using namespace lightgpt::testing;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<std::uint16_t> some_tokens(std::size_t count, int vocab) {
  std::vector<std::uint16_t> tokens(count);
  for (std::size_t i = 0; i < count; ++i) tokens[i] = std::uint16_t((i * 7919 + i / 3) % vocab);
  return tokens;
}

// A dense model of the GPT-2 vocabulary small enough to load in a blink.
ModelConfig small_gpt2_config() {
  ModelConfig config;
  config.max_seq_len = 32;
  config.n_layer = 1;
  config.n_head = 2;
  config.d_model = 16;
  return config;
}

void write_bad(const fs::path& dir) {
  fs::create_directories(dir);
  write_text(dir / "a_file", "not a directory\n");
  const auto tokens = some_tokens(4000, 50257);
  write_shard(dir / "good.bin", std::span<const std::uint16_t>(tokens));
  std::vector<char> shard = read_bytes(dir / "good.bin");
  patch(shard, 0, std::int32_t(12345));
  write_bytes(dir / "bad_magic.bin", shard);

  {
    DenseFp32 model(small_gpt2_config(), 1);
    save_checkpoint(dir / "small.ckpt", model, 0);
    // Finite but huge parameters: the forward overflows and every log-probability is NaN.
    for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
      std::vector<float> values(tensor.numel, 1e30f);
      model.parameters().write(tensor, values.data());
    }
    save_checkpoint(dir / "huge_values.ckpt", model, 0);
  }
  Sections sections = split_checkpoint(read_bytes(dir / "small.ckpt"));
  Sections wrapping = sections;
  section(wrapping, "config") = wrapping_config();
  write_checkpoint(dir / "wrapping.ckpt", wrapping);
  Sections deep = sections;
  section(deep, "config") =
      "vocab_size=50257\nmax_seq_len=32\nn_layer=100000\nn_head=2\nd_model=16\n";
  write_checkpoint(dir / "layers_1e5.ckpt", deep);
  Sections hollow = sections;
  section(hollow, "config") =
      "vocab_size=50257\nmax_seq_len=1024\nn_layer=1000\nn_head=16\nd_model=1024\n";
  write_checkpoint(dir / "hollow.ckpt", hollow);
  Sections nan = sections;
  patch(section(nan, "parameters"), first_tensor_dims(section(nan, "parameters"), 0) + 4 + 16 + 1,
        std::numeric_limits<float>::quiet_NaN());
  write_checkpoint(dir / "nan.ckpt", nan);
  Sections foreign = sections;
  section(foreign, "composition") = "head=dense<mtp=4> mixer=retention";
  write_checkpoint(dir / "foreign.ckpt", foreign);

  write_bytes(dir / "wrapping.llmc", wrapping_llmc_header());
  {
    DenseFp32 model(tiny_config(), 1);
    save_llmc(dir / "good.llmc", model);
  }
  std::vector<char> bigram(64, 0);
  std::memcpy(bigram.data(), "LGBIGRAM", 8);
  write_bytes(dir / "bad.bigram", bigram);

#if defined(LIGHTGPT_VOCAB_BPE)
  const std::vector<char> merges = read_bytes(LIGHTGPT_VOCAB_BPE);
  std::string text(merges.begin(), merges.end());
  write_text(dir / "half.bpe", text.substr(0, text.find('\n', text.size() / 2) + 1));
  write_text(dir / "empty.bpe", "");
  const std::vector<char> json = read_bytes(LIGHTGPT_ENCODER_JSON);
  write_bytes(dir / "bad.json", {json.begin(), json.begin() + json.size() / 3});
#endif
  write_text(dir / "invalid_utf8.txt", "caf\xc3 au lait\n");
  write_text(dir / "ids_out_of_range.txt", "15496 99999 0\n");
  write_text(dir / "ids_not_numbers.txt", "15496 abc\n");
  fs::create_directories(dir / "garbage-run");
  write_text(dir / "garbage-run" / "metrics.jsonl", "{\"step\": 1, \"val_loss\": [oops\n");
}

void write_seeds(const fs::path& dir) {
  for (const char* target : {"shard", "checkpoint", "llmc", "bigram", "codebook", "bpe"}) {
    fs::create_directories(dir / target);
  }
  const auto tokens = some_tokens(300, 23);
  write_shard(dir / "shard" / "seed", std::span<const std::uint16_t>(tokens));
  const Sections sections = split_checkpoint(good_checkpoint(dir / "checkpoint"));
  fs::rename(dir / "checkpoint" / "good.ckpt", dir / "checkpoint" / "seed");
  // The inputs that crashed the readers before they were fixed.
  Sections wrapping = sections;
  section(wrapping, "config") = wrapping_config();
  write_checkpoint(dir / "checkpoint" / "crash_wrapping_config", wrapping);
  Sections dims = sections;
  patch(section(dims, "adamw"), first_tensor_dims(section(dims, "adamw"), 8),
        std::uint32_t(0xffffffff));
  write_checkpoint(dir / "checkpoint" / "crash_adamw_dims", dims);
  write_bytes(dir / "llmc" / "crash_wrapping_header", wrapping_llmc_header());
  DenseFp32 model(tiny_config(), 1);
  save_llmc(dir / "llmc" / "seed", model);
  save_llmc(dir / "llmc" / "seed_bf16", model, LlmcVersion::bf16);
  BigramCounter counter(23);
  counter.add(std::span<const std::uint16_t>(tokens));
  counter.top_k(4).save(dir / "bigram" / "seed");
  write_text(dir / "codebook" / "seed", LightRnnCodebook::random(23, 5, 1).serialize());
  write_text(dir / "codebook" / "seed_sparse", LightRnnCodebook::random(40, 12, 2).serialize());
  std::string rows = LightRnnCodebook::random(64, 8, 3).serialize();
  patch(rows, 16, std::uint32_t(1) << 15);  // R² = 2^30 cells for 64 tokens
  patch(rows, rows.size() - 4, detail::crc32_update(0, rows.data(), rows.size() - 4));
  write_text(dir / "codebook" / "crash_rows", rows);
  write_text(dir / "bpe" / "seed", "Hello world! It's 2024 — naïve café, <|endoftext|> 🙂\n");
}

}  // namespace

// A copy of a training checkpoint whose 'step' section says 7 steps more than its 'trainer'
// section, every checksum valid: only the cross-check between sections can catch it.
void corrupt_step(const fs::path& from, const fs::path& to) {
  Sections sections = split_checkpoint(read_bytes(from));
  std::string& step = section(sections, "step");
  std::uint64_t value = 0;
  LIGHTGPT_CHECK(step.size() == sizeof(value), from.string(), ": section 'step' is not one value");
  std::memcpy(&value, step.data(), sizeof(value));
  patch(step, 0, value + 7);
  write_checkpoint(to, sections);
}

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    LIGHTGPT_CHECK((argc == 3 && (mode == "bad" || mode == "seeds")) ||
                       (argc == 4 && mode == "corrupt-step"),
                   "usage: make_inputs bad|seeds DIR, or make_inputs corrupt-step IN OUT");
    if (mode == "bad") {
      write_bad(argv[2]);
    } else if (mode == "seeds") {
      write_seeds(argv[2]);
    } else {
      corrupt_step(argv[2], argv[3]);
    }
  } catch (...) {
    return report_exception("make_inputs");
  }
  return 0;
}
