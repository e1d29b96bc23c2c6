// CPU kernels against naive references written out in the test, including the overwrite and
// accumulate modes of every backward output (outputs are poisoned first, so an unwritten element
// or a wrong mode shows); and the attention mixer's scratch, sized by each call's T.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <lightgpt/lightgpt.hpp>
#include <lightgpt/testing/mixer_harness.hpp>
#include <vector>

namespace lightgpt {
namespace cpu_kernels_tests {
namespace {

using O = Ops<Cpu>;

using K = AttentionKernels<Cpu>;

std::vector<double> random_vector(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = rng.normal();
  return v;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// The kernels split rows and output columns between threads in slices of 16: the larger shapes
// leave a ragged last slice (225 = LightRNN's R at V = 50257) that must still be computed.
void check_gemm_against_naive_loops(int N, int IC, int OC) {
  SCOPED_TRACE(::testing::Message() << N << " x " << IC << " -> " << OC);
  const auto in = random_vector(N * IC, 1), w = random_vector(OC * IC, 2),
             bias = random_vector(OC, 3), dout = random_vector(N * OC, 4);
  std::vector<double> out(N * OC, 99.0);
  O::matmul_forward(out.data(), in.data(), w.data(), bias.data(), N, IC, OC);
  std::vector<double> ref(N * OC), din_ref(N * IC, 0), dw_ref(OC * IC, 0), db_ref(OC, 0);
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OC; ++o) {
      double s = bias[o];
      for (int i = 0; i < IC; ++i) s += in[n * IC + i] * w[o * IC + i];
      ref[n * OC + o] = s;
      db_ref[o] += dout[n * OC + o];
      for (int i = 0; i < IC; ++i) {
        din_ref[n * IC + i] += dout[n * OC + o] * w[o * IC + i];
        dw_ref[o * IC + i] += dout[n * OC + o] * in[n * IC + i];
      }
    }
  }
  EXPECT_LT(max_abs_diff(out, ref), 1e-12);

  std::vector<double> din(N * IC, 99.0), dw(OC * IC, 99.0), db(OC, 99.0);
  O::matmul_backward(overwrite(din.data()), overwrite(dw.data()), overwrite(db.data()), dout.data(),
                     in.data(), w.data(), N, IC, OC);
  EXPECT_LT(max_abs_diff(din, din_ref), 1e-12);
  EXPECT_LT(max_abs_diff(dw, dw_ref), 1e-12);
  EXPECT_LT(max_abs_diff(db, db_ref), 1e-12);
  O::matmul_backward(accumulate(din.data()), accumulate(dw.data()), accumulate(db.data()),
                     dout.data(), in.data(), w.data(), N, IC, OC);
  for (auto* v : {&din_ref, &dw_ref, &db_ref}) {
    for (double& x : *v) x *= 2;
  }
  EXPECT_LT(max_abs_diff(din, din_ref), 1e-12);
  EXPECT_LT(max_abs_diff(dw, dw_ref), 1e-12);
  EXPECT_LT(max_abs_diff(db, db_ref), 1e-12);
}

TEST(CpuGemm, ForwardAndBackwardMatchNaiveLoopsInBothModes) {
  check_gemm_against_naive_loops(5, 7, 3);
  check_gemm_against_naive_loops(33, 16, 225);
  check_gemm_against_naive_loops(49, 9, 50);
}

TEST(CpuLayerNorm, NormalisesEachRowAndAccumulatesGradients) {
  const int N = 4, C = 40;  // C spans two column blocks of the reductions
  const auto in = random_vector(N * C, 5), w = random_vector(C, 6), b = random_vector(C, 7),
             dout = random_vector(N * C, 8);
  std::vector<double> out(N * C), mean(N), rstd(N);
  O::layernorm_forward(out.data(), mean.data(), rstd.data(), in.data(), w.data(), b.data(), N, C);
  for (int n = 0; n < N; ++n) {
    double m = 0, var = 0;
    for (int c = 0; c < C; ++c) m += in[n * C + c] / C;
    for (int c = 0; c < C; ++c) var += (in[n * C + c] - m) * (in[n * C + c] - m) / C;
    for (int c = 0; c < C; ++c) {
      const double expected = (in[n * C + c] - m) / std::sqrt(var + 1e-5) * w[c] + b[c];
      EXPECT_NEAR(out[n * C + c], expected, 1e-12);
    }
  }
  // Parameter gradients by hand; input gradient by finite differences of <dout, LN(x)>.
  std::vector<double> din(N * C, 99.0), dw(C, 1.0), db(C, 1.0);
  O::layernorm_backward(overwrite(din.data()), accumulate(dw.data()), accumulate(db.data()),
                        dout.data(), in.data(), w.data(), mean.data(), rstd.data(), N, C);
  for (int c = 0; c < C; ++c) {
    double gw = 1.0, gb = 1.0;
    for (int n = 0; n < N; ++n) {
      gw += dout[n * C + c] * (in[n * C + c] - mean[n]) * rstd[n];
      gb += dout[n * C + c];
    }
    EXPECT_NEAR(dw[c], gw, 1e-12);
    EXPECT_NEAR(db[c], gb, 1e-12);
  }
  auto objective = [&](const std::vector<double>& x) {
    std::vector<double> y(N * C);
    O::layernorm_forward(y.data(), (double*)nullptr, (double*)nullptr, x.data(), w.data(), b.data(),
                         N, C);
    double s = 0;
    for (int i = 0; i < N * C; ++i) s += y[i] * dout[i];
    return s;
  };
  for (int i : {0, 17, 45, N * C - 1}) {
    auto x = in;
    x[i] += 1e-6;
    const double plus = objective(x);
    x[i] -= 2e-6;
    const double minus = objective(x);
    EXPECT_NEAR(din[i], (plus - minus) / 2e-6, 1e-7);
  }
}

// Naive causal attention over full T x T scores for one batch.
std::vector<double> naive_attention(const std::vector<double>& qkv, int B, int T, int C, int NH) {
  const int hs = C / NH;
  std::vector<double> out(std::size_t(B) * T * C);
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      for (int t = 0; t < T; ++t) {
        std::vector<double> scores(t + 1);
        double mx = -1e300;
        for (int s = 0; s <= t; ++s) {
          double dot = 0;
          for (int d = 0; d < hs; ++d) {
            dot += qkv[(std::size_t(b) * T + t) * 3 * C + h * hs + d] *
                   qkv[(std::size_t(b) * T + s) * 3 * C + C + h * hs + d];
          }
          scores[s] = dot / std::sqrt(double(hs));
          mx = std::max(mx, scores[s]);
        }
        double sum = 0;
        for (double& x : scores) sum += (x = std::exp(x - mx));
        for (int d = 0; d < hs; ++d) {
          double y = 0;
          for (int s = 0; s <= t; ++s) {
            y += scores[s] / sum * qkv[(std::size_t(b) * T + s) * 3 * C + 2 * C + h * hs + d];
          }
          out[(std::size_t(b) * T + t) * C + h * hs + d] = y;
        }
      }
    }
  }
  return out;
}

TEST(CpuAttention, MatchesNaiveSoftmaxAcrossQueryBlocks) {
  const int B = 2, T = 150, C = 16, NH = 2;  // 150 queries = three blocks of 64
  const auto qkv = random_vector(std::size_t(B) * T * 3 * C, 9);
  std::vector<double> out(std::size_t(B) * T * C, 99.0), lse(std::size_t(B) * NH * T);
  std::vector<double> scratch(K::attention_scratch_size(T));
  K::attention_forward(out.data(), lse.data(), qkv.data(), B, T, C, NH, scratch.data());
  EXPECT_LT(max_abs_diff(out, naive_attention(qkv, B, T, C, NH)), 1e-12);

  // Backward against finite differences of <dout, attention(qkv)>.
  const auto dout = random_vector(out.size(), 10);
  std::vector<double> dqkv(qkv.size(), 99.0);
  K::attention_backward(overwrite(dqkv.data()), dout.data(), qkv.data(), out.data(), lse.data(), B,
                        T, C, NH, scratch.data());
  auto objective = [&](const std::vector<double>& x) {
    const auto y = naive_attention(x, B, T, C, NH);
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += y[i] * dout[i];
    return s;
  };
  for (std::size_t i :
       {std::size_t(0), std::size_t(5 * 3 * C + 3), std::size_t(100 * 3 * C + C + 7),
        std::size_t((T + 140) * 3 * C + 2 * C + 1), qkv.size() - 1}) {
    auto x = qkv;
    x[i] += 1e-6;
    const double plus = objective(x);
    x[i] -= 2e-6;
    const double minus = objective(x);
    EXPECT_NEAR(dqkv[i], (plus - minus) / 2e-6, 1e-6) << "element " << i;
  }
  std::vector<double> twice = dqkv;
  K::attention_backward(accumulate(twice.data()), dout.data(), qkv.data(), out.data(), lse.data(),
                        B, T, C, NH, scratch.data());
  for (std::size_t i = 0; i < dqkv.size(); ++i) ASSERT_NEAR(twice[i], 2 * dqkv[i], 1e-12);
}

// The attention mixer sizes its kernel scratch by the T of each call, not by max_seq_len: the
// first call takes what its (B·T, T) asks, a longer one grows it, a shorter one reuses it.
TEST(CpuAttention, MixerScratchFollowsTheBatchLength) {
  ModelConfig config;
  config.n_layer = 1;
  config.d_model = 16;
  config.n_head = 2;
  config.max_seq_len = 512;
  const int B = 2;
  testing::MixerHarness<Attention, Fp64, Cpu> layer(config, std::size_t(B) * 40, 1, 1);
  EXPECT_EQ(layer.mixer().scratch_size(), 0u);
  std::size_t largest = 0;
  for (int T : {8, 40, 8}) {
    const auto x = random_vector(std::size_t(B) * T * config.d_model, 20 + T);
    layer.backward(0, layer.forward(0, x, B, T), x, B, T);
    largest = std::max(largest, K::attention_scratch_size<double>(std::size_t(B) * T, T,
                                                                  config.d_model, config.n_head));
    EXPECT_EQ(layer.mixer().scratch_size(), largest) << "T = " << T;
  }
  EXPECT_LT(largest, K::attention_scratch_size<double>(std::size_t(B) * 40, config.max_seq_len,
                                                       config.d_model, config.n_head) /
                         10);
}

TEST(CpuLoss, CrossEntropyAndItsInPlaceGradientMatchNaive) {
  const int B = 2, T = 3, V = 5, Vp = 8, depths = 2, stride = T + depths;
  auto logits = random_vector(std::size_t(B) * T * Vp, 11);
  for (int n = 0; n < B * T; ++n) {
    for (int v = V; v < Vp; ++v) logits[n * Vp + v] = 50.0;  // padding must be ignored
  }
  const std::vector<int> tokens = {0, 1, 2, 3, 4, 4, 3, 2, 1, 0};
  std::vector<double> lse(B * T), losses(B * T);
  O::row_logsumexp(lse.data(), logits.data(), B * T, V, Vp);
  O::cross_entropy(losses.data(), lse.data(), logits.data(), tokens.data() + 1, stride, B, T, Vp);
  const double weights[] = {1.0, 0.3};
  const double scale = 0.5;
  auto grads = logits;
  O::cross_entropy_backward_inplace(grads.data(), lse.data(), tokens.data() + 1, stride, weights,
                                    depths, scale, B, T, V, Vp);
  for (int n = 0; n < B * T; ++n) {
    const int b = n / T, t = n % T;
    double sum = 0;
    for (int v = 0; v < V; ++v) sum += std::exp(logits[n * Vp + v]);
    const int target1 = tokens[b * stride + t + 1], target2 = tokens[b * stride + t + 2];
    EXPECT_NEAR(losses[n], std::log(sum) - logits[n * Vp + target1], 1e-12);
    for (int v = 0; v < Vp; ++v) {
      const double p = v < V ? std::exp(logits[n * Vp + v]) / sum : 0.0;
      const double expected =
          v < V ? scale * (1.3 * p - (v == target1) - 0.3 * (v == target2)) : 0.0;
      EXPECT_NEAR(grads[n * Vp + v], expected, 1e-12) << n << "," << v;
    }
  }
}

TEST(CpuOptim, SumOfSquaresIsExactOnIntegers) {
  std::vector<float> values(100003);
  double expected = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = float(int(i % 7) - 3);
    expected += double(values[i]) * values[i];
  }
  EXPECT_EQ(O::sum_of_squares(values.data(), values.size()), expected);
}

// Inverted dropout: about 1 − p of the elements kept, each exactly in / (1 − p), the rest 0; the
// mask depends on (seed, index) only, so the same call on a gradient (the backward) and the
// in-place call draw the same one.
TEST(CpuDropout, KeepsAboutOneMinusPScaledAndRedrawsTheSameMask) {
  const std::size_t n = 200000;
  const double p = 0.25;
  std::vector<float> in(n), out(n), grad(n, 1.0f), dgrad(n), other(n);
  for (std::size_t i = 0; i < n; ++i) in[i] = float(i % 97) - 48.5f;
  O::dropout(out.data(), in.data(), n, p, 1234);
  O::dropout(dgrad.data(), grad.data(), n, p, 1234);
  O::dropout(other.data(), in.data(), n, p, 1235);
  std::size_t kept = 0, same_as_other_seed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const bool keep = dgrad[i] != 0.0f;
    kept += keep;
    same_as_other_seed += keep == (other[i] != 0.0f);
    ASSERT_EQ(out[i], keep ? float(in[i] * float(1.0 / (1.0 - p))) : 0.0f) << i;
    ASSERT_EQ(dgrad[i], keep ? float(1.0 / (1.0 - p)) : 0.0f) << i;
  }
  // Binomial(n, 0.75): standard deviation 0.001 of n; the two seeds agree on 0.75² + 0.25².
  EXPECT_NEAR(double(kept) / n, 1 - p, 0.006);
  EXPECT_NEAR(double(same_as_other_seed) / n, 0.625, 0.006);
  // Threshold is on the hash's top 24 bits: p = 0 keeps everything, as an identity.
  std::vector<float> in_place = in;
  O::dropout(in_place.data(), in_place.data(), n, p, 1234);
  EXPECT_EQ(in_place, out);
  O::dropout(in_place.data(), in.data(), n, 0.0, 1234);
  EXPECT_EQ(in_place, in);
}

// A run of elements that starts at element `first` of a larger tensor draws that tensor's mask
// under detail::dropout_seed_from(seed, first): how a batch split's row groups draw their rows'
// part of the batch's masks.
TEST(CpuDropout, ASliceDrawsItsPartOfTheWholeMaskFromAnOffsetSeed) {
  const std::size_t n = 4096, first = 1000, count = 2000;
  const double p = 0.3;
  std::vector<float> ones(n, 1.0f), whole(n), slice(count);
  O::dropout(whole.data(), ones.data(), n, p, 77);
  O::dropout(slice.data(), ones.data(), count, p, lightgpt::detail::dropout_seed_from(77, first));
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_EQ(slice[i], whole[first + i]) << i;
    dropped += slice[i] == 0.0f;
  }
  EXPECT_GT(dropped, count / 5);
  EXPECT_LT(dropped, count * 2 / 5);
}

}  // namespace
}  // namespace cpu_kernels_tests
}  // namespace lightgpt
