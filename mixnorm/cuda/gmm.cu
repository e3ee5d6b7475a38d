// GMM primitives on (m, D) row-major data, for one dtype real_t and NK
// components (see mixnorm/cuda/gmm.py).  Row kernels give each sample a
// warp; column kernels give each block TD dimensions and a range of rows.
// Every kernel may subtract a column shift on the fly (NULL: none).
#include "common.cuh"

// E-step: out[i, k] = nu_k(x_i) (or its log) under the GMM (Eq. 27, 31);
// part[b, k] = sum of nu_k over the rows of block b, part[b, NK] = sum of
// log p(x_i).
extern "C" __global__ void estep(
        const real_t* __restrict__ x, const real_t* __restrict__ shift,
        long long m, long long D, const real_t* __restrict__ weights,
        const real_t* __restrict__ means,
        const real_t* __restrict__ variances, real_t* __restrict__ out,
        real_t* __restrict__ part, long long write_log) {
    __shared__ real_t cst[NK];
    __shared__ real_t red[WARPS][NK + 1];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int k = warp; k < NK; k += WARPS) {
        real_t s = 0;
        for (long long d = lane; d < D; d += 32)
            s += log(variances[k * D + d]);
        s = warp_sum(s);
        if (lane == 0) {
            const real_t w = weights[k];
            cst[k] = w > 0 ? log(w) - (real_t)0.5 * ((real_t)(D * LOG_2PI) + s)
                           : (real_t)NEG_INF;
        }
    }
    __syncthreads();
    real_t acc[NK + 1];
    for (int k = 0; k <= NK; ++k) acc[k] = 0;
    FOR_EACH_ROW(i, m) {
        real_t q[NK];
        warp_row_distances<real_t, NK, false, true>(
            x + i * D, shift, D, means, nullptr, variances, NK, q);
        real_t top = NEG_INF;
        for (int k = 0; k < NK; ++k) {
            q[k] = cst[k] - (real_t)0.5 * q[k];
            top = fmax(top, q[k]);
        }
        real_t s = 0;
        for (int k = 0; k < NK; ++k) s += exp(q[k] - top);
        const real_t lse = top + log(s);
        for (int k = 0; k < NK; ++k) {
            const real_t lr = q[k] - lse;
            const real_t r = exp(lr);
            acc[k] += r;
            if (lane == (k & 31)) out[i * NK + k] = write_log ? lr : r;
        }
        acc[NK] += lse;
    }
    if (lane == 0)
        for (int k = 0; k <= NK; ++k) red[warp][k] = acc[k];
    __syncthreads();
    for (int k = threadIdx.x; k <= NK; k += blockDim.x) {
        real_t s = 0;
        for (int w = 0; w < WARPS; ++w) s += red[w][k];
        part[blockIdx.x * (NK + 1) + k] = s;
    }
}

// k-means assignment: onehot[i] = e_{argmin_k |x_i - c_k|^2}, labels[i].
extern "C" __global__ void assign(
        const real_t* __restrict__ x, const real_t* __restrict__ shift,
        long long m, long long D, const real_t* __restrict__ centers,
        real_t* __restrict__ onehot, long long* __restrict__ labels) {
    const int lane = threadIdx.x & 31;
    FOR_EACH_ROW(i, m) {
        real_t q[NK];
        warp_row_distances<real_t, NK, false, false>(
            x + i * D, shift, D, centers, nullptr, nullptr, NK, q);
        int best = 0;
        for (int k = 1; k < NK; ++k)
            if (q[k] < q[best]) best = k;
        for (int k = 0; k < NK; ++k)
            if (lane == (k & 31)) onehot[i * NK + k] = k == best;
        if (lane == 0) labels[i] = best;
    }
}

// The partial-moment buffer of moments_part for P blocks of rows:
// [n (P, NK) | mean (P, NK, D) | m2 (P, NK, D)].
template <class P>
struct Parts {
    P *n, *mean, *m2;
    __device__ Parts(P* buf, long long n_parts, long long D)
        : n(buf), mean(buf + n_parts * NK),
          m2(buf + n_parts * NK * (1 + D)) {}
};

// A GMM buffer: [weights (NK) | means (NK, D) | variances (NK, D)].
struct Mixture {
    real_t *weights, *means, *variances;
    __device__ Mixture(real_t* buf, long long D)
        : weights(buf), means(buf + NK), variances(buf + NK + NK * D) {}
};

// Per block of rows (blockIdx.y) and TD dimensions (blockIdx.x): the
// weighted count, mean and centred sum of squares of each component
// (weights resp, or 1 when resp is NULL), two passes over rows in cache.
extern "C" __global__ void moments_part(
        const real_t* __restrict__ x, const real_t* __restrict__ shift,
        long long m, long long D, const real_t* __restrict__ resp,
        long long rows, real_t* __restrict__ parts) {
    const Parts<real_t> out(parts, gridDim.y, D);
    __shared__ real_t red[LANES][TD + 1];
    __shared__ real_t mean_s[NK][TD];
    __shared__ real_t n_s[NK];
    const int tx = threadIdx.x % TD, ty = threadIdx.x / TD;
    const long long d = (long long)blockIdx.x * TD + tx;
    const long long lo = (long long)blockIdx.y * rows;
    const long long hi = lo + rows < m ? lo + rows : m;
    const bool active = d < D;
    const real_t s = (active && shift) ? shift[d] : (real_t)0;
    real_t s0[NK], s1[NK];
    for (int k = 0; k < NK; ++k) { s0[k] = 0; s1[k] = 0; }
    for (long long i = lo + ty; i < hi; i += LANES) {
        const real_t v = active ? x[i * D + d] - s : (real_t)0;
        for (int k = 0; k < NK; ++k) {
            const real_t r = resp ? resp[i * NK + k] : (real_t)1;
            s0[k] += r;
            s1[k] += r * v;
        }
    }
    for (int k = 0; k < NK; ++k) {
        const real_t n = lane_sum(s0[k], red);
        const real_t t1 = lane_sum(s1[k], red);
        if (ty == 0) {
            mean_s[k][tx] = n > 0 ? t1 / n : (real_t)0;
            if (tx == 0) n_s[k] = n;
        }
    }
    __syncthreads();
    real_t s2[NK];
    for (int k = 0; k < NK; ++k) s2[k] = 0;
    for (long long i = lo + ty; i < hi; i += LANES) {
        const real_t v = active ? x[i * D + d] - s : (real_t)0;
        for (int k = 0; k < NK; ++k) {
            const real_t r = resp ? resp[i * NK + k] : (real_t)1;
            const real_t e = v - mean_s[k][tx];
            s2[k] += r * e * e;
        }
    }
    for (int k = 0; k < NK; ++k) {
        const real_t t2 = lane_sum(s2[k], red);
        const long long o = ((long long)blockIdx.y * NK + k) * D + d;
        if (ty == 0 && active) {
            out.mean[o] = mean_s[k][tx];
            out.m2[o] = t2;
        }
        if (ty == 0 && tx == 0 && blockIdx.x == 0)
            out.n[blockIdx.y * NK + k] = n_s[k];
    }
}

// The partial moments of moments_part's blocks, combined exactly (Chan et
// al., 1979) for component k and dimension d: count n, weighted sum s1,
// mean and centred sum of squares m2.
struct Moments { real_t n, s1, mean, m2; };

__device__ Moments merge_parts(const real_t* __restrict__ parts,
                               long long n_parts, long long D, long long k,
                               long long d) {
    const Parts<const real_t> p(parts, n_parts, D);
    Moments r;
    r.n = 0;
    r.s1 = 0;
    for (long long b = 0; b < n_parts; ++b) {
        const real_t nb = p.n[b * NK + k];
        r.n += nb;
        r.s1 += nb * p.mean[(b * NK + k) * D + d];
    }
    r.mean = r.n > 0 ? r.s1 / r.n : (real_t)0;
    r.m2 = 0;
    for (long long b = 0; b < n_parts; ++b) {
        const long long o = (b * NK + k) * D + d;
        const real_t dm = p.mean[o] - r.mean;
        r.m2 += p.m2[o] + p.n[b * NK + k] * dm * dm;
    }
    return r;
}

// Element e = k * D + d of a merge kernel's (NK, D) output and the
// merged moments there (valid: e is inside the output).
struct MergeElement {
    long long e, k, d;
    bool valid;
    Moments r;
};

__device__ MergeElement merge_element(const real_t* __restrict__ parts,
                                      long long n_parts, long long D) {
    MergeElement m;
    m.e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    m.valid = m.e < NK * D;
    m.k = m.e / D;
    m.d = m.e % D;
    if (m.valid) m.r = merge_parts(parts, n_parts, D, m.k, m.d);
    return m;
}

// Column statistics (NK = 1, unweighted moments): mean[d] and
// floor[d] = ratio * var[d] + reg, the variance floor of the fit.
extern "C" __global__ void column_stats(
        const real_t* __restrict__ parts, long long n_parts, long long D,
        double ratio, double reg, real_t* __restrict__ mean,
        real_t* __restrict__ floor) {
    const long long d = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (d >= D) return;
    const Moments r = merge_parts(parts, n_parts, D, 0, d);
    mean[d] = r.mean;
    floor[d] = (real_t)ratio * (r.n > 0 ? r.m2 / r.n : (real_t)0)
               + (real_t)reg;
}

// Write a merge kernel's output at element `at`: mean and variance, and
// the component's weight once (at d = 0).
__device__ void put(real_t* __restrict__ out, long long D,
                    const MergeElement& at, real_t mean, real_t var,
                    real_t weight) {
    const Mixture g(out, D);
    g.means[at.e] = mean;
    g.variances[at.e] = var;
    if (at.d == 0) g.weights[at.k] = weight;
}

// The merged moments themselves, in the GMM buffer's layout: [n (NK) |
// mean (NK, D) | m2 (NK, D)] (for combining them across processes).
extern "C" __global__ void merged_moments(
        const real_t* __restrict__ parts, long long n_parts, long long D,
        real_t* __restrict__ out) {
    const MergeElement at = merge_element(parts, n_parts, D);
    if (at.valid) put(out, D, at, at.r.mean, at.r.m2, at.r.n);
}

// A GMM from a hard partition (one-hot moments): weights n_k / n_rows,
// means the cluster means (move; a cluster without points keeps prev) or
// the fixed centres prev, variances about those means, at least floor.
extern "C" __global__ void partition_gmm(
        const real_t* __restrict__ parts, long long n_parts, long long D,
        long long move, const real_t* __restrict__ prev, double reg,
        const real_t* __restrict__ floor, double n_rows,
        real_t* __restrict__ out) {
    const MergeElement at = merge_element(parts, n_parts, D);
    if (!at.valid) return;
    const Moments& r = at.r;
    const real_t c = (move && r.n > 0) ? r.mean : prev[at.e];
    const real_t dm = r.mean - c;
    put(out, D, at, c,
        at_least((r.m2 + r.n * dm * dm) / (r.n > 1 ? r.n : (real_t)1)
                 + (real_t)reg, floor[at.d]),
        r.n / (real_t)n_rows);
}

// EM M-step from posterior-weighted moments, as scikit-learn's: counts
// n_k + 10 eps, means s1_k / that, variances about them plus reg, at
// least floor; weights the counts normalised.
extern "C" __global__ void m_step(
        const real_t* __restrict__ parts, long long n_parts, long long D,
        double reg, const real_t* __restrict__ floor, double eps10,
        real_t* __restrict__ out) {
    const MergeElement at = merge_element(parts, n_parts, D);
    if (!at.valid) return;
    const Moments& r = at.r;
    const real_t nk = r.n + (real_t)eps10;
    const real_t mu = r.s1 / nk;
    const real_t dm = r.mean - mu;
    real_t all = 1;
    if (at.d == 0) {  // the total count, for the weight
        const Parts<const real_t> p(parts, n_parts, D);
        all = 0;
        for (long long j = 0; j < NK; ++j) {
            real_t nj = 0;
            for (long long b = 0; b < n_parts; ++b) nj += p.n[b * NK + j];
            all += nj + (real_t)eps10;
        }
    }
    put(out, D, at, mu,
        at_least((r.m2 + r.n * dm * dm) / nk + (real_t)reg, floor[at.d]),
        nk / all);
}

// Section 5.3: components whose mean posterior (from estep's part) is
// below min_weight are dropped, unless heaviest; the posteriors are the
// kept components' log posteriors renormalised among themselves.  A NaN
// mean posterior (statistics that overflowed) is kept, so that NaN
// reaches the posteriors instead of every component being dropped, as in
// the NumPy path.
extern "C" __global__ void prune(
        const real_t* __restrict__ log_resp, long long m,
        const real_t* __restrict__ part, long long G, double min_weight,
        const real_t* __restrict__ weights_in,
        real_t* __restrict__ weights_out, real_t* __restrict__ resp) {
    __shared__ real_t lam[NK];
    __shared__ int keep[NK];
    for (int k = threadIdx.x; k < NK; k += blockDim.x) {
        real_t s = 0;
        for (long long g = 0; g < G; ++g) s += part[g * (NK + 1) + k];
        lam[k] = s / (real_t)m;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        real_t top = lam[0];
        for (int k = 1; k < NK; ++k) top = nan_max(top, lam[k]);
        real_t ws = 0;
        for (int k = 0; k < NK; ++k) {
            keep[k] = !(lam[k] < (real_t)min_weight) || lam[k] == top;
            if (keep[k]) ws += weights_in[k];
        }
        if (blockIdx.x == 0)
            for (int k = 0; k < NK; ++k)
                weights_out[k] = keep[k] ? weights_in[k] / ws : (real_t)0;
    }
    __syncthreads();
    FOR_EACH_ELEMENT(i, m) {
        real_t top = NEG_INF;
        for (int k = 0; k < NK; ++k)
            if (keep[k]) top = fmax(top, log_resp[i * NK + k]);
        real_t s = 0;
        for (int k = 0; k < NK; ++k)
            if (keep[k]) s += exp(log_resp[i * NK + k] - top);
        for (int k = 0; k < NK; ++k)
            resp[i * NK + k] = keep[k] ? exp(log_resp[i * NK + k] - top) / s
                                       : (real_t)0;
    }
}
