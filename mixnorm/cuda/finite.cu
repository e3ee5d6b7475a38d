// A sticky device flag set by any NaN or Inf, read through the bits: a
// NaN or an Inf has all exponent bits set in every IEEE format.  bits_t is
// the unsigned integer of the checked dtype's width and EXP_MASK its
// exponent mask (see mixnorm/cuda/finite.py).
#include "common.cuh"

extern "C" __global__ void nonfinite(const bits_t* __restrict__ x,
                                     long long n, int* __restrict__ flag) {
    FOR_EACH_ELEMENT(e, n)
        if ((x[e] & EXP_MASK) == EXP_MASK) *flag = 1;
}
