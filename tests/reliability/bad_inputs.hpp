// Valid small files of every binary kind lightgpt reads, and the byte-level surgery the
// reliability tests and the bad-input generator apply to them: rewriting a checkpoint's sections
// (checksums recomputed, so only the intended fault remains) and patching little-endian fields.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <lightgpt/data/shard.hpp>

#include "instances.hpp"
#include "scratch.hpp"

namespace lightgpt::testing {

using Sections = std::vector<std::pair<std::string, std::string>>;

// The sections of a checkpoint container, in file order (the file is trusted: it is ours).
inline Sections split_checkpoint(const std::vector<char>& bytes) {
  Sections sections;
  std::size_t pos = 8 + 4;
  std::uint32_t count = 0;
  std::memcpy(&count, bytes.data() + pos, 4);
  pos += 4;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint32_t name_size = 0;
    std::memcpy(&name_size, bytes.data() + pos, 4);
    pos += 4;
    std::string name(bytes.data() + pos, name_size);
    pos += name_size;
    std::uint64_t size = 0;
    std::memcpy(&size, bytes.data() + pos, 8);
    pos += 8 + 4;
    sections.emplace_back(name, std::string(bytes.data() + pos, size));
    pos += size;
  }
  return sections;
}

inline void write_checkpoint(const std::filesystem::path& path, const Sections& sections) {
  CheckpointWriter out(path);
  for (const auto& [name, payload] : sections) out.add_section(name, payload);
  out.commit();
}

inline std::string& section(Sections& sections, const std::string& name) {
  for (auto& [key, payload] : sections) {
    if (key == name) return payload;
  }
  throw std::runtime_error("no section " + name);
}

template <class V, class Bytes>
void patch(Bytes& bytes, std::size_t offset, V value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(V));
}

// Offset of the dimension count of the first tensor in a tensor list starting at `offset`.
inline std::size_t first_tensor_dims(const std::string& payload, std::size_t offset) {
  std::uint64_t name_size = 0;
  std::memcpy(&name_size, payload.data() + offset + 4, 8);
  return offset + 4 + 8 + name_size;
}

// A dense tiny model with one AdamW step taken, saved with its optimizer at step 1.
inline std::vector<char> good_checkpoint(const std::filesystem::path& dir) {
  DenseFp32 model(tiny_config(), 1);
  AdamW<Cpu, float> optimizer(model.parameters().layout());
  const auto tokens = random_tokens(2 * 11, tiny_config().vocab_size, 7);
  model.zero_grad();
  model.forward(tokens.data(), 2, 10);
  model.backward();
  optimizer.step(model.parameters(), 1e-2);
  save_checkpoint(dir / "good.ckpt", model, optimizer, 1);
  return read_bytes(dir / "good.ckpt");
}

// The config text of the wrapping llm.c header, as a checkpoint would hold it.
inline std::string wrapping_config() {
  return "vocab_size=100\nmax_seq_len=394967166\nn_layer=300000000\nn_head=1\n"
         "d_model=1073741824\n";
}

// llm.c header ints of that config: its expected-size sum wraps to exactly 1024 bytes in 64 bits.
inline std::vector<char> wrapping_llmc_header() {
  std::vector<char> bytes(1024, 0);
  const std::int32_t fields[] = {20240326, 3, 394967166, 100, 300000000, 1, 1 << 30, 128};
  std::memcpy(bytes.data(), fields, sizeof fields);
  return bytes;
}

}  // namespace lightgpt::testing
