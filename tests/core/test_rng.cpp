#include <gtest/gtest.h>

#include <cmath>
#include <lightgpt/core/rng.hpp>

namespace lightgpt {
namespace rng_tests {
namespace {

TEST(Rng, StreamsAreDeterministicAndDistinct) {
  Rng a = Rng::stream(1, "wte"), b = Rng::stream(1, "wte"), c = Rng::stream(1, "wpe"),
      d = Rng::stream(2, "wte");
  const auto first = a.next_u64();
  EXPECT_EQ(first, b.next_u64());
  EXPECT_NE(first, c.next_u64());
  EXPECT_NE(first, d.next_u64());
}

TEST(Rng, NormalHasUnitMomentsAndUniformIsInRange) {
  Rng rng(7);
  const int n = 200000;
  double sum = 0, squares = 0;
  for (int i = 0; i < n; ++i) {
    const double x = rng.normal();
    sum += x;
    squares += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(squares / n, 1.0, 0.01);
  for (int i = 0; i < 1000; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

}  // namespace
}  // namespace rng_tests
}  // namespace lightgpt
