// Fuzzes the shard reader and the loader on arbitrary file contents: either the file is
// rejected with lightgpt::Error, or its tokens are exactly the bytes after the 1024-byte header.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <lightgpt/data/loader.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("lightgpt-fuzz-shard-" + std::to_string(getpid()));
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    lightgpt::Shard shard(path, 50257);
    if (size < 1024 || shard.size() != (size - 1024) / 2 || (size - 1024) % 2 != 0) std::abort();
    if (std::memcmp(shard.tokens().data(), data + 1024, size - 1024) != 0) std::abort();
    for (std::uint16_t t : shard.tokens())
      if (t >= 50257) std::abort();
    lightgpt::Loader loader(std::vector<std::filesystem::path>{path},
                            {.B = 1, .T = 3, .K = 2, .shuffle = size % 2 == 1, .seed = size});
    for (int i = 0; i < 4; ++i) {
      const lightgpt::Batch batch = loader.next();
      for (int t = 0; t < batch.T + 2; ++t)
        if (batch.tokens[t] >= 50257) std::abort();
    }
  } catch (const lightgpt::Error&) {
  }
  return 0;
}
