// One core's GEMM rate at the encoder's per-image shapes (M = 257 rows, half of each layer's
// columns, as each of the encoder's two workers runs them): OpenBLAS sgemm on [out, in] weights,
// and oneDNN's matmul with the weights packed once, in fp32 and bf16 (bf16 needs AVX-512 BF16).
//   benchmarks/gemm/packed_matmul.sh      (builds with gcc, runs single-threaded)
#include <cblas.h>
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(x) do { dnnl_status_t s = (x); if (s != dnnl_success) { printf("%s failed: %d\n", #x, s); return -1; } } while (0)

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static double onednn(int M, int K, int N, int bf16, const char **impl) {
    dnnl_engine_t engine; CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    dnnl_stream_t stream; CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    dnnl_data_type_t type = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t src, any, user, bias, dst;
    dnnl_dims_t ds = {M, K}, dw = {K, N}, db = {1, N}, dd = {M, N};
    CHECK(dnnl_memory_desc_init_by_tag(&src, 2, ds, type, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&any, 2, dw, type, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&user, 2, dw, dnnl_f32, dnnl_ba));
    CHECK(dnnl_memory_desc_init_by_tag(&bias, 2, db, dnnl_f32, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t op; CHECK(dnnl_matmul_desc_init(&op, &src, &any, &bias, &dst));
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &op, NULL, engine, NULL) != dnnl_success) return -1;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, impl);
    const dnnl_memory_desc_t *packed = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    float *w = malloc(sizeof(float) * K * N), *a = malloc(sizeof(float) * M * K), *b = calloc(N, 4), *c = malloc(sizeof(float) * M * N);
    for (long i = 0; i < (long)K * N; i++) w[i] = (rand() % 1000) / 1000.0f - 0.5f;
    for (long i = 0; i < (long)M * K; i++) a[i] = (rand() % 1000) / 1000.0f - 0.5f;
    dnnl_memory_t wu, wp, sm, bm, dm;
    CHECK(dnnl_memory_create(&wu, &user, engine, w));
    CHECK(dnnl_memory_create(&wp, packed, engine, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd; CHECK(dnnl_reorder_primitive_desc_create(&rpd, &user, engine, packed, engine, NULL));
    dnnl_primitive_t reorder; CHECK(dnnl_primitive_create(&reorder, rpd));
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, wu}, {DNNL_ARG_TO, wp}};
    CHECK(dnnl_primitive_execute(reorder, stream, 2, ra)); dnnl_stream_wait(stream);
    void *input = a;
    if (bf16) {  // rounded to nearest even, as the encoder rounds its layer inputs
        unsigned short *h = malloc(2L * M * K);
        for (long i = 0; i < (long)M * K; i++) { unsigned u; memcpy(&u, &a[i], 4); h[i] = (u + 0x7fff + ((u >> 16) & 1)) >> 16; }
        input = h;
    }
    CHECK(dnnl_memory_create(&sm, &src, engine, input)); CHECK(dnnl_memory_create(&bm, &bias, engine, b));
    CHECK(dnnl_memory_create(&dm, &dst, engine, c));
    dnnl_primitive_t matmul; CHECK(dnnl_primitive_create(&matmul, pd));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wp}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, dm}};
    for (int i = 0; i < 3; i++) CHECK(dnnl_primitive_execute(matmul, stream, 4, args));
    dnnl_stream_wait(stream);
    int reps = 20; double t = now();
    for (int i = 0; i < reps; i++) CHECK(dnnl_primitive_execute(matmul, stream, 4, args));
    dnnl_stream_wait(stream);
    return 2.0 * M * K * N * reps / (now() - t) / 1e9;
}

static double openblas(int M, int K, int N) {
    float *a = malloc(4L * M * K), *w = malloc(4L * N * K), *c = malloc(4L * M * N);
    for (long i = 0; i < (long)M * K; i++) a[i] = rand() % 100 / 100.f;
    for (long i = 0; i < (long)N * K; i++) w[i] = rand() % 100 / 100.f;
    for (int i = 0; i < 3; i++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, w, K, 0, c, N);
    int reps = 20; double t = now();
    for (int i = 0; i < reps; i++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, w, K, 0, c, N);
    return 2.0 * M * K * N * reps / (now() - t) / 1e9;
}

int main(void) {
    openblas_set_num_threads(1);
    int shapes[][3] = {{257, 1024, 1536}, {257, 1024, 2048}, {257, 4096, 512}, {257, 1024, 512}};
    printf("one core, GFLOP/s (M x K x N): OpenBLAS sgemm | oneDNN fp32 packed | oneDNN bf16 packed\n");
    for (int i = 0; i < 4; i++) {
        int M = shapes[i][0], K = shapes[i][1], N = shapes[i][2];
        const char *f32 = "?", *b16 = "not available";
        double blas = openblas(M, K, N), packed = onednn(M, K, N, 0, &f32), half = onednn(M, K, N, 1, &b16);
        printf("%4d x %4d x %4d: %6.1f | %6.1f (%s) | ", M, K, N, blas, packed, f32);
        if (half > 0) printf("%6.1f (%s)\n", half, b16); else printf("-\n");
    }
    return 0;
}
