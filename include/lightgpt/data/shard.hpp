// Token shards in the llm.c / modded-nanogpt format: a 256 x int32 little-endian header
// (magic 20240520, version 1, token count, rest zero) followed by `count` uint16 token ids.
// Readers memory-map the file and validate it completely before handing out a span, so a
// truncated or foreign file fails at open with its name in the message, never mid-training.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <lightgpt/core/error.hpp>

namespace lightgpt {

inline constexpr std::int32_t kShardMagic = 20240520;
inline constexpr std::int32_t kShardVersion = 1;
inline constexpr std::size_t kShardHeaderInts = 256;
inline constexpr std::size_t kShardHeaderBytes = kShardHeaderInts * sizeof(std::int32_t);

namespace detail {

inline std::string errno_text() { return std::strerror(errno); }

// Closes a POSIX file descriptor on scope exit.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

inline void write_all(int fd, const void* data, std::size_t size, const std::string& file) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    LIGHTGPT_CHECK(n > 0, "cannot write '", file, "': ", errno_text());
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace detail

// Writes `tokens` as a shard. The data goes to a temporary file in the same directory, is
// fsync'ed and then renamed over `path`, so readers never see a half-written shard.
inline void write_shard(const std::filesystem::path& path, std::span<const std::uint16_t> tokens) {
  const std::string file = path.string();
  LIGHTGPT_CHECK(
      tokens.size() <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
      "cannot write '", file, "': ", tokens.size(),
      " tokens exceed the format's int32 count; split them over several shards");
  static std::atomic<unsigned> counter{0};
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  const std::string tmp_file = tmp.string();
  std::int32_t header[kShardHeaderInts] = {};
  header[0] = kShardMagic;
  header[1] = kShardVersion;
  header[2] = static_cast<std::int32_t>(tokens.size());
  try {
    detail::FdGuard guard{::open(tmp_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    LIGHTGPT_CHECK(guard.fd >= 0, "cannot create '", tmp_file, "': ", detail::errno_text());
    detail::write_all(guard.fd, header, sizeof header, tmp_file);
    detail::write_all(guard.fd, tokens.data(), tokens.size_bytes(), tmp_file);
    LIGHTGPT_CHECK(::fsync(guard.fd) == 0, "cannot sync '", tmp_file, "': ", detail::errno_text());
    const int fd = guard.fd;
    guard.fd = -1;
    LIGHTGPT_CHECK(::close(fd) == 0, "cannot close '", tmp_file, "': ", detail::errno_text());
    LIGHTGPT_CHECK(::rename(tmp_file.c_str(), file.c_str()) == 0, "cannot rename '", tmp_file,
                   "' to '", file, "': ", detail::errno_text());
  } catch (...) {
    ::unlink(tmp_file.c_str());
    throw;
  }
}

// Same, for ids held in a wider integer type; every id must fit in uint16.
template <class Int>
requires(std::is_integral_v<Int> &&
         !std::is_same_v<Int, std::uint16_t>) void write_shard(const std::filesystem::path& path,
                                                               std::span<const Int> tokens) {
  std::vector<std::uint16_t> narrow(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    LIGHTGPT_CHECK(tokens[i] >= 0 && static_cast<long long>(tokens[i]) <= 0xFFFF, "cannot write '",
                   path.string(), "': token ", static_cast<long long>(tokens[i]), " at position ",
                   i, " does not fit in uint16");
    narrow[i] = static_cast<std::uint16_t>(tokens[i]);
  }
  write_shard(path, std::span<const std::uint16_t>(narrow));
}

// A read-only, memory-mapped, validated shard. Move-only; the span stays valid while it lives.
class Shard {
 public:
  // With vocab_size > 0 every token is also checked to be < vocab_size.
  explicit Shard(const std::filesystem::path& path, int vocab_size = 0) : path_(path) {
    const std::string file = path.string();
    detail::FdGuard guard{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
    LIGHTGPT_CHECK(guard.fd >= 0, "cannot open shard '", file, "': ", detail::errno_text());
    struct stat st {};
    LIGHTGPT_CHECK(::fstat(guard.fd, &st) == 0, "cannot stat shard '", file,
                   "': ", detail::errno_text());
    LIGHTGPT_CHECK(S_ISREG(st.st_mode), "shard '", file, "' is not a regular file");
    const auto size = static_cast<std::size_t>(st.st_size);
    LIGHTGPT_CHECK(size > 0, "shard '", file, "' is empty");
    LIGHTGPT_CHECK(size >= kShardHeaderBytes, "shard '", file, "' has ", size,
                   " bytes, fewer than the ", kShardHeaderBytes, "-byte header");
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, guard.fd, 0);
    LIGHTGPT_CHECK(map != MAP_FAILED, "cannot mmap shard '", file, "': ", detail::errno_text());
    map_ = map;
    map_size_ = size;
    try {
      std::int32_t header[3];
      std::memcpy(header, map_, sizeof header);
      LIGHTGPT_CHECK(header[0] == kShardMagic, "shard '", file, "' has magic ", header[0],
                     ", expected ", kShardMagic, " (not an llm.c token shard?)");
      LIGHTGPT_CHECK(header[1] == kShardVersion, "shard '", file, "' has version ", header[1],
                     ", expected ", kShardVersion, " (uint16 tokens)");
      LIGHTGPT_CHECK(header[2] >= 0, "shard '", file, "' has a negative token count ", header[2]);
      const std::size_t count = static_cast<std::size_t>(header[2]);
      LIGHTGPT_CHECK(size == kShardHeaderBytes + 2 * count, "shard '", file, "' is ", size,
                     " bytes but its header says ", count, " tokens, which need ",
                     kShardHeaderBytes + 2 * count, " bytes (1024 + 2 * count)");
      tokens_ =
          std::span<const std::uint16_t>(reinterpret_cast<const std::uint16_t*>(
                                             static_cast<const char*>(map_) + kShardHeaderBytes),
                                         count);
      if (vocab_size > 0) {
        for (std::size_t i = 0; i < count; ++i) {
          LIGHTGPT_CHECK(tokens_[i] < vocab_size, "shard '", file, "' holds token ", tokens_[i],
                         " at position ", i, ", outside the vocabulary of ", vocab_size);
        }
      }
    } catch (...) {
      release();
      throw;
    }
  }

  Shard(Shard&& other) noexcept { *this = std::move(other); }
  Shard& operator=(Shard&& other) noexcept {
    if (this != &other) {
      release();
      path_ = std::move(other.path_);
      map_ = std::exchange(other.map_, nullptr);
      map_size_ = std::exchange(other.map_size_, 0);
      tokens_ = std::exchange(other.tokens_, {});
    }
    return *this;
  }
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  ~Shard() { release(); }

  std::span<const std::uint16_t> tokens() const { return tokens_; }
  std::size_t size() const { return tokens_.size(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  void release() noexcept {
    if (map_ != nullptr) ::munmap(map_, map_size_);
    map_ = nullptr;
    map_size_ = 0;
    tokens_ = {};
  }

  std::filesystem::path path_;
  void* map_ = nullptr;
  std::size_t map_size_ = 0;
  std::span<const std::uint16_t> tokens_;
};

}  // namespace lightgpt
