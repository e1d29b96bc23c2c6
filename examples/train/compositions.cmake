# The compositions built into `train`: one line each, the only place they are listed. Each line
# names the backend, precision, head, MTP depth, mixer and AFNO block count (0 for attention) that
# the flags select, then the GPT<...> type. CMake turns every CPU line into its own translation unit
# (so they compile in parallel), collects the CUDA lines into one (the CUDA headers cost more than
# a composition), and makes every line one row of the table `train` searches, lists and validates
# flags against. Lines with backend cuda are built when the build has CUDA.
lightgpt_train_composition(cpu fp32 dense 1 attention 0 "GPT<Fp32, DenseHead<>, Attention, Cpu>")
lightgpt_train_composition(cpu fp32 lightrnn 1 attention 0
                           "GPT<Fp32, LightRnnHead<>, Attention, Cpu>")
lightgpt_train_composition(cpu fp32 lightrnn 2 attention 0
                           "GPT<Fp32, LightRnnHead<MTP<2>>, Attention, Cpu>")
lightgpt_train_composition(cpu fp32 lightrnn 1 afno 8 "GPT<Fp32, LightRnnHead<>, AfnoMixer<8>, Cpu>")
lightgpt_train_composition(cpu bf16 dense 1 attention 0 "GPT<Bf16, DenseHead<>, Attention, Cpu>")
lightgpt_train_composition(cpu bf16 lightrnn 1 attention 0
                           "GPT<Bf16, LightRnnHead<>, Attention, Cpu>")
lightgpt_train_composition(cpu bf16 lightrnn 2 attention 0
                           "GPT<Bf16, LightRnnHead<MTP<2>>, Attention, Cpu>")
# The four GPU presets.
lightgpt_train_composition(cuda bf16 dense 1 attention 0 "GPT<Bf16, DenseHead<>, Attention>")
lightgpt_train_composition(cuda bf16 lightrnn 1 attention 0 "GPT<Bf16, LightRnnHead<>, Attention>")
lightgpt_train_composition(cuda bf16 lightrnn 2 attention 0
                           "GPT<Bf16, LightRnnHead<MTP<2>>, Attention>")
lightgpt_train_composition(cuda bf16 lightrnn 1 afno 8 "GPT<Bf16, LightRnnHead<>, AfnoMixer<8>>")
