/*
 * pprof.c — `leakwatch threads PID --pprof FILE`: the parked threads as a
 * gzipped pprof profile (cli/profile.proto, encoded by the code protoc-c
 * generates from it), so that `go tool pprof`, Pyroscope and Parca show
 * them as they show a goroutine profile: sample type threads/count, one
 * sample per parked thread with its wait stack, labelled with its verdict,
 * wait kind, thread name and tid.
 *
 * The profile is built from the public view (the same symbolized object
 * `threads --json` prints, suppressions applied), so its functions and
 * file:line are ours and the mappings say so (has_functions...): pprof never
 * goes looking for the binaries. A pc inside inlined code is one location
 * whose lines list the inlined functions innermost first, as pprof expects.
 * Every table is interned through a json-c object used as a dictionary
 * (its keys hashed): 10,000 threads on one stack cost one location per pc.
 */
#include "pprof.h"
#include "client.h"
#include "profile.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Label Label;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__ValueType ValueType;

/* A growable array of pointers. */
struct list {
    void **items;
    size_t n, cap;
};

struct builder {
    json_object *index;      /* "s:TEXT", "f:NAME\nFILE", "l:PC", "m:PATH" -> index or id */
    json_object *build_ids;  /* module path -> build-id, from the reply's modules */
    struct list strings, functions, locations, mappings, samples;
    bool failed;             /* out of memory somewhere */
};

/* Append item (malloc'ed); false when out of memory (item freed). */
static bool push(struct builder *b, struct list *l, void *item)
{
    void **room = item ? lwc_room_for_one(l->items, &l->cap, l->n, sizeof *l->items, 64) : NULL;
    if (!room) {
        free(item);
        b->failed = true;
        return false;
    }
    l->items = room;
    l->items[l->n++] = item;
    return true;
}

/* The index stored under key, or 0 when there is none. */
static int64_t lookup(struct builder *b, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(b->index, key, &v) ? json_object_get_int64(v) : 0;
}

static void remember(struct builder *b, const char *key, int64_t value)
{
    if (json_object_object_add(b->index, key, json_object_new_int64(value)) != 0)
        b->failed = true;
}

/* ---- the tables ---- */

/* Index of text in string_table (entry 0 is ""). */
static int64_t string_id(struct builder *b, const char *text)
{
    if (!text || !*text)
        return 0;
    char *key;
    if (asprintf(&key, "s:%s", text) < 0) {
        b->failed = true;
        return 0;
    }
    int64_t id = lookup(b, key);
    if (!id && push(b, &b->strings, strdup(text))) {
        id = (int64_t)b->strings.n - 1;
        remember(b, key, id);
    }
    free(key);
    return id;
}

static uint64_t function_id(struct builder *b, const char *name, const char *system_name, const char *file)
{
    char *key;
    if (asprintf(&key, "f:%s\n%s", name, file ? file : "") < 0) {
        b->failed = true;
        return 0;
    }
    uint64_t id = (uint64_t)lookup(b, key);
    Function *f = id ? NULL : malloc(sizeof *f);
    if (f) {
        perftools__profiles__function__init(f);
        f->id = b->functions.n + 1;
        f->name = string_id(b, name);
        f->system_name = string_id(b, system_name);
        f->filename = string_id(b, file);
        if (push(b, &b->functions, f)) {
            id = f->id;
            remember(b, key, (int64_t)id);
        }
    }
    free(key);
    return id;
}

/* The mapping of a module, grown to cover pc. 0 without a module. */
static uint64_t mapping_id(struct builder *b, const char *module, uint64_t pc, uint64_t offset)
{
    if (!module)
        return 0;
    char *key;
    if (asprintf(&key, "m:%s", module) < 0) {
        b->failed = true;
        return 0;
    }
    uint64_t id = (uint64_t)lookup(b, key);
    Mapping *m = id ? b->mappings.items[id - 1] : malloc(sizeof *m);
    if (m && !id) {
        perftools__profiles__mapping__init(m);
        m->id = b->mappings.n + 1;
        m->memory_start = pc;
        m->memory_limit = pc + 1;
        m->file_offset = offset;
        m->filename = string_id(b, module);
        m->build_id = string_id(b, lwc_str(b->build_ids, module, NULL));
        m->has_functions = m->has_filenames = m->has_line_numbers = m->has_inline_frames = true;
        if (push(b, &b->mappings, m)) {
            id = m->id;
            remember(b, key, (int64_t)id);
        }
    } else if (m) {   /* start and offset move together: address - start + file_offset stays the offset */
        if (pc < m->memory_start) {
            m->file_offset -= m->memory_start - pc;
            m->memory_start = pc;
        }
        if (pc >= m->memory_limit)
            m->memory_limit = pc + 1;
    }
    free(key);
    return id;
}

/* One line of a location: a frame's function at its file:line. A frame
 * nothing could name is "MODULE+0xOFFSET" (its module's file name). */
static Line *line_of(struct builder *b, json_object *frame)
{
    const char *function = lwc_str(frame, "function", NULL), *module = lwc_str(frame, "module", NULL);
    char unnamed[512];
    if (!function) {
        const char *base = module ? strrchr(module, '/') : NULL;
        snprintf(unnamed, sizeof unnamed, "%s+%s", base ? base + 1 : module ? module : "?",
                 lwc_str(frame, module ? "offset" : "pc", "?"));
        function = unnamed;
    }
    Line *l = malloc(sizeof *l);
    if (!l) {
        b->failed = true;
        return NULL;
    }
    perftools__profiles__line__init(l);
    l->function_id = function_id(b, function, function, lwc_str(frame, "file", NULL));
    l->line = lwc_int(frame, "line", 0);
    return l;
}

static uint64_t parse_hex(const char *s)
{
    return s && strncmp(s, "0x", 2) == 0 ? strtoull(s + 2, NULL, 16) : 0;
}

/* The location of the frames [first, end) of one pc, inlined ones first,
 * interned under key. */
static uint64_t location_id(struct builder *b, const char *key, json_object *frames, size_t first, size_t end)
{
    json_object *outer = json_object_array_get_idx(frames, end - 1);
    const char *pc_text = lwc_str(outer, "pc", "0x0");
    uint64_t id = (uint64_t)lookup(b, key);
    if (id)
        return id;
    Location *loc = calloc(1, sizeof *loc);
    Line **lines = calloc(end - first, sizeof *lines);
    if (!loc || !lines) {
        free(loc);
        free(lines);
        b->failed = true;
        return 0;
    }
    perftools__profiles__location__init(loc);
    loc->id = b->locations.n + 1;
    loc->address = parse_hex(pc_text);
    loc->mapping_id = mapping_id(b, lwc_str(outer, "module", NULL), loc->address,
                                 parse_hex(lwc_str(outer, "offset", NULL)));
    loc->line = lines;
    for (size_t i = first; i < end; i++)
        if ((lines[loc->n_line] = line_of(b, json_object_array_get_idx(frames, i))))
            loc->n_line++;
    if (!push(b, &b->locations, loc))
        return 0;
    remember(b, key, (int64_t)loc->id);
    return loc->id;
}

/* A parked thread without a wait stack still counts, on a location that
 * says so. */
static uint64_t stackless_location(struct builder *b, const char *kind)
{
    char name[128];
    snprintf(name, sizeof name, "[%s wait, no stack]", kind);
    json_object *frame = json_object_new_object();
    json_object_object_add(frame, "function", json_object_new_string(name));
    json_object_object_add(frame, "pc", json_object_new_string("0x0"));
    json_object *frames = json_object_new_array();
    json_object_array_add(frames, frame);
    char key[160];
    snprintf(key, sizeof key, "l:%s", name);
    uint64_t id = location_id(b, key, frames, 0, 1);
    json_object_put(frames);
    return id;
}

/* ---- samples ---- */

static Label *string_label(struct builder *b, const char *key, const char *value)
{
    Label *l = malloc(sizeof *l);
    if (!l) {
        b->failed = true;
        return NULL;
    }
    perftools__profiles__label__init(l);
    l->key = string_id(b, key);
    l->str = string_id(b, value ? value : "");
    return l;
}

static void add_labels(struct builder *b, Sample *s, json_object *thread, const char *kind)
{
    s->label = calloc(4, sizeof *s->label);
    if (!s->label) {
        b->failed = true;
        return;
    }
    Label *tid = malloc(sizeof *tid);
    Label *labels[] = { string_label(b, "verdict", lwc_str(thread, "verdict", NULL)), string_label(b, "wait", kind),
                        string_label(b, "thread", lwc_str(thread, "name", NULL)), tid };
    if (tid) {
        perftools__profiles__label__init(tid);
        tid->key = string_id(b, "tid");
        tid->num = lwc_int(thread, "tid", 0);
    }
    for (size_t i = 0; i < 4; i++)
        if (labels[i])
            s->label[s->n_label++] = labels[i];
        else
            b->failed = true;
}

/* One sample: a parked thread, value 1, its wait stack. */
static void add_sample(struct builder *b, json_object *thread)
{
    json_object *frames = lwc_array(thread, "wait_stack");
    const char *kind = lwc_str(lwc_get(thread, "wait"), "kind", "unknown");
    size_t n = lwc_len(frames);
    Sample *s = calloc(1, sizeof *s);
    uint64_t *ids = calloc(n ? n : 1, sizeof *ids);
    int64_t *value = malloc(sizeof *value);
    if (!s || !ids || !value) {
        free(s), free(ids), free(value);
        b->failed = true;
        return;
    }
    perftools__profiles__sample__init(s);
    s->location_id = ids;
    for (size_t i = 0, first = 0; i < n; i++) {   /* frames of one pc are consecutive: inlined ones first */
        json_object *next = i + 1 < n ? json_object_array_get_idx(frames, i + 1) : NULL;
        if (next && json_object_get_boolean(lwc_get(json_object_array_get_idx(frames, i), "inlined")))
            continue;
        char key[40];
        snprintf(key, sizeof key, "l:%s", lwc_str(json_object_array_get_idx(frames, i), "pc", "0x0"));
        if ((ids[s->n_location_id] = location_id(b, key, frames, first, i + 1)))
            s->n_location_id++;
        first = i + 1;
    }
    if (!s->n_location_id && (ids[0] = stackless_location(b, kind)))
        s->n_location_id = 1;
    *value = 1;
    s->value = value;
    s->n_value = 1;
    add_labels(b, s, thread, kind);
    push(b, &b->samples, s);
}

/* ---- the profile ---- */

static json_object *build_ids_of(json_object *modules)
{
    json_object *ids = json_object_new_object();
    for (size_t i = 0; i < lwc_len(modules); i++) {
        json_object *m = json_object_array_get_idx(modules, i);
        const char *path = lwc_str(m, "path", NULL), *id = lwc_str(m, "build_id", NULL);
        if (path && id)
            json_object_object_add(ids, path, json_object_new_string(id));
    }
    return ids;
}

static int64_t *comments(struct builder *b, json_object *view, size_t *n)
{
    json_object *notes = lwc_array(view, "notes");
    size_t count = 1 + lwc_len(notes);
    int64_t *c = calloc(count, sizeof *c);
    if (!c) {
        b->failed = true;
        return NULL;
    }
    char head[600];
    snprintf(head, sizeof head, "leakwatch threads %lld: %s", (long long)lwc_int(view, "pid", 0),
             lwc_str(view, "command", ""));
    c[0] = string_id(b, head);
    for (size_t i = 0; i < lwc_len(notes); i++)
        c[i + 1] = string_id(b, json_object_get_string(json_object_array_get_idx(notes, i)));
    *n = count;
    return c;
}

static void free_list(struct list *l, void (*free_item)(void *))
{
    for (size_t i = 0; i < l->n; i++)
        free_item(l->items[i]);
    free(l->items);
}

static void free_location(void *p)
{
    Location *l = p;
    for (size_t i = 0; i < l->n_line; i++)
        free(l->line[i]);
    free(l->line);
    free(l);
}

static void free_sample(void *p)
{
    Sample *s = p;
    for (size_t i = 0; i < s->n_label; i++)
        free(s->label[i]);
    free(s->label);
    free(s->location_id);
    free(s->value);
    free(s);
}

static void free_builder(struct builder *b)
{
    free_list(&b->strings, free);
    free_list(&b->functions, free);
    free_list(&b->mappings, free);
    free_list(&b->locations, free_location);
    free_list(&b->samples, free_sample);
    json_object_put(b->index);
    json_object_put(b->build_ids);
}

/* The profile, packed (malloc'ed); NULL when out of memory. */
static uint8_t *pack_profile(json_object *modules, json_object *view, size_t *len)
{
    struct builder b = { .index = json_object_new_object(), .build_ids = build_ids_of(modules) };
    push(&b, &b.strings, strdup(""));
    ValueType threads = PERFTOOLS__PROFILES__VALUE_TYPE__INIT, *types[] = { &threads };
    threads.type = string_id(&b, "threads");
    threads.unit = string_id(&b, "count");
    json_object *list = lwc_array(view, "threads");
    for (size_t i = 0; i < lwc_len(list); i++)
        if (lwc_get(json_object_array_get_idx(list, i), "wait"))
            add_sample(&b, json_object_array_get_idx(list, i));
    Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    p.time_nanos = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    p.sample_type = types;
    p.n_sample_type = 1;
    p.period_type = &threads;
    p.period = 1;
    p.default_sample_type = threads.type;
    p.comment = comments(&b, view, &p.n_comment);
    p.sample = (Sample **)b.samples.items, p.n_sample = b.samples.n;
    p.location = (Location **)b.locations.items, p.n_location = b.locations.n;
    p.function = (Function **)b.functions.items, p.n_function = b.functions.n;
    p.mapping = (Mapping **)b.mappings.items, p.n_mapping = b.mappings.n;
    p.string_table = (char **)b.strings.items, p.n_string_table = b.strings.n;   /* last: every string is in */
    uint8_t *out = b.failed ? NULL : malloc(perftools__profiles__profile__get_packed_size(&p) + 1);
    if (out)
        *len = perftools__profiles__profile__pack(&p, out);
    free(p.comment);
    free_builder(&b);
    return out;
}

/* ---- writing ---- */

static int write_gzipped(const char *path, const uint8_t *data, size_t len)
{
    bool to_stdout = strcmp(path, "-") == 0;
    int fd = to_stdout ? dup(STDOUT_FILENO) : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    gzFile gz = fd >= 0 ? gzdopen(fd, "wb") : NULL;
    if (!gz) {
        fprintf(stderr, "leakwatch threads: --pprof: cannot write %s: %s\n", path, strerror(fd < 0 ? errno : ENOMEM));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int written = len ? gzwrite(gz, data, (unsigned)len) : 0;
    int closed = gzclose(gz);
    if ((size_t)written != len || closed != Z_OK) {
        fprintf(stderr, "leakwatch threads: --pprof: cannot write %s: %s\n", path,
                closed == Z_ERRNO || written <= 0 ? strerror(errno) : "compression failed");
        return -1;
    }
    return 0;
}

int lwc_write_pprof(const char *path, json_object *modules, json_object *view)
{
    size_t len = 0;
    uint8_t *data = pack_profile(modules, view, &len);
    if (!data) {
        fprintf(stderr, "leakwatch threads: --pprof: out of memory\n");
        return -1;
    }
    int rc = write_gzipped(path, data, len);
    free(data);
    return rc;
}
