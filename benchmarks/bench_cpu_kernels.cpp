// CPU kernel and whole-step benchmarks (Google Benchmark). Shapes follow GPT-2 small (C = 768,
// V = 50257) at a CPU-sized number of positions; FLOP rates are reported as counters.
#include <benchmark/benchmark.h>

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <lightgpt/lightgpt.hpp>
#include <lightgpt/train/presets.hpp>
#include <memory>
#include <vector>

namespace {

using lightgpt::Cpu;
using O = lightgpt::Ops<Cpu>;
using K = lightgpt::AttentionKernels<Cpu>;

std::vector<float> filled(std::size_t n, std::uint64_t seed) {
  lightgpt::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(0.02 * rng.normal());
  return v;
}

// out[N, OC] = in[N, IC] · Wᵀ: the trunk's projections (OC = 3C, 4C) and the logits (OC = Vp).
void BM_MatmulForward(benchmark::State& state) {
  const int N = int(state.range(0)), IC = int(state.range(1)), OC = int(state.range(2));
  const auto in = filled(std::size_t(N) * IC, 1), w = filled(std::size_t(OC) * IC, 2);
  std::vector<float> out(std::size_t(N) * OC);
  for (auto _ : state) {
    O::matmul_forward(out.data(), in.data(), w.data(), static_cast<const float*>(nullptr), N, IC,
                      OC);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * N * IC * OC * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MatmulForward)
    ->Args({1024, 768, 2304})
    ->Args({1024, 768, 3072})
    ->Args({1024, 768, 50304})
    ->Args({256, 768, 50304})
    ->Args({256, 256, 50304})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// 16-bit storage: our staged GEMM (widen to fp32, Eigen's fp32 GEMM, round once) against Eigen's
// own GEMM on Eigen::bfloat16 matrices, which computes in emulated bfloat16 arithmetic.
void BM_MatmulForwardBf16Staged(benchmark::State& state) {
  const int N = int(state.range(0)), IC = int(state.range(1)), OC = int(state.range(2));
  const auto in32 = filled(std::size_t(N) * IC, 1), w32 = filled(std::size_t(OC) * IC, 2);
  std::vector<lightgpt::bfloat16> in(in32.size()), w(w32.size()), out(std::size_t(N) * OC);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = lightgpt::bfloat16(in32[i]);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = lightgpt::bfloat16(w32[i]);
  for (auto _ : state) {
    O::matmul_forward(out.data(), in.data(), w.data(),
                      static_cast<const lightgpt::bfloat16*>(nullptr), N, IC, OC);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * N * IC * OC * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MatmulForwardBf16Staged)
    ->Args({256, 768, 768})
    ->Args({1024, 768, 3072})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_MatmulForwardBf16EigenNative(benchmark::State& state) {
  using M = Eigen::Matrix<Eigen::bfloat16, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int N = int(state.range(0)), IC = int(state.range(1)), OC = int(state.range(2));
  const M in = M::Random(N, IC), w = M::Random(OC, IC);
  M out(N, OC);
  for (auto _ : state) {
    out.noalias() = in * w.transpose();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * N * IC * OC * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MatmulForwardBf16EigenNative)
    ->Args({256, 768, 768})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_AttentionForwardBackward(benchmark::State& state) {
  const int B = 1, T = int(state.range(0)), C = 768, NH = 12;
  const auto qkv = filled(std::size_t(B) * T * 3 * C, 3), dout = filled(std::size_t(B) * T * C, 4);
  std::vector<float> out(std::size_t(B) * T * C), lse(std::size_t(B) * NH * T), dqkv(qkv.size()),
      scratch(K::attention_scratch_size(T));
  for (auto _ : state) {
    K::attention_forward(out.data(), lse.data(), qkv.data(), B, T, C, NH, scratch.data());
    K::attention_backward(lightgpt::overwrite(dqkv.data()), dout.data(), qkv.data(), out.data(),
                          lse.data(), B, T, C, NH, scratch.data());
    benchmark::DoNotOptimize(dqkv.data());
  }
}
BENCHMARK(BM_AttentionForwardBackward)
    ->Arg(256)
    ->Arg(1024)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Whole training steps (forward + backward + AdamW) on B × T random tokens; tok/s as a counter.
template <class Model>
void time_training_steps(benchmark::State& state, const lightgpt::ModelConfig& config, int B,
                         int T) {
  Model model(config, 1);
  lightgpt::AdamW<Cpu, float> optimizer(model.parameters().layout());
  std::vector<int> tokens(std::size_t(B) * (T + 1));
  lightgpt::Rng rng(5);
  for (int& id : tokens) id = int(rng.next_u64() % config.vocab_size);
  for (auto _ : state) {
    model.zero_grad();
    benchmark::DoNotOptimize(model.forward(tokens.data(), B, T));
    model.backward();
    optimizer.step(model.parameters(), 1e-4);
  }
  state.counters["tok/s"] =
      benchmark::Counter(double(B) * T * state.iterations(), benchmark::Counter::kIsRate);
}

// One training step (forward + backward + AdamW) of a 2-layer C = 256 model with the full GPT-2
// vocabulary, B·T = 512 positions.
void BM_TrainingStep(benchmark::State& state) {
  using Model = lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention, Cpu>;
  lightgpt::ModelConfig config;
  config.n_layer = 2;
  config.n_head = 4;
  config.d_model = 256;
  config.max_seq_len = 128;
  time_training_steps<Model>(state, config, 4, 128);
}
BENCHMARK(BM_TrainingStep)->Unit(benchmark::kMillisecond)->UseRealTime();

// GELU forward + backward over 512 positions × 4C (C = 128, tiny-cpu's MLP): the CPU kernels
// (tanh vectorised through Eigen) against the same formulas element by element with std::tanh
// (arg 0, OpenMP-parallel as the kernels were before they were vectorised).
void BM_Gelu(benchmark::State& state) {
  const bool vectorised = state.range(0) != 0;
  const std::size_t n = 512 * 512;
  const auto in = filled(n, 6), dout = filled(n, 7);
  std::vector<float> out(n), din(n);
  for (auto _ : state) {
    if (vectorised) {
      O::gelu_forward(out.data(), in.data(), n);
      O::gelu_backward(lightgpt::overwrite(din.data()), dout.data(), in.data(), n);
    } else {
      const auto count = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t i = 0; i < count; ++i) out[i] = lightgpt::detail::gelu(in[i]);
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t i = 0; i < count; ++i) {
        din[i] = dout[i] * lightgpt::detail::gelu_grad(in[i]);
      }
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(din.data());
  }
  state.counters["Melem/s"] =
      benchmark::Counter(double(n) * state.iterations() / 1e6, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Gelu)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

// AdamW over 1 M fp32 parameters: the CPU kernel (Eigen array expressions, vectorised) against
// the same update element by element with std::sqrt (arg 0, OpenMP-parallel as the kernel was
// before: the errno check of std::sqrt kept the compiler from vectorising that loop).
void BM_AdamW(benchmark::State& state) {
  const bool vectorised = state.range(0) != 0;
  const std::size_t n = std::size_t(1) << 20;
  auto weights = filled(n, 8), m = filled(n, 9), v = filled(n, 10);
  const auto grads = filled(n, 11);
  for (float& x : v) x = x * x;
  lightgpt::AdamWStep<float> step{1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 0.3f, 1.0f};
  for (auto _ : state) {
    if (vectorised) {
      O::adamw_update(weights.data(), weights.data(), m.data(), v.data(), grads.data(), n, step);
    } else {
      const auto count = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t i = 0; i < count; ++i) {
        const float g = grads[i] * step.grad_scale;
        m[i] = step.beta1 * m[i] + (1 - step.beta1) * g;
        v[i] = step.beta2 * v[i] + (1 - step.beta2) * g * g;
        const float m_hat = m[i] / step.bias_correction1, v_hat = v[i] / step.bias_correction2;
        weights[i] -= step.lr * (m_hat / (std::sqrt(v_hat) + step.eps) +
                                 step.weight_decay * weights[i]);
      }
    }
    benchmark::DoNotOptimize(weights.data());
  }
  state.counters["Melem/s"] =
      benchmark::Counter(double(n) * state.iterations() / 1e6, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AdamW)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

// One step of the tiny-cpu preset's model (2 layers, C = 128, T = 16, B = 32, LightRNN head with
// the sequential codebook) without (arg 0) and with (arg 1) the untied token
// embedding. The batch is the same every step, so at most 512 rows of the token table are ever
// active and its row-sparse AdamW update costs less than in training, where the rows seen over
// the last 100 steps are updated (BENCHMARKS.md has the training steps' times).
void BM_TinyCpuStep(benchmark::State& state) {
  using Model = lightgpt::GPT<lightgpt::Fp32, lightgpt::LightRnnHead<>, lightgpt::Attention, Cpu>;
  lightgpt::ModelConfig config = lightgpt::preset("tiny-cpu").model;
  config.options.set("lightrnn.token_embedding", state.range(0) != 0);
  time_training_steps<Model>(state, config, 32, 16);
}
BENCHMARK(BM_TinyCpuStep)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// Whole training steps against the machine's GEMM rate, at the shapes (B = 4, T = 64):
// GPT-2 small (arg 0), 4 layers at C = 256 with the 50257-wide dense head (arg 1), and the
// tiny-cpu preset (arg 2, its own B = 32, T = 16); the second argument is the OpenMP thread count.
// Each iteration times one step and then one GEMM of the model's largest shape (the logits, or
// the fc layer for tiny-cpu), so both rates see the same machine load; the counters are medians
// over the timed iterations, after two untimed steps, the ratio the median of each iteration's
// step rate over the GEMM rate timed right after it (the machine's speed drifts between them
// less than across the run). Model FLOPs per step are
// 6 · (12·L·C² + head)·B·T with head = 50304·C for the dense head and 2·R·C + C² for LightRNN
// (its two R-wide products and the C × C step per position). peak_MB is the process's maximum
// resident set: run one shape per process to read it.
// Profiling the timed steps alone: with LIGHTGPT_PERF_CONTROL naming the control FIFO of
// `perf record -D -1 --control=fifo:FIFO`, the timed iterations of BM_StepVsGemm are bracketed by
// "enable" and "disable" (BENCHMARKS.md, "CPU: whole steps against the GEMM rate").
void perf_control(const char* command) {
  if (const char* fifo = std::getenv("LIGHTGPT_PERF_CONTROL")) {
    std::ofstream(fifo) << command << std::endl;
  }
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// One shape's training step and the GEMM timed beside it.
template <class Model>
struct StepRig {
  lightgpt::ModelConfig config;
  int B, T, gemm_in, gemm_out;
  double step_flops;
  Model model;
  typename Model::Optimizer optimizer;
  std::vector<int> tokens;
  std::vector<float> in, w, out;

  StepRig(const lightgpt::ModelConfig& c, int b, int t, double head_flops_per_position, int gi,
          int go)
      : config(c),
        B(b),
        T(t),
        gemm_in(gi),
        gemm_out(go),
        step_flops(6.0 * (12.0 * c.n_layer * double(c.d_model) * c.d_model +
                          head_flops_per_position) *
                   b * t),
        model(c, 1),
        optimizer(model.parameters().layout()),
        tokens(std::size_t(b) * (t + 1)),
        in(filled(std::size_t(b) * t * gi, 1)),
        w(filled(std::size_t(go) * gi, 2)),
        out(std::size_t(b) * t * go) {
    lightgpt::Rng rng(5);
    for (int& id : tokens) id = int(rng.next_u64() % config.vocab_size);
  }
  void step() {
    forward_backward();
    optimizer_step();
  }
  void forward_backward() {
    model.zero_grad();
    benchmark::DoNotOptimize(model.forward(tokens.data(), B, T));
    model.backward();
  }
  void optimizer_step() { optimizer.step(model.parameters(), 1e-4); }
  void gemm() {
    O::matmul_forward(out.data(), in.data(), w.data(), static_cast<const float*>(nullptr), B * T,
                      gemm_in, gemm_out);
    benchmark::DoNotOptimize(out.data());
  }
  double gemm_flops() const { return 2.0 * B * T * double(gemm_in) * gemm_out; }
};

template <class F>
double seconds_of(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void report_peak_memory(benchmark::State& state) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  state.counters["peak_MB"] = double(usage.ru_maxrss) / 1024.0;
}

template <class Model>
void time_against_gemm(benchmark::State& state, StepRig<Model>& rig) {
  omp_set_num_threads(int(state.range(1)));
  for (int warmup = 0; warmup < 2; ++warmup) rig.step();
  std::vector<double> steps, gemms, ratios;
  for (auto _ : state) {
    perf_control("enable");
    const double step_seconds = seconds_of([&] { rig.step(); });
    perf_control("disable");
    gemms.push_back(seconds_of([&] { rig.gemm(); }));
    steps.push_back(step_seconds);
    ratios.push_back(rig.step_flops / step_seconds / (rig.gemm_flops() / gemms.back()));
    state.SetIterationTime(step_seconds);
  }
  const double step_time = median(steps);
  state.counters["ms/step"] = step_time * 1e3;
  state.counters["tok/s"] = rig.B * rig.T / step_time;
  state.counters["GFLOP/s"] = rig.step_flops / step_time / 1e9;
  state.counters["GEMM_GFLOP/s"] = rig.gemm_flops() / median(gemms) / 1e9;
  state.counters["ratio"] = median(ratios);
  report_peak_memory(state);
}

// What the second thread gains: each iteration times a step and the GEMM on one thread and on
// two, in alternating order, so that both see the same machine; the counters are the medians of
// the per-iteration ratios (one thread's time over two threads'), for the step and for the GEMM.
template <class Model>
void time_thread_gain(benchmark::State& state, StepRig<Model>& rig) {
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    for (int warmup = 0; warmup < 2; ++warmup) rig.step();
  }
  std::vector<double> step_gain, gemm_gain, one, two;
  bool one_first = true;
  for (auto _ : state) {
    double step[3] = {}, gemm[3] = {};
    for (int threads : one_first ? std::array{1, 2} : std::array{2, 1}) {
      omp_set_num_threads(threads);
      step[threads] = seconds_of([&] { rig.step(); });
      gemm[threads] = seconds_of([&] { rig.gemm(); });
    }
    one_first = !one_first;
    step_gain.push_back(step[1] / step[2]);
    gemm_gain.push_back(gemm[1] / gemm[2]);
    one.push_back(step[1]);
    two.push_back(step[2]);
    state.SetIterationTime(step[1] + step[2]);
  }
  omp_set_num_threads(omp_get_num_procs());
  state.counters["ms/step_1t"] = median(one) * 1e3;
  state.counters["ms/step_2t"] = median(two) * 1e3;
  state.counters["step_gain"] = median(step_gain);
  state.counters["GEMM_gain"] = median(gemm_gain);
  report_peak_memory(state);
}

// What the second thread could gain at most, against what it gains: each iteration times the step
// on one thread, on two, and a step split by batch rows: in one parallel region of two threads,
// each runs zero_grad, forward and backward of a half-batch model alone (the kernels' own
// regions nested inside run on one thread), then one AdamW update on two threads. Nothing is
// shared until the update, and the sum of the halves' gradients is not counted, so on a VM whose
// two vCPUs slow each other down this split's gain is about the most any split of the step can
// reach. Counters: medians of the per-iteration gains over the one-thread step (`step_gain`,
// `split_gain`) and of the split's time over the two-thread step's (`of_split`).
template <class Model, class Make>
void time_split_ceiling(benchmark::State& state, StepRig<Model>& rig, Make&& make) {
  const auto half0 = make(rig.B / 2), half1 = make(rig.B / 2);
  auto split_step = [&] {
    omp_set_num_threads(2);
#pragma omp parallel num_threads(2)
    (omp_get_thread_num() == 0 ? half0 : half1)->forward_backward();
    half0->optimizer_step();
  };
  for (int warmup = 0; warmup < 2; ++warmup) {
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      rig.step();
    }
    split_step();
  }
  std::vector<double> step_gain, split_gain, of_split;
  for (auto _ : state) {
    omp_set_num_threads(1);
    const double one = seconds_of([&] { rig.step(); });
    omp_set_num_threads(2);
    const double two = seconds_of([&] { rig.step(); });
    const double split = seconds_of(split_step);
    step_gain.push_back(one / two);
    split_gain.push_back(one / split);
    of_split.push_back(split / two);
    state.SetIterationTime(one + two + split);
  }
  omp_set_num_threads(omp_get_num_procs());
  state.counters["step_gain"] = median(step_gain);
  state.counters["split_gain"] = median(split_gain);
  state.counters["of_split"] = median(of_split);
}

// What GPT::set_batch_split gains: each iteration times the step on one thread, on two, and on two
// with the batch split into two row groups (a second model of the shape, set_batch_split(2)),
// the two-thread runs in alternating order. Counters: medians of the per-iteration gains over the
// one-thread step (`step_gain`, `batch_split_gain`) and of the split step's time over the
// two-thread step's (`of_threads`), and the milliseconds of each.
template <class Model, class Make>
void time_batch_split(benchmark::State& state, StepRig<Model>& rig, Make&& make) {
  const auto split = make(rig.B);
  split->model.set_batch_split(2);
  for (int warmup = 0; warmup < 2; ++warmup) {
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      rig.step();
    }
    split->step();
  }
  std::vector<double> step_gain, split_gain, of_threads, one, two, grouped;
  bool threads_first = true;
  for (auto _ : state) {
    omp_set_num_threads(1);
    const double t1 = seconds_of([&] { rig.step(); });
    omp_set_num_threads(2);
    double t2 = 0, ts = 0;
    if (threads_first) {
      t2 = seconds_of([&] { rig.step(); });
      ts = seconds_of([&] { split->step(); });
    } else {
      ts = seconds_of([&] { split->step(); });
      t2 = seconds_of([&] { rig.step(); });
    }
    threads_first = !threads_first;
    step_gain.push_back(t1 / t2);
    split_gain.push_back(t1 / ts);
    of_threads.push_back(ts / t2);
    one.push_back(t1);
    two.push_back(t2);
    grouped.push_back(ts);
    state.SetIterationTime(t1 + t2 + ts);
  }
  omp_set_num_threads(omp_get_num_procs());
  state.counters["ms/step_1t"] = median(one) * 1e3;
  state.counters["ms/step_2t"] = median(two) * 1e3;
  state.counters["ms/split_2t"] = median(grouped) * 1e3;
  state.counters["step_gain"] = median(step_gain);
  state.counters["batch_split_gain"] = median(split_gain);
  state.counters["of_threads"] = median(of_threads);
  report_peak_memory(state);
}

// The three shapes of BM_StepVsGemm, BM_ThreadGain, BM_SplitCeiling and BM_BatchSplit (arg 0). The
// timer gets the shape's rig and a maker of more rigs of the same shape at another batch size.
template <class Model, class Timer>
void time_rig(benchmark::State& state, Timer timer, const lightgpt::ModelConfig& config, int B,
              int T, double head_flops, int gemm_in, int gemm_out) {
  StepRig<Model> rig(config, B, T, head_flops, gemm_in, gemm_out);
  timer(state, rig, [&](int batch) {
    return std::make_unique<StepRig<Model>>(config, batch, T, head_flops, gemm_in, gemm_out);
  });
}

template <class Timer>
void with_step_rig(benchmark::State& state, Timer timer) {
  using Dense = lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention, Cpu>;
  using Tiny = lightgpt::GPT<lightgpt::Fp32, lightgpt::LightRnnHead<>, lightgpt::Attention, Cpu>;
  if (state.range(0) == 2) {
    const lightgpt::ModelConfig config = lightgpt::preset("tiny-cpu").model;
    const double R = lightrnn_table_rows(config), C = config.d_model;
    time_rig<Tiny>(state, timer, config, 32, 16, 2.0 * R * C + C * C, config.d_model,
                   4 * config.d_model);
    return;
  }
  lightgpt::ModelConfig config;
  config.max_seq_len = 64;
  if (state.range(0) == 1) {
    config.n_layer = 4;
    config.n_head = 4;
    config.d_model = 256;
  }
  const int Vp = config.padded_vocab_size();
  time_rig<Dense>(state, timer, config, 4, 64, double(Vp) * config.d_model, config.d_model, Vp);
}

void BM_StepVsGemm(benchmark::State& state) {
  with_step_rig(state, [](benchmark::State& s, auto& rig, auto&&) { time_against_gemm(s, rig); });
}
BENCHMARK(BM_StepVsGemm)
    ->ArgsProduct({{0, 1, 2}, {1, 2}})
    ->Iterations(6)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

void BM_ThreadGain(benchmark::State& state) {
  with_step_rig(state, [](benchmark::State& s, auto& rig, auto&&) { time_thread_gain(s, rig); });
}
BENCHMARK(BM_ThreadGain)->Arg(0)->Arg(1)->Arg(2)->Iterations(8)->Unit(benchmark::kMillisecond)
    ->UseManualTime();

void BM_SplitCeiling(benchmark::State& state) {
  with_step_rig(
      state, [](benchmark::State& s, auto& rig, auto&& make) { time_split_ceiling(s, rig, make); });
}
BENCHMARK(BM_SplitCeiling)->Arg(0)->Arg(1)->Arg(2)->Iterations(8)->Unit(benchmark::kMillisecond)
    ->UseManualTime();

void BM_BatchSplit(benchmark::State& state) {
  with_step_rig(
      state, [](benchmark::State& s, auto& rig, auto&& make) { time_batch_split(s, rig, make); });
}
BENCHMARK(BM_BatchSplit)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(12)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

// The passes over every parameter that a training step makes besides its GEMMs, at GPT-2 small's
// 124.4 M fp32 parameters: the gradient zero fill, the gradient norm's sum of squares and the
// AdamW update (28 bytes per parameter). Arg: the OpenMP thread count. Counters: milliseconds per
// pass and the bytes each moves per second; their sum is the step's parameter-bound floor.
void BM_ParameterPasses(benchmark::State& state) {
  omp_set_num_threads(int(state.range(0)));
  const std::size_t n = 124439808;
  auto weights = filled(n, 8), m = filled(n, 9), v = filled(n, 10), grads = filled(n, 11);
  for (float& x : v) x = x * x;
  lightgpt::AdamWStep<float> step{1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 0.3f, 1.0f};
  std::vector<double> zero_ms, norm_ms, adamw_ms;
  auto ms_since = [](auto start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  };
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    O::fill_zero(grads.data(), n);
    zero_ms.push_back(ms_since(start));
    start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(O::sum_of_squares(grads.data(), n));
    norm_ms.push_back(ms_since(start));
    start = std::chrono::steady_clock::now();
    O::adamw_update(weights.data(), weights.data(), m.data(), v.data(), grads.data(), n, step);
    adamw_ms.push_back(ms_since(start));
    state.SetIterationTime((zero_ms.back() + norm_ms.back() + adamw_ms.back()) / 1000.0);
  }
  const double bytes = double(n) * sizeof(float);
  state.counters["zero_ms"] = median(zero_ms);
  state.counters["norm_ms"] = median(norm_ms);
  state.counters["adamw_ms"] = median(adamw_ms);
  state.counters["zero_GB/s"] = bytes / median(zero_ms) / 1e6;
  state.counters["norm_GB/s"] = bytes / median(norm_ms) / 1e6;
  state.counters["adamw_GB/s"] = 7 * bytes / median(adamw_ms) / 1e6;
  omp_set_num_threads(omp_get_num_procs());
}

BENCHMARK(BM_ParameterPasses)->Arg(1)->Arg(2)->Iterations(5)->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
