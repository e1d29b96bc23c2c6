#!/usr/bin/env bash
# The GPU check, run on the GPU machine from the repository root (CUDA 13 and PyTorch there; no
# internet, no Eigen/GoogleTest/Google Benchmark): runs the CUDA tests and the GPT-2 benchmark
# from the bundle that bundle.sh built elsewhere, times a compiled PyTorch GPT-2 step of the same
# shapes, compares the heads (dense, LightRNN, MTP<2>, CoCoNT) and the mixers (AFNO vs attention,
# T = 1024 … 16384), and prints a summary table last. Logs go to $LOG_DIR (default: $OUT when
# set, else <bundle>/logs). Usage: benchmarks/gpu/run.sh [bundle dir] [batch]. Each stage has a
# timeout (TEST_TIMEOUT 200 s, BENCH_TIMEOUT 100 s, TORCH_TIMEOUT 120 s, HEADS_TIMEOUT 90 s,
# MIXERS_TIMEOUT 60 s) so the whole stays under 10 min.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUNDLE=${1:-$ROOT/gpu-bundle}
BATCH=${2:-64}
LOG_DIR=${LOG_DIR:-${OUT:-$BUNDLE/logs}}
mkdir -p "$LOG_DIR"
export LD_LIBRARY_PATH="$BUNDLE/lib:${LD_LIBRARY_PATH:-}"

if [ ! -x "$BUNDLE/test_cuda" ] || [ ! -x "$BUNDLE/bench_gpt2" ]; then
  echo "no bundle in $BUNDLE: run benchmarks/gpu/bundle.sh on a machine with nvcc first" >&2
  exit 2
fi
cat "$BUNDLE/MANIFEST" 2>/dev/null
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1

echo "== CUDA tests"
timeout "${TEST_TIMEOUT:-200}" "$BUNDLE/test_cuda" --gtest_brief=1 \
  --gtest_output="xml:$LOG_DIR/test_cuda.xml" >"$LOG_DIR/test_cuda.log" 2>&1
tests_rc=$?
tail -n 80 "$LOG_DIR/test_cuda.log"

echo "== GPT-2 small, bf16, lightgpt"
timeout "${BENCH_TIMEOUT:-100}" "$BUNDLE/bench_gpt2" --batch "$BATCH" 2>&1 |
  tee "$LOG_DIR/bench_gpt2.log"

echo "== GPT-2 small, bf16, PyTorch"
if command -v python3 >/dev/null && python3 -c "import torch" 2>/dev/null; then
  timeout "${TORCH_TIMEOUT:-120}" python3 "$ROOT/benchmarks/gpu/torch_gpt2.py" \
    --batch "$BATCH" 2>&1 |
    tee "$LOG_DIR/torch_gpt2.log" | tail -20
else
  echo "no PyTorch" | tee "$LOG_DIR/torch_gpt2.log"
fi

echo "== Heads: dense vs LightRNN, MTP<2>, CoCoNT (GPT-2 small, bf16, T 1024)"
timeout "${HEADS_TIMEOUT:-90}" "$BUNDLE/bench_gpu_heads" 2>&1 | tee "$LOG_DIR/bench_gpu_heads.log"

echo "== Mixers: AfnoMixer<8> vs attention, one layer, C 768, bf16"
timeout "${MIXERS_TIMEOUT:-60}" "$BUNDLE/bench_gpu_afno" 2>&1 | tee "$LOG_DIR/bench_gpu_afno.log"

# Summary (last): counts from gtest's closing lines, figures from the RESULT lines.
value() { grep -h "^RESULT $1=" "$LOG_DIR"/*.log 2>/dev/null | tail -1 | cut -d= -f2-; }
count() {
  local n
  n=$(grep -h "^\[  $1 *\] [0-9]* test" "$LOG_DIR/test_cuda.log" | head -1 |
    grep -o "[0-9]*" | head -1)
  echo "${n:-0}"
}
passed=$(count PASSED); failed=$(count FAILED); skipped=$(count SKIPPED)
echo
echo "================================ summary ================================"
printf "%-44s %s\n" "GPU" "$(value gpu)"
printf "%-44s %s\n" "CUDA tests (passed / failed / skipped)" \
  "$passed / $failed / $skipped  (exit $tests_rc)"
printf "%-44s %s\n" "lightgpt batch x T" "$(value batch) x 1024"
printf "%-44s %s\n" "lightgpt step (ms)" "$(value step_ms)"
printf "%-44s %s\n" "lightgpt tokens/s" "$(value tokens_per_s)"
printf "%-44s %s\n" "lightgpt model TFLOP/s" "$(value model_tflops)"
printf "%-44s %s\n" "lightgpt MFU vs 989 TFLOP/s bf16 peak" "$(value mfu_peak)"
printf "%-44s %s\n" "cuBLASLt at the model's shapes (TFLOP/s)" "$(value gemm_tflops)"
printf "%-44s %s\n" "lightgpt MFU vs measured cuBLASLt rate" "$(value mfu_gemm)"
printf "%-44s %s\n" "time: GEMM / attention (ms)" \
  "$(value time_gemm_ms) / $(value time_attention_ms)"
printf "%-44s %s\n" "time: elementwise / optimizer / other (ms)" \
  "$(value time_elementwise_ms) / $(value time_optimizer_ms) / $(value time_other_ms)"
printf "%-44s %s\n" "PyTorch ($(value torch_mode)) step (ms)" "$(value torch_step_ms)"
printf "%-44s %s\n" "PyTorch tokens/s" "$(value torch_tokens_per_s)"
printf "%-44s %s\n" "PyTorch MFU vs 989 TFLOP/s" "$(value torch_mfu_peak)"
printf "%-44s %s\n" "step ms: dense / LightRNN (batch $(value heads_batch))" \
  "$(value step_ms_dense) / $(value step_ms_lightrnn)"
printf "%-44s %s\n" "LightRNN speed-up / FLOP bound / share" \
  "$(value speedup_lightrnn) / $(value flop_ratio_bound) / $(value speedup_of_bound)"
printf "%-44s %s\n" "MTP<2> / CoCoNT step overhead" \
  "$(value mtp2_overhead) / $(value cocont_overhead)"
printf "%-44s %s\n" "device MiB: dense / LightRNN / MTP<2>" \
  "$(value mem_mib_dense) / $(value mem_mib_lightrnn) / $(value mem_mib_lightrnn_mtp2)"
for T in 1024 2048 4096 8192 16384; do
  printf "%-44s %s\n" "AFNO / attention ms, T $T" \
    "$(value mixer_afno_ms_T$T) / $(value mixer_attention_ms_T$T)"
done
printf "%-44s %s\n" "AFNO-attention crossover T" "$(value mixer_crossover_T)"
echo "========================================================================="
