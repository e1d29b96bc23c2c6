// tokenize: GPT-2 token ids of a text, or the text of ids. The whole of standard input (or of
// each file argument) is one text, newlines included; its ids are printed on one line.
//   echo -n "Hello world!" | tokenize            -> 15496 995 0
//   echo 15496 995 0 | tokenize --decode          -> Hello world!
#include <CLI/CLI.hpp>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <lightgpt/data/bpe.hpp>

namespace {

std::string read_all(const std::string& file) {
  if (file.empty()) {
    std::ostringstream buffer;
    buffer << std::cin.rdbuf();
    return std::move(buffer).str();
  }
  return lightgpt::detail::read_text_file(file);
}

void print_ids(const std::vector<int>& ids) {
  std::string line;
  line.reserve(ids.size() * 6 + 1);
  char buf[16];
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) line += ' ';
    const auto end = std::to_chars(buf, buf + sizeof buf, ids[i]).ptr;
    line.append(buf, end);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
}

std::vector<int> parse_ids(const std::string& text, const std::string& source) {
  std::vector<int> ids;
  const char* p = text.data();
  const char* end = p + text.size();
  while (true) {
    while (p < end && std::isspace(static_cast<unsigned char>(*p))) ++p;
    if (p == end) break;
    const char* word_end = p;
    while (word_end < end && !std::isspace(static_cast<unsigned char>(*word_end))) ++word_end;
    int id = 0;
    const auto [next, ec] = std::from_chars(p, end, id);
    LIGHTGPT_CHECK(ec == std::errc() && next == word_end, source, ": expected a token id at byte ",
                   p - text.data(), ", found '", std::string(p, word_end), "'");
    ids.push_back(id);
    p = next;
  }
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Encode text into GPT-2 token ids (one line of space-separated ids per input), "
      "or decode ids back into text."};
  bool decode = false;
  bool allow_endoftext = false;
  std::vector<std::string> files;
#ifdef LIGHTGPT_ENCODER_JSON
  std::string encoder_json = LIGHTGPT_ENCODER_JSON, vocab_bpe = LIGHTGPT_VOCAB_BPE;
#else
  std::string encoder_json, vocab_bpe;
#endif
  app.add_flag("-d,--decode", decode, "Read token ids and print the text they stand for");
  app.add_flag("--allow-endoftext", allow_endoftext,
               "Encode the literal text <|endoftext|> as the special token 50256");
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
  app.add_option("files", files, "Input files (default: standard input)")->check(CLI::ExistingFile);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help exits 0 with CLI11's text; a bad flag is one line and exit code 1.
    return error.get_exit_code() == 0 ? app.exit(error)
                                      : lightgpt::report_exception("tokenize");
  }

  try {
    const lightgpt::Tokenizer tokenizer(encoder_json, vocab_bpe);
    if (files.empty()) files.emplace_back();
    for (const auto& file : files) {
      const std::string source = file.empty() ? std::string("<stdin>") : file;
      const std::string text = read_all(file);
      if (decode) {
        const std::string out = tokenizer.decode(parse_ids(text, source));
        std::fwrite(out.data(), 1, out.size(), stdout);
      } else {
        try {
          print_ids(tokenizer.encode_parallel(text, {.allow_endoftext = allow_endoftext}));
        } catch (const lightgpt::Error& e) {
          throw lightgpt::Error(source + ": " + std::string(lightgpt::detail::error_detail(e)));
        }
      }
    }
  } catch (...) {
    std::fflush(stdout);
    return lightgpt::report_exception("tokenize");
  }
  return 0;
}
