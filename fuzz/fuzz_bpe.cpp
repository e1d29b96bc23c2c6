// Fuzzes the tokenizer on arbitrary bytes: invalid UTF-8 must raise lightgpt::Error at the
// offset find_invalid_utf8 reports, valid text must encode to in-vocabulary ids that decode back
// to the input, with and without the <|endoftext|> option.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <lightgpt/data/bpe.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lightgpt::Tokenizer tok(LIGHTGPT_ENCODER_JSON, LIGHTGPT_VOCAB_BPE);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t bad = lightgpt::find_invalid_utf8(text);
  for (bool eot : {false, true}) {
    try {
      const auto ids = tok.encode(text, {.allow_endoftext = eot});
      if (bad != std::string_view::npos) std::abort();
      for (int id : ids)
        if (id < 0 || id >= tok.vocab_size() || (!eot && id == tok.eot_id())) std::abort();
      if (tok.decode(ids) != text) std::abort();
    } catch (const lightgpt::Error& e) {
      const std::string expected = "byte offset " + std::to_string(bad);
      if (bad == std::string_view::npos ||
          std::string(e.what()).find(expected) == std::string::npos)
        std::abort();
    }
  }
  return 0;
}
