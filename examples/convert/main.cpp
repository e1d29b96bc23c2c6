// convert — moves a dense GPT-2 between lightgpt checkpoints, llm.c model files and Hugging Face
// safetensors files, in any direction.
//
//   convert --to-lightgpt gpt2_124M.bin gpt2_124M.ckpt                  # llm.c → checkpoint
//   convert --to-llmc model.ckpt model.bin [--bf16]                     # checkpoint → llm.c
//   convert --to-safetensors model.ckpt hf/model.safetensors [--bf16]   # + hf/config.json
//   convert --to-lightgpt --from safetensors hf/model.safetensors gpt2.ckpt
//
// --from names the input's format; by default it is an llm.c file for --to-lightgpt and a lightgpt
// checkpoint otherwise. The model is built from the input's own config (the llm.c header, the
// checkpoint's "config" section, the safetensors metadata or the config.json beside it), loaded
// with every check the library makes, and written atomically; the input is never modified. Only
// the dense composition (DenseHead<>, Attention) is GPT-2; other compositions write safetensors
// through lightgpt::save_safetensors in their own programs.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <lightgpt/io/safetensors.hpp>
#include <lightgpt/lightgpt.hpp>
#include <map>
#include <optional>
#include <string>

using Model =
    lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention, lightgpt::Cpu>;

namespace {

enum class Format { lightgpt, llmc, safetensors };

const char* format_name(Format format) {
  switch (format) {
    case Format::llmc:
      return "llm.c file";
    case Format::safetensors:
      return "safetensors file";
    case Format::lightgpt:
      break;
  }
  return "lightgpt checkpoint";
}

void describe(const char* what, const std::filesystem::path& path,
              const lightgpt::ModelConfig& config, const Model& model) {
  std::fprintf(stderr,
               "%s %s: vocab_size=%d max_seq_len=%d n_layer=%d n_head=%d d_model=%d "
               "(%zu parameters)\n",
               what, path.string().c_str(), config.vocab_size, config.max_seq_len, config.n_layer,
               config.n_head, config.d_model, model.num_parameters());
}

// transformers' config.json beside the safetensors file, written atomically like the file.
void write_hf_config(const std::filesystem::path& safetensors,
                     const lightgpt::ModelConfig& config) {
  const std::filesystem::path path = safetensors.parent_path() / "config.json";
  const std::filesystem::path temp = path.string() + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << lightgpt::gpt2_hf_config_json(config);
    LIGHTGPT_CHECK(out.good(), "cannot write '", temp.string(), "'");
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  LIGHTGPT_CHECK(!error, "cannot rename '", temp.string(), "' to '", path.string(),
                 "': ", error.message());
  std::fprintf(stderr, "wrote %s (transformers' GPT2LMHeadModel config)\n", path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Convert a dense GPT-2 between lightgpt checkpoints, llm.c model files and "
      "Hugging Face safetensors"};
  bool to_lightgpt = false, to_llmc = false, to_safetensors = false, bf16 = false, f16 = false,
       no_hf_config = false;
  std::string input, output;
  std::string from;
  const std::map<std::string, Format> formats = {
      {"lightgpt", Format::lightgpt}, {"llmc", Format::llmc}, {"safetensors", Format::safetensors}};
  CLI::Option_group* direction = app.add_option_group("direction", "Output format");
  direction->add_flag("--to-llmc", to_llmc, "Write an llm.c model file");
  direction->add_flag("--to-lightgpt", to_lightgpt, "Write a lightgpt checkpoint (step 0)");
  CLI::Option* to_safetensors_flag = direction->add_flag(
      "--to-safetensors", to_safetensors,
      "Write a safetensors file with transformers' GPT-2 names, and config.json beside it");
  direction->require_option(1);
  app.add_option("--from", from,
                 "Input format: lightgpt, llmc or safetensors (default: llmc for --to-lightgpt, "
                 "lightgpt otherwise)")
      ->check(CLI::IsMember({"lightgpt", "llmc", "safetensors"}));
  CLI::Option* bf16_flag =
      app.add_flag("--bf16", bf16, "Write bf16 (llm.c version 5, or safetensors BF16)");
  app.add_flag("--f16", f16, "Write safetensors F16")
      ->needs(to_safetensors_flag)
      ->excludes(bf16_flag);
  app.add_flag("--no-hf-config", no_hf_config, "Do not write config.json beside the output")
      ->needs(to_safetensors_flag);
  app.add_option("input", input, "File to read")->required()->check(CLI::ExistingFile);
  app.add_option("output", output, "File to write (replaced atomically)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help exits 0 with CLI11's text; a bad flag is one line and exit code 1.
    return error.get_exit_code() == 0 ? app.exit(error) : lightgpt::report_exception("convert");
  }

  try {
    const Format to = to_lightgpt ? Format::lightgpt : to_llmc ? Format::llmc : Format::safetensors;
    const Format source = !from.empty() ? formats.at(from)
                          : to_lightgpt ? Format::llmc
                                        : Format::lightgpt;
    LIGHTGPT_CHECK(source != to, "--from and the output format are both ", format_name(to),
                   "s; nothing to convert");
    LIGHTGPT_CHECK(!bf16 || to != Format::lightgpt,
                   "--bf16 applies to llm.c and safetensors output; checkpoints keep fp32");

    // The model is built from the input's config, which the readers have checked against the
    // file; running out of memory still names what needed how much.
    lightgpt::ModelConfig config;
    switch (source) {
      case Format::llmc:
        config = lightgpt::read_llmc_config(input);
        break;
      case Format::safetensors:
        config = lightgpt::read_safetensors_config(input);
        break;
      case Format::lightgpt:
        config = lightgpt::read_checkpoint_config(lightgpt::CheckpointReader(input));
        break;
    }
    std::optional<Model> built;
    lightgpt::allocating(
        "the model of '" + input + "' (parameters and gradients)",
        lightgpt::checked_mul(Model::num_parameters(config), 2 * sizeof(float), "model"),
        [&] { built.emplace(config, 0); });
    Model& model = *built;
    switch (source) {
      case Format::llmc:
        lightgpt::load_llmc(input, model);
        break;
      case Format::safetensors:
        lightgpt::load_safetensors(input, model);
        break;
      case Format::lightgpt:
        lightgpt::load_checkpoint(input, model);
        break;
    }
    describe((std::string("read ") + format_name(source)).c_str(), input, config, model);

    switch (to) {
      case Format::lightgpt:
        lightgpt::save_checkpoint(output, model, 0);
        std::fprintf(stderr, "wrote lightgpt checkpoint %s\n", output.c_str());
        break;
      case Format::llmc: {
        const auto version = bf16 ? lightgpt::LlmcVersion::bf16 : lightgpt::LlmcVersion::fp32;
        lightgpt::save_llmc(output, model, version);
        std::fprintf(stderr, "wrote llm.c file %s (version %d, %s)\n", output.c_str(),
                     static_cast<int>(version), bf16 ? "bf16" : "fp32");
        break;
      }
      case Format::safetensors: {
        const auto dtype = bf16  ? lightgpt::SafetensorsDtype::bf16
                           : f16 ? lightgpt::SafetensorsDtype::f16
                                 : lightgpt::SafetensorsDtype::f32;
        lightgpt::save_safetensors(output, model, dtype);
        std::fprintf(stderr, "wrote safetensors file %s (%s)\n", output.c_str(),
                     bf16  ? "BF16"
                     : f16 ? "F16"
                           : "F32");
        if (!no_hf_config) write_hf_config(output, config);
        break;
      }
    }
  } catch (...) {
    return lightgpt::report_exception("convert");
  }
  return 0;
}
