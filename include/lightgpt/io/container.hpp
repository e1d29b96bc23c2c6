// The checkpoint container: one versioned file of named sections, each with its byte length and
// a CRC-32 of its payload, so any feature can add a section and a truncated or corrupted file is
// always detected. Little-endian layout (version 1):
//   "LGPTCKPT" | u32 version | u32 section count | sections…
//   section: u32 name length | name | u64 payload length | u32 crc32(payload) | payload
// The writer streams into `<path>.tmp` (removing a stale one left by a killed writer), syncs it,
// renames it over `path` only on commit() and syncs the directory, so the name always points to
// a whole file, also across a power loss.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"

namespace lightgpt {

inline constexpr char kCheckpointMagic[8] = {'L', 'G', 'P', 'T', 'C', 'K', 'P', 'T'};
inline constexpr std::uint32_t kCheckpointVersion = 1;

namespace detail {

// Fuzzing builds define LIGHTGPT_FUZZ_SKIP_CHECKSUMS so that mutated inputs reach the parsers
// behind the CRCs (checkpoint sections, codebooks, bigram tables); nothing else may.
#if defined(LIGHTGPT_FUZZ_SKIP_CHECKSUMS)
inline constexpr bool kVerifyChecksums = false;
#else
inline constexpr bool kVerifyChecksums = true;
#endif

// fsync of an open stream's data, then of the directory holding `path` (after a rename, so that
// the new name itself is durable).
inline void sync_stream(std::FILE* file, const std::filesystem::path& path) {
  LIGHTGPT_CHECK(std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0, "cannot sync '",
                 path.string(), "': ", std::strerror(errno));
}
inline void sync_directory_of(const std::filesystem::path& path) {
  const std::filesystem::path dir =
      path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  LIGHTGPT_CHECK(fd >= 0, "cannot open the directory '", dir.string(), "' to sync it: ",
                 std::strerror(errno));
  const bool synced = ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  LIGHTGPT_CHECK(synced, "cannot sync the directory '", dir.string(), "': ", std::strerror(saved));
}

// Closes a written temporary, syncs it, renames it over `path` and syncs the directory.
inline void commit_temporary(std::FILE* file, const std::filesystem::path& temp,
                             const std::filesystem::path& path) {
  bool synced = true;
  try {
    sync_stream(file, temp);
  } catch (...) {
    synced = false;
  }
  const bool closed = std::fclose(file) == 0;
  LIGHTGPT_CHECK(synced && closed, "writing '", temp.string(), "' failed: ", std::strerror(errno));
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  LIGHTGPT_CHECK(!error, "cannot rename '", temp.string(), "' to '", path.string(),
                 "': ", error.message());
  sync_directory_of(path);
}

// A stale temporary of `path` (from a writer that was killed) is removed before a new one is
// written; a directory or other non-file there is an error rather than something to delete.
inline void remove_stale_temporary(const std::filesystem::path& temp) {
  std::error_code error;
  const auto status = std::filesystem::symlink_status(temp, error);
  if (error || !std::filesystem::exists(status)) return;
  LIGHTGPT_CHECK(std::filesystem::is_regular_file(status), "cannot write '", temp.string(),
                 "': something other than a file is in the way");
  std::filesystem::remove(temp, error);
  LIGHTGPT_CHECK(!error, "cannot remove the stale temporary '", temp.string(), "': ",
                 error.message());
}

inline std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t size) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> entries{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      entries[i] = c;
    }
    return entries;
  }();
  const auto* bytes = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

}  // namespace detail

class CheckpointWriter {
 public:
  explicit CheckpointWriter(std::filesystem::path path)
      : path_(std::move(path)), temp_(path_.string() + ".tmp") {
    detail::remove_stale_temporary(temp_);
    file_ = std::fopen(temp_.c_str(), "wb");
    LIGHTGPT_CHECK(file_ != nullptr, "cannot open checkpoint '", temp_.string(),
                   "' for writing: ", std::strerror(errno));
    put(kCheckpointMagic, sizeof(kCheckpointMagic));
    put_value(kCheckpointVersion);
    put_value(std::uint32_t{0});  // section count, patched by commit()
  }
  ~CheckpointWriter() {
    if (file_) {
      std::fclose(file_);
      std::error_code ignored;
      std::filesystem::remove(temp_, ignored);
    }
  }
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  void begin_section(std::string_view name) {
    LIGHTGPT_CHECK(!in_section_, "checkpoint section '", name, "' begun inside another");
    put_value(static_cast<std::uint32_t>(name.size()));
    put(name.data(), name.size());
    section_header_ = std::ftell(file_);
    put_value(std::uint64_t{0});
    put_value(std::uint32_t{0});
    section_bytes_ = 0;
    crc_ = 0;
    in_section_ = true;
  }
  void write(const void* data, std::size_t size) {
    LIGHTGPT_CHECK(in_section_, "checkpoint write outside a section");
    put(data, size);
    crc_ = detail::crc32_update(crc_, data, size);
    section_bytes_ += size;
  }
  template <class V>
  requires std::is_trivially_copyable_v<V>
  void write_value(const V& value) { write(&value, sizeof(V)); }
  void write_string(std::string_view text) {
    write_value(static_cast<std::uint64_t>(text.size()));
    write(text.data(), text.size());
  }
  void end_section() {
    LIGHTGPT_CHECK(in_section_, "checkpoint end_section() without begin_section()");
    const long end = std::ftell(file_);
    std::fseek(file_, section_header_, SEEK_SET);
    put_value(section_bytes_);
    put_value(crc_);
    std::fseek(file_, end, SEEK_SET);
    in_section_ = false;
    ++sections_;
  }
  // A whole section from one buffer.
  void add_section(std::string_view name, std::string_view payload) {
    begin_section(name);
    write(payload.data(), payload.size());
    end_section();
  }

  // Syncs and atomically replaces `path`, then syncs its directory; before this the old file is
  // untouched.
  void commit() {
    LIGHTGPT_CHECK(!in_section_, "checkpoint commit() inside a section");
    std::fseek(file_, sizeof(kCheckpointMagic) + sizeof(std::uint32_t), SEEK_SET);
    put_value(sections_);
    std::FILE* file = file_;
    file_ = nullptr;
    try {
      detail::commit_temporary(file, temp_, path_);
    } catch (...) {
      std::error_code ignored;
      std::filesystem::remove(temp_, ignored);
      throw;
    }
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  void put(const void* data, std::size_t size) {
    LIGHTGPT_CHECK(std::fwrite(data, 1, size, file_) == size, "writing checkpoint '",
                   temp_.string(), "' failed: ", std::strerror(errno));
  }
  template <class V>
  void put_value(const V& value) {
    put(&value, sizeof(V));
  }

  std::filesystem::path path_, temp_;
  std::FILE* file_ = nullptr;
  long section_header_ = 0;
  std::uint64_t section_bytes_ = 0;
  std::uint32_t crc_ = 0;
  std::uint32_t sections_ = 0;
  bool in_section_ = false;
};

// A bounds-checked cursor over one section's payload.
class SectionReader {
 public:
  SectionReader(std::vector<char> payload, std::string context)
      : payload_(std::move(payload)), context_(std::move(context)) {}

  void read(void* out, std::size_t size) {
    LIGHTGPT_CHECK(size <= payload_.size() - pos_, context_, ": section ends early (needs ", size,
                   " more bytes at offset ", pos_, ", has ", payload_.size() - pos_, ")");
    std::memcpy(out, payload_.data() + pos_, size);
    pos_ += size;
  }
  template <class V>
  requires std::is_trivially_copyable_v<V> V read_value() {
    V value;
    read(&value, sizeof(V));
    return value;
  }
  std::string read_string() {
    const auto size = read_value<std::uint64_t>();
    LIGHTGPT_CHECK(size <= payload_.size() - pos_, context_, ": string of ", size,
                   " bytes runs past the section end");
    std::string text(payload_.data() + pos_, size);
    pos_ += size;
    return text;
  }
  std::string_view rest() const { return {payload_.data() + pos_, payload_.size() - pos_}; }
  std::size_t remaining() const { return payload_.size() - pos_; }
  bool at_end() const { return pos_ == payload_.size(); }
  const std::string& context() const { return context_; }

 private:
  std::vector<char> payload_;
  std::string context_;
  std::size_t pos_ = 0;
};

class CheckpointReader {
 public:
  explicit CheckpointReader(std::filesystem::path path) : path_(std::move(path)) {
    std::FILE* file = std::fopen(path_.c_str(), "rb");
    LIGHTGPT_CHECK(file != nullptr, "cannot open checkpoint '", path_.string(),
                   "': ", std::strerror(errno));
    std::fseek(file, 0, SEEK_END);
    const long long file_size = std::ftell(file);
    std::fclose(file);
    std::error_code error;
    LIGHTGPT_CHECK(file_size >= 0 && std::filesystem::is_regular_file(path_, error),
                   "checkpoint '", path_.string(), "' is not a regular file");
    file_size_ = static_cast<std::uint64_t>(file_size);

    char magic[sizeof(kCheckpointMagic)] = {};
    std::uint64_t pos = 0;
    read_at(pos, magic, sizeof(magic), "the magic");
    LIGHTGPT_CHECK(std::memcmp(magic, kCheckpointMagic, sizeof(magic)) == 0, "'", path_.string(),
                   "' is not a lightgpt checkpoint (bad magic)");
    const auto version = read_value_at<std::uint32_t>(pos, "the version");
    LIGHTGPT_CHECK(version == kCheckpointVersion, "checkpoint '", path_.string(), "' has version ",
                   version, "; this build reads version ", kCheckpointVersion);
    const auto count = read_value_at<std::uint32_t>(pos, "the section count");
    for (std::uint32_t i = 0; i < count; ++i) {
      const auto name_size = read_value_at<std::uint32_t>(pos, "a section name length");
      LIGHTGPT_CHECK(name_size <= 256, "checkpoint '", path_.string(), "': section #", i,
                     " has an implausible name length ", name_size, " (corrupted file)");
      std::string name(name_size, '\0');
      read_at(pos, name.data(), name_size, "a section name");
      Entry entry;
      entry.name = name;
      entry.size = read_value_at<std::uint64_t>(pos, "the length of section '" + name + "'");
      entry.crc = read_value_at<std::uint32_t>(pos, "the checksum of section '" + name + "'");
      entry.offset = pos;
      LIGHTGPT_CHECK(entry.size <= file_size_ - pos, "checkpoint '", path_.string(),
                     "' is truncated: section '", name, "' needs ", entry.size, " bytes, ",
                     file_size_ - pos, " remain");
      pos += entry.size;
      entries_.push_back(std::move(entry));
    }
    LIGHTGPT_CHECK(pos == file_size_, "checkpoint '", path_.string(), "' has ", file_size_ - pos,
                   " unexpected trailing bytes (corrupted file)");
  }

  bool has(std::string_view name) const { return find(name) != nullptr; }

  // The payload of a section, its checksum verified.
  SectionReader section(std::string_view name) const {
    const Entry* entry = find(name);
    LIGHTGPT_CHECK(entry != nullptr, "checkpoint '", path_.string(), "' has no section '", name,
                   "'");
    std::vector<char> payload(entry->size);
    std::uint64_t pos = entry->offset;
    read_at(pos, payload.data(), payload.size(), "section '" + entry->name + "'");
    LIGHTGPT_CHECK(!detail::kVerifyChecksums ||
                       detail::crc32_update(0, payload.data(), payload.size()) == entry->crc,
                   "checkpoint '", path_.string(), "': section '", name,
                   "' fails its checksum (corrupted file)");
    return SectionReader(std::move(payload),
                         "checkpoint '" + path_.string() + "', section '" + entry->name + "'");
  }

  // The payload length of a section as the file states it (checked against the file's length).
  std::uint64_t section_size(std::string_view name) const {
    const Entry* entry = find(name);
    LIGHTGPT_CHECK(entry != nullptr, "checkpoint '", path_.string(), "' has no section '", name,
                   "'");
    return entry->size;
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  struct Entry {
    std::string name;
    std::uint64_t offset = 0, size = 0;
    std::uint32_t crc = 0;
  };

  const Entry* find(std::string_view name) const {
    for (const Entry& entry : entries_) {
      if (entry.name == name) return &entry;
    }
    return nullptr;
  }

  void read_at(std::uint64_t& pos, void* out, std::size_t size, const std::string& what) const {
    LIGHTGPT_CHECK(size <= file_size_ && pos <= file_size_ - size, "checkpoint '", path_.string(),
                   "' is truncated while reading ", what);
    std::FILE* file = std::fopen(path_.c_str(), "rb");
    LIGHTGPT_CHECK(file != nullptr, "cannot open checkpoint '", path_.string(), "'");
    std::fseek(file, static_cast<long>(pos), SEEK_SET);
    const std::size_t got = std::fread(out, 1, size, file);
    std::fclose(file);
    LIGHTGPT_CHECK(got == size, "checkpoint '", path_.string(), "': short read of ", what);
    pos += size;
  }
  template <class V>
  V read_value_at(std::uint64_t& pos, const std::string& what) const {
    V value;
    read_at(pos, &value, sizeof(V), what);
    return value;
  }

  std::filesystem::path path_;
  std::uint64_t file_size_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace lightgpt
