/*
 * jsonread.h — a reply's JSON into json-c objects, sooner than json-c's
 * tokener (jsonread.c): strict JSON only, else NULL and the caller asks
 * json-c.
 */
#ifndef LWC_JSONREAD_H
#define LWC_JSONREAD_H

#include <json-c/json.h>
#include <stddef.h>

/* The JSON object that is the whole of text (white space around it
 * allowed), exactly as json-c's tokener would build it; NULL when text is
 * anything this reader does not take (then json-c's tokener decides) or
 * memory ran out. Keys are shared copies that live as long as the CLI. */
json_object *lwc_json_read_object(const char *text, size_t len);

#endif
