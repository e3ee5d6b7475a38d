"""CUDA kernels for the GMM engine and the mixture normalizing transform.

The GPU path of :mod:`mixnorm.gmm` and :mod:`mixnorm.functions`.  It
computes what the NumPy reference computes, with few kernel launches and no
host-device synchronisation: every loop bound is a shape or a
hyper-parameter known on the host, random numbers are drawn on the device
from a device-held state (:class:`DeviceUniforms`), index choices
(k-means++ candidates, the best trial, the fitted subset) are made and
consumed on the device, and reductions over blocks of rows end in
per-block partial sums that the next kernel adds up, so nothing is read
back.

Kernels (``_SOURCE``, compiled by NVRTC once per dtype and K):

* row kernels, one warp per sample: ``estep`` (diagonal Gaussian
  log-densities, log-sum-exp and posteriors in one pass, Eq. 27 and 31),
  ``assign`` (k-means assignment), ``seed_dist`` (distances to the
  k-means++ candidates and the potential of each);
* ``seed_pick``, one block: the best candidate of the previous round and the
  D^2-weighted draw of the next candidates (a block scan of the distances);
* column kernels: ``moments_part`` (per block of rows, posterior-weighted
  counts, means and centred sums of squares) and ``moments_merge`` (their
  exact combination, Chan et al. 1979, and the M-step, k-means update or
  column statistics built from it);
* ``prune``: Section 5.3's discarding of light components;
* ``affine_rows``: the subset of rows fitted when ``fit_fraction < 1``;
* ``mn_stats``, ``mn_output``, ``mn_grad_stats``, ``mn_grad_x``: Eq. 34-36
  and their gradient on the (N, C, H*W) layout;
* ``nonfinite``: a sticky device flag set by any NaN or Inf;
* ``uniforms`` (``_UNIFORM_SOURCE``): counter-based random numbers.

CuPy is imported here only if it is installed; :func:`supports` tells
whether an array takes this path.  It is on by default (tests/test_gpu.py
passed on an H100, see benchmarks/results/gpu-tests.md); environment
variable ``MIXNORM_KERNELS=0``, or ``kernels.enabled = False``, turns it off,
and CuPy arrays then run the array-generic reference code of
:mod:`mixnorm.gmm` and :mod:`mixnorm.functions`, which synchronises in a few
places and is about 45 times slower per MN call.
"""
import math
import os

import numpy

try:
    import cupy
except ImportError:  # CPU-only install
    cupy = None

_WARPS = 8              # warps per block of the row kernels
_ROW_BLOCKS = 512       # most blocks of a row kernel (grid-stride beyond)
_COL_TARGET = 1024      # blocks aimed at by moments_part
_TD = 8                 # dimensions per block of moments_part
_MAX_TRIALS = 16        # k-means++ candidates per round the kernels hold
_COLSTATS, _KMEANS, _KMEANS_FIXED, _EM = 0, 1, 2, 3   # moments_merge modes

_SOURCE = r'''
#define WARPS 8
#define LANES 32
#define TD 8
#define MAXT 16
#define PICK 1024
#define LOG_2PI 1.8378770664093453
#define NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ real_t warp_sum(real_t v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the 256 threads of a block; every thread gets the total.
__device__ real_t block_sum(real_t v, real_t* smem) {
    v = warp_sum(v);
    if ((threadIdx.x & 31) == 0) smem[threadIdx.x >> 5] = v;
    __syncthreads();
    real_t s = 0;
    for (int w = 0; w < WARPS; ++w) s += smem[w];
    __syncthreads();
    return s;
}

// Sum over the LANES row lanes of a moments_part block, per dimension.
__device__ real_t lane_sum(real_t v, real_t (*red)[TD + 1]) {
    const int tx = threadIdx.x % TD, ty = threadIdx.x / TD;
    red[ty][tx] = v;
    __syncthreads();
    for (int o = LANES / 2; o > 0; o >>= 1) {
        if (ty < o) red[ty][tx] += red[ty + o][tx];
        __syncthreads();
    }
    real_t s = red[0][tx];
    __syncthreads();
    return s;
}

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
    for (long long i = (long long)blockIdx.x * WARPS + warp; i < m;
         i += (long long)gridDim.x * WARPS) {
        real_t q[NK];
        for (int k = 0; k < NK; ++k) q[k] = 0;
        const real_t* row = x + i * D;
        for (long long d = lane; d < D; d += 32) {
            const real_t v = row[d] - (shift ? shift[d] : (real_t)0);
            for (int k = 0; k < NK; ++k) {
                const real_t e = v - means[k * D + d];
                q[k] += e * e / variances[k * D + d];
            }
        }
        real_t top = NEG_INF;
        for (int k = 0; k < NK; ++k) {
            q[k] = cst[k] - (real_t)0.5 * warp_sum(q[k]);
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
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (long long i = (long long)blockIdx.x * WARPS + warp; i < m;
         i += (long long)gridDim.x * WARPS) {
        real_t q[NK];
        for (int k = 0; k < NK; ++k) q[k] = 0;
        const real_t* row = x + i * D;
        for (long long d = lane; d < D; d += 32) {
            const real_t v = row[d] - (shift ? shift[d] : (real_t)0);
            for (int k = 0; k < NK; ++k) {
                const real_t e = v - centers[k * D + d];
                q[k] += e * e;
            }
        }
        int best = 0;
        real_t low = warp_sum(q[0]);
        for (int k = 1; k < NK; ++k) {
            const real_t v = warp_sum(q[k]);
            if (v < low) { low = v; best = k; }
        }
        for (int k = 0; k < NK; ++k)
            if (lane == (k & 31)) onehot[i * NK + k] = k == best;
        if (lane == 0) labels[i] = best;
    }
}

// k-means++: squared distances of every row to the T candidates cand[t],
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
    for (long long i = (long long)blockIdx.x * WARPS + warp; i < m;
         i += (long long)gridDim.x * WARPS) {
        real_t q[MAXT];
        for (int t = 0; t < MAXT; ++t) q[t] = 0;
        const real_t* row = x + i * D;
        for (long long d = lane; d < D; d += 32) {
            const real_t s = shift ? shift[d] : (real_t)0;
            const real_t v = row[d] - s;
            for (int t = 0; t < MAXT; ++t) {
                if (t < T) {
                    const real_t e = v - (x[cand[t] * D + d] - s);
                    q[t] += e * e;
                }
            }
        }
        for (int t = 0; t < MAXT; ++t) {
            if (t < T) {
                real_t v = warp_sum(q[t]);
                if (use_closest) v = fmin(v, closest[i]);
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

// k-means++ round `step` (one block of PICK threads).  step 0 draws the
// first centre uniformly.  Step s >= 1 keeps the best candidate of round
// s - 1 (least potential; round 0 had one) as centre s - 1, then, if s < K,
// draws T candidates with probability proportional to the squared distance
// to the nearest centre (the first index whose cumulative distance reaches
// u * total, as searchsorted does), or, if s == K, writes the centres.
extern "C" __global__ void seed_pick(
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

// Per block of rows (blockIdx.y) and TD dimensions (blockIdx.x): the
// weighted count, mean and centred sum of squares of each component
// (weights resp, or 1 when resp is NULL), two passes over rows in cache.
extern "C" __global__ void moments_part(
        const real_t* __restrict__ x, const real_t* __restrict__ shift,
        long long m, long long D, const real_t* __restrict__ resp,
        long long rows, real_t* __restrict__ pn, real_t* __restrict__ pmean,
        real_t* __restrict__ pm2) {
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
        if (ty == 0 && active) { pmean[o] = mean_s[k][tx]; pm2[o] = t2; }
        if (ty == 0 && tx == 0 && blockIdx.x == 0)
            pn[blockIdx.y * NK + k] = n_s[k];
    }
}

// Combine the blocks of moments_part (Chan et al.) and build, per mode:
// 0 column statistics (means = mean, variances = ratio * var + reg),
// 1 k-means update and GMM initialisation (a centre without points keeps
// prev), 2 the same around the fixed centres prev, 3 the EM M-step.
extern "C" __global__ void moments_merge(
        const real_t* __restrict__ pn, const real_t* __restrict__ pmean,
        const real_t* __restrict__ pm2, long long n_parts, long long D,
        long long mode, const real_t* __restrict__ prev, double reg,
        const real_t* __restrict__ floor_v, double floor_s, double n_rows,
        double ratio, double eps10, real_t* __restrict__ weights,
        real_t* __restrict__ means, real_t* __restrict__ variances) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= NK * D) return;
    const long long k = e / D, d = e % D;
    real_t n = 0, s1 = 0;
    for (long long p = 0; p < n_parts; ++p) {
        const real_t np = pn[p * NK + k];
        n += np;
        s1 += np * pmean[(p * NK + k) * D + d];
    }
    const real_t mean = n > 0 ? s1 / n : (real_t)0;
    real_t m2 = 0;
    for (long long p = 0; p < n_parts; ++p) {
        const long long o = (p * NK + k) * D + d;
        const real_t dm = pmean[o] - mean;
        m2 += pm2[o] + pn[p * NK + k] * dm * dm;
    }
    const real_t fl = floor_v ? floor_v[d] : (real_t)floor_s;
    if (mode == 0) {
        means[e] = mean;
        const real_t var = n > 0 ? m2 / n : (real_t)0;
        variances[e] = (real_t)ratio * var + (real_t)reg;
        return;
    }
    if (mode == 3) {
        const real_t nk = n + (real_t)eps10;
        const real_t mu = s1 / nk;
        const real_t dm = mean - mu;
        means[e] = mu;
        variances[e] = fmax((m2 + n * dm * dm) / nk + (real_t)reg, fl);
        if (d == 0) {
            real_t all = 0;
            for (long long j = 0; j < NK; ++j) {
                real_t nj = 0;
                for (long long p = 0; p < n_parts; ++p) nj += pn[p * NK + j];
                all += nj + (real_t)eps10;
            }
            weights[k] = nk / all;
        }
        return;
    }
    const real_t c = (mode == 1 && n > 0) ? mean : prev[e];
    const real_t dm = mean - c;
    means[e] = c;
    variances[e] = fmax((m2 + n * dm * dm) / (n > 1 ? n : (real_t)1)
                        + (real_t)reg, fl);
    if (d == 0) weights[k] = n / (real_t)n_rows;
}

// Section 5.3: components whose mean posterior (from estep's part) is
// below min_weight are dropped, unless heaviest; the posteriors are the
// kept components' log posteriors renormalised among themselves.
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
        for (int k = 1; k < NK; ++k) top = fmax(top, lam[k]);
        real_t ws = 0;
        for (int k = 0; k < NK; ++k) {
            keep[k] = lam[k] >= (real_t)min_weight || lam[k] == top;
            if (keep[k]) ws += weights_in[k];
        }
        if (blockIdx.x == 0)
            for (int k = 0; k < NK; ++k)
                weights_out[k] = keep[k] ? weights_in[k] / ws : (real_t)0;
    }
    __syncthreads();
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
         i < m; i += (long long)gridDim.x * blockDim.x) {
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
    for (long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
         j < n; j += (long long)gridDim.x * blockDim.x)
        rows[j] = (ab[0] * j + ab[1]) % m;
}

// Eq. 35-36 per channel c (one block): lam_k, the aggregation scales
// 1/sqrt(lam_k) (1 for an absent component), den_k = max(mass_k, tiny),
// mu_kc, var_kc (centred) and 1/sqrt(var_kc + eps).
extern "C" __global__ void mn_stats(
        const real_t* __restrict__ x, const real_t* __restrict__ resp,
        long long N, long long C, long long L, double eps, double tiny,
        real_t* __restrict__ lam, real_t* __restrict__ scale,
        real_t* __restrict__ den, real_t* __restrict__ mean,
        real_t* __restrict__ var, real_t* __restrict__ inv_std) {
    __shared__ real_t smem[WARPS];
    __shared__ real_t mu[NK], dn[NK];
    const long long c = blockIdx.x, M = N * L;
    real_t s0[NK], s1[NK];
    for (int k = 0; k < NK; ++k) { s0[k] = 0; s1[k] = 0; }
    for (long long j = threadIdx.x; j < M; j += blockDim.x) {
        const real_t v = x[((j / L) * C + c) * L + j % L];
        for (int k = 0; k < NK; ++k) {
            const real_t r = resp[j * NK + k];
            s0[k] += r;
            s1[k] += r * v;
        }
    }
    for (int k = 0; k < NK; ++k) {
        const real_t n = block_sum(s0[k], smem);
        const real_t t1 = block_sum(s1[k], smem);
        if (threadIdx.x == 0) {
            dn[k] = fmax(n, (real_t)tiny);
            mu[k] = t1 / dn[k];
            if (blockIdx.x == 0) {
                const real_t l = n / (real_t)M;
                lam[k] = l;
                scale[k] = l > 0 ? (real_t)1 / sqrt(l) : (real_t)1;
                den[k] = dn[k];
            }
        }
    }
    __syncthreads();
    real_t s2[NK];
    for (int k = 0; k < NK; ++k) s2[k] = 0;
    for (long long j = threadIdx.x; j < M; j += blockDim.x) {
        const real_t v = x[((j / L) * C + c) * L + j % L];
        for (int k = 0; k < NK; ++k) {
            const real_t e = v - mu[k];
            s2[k] += resp[j * NK + k] * e * e;
        }
    }
    for (int k = 0; k < NK; ++k) {
        const real_t t2 = block_sum(s2[k], smem);
        if (threadIdx.x == 0) {
            const real_t v = t2 / dn[k];
            mean[k * C + c] = mu[k];
            var[k * C + c] = v;
            inv_std[k * C + c] = (real_t)1 / sqrt(v + (real_t)eps);
        }
    }
}

// Eq. 34 and the affine step: y = gamma * sum_k nu_k scale_k xhat^k + beta.
extern "C" __global__ void mn_output(
        const real_t* __restrict__ x, const real_t* __restrict__ resp,
        long long N, long long C, long long L,
        const real_t* __restrict__ scale, const real_t* __restrict__ mean,
        const real_t* __restrict__ inv_std, const real_t* __restrict__ gamma,
        const real_t* __restrict__ beta, real_t* __restrict__ y) {
    const long long size = N * C * L;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
         e < size; e += (long long)gridDim.x * blockDim.x) {
        const long long l = e % L, nc = e / L, c = nc % C;
        const long long i = (nc / C) * L + l;
        const real_t v = x[e];
        real_t h = 0;
        for (int k = 0; k < NK; ++k)
            h += resp[i * NK + k] * scale[k] * (v - mean[k * C + c])
                 * inv_std[k * C + c];
        y[e] = gamma[c] * h + beta[c];
    }
}

// Backward, per channel (one block): with g_k = nu_k scale_k gamma gy,
// total_kc = sum_i g_k, proj_kc = sum_i g_k xhat^k, ggamma_c = sum_i gy xhat
// and gbeta_c = sum_i gy.
extern "C" __global__ void mn_grad_stats(
        const real_t* __restrict__ x, const real_t* __restrict__ resp,
        const real_t* __restrict__ gy, long long N, long long C,
        long long L, const real_t* __restrict__ scale,
        const real_t* __restrict__ mean, const real_t* __restrict__ inv_std,
        const real_t* __restrict__ gamma, real_t* __restrict__ total,
        real_t* __restrict__ proj, real_t* __restrict__ ggamma,
        real_t* __restrict__ gbeta) {
    __shared__ real_t smem[WARPS];
    const long long c = blockIdx.x, M = N * L;
    const real_t gm = gamma[c];
    real_t tt[NK], pp[NK], gg = 0, gb = 0;
    for (int k = 0; k < NK; ++k) { tt[k] = 0; pp[k] = 0; }
    for (long long j = threadIdx.x; j < M; j += blockDim.x) {
        const long long o = ((j / L) * C + c) * L + j % L;
        const real_t v = x[o], dy = gy[o], g = dy * gm;
        real_t xhat = 0;
        for (int k = 0; k < NK; ++k) {
            const real_t coef = resp[j * NK + k] * scale[k];
            const real_t xh = (v - mean[k * C + c]) * inv_std[k * C + c];
            tt[k] += coef * g;
            pp[k] += coef * g * xh;
            xhat += coef * xh;
        }
        gg += dy * xhat;
        gb += dy;
    }
    for (int k = 0; k < NK; ++k) {
        const real_t a = block_sum(tt[k], smem);
        const real_t b = block_sum(pp[k], smem);
        if (threadIdx.x == 0) { total[k * C + c] = a; proj[k * C + c] = b; }
    }
    const real_t a = block_sum(gg, smem);
    const real_t b = block_sum(gb, smem);
    if (threadIdx.x == 0) { ggamma[c] = a; gbeta[c] = b; }
}

// gx = sum_k inv_std_k (g_k - nu_k / den_k (total_k + xhat^k proj_k)).
extern "C" __global__ void mn_grad_x(
        const real_t* __restrict__ x, const real_t* __restrict__ resp,
        const real_t* __restrict__ gy, long long N, long long C, long long L,
        const real_t* __restrict__ scale, const real_t* __restrict__ den,
        const real_t* __restrict__ mean, const real_t* __restrict__ inv_std,
        const real_t* __restrict__ gamma, const real_t* __restrict__ total,
        const real_t* __restrict__ proj, real_t* __restrict__ gx) {
    const long long size = N * C * L;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
         e < size; e += (long long)gridDim.x * blockDim.x) {
        const long long l = e % L, nc = e / L, c = nc % C;
        const long long i = (nc / C) * L + l;
        const real_t v = x[e], g = gy[e] * gamma[c];
        real_t acc = 0;
        for (int k = 0; k < NK; ++k) {
            const long long o = k * C + c;
            const real_t r = resp[i * NK + k];
            const real_t xh = (v - mean[o]) * inv_std[o];
            acc += inv_std[o] * (r * scale[k] * g
                                 - r / den[k] * (total[o] + xh * proj[o]));
        }
        gx[e] = acc;
    }
}
'''

# A NaN or an Inf has all exponent bits set, in every IEEE format.
_FLAG_SOURCE = r'''
extern "C" __global__ void nonfinite(const bits_t* __restrict__ x,
                                     long long n, int* __restrict__ flag) {
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
         e < n; e += (long long)gridDim.x * blockDim.x)
        if ((x[e] & EXP_MASK) == EXP_MASK) *flag = 1;
}
'''

# Counter-based uniforms (splitmix64 of key + counter): state = [key,
# counter] in device memory, read and advanced by the kernel itself, so a
# draw needs no host value and can be captured into a CUDA graph (cuRAND,
# which CuPy's generator uses, cannot be called during a capture).
_UNIFORM_SOURCE = r'''
__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

extern "C" __global__ void uniforms(unsigned long long* state, long long n,
                                    double* __restrict__ out) {
    const unsigned long long key = state[0], base = state[1];
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        const unsigned long long z =
            mix64(key + (base + (unsigned long long)i + 1ull)
                  * 0x9e3779b97f4a7c15ull);
        out[i] = (double)(z >> 11) * 1.1102230246251565e-16;  // 2^-53
    }
    __syncthreads();
    if (threadIdx.x == 0) state[1] = base + (unsigned long long)n;
}
'''

_modules = {}


#: Whether CuPy arrays take the kernel path (see the module docstring).
enabled = os.environ.get('MIXNORM_KERNELS', '1') != '0'


def supports(x):
    """Whether ``x`` takes the kernel path: kernels enabled and ``x`` a
    float32/float64 CuPy array."""
    return (enabled and cupy is not None and isinstance(x, cupy.ndarray)
            and x.dtype in (numpy.float32, numpy.float64))


def _kernel(name, source, *options):
    """Kernel ``name`` of ``source`` compiled with ``options`` (cached)."""
    key = (source, options)
    module = _modules.get(key)
    if module is None:
        module = _modules[key] = cupy.RawModule(code=source, options=options)
    return module.get_function(name)


def _function(name, dtype, n_components):
    """A kernel of ``_SOURCE`` compiled for dtype and K."""
    real = 'float' if numpy.dtype(dtype) == numpy.float32 else 'double'
    return _kernel(name, _SOURCE, '-Dreal_t=' + real,
                   '-DNK={}'.format(n_components))


def _row_grid(m):
    return max(1, min(_ROW_BLOCKS, -(-m // _WARPS)))


def _flat_grid(size, threads=256):
    return max(1, min(4096, -(-size // threads)))


class DeviceUniforms(object):
    """Uniform [0, 1) doubles drawn on the device from a device-held state.

    The generator of the kernel path when no ``rng`` is given: each draw is
    one launch that reads and advances a (key, counter) pair in device
    memory (``uniforms``), so drawing needs no host-device traffic and works
    inside a CUDA graph capture.  One state per device; the key comes from
    :func:`seed` or, on first use, from NumPy's global generator.
    """

    def __init__(self):
        self._states = {}

    def seed(self, seed=None):
        """Reset the current device's state to ``seed`` (None: from NumPy's
        global generator)."""
        if seed is None:
            seed = numpy.random.randint(2 ** 62)
        key = (int(seed) * 0xd1342543de82ef95 + 0x632be59bd9b4e019) \
            % 2 ** 64
        self._states[cupy.cuda.Device().id] = cupy.asarray(
            numpy.array([key, 0], numpy.uint64))

    def random_sample(self, size):
        """(size,) float64 uniforms on the current device."""
        state = self._states.get(cupy.cuda.Device().id)
        if state is None:
            self.seed()
            state = self._states[cupy.cuda.Device().id]
        out = cupy.empty(size, numpy.float64)
        _kernel('uniforms', _UNIFORM_SOURCE)((1,), (128,), (state, size, out))
        return out


#: The kernel path's default random generator (see :class:`DeviceUniforms`).
uniforms = DeviceUniforms()


def seed(value=None):
    """Seed the kernel path's generator on the current device."""
    uniforms.seed(value)


def _random(rng):
    return uniforms if rng is None else rng


def _contiguous(a, dtype):
    return cupy.ascontiguousarray(cupy.asarray(a), dtype=dtype)


# ----------------------------------------------------------------- GMM parts
def _seed(x, shift, n_components, n_trials, u):
    """k-means++ centres (rows of x - shift) from the uniforms u."""
    if n_trials > _MAX_TRIALS:
        raise ValueError('the CUDA k-means++ holds at most {} local trials, '
                         'not {}'.format(_MAX_TRIALS, n_trials))
    m, d = x.shape
    k = n_components
    pick = _function('seed_pick', x.dtype, 1)
    dist_fn = _function('seed_dist', x.dtype, 1)
    grid = _row_grid(m)
    closest = cupy.empty(m, x.dtype)
    dist = cupy.empty(m * n_trials, x.dtype)
    part = cupy.empty(grid * n_trials, x.dtype)
    cand = cupy.empty(n_trials, numpy.int64)
    idx = cupy.empty(k, numpy.int64)
    centers = cupy.empty((k, d), x.dtype)

    def pick_step(step):
        pick((1,), (1024,), (x, shift, m, d, u, step, k, n_trials, closest,
                             dist, part, grid, cand, idx, centers))

    pick_step(0)
    for step in range(1, k + 1):
        if k > 1:  # distances to the candidates of round step - 1
            n_cand = 1 if step == 1 else n_trials
            dist_fn((grid,), (32 * _WARPS,), (
                x, shift, m, d, cand, n_cand, closest, int(step > 1), dist,
                part))
        pick_step(step)
    return centers


def _assign(x, shift, centers):
    m, d = x.shape
    k = centers.shape[0]
    onehot = cupy.empty((m, k), x.dtype)
    labels = cupy.empty(m, numpy.int64)
    _function('assign', x.dtype, k)((_row_grid(m),), (32 * _WARPS,), (
        x, shift, m, d, centers, onehot, labels))
    return onehot, labels


def _e_step(x, shift, gmm, write_log=False):
    """Posteriors (or log posteriors) (m, K) and per-block sums (G, K + 1)."""
    m, d = x.shape
    k = gmm.weights.shape[0]
    grid = _row_grid(m)
    out = cupy.empty((m, k), x.dtype)
    part = cupy.empty((grid, k + 1), x.dtype)
    _function('estep', x.dtype, k)((grid,), (32 * _WARPS,), (
        x, shift, m, d, _contiguous(gmm.weights, x.dtype),
        _contiguous(gmm.means, x.dtype), _contiguous(gmm.variances, x.dtype),
        out, part, int(write_log)))
    return out, part


def _moments(x, shift, resp, n_components, mode, prev=None, reg_covar=0.0,
             var_floor=0.0, ratio=0.0):
    """One of moments_merge's modes applied to the moments of x's rows.

    Returns:
        ``(weights, means, variances)`` as moments_merge writes them.
    """
    m, d = x.shape
    k = n_components
    tiles = -(-d // _TD)
    n_parts = max(1, min(-(-m // 32), -(-_COL_TARGET // tiles)))
    rows = -(-m // n_parts)
    n_parts = -(-m // rows)
    pn = cupy.empty((n_parts, k), x.dtype)
    pmean = cupy.empty((n_parts, k, d), x.dtype)
    pm2 = cupy.empty((n_parts, k, d), x.dtype)
    _function('moments_part', x.dtype, k)((tiles, n_parts), (256,), (
        x, shift, m, d, resp, rows, pn, pmean, pm2))
    weights = cupy.empty(k, x.dtype)
    means = cupy.empty((k, d), x.dtype)
    variances = cupy.empty((k, d), x.dtype)
    if isinstance(var_floor, cupy.ndarray):
        floor_v, floor_s = _contiguous(var_floor, x.dtype), 0.0
    else:
        floor_v, floor_s = None, float(var_floor)
    eps10 = 10 * float(numpy.finfo(x.dtype).eps)
    _function('moments_merge', x.dtype, k)((-(-k * d // 256),), (256,), (
        pn, pmean, pm2, n_parts, d, mode, prev, float(reg_covar), floor_v,
        floor_s, float(m), float(ratio), eps10, weights, means, variances))
    return weights, means, variances


def subset_rows(m, n, rng):
    """n distinct row indices of m, ``(a j + b) mod m`` (``affine_rows``).

    Args:
        m (int): number of rows.
        n (int): subset size, at most m.
        rng: CuPy random generator (``random_sample`` is called once).

    Returns:
        cupy.ndarray: (n,) int64.
    """
    rows = cupy.empty(n, numpy.int64)
    _function('affine_rows', numpy.float32, 1)((_flat_grid(n),), (256,), (
        _contiguous(rng.random_sample(2), numpy.float64), m, n, rows))
    return rows


def kmeans_pp(x, n_components, rng, n_local_trials):
    """:func:`mixnorm.gmm.kmeans_pp` on the device.

    Draws ``1 + (K - 1) * n_local_trials`` uniforms at once: the first
    index is ``floor(u_0 * m)``, round r uses the next n_local_trials.
    """
    x = cupy.ascontiguousarray(x)
    u = _random(rng).random_sample(1 + (n_components - 1) * n_local_trials)
    return _seed(x, None, n_components, n_local_trials,
                 _contiguous(u, numpy.float64))


def kmeans(x, centers, n_iter):
    """:func:`mixnorm.gmm.kmeans` on the device."""
    x = cupy.ascontiguousarray(x)
    centers = _contiguous(centers, x.dtype)
    onehot, labels = _assign(x, None, centers)
    for it in range(n_iter):
        _, centers, _ = _moments(x, None, onehot, centers.shape[0], _KMEANS,
                                 prev=centers)
        if it < n_iter - 1:
            onehot, labels = _assign(x, None, centers)
    return centers, labels


def responsibilities(x, gmm):
    """:func:`mixnorm.gmm.responsibilities` on the device."""
    return _e_step(cupy.ascontiguousarray(x), None, gmm)[0]


def em(x, gmm, n_iter, reg_covar, var_floor):
    """:func:`mixnorm.gmm.em` on the device."""
    from mixnorm.gmm import GMM
    x = cupy.ascontiguousarray(x)
    k = gmm.weights.shape[0]
    for _ in range(n_iter):
        resp, _ = _e_step(x, None, gmm)
        gmm = GMM(*_moments(x, None, resp, k, _EM, reg_covar=reg_covar,
                            var_floor=var_floor))
    return gmm


def fit(x, n_components, n_iter, fit_fraction, min_weight, rng, reg_covar,
        var_floor_ratio):
    """:func:`mixnorm.gmm.fit` on the device.

    The data are centred on the fly (every kernel subtracts the column
    means).  A ``fit_fraction`` below 1 fits the rows ``(a j + b) mod m``
    with a random stride a coprime to m and a random offset b: every row is
    equally likely to be in it, and drawing it needs no sort (CuPy's
    permutation sorts, and its sort synchronises).
    """
    from mixnorm.gmm import GMM, default_n_local_trials, split_iterations
    x = cupy.ascontiguousarray(x)
    m, d = x.shape
    _, shift, var_floor = _moments(x, None, None, 1, _COLSTATS,
                                   reg_covar=reg_covar, ratio=var_floor_ratio)
    shift, var_floor = shift[0], var_floor[0]
    n_fit = min(m, max(n_components, int(math.ceil(fit_fraction * m))))
    k_fit = min(n_components, n_fit)
    n_trials = default_n_local_trials(k_fit)
    rand = _random(rng)
    xs = x if n_fit == m else x[subset_rows(m, n_fit, rand)]
    u = _contiguous(rand.random_sample(1 + (k_fit - 1) * n_trials),
                    numpy.float64)
    centers = _seed(xs, shift, k_fit, n_trials, u)

    n_kmeans, n_em = split_iterations(n_iter)
    onehot, _ = _assign(xs, shift, centers)
    for it in range(max(n_kmeans, 1)):
        if it > 0:
            onehot, _ = _assign(xs, shift, centers)
        gmm = GMM(*_moments(xs, shift, onehot, k_fit,
                            _KMEANS if n_kmeans else _KMEANS_FIXED,
                            prev=centers, reg_covar=reg_covar,
                            var_floor=var_floor))
        centers = gmm.means
    for _ in range(n_em):
        resp, _ = _e_step(xs, shift, gmm)
        gmm = GMM(*_moments(xs, shift, resp, k_fit, _EM, reg_covar=reg_covar,
                            var_floor=var_floor))
    if k_fit < n_components:  # pad with absent components
        pad = n_components - k_fit
        gmm = GMM(cupy.concatenate([gmm.weights, cupy.zeros(pad, x.dtype)]),
                  cupy.concatenate([gmm.means,
                                    cupy.zeros((pad, d), x.dtype)]),
                  cupy.concatenate([gmm.variances,
                                    cupy.ones((pad, d), x.dtype)]))
    log_resp, part = _e_step(x, shift, gmm, write_log=True)
    weights = cupy.empty(n_components, x.dtype)
    resp = cupy.empty((m, n_components), x.dtype)
    _function('prune', x.dtype, n_components)((_flat_grid(m),), (256,), (
        log_resp, m, part, part.shape[0], float(min_weight), gmm.weights,
        weights, resp))
    return GMM(weights, gmm.means + shift, gmm.variances), resp


# ------------------------------------------------- mixture normalizing (MN)
def mn_forward(x3, gamma, beta, resp, eps):
    """Eq. 34-36 on x3 of shape (N, C, L) with posteriors resp (N*L, K).

    Returns:
        ``(y, lam, mean, var, cache)``; ``cache`` feeds :func:`mn_backward`.
    """
    x3 = cupy.ascontiguousarray(x3)
    resp = cupy.ascontiguousarray(resp)
    n, c, length = x3.shape
    k = resp.shape[1]
    dtype = x3.dtype
    lam = cupy.empty(k, dtype)
    scale = cupy.empty(k, dtype)
    den = cupy.empty(k, dtype)
    mean = cupy.empty((k, c), dtype)
    var = cupy.empty((k, c), dtype)
    inv_std = cupy.empty((k, c), dtype)
    _function('mn_stats', dtype, k)((c,), (256,), (
        x3, resp, n, c, length, float(eps), float(numpy.finfo(dtype).tiny),
        lam, scale, den, mean, var, inv_std))
    y = cupy.empty_like(x3)
    _function('mn_output', dtype, k)((_flat_grid(x3.size),), (256,), (
        x3, resp, n, c, length, scale, mean, inv_std, gamma, beta, y))
    return y, lam, mean, var, (scale, den, mean, inv_std)


def mn_backward(x3, gamma, resp, gy3, cache):
    """Gradients (gx, ggamma, gbeta) of :func:`mn_forward`'s output."""
    scale, den, mean, inv_std = cache
    x3 = cupy.ascontiguousarray(x3)
    gy3 = cupy.ascontiguousarray(gy3)
    n, c, length = x3.shape
    k = resp.shape[1]
    dtype = x3.dtype
    total = cupy.empty((k, c), dtype)
    proj = cupy.empty((k, c), dtype)
    ggamma = cupy.empty(c, dtype)
    gbeta = cupy.empty(c, dtype)
    _function('mn_grad_stats', dtype, k)((c,), (256,), (
        x3, resp, gy3, n, c, length, scale, mean, inv_std, gamma, total,
        proj, ggamma, gbeta))
    gx = cupy.empty_like(x3)
    _function('mn_grad_x', dtype, k)((_flat_grid(x3.size),), (256,), (
        x3, resp, gy3, n, c, length, scale, den, mean, inv_std, gamma,
        total, proj, gx))
    return gx, ggamma, gbeta


# ------------------------------------------------------- NaN/Inf detection
_FLAG_TYPES = {2: ('unsigned short', '0x7C00u'),
               4: ('unsigned int', '0x7F800000u'),
               8: ('unsigned long long', '0x7FF0000000000000ull')}


def flag_nonfinite(x, flag):
    """Set the int32 device scalar ``flag`` to 1 if x has a NaN or an Inf.

    The flag is never cleared here, so it records every call since it was
    last reset; nothing is read back.
    """
    bits, mask = _FLAG_TYPES[x.dtype.itemsize]
    x = cupy.ascontiguousarray(x)
    _kernel('nonfinite', _FLAG_SOURCE, '-Dbits_t=' + bits,
            '-DEXP_MASK=' + mask)((_flat_grid(x.size),), (256,), (
                x, x.size, flag))
