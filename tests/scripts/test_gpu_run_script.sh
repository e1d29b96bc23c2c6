#!/usr/bin/env bash
# Checks benchmarks/gpu/run.sh (the GPU check) without a GPU: builds a fake bundle of shell-script
# stubs named like the real binaries (test_cuda mimics gtest's --gtest_list_tests and result
# output; the benchmarks print RESULT lines), puts fake ldd, python and compute-sanitizer in
# front of them, runs run.sh with short timeouts and asserts what its summary must say:
#   - a library that ldd reports "not found" is printed before any test runs, and ldd's
#     "not a dynamic executable" (the stubs are scripts) is tolerated;
#   - each test suite runs in its own process and gets a PASS / FAIL / TIMEOUT line; a failing
#     suite is rerun once with CUDA_LAUNCH_BLOCKING=1 and that rerun's error (naming the kernel)
#     is shown; a suite that hangs is reported as timed out and the later suites still run; a
#     suite that fails for want of a usable GPU shows the runtime's error and is not rerun;
#   - the test processes get LIGHTGPT_REQUIRE_GPU=1, LIGHTGPT_POISON_ALLOCATIONS=1 and
#     OMP_WAIT_POLICY=PASSIVE, and the loader path starts with the bundle's lib/ and includes
#     PyTorch's NVIDIA library folders;
#   - bench_gpt2's loss and figures reach the summary; PyTorch's eager figure stands when
#     compiling runs past its timeout; a hanging benchmark times out and the next stage runs;
#   - compute-sanitizer runs memcheck and racecheck over the selected suites only;
#   - $OUT/summary.txt holds every stage, the verdict is FAIL and the exit status 1; and with
#     every stub healthy, the verdict is PASS and the exit status 0.
# Also runs bash -n, and shellcheck when installed, on run.sh and bundle.sh.
# Usage: test_gpu_run_script.sh [repository root]
set -u
ROOT=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
RUN=$ROOT/benchmarks/gpu/run.sh
BUNDLE_SCRIPT=$ROOT/benchmarks/gpu/bundle.sh
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

for script in "$RUN" "$BUNDLE_SCRIPT"; do
  bash -n "$script" || fail "bash -n $script"
  if command -v shellcheck >/dev/null 2>&1; then
    shellcheck "$script" || fail "shellcheck $script"
  else
    echo "shellcheck not installed: skipped for $script"
  fi
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
REAL_LDD=$(command -v ldd || echo /usr/bin/ldd)
mkdir -p "$WORK/bundle/lib" "$WORK/bin" "$WORK/site/nvidia/cu13/lib"
echo "lightgpt GPU bundle (fake, for the script test)" >"$WORK/bundle/MANIFEST"

# test_cuda: five suites. CudaDevice passes; CudaOps/fp32 fails, and under CUDA_LAUNCH_BLOCKING=1
# names the kernel; CudaModel/bf16 fails only with asynchronous launches; CudaHang/0 hangs;
# CudaNoGpu fails as LIGHTGPT_REQUIRE_GPU makes a test fail without a usable GPU (not rerun).
# STUB_HEALTHY=1 makes every suite pass at once.
cat >"$WORK/bundle/test_cuda" <<'EOF'
#!/usr/bin/env bash
echo "REQUIRE_GPU=${LIGHTGPT_REQUIRE_GPU:-} POISON=${LIGHTGPT_POISON_ALLOCATIONS:-}" \
  "OMP=${OMP_WAIT_POLICY:-} BLOCKING=${CUDA_LAUNCH_BLOCKING:-} LD=${LD_LIBRARY_PATH:-}" \
  "ARGS=$*" >>"$STUB_RECORD"
echo "Running main() from gtest_main.cc"
if [ "${1:-}" = --gtest_list_tests ]; then
  printf 'CudaDevice.\n  Available\n  Streams\n'
  printf 'CudaOps/fp32.  # TypeParam = float\n  Matmul\n  Attention\n'
  printf 'CudaModel/bf16.  # TypeParam = lightgpt::Bf16\n  Step\n'
  printf 'CudaHang/0.  # TypeParam = float\n  Forever\n'
  printf 'CudaNoGpu.\n  Anything\n'
  exit 0
fi
suite=${1#--gtest_filter=}
suite=${suite%.\*}
pass() {
  echo "[==========] Running $1 tests from 1 test suite."
  echo "[  PASSED  ] $1 tests."
  echo "[==========] $1 tests from 1 test suite ran. (5 ms total)"
  exit 0
}
[ "${STUB_HEALTHY:-0}" = 1 ] && pass 1
case $suite in
  CudaDevice) pass 2 ;;
  CudaOps/fp32)
    echo "[ RUN      ] CudaOps/fp32.Attention"
    if [ "${CUDA_LAUNCH_BLOCKING:-0}" = 1 ]; then
      echo "lightgpt CUDA error: an illegal memory access was encountered after kernel" \
        "attention_softmax_kernel"
    else
      echo "lightgpt CUDA error: an illegal memory access was encountered in cudaMemcpy"
    fi
    echo "[  FAILED  ] CudaOps/fp32.Attention, where TypeParam = float (3 ms)"
    echo "[==========] 2 tests from 1 test suite ran. (5 ms total)"
    echo "[  PASSED  ] 1 test."
    echo "[  FAILED  ] 1 test, listed below:"
    echo "[  FAILED  ] CudaOps/fp32.Attention, where TypeParam = float"
    exit 1
    ;;
  CudaModel/bf16)
    [ "${CUDA_LAUNCH_BLOCKING:-0}" = 1 ] && pass 1
    echo "[  FAILED  ] CudaModel/bf16.Step, where TypeParam = lightgpt::Bf16 (9 ms)"
    echo "[  FAILED  ] 1 test, listed below:"
    echo "[  FAILED  ] CudaModel/bf16.Step, where TypeParam = lightgpt::Bf16"
    exit 1
    ;;
  CudaHang/0)
    echo "[ RUN      ] CudaHang/0.Forever"
    sleep 60
    ;;
  CudaNoGpu)
    echo "no usable GPU and LIGHTGPT_REQUIRE_GPU is set: cudaGetDeviceCount failed:" \
      "cudaErrorNoDevice (no CUDA-capable device is detected)"
    echo "[  FAILED  ] CudaNoGpu.Anything (0 ms)"
    exit 1
    ;;
esac
EOF

cat >"$WORK/bundle/bench_gpt2" <<'EOF'
#!/usr/bin/env bash
echo "ARGS=$*" >>"$STUB_RECORD.bench"
echo "RESULT gpu=Fake H200"
echo "RESULT batch=8"
echo "RESULT loss_init=10.9312"
echo "RESULT loss_last=10.7011"
echo "RESULT loss_check=ok"
echo "RESULT step_ms=123.45"
echo "RESULT tokens_per_s=66357"
echo "RESULT mfu_peak=0.512"
echo "RESULT gemm_tflops=700.1"
echo "RESULT mfu_gemm=0.723"
EOF

# bench_gpu_heads hangs (unless STUB_HEALTHY=1); bench_gpu_afno then must still run.
cat >"$WORK/bundle/bench_gpu_heads" <<'EOF'
#!/usr/bin/env bash
echo "RESULT heads_batch=8"
[ "${STUB_HEALTHY:-0}" = 1 ] && { echo "RESULT step_ms_dense=11.5"; exit 0; }
sleep 60
EOF
# nccl_check: passes, recording the GPU it was given.
cat >"$WORK/bundle/nccl_check" <<'EOF'
#!/usr/bin/env bash
echo "GPU=${CUDA_VISIBLE_DEVICES:-unset}" >>"$STUB_RECORD.nccl"
echo "nccl_check: world of 1, collectives and ZeRO-1 training: PASS"
EOF
cat >"$WORK/bundle/bench_gpu_afno" <<'EOF'
#!/usr/bin/env bash
echo "RESULT mixer_afno_ms_T1024=0.91"
echo "RESULT mixer_attention_ms_T1024=0.52"
echo "RESULT mixer_crossover_T=4096"
EOF

# ldd: bench_gpu_afno lacks cuFFT (unless STUB_HEALTHY=1); the rest goes to the real ldd, which
# says "not a dynamic executable" of a script.
cat >"$WORK/bin/ldd" <<EOF
#!/usr/bin/env bash
if [ "\${STUB_HEALTHY:-0}" != 1 ] && [ "\${1##*/}" = bench_gpu_afno ]; then
  printf '\tlinux-vdso.so.1 (0x00007ffd)\n\tlibcufft.so.12 => not found\n'
  exit 0
fi
exec "$REAL_LDD" "\$@"
EOF

# python: the torch probe answers with a fake site-packages; torch_gpt2.py prints eager's
# figures, then "compiles" past the stage's timeout (unless STUB_HEALTHY=1).
cat >"$WORK/bin/fake-python" <<'EOF'
#!/usr/bin/env bash
if [ "${1:-}" = -c ]; then
  echo "$STUB_SITE"
  exit 0
fi
echo "ARGS=$*" >>"$STUB_RECORD.python"
echo "RESULT torch_eager_batch=8"
echo "RESULT torch_eager_step_ms=150.00"
echo "RESULT torch_eager_tokens_per_s=54613"
echo "RESULT torch_eager_mfu_peak=0.421"
[ "${STUB_HEALTHY:-0}" = 1 ] || sleep 60
echo "RESULT torch_compiled_batch=8"
echo "RESULT torch_compiled_step_ms=100.00"
echo "RESULT torch_compiled_tokens_per_s=81920"
echo "RESULT torch_compiled_mfu_peak=0.631"
EOF

# compute-sanitizer: records its arguments and runs the program after its options.
cat >"$WORK/bin/fake-sanitizer" <<'EOF'
#!/usr/bin/env bash
echo "ARGS=$*" >>"$STUB_RECORD.sanitizer"
while [ $# -gt 0 ]; do
  case $1 in
    --tool | --error-exitcode | --print-limit) shift 2 ;;
    *) break ;;
  esac
done
"$@"
rc=$?
echo "========= ERROR SUMMARY: 0 errors"
exit $rc
EOF
chmod +x "$WORK"/bundle/test_cuda "$WORK"/bundle/nccl_check "$WORK"/bundle/bench_* "$WORK"/bin/*

# run_check NAME [VAR=value...]: runs run.sh on the fake bundle (batch 8) with short timeouts
# (the VAR=value given last win).
run_check() {
  local name=$1
  shift
  mkdir -p "$WORK/$name"
  env PATH="$WORK/bin:$PATH" OUT="$WORK/$name/out" PYTHON="$WORK/bin/fake-python" \
    SANITIZER="$WORK/bin/fake-sanitizer" STUB_SITE="$WORK/site" \
    STUB_RECORD="$WORK/$name/record" LD_LIBRARY_PATH=/opt/given \
    LIGHTGPT_REQUIRE_GPU= LIGHTGPT_POISON_ALLOCATIONS= OMP_WAIT_POLICY= CUDA_LAUNCH_BLOCKING= \
    TOTAL_BUDGET=120 LIST_TIMEOUT=10 SUITE_TIMEOUT=3 TESTS_BUDGET=40 BENCH_TIMEOUT=10 \
    TORCH_TIMEOUT=3 HEADS_TIMEOUT=3 MIXERS_TIMEOUT=10 SANITIZER_TIMEOUT=10 SANITIZER_MIN=1 \
    "$@" bash "$RUN" "$WORK/bundle" 8 >"$WORK/$name/stdout" 2>&1
}
# expect FILE EXTENDED-REGEX WHAT / reject FILE EXTENDED-REGEX WHAT
expect() { grep -qE -- "$2" "$1" || fail "$3 (no line matching '$2' in ${1#"$WORK"/})"; }
reject() { ! grep -qE -- "$2" "$1" || fail "$3 (a line matches '$2' in ${1#"$WORK"/})"; }

# ---- a run where things break ----------------------------------------------------------------
run_check broken
status=$?
out=$WORK/broken/stdout
summary=$WORK/broken/out/summary.txt
record=$WORK/broken/record
[ "$status" -eq 1 ] || fail "run.sh exit status $status with failures, not 1"
[ -f "$summary" ] || fail "no summary.txt under \$OUT"
touch "$summary" "$record" "$record.bench" "$record.python" "$record.sanitizer"

# Loader: the missing library, before any test ran; scripts tolerated.
expect "$summary" '^\[loader\] bench_gpu_afno: MISSING libcufft\.so\.12 => not found' \
  "missing library reported"
expect "$summary" '^\[loader\] test_cuda: not a dynamic executable' "ldd on a script tolerated"
expect "$summary" '^\[loader\] FAIL' "loader stage failed"
missing_line=$(grep -n "MISSING libcufft" "$out" | head -1 | cut -d: -f1)
first_test_line=$(grep -n '^\[tests\]' "$out" | head -1 | cut -d: -f1)
if [ -z "$missing_line" ] || [ -z "$first_test_line" ] ||
  [ "$missing_line" -ge "$first_test_line" ]; then
  fail "the missing library was not printed before the tests ran"
fi
expect "$summary" "LD_LIBRARY_PATH=$WORK/bundle/lib:/opt/given:.*$WORK/site/nvidia/cu13/lib" \
  "loader path: bundle lib/, the given path, then PyTorch's NVIDIA folders"

# Tests: one line per suite, reruns, the hang.
expect "$summary" '^\[tests\] CudaDevice +PASS \(2 tests' "passing suite"
expect "$summary" '^\[tests\] CudaOps/fp32 +FAIL .*CudaOps/fp32\.Attention' "failing suite"
expect "$summary" '^ +\| .*attention_softmax_kernel' "the blocking rerun's tail names the kernel"
expect "$summary" '^\[tests\] CudaModel/bf16 +FAIL' "suite failing asynchronously"
expect "$summary" 'rerun with CUDA_LAUNCH_BLOCKING=1: PASS' "rerun that passes"
expect "$summary" 'rerun with CUDA_LAUNCH_BLOCKING=1: FAIL' "rerun that fails"
expect "$summary" '^\[tests\] CudaHang/0 +TIMEOUT after 3 s' "hanging suite timed out"
expect "$summary" '^\[tests\] CudaNoGpu +FAIL' "suite failing for want of a GPU"
expect "$summary" '^ +\| no usable GPU and LIGHTGPT_REQUIRE_GPU is set: .*cudaErrorNoDevice' \
  "the runtime's error shown"
expect "$summary" '^\[tests\] 1 passed, 3 failed, 1 timed out' "suite totals"
expect "$record" 'BLOCKING=1 .*ARGS=--gtest_filter=CudaOps/fp32\.\*$' "CudaOps/fp32 rerun blocking"
expect "$record" 'BLOCKING=1 .*ARGS=--gtest_filter=CudaModel/bf16\.\*$' "CudaModel/bf16 rerun"
reject "$record" 'BLOCKING=1 .*CudaDevice' "a passing suite was rerun"
reject "$record" 'BLOCKING=1 .*CudaHang' "a timed-out suite was rerun"
reject "$record" 'BLOCKING=1 .*CudaNoGpu' "a suite without a GPU was rerun"
[ "$(grep -c 'ARGS=--gtest_filter=' "$record")" -ge 6 ] ||
  fail "not one process per suite (fewer than 6 filtered runs)"
reject "$record" 'REQUIRE_GPU=( |$)|POISON=( |$)|OMP=( |$)' "a test process missed the variables"
expect "$record" 'REQUIRE_GPU=1 POISON=1 OMP=PASSIVE' "LIGHTGPT_REQUIRE_GPU etc. exported"
expect "$record" "LD=$WORK/bundle/lib:" "test processes see the loader path"

# Benchmarks: figures and the loss; the hanging one times out and the next still runs.
expect "$record.bench" '^ARGS=--batch 8$' "bench_gpt2 given the batch"
expect "$summary" '^\[gpt2\] bench_gpt2 --batch 8: PASS' "gpt2 stage"
expect "$summary" 'loss: first step / last step.* 10\.9312 / 10\.7011' "loss in the summary"
expect "$summary" 'tokens/s +66357' "tokens/s in the summary"
expect "$summary" 'MFU vs 989 TFLOP/s bf16 datasheet peak +0\.512' "MFU vs peak"
expect "$summary" 'MFU vs measured cuBLASLt rate +0\.723' "MFU vs GEMM"
expect "$record.python" 'ARGS=-u .*torch_gpt2\.py --batch 8' "PyTorch script run unbuffered"
expect "$summary" '^\[pytorch\] eager only: torch.compile did not finish' "compile timeout"
expect "$summary" 'PyTorch eager tokens/s +54613' "eager figure kept"
reject "$summary" 'PyTorch compiled' "compiled figure from an unfinished compile"
expect "$summary" '^\[heads\] bench_gpu_heads: TIMEOUT after 3 s' "hanging benchmark timed out"
expect "$summary" '^\[mixers\] bench_gpu_afno: PASS' "the stage after the hang ran"
expect "$summary" 'AFNO / attention ms, T 1024 +0\.91 / 0\.52' "mixer figures"

# Sanitizers over the selected suites only.
expect "$summary" '^\[sanitizer\] memcheck +CudaDevice +PASS' "memcheck over CudaDevice"
expect "$summary" '^\[sanitizer\] memcheck +CudaOps/fp32 +FAIL' "memcheck over CudaOps/fp32"
expect "$summary" '^\[sanitizer\] racecheck +CudaOps/fp32 ' "racecheck over CudaOps/fp32"
expect "$record.sanitizer" '--tool racecheck .*--gtest_filter=CudaOps/fp32' "racecheck run"
reject "$record.sanitizer" 'CudaHang|CudaModel' "sanitizer over an unselected suite"

expect "$summary" '^\[nccl\] GPU 0: PASS' "nccl stage on the one GPU"
expect "$record.nccl" '^GPU=0$' "nccl_check given its GPU"

for tag in loader gpu tests nccl gpt2 pytorch heads mixers sanitizer; do
  expect "$summary" "^\[$tag\]" "summary.txt has the $tag stage"
done
expect "$summary" '^VERDICT: FAIL: loader tests heads' "verdict names the failed stages"
[ "$(grep -c '^VERDICT' "$out")" -eq 2 ] || fail "the summary was not printed again at the end"

# ---- a healthy run ---------------------------------------------------------------------------
# Nothing hangs here, so the timeouts can be generous (a loaded machine cannot fail the test).
run_check healthy STUB_HEALTHY=1 SUITE_TIMEOUT=30 TORCH_TIMEOUT=30 HEADS_TIMEOUT=30
status=$?
summary=$WORK/healthy/out/summary.txt
[ "$status" -eq 0 ] || fail "run.sh exit status $status when every stage passed, not 0"
expect "$summary" '^\[loader\] PASS' "healthy loader"
expect "$summary" '^\[tests\] 5 passed, 0 failed, 0 timed out' "healthy tests"
expect "$summary" '^\[pytorch\] PASS: eager and compiled' "compiled figure when it finishes"
expect "$summary" 'PyTorch compiled tokens/s +81920' "compiled figure"
expect "$summary" 'lightgpt / PyTorch compiled tokens/s +0\.81' "speed ratio vs the best mode"
expect "$summary" '^VERDICT: PASS' "healthy verdict"

if [ "$failures" -gt 0 ]; then
  for name in broken healthy; do
    echo "---- run.sh output ($name)"
    cat "$WORK/$name/stdout"
  done
  echo "$failures check(s) failed"
  exit 1
fi
echo "run.sh: every check passed"
