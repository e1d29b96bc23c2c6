// AfnoMixer on the GPU (mixers/afno/cuda.cuh) against the CPU Fp32 reference (reference_afno.hpp):
// every FftOps/AfnoOps kernel for fp32, bf16 and fp16 storage (random non-zero inputs, outputs
// NaN-poisoned, T not a power of two among the shapes, taps past T that must never be read);
// one AFNO layer with random parameters (output, input and parameter gradients, decoding);
// causality of the GPU layer; and GPT<P, DenseHead<>, AfnoMixer<8>, Cuda>: one training step and
// decoding against GPT<Fp32, ..., Cpu>, and two runs giving the same bits.
// The soft-shrink threshold λ cuts the MLP's gradient wherever |z| ≤ λ, so the parameters are
// drawn large enough for z to straddle λ. 16-bit runs use λ = 0: their z is ~1e-2 off the fp32
// reference's, and an element whose z lies that close to ±λ would flip between the two sides.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <lightgpt/mixers/afno/mixer.hpp>
#include <lightgpt/testing/determinism.hpp>
#include <lightgpt/testing/mixer_harness.hpp>
#include <string>
#include <vector>

#include "cuda_testing.cuh"
#include "reference_afno.hpp"

namespace lightgpt::testing {
namespace cuda_afno {

using O = Ops<Cuda>;

using K = AfnoKernels<Cuda>;
constexpr int kBlocks = reference::kAfnoBlocks;

template <class T>
class CudaAfnoOps : public CudaTest {};
TYPED_TEST_SUITE(CudaAfnoOps, StorageTypes, StorageTypeNames);

template <class T>
Grad<T> grad(T* ptr, bool accumulate) {
  return {ptr, accumulate ? Mode::accumulate : Mode::overwrite};
}

float norm(const std::vector<float>& values) {
  double sum = 0;
  for (float v : values) sum += double(v) * v;
  return static_cast<float>(std::sqrt(sum));
}

// ------------------------------------------------------------------------- transform length

// Runs without a GPU: the host-side rule is the CPU's, for every T up to 5000.
TEST(CudaAfnoFft, LengthMatchesCpu) {
  for (int T = 1; T <= 5000; ++T) {
    ASSERT_EQ(K::fft_length(T), reference::fft_length(T)) << "T = " << T;
  }
  EXPECT_EQ(K::fft_length(1024), 2048);
  EXPECT_EQ(K::fft_length(16384), 32768);
}

// ------------------------------------------------------------------------ causal convolution

struct ConvShape {
  int B, T, C;
};
// Powers of two and not (13 and 37 are prime, 40 pads to 80), whole and partial 32-channel tiles.
constexpr ConvShape kConvShapes[] = {{2, 13, 40}, {3, 32, 16}, {1, 37, 24}, {2, 40, 33}};

template <class T>
struct ConvCase {
  int B, seq_len, C, stride;
  std::vector<float> x, dy, filter;

  ConvCase(const ConvShape& shape, std::uint32_t seed)
      : B(shape.B),
        seq_len(shape.T),
        C(shape.C),
        stride(shape.T + 5),
        x(random_values<T>(std::size_t(B) * seq_len * C, seed)),
        dy(random_values<T>(x.size(), seed + 1)),
        filter(random_values<T>(std::size_t(C) * stride, seed + 2, 0.5f)) {
    // Taps at s ≥ T are huge: the kernels must never read them.
    for (int c = 0; c < C; ++c) {
      for (int s = seq_len; s < stride; ++s) filter[std::size_t(c) * stride + s] = 1e4f;
    }
  }
};

TYPED_TEST(CudaAfnoOps, CausalConvForwardMatchesCpu) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  std::uint32_t seed = 10;
  for (const ConvShape& shape : kConvShapes) {
    const ConvCase<T> c(shape, seed += 3);
    std::vector<float> expected(c.x.size());
    reference::causal_conv_forward(expected.data(), c.x.data(), c.filter.data(), c.stride, c.B,
                                   c.seq_len, c.C);
    DeviceArray<T> x(c.x), filter(c.filter), y(c.x.size());
    K::causal_conv_forward(y.get(), x.get(), filter.get(), c.stride, c.B, c.seq_len, c.C,
                           static_cast<float*>(nullptr), 0);
    EXPECT_LT(relative_error(y.download(), expected), value_tolerance<T>()) << "T = " << c.seq_len;
  }
}

TYPED_TEST(CudaAfnoOps, CausalConvBackwardMatchesCpu) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  struct Modes {
    bool dx, dx_accumulate, dfilter, dfilter_accumulate;
  };
  const Modes modes[] = {{true, false, true, true},
                         {true, true, true, false},
                         {true, false, false, false},
                         {false, false, true, false}};
  std::uint32_t seed = 40;
  for (const ConvShape& shape : kConvShapes) {
    for (const Modes& m : modes) {
      const ConvCase<T> c(shape, seed += 5);
      const auto dx_start = random_values<T>(c.x.size(), seed + 3);
      const auto dfilter_start = random_values<float>(c.filter.size(), seed + 4);
      std::vector<float> expected_dx = dx_start, expected_dfilter = dfilter_start;
      reference::causal_conv_backward(m.dx ? expected_dx.data() : nullptr, m.dx_accumulate,
                                      m.dfilter ? expected_dfilter.data() : nullptr,
                                      m.dfilter_accumulate, c.dy.data(), c.x.data(),
                                      c.filter.data(), c.stride, c.B, c.seq_len, c.C);

      DeviceArray<T> x(c.x), dy(c.dy), filter(c.filter), dx(c.x.size());
      if (m.dx_accumulate) dx.upload(dx_start);
      DeviceArray<float> dfilter(dfilter_start);  // taps at s ≥ T must keep these values
      K::causal_conv_backward(grad(m.dx ? dx.get() : nullptr, m.dx_accumulate),
                              grad(m.dfilter ? dfilter.get() : nullptr, m.dfilter_accumulate),
                              dy.get(), x.get(), filter.get(), c.stride, c.B, c.seq_len, c.C,
                              static_cast<float*>(nullptr), 0);
      const std::string where =
          "T = " + std::to_string(c.seq_len) + ", dx " +
          (m.dx ? (m.dx_accumulate ? "accumulate" : "overwrite") : "none") + ", dfilter " +
          (m.dfilter ? (m.dfilter_accumulate ? "accumulate" : "overwrite") : "none");
      if (m.dx) {
        EXPECT_LT(relative_error(dx.download(), expected_dx), gradient_tolerance<T>()) << where;
      }
      // The filter gradient is fp32 from the same inputs on both sides: fp32's tolerance.
      const auto actual_dfilter = dfilter.download();
      std::vector<float> actual_taps, expected_taps;
      for (int ch = 0; ch < c.C; ++ch) {
        for (int s = 0; s < c.stride; ++s) {
          const std::size_t i = std::size_t(ch) * c.stride + s;
          if (s < c.seq_len) {
            actual_taps.push_back(actual_dfilter[i]);
            expected_taps.push_back(expected_dfilter[i]);
          } else {
            ASSERT_EQ(actual_dfilter[i], dfilter_start[i]) << "tap " << s << " touched; " << where;
          }
        }
      }
      EXPECT_LT(relative_error(actual_taps, expected_taps), gradient_tolerance<float>()) << where;
    }
  }
}

// Decoding: position after position, against the CPU step, the history included.
TYPED_TEST(CudaAfnoOps, CausalConvStepMatchesCpu) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  constexpr int C = 40, positions = 37, filter_stride = 45, history_stride = 41;
  const auto x = random_values<T>(std::size_t(positions) * C, 90);
  auto filter = random_values<T>(std::size_t(C) * filter_stride, 91, 0.5f);
  for (int c = 0; c < C; ++c) {
    for (int s = positions; s < filter_stride; ++s)
      filter[std::size_t(c) * filter_stride + s] = 1e4f;
  }
  std::vector<float> history(std::size_t(C) * history_stride, 0.0f), expected(C);
  DeviceArray<T> x_device(x), filter_device(filter), history_device(history.size()), y(C);
  for (int t = 0; t < positions; ++t) {
    reference::causal_conv_step(expected.data(), history.data(), history_stride,
                                x.data() + std::size_t(t) * C, filter.data(), filter_stride, t, C);
    y.poison();
    K::causal_conv_step<float>(y.get(), history_device.get(), history_stride,
                               x_device.get() + std::size_t(t) * C, filter_device.get(),
                               filter_stride, t, C);
    EXPECT_LT(relative_error(y.download(), expected), value_tolerance<T>()) << "t = " << t;
  }
  const auto stored = history_device.download();
  for (int c = 0; c < C; ++c) {
    for (int s = 0; s < positions; ++s) {
      const std::size_t i = std::size_t(c) * history_stride + s;
      ASSERT_EQ(stored[i], history[i]) << "history of channel " << c << " at " << s;
    }
  }
}

// -------------------------------------------------------------------- block-diagonal linear

struct BlockShape {
  int N, blocks, IB, OB;
  bool bias;
};
// Widening and narrowing blocks, no bias, a single block (bias through the GEMM epilogue).
constexpr BlockShape kBlockShapes[] = {
    {24, 4, 8, 12, true}, {19, 4, 12, 8, false}, {21, 1, 16, 24, true}, {7, 8, 8, 8, true}};

TYPED_TEST(CudaAfnoOps, BlockLinearForwardMatchesCpu) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  std::uint32_t seed = 100;
  for (const BlockShape& s : kBlockShapes) {
    const auto in = random_values<T>(std::size_t(s.N) * s.blocks * s.IB, ++seed);
    const auto weight = random_values<T>(std::size_t(s.blocks) * s.OB * s.IB, ++seed, 0.5f);
    const auto bias = random_values<T>(std::size_t(s.blocks) * s.OB, ++seed);
    std::vector<float> expected(std::size_t(s.N) * s.blocks * s.OB);
    reference::block_linear_forward(expected.data(), in.data(), weight.data(),
                                    s.bias ? bias.data() : nullptr, s.N, s.blocks, s.IB, s.OB);
    DeviceArray<T> in_device(in), weight_device(weight), bias_device(bias), out(expected.size());
    K::block_linear_forward(out.get(), in_device.get(), weight_device.get(),
                            s.bias ? bias_device.get() : nullptr, s.N, s.blocks, s.IB, s.OB);
    EXPECT_LT(relative_error(out.download(), expected), value_tolerance<T>())
        << "N " << s.N << ", blocks " << s.blocks << ", " << s.IB << " -> " << s.OB;
  }
}

TYPED_TEST(CudaAfnoOps, BlockLinearBackwardMatchesCpu) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  struct Modes {
    bool din, din_accumulate, dweight_accumulate, dbias, dbias_accumulate;
  };
  const Modes modes[] = {{true, false, true, true, true},
                         {true, true, false, true, false},
                         {false, false, false, false, false}};
  std::uint32_t seed = 200;
  for (const BlockShape& s : kBlockShapes) {
    for (const Modes& m : modes) {
      const std::size_t in_count = std::size_t(s.N) * s.blocks * s.IB;
      const std::size_t out_count = std::size_t(s.N) * s.blocks * s.OB;
      const std::size_t weight_count = std::size_t(s.blocks) * s.OB * s.IB;
      const auto in = random_values<T>(in_count, ++seed);
      const auto dout = random_values<T>(out_count, ++seed);
      const auto weight = random_values<T>(weight_count, ++seed, 0.5f);
      const auto din_start = random_values<T>(in_count, ++seed);
      const auto dweight_start = random_values<float>(weight_count, ++seed);
      const auto dbias_start = random_values<float>(std::size_t(s.blocks) * s.OB, ++seed);
      std::vector<float> expected_din = din_start, expected_dweight = dweight_start,
                         expected_dbias = dbias_start;
      reference::block_linear_backward(
          m.din ? expected_din.data() : nullptr, m.din_accumulate, expected_dweight.data(),
          m.dweight_accumulate, m.dbias ? expected_dbias.data() : nullptr, m.dbias_accumulate,
          dout.data(), in.data(), weight.data(), s.N, s.blocks, s.IB, s.OB);

      DeviceArray<T> in_device(in), dout_device(dout), weight_device(weight), din(in_count);
      if (m.din_accumulate) din.upload(din_start);
      DeviceArray<float> dweight(weight_count), dbias(dbias_start.size());
      if (m.dweight_accumulate) dweight.upload(dweight_start);
      if (m.dbias_accumulate) dbias.upload(dbias_start);
      K::block_linear_backward(grad(m.din ? din.get() : nullptr, m.din_accumulate),
                               grad(dweight.get(), m.dweight_accumulate),
                               grad(m.dbias ? dbias.get() : nullptr, m.dbias_accumulate),
                               dout_device.get(), in_device.get(), weight_device.get(), s.N,
                               s.blocks, s.IB, s.OB);
      const std::string where = "N " + std::to_string(s.N) + ", blocks " +
                                std::to_string(s.blocks) + ", " + std::to_string(s.IB) + " -> " +
                                std::to_string(s.OB);
      if (m.din) {
        EXPECT_LT(relative_error(din.download(), expected_din), gradient_tolerance<T>()) << where;
      }
      // Parameter gradients are fp32 sums of the same (rounded) inputs on both sides.
      EXPECT_LT(relative_error(dweight.download(), expected_dweight), gradient_tolerance<float>())
          << where;
      if (m.dbias) {
        EXPECT_LT(relative_error(dbias.download(), expected_dbias), gradient_tolerance<float>())
            << where;
      }
    }
  }
}

// ------------------------------------------------------------------ gate and soft-shrink

TYPED_TEST(CudaAfnoOps, SigmoidGateMatchesCpu) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  constexpr std::size_t count = 999;
  const auto u = random_values<T>(count, 300);
  const auto gate_pre = random_values<T>(count, 301, 4.0f);
  const auto dv = random_values<T>(count, 302);
  const auto du_start = random_values<T>(count, 303);
  DeviceArray<T> u_device(u), gate_device(gate_pre), v(count);

  std::vector<float> expected_v(count);
  reference::sigmoid_gate_forward(expected_v.data(), u.data(), gate_pre.data(), count);
  K::sigmoid_gate_forward(v.get(), u_device.get(), gate_device.get(), count);
  EXPECT_LT(relative_error(v.download(), expected_v), value_tolerance<T>());

  // du overwritten, dgate_pre in place of dv (the mixer's aliasing).
  std::vector<float> expected_du(count), expected_dgate(count);
  reference::sigmoid_gate_backward(expected_du.data(), false, expected_dgate.data(), false,
                                   dv.data(), u.data(), gate_pre.data(), count);
  DeviceArray<T> du(count), dv_then_dgate(dv);
  K::sigmoid_gate_backward(overwrite(du.get()), overwrite(dv_then_dgate.get()), dv_then_dgate.get(),
                           u_device.get(), gate_device.get(), count);
  EXPECT_LT(relative_error(du.download(), expected_du), value_tolerance<T>());
  EXPECT_LT(relative_error(dv_then_dgate.download(), expected_dgate), value_tolerance<T>());

  // du accumulated, no dgate_pre.
  std::vector<float> expected_du_sum = du_start;
  reference::sigmoid_gate_backward(expected_du_sum.data(), true, nullptr, false, dv.data(),
                                   u.data(), gate_pre.data(), count);
  DeviceArray<T> dv_device(dv), du_sum(du_start);
  K::sigmoid_gate_backward(accumulate(du_sum.get()), Grad<T>{}, dv_device.get(), u_device.get(),
                           gate_device.get(), count);
  EXPECT_LT(relative_error(du_sum.download(), expected_du_sum), value_tolerance<T>());
}

TYPED_TEST(CudaAfnoOps, ShrinkResidualMatchesCpu) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  constexpr std::size_t count = 999;
  constexpr double lambda = 0.25;  // a quarter of z ~ U(−1, 1) is shrunk to zero
  const auto v = random_values<T>(count, 400);
  const auto z = random_values<T>(count, 401);
  const auto dout = random_values<T>(count, 402);
  const auto dv_start = random_values<T>(count, 403);
  const auto dz_start = random_values<T>(count, 404);
  DeviceArray<T> v_device(v), z_device(z), dout_device(dout), out(count);

  std::vector<float> expected_out(count);
  reference::shrink_residual_forward(expected_out.data(), v.data(), z.data(), lambda, count);
  K::shrink_residual_forward(out.get(), v_device.get(), z_device.get(), lambda, count);
  EXPECT_LT(relative_error(out.download(), expected_out), value_tolerance<T>());

  std::vector<float> expected_dv = dv_start, expected_dz(count);
  reference::shrink_residual_backward(expected_dv.data(), true, expected_dz.data(), false,
                                      dout.data(), z.data(), lambda, count);
  DeviceArray<T> dv(dv_start), dz(count);
  K::shrink_residual_backward(accumulate(dv.get()), overwrite(dz.get()), dout_device.get(),
                              z_device.get(), lambda, count);
  EXPECT_LT(relative_error(dv.download(), expected_dv), value_tolerance<T>());
  EXPECT_LT(relative_error(dz.download(), expected_dz), value_tolerance<T>());

  std::vector<float> expected_dz_sum = dz_start;
  reference::shrink_residual_backward(nullptr, false, expected_dz_sum.data(), true, dout.data(),
                                      z.data(), lambda, count);
  DeviceArray<T> dz_sum(dz_start);
  K::shrink_residual_backward(Grad<T>{}, accumulate(dz_sum.get()), dout_device.get(),
                              z_device.get(), lambda, count);
  EXPECT_LT(relative_error(dz_sum.download(), expected_dz_sum), value_tolerance<T>());
}

// -------------------------------------------------------------------------- one AFNO layer

template <class P>
class CudaAfnoLayer : public CudaTest {};
using Precisions = ::testing::Types<Fp32, Bf16, Fp16>;
struct PrecisionNames {
  template <class P>
  static std::string GetName(int) {
    return std::string(P::name);
  }
};
TYPED_TEST_SUITE(CudaAfnoLayer, Precisions, PrecisionNames);

template <class T>
double shrink_threshold() {
  return std::is_same_v<T, float> ? 0.1 : 0.0;
}

ModelConfig layer_config(bool gated, double lambda) {
  ModelConfig config;
  config.vocab_size = 300;
  config.max_seq_len = 32;
  config.n_layer = 1;
  config.n_head = 4;
  config.d_model = 64;
  config.options.set("afno.hidden_factor", 2);  // blocks of 8 → 16 → 8
  config.options.set("afno.gate", gated);
  config.options.set("afno.sparsity_threshold", lambda);
  return config;
}
constexpr int kLayerB = 2, kLayerT = 24;  // T below max_seq_len: the filters are truncated

// Uniform values, rounded to T, at scales that keep every stage of the layer O(0.1–1), so that the
// MLP's output z straddles the fp32 threshold (about half its entries pass).
template <class T>
reference::Parameters random_layer_parameters(const ModelConfig& config, std::uint32_t seed) {
  ParameterLayout layout;
  detail::AfnoMixerImpl<Cuda, Fp32, kBlocks>::declare(layout, config);
  reference::Parameters params;
  for (const TensorInfo& tensor : layout.tensors()) {
    const std::string& name = tensor.name;
    const float scale = name == "afno_filter"  ? 0.3f
                        : name == "afno_gatew" ? 0.2f
                        : name == "afno_gateb" ? 0.5f
                        : name == "afno_w1"    ? 0.6f
                        : name == "afno_w2"    ? 0.5f
                                               : 0.2f;
    params.push_back(random_values<T>(tensor.numel, ++seed, scale));
  }
  return params;
}

// One AfnoMixer<kBlocks> on the GPU with the given parameters, bound as the model binds it; the
// arenas start NaN-poisoned, so nothing is read before it is written.
template <class P>
class GpuAfnoLayer : public MixerHarness<AfnoMixer<kBlocks>, P, Cuda> {
 public:
  using Harness = MixerHarness<AfnoMixer<kBlocks>, P, Cuda>;
  using T = typename P::storage_t;

  GpuAfnoLayer(const ModelConfig& config, const reference::Parameters& params,
               std::size_t positions)
      : Harness(config, positions, 0, 1, 1, /*poison=*/true) {
    this->write_parameters(params);
  }

  ParameterStore<P, Cuda>& store() { return this->parameters(); }

  std::vector<float> forward(const DeviceArray<T>& in, int B, int seq_len) {
    DeviceArray<T> out(in.size());
    Harness::forward(0, out.get(), in.get(), B, seq_len);
    return out.download();
  }
  // The backward of the last forward; din overwritten.
  std::vector<float> backward(const DeviceArray<T>& in, const DeviceArray<T>& dout, int B,
                              int seq_len) {
    DeviceArray<T> din(in.size());
    Harness::backward(0, overwrite(din.get()), dout.get(), in.get(), B, seq_len);
    return din.download();
  }
};

TYPED_TEST(CudaAfnoLayer, ForwardAndGradientsMatchCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  using T = typename TypeParam::storage_t;
  for (bool gated : {true, false}) {
    const ModelConfig config = layer_config(gated, shrink_threshold<T>());
    const auto params = random_layer_parameters<T>(config, 500);
    const std::size_t values = std::size_t(kLayerB) * kLayerT * config.d_model;
    const auto in = random_values<T>(values, 520);
    const auto dout = random_values<T>(values, 521);
    const reference::AfnoLayerResult expected =
        reference::afno_layer(config, params, in, dout, kLayerB, kLayerT);

    GpuAfnoLayer<TypeParam> layer(config, params, std::size_t(kLayerB) * kLayerT);
    DeviceArray<T> in_device(in), dout_device(dout);
    const auto out = layer.forward(in_device, kLayerB, kLayerT);
    const auto din = layer.backward(in_device, dout_device, kLayerB, kLayerT);
    const char* where = gated ? "gated" : "ungated";
    EXPECT_LT(relative_error(out, expected.out), value_tolerance<T>()) << where;
    EXPECT_LT(relative_error(din, expected.din), gradient_tolerance<T>()) << where;
    const auto& tensors = layer.store().layout().tensors();
    ASSERT_EQ(tensors.size(), expected.grads.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      EXPECT_GT(norm(expected.grads[i]), 0.0f) << tensors[i].name << " has no gradient; " << where;
      EXPECT_LT(relative_error(layer.store().read_grad(tensors[i]), expected.grads[i]),
                gradient_tolerance<T>())
          << tensors[i].name << ", " << where;
    }
  }
}

TYPED_TEST(CudaAfnoLayer, DecodeMatchesCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  using T = typename TypeParam::storage_t;
  const ModelConfig config = layer_config(true, shrink_threshold<T>());
  const int C = config.d_model, positions = config.max_seq_len;  // every position
  const auto params = random_layer_parameters<T>(config, 600);
  const auto in = random_values<T>(std::size_t(positions) * C, 620);
  const auto expected = reference::afno_layer_decode(config, params, in, positions);

  GpuAfnoLayer<TypeParam> layer(config, params, 1);
  DeviceArray<T> in_device(in), out(C);
  for (int t = 0; t < positions; ++t) {
    out.poison();
    layer.mixer().decode(0, out.get(), in_device.get() + std::size_t(t) * C, t);
    EXPECT_LT(relative_error(out.download(), expected[t]), value_tolerance<T>())
        << "position " << t;
  }
}

// ---------------------------------------------------------------------------------- causality

class CudaAfnoCausality : public CudaTest {};

// Outputs at t < j of the fp32 GPU layer do not move (beyond FFT rounding, 1e-5 relative) when
// the inputs at positions ≥ j change, and a loss on outputs before j has no gradient at ≥ j.
TEST_F(CudaAfnoCausality, TheFutureNeverReachesThePast) {
  LIGHTGPT_REQUIRE_GPU();
  const ModelConfig config = layer_config(true, 0.1);
  const int B = kLayerB, T = kLayerT, C = config.d_model;
  const auto params = random_layer_parameters<float>(config, 700);
  const auto in = random_values<float>(std::size_t(B) * T * C, 720);
  GpuAfnoLayer<Fp32> layer(config, params, std::size_t(B) * T);
  DeviceArray<float> in_device(in);
  const auto out = layer.forward(in_device, B, T);

  // Values at positions [begin, end) of every sequence.
  auto span = [&](const std::vector<float>& values, int begin, int end) {
    std::vector<float> part;
    for (int b = 0; b < B; ++b) {
      for (int t = begin; t < end; ++t) {
        const std::size_t row = (std::size_t(b) * T + t) * C;
        part.insert(part.end(), values.begin() + row, values.begin() + row + C);
      }
    }
    return part;
  };
  for (int j : {1, 5, 12, T - 1}) {
    auto perturbed = in;
    const auto replacement = random_values<float>(perturbed.size(), 730 + j);
    for (int b = 0; b < B; ++b) {
      for (std::size_t i = (std::size_t(b) * T + j) * C; i < std::size_t(b + 1) * T * C; ++i) {
        perturbed[i] = replacement[i];
      }
    }
    DeviceArray<float> perturbed_device(perturbed);
    const auto changed = layer.forward(perturbed_device, B, T);
    EXPECT_LT(relative_error(span(changed, 0, j), span(out, 0, j)), 1e-5) << "j = " << j;
    EXPECT_GT(relative_error(span(changed, j, T), span(out, j, T)), 1e-2) << "j = " << j;

    std::vector<float> dout = random_values<float>(in.size(), 740 + j);
    for (int b = 0; b < B; ++b) {
      for (std::size_t i = (std::size_t(b) * T + j) * C; i < std::size_t(b + 1) * T * C; ++i) {
        dout[i] = 0.0f;
      }
    }
    DeviceArray<float> dout_device(dout);
    layer.forward(in_device, B, T);
    const auto din = layer.backward(in_device, dout_device, B, T);
    EXPECT_LT(norm(span(din, j, T)), 1e-5f * norm(din)) << "j = " << j;
    EXPECT_GT(norm(span(din, 0, j)), 0.0f) << "j = " << j;
  }
}

// ------------------------------------------------------------------------------- whole model

template <class P>
using CudaAfnoGpt = GPT<P, DenseHead<>, AfnoMixer<kBlocks>, Cuda>;

template <class P>
class CudaAfnoModel : public CudaTest {};
TYPED_TEST_SUITE(CudaAfnoModel, Precisions, PrecisionNames);

// V = 300 pads to 384 columns; T = 24 of max_seq_len 32; blocks of 8 channels.
ModelConfig model_config(double lambda) {
  ModelConfig config;
  config.vocab_size = 300;
  config.max_seq_len = 32;
  config.n_layer = 2;
  config.n_head = 4;
  config.d_model = 64;
  config.options.set("afno.sparsity_threshold", lambda);
  return config;
}
constexpr int kB = 2, kT = 24;
constexpr std::uint64_t kSeed = 11;

template <class T>
double model_threshold() {
  return std::is_same_v<T, float> ? 0.01 : 0.0;  // the default λ in fp32
}

// The model's initial parameters with the block MLP's matrices redrawn at U(−0.5, 0.5) (at
// N(0, 0.02), |z| stays below λ = 0.01 and soft-shrink zeroes every MLP gradient), all rounded to
// the storage type and written back, so the GPU's working weights equal the reference's.
template <class P>
reference::Parameters prepared_parameters(CudaAfnoGpt<P>& model, std::uint32_t seed) {
  using T = typename P::storage_t;
  reference::Parameters params;
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    std::vector<float> values = model.parameters().read(tensor);
    if (tensor.name == "afno_w1" || tensor.name == "afno_w2") {
      values = random_values<T>(tensor.numel, ++seed, 0.5f);
    }
    for (float& v : values) v = static_cast<float>(T(v));
    model.parameters().write(tensor, values.data());
    params.push_back(std::move(values));
  }
  return params;
}

TYPED_TEST(CudaAfnoModel, TrainingStepMatchesCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  using T = typename TypeParam::storage_t;
  const ModelConfig config = model_config(model_threshold<T>());
  const auto tokens = random_ids(std::size_t(kB) * (kT + 1), config.vocab_size, 1);
  CudaAfnoGpt<TypeParam> model(config, kSeed);
  const auto params = prepared_parameters(model, 800);
  const reference::StepResult expected =
      reference::afno_training_step(config, kSeed, params, tokens, kB, kT);

  model.zero_grad();
  const float loss = model.forward(tokens.data(), kB, kT);
  model.backward();
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_LT(std::abs(loss - expected.loss) / expected.loss, value_tolerance<T>())
      << "cpu " << expected.loss << ", gpu " << loss;
  const auto& tensors = model.parameters().layout().tensors();
  ASSERT_EQ(tensors.size(), expected.grads.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_GT(norm(expected.grads[i]), 0.0f) << tensors[i].name << " has no gradient";
    EXPECT_LT(relative_error(model.parameters().read_grad(tensors[i]), expected.grads[i]),
              gradient_tolerance<T>())
        << tensors[i].name;
  }
  // An inference pass (one layer's activations) over the same inputs gives the training loss.
  const float evaluated = model.evaluate(tokens.data(), kB, kT);
  EXPECT_LT(std::abs(evaluated - loss) / loss, 1e-6);
}

TYPED_TEST(CudaAfnoModel, DecodeMatchesCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  using T = typename TypeParam::storage_t;
  const ModelConfig config = model_config(model_threshold<T>());
  const auto sequence = random_ids(14, config.vocab_size, 3);
  CudaAfnoGpt<TypeParam> model(config, kSeed);
  const auto params = prepared_parameters(model, 900);
  const auto expected = reference::afno_decode_log_probs(config, kSeed, params, sequence);
  model.decode_reset();
  for (std::size_t i = 0; i < sequence.size(); ++i) {
    const auto log_probs = model.decode(sequence[i]);
    const std::vector<float> actual(log_probs.begin(), log_probs.end());
    EXPECT_LT(relative_error(actual, expected[i]), value_tolerance<T>()) << "position " << i;
  }
}

// Two models with the same seed and parameters on the same batches, TF32 on (the default):
// bit-identical losses and gradients (cuFFT plans, cuBLASLt and every reduction are
// deterministic; the filter gradient sums the batch in order).
TYPED_TEST(CudaAfnoModel, TwoRunsAreBitIdentical) {
  LIGHTGPT_REQUIRE_GPU();
  cuda::context().set_allow_tf32(true);
  using T = typename TypeParam::storage_t;
  const ModelConfig config = model_config(model_threshold<T>());
  constexpr int steps = 3;
  const auto tokens = random_ids(std::size_t(steps) * kB * (kT + 1), config.vocab_size, 4);
  const auto run = [&] {
    return record_training_run<CudaAfnoGpt<TypeParam>>(
        config, kSeed, [](auto& model) { prepared_parameters(model, 1000); }, tokens, kB, kT,
        steps);
  };
  const TrainingRecord first = run();
  EXPECT_TRUE(first == run()) << "losses or gradients differ between runs";
}

}  // namespace cuda_afno
}  // namespace lightgpt::testing
