// plot — val_loss against tokens seen for one or more runs, as an SVG (the original scripts'
// dashboard overlays only val_loss; --train adds each run's train_loss as a thin line).
//
//   plot runs/tiny-cpu runs/dense --out loss.svg --train
//
// Each input is a run directory (its metrics.jsonl is read) or a JSONL file written by train.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <lightgpt/core/error.hpp>
#include <lightgpt/train/metrics.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Series {
  std::string label;
  std::vector<std::pair<double, double>> val, train;
};

Series read_run(const std::string& input, const std::string& label) {
  std::filesystem::path path = input;
  if (std::filesystem::is_directory(path)) path /= "metrics.jsonl";
  std::ifstream in(path);
  LIGHTGPT_CHECK(in.good(), "cannot read the metrics file '", path.string(), "'");
  Series s;
  s.label = label;
  if (s.label.empty()) {
    s.label = std::filesystem::is_directory(input) ? std::filesystem::path(input).filename().string()
                                                   : path.stem().string();
    if (s.label.empty()) s.label = input;
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    const std::optional<nlohmann::json> record = lightgpt::parse_json_record(line);
    LIGHTGPT_CHECK(record.has_value(), path.string(), ":", number,
                   ": not a JSON object (is this a train metrics file?)");
    const double tokens = lightgpt::record_number(*record, "tokens");
    LIGHTGPT_CHECK(!std::isnan(tokens), path.string(), ":", number,
                   ": a record without \"tokens\" (is this a train metrics file?)");
    const double val = lightgpt::record_number(*record, "val_loss");
    const double train = lightgpt::record_number(*record, "train_loss");
    if (!std::isnan(val)) s.val.emplace_back(tokens, val);
    if (!std::isnan(train)) s.train.emplace_back(tokens, train);
  }
  LIGHTGPT_CHECK(!s.val.empty() || !s.train.empty(), path.string(), " holds no losses");
  return s;
}

// About `count` round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int count) {
  const double raw = (hi - lo) / count;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  std::vector<double> out;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push_back(v);
  return out;
}

std::string tick_label(double v) {
  char text[32];
  const double a = std::abs(v);
  if (a >= 1e9) std::snprintf(text, sizeof text, "%gB", v / 1e9);
  else if (a >= 1e6) std::snprintf(text, sizeof text, "%gM", v / 1e6);
  else if (a >= 1e3) std::snprintf(text, sizeof text, "%gk", v / 1e3);
  else std::snprintf(text, sizeof text, "%g", v);
  return text;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Plot val_loss (and optionally train_loss) against tokens seen as SVG"};
  std::vector<std::string> inputs, labels;
  std::string out = "loss.svg", title = "validation loss";
  bool with_train = false;
  app.add_option("runs", inputs, "Run directories or metrics.jsonl files")->required();
  app.add_option("-o,--out", out, "SVG file to write")->capture_default_str();
  app.add_option("--label", labels, "Legend label per run (default: directory name)");
  app.add_option("--title", title, "Title")->capture_default_str();
  app.add_flag("--train", with_train, "Also draw train_loss (thin lines)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help exits 0 with CLI11's text; a bad flag is one line and exit code 1.
    return error.get_exit_code() == 0 ? app.exit(error)
                                      : lightgpt::report_exception("plot");
  }
  try {
    LIGHTGPT_CHECK(labels.empty() || labels.size() == inputs.size(), "--label given ",
                   labels.size(), " times for ", inputs.size(), " runs");
    std::vector<Series> runs;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      runs.push_back(read_run(inputs[i], labels.empty() ? "" : labels[i]));
    }
    double x0 = 0, x1 = 0, y0 = INFINITY, y1 = -INFINITY;
    for (const Series& s : runs) {
      for (const auto* points : {&s.val, &s.train}) {
        if (points == &s.train && !with_train) continue;
        for (const auto& [x, y] : *points) {
          x1 = std::max(x1, x);
          y0 = std::min(y0, y);
          y1 = std::max(y1, y);
        }
      }
    }
    LIGHTGPT_CHECK(std::isfinite(y0), "no val_loss in the runs (add --train to plot train_loss)");
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 - y0 < 1e-6) {
      y0 -= 0.5;
      y1 += 0.5;
    }
    const double pad = 0.05 * (y1 - y0);
    y0 -= pad;
    y1 += pad;
    const double W = 760, H = 480, left = 70, right = 20, top = 40, bottom = 60;
    auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
    auto py = [&](double y) { return top + (y1 - y) / (y1 - y0) * (H - top - bottom); };
    const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                             "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    std::ostringstream svg;
    svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
        << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
        << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
        << escape(title) << "</text>\n";
    for (double t : ticks(x0, x1, 6)) {
      svg << "<line x1=\"" << px(t) << "\" y1=\"" << top << "\" x2=\"" << px(t) << "\" y2=\""
          << H - bottom << "\" stroke=\"#e5e5e5\"/>\n<text x=\"" << px(t) << "\" y=\""
          << H - bottom + 16 << "\" text-anchor=\"middle\">" << tick_label(t) << "</text>\n";
    }
    for (double t : ticks(y0, y1, 6)) {
      svg << "<line x1=\"" << left << "\" y1=\"" << py(t) << "\" x2=\"" << W - right << "\" y2=\""
          << py(t) << "\" stroke=\"#e5e5e5\"/>\n<text x=\"" << left - 6 << "\" y=\"" << py(t) + 4
          << "\" text-anchor=\"end\">" << tick_label(t) << "</text>\n";
    }
    svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right
        << "\" height=\"" << H - top - bottom << "\" fill=\"none\" stroke=\"#333\"/>\n"
        << "<text x=\"" << (left + W - right) / 2 << "\" y=\"" << H - 18
        << "\" text-anchor=\"middle\">tokens seen</text>\n"
        << "<text transform=\"translate(18," << (top + H - bottom) / 2
        << ") rotate(-90)\" text-anchor=\"middle\">loss (nats/token)</text>\n";
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const char* colour = colours[i % 8];
      auto polyline = [&](const std::vector<std::pair<double, double>>& points, double width,
                          double opacity) {
        if (points.empty()) return;
        svg << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"" << width
            << "\" stroke-opacity=\"" << opacity << "\" points=\"";
        for (const auto& [x, y] : points) svg << px(x) << "," << py(y) << " ";
        svg << "\"/>\n";
      };
      if (with_train) polyline(runs[i].train, 1, 0.45);
      polyline(runs[i].val, 2.5, 1);
      for (const auto& [x, y] : runs[i].val) {
        svg << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"3\" fill=\"" << colour
            << "\"/>\n";
      }
      const double ly = top + 14 + 18 * double(i);
      svg << "<line x1=\"" << W - right - 190 << "\" y1=\"" << ly - 4 << "\" x2=\""
          << W - right - 166 << "\" y2=\"" << ly - 4 << "\" stroke=\"" << colour
          << "\" stroke-width=\"2.5\"/>\n<text x=\"" << W - right - 160 << "\" y=\"" << ly << "\">"
          << escape(runs[i].label);
      if (!runs[i].val.empty()) {
        char best[48];
        double b = INFINITY;
        for (const auto& point : runs[i].val) b = std::min(b, point.second);
        std::snprintf(best, sizeof best, " (best %.3f)", b);
        svg << best;
      }
      svg << "</text>\n";
    }
    svg << "</svg>\n";
    std::ofstream file(out);
    LIGHTGPT_CHECK(file.good(), "cannot write '", out, "'");
    file << svg.str();
    LIGHTGPT_CHECK(file.good(), "writing '", out, "' failed");
    std::printf("plot: wrote %s (%zu run%s)\n", out.c_str(), runs.size(),
                runs.size() == 1 ? "" : "s");
  } catch (...) {
    return lightgpt::report_exception("plot");
  }
  return 0;
}
