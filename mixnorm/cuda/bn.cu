// Batch normalization (Ioffe & Szegedy, 2015) on the (N, C, L) layout,
// L = H * W, for one dtype real_t (input, parameters and statistics), as
// Chainer's BatchNormalization computes it (see mixnorm/cuda/bn.py).
// index_t (32-bit where it fits) indexes the N * C * L elements.  The
// channel sums are split over a (S, C) grid (channel_totals, common.cuh),
// so each direction is two launches and reads x once for its sums.
#include "common.cuh"

// The statistics buffer of bn_stats: [mean (C) | inv_std (C)].
template <class P>
struct BnStats {
    P *mean, *inv_std;
    __device__ BnStats(P* buf, long long C) : mean(buf), inv_std(buf + C) {}
};

// Training-mode statistics, from the sums of x less a sample of the
// channel, in double.  Per channel c: mean, the biased variance var and
// inv_std = 1 / sqrt(var + eps); running_mean and running_var (NULL: not
// updated) move by decay towards mean and the unbiased M / (M - 1) var;
// flag (NULL: none) is set when a sum or var is not finite.
extern "C" __global__ void bn_stats(
        const real_t* __restrict__ x, long long N, long long C, long long L,
        double eps, double decay, real_t* __restrict__ running_mean,
        real_t* __restrict__ running_var, double* __restrict__ partial,
        unsigned int* __restrict__ counter, real_t* __restrict__ stats,
        int* __restrict__ flag) {
    const long long c = blockIdx.y;
    const index_t M = (index_t)(N * L);
    const double shift = x[c * L];
    double v[2] = {0, 0};  // sum (x - shift), sum (x - shift)^2
    index_t lo, hi;
    slice_range<index_t>(M, &lo, &hi);
    for (index_t j = lo + threadIdx.x; j < hi; j += blockDim.x) {
        const double d = (double)x[channel_offset<index_t>(j, c, C, L)]
                         - shift;
        v[0] += d;
        v[1] += d * d;
    }
    if (!channel_totals<2>(v, partial, counter) || threadIdx.x != 0) return;
    const double m = (double)M, d = v[0] / m;
    const double var = at_least(v[1] / m - d * d, 0.0);
    const BnStats<real_t> st(stats, C);
    st.mean[c] = (real_t)(shift + d);
    st.inv_std[c] = (real_t)(1.0 / sqrt(var + eps));
    if (running_mean) {
        const double adjust = m / fmax(m - 1.0, 1.0);  // unbiased
        running_mean[c] = (real_t)(decay * running_mean[c]
                                   + (1 - decay) * (shift + d));
        running_var[c] = (real_t)(decay * running_var[c]
                                  + (1 - decay) * adjust * var);
    }
    if (flag && !(isfinite(v[0]) && isfinite(v[1]) && isfinite((real_t)var)))
        *flag = 1;
}

// y = gamma (x - mean) inv_std + beta.
extern "C" __global__ void bn_output(
        const real_t* __restrict__ x, long long N, long long C, long long L,
        const real_t* __restrict__ stats, const real_t* __restrict__ gamma,
        const real_t* __restrict__ beta, real_t* __restrict__ y) {
    const BnStats<const real_t> st(stats, C);
    FOR_EACH_ELEMENT(e, N * C * L) {
        const index_t c = ((index_t)e / (index_t)L) % (index_t)C;
        y[e] = gamma[c] * ((x[e] - st.mean[c]) * st.inv_std[c]) + beta[c];
    }
}

// Backward sums per channel, in the buffer [ggamma (C) | gbeta (C)]:
// gbeta = sum gy and ggamma = sum gy xhat = inv_std sum gy (x - mean).
extern "C" __global__ void bn_grad_stats(
        const real_t* __restrict__ x, const real_t* __restrict__ gy,
        long long N, long long C, long long L,
        const real_t* __restrict__ stats, double* __restrict__ partial,
        unsigned int* __restrict__ counter, real_t* __restrict__ grads) {
    const BnStats<const real_t> st(stats, C);
    const long long c = blockIdx.y;
    const double mean = st.mean[c];
    double v[2] = {0, 0};  // sum gy, sum gy (x - mean)
    index_t lo, hi;
    slice_range<index_t>((index_t)(N * L), &lo, &hi);
    for (index_t j = lo + threadIdx.x; j < hi; j += blockDim.x) {
        const long long o = channel_offset<index_t>(j, c, C, L);
        const double g = gy[o];
        v[0] += g;
        v[1] += g * ((double)x[o] - mean);
    }
    if (!channel_totals<2>(v, partial, counter) || threadIdx.x != 0) return;
    grads[c] = (real_t)(v[1] * (double)st.inv_std[c]);
    grads[C + c] = (real_t)v[0];
}

// gx = gamma inv_std (gy - (xhat ggamma + gbeta) / M).
extern "C" __global__ void bn_grad_x(
        const real_t* __restrict__ x, const real_t* __restrict__ gy,
        long long N, long long C, long long L,
        const real_t* __restrict__ stats, const real_t* __restrict__ gamma,
        const real_t* __restrict__ grads, real_t* __restrict__ gx) {
    const BnStats<const real_t> st(stats, C);
    const real_t inv_m = (real_t)1 / (real_t)(N * L);
    FOR_EACH_ELEMENT(e, N * C * L) {
        const index_t c = ((index_t)e / (index_t)L) % (index_t)C;
        const real_t xhat = (x[e] - st.mean[c]) * st.inv_std[c];
        gx[e] = gamma[c] * st.inv_std[c]
                * (gy[e] - (xhat * grads[c] + grads[C + c]) * inv_m);
    }
}
