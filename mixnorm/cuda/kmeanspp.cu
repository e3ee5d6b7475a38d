// k-means++ seeding and the fitted subset, for one dtype real_t and any K
// (see mixnorm/cuda/gmm.py).
#include "common.cuh"

// Squared distances of every row to the T candidates cand[t] (rows of x),
// dist[i, t] = min(closest[i], d2) when use_closest, and per-block sums of
// each column (the potential of each candidate).
extern "C" __global__ void seed_dist(
        const real_t* __restrict__ x, const real_t* __restrict__ shift,
        long long m, long long D, const long long* __restrict__ cand,
        long long T, const real_t* __restrict__ closest,
        long long use_closest, real_t* __restrict__ dist,
        real_t* __restrict__ part) {
    __shared__ real_t red[WARPS][MAXT];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    real_t acc[MAXT];
    for (int t = 0; t < MAXT; ++t) acc[t] = 0;
    FOR_EACH_ROW(i, m) {
        real_t q[MAXT];
        warp_row_distances<real_t, MAXT, true, false>(
            x + i * D, shift, D, x, cand, nullptr, (int)T, q);
        for (int t = 0; t < MAXT; ++t) {
            if (t < T) {
                const real_t v = use_closest ? fmin(q[t], closest[i]) : q[t];
                acc[t] += v;
                if (lane == t) dist[i * T + t] = v;
            }
        }
    }
    if (lane == 0)
        for (int t = 0; t < MAXT; ++t) red[warp][t] = acc[t];
    __syncthreads();
    if (threadIdx.x < T) {
        real_t s = 0;
        for (int w = 0; w < WARPS; ++w) s += red[w][threadIdx.x];
        part[blockIdx.x * T + threadIdx.x] = s;
    }
}

// k-means++ round `step` (one block of PICK threads; the launch bounds make
// ptxas fit PICK threads' registers in a block).  step 0 draws the first
// centre uniformly.  Step s >= 1 keeps the best candidate of round s - 1
// (least potential; round 0 had one) as centre s - 1, then, if s < K,
// draws T candidates with probability proportional to the squared distance
// to the nearest centre (the first index whose cumulative distance reaches
// u * total, as searchsorted does), or, if s == K, writes the centres.
extern "C" __global__ void __launch_bounds__(PICK) seed_pick(
        const real_t* __restrict__ x, const real_t* __restrict__ shift,
        long long m, long long D, const double* __restrict__ u,
        long long step, long long K, long long T,
        real_t* __restrict__ closest, const real_t* __restrict__ dist,
        const real_t* __restrict__ part, long long G,
        long long* __restrict__ cand, long long* __restrict__ idx,
        real_t* __restrict__ centers) {
    __shared__ real_t scan[PICK];
    __shared__ long long best_s;
    const int t = threadIdx.x;
    if (step == 0) {
        if (t == 0) {
            long long i = (long long)(u[0] * (double)m);
            cand[0] = i < 0 ? 0 : (i > m - 1 ? m - 1 : i);
        }
        return;
    }
    const long long tprev = step == 1 ? 1 : T;
    if (t == 0) {
        long long b = 0;
        real_t low = 0;
        for (long long j = 0; j < tprev && tprev > 1; ++j) {
            real_t p = 0;
            for (long long g = 0; g < G; ++g) p += part[g * tprev + j];
            if (j == 0 || p < low) { low = p; b = j; }
        }
        best_s = b;
        idx[step - 1] = cand[b];
    }
    __syncthreads();
    if (step == K) {
        for (long long e = t; e < K * D; e += PICK) {
            const long long d = e % D;
            const real_t s = shift ? shift[d] : (real_t)0;
            centers[e] = x[idx[e / D] * D + d] - s;
        }
        return;
    }
    const long long best = best_s;
    const long long chunk = (m + PICK - 1) / PICK;
    const long long lo = t * chunk < m ? t * chunk : m;
    const long long hi = lo + chunk < m ? lo + chunk : m;
    real_t s = 0;
    for (long long i = lo; i < hi; ++i) {
        const real_t c = dist[i * tprev + best];
        closest[i] = c;
        s += c;
    }
    scan[t] = s;
    __syncthreads();
    for (int o = 1; o < PICK; o <<= 1) {  // inclusive scan of chunk sums
        const real_t v = t >= o ? scan[t - o] : (real_t)0;
        __syncthreads();
        scan[t] += v;
        __syncthreads();
    }
    const real_t end = scan[t], begin = t > 0 ? scan[t - 1] : (real_t)0;
    const real_t total = scan[PICK - 1];
    if (t == 0)
        for (long long j = 0; j < T; ++j) cand[j] = m - 1;
    __syncthreads();
    for (long long j = 0; j < T; ++j) {
        const real_t target = (real_t)u[1 + (step - 1) * T + j] * total;
        if (lo < hi && end >= target && (t == 0 || begin < target)) {
            real_t run = begin;
            long long found = hi - 1;
            for (long long i = lo; i < hi; ++i) {
                run += closest[i];
                if (run >= target) { found = i; break; }
            }
            cand[j] = found;
        }
    }
}

// Rows (a * j + b) mod m, j < n, of a subset: a coprime to m, so distinct.
extern "C" __global__ void affine_rows(
        const double* __restrict__ u, long long m, long long n,
        long long* __restrict__ rows) {
    __shared__ long long ab[2];
    if (threadIdx.x == 0) {
        long long a = 1 + (long long)(u[0] * (double)(m > 1 ? m - 1 : 1));
        if (a >= m) a = 1;
        for (;;) {
            long long p = a, q = m;
            while (q) { const long long r = p % q; p = q; q = r; }
            if (p == 1) break;
            a = a + 1 < m ? a + 1 : 1;
        }
        long long b = (long long)(u[1] * (double)m);
        ab[0] = a;
        ab[1] = b < m ? b : m - 1;
    }
    __syncthreads();
    FOR_EACH_ELEMENT(j, n) rows[j] = (ab[0] * j + ab[1]) % m;
}
