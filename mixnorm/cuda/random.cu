// Counter-based uniforms: splitmix64 of key + counter, the state [key,
// counter] held in device memory and advanced by the kernel itself (see
// mixnorm/cuda/random.py).
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
