// The mixture normalizing transform (Eq. 34-36) and its gradient on the
// (N, C, L) layout, L = H * W, for one dtype real_t and NK components (see
// mixnorm/cuda/mn.py).  Posteriors resp are (N * L, NK), row i = n * L + l.
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
    const long long nc = e / L;
    *c = nc % C;
    *i = (nc / C) * L + e % L;
}

// Eq. 35-36 per channel c (one block): lam_k, the aggregation scales
// 1/sqrt(lam_k) (1 for an absent component), den_k = max(mass_k, tiny),
// mu_kc, var_kc (centred) and 1/sqrt(var_kc + eps).
extern "C" __global__ void mn_stats(
        const real_t* __restrict__ x, const real_t* __restrict__ resp,
        long long N, long long C, long long L, double eps, double tiny,
        real_t* __restrict__ stats) {
    const Stats<real_t> st(stats, C);
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
                st.lam[k] = l;
                st.scale[k] = l > 0 ? (real_t)1 / sqrt(l) : (real_t)1;
                st.den[k] = dn[k];
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
            st.mean[k * C + c] = mu[k];
            st.var[k * C + c] = v;
            st.inv_std[k * C + c] = (real_t)1 / sqrt(v + (real_t)eps);
        }
    }
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

// Backward, per channel (one block): with g_k = nu_k scale_k gamma gy,
// total_kc = sum_i g_k, proj_kc = sum_i g_k xhat^k, ggamma_c = sum_i gy xhat
// and gbeta_c = sum_i gy.
extern "C" __global__ void mn_grad_stats(
        const real_t* __restrict__ x, const real_t* __restrict__ resp,
        const real_t* __restrict__ gy, long long N, long long C,
        long long L, const real_t* __restrict__ stats,
        const real_t* __restrict__ gamma, real_t* __restrict__ grads) {
    const Stats<const real_t> st(stats, C);
    const GradStats<real_t> gs(grads, C);
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
            const real_t coef = resp[j * NK + k] * st.scale[k];
            const real_t xh = (v - st.mean[k * C + c]) * st.inv_std[k * C + c];
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
        if (threadIdx.x == 0) {
            gs.total[k * C + c] = a;
            gs.proj[k * C + c] = b;
        }
    }
    const real_t a = block_sum(gg, smem);
    const real_t b = block_sum(gb, smem);
    if (threadIdx.x == 0) { gs.ggamma[c] = a; gs.gbeta[c] = b; }
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
