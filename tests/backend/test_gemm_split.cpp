// The CPU GEMMs' split between threads (backend/cpu/gemm.hpp): where the cuts fall, given the
// threads' measured speeds, and that no cut changes a bit of the result. Each product is computed
// on one thread, then on two and three with even and deliberately skewed speeds, and every output
// must be identical; one-thread results are checked against naive loops besides. Built twice:
// portable (test_lightgpt) and for this CPU (test_gemm_split_native), where Eigen's FMA kernels
// would round a panel cut short differently.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <lightgpt/lightgpt.hpp>
#include <limits>
#include <vector>

namespace lightgpt {
namespace gemm_split_tests {
namespace {

using O = Ops<Cpu>;
using Speeds = cpu::GemmOps::ThreadSpeeds;

TEST(CpuGemmSplit, CutsFollowTheSpeedsInWholeUnits) {
  Speeds speeds;
  speeds.reset(2);
  int cuts[3];
  speeds.cut(768, 48, cuts);
  EXPECT_EQ(cuts[0], 0);
  EXPECT_EQ(cuts[1], 384);
  EXPECT_EQ(cuts[2], 768);
  speeds.speed[0] = 1.0;
  speeds.speed[1] = 3.0;  // a quarter of the rows to thread 0: 192 = 4 units of 48
  speeds.cut(768, 48, cuts);
  EXPECT_EQ(cuts[1], 192);
  speeds.speed[1] = 1.2;  // 768 · 1/2.2 = 349 rows: the nearest whole unit is 336
  speeds.cut(768, 48, cuts);
  EXPECT_EQ(cuts[1], 336);

  speeds.reset(3);
  speeds.speed[1] = 0.0;  // a thread measured at no speed gets an empty slice, not a negative one
  speeds.cut(100, 16, cuts);
  EXPECT_EQ(cuts[0], 0);
  EXPECT_EQ(cuts[1], 48);  // 100 · 1/2 = 50 → 3 units
  EXPECT_EQ(cuts[2], 48);
  EXPECT_EQ(cuts[3], 100);
}

TEST(CpuGemmSplit, SpeedsMoveTowardTheMeasuredRates) {
  constexpr double keep = Speeds::kKeep;
  Speeds speeds;
  speeds.reset(2);
  const int cuts[3] = {0, 384, 768};
  const double seconds[2] = {1.0, 2.0};  // 384 and 192 rows/s: 4/3 and 2/3 of the mean
  speeds.record(cuts, seconds);
  EXPECT_NEAR(speeds.speed[0], keep + (1 - keep) * 4.0 / 3.0, 1e-12);
  EXPECT_NEAR(speeds.speed[1], keep + (1 - keep) * 2.0 / 3.0, 1e-12);
  // An empty slice or an unmeasured one says nothing about the speeds.
  const int empty[3] = {0, 0, 768};
  const double before = speeds.speed[0];
  speeds.record(empty, seconds);
  EXPECT_EQ(speeds.speed[0], before);
  const double zero[2] = {0.0, 1.0};
  speeds.record(cuts, zero);
  EXPECT_EQ(speeds.speed[0], before);
  // A wild measurement counts as no less than half the mean (two threads cannot exceed twice it).
  const double wild[2] = {1.0, 1e6};
  speeds.record(cuts, wild);
  EXPECT_NEAR(speeds.speed[0], keep * before + (1 - keep) * 2.0, 1e-6);
  EXPECT_NEAR(speeds.speed[1], keep * (keep + (1 - keep) * 2.0 / 3.0) + (1 - keep) * 0.5, 1e-12);
}

struct Outputs {
  std::vector<float> out, din, dw, db;
};

std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.normal());
  return v;
}

// The forward and backward of one layer, outputs poisoned with NaN first; the backward
// accumulates into a first overwrite so that both modes go through the split.
Outputs run_layer(int N, int IC, int OC) {
  const auto in = random_floats(std::size_t(N) * IC, 1), w = random_floats(std::size_t(OC) * IC, 2),
             bias = random_floats(OC, 3), dout = random_floats(std::size_t(N) * OC, 4);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Outputs o{std::vector<float>(std::size_t(N) * OC, nan), std::vector<float>(std::size_t(N) * IC, nan),
            std::vector<float>(std::size_t(OC) * IC, nan), std::vector<float>(OC, nan)};
  O::matmul_forward(o.out.data(), in.data(), w.data(), bias.data(), N, IC, OC);
  O::matmul_backward(overwrite(o.din.data()), overwrite(o.dw.data()), overwrite(o.db.data()),
                     dout.data(), in.data(), w.data(), N, IC, OC);
  O::matmul_backward(accumulate(o.din.data()), accumulate(o.dw.data()), accumulate(o.db.data()),
                     dout.data(), in.data(), w.data(), N, IC, OC);
  return o;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Forces the calling thread's speed estimate before each product (the products update it, so
// it drifts from there, which is just another set of cuts).
void skew(const std::vector<double>& speeds) {
  Speeds& s = cpu::GemmOps::thread_speeds();
  s.reset(int(speeds.size()));
  for (std::size_t t = 0; t < speeds.size(); ++t) s.speed[t] = speeds[t];
}

void check_split_independence(int N, int IC, int OC) {
  SCOPED_TRACE(::testing::Message() << N << " x " << IC << " -> " << OC);
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(1);
  const Outputs reference = run_layer(N, IC, OC);
  {
    // The one-thread products against naive loops in double, at float's accuracy.
    const auto in = random_floats(std::size_t(N) * IC, 1),
               w = random_floats(std::size_t(OC) * IC, 2), bias = random_floats(OC, 3),
               dout = random_floats(std::size_t(N) * OC, 4);
    double worst = 0;
    for (int n = 0; n < N; n += 7) {
      for (int o = 0; o < OC; o += 5) {
        double s = bias[o];
        for (int i = 0; i < IC; ++i) s += double(in[n * IC + i]) * w[o * IC + i];
        worst = std::max(worst, std::abs(s - reference.out[n * OC + o]));
      }
    }
    for (int o = 0; o < OC; o += 11) {
      for (int i = 0; i < IC; i += 3) {
        double s = 0;
        for (int n = 0; n < N; ++n) s += double(dout[n * OC + o]) * in[n * IC + i];
        worst = std::max(worst, std::abs(2 * s - reference.dw[o * IC + i]));
      }
    }
    for (int n = 0; n < N; n += 5) {
      for (int i = 0; i < IC; i += 7) {
        double s = 0;
        for (int o = 0; o < OC; ++o) s += double(dout[n * OC + o]) * w[o * IC + i];
        worst = std::max(worst, std::abs(2 * s - reference.din[n * IC + i]));
      }
    }
    EXPECT_LT(worst, 2e-3);
  }
  // Two threads at speed ratios that put the cut at many multiples of 48, and three threads.
  const std::vector<std::vector<double>> cases = {
      {1.0, 1.0},  {1.0, 1.1}, {1.0, 1.25}, {1.0, 1.4},     {1.0, 1.7},
      {1.15, 1.0}, {1.3, 1.0}, {1.6, 1.0},  {1.0, 0.7, 1.3}};
  for (const std::vector<double>& speeds : cases) {
    const int threads = int(speeds.size());
    SCOPED_TRACE(::testing::Message() << threads << " threads, speeds " << speeds[0] << ", "
                                      << speeds[1]);
    omp_set_num_threads(threads);
    skew(speeds);
    const Outputs split = run_layer(N, IC, OC);
    EXPECT_TRUE(same_bits(split.out, reference.out));
    EXPECT_TRUE(same_bits(split.din, reference.din));
    EXPECT_TRUE(same_bits(split.dw, reference.dw));
    EXPECT_TRUE(same_bits(split.db, reference.db));
  }
  omp_set_num_threads(threads_before);
}

// Shapes whose split products all take the measured-speed cuts at up to three threads (at least
// 8 units of 48 or 16 rows per thread): output columns (forward when OC > N, d(weight)) and input
// columns of d(input) when N <= IC, with ragged last panels (1208 = 25 · 48 + 8,
// 1160 = 24 · 48 + 8); positions (forward when OC <= N, d(input) when N > IC; 808 = 50 · 16 + 8,
// 520 = 32 · 16 + 8), where the 16 or 64 output columns stay whole. The last shape's 1200 input
// columns are more than one of Eigen's depth blocks, and its d(input) splits input columns.
TEST(CpuGemmSplit, ResultsDoNotDependOnTheCutsOrTheThreadCount) {
  check_split_independence(40, 1200, 1208);
  check_split_independence(24, 1160, 1208);
  check_split_independence(808, 64, 16);
  check_split_independence(520, 1200, 64);
}

// 16-bit layers are staged through the same fp32 products (widened operands, fp32 gradients,
// rounded once), so their bits do not depend on the cuts or the thread count either.
TEST(CpuGemmSplit, StagedBfloat16LayersDoNotDependOnTheThreadCount) {
  constexpr int N = 24, IC = 1160, OC = 1208;
  auto bf16 = [](const std::vector<float>& v) {
    std::vector<bfloat16> out(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = bfloat16(v[i]);
    return out;
  };
  const auto in = bf16(random_floats(std::size_t(N) * IC, 1)),
             w = bf16(random_floats(std::size_t(OC) * IC, 2)), bias = bf16(random_floats(OC, 3)),
             dout = bf16(random_floats(std::size_t(N) * OC, 4));
  struct Staged {
    std::vector<bfloat16> out, din;
    std::vector<float> dw, db;
  };
  auto run = [&] {
    Staged o{std::vector<bfloat16>(std::size_t(N) * OC), std::vector<bfloat16>(std::size_t(N) * IC),
             std::vector<float>(std::size_t(OC) * IC, 0.5f), std::vector<float>(OC, 0.5f)};
    O::matmul_forward(o.out.data(), in.data(), w.data(), bias.data(), N, IC, OC);
    O::matmul_backward(overwrite(o.din.data()), accumulate(o.dw.data()), accumulate(o.db.data()),
                       dout.data(), in.data(), w.data(), N, IC, OC);
    return o;
  };
  auto same = [](const auto& a, const auto& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
  };
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(1);
  const Staged reference = run();
  // One output against a sum in double of the rounded operands.
  double expected = float(bias[5]);
  for (int i = 0; i < IC; ++i) expected += double(float(in[2 * IC + i])) * float(w[5 * IC + i]);
  EXPECT_NEAR(float(reference.out[2 * OC + 5]), expected, 0.01 * std::abs(expected) + 1e-3);
  for (const std::vector<double>& speeds : std::vector<std::vector<double>>{
           {1.0, 1.0}, {1.0, 1.4}, {1.3, 1.0}, {1.0, 0.7, 1.3}}) {
    omp_set_num_threads(int(speeds.size()));
    skew(speeds);
    const Staged split = run();
    EXPECT_TRUE(same(split.out, reference.out)) << speeds.size() << " threads";
    EXPECT_TRUE(same(split.din, reference.din)) << speeds.size() << " threads";
    EXPECT_TRUE(same(split.dw, reference.dw)) << speeds.size() << " threads";
    EXPECT_TRUE(same(split.db, reference.db)) << speeds.size() << " threads";
  }
  omp_set_num_threads(threads_before);
}

}  // namespace
}  // namespace gemm_split_tests
}  // namespace lightgpt
