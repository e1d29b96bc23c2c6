// Shared by the fuzz targets: the input as a file (the readers under test take paths), in a
// per-process temporary so that parallel fuzzing jobs do not share it, and the config of the
// small dense model the model-file seeds were written for.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <lightgpt/core/config.hpp>
#include <string>
#include <system_error>

namespace lightgpt::fuzz {

// The 23-token, two-layer test model of the checkpoint, llm.c and safetensors seeds.
inline ModelConfig seed_config() {
  ModelConfig config;
  config.vocab_size = 23;
  config.max_seq_len = 12;
  config.n_layer = 2;
  config.n_head = 2;
  config.d_model = 8;
  return config;
}

inline std::filesystem::path write_input(const char* kind, const std::uint8_t* data,
                                         std::size_t size) {
  // A RAM-backed folder where the machine has one: one file write per input on a disk would
  // bound the targets' speed.
  static const std::filesystem::path dir = [] {
    std::error_code error;
    const std::filesystem::path shm = "/dev/shm";
    return std::filesystem::is_directory(shm, error) ? shm : std::filesystem::temp_directory_path();
  }();
  const std::filesystem::path path =
      dir / ("lightgpt-fuzz-" + std::string(kind) + "-" + std::to_string(::getpid()));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace lightgpt::fuzz
