/*
 * render_json.c — the public JSON contract (../shared/design.md, "JSON
 * contract"; docs/protocol.md): the preload's reply with every stack id
 * replaced by symbolized frames. The text views are rendered from this same
 * object, so both outputs always agree.
 */
#include "render.h"
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *hex_string(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)v);
    return json_object_new_string(buf);
}

static json_object *frame_object(struct lwc_symbolizer *sym, uint64_t pc)
{
    struct lwc_frame f;
    lwc_symbolize(sym, pc, &f);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "pc", hex_string(pc));
    json_object_object_add(o, "module", f.module ? json_object_new_string(f.module) : NULL);
    json_object_object_add(o, "offset", f.module ? hex_string(f.offset) : NULL);
    json_object_object_add(o, "function", f.function ? json_object_new_string(f.function) : NULL);
    json_object_object_add(o, "file", f.file ? json_object_new_string(f.file) : NULL);
    json_object_object_add(o, "line", f.line ? json_object_new_int(f.line) : NULL);
    return o;
}

/* stacks["id"] -> [frame, ...]; an unknown id gives an empty array. */
static json_object *expand_stack(json_object *stacks, json_object *id, struct lwc_symbolizer *sym)
{
    json_object *frames = json_object_new_array();
    if (!id || !(json_object_is_type(id, json_type_int)))
        return frames;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)json_object_get_int64(id));
    json_object *pcs = lwc_get(stacks, key);
    size_t n = pcs && json_object_is_type(pcs, json_type_array) ? json_object_array_length(pcs) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(pcs, i));
        if (s)
            json_object_array_add(frames, frame_object(sym, strtoull(s, NULL, 16)));
    }
    return frames;
}

static json_object *routine_object(json_object *pc, struct lwc_symbolizer *sym)
{
    const char *s = pc && json_object_is_type(pc, json_type_string) ? json_object_get_string(pc) : NULL;
    if (!s)
        return NULL;
    struct lwc_frame f;
    uint64_t addr = strtoull(s, NULL, 16);
    lwc_symbolize(sym, addr + 1, &f);   /* a function's entry, not a return address */
    json_object *o = json_object_new_object();
    json_object_object_add(o, "pc", hex_string(addr));
    json_object_object_add(o, "function", f.function ? json_object_new_string(f.function) : NULL);
    return o;
}

/* Copy every field of a thread object, expanding stacks and start_routine. */
static json_object *public_thread(json_object *t, json_object *stacks, struct lwc_symbolizer *sym)
{
    json_object *o = json_object_new_object();
    json_object_object_foreach(t, key, val) {
        if (strcmp(key, "wait_stack") == 0 || strcmp(key, "create_stack") == 0)
            json_object_object_add(o, key, expand_stack(stacks, val, sym));
        else if (strcmp(key, "start_routine") == 0)
            json_object_object_add(o, key, routine_object(val, sym));
        else
            json_object_object_add(o, key, json_object_get(val));
    }
    return o;
}

static json_object *public_array(json_object *arr, json_object *stacks, struct lwc_symbolizer *sym)
{
    json_object *out = json_object_new_array();
    size_t n = arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(arr, i);
        if (t && json_object_is_type(t, json_type_object))
            json_object_array_add(out, public_thread(t, stacks, sym));
    }
    return out;
}

json_object *lwc_public_process(json_object *reply, struct lwc_symbolizer *sym)
{
    json_object *stacks = lwc_get(reply, "stacks");
    json_object *o = json_object_new_object();
    json_object_object_foreach(reply, key, val) {
        if (strcmp(key, "stacks") == 0 || strcmp(key, "modules") == 0)
            continue;
        if (strcmp(key, "threads") == 0 || strcmp(key, "exited_threads") == 0)
            json_object_object_add(o, key, public_array(val, stacks, sym));
        else
            json_object_object_add(o, key, json_object_get(val));
    }
    return o;
}
