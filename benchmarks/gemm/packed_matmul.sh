#!/usr/bin/env bash
# One core: OpenBLAS sgemm against oneDNN's matmul on weights packed once (fp32, bf16), at the
# encoder's per-image, per-worker shapes. Needs libopenblas-dev and libdnnl-dev (scripts/setup.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
gcc -O2 -o /tmp/clipdetect-packed-matmul "$here/packed_matmul.c" -lopenblas -ldnnl
OMP_NUM_THREADS=1 /tmp/clipdetect-packed-matmul
