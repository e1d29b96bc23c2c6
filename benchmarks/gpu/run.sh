#!/usr/bin/env bash
# The GPU check, run on the GPU machine from the repository root with the bundle that
# benchmarks/gpu/bundle.sh built elsewhere (CUDA 13 and PyTorch there; no internet, no
# Eigen/GoogleTest/Google Benchmark). One run must either pass or say what broke and where.
#
# Usage: benchmarks/gpu/run.sh [bundle dir, default gpu-bundle] [batch, default 64]
#
# Stages, in order, each with a timeout (seconds, environment variables) and each bounded by
# what is left of TOTAL_BUDGET (520), so that the whole run stays under 9 minutes:
#   loader    ldd on every binary; any library "not found" is printed before anything runs
#   tests     test_cuda, one process per test suite (LIST_TIMEOUT 20 to list the suites,
#             SUITE_TIMEOUT 60 per suite, TESTS_BUDGET 150 for all suites and reruns); a failing
#             suite is rerun once with CUDA_LAUNCH_BLOCKING=1 and that rerun's error lines shown,
#             so that an asynchronous fault is reported at the kernel that caused it (a suite
#             that timed out, or failed for want of a usable GPU, is not rerun)
#   nccl      nccl_check: NCCL collectives and ZeRO-1 training, one process per GPU present (each
#             a world of one: the machine has no MPI launcher), all at once (NCCL_TIMEOUT 40)
#   gpt2      bench_gpt2 --batch B: tokens/s, MFU, the loss check (BENCH_TIMEOUT 90)
#   pytorch   torch_gpt2.py: eager first, then torch.compile in what is left (TORCH_TIMEOUT 130);
#             the eager figure stands when compiling does not finish
#   heads     bench_gpu_heads (HEADS_TIMEOUT 60)
#   mixers    bench_gpu_afno (MIXERS_TIMEOUT 40)
#   sanitizer compute-sanitizer, when on the machine, with the budget left: memcheck over the
#             suites matching MEMCHECK_SUITES (extended regex, default 'Ops|Device'), then
#             racecheck over RACECHECK_SUITES (default 'Ops/fp32$': the op suites exercise every
#             kernel that uses shared memory, and the other storage types share that code);
#             SANITIZER_TIMEOUT 90 per suite, none started with under SANITIZER_MIN 20 s left
#
# The test processes get LIGHTGPT_REQUIRE_GPU=1 (no usable GPU is a failure naming the runtime's
# error, not a skip), LIGHTGPT_POISON_ALLOCATIONS=1 (new device allocations filled with 0xFF
# bytes) and OMP_WAIT_POLICY=PASSIVE (the CPU reference's threads would spin otherwise).
# The loader path is the bundle's lib/, then LD_LIBRARY_PATH as given, then whichever exist of
# /usr/local/cuda/lib64, /usr/local/cuda/targets/x86_64-linux/lib, /usr/local/cuda-*/lib64 and
# PyTorch's bundled NVIDIA libraries (site-packages/nvidia/*/lib).
#
# Output: each stage appends its result lines to stdout and to SUMMARY (default
# $OUT/summary.txt, else <log dir>/summary.txt) as soon as it ends, so a stage that times out
# loses only itself; the whole summary is printed again at the end. Logs go to LOG_DIR (default
# $OUT when set, else <bundle>/logs). Other variables: PYTHON (default python3), SANITIZER
# (compute-sanitizer's path, found on PATH or under /usr/local/cuda* by default).
# Exit status: 0 when every stage passed, 1 when one failed or timed out, 2 without a bundle.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUNDLE=${1:-$ROOT/gpu-bundle}
BATCH=${2:-64}
LOG_DIR=${LOG_DIR:-${OUT:-$BUNDLE/logs}}
SUMMARY=${SUMMARY:-${OUT:-$LOG_DIR}/summary.txt}
PYTHON=${PYTHON:-python3}
TOTAL_BUDGET=${TOTAL_BUDGET:-520}
LIST_TIMEOUT=${LIST_TIMEOUT:-20}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-60}
TESTS_BUDGET=${TESTS_BUDGET:-150}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-90}
TORCH_TIMEOUT=${TORCH_TIMEOUT:-130}
HEADS_TIMEOUT=${HEADS_TIMEOUT:-60}
NCCL_TIMEOUT=${NCCL_TIMEOUT:-40}
MIXERS_TIMEOUT=${MIXERS_TIMEOUT:-40}
SANITIZER_TIMEOUT=${SANITIZER_TIMEOUT:-90}
SANITIZER_MIN=${SANITIZER_MIN:-20}
MEMCHECK_SUITES=${MEMCHECK_SUITES:-Ops|Device}
RACECHECK_SUITES=${RACECHECK_SUITES:-Ops/fp32$}
BINARIES="test_cuda nccl_check bench_gpt2 bench_gpu_heads bench_gpu_afno"
SECONDS=0
FAILED_STAGES=""

mkdir -p "$LOG_DIR" "$(dirname "$SUMMARY")"
: >"$SUMMARY"

# ---- helpers ---------------------------------------------------------------------------------
# A summary line: to stdout and appended to the summary file at once.
say() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }
row() { say "$(printf '  %-46s %s' "$1" "$2")"; }
stage() { printf '\n== %s\n' "$*"; }
fail_stage() { FAILED_STAGES="$FAILED_STAGES $1"; }
# Seconds a stage may run: its own timeout, cut to what is left of the total budget and of an
# optional deadline (in $SECONDS). 0 when nothing is left.
limit() {
  local t=$1 left=$((TOTAL_BUDGET - SECONDS))
  [ "$left" -lt "$t" ] && t=$left
  if [ $# -ge 2 ] && [ $(($2 - SECONDS)) -lt "$t" ]; then t=$(($2 - SECONDS)); fi
  [ "$t" -lt 0 ] && t=0
  echo "$t"
}
# run_logged SECONDS LOG COMMAND...: runs the command under a timeout, output to LOG; returns
# its exit status (124 or 137 when it timed out).
run_logged() {
  local t=$1 log=$2
  shift 2
  timeout -k 5 "$t" "$@" >"$log" 2>&1
}
timed_out() { [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; }
# The value of `RESULT key=value` in a log (the last one), or empty.
value() { grep -h "^RESULT $2=" "$1" 2>/dev/null | tail -1 | cut -d= -f2-; }
or_na() { if [ -n "$1" ]; then echo "$1"; else echo "n/a"; fi; }
# The exit status in words.
status_word() {
  if [ "$1" -eq 0 ]; then
    echo "PASS"
  elif timed_out "$1"; then
    echo "TIMEOUT after $2 s"
  elif [ "$1" -gt 128 ]; then
    echo "FAIL (killed by signal $(($1 - 128)))"
  else
    echo "FAIL (exit $1)"
  fi
}
# The environment of every test process.
test_env() {
  env LIGHTGPT_REQUIRE_GPU=1 LIGHTGPT_POISON_ALLOCATIONS=1 OMP_WAIT_POLICY=PASSIVE "$@"
}

if [ ! -x "$BUNDLE/test_cuda" ] || [ ! -x "$BUNDLE/bench_gpt2" ]; then
  say "no bundle in $BUNDLE: run benchmarks/gpu/bundle.sh on a machine with nvcc first"
  exit 2
fi

say "================================ GPU check ================================"
say "started: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname 2>/dev/null || echo unknown)"
while IFS= read -r line; do say "bundle: $line"; done <"$BUNDLE/MANIFEST" 2>/dev/null

# ---- loader ----------------------------------------------------------------------------------
stage "loader: library folders and ldd"
library_path="$BUNDLE/lib"
[ -n "${LD_LIBRARY_PATH:-}" ] && library_path="$library_path:$LD_LIBRARY_PATH"
add_folder() { [ -d "$1" ] && case ":$library_path:" in *":$1:"*) ;; *) library_path="$library_path:$1" ;; esac; }
add_folder /usr/local/cuda/lib64
add_folder /usr/local/cuda/targets/x86_64-linux/lib
for folder in $(printf '%s\n' /usr/local/cuda-*/lib64 | sort -rV); do add_folder "$folder"; done
torch_site=""
if command -v "$PYTHON" >/dev/null 2>&1; then
  # Where torch is installed, without importing it (seconds saved).
  torch_site=$(timeout 30 "$PYTHON" -c 'import importlib.util, os
spec = importlib.util.find_spec("torch")
print(os.path.dirname(os.path.dirname(spec.origin)) if spec and spec.origin else "")' \
    2>/dev/null | tail -1)
  for folder in "$torch_site"/nvidia/*/lib; do
    [ -n "$torch_site" ] && add_folder "$folder"
  done
fi
export LD_LIBRARY_PATH="$library_path"
say "[loader] LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
missing=0
for file in $BINARIES; do
  [ -e "$BUNDLE/$file" ] || {
    say "[loader] $file: not in the bundle"
    missing=1
    continue
  }
  ldd "$BUNDLE/$file" >"$LOG_DIR/ldd_$file.log" 2>&1
  if grep -q "not a dynamic executable" "$LOG_DIR/ldd_$file.log"; then
    say "[loader] $file: not a dynamic executable (nothing to resolve)"
    continue
  fi
  while read -r line; do
    say "[loader] $file: MISSING $line"
    missing=1
  done < <(grep "not found" "$LOG_DIR/ldd_$file.log")
  cudart=$(grep -o "libcudart[^ ]* => [^ ]*" "$LOG_DIR/ldd_$file.log" | head -1)
  [ -n "$cudart" ] && say "[loader] $file: $cudart"
done
if [ "$missing" -eq 0 ]; then
  say "[loader] PASS: every library found"
else
  say "[loader] FAIL: libraries not found (above); the stages below that need them will fail"
  fail_stage loader
fi
gpu=$(timeout 15 nvidia-smi --query-gpu=name,driver_version,memory.total \
  --format=csv,noheader 2>&1 | head -1)
say "[gpu] nvidia-smi: $(or_na "$gpu")"

# ---- tests -----------------------------------------------------------------------------------
stage "tests: test_cuda, one process per suite"
tests_deadline=$((SECONDS + TESTS_BUDGET))
list_log="$LOG_DIR/test_cuda_list.log"
t=$(limit "$LIST_TIMEOUT")
test_env timeout -k 5 "$t" "$BUNDLE/test_cuda" --gtest_list_tests >"$list_log" 2>&1
list_rc=$?
# Suites are the unindented lines ending in '.', e.g. "CudaDevice." or, for typed suites,
# "CudaOps/fp32.  # TypeParam = float"; "Running main() from ..." is not one.
suites=$(awk '/^[^ ]/ && $1 ~ /\.$/ { print substr($1, 1, length($1) - 1) }' "$list_log")
n_pass=0 n_fail=0 n_timeout=0 n_skip=0 n_notrun=0
if [ "$list_rc" -ne 0 ] || [ -z "$suites" ]; then
  say "[tests] FAIL: could not list the test suites ($(status_word "$list_rc" "$t")):"
  tail -n 8 "$list_log" | sed 's/^/    | /' | tee -a "$SUMMARY"
  fail_stage tests
else
  for suite in $suites; do
    name=${suite//\//_}
    log="$LOG_DIR/suite_$name.log"
    t=$(limit "$SUITE_TIMEOUT" "$tests_deadline")
    if [ "$t" -le 0 ]; then
      say "$(printf '[tests] %-28s NOT RUN (test budget of %s s spent)' "$suite" "$TESTS_BUDGET")"
      n_notrun=$((n_notrun + 1))
      continue
    fi
    start=$SECONDS
    test_env timeout -k 5 "$t" "$BUNDLE/test_cuda" --gtest_filter="$suite.*" >"$log" 2>&1
    rc=$?
    took=$((SECONDS - start))
    ran=$(grep -o "^\[==========\] [0-9]* tests\? from" "$log" | tail -1 | grep -o "[0-9]*")
    skipped=$(grep -o "^\[  SKIPPED \] [0-9]* test" "$log" | head -1 | grep -o "[0-9]*")
    if [ "$rc" -eq 0 ]; then
      if [ -n "$skipped" ] && [ "$skipped" = "$ran" ]; then
        say "$(printf '[tests] %-28s SKIPPED (all %s tests)' "$suite" "$skipped")"
        n_skip=$((n_skip + 1))
      else
        say "$(printf '[tests] %-28s PASS (%s tests%s, %s s)' "$suite" "${ran:-?}" \
          "${skipped:+, $skipped skipped}" "$took")"
        n_pass=$((n_pass + 1))
      fi
      continue
    fi
    if timed_out "$rc"; then
      say "$(printf '[tests] %-28s TIMEOUT after %s s (not rerun)' "$suite" "$t")"
      tail -n 5 "$log" | sed 's/^/    | /' | tee -a "$SUMMARY"
      n_timeout=$((n_timeout + 1))
      continue
    fi
    n_fail=$((n_fail + 1))
    failing=$(grep "^\[  FAILED  \] $suite\." "$log" | sed 's/^\[  FAILED  \] //; s/[ ,].*//' |
      sort -u | head -6 | tr '\n' ' ')
    say "$(printf '[tests] %-28s %s in %s s: %s' "$suite" "$(status_word "$rc" "$t")" \
      "$took" "${failing:-no gtest failure line (crashed?)}")"
    # No usable GPU (LIGHTGPT_REQUIRE_GPU): the runtime's error says it all; a rerun cannot help.
    no_gpu=$(grep -m 1 "no usable GPU" "$log")
    if [ -n "$no_gpu" ]; then
      say "    | $no_gpu"
      continue
    fi
    # Once more with synchronous launches: the error surfaces at the kernel that caused it.
    t=$(limit "$SUITE_TIMEOUT" "$tests_deadline")
    if [ "$t" -le 0 ]; then
      say "    rerun with CUDA_LAUNCH_BLOCKING=1: NOT RUN (test budget spent)"
      continue
    fi
    blocking_log="$LOG_DIR/suite_$name.blocking.log"
    test_env CUDA_LAUNCH_BLOCKING=1 timeout -k 5 "$t" "$BUNDLE/test_cuda" \
      --gtest_filter="$suite.*" >"$blocking_log" 2>&1
    rerun_rc=$?
    verdict=$(status_word "$rerun_rc" "$t")
    [ "$rerun_rc" -eq 0 ] && verdict="PASS (fails only with asynchronous launches: a race?)"
    # Its error lines (the CUDA error, gtest's failure messages), else its last lines.
    errors=$(grep -v "^\[" "$blocking_log" |
      grep -iE "error|illegal|fault|failure|exception|terminate|abort|unspecified" | head -n 8)
    if [ -n "$errors" ]; then
      say "    rerun with CUDA_LAUNCH_BLOCKING=1: $verdict; its errors:"
      while IFS= read -r line; do say "    | $line"; done <<<"$errors"
    else
      say "    rerun with CUDA_LAUNCH_BLOCKING=1: $verdict; its last lines:"
      tail -n 8 "$blocking_log" | sed 's/^/    | /' | tee -a "$SUMMARY"
    fi
    echo "---- tail of $blocking_log"
    tail -n 40 "$blocking_log"
  done
  say "[tests] $n_pass passed, $n_fail failed, $n_timeout timed out, $n_skip skipped, $n_notrun" \
    "not run (of $(echo "$suites" | wc -w) suites; LIGHTGPT_REQUIRE_GPU=1)"
  [ $((n_fail + n_timeout + n_notrun)) -gt 0 ] && fail_stage tests
fi

# ---- NCCL ------------------------------------------------------------------------------------
stage "nccl: NCCL collectives and ZeRO-1 training, one process per GPU"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU " || true)
[ "${gpus:-0}" -gt 0 ] || gpus=1
t=$(limit "$NCCL_TIMEOUT")
pids=""
for ((gpu = 0; gpu < gpus; gpu++)); do
  run_logged "$t" "$LOG_DIR/nccl_check_$gpu.log" \
    env CUDA_VISIBLE_DEVICES="$gpu" "$BUNDLE/nccl_check" &
  pids="$pids $!"
done
gpu=0
nccl_failed=0
for pid in $pids; do
  wait "$pid"
  rc=$?
  log="$LOG_DIR/nccl_check_$gpu.log"
  cat "$log"
  say "[nccl] GPU $gpu: $(status_word "$rc" "$t")"
  if [ "$rc" -ne 0 ]; then
    nccl_failed=1
    tail -n 5 "$log" | sed 's/^/    | /' | tee -a "$SUMMARY"
  fi
  gpu=$((gpu + 1))
done
[ "$nccl_failed" -ne 0 ] && fail_stage nccl

# ---- GPT-2 benchmark -------------------------------------------------------------------------
stage "gpt2: GPT-2 small, bf16, lightgpt"
log="$LOG_DIR/bench_gpt2.log"
t=$(limit "$BENCH_TIMEOUT")
run_logged "$t" "$log" "$BUNDLE/bench_gpt2" --batch "$BATCH"
rc=$?
cat "$log"
say "[gpt2] bench_gpt2 --batch $BATCH: $(status_word "$rc" "$t")"
[ "$rc" -ne 0 ] && fail_stage gpt2 && tail -n 5 "$log" | sed 's/^/    | /' | tee -a "$SUMMARY"
row "GPU" "$(or_na "$(value "$log" gpu)")"
row "batch x T" "$(or_na "$(value "$log" batch)") x 1024"
row "loss: first step / last step (ln V = 10.825)" \
  "$(or_na "$(value "$log" loss_init)") / $(or_na "$(value "$log" loss_last)")"
row "loss check" "$(or_na "$(value "$log" loss_check)")"
row "step (ms)" "$(or_na "$(value "$log" step_ms)")"
row "tokens/s" "$(or_na "$(value "$log" tokens_per_s)")"
row "model TFLOP/s" "$(or_na "$(value "$log" model_tflops)")"
row "MFU vs 989 TFLOP/s bf16 datasheet peak" "$(or_na "$(value "$log" mfu_peak)")"
row "cuBLASLt at the model's shapes (TFLOP/s)" "$(or_na "$(value "$log" gemm_tflops)")"
row "MFU vs measured cuBLASLt rate" "$(or_na "$(value "$log" mfu_gemm)")"
row "time: GEMM / attention (ms)" \
  "$(or_na "$(value "$log" time_gemm_ms)") / $(or_na "$(value "$log" time_attention_ms)")"
row "time: elementwise / optimizer / other (ms)" \
  "$(or_na "$(value "$log" time_elementwise_ms)") / $(or_na "$(value "$log" \
    time_optimizer_ms)") / $(or_na "$(value "$log" time_other_ms)")"
lightgpt_tokens=$(value "$log" tokens_per_s)

# ---- PyTorch ---------------------------------------------------------------------------------
stage "pytorch: GPT-2 small, bf16, eager then compiled"
log="$LOG_DIR/torch_gpt2.log"
if [ -z "$torch_site" ]; then
  echo "no PyTorch" >"$log"
  say "[pytorch] not run: no PyTorch for $PYTHON"
else
  t=$(limit "$TORCH_TIMEOUT")
  # -u: every RESULT line reaches the log at once, so a kill during compilation keeps eager's.
  run_logged "$t" "$log" "$PYTHON" -u "$ROOT/benchmarks/gpu/torch_gpt2.py" --batch "$BATCH"
  rc=$?
  tail -n 30 "$log"
  if [ -n "$(value "$log" torch_eager_tokens_per_s)" ]; then
    if [ -n "$(value "$log" torch_compiled_tokens_per_s)" ]; then
      say "[pytorch] PASS: eager and compiled timed ($(status_word "$rc" "$t"))"
    elif timed_out "$rc"; then
      say "[pytorch] eager only: torch.compile did not finish within the stage's $t s"
    else
      say "[pytorch] eager only: compiled $(or_na "$(value "$log" torch_compiled)")" \
        "($(status_word "$rc" "$t"))"
    fi
  else
    say "[pytorch] FAIL: no eager figure ($(status_word "$rc" "$t"))"
    tail -n 8 "$log" | sed 's/^/    | /' | tee -a "$SUMMARY"
    fail_stage pytorch
  fi
  best=""
  for mode in eager compiled; do
    tokens=$(value "$log" "torch_${mode}_tokens_per_s")
    [ -z "$tokens" ] && continue
    best=$tokens best_mode=$mode
    row "PyTorch $mode (batch $(value "$log" "torch_${mode}_batch")) step (ms)" \
      "$(value "$log" "torch_${mode}_step_ms")"
    row "PyTorch $mode tokens/s" "$tokens"
    row "PyTorch $mode MFU vs 989 TFLOP/s" "$(value "$log" "torch_${mode}_mfu_peak")"
  done
  if [ -n "$best" ] && [ -n "$lightgpt_tokens" ]; then
    row "lightgpt / PyTorch $best_mode tokens/s" \
      "$(awk -v a="$lightgpt_tokens" -v b="$best" 'BEGIN { printf "%.2f", a / b }')"
  fi
fi

# ---- heads -----------------------------------------------------------------------------------
stage "heads: dense vs LightRNN, MTP<2>, CoCoNT (GPT-2 small, bf16, T 1024)"
log="$LOG_DIR/bench_gpu_heads.log"
t=$(limit "$HEADS_TIMEOUT")
run_logged "$t" "$log" "$BUNDLE/bench_gpu_heads"
rc=$?
cat "$log"
say "[heads] bench_gpu_heads: $(status_word "$rc" "$t")"
[ "$rc" -ne 0 ] && fail_stage heads && tail -n 5 "$log" | sed 's/^/    | /' | tee -a "$SUMMARY"
row "step ms: dense / LightRNN (batch $(or_na "$(value "$log" heads_batch)"))" \
  "$(or_na "$(value "$log" step_ms_dense)") / $(or_na "$(value "$log" step_ms_lightrnn)")"
row "LightRNN speed-up / FLOP bound / share" "$(or_na "$(value "$log" speedup_lightrnn)") /\
 $(or_na "$(value "$log" flop_ratio_bound)") / $(or_na "$(value "$log" speedup_of_bound)")"
row "MTP<2> / CoCoNT step overhead" \
  "$(or_na "$(value "$log" mtp2_overhead)") / $(or_na "$(value "$log" cocont_overhead)")"
row "device MiB: dense / LightRNN / MTP<2>" "$(or_na "$(value "$log" mem_mib_dense)") /\
 $(or_na "$(value "$log" mem_mib_lightrnn)") / $(or_na "$(value "$log" mem_mib_lightrnn_mtp2)")"

# ---- mixers ----------------------------------------------------------------------------------
stage "mixers: AfnoMixer<8> vs attention, one layer, C 768, bf16"
log="$LOG_DIR/bench_gpu_afno.log"
t=$(limit "$MIXERS_TIMEOUT")
run_logged "$t" "$log" "$BUNDLE/bench_gpu_afno"
rc=$?
cat "$log"
say "[mixers] bench_gpu_afno: $(status_word "$rc" "$t")"
[ "$rc" -ne 0 ] && fail_stage mixers && tail -n 5 "$log" | sed 's/^/    | /' | tee -a "$SUMMARY"
for T in 1024 2048 4096 8192 16384; do
  row "AFNO / attention ms, T $T" "$(or_na "$(value "$log" "mixer_afno_ms_T$T")") /\
 $(or_na "$(value "$log" "mixer_attention_ms_T$T")")"
done
row "AFNO-attention crossover T" "$(or_na "$(value "$log" mixer_crossover_T)")"

# ---- sanitizers ------------------------------------------------------------------------------
stage "sanitizer: compute-sanitizer memcheck and racecheck"
sanitizer=${SANITIZER:-$(command -v compute-sanitizer 2>/dev/null)}
if [ -z "$sanitizer" ]; then
  for candidate in /usr/local/cuda/bin/compute-sanitizer \
    $(printf '%s\n' /usr/local/cuda-*/bin/compute-sanitizer | sort -rV); do
    [ -x "$candidate" ] && sanitizer=$candidate && break
  done
fi
if [ -z "$sanitizer" ] || [ ! -x "$sanitizer" ]; then
  say "[sanitizer] not run: no compute-sanitizer on this machine"
elif [ -z "$suites" ]; then
  say "[sanitizer] not run: no test suites listed"
else
  for tool in memcheck racecheck; do
    pattern=$MEMCHECK_SUITES
    [ "$tool" = racecheck ] && pattern=$RACECHECK_SUITES
    for suite in $(echo "$suites" | grep -E "$pattern"); do
      if [ $((TOTAL_BUDGET - SECONDS)) -lt "$SANITIZER_MIN" ]; then
        say "$(printf '[sanitizer] %-9s %-28s NOT RUN (budget spent)' "$tool" "$suite")"
        continue
      fi
      t=$(limit "$SANITIZER_TIMEOUT")
      log="$LOG_DIR/${tool}_${suite//\//_}.log"
      test_env timeout -k 5 "$t" "$sanitizer" --tool "$tool" --error-exitcode 99 \
        --print-limit 20 "$BUNDLE/test_cuda" --gtest_filter="$suite.*" >"$log" 2>&1
      rc=$?
      report=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -1 | sed 's/^=* *//')
      case $rc in
        0) verdict="PASS" ;;
        99) verdict="FAIL: the tool found errors" ;;
        1) verdict="FAIL: the tests failed under the tool (exit 1)" ;;
        *) verdict=$(status_word "$rc" "$t") ;;
      esac
      say "$(printf '[sanitizer] %-9s %-28s %s%s' "$tool" "$suite" "$verdict" \
        "${report:+ ($report)}")"
      if [ "$rc" -ne 0 ]; then
        fail_stage "$tool:$suite"
        grep -v SUMMARY "$log" |
          grep -m 6 -E "^=+ +(Invalid|Program hit|Race|Error|ERROR|Warning)|at .* in " |
          sed 's/^/    | /' | tee -a "$SUMMARY"
      fi
    done
  done
fi

# ---- verdict ---------------------------------------------------------------------------------
if [ -z "$FAILED_STAGES" ]; then
  say "VERDICT: PASS (${SECONDS} s)"
else
  say "VERDICT: FAIL:${FAILED_STAGES} (${SECONDS} s)"
fi
echo
echo "================================ summary ($SUMMARY)"
cat "$SUMMARY"
[ -z "$FAILED_STAGES" ]
