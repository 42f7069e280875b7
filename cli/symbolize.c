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
#include "symbolize.h"
#include "client.h"
#include "deadline.h"

#include <dlfcn.h>
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

#define FALLBACK_SPAN ((uint64_t)1 << 30)   /* how far past an unreadable module's base a pc may be */
#define NESTED_LOOKBACK 16

struct symbol {
    uint64_t addr, size;
    const char *name;     /* points into an ELF string table kept open */
    char *display;        /* lazily: without "@VERSION", demangled; NULL: name as is */
    unsigned rank;        /* lower is the better name for an address */
    bool prepared;
};

struct range {
    uint64_t lo, hi;
};

/* A compilation unit's functions (DW_TAG_subprogram with code), one entry
 * per address range, sorted: finding the function that holds a pc is a
 * binary search instead of a walk over the unit's DIEs. */
struct func_range {
    uint64_t lo, hi;
    Dwarf_Off die;
};

struct unit_index {
    Dwarf_Off unit;
    struct func_range *funcs;
    size_t nfuncs, size;
};

struct elf_file {
    int fd;
    Elf *elf;
};

struct module {
    char *path;
    uint64_t base;
    char *build_id;       /* lower-case hex as reported, or NULL */
    bool loaded;
    struct range *ranges;
    size_t nranges;
    struct symbol *syms;      /* functions */
    size_t nsyms;
    struct symbol *dsyms;     /* data objects (a global that holds a pointer) */
    size_t ndsyms;
    struct elf_file main, debug;
    Dwarf *dwarf;
    bool dwarf_has_aranges;
    struct unit_index *units;   /* sorted by unit offset, made on first use */
    size_t nunits, units_size;
};

/* One cached answer: every frame at a pc. */
struct pc_entry {
    uint64_t pc;
    bool used, return_address;
    size_t n;
    struct lwc_frame *frames;
};

struct lwc_symbolizer {
    struct module *mods;
    size_t nmods;
    pid_t pid;
    struct pc_entry *cache;   /* open addressing, a power of two in size */
    size_t cache_size, cache_used;
    char **owned;             /* demangled names of inlined functions */
    size_t nowned, owned_size;
    bool cut_short;           /* a module was left unread: the question's deadline was near */
};

/* ---- ELF files ---- */

/* A regular file only, opened without blocking (a FIFO's open waits for a
 * writer for ever; a device's may do anything). */
static int open_regular(const char *path)
{
    int fd = path[0] == '/' ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) : -1;
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool open_elf(const char *path, struct elf_file *f)
{
    f->elf = NULL;
    f->fd = open_regular(path);
    if (f->fd < 0)
        return false;
    f->elf = elf_begin(f->fd, ELF_C_READ_MMAP, NULL);
    if (f->elf && elf_kind(f->elf) == ELF_K_ELF && gelf_getclass(f->elf) != ELFCLASSNONE)
        return true;
    if (f->elf)
        elf_end(f->elf);
    close(f->fd);
    f->fd = -1;
    f->elf = NULL;
    return false;
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

/* The file's GNU build-id as lower-case hex; false if it has none. */
static bool file_build_id(Elf *elf, char *out, size_t size)
{
    const void *bytes = NULL;
    ssize_t n = dwelf_elf_gnu_build_id(elf, &bytes);
    if (n <= 0 || !bytes || (size_t)n * 2 + 1 > size)
        return false;
    for (ssize_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", ((const unsigned char *)bytes)[i]);
    return true;
}

/* Usable for this module: an ELF file whose build-id, when both are known,
 * is the one the process reported. */
static bool open_matching(const struct module *m, const char *path, struct elf_file *f)
{
    if (!open_elf(path, f))
        return false;
    char id[256];
    if (!m->build_id || !file_build_id(f->elf, id, sizeof id) || strcasecmp(id, m->build_id) == 0)
        return true;
    close_elf(f);
    return false;
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

static void read_ranges(struct module *m, Elf *elf)
{
    size_t n = 0;
    if (elf_getphdrnum(elf, &n) != 0 || n == 0 || n > 65535)
        return;
    m->ranges = calloc(n, sizeof *m->ranges);
    for (size_t i = 0; m->ranges && i < n; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_memsz > 0 &&
            ph.p_vaddr + ph.p_memsz > ph.p_vaddr)
            m->ranges[m->nranges++] = (struct range){ ph.p_vaddr, ph.p_vaddr + ph.p_memsz };
    }
}

/* ---- the symbol index ---- */

static unsigned leading_underscores(const char *s)
{
    unsigned n = 0;
    while (s[n] == '_')
        n++;
    return n;
}

/* Among aliases, prefer: the better table, a name without "@VERSION",
 * fewer leading underscores, global over weak over local (read over __read,
 * __clone3 over __GI___clone3). */
static unsigned symbol_rank(unsigned table, const GElf_Sym *sym, const char *name)
{
    unsigned bind = GELF_ST_BIND(sym->st_info);
    unsigned b = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
    unsigned u = leading_underscores(name);
    return table * 1000 + (strchr(name, '@') ? 500 : 0) + (u > 9 ? 9 : u) * 10 + b;
}

static bool is_function(const GElf_Sym *sym)
{
    int t = GELF_ST_TYPE(sym->st_info);
    return (t == STT_FUNC || t == STT_GNU_IFUNC) && sym->st_shndx != SHN_UNDEF && sym->st_value != 0;
}

static bool is_data_object(const GElf_Sym *sym)
{
    return GELF_ST_TYPE(sym->st_info) == STT_OBJECT && sym->st_shndx != SHN_UNDEF && sym->st_value != 0;
}

/* The functions of a symbol table into m->syms, or (data) its objects
 * into m->dsyms. */
static void add_symbols(struct module *m, Elf *elf, Elf64_Word type, unsigned table, bool data)
{
    struct symbol **syms = data ? &m->dsyms : &m->syms;
    size_t *nsyms = data ? &m->ndsyms : &m->nsyms;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || sh.sh_entsize == 0)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf)
            continue;
        size_t count = d->d_size / sh.sh_entsize;
        if (count == 0 || count > INT_MAX)
            continue;
        struct symbol *bigger = realloc(*syms, (*nsyms + count) * sizeof *bigger);
        if (!bigger)
            return;
        *syms = bigger;
        for (size_t i = 0; i < count; i++) {
            GElf_Sym sym;
            if (!gelf_getsym(d, (int)i, &sym) || !(data ? is_data_object(&sym) : is_function(&sym)))
                continue;
            const char *name = elf_strptr(elf, sh.sh_link, sym.st_name);
            if (name && *name)
                (*syms)[(*nsyms)++] = (struct symbol){ .addr = sym.st_value, .size = sym.st_size, .name = name,
                                                       .rank = symbol_rank(table, &sym, name) };
        }
    }
}

static int compare_symbols(const void *a, const void *b)
{
    const struct symbol *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if ((x->size != 0) != (y->size != 0))
        return x->size ? -1 : 1;   /* a sized symbol names an address better */
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    size_t lx = strlen(x->name), ly = strlen(y->name);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Sort, then keep one symbol per address: the best-ranked alias. */
static void finish_one_index(struct symbol *syms, size_t *nsyms)
{
    if (*nsyms == 0)
        return;
    qsort(syms, *nsyms, sizeof *syms, compare_symbols);
    size_t kept = 1;
    for (size_t i = 1; i < *nsyms; i++)
        if (syms[i].addr != syms[kept - 1].addr)
            syms[kept++] = syms[i];
    *nsyms = kept;
}

static void finish_index(struct module *m)
{
    finish_one_index(m->syms, &m->nsyms);
    finish_one_index(m->dsyms, &m->ndsyms);
}

/* ---- separate debug files ---- */

static bool open_by_build_id(struct module *m)
{
    char path[PATH_MAX];
    if (!m->build_id || strlen(m->build_id) < 3 || strspn(m->build_id, "0123456789abcdefABCDEF") != strlen(m->build_id))
        return false;
    snprintf(path, sizeof path, "/usr/lib/debug/.build-id/%.2s/%s.debug", m->build_id, m->build_id + 2);
    return open_matching(m, path, &m->debug);
}

/* The .gnu_debuglink file name, or NULL. */
static const char *debuglink_name(Elf *elf)
{
    size_t shstrndx;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return NULL;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        const char *name;
        if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(elf, shstrndx, sh.sh_name)) ||
            strcmp(name, ".gnu_debuglink") != 0)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data || !data->d_buf || data->d_size < 2 || !memchr(data->d_buf, 0, data->d_size) ||
            strchr(data->d_buf, '/'))
            return NULL;
        return data->d_buf;
    }
    return NULL;
}

static bool open_by_debuglink(struct module *m)
{
    const char *link = debuglink_name(m->main.elf);
    const char *slash = strrchr(m->path, '/');
    if (!link || !*link || !slash)
        return false;
    int dirlen = (int)(slash - m->path);
    char path[PATH_MAX];
    const char *places[] = { "%.*s/%s", "%.*s/.debug/%s", "/usr/lib/debug%.*s/%s" };
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
        if ((size_t)snprintf(path, sizeof path, places[i], dirlen, m->path, link) >= sizeof path)
            continue;
        if (strcmp(path, m->path) != 0 && open_matching(m, path, &m->debug))
            return true;
    }
    return false;
}

/* ---- DWARF ---- */

static void attach_dwarf(struct module *m, Elf *elf)
{
    if (m->dwarf || !elf)
        return;
    m->dwarf = dwarf_begin_elf(elf, DWARF_C_READ, NULL);
    Dwarf_Aranges *ar = NULL;
    size_t n = 0;
    m->dwarf_has_aranges = m->dwarf && dwarf_getaranges(m->dwarf, &ar, &n) == 0 && n > 0;
}

/* The compilation unit holding off: through .debug_aranges when the file has
 * it, otherwise by asking each unit (compilers that omit aranges). */
static bool unit_for(struct module *m, uint64_t off, Dwarf_Die *cu)
{
    if (m->dwarf_has_aranges)
        return dwarf_addrdie(m->dwarf, off, cu) != NULL;
    Dwarf_Off at = 0, next;
    size_t header;
    while (dwarf_nextcu(m->dwarf, at, &next, &header, NULL, NULL, NULL) == 0) {
        if (dwarf_offdie(m->dwarf, at + header, cu) && dwarf_haspc(cu, off) == 1)
            return true;
        at = next;
    }
    return false;
}

/* The line table's file:line for off (the innermost function's place). */
static void line_at(Dwarf_Die *cu, uint64_t off, struct lwc_frame *f)
{
    Dwarf_Line *line = dwarf_getsrc_die(cu, off);
    int lineno = 0;
    const char *file = line ? dwarf_linesrc(line, NULL, NULL) : NULL;
    if (file && *file && dwarf_lineno(line, &lineno) == 0 && lineno > 0) {
        f->file = file;
        f->line = lineno;
    }
}

/* Where the inlined subroutine `inl` was called from: its call file:line. */
static void call_site(Dwarf_Die *inl, struct lwc_frame *f)
{
    Dwarf_Attribute attr;
    Dwarf_Word file = 0, line = 0;
    Dwarf_Die cu;
    Dwarf_Files *files;
    size_t nfiles = 0;
    if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &attr), &line) != 0 || line == 0 || line > INT_MAX ||
        dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &attr), &file) != 0 ||
        !dwarf_diecu(inl, &cu, NULL, NULL) || dwarf_getsrcfiles(&cu, &files, &nfiles) != 0 || file >= nfiles)
        return;
    const char *name = dwarf_filesrc(files, file, NULL, NULL);
    if (name && *name) {
        f->file = name;
        f->line = (int)line;
    }
}

/* ---- the function index of a unit ---- */

static bool push_func(struct unit_index *ix, uint64_t lo, uint64_t hi, Dwarf_Off die)
{
    struct func_range *funcs = lwc_room_for_one(ix->funcs, &ix->size, ix->nfuncs, sizeof *funcs, 16);
    if (!funcs)
        return false;
    ix->funcs = funcs;
    ix->funcs[ix->nfuncs++] = (struct func_range){ lo, hi, die };
    return true;
}

/* Every function with code under parent, looking into namespaces and
 * types (which hold no code but may hold functions), not into functions. */
static void index_functions(struct unit_index *ix, Dwarf_Die *parent, int depth)
{
    Dwarf_Die child;
    if (depth > 32 || dwarf_child(parent, &child) != 0)
        return;
    do {
        int tag = dwarf_tag(&child);
        if (tag == DW_TAG_subprogram) {
            Dwarf_Addr base, lo, hi;
            ptrdiff_t at = 0;
            while ((at = dwarf_ranges(&child, at, &base, &lo, &hi)) > 0)
                if (hi > lo && !push_func(ix, lo, hi, dwarf_dieoffset(&child)))
                    return;
        } else if (tag == DW_TAG_namespace || tag == DW_TAG_module || tag == DW_TAG_class_type ||
                   tag == DW_TAG_structure_type || tag == DW_TAG_union_type) {
            index_functions(ix, &child, depth + 1);
        }
    } while (dwarf_siblingof(&child, &child) == 0);
}

static int compare_funcs(const void *a, const void *b)
{
    const struct func_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The index of unit cu, made on first use; NULL when out of memory. */
static struct unit_index *unit_index(struct module *m, Dwarf_Die *cu)
{
    Dwarf_Off unit = dwarf_dieoffset(cu);
    size_t lo = 0, hi = m->nunits;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->units[mid].unit < unit)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < m->nunits && m->units[lo].unit == unit)
        return &m->units[lo];
    struct unit_index *units = lwc_room_for_one(m->units, &m->units_size, m->nunits, sizeof *units, 16);
    if (!units)
        return NULL;
    m->units = units;
    memmove(&m->units[lo + 1], &m->units[lo], (m->nunits - lo) * sizeof *m->units);
    m->nunits++;
    struct unit_index *ix = &m->units[lo];
    *ix = (struct unit_index){ .unit = unit };
    index_functions(ix, cu, 0);
    if (ix->nfuncs > 1)
        qsort(ix->funcs, ix->nfuncs, sizeof *ix->funcs, compare_funcs);
    return ix;
}

/* The DIE of the function whose code holds off, through the unit's index. */
static bool function_at(struct module *m, Dwarf_Die *cu, uint64_t off, Dwarf_Die *out)
{
    struct unit_index *ix = unit_index(m, cu);
    size_t lo = 0, hi = ix ? ix->nfuncs : 0;
    while (lo < hi) {   /* lo: the first range starting above off */
        size_t mid = lo + (hi - lo) / 2;
        if (ix->funcs[mid].lo <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && off < ix->funcs[lo - 1].hi && dwarf_offdie(m->dwarf, ix->funcs[lo - 1].die, out) != NULL;
}

/* ---- the inline chain at a pc ---- */

#define MAX_INLINE_DEPTH 64

/* Function scopes from the outermost: what descend() found. */
struct chain {
    Dwarf_Die dies[MAX_INLINE_DEPTH];
    size_t n;
};

static bool has_address(Dwarf_Die *die)
{
    return dwarf_hasattr(die, DW_AT_low_pc) || dwarf_hasattr(die, DW_AT_ranges);
}

static bool holds_code(int tag)
{
    return tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block || tag == DW_TAG_subprogram ||
           tag == DW_TAG_entry_point || tag == DW_TAG_try_block || tag == DW_TAG_catch_block ||
           tag == DW_TAG_with_stmt;
}

/* Follow the scopes under parent that hold off, down to the innermost,
 * noting the functions (inlined or nested) on the way. Blocks without
 * addresses are looked into as well. */
static bool descend(Dwarf_Die *parent, uint64_t off, struct chain *c, int depth)
{
    Dwarf_Die child;
    if (depth > MAX_INLINE_DEPTH * 2 || dwarf_child(parent, &child) != 0)
        return false;
    do {
        int tag = dwarf_tag(&child);
        if (!holds_code(tag))
            continue;
        if (has_address(&child)) {
            if (dwarf_haspc(&child, off) != 1)
                continue;
            if (tag != DW_TAG_lexical_block && c->n < MAX_INLINE_DEPTH)
                c->dies[c->n++] = child;
            descend(&child, off, c, depth + 1);
            return true;
        }
        if (descend(&child, off, c, depth + 1))
            return true;
    } while (dwarf_siblingof(&child, &child) == 0);
    return false;
}

static bool is_function_scope(Dwarf_Die *die)
{
    int tag = dwarf_tag(die);
    return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine || tag == DW_TAG_entry_point;
}

/* The same as function_scopes, by libdw's walk of the whole unit: for a pc
 * the index does not know (a function in an unusual place). dwarf_getscopes
 * continues with the abstract definition's scopes after an inlined
 * subroutine, so the chain is re-read from the innermost scope with
 * dwarf_getscopes_die. */
static size_t scopes_by_walk(Dwarf_Die *cu, uint64_t off, Dwarf_Die **out)
{
    Dwarf_Die *scopes = NULL;
    int n = dwarf_getscopes(cu, off, &scopes);
    Dwarf_Die inner = n > 0 ? scopes[0] : (Dwarf_Die){ 0 };
    free(scopes);
    scopes = NULL;
    n = n > 0 ? dwarf_getscopes_die(&inner, &scopes) : 0;
    size_t kept = 0;
    for (int i = 0; i < n; i++) {
        if (!is_function_scope(&scopes[i]))
            continue;
        scopes[kept++] = scopes[i];
        if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine)
            break;
    }
    if (kept == 0) {
        free(scopes);
        scopes = NULL;
    }
    *out = scopes;
    return kept;
}

/* The function scopes around off, innermost first: every inlined
 * subroutine, then the function they were inlined into (the last). Found
 * through the unit's function index, then down that function's scopes
 * (libdw's walk of the unit when the index does not know off). Returns the
 * count (0: none); *out is malloc'd. */
static size_t function_scopes(struct module *m, Dwarf_Die *cu, uint64_t off, Dwarf_Die **out)
{
    struct chain *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c || !function_at(m, cu, off, &c->dies[0])) {
        free(c);
        return scopes_by_walk(cu, off, out);
    }
    c->n = 1;
    descend(&c->dies[0], off, c, 0);
    size_t kept = 0;   /* the innermost subprogram and what is inlined in it */
    while (kept < c->n && (kept == 0 || dwarf_tag(&c->dies[c->n - kept]) == DW_TAG_inlined_subroutine))
        kept++;
    *out = malloc(kept * sizeof **out);
    for (size_t i = 0; *out && i < kept; i++)
        (*out)[i] = c->dies[c->n - 1 - i];
    free(c);
    return *out ? kept : 0;
}

/* ---- modules ---- */

static bool open_module_file(struct module *m, pid_t pid)
{
    if (open_matching(m, m->path, &m->main))
        return true;
    char alt[PATH_MAX];
    return m->path[0] == '/' && pid > 0 &&
           (size_t)snprintf(alt, sizeof alt, "/proc/%d/root%s", (int)pid, m->path) < sizeof alt &&
           open_matching(m, alt, &m->main);
}

static void load_module(struct module *m, pid_t pid)
{
    m->loaded = true;
    bool have_main = open_module_file(m, pid);
    bool main_symtab = have_main && has_section(m->main.elf, SHT_SYMTAB);
    if (have_main)
        attach_dwarf(m, m->main.elf);
    bool need_debug = !main_symtab || !m->dwarf;
    bool have_debug = need_debug && (open_by_build_id(m) || (have_main && open_by_debuglink(m)));
    if (have_main)
        read_ranges(m, m->main.elf);
    else if (have_debug)
        read_ranges(m, m->debug.elf);   /* debug files keep the program headers */
    for (int data = 0; data < 2; data++) {
        if (main_symtab)
            add_symbols(m, m->main.elf, SHT_SYMTAB, 0, data);
        else if (have_debug)
            add_symbols(m, m->debug.elf, SHT_SYMTAB, 0, data);
        if (have_main)
            add_symbols(m, m->main.elf, SHT_DYNSYM, 1, data);
    }
    if (have_debug)
        attach_dwarf(m, m->debug.elf);
    finish_index(m);
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

static const struct symbol *find_in(const struct symbol *syms, size_t n, uint64_t off, bool unsized_reach)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {   /* lo: the first symbol above off */
        size_t mid = lo + (hi - lo) / 2;
        if (syms[mid].addr <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const struct symbol *nearest = &syms[lo - 1];
    for (size_t i = lo, looked = 0; i-- > 0 && looked < NESTED_LOOKBACK; looked++) {
        const struct symbol *s = &syms[i];
        if (s->size && off - s->addr < s->size)
            return s;
    }
    return unsized_reach && nearest->size == 0 ? nearest : NULL;   /* unsized (assembly) symbols reach to the next one */
}

static const struct symbol *find_symbol(const struct module *m, uint64_t off)
{
    return find_in(m->syms, m->nsyms, off, true);
}

/* ---- demangling, without C++ in this program: libstdc++'s C entry point
 * when it is installed, otherwise names stay raw. ---- */

typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);

static demangle_fn demangler(void)
{
    static bool tried;
    static demangle_fn fn;
    if (!tried) {
        tried = true;
        void *lib = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
        if (lib)
            *(void **)&fn = dlsym(lib, "__cxa_demangle");
    }
    return fn;
}

static char *demangle(const char *name)
{
    demangle_fn fn = strncmp(name, "_Z", 2) == 0 ? demangler() : NULL;
    int status = -1;
    char *out = fn ? fn(name, NULL, NULL, &status) : NULL;
    if (out && status == 0)
        return out;
    free(out);
    return NULL;
}

/* The name to show: symbol versions ("foo@@GLIBC_2.34") dropped, C++ names
 * demangled when possible. Computed once per symbol. */
static const char *display_name(struct symbol *sym)
{
    if (!sym->prepared) {
        sym->prepared = true;
        const char *at = strchr(sym->name, '@');
        char *plain = at && at > sym->name ? strndup(sym->name, (size_t)(at - sym->name)) : NULL;
        char *readable = demangle(plain ? plain : sym->name);
        if (readable) {
            free(plain);
            sym->display = readable;
        } else {
            sym->display = plain;
        }
    }
    return sym->display ? sym->display : sym->name;
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
    const char *readable = linkage ? keep_string(s, demangle(linkage)) : NULL;
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
    struct symbol *sym = (struct symbol *)find_symbol(m, *lookup);
    if (sym)
        f->function = display_name(sym);
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
            line_at(cu, lookup, &frames[i]);
        else
            call_site(&scopes[i - 1], &frames[i]);
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
    bool have_cu = m && m->dwarf && unit_for(m, lookup, &cu);
    size_t nscopes = have_cu ? function_scopes(m, &cu, lookup, &scopes) : 0, ninlined = 0;
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
    for (size_t i = 0; i < s->nmods; i++) {
        struct module *m = &s->mods[i];
        for (size_t k = 0; k < m->nunits; k++)
            free(m->units[k].funcs);
        free(m->units);
        if (m->dwarf)
            dwarf_end(m->dwarf);
        close_elf(&m->debug);
        close_elf(&m->main);
        for (size_t k = 0; k < m->nsyms; k++)
            free(m->syms[k].display);
        for (size_t k = 0; k < m->ndsyms; k++)
            free(m->dsyms[k].display);
        free(m->ranges);
        free(m->syms);
        free(m->dsyms);
        free(m->path);
        free(m->build_id);
    }
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
    struct symbol *sym = (struct symbol *)find_in(m->dsyms, m->ndsyms, addr - m->base, false);
    if (!sym)
        return NULL;
    *offset = addr - m->base - sym->addr;
    return display_name(sym);
}
