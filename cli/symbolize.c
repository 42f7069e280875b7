/*
 * symbolize.c — turns the raw program counters of a reply into function names
 * and file:line, in the CLI (never in the host process).
 *
 * Per module, once: its PT_LOAD ranges (to know which module holds a pc), a
 * sorted index of function symbols from .symtab and .dynsym (static
 * functions included), taken from a separate debug file found by build-id or
 * .gnu_debuglink when the module itself is stripped, and libdw's line tables
 * when DWARF exists. Lookups are binary searches. Odd or missing files give
 * "module+offset" frames, never a crash.
 */
#include "symbolize.h"
#include "client.h"

#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct symbol {
    uint64_t addr, size;
    const char *name;   /* points into an ELF string table kept open */
};

struct range {
    uint64_t lo, hi;
};

struct elf_file {
    int fd;
    Elf *elf;
};

struct module {
    char *path;
    uint64_t base;
    char *build_id;
    bool loaded;
    struct range *ranges;
    size_t nranges;
    struct symbol *syms;
    size_t nsyms;
    struct elf_file main, debug;
    Dwarf *dwarf;
};

struct lwc_symbolizer {
    struct module *mods;
    size_t nmods;
};

static bool open_elf(const char *path, struct elf_file *f)
{
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    f->elf = NULL;
    if (f->fd < 0)
        return false;
    f->elf = elf_begin(f->fd, ELF_C_READ_MMAP, NULL);
    if (!f->elf || elf_kind(f->elf) != ELF_K_ELF) {
        if (f->elf)
            elf_end(f->elf);
        close(f->fd);
        f->fd = -1;
        f->elf = NULL;
        return false;
    }
    return true;
}

static void close_elf(struct elf_file *f)
{
    if (f->elf)
        elf_end(f->elf);
    if (f->fd >= 0)
        close(f->fd);
    f->elf = NULL;
    f->fd = -1;
}

static void read_ranges(struct module *m)
{
    size_t n = 0;
    if (elf_getphdrnum(m->main.elf, &n) != 0 || n == 0)
        return;
    m->ranges = calloc(n, sizeof *m->ranges);
    for (size_t i = 0; m->ranges && i < n; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(m->main.elf, (int)i, &ph) && ph.p_type == PT_LOAD)
            m->ranges[m->nranges++] = (struct range){ ph.p_vaddr, ph.p_vaddr + ph.p_memsz };
    }
}

static bool has_section(Elf *elf, Elf64_Word type)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) && sh.sh_type == type)
            return true;
    }
    return false;
}

static void add_symbols(struct module *m, Elf *elf, Elf64_Word type)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || sh.sh_entsize == 0)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data)
            continue;
        size_t count = sh.sh_size / sh.sh_entsize;
        struct symbol *bigger = realloc(m->syms, (m->nsyms + count) * sizeof *bigger);
        if (!bigger)
            return;
        m->syms = bigger;
        for (size_t i = 0; i < count; i++) {
            GElf_Sym sym;
            if (!gelf_getsym(data, (int)i, &sym) || sym.st_value == 0 || sym.st_shndx == SHN_UNDEF)
                continue;
            int t = GELF_ST_TYPE(sym.st_info);
            if (t != STT_FUNC && t != STT_GNU_IFUNC)
                continue;
            const char *name = elf_strptr(elf, sh.sh_link, sym.st_name);
            if (name && *name)
                m->syms[m->nsyms++] = (struct symbol){ sym.st_value, sym.st_size, name };
        }
    }
}

static int compare_symbols(const void *a, const void *b)
{
    const struct symbol *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    return (y->size > x->size) - (y->size < x->size);   /* sized ones first */
}

/* /usr/lib/debug/.build-id/xx/rest.debug, then .gnu_debuglink places. */
static bool open_debug_file(struct module *m)
{
    char path[4096];
    if (m->build_id && strlen(m->build_id) > 2) {
        snprintf(path, sizeof path, "/usr/lib/debug/.build-id/%.2s/%s.debug", m->build_id, m->build_id + 2);
        if (open_elf(path, &m->debug))
            return true;
    }
    Elf_Scn *scn = NULL;
    size_t shstrndx;
    if (elf_getshdrstrndx(m->main.elf, &shstrndx) != 0)
        return false;
    while ((scn = elf_nextscn(m->main.elf, scn))) {
        GElf_Shdr sh;
        const char *name;
        if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(m->main.elf, shstrndx, sh.sh_name)) ||
            strcmp(name, ".gnu_debuglink") != 0)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data || !data->d_buf || data->d_size < 2 || !memchr(data->d_buf, 0, data->d_size))
            return false;
        const char *link = data->d_buf;
        char dirbuf[4096];
        snprintf(dirbuf, sizeof dirbuf, "%s", m->path);
        const char *dir = dirname(dirbuf);
        const char *places[] = { "%s/%s", "%s/.debug/%s", "/usr/lib/debug%s/%s" };
        for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
            snprintf(path, sizeof path, places[i], dir, link);
            if (strcmp(path, m->path) != 0 && open_elf(path, &m->debug))
                return true;
        }
    }
    return false;
}

static void load_module(struct module *m)
{
    m->loaded = true;
    m->debug.fd = -1;
    if (!open_elf(m->path, &m->main))
        return;
    read_ranges(m);
    bool main_has_symtab = has_section(m->main.elf, SHT_SYMTAB);
    bool main_has_dwarf = false;
    Dwarf *dw = dwarf_begin_elf(m->main.elf, DWARF_C_READ, NULL);
    if (dw) {
        main_has_dwarf = true;
        m->dwarf = dw;
    }
    if ((!main_has_symtab || !main_has_dwarf) && open_debug_file(m)) {
        add_symbols(m, m->debug.elf, SHT_SYMTAB);
        if (!m->dwarf)
            m->dwarf = dwarf_begin_elf(m->debug.elf, DWARF_C_READ, NULL);
    }
    add_symbols(m, m->main.elf, SHT_SYMTAB);
    add_symbols(m, m->main.elf, SHT_DYNSYM);
    if (m->syms)
        qsort(m->syms, m->nsyms, sizeof *m->syms, compare_symbols);
}

static bool module_contains(struct module *m, uint64_t pc)
{
    if (pc < m->base)
        return false;
    if (!m->loaded)
        load_module(m);
    uint64_t off = pc - m->base;
    for (size_t i = 0; i < m->nranges; i++)
        if (off >= m->ranges[i].lo && off < m->ranges[i].hi)
            return true;
    return false;
}

static const struct symbol *find_symbol(const struct module *m, uint64_t off)
{
    size_t lo = 0, hi = m->nsyms;
    while (lo < hi) {   /* the last symbol with addr <= off */
        size_t mid = (lo + hi) / 2;
        if (m->syms[mid].addr <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i-- > 0;) {
        const struct symbol *s = &m->syms[i];
        if (off < s->addr + (s->size ? s->size : 1) || (s->size == 0 && i == lo - 1))
            return s;
        if (lo - i > 8)   /* nested/overlapping symbols: look back a little, no more */
            break;
    }
    return NULL;
}

static void find_line(struct module *m, uint64_t off, struct lwc_frame *f)
{
    if (!m->dwarf)
        return;
    Dwarf_Die cu;
    if (!dwarf_addrdie(m->dwarf, off, &cu))
        return;
    Dwarf_Line *line = dwarf_getsrc_die(&cu, off);
    if (!line)
        return;
    int lineno = 0;
    const char *file = dwarf_linesrc(line, NULL, NULL);
    if (dwarf_lineno(line, &lineno) == 0 && file) {
        f->file = file;
        f->line = lineno;
    }
}

struct lwc_symbolizer *lwc_symbolizer_new(json_object *modules)
{
    struct lwc_symbolizer *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    elf_version(EV_CURRENT);
    size_t n = modules && json_object_is_type(modules, json_type_array) ? json_object_array_length(modules) : 0;
    s->mods = calloc(n ? n : 1, sizeof *s->mods);
    for (size_t i = 0; s->mods && i < n; i++) {
        json_object *m = json_object_array_get_idx(modules, i);
        const char *path = lwc_str(m, "path", NULL), *base = lwc_str(m, "base", NULL);
        if (!path || !base)
            continue;
        struct module *mod = &s->mods[s->nmods++];
        mod->path = strdup(path);
        mod->base = strtoull(base, NULL, 16);
        const char *bid = lwc_str(m, "build_id", NULL);
        mod->build_id = bid ? strdup(bid) : NULL;
        mod->main.fd = mod->debug.fd = -1;
    }
    return s;
}

void lwc_symbolizer_free(struct lwc_symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nmods; i++) {
        struct module *m = &s->mods[i];
        if (m->dwarf)
            dwarf_end(m->dwarf);
        close_elf(&m->debug);
        close_elf(&m->main);
        free(m->ranges);
        free(m->syms);
        free(m->path);
        free(m->build_id);
    }
    free(s->mods);
    free(s);
}

void lwc_symbolize(struct lwc_symbolizer *s, uint64_t pc, struct lwc_frame *f)
{
    memset(f, 0, sizeof *f);
    f->pc = pc;
    if (!s)
        return;
    struct module *best = NULL;
    for (size_t i = 0; i < s->nmods; i++)
        if (module_contains(&s->mods[i], pc)) {
            best = &s->mods[i];
            break;
        }
    if (!best)
        return;
    f->module = best->path;
    f->offset = pc - best->base;
    /* Every reported pc is a return address: look up the call instruction. */
    uint64_t lookup = f->offset ? f->offset - 1 : 0;
    const struct symbol *sym = find_symbol(best, lookup);
    if (sym)
        f->function = sym->name;
    find_line(best, lookup, f);
}
