// The NCCL path on the GPUs present: the collectives of dist/nccl.hpp on device buffers against
// values computed on the host, then ZeRO-1 training on the Cuda backend against the unsharded run.
// One GPU here is a world of one (SingleProcess starts NCCL, no MPI needed); the GPU check
// (benchmarks/gpu/run.sh) runs it on the machine's GPU. Prints one line ending in PASS or FAIL.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <lightgpt/cuda.cuh>
#include <lightgpt/dist/nccl.hpp>
#include <lightgpt/train/trainer.hpp>
#include <string>
#include <vector>

namespace {

using namespace lightgpt;
using Model = GPT<Fp32, DenseHead<>, Attention, Cuda>;

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "nccl_check: FAILED: %s\n", what.c_str());
  }
}

// Each collective on a device buffer whose values depend on the rank, checked on the host.
void check_collectives(Communicator& comm) {
  const int R = comm.size(), r = comm.rank();
  const std::vector<std::size_t> counts = [&] {
    std::vector<std::size_t> c;
    for (int i = 0; i < R; ++i) c.push_back(std::size_t(3 + i));  // parts of unequal size
    return c;
  }();
  const std::vector<std::size_t> at = part_offsets(counts);
  const std::size_t n = at.back();
  std::vector<double> host(n);
  for (std::size_t i = 0; i < n; ++i) host[i] = double(i) + 100.0 * r;
  Buffer<double, Cuda> device(n);
  using O = Ops<Cuda>;
  auto reset = [&] { O::copy_from_host(device.data(), host.data(), n); };
  auto fetch = [&] {
    std::vector<double> out(n);
    O::copy_to_host(out.data(), device.data(), n);
    return out;
  };
  const double rank_sum = 100.0 * R * (R - 1) / 2;

  reset();
  comm.all_reduce_sum(device.data(), n, DataType::f64);
  auto out = fetch();
  for (std::size_t i = 0; i < n; ++i) {
    expect(out[i] == R * double(i) + rank_sum, "all-reduce element " + std::to_string(i));
  }

  reset();
  comm.reduce_scatter_sum(device.data(), counts, DataType::f64);
  out = fetch();
  for (std::size_t i = at[r]; i < at[r + 1]; ++i) {
    expect(out[i] == R * double(i) + rank_sum, "reduce-scatter element " + std::to_string(i));
  }

  reset();
  comm.all_gather(device.data(), counts, DataType::f64);
  out = fetch();
  for (int owner = 0; owner < R; ++owner) {
    for (std::size_t i = at[owner]; i < at[owner + 1]; ++i) {
      expect(out[i] == double(i) + 100.0 * owner, "all-gather element " + std::to_string(i));
    }
  }

  reset();
  comm.broadcast(device.data(), n, DataType::f64, 0);
  out = fetch();
  for (std::size_t i = 0; i < n; ++i) expect(out[i] == double(i), "broadcast element");
}

// Ten steps of a tiny model, unsharded and under ZeRO-1 over `comm`; the weights must agree.
void check_training(Communicator& comm, const std::filesystem::path& dir) {
  ModelConfig config;
  config.vocab_size = 23;
  config.max_seq_len = 8;
  config.n_layer = 2;
  config.n_head = 2;
  config.d_model = 16;
  std::vector<std::uint16_t> tokens(4000);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = std::uint16_t((7 * i + i / 5) % 23);
  const std::string shard = (dir / "train.bin").string();
  if (comm.rank() == 0) write_shard(shard, std::span<const std::uint16_t>(tokens));
  comm.barrier();

  std::vector<std::vector<float>> weights;
  for (int zero = 0; zero <= 1; ++zero) {
    LoaderOptions o;
    o.B = 4;
    o.T = 8;
    o.shuffle = true;
    o.seed = 3;
    o.rank = comm.rank();
    o.world_size = comm.size();
    Loader train(shard, o);
    TrainConfig c;
    c.batch_size = 4;
    c.seq_len = 8;
    c.grad_accum = 2;
    c.steps = 10;
    c.learning_rate = 1e-2;
    c.console = false;
    c.zero_stage = zero;
    c.out_dir = (dir / ("run" + std::to_string(zero))).string();
    Model model(config, 5);
    Trainer<Model> trainer(model, c, train, nullptr, &comm);
    trainer.run();
    std::vector<float> all;
    for (const TensorInfo& t : model.parameters().layout().tensors()) {
      const auto values = model.parameters().read(t);
      all.insert(all.end(), values.begin(), values.end());
    }
    weights.push_back(all);
  }
  // One rank: the same arithmetic in the same order, so bit for bit; more ranks sum in another
  // order than the unsharded all-reduce.
  double worst = 0;
  for (std::size_t i = 0; i < weights[0].size(); ++i) {
    worst = std::max(worst, double(std::abs(weights[0][i] - weights[1][i])));
  }
  expect(comm.size() == 1 ? worst == 0 : worst < 1e-5,
         "ZeRO-1 weights differ from the unsharded run's by " + std::to_string(worst));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    std::printf(
        "Usage: nccl_check\nRuns NCCL collectives and ZeRO-1 training on this process's "
        "GPU (a world of one) and prints PASS or FAIL.\n");
    return std::string(argv[1]) == "--help" ? 0 : 1;
  }
  try {
    SingleProcess host;
    Nccl::select_device(0);
    Nccl comm(host);
    check_collectives(comm);
    char templ[] = "/tmp/lightgpt-nccl-XXXXXX";
    LIGHTGPT_CHECK(::mkdtemp(templ) != nullptr, "cannot create a scratch directory");
    check_training(comm, templ);
    std::filesystem::remove_all(templ);
  } catch (...) {
    report_exception("nccl_check");
    std::printf("nccl_check: FAIL\n");
    return 1;
  }
  std::printf("nccl_check: world of 1, collectives and ZeRO-1 training: %s\n",
              failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
