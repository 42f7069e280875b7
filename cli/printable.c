/*
 * printable.c — text from a process made safe for a terminal, as ps and git
 * make file names safe: every control byte (C0, DEL, and the C1 controls,
 * which a terminal may take for ESC [ and the like) becomes a visible escape
 * such as \x1b, and so does every byte that is not part of valid UTF-8 (in
 * a UTF-8 locale; in any other, every byte above 0x7f, which an 8-bit
 * terminal may read as a C1 control). Thread names, the command line,
 * reasons, notes, paths, symbol names and error messages all come from
 * processes (another user's, when root asks) and from files they name:
 * printed raw, an OSC 52 sequence set root's clipboard and a line erase
 * rewrote its screen. JSON output needs none of this (its escaping is
 * json-c's); the text views, watch and the messages on stderr do.
 */
#include "printable.h"

#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool locale_is_utf8(void)
{
    static int utf8 = -1;
    if (utf8 < 0) {
        const char *charset = nl_langinfo(CODESET);
        utf8 = charset && strcmp(charset, "UTF-8") == 0;
    }
    return utf8;
}

/* Length of the valid, printable UTF-8 sequence at s (n bytes left), or 0:
 * invalid, overlong, a surrogate, beyond U+10FFFF, or a C1 control. */
static size_t printable_utf8_length(const unsigned char *s, size_t n)
{
    size_t len = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || len > n || (len == 2 && s[0] < 0xc2) || (len == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((len == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (len == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (len == 4 && s[0] == 0xf0 && s[1] < 0x90) || (len == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    if (len == 2 && s[0] == 0xc2 && s[1] < 0xa0)
        return 0;   /* U+0080..U+009F: the C1 controls */
    return len;
}

/* How many bytes of s are printed as they are (0: escape s[0]). */
static size_t kept_as_is(const unsigned char *s, size_t n)
{
    if (s[0] >= 0x20 && s[0] < 0x7f)
        return 1;
    if (s[0] < 0x80 || !locale_is_utf8())
        return 0;
    return printable_utf8_length(s, n);
}

static size_t escape_byte(char *out, unsigned char c)
{
    static const char named[] = { ['\t'] = 't', ['\n'] = 'n', ['\r'] = 'r' };
    if (c < sizeof named && named[c]) {
        out[0] = '\\';
        out[1] = named[c];
        return 2;
    }
    snprintf(out, 5, "\\x%02x", c);
    return 4;
}

bool lwc_is_printable(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        size_t k = kept_as_is(p, n);
        if (!k)
            return false;
        p += k;
        n -= k;
    }
    return true;
}

char *lwc_printable(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), used = 0;
    char *out = malloc(4 * n + 1);   /* an escape is at most 4 bytes a byte */
    if (!out)
        return NULL;
    while (n) {
        size_t k = kept_as_is(p, n);
        if (k) {
            memcpy(out + used, p, k);
            used += k;
        } else {
            used += escape_byte(out + used, *p);
            k = 1;
        }
        p += k;
        n -= k;
    }
    out[used] = 0;
    return out;
}

void lwc_printable_in_place(char *buf, size_t size)
{
    if (!size || lwc_is_printable(buf))
        return;
    char *safe = lwc_printable(buf);
    if (safe)
        snprintf(buf, size, "%s", safe);
    else
        snprintf(buf, size, "(a message with control characters, not shown: out of memory)");
    free(safe);
}

bool lwc_make_printable(json_object *o)
{
    if (json_object_is_type(o, json_type_string)) {
        const char *s = json_object_get_string(o);
        if (lwc_is_printable(s))
            return true;
        char *safe = lwc_printable(s);
        bool ok = safe && json_object_set_string(o, safe);
        free(safe);
        return ok;
    }
    bool ok = true;
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            ok &= lwc_make_printable(json_object_array_get_idx(o, i));
    } else if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, val) {
            (void)key;   /* keys are shown only through JSON (counterpart), escaped again when printed */
            if (val)
                ok &= lwc_make_printable(val);
        }
    }
    return ok;
}
