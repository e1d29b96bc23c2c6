// lightgpt::Error — the one exception type the library throws for bad input (files, flags,
// configs, shapes). Messages name the offending field or file and the value that was expected,
// so a user can fix the call without reading the source. Also: size arithmetic that throws
// instead of wrapping, and the one-line report every program's main prints for any exception.
#pragma once

#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace lightgpt {

class Error : public std::runtime_error {
 public:
  static constexpr std::string_view kPrefix = "lightgpt: ";
  explicit Error(const std::string& message)
      : std::runtime_error(std::string(kPrefix) + message) {}
  // The message without the prefix, for an error that is rethrown with more context.
  std::string_view message() const { return std::string_view(what()).substr(kPrefix.size()); }
};

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

}  // namespace detail

// a × b and a + b for sizes read from files or flags: a result past 2^64 is an Error naming
// `what`, never a wrapped value that later sizes an allocation or a read.
inline std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t result = 0;
  if (__builtin_mul_overflow(a, b, &result)) {
    throw Error(detail::concat(what, ": ", a, " x ", b, " overflows 64 bits"));
  }
  return result;
}
inline std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t result = 0;
  if (__builtin_add_overflow(a, b, &result)) {
    throw Error(detail::concat(what, ": ", a, " + ", b, " overflows 64 bits"));
  }
  return result;
}

// "123456789 bytes (118 MiB)": byte counts in messages, exact and readable.
inline std::string format_bytes(std::uint64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = double(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 6) {
    value /= 1024;
    ++unit;
  }
  char text[64];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%llu bytes", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(text, sizeof text, "%llu bytes (%.1f %s)", static_cast<unsigned long long>(bytes),
                  value, units[unit]);
  }
  return text;
}

// Runs `allocate` and turns running out of memory into an Error that says what needed how much:
// `what` (e.g. "the model's parameters and optimizer state") and `bytes`, its estimated size.
template <class Allocate>
decltype(auto) allocating(std::string_view what, std::uint64_t bytes, Allocate&& allocate) {
  try {
    return allocate();
  } catch (const std::bad_alloc&) {
    throw Error(detail::concat("out of memory: ", what, " needs about ", format_bytes(bytes)));
  } catch (const std::length_error&) {
    throw Error(detail::concat("out of memory: ", what, " needs about ", format_bytes(bytes),
                               ", more than one allocation can hold"));
  }
}

// The message of the exception being handled, on one line, whatever its type: lightgpt::Error
// as it is, filesystem errors with the paths they concern, std::bad_alloc as "out of memory".
// Call only inside a catch block.
inline std::string current_exception_message() {
  std::string message;
  try {
    throw;
  } catch (const Error& error) {
    message = error.what();
  } catch (const std::filesystem::filesystem_error& error) {
    message = "filesystem error: " + error.code().message();
    if (!error.path1().empty()) message += " ('" + error.path1().string() + "'";
    if (!error.path2().empty()) message += ", '" + error.path2().string() + "'";
    if (!error.path1().empty()) message += ")";
  } catch (const std::bad_alloc&) {
    message = "out of memory (std::bad_alloc): a buffer of this run does not fit in memory";
  } catch (const std::exception& error) {
    message = error.what();
  } catch (...) {
    message = "unknown exception";
  }
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return message;
}

// Prints "program: message" on stderr and returns the exit code 1; for a program's catch (...).
inline int report_exception(std::string_view program) noexcept {
  try {
    const std::string message = current_exception_message();
    std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(),
                 message.c_str());
  } catch (...) {
    std::fputs("error (and out of memory while reporting it)\n", stderr);
  }
  return 1;
}

}  // namespace lightgpt

// Throws lightgpt::Error with the streamed parts when `cond` is false.
#define LIGHTGPT_CHECK(cond, ...)                                                  \
  do {                                                                             \
    if (!(cond)) throw ::lightgpt::Error(::lightgpt::detail::concat(__VA_ARGS__)); \
  } while (0)
