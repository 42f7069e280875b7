/*
 * symbolize.c — turns the raw program counters of a reply into module+offset,
 * function names and file:line, in the CLI (never in the host process).
 *
 * Per module, once, on first use: its PT_LOAD ranges (which module holds a
 * pc), a sorted, de-duplicated index of function symbols (binary search per
 * address), and libdw's view of its DWARF when there is any. Symbols come from
 * the module's .symtab (static functions included) or, when it has none, from
 * the .symtab of its separate debug file (/usr/lib/debug/.build-id/xx/rest.debug,
 * then the .gnu_debuglink places), plus its .dynsym. A module file whose
 * build-id differs from the one the process reported (the library was
 * replaced on disk) is not trusted. Anything odd — a missing file, a
 * truncated or hostile ELF — gives a "module+offset" frame, never a crash.
 *
 * The paths come from the reply, and a reply is not trusted: a module path
 * naming a FIFO once hung `threads` in open(). Files are opened O_NONBLOCK
 * and only regular files are read; no module file is opened once the
 * question's deadline is near (deadline.h: the frames past that point show
 * module+offset, and lwc_symbolizer_cut_short says so), and the watchdog
 * ends a read that a hung filesystem never returns from.
 *
 * Where DWARF describes a pc, the functions inlined there become frames of
 * their own, innermost first, as `eu-addr2line -i` and gdb show them: the
 * concrete scopes around pc give each DW_TAG_inlined_subroutine, named by
 * its linkage name (demangled) or name; the innermost is at pc's line, each
 * outer one at the DW_AT_call_file:DW_AT_call_line of the one it inlined.
 * The function holding pc is found through a per-unit index of function
 * address ranges (built once per compilation unit), then the scopes inside
 * it are followed down to pc; dwarf_getscopes/dwarf_getscopes_die walk the
 * whole unit instead, which costs ~30 µs a pc in libc, and remain the
 * fallback. Every answer is cached per pc, so a dump of 10,000 threads costs
 * one lookup per distinct address.
 */
#include "symbolize_parts.h"
#include "client.h"
#include "deadline.h"

#include <dlfcn.h>
#include <link.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- modules ---- */

static bool open_module_file(struct module *m, pid_t pid)
{
    if (lwc_elf_open_matching(m, m->path, &m->main))
        return true;
    char alt[PATH_MAX];
    return m->path[0] == '/' && pid > 0 &&
           (size_t)snprintf(alt, sizeof alt, "/proc/%d/root%s", (int)pid, m->path) < sizeof alt &&
           lwc_elf_open_matching(m, alt, &m->main);
}

static void release_module(struct module *m);
static bool take_module_read_ahead(struct module *m);

static void load_module(struct module *m, pid_t pid)
{
    if (take_module_read_ahead(m))
        return;
    m->loaded = true;
    bool have_main = open_module_file(m, pid);
    bool main_symtab = have_main && lwc_elf_has_section(m->main.elf, SHT_SYMTAB);
    if (have_main)
        lwc_module_attach_dwarf(m, m->main.elf);
    bool need_debug = !main_symtab || !m->dwarf;
    bool have_debug = need_debug && (lwc_module_open_by_build_id(m) || (have_main && lwc_module_open_by_debuglink(m)));
    if (have_main)
        lwc_module_read_ranges(m, m->main.elf);
    else if (have_debug)
        lwc_module_read_ranges(m, m->debug.elf);   /* debug files keep the program headers */
    for (int data = 0; data < 2; data++) {
        if (main_symtab)
            lwc_module_add_symbols(m, m->main.elf, SHT_SYMTAB, 0, data);
        else if (have_debug)
            lwc_module_add_symbols(m, m->debug.elf, SHT_SYMTAB, 0, data);
        if (have_main)
            lwc_module_add_symbols(m, m->main.elf, SHT_DYNSYM, 1, data);
    }
    if (have_debug)
        lwc_module_attach_dwarf(m, m->debug.elf);
    lwc_module_finish_index(m);
}

/* ---- glibc's libc, read while the process answers ---- */

static struct module ahead = { .main.fd = -1, .debug.fd = -1 };   /* loaded, or path NULL */

static int find_libc(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    const char *slash = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
    if (!slash || strcmp(slash + 1, "libc.so.6") != 0)
        return 0;
    *(const char **)data = info->dlpi_name;
    return 1;
}

bool lwc_symbolize_ahead(void *unused)
{
    (void)unused;
    const char *libc = NULL;
    struct elf_file f = { -1, NULL };
    char id[256];
    if (ahead.path || lwc_deadline_symbolizing_over())
        return false;
    elf_version(EV_CURRENT);
    dl_iterate_phdr(find_libc, &libc);
    if (!libc || !lwc_elf_open(libc, &f))
        return false;
    bool known = lwc_elf_build_id(f.elf, id, sizeof id);
    lwc_elf_close(&f);
    if (!known || !(ahead.path = strdup(libc)) || !(ahead.build_id = strdup(id))) {
        release_module(&ahead);
        return false;
    }
    load_module(&ahead, 0);
    return false;
}

/* m is the file read ahead (the same path, and the same build-id as the
 * process reported): m takes what was read, at its own base. */
static bool take_module_read_ahead(struct module *m)
{
    if (!ahead.loaded || !m->build_id || strcmp(m->path, ahead.path) != 0 ||
        strcasecmp(m->build_id, ahead.build_id) != 0)
        return false;
    struct module taken = ahead;
    taken.path = m->path;
    taken.build_id = m->build_id;
    taken.base = m->base;
    free(ahead.path);
    free(ahead.build_id);
    ahead = (struct module){ .main.fd = -1, .debug.fd = -1 };
    *m = taken;
    return true;
}

static bool module_contains(struct lwc_symbolizer *s, struct module *m, uint64_t pc)
{
    if (pc < m->base)
        return false;
    if (!m->loaded && lwc_deadline_symbolizing_over()) {
        m->loaded = true;   /* left unread: module+offset */
        s->cut_short = true;
    }
    if (!m->loaded)
        load_module(m, s->pid);
    uint64_t off = pc - m->base;
    for (size_t i = 0; i < m->nranges; i++)
        if (off >= m->ranges[i].lo && off < m->ranges[i].hi)
            return true;
    return false;
}

/* The module whose segments hold pc; failing that, the unreadable module
 * (no known segments) loaded nearest below pc, so the frame still says
 * module+offset. */
static struct module *module_for(struct lwc_symbolizer *s, uint64_t pc)
{
    for (size_t i = 0; i < s->nmods; i++)
        if (module_contains(s, &s->mods[i], pc))
            return &s->mods[i];
    struct module *best = NULL;
    for (size_t i = 0; i < s->nmods; i++) {
        struct module *m = &s->mods[i];
        if (m->loaded && m->nranges == 0 && pc >= m->base && pc - m->base < FALLBACK_SPAN &&
            (!best || m->base > best->base))
            best = m;
    }
    return best;
}

/* ---- frames at a pc ---- */

/* Keep a malloc'd string until the symbolizer is freed; NULL on failure
 * (the string is freed then). */
static const char *keep_string(struct lwc_symbolizer *s, char *str)
{
    if (!str)
        return NULL;
    char **owned = lwc_room_for_one(s->owned, &s->owned_size, s->nowned, sizeof *owned, 64);
    if (!owned) {
        free(str);
        return NULL;
    }
    s->owned = owned;
    return s->owned[s->nowned++] = str;
}

/* A DWARF function's name: its linkage name demangled, else its plain name,
 * else the raw linkage name (the same names the symbol tables give). */
static const char *die_name(struct lwc_symbolizer *s, Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
    if (!linkage)
        linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
    const char *readable = linkage ? keep_string(s, lwc_demangle(linkage)) : NULL;
    if (readable)
        return readable;
    if (linkage && strncmp(linkage, "_Z", 2) == 0)
        return linkage;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
    return name ? name : linkage;
}

/* The real frame at pc, without file:line: module, offset, symbol-table
 * name. *lookup: the module offset to look up (pc - 1 for return addresses). */
static struct module *base_frame(struct lwc_symbolizer *s, uint64_t pc, bool return_address, struct lwc_frame *f,
                                 uint64_t *lookup)
{
    memset(f, 0, sizeof *f);
    f->pc = pc;
    struct module *m = s ? module_for(s, pc) : NULL;
    if (!m)
        return NULL;
    f->module = m->path;
    f->offset = pc - m->base;
    *lookup = return_address && f->offset ? f->offset - 1 : f->offset;
    struct symbol *sym = (struct symbol *)lwc_module_find_symbol(m, *lookup);
    if (sym)
        f->function = lwc_symbol_display_name(sym);
    return m;
}

/* frames[0..n-1] from the real frame `real` and the function scopes at
 * lookup (inlined subroutines first): frames[i] is named after scopes[i] and
 * sits where scopes[i - 1] was called (frames[0]: the line table's place). */
static void fill_inlined(struct lwc_symbolizer *s, const struct lwc_frame *real, Dwarf_Die *cu, uint64_t lookup,
                         Dwarf_Die *scopes, size_t nscopes, struct lwc_frame *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        frames[i] = *real;
        frames[i].file = NULL;
        frames[i].line = 0;
        frames[i].inlined = i + 1 < n;
        if (i + 1 < n || !real->function)
            frames[i].function = i < nscopes ? die_name(s, &scopes[i]) : real->function;
        if (i == 0)
            lwc_dwarf_line_at(cu, lookup, &frames[i]);
        else
            lwc_dwarf_call_site(&scopes[i - 1], &frames[i]);
    }
}

/* Every frame at pc, innermost first (malloc'd into *out); the count, 0 when
 * out of memory. */
static size_t compute_frames(struct lwc_symbolizer *s, uint64_t pc, bool return_address, struct lwc_frame **out)
{
    struct lwc_frame real;
    uint64_t lookup = 0;
    struct module *m = base_frame(s, pc, return_address, &real, &lookup);
    Dwarf_Die cu, *scopes = NULL;
    bool have_cu = m && m->dwarf && lwc_module_unit_for(m, lookup, &cu);
    size_t nscopes = have_cu ? lwc_module_function_scopes(m, &cu, lookup, &scopes) : 0, ninlined = 0;
    while (ninlined < nscopes && dwarf_tag(&scopes[ninlined]) == DW_TAG_inlined_subroutine)
        ninlined++;
    size_t n = ninlined + 1;
    *out = calloc(n, sizeof **out);
    if (*out && have_cu)
        fill_inlined(s, &real, &cu, lookup, scopes, nscopes, *out, n);
    else if (*out)
        **out = real;
    free(scopes);
    return *out ? n : 0;
}

static size_t cache_slot(const struct lwc_symbolizer *s, uint64_t pc, bool return_address)
{
    uint64_t h = (pc ^ (uint64_t)return_address) * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (s->cache_size - 1);
}

static struct pc_entry *cache_find(struct lwc_symbolizer *s, uint64_t pc, bool return_address)
{
    for (size_t i = cache_slot(s, pc, return_address);; i = (i + 1) & (s->cache_size - 1)) {
        struct pc_entry *e = &s->cache[i];
        if (!e->used || (e->pc == pc && e->return_address == return_address))
            return e;
    }
}

/* Double the table (or make the first one); false when out of memory. */
static bool cache_grow(struct lwc_symbolizer *s)
{
    struct pc_entry *old = s->cache;
    size_t old_size = s->cache_size, size = old_size ? old_size * 2 : 1024;
    struct pc_entry *table = calloc(size, sizeof *table);
    if (!table)
        return false;
    s->cache = table;
    s->cache_size = size;
    for (size_t i = 0; i < old_size; i++)
        if (old[i].used)
            *cache_find(s, old[i].pc, old[i].return_address) = old[i];
    free(old);
    return true;
}

/* ---- the interface ---- */

static void release_module(struct module *m)
{
    for (size_t k = 0; k < m->nunits; k++)
        free(m->units[k].funcs);
    free(m->units);
    if (m->dwarf)
        dwarf_end(m->dwarf);
    lwc_elf_close(&m->debug);
    lwc_elf_close(&m->main);
    for (size_t k = 0; k < m->nsyms; k++)
        free(m->syms[k].display);
    for (size_t k = 0; k < m->ndsyms; k++)
        free(m->dsyms[k].display);
    free(m->ranges);
    free(m->syms);
    free(m->dsyms);
    free(m->path);
    free(m->build_id);
    memset(m, 0, sizeof *m);
    m->main.fd = m->debug.fd = -1;
}

struct lwc_symbolizer *lwc_symbolizer_new(json_object *modules, pid_t pid)
{
    struct lwc_symbolizer *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    elf_version(EV_CURRENT);
    s->pid = pid;
    size_t n = lwc_len(modules);
    s->mods = calloc(n ? n : 1, sizeof *s->mods);
    for (size_t i = 0; s->mods && i < n; i++) {
        json_object *m = json_object_array_get_idx(modules, i);
        const char *path = lwc_str(m, "path", NULL), *base = lwc_str(m, "base", NULL);
        char *end;
        uint64_t b = base ? strtoull(base, &end, 16) : 0;
        if (!path || !base || *end)
            continue;
        struct module *mod = &s->mods[s->nmods];
        const char *bid = lwc_str(m, "build_id", NULL);
        mod->path = strdup(path);
        mod->build_id = bid && *bid ? strdup(bid) : NULL;
        mod->base = b;
        mod->main.fd = mod->debug.fd = -1;
        if (mod->path)
            s->nmods++;
    }
    return s;
}

bool lwc_symbolizer_cut_short(const struct lwc_symbolizer *s)
{
    return s && s->cut_short;
}

void lwc_symbolizer_free(struct lwc_symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nmods; i++)
        release_module(&s->mods[i]);
    if (ahead.path)
        release_module(&ahead);   /* (not taken over: another libc, or none used) */
    for (size_t i = 0; i < s->cache_size; i++)
        free(s->cache[i].frames);
    for (size_t i = 0; i < s->nowned; i++)
        free(s->owned[i]);
    free(s->cache);
    free(s->owned);
    free(s->mods);
    free(s);
}

size_t lwc_symbolize_frames(struct lwc_symbolizer *s, uint64_t pc, bool return_address,
                            const struct lwc_frame **frames)
{
    *frames = NULL;
    if (!s || ((s->cache_used + 1) * 2 > s->cache_size && !cache_grow(s)))
        return 0;
    struct pc_entry *e = cache_find(s, pc, return_address);
    if (!e->used) {
        struct lwc_frame *computed = NULL;
        size_t n = compute_frames(s, pc, return_address, &computed);
        if (n == 0)
            return 0;
        *e = (struct pc_entry){ .pc = pc, .used = true, .return_address = return_address, .n = n,
                                .frames = computed };
        s->cache_used++;
    }
    *frames = e->frames;
    return e->n;
}

void lwc_symbolize(struct lwc_symbolizer *s, uint64_t pc, bool return_address, struct lwc_frame *f)
{
    const struct lwc_frame *frames;
    size_t n = lwc_symbolize_frames(s, pc, return_address, &frames);
    uint64_t lookup;
    if (n > 0)
        *f = frames[n - 1];
    else
        base_frame(s, pc, return_address, f, &lookup);
}

const char *lwc_symbolize_data(struct lwc_symbolizer *s, uint64_t addr, const char **module, uint64_t *offset)
{
    *module = NULL;
    *offset = 0;
    struct module *m = s ? module_for(s, addr) : NULL;
    if (!m || m->nranges == 0)
        return NULL;
    *module = m->path;
    struct symbol *sym = (struct symbol *)lwc_symbols_find(m->dsyms, m->ndsyms, addr - m->base, false);
    if (!sym)
        return NULL;
    *offset = addr - m->base - sym->addr;
    return lwc_symbol_display_name(sym);
}
