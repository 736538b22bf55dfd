#!/usr/bin/env bash
# Measures single-precision GEMM of OpenBLAS and oneDNN at ViT-L/14 layer shapes on this machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
gcc -O2 -o /tmp/clipdetect-gemm-bench "$here/gemm_bench.c" -lopenblas -ldnnl
/tmp/clipdetect-gemm-bench
