/*
 * fuzz_jsonread.c — libFuzzer target for the CLI's fast JSON reader
 * (cli/jsonread.c), with json-c's tokener as the oracle: whatever text the
 * reader takes must be a text json-c takes too, giving the same tree
 * (tests/unit/jsonread_oracle.h). A reply with a NUL byte never reaches
 * the reader (lwc_parse_reply refuses it first), so neither does one here.
 */
#include "jsonread.h"
#include "../unit/jsonread_oracle.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memchr(data, 0, size))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    json_object *fast = lwc_json_read_object(text, size);
    if (fast) {
        json_object *slow = tokener_parse(text, size);
        if (!slow || !same_tree(fast, slow)) {
            fprintf(stderr, "jsonread: %s\n   json-c: %s\n", json_object_to_json_string_ext(fast, FLAGS),
                    slow ? json_object_to_json_string_ext(slow, FLAGS) : "(refused)");
            abort();
        }
        json_object_put(slow);
    }
    json_object_put(fast);
    free(text);
    return 0;
}
