// Compares dnnl_sgemm and OpenBLAS cblas_sgemm at the ViT-L/14 shapes (row-major, B transposed
// as our weights are [out, in]). Build and run: benchmarks/gemm/run.sh
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(void) {
  const int tokens = 257, width = 1024, mlp = 4096;
  const int batches[] = {1, 8};
  const int outs[] = {3 * width, width, mlp, width}, ins[] = {width, width, width, mlp};
  for (int bi = 0; bi < 2; bi++) {
    int m = tokens * batches[bi];
    double flops = 0, tb = 0, td = 0;
    for (int s = 0; s < 4; s++) {
      int n = outs[s], k = ins[s];
      float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * n * k), *c = malloc(sizeof(float) * m * n);
      for (long i = 0; i < (long)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
      for (long i = 0; i < (long)n * k; i++) b[i] = (float)(i % 5) * 0.1f;
      int reps = 6;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n);
      double t0 = now();
      for (int r = 0; r < reps; r++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n);
      tb += (now() - t0) / reps;
      dnnl_sgemm('N', 'T', m, n, k, 1, a, k, b, k, 0, c, n);
      t0 = now();
      for (int r = 0; r < reps; r++) dnnl_sgemm('N', 'T', m, n, k, 1, a, k, b, k, 0, c, n);
      td += (now() - t0) / reps;
      flops += 2.0 * m * n * k;
      free(a); free(b); free(c);
    }
    printf("batch %d (M=%d): OpenBLAS %.1f GFLOP/s, oneDNN %.1f GFLOP/s (sum of the four per-layer GEMMs)\n",
           batches[bi], m, flops / tb * 1e-9, flops / td * 1e-9);
  }
  return 0;
}
