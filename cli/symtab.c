/*
 * symtab.c — the symbolizer's ELF side (symbolize.c): opening a module's
 * file (trusted only when its build-id is the one the process reported),
 * its PT_LOAD ranges, a sorted, de-duplicated index of its function and
 * data symbols (.symtab, or its separate debug file's, plus .dynsym),
 * separate debug files by build-id and .gnu_debuglink, the symbol at an
 * offset, and names as a person reads them (no "@VERSION", demangled).
 */
#include "symbolize_parts.h"
#include "client.h"

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

bool lwc_elf_open(const char *path, struct elf_file *f)
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

void lwc_elf_close(struct elf_file *f)
{
    if (f->elf)
        elf_end(f->elf);
    if (f->fd >= 0)
        close(f->fd);
    f->elf = NULL;
    f->fd = -1;
}

/* The file's GNU build-id as lower-case hex; false if it has none. */
bool lwc_elf_build_id(Elf *elf, char *out, size_t size)
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
bool lwc_elf_open_matching(const struct module *m, const char *path, struct elf_file *f)
{
    if (!lwc_elf_open(path, f))
        return false;
    char id[256];
    if (!m->build_id || !lwc_elf_build_id(f->elf, id, sizeof id) || strcasecmp(id, m->build_id) == 0)
        return true;
    lwc_elf_close(f);
    return false;
}

bool lwc_elf_has_section(Elf *elf, Elf64_Word type)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) && sh.sh_type == type)
            return true;
    }
    return false;
}

void lwc_module_read_ranges(struct module *m, Elf *elf)
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
void lwc_module_add_symbols(struct module *m, Elf *elf, Elf64_Word type, unsigned table, bool data)
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

void lwc_module_finish_index(struct module *m)
{
    finish_one_index(m->syms, &m->nsyms);
    finish_one_index(m->dsyms, &m->ndsyms);
}

/* ---- separate debug files ---- */

bool lwc_module_open_by_build_id(struct module *m)
{
    char path[PATH_MAX];
    if (!m->build_id || strlen(m->build_id) < 3 || strspn(m->build_id, "0123456789abcdefABCDEF") != strlen(m->build_id))
        return false;
    snprintf(path, sizeof path, "/usr/lib/debug/.build-id/%.2s/%s.debug", m->build_id, m->build_id + 2);
    return lwc_elf_open_matching(m, path, &m->debug);
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

bool lwc_module_open_by_debuglink(struct module *m)
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
        if (strcmp(path, m->path) != 0 && lwc_elf_open_matching(m, path, &m->debug))
            return true;
    }
    return false;
}

const struct symbol *lwc_symbols_find(const struct symbol *syms, size_t n, uint64_t off, bool unsized_reach)
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

const struct symbol *lwc_module_find_symbol(const struct module *m, uint64_t off)
{
    return lwc_symbols_find(m->syms, m->nsyms, off, true);
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

char *lwc_demangle(const char *name)
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
const char *lwc_symbol_display_name(struct symbol *sym)
{
    if (!sym->prepared) {
        sym->prepared = true;
        const char *at = strchr(sym->name, '@');
        char *plain = at && at > sym->name ? strndup(sym->name, (size_t)(at - sym->name)) : NULL;
        char *readable = lwc_demangle(plain ? plain : sym->name);
        if (readable) {
            free(plain);
            sym->display = readable;
        } else {
            sym->display = plain;
        }
    }
    return sym->display ? sym->display : sym->name;
}
