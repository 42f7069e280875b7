/*
 * dwarf_scopes.c — the symbolizer's DWARF side (symbolize.c): a module's
 * libdw view, the compilation unit and line of an offset, a per-unit index
 * of function address ranges, and the scopes around a pc (the functions
 * inlined there, innermost first, then the one holding them), with
 * dwarf_getscopes' walk of the whole unit as the fallback.
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
#include <unistd.h>

/* ---- DWARF ---- */

void lwc_module_attach_dwarf(struct module *m, Elf *elf)
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
bool lwc_module_unit_for(struct module *m, uint64_t off, Dwarf_Die *cu)
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
void lwc_dwarf_line_at(Dwarf_Die *cu, uint64_t off, struct lwc_frame *f)
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
void lwc_dwarf_call_site(Dwarf_Die *inl, struct lwc_frame *f)
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
size_t lwc_module_function_scopes(struct module *m, Dwarf_Die *cu, uint64_t off, Dwarf_Die **out)
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
