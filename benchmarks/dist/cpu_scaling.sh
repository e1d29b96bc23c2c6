#!/usr/bin/env bash
# Data-parallel training on the CPU, measured on an idle machine of at least two cores: one rank
# with two threads against two ranks with one thread each (the same global batch), with the
# gradient sums overlapped with the backward and not, at the tiny-cpu preset and at GPT-2 small
# (B 4 per rank, T 64); then peak memory per rank of GPT-2 small in Bf16 with and without ZeRO-1.
# Prints one line per run: tokens/s (mean after the first 3 steps), the share of step time
# blocked on communication, and rank 0's peak resident memory before the final checkpoint.
#
#   benchmarks/dist/cpu_scaling.sh [build dir] [Brown shards dir] [steps]
#
# The shards come from `prepare --brown --out data/brown`. Runs go to runs/dp-scaling/.
set -euo pipefail
build=${1:-build}
data=${2:-data/brown}
steps=${3:-40}
train=$build/examples/train/train
out=runs/dp-scaling
mpirun=(mpirun -np 2 --bind-to core --map-by core)
[[ $(id -u) == 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(--train_data "$data/brown_train_*.bin" --val_data "$data/brown_val_*.bin"
        --steps "$steps" --warmup 0 --warmdown 0 --grad_accum 1 --eval_every 0 --val_batches 1
        --checkpoint_every 0 --sample_tokens 0 --no-baselines)
tiny=(--preset tiny-cpu --seq_len 16)
small=(--preset dense-baseline --backend cpu --head dense --mixer attention --seq_len 64)

report() {  # run name: tokens/s, comm-wait share, peak memory of rank 0
  python3 - "$out/$1/metrics.jsonl" "$1" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
timed = rows[3:] or rows
tps = sum(r["tokens_per_s"] for r in timed) / len(timed)
wait = sum(r.get("comm_wait_ms", 0.0) for r in timed) / sum(r["step_ms"] for r in timed)
print(f"{sys.argv[2]:28s} {tps:10.0f} tok/s  comm wait {100 * wait:5.1f}%  "
      f"peak {rows[-1]['peak_memory_mb']:7.0f} MB")
PY
}

run1() {  # name, then flags: one rank, two threads
  local name=$1; shift
  OMP_NUM_THREADS=2 "$train" "${common[@]}" --out_dir "$out/$name" "$@" > "$out/$name.log"
  report "$name"
}
run2() {  # name, then flags: two ranks, one thread each
  local name=$1; shift
  OMP_NUM_THREADS=1 "${mpirun[@]}" "$train" "${common[@]}" --out_dir "$out/$name" "$@" \
    > "$out/$name.log"
  report "$name"
}

mkdir -p "$out"
run1 tiny-1x2 "${tiny[@]}" --precision fp32 --batch_size 32
run2 tiny-2x1-overlap "${tiny[@]}" --precision fp32 --batch_size 16 --overlap 1
run2 tiny-2x1-no-overlap "${tiny[@]}" --precision fp32 --batch_size 16 --overlap 0
run1 small-1x2 "${small[@]}" --precision fp32 --batch_size 8
run2 small-2x1-overlap "${small[@]}" --precision fp32 --batch_size 4 --overlap 1
run2 small-2x1-no-overlap "${small[@]}" --precision fp32 --batch_size 4 --overlap 0
run2 small-bf16-zero0 "${small[@]}" --precision bf16 --batch_size 4 --zero 0
run2 small-bf16-zero1 "${small[@]}" --precision bf16 --batch_size 4 --zero 1
