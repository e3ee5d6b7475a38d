// 2-D max and average pooling as Chainer computes them (see
// mixnorm/cuda/pool.py), for one dtype real_t, on (N C, H, W) planes.
// Window (yo, xo) covers rows yo SY - PH .. + KH and columns xo SX - PW
// .. + KW, clipped to the plane.  index_t (32-bit where it fits) indexes
// the elements.
#include "common.cuh"

// The plane p, row h and column w of element e of (P, H, W).
__device__ __forceinline__ void plane_row_col(long long e, long long H,
                                              long long W, index_t* p,
                                              int* h, int* w) {
    const index_t t = (index_t)e / (index_t)W;
    *w = (int)((index_t)e - t * (index_t)W);
    *p = t / (index_t)H;
    *h = (int)(t - *p * (index_t)H);
}

// Pooling of window e: max (the first maximum in row-major window order,
// its offset i KW + j in the window in argmax: Chainer's rule; a window
// entirely in the padding keeps the offset of (0, 0) in the plane) or,
// with argmax NULL, average (the padding counted as zeros: the window sum
// over KH KW).
__device__ __forceinline__ void pool_window(
        const real_t* __restrict__ x, long long e, long long H, long long W,
        long long KH, long long KW, long long SY, long long SX, long long PH,
        long long PW, long long OH, long long OW, real_t* __restrict__ y,
        int* __restrict__ argmax) {
    index_t p;
    int yo, xo;
    plane_row_col(e, OH, OW, &p, &yo, &xo);
    const int h0 = yo * (int)SY - (int)PH, w0 = xo * (int)SX - (int)PW;
    const int h1 = min(h0 + (int)KH, (int)H), w1 = min(w0 + (int)KW, (int)W);
    const real_t* __restrict__ plane = x + (long long)p * H * W;
    real_t acc = argmax ? (real_t)NEG_INF : (real_t)0;
    int bh = 0, bw = 0;
    for (int h = max(h0, 0); h < h1; ++h)
        for (int w = max(w0, 0); w < w1; ++w) {
            const real_t v = plane[h * W + w];
            if (!argmax) {
                acc += v;
            } else if (acc < v) {
                acc = v;
                bh = h;
                bw = w;
            }
        }
    if (argmax) {
        y[e] = acc;
        argmax[e] = (bh - h0) * (int)KW + (bw - w0);
    } else {
        y[e] = acc / (real_t)(KH * KW);
    }
}

// The outputs yo in [*lo, *hi] whose windows contain row h.
__device__ __forceinline__ void covering(int h, long long K, long long S,
                                         long long Pad, long long O, int* lo,
                                         int* hi) {
    const int top = h + (int)Pad;  // h's row in the padded plane
    *lo = top - (int)K + 1 > 0 ? (top - (int)K + (int)S) / (int)S : 0;
    *hi = min(top / (int)S, (int)O - 1);
}

// gx at element e of the windows that hold it: with argmax, the gy of
// every window whose maximum it was; without, every gy over KH KW.
__device__ __forceinline__ void pool_grad_element(
        const real_t* __restrict__ gy, const int* __restrict__ argmax,
        long long e, long long H, long long W, long long KH, long long KW,
        long long SY, long long SX, long long PH, long long PW, long long OH,
        long long OW, real_t* __restrict__ gx) {
    index_t p;
    int h, w, y0, y1, x0, x1;
    plane_row_col(e, H, W, &p, &h, &w);
    covering(h, KH, SY, PH, OH, &y0, &y1);
    covering(w, KW, SX, PW, OW, &x0, &x1);
    const long long base = (long long)p * OH * OW;
    real_t acc = 0;
    for (int yo = y0; yo <= y1; ++yo)
        for (int xo = x0; xo <= x1; ++xo) {
            const long long o = base + (long long)yo * OW + xo;
            const int k = (h - yo * (int)SY + (int)PH) * (int)KW
                          + (w - xo * (int)SX + (int)PW);
            if (!argmax || argmax[o] == k) acc += gy[o];
        }
    gx[e] = argmax ? acc : acc / (real_t)(KH * KW);
}

extern "C" __global__ void max_pool(
        const real_t* __restrict__ x, long long P, long long H, long long W,
        long long KH, long long KW, long long SY, long long SX, long long PH,
        long long PW, long long OH, long long OW, real_t* __restrict__ y,
        int* __restrict__ argmax) {
    FOR_EACH_ELEMENT(e, P * OH * OW)
        pool_window(x, e, H, W, KH, KW, SY, SX, PH, PW, OH, OW, y, argmax);
}

extern "C" __global__ void max_pool_grad(
        const real_t* __restrict__ gy, const int* __restrict__ argmax,
        long long P, long long H, long long W, long long KH, long long KW,
        long long SY, long long SX, long long PH, long long PW, long long OH,
        long long OW, real_t* __restrict__ gx) {
    FOR_EACH_ELEMENT(e, P * H * W)
        pool_grad_element(gy, argmax, e, H, W, KH, KW, SY, SX, PH, PW, OH,
                          OW, gx);
}

extern "C" __global__ void average_pool(
        const real_t* __restrict__ x, long long P, long long H, long long W,
        long long KH, long long KW, long long SY, long long SX, long long PH,
        long long PW, long long OH, long long OW, real_t* __restrict__ y) {
    FOR_EACH_ELEMENT(e, P * OH * OW)
        pool_window(x, e, H, W, KH, KW, SY, SX, PH, PW, OH, OW, y, nullptr);
}

extern "C" __global__ void average_pool_grad(
        const real_t* __restrict__ gy, long long P, long long H, long long W,
        long long KH, long long KW, long long SY, long long SX, long long PH,
        long long PW, long long OH, long long OW, real_t* __restrict__ gx) {
    FOR_EACH_ELEMENT(e, P * H * W)
        pool_grad_element(gy, nullptr, e, H, W, KH, KW, SY, SX, PH, PW, OH,
                          OW, gx);
}
