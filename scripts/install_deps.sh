#!/usr/bin/env bash
# Installs the build and test dependencies of ditrun from Debian 12 packages and, where nvcc is installed
# (CMake then builds the CUDA backend), the cuDNN frontend headers (scripts/fetch_cudnn_frontend.sh) and the
# CuTe/CUTLASS headers (scripts/fetch_cutlass.sh).
# Usage: scripts/install_deps.sh            (as root, or with sudo available)
set -euo pipefail
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  bash "$(dirname "$0")/fetch_cudnn_frontend.sh"
  bash "$(dirname "$0")/fetch_cutlass.sh"
fi
pkgs=(
  build-essential cmake pkg-config
  libopenblas-dev            # CPU GEMMs
  libsentencepiece-dev       # T5 tokenizer
  libicu-dev                 # CLIP tokenizer: NFC, Unicode classes, lowercase
  libcli11-dev               # command line
  catch2                     # tests (v2, single header)
  libstb-dev                 # PNG writing
  nlohmann-json3-dev         # safetensors headers, configs
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev  # evaluate: image analysis (optional)
  clang libclang-rt-14-dev   # libFuzzer target for the safetensors header parser
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "install_deps: all packages present"; exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
