/*
 * jsonread_oracle.h — what cli/jsonread.c is held to, shared by its unit
 * test (tests/unit/test_jsonread.c) and its fuzz target
 * (tests/fuzz/fuzz_jsonread.c): json-c's own tokener, with the CLI's depth,
 * and a comparison of two trees node by node.
 */
#ifndef LW_JSONREAD_ORACLE_H
#define LW_JSONREAD_ORACLE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <string.h>

#define FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static inline json_object *tokener_parse(const char *text, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(128);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    bool ok = json_tokener_get_error(tok) == json_tokener_success && o && json_object_is_type(o, json_type_object);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    for (; ok && used < len; used++)
        ok = strchr(" \t\r\n", text[used]) != NULL;
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* The same tree: the same type everywhere (printing alone would not tell
 * an int 1 from a double written "1"), the same keys in the same order. */
static inline bool same_tree(json_object *a, json_object *b)
{
    if (!a || !b)
        return a == b;
    if (json_object_get_type(a) != json_object_get_type(b))
        return false;
    switch (json_object_get_type(a)) {
    case json_type_object: {
        if (json_object_object_length(a) != json_object_object_length(b))
            return false;
        struct lh_entry *eb = json_object_get_object(b)->head;
        json_object_object_foreach(a, key, val) {
            if (!eb || strcmp(key, (const char *)lh_entry_k(eb)) != 0 ||
                !same_tree(val, (json_object *)lh_entry_v(eb)))
                return false;
            eb = eb->next;
        }
        return true;
    }
    case json_type_array:
        if (json_object_array_length(a) != json_object_array_length(b))
            return false;
        for (size_t i = 0; i < json_object_array_length(a); i++)
            if (!same_tree(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
                return false;
        return true;
    case json_type_string:
        return json_object_get_string_len(a) == json_object_get_string_len(b) &&
               memcmp(json_object_get_string(a), json_object_get_string(b), (size_t)json_object_get_string_len(a)) == 0;
    case json_type_int:
        return json_object_get_int64(a) == json_object_get_int64(b);
    case json_type_double:
    case json_type_boolean:
    case json_type_null:
        break;
    }
    return strcmp(json_object_to_json_string_ext(a, FLAGS), json_object_to_json_string_ext(b, FLAGS)) == 0;
}

#endif
