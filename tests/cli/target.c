/*
 * target.c — a real binary for the CLI's tests to point stacks into. It
 * records genuine return addresses (the pcs an unwinder would report) in a
 * call chain of its own, and prints them as offsets from its load address,
 * with its path and build-id, as one JSON line. The mock server turns them
 * into a `threads` reply, so the CLI's symbolization is checked against real
 * functions, a static one and one with a C++-mangled name included, and
 * against the lines marked LINE:<tag> below.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BARRIER() __asm__ volatile("" ::: "memory")
#ifdef __clang__
#define KEEP __attribute__((noinline))
#else
#define KEEP __attribute__((noinline, noclone))   /* a real call, a real frame */
#endif

static uintptr_t wait_pcs[4], create_pcs[3], mangled_pc;
static uintptr_t base;
static char build_id[129];

KEEP static void record_pc(uintptr_t *slot)
{
    *slot = (uintptr_t)__builtin_return_address(0);
    BARRIER();
}

/* A static function: only .symtab knows its name. */
KEEP static void cli_wait_for_result(void)
{
    record_pc(&wait_pcs[0]); /* LINE:wait */
    wait_pcs[1] = (uintptr_t)__builtin_return_address(0);
    BARRIER();
}

KEEP void *cli_worker(void *arg)
{
    cli_wait_for_result(); /* LINE:worker */
    wait_pcs[2] = (uintptr_t)__builtin_return_address(0);
    BARRIER();
    return arg;
}

KEEP void cli_spawn(void)
{
    record_pc(&create_pcs[0]); /* LINE:spawn */
    create_pcs[1] = (uintptr_t)__builtin_return_address(0);
    BARRIER();
}

/* A C function under a C++ name: lw::detail::pump(). */
KEEP void cli_pump(void) __asm__("_ZN2lw6detail4pumpEv");
void cli_pump(void)
{
    record_pc(&mangled_pc);
    BARRIER();
}

static void read_build_id(const struct dl_phdr_info *info)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const unsigned char *desc = (const unsigned char *)(p + sizeof *n + ((n->n_namesz + 3) & ~3u));
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(p + sizeof *n, "GNU", 4) == 0 &&
                n->n_descsz <= 64) {
                for (unsigned k = 0; k < n->n_descsz; k++)
                    snprintf(build_id + 2 * k, 3, "%02x", desc[k]);
                return;
            }
            p += sizeof *n + ((n->n_namesz + 3) & ~3u) + ((n->n_descsz + 3) & ~3u);
        }
    }
}

static int first_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    base = info->dlpi_addr;
    read_build_id(info);
    return 1;   /* the main program comes first */
}

static void print_offsets(const char *key, const uintptr_t *pcs, int n)
{
    printf("\"%s\":[", key);
    for (int i = 0; i < n; i++)
        printf("%s\"0x%lx\"", i ? "," : "", (unsigned long)(pcs[i] - base));
    printf("],");
}

int main(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 1;
    exe[n] = 0;
    dl_iterate_phdr(first_module, NULL);
    cli_worker(NULL); /* LINE:main-worker */
    cli_spawn(); /* LINE:main-spawn */
    cli_pump();
    printf("{\"path\":\"%s\",\"build_id\":%s%s%s,", exe, *build_id ? "\"" : "", *build_id ? build_id : "null",
           *build_id ? "\"" : "");
    print_offsets("wait", wait_pcs, 3);
    print_offsets("create", create_pcs, 2);
    print_offsets("mangled", &mangled_pc, 1);
    printf("\"routine\":\"0x%lx\"}\n", (unsigned long)((uintptr_t)&cli_worker - base));
    return 0;
}
