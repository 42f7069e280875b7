/*
 * unwind_chain.c — one call chain, outer -> mid -> inner -> a callback,
 * compiled into test_unwind several ways (tests/unit/meson.build): with and
 * without unwind tables (-fno-asynchronous-unwind-tables), at -O0 and -O2,
 * with and without frame pointers. CHAIN_PREFIX names this copy's entry
 * point. Each function notes the return address it was called with, so the
 * test knows the true stack even where no unwinder can find it.
 *
 * mid has a variable-length array: its frame is addressed through rbp at
 * every optimisation level, and it keeps a frame pointer even where the
 * others do not (-fomit-frame-pointer), so that inner, without one and
 * without unwind tables, leaves mid's rbp in place: following rbp from
 * inner would skip mid, and the unwinder must see that and stop. The
 * functions are defined callers first (the build keeps that order) so that
 * mid lies before inner in the code, which is what makes the mistake
 * tempting.
 */
#include <stdint.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define NAME(x) CAT(CHAIN_PREFIX, x)

struct chain_truth {
    uint64_t ra[4];   /* the return addresses into inner, mid, outer and outer's caller */
};

typedef void (*chain_cb)(void *arg, struct chain_truth *truth);

int NAME(outer)(chain_cb cb, void *arg, struct chain_truth *truth, int n);
static int mid(chain_cb cb, void *arg, struct chain_truth *truth, int n);
static int inner(chain_cb cb, void *arg, struct chain_truth *truth, int n);

__attribute__((noinline)) int NAME(outer)(chain_cb cb, void *arg, struct chain_truth *truth, int n)
{
    volatile char buf[100];
    for (int i = 0; i < (int)sizeof buf; i++)
        buf[i] = (char)i;
    truth->ra[3] = (uint64_t)(uintptr_t)__builtin_return_address(0);
    int r = mid(cb, arg, truth, n + buf[7]);
    __asm__ volatile("" ::: "memory");
    return r + buf[n & 63];
}

__attribute__((noinline)) static int mid(chain_cb cb, void *arg, struct chain_truth *truth, int n)
{
    volatile char vla[n];
    for (int i = 0; i < n; i++)
        vla[i] = (char)i;
    truth->ra[2] = (uint64_t)(uintptr_t)__builtin_return_address(0);
    int r = inner(cb, arg, truth, n);
    __asm__ volatile("" ::: "memory");
    return r + vla[n - 1];
}

__attribute__((noinline)) static int inner(chain_cb cb, void *arg, struct chain_truth *truth, int n)
{
    volatile int words[12];
    for (int i = 0; i < 12; i++)
        words[i] = n + i;
    truth->ra[1] = (uint64_t)(uintptr_t)__builtin_return_address(0);
    cb(arg, truth);
    __asm__ volatile("" ::: "memory");
    return words[n % 12];
}
