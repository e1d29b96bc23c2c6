// A complete consumer of the installed package (the program shown in the README): compose a
// model type, train it a few steps on a learnable synthetic stream, checkpoint it and export it as
// safetensors (nlohmann-json comes through the package). Given GPT-2's encoder.json and vocab.bpe
// it also tokenizes, which links PCRE2 through the package alone.
#include <cstdio>
#include <lightgpt/data/bpe.hpp>
#include <lightgpt/io/safetensors.hpp>
#include <lightgpt/lightgpt.hpp>
#include <vector>

using Model =
    lightgpt::GPT<lightgpt::Fp32, lightgpt::DenseHead<>, lightgpt::Attention, lightgpt::Cpu>;

int main(int argc, char** argv) {
  if (argc == 3) {
    const lightgpt::Tokenizer tokenizer(argv[1], argv[2]);
    std::printf("consumer: 'Hello world' has %zu tokens\n", tokenizer.encode("Hello world").size());
  }
  lightgpt::ModelConfig config;
  config.vocab_size = 64;
  config.max_seq_len = 32;
  config.n_layer = 2;
  config.n_head = 2;
  config.d_model = 32;
  Model model(config, /*seed=*/1);
  Model::Optimizer optimizer(model.parameters().layout());

  const int B = 4, T = 32;
  std::vector<int> tokens(B * (T + 1));  // each row holds T inputs + 1 target
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = int(i * 7 % 64);

  float first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    model.zero_grad();
    last = model.forward(tokens.data(), B, T);
    if (step == 0) first = last;
    model.backward();
    optimizer.step(model.parameters(), 3e-3);
  }
  lightgpt::save_checkpoint("consumer.ckpt", model, optimizer, 30);
  lightgpt::save_safetensors("consumer.safetensors", model);
  std::printf("consumer: trained, loss %.3f -> %.3f\n", first, last);
  return last < first ? 0 : 1;
}
