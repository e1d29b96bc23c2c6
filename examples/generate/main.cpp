// generate — continue a prompt with a trained checkpoint.
//
//   generate --checkpoint runs/tiny-cpu/checkpoint.bin --prompt "The jury said" --tokens 64
//
// The checkpoint names its composition and config, so this program builds the matching model
// (on the CPU, in fp32, whatever precision and backend it was trained with), encodes the prompt
// with the GPT-2 tokenizer and samples with the model's cached decoding: each new token costs
// one position through the network, not the whole context.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <lightgpt/data/bpe.hpp>
#include <lightgpt/lightgpt.hpp>
#include <optional>
#include <string>
#include <vector>

namespace {

struct Request {
  std::string checkpoint, prompt = "The", encoder_json, vocab_bpe;
  int tokens = 64;
  lightgpt::SamplingOptions sampling;
};

template <class Model>
void generate(const Request& r, const lightgpt::ModelConfig& config) {
  std::optional<Model> built;
  lightgpt::allocating("the model of " + r.checkpoint + " (parameters and gradients)",
                       lightgpt::checked_mul(Model::num_parameters(config), 2 * sizeof(float),
                                             "model"),
                       [&] { built.emplace(config, 0); });
  Model& model = *built;
  const std::uint64_t step = lightgpt::load_checkpoint(r.checkpoint, model);
  const lightgpt::Tokenizer tokenizer(r.encoder_json, r.vocab_bpe);
  std::vector<std::int32_t> prompt;
  for (int id : tokenizer.encode(r.prompt)) prompt.push_back(id);
  LIGHTGPT_CHECK(!prompt.empty(), "--prompt must not be empty");
  std::fprintf(stderr, "%s: %s, step %llu, %zu parameters\n", r.checkpoint.c_str(),
               Model::composition().c_str(), static_cast<unsigned long long>(step),
               model.num_parameters());
  std::printf("%s", r.prompt.c_str());
  std::vector<std::int32_t> generated;
  std::size_t printed = 0;
  model.generate(prompt, r.tokens, r.sampling, [&](std::int32_t id) {
    generated.push_back(id);
    // Byte-level BPE may split a UTF-8 character over tokens: print only complete text.
    const std::string text = tokenizer.decode(std::span<const std::int32_t>(generated));
    std::size_t end = text.size();
    while (end > printed && (static_cast<unsigned char>(text[end - 1]) & 0xC0) == 0x80) --end;
    if (end > printed && static_cast<unsigned char>(text[end - 1]) >= 0xC0) --end;
    std::fwrite(text.data() + printed, 1, end - printed, stdout);
    std::fflush(stdout);
    printed = end;
    return true;
  });
  const std::string text = tokenizer.decode(std::span<const std::int32_t>(generated));
  std::printf("%s\n", text.substr(printed).c_str());
}

struct Composition {
  const char* name;  // GPT::composition() of the checkpoint
  void (*run)(const Request&, const lightgpt::ModelConfig&);
};

const Composition kCompositions[] = {
    {"head=dense<mtp=1> mixer=attention",
     generate<lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention,
                            lightgpt::Cpu>>},
    {"head=lightrnn<mtp=1> mixer=attention",
     generate<lightgpt::GPT<lightgpt::Fp32, lightgpt::LightRnnHead<>, lightgpt::Attention,
                            lightgpt::Cpu>>},
    {"head=lightrnn<mtp=2> mixer=attention",
     generate<lightgpt::GPT<lightgpt::Fp32, lightgpt::LightRnnHead<lightgpt::MTP<2>>,
                            lightgpt::Attention, lightgpt::Cpu>>},
    {"head=lightrnn<mtp=1> mixer=afno<8>",
     generate<lightgpt::GPT<lightgpt::Fp32, lightgpt::LightRnnHead<>, lightgpt::AfnoMixer<8>,
                            lightgpt::Cpu>>},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Continue a prompt with a trained checkpoint (CPU)"};
  Request r;
#ifdef LIGHTGPT_ENCODER_JSON
  r.encoder_json = LIGHTGPT_ENCODER_JSON;
  r.vocab_bpe = LIGHTGPT_VOCAB_BPE;
#endif
  app.add_option("--checkpoint", r.checkpoint, "Checkpoint written by train")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--prompt", r.prompt, "Text to continue")->capture_default_str();
  app.add_option("--tokens", r.tokens, "Tokens to generate")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--temperature", r.sampling.temperature, "Sampling temperature (0: greedy)")
      ->capture_default_str();
  app.add_option("--top_k", r.sampling.top_k, "Sample among the k most likely tokens (0: all)")
      ->capture_default_str();
  app.add_option("--seed", r.sampling.seed, "Sampling seed")->capture_default_str();
  auto* encoder = app.add_option("--encoder-json", r.encoder_json, "GPT-2 encoder.json")
                      ->check(CLI::ExistingFile);
  auto* vocab = app.add_option("--vocab-bpe", r.vocab_bpe, "GPT-2 vocab.bpe")
                    ->check(CLI::ExistingFile);
  if (r.encoder_json.empty()) {
    encoder->required();
    vocab->required();
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help exits 0 with CLI11's text; a bad flag is one line and exit code 1.
    return error.get_exit_code() == 0 ? app.exit(error)
                                      : lightgpt::report_exception("generate");
  }
  try {
    r.sampling.validate();
    const lightgpt::CheckpointReader in(r.checkpoint);
    const std::string source = "checkpoint '" + r.checkpoint + "'";
    const lightgpt::ModelConfig config = lightgpt::read_checkpoint_config(in);
    const std::string composition(in.section("composition").rest());
    std::string known;
    for (const Composition& c : kCompositions) {
      if (composition == c.name) {
        c.run(r, config);
        return 0;
      }
      known += std::string(known.empty() ? "" : ", ") + "'" + c.name + "'";
    }
    throw lightgpt::Error(lightgpt::detail::concat(source, " holds the composition '",
                                                   composition, "'; this program knows ", known));
  } catch (...) {
    return lightgpt::report_exception("generate");
  }
}
