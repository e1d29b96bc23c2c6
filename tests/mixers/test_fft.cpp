// The FFT causal convolution of mixers/afno/cpu.hpp against the direct O(T²) sums: forward and
// both gradients, for power-of-two, smooth and prime T; the transform length; thread-count
// independence; the one-position decoding step; the AFNO kernels with 16-bit storage.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "afno_instances.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace lightgpt::testing {
namespace fft_tests {
namespace {

using O = Ops<Cpu>;

using K = AfnoKernels<Cpu>;

template <class T>
struct Convolution {
  int B, seq_len, C, stride;
  std::vector<T> x, filter, dy;

  Convolution(int b, int t, int c, std::uint64_t seed)
      : B(b),
        seq_len(t),
        C(c),
        stride(t + 5),
        x(std::size_t(b) * t * c),
        filter(std::size_t(c) * (t + 5)),
        dy(x.size()) {
    Rng rng(seed);
    for (T& v : x) v = T(rng.normal());
    for (T& v : dy) v = T(rng.normal());
    for (int ch = 0; ch < C; ++ch) {
      for (int s = 0; s < stride; ++s) {
        // Taps at s ≥ T are huge: the kernels must never read them.
        filter[std::size_t(ch) * stride + s] =
            s < seq_len ? T(rng.normal() / std::sqrt(1.0 + s)) : T(1e6);
      }
    }
  }
  std::size_t at(int b, int t, int c) const { return (std::size_t(b) * seq_len + t) * C + c; }

  std::vector<T> direct_forward() const {
    std::vector<T> y(x.size());
    for (int b = 0; b < B; ++b)
      for (int c = 0; c < C; ++c)
        for (int t = 0; t < seq_len; ++t) {
          double sum = 0;
          for (int s = 0; s <= t; ++s)
            sum += double(filter[std::size_t(c) * stride + t - s]) * x[at(b, s, c)];
          y[at(b, t, c)] = T(sum);
        }
    return y;
  }
  std::vector<T> direct_dx() const {
    std::vector<T> dx(x.size());
    for (int b = 0; b < B; ++b)
      for (int c = 0; c < C; ++c)
        for (int s = 0; s < seq_len; ++s) {
          double sum = 0;
          for (int t = s; t < seq_len; ++t)
            sum += double(dy[at(b, t, c)]) * filter[std::size_t(c) * stride + t - s];
          dx[at(b, s, c)] = T(sum);
        }
    return dx;
  }
  std::vector<T> direct_dfilter() const {
    std::vector<T> df(filter.size(), T(0));
    for (int c = 0; c < C; ++c)
      for (int j = 0; j < seq_len; ++j) {
        double sum = 0;
        for (int b = 0; b < B; ++b)
          for (int t = j; t < seq_len; ++t) sum += double(dy[at(b, t, c)]) * x[at(b, t - j, c)];
        df[std::size_t(c) * stride + j] = T(sum);
      }
    return df;
  }

  std::vector<T> scratch() const { return std::vector<T>(K::causal_conv_scratch_size(seq_len)); }
  std::vector<T> fft_forward() const {
    std::vector<T> y(x.size()), work = scratch();
    K::causal_conv_forward(y.data(), x.data(), filter.data(), stride, B, seq_len, C, work.data(),
                           work.size());
    return y;
  }
  // dx overwritten; dfilter accumulated onto `dfilter_start` everywhere.
  void fft_backward(std::vector<T>& dx, std::vector<T>& dfilter, T dfilter_start) const {
    std::vector<T> work = scratch();
    dx.assign(x.size(), T(-7));
    dfilter.assign(filter.size(), dfilter_start);
    K::causal_conv_backward(overwrite(dx.data()), accumulate(dfilter.data()), dy.data(), x.data(),
                            filter.data(), stride, B, seq_len, C, work.data(), work.size());
  }
};

template <class T>
double max_abs(const std::vector<T>& v) {
  double m = 0;
  for (T value : v) m = std::max(m, std::abs(double(value)));
  return m;
}
template <class T>
double max_diff(const std::vector<T>& a, const std::vector<T>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

bool smooth(int m) {
  for (int p : {2, 3, 5})
    while (m % p == 0) m /= p;
  return m == 1;
}

TEST(FftLength, SmallestSmoothMultipleOfFourCoveringTheLinearConvolution) {
  for (int T = 1; T <= 3000; ++T) {
    const int n = K::fft_length(T);
    ASSERT_GE(n, 2 * T - 1) << T;
    ASSERT_EQ(n % 4, 0) << T;
    ASSERT_TRUE(smooth(n / 4)) << T << " -> " << n;
    for (int m = n - 4; m >= 2 * T - 1 && m > 0; m -= 4)
      ASSERT_FALSE(smooth(m / 4)) << T << ": " << m;
  }
  EXPECT_EQ(K::fft_length(1024), 2048);
  EXPECT_EQ(K::fft_length(1021), 2048);
  EXPECT_EQ(K::fft_length(1025), 2160);
}

class FftConvolution : public ::testing::TestWithParam<int> {};

// Power-of-two, smooth, odd and prime lengths; C = 19 leaves a partial channel group.
TEST_P(FftConvolution, EqualsTheDirectCausalConvolutionInFp64) {
  const Convolution<double> conv(2, GetParam(), 19, 100 + GetParam());
  const auto direct = conv.direct_forward();
  EXPECT_LT(max_diff(conv.fft_forward(), direct), 1e-10 * max_abs(direct));
}

TEST_P(FftConvolution, BackwardEqualsTheDirectAdjointInFp64) {
  const Convolution<double> conv(2, GetParam(), 19, 200 + GetParam());
  std::vector<double> dx, dfilter;
  const double start = 0.25;
  conv.fft_backward(dx, dfilter, start);
  const auto direct_dx = conv.direct_dx();
  EXPECT_LT(max_diff(dx, direct_dx), 1e-10 * max_abs(direct_dx));
  auto expected = conv.direct_dfilter();
  for (double& v : expected) v += start;  // accumulate mode; taps ≥ T keep their start value
  EXPECT_LT(max_diff(dfilter, expected), 1e-10 * max_abs(expected));
  for (int c = 0; c < conv.C; ++c) {
    for (int s = conv.seq_len; s < conv.stride; ++s) {
      ASSERT_EQ(dfilter[std::size_t(c) * conv.stride + s], start) << c << ", " << s;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Lengths, FftConvolution,
                         ::testing::Values(1, 2, 3, 7, 16, 64, 97, 128, 1021, 1024));

TEST(FftConvolutionFp32, MatchesTheDirectSumToSinglePrecision) {
  const Convolution<float> conv(1, 1021, 5, 3);
  const auto direct = conv.direct_forward();
  EXPECT_LT(max_diff(conv.fft_forward(), direct), 1e-5 * max_abs(direct));
  std::vector<float> dx, dfilter;
  conv.fft_backward(dx, dfilter, 0.0f);
  const auto direct_dx = conv.direct_dx(), direct_df = conv.direct_dfilter();
  EXPECT_LT(max_diff(dx, direct_dx), 1e-5 * max_abs(direct_dx));
  EXPECT_LT(max_diff(dfilter, direct_df), 1e-5 * max_abs(direct_df));
}

TEST(FftConvolution, AccumulatesIntoDxInAccumulateMode) {
  const Convolution<double> conv(2, 13, 3, 9);
  std::vector<double> dx(conv.x.size(), 1.5), work = conv.scratch();
  K::causal_conv_backward(accumulate(dx.data()), Grad<double>{}, conv.dy.data(), conv.x.data(),
                          conv.filter.data(), conv.stride, conv.B, conv.seq_len, conv.C,
                          work.data(), work.size());
  const auto direct = conv.direct_dx();
  for (std::size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx[i], direct[i] + 1.5, 1e-12);
}

#if defined(_OPENMP)
TEST(FftConvolution, ResultsDoNotDependOnTheThreadCount) {
  const Convolution<float> conv(2, 300, 40, 21);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto one = conv.fft_forward();
  std::vector<float> dx_one, df_one;
  conv.fft_backward(dx_one, df_one, 0.0f);
  omp_set_num_threads(std::max(2, threads));
  const auto many = conv.fft_forward();
  std::vector<float> dx_many, df_many;
  conv.fft_backward(dx_many, df_many, 0.0f);
  omp_set_num_threads(threads);
  EXPECT_EQ(one, many);
  EXPECT_EQ(dx_one, dx_many);
  EXPECT_EQ(df_one, df_many);
}
#endif

TEST(FftConvolution, RejectsScratchSmallerThanOneWorker) {
  const Convolution<double> conv(1, 8, 2, 1);
  std::vector<double> y(conv.x.size()), work(16);
  EXPECT_THROW(K::causal_conv_forward(y.data(), conv.x.data(), conv.filter.data(), conv.stride, 1,
                                      8, 2, work.data(), work.size()),
               Error);
}

// The decoding step, fed one position at a time, reproduces the direct convolution.
TEST(FftConvolution, DecodingStepEqualsTheDirectSum) {
  const Convolution<double> conv(1, 23, 6, 4);
  const auto direct = conv.direct_forward();
  const int history_stride = 30;
  std::vector<double> history(std::size_t(conv.C) * history_stride, 99.0), y(conv.C), x(conv.C);
  for (int t = 0; t < conv.seq_len; ++t) {
    for (int c = 0; c < conv.C; ++c) x[c] = conv.x[conv.at(0, t, c)];
    K::causal_conv_step<double>(y.data(), history.data(), history_stride, x.data(),
                                conv.filter.data(), conv.stride, t, conv.C);
    for (int c = 0; c < conv.C; ++c) EXPECT_NEAR(y[c], direct[conv.at(0, t, c)], 1e-12) << t;
  }
}

// 16-bit storage: each kernel computes in fp32 from the widened inputs and rounds each stored value
// once, so it equals the fp32 kernel run on the widened inputs, rounded (to the last bit: FMA
// contraction may differ between the two instantiations). Parameter gradients stay fp32.
template <class T>
class AfnoKernels16 : public ::testing::Test {};
using SixteenBitTypes = ::testing::Types<bfloat16, float16>;
TYPED_TEST_SUITE(AfnoKernels16, SixteenBitTypes);

template <class T>
std::vector<T> random16(std::size_t count, std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<T> values(count);
  for (T& value : values) value = T(scale * rng.normal());
  return values;
}
template <class T>
std::vector<float> widened(const std::vector<T>& values) {
  std::vector<float> wide(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) wide[i] = float(values[i]);
  return wide;
}
// actual[i] is the rounding of expected[i] to T, give or take its last bit.
template <class T>
void expect_rounded(const std::vector<T>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const int bits = actual[i].bits, rounded = T(expected[i]).bits;
    EXPECT_LE(std::abs(bits - rounded), 1)
        << i << ": " << float(actual[i]) << " vs " << expected[i];
  }
}
template <class T>
std::vector<float> plus(const std::vector<T>& start, const std::vector<float>& added) {
  std::vector<float> sum(added.size());
  for (std::size_t i = 0; i < sum.size(); ++i) sum[i] = float(start[i]) + added[i];
  return sum;
}

TYPED_TEST(AfnoKernels16, ConvolutionRoundsTheFp32ResultOnce) {
  using T = TypeParam;
  const int B = 2, seq_len = 37, C = 20, stride = 40;  // two channel groups, taps beyond T unused
  const auto x = random16<T>(std::size_t(B) * seq_len * C, 1), dy = random16<T>(x.size(), 2);
  const auto filter = random16<T>(std::size_t(C) * stride, 3, 0.3);
  const auto wx = widened(x), wdy = widened(dy), wfilter = widened(filter);
  std::vector<float> work(K::causal_conv_scratch_size(seq_len));

  std::vector<T> y(x.size());
  std::vector<float> wy(x.size());
  K::causal_conv_forward(y.data(), x.data(), filter.data(), stride, B, seq_len, C, work.data(),
                         work.size());
  K::causal_conv_forward(wy.data(), wx.data(), wfilter.data(), stride, B, seq_len, C, work.data(),
                         work.size());
  expect_rounded(y, wy);

  const auto dx_start = random16<T>(x.size(), 4);
  std::vector<T> dx = dx_start;
  std::vector<float> dfilter(filter.size(), 0.5f), wdx(x.size()), wdfilter(filter.size(), 0.5f);
  K::causal_conv_backward(accumulate(dx.data()), accumulate(dfilter.data()), dy.data(), x.data(),
                          filter.data(), stride, B, seq_len, C, work.data(), work.size());
  K::causal_conv_backward(overwrite(wdx.data()), accumulate(wdfilter.data()), wdy.data(), wx.data(),
                          wfilter.data(), stride, B, seq_len, C, work.data(), work.size());
  expect_rounded(dx, plus(dx_start, wdx));
  EXPECT_EQ(dfilter, wdfilter);
}

TYPED_TEST(AfnoKernels16, BlockLinearRoundsTheFp32ResultOnce) {
  using T = TypeParam;
  const int N = 9, blocks = 3, IB = 5, OB = 4;
  const auto in = random16<T>(std::size_t(N) * blocks * IB, 5);
  const auto weight = random16<T>(std::size_t(blocks) * OB * IB, 6, 0.5);
  const auto bias = random16<T>(std::size_t(blocks) * OB, 7);
  const auto dout = random16<T>(std::size_t(N) * blocks * OB, 8);
  const auto win = widened(in), wweight = widened(weight), wbias = widened(bias);
  const auto wdout = widened(dout);

  std::vector<T> out(dout.size());
  std::vector<float> wout(dout.size());
  K::block_linear_forward(out.data(), in.data(), weight.data(), bias.data(), N, blocks, IB, OB);
  K::block_linear_forward(wout.data(), win.data(), wweight.data(), wbias.data(), N, blocks, IB, OB);
  expect_rounded(out, wout);

  const auto din_start = random16<T>(in.size(), 9);
  std::vector<T> din = din_start;
  std::vector<float> dweight(weight.size(), 0.25f), dbias(bias.size(), -0.5f);
  std::vector<float> wdin(in.size()), wdweight = dweight, wdbias = dbias;
  K::block_linear_backward(accumulate(din.data()), accumulate(dweight.data()),
                           accumulate(dbias.data()), dout.data(), in.data(), weight.data(), N,
                           blocks, IB, OB);
  K::block_linear_backward(overwrite(wdin.data()), accumulate(wdweight.data()),
                           accumulate(wdbias.data()), wdout.data(), win.data(), wweight.data(), N,
                           blocks, IB, OB);
  expect_rounded(din, plus(din_start, wdin));
  EXPECT_EQ(dweight, wdweight);
  EXPECT_EQ(dbias, wdbias);

  // Input gradient alone (no weight gradient, no staged input), overwriting.
  K::block_linear_backward(overwrite(din.data()), Grad<float>{}, Grad<float>{}, dout.data(),
                           in.data(), weight.data(), N, blocks, IB, OB);
  expect_rounded(din, wdin);
}

TYPED_TEST(AfnoKernels16, GateAndShrinkRoundTheFp32ResultOnce) {
  using T = TypeParam;
  const std::size_t count = 301;
  const auto u = random16<T>(count, 10), a = random16<T>(count, 11), dv = random16<T>(count, 12);
  const auto z = random16<T>(count, 13, 0.1);
  const auto wu = widened(u), wa = widened(a), wdv = widened(dv), wz = widened(z);
  const double lambda = 0.05;

  std::vector<T> v(count);
  std::vector<float> wv(count);
  K::sigmoid_gate_forward(v.data(), u.data(), a.data(), count);
  K::sigmoid_gate_forward(wv.data(), wu.data(), wa.data(), count);
  expect_rounded(v, wv);
  const auto du_start = random16<T>(count, 14);
  std::vector<T> du = du_start, da(count);
  std::vector<float> wdu(count), wda(count);
  K::sigmoid_gate_backward(accumulate(du.data()), overwrite(da.data()), dv.data(), u.data(),
                           a.data(), count);
  K::sigmoid_gate_backward(overwrite(wdu.data()), overwrite(wda.data()), wdv.data(), wu.data(),
                           wa.data(), count);
  expect_rounded(du, plus(du_start, wdu));
  expect_rounded(da, wda);

  std::vector<T> out(count), dz(count);
  std::vector<float> wout(count), wdz(count);
  K::shrink_residual_forward(out.data(), u.data(), z.data(), lambda, count);
  K::shrink_residual_forward(wout.data(), wu.data(), wz.data(), lambda, count);
  expect_rounded(out, wout);
  std::vector<T> dres = du_start;
  std::vector<float> wdres(count);
  K::shrink_residual_backward(accumulate(dres.data()), overwrite(dz.data()), dv.data(), z.data(),
                              lambda, count);
  K::shrink_residual_backward(overwrite(wdres.data()), overwrite(wdz.data()), wdv.data(), wz.data(),
                              lambda, count);
  expect_rounded(dres, plus(du_start, wdres));
  expect_rounded(dz, wdz);
}

}  // namespace
}  // namespace fft_tests
}  // namespace lightgpt::testing
