/*
 * maps.h — /proc/self/maps (or another process's), read and parsed without
 * malloc or stdio.
 *
 * The server thread reads the maps while the program runs, and the
 * reachability scan (reach.c) walks the program's malloc heaps: an
 * allocation (or fopen's buffer) in the middle of that changes the very
 * arena being walked. So the text and the parsed entries live in memory of
 * their own, from mmap, grown with mremap, and the file is read with raw
 * syscalls (read and close are hooked by the preload).
 *
 * The parser (lw_maps_parse) makes no syscall at all, for the unit tests.
 */
#ifndef LW_MAPS_H
#define LW_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One line of /proc/self/maps: [lo, hi). */
struct lw_mapping {
    uint64_t lo, hi;
    bool readable, writable, executable;
    bool shared;              /* 's' (MAP_SHARED), not 'p' */
    bool anonymous;           /* inode 0: no file behind it ([heap], [stack], plain anonymous memory) */
    bool deleted;             /* the full name ends in " (deleted)" (the suffix stays in name) */
    char name[64];            /* path or [heap]/[stack]/..., truncated, NUL-terminated; "" if none */
};

/* The parsed maps of this process. Zero-initialise before the first
 * lw_maps_read (LW_MAPS_INIT); a second read reuses the memory of the first.
 * text/v and their capacities are our own mappings, for a scan that must
 * skip them. */
struct lw_maps {
    struct lw_mapping *v;     /* n entries in the kernel's order (by address) */
    size_t n, cap;            /* cap: entries that fit in v's mapping */
    char *text;               /* the file as read, text_len bytes */
    size_t text_len, text_cap;
};
#define LW_MAPS_INIT { 0 }

/* Read /proc/self/maps whole and parse it. False when it could not be read
 * or parsed completely (no /proc, out of memory, a line that does not parse,
 * addresses out of order): then everything is unmapped, as after
 * lw_maps_free, and the caller knows nothing. Server thread (or any thread
 * that may make syscalls); never allocates from the heap. */
bool lw_maps_read(struct lw_maps *m);

/* The same for another process (pid 0: this one): /proc/PID/maps. */
bool lw_maps_read_pid(struct lw_maps *m, int32_t pid);

/* Mappings known another way (a core file's segments): copied in, n > 0,
 * sorted and disjoint, or false (then freed). */
bool lw_maps_set(struct lw_maps *m, const struct lw_mapping *v, size_t n);

/* Unmap everything; m is as LW_MAPS_INIT afterwards. Safe to call twice. */
void lw_maps_free(struct lw_maps *m);

/* Parse len bytes of maps text (need not be NUL-terminated; the last line
 * need not end in '\n'). Writes the first max well-formed lines to out and
 * returns how many well-formed lines there are (may exceed max). Lines that
 * do not parse are skipped and counted in *malformed (may be NULL). No
 * syscalls, no allocation; never reads outside text[0, len). */
size_t lw_maps_parse(const char *text, size_t len, struct lw_mapping *out, size_t max, size_t *malformed);

/* The mapping holding addr, or NULL (binary search; m->v sorted). */
const struct lw_mapping *lw_maps_find(const struct lw_maps *m, uint64_t addr);

#endif
