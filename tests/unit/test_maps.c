/*
 * test_maps.c — unit test of the malloc-free /proc/self/maps reader
 * (preload/base/maps.c).
 *
 * The parser is fed hand-written text: names with spaces, " (deleted)",
 * names longer than the field, no name, [vsyscall], a last line without
 * '\n', hex of either case, and malformed lines that must be skipped. Every
 * prefix of a valid line is parsed from a buffer of exactly its size, so an
 * out-of-bounds read shows under ASan. Then lw_maps_read on this very
 * process is compared with an independent fopen/sscanf reading, a process
 * with tens of thousands of mappings proves the growth path, and a read that
 * cannot open the file must leave nothing mapped.
 */
#include "base/maps.h"
#include "check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_OUT 64

static size_t parse_text(const char *text, struct lw_mapping *out, size_t *malformed)
{
    return lw_maps_parse(text, strlen(text), out, MAX_OUT, malformed);
}

static void check_mapping(const struct lw_mapping *m, uint64_t lo, uint64_t hi, const char *perms, bool anonymous,
                          const char *name)
{
    CHECK(m->lo == lo && m->hi == hi, "range %" PRIx64 "-%" PRIx64 ", want %" PRIx64 "-%" PRIx64, m->lo, m->hi, lo, hi);
    CHECK(m->readable == (perms[0] == 'r') && m->writable == (perms[1] == 'w') &&
              m->executable == (perms[2] == 'x') && m->shared == (perms[3] == 's'),
          "perms of %" PRIx64 " are not %s", m->lo, perms);
    CHECK(m->anonymous == anonymous, "anonymous of %" PRIx64 " is %d", m->lo, m->anonymous);
    CHECK(strcmp(m->name, name) == 0, "name of %" PRIx64 " is \"%s\", want \"%s\"", m->lo, m->name, name);
}

static void test_typical_lines(void)
{
    const char *text =
        "55d0c8a00000-55d0c8a21000 r--p 00000000 fd:01 1234567                    /usr/bin/cat\n"
        "55d0c8a21000-55d0c8a40000 r-xp 00021000 fd:01 1234567                    /usr/bin/cat\n"
        "55d0c9e5b000-55d0c9e7c000 rw-p 00000000 00:00 0                          [heap]\n"
        "7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0 \n"
        "7f1c2b000000-7f1c2b001000 rw-s 00000000 00:05 4242                       /dev/shm/lw shm\n"
        "7f1c2c000000-7f1c2c001000 rw-s 00000000 00:01 77                         /dev/zero (deleted)\n"
        "7ffd5c6b2000-7ffd5c6d3000 rw-p 00000000 00:00 0                          [stack]\n"
        "7ffd5c7d0000-7ffd5c7d4000 r--p 00000000 00:00 0                          [vvar]\n"
        "7ffd5c7d4000-7ffd5c7d6000 r-xp 00000000 00:00 0                          [vdso]\n"
        "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
    struct lw_mapping out[MAX_OUT];
    size_t malformed = 99;
    size_t n = parse_text(text, out, &malformed);
    CHECK(n == 10 && malformed == 0, "typical: %zu lines, %zu malformed", n, malformed);
    if (n != 10)
        return;
    check_mapping(&out[0], 0x55d0c8a00000, 0x55d0c8a21000, "r--p", false, "/usr/bin/cat");
    check_mapping(&out[1], 0x55d0c8a21000, 0x55d0c8a40000, "r-xp", false, "/usr/bin/cat");
    check_mapping(&out[2], 0x55d0c9e5b000, 0x55d0c9e7c000, "rw-p", true, "[heap]");
    check_mapping(&out[3], 0x7f1c2a000000, 0x7f1c2a021000, "rw-p", true, "");   /* old kernels: trailing space */
    check_mapping(&out[4], 0x7f1c2b000000, 0x7f1c2b001000, "rw-s", false, "/dev/shm/lw shm");
    check_mapping(&out[5], 0x7f1c2c000000, 0x7f1c2c001000, "rw-s", false, "/dev/zero (deleted)");
    CHECK(out[5].deleted && !out[4].deleted && !out[0].deleted, "deleted flags %d %d %d", out[5].deleted,
          out[4].deleted, out[0].deleted);
    check_mapping(&out[6], 0x7ffd5c6b2000, 0x7ffd5c6d3000, "rw-p", true, "[stack]");
    check_mapping(&out[7], 0x7ffd5c7d0000, 0x7ffd5c7d4000, "r--p", true, "[vvar]");
    check_mapping(&out[8], 0x7ffd5c7d4000, 0x7ffd5c7d6000, "r-xp", true, "[vdso]");
    check_mapping(&out[9], 0xffffffffff600000, 0xffffffffff601000, "--xp", true, "[vsyscall]");
}

static void test_names(void)
{
    char long_name[200], text[1024];
    memset(long_name, 0, sizeof long_name);
    strcpy(long_name, "/a/very/long/path/");
    while (strlen(long_name) < 150)
        strcat(long_name, "dir with spaces/");
    snprintf(text, sizeof text,
             "1000-2000 r--p 00000000 08:02 11 %s\n"
             "2000-3000 r--p 00000000 08:02 12 %s (deleted)\n"
             "3000-4000 r--p 00000000 08:02 13    "
             "/exactly/sixty-three/characters/long/xxxxxxxxxxxxxxxxxxxxxxxxxx\n"
             "4000-5000 r--p 00000000 08:02 14 "
             "/exactly/sixty-four/characters/long/xxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
             "5000-6000 rw-p 00000000 00:00 0\n"
             "6000-7000 r--p 00000000 08:02 15 /tmp/ends in a space \n"
             "7000-8000 r--p 00000000 08:02 16 /tmp/(deleted)",
             long_name, long_name);
    struct lw_mapping out[MAX_OUT];
    size_t malformed;
    size_t n = parse_text(text, out, &malformed);
    CHECK(n == 7 && malformed == 0, "names: %zu lines, %zu malformed", n, malformed);
    if (n != 7)
        return;
    for (size_t i = 0; i < n; i++)
        CHECK(strlen(out[i].name) <= 63, "name %zu has %zu characters", i, strlen(out[i].name));
    CHECK(strncmp(out[0].name, long_name, 63) == 0 && strlen(out[0].name) == 63, "long name: \"%s\"", out[0].name);
    CHECK(!out[0].deleted, "a long name without the suffix is not deleted");
    CHECK(strncmp(out[1].name, long_name, 63) == 0 && out[1].deleted,
          "a long deleted name keeps its first 63 characters and the flag: \"%s\" %d", out[1].name, out[1].deleted);
    CHECK(strcmp(out[2].name, "/exactly/sixty-three/characters/long/xxxxxxxxxxxxxxxxxxxxxxxxxx") == 0 &&
              strlen(out[2].name) == 63,
          "63 characters kept whole: \"%s\"", out[2].name);
    CHECK(strcmp(out[3].name, "/exactly/sixty-four/characters/long/xxxxxxxxxxxxxxxxxxxxxxxxxxx") == 0,
          "64 characters lose the last: \"%s\"", out[3].name);
    CHECK(out[4].name[0] == 0 && out[4].anonymous, "no name: \"%s\"", out[4].name);
    CHECK(strcmp(out[5].name, "/tmp/ends in a space ") == 0, "trailing space kept: \"%s\"", out[5].name);
    check_mapping(&out[6], 0x7000, 0x8000, "r--p", false, "/tmp/(deleted)");   /* last line, no '\n' */
    CHECK(!out[6].deleted, "\"(deleted)\" without its space is part of a name");
}

static void test_hex_case(void)
{
    const char *text = "7F00AB000000-7f00ab001000 R--P 00000000 FD:0A 1 /x\n"   /* perms are lower case only */
                       "7F00AB001000-7f00Ab002000 r--p 0000ABCD FD:0A 1 /x\n"
                       "ABCDEF0000-ABCDEF1000 ---p 00000000 00:00 0\n";
    struct lw_mapping out[MAX_OUT];
    size_t malformed;
    size_t n = parse_text(text, out, &malformed);
    CHECK(n == 2 && malformed == 1, "hex: %zu lines, %zu malformed", n, malformed);
    if (n != 2)
        return;
    check_mapping(&out[0], 0x7f00ab001000, 0x7f00ab002000, "r--p", false, "/x");
    check_mapping(&out[1], 0xabcdef0000, 0xabcdef1000, "---p", true, "");
}

static void test_malformed(void)
{
    static const char *const bad[] = {
        "",
        "   ",
        "hello world",
        "7f00-",
        "7f00-8f00",
        "7f00-8f00 ",
        "7f00-8f00 rw-",
        "7f00-8f00 rwzp 00000000 00:00 0",
        "7f00-8f00 rw-x 00000000 00:00 0",
        "7f00-8f00 rw-pp 00000000 00:00 0",
        "7f00-8f00  rw-p 00000000 00:00 0",
        "7f00 8f00 rw-p 00000000 00:00 0",
        "7f00-8f00 rw-p 00000000 0000 0",
        "7f00-8f00 rw-p 00000000 00:00",
        "7f00-8f00 rw-p 00000000 00:00 ",
        "7f00-8f00 rw-p 00000000 00:00 12a",
        "7f00-8f00 rw-p 00000000 00:00 0x /x",
        "7f00-8f00 rw-p 00000000 00:00 99999999999999999999999 /x",
        "8f00-7f00 rw-p 00000000 00:00 0",
        "7f00-7f00 rw-p 00000000 00:00 0",
        "10000000000000000-10000000000001000 rw-p 00000000 00:00 0",
        "g000-8f00 rw-p 00000000 00:00 0",
        "-8f00 rw-p 00000000 00:00 0",
        "7f00-8f00 rw-p 00000000 00:00 0\r",
        " 7f00-8f00 rw-p 00000000 00:00 0",
    };
    size_t nbad = sizeof bad / sizeof *bad;
    char text[4096] = "";
    for (size_t i = 0; i < nbad; i++) {
        struct lw_mapping out[MAX_OUT];
        size_t malformed;
        size_t n = lw_maps_parse(bad[i], strlen(bad[i]), out, MAX_OUT, &malformed);
        CHECK(n == 0 && malformed == (bad[i][0] ? 1u : 0u), "\"%s\" parsed as %zu lines, %zu malformed", bad[i], n,
              malformed);
        /* The same between good lines: skipped, the neighbours intact. */
        snprintf(text, sizeof text, "1000-2000 r--p 00000000 00:00 0 [a]\n%s\n3000-4000 rw-p 00000000 00:00 0 [b]",
                 bad[i]);
        n = lw_maps_parse(text, strlen(text), out, MAX_OUT, &malformed);
        CHECK(n == 2 && malformed == 1 && out[0].lo == 0x1000 && out[1].lo == 0x3000 &&
                  strcmp(out[1].name, "[b]") == 0,
              "\"%s\" between good lines: %zu lines, %zu malformed", bad[i], n, malformed);
    }
    /* An embedded NUL is a byte like any other: the line still parses up to its '\n'. */
    static const char with_nul[] = "1000-2000 r--p 00000000 00:00 0 [a\0b]\n2000-3000 r--p 00000000 00:00 0";
    struct lw_mapping out[MAX_OUT];
    size_t malformed;
    size_t n = lw_maps_parse(with_nul, sizeof with_nul - 1, out, MAX_OUT, &malformed);
    CHECK(n == 2 && malformed == 0 && out[1].lo == 0x2000, "NUL in a name: %zu lines", n);
}

/* Every prefix of a valid line, each in a heap buffer of exactly its size:
 * a read past the end is an ASan error; until the inode's first digit the
 * line is malformed, from there on the prefix is a valid (shorter) line. */
static void test_every_prefix(void)
{
    const char *line = "7f1c2b000000-7f1c2b001000 rw-s 00000000 00:05 4242        /dev/shm/a name";
    size_t len = strlen(line);
    size_t inode_at = (size_t)(strstr(line, "4242") - line), inode_end = inode_at + 4;
    for (size_t k = 0; k <= len; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, line, k);
        struct lw_mapping out[1];
        size_t malformed;
        size_t n = lw_maps_parse(copy, k, out, 1, &malformed);
        bool valid = k > inode_at;
        CHECK(n == (valid ? 1u : 0u) && malformed == (valid || k == 0 ? 0u : 1u),
              "prefix of %zu bytes: %zu lines, %zu malformed", k, n, malformed);
        if (valid && n == 1) {
            const char *name = line + inode_end;
            while (name < line + k && *name == ' ')
                name++;
            size_t name_len = line + k > name ? (size_t)(line + k - name) : 0;
            CHECK(strlen(out[0].name) == name_len && strncmp(out[0].name, name, name_len) == 0 &&
                      out[0].anonymous == false && out[0].hi == 0x7f1c2b001000 && out[0].shared,
                  "prefix of %zu bytes: name \"%s\"", k, out[0].name);
        }
        free(copy);
    }
}

static void test_max_and_empty(void)
{
    const char *text = "1000-2000 r--p 00000000 00:00 0\n"
                       "2000-3000 r--p 00000000 00:00 0\n"
                       "3000-4000 r--p 00000000 00:00 0\n";
    struct lw_mapping out[3];
    memset(out, 0xab, sizeof out);
    size_t n = lw_maps_parse(text, strlen(text), out, 2, NULL);
    CHECK(n == 3, "max 2: counted %zu lines, want 3", n);
    CHECK(out[0].lo == 0x1000 && out[1].lo == 0x2000, "max 2: the first two are written");
    unsigned char untouched[sizeof out[2]];
    memset(untouched, 0xab, sizeof untouched);
    CHECK(memcmp(&out[2], untouched, sizeof untouched) == 0, "max 2: nothing written past max");
    CHECK(lw_maps_parse(text, 0, out, 3, NULL) == 0, "empty text parses to nothing");
    CHECK(lw_maps_parse(text, strlen(text), NULL, 0, NULL) == 3, "max 0 only counts");
}

static void test_find(void)
{
    const char *text = "1000-3000 r--p 00000000 00:00 0\n"
                       "3000-4000 rw-s 00000000 00:00 0\n"
                       "8000-9000 rw-p 00000000 00:00 0\n";
    struct lw_mapping v[4];
    struct lw_maps m = { .v = v, .cap = 4 };
    m.n = lw_maps_parse(text, strlen(text), v, 4, NULL);
    CHECK(m.n == 3, "find: %zu lines", m.n);
    static const struct { uint64_t addr; int index; } cases[] = {
        { 0, -1 }, { 0xfff, -1 }, { 0x1000, 0 }, { 0x2fff, 0 }, { 0x3000, 1 }, { 0x3fff, 1 },
        { 0x4000, -1 }, { 0x7fff, -1 }, { 0x8000, 2 }, { 0x8fff, 2 }, { 0x9000, -1 }, { UINT64_MAX, -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct lw_mapping *got = lw_maps_find(&m, cases[i].addr);
        const struct lw_mapping *want = cases[i].index < 0 ? NULL : &v[cases[i].index];
        CHECK(got == want, "find %#" PRIx64 ": entry %td, want %d", cases[i].addr, got ? got - v : -1, cases[i].index);
    }
    struct lw_maps empty = LW_MAPS_INIT;
    CHECK(lw_maps_find(&empty, 0x1000) == NULL, "find in nothing");
}

/* ---- the real file ---- */

/* /proc/self/maps read the ordinary way, into a preallocated array. */
static size_t read_with_stdio(struct lw_mapping *out, size_t max)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return 0;
    static char line[8192];
    size_t n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        unsigned long long lo, hi, inode;
        char perms[8];
        int name_at = 0;
        if (sscanf(line, "%llx-%llx %7s %*s %*s %llu %n", &lo, &hi, perms, &inode, &name_at) != 4)
            continue;
        struct lw_mapping *m = &out[n++];
        memset(m, 0, sizeof *m);
        m->lo = lo;
        m->hi = hi;
        m->readable = perms[0] == 'r';
        m->writable = perms[1] == 'w';
        m->executable = perms[2] == 'x';
        m->shared = perms[3] == 's';
        m->anonymous = inode == 0;
        line[strcspn(line, "\n")] = 0;
        snprintf(m->name, sizeof m->name, "%s", name_at ? line + name_at : "");
    }
    fclose(f);
    return n;
}

static bool same_mapping(const struct lw_mapping *a, const struct lw_mapping *b)
{
    return a->lo == b->lo && a->hi == b->hi && a->readable == b->readable && a->writable == b->writable &&
           a->executable == b->executable && a->shared == b->shared && a->anonymous == b->anonymous &&
           strcmp(a->name, b->name) == 0;
}

/* Both readings, with every buffer already at its final size (the first
 * round maps and grows them), so the process does not change between them. */
static bool readings_agree(struct lw_maps *m, struct lw_mapping *theirs, size_t max, size_t *where)
{
    if (!lw_maps_read(m))
        return false;
    size_t n = read_with_stdio(theirs, max);
    *where = 0;
    if (n != m->n)
        return false;
    for (; *where < n; (*where)++)
        if (!same_mapping(&m->v[*where], &theirs[*where]))
            return false;
    return true;
}

static void test_read_matches_stdio(void)
{
    enum { MAX = 8192 };
    struct lw_mapping *theirs = calloc(MAX, sizeof *theirs);
    struct lw_maps m = LW_MAPS_INIT;
    size_t where = 0;
    bool agree = false;
    for (int round = 0; round < 3 && !agree; round++)
        agree = readings_agree(&m, theirs, MAX, &where);
    CHECK(agree, "lw_maps_read and stdio disagree: %zu entries, first difference at %zu (%" PRIx64 "-%" PRIx64
                 " \"%s\" vs %" PRIx64 "-%" PRIx64 " \"%s\")",
          m.n, where, where < m.n ? m.v[where].lo : 0, where < m.n ? m.v[where].hi : 0,
          where < m.n ? m.v[where].name : "", theirs[where].lo, theirs[where].hi, theirs[where].name);
    CHECK(m.n > 3, "only %zu mappings read", m.n);
    /* Our own code is found where the kernel says it is. */
    const struct lw_mapping *code = lw_maps_find(&m, (uint64_t)(uintptr_t)&lw_maps_parse);
    CHECK(code && code->executable && code->readable && !code->anonymous, "lw_maps_parse's code not found");
    const struct lw_mapping *buffer = lw_maps_find(&m, (uint64_t)(uintptr_t)theirs);
    CHECK(buffer && buffer->writable && !buffer->shared, "the heap array not found");
    lw_maps_free(&m);
    CHECK(m.v == NULL && m.text == NULL && m.n == 0, "lw_maps_free leaves the struct empty");
    lw_maps_free(&m);   /* twice is fine */
    free(theirs);
}

static bool is_unmapped(const void *p)
{
    return msync((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, MS_ASYNC) == -1 && errno == ENOMEM;
}

/* A read that cannot open the file answers false and unmaps what an earlier
 * read had mapped. */
static void test_failed_read_leaves_nothing(void)
{
    struct lw_maps m = LW_MAPS_INIT;
    CHECK(lw_maps_read(&m), "first read");
    void *text = m.text, *v = m.v;
    struct rlimit saved, none = { 0, 0 };
    getrlimit(RLIMIT_NOFILE, &saved);
    none.rlim_max = saved.rlim_max;
    CHECK(setrlimit(RLIMIT_NOFILE, &none) == 0, "setrlimit: %s", strerror(errno));
    bool ok = lw_maps_read(&m);
    setrlimit(RLIMIT_NOFILE, &saved);
    CHECK(!ok, "read succeeded without a free fd");
    CHECK(m.v == NULL && m.text == NULL && m.n == 0 && m.cap == 0 && m.text_cap == 0, "failed read left a struct");
    CHECK(text && v && is_unmapped(text) && is_unmapped(v), "failed read left its buffers mapped");
    lw_maps_free(&m);
}

static size_t current_mapping_count(void)
{
    struct lw_maps m = LW_MAPS_INIT;
    size_t n = lw_maps_read(&m) ? m.n : 0;
    lw_maps_free(&m);
    return n;
}

static size_t max_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    unsigned long v = 65530;
    if (f) {
        if (fscanf(f, "%lu", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

/* Many one-page regions, alternately readable and not, so the kernel
 * cannot merge them: the text grows far past its first buffer. We aim
 * above 70,000, but the kernel's vm.max_map_count (65530 by default) caps
 * what one process may have, so we take as many as it allows with 1000 to
 * spare (for the buffers, the sanitizers' own), and say how many. */
static void test_many_mappings(void)
{
    size_t limit = max_map_count(), now = current_mapping_count();
    size_t want = 70002;
    if (want + now + 1000 > limit)
        want = limit > now + 1000 ? limit - now - 1000 : 0;
    want &= ~(size_t)1;
    CHECK(want >= 30000, "only %zu mappings allowed (max_map_count %zu)", want, limit);
    size_t page = 4096, bytes = want * page;
    char *base = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(base != MAP_FAILED, "mmap of %zu pages: %s", want, strerror(errno));
    if (base == MAP_FAILED)
        return;
    bool protected_all = true;
    for (size_t i = 1; i < want; i += 2)
        protected_all &= mprotect(base + i * page, page, PROT_READ) == 0;
    CHECK(protected_all, "mprotect: %s", strerror(errno));

    struct lw_maps m = LW_MAPS_INIT;
    bool ok = lw_maps_read(&m);
    CHECK(ok, "read with %zu extra mappings", want);
    CHECK(m.n >= want, "%zu mappings read with %zu made", m.n, want);
    CHECK(m.text_cap > ((size_t)64 << 10) && m.text_len > ((size_t)64 << 10) * 8,
          "the text did not grow: %zu of %zu bytes", m.text_len, m.text_cap);
    size_t wrong = 0;
    for (size_t i = 0; ok && i < want; i++) {
        uint64_t lo = (uint64_t)(uintptr_t)(base + i * page);
        const struct lw_mapping *r = lw_maps_find(&m, lo + page / 2);
        bool readable = i % 2 == 1;
        /* The first and last may merge with a neighbour of the same kind. */
        bool edge = i == 0 || i == want - 1;
        if (!r || r->readable != readable || r->writable || r->shared || !r->anonymous ||
            (!edge && (r->lo != lo || r->hi != lo + page))) {
            if (wrong++ < 5)
                CHECK(0, "page %zu (%" PRIx64 ") seen as %" PRIx64 "-%" PRIx64 " r=%d", i, lo, r ? r->lo : 0,
                      r ? r->hi : 0, r ? r->readable : -1);
        }
    }
    CHECK(wrong == 0, "%zu of %zu pages wrong", wrong, want);
    printf("test_maps: %zu regions made, %zu mappings read from %zu bytes of text\n", want, m.n, m.text_len);

    /* A second read reuses the grown buffers (unless the text filled its
     * buffer exactly, which doubles it once more). */
    char *text = m.text;
    size_t text_cap = m.text_cap, text_len = m.text_len, n = m.n;
    CHECK(lw_maps_read(&m) && m.n >= want, "second read: %zu mappings, then %zu", n, m.n);
    CHECK((m.text == text && m.text_cap == text_cap) || text_len == text_cap, "second read did not reuse the buffer");
    munmap(base, bytes);
    CHECK(lw_maps_read(&m) && m.n < now + 100, "after munmap: %zu mappings", m.n);
    const struct lw_mapping *gone = lw_maps_find(&m, (uint64_t)(uintptr_t)(base + page));
    CHECK(!gone || gone->hi - gone->lo != page, "an unmapped page is still listed");
    lw_maps_free(&m);
}

int main(void)
{
    test_typical_lines();
    test_names();
    test_hex_case();
    test_malformed();
    test_every_prefix();
    test_max_and_empty();
    test_find();
    test_read_matches_stdio();
    test_failed_read_leaves_nothing();
    test_many_mappings();
    return checks_result("test_maps");
}
