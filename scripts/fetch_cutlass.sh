#!/usr/bin/env bash
# Unpacks the CuTe and CUTLASS headers (header-only C++ templates over the tensor-core instructions) from
# NVIDIA's PyPI wheel nvidia-cutlass into third_party/cutlass/include. Needed only for CUDA builds: the
# Hopper block-sparse kernel (sparse_attention/kernels/sparse/cuda/block_sparse_sm90.cu) takes its wgmma
# atoms and swizzled shared-memory layouts from CuTe. Pinned version; the wheel's
# cutlass_library/source/include/{cute,cutlass} are the upstream release's include/ folders.
# Usage: scripts/fetch_cutlass.sh   (idempotent; needs pip and python3)
exec bash "$(dirname "$0")/fetch_wheel_headers.sh" cutlass nvidia-cutlass 4.2.0 cutlass_library/source/include \
  cute/tensor.hpp cute cutlass
