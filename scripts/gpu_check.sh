#!/usr/bin/env bash
# Builds ditrun with CUDA on the GPU machine (no network, none of ditrun's -dev packages) and runs the GPU
# tests, then the CPU suites. The dependencies come from .devdeps/devdeps.tar.xz (scripts/device_bundle.sh,
# made on Debian 12), unpacked into $DITRUN_DEPS; cuDNN frontend and CuTe headers from third_party/ (scripts/
# fetch_cudnn_frontend.sh, fetch_cutlass.sh). OpenCV is not bundled, so `ditrun evaluate` and its tests are left out.
# Usage (repository root): scripts/gpu_check.sh [--skip-build] [--only-build] [--skip-cpu-tests]
#                          [--ctest-args "ARGS"] [--cpu-ctest-args "ARGS"] [--cmake-args "ARGS"]
#   --ctest-args       more ctest arguments for the GPU tests (e.g. "-R cuda.attention")
#   --cpu-ctest-args   more ctest arguments for the CPU tests (e.g. "-L ops")
#   --cmake-args       more configure arguments, after the defaults (e.g. "-DCMAKE_BUILD_TYPE=RelWithDebInfo")
# Env: OUT (logs and summary.txt are written there, else under the build folder), GPU_CHECK_EXTRA (a
# command run last, with DITRUN_BUILD and the library paths set), DITRUN_DEPS (default /opt/ditrun-deps),
# BUILD_DIR (default build-gpu), CUDA_ARCHS (default 90a), BUILD_TARGETS (only these targets, e.g. "ditrun",
# with --only-build).
# Exit status: 0 when every step passed. A GPU test that skips on a machine with a GPU is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

skip_build=0 only_build=0 skip_cpu=0 ctest_args="" cpu_ctest_args="" cmake_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --skip-build) skip_build=1 ;;
    --only-build) only_build=1 ;;
    --skip-cpu-tests) skip_cpu=1 ;;
    --ctest-args) ctest_args="$2"; shift ;;
    --cpu-ctest-args) cpu_ctest_args="$2"; shift ;;
    --cmake-args) cmake_args="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

deps="${DITRUN_DEPS:-/opt/ditrun-deps}"
build="${BUILD_DIR:-build-gpu}"
bundle=.devdeps/devdeps.tar.xz
logs="${OUT:-$build/gpu_check-logs}"
mkdir -p "$logs"
jobs=$(nproc)

# ---- steps: each runs in a subshell under set -e; its output goes to $logs/<log>, the console gets its
# last $shown lines (80 when it fails).
names=() states=() times=()
record() { names+=("$1"); states+=("$2"); times+=("$3"); }
shown=12
step() {  # <name> <log file> <function> [args...]
  local name=$1 log=$logs/$2 rc t0=$SECONDS; shift 2
  echo "== $name"
  set +e
  ( set -e; "$@" ) >"$log" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    tail -n "$shown" "$log"; record "$name" ok $((SECONDS - t0))
  else
    tail -n 80 "$log"; echo "== $name FAILED (exit $rc; full log $log)"; record "$name" failed $((SECONDS - t0))
  fi
  return $rc
}
skip() { echo "== $1: skipped ($2)"; record "$1" skipped 0; }

# ---- dependencies
unpack_deps() {
  local sum stamp
  if [ ! -f "$bundle" ]; then
    [ -f "$deps/.stamp" ] || { echo "no $bundle and nothing in $deps: run scripts/device_bundle.sh and carry .devdeps"; return 1; }
    echo "no $bundle; using what is in $deps ($(cat "$deps/.stamp"))"; return 0
  fi
  sum=$(sha256sum "$bundle" | cut -d' ' -f1)
  stamp=$(cat "$deps/.stamp" 2>/dev/null || true)
  if [ "$stamp" = "$sum" ]; then echo "$deps is up to date ($sum)"; else
    rm -rf "$deps"; mkdir -p "$deps"
    tar -C "$deps" -xJf "$bundle"
    echo "$sum" >"$deps/.stamp"
    echo "unpacked $bundle into $deps ($(du -sh "$deps" | cut -f1))"
  fi
  cat "$deps/PACKAGES"
}

deps_env() {
  local lib=$deps/usr/lib/x86_64-linux-gnu
  export CMAKE_PREFIX_PATH="$deps/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export PKG_CONFIG_PATH="$lib/pkgconfig:$deps/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$lib:$lib/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  command -v pkg-config >/dev/null || export PKG_CONFIG="$deps/usr/bin/pkgconf"
  if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
}

# cuDNN: the system's when it has the library (CMake finds it, or is told the versioned file), else the one
# in the Python packages (torch's nvidia-cudnn wheel, with its own headers when it has them).
cudnn_flags=() cudnn_report=""
find_cudnn() {
  local lib="" inc="" py
  for d in /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    for f in "$d"/libcudnn.so "$d"/libcudnn.so.9; do [ -z "$lib" ] && [ -e "$f" ] && lib=$f; done
  done
  for f in /usr/include/x86_64-linux-gnu/cudnn.h /usr/include/cudnn.h /usr/local/cuda/include/cudnn.h; do
    [ -z "$inc" ] && [ -e "$f" ] && inc=$(dirname "$f")
  done
  if [ -z "$lib" ]; then
    py=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null || true)
    [ -n "$py" ] && for f in "$py"/lib/libcudnn.so "$py"/lib/libcudnn.so.9; do [ -z "$lib" ] && [ -e "$f" ] && lib=$f; done
    [ -n "$lib" ] && export LD_LIBRARY_PATH="$(dirname "$lib"):$LD_LIBRARY_PATH"
    [ -n "$py" ] && [ -e "$py/include/cudnn.h" ] && inc=$py/include
  fi
  cudnn_report="cuDNN library: ${lib:-NOT FOUND}
cuDNN headers: ${inc:-NOT FOUND} (version $(grep -hE '^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ' \
    "$inc/cudnn_version.h" 2>/dev/null | awk '{printf "%s%s", sep, $3; sep="."}'))"
  [ -n "$lib" ] && cudnn_flags+=("-DCUDNN_LIBRARY=$lib")
  [ -n "$inc" ] && cudnn_flags+=("-DCUDNN_INCLUDE_DIR=$inc")
  return 0
}

machine_info() {
  echo "host: $(uname -srm), $jobs cores; $(. /etc/os-release && echo "$PRETTY_NAME")"
  nvidia-smi -L || echo "nvidia-smi: no GPU listed"
  nvcc --version | tail -n 2 || echo "nvcc: NOT FOUND"
  c++ --version | head -n 1 || echo "c++: NOT FOUND"
  cmake --version | head -n 1
  echo "ninja $(ninja --version || echo 'NOT FOUND')"
  echo "pkg-config: ${PKG_CONFIG:-$(command -v pkg-config)}"
  echo "cuDNN frontend: $(cat third_party/cudnn-frontend/VERSION 2>/dev/null || echo 'MISSING: carry third_party')"
  echo "CUTLASS/CuTe: $(cat third_party/cutlass/VERSION 2>/dev/null || echo 'MISSING: carry third_party')"
  echo "$cudnn_report"
}

configure() {
  [ -f third_party/cudnn-frontend/include/cudnn_frontend.h ] ||
    { echo "third_party/cudnn-frontend missing: run scripts/fetch_cudnn_frontend.sh here and carry third_party"; return 1; }
  [ -f third_party/cutlass/include/cute/tensor.hpp ] ||
    { echo "third_party/cutlass missing: run scripts/fetch_cutlass.sh here and carry third_party"; return 1; }
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDITRUN_CUDA=ON -DDITRUN_OPENCV=OFF \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90a}" \
    -DCBLAS_INCLUDE_DIR="$deps/usr/include/x86_64-linux-gnu/openblas-pthread" "${cudnn_flags[@]}" $cmake_args
  echo "-- found (CMakeCache):"
  grep -E '^(BLAS_[a-z]+_LIBRARY|CBLAS_INCLUDE_DIR|STB_[A-Z_]+|CUDNN_[A-Z_]+|CLI11_DIR|nlohmann_json_DIR|Catch2_DIR|SENTENCEPIECE_[a-z]+|ICU_UC_[a-z]+|pkgcfg_lib_[A-Z_]+_[a-z0-9_]+|CMAKE_CUDA_COMPILER|PKG_CONFIG_EXECUTABLE):' \
    "$build/CMakeCache.txt" | sed 's/^/   /'
}

build_all() { cmake --build "$build" -j"$jobs" ${BUILD_TARGETS:+--target $BUILD_TARGETS}; }

# ctest over a label selection; with a GPU present, a test that skips is a failure (the GPU was not used).
run_ctest() {  # <args...>
  local rc=0
  ctest --test-dir "$build" --output-on-failure "$@" || rc=$?
  if grep -q 'No tests were found' "$LOG_FILE"; then echo "gpu_check: no tests selected"; rc=1; fi
  if nvidia-smi -L >/dev/null 2>&1 && grep -q '\*\*\*Skipped' "$LOG_FILE"; then
    echo "gpu_check: tests skipped although nvidia-smi lists a GPU:"; grep '\*\*\*Skipped' "$LOG_FILE"; rc=1
  fi
  return $rc
}
cuda_tests() { LOG_FILE=$logs/ctest-cuda.log run_ctest -L cuda $ctest_args; }
cpu_tests() { LOG_FILE=$logs/ctest-cpu.log run_ctest -LE cuda -j"$jobs" $cpu_ctest_args; }
extra() { DITRUN_BUILD="$build" bash -c "$GPU_CHECK_EXTRA"; }

# ---- run
status=0 deps_ok=1
step "unpack deps" deps.log unpack_deps || { status=1; deps_ok=0; }
deps_env
find_cudnn
step "machine" machine.log machine_info || status=1
built=1
if [ $skip_build -eq 1 ]; then
  skip configure "--skip-build"; skip build "--skip-build"
elif [ $deps_ok -eq 0 ]; then
  skip configure "deps missing"; skip build "deps missing"; built=0
elif shown=20 step configure configure.log configure; then
  step build build.log build_all || { status=1; built=0; }
else
  status=1; built=0; skip build "configure failed"
fi
if [ $only_build -eq 1 ]; then
  :
elif [ $built -eq 0 ]; then
  skip "GPU tests" "not built"; skip "CPU tests" "not built"
else
  step "GPU tests (ctest -L cuda)" ctest-cuda.log cuda_tests || status=1
  if [ $skip_cpu -eq 1 ]; then skip "CPU tests" "--skip-cpu-tests"; else
    step "CPU tests (ctest -LE cuda)" ctest-cpu.log cpu_tests || status=1
  fi
  if [ -n "${GPU_CHECK_EXTRA:-}" ]; then step "GPU_CHECK_EXTRA" extra.log extra || status=1; fi
fi

{
  echo "gpu_check summary ($(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  printf '  %-28s %-8s %6s\n' step result seconds
  for i in "${!names[@]}"; do printf '  %-28s %-8s %6s\n' "${names[$i]}" "${states[$i]}" "${times[$i]}"; done
  echo "  logs: $logs"
} | tee "$logs/summary.txt"
exit $status
