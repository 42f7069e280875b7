/*
 * symbolize_parts.h — what the symbolizer's files share (symbolize.c: the
 * modules, the frames at a pc, the cache and the interface; symtab.c: ELF
 * files, symbol indexes, separate debug files, demangled names;
 * dwarf_scopes.c: DWARF units, lines and the inline chain at a pc).
 * Internal to the symbolizer (symbolize.h is its interface).
 */
#ifndef LWC_SYMBOLIZE_PARTS_H
#define LWC_SYMBOLIZE_PARTS_H

#include "symbolize.h"

#include <elfutils/libdw.h>
#include <gelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* symtab.c */
bool lwc_elf_open(const char *path, struct elf_file *f);
void lwc_elf_close(struct elf_file *f);
bool lwc_elf_open_matching(const struct module *m, const char *path, struct elf_file *f);
bool lwc_elf_has_section(Elf *elf, Elf64_Word type);
bool lwc_elf_build_id(Elf *elf, char *out, size_t size);   /* lower-case hex; false if none */
void lwc_module_read_ranges(struct module *m, Elf *elf);
void lwc_module_add_symbols(struct module *m, Elf *elf, Elf64_Word type, unsigned table, bool data);
void lwc_module_finish_index(struct module *m);
bool lwc_module_open_by_build_id(struct module *m);
bool lwc_module_open_by_debuglink(struct module *m);
const struct symbol *lwc_module_find_symbol(const struct module *m, uint64_t off);
const char *lwc_symbol_display_name(struct symbol *sym);
const struct symbol *lwc_symbols_find(const struct symbol *syms, size_t n, uint64_t off, bool unsized_reach);
char *lwc_demangle(const char *name);   /* malloc'ed, NULL if not a C++ name */

/* dwarf_scopes.c */
void lwc_module_attach_dwarf(struct module *m, Elf *elf);
bool lwc_module_unit_for(struct module *m, uint64_t off, Dwarf_Die *cu);
void lwc_dwarf_line_at(Dwarf_Die *cu, uint64_t off, struct lwc_frame *f);
void lwc_dwarf_call_site(Dwarf_Die *inl, struct lwc_frame *f);
size_t lwc_module_function_scopes(struct module *m, Dwarf_Die *cu, uint64_t off, Dwarf_Die **out);

#endif
