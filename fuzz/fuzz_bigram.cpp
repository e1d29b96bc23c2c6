// Fuzzes the CoCoNT bigram-table reader: any input is a table whose every list passed the
// checks (ids in range, no repeats, probabilities finite, positive, summing to 1) or a
// lightgpt::Error. With LIGHTGPT_FUZZ_SKIP_CHECKSUMS the lists are reached behind the CRC.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <lightgpt/loss/bigram.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = lightgpt::fuzz::write_input("bigram", data, size);
  try {
    const lightgpt::BigramTable table = lightgpt::BigramTable::load(path);
    for (int a = 0; a < table.vocab_size(); ++a) {
      double sum = 0;
      const auto ids = table.successors(a);
      const auto probs = table.probabilities(a);
      if (ids.size() > static_cast<std::size_t>(table.k())) std::abort();
      for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] >= static_cast<std::uint32_t>(table.vocab_size())) std::abort();
        sum += probs[i];
      }
      if (!ids.empty() && std::abs(sum - 1.0) > 1e-5) std::abort();
    }
  } catch (const lightgpt::Error&) {
  }
  return 0;
}
