/*
 * manual.h — the verb table's manuals as data, for the outputs made from
 * them besides `--help` (main.c): man pages (manpage.c) and bash completion
 * (completion.c). One source, so none of them can say something the others
 * do not.
 */
#ifndef LWC_MANUAL_H
#define LWC_MANUAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define LWC_MANUAL_OPTIONS 16

struct lwc_manual_option {
    const char *name;   /* "--json" */
    const char *arg;    /* "FILE"; NULL for a flag */
    const char *help;   /* lines separated by \n */
};

/* Texts are lines separated by \n, as --help prints them; a line that
 * starts with spaces is laid out by hand (a table, a list). */
struct lwc_manual {
    const char *verb, *title, *synopsis, *description;
    const char *exit_status;   /* "CODE  text" lines, continuations indented */
    const char *environment;   /* "NAME  text" lines, continuations indented; may be NULL */
    const char *examples;      /* one command a line */
    struct lwc_manual_option options[LWC_MANUAL_OPTIONS];
    size_t noptions;
    bool takes_pid, takes_command;
};

/* What the command as a whole says (leakwatch(1)). */
struct lwc_manual_overview {
    const char *version, *summary, *description, *exit_status, *environment;
};

/* manpage.c: roff for man(7). leakwatch(1) lists every verb; leakwatch-VERB(1)
 * is one verb's manual. */
void lwc_manpage_overview(FILE *out, const struct lwc_manual_overview *o, const struct lwc_manual *verbs, size_t n);
void lwc_manpage_verb(FILE *out, const struct lwc_manual_overview *o, const struct lwc_manual *m);

/* completion.c: a bash completion script for every verb. */
void lwc_bash_completion(FILE *out, const struct lwc_manual *verbs, size_t n);

#endif
