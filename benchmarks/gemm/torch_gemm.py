"""PyTorch's GEMM at the same ViT-L/14 layer shapes as gemm_bench.c, for the table in docs/performance.md."""
import time

import torch

for batch in (1, 8):
    m = 257 * batch
    flops = seconds = 0.0
    for n, k in ((3072, 1024), (1024, 1024), (4096, 1024), (1024, 4096)):
        a, b = torch.randn(m, k), torch.randn(n, k)
        a @ b.T
        start = time.perf_counter()
        for _ in range(6):
            a @ b.T
        seconds += (time.perf_counter() - start) / 6
        flops += 2.0 * m * n * k
    print(f"batch {batch} (M={m}): PyTorch {torch.__version__} {flops / seconds * 1e-9:.1f} GFLOP/s (sum of the four per-layer GEMMs)")
