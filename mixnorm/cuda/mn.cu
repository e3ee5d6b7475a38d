// The mixture normalizing transform (Eq. 34-36) and its gradient on the
// (N, C, L) layout, L = H * W, for one dtype real_t and NK components (see
// mixnorm/cuda/mn.py).  Posteriors resp are (N * L, NK), row i = n * L + l;
// index_t (32-bit where it fits) indexes the N * C * L elements.
//
// The per-channel sums are split over a (S, C) grid as in bn.cu: block
// (s, c) sums slice s of channel c into `partial` (in double), and the
// channel's last block (channel_done) combines the slices and writes the
// channel's statistics, so that x is read once for them.
#include "common.cuh"

// The statistics buffer of mn_stats, for C channels:
// [lam (NK) | scale (NK) | den (NK) | mean (NK, C) | var (NK, C) |
//  inv_std (NK, C)], scale_k = 1/sqrt(lam_k) and den_k = max(mass_k, tiny).
template <class P>
struct Stats {
    P *lam, *scale, *den, *mean, *var, *inv_std;
    __device__ Stats(P* buf, long long C)
        : lam(buf), scale(buf + NK), den(buf + 2 * NK), mean(buf + 3 * NK),
          var(buf + 3 * NK + NK * C), inv_std(buf + 3 * NK + 2 * NK * C) {}
};

// The gradient buffer of mn_grad_stats:
// [total (NK, C) | proj (NK, C) | ggamma (C) | gbeta (C)].
template <class P>
struct GradStats {
    P *total, *proj, *ggamma, *gbeta;
    __device__ GradStats(P* buf, long long C)
        : total(buf), proj(buf + NK * C), ggamma(buf + 2 * NK * C),
          gbeta(buf + 2 * NK * C + C) {}
};

// Channel c and sample row i of element e of the (N, C, L) layout.
__device__ __forceinline__ void channel_and_row(long long e, long long C,
                                                long long L, long long* c,
                                                long long* i) {
    const index_t nc = (index_t)e / (index_t)L;
    *c = (long long)(nc % (index_t)C);
    *i = (long long)((nc / (index_t)C) * (index_t)L + (index_t)e
                     % (index_t)L);
}

// Eq. 35-36 per channel c: lam_k, the aggregation scales 1/sqrt(lam_k) (1
// for an absent component), den_k = max(mass_k, tiny), mu_kc, var_kc
// (centred) and 1/sqrt(var_kc + eps), from the posterior-weighted sums of
// x less a sample of the channel.  NaN stays NaN; flag (NULL: none) is set
// when a sum, a mean or a variance is not finite in real_t.
extern "C" __global__ void mn_stats(
        const real_t* __restrict__ x, const real_t* __restrict__ resp,
        long long N, long long C, long long L, double eps, double tiny,
        double* __restrict__ partial, unsigned int* __restrict__ counter,
        real_t* __restrict__ stats, int* __restrict__ flag) {
    const long long c = blockIdx.y;
    const index_t M = (index_t)(N * L);
    const double shift = x[c * L];
    double v[3 * NK];  // [mass | sum r (x - shift) | sum r (x - shift)^2]
    for (int q = 0; q < 3 * NK; ++q) v[q] = 0;
    index_t lo, hi;
    slice_range<index_t>(M, &lo, &hi);
    for (index_t j = lo + threadIdx.x; j < hi; j += blockDim.x) {
        const double d = (double)x[channel_offset<index_t>(j, c, C, L)]
                         - shift;
        for (int k = 0; k < NK; ++k) {
            const double r = resp[(long long)j * NK + k];
            v[k] += r;
            v[NK + k] += r * d;
            v[2 * NK + k] += r * d * d;
        }
    }
    if (!channel_totals<3 * NK>(v, partial, counter) || threadIdx.x != 0)
        return;
    const Stats<real_t> st(stats, C);
    bool finite = true;
    for (int k = 0; k < NK; ++k) {
        const double den = at_least(v[k], tiny), mu = v[NK + k] / den;
        const double var = at_least(v[2 * NK + k] / den - mu * mu, 0.0);
        st.mean[k * C + c] = (real_t)(shift + mu);
        st.var[k * C + c] = (real_t)var;
        finite = finite && isfinite(v[k]) && isfinite(v[NK + k])
                 && isfinite(v[2 * NK + k]) && isfinite(st.mean[k * C + c])
                 && isfinite(st.var[k * C + c]);
        st.inv_std[k * C + c] = (real_t)(1.0 / sqrt(var + eps));
        if (c == 0) {
            const double l = v[k] / (double)M;
            st.lam[k] = (real_t)l;
            st.scale[k] = (real_t)(l > 0 ? 1.0 / sqrt(l) : 1.0);
            st.den[k] = (real_t)den;
        }
    }
    if (flag && !finite) *flag = 1;
}

// Eq. 34 and the affine step: y = gamma * sum_k nu_k scale_k xhat^k + beta.
extern "C" __global__ void mn_output(
        const real_t* __restrict__ x, const real_t* __restrict__ resp,
        long long N, long long C, long long L,
        const real_t* __restrict__ stats, const real_t* __restrict__ gamma,
        const real_t* __restrict__ beta, real_t* __restrict__ y) {
    const Stats<const real_t> st(stats, C);
    FOR_EACH_ELEMENT(e, N * C * L) {
        long long c, i;
        channel_and_row(e, C, L, &c, &i);
        const real_t v = x[e];
        real_t h = 0;
        for (int k = 0; k < NK; ++k)
            h += resp[i * NK + k] * st.scale[k] * (v - st.mean[k * C + c])
                 * st.inv_std[k * C + c];
        y[e] = gamma[c] * h + beta[c];
    }
}

// Backward sums per channel: with g_k = nu_k scale_k gamma gy,
// total_kc = sum_i g_k, proj_kc = sum_i g_k xhat^k, ggamma_c = sum_i gy xhat
// and gbeta_c = sum_i gy.
extern "C" __global__ void mn_grad_stats(
        const real_t* __restrict__ x, const real_t* __restrict__ resp,
        const real_t* __restrict__ gy, long long N, long long C,
        long long L, const real_t* __restrict__ stats,
        const real_t* __restrict__ gamma, double* __restrict__ partial,
        unsigned int* __restrict__ counter, real_t* __restrict__ grads) {
    const Stats<const real_t> st(stats, C);
    const long long c = blockIdx.y;
    const real_t gm = gamma[c];
    double v[2 * NK + 2];  // [total (NK) | proj (NK) | ggamma | gbeta]
    for (int q = 0; q < 2 * NK + 2; ++q) v[q] = 0;
    index_t lo, hi;
    slice_range<index_t>((index_t)(N * L), &lo, &hi);
    for (index_t j = lo + threadIdx.x; j < hi; j += blockDim.x) {
        const long long o = channel_offset<index_t>(j, c, C, L);
        const real_t x_o = x[o], dy = gy[o], g = dy * gm;
        real_t xhat = 0;
        for (int k = 0; k < NK; ++k) {
            const real_t coef = resp[(long long)j * NK + k] * st.scale[k];
            const real_t xh = (x_o - st.mean[k * C + c])
                              * st.inv_std[k * C + c];
            v[k] += coef * g;
            v[NK + k] += coef * g * xh;
            xhat += coef * xh;
        }
        v[2 * NK] += dy * xhat;
        v[2 * NK + 1] += dy;
    }
    if (!channel_totals<2 * NK + 2>(v, partial, counter) || threadIdx.x != 0)
        return;
    const GradStats<real_t> gs(grads, C);
    for (int k = 0; k < NK; ++k) {
        gs.total[k * C + c] = (real_t)v[k];
        gs.proj[k * C + c] = (real_t)v[NK + k];
    }
    gs.ggamma[c] = (real_t)v[2 * NK];
    gs.gbeta[c] = (real_t)v[2 * NK + 1];
}

// gx = sum_k inv_std_k (g_k - nu_k / den_k (total_k + xhat^k proj_k)).
extern "C" __global__ void mn_grad_x(
        const real_t* __restrict__ x, const real_t* __restrict__ resp,
        const real_t* __restrict__ gy, long long N, long long C, long long L,
        const real_t* __restrict__ stats, const real_t* __restrict__ gamma,
        const real_t* __restrict__ grads, real_t* __restrict__ gx) {
    const Stats<const real_t> st(stats, C);
    const GradStats<const real_t> gs(grads, C);
    FOR_EACH_ELEMENT(e, N * C * L) {
        long long c, i;
        channel_and_row(e, C, L, &c, &i);
        const real_t v = x[e], g = gy[e] * gamma[c];
        real_t acc = 0;
        for (int k = 0; k < NK; ++k) {
            const long long o = k * C + c;
            const real_t r = resp[i * NK + k];
            const real_t xh = (v - st.mean[o]) * st.inv_std[o];
            acc += st.inv_std[o] * (r * st.scale[k] * g - r / st.den[k]
                                    * (gs.total[o] + xh * gs.proj[o]));
        }
        gx[e] = acc;
    }
}

// The queue of fits (Eq. 38-39) one place on, in place: queue[t] =
// queue[t + 1] for t < T - 1 and queue[T - 1] = value, for a queue of T
// rows of `row` values; each thread moves its columns down the rows.
extern "C" __global__ void queue_push(
        real_t* __restrict__ queue, long long T, long long row,
        const real_t* __restrict__ value) {
    FOR_EACH_ELEMENT(r, row) {
        for (long long t = 0; t + 1 < T; ++t)
            queue[t * row + r] = queue[(t + 1) * row + r];
        queue[(T - 1) * row + r] = value[r];
    }
}
