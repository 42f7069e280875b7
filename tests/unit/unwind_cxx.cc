/*
 * unwind_cxx.cc — C++ frames for test_unwind, compiled at -O0, -O2 and
 * -O2 -fomit-frame-pointer (tests/unit/meson.build; CXX_PREFIX names this
 * copy's entry point): the callback runs inside a catch handler, called
 * through a std::function from a lambda, under a function with a try block
 * of its own, so the walk crosses FDEs with personality routines and
 * language-specific data, template instances and a lambda's operator().
 */
#include <cstdint>
#include <functional>
#include <stdexcept>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define NAME(x) CAT(CXX_PREFIX, x)

typedef void (*cxx_cb)(void *arg);

extern "C" int NAME(run)(cxx_cb cb, void *arg, int n);

namespace {

struct Refused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

__attribute__((noinline)) int refuse(int n)
{
    if (n >= 0)
        throw Refused("no");
    return n;
}

__attribute__((noinline)) int in_handler(cxx_cb cb, void *arg, int n)
{
    try {
        return refuse(n);
    } catch (const Refused &) {
        volatile int seen = n;
        auto call = [cb, arg, &seen](int k) __attribute__((noinline)) {
            seen = seen + k;
            cb(arg);
            return seen + 1;
        };
        std::function<int(int)> f = call;
        int r = f(n + 1);
        __asm__ volatile("" ::: "memory");
        return r + seen;
    }
}

}  // namespace

extern "C" __attribute__((noinline)) int NAME(run)(cxx_cb cb, void *arg, int n)
{
    try {
        int r = in_handler(cb, arg, n);
        __asm__ volatile("" ::: "memory");
        return r + 1;
    } catch (...) {
        return -1;
    }
}
