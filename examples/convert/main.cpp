// convert — moves a dense GPT-2 between llm.c model files and lightgpt checkpoints.
//
//   convert --to-lightgpt gpt2_124M.bin gpt2_124M.ckpt
//   convert --to-llmc model.ckpt model.bin [--bf16]
//
// The model is built from the input's own config (the llm.c header, or the checkpoint's "config"
// section), loaded with every check the library makes, and written atomically; the input file is
// never modified. Only the dense composition (DenseHead<>, Attention) has an llm.c equivalent.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include <lightgpt/lightgpt.hpp>

using Model = lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention,
                            lightgpt::Cpu>;

namespace {

void describe(const char* what, const std::filesystem::path& path,
              const lightgpt::ModelConfig& config, const Model& model) {
  std::fprintf(stderr,
               "%s %s: vocab_size=%d max_seq_len=%d n_layer=%d n_head=%d d_model=%d "
               "(%zu parameters)\n",
               what, path.string().c_str(), config.vocab_size, config.max_seq_len,
               config.n_layer, config.n_head, config.d_model, model.num_parameters());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Convert a dense GPT-2 between llm.c model files and lightgpt checkpoints"};
  bool to_lightgpt = false, to_llmc = false, bf16 = false;
  std::string input, output;
  CLI::Option_group* direction = app.add_option_group("direction", "Conversion direction");
  CLI::Option* to_llmc_flag =
      direction->add_flag("--to-llmc", to_llmc, "Input is a lightgpt checkpoint, output llm.c");
  direction->add_flag("--to-lightgpt", to_lightgpt,
                      "Input is an llm.c model file, output a lightgpt checkpoint");
  direction->require_option(1);
  app.add_flag("--bf16", bf16, "Write llm.c version 5 (bf16) instead of 3 (fp32)")
      ->needs(to_llmc_flag);
  app.add_option("input", input, "File to read")->required()->check(CLI::ExistingFile);
  app.add_option("output", output, "File to write (replaced atomically)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help exits 0 with CLI11's text; a bad flag is one line and exit code 1.
    return error.get_exit_code() == 0 ? app.exit(error)
                                      : lightgpt::report_exception("convert");
  }

  try {
    // The model is built from the input's config, which the readers have checked against the
    // file's length; running out of memory still names what needed how much.
    std::optional<Model> built;
    auto build = [&](const lightgpt::ModelConfig& config) -> Model& {
      lightgpt::allocating("the model of '" + input + "' (parameters and gradients)",
                           lightgpt::checked_mul(Model::num_parameters(config), 2 * sizeof(float),
                                                 "model"),
                           [&] { built.emplace(config, 0); });
      return *built;
    };
    if (to_lightgpt) {
      const lightgpt::ModelConfig config = lightgpt::read_llmc_config(input);
      Model& model = build(config);
      lightgpt::load_llmc(input, model);
      describe("read llm.c file", input, config, model);
      lightgpt::save_checkpoint(output, model, 0);
      std::fprintf(stderr, "wrote lightgpt checkpoint %s\n", output.c_str());
    } else {
      const lightgpt::ModelConfig config =
          lightgpt::read_checkpoint_config(lightgpt::CheckpointReader(input));
      Model& model = build(config);
      lightgpt::load_checkpoint(input, model);
      describe("read lightgpt checkpoint", input, config, model);
      const auto version = bf16 ? lightgpt::LlmcVersion::bf16 : lightgpt::LlmcVersion::fp32;
      lightgpt::save_llmc(output, model, version);
      std::fprintf(stderr, "wrote llm.c file %s (version %d, %s)\n", output.c_str(),
                   static_cast<int>(version), bf16 ? "bf16" : "fp32");
    }
  } catch (...) {
    return lightgpt::report_exception("convert");
  }
  return 0;
}
