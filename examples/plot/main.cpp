// plot — val_loss of one or more runs as an SVG, against tokens seen, training seconds, or (from
// a run's summary.json) the position in the window. The original scripts' dashboard overlays only
// val_loss; --train adds each run's train_loss as a thin line.
//
//   plot runs/tiny-cpu runs/dense --out loss.svg --train
//   plot runs/a/seed1 runs/a/seed2 runs/b/seed1 runs/b/seed2 --label a --label a --label b
//        --label b --x seconds --hline "bigram=6.9" --out loss.svg
//
// Each input is a run directory (its metrics.jsonl is read) or a JSONL file written by train.
// Runs given the same --label form one series: their mean, with a band from the lowest to the
// highest run (seeds, say); the runs of a series are matched point by point (the same steps).
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

using Points = std::vector<std::pair<double, double>>;

enum class Axis { tokens, seconds, position };

struct Run {
  std::string label;
  Points val, train;
};

// One line of the plot: the mean of its runs, and the lowest and highest of them at each point.
struct Series {
  std::string label;
  int runs = 0;
  Points val, val_low, val_high, train;
};

std::string default_label(const std::string& input, const std::filesystem::path& file) {
  std::string label = std::filesystem::is_directory(input)
                          ? std::filesystem::path(input).filename().string()
                          : file.stem().string();
  return label.empty() ? input : label;
}

// The val_loss (and train_loss) records of a metrics.jsonl, against tokens or against the
// training time so far (the sum of step_ms: validation and checkpoints are not counted).
Run read_metrics(const std::string& input, Axis axis) {
  std::filesystem::path path = input;
  if (std::filesystem::is_directory(path)) path /= "metrics.jsonl";
  std::ifstream in(path);
  LIGHTGPT_CHECK(in.good(), "cannot read the metrics file '", path.string(), "'");
  Run run;
  run.label = default_label(input, path);
  std::string line;
  int number = 0;
  double seconds = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    const std::optional<nlohmann::json> record = lightgpt::parse_json_record(line);
    LIGHTGPT_CHECK(record.has_value(), path.string(), ":", number,
                   ": not a JSON object (is this a train metrics file?)");
    const double tokens = lightgpt::record_number(*record, "tokens");
    LIGHTGPT_CHECK(!std::isnan(tokens), path.string(), ":", number,
                   ": a record without \"tokens\" (is this a train metrics file?)");
    double x = tokens;
    if (axis == Axis::seconds) {
      const double step_ms = lightgpt::record_number(*record, "step_ms");
      LIGHTGPT_CHECK(std::isfinite(step_ms) && step_ms >= 0, path.string(), ":", number,
                     ": no \"step_ms\" to place the record in time");
      seconds += step_ms / 1000.0;
      x = seconds;
    }
    const double val = lightgpt::record_number(*record, "val_loss");
    const double train = lightgpt::record_number(*record, "train_loss");
    if (!std::isnan(val)) run.val.emplace_back(x, val);
    if (!std::isnan(train)) run.train.emplace_back(x, train);
  }
  LIGHTGPT_CHECK(!run.val.empty() || !run.train.empty(), path.string(), " holds no losses");
  return run;
}

// The validation loss at each position of the window, from the summary.json train writes at the
// end of a run (a run directory, or the file itself).
Run read_positions(const std::string& input) {
  std::filesystem::path path = input;
  if (std::filesystem::is_directory(path)) path /= "summary.json";
  std::ifstream in(path);
  LIGHTGPT_CHECK(in.good(), "cannot read the run summary '", path.string(), "'");
  const nlohmann::json summary = nlohmann::json::parse(in, nullptr, false);
  const auto it = summary.is_object() ? summary.find("val_loss_by_position") : summary.end();
  LIGHTGPT_CHECK(it != summary.end() && it->is_array() && !it->empty(), path.string(),
                 ": no \"val_loss_by_position\" array (is this a train summary.json?)");
  Run run;
  run.label = default_label(input, path);
  for (std::size_t t = 0; t < it->size(); ++t) {
    LIGHTGPT_CHECK((*it)[t].is_number(), path.string(), ": val_loss_by_position[", t,
                   "] is not a number");
    run.val.emplace_back(double(t), (*it)[t].get<double>());
  }
  return run;
}

// Mean, lowest and highest of the runs point by point, over the points all of them have.
void combine(const std::vector<const Points*>& runs, Points& mean, Points* low, Points* high) {
  std::size_t n = runs.front()->size();
  for (const Points* p : runs) n = std::min(n, p->size());
  for (std::size_t i = 0; i < n; ++i) {
    double x = 0, y = 0, lo = INFINITY, hi = -INFINITY;
    for (const Points* p : runs) {
      x += (*p)[i].first / double(runs.size());
      y += (*p)[i].second / double(runs.size());
      lo = std::min(lo, (*p)[i].second);
      hi = std::max(hi, (*p)[i].second);
    }
    mean.emplace_back(x, y);
    if (low != nullptr) low->emplace_back(x, lo);
    if (high != nullptr) high->emplace_back(x, hi);
  }
}

std::vector<Series> group(const std::vector<Run>& runs) {
  std::vector<Series> out;
  std::vector<bool> taken(runs.size(), false);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (taken[i]) continue;
    std::vector<const Points*> val, train;
    for (std::size_t j = i; j < runs.size(); ++j) {
      if (taken[j] || runs[j].label != runs[i].label) continue;
      taken[j] = true;
      if (!runs[j].val.empty()) val.push_back(&runs[j].val);
      if (!runs[j].train.empty()) train.push_back(&runs[j].train);
    }
    Series s;
    s.label = runs[i].label;
    s.runs = int(std::max(val.size(), train.size()));
    if (!val.empty()) combine(val, s.val, &s.val_low, &s.val_high);
    if (!train.empty()) combine(train, s.train, nullptr, nullptr);
    out.push_back(std::move(s));
  }
  return out;
}

struct Reference {
  std::string label;
  double value = 0;
};

Reference parse_hline(const std::string& text) {
  const std::size_t eq = text.rfind('=');
  LIGHTGPT_CHECK(eq != std::string::npos && eq > 0, "--hline '", text,
                 "': expected LABEL=VALUE, e.g. bigram=6.9");
  Reference r;
  r.label = text.substr(0, eq);
  const std::string number = text.substr(eq + 1);
  std::size_t used = 0;
  try {
    r.value = std::stod(number, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  LIGHTGPT_CHECK(used > 0 && used == number.size() && std::isfinite(r.value), "--hline '", text,
                 "': '", number, "' is not a finite number");
  return r;
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
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Plot val_loss (and optionally train_loss) of runs as SVG, against tokens seen, "
               "training seconds or the position in the window"};
  std::vector<std::string> inputs, labels, hlines;
  std::string out = "loss.svg", title = "validation loss", x_axis = "tokens";
  std::optional<double> y_max;
  bool with_train = false;
  app.add_option("runs", inputs, "Run directories or metrics.jsonl files")->required();
  app.add_option("-o,--out", out, "SVG file to write")->capture_default_str();
  app.add_option("--label", labels,
                 "Legend label per run (default: directory name); runs with the same label are "
                 "drawn as their mean with a band from the lowest to the highest");
  app.add_option("--title", title, "Title")->capture_default_str();
  app.add_option("--x", x_axis,
                 "x axis: tokens (seen), seconds (of training steps, from step_ms) or position "
                 "(the window position, from each run's summary.json)")
      ->check(CLI::IsMember({"tokens", "seconds", "position"}))
      ->capture_default_str();
  app.add_option("--hline", hlines,
                 "A reference level drawn as a dashed line, LABEL=VALUE (e.g. bigram=6.9)");
  app.add_option("--ymax", y_max, "Clip the y axis at this loss (early losses are far higher)");
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
    const Axis axis = x_axis == "seconds"    ? Axis::seconds
                      : x_axis == "position" ? Axis::position
                                             : Axis::tokens;
    LIGHTGPT_CHECK(!(with_train && axis == Axis::position),
                   "--train has no meaning with --x position (summary.json holds val_loss only)");
    std::vector<Reference> references;
    for (const std::string& h : hlines) references.push_back(parse_hline(h));
    std::vector<Run> runs;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      runs.push_back(axis == Axis::position ? read_positions(inputs[i])
                                            : read_metrics(inputs[i], axis));
      if (!labels.empty()) runs.back().label = labels[i];
    }
    const std::vector<Series> series = group(runs);

    double x0 = 0, x1 = 0, y0 = INFINITY, y1 = -INFINITY;
    for (const Series& s : series) {
      for (const Points* points : {&s.val_low, &s.val_high, &s.train}) {
        if (points == &s.train && !with_train) continue;
        for (const auto& [x, y] : *points) {
          x1 = std::max(x1, x);
          y0 = std::min(y0, y);
          y1 = std::max(y1, y);
        }
      }
    }
    LIGHTGPT_CHECK(std::isfinite(y0), "no val_loss in the runs (add --train to plot train_loss)");
    for (const Reference& r : references) {
      y0 = std::min(y0, r.value);
      y1 = std::max(y1, r.value);
    }
    if (y_max) {
      LIGHTGPT_CHECK(*y_max > y0, "--ymax ", *y_max, " is below every loss plotted (lowest ", y0,
                     ")");
      y1 = std::min(y1, *y_max);
    }
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 - y0 < 1e-6) {
      y0 -= 0.5;
      y1 += 0.5;
    }
    const double pad = 0.05 * (y1 - y0);
    y0 -= pad;
    y1 += pad;
    // The legend sits right of the plot area, where no curve runs under it.
    const double W = 1040, H = 480, left = 70, right = 300, top = 40, bottom = 60;
    auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
    // Points above --ymax are drawn at the top edge.
    auto py = [&](double y) {
      return top + (y1 - std::min(y, y1)) / (y1 - y0) * (H - top - bottom);
    };
    const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                             "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
    constexpr std::size_t kColours = sizeof colours / sizeof colours[0];
    const char* x_title = axis == Axis::seconds    ? "training seconds (sum of step times)"
                          : axis == Axis::position ? "position in the window"
                                                   : "tokens seen";
    std::ostringstream svg;
    svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
        << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
        << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        << "<text x=\"" << (left + W - right) / 2
        << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
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
        << "\" text-anchor=\"middle\">" << x_title << "</text>\n"
        << "<text transform=\"translate(18," << (top + H - bottom) / 2
        << ") rotate(-90)\" text-anchor=\"middle\">loss (nats/token)</text>\n";
    for (const Reference& r : references) {
      svg << "<line x1=\"" << left << "\" y1=\"" << py(r.value) << "\" x2=\"" << W - right
          << "\" y2=\"" << py(r.value) << "\" stroke=\"#555\" stroke-dasharray=\"6,4\"/>\n"
          << "<text x=\"" << left + 6 << "\" y=\"" << py(r.value) - 4 << "\" fill=\"#555\">"
          << escape(r.label) << "</text>\n";
    }
    for (std::size_t i = 0; i < series.size(); ++i) {
      const Series& s = series[i];
      const char* colour = colours[i % kColours];
      auto polyline = [&](const Points& points, double width, double opacity) {
        if (points.empty()) return;
        svg << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"" << width
            << "\" stroke-opacity=\"" << opacity << "\" points=\"";
        for (const auto& [x, y] : points) svg << px(x) << "," << py(y) << " ";
        svg << "\"/>\n";
      };
      if (s.runs > 1 && !s.val.empty()) {
        svg << "<polygon fill=\"" << colour << "\" fill-opacity=\"0.18\" stroke=\"none\" points=\"";
        for (const auto& [x, y] : s.val_high) svg << px(x) << "," << py(y) << " ";
        for (auto it = s.val_low.rbegin(); it != s.val_low.rend(); ++it) {
          svg << px(it->first) << "," << py(it->second) << " ";
        }
        svg << "\"/>\n";
      }
      if (with_train) polyline(s.train, 1, 0.45);
      polyline(s.val, axis == Axis::position ? 1.5 : 2.5, 1);
      if (axis != Axis::position) {
        for (const auto& [x, y] : s.val) {
          svg << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"3\" fill=\"" << colour
              << "\"/>\n";
        }
      }
      const double ly = top + 8 + 18 * double(i), lx = W - right + 12;
      svg << "<line x1=\"" << lx << "\" y1=\"" << ly - 4 << "\" x2=\"" << lx + 24 << "\" y2=\""
          << ly - 4 << "\" stroke=\"" << colour
          << "\" stroke-width=\"2.5\"/>\n<text x=\"" << lx + 30 << "\" y=\"" << ly << "\">"
          << escape(s.label);
      if (!s.val.empty()) {
        char last[64];
        if (s.runs > 1) {
          std::snprintf(last, sizeof last, " (%.3f, mean of %d)", s.val.back().second, s.runs);
        } else {
          std::snprintf(last, sizeof last, " (%.3f)", s.val.back().second);
        }
        svg << last;
      }
      svg << "</text>\n";
    }
    svg << "</svg>\n";
    std::ofstream file(out);
    LIGHTGPT_CHECK(file.good(), "cannot write '", out, "'");
    file << svg.str();
    LIGHTGPT_CHECK(file.good(), "writing '", out, "' failed");
    std::printf("plot: wrote %s (%zu run%s", out.c_str(), runs.size(), runs.size() == 1 ? "" : "s");
    if (series.size() != runs.size()) std::printf(" in %zu series", series.size());
    std::printf(")\n");
  } catch (...) {
    return lightgpt::report_exception("plot");
  }
  return 0;
}
