// LightRnnCodebook: where each token id sits in LightRNN's R × R table (Li et al., NeurIPS 2016).
// Cell index = row·R + column; each token has exactly one cell and each cell at most one token.
// Allocations: sequential (id / R, id % R) or a seeded random permutation; bootstrap reallocation
// (paper §3.2) re-places tokens from accumulated per-token row losses l_r(w, i) and column losses
// l_c(w, j) to lower Σ_w l_r(w, r(w)) + l_c(w, c(w)), keeping the new map only if that cost falls.
// Binary format (little-endian, version 1):
//   "LGPTLRCB" | u32 version | u32 vocab_size | u32 rows | vocab_size × u32 cell | u32 crc32
// where the CRC covers every byte before it.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/rng.hpp"
#include "../../io/container.hpp"

namespace lightgpt {

inline constexpr char kCodebookMagic[8] = {'L', 'G', 'P', 'T', 'L', 'R', 'C', 'B'};
inline constexpr std::uint32_t kCodebookVersion = 1;

// Candidate cells per token in reallocate(): the best candidate_rows rows by row loss times the
// best candidate_columns columns by column loss, plus the token's current cell.
struct ReallocationOptions {
  int candidate_rows = 4;
  int candidate_columns = 4;
};

struct ReallocationReport {
  double cost_before = 0;  // Σ_w l_r(w, r(w)) + l_c(w, c(w)) under the old map
  double cost_after = 0;   // the same under the map reallocate() proposed
  bool accepted = false;   // cost_after < cost_before: the codebook now holds the new map
  int moved = 0;           // tokens whose cell changed (0 when not accepted)
};

class LightRnnCodebook {
 public:
  static LightRnnCodebook sequential(int vocab_size, int rows) {
    check_shape(vocab_size, rows, "LightRnnCodebook::sequential");
    std::vector<std::int32_t> cells(static_cast<std::size_t>(vocab_size));
    std::iota(cells.begin(), cells.end(), 0);
    return LightRnnCodebook(vocab_size, rows, std::move(cells));
  }

  // Tokens placed in the cells of a uniformly random permutation of all R² cells (Fisher-Yates
  // over a seeded Rng), so empty cells are scattered over the table.
  static LightRnnCodebook random(int vocab_size, int rows, std::uint64_t seed) {
    check_shape(vocab_size, rows, "LightRnnCodebook::random");
    std::vector<std::int32_t> order(static_cast<std::size_t>(rows) * rows);
    std::iota(order.begin(), order.end(), 0);
    Rng rng = Rng::stream(seed, "lightrnn_codebook");
    for (std::size_t i = order.size() - 1; i > 0; --i) {
      std::swap(order[i], order[rng.next_u64() % (i + 1)]);
    }
    order.resize(static_cast<std::size_t>(vocab_size));
    return LightRnnCodebook(vocab_size, rows, std::move(order));
  }

  // The frequency codebook: tokens sorted by count (most frequent first, ties by id) fill the
  // table row by row, so row 0 holds the R most frequent tokens. A fresh head, whose column
  // distribution barely depends on the row yet, then already factorises the unigram distribution
  // well; with the sequential map it spends its first few hundred steps getting there.
  // counts[w] is token w's count in the training data (vocab_size entries).
  static LightRnnCodebook by_frequency(const std::vector<std::uint64_t>& counts, int rows) {
    check_shape(static_cast<long long>(counts.size()), rows, "LightRnnCodebook::by_frequency");
    std::vector<std::int32_t> order(counts.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int32_t a, std::int32_t b) { return counts[a] > counts[b]; });
    std::vector<std::int32_t> cells(counts.size());
    for (std::size_t i = 0; i < order.size(); ++i) cells[order[i]] = static_cast<std::int32_t>(i);
    return LightRnnCodebook(static_cast<int>(counts.size()), rows, std::move(cells));
  }

  // A codebook from token → cell; throws lightgpt::Error unless every cell is in range and used by
  // at most one token. `source` names the origin in errors.
  static LightRnnCodebook from_cells(int rows, std::vector<std::int32_t> token_cells,
                                     std::string_view source = "LightRnnCodebook::from_cells") {
    check_shape(static_cast<long long>(token_cells.size()), rows, source);
    const int vocab_size = static_cast<int>(token_cells.size());
    std::vector<std::int32_t> seen(static_cast<std::size_t>(rows) * rows, -1);
    for (int w = 0; w < vocab_size; ++w) {
      const std::int32_t cell = token_cells[w];
      LIGHTGPT_CHECK(cell >= 0 && static_cast<std::size_t>(cell) < seen.size(), source, ": token ",
                     w, " has cell ", cell, ", outside [0, R² = ", seen.size(), ")");
      LIGHTGPT_CHECK(seen[cell] < 0, source, ": tokens ", seen[cell], " and ", w, " share cell ",
                     cell, " (row ", cell / rows, ", column ", cell % rows, ")");
      seen[cell] = w;
    }
    return LightRnnCodebook(vocab_size, rows, std::move(token_cells));
  }

  int vocab_size() const { return vocab_size_; }
  int rows() const { return rows_; }
  int cell(int token) const { return token_cell_[token]; }
  int row(int token) const { return token_cell_[token] / rows_; }
  int column(int token) const { return token_cell_[token] % rows_; }
  // The token in (row, column), or -1 for an empty cell.
  int token_at(int row, int column) const {
    return cell_token_[static_cast<std::size_t>(row) * rows_ + column];
  }
  const std::vector<std::int32_t>& token_cells() const { return token_cell_; }  // V entries
  const std::vector<std::int32_t>& cell_tokens() const { return cell_token_; }  // R² entries
  const std::vector<std::int32_t>& row_counts() const { return row_count_; }    // R entries

  bool operator==(const LightRnnCodebook& other) const {
    return rows_ == other.rows_ && token_cell_ == other.token_cell_;
  }

  std::string serialize() const {
    std::string bytes(kCodebookMagic, sizeof(kCodebookMagic));
    auto put = [&bytes](std::uint32_t value) {
      bytes.append(reinterpret_cast<const char*>(&value), sizeof(value));
    };
    put(kCodebookVersion);
    put(static_cast<std::uint32_t>(vocab_size_));
    put(static_cast<std::uint32_t>(rows_));
    for (std::int32_t cell : token_cell_) put(static_cast<std::uint32_t>(cell));
    put(detail::crc32_update(0, bytes.data(), bytes.size()));
    return bytes;
  }

  // Inverse of serialize(); every inconsistency is a lightgpt::Error naming `source`. The stated
  // sizes are checked against the byte count, and R against V (at most twice ceil(sqrt(V)), as
  // ModelConfig allows), before the V tokens and R² cells are allocated.
  static LightRnnCodebook parse(std::string_view bytes, std::string_view source) {
    return parse_checked(bytes, source, 0, 0);
  }

  // parse() that also requires this vocabulary size and table size, checked before allocating.
  static LightRnnCodebook parse(std::string_view bytes, std::string_view source, int vocab_size,
                                int rows) {
    LIGHTGPT_CHECK(vocab_size > 0 && rows > 0, source, ": the model's vocab_size (", vocab_size,
                   ") and rows (", rows, ") must be positive");
    return parse_checked(bytes, source, vocab_size, rows);
  }

  // Written to `<path>.tmp` (a stale one removed first), synced, renamed over `path`, and the
  // directory synced.
  void save(const std::filesystem::path& path) const {
    const std::filesystem::path temp = path.string() + ".tmp";
    const std::string bytes = serialize();
    detail::remove_stale_temporary(temp);
    std::FILE* file = std::fopen(temp.c_str(), "wb");
    LIGHTGPT_CHECK(file != nullptr, "cannot write LightRNN codebook '", temp.string(),
                   "': ", std::strerror(errno));
    const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
    if (!ok) std::fclose(file);
    LIGHTGPT_CHECK(ok, "cannot write LightRNN codebook '", temp.string(), "'");
    detail::commit_temporary(file, temp, path);
  }

  static LightRnnCodebook load(const std::filesystem::path& path) {
    return parse(read_file(path), "LightRNN codebook '" + path.string() + "'");
  }
  static LightRnnCodebook load(const std::filesystem::path& path, int vocab_size, int rows) {
    return parse(read_file(path), "LightRNN codebook '" + path.string() + "'", vocab_size, rows);
  }

  // Σ_w l_r(w, r(w)) + l_c(w, c(w)) with row_loss, col_loss of V × R (token-major).
  template <class A>
  double cost(const A* row_loss, const A* col_loss) const {
    double total = 0;
    for (int w = 0; w < vocab_size_; ++w) total += cell_cost(row_loss, col_loss, w, token_cell_[w]);
    return total;
  }

  // Bootstrap reallocation. Each token w is offered its current cell and the candidate cells
  // (options); all offers are sorted by the change in cost they bring, Δ = cost(w, cell) -
  // cost(w, current), ties keeping current cells first. Two maps are built from them:
  //  - greedy: offers taken in order when both the token and the cell are still free; tokens
  //    left over take their current cell if free, else the cheapest free cell. Best when the
  //    preferences agree; when many light tokens want a heavy token's cell, the heavy token is
  //    pushed to a poor cell and the map can cost more than the old one;
  //  - swaps: from the old map, each offer in order moves w to the cell when that lowers the
  //    cost of w plus that of the token it swaps with (or w alone, for an empty cell), so it
  //    never costs more than the old map.
  // Both are then improved by the swap pass, and the cheaper replaces the old map if the total
  // cost falls.
  template <class A>
  ReallocationReport reallocate(const A* row_loss, const A* col_loss,
                                ReallocationOptions options = {}) {
    const int R = rows_, V = vocab_size_;
    const int top_rows = std::clamp(options.candidate_rows, 1, R);
    const int top_cols = std::clamp(options.candidate_columns, 1, R);
    const int per_token = top_rows * top_cols + 1;
    ReallocationReport report;
    report.cost_before = cost(row_loss, col_loss);

    struct Offer {
      double delta;
      std::int32_t token, cell;
      bool current;
    };
    std::vector<Offer> offers(static_cast<std::size_t>(V) * per_token);
#pragma omp parallel
    {
      std::vector<int> best_rows(top_rows), best_cols(top_cols);
#pragma omp for schedule(static)
      for (int w = 0; w < V; ++w) {
        const std::size_t base = static_cast<std::size_t>(w) * R;
        smallest(row_loss + base, R, best_rows);
        smallest(col_loss + base, R, best_cols);
        const int current = token_cell_[w];
        const double current_cost = cell_cost(row_loss, col_loss, w, current);
        Offer* out = offers.data() + static_cast<std::size_t>(w) * per_token;
        out[0] = {0.0, w, current, true};
        int k = 1;
        for (int i : best_rows) {
          for (int j : best_cols) {
            const int cell = i * R + j;
            // An offer of the current cell is already out[0]; repeat it as a no-op offer.
            out[k++] = {
                cell == current ? 0.0 : cell_cost(row_loss, col_loss, w, cell) - current_cost, w,
                cell, cell == current};
          }
        }
      }
    }
    std::sort(offers.begin(), offers.end(), [](const Offer& a, const Offer& b) {
      if (a.delta != b.delta) return a.delta < b.delta;
      if (a.current != b.current) return a.current;
      if (a.token != b.token) return a.token < b.token;
      return a.cell < b.cell;
    });

    std::vector<std::int32_t> new_cell(static_cast<std::size_t>(V), -1);
    std::vector<char> taken(static_cast<std::size_t>(R) * R, 0);
    for (const Offer& offer : offers) {
      if (new_cell[offer.token] >= 0 || taken[offer.cell]) continue;
      new_cell[offer.token] = offer.cell;
      taken[offer.cell] = 1;
    }
    std::vector<std::int32_t> free_cells;
    for (std::size_t cell = 0; cell < taken.size(); ++cell) {
      if (!taken[cell]) free_cells.push_back(static_cast<std::int32_t>(cell));
    }
    for (int w = 0; w < V; ++w) {
      if (new_cell[w] >= 0) continue;
      std::size_t pick = 0;
      for (std::size_t k = 0; k < free_cells.size(); ++k) {
        if (free_cells[k] == token_cell_[w]) {
          pick = k;
          break;
        }
        if (cell_cost(row_loss, col_loss, w, free_cells[k]) <
            cell_cost(row_loss, col_loss, w, free_cells[pick])) {
          pick = k;
        }
      }
      new_cell[w] = free_cells[pick];
      free_cells[pick] = free_cells.back();
      free_cells.pop_back();
    }

    std::vector<std::int32_t> swapped = token_cell_;
    improve_by_swaps(new_cell, offers, row_loss, col_loss);
    improve_by_swaps(swapped, offers, row_loss, col_loss);
    LightRnnCodebook proposal(V, R, std::move(new_cell)), alternative(V, R, std::move(swapped));
    if (alternative.cost(row_loss, col_loss) < proposal.cost(row_loss, col_loss)) {
      proposal = std::move(alternative);
    }
    report.cost_after = proposal.cost(row_loss, col_loss);
    report.accepted = report.cost_after < report.cost_before;
    if (report.accepted) {
      for (int w = 0; w < V; ++w) report.moved += proposal.token_cell_[w] != token_cell_[w];
      *this = std::move(proposal);
    }
    return report;
  }

 private:
  LightRnnCodebook(int vocab_size, int rows, std::vector<std::int32_t> token_cells)
      : vocab_size_(vocab_size),
        rows_(rows),
        token_cell_(std::move(token_cells)),
        cell_token_(static_cast<std::size_t>(rows) * rows, -1),
        row_count_(static_cast<std::size_t>(rows), 0) {
    for (int w = 0; w < vocab_size_; ++w) {
      cell_token_[token_cell_[w]] = w;
      ++row_count_[token_cell_[w] / rows_];
    }
  }

  static LightRnnCodebook parse_checked(std::string_view bytes, std::string_view source,
                                        int expected_vocab, int expected_rows) {
    const std::size_t header = sizeof(kCodebookMagic) + 3 * sizeof(std::uint32_t);
    LIGHTGPT_CHECK(bytes.size() >= sizeof(kCodebookMagic) &&
                       std::memcmp(bytes.data(), kCodebookMagic, sizeof(kCodebookMagic)) == 0,
                   source, " is not a LightRNN codebook (bad magic)");
    LIGHTGPT_CHECK(bytes.size() >= header + sizeof(std::uint32_t), source,
                   " is truncated: ", bytes.size(), " bytes, the header alone needs ",
                   header + sizeof(std::uint32_t));
    auto get = [&bytes](std::size_t offset) {
      std::uint32_t value;
      std::memcpy(&value, bytes.data() + offset, sizeof(value));
      return value;
    };
    const std::uint32_t version = get(8), vocab_size = get(12), rows = get(16);
    LIGHTGPT_CHECK(version == kCodebookVersion, source, " has codebook version ", version,
                   "; this build reads version ", kCodebookVersion);
    LIGHTGPT_CHECK(expected_vocab <= 0 || (vocab_size == std::uint32_t(expected_vocab) &&
                                           rows == std::uint32_t(expected_rows)),
                   source, " holds a codebook of ", vocab_size, " tokens in ", rows, " × ", rows,
                   " cells, but this model has vocab_size ", expected_vocab, " and ",
                   expected_rows, " rows");
    LIGHTGPT_CHECK(vocab_size > 0 && vocab_size <= (1u << 30), source, ": implausible vocab_size ",
                   vocab_size, " (corrupted file)");
    const std::uint64_t expected = header + std::uint64_t(vocab_size) * 4 + 4;
    LIGHTGPT_CHECK(bytes.size() == expected, source, " has ", bytes.size(),
                   " bytes; a codebook of ", vocab_size, " tokens has ", expected,
                   bytes.size() < expected ? " (truncated)" : " (trailing bytes)");
    std::uint64_t smallest_rows = 1;
    while (smallest_rows * smallest_rows < vocab_size) ++smallest_rows;
    LIGHTGPT_CHECK(rows <= 2 * smallest_rows, source, ": rows ", rows, " is implausible for ",
                   vocab_size, " tokens (at most 2 × ceil(sqrt(vocab_size)) = ", 2 * smallest_rows,
                   "; corrupted file)");
    LIGHTGPT_CHECK(!detail::kVerifyChecksums ||
                       detail::crc32_update(0, bytes.data(), expected - 4) == get(expected - 4),
                   source, " fails its checksum (corrupted file)");
    std::vector<std::int32_t> cells(vocab_size);
    for (std::uint32_t w = 0; w < vocab_size; ++w) {
      cells[w] = static_cast<std::int32_t>(get(header + std::size_t(w) * 4));
    }
    return from_cells(static_cast<int>(rows), std::move(cells), source);
  }

  static void check_shape(long long vocab_size, int rows, std::string_view source) {
    LIGHTGPT_CHECK(vocab_size > 0, source, ": vocab_size must be positive, got ", vocab_size);
    LIGHTGPT_CHECK(rows > 0, source, ": rows must be positive, got ", rows);
    LIGHTGPT_CHECK(static_cast<long long>(rows) * rows >= vocab_size, source,
                   ": R² = ", static_cast<long long>(rows) * rows, " cells cannot hold ",
                   vocab_size, " tokens");
  }

  static std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    LIGHTGPT_CHECK(in.good(), "cannot open LightRNN codebook '", path.string(), "'");
    return {std::istreambuf_iterator<char>(in), {}};
  }

  // One pass of pairwise swaps over the offers (in their order) on the map token → cell.
  template <class Offer, class A>
  void improve_by_swaps(std::vector<std::int32_t>& cells, const std::vector<Offer>& offers,
                        const A* row_loss, const A* col_loss) const {
    std::vector<std::int32_t> occupant(static_cast<std::size_t>(rows_) * rows_, -1);
    for (int w = 0; w < vocab_size_; ++w) occupant[cells[w]] = w;
    for (const Offer& offer : offers) {
      if (offer.delta >= 0) break;  // sorted: no offer after this one gains on its own
      const int w = offer.token, to = offer.cell, from = cells[w];
      if (to == from) continue;
      const int other = occupant[to];
      double change = cell_cost(row_loss, col_loss, w, to) - cell_cost(row_loss, col_loss, w, from);
      if (other >= 0) {
        change += cell_cost(row_loss, col_loss, other, from) -
                  cell_cost(row_loss, col_loss, other, to);
      }
      if (change >= 0) continue;
      cells[w] = to;
      occupant[to] = w;
      occupant[from] = other;
      if (other >= 0) cells[other] = from;
    }
  }

  template <class A>
  double cell_cost(const A* row_loss, const A* col_loss, int token, int cell) const {
    const std::size_t base = static_cast<std::size_t>(token) * rows_;
    return double(row_loss[base + cell / rows_]) + double(col_loss[base + cell % rows_]);
  }

  // The indices of the out.size() smallest values (ties by index), in increasing order.
  template <class A>
  static void smallest(const A* values, int count, std::vector<int>& out) {
    const int k = static_cast<int>(out.size());
    int filled = 0;
    for (int i = 0; i < count; ++i) {
      int at = filled < k ? filled++ : k;
      if (at == k && !(values[i] < values[out[k - 1]])) continue;
      if (at == k) at = k - 1;
      while (at > 0 && values[i] < values[out[at - 1]]) {
        out[at] = out[at - 1];
        --at;
      }
      out[at] = i;
    }
  }

  int vocab_size_ = 0, rows_ = 0;
  std::vector<std::int32_t> token_cell_;
  std::vector<std::int32_t> cell_token_;
  std::vector<std::int32_t> row_count_;
};

}  // namespace lightgpt
