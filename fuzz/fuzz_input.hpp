// Shared by the fuzz targets: the input as a file (the readers under test take paths), in a
// per-process temporary so that parallel fuzzing jobs do not share it.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace lightgpt::fuzz {

inline std::filesystem::path write_input(const char* kind, const std::uint8_t* data,
                                         std::size_t size) {
  static const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::filesystem::path path =
      dir / ("lightgpt-fuzz-" + std::string(kind) + "-" + std::to_string(::getpid()));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace lightgpt::fuzz
