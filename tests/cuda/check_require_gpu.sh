#!/usr/bin/env bash
# LIGHTGPT_REQUIRE_GPU=1 must turn a CUDA test's skip into a failure that names the runtime's error:
# the GPU check sets it so that a machine whose driver or device is unusable cannot pass by skipping.
# With a usable GPU the same test simply passes. Usage: check_require_gpu.sh <test_cuda binary>
set -u
binary=$1
output=$(LIGHTGPT_REQUIRE_GPU=1 "$binary" --gtest_filter='CudaDevice.Shared*' 2>&1)
rc=$?
if [ $rc -ne 0 ] &&
  grep -q "no usable GPU and LIGHTGPT_REQUIRE_GPU is set: cudaGetDeviceCount" <<<"$output"; then
  echo "no GPU: the required-GPU run failed and named the runtime's error"
  exit 0
fi
if [ $rc -eq 0 ] && grep -q "^\[  PASSED  \] 1 test" <<<"$output" &&
  ! grep -q "SKIPPED" <<<"$output"; then
  echo "GPU present: the test ran and passed"
  exit 0
fi
echo "unexpected result (exit $rc):"
echo "$output"
exit 1
