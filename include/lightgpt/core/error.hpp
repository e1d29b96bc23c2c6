// lightgpt::Error — the one exception type the library throws for bad input (files, flags,
// configs, shapes). Messages name the offending field or file and the value that was expected,
// so a user can fix the call without reading the source.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace lightgpt {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error("lightgpt: " + message) {}
};

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

}  // namespace detail
}  // namespace lightgpt

// Throws lightgpt::Error with the streamed parts when `cond` is false.
#define LIGHTGPT_CHECK(cond, ...)                                                  \
  do {                                                                             \
    if (!(cond)) throw ::lightgpt::Error(::lightgpt::detail::concat(__VA_ARGS__)); \
  } while (0)
