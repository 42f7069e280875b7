/*
 * replybound.c — how much a reply may take: its size, bounded by what a
 * real process can send (its thread count, which the kernel tells us, times
 * what one thread's part of a reply can be), and the memory its parse will
 * take, bounded by a small multiple of its size.
 *
 * json-c takes about 800 bytes for an object (a 16-entry hash table) and
 * 400 for an array, however small: a 4 MiB reply of "{}" items took 1.09 GB
 * to parse, 270 times its size, and the old 256 MiB cap allowed ~69 GB. A
 * real reply is mostly keys, numbers and strings, ten or so times its size
 * once parsed (measured: lwc_reply_parse_cost on real replies, see
 * tests/cli/test_cli.py's mode "huge"). So before json-c sees a reply, one
 * pass counts what it would build and prices it as json-c does, and a
 * reply that would cost more than COST_PER_BYTE times its size is refused.
 */
#include "replybound.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FIXED_BYTES ((size_t)16 << 20)   /* modules, exited threads, stacks table, history, notes */
#define PER_THREAD_BYTES ((size_t)64 << 10)   /* a thread, its wait (a poll set of 256 fds), stacks, path */
#define LIMIT_MAX ((size_t)4 << 30)
#define MAX_DEPTH 256

/* What json-c 0.16 allocates (glibc malloc, x86-64), with malloc's overhead. */
#define COST_OBJECT 800   /* struct json_object + lh_table + 16 lh_entry */
#define COST_ARRAY 400    /* struct json_object + array_list + 32 slots */
#define COST_SLOT 16      /* an element beyond the first 32 (the array doubles) */
#define COST_KEY 48       /* the key's copy */
#define COST_SCALAR 64    /* a number, true, false; a string's object (plus its bytes) */
#define COST_PER_BYTE 24
#define COST_FREE ((size_t)1 << 20)

/* The threads of pid now (its "Threads:" line), 0 if unknown. */
static size_t thread_count(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    unsigned long n = 0;
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = sscanf(line, "Threads: %lu", &n) == 1;
    if (f)
        fclose(f);
    return found ? (size_t)n : 0;
}

size_t lwc_reply_limit_for_threads(size_t threads)
{
    /* twice the count now and some: threads may be created while it answers */
    if (threads > (LIMIT_MAX - FIXED_BYTES) / PER_THREAD_BYTES / 2)
        return LIMIT_MAX;
    size_t limit = FIXED_BYTES + (2 * threads + 64) * PER_THREAD_BYTES;
    return limit < LIMIT_MAX ? limit : LIMIT_MAX;
}

size_t lwc_reply_limit(pid_t pid, size_t *threads)
{
    *threads = thread_count(pid);
    return lwc_reply_limit_for_threads(*threads ? *threads : 32768);   /* unknown: the preload's most */
}

/* ---- the price of a parse ---- */

struct pricing {
    size_t cost;
    bool in_object[MAX_DEPTH];   /* what each open container is */
    size_t elements[MAX_DEPTH];  /* an array's elements so far */
    int depth;
    bool key_next;               /* in an object, at a key */
};

/* A value begins at text[i] (not a container, not a string): skip it. */
static size_t skip_scalar(const char *text, size_t len, size_t i)
{
    while (i < len && !strchr(",:]} \t\r\n{[\"", text[i]))
        i++;
    return i;
}

/* A string begins at text[i] (its quote): the index after its closing quote. */
static size_t skip_string(const char *text, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (text[i] == '\\')
            i++;
        else if (text[i] == '"')
            return i + 1;
    }
    return len;
}

static void count_element(struct pricing *p)
{
    if (p->depth > 0 && !p->in_object[p->depth - 1] && ++p->elements[p->depth - 1] > 32)
        p->cost += COST_SLOT;
}

static bool open_container(struct pricing *p, bool object)
{
    count_element(p);
    if (p->depth == MAX_DEPTH)
        return false;
    p->cost += object ? COST_OBJECT : COST_ARRAY;
    p->in_object[p->depth] = object;
    p->elements[p->depth] = 0;
    p->depth++;
    p->key_next = object;
    return true;
}

size_t lwc_reply_parse_cost(const char *text, size_t len)
{
    struct pricing p;   /* on the stack (2.3 KiB): the exporter prices replies in several threads at once */
    memset(&p, 0, sizeof p);
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (c == '{' || c == '[') {
            if (!open_container(&p, c == '{'))
                return SIZE_MAX;   /* deeper than any parser here goes */
            i++;
        } else if (c == '}' || c == ']') {
            p.depth -= p.depth > 0;
            p.key_next = false;
            i++;
        } else if (c == ',') {
            p.key_next = p.depth > 0 && p.in_object[p.depth - 1];
            i++;
        } else if (c == '"') {
            size_t end = skip_string(text, len, i);
            if (p.key_next) {
                p.cost += COST_KEY + (end - i);
                p.key_next = false;
            } else {
                count_element(&p);
                p.cost += COST_SCALAR + (end - i);
            }
            i = end;
        } else if (c == ':' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
        } else {
            count_element(&p);
            p.cost += COST_SCALAR;
            size_t end = skip_scalar(text, len, i);
            i = end > i ? end : i + 1;
        }
    }
    return p.cost;
}

bool lwc_reply_affordable(const char *text, size_t len, char *why, size_t size)
{
    size_t cost = lwc_reply_parse_cost(text, len);
    if (cost != SIZE_MAX && cost <= COST_FREE + COST_PER_BYTE * len)
        return true;
    if (cost == SIZE_MAX)
        snprintf(why, size, "nested deeper than %d levels", MAX_DEPTH);
    else
        snprintf(why, size, "its %zu bytes would take %zu MiB to parse (more than %d times its size: no process "
                 "sends that)", len, cost >> 20, COST_PER_BYTE);
    return false;
}
