// Fuzzes the LightRNN codebook reader: any input is a codebook in which every token has its own
// cell inside the R × R table, or a lightgpt::Error; R is checked against V before the R² cells
// are allocated. With LIGHTGPT_FUZZ_SKIP_CHECKSUMS the cells are reached behind the CRC.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <lightgpt/heads/lightrnn/codebook.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const auto codebook = lightgpt::LightRnnCodebook::parse(bytes, "fuzz input");
    const int R = codebook.rows();
    std::vector<char> used(static_cast<std::size_t>(R) * R, 0);
    for (int w = 0; w < codebook.vocab_size(); ++w) {
      const int cell = codebook.cell(w);
      if (cell < 0 || cell >= R * R || used[cell]) std::abort();
      used[cell] = 1;
      if (codebook.token_at(codebook.row(w), codebook.column(w)) != w) std::abort();
    }
  } catch (const lightgpt::Error&) {
  }
  return 0;
}
