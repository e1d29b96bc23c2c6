"""The figure to beat: a GPT-2 small training step (d12, V = 50257, T = 1024) in PyTorch on the
same GPU, bf16 autocast, fused AdamW, flash attention through scaled_dot_product_attention.
Random weights and tokens: no downloads. MFU is counted as bench_gpt2 counts it.

Eager mode is timed first and its `RESULT torch_eager_key=value` lines are printed (and flushed)
before torch.compile starts, so that a compilation slower than benchmarks/gpu/run.sh's budget
still leaves the eager figure; the compiled figures (`RESULT torch_compiled_key=value`) follow
only if compiling and timing finish. The batch is halved while it does not fit.
Usage: torch_gpt2.py [--batch 64] [--steps 10] [--modes eager,compiled] [--no-compile]
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PEAK_BF16 = 989e12


class Block(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.NH = NH
        self.ln1 = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.ln2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, 4 * C)
        self.fcproj = nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.NH, C // self.NH).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, V=50257, Vp=50304, T=1024, L=12, NH=12, C=768):
        super().__init__()
        self.wte = nn.Embedding(Vp, C)
        self.wpe = nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block(C, NH) for _ in range(L))
        self.lnf = nn.LayerNorm(C)
        self.V = V

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.lnf(x), self.wte.weight)[..., : self.V]
        return F.cross_entropy(logits.float().reshape(-1, self.V), targets.reshape(-1))


def result(key, value):
    print(f"RESULT torch_{key}={value}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--modes", default="eager,compiled")
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m and not (args.no_compile and m == "compiled")]
    torch.backends.cuda.matmul.allow_tf32 = True
    device = "cuda"
    T, V, L, C = 1024, 50257, 12, 768
    model = GPT2().to(device)
    params = sum(p.numel() for p in model.parameters()) - model.wpe.weight.numel() - (50304 - V) * C
    flops_per_token = 6 * params + 12 * L * C * T
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), fused=True)
    result("gpu", torch.cuda.get_device_name())
    result("version", torch.__version__)

    def make_step(step_model, idx, targets):
        def step():
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                loss = step_model(idx, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            return loss

        return step

    def time_mode(mode, B, warmup):
        step_model = torch.compile(model) if mode == "compiled" else model
        idx = torch.randint(0, V, (B, T), device=device)
        targets = torch.randint(0, V, (B, T), device=device)
        step = make_step(step_model, idx, targets)
        start = time.perf_counter()
        for _ in range(warmup):
            step()
        torch.cuda.synchronize()
        warmup_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        torch.cuda.synchronize()
        step_s = (time.perf_counter() - start) / args.steps
        tokens_per_s = B * T / step_s
        result(f"{mode}_batch", B)
        result(f"{mode}_warmup_s", f"{warmup_s:.1f}")
        result(f"{mode}_loss", f"{loss.item():.4f}")
        result(f"{mode}_step_ms", f"{step_s * 1e3:.2f}")
        result(f"{mode}_tokens_per_s", f"{tokens_per_s:.0f}")
        result(f"{mode}_mfu_peak", f"{tokens_per_s * flops_per_token / PEAK_BF16:.3f}")

    print(f"initial loss ~ ln V = {math.log(V):.2f}", flush=True)
    B = args.batch
    for mode in modes:
        while True:
            try:
                time_mode(mode, B, warmup=3 if mode == "compiled" else 2)
                break
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if B == 1:
                    raise
                print(f"{mode}: batch {B} does not fit; trying {B // 2}", flush=True)
                B //= 2
            except Exception as error:  # noqa: BLE001 - report a failed compile, keep eager's
                if mode != "compiled":
                    raise
                result("compiled", f"failed: {type(error).__name__}: {error}".splitlines()[0])
                break


if __name__ == "__main__":
    main()
