// The optional scale-out component as users get it: find_package(lightgpt COMPONENTS
// distributed) gives lightgpt::distributed, whose headers bring MPI. One process here: a world
// of one whose collectives are checked on a small buffer.
#include <cstdio>
#include <lightgpt/dist/mpi.hpp>
#include <vector>

int main(int argc, char** argv) {
  lightgpt::Mpi mpi(&argc, &argv);
  try {
    std::vector<double> values = {1.5, 2.5};
    mpi.all_reduce_sum(values.data(), values.size(), lightgpt::DataType::f64);
    LIGHTGPT_CHECK(values[0] == 1.5 * mpi.size(), "all-reduce gave ", values[0]);
    std::printf("consumer: distributed, %d rank(s), all-reduce %.1f\n", mpi.size(), values[0]);
  } catch (...) {
    return mpi.fail("consumer_distributed");
  }
  return 0;
}
