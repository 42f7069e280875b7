/*
 * jsonread.c — a reply's JSON into json-c objects, three times faster than
 * json-c's own tokener, for the JSON the preload writes.
 *
 * A reply of 10,000 threads is 5.5 MB: json-c's tokener took ~100 ms of the
 * CLI's ~250 to parse it, mostly in its per-character state machine, its
 * string buffer, and a strdup of every key (360,000 of them, of ~60 kinds).
 * This reader walks the text once, recursively, and builds the same
 * objects with json-c's own constructors; an object's keys are shared (one
 * copy of each distinct key, kept for the life of the CLI: json-c's
 * JSON_C_OBJECT_ADD_CONSTANT_KEY).
 *
 * It reads strict JSON only: what jsonw (preload/serve/jsonw.c) writes.
 * Anything else — json-c's extensions (comments, single quotes, NaN,
 * trailing commas, upper-case literals, leading zeros), integers of more
 * than 18 digits, \u escapes of surrogates, raw control characters, nesting deeper
 * than json-c's limit, text after the object, a failed allocation — makes
 * it give up, and the caller parses with json-c's tokener instead, which
 * knows the whole grammar and says what is wrong. So for any text the
 * result is the object json-c's parse gives (tests/unit/test_jsonread.c
 * and the fuzz target compare them), only sooner.
 */
#include "jsonread.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 127             /* json_tokener_new_ex(128): below its limit */
#define MAX_SHARED_KEYS 4096      /* past these, keys are json-c's own copies */
#define MAX_SHARED_BYTES (1u << 20)
#define MAX_NUMBER 64

/* ---- shared keys ----
 * The exporter parses replies on many threads at once: a slot, once its
 * text is published (release), never changes, so looking a key up takes
 * no lock; adding one takes the lock, and looks again first. */

struct shared_key {
    uint64_t hash;
    size_t len;
    char *text;                   /* NUL-terminated; NULL: an empty slot */
};

static struct shared_key keys[2 * MAX_SHARED_KEYS];   /* open addressing, half full at most */
static size_t nkeys, key_bytes;                        /* (under add_lock) */
static pthread_mutex_t add_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The key's slot: the one holding it, or the empty one where it would
 * go (NULL text). */
static struct shared_key *key_slot(const char *s, size_t len, uint64_t h, char **text)
{
    size_t mask = sizeof keys / sizeof *keys - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct shared_key *k = &keys[i];
        *text = __atomic_load_n(&k->text, __ATOMIC_ACQUIRE);
        if (!*text || (k->hash == h && k->len == len && memcmp(*text, s, len) == 0))
            return k;
    }
}

/* The shared copy of a key, or NULL (no room: json-c copies it). */
static const char *shared_key(const char *s, size_t len)
{
    uint64_t h = hash_bytes(s, len);
    char *text, *copy = NULL;
    struct shared_key *k = key_slot(s, len, h, &text);
    if (text)
        return text;
    pthread_mutex_lock(&add_lock);
    k = key_slot(s, len, h, &text);   /* (another thread may have added it) */
    if (!text && nkeys < MAX_SHARED_KEYS && key_bytes + len + 1 <= MAX_SHARED_BYTES && (copy = malloc(len + 1))) {
        memcpy(copy, s, len);
        copy[len] = 0;
        k->hash = h;
        k->len = len;
        nkeys++;
        key_bytes += len + 1;
        __atomic_store_n(&k->text, copy, __ATOMIC_RELEASE);
        text = copy;
    }
    pthread_mutex_unlock(&add_lock);
    return text;
}

/* ---- the reader ---- */

struct reader {
    const char *p, *end;
    char *scratch;                /* a string with escapes, decoded */
    size_t scratch_cap;
};

static void skip_space(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\t' || *r->p == '\r'))
        r->p++;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static bool read_hex4(struct reader *r, unsigned *out)
{
    if (r->end - r->p < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(r->p[i]);
        if (d < 0)
            return false;
        v = v << 4 | (unsigned)d;
    }
    r->p += 4;
    *out = v;
    return true;
}

/* A code point of the Basic Multilingual Plane as UTF-8. */
static size_t put_utf8(char *o, unsigned c)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xc0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    o[0] = (char)(0xe0 | c >> 12);
    o[1] = (char)(0x80 | (c >> 6 & 0x3f));
    o[2] = (char)(0x80 | (c & 0x3f));
    return 3;
}

/* One \u escape (r->p past the 'u'); false for a surrogate, paired or
 * not (json-c has its own rules for those: jsonw never writes one). */
static bool read_unicode(struct reader *r, unsigned *out)
{
    unsigned c;
    if (!read_hex4(r, &c) || (c >= 0xd800 && c <= 0xdfff))
        return false;
    *out = c;
    return true;
}

static bool scratch_room(struct reader *r, size_t need)
{
    if (need <= r->scratch_cap)
        return true;
    size_t cap = r->scratch_cap ? r->scratch_cap : 256;
    while (cap < need)
        cap *= 2;
    char *bigger = realloc(r->scratch, cap);
    if (!bigger)
        return false;
    r->scratch = bigger;
    r->scratch_cap = cap;
    return true;
}

/* The string at r->p (past its opening quote): *s and *len point into the
 * text when it has no escape, else into the scratch buffer. */
static bool read_string(struct reader *r, const char **s, size_t *len)
{
    const char *start = r->p;
    while (r->p < r->end && *r->p != '"' && *r->p != '\\' && (unsigned char)*r->p >= 0x20)
        r->p++;
    if (r->p == r->end || (unsigned char)*r->p < 0x20)
        return false;
    if (*r->p == '"') {
        *s = start;
        *len = (size_t)(r->p++ - start);
        return true;
    }
    /* escapes: decoded into scratch, which grows as it must */
    size_t n = (size_t)(r->p - start);
    if (!scratch_room(r, n + 4))
        return false;
    memcpy(r->scratch, start, n);
    while (r->p < r->end && *r->p != '"') {
        unsigned char c = (unsigned char)*r->p++;
        if (c < 0x20)
            return false;
        if (!scratch_room(r, n + 4))
            return false;
        if (c != '\\') {
            r->scratch[n++] = (char)c;
            continue;
        }
        if (r->p == r->end)
            return false;
        char e = *r->p++;
        unsigned u;
        switch (e) {
        case '"': case '\\': case '/': r->scratch[n++] = e; break;
        case 'b': r->scratch[n++] = '\b'; break;
        case 'f': r->scratch[n++] = '\f'; break;
        case 'n': r->scratch[n++] = '\n'; break;
        case 'r': r->scratch[n++] = '\r'; break;
        case 't': r->scratch[n++] = '\t'; break;
        case 'u':
            if (!read_unicode(r, &u))
                return false;
            n += put_utf8(r->scratch + n, u);
            break;
        default:
            return false;
        }
    }
    if (r->p == r->end)
        return false;
    r->p++;
    *s = r->scratch;
    *len = n;
    return true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* A number in JSON's own grammar: an integer of at most 18 digits becomes
 * an int64, one with a fraction or exponent a double that prints as its
 * text (json-c's json_object_new_double_s, as its tokener does). */
static json_object *read_number(struct reader *r)
{
    const char *start = r->p, *q = r->p;
    if (q < r->end && *q == '-')
        q++;
    const char *digits = q;
    while (q < r->end && is_digit(*q))
        q++;
    size_t ndigits = (size_t)(q - digits);
    if (ndigits == 0 || (ndigits > 1 && *digits == '0'))
        return NULL;
    bool is_double = false;
    if (q < r->end && *q == '.') {
        const char *f = ++q;
        while (q < r->end && is_digit(*q))
            q++;
        if (q == f)
            return NULL;
        is_double = true;
    }
    if (q < r->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < r->end && (*q == '+' || *q == '-'))
            q++;
        const char *x = q;
        while (q < r->end && is_digit(*q))
            q++;
        if (q == x)
            return NULL;
        is_double = true;
    }
    size_t len = (size_t)(q - start);
    r->p = q;
    if (!is_double) {
        if (ndigits > 18 || (*start == '-' && ndigits == 1 && *digits == '0'))
            return NULL;   /* (json-c's own rules for these: its tokener's business) */
        int64_t v = 0;
        for (const char *d = digits; d < q; d++)
            v = v * 10 + (*d - '0');
        return json_object_new_int64(*start == '-' ? -v : v);
    }
    char text[MAX_NUMBER + 1];
    if (len > MAX_NUMBER)
        return NULL;
    memcpy(text, start, len);
    text[len] = 0;
    char *stop;
    double d = strtod(text, &stop);
    if (*stop)
        return NULL;
    return json_object_new_double_s(d, text);
}

static bool literal(struct reader *r, const char *word, size_t len)
{
    if ((size_t)(r->end - r->p) < len || memcmp(r->p, word, len) != 0)
        return false;
    r->p += len;
    return true;
}

static bool read_value(struct reader *r, int depth, json_object **out);

/* Inside an object or array: at its closing character (taken)? */
static bool closes_now(struct reader *r, char close)
{
    skip_space(r);
    if (r->p == r->end || *r->p != close)
        return false;
    r->p++;
    return true;
}

/* After a member or element: ',' (taken, more follow: 1), the closing
 * character (taken: 0), else -1. */
static int after_member(struct reader *r, char close)
{
    skip_space(r);
    if (r->p == r->end)
        return -1;
    char c = *r->p++;
    if (c == close)
        return 0;
    if (c != ',')
        return -1;
    skip_space(r);
    return 1;
}

static json_object *read_object(struct reader *r, int depth)
{
    json_object *o = json_object_new_object();
    if (!o || closes_now(r, '}'))
        return o;
    for (int more = 1; more > 0;) {
        const char *k;
        size_t klen;
        json_object *v;
        if (r->p == r->end || *r->p++ != '"' || !read_string(r, &k, &klen) || memchr(k, 0, klen))
            break;
        const char *key = shared_key(k, klen);
        char copy[128];
        if (!key && klen < sizeof copy) {   /* (no room to share it: json-c copies it) */
            memcpy(copy, k, klen);
            copy[klen] = 0;
        } else if (!key) {
            break;
        }
        skip_space(r);
        if (r->p == r->end || *r->p++ != ':')
            break;
        skip_space(r);
        if (!read_value(r, depth + 1, &v))
            break;
        if (json_object_object_add_ex(o, key ? key : copy, v, key ? JSON_C_OBJECT_ADD_CONSTANT_KEY : 0) != 0) {
            json_object_put(v);
            break;
        }
        if ((more = after_member(r, '}')) == 0)
            return o;
    }
    json_object_put(o);
    return NULL;
}

static json_object *read_array(struct reader *r, int depth)
{
    json_object *a = json_object_new_array();
    if (!a || closes_now(r, ']'))
        return a;
    for (int more = 1; more > 0;) {
        json_object *v;
        if (!read_value(r, depth + 1, &v))
            break;
        if (json_object_array_add(a, v) != 0) {
            json_object_put(v);
            break;
        }
        if ((more = after_member(r, ']')) == 0)
            return a;
    }
    json_object_put(a);
    return NULL;
}

/* One value at r->p; false: not one this reader takes (*out is then NULL).
 * A JSON null is true with *out NULL, as json-c has it. */
static bool read_value(struct reader *r, int depth, json_object **out)
{
    *out = NULL;
    if (r->p == r->end || depth > MAX_DEPTH)
        return false;
    const char *s;
    size_t len;
    switch (*r->p) {
    case '{':
        r->p++;
        return (*out = read_object(r, depth)) != NULL;
    case '[':
        r->p++;
        return (*out = read_array(r, depth)) != NULL;
    case '"':
        r->p++;
        return read_string(r, &s, &len) && (*out = json_object_new_string_len(s, (int)len)) != NULL;
    case 't':
        return literal(r, "true", 4) && (*out = json_object_new_boolean(1)) != NULL;
    case 'f':
        return literal(r, "false", 5) && (*out = json_object_new_boolean(0)) != NULL;
    case 'n':
        return literal(r, "null", 4);
    default:
        return (*r->p == '-' || is_digit(*r->p)) && (*out = read_number(r)) != NULL;
    }
}

json_object *lwc_json_read_object(const char *text, size_t len)
{
    if (len > INT32_MAX)
        return NULL;
    struct reader r = { text, text + len, NULL, 0 };
    skip_space(&r);
    json_object *o = NULL;
    if (r.p < r.end && *r.p == '{' && read_value(&r, 1, &o)) {
        skip_space(&r);
        if (r.p != r.end) {
            json_object_put(o);
            o = NULL;
        }
    } else {
        json_object_put(o);
        o = NULL;
    }
    free(r.scratch);
    return o;
}
