// 06_own_training_loop — your own loop around GPT<Fp32, LightRnnHead<MTP<2>>, Attention, Cpu>,
// using only the library's public pieces (docs/training.md, "Your own training loop"):
//
//   Loader        batches as views into token shards: B rows of T + K ids, K = Model::mtp_depth
//                 for training (every MTP target), K = 1 for validation
//   LrSchedule    warmup / constant / warmdown learning rate, at(step)
//   MtpSchedule   the auxiliary-loss weight w_mtp ramped up from 0, at(step)
//   Model::Optimizer   AdamW with the model's own precision and backend
//   evaluate      pure next-token NLL; the loader's position()/restore() rewind the validation
//                 split so every validation pass scores the same tokens
//   save_checkpoint / load_checkpoint   model, optimizer moments and step in one file
//   generate      sampled continuation with cached decoding (token ids; `tokenize --decode`
//                 turns them into text)
//
// One rule about activations: backward() differentiates the last training forward(), whose
// activations evaluate(), log_probs() and decoding reuse — so validate after backward(), never
// between the two (backward() then refuses to run). Run with --help for the flags.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <lightgpt/data/loader.hpp>
#include <lightgpt/lightgpt.hpp>
#include <new>
#include <string>
#include <vector>

using Model =
    lightgpt::GPT<lightgpt::Fp32, lightgpt::LightRnnHead<lightgpt::MTP<2>>, lightgpt::Attention,
                  lightgpt::Cpu>;

namespace {

struct Options {
  std::string train_pattern, val_pattern, out_dir = "out-own-loop";
  int steps = 100, batch_size = 8, seq_len = 32, n_layer = 2, n_head = 2, d_model = 64;
  int eval_every = 50, sample_tokens = 16, val_batches = 0;
  double learning_rate = 3e-3, mtp_weight = 0.35;
  long long warmup = 10, warmdown = 30, mtp_rampup = 20;
};

// Mean next-token NLL over the first `limit` batches of the validation split (0: all of them).
// The loader is rewound to where it stood, so the next pass scores exactly the same tokens.
double validate(Model& model, lightgpt::Loader& val, int limit) {
  const lightgpt::LoaderPosition start = val.position();
  double total = 0;
  const auto all = static_cast<long long>(val.steps_per_epoch());
  const long long batches = limit > 0 && limit < all ? limit : all;
  for (long long i = 0; i < batches; ++i) {
    const lightgpt::Batch batch = val.next();
    total += double(model.evaluate(batch.tokens, batch.B, batch.T, batch.row_stride));
  }
  val.restore(start);
  return total / double(batches);
}

int run(const Options& o) {
  lightgpt::ModelConfig config;
  config.max_seq_len = o.seq_len;
  config.n_layer = o.n_layer;
  config.n_head = o.n_head;
  config.d_model = o.d_model;  // vocab_size: GPT-2's 50257, as the shards hold

  lightgpt::LoaderOptions train_options;
  train_options.B = o.batch_size;
  train_options.T = o.seq_len;
  train_options.K = Model::mtp_depth;  // every window carries the MTP targets too
  train_options.shuffle = true;
  train_options.seed = 1;
  train_options.vocab_size = config.vocab_size;
  lightgpt::Loader train(o.train_pattern, train_options);
  lightgpt::LoaderOptions val_options = train_options;
  val_options.K = 1;  // validation is next-token only, for every composition
  val_options.shuffle = false;
  lightgpt::Loader val(o.val_pattern, val_options);

  Model model(config, /*seed=*/1);
  Model::Optimizer optimizer(model.parameters().layout());
  lightgpt::LrSchedule lr{o.learning_rate, o.warmup, o.warmdown, o.steps};
  lr.validate();
  lightgpt::MtpSchedule mtp;
  mtp.weight = o.mtp_weight;
  mtp.rampup_steps = o.mtp_rampup;
  mtp.validate();
  model.reserve(o.batch_size, o.seq_len);
  std::printf("%s: %zu parameters, %lld batches in the validation split\n",
              Model::composition().c_str(), model.num_parameters(),
              static_cast<long long>(val.steps_per_epoch()));

  for (int step = 0; step < o.steps; ++step) {
    model.set_mtp_weight(float(mtp.at(step)));
    const lightgpt::Batch batch = train.next();
    model.zero_grad();
    const float loss = model.forward(batch.tokens, batch.B, batch.T, batch.row_stride);
    model.backward();
    const double norm = optimizer.step(model.parameters(), lr.at(step));
    LIGHTGPT_CHECK(std::isfinite(loss) && std::isfinite(norm), "step ", step + 1,
                   ": the loss or gradient norm is not finite");
    const bool last = step + 1 == o.steps;
    if ((step + 1) % o.eval_every == 0 || last) {
      std::printf("step %d/%d | loss %.4f | mtp depth 2 %.4f | w_mtp %.3f | val_loss %.4f\n",
                  step + 1, o.steps, loss, model.losses().depth[1], mtp.at(step),
                  validate(model, val, o.val_batches));
    }
  }

  std::filesystem::create_directories(o.out_dir);
  const std::filesystem::path checkpoint = std::filesystem::path(o.out_dir) / "checkpoint.bin";
  lightgpt::save_checkpoint(checkpoint, model, optimizer, std::uint64_t(o.steps));
  Model restored(config, /*seed=*/2);
  Model::Optimizer restored_optimizer(restored.parameters().layout());
  const std::uint64_t step = lightgpt::load_checkpoint(checkpoint, restored, restored_optimizer);
  const double original_val = validate(model, val, o.val_batches);
  const double restored_val = validate(restored, val, o.val_batches);
  LIGHTGPT_CHECK(original_val == restored_val, "the restored model validates at ", restored_val,
                 ", the original at ", original_val);
  std::printf("checkpoint %s restored at step %llu: val_loss %.4f\n", checkpoint.string().c_str(),
              static_cast<unsigned long long>(step), restored_val);

  const lightgpt::Batch prompt_batch = val.next();
  const std::vector<std::int32_t> prompt(prompt_batch.tokens, prompt_batch.tokens + 8);
  lightgpt::SamplingOptions sampling;
  sampling.temperature = 0.8;
  sampling.top_k = 40;
  sampling.seed = 7;
  const auto sampled = restored.generate(prompt, o.sample_tokens, sampling);
  std::printf("sample token ids:");
  for (std::int32_t id : sampled) std::printf(" %d", id);
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train GPT<Fp32, LightRnnHead<MTP<2>>, Attention, Cpu> with a loop of your own"};
  Options o;
  app.add_option("--train_data", o.train_pattern, "Training shards (path or glob)")->required();
  app.add_option("--val_data", o.val_pattern, "Validation shards (path or glob)")->required();
  app.add_option("--out_dir", o.out_dir, "Where the checkpoint goes");
  app.add_option("--steps", o.steps, "Optimizer steps")->check(CLI::PositiveNumber);
  app.add_option("--batch_size", o.batch_size, "Rows per batch (B)")->check(CLI::PositiveNumber);
  app.add_option("--seq_len", o.seq_len, "Positions per row (T)")->check(CLI::PositiveNumber);
  app.add_option("--n_layer", o.n_layer, "Transformer blocks")->check(CLI::PositiveNumber);
  app.add_option("--n_head", o.n_head, "Attention heads")->check(CLI::PositiveNumber);
  app.add_option("--d_model", o.d_model, "Model width C")->check(CLI::PositiveNumber);
  app.add_option("--learning_rate", o.learning_rate, "Peak learning rate");
  app.add_option("--warmup", o.warmup, "Linear warmup steps");
  app.add_option("--warmdown", o.warmdown, "Linear warmdown steps at the end");
  app.add_option("--mtp_weight", o.mtp_weight, "Weight w of the mean auxiliary MTP loss");
  app.add_option("--mtp_rampup", o.mtp_rampup, "Steps over which w ramps up from 0");
  app.add_option("--eval_every", o.eval_every, "Validate every N steps (and at the end)")
      ->check(CLI::PositiveNumber);
  app.add_option("--val_batches", o.val_batches, "Validation batches per pass (0: the whole split)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--sample_tokens", o.sample_tokens, "Tokens to sample at the end");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "06_own_training_loop: out of memory (try a smaller model or batch)\n");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "06_own_training_loop: %s\n", error.what());
  }
  return 1;
}
