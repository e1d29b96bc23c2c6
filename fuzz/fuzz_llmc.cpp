// Fuzzes the llm.c model-file reader: the header (every config field, the padded vocabulary and
// the size it implies, in checked 64-bit arithmetic) and, when the header describes the seed's
// 23-token model, the tensors themselves. Any input is loaded or rejected with lightgpt::Error.
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
  const auto path = lightgpt::fuzz::write_input("llmc", data, size);
  try {
    const lightgpt::LlmcHeader header = lightgpt::read_llmc_header(path);
    // Building a model of any other (valid, possibly huge) config is not the reader's business.
    if (header.config == model.config()) lightgpt::load_llmc(path, model);
  } catch (const lightgpt::Error&) {
  }
  return 0;
}
