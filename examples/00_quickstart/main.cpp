// 00_quickstart — train a small GPT-2 (dense tied head, causal attention) on the CPU.
//
// The whole library in one page: a model is a type composed at compile time,
//
//   using Model = lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention,
//                               lightgpt::Cpu>;
//
// built from a run-time ModelConfig and a seed. Each training step is zero_grad → forward (mean
// next-token NLL over B·T positions) → backward → AdamW step at the scheduled learning rate. The
// batches are views into llm.c-format token shards (see `prepare`); validation is pure next-token
// NLL over the full vocabulary. Run with --help for the flags.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <lightgpt/data/loader.hpp>
#include <lightgpt/lightgpt.hpp>

using Model =
    lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention, lightgpt::Cpu>;

int main(int argc, char** argv) {
  CLI::App app{"Train a small dense GPT-2 on token shards (CPU)"};
  std::string train_pattern, val_pattern, out_dir = "out";
  int steps = 200, batch_size = 8, seq_len = 64, n_layer = 2, n_head = 4, d_model = 128;
  int eval_every = 50, val_batches = 8;
  double learning_rate = 3e-3;
  long long warmup = 20, warmdown = 60;
  app.add_option("--train_data", train_pattern, "Training shards (path or glob)")->required();
  app.add_option("--val_data", val_pattern, "Validation shards (path or glob)")->required();
  app.add_option("--out_dir", out_dir, "Where the checkpoint is written")->capture_default_str();
  app.add_option("--steps", steps, "Training steps")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--batch_size", batch_size, "Rows per batch (B)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--seq_len", seq_len, "Tokens per row (T)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--n_layer", n_layer, "Transformer blocks")->capture_default_str();
  app.add_option("--n_head", n_head, "Attention heads")->capture_default_str();
  app.add_option("--d_model", d_model, "Model width C")->capture_default_str();
  app.add_option("--learning_rate", learning_rate, "Peak learning rate")->capture_default_str();
  app.add_option("--warmup", warmup, "Warmup steps")->capture_default_str();
  app.add_option("--warmdown", warmdown, "Warmdown steps")->capture_default_str();
  app.add_option("--eval_every", eval_every, "Steps between validations")->capture_default_str();
  app.add_option("--val_batches", val_batches, "Validation batches")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help exits 0 with CLI11's text; a bad flag is one line and exit code 1.
    return error.get_exit_code() == 0 ? app.exit(error)
                                      : lightgpt::report_exception("quickstart");
  }

  try {
    lightgpt::ModelConfig config;
    config.max_seq_len = seq_len;
    config.n_layer = n_layer;
    config.n_head = n_head;
    config.d_model = d_model;
    const lightgpt::LrSchedule schedule{learning_rate, warmup, warmdown, steps};
    schedule.validate();

    lightgpt::LoaderOptions options;
    options.B = batch_size;
    options.T = seq_len;
    options.K = Model::mtp_depth;
    options.shuffle = true;
    options.seed = 1;
    options.vocab_size = config.vocab_size;
    lightgpt::Loader train(train_pattern, options);
    options.shuffle = false;
    options.K = 1;
    lightgpt::Loader val(val_pattern, options);

    Model model(config, /*seed=*/1);
    lightgpt::AdamW<lightgpt::Cpu, float> optimizer(model.parameters().layout());
    model.reserve(batch_size, seq_len);
    std::printf("model: %zu parameters, %d layers, C = %d; batch %d x %d tokens\n",
                model.num_parameters(), n_layer, d_model, batch_size, seq_len);

    const lightgpt::LoaderPosition val_start = val.position();
    auto validate = [&] {
      val.restore(val_start);  // the same validation batches every time
      double total = 0;
      for (int i = 0; i < val_batches; ++i) {
        const lightgpt::Batch batch = val.next();
        total += model.evaluate(batch.tokens, batch.B, batch.T, batch.row_stride);
      }
      return total / val_batches;
    };

    const auto start = std::chrono::steady_clock::now();
    for (int step = 0; step < steps; ++step) {
      const auto step_start = std::chrono::steady_clock::now();
      const lightgpt::Batch batch = train.next();
      model.zero_grad();
      const float loss = model.forward(batch.tokens, batch.B, batch.T, batch.row_stride);
      model.backward();
      const double lr = schedule.at(step);
      const double norm = optimizer.step(model.parameters(), lr);
      LIGHTGPT_CHECK(std::isfinite(loss) && std::isfinite(norm), "training diverged at step ", step,
                     ": loss ", loss, ", gradient norm ", norm);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      std::printf("step %4d/%d  train_loss %.4f  lr %.2e  grad_norm %.3f  %.0f tok/s\n", step + 1,
                  steps, loss, lr, norm, batch.B * batch.T / seconds);
      if ((step + 1) % eval_every == 0 || step + 1 == steps) {
        std::printf("step %4d  val_loss %.4f\n", step + 1, validate());
      }
      std::fflush(stdout);
    }
    std::filesystem::create_directories(out_dir);
    const auto path = std::filesystem::path(out_dir) / "quickstart.ckpt";
    lightgpt::save_checkpoint(path, model, optimizer, static_cast<std::uint64_t>(steps));
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("done in %.1f s; checkpoint %s\n", elapsed, path.c_str());
  } catch (...) {
    return lightgpt::report_exception("quickstart");
  }
  return 0;
}
