// results — regenerates RESULTS.md: trains every variant lightgpt compares (dense head, LightRNN
// with each codebook and with reallocation, MTP, CoCoNT, the AFNO mixer, the fast-mtp-2step
// combination) on the Brown corpus over several seeds with `train`, then writes the tables, the
// plots (through `plot`) and the original scripts' claims beside what was measured.
//
//   cmake --build build --target results train plot prepare
//   ./build/examples/results/results                    # about 20 minutes on 2 cores
//   ./build/examples/results/results --toy --out /tmp/r --report /tmp/r/RESULTS.md   # seconds
//
// Every run keeps its directory (runs/<variant>/seed<k>: metrics.jsonl, summary.json, train.log,
// the exact command); a later invocation reuses a finished run whose command is unchanged, so an
// interrupted regeneration continues where it stopped (--fresh retrains everything).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <lightgpt/core/config.hpp>
#include <lightgpt/core/error.hpp>
#include <lightgpt/heads/lightrnn/options.hpp>
#include <lightgpt/train/metrics.hpp>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using lightgpt::Error;

namespace {

// One variant: a name (its directory and plot label), what it is, and train's flags for it on
// top of the shared ones.
struct Variant {
  std::string name, what, flags;
};

const std::vector<Variant>& variants() {
  // The scripts' LightRNN head: the factorised tables only (tiny-cpu adds a V × C input vector).
  static const std::string light = "--head lightrnn --lightrnn_token_embedding false";
  static const std::vector<Variant> all = {
      {"dense", "tied dense V × C head (GPT-2's)", "--head dense"},
      {"lightrnn", "LightRNN head, frequency codebook", light},
      {"lightrnn-sequential", "LightRNN head, sequential codebook (id / R, id % R)",
       light + " --lightrnn_codebook sequential"},
      {"lightrnn-realloc", "LightRNN head, frequency codebook, re-placed every third of the run",
       light + " --realloc_every {realloc}"},
      {"lightrnn-token-emb", "LightRNN head + an untied V × C input vector per token (tiny-cpu's)",
       "--head lightrnn --lightrnn_token_embedding true"},
      {"lightrnn-mtp2", "LightRNN head + MTP<2> (w 0.35, ramp 32)",
       light + " --mtp_enabled true --mtp_max_steps 2 --mtp_weight 0.35 "
       "--mtp_rampup_steps 32"},
      {"lightrnn-cocont", "LightRNN head + CoCoNT (alpha 0.1, bigram top-16)",
       light + " --use_cocont true --cocont_alpha 0.1 --ngram_k 16"},
      {"afno", "LightRNN head, AfnoMixer<8> instead of attention",
       light + " --mixer afno --afno_num_blocks 8"},
      {"fast-mtp-2step", "LightRNN head + MTP<2> + CoCoNT (the scripts' default recipe)",
       light + " --mtp_enabled true --mtp_max_steps 2 --mtp_weight 0.35 "
       "--mtp_rampup_steps 32 --use_cocont true --cocont_alpha 0.1 --ngram_k 16"},
  };
  return all;
}

// The shared shape. T = 64 gives MTP and the mixers context to use; B · T = 512 tokens a step.
struct Scale {
  int n_layer = 2, n_head = 4, d_model = 128, batch = 8, seq_len = 64, val_batches = 48;
  std::int64_t steps = 1200, warmup = 100, warmdown = 400, eval_every = 120, realloc_every = 400;
  double learning_rate = 5e-3;
};

Scale toy_scale() {
  Scale s;
  s.n_layer = 1;
  s.n_head = 2;
  s.d_model = 16;
  s.batch = 2;
  s.seq_len = 16;
  s.val_batches = 2;
  s.steps = 6;
  s.warmup = 1;
  s.warmdown = 2;
  s.eval_every = 3;
  s.realloc_every = 2;
  return s;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

std::string format(const char* fmt, auto... args) {
  std::string text(std::size_t(std::snprintf(nullptr, 0, fmt, args...)), '\0');
  std::snprintf(text.data(), text.size() + 1, fmt, args...);
  return text;
}

// The first line of a command's standard output ("" when it fails).
std::string command_line_output(const std::string& command) {
  std::string out;
  if (FILE* pipe = popen((command + " 2>/dev/null").c_str(), "r")) {
    char buffer[512];
    if (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out = buffer;
    pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string last_lines(const fs::path& path, int count) {
  const std::string text = read_text(path);
  std::size_t at = text.size();
  for (int i = 0; i <= count && at != std::string::npos && at > 0; ++i) {
    at = text.rfind('\n', at - 1);
  }
  return at == std::string::npos ? text : text.substr(at + 1);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const std::size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  double one = 0, five = 0, fifteen = 0;
  if (!(in >> one >> five >> fifteen)) return "unknown";
  return format("%.2f %.2f %.2f", one, five, fifteen);
}

// What one finished run measured.
struct RunResult {
  double val = NAN, seconds = 0, step_ms = 0, peak_mb = 0, parameters = 0, wall = 0;
  double unigram = NAN, bigram = NAN;
  std::vector<double> by_position;
  // The validation curve: tokens seen, training seconds so far (sum of step_ms), val_loss.
  std::vector<double> val_tokens, val_seconds, val_loss;
};

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

RunResult read_run(const fs::path& dir) {
  RunResult r;
  const fs::path summary_path = dir / "summary.json";
  std::ifstream summary_file(summary_path);
  const nlohmann::json summary = nlohmann::json::parse(summary_file, nullptr, false);
  LIGHTGPT_CHECK(summary.is_object(), summary_path.string(), ": not a train summary");
  r.val = lightgpt::record_number(summary, "final_val_loss");
  r.peak_mb = lightgpt::record_number(summary, "peak_memory_mb");
  r.parameters = lightgpt::record_number(summary, "parameters");
  r.wall = lightgpt::record_number(summary, "seconds");
  r.unigram = lightgpt::record_number(summary, "unigram_loss");
  r.bigram = lightgpt::record_number(summary, "bigram_loss");
  LIGHTGPT_CHECK(std::isfinite(r.val) && summary.contains("val_loss_by_position"),
                 summary_path.string(), ": no final_val_loss or val_loss_by_position");
  for (const auto& v : summary["val_loss_by_position"]) r.by_position.push_back(v.get<double>());

  const fs::path metrics_path = dir / "metrics.jsonl";
  std::ifstream metrics(metrics_path);
  std::string line;
  std::vector<double> step_ms;
  while (std::getline(metrics, line)) {
    const auto record = lightgpt::parse_json_record(line);
    if (!record) continue;
    const double ms = lightgpt::record_number(*record, "step_ms");
    if (!std::isfinite(ms)) continue;
    step_ms.push_back(ms);
    r.seconds += ms / 1000.0;
    const double val = lightgpt::record_number(*record, "val_loss");
    if (std::isfinite(val)) {
      r.val_tokens.push_back(lightgpt::record_number(*record, "tokens"));
      r.val_seconds.push_back(r.seconds);
      r.val_loss.push_back(val);
    }
  }
  LIGHTGPT_CHECK(!step_ms.empty(), metrics_path.string(), ": no steps recorded");
  // The first tenth of the steps warms caches and the allocator; the median of the rest.
  step_ms.erase(step_ms.begin(), step_ms.begin() + std::ptrdiff_t(step_ms.size() / 10));
  r.step_ms = median(step_ms);
  return r;
}

// The validation loss a run had reached after `seconds` of training steps, interpolated between
// its evaluations (NaN before the first one).
double val_at_seconds(const RunResult& r, double seconds) {
  if (r.val_seconds.empty() || seconds < r.val_seconds.front()) return NAN;
  for (std::size_t i = 1; i < r.val_seconds.size(); ++i) {
    if (seconds <= r.val_seconds[i]) {
      const double f = (seconds - r.val_seconds[i - 1]) / (r.val_seconds[i] - r.val_seconds[i - 1]);
      return r.val_loss[i - 1] + f * (r.val_loss[i] - r.val_loss[i - 1]);
    }
  }
  return r.val_loss.back();
}

// Mean and sample standard deviation over seeds (spread 0 with one seed); NaNs are left out.
struct Stat {
  double mean = NAN, spread = 0;
  int n = 0;
};

Stat stat(const std::vector<double>& values) {
  Stat s;
  double sum = 0;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    sum += v;
    ++s.n;
  }
  if (s.n == 0) return s;
  s.mean = sum / s.n;
  if (s.n > 1) {
    double sq = 0;
    for (double v : values) {
      if (std::isfinite(v)) sq += (v - s.mean) * (v - s.mean);
    }
    s.spread = std::sqrt(sq / (s.n - 1));
  }
  return s;
}

std::string show(const Stat& s, const char* fmt = "%.3f") {
  if (!std::isfinite(s.mean)) return "—";
  std::string out = format(fmt, s.mean);
  if (s.n > 1) out += " ± " + format(fmt, s.spread);
  return out;
}

struct VariantResult {
  const Variant* variant = nullptr;
  std::vector<RunResult> runs;
  Stat val, step_ms, peak_mb, seconds, val_at_time;
  double parameters = 0;
  std::vector<double> by_position;  // mean over seeds
};

// Positions grouped on a doubling scale: how much context each position had.
std::vector<std::pair<int, int>> position_bins(int T) {
  std::vector<std::pair<int, int>> bins;
  for (int lo = 0, hi = 1; lo < T; lo = hi, hi *= 4) bins.emplace_back(lo, std::min(hi, T));
  return bins;
}

struct Paths {
  fs::path train, plot, prepare;
};

Paths find_programs(const std::string& bin) {
  fs::path root = bin;
  if (root.empty()) root = fs::canonical("/proc/self/exe").parent_path().parent_path();
  Paths p{root / "train" / "train", root / "plot" / "plot", root / "prepare" / "prepare"};
  for (const fs::path* program : {&p.train, &p.plot, &p.prepare}) {
    LIGHTGPT_CHECK(fs::exists(*program), "cannot find ", program->string(),
                   "; build it (cmake --build build --target train plot prepare) or point --bin "
                   "at the folder holding train/, plot/ and prepare/");
  }
  return p;
}

void run_command(const std::string& command, const fs::path& log, const std::string& what) {
  const int status = std::system((command + " > " + quote(log.string()) + " 2>&1").c_str());
  if (status != 0) {
    throw Error(lightgpt::detail::concat(what, " failed (exit status ", status, "); the end of ",
                                         log.string(), ":\n", last_lines(log, 8)));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train every variant over several seeds on the Brown corpus and write RESULTS.md "
               "with tables, plots and the original scripts' claims beside the measurements"};
  std::string out = "results", report = "RESULTS.md", data = "data/brown", bin, only;
  int seeds = 3;
  std::optional<std::int64_t> steps;
  std::optional<int> threads;
  bool toy = false, fresh = false;
  app.add_option("--out", out, "Folder for the runs (runs/<variant>/seed<k>) and the plots")
      ->capture_default_str();
  app.add_option("--report", report, "The Markdown report to write")->capture_default_str();
  app.add_option("--data", data,
                 "Folder of the Brown shards (brown_{train,val}_*.bin); prepared there when "
                 "missing")
      ->capture_default_str();
  app.add_option("--bin", bin,
                 "Folder holding the train/, plot/ and prepare/ programs (default: beside this "
                 "program's own folder)");
  app.add_option("--seeds", seeds, "Seeds per variant")->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--steps", steps, "Optimizer steps per run (default 1200; --toy: 6)")
      ->check(CLI::Range(std::int64_t(4), std::int64_t(10000000)));
  app.add_option("--threads", threads, "OMP_NUM_THREADS for the runs (default: OpenMP's own)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--variants", only, "Comma-separated subset of the variants (default: all)");
  app.add_flag("--toy", toy, "A tiny model and a few steps: checks the pipeline in seconds");
  app.add_flag("--fresh", fresh, "Retrain every run, even one finished with the same command");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return error.get_exit_code() == 0 ? app.exit(error)
                                      : lightgpt::report_exception("results");
  }
  // The options this report was made with, for the command it prints.
  std::string arguments;
  for (int i = 1; i < argc; ++i) arguments += " " + std::string(argv[i]);
  try {
    const auto start = std::chrono::steady_clock::now();
    const std::string load_before = load_average();
    Scale scale = toy ? toy_scale() : Scale{};
    if (steps) {
      scale.steps = *steps;
      scale.warmdown = std::min(scale.warmdown, *steps / 3);
      scale.warmup = std::min(scale.warmup, *steps / 10);
      scale.realloc_every = std::max<std::int64_t>(1, *steps / 3);
      scale.eval_every = std::max<std::int64_t>(1, *steps / 10);
    }
    std::vector<const Variant*> chosen;
    for (const Variant& v : variants()) {
      if (only.empty() || ("," + only + ",").find("," + v.name + ",") != std::string::npos) {
        chosen.push_back(&v);
      }
    }
    if (!only.empty()) {
      std::string names;
      for (const Variant& v : variants()) names += (names.empty() ? "" : ", ") + v.name;
      std::size_t listed = 1 + std::size_t(std::count(only.begin(), only.end(), ','));
      LIGHTGPT_CHECK(chosen.size() == listed, "--variants '", only,
                     "' names a variant that does not exist; the variants are: ", names);
    }
    const Paths programs = find_programs(bin);
    if (threads) setenv("OMP_NUM_THREADS", std::to_string(*threads).c_str(), 1);
    fs::create_directories(out);

    const std::string train_glob = (fs::path(data) / "brown_train_*.bin").string();
    const std::string val_glob = (fs::path(data) / "brown_val_*.bin").string();
    if (!fs::exists(fs::path(data) / "brown_train_000000.bin")) {
      std::printf("preparing the Brown shards in %s\n", data.c_str());
      std::fflush(stdout);
      run_command(quote(programs.prepare.string()) + " --brown --out " + quote(data),
                  fs::path(out) / "prepare.log", "prepare --brown");
    }

    const std::string common = format(
        "--preset tiny-cpu --n_layer %d --n_head %d --d_model %d --batch_size %d --seq_len %d "
        "--steps %lld --warmup %lld --warmdown %lld --learning_rate %g --dropout 0 "
        "--eval_every %lld --val_batches %d --checkpoint_every 0 --sample_tokens 0",
        scale.n_layer, scale.n_head, scale.d_model, scale.batch, scale.seq_len,
        static_cast<long long>(scale.steps), static_cast<long long>(scale.warmup),
        static_cast<long long>(scale.warmdown), scale.learning_rate,
        static_cast<long long>(scale.eval_every), scale.val_batches);

    // Train (or reuse) every run, reporting progress as it goes.
    std::vector<VariantResult> results;
    const int total = int(chosen.size()) * seeds;
    int done = 0, reused = 0;
    for (const Variant* v : chosen) {
      VariantResult vr;
      vr.variant = v;
      for (int seed = 1; seed <= seeds; ++seed) {
        const fs::path dir = fs::path(out) / "runs" / v->name / ("seed" + std::to_string(seed));
        const bool first = done == 0;
        const std::string flags =
            replace_all(v->flags, "{realloc}", std::to_string(scale.realloc_every));
        const std::string command =
            quote(programs.train.string()) + " " + common + " " + flags + " --seed " +
            std::to_string(seed) + " --train_data " + quote(train_glob) + " --val_data " +
            quote(val_glob) + " --out_dir " + quote(dir.string()) +
            (first ? " --baselines" : " --no-baselines");
        ++done;
        std::printf("[%d/%d] %s, seed %d: ", done, total, v->name.c_str(), seed);
        std::fflush(stdout);
        const bool finished = fs::exists(dir / "summary.json") &&
                              read_text(dir / "command.txt") == command + "\n";
        if (finished && !fresh) {
          ++reused;
          std::printf("finished earlier with the same command, reused");
        } else {
          fs::remove_all(dir);
          fs::create_directories(dir);
          const auto t0 = std::chrono::steady_clock::now();
          run_command(command, dir / "train.log", v->name + " seed " + std::to_string(seed));
          std::ofstream(dir / "command.txt") << command << "\n";
          std::printf("%.0f s",
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        vr.runs.push_back(read_run(dir));
        std::printf(", val_loss %.4f, %.1f ms/step\n", vr.runs.back().val,
                    vr.runs.back().step_ms);
        std::fflush(stdout);
      }
      results.push_back(std::move(vr));
    }

    // Aggregate over seeds; the equal-time budget is the fastest variant's whole run.
    double budget = INFINITY;
    for (VariantResult& vr : results) {
      std::vector<double> val, step_ms, peak, seconds;
      for (const RunResult& r : vr.runs) {
        val.push_back(r.val);
        step_ms.push_back(r.step_ms);
        peak.push_back(r.peak_mb);
        seconds.push_back(r.seconds);
      }
      vr.val = stat(val);
      vr.step_ms = stat(step_ms);
      vr.peak_mb = stat(peak);
      vr.seconds = stat(seconds);
      vr.parameters = vr.runs.front().parameters;
      vr.by_position.assign(vr.runs.front().by_position.size(), 0.0);
      for (const RunResult& r : vr.runs) {
        for (std::size_t t = 0; t < vr.by_position.size(); ++t) {
          vr.by_position[t] += r.by_position[t] / double(vr.runs.size());
        }
      }
      budget = std::min(budget, vr.seconds.mean);
    }
    for (VariantResult& vr : results) {
      std::vector<double> at;
      for (const RunResult& r : vr.runs) at.push_back(val_at_seconds(r, budget));
      vr.val_at_time = stat(at);
    }
    const RunResult& first_run = results.front().runs.front();
    const double unigram = first_run.unigram, bigram = first_run.bigram;
    const auto find = [&](const std::string& name) -> const VariantResult* {
      for (const VariantResult& vr : results) {
        if (vr.variant->name == name) return &vr;
      }
      return nullptr;
    };

    // Plots: val_loss against tokens and against training seconds (bands over seeds, the
    // baselines as lines), and along the window.
    std::string runs_args, labels;
    for (const VariantResult& vr : results) {
      for (int seed = 1; seed <= seeds; ++seed) {
        runs_args += " " + quote((fs::path(out) / "runs" / vr.variant->name /
                                  ("seed" + std::to_string(seed))).string());
        labels += " --label " + quote(vr.variant->name);
      }
    }
    std::string hlines;
    if (std::isfinite(unigram)) hlines += " --hline " + quote(format("unigram=%.4f", unigram));
    if (std::isfinite(bigram)) hlines += " --hline " + quote(format("bigram=%.4f", bigram));
    // The first evaluations sit far above the rest; clip the axis half a nat above the unigram
    // baseline or the worst final loss, whichever is higher.
    double y_max = std::isfinite(unigram) ? unigram : 0.0;
    for (const VariantResult& vr : results) {
      for (const RunResult& r : vr.runs) y_max = std::max(y_max, r.val);
    }
    y_max += 0.5;
    const fs::path report_dir = fs::absolute(report).parent_path();
    std::vector<std::pair<std::string, std::string>> plots = {
        {"val_loss_tokens.svg", "--x tokens --title 'validation loss against tokens seen'"},
        {"val_loss_seconds.svg",
         "--x seconds --title 'validation loss against training time'"},
        {"val_loss_position.svg",
         "--x position --title 'final validation loss at each position of the window'"}};
    for (const auto& [file, args] : plots) {
      const fs::path svg = fs::path(out) / file;
      run_command(quote(programs.plot.string()) + runs_args + labels + " " + args +
                      (file == "val_loss_position.svg" ? std::string()
                                                       : hlines + format(" --ymax %.3f", y_max)) +
                      " -o " + quote(svg.string()),
                  fs::path(out) / "plot.log", "plot " + file);
    }

    // The report.
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string source = LIGHTGPT_SOURCE_DIR;
    std::string commit = command_line_output("git -C " + quote(source) + " rev-parse --short HEAD");
    if (commit.empty()) commit = "unknown (not a git checkout)";
    else if (!command_line_output("git -C " + quote(source) + " status --porcelain -uno")
                  .empty()) {
      commit += " with uncommitted changes";
    }
    const std::time_t now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    const std::int64_t tokens = scale.steps * scale.batch * scale.seq_len;
    const std::int64_t val_tokens = std::int64_t(scale.val_batches) * scale.batch * scale.seq_len;
    auto rel = [&](const std::string& file) {
      return fs::relative(fs::absolute(fs::path(out) / file), report_dir).string();
    };

    std::ostringstream md;
    md << "# Results\n\n"
       << "Every variant lightgpt compares, trained on the Brown corpus with the same shape, data, "
          "schedule and token budget, over "
       << seeds << " seed" << (seeds > 1 ? "s" : "")
       << ". Regenerated by one command (it also prepares the shards when they are missing):\n\n"
       << "```sh\ncmake --preset cpu && cmake --build --preset cpu --target results train plot "
          "prepare\n./build/examples/results/results"
       << arguments << "\n```\n\n"
       << "- Machine: " << std::thread::hardware_concurrency() << " × " << cpu_model()
       << "; load average (1, 5, 15 min) " << load_before << " before, " << load_average()
       << " after.\n"
       << "- Commit " << commit << ", " << date << "; the command took "
       << lightgpt::format_duration(wall);
    if (reused > 0) md << " (" << reused << " of " << total << " runs reused from an earlier call)";
    double run_seconds = 0;
    for (const VariantResult& vr : results) {
      for (const RunResult& r : vr.runs) run_seconds += r.wall;
    }
    md << "; the training runs themselves took " << lightgpt::format_duration(run_seconds)
       << " together.\n"
       << "- Runs one after another, each with OpenMP's threads ("
       << (threads ? std::to_string(*threads) : std::string("all cores")) << "); fp32 on the CPU.\n"
       << "- Shape: " << scale.n_layer << " layers, C = " << scale.d_model << ", " << scale.n_head
       << " heads, T = " << scale.seq_len << ", B = " << scale.batch << "; "
       << scale.steps << " steps of " << scale.batch * scale.seq_len << " tokens (" << tokens
       << " tokens, " << format("%.2f", double(tokens) / 1170270.0)
       << " epochs of Brown's training split); AdamW at " << format("%g", scale.learning_rate)
       << ", warmup " << scale.warmup << ", linear warmdown over the last " << scale.warmdown
       << " steps; no dropout.\n"
       << "- Validation: pure next-token NLL over the full vocabulary of the same " << val_tokens
       << " validation tokens for every run (" << scale.val_batches << " batches), every "
       << scale.eval_every << " steps. Figures are mean ± sample standard deviation over the "
          "seeds.\n"
       << "- Baselines on those tokens, from the training split's counts: unigram "
       << format("%.4f", unigram) << ", interpolated bigram " << format("%.4f", bigram)
       << " nats/token (its λ chosen on the validation tokens themselves, so it is hard to "
          "beat).\n\n";

    md << "## Variants\n\n"
       << "| variant | what | parameters | val loss at " << tokens << " tokens | val loss at "
       << format("%.1f", budget) << " s | below bigram | ms/step | training s | peak MB |\n"
       << "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const VariantResult& vr : results) {
      md << "| " << vr.variant->name << " | " << vr.variant->what << " | "
         << format("%.2f M", vr.parameters / 1e6) << " | " << show(vr.val) << " | "
         << show(vr.val_at_time) << " | " << format("%.3f", bigram - vr.val.mean) << " | "
         << show(vr.step_ms, "%.1f") << " | " << show(vr.seconds, "%.1f") << " | "
         << format("%.0f", vr.peak_mb.mean) << " |\n";
    }
    md << "\n\"val loss at " << format("%.1f", budget)
       << " s\" is each run's validation loss after that much training time (the sum of its step "
          "times: validation is not counted), interpolated between evaluations; "
       << format("%.1f", budget)
       << " s is the fastest variant's whole run, so every variant is compared at the wall-clock "
          "the fastest one needed (— : no evaluation that early). \"below bigram\" is the bigram "
          "baseline minus the final loss: what the model learnt beyond pair statistics. ms/step "
          "is each run's median step after its first tenth (a typical step), \"training s\" the "
          "sum of all its steps (rare costs such as a reallocation included), each then averaged "
          "over the seeds; peak memory is the process's peak resident set.\n\n";
    md << "![validation loss against tokens](" << rel("val_loss_tokens.svg") << ")\n\n"
       << "![validation loss against training time](" << rel("val_loss_seconds.svg") << ")\n\n";

    md << "## Loss by position\n\nThe final validation loss by position in the window (mean over "
          "seeds): position 0 sees one token, position T − 1 sees T. A model that uses its "
          "context gains along the window.\n\n| variant |";
    const auto bins = position_bins(scale.seq_len);
    for (const auto& [lo, hi] : bins) {
      md << (hi - lo == 1 ? format(" %d |", lo) : format(" %d–%d |", lo, hi - 1));
    }
    md << " gain from first to last bin |\n|---|";
    for (std::size_t i = 0; i <= bins.size(); ++i) md << "---:|";
    md << "\n";
    for (const VariantResult& vr : results) {
      md << "| " << vr.variant->name << " |";
      std::vector<double> means;
      for (const auto& [lo, hi] : bins) {
        double sum = 0;
        for (int t = lo; t < hi; ++t) sum += vr.by_position[std::size_t(t)];
        means.push_back(sum / (hi - lo));
        md << format(" %.3f |", means.back());
      }
      md << format(" %.3f |\n", means.front() - means.back());
    }
    md << "\n![validation loss by position](" << rel("val_loss_position.svg") << ")\n\n";

    // The original scripts' claims, each with what was measured here.
    const VariantResult *dense = find("dense"), *light = find("lightrnn"),
                        *mtp = find("lightrnn-mtp2"), *cocont = find("lightrnn-cocont"),
                        *afno = find("afno");
    auto diff_stat = [](const Stat& a, const Stat& b) {
      Stat d;
      d.mean = a.mean - b.mean;
      d.spread = std::sqrt(a.spread * a.spread + b.spread * b.spread);
      d.n = std::min(a.n, b.n);
      return d;
    };
    // A difference "holds" when it points the claimed way by more than twice its seed spread.
    auto clear = [](const Stat& d) { return d.mean > 2 * d.spread && d.mean > 0; };
    md << "## The original scripts' claims\n\n"
       << "Measured at this page's scale on the CPU. A difference counts as real when it exceeds "
          "twice its spread over seeds (the spreads of the two variants combined). No GPU figure "
          "appears here: BENCHMARKS.md has none from a real GPU yet, and nothing is "
          "extrapolated.\n\n"
       << "| claim | measured here | verdict |\n|---|---|---|\n";
    {
      lightgpt::ModelConfig gpt2;  // GPT-2 small: V = 50257, C = 768
      gpt2.d_model = 768;
      const int rows = lightgpt::lightrnn_table_rows(gpt2);
      const double dense_softmax = double(gpt2.padded_vocab_size()) * gpt2.d_model;
      const double light_softmax = 2.0 * rows * gpt2.d_model;
      md << "| LightRNN: ~40× fewer softmax parameters | GPT-2 small: " << gpt2.padded_vocab_size()
         << " × 768 = " << format("%.1f M", dense_softmax / 1e6) << " against 2 × " << rows
         << " × 768 = " << format("%.2f M", light_softmax / 1e6) << ", "
         << format("%.0f×", dense_softmax / light_softmax) << " fewer";
      if (dense && light) {
        md << "; here the whole model has " << format("%.2f M", dense->parameters / 1e6)
           << " (dense) against " << format("%.2f M", light->parameters / 1e6) << " (LightRNN)";
      }
      md << " | holds (" << format("%.0f×", dense_softmax / light_softmax)
         << ", more than claimed) |\n";
    }
    if (dense && light) {
      const double speed = dense->step_ms.mean / light->step_ms.mean;
      md << "| LightRNN: ≈ 1.8× faster step on an RTX 4090 | "
         << format("%.1f ms against %.1f ms a step: %.2f× faster", dense->step_ms.mean,
                   light->step_ms.mean, speed)
         << " on this CPU at C = " << scale.d_model
         << ", where the V-wide head is most of the work | "
         << (speed > 1.1 ? "holds on the CPU (GPU: not testable here)"
                         : "does not hold on the CPU (GPU: not testable here)")
         << " |\n"
         << "| LightRNN: 3–4 GB lower VRAM | peak resident memory "
         << format("%.0f MB against %.0f MB (%.0f MB lower)", dense->peak_mb.mean,
                   light->peak_mb.mean, dense->peak_mb.mean - light->peak_mb.mean)
         << " | not testable here (GPU memory at GPT-2 scale); lower on the CPU |\n";
    }
    // "0.05 ± 0.01 lower" or "higher": how far a loss fell (d = before − after).
    auto lower = [](const Stat& d) {
      Stat magnitude = d;
      magnitude.mean = std::abs(d.mean);
      return show(magnitude) + (d.mean >= 0 ? " lower" : " higher");
    };
    // Which way a difference goes, when it goes clearly either way.
    auto direction = [&](const Stat& d, const char* lower_text, const char* higher_text,
                         const char* neither) {
      Stat negated = d;
      negated.mean = -d.mean;
      return std::string(clear(d) ? lower_text : clear(negated) ? higher_text : neither);
    };
    if (light && cocont) {
      const Stat gain = diff_stat(light->val, cocont->val);
      const double cost = cocont->step_ms.mean / light->step_ms.mean - 1;
      md << "| CoCoNT: ~0.05 lower validation loss at < 1 % compute | " << lower(gain)
         << " with CoCoNT (LightRNN head), step time " << format("%+.1f %%", 100 * cost) << " | "
         << direction(gain, gain.mean >= 0.025 ? "loss: holds" : "loss: lower, less than claimed",
                      "loss: does not hold (higher)",
                      "loss: does not hold (within the seed spread)")
         << (cost < 0.01 ? "; cost: holds" : "; cost: does not hold") << " |\n";
    }
    if (light && mtp) {
      const double cost = mtp->step_ms.mean / light->step_ms.mean - 1;
      const Stat at_tokens = diff_stat(light->val, mtp->val);
      const Stat at_time = diff_stat(light->val_at_time, mtp->val_at_time);
      md << "| MTP: < 3 % step-time overhead (LightRNN) | step time "
         << format("%+.1f %%", 100 * cost) << " (MTP<2> against none) | "
         << (cost < 0.03 ? "holds" : "does not hold") << " |\n"
         << "| MTP: faster convergence (3.34 reached 20 % sooner at d12, T 512) | validation "
            "loss "
         << lower(at_tokens) << " at equal tokens, " << lower(at_time) << " at equal time | "
         << direction(at_tokens, "holds here (lower at equal tokens)",
                      "does not hold here (higher at equal tokens)",
                      "no difference beyond the seed spread here")
         << "; the GPT-2-scale figure is not testable here |\n";
    }
    if (afno && light) {
      const Stat gain = diff_stat(light->val, afno->val);
      md << "| AFNO: causal token mixing | tested, not measured: `AfnoModel.LogProbsAreCausal` "
            "(changing a later token leaves every earlier log-probability unchanged) and the "
            "FFT convolution against the direct causal sum in Fp64 | holds |\n"
         << "| AFNO: O(N log N) mixing, linear memory in T | BENCHMARKS.md, \"CPU: AFNO "
            "against attention\": time grows as T^1.06 (attention T^1.57) over T = 1024 … 8192 "
            "| holds |\n"
         << "| AFNO: early validation loss (1.76 at step 512, T 1024); ~2× slower step | "
         << lower(gain) << " than attention at equal tokens (both with the LightRNN head); step "
         << format("%.1f ms against %.1f ms", afno->step_ms.mean, light->step_ms.mean)
         << " | the 1.76 is not comparable (another corpus and scale); here "
         << direction(gain, "better than attention", "worse than attention",
                      "on par with attention")
         << (afno->step_ms.mean < 1.5 * light->step_ms.mean ? ", and not 2× slower" : "")
         << " |\n";
    }
    md << "| Presets: < 20 GB peak GPU memory | — | not testable here (no GPU) |\n\n";

    md << "## Reading the numbers\n\nAt this scale (" << format("%.2f M", double(tokens) / 1e6)
       << " tokens, a " << scale.d_model
       << "-wide model) a variant's loss reflects how fast it learns on a small corpus more "
          "than where it would end at GPT-2 scale; the bigram line is the bar a model must clear "
          "to show it uses more than the previous token.";
    {
      int beat_bigram = 0, uses_context = 0;
      const VariantResult* best = &results.front();
      for (const VariantResult& vr : results) {
        if (vr.val.mean < bigram) ++beat_bigram;
        const auto& bp = vr.by_position;
        if (bp.size() > 1 && bp.back() < bp.front()) ++uses_context;
        if (vr.val.mean < best->val.mean) best = &vr;
      }
      md << " Here " << beat_bigram << " of " << results.size()
         << " variants end below the bigram baseline";
      if (beat_bigram == 0) {
        md << ": none has learnt more than pair statistics yet, so the comparisons above say "
              "which variant learns fastest from its first "
           << format("%.2f M", double(tokens) / 1e6)
           << " tokens, not which models language best";
      }
      md << ". The lowest final loss is " << best->variant->name << "'s ("
         << format("%.3f", best->val.mean) << ").";
      if (uses_context < int(results.size())) {
        md << " In " << results.size() - std::size_t(uses_context) << " of " << results.size()
           << " variants the loss at the last position is higher than at the first: at this "
              "stage of training more context still blurs more than it informs (the preset "
              "tiny-cpu, trained for six epochs, does gain along its window; docs/training.md).";
      }
    }
    md << " Runs, metrics and commands are kept under `" << out << "/runs/`.\n";

    std::ofstream file(report);
    LIGHTGPT_CHECK(file.good(), "cannot write '", report, "'");
    file << md.str();
    LIGHTGPT_CHECK(file.good(), "writing '", report, "' failed");
    std::printf("results: wrote %s and %zu plots in %s (%s)\n", report.c_str(), plots.size(),
                out.c_str(), lightgpt::format_duration(wall).c_str());
  } catch (...) {
    return lightgpt::report_exception("results");
  }
  return 0;
}
