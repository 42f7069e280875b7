/*
 * render_json.c — the public JSON contract (../shared/design.md, "JSON
 * contract"; docs/protocol.md, "The CLI's public JSON"): the preload's reply
 * with every stack id replaced by symbolized frames, start routines named,
 * and the modules and stack table dropped. The text views are rendered from
 * this same object, so both outputs always agree.
 *
 * Each stack id is expanded once and its frame array shared (json-c reference
 * counts) by every thread that uses it: 10,000 threads with one stack cost
 * one symbolization. A pc inside inlined code expands into several frames
 * with the same pc, the inlined ones marked "inlined": true.
 */
#include "render.h"
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct expander {
    json_object *stacks;      /* the reply's table: id -> ["0x…", …] */
    json_object *done;        /* id -> frame array, already expanded */
    json_object *paths;       /* the reply's table: id -> a rule-3 path */
    json_object *paths_done;  /* id -> the path with its root named */
    json_object *routines;    /* "0x…" -> a start routine, named */
    struct lwc_symbolizer *sym;
};

static json_object *hex_string(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)v);
    return json_object_new_string(buf);
}

/* "0x…" -> value; false for anything else. */
static bool parse_address(json_object *v, uint64_t *out)
{
    const char *s = v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    char *end;
    if (!s || strncmp(s, "0x", 2) != 0 || !s[2])
        return false;
    *out = strtoull(s + 2, &end, 16);
    return *end == 0;
}

/* {"pc", "module", "offset", "function", "file", "line"}, plus
 * "inlined": true for a function inlined at pc into the frame after it. */
static json_object *frame_object(const struct lwc_frame *f)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "pc", hex_string(f->pc));
    json_object_object_add(o, "module", f->module ? json_object_new_string(f->module) : NULL);
    json_object_object_add(o, "offset", f->module ? hex_string(f->offset) : NULL);
    json_object_object_add(o, "function", f->function ? json_object_new_string(f->function) : NULL);
    json_object_object_add(o, "file", f->file ? json_object_new_string(f->file) : NULL);
    json_object_object_add(o, "line", f->line ? json_object_new_int(f->line) : NULL);
    if (f->inlined)
        json_object_object_add(o, "inlined", json_object_new_boolean(true));
    return o;
}

/* Append the frames of one pc: those inlined there, innermost first, then
 * the real one. */
static void add_pc_frames(json_object *frames, struct lwc_symbolizer *sym, uint64_t pc, bool return_address)
{
    const struct lwc_frame *at;
    size_t n = lwc_symbolize_frames(sym, pc, return_address, &at);
    struct lwc_frame bare;
    if (n == 0) {   /* no symbolizer or no memory: the real frame alone */
        lwc_symbolize(sym, pc, return_address, &bare);
        at = &bare;
        n = 1;
    }
    for (size_t i = 0; i < n; i++)
        json_object_array_add(frames, frame_object(&at[i]));
}

/* The frames of a list of pcs, innermost first; pcs that are not addresses
 * are skipped. docs/protocol.md says only the frames after the first are
 * return addresses, but the preload removes its own frames from an unwound
 * stack, so the first one is the return address into the hooked function's
 * caller as well (looked up as is, `sem_wait(&s);` shows as the line after
 * it). pc - 1 is right for every frame, and for a pc taken from
 * /proc/T/syscall (just after the syscall instruction) too. */
#define FIRST_FRAME_IS_RETURN_ADDRESS true
static json_object *frames_of(json_object *pcs, struct lwc_symbolizer *sym)
{
    json_object *frames = json_object_new_array();
    size_t n = lwc_len(pcs);
    for (size_t i = 0; i < n; i++) {
        uint64_t pc;
        if (parse_address(json_object_array_get_idx(pcs, i), &pc))
            add_pc_frames(frames, sym, pc, FIRST_FRAME_IS_RETURN_ADDRESS || json_object_array_length(frames) > 0);
    }
    return frames;
}

/* stacks[id] as frames (a new reference); an absent or unknown id gives an
 * empty array, so consumers always find an array. */
static json_object *expand_stack(struct expander *x, json_object *id)
{
    char key[32];
    if (!id || !json_object_is_type(id, json_type_int))
        return json_object_new_array();
    snprintf(key, sizeof key, "%lld", (long long)json_object_get_int64(id));
    json_object *frames = NULL;
    if (!json_object_object_get_ex(x->done, key, &frames)) {
        frames = frames_of(lwc_get(x->stacks, key), x->sym);
        json_object_object_add(x->done, key, frames);
    }
    return json_object_get(frames);
}

/* A start routine {"pc", "function"} (a new reference), named once and
 * shared by every thread that started there; NULL for a pc that is not an
 * address. */
static json_object *routine_object(struct expander *x, json_object *pc)
{
    uint64_t addr;
    if (!parse_address(pc, &addr))
        return NULL;
    json_object *o = NULL;
    const char *key = json_object_get_string(pc);
    if (json_object_object_get_ex(x->routines, key, &o))
        return json_object_get(o);
    struct lwc_frame f;
    lwc_symbolize(x->sym, addr, false, &f);   /* a function's entry, not a return address */
    o = json_object_new_object();
    json_object_object_add(o, "pc", hex_string(addr));
    json_object_object_add(o, "function", f.function ? json_object_new_string(f.function) : NULL);
    json_object_object_add(x->routines, key, o);
    return json_object_get(o);
}

static bool is_stack_key(const char *key)
{
    return strcmp(key, "wait_stack") == 0 || strcmp(key, "create_stack") == 0;
}

/* A rule-3 path's root in a module's data: which module, which global
 * ("g_pool", "g_pool+8"), when the symbol tables say; on a stack: the
 * function whose frame holds it (from the frame's return address). */
static void name_root(json_object *root, struct lwc_symbolizer *sym)
{
    uint64_t address, offset, pc;
    const char *kind = lwc_str(root, "kind", NULL), *module;
    if (kind && strcmp(kind, "stack") == 0) {
        struct lwc_frame f = { 0 };
        if (parse_address(lwc_get(root, "pc"), &pc))
            lwc_symbolize(sym, pc, true, &f);
        json_object_object_add(root, "function", f.function ? json_object_new_string(f.function) : NULL);
        return;
    }
    if (!kind || strcmp(kind, "data") != 0 || !parse_address(lwc_get(root, "address"), &address))
        return;
    const char *name = lwc_symbolize_data(sym, address, &module, &offset);
    json_object_object_add(root, "module", module ? json_object_new_string(module) : NULL);
    if (!name) {
        json_object_object_add(root, "symbol", NULL);
        return;
    }
    char buf[512];
    if (offset)
        snprintf(buf, sizeof buf, "%s+%llu", name, (unsigned long long)offset);
    else
        snprintf(buf, sizeof buf, "%s", name);
    json_object_object_add(root, "symbol", json_object_new_string(buf));
}

static void expand_nested(json_object *v, struct expander *x);

/* paths[id], its root named (a new reference), shared by every wait that
 * names it; NULL for null or an unknown id. */
static json_object *expand_path(struct expander *x, json_object *id)
{
    char key[32];
    if (!id || !json_object_is_type(id, json_type_int))
        return NULL;
    snprintf(key, sizeof key, "%lld", (long long)json_object_get_int64(id));
    json_object *path = NULL;
    if (!json_object_object_get_ex(x->paths_done, key, &path)) {
        path = lwc_get(x->paths, key);
        if (path && json_object_is_type(path, json_type_object)) {
            expand_nested(path, x);
            json_object *root = lwc_get(path, "root");
            if (root && json_object_is_type(root, json_type_object))
                name_root(root, x->sym);
            json_object_get(path);
        } else {
            path = NULL;
        }
        json_object_object_add(x->paths_done, key, path);
    }
    return json_object_get(path);
}

/* Every stack id inside v, at any depth (a channel's create_stack),
 * replaced by its frames, in place. (Replacing the value of the key being
 * visited leaves json-c's iteration intact.) */
static void expand_nested(json_object *v, struct expander *x)
{
    if (v && json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, val) {
            if (is_stack_key(key))
                json_object_object_add(v, key, expand_stack(x, val));
            else
                expand_nested(val, x);
        }
    } else if (v && json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            expand_nested(json_object_array_get_idx(v, i), x);
    }
}

/* A wait object: its stack ids expanded, its reach_path id replaced by the
 * path. */
static void public_wait(json_object *v, struct expander *x)
{
    if (!v || !json_object_is_type(v, json_type_object))
        return;
    json_object_object_foreach(v, key, val) {
        if (strcmp(key, "reach_path") == 0)
            json_object_object_add(v, key, expand_path(x, val));
        else if (is_stack_key(key))
            json_object_object_add(v, key, expand_stack(x, val));
        else
            expand_nested(val, x);
    }
}

/* A thread object, its stacks, wait and start_routine expanded in place. */
static void public_thread(json_object *t, struct expander *x)
{
    json_object_object_foreach(t, key, val) {
        if (strcmp(key, "wait") == 0)
            public_wait(val, x);
        else if (is_stack_key(key))
            json_object_object_add(t, key, expand_stack(x, val));
        else if (strcmp(key, "start_routine") == 0)
            json_object_object_add(t, key, routine_object(x, val));
    }
}

/* The thread objects of a list, expanded, in a new array (anything else a
 * reply put there is left out: consumers find objects only). */
static json_object *public_array(json_object *arr, struct expander *x)
{
    json_object *out = json_object_new_array();
    size_t n = lwc_len(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(arr, i);
        if (t && json_object_is_type(t, json_type_object)) {
            public_thread(t, x);
            json_object_array_add(out, json_object_get(t));
        }
    }
    return out;
}

/* Every expanded stack and path is shared by the threads that use it (10,000
 * threads, one stack): serialize each once, and let every later print of it
 * copy that text (the flags are lwc_print_json's). */
#define PRINT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static void freeze_shared(json_object *table)
{
    json_object_object_foreach(table, key, val) {
        (void)key;
        if (!val)
            continue;
        char *text = strdup(json_object_to_json_string_ext(val, PRINT_FLAGS));
        if (text)
            json_object_set_serializer(val, json_object_userdata_to_json_string, text, json_object_free_userdata);
    }
}

/* In place: a parsed reply of 10,000 threads is never copied (a copy of
 * every thread object took a third of the CLI's time). */
json_object *lwc_public_process(json_object *reply, struct lwc_symbolizer *sym)
{
    struct expander x = { lwc_get(reply, "stacks"), json_object_new_object(), lwc_get(reply, "paths"),
                          json_object_new_object(), json_object_new_object(), sym };
    static const char *const lists[] = { "threads", "exited_threads" };
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        json_object *list = lwc_get(reply, lists[i]);
        if (list || i == 0)   /* consumers may rely on a threads array */
            json_object_object_add(reply, lists[i], public_array(list, &x));
    }
    freeze_shared(x.done);
    freeze_shared(x.paths_done);
    freeze_shared(x.routines);
    json_object_put(x.done);
    json_object_put(x.paths_done);
    json_object_put(x.routines);
    json_object_object_del(reply, "stacks");
    json_object_object_del(reply, "modules");
    json_object_object_del(reply, "paths");
    return json_object_get(reply);
}

void lwc_print_json(FILE *out, json_object *o)
{
    fprintf(out, "%s\n", json_object_to_json_string_ext(o, PRINT_FLAGS));
}
