#!/usr/bin/env bash
# Measures single-precision GEMM of OpenBLAS and oneDNN at ViT-L/14 layer shapes on this machine,
# and PyTorch's at the same shapes when torch is installed, in one run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
gcc -O2 -o /tmp/clipdetect-gemm-bench "$here/gemm_bench.c" -lopenblas -ldnnl
/tmp/clipdetect-gemm-bench
if python3 -c "import torch" 2>/dev/null; then python3 "$here/torch_gemm.py"; fi
