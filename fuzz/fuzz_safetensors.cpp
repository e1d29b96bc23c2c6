// Fuzzes the safetensors reader: the header length, the JSON header (entries, dtypes, shapes,
// offsets that must tile the data, metadata) and, for GPT-2 names and shapes of the seed's
// 23-token model, the mapping of every tensor into it. Any input is loaded or rejected with
// lightgpt::Error.
#include <cstddef>
#include <cstdint>
#include <lightgpt/io/safetensors.hpp>
#include <lightgpt/lightgpt.hpp>

#include "fuzz_input.hpp"

#if defined(LIGHTGPT_FUZZ_TEST_INSTANCES)
#include "instances.hpp"
#endif

namespace {

using Model =
    lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention, lightgpt::Cpu>;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Model model(lightgpt::fuzz::seed_config(), 1);
  const auto path = lightgpt::fuzz::write_input("safetensors", data, size);
  try {
    lightgpt::read_safetensors_header(path);
    lightgpt::load_safetensors(path, model);
  } catch (const lightgpt::Error&) {
  }
  return 0;
}
