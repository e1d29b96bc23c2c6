// Fuzzes the checkpoint container and every section reader a dense model and its optimizer
// use (config, composition, parameters, adamw, step): any input is either loaded or rejected
// with lightgpt::Error. Built with LIGHTGPT_FUZZ_SKIP_CHECKSUMS, mutated sections reach the
// parsers behind their CRCs. The seed is a checkpoint of the 23-token test model.
#include <cstddef>
#include <cstdint>

#include <lightgpt/lightgpt.hpp>

#include "fuzz_input.hpp"

#if defined(LIGHTGPT_FUZZ_TEST_INSTANCES)
#include "instances.hpp"
#endif

namespace {

using Model = lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention,
                           lightgpt::Cpu>;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Model model(lightgpt::fuzz::seed_config(), 1);
  static lightgpt::AdamW<lightgpt::Cpu, float> optimizer(model.parameters().layout());
  const auto path = lightgpt::fuzz::write_input("checkpoint", data, size);
  try {
    const lightgpt::CheckpointReader in(path);
    // Each reader on its own, so that a rejected section does not hide the ones after it. The
    // first is what a program reads before it builds a model from the file.
    auto attempt = [](auto&& read) {
      try {
        read();
      } catch (const lightgpt::Error&) {
      }
    };
    attempt([&] { lightgpt::read_checkpoint_config(in); });
    attempt([&] { lightgpt::read_model_sections(in, model); });
    attempt([&] { lightgpt::read_optimizer_section(in, optimizer); });
    attempt([&] { lightgpt::read_step_section(in); });
  } catch (const lightgpt::Error&) {
  }
  return 0;
}
