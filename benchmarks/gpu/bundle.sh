#!/usr/bin/env bash
# Builds what the GPU machine lacks, here (nvcc, Eigen, GoogleTest): the CUDA test binary and the
# GPU benchmarks (GPT-2 step, dense vs LightRNN head, AFNO vs attention) for sm_90, with libstdc++/libgcc and GoogleTest linked statically and libgomp
# copied alongside, into gpu-bundle/ (git-ignored, must stay under 60 MB). cudart, cuBLASLt and
# cuFFT come from the GPU machine's CUDA 13. Host code is built for generic x86-64 (LIGHTGPT_NATIVE=OFF):
# the GPU machine's CPU may lack this one's vector instructions. Usage: benchmarks/gpu/bundle.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-gpu-bundle}
BUNDLE=$ROOT/gpu-bundle
JOBS=${JOBS:-2}

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLIGHTGPT_ENABLE_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DLIGHTGPT_BUILD_EXAMPLES=OFF -DLIGHTGPT_NATIVE=OFF \
  -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ -static-libgcc" >/dev/null
BINARIES="test_cuda bench_gpt2 bench_gpu_heads bench_gpu_afno"
# shellcheck disable=SC2086
cmake --build "$BUILD" --target $BINARIES -j "$JOBS"

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/lib"
cp "$BUILD/tests/cuda/test_cuda" "$BUNDLE/"
for bench in bench_gpt2 bench_gpu_heads bench_gpu_afno; do
  cp "$BUILD/benchmarks/gpu/$bench" "$BUNDLE/"
done
for binary in $BINARIES; do strip --strip-unneeded "$BUNDLE/$binary"; done
gomp=$(g++ -print-file-name=libgomp.so.1)
[ -f "$gomp" ] && cp -L "$gomp" "$BUNDLE/lib/"
{
  echo "lightgpt GPU bundle"
  dirty=""
  git -C "$ROOT" diff --quiet -- include tests/cuda benchmarks/gpu || dirty=" (uncommitted changes)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD)$dirty"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m)"
  echo "nvcc: $(nvcc --version | tail -1)"
  echo "arch: sm_90"
} > "$BUNDLE/MANIFEST"
for binary in $BINARIES; do
  echo "$binary needs: $(ldd "$BUNDLE/$binary" | awk '{print $1}' | tr '\n' ' ')"
done
size=$(du -sm "$BUNDLE" | cut -f1)
echo "gpu-bundle: ${size} MB"
if [ "$size" -ge 60 ]; then
  echo "gpu-bundle is over 60 MB" >&2
  exit 1
fi
