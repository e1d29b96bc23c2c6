// What the trainer measures and where it goes: one concise console line per step, and every
// metric as one JSON object per line in `metrics.jsonl`, the file `plot` reads.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

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

// One JSON object built field by field, in order; numbers that are not finite become null, and
// text that is not valid UTF-8 is written with replacement characters rather than refused.
class JsonRecord {
 public:
  JsonRecord& add(std::string_view key, double value) {
    record_[std::string(key)] =
        std::isfinite(value) ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
    return *this;
  }
  JsonRecord& add(std::string_view key, std::int64_t value) {
    record_[std::string(key)] = value;
    return *this;
  }
  JsonRecord& add(std::string_view key, std::string_view value) {
    record_[std::string(key)] = std::string(value);
    return *this;
  }
  std::string str() const {
    return record_.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }

 private:
  nlohmann::ordered_json record_ = nlohmann::ordered_json::object();
};

// One JSONL line as a JSON object, or nothing for a line that is not one (such as the last line
// of a run killed while writing it).
inline std::optional<nlohmann::json> parse_json_record(std::string_view line) {
  nlohmann::json record = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (record.is_discarded() || !record.is_object()) return std::nullopt;
  return record;
}

// The number stored under `key` in a record (or in one JSONL line), or NaN when it lacks it,
// holds null or the line is not a JSON object.
inline double record_number(const nlohmann::json& record, std::string_view key) {
  const auto it = record.find(key);
  return it == record.end() || !it->is_number() ? std::nan("") : it->get<double>();
}
inline double json_number(std::string_view line, std::string_view key) {
  const std::optional<nlohmann::json> record = parse_json_record(line);
  return record ? record_number(*record, key) : std::nan("");
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
