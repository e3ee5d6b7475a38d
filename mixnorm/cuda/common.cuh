// Device helpers shared by the kernels of mixnorm.cuda.
//
// Launch geometry comes from Python (mixnorm/cuda/_compile.py) as -D
// options: WARPS warps per block (blocks have THREADS = 32 * WARPS
// threads), TD dimensions per block of the column kernels, MAXT k-means++
// candidates held per round, PICK threads of the seeding block.
#pragma once

#define THREADS (32 * WARPS)
#define LANES (THREADS / TD)   // rows per block of the column kernels
#define LOG_2PI 1.8378770664093453
#define NEG_INF __int_as_float(0xff800000)

// Grid-stride loop over n elements.
#define FOR_EACH_ELEMENT(e, n)                                               \
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;     \
         e < (n); e += (long long)gridDim.x * blockDim.x)

// Row loop of the row kernels: row i of this warp, grid-stride.
#define FOR_EACH_ROW(i, m)                                                   \
    for (long long i = (long long)blockIdx.x * WARPS + (threadIdx.x >> 5);   \
         i < (m); i += (long long)gridDim.x * WARPS)

// max(x, lo) that keeps a NaN x, as NumPy's maximum (fmax returns lo).
template <class T>
__device__ __forceinline__ T at_least(T x, T lo) { return x < lo ? lo : x; }

// max(a, b), NaN if either is NaN, as NumPy's maximum (fmax skips NaN).
template <class T>
__device__ __forceinline__ T nan_max(T a, T b) {
    return (a != a || a > b) ? a : b;
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the THREADS threads of a block; every thread gets the total.
template <class T>
__device__ T block_sum(T v, T* smem) {
    v = warp_sum(v);
    if ((threadIdx.x & 31) == 0) smem[threadIdx.x >> 5] = v;
    __syncthreads();
    T s = 0;
    for (int w = 0; w < WARPS; ++w) s += smem[w];
    __syncthreads();
    return s;
}

// The per-channel sums of bn.cu and mn.cu are split over a (S, C) grid:
// block (s, c) sums slice s of channel c, and the channel's last block to
// finish combines the slices (channel_totals).
//
// Whether this block is the last of the n_slices blocks of a channel to
// get here, true or false in all its threads; `counter` is the channel's
// arrival count, 0 before the launch and reset to 0 by the last block.
// Each block fences its writes before its arrival (release); the last
// block's thread 0 fences after the atomic that saw every arrival
// (acquire) before the barrier, so the other blocks' writes are visible
// to all its threads through loads that bypass L1 (__ldcg).
__device__ __forceinline__ bool channel_done(unsigned int* counter,
                                             unsigned int n_slices) {
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        last = atomicAdd(counter, 1u) == n_slices - 1;
        if (last) {
            __threadfence();  // the other blocks' partials before ours
            *counter = 0;
        }
    }
    __syncthreads();
    return last;
}

// Element of the (N, C, L) layout for value j = n * L + l of channel c;
// I indexes the elements.
template <class I>
__device__ __forceinline__ long long channel_offset(I j, long long c,
                                                    long long C,
                                                    long long L) {
    return (long long)(j / (I)L) * C * L + c * L + j % (I)L;
}

// The range [*lo, *hi) of a channel's M values that block (s, c) sums.
template <class I>
__device__ __forceinline__ void slice_range(I M, I* lo, I* hi) {
    const I per = (M + gridDim.x - 1) / gridDim.x;
    *lo = blockIdx.x * per;
    *hi = *lo + per < M ? *lo + per : M;
}

// Block-sums the n values v of this block into slice blockIdx.x of
// channel blockIdx.y of `partial` ((C, S, n) doubles); in the channel's
// last block, v becomes the channel's totals and true is returned.
template <int n>
__device__ bool channel_totals(double* v, double* __restrict__ partial,
                               unsigned int* __restrict__ counter) {
    __shared__ double smem[WARPS];
    const long long c = blockIdx.y, S = gridDim.x;
    for (int q = 0; q < n; ++q) {
        const double t = block_sum(v[q], smem);
        if (threadIdx.x == 0) partial[(c * S + blockIdx.x) * n + q] = t;
    }
    if (!channel_done(counter + c, (unsigned int)S)) return false;
    for (int q = 0; q < n; ++q) {
        double t = 0;
        for (long long s = threadIdx.x; s < S; s += blockDim.x)
            t += __ldcg(partial + (c * S + s) * n + q);
        v[q] = block_sum(t, smem);
    }
    return true;
}

// Sum over the LANES row lanes of a column-kernel block, per dimension.
template <class T>
__device__ T lane_sum(T v, T (*red)[TD + 1]) {
    const int tx = threadIdx.x % TD, ty = threadIdx.x / TD;
    red[ty][tx] = v;
    __syncthreads();
    for (int o = LANES / 2; o > 0; o >>= 1) {
        if (ty < o) red[ty][tx] += red[ty + o][tx];
        __syncthreads();
    }
    T s = red[0][tx];
    __syncthreads();
    return s;
}

// The warp-per-row distance sum of the row kernels.  For the J centres
// c_j, j < n, every lane of the warp gets
//     q[j] = sum_d (row_d - shift_d - c_jd)^2 / var_jd,
// where c_j is row j of `centres` (D columns) or, with GATHER, row idx[j]
// of `centres` less shift (a data row as a centre), and var_jd is 1
// without SCALED.  shift may be NULL (no shift).
template <class T, int J, bool GATHER, bool SCALED>
__device__ void warp_row_distances(
        const T* __restrict__ row, const T* __restrict__ shift, long long D,
        const T* __restrict__ centres, const long long* __restrict__ idx,
        const T* __restrict__ var, int n, T* q) {
    for (int j = 0; j < J; ++j) q[j] = 0;
    for (long long d = threadIdx.x & 31; d < D; d += 32) {
        const T s = shift ? shift[d] : (T)0;
        const T v = row[d] - s;
        for (int j = 0; j < J; ++j) {
            if (j < n) {
                const T c = GATHER ? centres[idx[j] * D + d] - s
                                   : centres[j * D + d];
                const T e = v - c;
                q[j] += SCALED ? e * e / var[j * D + d] : e * e;
            }
        }
    }
    for (int j = 0; j < J; ++j)
        if (j < n) q[j] = warp_sum(q[j]);
}
