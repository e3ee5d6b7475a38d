// A CPU stand-in for the CUDA execution model, for the tests
// (tests/support/cuda_emulator.py compiles a kernel source with g++ after this
// prelude).  Blocks run one after another; the threads of a block run as
// fibers (ucontext) on one OS thread and switch only at __syncthreads,
// __syncwarp and the warp shuffles, which is one legal CUDA schedule.
// A barrier waits for the threads that have not returned, as on Volta and
// later.  Barriers that can never be released (a deadlock: divergent
// __syncthreads) abort the launch with a message.
//
// Schedules (cuda_emulator.py's modes set these with -D):
//   EMU_ORDER 0: blocks in grid order, and in each round the runnable
//     threads of a block in thread order; 1: both reversed; 2: both in a
//     random order (seed EMU_SEED), drawn again for every launch and round.
//   EMU_POISON: every __shared__ variable filled with 0xFF bytes before
//     each block (the Python side also fills integer buffers from
//     cupy.empty with junk), so that reading what was never written shows.
//   An FMA build (-O2 -mfma -ffp-contract=fast) contracts a * b + c as
//     the GPU compiler does.
// What these cover: any order of blocks, any interleaving of the threads
// of a block between barriers at fiber granularity, results that depend
// on the order of blocks or threads, uninitialised shared memory and
// integer buffers, FMA rounding.  What no mode covers: blocks running at
// the same time (atomics are plain read-modify-writes here, and the
// inter-block protocol of channel_done only meets the sequential case);
// threads of a warp or block running at the same time between barriers
// (a race between two writes, or a write and a read, with no barrier
// between them is not seen); the memory model (__threadfence is a no-op:
// a missing fence, or a load served from a stale L1, cannot fail here);
// warp-synchronous code without __syncwarp; launch limits (registers,
// shared memory, grid dimensions: tests/mixnorm/test_cuda_source.py builds for
// sm_90 through ptxas for those); GPU math library rounding (exp, log).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>
#include <csetjmp>
#include <ucontext.h>

#ifndef EMU_ORDER
#define EMU_ORDER 0
#endif
#ifndef EMU_SEED
#define EMU_SEED 1
#endif

using std::exp;
using std::fabs;
using std::floor;
using std::fmax;
using std::fmin;
using std::isfinite;
using std::log;
using std::sqrt;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static
#define __launch_bounds__(...)

struct dim3 { unsigned x, y, z; };

namespace emu {

enum State { RUN, BLOCK_WAIT, WARP_WAIT, DONE };

struct Fiber {
    ucontext_t ctx;  // to start the fiber; it switches with _setjmp
    jmp_buf jb;
    bool started;
    dim3 tid;
    int lane, warp;
    State state;
    uint64_t shfl_in, shfl_out;
    int shfl_src;
    char* stack;  // kStack bytes, kept for the process's lifetime
};

constexpr size_t kStack = 1 << 17;
// the fibers and their stacks, reused by every launch (no function-local
// static here: those are the kernels' __shared__ variables)
inline std::vector<Fiber> fiber_pool;

inline ucontext_t scheduler;
inline jmp_buf scheduler_jb;
inline Fiber* current = nullptr;
inline dim3 block_idx, grid_dim, block_dim;
inline std::function<void()>* body = nullptr;
inline const char* error = nullptr;

// The __shared__ variables (function-local statics) of the library, as
// (offset from the library's base, size), for EMU_POISON; set by
// emu_shared_variables from the library's symbol table.
inline std::vector<std::pair<size_t, size_t>> shared_vars;
inline char* library_base = nullptr;

inline void poison_shared() {
#ifdef EMU_POISON
    for (auto& v : shared_vars)
        std::memset(library_base + v.first, 0xFF, v.second);
#endif
}

inline uint64_t order_state = 0x9e3779b97f4a7c15ull * EMU_SEED;

// A random permutation of 0..n-1 (EMU_ORDER 2), or the order of EMU_ORDER.
inline std::vector<size_t> order(size_t n) {
    std::vector<size_t> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = EMU_ORDER == 1 ? n - 1 - i : i;
    if (EMU_ORDER == 2) {
        for (size_t i = n; i > 1; --i) {
            uint64_t& z = order_state;
            z ^= z << 13; z ^= z >> 7; z ^= z << 17;
            std::swap(out[i - 1], out[z % i]);
        }
    }
    return out;
}

// Switches use _setjmp/_longjmp, which, unlike swapcontext, make no
// system call; swapcontext only starts a fiber on its own stack.
inline void yield(State s) {
    current->state = s;
    if (!_setjmp(current->jb)) _longjmp(scheduler_jb, 1);
}

inline void trampoline() {
    (*body)();
    current->state = DONE;
    _longjmp(scheduler_jb, 1);
}

inline void resume(Fiber& f) {
    current = &f;
    if (_setjmp(scheduler_jb)) return;
    if (f.started) _longjmp(f.jb, 1);
    f.started = true;
    swapcontext(&scheduler, &f.ctx);
}

// Release every warp whose live lanes all wait at a warp barrier (the
// shuffles read the values posted before anyone goes on), else the block
// barrier when every live thread waits there.
inline bool release(std::vector<Fiber>& fs) {
    bool any = false;
    const int warps = (int)((fs.size() + 31) / 32);
    for (int w = 0; w < warps; ++w) {
        int live = 0, waiting = 0;
        for (size_t t = w * 32; t < fs.size() && t < (size_t)(w + 1) * 32;
             ++t) {
            if (fs[t].state != DONE) ++live;
            if (fs[t].state == WARP_WAIT) ++waiting;
        }
        if (live > 0 && waiting == live) {
            for (size_t t = w * 32; t < fs.size() && t < (size_t)(w + 1) * 32;
                 ++t) {
                Fiber& f = fs[t];
                if (f.state != WARP_WAIT) continue;
                const size_t src = (size_t)w * 32 + f.shfl_src;
                f.shfl_out = (f.shfl_src >= 0 && src < fs.size() &&
                              fs[src].state == WARP_WAIT)
                                 ? fs[src].shfl_in : f.shfl_in;
            }
            for (size_t t = w * 32; t < fs.size() && t < (size_t)(w + 1) * 32;
                 ++t)
                if (fs[t].state == WARP_WAIT) fs[t].state = RUN;
            any = true;
        }
    }
    if (any) return true;
    int live = 0, waiting = 0;
    for (auto& f : fs) {
        if (f.state != DONE) ++live;
        if (f.state == BLOCK_WAIT) ++waiting;
    }
    if (live > 0 && waiting == live) {
        for (auto& f : fs)
            if (f.state == BLOCK_WAIT) f.state = RUN;
        return true;
    }
    return false;
}

inline void run_block(std::vector<Fiber>& fs) {
    const unsigned n = (unsigned)fs.size();
    for (unsigned t = 0; t < n; ++t) {
        Fiber& f = fs[t];
        f.tid = dim3{t % block_dim.x, (t / block_dim.x) % block_dim.y,
                     t / (block_dim.x * block_dim.y)};
        f.lane = t % 32;
        f.warp = t / 32;
        f.state = RUN;
        f.started = false;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack;
        f.ctx.uc_stack.ss_size = kStack;
        f.ctx.uc_link = &scheduler;
        makecontext(&f.ctx, trampoline, 0);
    }
    poison_shared();
    size_t live = n;
    while (live > 0) {
        bool ran = false;
        for (size_t t : order(n)) {
            Fiber& f = fs[t];
            if (f.state != RUN) continue;
            resume(f);
            ran = true;
        }
        live = 0;
        for (auto& f : fs) live += f.state != DONE;
        if (live > 0 && !release(fs) && !ran) {
            error = "deadlock: threads wait at barriers that cannot release";
            return;
        }
    }
}

template <class... A, size_t... I>
void call(void (*k)(A...), void** args, std::index_sequence<I...>) {
    k(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}

template <class... A>
const char* launch(void (*k)(A...), dim3 grid, dim3 block, void** args) {
    std::function<void()> f = [&] {
        call(k, args, std::index_sequence_for<A...>{});
    };
    body = &f;
    error = nullptr;
    grid_dim = grid;
    block_dim = block;
    const size_t n = (size_t)block.x * block.y * block.z;
    while (fiber_pool.size() < n) {
        fiber_pool.emplace_back();
        fiber_pool.back().stack = static_cast<char*>(std::malloc(kStack));
    }
    std::vector<Fiber> fs(fiber_pool.begin(), fiber_pool.begin() + n);
    const size_t blocks = (size_t)grid.x * grid.y * grid.z;
    for (size_t b : order(blocks)) {
        if (error) break;
        block_idx = dim3{(unsigned)(b % grid.x),
                         (unsigned)(b / grid.x % grid.y),
                         (unsigned)(b / ((size_t)grid.x * grid.y))};
        run_block(fs);
    }
    return error;
}

template <class T>
T shuffle(T v, int src) {
    static_assert(sizeof(T) <= 8, "shuffle of a wide type");
    current->shfl_in = 0;
    std::memcpy(&current->shfl_in, &v, sizeof(T));
    current->shfl_src = src;
    yield(WARP_WAIT);
    T out;
    std::memcpy(&out, &current->shfl_out, sizeof(T));
    return out;
}

}  // namespace emu

#define threadIdx (emu::current->tid)
#define blockIdx (emu::block_idx)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)

inline void __syncthreads() { emu::yield(emu::BLOCK_WAIT); }
inline void __syncwarp(unsigned = 0xffffffffu) {
    emu::shuffle<int>(0, -1);
}
inline void __threadfence() {}
template <class T>
T __ldcg(const T* p) { return *p; }

template <class T>
T __shfl_xor_sync(unsigned, T v, int mask) {
    return emu::shuffle(v, emu::current->lane ^ mask);
}
template <class T>
T __shfl_down_sync(unsigned, T v, unsigned delta) {
    const int src = emu::current->lane + (int)delta;
    return emu::shuffle(v, src < 32 ? src : -1);
}
template <class T>
T __shfl_sync(unsigned, T v, int src) {
    return emu::shuffle(v, src & 31);
}

template <class T, class U>
T atomicAdd(T* p, U v) { T old = *p; *p = old + (T)v; return old; }
template <class T>
T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
template <class T>
T atomicCAS(T* p, T cmp, T v) { T old = *p; if (old == cmp) *p = v; return old; }
template <class T>
T atomicMax(T* p, T v) { T old = *p; if (v > old) *p = v; return old; }

inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline double __longlong_as_double(long long i) {
    double d; std::memcpy(&d, &i, 8); return d;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
template <class A, class B>
auto min(A a, B b) -> std::common_type_t<A, B> { return a < b ? a : b; }
template <class A, class B>
auto max(A a, B b) -> std::common_type_t<A, B> { return a < b ? b : a; }

// The library's __shared__ variables for EMU_POISON: offsets from the
// library's base (its symbol table's values) and sizes.
#include <dlfcn.h>
extern "C" void emu_shared_variables(const unsigned long long* offsets,
                                     const unsigned long long* sizes,
                                     int n) {
    Dl_info info;
    dladdr((void*)&emu_shared_variables, &info);
    emu::library_base = static_cast<char*>(info.dli_fbase);
    emu::shared_vars.clear();
    for (int i = 0; i < n; ++i)
        emu::shared_vars.emplace_back(offsets[i], sizes[i]);
}
