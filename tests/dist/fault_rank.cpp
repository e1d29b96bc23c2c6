// A data-parallel run in which one rank fails on purpose, for check_fault.sh: every rank trains a
// tiny model, checkpointing every 2 steps, until rank `fail_rank` throws or kills itself before
// step `fail_step`. The other ranks are then waiting in a collective; the job must end them.
// `--load <checkpoint>` reads a checkpoint back in one process and prints its step.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <lightgpt/dist/mpi.hpp>
#include <string>

#include "../train/fixture.hpp"

namespace {

using namespace lightgpt;
using Model = testing::DenseFp64;

int load(const std::string& path) {
  Model model(testing::tiny_config(), 1);
  AdamW<Cpu, double> optimizer(model.parameters().layout());
  const std::uint64_t step = load_checkpoint(path, model, optimizer);
  std::printf("fault_rank: loaded %s at step %llu\n", path.c_str(),
              static_cast<unsigned long long>(step));
  return 0;
}

void train(Mpi& mpi, const std::filesystem::path& dir, const std::string& mode, int fail_rank,
           int fail_step) {
  const std::string shard = (dir / "train.bin").string();
  if (mpi.rank() == 0) {
    write_shard(shard, std::span<const std::uint16_t>(
                           testing::patterned_tokens(4000, testing::tiny_config().vocab_size, 1)));
  }
  mpi.barrier();
  LoaderOptions o;
  o.B = 2;
  o.T = 8;
  o.rank = mpi.rank();
  o.world_size = mpi.size();
  Loader loader(shard, o);
  TrainConfig c;
  c.batch_size = 2;
  c.seq_len = 8;
  c.steps = 8;
  c.console = false;
  c.out_dir = (dir / "run").string();
  Model model(testing::tiny_config(), 3);
  Trainer<Model> trainer(model, c, loader, nullptr, &mpi);
  for (int step = 1; step <= c.steps; ++step) {
    if (mpi.rank() == fail_rank && step == fail_step) {
      if (mode == "kill") std::raise(SIGKILL);
      throw Error(detail::concat("injected failure before step ", step));
    }
    trainer.step();
    if (step % 2 == 0) trainer.save(trainer.checkpoint_path());
  }
  std::printf("fault_rank: rank %d finished\n", mpi.rank());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--help") {
    std::printf(
        "Usage: fault_rank <dir> <throw|kill> <fail_rank> <fail_step>\n"
        "       fault_rank --load <checkpoint>\n");
    return 0;
  }
  if (argc == 3 && std::string(argv[1]) == "--load") {
    try {
      return load(argv[2]);
    } catch (...) {
      return report_exception("fault_rank");
    }
  }
  if (argc != 5) {
    std::fprintf(stderr, "fault_rank: expected 4 arguments (see --help)\n");
    return 1;
  }
  Mpi mpi(&argc, &argv);
  try {
    train(mpi, argv[1], argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
  } catch (...) {
    return mpi.fail("fault_rank");
  }
  return 0;
}
