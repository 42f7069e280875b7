/*
 * manpage.c — man pages in roff (man(7) macros) from the verb table's
 * manuals (manual.h), so `man leakwatch-threads` says what `leakwatch
 * threads --help` says, word for word: the build makes the pages by running
 * `leakwatch help --man [VERB]`, and meson installs them.
 *
 * The texts are hard-wrapped lines. Lines that start at the margin are
 * prose and are filled; lines that start with spaces were laid out by hand
 * (tables, lists) and are kept as they are (no-fill). Exit status and
 * environment lines ("CODE  text", "NAME  text", continuations indented)
 * become tagged paragraphs. Every '-' is written as \- (a minus, as options
 * must be for copy and paste), backslashes as \e, and a line that would
 * start with a control character is protected with \&.
 */
#include "manual.h"

#include <ctype.h>
#include <string.h>

/* Text without line breaks, escaped for roff. */
static void put_escaped(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            fputs("\\e", out);
        else if (s[i] == '-')
            fputs("\\-", out);
        else
            fputc(s[i], out);
    }
}

/* One output line: protected when it would start with '.' or '\''. */
static void put_line(FILE *out, const char *s, size_t n)
{
    if (n && (s[0] == '.' || s[0] == '\''))
        fputs("\\&", out);
    put_escaped(out, s, n);
    fputc('\n', out);
}

static bool laid_out(const char *line)
{
    return line[0] == ' ';
}

/* Prose filled, hand-laid lines kept; a blank line starts a paragraph. */
static void put_text(FILE *out, const char *text)
{
    bool nofill = false;
    while (*text) {
        size_t n = strcspn(text, "\n");
        if (n == 0) {
            if (nofill)
                fputs(".fi\n", out);
            nofill = false;
            fputs(".PP\n", out);
        } else {
            if (laid_out(text) != nofill)
                fputs(laid_out(text) ? ".nf\n" : ".fi\n", out);
            nofill = laid_out(text);
            put_line(out, text, n);
        }
        text += n + (text[n] == '\n');
    }
    if (nofill)
        fputs(".fi\n", out);
}

/* "TAG  text\n   more text" lines as tagged paragraphs: the tag is what
 * comes before the first run of two spaces. */
static void put_tagged(FILE *out, const char *text)
{
    while (*text) {
        size_t n = strcspn(text, "\n");
        const char *gap = strstr(text, "  ");
        if (laid_out(text) || !gap || gap >= text + n) {   /* a continuation */
            const char *s = text;
            while (*s == ' ' && s < text + n)
                s++;
            if (s < text + n)
                put_line(out, s, (size_t)(text + n - s));
        } else {
            const char *body = gap;
            while (*body == ' ')
                body++;
            fputs(".TP\n.B ", out);
            put_escaped(out, text, (size_t)(gap - text));
            fputc('\n', out);
            if (body < text + n)
                put_line(out, body, (size_t)(text + n - body));
        }
        text += n + (text[n] == '\n');
    }
}

/* Lines kept as they are (a synopsis, examples). */
static void put_verbatim(FILE *out, const char *text)
{
    fputs(".nf\n", out);
    while (*text) {
        size_t n = strcspn(text, "\n");
        put_line(out, text, n);
        text += n + (text[n] == '\n');
    }
    fputs(".fi\n", out);
}

static void put_option(FILE *out, const struct lwc_manual_option *o)
{
    fputs(".TP\n\\fB", out);
    put_escaped(out, o->name, strlen(o->name));
    fputs("\\fR", out);
    if (o->arg) {
        fputs(" \\fI", out);
        put_escaped(out, o->arg, strlen(o->arg));
        fputs("\\fR", out);
    }
    fputc('\n', out);
    const char *text = o->help;   /* one sentence, wrapped: filled again */
    while (*text) {
        size_t n = strcspn(text, "\n");
        put_line(out, text, n);
        text += n + (text[n] == '\n');
    }
}

static void put_header(FILE *out, const char *name, const char *version, const char *title)
{
    char upper[64];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof upper; i++)
        upper[i] = (char)toupper((unsigned char)name[i]);
    upper[i] = 0;
    fputs(".TH ", out);
    put_escaped(out, upper, strlen(upper));
    /* no hyphenation, ragged right: names and options must stay whole */
    fprintf(out, " 1 \"\" \"leakwatch %s\" \"leakwatch manual\"\n.nh\n.ad l\n.SH NAME\n", version);
    put_escaped(out, name, strlen(name));
    fputs(" \\- ", out);
    put_escaped(out, title, strlen(title));
    fputc('\n', out);
}

static void put_see_also(FILE *out, const struct lwc_manual *verbs, size_t n, const char *except)
{
    fputs(".SH SEE ALSO\n", out);
    if (except)
        fputs(".BR leakwatch (1),\n", out);
    for (size_t i = 0; i < n; i++)
        if (!except || strcmp(verbs[i].verb, except) != 0) {
            fputs(".BR leakwatch\\-", out);
            put_escaped(out, verbs[i].verb, strlen(verbs[i].verb));
            fputs(" (1),\n", out);
        }
    fputs(".BR libleakwatch (7)\n", out);
}

void lwc_manpage_verb(FILE *out, const struct lwc_manual_overview *o, const struct lwc_manual *m)
{
    char name[64];
    snprintf(name, sizeof name, "leakwatch-%s", m->verb);
    put_header(out, name, o->version, m->title);
    fputs(".SH SYNOPSIS\n", out);
    put_verbatim(out, m->synopsis);
    fputs(".SH DESCRIPTION\n", out);
    put_text(out, m->description);
    fputs(".SH OPTIONS\n", out);
    for (size_t i = 0; i < m->noptions; i++)
        put_option(out, &m->options[i]);
    fputs(".SH EXIT STATUS\n", out);
    put_tagged(out, m->exit_status);
    fputs(".SH ENVIRONMENT\n", out);
    if (m->environment)
        put_tagged(out, m->environment);
    put_tagged(out, o->environment);
    fputs(".SH EXAMPLES\n", out);
    put_verbatim(out, m->examples);
    put_see_also(out, m, 1, m->verb);
}

void lwc_manpage_overview(FILE *out, const struct lwc_manual_overview *o, const struct lwc_manual *verbs, size_t n)
{
    put_header(out, "leakwatch", o->version, o->summary);
    fputs(".SH SYNOPSIS\n.B leakwatch\n.I VERB\n.RI [ ARGS ]\n.SH DESCRIPTION\n", out);
    put_text(out, o->description);
    fputs(".SH VERBS\n", out);
    for (size_t i = 0; i < n; i++) {
        fputs(".TP\n.BR leakwatch\\-", out);
        put_escaped(out, verbs[i].verb, strlen(verbs[i].verb));
        fputs(" (1)\n", out);
        put_line(out, verbs[i].title, strlen(verbs[i].title));
    }
    fputs(".SH EXIT STATUS\n", out);
    put_tagged(out, o->exit_status);
    fputs(".SH ENVIRONMENT\n", out);
    put_tagged(out, o->environment);
    put_see_also(out, verbs, n, NULL);
}
