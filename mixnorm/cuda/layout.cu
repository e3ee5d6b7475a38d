// Layout changes of activations (see mixnorm/cuda/layout.py), for one
// dtype real_t; TILE, the tile side, comes from Python (and index_t, which
// nchw_to_rows does not use).
#include "common.cuh"

// rows[n, l, c] = x[n, c, l]: (N, C, L) to the (N L, C) rows of the GMM
// fit, through a TILE x (TILE + 1) shared tile, so that the reads (along
// l) and the writes (along c) are both contiguous across a warp.  Block
// (bx, by, n) moves the tile at l = bx TILE, c = by TILE of sample n.
extern "C" __global__ void nchw_to_rows(
        const real_t* __restrict__ x, long long C, long long L,
        real_t* __restrict__ rows) {
    __shared__ real_t tile[TILE][TILE + 1];
    const long long n = blockIdx.z;
    const long long l0 = (long long)blockIdx.x * TILE;
    const long long c0 = (long long)blockIdx.y * TILE;
    const int tx = threadIdx.x % TILE, ty = threadIdx.x / TILE;
    for (int r = ty; r < TILE; r += THREADS / TILE) {
        const long long c = c0 + r, l = l0 + tx;
        if (c < C && l < L) tile[r][tx] = x[(n * C + c) * L + l];
    }
    __syncthreads();
    for (int r = ty; r < TILE; r += THREADS / TILE) {
        const long long l = l0 + r, c = c0 + tx;
        if (l < L && c < C) rows[(n * L + l) * C + c] = tile[tx][r];
    }
}

// dst[b, a, l] = src[a, b, l] (+ bias[a]; bias NULL: none) for src of
// shape (A, B, L): the (out, N, L) <-> (N, out, L) moves of the GEMM
// convolution (mixnorm/cuda/conv.py).  Runs of L stay contiguous on both
// sides.  index_t (32-bit where it fits) indexes the elements.
extern "C" __global__ void swap01(
        const real_t* __restrict__ src, long long A, long long B,
        long long L, const real_t* __restrict__ bias,
        real_t* __restrict__ dst) {
    FOR_EACH_ELEMENT(e, A * B * L) {
        const index_t t = (index_t)e / (index_t)L;
        const index_t l = (index_t)e - t * (index_t)L;
        const index_t a = t % (index_t)A, b = t / (index_t)A;
        const real_t v = src[((long long)a * B + b) * L + l];
        dst[e] = bias ? v + bias[a] : v;
    }
}
