// The bigram top-K table behind CoCoNT n-gram smoothing: for every token a, the K most frequent
// next tokens b in the training stream with P(b | a) renormalised over the kept K (the
// counterpart of the original scripts' `bigram_topk16.pt`), its counter and its file.
//
// File format, version 1, little-endian:
//   offset  0  char[8]  magic "LGBIGRAM"
//           8  u32      version (1)
//          12  u32      V, the vocabulary size
//          16  u32      K, the successors kept per token
//          20  u32      CRC-32 of everything after the 40-byte header
//          24  u64      tokens counted
//          32  u64      distinct bigrams counted
//          40  u32[V]   list lengths n_a ≤ K (0 for a token never followed by another)
//              then V × K pairs (u32 id, f32 prob): list a is entries [a·K, a·K + n_a), sorted by
//              decreasing probability (ties by id); unused slots are (0, 0).
// Loading validates every field: ids < V, no id twice in a list, probabilities finite and
// positive, each non-empty list summing to 1 within 1e-5, unused slots zero, exact file size.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../io/container.hpp"

namespace lightgpt {

inline constexpr char kBigramMagic[8] = {'L', 'G', 'B', 'I', 'G', 'R', 'A', 'M'};
inline constexpr std::uint32_t kBigramVersion = 1;
inline constexpr std::size_t kBigramHeaderBytes = 40;

class BigramTable {
 public:
  BigramTable() = default;
  BigramTable(int vocab_size, int k)
      : V_(vocab_size),
        K_(k),
        lengths_(static_cast<std::size_t>(vocab_size), 0),
        ids_(static_cast<std::size_t>(vocab_size) * k, 0),
        probs_(static_cast<std::size_t>(vocab_size) * k, 0.0f) {
    LIGHTGPT_CHECK(vocab_size > 0 && k > 0, "bigram table: V and K must be positive, got V=",
                   vocab_size, " K=", k);
  }

  int vocab_size() const { return V_; }
  int k() const { return K_; }
  std::uint64_t tokens_counted() const { return tokens_; }
  std::uint64_t distinct_bigrams() const { return distinct_; }
  void set_counts(std::uint64_t tokens, std::uint64_t distinct) {
    tokens_ = tokens;
    distinct_ = distinct;
  }

  // The kept successors of a and their probabilities (empty when a was never followed).
  std::span<const std::uint32_t> successors(int a) const {
    return {ids_.data() + static_cast<std::size_t>(a) * K_, lengths_[static_cast<std::size_t>(a)]};
  }
  std::span<const float> probabilities(int a) const {
    return {probs_.data() + static_cast<std::size_t>(a) * K_, lengths_[static_cast<std::size_t>(a)]};
  }
  // Sets list a (ids and probabilities, at most K); the caller keeps them normalised.
  void set(int a, std::span<const std::uint32_t> ids, std::span<const float> probs) {
    LIGHTGPT_CHECK(a >= 0 && a < V_ && ids.size() == probs.size() &&
                       ids.size() <= static_cast<std::size_t>(K_),
                   "bigram table: bad list for token ", a);
    const std::size_t base = static_cast<std::size_t>(a) * K_;
    std::fill(ids_.begin() + base, ids_.begin() + base + K_, 0u);
    std::fill(probs_.begin() + base, probs_.begin() + base + K_, 0.0f);
    std::copy(ids.begin(), ids.end(), ids_.begin() + base);
    std::copy(probs.begin(), probs.end(), probs_.begin() + base);
    lengths_[static_cast<std::size_t>(a)] = static_cast<std::uint32_t>(ids.size());
  }

  // Written to `<path>.tmp` (a stale one removed first), synced and renamed, then the directory
  // synced: an existing table is replaced only by a whole one, durably.
  void save(const std::filesystem::path& path) const {
    const std::filesystem::path temp = path.string() + ".tmp";
    detail::remove_stale_temporary(temp);
    std::FILE* file = std::fopen(temp.c_str(), "wb");
    LIGHTGPT_CHECK(file != nullptr, "cannot write the bigram table '", temp.string(),
                   "': ", std::strerror(errno));
    std::uint32_t crc = 0;
    crc = detail::crc32_update(crc, lengths_.data(), lengths_.size() * 4);
    std::vector<unsigned char> pairs = packed_pairs();
    crc = detail::crc32_update(crc, pairs.data(), pairs.size());
    unsigned char header[kBigramHeaderBytes] = {};
    std::memcpy(header, kBigramMagic, 8);
    const std::uint32_t fields[] = {kBigramVersion, std::uint32_t(V_), std::uint32_t(K_), crc};
    std::memcpy(header + 8, fields, sizeof fields);
    std::memcpy(header + 24, &tokens_, 8);
    std::memcpy(header + 32, &distinct_, 8);
    bool ok = std::fwrite(header, 1, sizeof header, file) == sizeof header;
    ok = ok && std::fwrite(lengths_.data(), 4, lengths_.size(), file) == lengths_.size();
    ok = ok && std::fwrite(pairs.data(), 1, pairs.size(), file) == pairs.size();
    if (!ok) std::fclose(file);
    LIGHTGPT_CHECK(ok, "writing the bigram table '", temp.string(), "' failed");
    detail::commit_temporary(file, temp, path);
  }

  // expected_vocab / expected_k > 0 must match the file (the model's V, the run's --ngram_k).
  static BigramTable load(const std::filesystem::path& path, int expected_vocab = 0,
                          int expected_k = 0) {
    const std::string name = "bigram table '" + path.string() + "'";
    std::FILE* file = std::fopen(path.c_str(), "rb");
    LIGHTGPT_CHECK(file != nullptr, "cannot open the ", name, ": ", std::strerror(errno));
    std::vector<unsigned char> bytes;
    unsigned char buffer[1 << 16];
    for (std::size_t got; (got = std::fread(buffer, 1, sizeof buffer, file)) > 0;) {
      bytes.insert(bytes.end(), buffer, buffer + got);
    }
    std::fclose(file);
    LIGHTGPT_CHECK(bytes.size() >= kBigramHeaderBytes, name, " is ", bytes.size(),
                   " bytes, shorter than its 40-byte header");
    LIGHTGPT_CHECK(std::memcmp(bytes.data(), kBigramMagic, 8) == 0, name,
                   " does not start with the magic \"LGBIGRAM\" (not a bigram table?)");
    std::uint32_t fields[4];
    std::memcpy(fields, bytes.data() + 8, sizeof fields);
    LIGHTGPT_CHECK(fields[0] == kBigramVersion, name, " has version ", fields[0],
                   "; this build reads version ", kBigramVersion);
    const std::uint32_t V = fields[1], K = fields[2];
    LIGHTGPT_CHECK(V > 0 && V <= (1u << 30) && K > 0 && K <= 4096, name, " has V=", V, " K=", K,
                   "; expected 0 < V <= 2^30 and 0 < K <= 4096");
    LIGHTGPT_CHECK(expected_vocab <= 0 || V == std::uint32_t(expected_vocab), name,
                   " was built for vocab_size ", V, ", the model has ", expected_vocab);
    LIGHTGPT_CHECK(expected_k <= 0 || K == std::uint32_t(expected_k), name, " keeps K=", K,
                   " successors per token, but --ngram_k is ", expected_k);
    const std::size_t expected_size = kBigramHeaderBytes + std::size_t(V) * 4 + std::size_t(V) * K * 8;
    LIGHTGPT_CHECK(bytes.size() == expected_size, name, " is ", bytes.size(),
                   " bytes; V=", V, " and K=", K, " need ", expected_size, " (truncated?)");
    const std::uint32_t crc = detail::crc32_update(0, bytes.data() + kBigramHeaderBytes,
                                                   bytes.size() - kBigramHeaderBytes);
    LIGHTGPT_CHECK(!detail::kVerifyChecksums || crc == fields[3], name,
                   " fails its CRC check (corrupted)");

    BigramTable table{static_cast<int>(V), static_cast<int>(K)};
    std::memcpy(&table.tokens_, bytes.data() + 24, 8);
    std::memcpy(&table.distinct_, bytes.data() + 32, 8);
    std::memcpy(table.lengths_.data(), bytes.data() + kBigramHeaderBytes, std::size_t(V) * 4);
    const unsigned char* pairs = bytes.data() + kBigramHeaderBytes + std::size_t(V) * 4;
    for (std::size_t i = 0; i < std::size_t(V) * K; ++i) {
      std::memcpy(&table.ids_[i], pairs + 8 * i, 4);
      std::memcpy(&table.probs_[i], pairs + 8 * i + 4, 4);
    }
    table.validate(name);
    return table;
  }

  void validate(const std::string& name) const {
    std::vector<std::uint32_t> seen(static_cast<std::size_t>(V_), 0xffffffffu);
    for (int a = 0; a < V_; ++a) {
      const std::uint32_t n = lengths_[static_cast<std::size_t>(a)];
      LIGHTGPT_CHECK(n <= std::uint32_t(K_), name, ": token ", a, " lists ", n,
                     " successors, more than K=", K_);
      const std::size_t base = static_cast<std::size_t>(a) * K_;
      double sum = 0;
      for (std::uint32_t i = 0; i < n; ++i) {
        const std::uint32_t id = ids_[base + i];
        const float p = probs_[base + i];
        LIGHTGPT_CHECK(id < std::uint32_t(V_), name, ": token ", a, " lists successor ", id,
                       ", outside the vocabulary of ", V_);
        LIGHTGPT_CHECK(seen[id] != std::uint32_t(a), name, ": token ", a, " lists successor ",
                       id, " twice");
        seen[id] = std::uint32_t(a);
        LIGHTGPT_CHECK(std::isfinite(p) && p > 0, name, ": token ", a, " has probability ", p,
                       " for successor ", id, "; expected finite and positive");
        sum += p;
      }
      LIGHTGPT_CHECK(n == 0 || std::abs(sum - 1.0) <= 1e-5, name, ": the probabilities of token ",
                     a, " sum to ", sum, ", not 1");
      for (std::uint32_t i = n; i < std::uint32_t(K_); ++i) {
        LIGHTGPT_CHECK(ids_[base + i] == 0 && probs_[base + i] == 0.0f, name, ": token ", a,
                       " has data in its unused slot ", i);
      }
    }
  }

 private:
  std::vector<unsigned char> packed_pairs() const {
    std::vector<unsigned char> out(ids_.size() * 8);
    for (std::size_t i = 0; i < ids_.size(); ++i) {
      std::memcpy(out.data() + 8 * i, &ids_[i], 4);
      std::memcpy(out.data() + 8 * i + 4, &probs_[i], 4);
    }
    return out;
  }

  int V_ = 0, K_ = 0;
  std::vector<std::uint32_t> lengths_;
  std::vector<std::uint32_t> ids_;
  std::vector<float> probs_;
  std::uint64_t tokens_ = 0, distinct_ = 0;
};

// Exact bigram counts of a token stream fed in chunks (the stream continues across chunks and
// shards), in an open-addressing hash table: memory grows with the number of distinct bigrams
// (16 bytes per slot, at most 2/3 full), never with V².
class BigramCounter {
 public:
  explicit BigramCounter(int vocab_size) : V_(vocab_size) {
    LIGHTGPT_CHECK(vocab_size > 0 && vocab_size <= 65536,
                   "bigram counter: vocab_size must lie in [1, 65536] (uint16 shards), got ",
                   vocab_size);
    resize(1 << 16);
  }

  void add(std::span<const std::uint16_t> tokens) {
    for (std::uint16_t token : tokens) {
      LIGHTGPT_CHECK(token < V_, "bigram counter: token ", token, " at stream position ",
                     tokens_, " is outside the vocabulary of ", V_);
      if (has_previous_) increment((std::uint64_t(previous_) << 16) | token);
      previous_ = token;
      has_previous_ = true;
      ++tokens_;
    }
  }
  // Forget the previous token: the next chunk starts a new stream.
  void break_stream() { has_previous_ = false; }

  std::uint64_t tokens() const { return tokens_; }
  std::uint64_t distinct() const { return used_; }
  std::size_t memory_bytes() const { return keys_.size() * 16; }

  // For each a, the K most frequent successors (ties: smaller id first) with probabilities
  // renormalised over them.
  BigramTable top_k(int k) const {
    BigramTable table(V_, k);
    struct Entry {
      std::uint64_t count;
      std::uint32_t id;
    };
    auto better = [](const Entry& x, const Entry& y) {
      return x.count > y.count || (x.count == y.count && x.id < y.id);
    };
    // One min-heap (by `better`) of at most k entries per context token.
    std::vector<std::vector<Entry>> heaps(static_cast<std::size_t>(V_));
    for (std::size_t slot = 0; slot < keys_.size(); ++slot) {
      if (counts_[slot] == 0) continue;
      const auto a = static_cast<std::size_t>(keys_[slot] >> 16);
      const Entry entry{counts_[slot], static_cast<std::uint32_t>(keys_[slot] & 0xffff)};
      std::vector<Entry>& heap = heaps[a];
      if (heap.size() < static_cast<std::size_t>(k)) {
        heap.push_back(entry);
        std::push_heap(heap.begin(), heap.end(), better);
      } else if (better(entry, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), better);
        heap.back() = entry;
        std::push_heap(heap.begin(), heap.end(), better);
      }
    }
    std::vector<std::uint32_t> ids;
    std::vector<float> probs;
    for (int a = 0; a < V_; ++a) {
      std::vector<Entry>& heap = heaps[static_cast<std::size_t>(a)];
      std::sort(heap.begin(), heap.end(), better);
      double total = 0;
      for (const Entry& e : heap) total += double(e.count);
      ids.clear();
      probs.clear();
      for (const Entry& e : heap) {
        ids.push_back(e.id);
        probs.push_back(static_cast<float>(double(e.count) / total));
      }
      table.set(a, ids, probs);
    }
    table.set_counts(tokens_, used_);
    return table;
  }

 private:
  static std::size_t hash(std::uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return static_cast<std::size_t>(key);
  }

  void increment(std::uint64_t key) {
    std::size_t slot = hash(key) & mask_;
    while (counts_[slot] != 0 && keys_[slot] != key) slot = (slot + 1) & mask_;
    if (counts_[slot] == 0) {
      keys_[slot] = key;
      if (++used_ * 3 > keys_.size() * 2) {
        counts_[slot] = 1;
        resize(keys_.size() * 2);
        return;
      }
    }
    ++counts_[slot];
  }

  void resize(std::size_t slots) {
    std::vector<std::uint64_t> old_keys = std::move(keys_), old_counts = std::move(counts_);
    keys_.assign(slots, 0);
    counts_.assign(slots, 0);
    mask_ = slots - 1;
    for (std::size_t i = 0; i < old_keys.size(); ++i) {
      if (old_counts[i] == 0) continue;
      std::size_t slot = hash(old_keys[i]) & mask_;
      while (counts_[slot] != 0) slot = (slot + 1) & mask_;
      keys_[slot] = old_keys[i];
      counts_[slot] = old_counts[i];
    }
  }

  int V_;
  std::vector<std::uint64_t> keys_, counts_;
  std::size_t mask_ = 0;
  std::uint64_t used_ = 0, tokens_ = 0;
  std::uint16_t previous_ = 0;
  bool has_previous_ = false;
};

}  // namespace lightgpt
