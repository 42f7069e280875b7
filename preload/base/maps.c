/*
 * maps.c — the one reader of /proc/self/maps: raw syscalls to read it,
 * mmap'd memory to hold it, a bounds-checked parser, a binary search.
 *
 * Why not fopen + sscanf + realloc: the server thread reads the maps while
 * the program runs, and reach.c walks the program's malloc heaps with them;
 * any allocation of ours in between changes the arena being walked. Here
 * nothing touches the heap: the text buffer and the entries come from mmap
 * (grown with mremap), and open/read/close are raw syscalls, because read and
 * close are hooked by the preload (fdhooks.def).
 *
 * The file can be large (100,000 mappings are about 10 MB of text), so it is
 * read whole, in as few reads as the buffer allows, then parsed in one pass.
 * The parser trusts nothing: every field is checked against the end of its
 * line, and a line that does not parse is skipped (lw_maps_read then answers
 * "unknown", since a mapping it cannot see could hide a root or a shared
 * range, and either would make a proof unsound).
 */
#include "base/util.h"
#include "base/maps.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TEXT_FIRST_BYTES ((size_t)64 << 10)
#define DELETED_SUFFIX " (deleted)"

/* ---- the parser: pure, bounds-checked ---- */

struct cursor {
    const char *p, *end;
};

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One to sixteen hex digits, any case. */
static bool take_hex(struct cursor *c, uint64_t *out)
{
    uint64_t v = 0;
    int digits = 0;
    for (; c->p < c->end && hex_value(*c->p) >= 0; c->p++) {
        if (++digits > 16)
            return false;
        v = v << 4 | (uint64_t)hex_value(*c->p);
    }
    *out = v;
    return digits > 0;
}

/* One or more decimal digits that fit in 64 bits. */
static bool take_decimal(struct cursor *c, uint64_t *out)
{
    uint64_t v = 0;
    int digits = 0;
    for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++, digits++) {
        uint64_t d = (uint64_t)(*c->p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return digits > 0;
}

static bool take_char(struct cursor *c, char want)
{
    if (c->p >= c->end || *c->p != want)
        return false;
    c->p++;
    return true;
}

/* One permission letter: `yes` or '-'. */
static bool take_flag(struct cursor *c, char yes, char no, bool *out)
{
    if (c->p >= c->end || (*c->p != yes && *c->p != no))
        return false;
    *out = *c->p++ == yes;
    return true;
}

/* "rwxs" / "r-xp": exactly four letters. */
static bool take_perms(struct cursor *c, struct lw_mapping *m)
{
    return take_flag(c, 'r', '-', &m->readable) && take_flag(c, 'w', '-', &m->writable) &&
           take_flag(c, 'x', '-', &m->executable) && take_flag(c, 's', 'p', &m->shared);
}

/* "lo-hi perms offset major:minor inode": everything before the name. */
static bool take_fixed_fields(struct cursor *c, struct lw_mapping *m)
{
    uint64_t offset, major, minor, inode;
    if (!take_hex(c, &m->lo) || !take_char(c, '-') || !take_hex(c, &m->hi) || !take_char(c, ' ') ||
        !take_perms(c, m) || !take_char(c, ' ') || !take_hex(c, &offset) || !take_char(c, ' ') ||
        !take_hex(c, &major) || !take_char(c, ':') || !take_hex(c, &minor) || !take_char(c, ' ') ||
        !take_decimal(c, &inode))
        return false;
    m->anonymous = inode == 0;
    return m->lo < m->hi;
}

/* The rest of the line after the inode: nothing, or spaces and a name that
 * runs to the end of the line (paths may hold spaces). */
static bool take_name(struct cursor *c, struct lw_mapping *m)
{
    m->name[0] = 0;
    m->deleted = false;
    if (c->p == c->end)
        return true;
    if (*c->p != ' ')
        return false;                 /* "12345x": not an inode */
    while (c->p < c->end && *c->p == ' ')
        c->p++;
    size_t len = (size_t)(c->end - c->p);
    size_t suffix = sizeof DELETED_SUFFIX - 1;
    m->deleted = len >= suffix && memcmp(c->end - suffix, DELETED_SUFFIX, suffix) == 0;
    size_t kept = len < sizeof m->name - 1 ? len : sizeof m->name - 1;
    memcpy(m->name, c->p, kept);
    m->name[kept] = 0;
    return true;
}

/* One line, without its '\n'. */
static bool parse_line(const char *line, const char *end, struct lw_mapping *m)
{
    struct cursor c = { line, end };
    return take_fixed_fields(&c, m) && take_name(&c, m);
}

size_t lw_maps_parse(const char *text, size_t len, struct lw_mapping *out, size_t max, size_t *malformed)
{
    size_t count = 0, bad = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *newline = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = newline ? newline : end;
        struct lw_mapping spare;
        if (parse_line(p, line_end, count < max ? &out[count] : &spare))
            count++;
        else
            bad++;
        p = newline ? newline + 1 : end;
    }
    if (malformed)
        *malformed = bad;
    return count;
}

/* ---- memory of our own: mmap, grown with mremap ---- */

static size_t page_round(size_t bytes)
{
    size_t page = 4096;
    return (bytes + page - 1) & ~(page - 1);
}

/* A mapping of new_bytes holding the old one's contents (p may be NULL);
 * NULL on failure, the old mapping untouched. */
static void *grow_mapping(void *p, size_t old_bytes, size_t new_bytes)
{
    void *q = p ? mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE)
                : mmap(NULL, new_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return q == MAP_FAILED ? NULL : q;
}

static size_t entries_bytes(size_t cap)
{
    return page_round(cap * sizeof(struct lw_mapping));
}

static bool grow_text(struct lw_maps *m)
{
    size_t bytes = m->text_cap ? 2 * m->text_cap : TEXT_FIRST_BYTES;
    if (bytes < m->text_cap)
        return false;
    char *q = grow_mapping(m->text, m->text_cap, bytes);
    if (!q)
        return false;
    m->text = q;
    m->text_cap = bytes;
    return true;
}

/* Room for at least `want` entries (with some to spare for the next read). */
static bool reserve_entries(struct lw_maps *m, size_t want)
{
    if (want <= m->cap && m->v)
        return true;
    if (want > SIZE_MAX / 2 / sizeof(struct lw_mapping))
        return false;
    size_t bytes = entries_bytes(want + want / 4 + 16);
    struct lw_mapping *q = grow_mapping(m->v, m->v ? entries_bytes(m->cap) : 0, bytes);
    if (!q)
        return false;
    m->v = q;
    m->cap = bytes / sizeof *q;   /* entries_bytes(cap) == bytes again: one entry is smaller than a page */
    return true;
}

/* ---- reading the file ---- */

/* "/proc/PID/maps" into path (32 bytes), without stdio. */
static void format_proc_maps_path(char *path, int32_t pid)
{
    char digits[12];
    int n = 0;
    for (uint32_t v = (uint32_t)pid; v && n < 11; v /= 10)
        digits[n++] = (char)('0' + v % 10);
    char *p = path;
    memcpy(p, "/proc/", 6);
    p += 6;
    while (n)
        *p++ = digits[--n];
    memcpy(p, "/maps", 6);
}

static long raw_read(int fd, void *buf, size_t n)
{
    long got;
    do
        got = lw_raw_syscall6(SYS_read, fd, (long)buf, (long)n, 0, 0, 0);
    while (got == -EINTR);
    return got;
}

/* Read until end of file, doubling the buffer whenever it is full. */
static bool read_whole_file(struct lw_maps *m, int fd)
{
    m->text_len = 0;
    for (;;) {
        if (m->text_len == m->text_cap && !grow_text(m))
            return false;
        long got = raw_read(fd, m->text + m->text_len, m->text_cap - m->text_len);
        if (got < 0)
            return false;
        if (got == 0)
            return true;
        m->text_len += (size_t)got;
    }
}

static bool read_maps_text(struct lw_maps *m, int32_t pid)
{
    char path[32] = "/proc/self/maps";
    if (pid > 0)
        format_proc_maps_path(path, pid);
    long fd = lw_raw_syscall6(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
    if (fd < 0)
        return false;
    bool ok = read_whole_file(m, (int)fd);
    lw_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    return ok;
}

/* An upper bound on the lines of the text: its newlines, plus a last line
 * without one. */
static size_t count_lines(const char *text, size_t len)
{
    size_t lines = 1;
    const char *p = text, *end = text + len;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        lines++;
        p++;
    }
    return lines;
}

/* The kernel lists mappings by address, never overlapping; anything else
 * means the text is not what we think it is. */
static bool in_address_order(const struct lw_maps *m)
{
    for (size_t i = 1; i < m->n; i++)
        if (m->v[i].lo < m->v[i - 1].hi)
            return false;
    return true;
}

static bool parse_all(struct lw_maps *m)
{
    if (!reserve_entries(m, count_lines(m->text, m->text_len)))
        return false;
    size_t malformed;
    m->n = lw_maps_parse(m->text, m->text_len, m->v, m->cap, &malformed);
    /* A process always has its own code mapped: an empty list is a failure. */
    return m->n > 0 && malformed == 0 && m->n <= m->cap && in_address_order(m);
}

bool lw_maps_read_pid(struct lw_maps *m, int32_t pid)
{
    m->n = 0;
    if (read_maps_text(m, pid) && parse_all(m))
        return true;
    lw_maps_free(m);
    return false;
}

bool lw_maps_read(struct lw_maps *m)
{
    return lw_maps_read_pid(m, 0);
}

bool lw_maps_set(struct lw_maps *m, const struct lw_mapping *v, size_t n)
{
    m->n = 0;
    if (!n || !reserve_entries(m, n)) {
        lw_maps_free(m);
        return false;
    }
    memcpy(m->v, v, n * sizeof *v);
    m->n = n;
    if (in_address_order(m))
        return true;
    lw_maps_free(m);
    return false;
}

void lw_maps_free(struct lw_maps *m)
{
    if (m->v)
        munmap(m->v, entries_bytes(m->cap));
    if (m->text)
        munmap(m->text, m->text_cap);
    memset(m, 0, sizeof *m);
}

const struct lw_mapping *lw_maps_find(const struct lw_maps *m, uint64_t addr)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->v[mid].hi <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n && m->v[lo].lo <= addr ? &m->v[lo] : NULL;
}
