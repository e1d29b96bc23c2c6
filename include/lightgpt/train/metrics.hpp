// What the trainer measures and where it goes: one concise console line per step, and every
// metric as one JSON object per line in `metrics.jsonl`, the file `plot` reads.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"

namespace lightgpt {

// Peak resident memory of this process in MB (VmHWM), 0 where the system does not report it.
inline double peak_host_memory_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// One JSON object built field by field; numbers that are not finite become null.
class JsonRecord {
 public:
  JsonRecord& add(std::string_view key, double value) {
    key_(key);
    if (std::isfinite(value)) {
      char text[32];
      std::snprintf(text, sizeof text, "%.9g", value);
      out_ << text;
    } else {
      out_ << "null";
    }
    return *this;
  }
  JsonRecord& add(std::string_view key, std::int64_t value) {
    key_(key);
    out_ << value;
    return *this;
  }
  JsonRecord& add(std::string_view key, std::string_view value) {
    key_(key);
    out_ << '"';
    for (char c : value) {
      if (c == '"' || c == '\\') out_ << '\\';
      if (static_cast<unsigned char>(c) >= 0x20) out_ << c;
    }
    out_ << '"';
    return *this;
  }
  std::string str() const { return "{" + out_.str() + "}"; }

 private:
  void key_(std::string_view key) {
    if (!first_) out_ << ", ";
    first_ = false;
    out_ << '"' << key << "\": ";
  }
  std::ostringstream out_;
  bool first_ = true;
};

// The number stored under `key` in one JSONL line, or NaN when the line lacks it (or it is null).
inline double json_number(std::string_view line, std::string_view key) {
  const std::string quoted = "\"" + std::string(key) + "\":";
  const std::size_t at = line.find(quoted);
  if (at == std::string_view::npos) return std::nan("");
  std::size_t pos = at + quoted.size();
  while (pos < line.size() && line[pos] == ' ') ++pos;
  const std::string rest(line.substr(pos, 40));
  char* end = nullptr;
  const double value = std::strtod(rest.c_str(), &end);
  return end == rest.c_str() ? std::nan("") : value;
}

// Appends records to a JSONL file, flushing each so a crash loses nothing already logged.
class MetricsLog {
 public:
  MetricsLog() = default;
  // keep_through_step >= 0 (resume): records of later steps, from the run being resumed past its
  // checkpoint, are dropped first so the file describes one consistent run.
  explicit MetricsLog(const std::filesystem::path& path, std::int64_t keep_through_step = -1)
      : path_(path) {
    if (keep_through_step >= 0 && std::filesystem::exists(path)) {
      std::ifstream in(path);
      std::vector<std::string> kept;
      std::string line;
      while (std::getline(in, line)) {
        const double step = json_number(line, "step");
        if (!std::isnan(step) && step <= double(keep_through_step)) kept.push_back(line);
      }
      in.close();
      std::ofstream rewrite(path, std::ios::trunc);
      for (const std::string& k : kept) rewrite << k << '\n';
    } else if (keep_through_step < 0) {
      std::ofstream truncate(path, std::ios::trunc);
      LIGHTGPT_CHECK(truncate.good(), "cannot write the metrics file '", path.string(), "'");
    }
    out_.open(path, std::ios::app);
    LIGHTGPT_CHECK(out_.good(), "cannot write the metrics file '", path.string(), "'");
  }

  void write(const JsonRecord& record) {
    if (!out_.is_open()) return;
    out_ << record.str() << '\n';
    out_.flush();
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

// "1h02m", "3m07s", "12s".
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long s = static_cast<long long>(seconds + 0.5);
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, s / 60 % 60);
  } else if (s >= 60) {
    std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%llds", s);
  }
  return text;
}

}  // namespace lightgpt
