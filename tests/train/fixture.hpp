// A tiny training setup shared by the trainer tests: train/val shards of a learnable stream in
// a temporary directory, a TrainConfig and loaders that fit the tiny test model.
#pragma once

#include <fstream>
#include <lightgpt/train/trainer.hpp>
#include <string>
#include <vector>

#include "instances.hpp"
#include "scratch.hpp"

namespace lightgpt::testing {

// A stream with structure a model can learn: mostly next = (3·current + 1) mod V.
inline std::vector<std::uint16_t> patterned_tokens(int count, int vocab, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::uint16_t> tokens(static_cast<std::size_t>(count));
  int current = 0;
  for (auto& token : tokens) {
    current = rng.uniform() < 0.1 ? int(rng.next_u64() % vocab) : (3 * current + 1) % vocab;
    token = static_cast<std::uint16_t>(current);
  }
  return tokens;
}

struct Fixture {
  TempDir dir;
  std::string train_shard = (dir / "train.bin").string();
  std::string val_shard = (dir / "val.bin").string();
  Fixture() {
    const int V = tiny_config().vocab_size;
    write_shard(train_shard, std::span<const std::uint16_t>(patterned_tokens(4000, V, 1)));
    write_shard(val_shard, std::span<const std::uint16_t>(patterned_tokens(800, V, 2)));
  }
  TrainConfig config(int steps) const {
    TrainConfig c;
    c.batch_size = 4;
    c.seq_len = 8;
    c.grad_accum = 2;
    c.steps = steps;
    c.learning_rate = 1e-2;
    c.warmup = 2;
    c.warmdown = 3;
    c.eval_every = 5;
    c.val_batches = 3;
    c.out_dir = (dir / "run").string();
    c.console = false;
    return c;
  }
  Loader train_loader(int K = 1) const {
    LoaderOptions o;
    o.B = 4;
    o.T = 8;
    o.K = K;
    o.shuffle = true;
    o.seed = 9;
    o.vocab_size = tiny_config().vocab_size;
    return Loader(train_shard, o);
  }
  Loader val_loader() const {
    LoaderOptions o;
    o.B = 4;
    o.T = 8;
    o.vocab_size = tiny_config().vocab_size;
    return Loader(val_shard, o);
  }
};

inline std::vector<std::string> lines_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace lightgpt::testing
