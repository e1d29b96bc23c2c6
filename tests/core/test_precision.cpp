#include <gtest/gtest.h>

#include <cmath>
#include <lightgpt/core/elementwise.hpp>
#include <lightgpt/core/precision.hpp>
#include <limits>

namespace lightgpt {
namespace precision_tests {
namespace {

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(detail::float_to_bf16(1.0f).bits, 0x3F80);
  // 1 + 2^-8 lies halfway between 1 (even) and 1 + 2^-7: ties go to even.
  EXPECT_EQ(detail::float_to_bf16(1.00390625f).bits, 0x3F80);
  // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6: ties go to even, upwards.
  EXPECT_EQ(detail::float_to_bf16(1.01171875f).bits, 0x3F82);
  EXPECT_EQ(detail::float_to_bf16(-2.0f).bits, 0xC000);
  EXPECT_FLOAT_EQ(detail::bf16_to_float(detail::float_to_bf16(3.140625f)), 3.140625f);
  EXPECT_TRUE(std::isnan(
      detail::bf16_to_float(detail::float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(detail::bf16_to_float(detail::float_to_bf16(3.4e38f))));
}

TEST(Fp16, RoundsToNearestEvenWithSubnormalsAndOverflow) {
  auto bits = [](float x) { return detail::float_to_half(x).bits; };
  EXPECT_EQ(bits(1.0f), 0x3C00);
  EXPECT_EQ(bits(-2.0f), 0xC000);
  EXPECT_EQ(bits(65504.0f), 0x7BFF);             // the largest finite half
  EXPECT_EQ(bits(65519.0f), 0x7BFF);             // rounds down to it
  EXPECT_EQ(bits(65520.0f), 0x7C00);             // halfway to 2^16: rounds to even = inf
  EXPECT_EQ(bits(1.0f + 0x1.0p-11f), 0x3C00);    // tie between 1 and 1 + 2^-10 goes to even
  EXPECT_EQ(bits(1.0f + 0x3.0p-11f), 0x3C02);    // tie goes up to the even neighbour
  EXPECT_EQ(bits(0x1.0p-14f), 0x0400);           // smallest normal
  EXPECT_EQ(bits(0x1.0p-24f), 0x0001);           // smallest subnormal
  EXPECT_EQ(bits(0x1.0p-25f), 0x0000);           // tie between 0 and 2^-24: even (0)
  EXPECT_EQ(bits(0x1.8p-25f), 0x0001);
  EXPECT_EQ(bits(0x2.8p-24f), 0x0002);           // 2.5 · 2^-24: tie, to even 2
  EXPECT_EQ(bits(0x3.8p-24f), 0x0004);           // 3.5 · 2^-24: tie, to even 4
  for (std::uint32_t h = 0; h < 0x7C00; ++h) {  // every finite half survives the round trip
    const float16 value = float16::from_bits(static_cast<std::uint16_t>(h));
    ASSERT_EQ(detail::float_to_half(static_cast<float>(value)).bits, h);
    ASSERT_EQ(detail::float_to_half(-static_cast<float>(value)).bits, h | 0x8000);
  }
  EXPECT_TRUE(std::isinf(static_cast<float>(float16::from_bits(0x7C00))));
  EXPECT_TRUE(std::isnan(static_cast<float>(detail::float_to_half(std::nanf("")))));
  EXPECT_FLOAT_EQ(static_cast<float>(float16::from_bits(0x0001)), 0x1.0p-24f);
  EXPECT_FLOAT_EQ(static_cast<float>(float16(3.140625)), 3.140625f);
}

TEST(Gelu, MatchesTheTanhFormulaAndItsDerivative) {
  for (double x : {-4.0, -1.5, -0.3, 0.0, 0.2, 1.0, 3.7}) {
    const double expected =
        0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    EXPECT_NEAR(detail::gelu(x), expected, 1e-15);
    const double h = 1e-6;
    const double numeric = (detail::gelu(x + h) - detail::gelu(x - h)) / (2 * h);
    EXPECT_NEAR(detail::gelu_grad(x), numeric, 1e-9);
  }
}

TEST(OnlineSoftmax, MatchesTwoPassLogSumExp) {
  const double logits[] = {3.0, -1.0, 700.0, 2.5, 699.0};
  detail::OnlineSoftmax<double> online;
  for (double v : logits) online.add(v);
  double sum = 0;
  for (double v : logits) sum += std::exp(v - 700.0);
  EXPECT_NEAR(online.log_sum_exp(), 700.0 + std::log(sum), 1e-12);
}

}  // namespace
}  // namespace precision_tests
}  // namespace lightgpt
