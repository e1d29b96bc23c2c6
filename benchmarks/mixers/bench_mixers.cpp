// Token mixers head to head: one layer's forward + backward (fp32, CPU, B = 1, C = 768, GPT-2
// small's width and 12 heads) for T = 64 … 8192, AfnoMixer<8> against Attention, each through
// its mixer implementation exactly as the model runs it (projections included). After the runs
// it prints each mixer's fitted growth exponent (least squares of log time on log T), the
// crossover T, and AFNO at a prime T (1021) against 1024.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <lightgpt/lightgpt.hpp>
#include <map>
#include <string>
#include <vector>

namespace {

using lightgpt::Cpu;
using lightgpt::Fp32;

constexpr int kC = 768, kMaxT = 8192;

lightgpt::ModelConfig bench_config() {
  lightgpt::ModelConfig config;
  config.n_layer = 1;
  config.n_head = 12;
  config.d_model = kC;
  config.max_seq_len = kMaxT;
  return config;
}

std::vector<float> filled(std::size_t n, std::uint64_t seed) {
  lightgpt::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.normal());
  return v;
}

// One layer of a mixer with its parameters, activations and gradients bound as the model binds
// them.
template <class Mixer>
class OneLayer {
 public:
  using Impl = typename Mixer::template impl<Cpu, Fp32>;

  explicit OneLayer(int T) : store_(layout()), mixer_(bench_config()) {
    store_.initialize(1);
    mixer_.bind_parameters(store_.layout(), store_.values(), store_.grads());
    lightgpt::ArenaBinder measure;
    bind(measure, T);
    arena_ = lightgpt::Buffer<std::byte, Cpu>(measure.bytes());
    lightgpt::ArenaBinder binder(arena_.data());
    bind(binder, T);
  }
  Impl& mixer() { return mixer_; }

 private:
  static lightgpt::ParameterLayout layout() {
    lightgpt::ParameterLayout layout;
    Impl::declare(layout, bench_config());
    return layout;
  }
  void bind(lightgpt::ArenaBinder& binder, int T) {
    mixer_.bind_activations(binder, 1, static_cast<std::size_t>(T));
    mixer_.bind_gradients(binder, static_cast<std::size_t>(T));
  }

  lightgpt::ParameterStore<Fp32, Cpu> store_;
  Impl mixer_;
  lightgpt::Buffer<std::byte, Cpu> arena_;
};

template <class Mixer>
void BM_MixerForwardBackward(benchmark::State& state) {
  const int T = int(state.range(0));
  OneLayer<Mixer> layer(T);
  const auto in = filled(std::size_t(T) * kC, 2), dout = filled(std::size_t(T) * kC, 3);
  std::vector<float> out(in.size()), din(in.size());
  for (auto _ : state) {
    layer.mixer().forward(0, 0, out.data(), in.data(), 1, T, true);
    layer.mixer().backward(0, lightgpt::overwrite(din.data()), dout.data(), in.data(), 1, T);
    benchmark::DoNotOptimize(din.data());
  }
  state.counters["tok/s"] =
      benchmark::Counter(double(T) * state.iterations(), benchmark::Counter::kIsRate);
}

const std::vector<int> kLengths = {64, 128, 256, 512, 1024, 2048, 4096, 8192};

// Collects each run's real time (the median when repetitions are aggregated) by mixer and T.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (run.run_type == Run::RT_Aggregate && !median) continue;
      auto& slot = times_[run.run_name.function_name][std::stoi(run.run_name.args)];
      if (median || !slot.second) slot = {run.GetAdjustedRealTime(), median};
    }
  }

  void print_summary() const {
    std::printf("\nSummary (ms, median when repeated):\n");
    for (const auto& [name, by_T] : times_) {
      std::vector<double> xs, ys;
      for (int T : kLengths) {
        auto it = by_T.find(T);
        if (it == by_T.end() || T < 1024) continue;
        xs.push_back(std::log(double(T)));
        ys.push_back(std::log(it->second.first));
      }
      std::printf("  %-28s growth exponent over T = 1024..8192: %.2f\n", name.c_str(),
                  slope(xs, ys));
    }
    const auto afno = times_.find("afno<8>"), attention = times_.find("attention");
    if (afno == times_.end() || attention == times_.end()) return;
    for (std::size_t i = 0; i < kLengths.size(); ++i) {
      const int T = kLengths[i];
      if (!afno->second.count(T) || !attention->second.count(T)) continue;
      const double ratio = attention->second.at(T).first / afno->second.at(T).first;
      std::printf("  T = %5d: attention / afno<8> = %.2f\n", T, ratio);
    }
    // Crossover: where log(attention / afno) crosses 0, interpolated in log T between grid points.
    double previous_T = 0, previous_log_ratio = 0;
    bool found = false;
    for (int T : kLengths) {
      if (!afno->second.count(T) || !attention->second.count(T)) continue;
      const double log_ratio = std::log(attention->second.at(T).first / afno->second.at(T).first);
      if (log_ratio > 0 && !found) {
        found = true;
        if (previous_T == 0) {
          std::printf("  afno<8> is already faster at the shortest T = %d\n", T);
        } else {
          const double w = -previous_log_ratio / (log_ratio - previous_log_ratio);
          const double crossover =
              std::exp(std::log(previous_T) + w * (std::log(double(T)) - std::log(previous_T)));
          std::printf("  crossover (log-log interpolation): T ≈ %.0f\n", crossover);
        }
      }
      previous_T = T;
      previous_log_ratio = log_ratio;
    }
    if (!found) std::printf("  no crossover up to T = %d\n", kLengths.back());
    if (afno->second.count(1021) && afno->second.count(1024)) {
      std::printf("  afno<8> T = 1021 (prime) / T = 1024: %.2f\n",
                  afno->second.at(1021).first / afno->second.at(1024).first);
    }
  }

 private:
  static double slope(const std::vector<double>& xs, const std::vector<double>& ys) {
    const double n = double(xs.size());
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      sx += xs[i];
      sy += ys[i];
      sxx += xs[i] * xs[i];
      sxy += xs[i] * ys[i];
    }
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
  }

  std::map<std::string, std::map<int, std::pair<double, bool>>> times_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  auto* afno = benchmark::RegisterBenchmark(lightgpt::AfnoMixer<8>::name().c_str(),
                                            BM_MixerForwardBackward<lightgpt::AfnoMixer<8>>);
  auto* attention = benchmark::RegisterBenchmark(lightgpt::Attention::name().c_str(),
                                                 BM_MixerForwardBackward<lightgpt::Attention>);
  for (int T : kLengths) {
    afno->Arg(T);
    attention->Arg(T);
  }
  afno->Arg(1021);
  for (auto* bench : {afno, attention}) bench->Unit(benchmark::kMillisecond)->UseRealTime();
  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_summary();
  benchmark::Shutdown();
  return 0;
}
