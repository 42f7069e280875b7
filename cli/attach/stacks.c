/*
 * stacks.c — unwinding the threads of a frozen process or a core file with
 * libdwfl (see stacks.h). The thread callbacks are ours, for both: the
 * registers come from the freeze or the core's notes (x86-64's DWARF
 * numbering: rax, rdx, rcx, rbx, rsi, rdi, rbp, rsp, r8-r15, then the
 * return address column, rip), and memory from the page cache, so a
 * stack is read once however many frames look at it.
 */
#include "attach/stacks.h"

#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 256

struct lwa_stacks {
    Dwfl *dwfl;
    struct lwa_memory *mem;
    pid_t pid;
    const struct lwa_frozen_thread *current;   /* the thread being unwound */
    uint64_t pcs[MAX_FRAMES];
    size_t npcs, max;
};

static char *debuginfo_path;
static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};
static const Dwfl_Callbacks core_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* ---- thread callbacks ---- */

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_arg)
{
    (void)dwfl;
    (void)arg;
    (void)thread_arg;
    return 0;   /* threads are asked for one by one (get_thread) */
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_arg)
{
    (void)dwfl;
    struct lwa_stacks *s = arg;
    if (!s->current || s->current->tid != tid)
        return false;
    *thread_arg = (void *)s->current;
    return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    (void)dwfl;
    struct lwa_stacks *s = arg;
    uint64_t word;
    if (!lwa_memory_read_all(s->mem, &word, addr, sizeof word))
        return false;
    *result = word;
    return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
    const struct lwa_frozen_thread *t = thread_arg;
    const struct user_regs_struct *r = &t->regs;
    Dwarf_Word regs[17] = { r->rax, r->rdx, r->rcx, r->rbx, r->rsi, r->rdi, r->rbp, r->rsp,
                            r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15, r->rip };
    return dwfl_thread_state_registers(thread, 0, 17, regs);
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = next_thread,
    .get_thread = get_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

/* ---- modules ---- */

/* Open every module's file and read its unwind table now, so that the
 * freeze does not wait for it. */
static int prime_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start, void *arg)
{
    (void)userdata;
    (void)name;
    (void)start;
    (void)arg;
    Dwarf_Addr bias;
    if (dwfl_module_getelf(mod, &bias))
        dwfl_module_eh_cfi(mod, &bias);
    return DWARF_CB_OK;
}

static bool attach_state(struct lwa_stacks *s, char *why, size_t size)
{
    dwfl_getmodules(s->dwfl, prime_module, NULL, 0);
    if (!dwfl_attach_state(s->dwfl, NULL, s->pid, &thread_callbacks, s)) {
        snprintf(why, size, "libdwfl cannot unwind this process: %s", dwfl_errmsg(-1));
        return false;
    }
    return true;
}

struct lwa_stacks *lwa_stacks_for_process(pid_t pid, struct lwa_memory *mem, char *why, size_t size)
{
    struct lwa_stacks *s = calloc(1, sizeof *s);
    if (!s || !(s->dwfl = dwfl_begin(&proc_callbacks))) {
        snprintf(why, size, "libdwfl: %s", s ? dwfl_errmsg(-1) : "out of memory");
        free(s);
        return NULL;
    }
    s->mem = mem;
    s->pid = pid;
    dwfl_report_begin(s->dwfl);
    int err = dwfl_linux_proc_report(s->dwfl, pid);
    if (dwfl_report_end(s->dwfl, NULL, NULL) != 0 || err != 0) {
        snprintf(why, size, "libdwfl cannot list the modules of pid %d: %s", (int)pid,
                 err > 0 ? strerror(err) : dwfl_errmsg(-1));
        lwa_stacks_free(s);
        return NULL;
    }
    if (!attach_state(s, why, size)) {
        lwa_stacks_free(s);
        return NULL;
    }
    return s;
}

struct lwa_stacks *lwa_stacks_for_core(Elf *core, const char *exe, struct lwa_memory *mem, char *why, size_t size)
{
    struct lwa_stacks *s = calloc(1, sizeof *s);
    if (!s || !(s->dwfl = dwfl_begin(&core_callbacks))) {
        snprintf(why, size, "libdwfl: %s", s ? dwfl_errmsg(-1) : "out of memory");
        free(s);
        return NULL;
    }
    s->mem = mem;
    s->pid = 1;   /* (any: our callbacks find threads by tid) */
    dwfl_report_begin(s->dwfl);
    int n = dwfl_core_file_report(s->dwfl, core, exe);
    if (dwfl_report_end(s->dwfl, NULL, NULL) != 0 || n < 0) {
        snprintf(why, size, "libdwfl cannot list the modules of the core: %s", dwfl_errmsg(-1));
        lwa_stacks_free(s);
        return NULL;
    }
    if (!attach_state(s, why, size)) {
        lwa_stacks_free(s);
        return NULL;
    }
    return s;
}

void lwa_stacks_free(struct lwa_stacks *s)
{
    if (!s)
        return;
    if (s->dwfl)
        dwfl_end(s->dwfl);
    free(s);
}

/* ---- unwinding ---- */

static int take_frame(Dwfl_Frame *frame, void *arg)
{
    struct lwa_stacks *s = arg;
    Dwarf_Addr pc;
    bool activation;
    if (!dwfl_frame_pc(frame, &pc, &activation) || pc == 0)
        return DWARF_CB_ABORT;
    s->pcs[s->npcs++] = pc;
    return s->npcs < s->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

size_t lwa_stacks_unwind(struct lwa_stacks *s, const struct lwa_frozen_thread *t, uint64_t *pcs, size_t max)
{
    if (!s || !t->stopped || t->gone)
        return 0;
    s->current = t;
    s->npcs = 0;
    s->max = max < MAX_FRAMES ? max : MAX_FRAMES;
    dwfl_getthread_frames(s->dwfl, t->tid, take_frame, s);   /* (its end, or where it could go no further) */
    s->current = NULL;
    memcpy(pcs, s->pcs, s->npcs * sizeof *pcs);
    return s->npcs;
}

/* ---- the module list ---- */

static void hex_of(const unsigned char *bytes, int n, char *out, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    size_t k = 0;
    for (int i = 0; i < n && k + 3 <= size; i++) {
        out[k++] = digits[bytes[i] >> 4];
        out[k++] = digits[bytes[i] & 15];
    }
    out[k] = 0;
}

static int add_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start, void *arg)
{
    (void)userdata;
    (void)start;
    json_object *list = arg;
    Dwarf_Addr bias = 0;
    const char *mainfile = NULL;
    dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, &mainfile, NULL);
    const char *path = name && name[0] == '/' ? name : mainfile;
    if (!path || path[0] != '/' || !dwfl_module_getelf(mod, &bias))
        return DWARF_CB_OK;   /* [vdso] and the like: nothing to symbolize with */
    json_object *m = json_object_new_object();
    char base[32], id[130];
    snprintf(base, sizeof base, "0x%llx", (unsigned long long)bias);
    json_object_object_add(m, "path", json_object_new_string(path));
    json_object_object_add(m, "base", json_object_new_string(base));
    const unsigned char *bits;
    GElf_Addr vaddr;
    int n = dwfl_module_build_id(mod, &bits, &vaddr);
    if (n > 0) {
        hex_of(bits, n, id, sizeof id);
        json_object_object_add(m, "build_id", json_object_new_string(id));
    } else {
        json_object_object_add(m, "build_id", NULL);
    }
    json_object_array_add(list, m);
    return DWARF_CB_OK;
}

json_object *lwa_stacks_modules(struct lwa_stacks *s)
{
    json_object *list = json_object_new_array();
    if (s)
        dwfl_getmodules(s->dwfl, add_module, list, 0);
    return list;
}

struct build_id_search {
    const char *suffix;
    char *hex;
    size_t size;
    uint64_t bias;
    bool found;
};

static int match_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start, void *arg)
{
    (void)userdata;
    (void)start;
    struct build_id_search *q = arg;
    size_t len = name ? strlen(name) : 0, slen = strlen(q->suffix);
    bool bare = q->suffix[0] == '/' && len == slen - 1 && strcmp(name, q->suffix + 1) == 0;   /* a core's soname */
    if (!bare && (len < slen || strcmp(name + len - slen, q->suffix) != 0))
        return DWARF_CB_OK;
    const unsigned char *bits;
    GElf_Addr vaddr;
    Dwarf_Addr bias;
    int n = dwfl_module_build_id(mod, &bits, &vaddr);
    if (n <= 0 || !dwfl_module_getelf(mod, &bias))
        return DWARF_CB_OK;
    hex_of(bits, n, q->hex, q->size);
    q->bias = bias;
    q->found = true;
    return DWARF_CB_ABORT;
}

bool lwa_stacks_module_build_id(struct lwa_stacks *s, const char *suffix, char *hex, size_t size, uint64_t *bias)
{
    struct build_id_search q = { suffix, hex, size, 0, false };
    if (s)
        dwfl_getmodules(s->dwfl, match_module, &q, 0);
    *bias = q.bias;
    return q.found;
}
