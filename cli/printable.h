/*
 * printable.h — text from a process made safe to show on a terminal
 * (printable.c): control bytes and invalid UTF-8 become visible escapes.
 */
#ifndef LWC_PRINTABLE_H
#define LWC_PRINTABLE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* Whether s is shown as it is. */
bool lwc_is_printable(const char *s);

/* s with every control byte and invalid byte escaped ("\x1b", "\n"):
 * malloc'ed, NULL when out of memory. */
char *lwc_printable(const char *s);

/* The same, in place in a buffer of size bytes (a message). */
void lwc_printable_in_place(char *buf, size_t size);

/* Every string value in o (recursively), escaped in place: for the text
 * views, never for JSON output. false when out of memory (some left raw). */
bool lwc_make_printable(json_object *o);

#endif
