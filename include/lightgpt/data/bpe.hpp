// GPT-2 byte-level BPE tokenizer that reads OpenAI's encoder.json and vocab.bpe and reproduces
// the reference encoder id for id. The one idea: text is cut into pieces by GPT-2's regular
// expression, each piece's UTF-8 bytes start as single-byte tokens, and adjacent pairs are merged
// lowest-rank first until no ranked pair remains; the byte<->unicode table only exists so that
// the vocabulary files can be plain text, so internally every token is kept as raw bytes.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <lightgpt/core/error.hpp>
#include <lightgpt/data/utf8.hpp>

namespace lightgpt {

struct EncodeOptions {
  // When true, the literal text "<|endoftext|>" becomes the single id 50256; when false (the
  // reference encoder's behaviour) it is encoded as ordinary characters.
  bool allow_endoftext = false;
};

namespace detail {

// GPT-2's table that gives each of the 256 bytes a printable code point: printable Latin-1
// bytes map to themselves, the remaining 68 bytes to U+0100.. in byte order.
inline std::array<char32_t, 256> gpt2_byte_to_unicode() {
  std::array<char32_t, 256> table{};
  std::array<bool, 256> printable{};
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) table[b] = printable[b] ? char32_t(b) : next++;
  return table;
}

inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  LIGHTGPT_CHECK(in, "cannot open '", path.string(), "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  LIGHTGPT_CHECK(!in.bad(), "error while reading '", path.string(), "'");
  return std::move(buffer).str();
}

// Parses the flat JSON object {"token": id, ...} of encoder.json with nlohmann-json: any valid
// JSON is read, and anything but an object of non-negative integer ids is an Error naming the
// file and the entry. Keys come back as code points (JSON strings are valid UTF-8 once parsed).
inline std::vector<std::pair<std::u32string, long long>> parse_encoder_json(
    std::string_view text, const std::string& file) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& error) {
    throw Error(concat("'", file, "' is not valid JSON: ", error.what()));
  }
  LIGHTGPT_CHECK(root.is_object(), "'", file, "' is not a JSON object of token ids");
  std::vector<std::pair<std::u32string, long long>> entries;
  entries.reserve(root.size());
  for (const auto& [key, value] : root.items()) {
    LIGHTGPT_CHECK(value.is_number_unsigned() && value.get<std::uint64_t>() <= 0x7fffffffu, "'",
                   file, "': token '", key, "' has the id ", value.dump(),
                   ", not a non-negative 32-bit integer");
    std::u32string code_points;
    for (std::size_t i = 0; i < key.size();) {
      const auto c = static_cast<unsigned char>(key[i]);
      const int length = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      constexpr unsigned char kLeadBits[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
      char32_t cp = c & kLeadBits[length];
      for (int k = 1; k < length; ++k) {
        cp = (cp << 6) | (static_cast<unsigned char>(key[i + std::size_t(k)]) & 0x3F);
      }
      code_points.push_back(cp);
      i += static_cast<std::size_t>(length);
    }
    const auto id = static_cast<long long>(value.get<std::uint64_t>());
    entries.emplace_back(std::move(code_points), id);
  }
  return entries;
}

// An Error's message without the "lightgpt: " prefix, for wrapping it with more context.
inline std::string_view error_detail(const Error& e) {
  std::string_view what = e.what();
  if (what.starts_with("lightgpt: ")) what.remove_prefix(10);
  return what;
}

// PCRE2 compiled pattern, owned.
struct Pcre2Code {
  pcre2_code* code = nullptr;
  Pcre2Code() = default;
  Pcre2Code(const Pcre2Code&) = delete;
  Pcre2Code& operator=(const Pcre2Code&) = delete;
  ~Pcre2Code() { pcre2_code_free(code); }
};

struct Pcre2MatchData {
  pcre2_match_data* data;
  explicit Pcre2MatchData(const pcre2_code* code)
      : data(pcre2_match_data_create_from_pattern(code, nullptr)) {
    LIGHTGPT_CHECK(data != nullptr, "out of memory creating PCRE2 match data");
  }
  Pcre2MatchData(const Pcre2MatchData&) = delete;
  Pcre2MatchData& operator=(const Pcre2MatchData&) = delete;
  ~Pcre2MatchData() { pcre2_match_data_free(data); }
};

// Heterogeneous lookup so the per-call cache can be probed with a string_view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace detail

class Tokenizer {
 public:
  // GPT-2's pre-tokenisation regex. `\s` is spelled out as the Unicode White_Space property,
  // which is what the `regex` module used by OpenAI's encoder matches; PCRE2's own `\s` under
  // PCRE2_UCP would add U+180E. (The JavaScript port differs from both on U+0085 and U+FEFF.)
  // PCRE2 is used, rather than hand-written category tables or std::regex, because it has
  // exact Unicode \p{L}/\p{N} classes, supports the (?!\S) lookahead, and its JIT keeps this
  // step well above the throughput the BPE stage needs; std::regex has no \p classes at all.
  static constexpr const char* kSplitPattern =
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^WS\\p{L}\\p{N}]+|[WS]+(?![^WS])|[WS]+";
  static constexpr const char* kWhiteSpace =
      "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
      "\\x{202F}\\x{205F}\\x{3000}";
  static constexpr std::string_view kEndOfText = "<|endoftext|>";

  Tokenizer(const std::filesystem::path& encoder_json, const std::filesystem::path& vocab_bpe) {
    load_encoder(encoder_json);
    load_merges(vocab_bpe);
    compile_pattern();
  }

  int vocab_size() const { return static_cast<int>(id_to_bytes_.size()); }
  // Id of "<|endoftext|>" (50256 for GPT-2), or -1 when the vocabulary lacks it.
  int eot_id() const { return eot_id_; }
  // The raw bytes a token id stands for.
  const std::string& token_bytes(int id) const {
    LIGHTGPT_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary [0, ",
                   vocab_size(), ")");
    return id_to_bytes_[static_cast<std::size_t>(id)];
  }

  // Encodes UTF-8 text; throws lightgpt::Error naming the byte offset of invalid UTF-8.
  std::vector<int> encode(std::string_view text, EncodeOptions options = {}) const {
    check_utf8(text, 0);
    std::vector<int> out;
    out.reserve(text.size() / 3 + 1);
    Session session(*this);
    encode_segments(text, options, session, out);
    return out;
  }

  // Same ids as encode(), computed on `threads` threads (0: all cores). The text is cut only
  // after a '\n' that sits between two printable ASCII characters: there the regex provably
  // ends a piece ("\n" alone) whether or not it sees what follows, so the pieces, and hence
  // the ids, are those of the whole text.
  std::vector<int> encode_parallel(std::string_view text, EncodeOptions options = {},
                                   int threads = 0) const {
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    constexpr std::size_t kMinChunk = std::size_t{1} << 18;
    if (threads == 1 || text.size() < 2 * kMinChunk) return encode(text, options);
    check_utf8(text, 0);
    const std::size_t target =
        std::max(kMinChunk, text.size() / (static_cast<std::size_t>(threads) * 4));
    std::vector<std::string_view> chunks;
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t cut = text.size();
      for (std::size_t p = start + target; p < text.size(); ++p) {
        if (safe_cut(text, p)) {
          cut = p;
          break;
        }
      }
      chunks.push_back(text.substr(start, cut - start));
      start = cut;
    }
    std::vector<std::vector<int>> results(chunks.size());
    std::atomic<std::size_t> next{0};
    std::vector<std::exception_ptr> errors(chunks.size());
    const int workers = std::min<int>(threads, static_cast<int>(chunks.size()));
    // Sessions are made here so that a worker can only fail per chunk; an exception escaping a
    // thread would be std::terminate, so each is kept and the first rethrown after the join.
    std::vector<std::unique_ptr<Session>> sessions;
    for (int t = 0; t < workers; ++t) sessions.push_back(std::make_unique<Session>(*this));
    auto work = [&](Session& session) {
      for (std::size_t c = next++; c < chunks.size(); c = next++) {
        try {
          encode_segments(chunks[c], options, session, results[c]);
        } catch (...) {
          errors[c] = std::current_exception();
        }
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < workers; ++t) {
      try {
        pool.emplace_back(work, std::ref(*sessions[t]));
      } catch (const std::system_error&) {
        break;  // no more threads: the workers that exist take the remaining chunks
      }
    }
    work(*sessions[0]);
    for (auto& t : pool) t.join();
    for (const auto& error : errors)
      if (error) std::rethrow_exception(error);
    std::size_t total = 0;
    for (const auto& r : results) total += r.size();
    std::vector<int> out;
    out.reserve(total);
    for (const auto& r : results) out.insert(out.end(), r.begin(), r.end());
    return out;
  }

  // Reads a whole file as one text and encodes it on all cores.
  std::vector<int> encode_file(const std::filesystem::path& path, EncodeOptions options = {},
                               int threads = 0) const {
    const std::string text = detail::read_text_file(path);
    try {
      return encode_parallel(text, options, threads);
    } catch (const Error& e) {
      throw Error(detail::concat("'", path.string(), "': ", detail::error_detail(e)));
    }
  }

  // Concatenates the tokens' bytes. Any id sequence decodes; the result is valid UTF-8 whenever
  // the ids came from encode().
  template <class Int>
  std::string decode(std::span<const Int> ids) const {
    std::string out;
    out.reserve(ids.size() * 4);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const long long id = static_cast<long long>(ids[i]);
      LIGHTGPT_CHECK(id >= 0 && id < vocab_size(), "cannot decode token ", id, " at position ", i,
                     ": the vocabulary has ", vocab_size(), " tokens");
      out += id_to_bytes_[static_cast<std::size_t>(id)];
    }
    return out;
  }
  std::string decode(const std::vector<int>& ids) const {
    return decode(std::span<const int>(ids));
  }

 private:
  struct Merge {
    int rank;
    int id;
  };
  static std::uint64_t pair_key(int a, int b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
           static_cast<std::uint32_t>(b);
  }

  // Per-call scratch: match data, the piece cache, and the merge work arrays, so that a const
  // Tokenizer can be shared by any number of threads.
  struct Session {
    explicit Session(const Tokenizer& tok) : match(tok.pattern_.code) {}
    detail::Pcre2MatchData match;
    std::unordered_map<std::string, std::pair<std::uint32_t, std::uint32_t>, detail::StringHash,
                       std::equal_to<>>
        cache;
    std::vector<int> cache_ids;
    struct Node {
      int id, prev, next;
    };
    std::vector<Node> nodes;
    std::vector<std::pair<int, int>> heap;  // (rank, left node), min-heap
  };

  static void check_utf8(std::string_view text, std::size_t base) {
    const std::size_t bad = find_invalid_utf8(text);
    if (bad != std::string_view::npos) {
      throw Error(detail::concat("invalid UTF-8 at byte offset ", base + bad, " (byte 0x", std::hex,
                                 static_cast<int>(static_cast<unsigned char>(text[bad])), ")"));
    }
  }

  static bool printable_ascii(char c) { return c > ' ' && c < 0x7F; }
  static bool safe_cut(std::string_view text, std::size_t p) {
    return p >= 2 && text[p - 1] == '\n' && printable_ascii(text[p - 2]) &&
           printable_ascii(text[p]);
  }

  void encode_segments(std::string_view text, EncodeOptions options, Session& session,
                       std::vector<int>& out) const {
    if (!options.allow_endoftext) {
      encode_ordinary(text, session, out);
      return;
    }
    LIGHTGPT_CHECK(eot_id_ >= 0, "allow_endoftext was requested but the vocabulary has no '",
                   kEndOfText, "' token");
    std::size_t start = 0;
    while (true) {
      const std::size_t at = text.find(kEndOfText, start);
      if (at == std::string_view::npos) break;
      encode_ordinary(text.substr(start, at - start), session, out);
      out.push_back(eot_id_);
      start = at + kEndOfText.size();
    }
    encode_ordinary(text.substr(start), session, out);
  }

  void encode_ordinary(std::string_view text, Session& session, std::vector<int>& out) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(session.match.data);
    std::size_t offset = 0;
    while (offset < text.size()) {
      const int rc = pcre2_match(pattern_.code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK,
                                 session.match.data, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof message);
        throw Error(detail::concat("PCRE2 match failed at byte offset ", offset, ": ",
                                   reinterpret_cast<const char*>(message)));
      }
      const std::size_t begin = ovector[0], end = ovector[1];
      LIGHTGPT_CHECK(end > begin, "tokenizer regex matched an empty piece at byte ", begin);
      bpe_piece(text.substr(begin, end - begin), session, out);
      offset = end;
    }
  }

  const Merge* find_merge(int a, int b) const {
    const auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  // Merges the piece's byte tokens. A heap ordered by (rank, position) replays the reference
  // algorithm (merge every occurrence of the lowest-rank pair, left to right, then repeat)
  // because load_merges() verified that a merge's result is never consumed by a lower-ranked
  // merge; it costs O(n log n) where the reference is quadratic on long pieces.
  void bpe_piece(std::string_view piece, Session& s, std::vector<int>& out) const {
    if (piece.size() == 1) {
      out.push_back(byte_id_[static_cast<unsigned char>(piece[0])]);
      return;
    }
    if (const auto hit = s.cache.find(piece); hit != s.cache.end()) {
      const auto [first, count] = hit->second;
      out.insert(out.end(), s.cache_ids.begin() + first, s.cache_ids.begin() + first + count);
      return;
    }
    const int n = static_cast<int>(piece.size());
    s.nodes.resize(static_cast<std::size_t>(n));
    s.heap.clear();
    for (int i = 0; i < n; ++i)
      s.nodes[i] = {byte_id_[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
    auto push = [&](int left) {
      if (const Merge* m = find_merge(s.nodes[left].id, s.nodes[s.nodes[left].next].id)) {
        s.heap.emplace_back(m->rank, left);
        std::push_heap(s.heap.begin(), s.heap.end(), std::greater<>{});
      }
    };
    for (int i = 0; i + 1 < n; ++i) push(i);
    while (!s.heap.empty()) {
      std::pop_heap(s.heap.begin(), s.heap.end(), std::greater<>{});
      const auto [rank, left] = s.heap.back();
      s.heap.pop_back();
      auto& node = s.nodes[left];
      if (node.id < 0 || node.next < 0) continue;
      const Merge* m = find_merge(node.id, s.nodes[node.next].id);
      if (m == nullptr || m->rank != rank) continue;  // stale: a neighbour changed
      const int right = node.next;
      node.id = m->id;
      node.next = s.nodes[right].next;
      s.nodes[right].id = -1;
      if (node.next >= 0) s.nodes[node.next].prev = left;
      if (node.prev >= 0) push(node.prev);
      if (node.next >= 0) push(left);
    }
    const std::size_t first = out.size();
    for (int i = 0; i >= 0; i = s.nodes[i].next) out.push_back(s.nodes[i].id);
    // Bounded so that a huge text of unique pieces cannot grow the cache without limit.
    if (s.cache.size() < (std::size_t{1} << 20) && piece.size() <= 256) {
      const auto count = static_cast<std::uint32_t>(out.size() - first);
      s.cache.emplace(std::string(piece),
                      std::pair{static_cast<std::uint32_t>(s.cache_ids.size()), count});
      s.cache_ids.insert(s.cache_ids.end(), out.begin() + static_cast<std::ptrdiff_t>(first),
                         out.end());
    }
  }

  void load_encoder(const std::filesystem::path& path) {
    const std::string file = path.string();
    const std::string text = detail::read_text_file(path);
    auto entries = detail::parse_encoder_json(text, file);
    LIGHTGPT_CHECK(!entries.empty(), "'", file, "' holds no tokens");
    const auto to_unicode = detail::gpt2_byte_to_unicode();
    std::unordered_map<char32_t, int> to_byte;
    for (int b = 0; b < 256; ++b) to_byte[to_unicode[b]] = b;
    long long max_id = -1;
    for (const auto& e : entries) max_id = std::max(max_id, e.second);
    LIGHTGPT_CHECK(max_id + 1 == static_cast<long long>(entries.size()), "'", file,
                   "' must number its ", entries.size(), " tokens 0..", entries.size() - 1,
                   " without gaps, but the largest id is ", max_id);
    id_to_bytes_.assign(entries.size(), std::string());
    std::vector<bool> seen(entries.size(), false);
    for (const auto& [key, id] : entries) {
      LIGHTGPT_CHECK(!seen[static_cast<std::size_t>(id)], "'", file, "' uses id ", id, " twice");
      seen[static_cast<std::size_t>(id)] = true;
      std::string bytes;
      for (char32_t cp : key) {
        const auto it = to_byte.find(cp);
        LIGHTGPT_CHECK(it != to_byte.end(), "'", file, "': token ", id, " contains code point U+",
                       std::hex, static_cast<unsigned long>(cp),
                       " which is not in GPT-2's byte alphabet");
        bytes.push_back(static_cast<char>(it->second));
      }
      LIGHTGPT_CHECK(bytes_to_id_.emplace(bytes, static_cast<int>(id)).second, "'", file,
                     "': two tokens decode to the same bytes (id ", id, ")");
      id_to_bytes_[static_cast<std::size_t>(id)] = std::move(bytes);
    }
    for (int b = 0; b < 256; ++b) {
      const auto it = bytes_to_id_.find(std::string(1, static_cast<char>(b)));
      LIGHTGPT_CHECK(it != bytes_to_id_.end(), "'", file, "' lacks the single-byte token for byte ",
                     b);
      byte_id_[b] = it->second;
    }
    // "<|endoftext|>" is all printable ASCII, which the byte table maps to itself.
    const auto eot = bytes_to_id_.find(std::string(kEndOfText));
    eot_id_ = eot == bytes_to_id_.end() ? -1 : eot->second;
  }

  void load_merges(const std::filesystem::path& path) {
    const std::string file = path.string();
    const std::string text = detail::read_text_file(path);
    const auto to_unicode = detail::gpt2_byte_to_unicode();
    std::unordered_map<std::string, int> utf8_to_id;  // vocab keys as they are written in files
    for (std::size_t id = 0; id < id_to_bytes_.size(); ++id) {
      std::string key;
      for (unsigned char b : id_to_bytes_[id]) append_utf8(key, to_unicode[b]);
      utf8_to_id.emplace(std::move(key), static_cast<int>(id));
    }
    std::vector<bool> consumed(id_to_bytes_.size(), false), made(id_to_bytes_.size(), false);
    std::size_t line_start = 0;
    int line_no = 0;
    int rank = 0;
    while (line_start < text.size()) {
      std::size_t line_end = text.find('\n', line_start);
      if (line_end == std::string::npos) line_end = text.size();
      std::string_view line(text.data() + line_start, line_end - line_start);
      line_start = line_end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
      const std::size_t space = line.find(' ');
      LIGHTGPT_CHECK(space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
                         line.find(' ', space + 1) == std::string_view::npos,
                     "'", file, "' line ", line_no, ": expected two tokens separated by a space");
      const std::string left(line.substr(0, space)), right(line.substr(space + 1));
      const auto a = utf8_to_id.find(left), b = utf8_to_id.find(right),
                 c = utf8_to_id.find(left + right);
      LIGHTGPT_CHECK(a != utf8_to_id.end() && b != utf8_to_id.end() && c != utf8_to_id.end(), "'",
                     file, "' line ", line_no, ": merge '", line,
                     "' uses or makes a token that encoder.json lacks");
      LIGHTGPT_CHECK(!consumed[c->second], "'", file, "' line ", line_no, ": merge '", line,
                     "' makes a token that an earlier merge already consumed; merges must be in "
                     "training order");
      LIGHTGPT_CHECK(!made[c->second], "'", file, "' line ", line_no, ": merge '", line,
                     "' makes a token that an earlier merge already makes");
      made[c->second] = true;
      consumed[a->second] = consumed[b->second] = true;
      LIGHTGPT_CHECK(merges_.emplace(pair_key(a->second, b->second), Merge{rank, c->second}).second,
                     "'", file, "' line ", line_no, ": merge '", line, "' appears twice");
      ++rank;
    }
    // Every token that is not a byte or <|endoftext|> is made by exactly one merge, so a
    // truncated or padded merge list (which would silently change the ids) cannot match.
    const std::size_t needed = id_to_bytes_.size() - 256 - (eot_id_ >= 0 ? 1 : 0);
    LIGHTGPT_CHECK(static_cast<std::size_t>(rank) == needed, "'", file, "' holds ", rank,
                   " merges, but the vocabulary's ", id_to_bytes_.size(), " tokens need exactly ",
                   needed, " (one per token beyond the 256 bytes",
                   eot_id_ >= 0 ? " and <|endoftext|>" : "", "): truncated or mismatched file?");
  }

  void compile_pattern() {
    std::string pattern(kSplitPattern);
    for (std::size_t at = pattern.find("WS"); at != std::string::npos;
         at = pattern.find("WS", at)) {
      pattern.replace(at, 2, kWhiteSpace);
      at += std::string_view(kWhiteSpace).size();
    }
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    pattern_.code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                  PCRE2_UTF, &error, &error_offset, nullptr);
    if (pattern_.code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      throw Error(detail::concat("cannot compile the tokenizer regex at offset ", error_offset,
                                 ": ", reinterpret_cast<const char*>(message)));
    }
    // Without JIT (unsupported platform) pcre2_match falls back to the interpreter.
    pcre2_jit_compile(pattern_.code, PCRE2_JIT_COMPLETE);
  }

  std::vector<std::string> id_to_bytes_;
  std::unordered_map<std::string, int> bytes_to_id_;
  std::array<int, 256> byte_id_{};
  std::unordered_map<std::uint64_t, Merge> merges_;
  int eot_id_ = -1;
  detail::Pcre2Code pattern_;
};

}  // namespace lightgpt
