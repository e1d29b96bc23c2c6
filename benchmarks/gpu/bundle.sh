#!/usr/bin/env bash
# Builds what the GPU machine lacks, here (nvcc, Eigen, GoogleTest): the CUDA test binary and the
# GPU benchmarks (GPT-2 step, dense vs LightRNN head, AFNO vs attention) for sm_90, into
# gpu-bundle/ (git-ignored, must stay under 60 MB), for benchmarks/gpu/run.sh to run there.
#
# - libstdc++ and GoogleTest are linked statically and libgomp is copied into gpu-bundle/lib/;
#   libgcc_s stays shared (-static-libgcc would pull in _dl_find_object, glibc 2.35).
# - The binaries must load on glibc 2.34: the highest GLIBC_ symbol version they (and the copied
#   libgomp) need is printed, and the script fails above MAX_GLIBC (default 2.34). This
#   machine's static libstdc++ (GCC 12 built on glibc 2.36) calls arc4random (GLIBC_2.36) in
#   std::random_device, whose object file every program with iostreams pulls in; the bundle's
#   binaries therefore link a private arc4random over getrandom (glibc 2.25), written below.
# - One CUDA runtime, the shared libcudart.so of the GPU machine's CUDA 13 (the top-level
#   CMakeLists.txt sets CMAKE_CUDA_RUNTIME_LIBRARY Shared): the script fails if a link line names
#   cudart_static, a binary carries the static runtime's symbols, or ldd does not list
#   libcudart.so. cuBLASLt and cuFFT come from the GPU machine too.
# - Host code is built for generic x86-64 (LIGHTGPT_NATIVE=OFF): the GPU machine's CPU may lack
#   this one's vector instructions.
#
# Usage: benchmarks/gpu/bundle.sh. Environment: BUILD (build folder, default build-gpu-bundle),
# JOBS (parallel compile jobs, default 2), MAX_GLIBC (default 2.34).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-gpu-bundle}
BUNDLE=$ROOT/gpu-bundle
JOBS=${JOBS:-2}
MAX_GLIBC=${MAX_GLIBC:-2.34}

mkdir -p "$BUILD"
cat >"$BUILD/glibc_compat.c" <<'EOF'
/* arc4random for static libstdc++'s std::random_device, so that the binaries do not import
   arc4random@GLIBC_2.36; hidden, so that it interposes on nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>
__attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t value;
  for (;;) {
    ssize_t n = getrandom(&value, sizeof value, 0);
    if (n == (ssize_t)sizeof value) return value;
    if (n < 0 && errno == EINTR) continue;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && read(fd, &value, sizeof value) == (ssize_t)sizeof value) {
      close(fd);
      return value;
    }
    abort();
  }
}
EOF
"${CC:-cc}" -O2 -fPIC -Wall -Wextra -c "$BUILD/glibc_compat.c" -o "$BUILD/glibc_compat.o"

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLIGHTGPT_ENABLE_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DLIGHTGPT_BUILD_EXAMPLES=OFF -DLIGHTGPT_NATIVE=OFF \
  -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ $BUILD/glibc_compat.o" >/dev/null
BINARIES="test_cuda nccl_check bench_gpt2 bench_gpu_heads bench_gpu_afno"
# shellcheck disable=SC2086
cmake --build "$BUILD" --target $BINARIES -j "$JOBS"

# Where each binary is built, and its link line (link.txt, plus linkLibs.rsp when CMake uses a
# response file for the libraries).
built() {
  case $1 in
    test_cuda) echo "$BUILD/tests/cuda/test_cuda" ;;
    nccl_check) echo "$BUILD/tests/dist/nccl_check" ;;
    *) echo "$BUILD/benchmarks/gpu/$1" ;;
  esac
}
link_line() {
  local dir
  dir="$(dirname "$(built "$1")")/CMakeFiles/$1.dir"
  cat "$dir/link.txt" "$dir"/*.rsp 2>/dev/null
}

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/lib"
for binary in $BINARIES; do
  cp "$(built "$binary")" "$BUNDLE/"
  strip --strip-unneeded "$BUNDLE/$binary"
done
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
} >"$BUNDLE/MANIFEST"

failed=0
# One CUDA runtime: shared, named once. (Outputs are captured before grep -q reads them: with
# pipefail, a producer killed by SIGPIPE when grep -q stops early would fail the test itself.)
for binary in $BINARIES; do
  if grep -q "cudart_static" <<<"$(link_line "$binary")"; then
    echo "FAIL: $binary's link line names cudart_static (the static CUDA runtime)" >&2
    failed=1
  fi
  # The static runtime defines the API in the binary itself (the unstripped one, as built).
  static_symbols=$(nm --defined-only "$(built "$binary")" 2>/dev/null |
    grep -cE " [TtWw] cuda(Malloc|Free|GetDeviceCount|LaunchKernel)$" || true)
  if [ "$static_symbols" -gt 0 ]; then
    echo "FAIL: $binary defines the CUDA runtime API itself (static cudart linked in)" >&2
    failed=1
  fi
  if ! grep -q " cudaMalloc@libcudart" <<<"$(nm -D --undefined-only "$BUNDLE/$binary")"; then
    echo "FAIL: $binary does not take cudaMalloc from a shared library" >&2
    failed=1
  fi
  needs=$(ldd "$BUNDLE/$binary" | awk '{print $1}' | tr '\n' ' ')
  echo "$binary needs: $needs"
  if ! grep -q "libcudart\.so" <<<"$needs"; then
    echo "FAIL: ldd does not list libcudart.so for $binary" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] && echo "CUDA runtime: shared libcudart.so only (no cudart_static)"

# glibc floor: the highest GLIBC_x.y symbol version anything in the bundle needs.
glibc=$(for file in $BINARIES lib/*.so*; do
  [ -f "$BUNDLE/$file" ] && objdump -T "$BUNDLE/$file"
done | grep -o "GLIBC_[0-9][0-9.]*" | sed 's/GLIBC_//' | sort -uV | tail -1 || true)
echo "glibc needed: ${glibc:-none} (limit $MAX_GLIBC)"
if [ -z "$glibc" ] || [ "$(printf '%s\n%s\n' "$glibc" "$MAX_GLIBC" | sort -V | tail -1)" != \
  "$MAX_GLIBC" ]; then
  echo "FAIL: the bundle needs GLIBC_${glibc:-?}, above $MAX_GLIBC" >&2
  for file in $BINARIES lib/*.so*; do
    [ -f "$BUNDLE/$file" ] || continue
    objdump -T "$BUNDLE/$file" | grep "GLIBC_$glibc" | sed "s|^|  $file: |" >&2
  done
  failed=1
fi

size=$(du -sm "$BUNDLE" | cut -f1)
echo "gpu-bundle: ${size} MB"
if [ "$size" -ge 60 ]; then
  echo "FAIL: gpu-bundle is over 60 MB" >&2
  failed=1
fi
exit "$failed"
