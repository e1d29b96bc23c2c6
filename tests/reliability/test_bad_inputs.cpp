// The bad-input table: every file kind lightgpt reads (token shards, checkpoints, llm.c files,
// bigram tables, LightRNN codebooks, tokenizer assets, model configs), each corrupted one way.
// Every case must end in a lightgpt::Error whose message names the file and the field at fault;
// a crash, a hang or a silent success fails the test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "bad_inputs.hpp"

#if defined(LIGHTGPT_ENCODER_JSON)
#include <lightgpt/data/bpe.hpp>
#endif

namespace lightgpt::testing {
namespace bad_inputs_tests {
namespace {

namespace fs = std::filesystem;

// Valid files written once per test program; each case corrupts a copy.
struct Good {
  TempDir dir;
  std::vector<char> shard, checkpoint, llmc, bigram, codebook;
  Good() {
    std::vector<std::uint16_t> tokens(300);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = std::uint16_t(i * 37 % 23);
    write_shard(dir / "good.bin", std::span<const std::uint16_t>(tokens));
    shard = read_bytes(dir / "good.bin");
    checkpoint = good_checkpoint(dir.path());
    DenseFp32 model(tiny_config(), 3);
    save_llmc(dir / "good.llmc", model);
    llmc = read_bytes(dir / "good.llmc");
    BigramCounter counter(23);
    counter.add(std::span<const std::uint16_t>(tokens));
    counter.top_k(4).save(dir / "good.bigram");
    bigram = read_bytes(dir / "good.bigram");
    const std::string book = LightRnnCodebook::random(23, 5, 1).serialize();
    codebook.assign(book.begin(), book.end());
  }
};

const Good& good() {
  static const Good files;
  return files;
}

struct Case {
  std::string name;
  // Writes the bad file(s) into `dir` and reads them; must throw lightgpt::Error.
  std::function<void(const fs::path& dir)> run;
  std::vector<std::string> needles;  // all must appear in the message
};

std::vector<char> with_crc_fixed_bigram(std::vector<char> bytes) {
  const std::uint32_t crc = detail::crc32_update(0, bytes.data() + 40, bytes.size() - 40);
  patch(bytes, 20, crc);
  return bytes;
}
std::vector<char> with_crc_fixed_codebook(std::vector<char> bytes) {
  patch(bytes, bytes.size() - 4, detail::crc32_update(0, bytes.data(), bytes.size() - 4));
  return bytes;
}

// --- readers --------------------------------------------------------------------------------

void read_shard(const fs::path& path) { Shard shard(path, 23); }

void read_checkpoint(const fs::path& path) {
  DenseFp32 model(tiny_config(), 1);
  AdamW<Cpu, float> optimizer(model.parameters().layout());
  load_checkpoint(path, model, optimizer);
}

void read_llmc(const fs::path& path) {
  const ModelConfig config = read_llmc_config(path);
  DenseFp32 model(tiny_config(), 1);
  LIGHTGPT_CHECK(config == tiny_config(), "unexpected config");
  load_llmc(path, model);
}

void read_bigram(const fs::path& path) { BigramTable::load(path, 23, 4); }

void read_codebook(const fs::path& path) { LightRnnCodebook::load(path, 23, 5); }

// --- case builders ----------------------------------------------------------------------------

Case shard_case(std::string name, std::function<void(std::vector<char>&)> mutate,
                std::vector<std::string> needles) {
  return {"shard_" + name,
          [mutate](const fs::path& dir) {
            std::vector<char> bytes = good().shard;
            mutate(bytes);
            write_bytes(dir / "bad.bin", bytes);
            read_shard(dir / "bad.bin");
          },
          needles};
}

// A checkpoint whose sections are rewritten (checksums recomputed).
Case section_case(std::string name, std::function<void(Sections&)> mutate,
                  std::vector<std::string> needles) {
  return {"checkpoint_" + name,
          [mutate](const fs::path& dir) {
            Sections sections = split_checkpoint(good().checkpoint);
            mutate(sections);
            write_checkpoint(dir / "bad.ckpt", sections);
            read_checkpoint(dir / "bad.ckpt");
          },
          needles};
}

// A checkpoint corrupted at the container level (raw bytes).
Case container_case(std::string name, std::function<void(std::vector<char>&)> mutate,
                    std::vector<std::string> needles) {
  return {"checkpoint_" + name,
          [mutate](const fs::path& dir) {
            std::vector<char> bytes = good().checkpoint;
            mutate(bytes);
            write_bytes(dir / "bad.ckpt", bytes);
            read_checkpoint(dir / "bad.ckpt");
          },
          needles};
}

Case llmc_case(std::string name, std::function<void(std::vector<char>&)> mutate,
               std::vector<std::string> needles) {
  return {"llmc_" + name,
          [mutate](const fs::path& dir) {
            std::vector<char> bytes = good().llmc;
            mutate(bytes);
            write_bytes(dir / "bad.llmc", bytes);
            read_llmc(dir / "bad.llmc");
          },
          needles};
}

Case bigram_case(std::string name, std::function<void(std::vector<char>&)> mutate,
                 std::vector<std::string> needles, int vocab = 23, int k = 4) {
  return {"bigram_" + name,
          [mutate, vocab, k](const fs::path& dir) {
            std::vector<char> bytes = good().bigram;
            mutate(bytes);
            write_bytes(dir / "bad.bigram", bytes);
            BigramTable::load(dir / "bad.bigram", vocab, k);
          },
          needles};
}

Case codebook_case(std::string name, std::function<void(std::vector<char>&)> mutate,
                   std::vector<std::string> needles, int vocab = 23, int rows = 5) {
  return {"codebook_" + name,
          [mutate, vocab, rows](const fs::path& dir) {
            std::vector<char> bytes = good().codebook;
            mutate(bytes);
            write_bytes(dir / "bad.codebook", bytes);
            LightRnnCodebook::load(dir / "bad.codebook", vocab, rows);
          },
          needles};
}

Case config_case(std::string name, std::function<void(ModelConfig&)> mutate,
                 std::vector<std::string> needles) {
  return {"config_" + name,
          [mutate](const fs::path&) {
            ModelConfig config = tiny_config();
            mutate(config);
            detail::configure_parts<LightRnnHead<>, AfnoMixer<1>>(config, "the test's model");
          },
          needles};
}

// Byte offsets inside the parameters and adamw payloads.
std::size_t parameters_dims(Sections& s) { return first_tensor_dims(section(s, "parameters"), 0); }
std::size_t adamw_dims(Sections& s) { return first_tensor_dims(section(s, "adamw"), 8); }

std::vector<Case> cases() {
  std::vector<Case> all;
  auto add = [&all](Case c) { all.push_back(std::move(c)); };
  const char* bin = "bad.bin";
  const char* ckpt = "bad.ckpt";

  // Token shards.
  add(shard_case("empty", [](auto& b) { b.clear(); }, {bin, "empty"}));
  add(shard_case("short_header", [](auto& b) { b.resize(100); }, {bin, "1024-byte header"}));
  add(shard_case("magic", [](auto& b) { patch(b, 0, std::int32_t(7)); }, {bin, "magic 7"}));
  add(shard_case("version", [](auto& b) { patch(b, 4, std::int32_t(2)); }, {bin, "version 2"}));
  add(shard_case("negative_count", [](auto& b) { patch(b, 8, std::int32_t(-5)); },
                 {bin, "negative token count"}));
  add(shard_case("count_past_end", [](auto& b) { patch(b, 8, std::int32_t(1 << 30)); },
                 {bin, "header says"}));
  add(shard_case("truncated", [](auto& b) { b.resize(b.size() - 2); }, {bin, "header says"}));
  add(shard_case("odd_length", [](auto& b) { b.push_back(0); }, {bin, "header says"}));
  add(shard_case("token_outside_vocab", [](auto& b) { patch(b, 1024 + 10, std::uint16_t(999)); },
                 {bin, "token 999", "position 5"}));

  // Checkpoint container.
  add(container_case("empty", [](auto& b) { b.clear(); }, {ckpt, "truncated", "magic"}));
  add(container_case("magic", [](auto& b) { b[0] = 'X'; }, {ckpt, "bad magic"}));
  add(container_case("version", [](auto& b) { patch(b, 8, std::uint32_t(9)); },
                     {ckpt, "version 9"}));
  add(container_case("section_count", [](auto& b) { patch(b, 12, std::uint32_t(0xffffffff)); },
                     {ckpt, "truncated"}));
  add(container_case("name_length", [](auto& b) { patch(b, 16, std::uint32_t(0x7fffffff)); },
                     {ckpt, "name length"}));
  add(container_case("section_length", [](auto& b) {
        patch(b, 16 + 4 + 6, std::uint64_t(1) << 62);  // "config" is the first section
      }, {ckpt, "section 'config' needs"}));
  add(container_case("trailing", [](auto& b) { b.push_back(1); }, {ckpt, "trailing"}));
  add(container_case("truncated", [](auto& b) { b.resize(b.size() - 9); }, {ckpt, "truncated"}));
  add(container_case("checksum", [](auto& b) { b[b.size() - 3] ^= 0x10; },
                     {ckpt, "section 'step'", "checksum"}));
  add({"checkpoint_is_a_directory", [](const fs::path& dir) {
         fs::create_directories(dir / "dir.ckpt");
         read_checkpoint(dir / "dir.ckpt");
       }, {"dir.ckpt", "not a regular file"}});

  // Checkpoint sections (checksums valid).
  add(section_case("config_wraps_sizes", [](Sections& s) {
        section(s, "config") = wrapping_config();
      }, {ckpt, "max_seq_len"}));
  add(section_case("config_1e5_layers", [](Sections& s) {
        std::string& text = section(s, "config");
        text.replace(text.find("n_layer=2"), 9, "n_layer=100000");
      }, {ckpt, "n_layer", "100000"}));
  add(section_case("config_int_overflow", [](Sections& s) {
        std::string& text = section(s, "config");
        text.replace(text.find("n_layer=2"), 9, "n_layer=99999999999");
      }, {ckpt, "n_layer", "not an integer"}));
  add(section_case("config_other_model", [](Sections& s) {
        std::string& text = section(s, "config");
        text.replace(text.find("n_layer=2"), 9, "n_layer=3");
      }, {ckpt, "was written for the config"}));
  add(section_case("composition", [](Sections& s) {
        section(s, "composition") = "head=lightrnn<mtp=1> mixer=attention";
      }, {ckpt, "composition", "lightrnn"}));
  add(section_case("tensor_count", [](Sections& s) {
        patch(section(s, "parameters"), 0, std::uint32_t(1000));
      }, {ckpt, "section 'parameters'", "1000 tensors"}));
  add(section_case("tensor_name", [](Sections& s) {
        section(s, "parameters")[12] = 'X';  // "wte" -> "Xte"
      }, {ckpt, "section 'parameters'", "'Xte'", "'wte'"}));
  add(section_case("parameter_dims", [](Sections& s) {
        patch(section(s, "parameters"), parameters_dims(s), std::uint32_t(0xffffffff));
      }, {ckpt, "section 'parameters'", "wte", "4294967295 dimensions"}));
  add(section_case("parameter_shape", [](Sections& s) {
        patch(section(s, "parameters"), parameters_dims(s) + 4, std::int64_t(1) << 40);
      }, {ckpt, "section 'parameters'", "wte", "shape"}));
  add(section_case("parameter_dtype", [](Sections& s) {
        patch(section(s, "parameters"), parameters_dims(s) + 4 + 16, std::uint8_t(3));
      }, {ckpt, "section 'parameters'", "element type code 3"}));
  add(section_case("parameters_truncated", [](Sections& s) {
        section(s, "parameters").resize(section(s, "parameters").size() - 10);
      }, {ckpt, "section 'parameters'", "lnfb", "truncated"}));
  add(section_case("parameter_nan", [](Sections& s) {
        patch(section(s, "parameters"), parameters_dims(s) + 4 + 16 + 1,
              std::numeric_limits<float>::quiet_NaN());
      }, {ckpt, "section 'parameters'", "wte", "nan"}));
  add(section_case("parameters_trailing", [](Sections& s) { section(s, "parameters") += "xy"; },
                   {ckpt, "section 'parameters'", "unexpected bytes"}));
  add(section_case("adamw_dims", [](Sections& s) {
        patch(section(s, "adamw"), adamw_dims(s), std::uint32_t(0xffffffff));
      }, {ckpt, "section 'adamw'", "4294967295 dimensions"}));
  add(section_case("adamw_negative_steps", [](Sections& s) {
        patch(section(s, "adamw"), 0, std::int64_t(-4));
      }, {ckpt, "section 'adamw'", "negative step count"}));
  add(section_case("adamw_moment_inf", [](Sections& s) {
        patch(section(s, "adamw"), adamw_dims(s) + 4 + 16 + 1 + 8,
              std::numeric_limits<float>::infinity());
      }, {ckpt, "section 'adamw'", "wte", "inf"}));
  add(section_case("adamw_missing", [](Sections& s) { s.erase(s.begin() + 3); },
                   {ckpt, "no section 'adamw'"}));
  add(section_case("step_short", [](Sections& s) { section(s, "step").resize(7); },
                   {ckpt, "section 'step'", "ends early"}));
  add(section_case("step_trailing", [](Sections& s) { section(s, "step") += "z"; },
                   {ckpt, "section 'step'", "unexpected bytes"}));
  add(section_case("step_missing", [](Sections& s) { s.pop_back(); },
                   {ckpt, "no section 'step'"}));

  // llm.c model files.
  const char* llmc = "bad.llmc";
  add({"llmc_header_wraps_sizes", [](const fs::path& dir) {
         write_bytes(dir / "bad.llmc", wrapping_llmc_header());
         read_llmc(dir / "bad.llmc");
       }, {llmc, "max_seq_len"}});
  add(llmc_case("magic", [](auto& b) { patch(b, 0, std::int32_t(1)); }, {llmc, "magic"}));
  add(llmc_case("version", [](auto& b) { patch(b, 4, std::int32_t(4)); }, {llmc, "version"}));
  add(llmc_case("n_layer_huge", [](auto& b) { patch(b, 16, std::int32_t(100000)); },
                {llmc, "n_layer", "100000"}));
  add(llmc_case("d_model_negative", [](auto& b) { patch(b, 24, std::int32_t(-8)); },
                {llmc, "d_model", "positive"}));
  add(llmc_case("n_head_divisor", [](auto& b) { patch(b, 20, std::int32_t(3)); },
                {llmc, "n_head", "divisible"}));
  add(llmc_case("padded_vocab", [](auto& b) { patch(b, 28, std::int32_t(1 << 30)); },
                {llmc, "padded_vocab_size"}));
  add(llmc_case("short_header", [](auto& b) { b.resize(1000); }, {llmc, "truncated", "header"}));
  add(llmc_case("truncated", [](auto& b) { b.resize(b.size() - 4); }, {llmc, "truncated"}));
  add(llmc_case("trailing", [](auto& b) { b.push_back(0); }, {llmc, "trailing"}));
  add(llmc_case("nan", [](auto& b) {
        patch(b, 1024 + 4 * 128 * 8 + 4, std::numeric_limits<float>::quiet_NaN());
      }, {llmc, "wpe", "non-finite"}));

  // Bigram tables.
  const char* bigram = "bad.bigram";
  add(bigram_case("short", [](auto& b) { b.resize(20); }, {bigram, "40-byte header"}));
  add(bigram_case("magic", [](auto& b) { b[0] = 'X'; }, {bigram, "magic"}));
  add(bigram_case("version", [](auto& b) { patch(b, 8, std::uint32_t(2)); },
                  {bigram, "version 2"}));
  add(bigram_case("zero_vocab", [](auto& b) { patch(b, 12, std::uint32_t(0)); }, {bigram, "V=0"}));
  add(bigram_case("huge_k", [](auto& b) { patch(b, 16, std::uint32_t(1u << 31)); },
                  {bigram, "K=2147483648"}));
  add(bigram_case("other_vocab", [](auto&) {}, {bigram, "vocab_size 23", "24"}, 24, 4));
  add(bigram_case("other_k", [](auto&) {}, {bigram, "K=4", "--ngram_k is 8"}, 23, 8));
  add(bigram_case("truncated", [](auto& b) { b.resize(b.size() - 8); }, {bigram, "truncated"}));
  add(bigram_case("checksum", [](auto& b) { b[b.size() - 1] ^= 1; }, {bigram, "CRC"}));
  add(bigram_case("list_too_long", [](auto& b) {
        patch(b, 40, std::uint32_t(5));
        b = with_crc_fixed_bigram(b);
      }, {bigram, "token 0", "more than K=4"}));
  add(bigram_case("successor_outside_vocab", [](auto& b) {
        patch(b, 40 + 23 * 4, std::uint32_t(1000));
        b = with_crc_fixed_bigram(b);
      }, {bigram, "successor 1000"}));
  add(bigram_case("probability_negative", [](auto& b) {
        patch(b, 40 + 23 * 4 + 4, -0.5f);
        b = with_crc_fixed_bigram(b);
      }, {bigram, "probability -0.5"}));

  // LightRNN codebooks.
  const char* book = "bad.codebook";
  add({"codebook_64_tokens_32768_rows", [](const fs::path& dir) {
         std::vector<char> bytes = good().codebook;
         patch(bytes, 12, std::uint32_t(23));
         patch(bytes, 16, std::uint32_t(32768));
         write_bytes(dir / "bad.codebook", with_crc_fixed_codebook(bytes));
         LightRnnCodebook::load(dir / "bad.codebook");
       }, {book, "rows 32768", "implausible"}});
  add(codebook_case("model_rows", [](auto& b) {
        patch(b, 16, std::uint32_t(32768));
        b = with_crc_fixed_codebook(b);
      }, {book, "32768", "this model has vocab_size 23 and 5 rows"}));
  add(codebook_case("magic", [](auto& b) { b[1] = 'X'; }, {book, "bad magic"}));
  add(codebook_case("version", [](auto& b) { patch(b, 8, std::uint32_t(3)); },
                    {book, "version 3"}));
  add(codebook_case("truncated", [](auto& b) { b.resize(b.size() - 5); }, {book, "truncated"}));
  add(codebook_case("checksum", [](auto& b) { b[22] ^= 1; }, {book, "checksum"}));
  add(codebook_case("shared_cell", [](auto& b) {
        std::memcpy(b.data() + 24, b.data() + 20, 4);
        b = with_crc_fixed_codebook(b);
      }, {book, "share cell"}));
  add(codebook_case("other_vocab", [](auto&) {}, {book, "vocab_size 30"}, 30, 6));

  // Model configs (flags and headers end up here).
  add(config_case("zero_layers", [](ModelConfig& c) { c.n_layer = 0; },
                  {"n_layer", "positive"}));
  add(config_case("too_many_layers", [](ModelConfig& c) { c.n_layer = 100000; },
                  {"n_layer", "100000", "1024"}));
  add(config_case("too_wide", [](ModelConfig& c) { c.d_model = c.n_head = 1 << 17; },
                  {"d_model", "131072"}));
  add(config_case("more_heads_than_width", [](ModelConfig& c) { c.n_head = 16; },
                  {"n_head", "16"}));
  add(config_case("too_long", [](ModelConfig& c) { c.max_seq_len = 1 << 21; },
                  {"max_seq_len", "2097152"}));
  add(config_case("huge_vocab", [](ModelConfig& c) { c.vocab_size = (1 << 30) + 1; },
                  {"vocab_size"}));
  add(config_case("too_many_rows", [](ModelConfig& c) { c.options.set("lightrnn.rows", 100000); },
                  {"lightrnn.rows", "100000", "at most"}));
  add(config_case("afno_hidden_factor",
                  [](ModelConfig& c) { c.options.set("afno.hidden_factor", 65); },
                  {"afno.hidden_factor", "65"}));
  add(config_case("unknown_option", [](ModelConfig& c) { c.options.set("afno.gates", 0); },
                  {"'afno.gates' is not a setting of", "afno.hidden_factor, afno.gate"}));
  add(config_case("option_not_a_number",
                  [](ModelConfig& c) { c.options.set("lightrnn.rows", "many"); },
                  {"lightrnn.rows", "'many' is not an integer"}));
  add(config_case("parameter_bytes", [](ModelConfig& c) {
        c.n_layer = 1024;
        c.d_model = c.n_head = 16384;
      }, {"parameters", "exceed"}));
  add(config_case("activation_bytes", [](ModelConfig& c) {
        c.max_seq_len = 1 << 20;
        c.n_head = 8;
      }, {"activations", "max_seq_len 1048576", "exceed"}));
  add(config_case("nan_threshold", [](ModelConfig& c) {
        c.options.set("afno.sparsity_threshold", std::nan(""));
      }, {"afno.sparsity_threshold"}));

#if defined(LIGHTGPT_ENCODER_JSON)
  // Tokenizer assets: a truncated or padded merge list would silently change the ids.
  auto tokenizer_case = [](std::string name, std::function<std::string(std::string)> vocab_bpe,
                           std::vector<std::string> needles) {
    return Case{"tokenizer_" + name,
                [vocab_bpe](const fs::path& dir) {
                  const std::vector<char> real = read_bytes(LIGHTGPT_VOCAB_BPE);
                  const std::string text = vocab_bpe(std::string(real.begin(), real.end()));
                  write_bytes(dir / "bad.bpe", std::vector<char>(text.begin(), text.end()));
                  Tokenizer(LIGHTGPT_ENCODER_JSON, dir / "bad.bpe");
                },
                needles};
  };
  add(tokenizer_case("half_merges",
                     [](std::string t) { return t.substr(0, t.find('\n', t.size() / 2) + 1); },
                     {"bad.bpe", "merges", "50000"}));
  add(tokenizer_case("empty_merges", [](std::string) { return std::string(); },
                     {"bad.bpe", "holds 0 merges"}));
  add(tokenizer_case("unknown_part", [](std::string t) { return t + "Ġqqqzzz Ġxxyyww\n"; },
                     {"bad.bpe", "line 50002", "encoder.json lacks"}));
  add(tokenizer_case("repeated_merge", [](std::string t) {
        const std::size_t first = t.find('\n') + 1;
        return t + t.substr(first, t.find('\n', first) + 1 - first);
      }, {"bad.bpe", "line 50002"}));
  add(tokenizer_case("no_space", [](std::string t) { return t + "abc\n"; },
                     {"bad.bpe", "line 50002", "separated by a space"}));
  add({"tokenizer_encoder_truncated", [](const fs::path& dir) {
         std::vector<char> json = read_bytes(LIGHTGPT_ENCODER_JSON);
         json.resize(json.size() / 2);
         write_bytes(dir / "bad.json", json);
         Tokenizer(dir / "bad.json", LIGHTGPT_VOCAB_BPE);
       }, {"bad.json"}});
  add({"tokenizer_encoder_empty", [](const fs::path& dir) {
         write_bytes(dir / "bad.json", {});
         Tokenizer(dir / "bad.json", LIGHTGPT_VOCAB_BPE);
       }, {"bad.json"}});
#endif
  return all;
}

void PrintTo(const Case& c, std::ostream* out) { *out << c.name; }

class BadInput : public ::testing::TestWithParam<Case> {};

TEST_P(BadInput, IsAnErrorNamingTheFileAndField) {
  const Case& c = GetParam();
  TempDir dir;
  try {
    c.run(dir.path());
    FAIL() << "accepted without an error";
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const std::string& needle : c.needles) {
      EXPECT_NE(message.find(needle), std::string::npos)
          << "'" << needle << "' not in: " << message;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Table, BadInput, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

TEST(BadInputTable, HoldsAtLeastSixtyFileCases) { EXPECT_GE(cases().size(), 60u); }

}  // namespace
}  // namespace bad_inputs_tests
}  // namespace lightgpt::testing
