#!/usr/bin/env bash
# Unpacks the headers of NVIDIA's cuDNN frontend (header-only C++ API over cuDNN's graph backend) from its
# PyPI wheel into third_party/cudnn-frontend/include. Needed only for CUDA builds. Pinned version; the
# wheel's include/ folder is the same as the upstream release's.
# Usage: scripts/fetch_cudnn_frontend.sh   (idempotent; needs pip and python3)
exec bash "$(dirname "$0")/fetch_wheel_headers.sh" cudnn-frontend nvidia-cudnn-frontend 1.32.0 include \
  cudnn_frontend.h .
