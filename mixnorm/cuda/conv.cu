// The data movement of a 2-D convolution as one GEMM (see
// mixnorm/cuda/conv.py), for one dtype real_t.  The column matrix has one
// row per filter tap k = (c, i, j) and one column per output position
// p = (n, y, x):
//     col[k, p] = x[n, c, y sy - ph + i, x sx - pw + j]  (0 outside x),
// so that y = W (out, C KH KW) col, gW = gy col^T and gcol = W^T gy are
// single GEMMs with gy as an (out, N OH OW) matrix.  index_t (32-bit where
// it fits) indexes the elements of x and the positions p.
#include "common.cuh"

// Row blockIdx.y of col (one filter tap) over every position p.
extern "C" __global__ void im2col(
        const real_t* __restrict__ x, long long N, long long C, long long H,
        long long W, long long KH, long long KW, long long SY, long long SX,
        long long PH, long long PW, long long OH, long long OW,
        real_t* __restrict__ col) {
    const long long k = blockIdx.y;
    const long long c = k / (KH * KW), i = (k / KW) % KH, j = k % KW;
    const index_t L = (index_t)(OH * OW), P = (index_t)N * L;
    real_t* __restrict__ row = col + k * (long long)P;
    for (index_t p = blockIdx.x * blockDim.x + threadIdx.x; p < P;
         p += gridDim.x * blockDim.x) {
        const index_t n = p / L, r = p - n * L;
        const index_t yo = r / (index_t)OW, xo = r - yo * (index_t)OW;
        const long long h = (long long)yo * SY - PH + i;
        const long long w = (long long)xo * SX - PW + j;
        row[p] = (h >= 0 && h < H && w >= 0 && w < W)
                     ? x[((n * C + c) * H + h) * W + w] : (real_t)0;
    }
}

// The adjoint of im2col: gx[n, c, h, w] = the sum of gcol[k, p] over the
// taps and positions that read x[n, c, h, w].
extern "C" __global__ void col2im(
        const real_t* __restrict__ gcol, long long N, long long C,
        long long H, long long W, long long KH, long long KW, long long SY,
        long long SX, long long PH, long long PW, long long OH, long long OW,
        real_t* __restrict__ gx) {
    const long long P = N * OH * OW;
    FOR_EACH_ELEMENT(e, N * C * H * W) {
        index_t t = (index_t)e;
        const index_t w = t % (index_t)W;
        t /= (index_t)W;
        const index_t h = t % (index_t)H;
        t /= (index_t)H;
        const index_t c = t % (index_t)C, n = t / (index_t)C;
        real_t acc = 0;
        for (long long i = 0; i < KH; ++i) {
            const long long yy = (long long)h + PH - i;
            if (yy < 0 || yy % SY) continue;
            const long long yo = yy / SY;
            if (yo >= OH) continue;
            for (long long j = 0; j < KW; ++j) {
                const long long xx = (long long)w + PW - j;
                if (xx < 0 || xx % SX) continue;
                const long long xo = xx / SX;
                if (xo >= OW) continue;
                acc += gcol[((c * KH + i) * KW + j) * P
                            + ((long long)n * OH + yo) * OW + xo];
            }
        }
        gx[e] = acc;
    }
}
