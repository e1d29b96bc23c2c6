// One token-mixer layer on the GPU, AfnoMixer<8> against Attention: forward + backward in bf16 at
// C = 768 (GPT-2 small's width, 12 heads) for T = 1024 … 16384, with B·T held constant (16384
// tokens by default) so that both mixers see the same tokens and only the sequence length
// changes. AFNO costs O(T log T) per channel, attention O(T²) per head; the crossover is the T from
// which AFNO is the faster layer (interpolated log-log between the measured lengths).
// Attention is the backend's simple path: full T × T scores, fp32 S and dP plus bf16 P and dS,
// 12 bytes per score, B·NH·T² scores = tokens·NH·T — 38.7 GB at 16384 tokens and T = 16384. That
// is why the token count stays at 16384 (an H200 holds it; --tokens changes it, and a length whose
// buffers do not fit is reported as skipped rather than failing the run).
// Each figure is the median over interleaved repetitions (AFNO, attention, AFNO, ...) after a
// warm-up that makes the cuFFT plans, the cuBLASLt heuristics and the grow-only scratch. A plain
// program (no Google Benchmark): benchmarks/gpu/run.sh reads its `RESULT key=value` lines.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <lightgpt/cuda.cuh>
#include <lightgpt/mixers/afno/mixer.hpp>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using lightgpt::Cuda;
using Precision = lightgpt::Bf16;
using T = lightgpt::bfloat16;
using O = lightgpt::Ops<Cuda>;

constexpr int kC = 768, kHeads = 12;

struct Options {
  int tokens = 16384;
  int min_T = 1024;
  int max_T = 16384;
  int repeats = 7;
  int iterations = 2;  // layer steps per timed sample
};

void print_help() {
  std::printf(
      "bench_gpu_afno: one mixer layer (forward + backward, bf16, C = %d, %d heads),\n"
      "AfnoMixer<8> against Attention, for T = min_T, 2·min_T, ..., max_T at B = tokens / T.\n"
      "  --tokens N      B·T of every measurement (default 16384; B is at least 1)\n"
      "  --min_T N       shortest sequence (default 1024)\n"
      "  --max_T N       longest sequence (default 16384)\n"
      "  --repeats N     interleaved samples per mixer and length; the median is reported (7)\n"
      "  --iterations N  layer steps per sample (2)\n"
      "Attention keeps 12 bytes per score, B·12·T² scores: 38.7 GB at 16384 tokens, T = 16384.\n"
      "Output: RESULT mixer_afno_ms_T<T>, mixer_attention_ms_T<T>, mixer_speedup_T<T>\n"
      "(attention / AFNO) and mixer_crossover_T.\n",
      kC, kHeads);
}

bool parse(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      print_help();
      std::exit(0);
    }
    int* target = flag == "--tokens"       ? &options.tokens
                  : flag == "--min_T"      ? &options.min_T
                  : flag == "--max_T"      ? &options.max_T
                  : flag == "--repeats"    ? &options.repeats
                  : flag == "--iterations" ? &options.iterations
                                           : nullptr;
    if (target == nullptr || i + 1 >= argc) {
      std::fprintf(stderr, "bench_gpu_afno: unknown flag or missing value: %s (see --help)\n",
                   argv[i]);
      return false;
    }
    char* end = nullptr;
    const long value = std::strtol(argv[++i], &end, 10);
    if (*end != '\0' || value < 1 || value > (1 << 24)) {
      std::fprintf(stderr, "bench_gpu_afno: %s expects a positive integer, got %s\n", flag.c_str(),
                   argv[i]);
      return false;
    }
    *target = static_cast<int>(value);
  }
  if (options.min_T > options.max_T) {
    std::fprintf(stderr, "bench_gpu_afno: --min_T (%d) exceeds --max_T (%d)\n", options.min_T,
                 options.max_T);
    return false;
  }
  return true;
}

// Milliseconds of GPU time that `body` enqueues on the context stream.
class EventTimer {
 public:
  EventTimer() {
    LIGHTGPT_CUDA_CHECK(cudaEventCreate(&start_));
    LIGHTGPT_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~EventTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  double milliseconds(const std::function<void()>& body) {
    cudaStream_t stream = lightgpt::cuda::context().stream();
    LIGHTGPT_CUDA_CHECK(cudaEventRecord(start_, stream));
    body();
    LIGHTGPT_CUDA_CHECK(cudaEventRecord(stop_, stream));
    LIGHTGPT_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    LIGHTGPT_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }

 private:
  cudaEvent_t start_{}, stop_{};
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// One layer of `Mixer` with its parameters (GPT-2 initialisation), activation arena and the
// layer's input, output and their gradients, bound as the model binds a training layer.
template <class Mixer>
class MixerLayer {
 public:
  using Impl = typename Mixer::template impl<Cuda, Precision>;

  MixerLayer(const lightgpt::ModelConfig& config, int B, int seq_len)
      : store_(make_layout(config)), mixer_(config), B_(B), seq_len_(seq_len) {
    store_.initialize(1337);
    mixer_.bind_parameters(store_.layout(), store_.values(), store_.grads());
    const std::size_t positions = std::size_t(B) * seq_len, values = positions * kC;
    lightgpt::ArenaBinder measure;
    bind_all(measure, positions);
    arena_bytes_ = measure.bytes();
    arena_ = lightgpt::Buffer<std::byte, Cuda>(arena_bytes_);
    lightgpt::ArenaBinder bind(arena_.data());
    bind_all(bind, positions);
    io_ = lightgpt::Buffer<T, Cuda>(4 * values);
    std::mt19937 engine(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<T> host(2 * values);
    for (T& v : host) v = T(normal(engine));
    O::copy_from_host(io_.data(), host.data(), host.size());  // input | output gradient
  }

  // Forward and backward of the layer (parameter gradients accumulate, as in training).
  void step() {
    const std::size_t values = std::size_t(B_) * seq_len_ * kC;
    T* in = io_.data();
    T* dout = in + values;
    T* out = dout + values;
    T* din = out + values;
    mixer_.forward(0, 0, out, in, B_, seq_len_, true);
    mixer_.backward(0, lightgpt::overwrite(din), dout, in, B_, seq_len_);
  }

  std::size_t arena_bytes() const { return arena_bytes_; }

 private:
  static lightgpt::ParameterLayout make_layout(const lightgpt::ModelConfig& config) {
    lightgpt::ParameterLayout layout;
    Impl::declare(layout, config);
    return layout;
  }
  void bind_all(lightgpt::ArenaBinder& bind, std::size_t positions) {
    mixer_.bind_activations(bind, 1, positions);
    mixer_.bind_gradients(bind, positions);
  }

  lightgpt::ParameterStore<Precision, Cuda> store_;
  Impl mixer_;
  int B_, seq_len_;
  std::size_t arena_bytes_ = 0;
  lightgpt::Buffer<std::byte, Cuda> arena_;
  lightgpt::Buffer<T, Cuda> io_;
};

struct Measurement {
  int T = 0, B = 0;
  double afno_ms = 0, attention_ms = 0;
  bool measured = false;
};

Measurement measure(const Options& options, int seq_len, EventTimer& timer) {
  Measurement m;
  m.T = seq_len;
  m.B = std::max(1, options.tokens / seq_len);
  lightgpt::ModelConfig config;
  config.vocab_size = 50257;
  config.max_seq_len = seq_len;
  config.n_layer = 1;
  config.n_head = kHeads;
  config.d_model = kC;
  try {
    MixerLayer<lightgpt::AfnoMixer<8>> afno(config, m.B, seq_len);
    MixerLayer<lightgpt::Attention> attention(config, m.B, seq_len);
    std::printf("T = %d, B = %d: arenas %.2f GB (AFNO), %.2f GB (attention)\n", seq_len, m.B,
                afno.arena_bytes() / 1e9, attention.arena_bytes() / 1e9);
    for (int i = 0; i < 2; ++i) {  // plans, heuristics, grow-only scratch
      afno.step();
      attention.step();
    }
    lightgpt::cuda::context().synchronize();
    std::vector<double> afno_ms, attention_ms;
    for (int r = 0; r < options.repeats; ++r) {
      afno_ms.push_back(timer.milliseconds([&] {
        for (int i = 0; i < options.iterations; ++i) afno.step();
      }) / options.iterations);
      attention_ms.push_back(timer.milliseconds([&] {
        for (int i = 0; i < options.iterations; ++i) attention.step();
      }) / options.iterations);
    }
    m.afno_ms = median(afno_ms);
    m.attention_ms = median(attention_ms);
    m.measured = true;
  } catch (const lightgpt::Error& error) {
    std::printf("T = %d, B = %d skipped: %s\n", seq_len, m.B, error.what());
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse(argc, argv, options)) return 2;
  if (!lightgpt::cuda::device_available()) {
    std::printf("no usable GPU: %s\n", lightgpt::cuda::device_unavailable_reason().c_str());
    return 1;
  }
  cudaDeviceProp props{};
  LIGHTGPT_CUDA_CHECK(cudaGetDeviceProperties(&props, 0));
  std::printf("RESULT gpu=%s\n", props.name);
  std::printf("RESULT mixer_tokens=%d\n", options.tokens);

  EventTimer timer;
  std::vector<Measurement> results;
  for (long seq_len = options.min_T; seq_len <= options.max_T; seq_len *= 2) {
    const Measurement m = measure(options, static_cast<int>(seq_len), timer);
    if (m.measured) {
      std::printf("RESULT mixer_afno_ms_T%d=%.3f\n", m.T, m.afno_ms);
      std::printf("RESULT mixer_attention_ms_T%d=%.3f\n", m.T, m.attention_ms);
      std::printf("RESULT mixer_speedup_T%d=%.2f\n", m.T, m.attention_ms / m.afno_ms);
      results.push_back(m);
    }
    std::fflush(stdout);
  }

  // The crossover: the first measured length from which AFNO stays faster, interpolated in
  // log T against log(attention / AFNO) with the length before it.
  std::size_t first = results.size();
  for (std::size_t i = results.size(); i-- > 0;) {
    if (results[i].attention_ms < results[i].afno_ms) break;
    first = i;
  }
  if (results.empty()) {
    std::printf("RESULT mixer_crossover_T=unmeasured\n");
  } else if (first == results.size()) {
    std::printf("RESULT mixer_crossover_T=above_%d\n", results.back().T);
  } else if (first == 0) {
    std::printf("RESULT mixer_crossover_T=below_%d\n", results.front().T);
  } else {
    const Measurement& a = results[first - 1];
    const Measurement& b = results[first];
    const double ra = std::log(a.attention_ms / a.afno_ms),
                 rb = std::log(b.attention_ms / b.afno_ms);
    const double fraction = rb > ra ? -ra / (rb - ra) : 1.0;
    const double crossover = std::exp(std::log(double(a.T)) +
                                      fraction * (std::log(double(b.T)) - std::log(double(a.T))));
    std::printf("RESULT mixer_crossover_T=%.0f\n", crossover);
  }
  return 0;
}
