#!/usr/bin/env bash
# Builds and runs packed_kernel.swift (weights packed once vs OpenBLAS) on this machine's CPU.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
header=$(mktemp --suffix=.h)
printf '#include <cblas.h>\nvoid openblas_set_num_threads(int);\n' > "$header"
swiftc -O -target-cpu haswell -import-objc-header "$header" -I/usr/include/x86_64-linux-gnu/openblas-pthread \
    "$here/packed_kernel.swift" -lopenblas -o /tmp/clipdetect-packed-kernel
/tmp/clipdetect-packed-kernel "$@"
