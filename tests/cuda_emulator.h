// A CPU stand-in for the CUDA execution model, for the tests
// (tests/cuda_emulator.py compiles a kernel source with g++ after this
// prelude).  Blocks run one after another; the threads of a block run as
// fibers (ucontext) on one OS thread and switch only at __syncthreads,
// __syncwarp and the warp shuffles, which is one legal CUDA schedule.
// A barrier waits for the threads that have not returned, as on Volta and
// later.  Barriers that can never be released (a deadlock: divergent
// __syncthreads) abort the launch with a message.
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

inline ucontext_t scheduler;
inline jmp_buf scheduler_jb;
inline Fiber* current = nullptr;
inline dim3 block_idx, grid_dim, block_dim;
inline std::function<void()>* body = nullptr;
inline const char* error = nullptr;

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
    size_t live = n;
    while (live > 0) {
        bool ran = false;
        for (auto& f : fs) {
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
    // the fibers and their stacks are reused by every launch
    static std::vector<Fiber> pool;
    const size_t n = (size_t)block.x * block.y * block.z;
    while (pool.size() < n) {
        pool.emplace_back();
        pool.back().stack = static_cast<char*>(std::malloc(kStack));
    }
    std::vector<Fiber> fs(pool.begin(), pool.begin() + n);
    for (unsigned z = 0; z < grid.z && !error; ++z)
        for (unsigned y = 0; y < grid.y && !error; ++y)
            for (unsigned x = 0; x < grid.x && !error; ++x) {
                block_idx = dim3{x, y, z};
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
