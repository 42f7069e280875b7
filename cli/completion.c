/*
 * completion.c — bash completion for leakwatch, written from the verb
 * table's manuals (manual.h) by `leakwatch help --bash-completion`, which
 * the build runs and meson installs: the verbs, each verb's options, file
 * names after options that take a FILE, commands after `run`, and for a
 * verb that takes a PID the processes running under leakwatch. Those are
 * found as the CLI finds them, by their listening sockets in
 * /proc/net/unix (".leakwatch.PID.tmp" at bind time, "leakwatch.PID.sock"),
 * without asking any of them, and kept when still alive and this user's
 * (root: all).
 */
#include "manual.h"

#include <string.h>

static const char prologue[] =
    "# bash completion for leakwatch(1): written by `leakwatch help --bash-completion`\n"
    "# from the verb table, so it completes what the command accepts.\n"
    "\n"
    "# The processes under leakwatch: their listening sockets, found as the CLI\n"
    "# finds them, none asked; alive and this user's (root: every one).\n"
    "_leakwatch_pids()\n"
    "{\n"
    "    local pid\n"
    "    while read -r pid; do\n"
    "        [[ -d /proc/$pid ]] && { [[ $EUID -eq 0 ]] || [[ -O /proc/$pid ]]; } && echo \"$pid\"\n"
    "    done < <(awk 'NR > 1 { n = split($NF, p, \"/\"); f = p[n];\n"
    "                 if (f ~ /^\\.leakwatch\\.[0-9]+\\.tmp$/ || f ~ /^leakwatch\\.[0-9]+\\.sock$/) {\n"
    "                     gsub(/[^0-9]/, \"\", f); print f } }' /proc/net/unix 2>/dev/null | sort -un)\n"
    "}\n"
    "\n"
    "_leakwatch()\n"
    "{\n"
    "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
    "    local verb=${COMP_WORDS[1]} options='' valued='' files='' pid=0 command=0 i\n"
    "    COMPREPLY=()\n";

static const char epilogue[] =
    "    case \" $files \" in *\" $prev \"*) COMPREPLY=($(compgen -f -- \"$cur\")); return ;; esac\n"
    "    case \" $valued \" in *\" $prev \"*) return ;; esac\n"
    "    if ((command)); then   # run: after the options, CMD and its arguments\n"
    "        for ((i = 2; i < COMP_CWORD; i++)); do\n"
    "            case ${COMP_WORDS[i]} in\n"
    "                --) break ;;\n"
    "                -*) case \" $valued \" in *\" ${COMP_WORDS[i]} \"*) ((i++)) ;; esac ;;\n"
    "                *) break ;;\n"
    "            esac\n"
    "        done\n"
    "        [[ ${COMP_WORDS[i]} == -- ]] && ((i++))\n"
    "        if ((i < COMP_CWORD)); then compopt -o default 2>/dev/null; return; fi\n"
    "        if ((i == COMP_CWORD)) && [[ $cur != -* || ${COMP_WORDS[i-1]} == -- ]]; then\n"
    "            COMPREPLY=($(compgen -c -- \"$cur\")); return\n"
    "        fi\n"
    "    fi\n"
    "    if [[ $cur == -* ]]; then\n"
    "        COMPREPLY=($(compgen -W \"$options\" -- \"$cur\"))\n"
    "    elif ((pid)); then\n"
    "        COMPREPLY=($(compgen -W \"$(_leakwatch_pids)\" -- \"$cur\"))\n"
    "    fi\n"
    "}\n"
    "complete -F _leakwatch leakwatch\n";

static void put_words(FILE *out, const struct lwc_manual *m, bool (*want)(const struct lwc_manual_option *))
{
    bool first = true;
    for (size_t i = 0; i < m->noptions; i++)
        if (want(&m->options[i])) {
            fprintf(out, "%s%s", first ? "" : " ", m->options[i].name);
            first = false;
        }
}

static bool any_option(const struct lwc_manual_option *o) { (void)o; return true; }
static bool takes_value(const struct lwc_manual_option *o) { return o->arg != NULL; }
static bool takes_file(const struct lwc_manual_option *o) { return o->arg && strcmp(o->arg, "FILE") == 0; }

/* One case arm: what the verb accepts. */
static void put_verb(FILE *out, const struct lwc_manual *m)
{
    fprintf(out, "        %s)\n            options='", m->verb);
    put_words(out, m, any_option);
    fputs("'\n            valued='", out);
    put_words(out, m, takes_value);
    fputs("'\n            files='", out);
    put_words(out, m, takes_file);
    fprintf(out, "'\n            pid=%d command=%d ;;\n", m->takes_pid, m->takes_command);
}

static void put_verb_names(FILE *out, const struct lwc_manual *verbs, size_t n)
{
    fputs("COMPREPLY=($(compgen -W '", out);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? " " : "", verbs[i].verb);
    fputs("' -- \"$cur\"))", out);
}

void lwc_bash_completion(FILE *out, const struct lwc_manual *verbs, size_t n)
{
    fputs(prologue, out);
    fputs("    if ((COMP_CWORD == 1)); then\n        ", out);
    put_verb_names(out, verbs, n);
    fputs("\n        return\n    fi\n    if [[ $verb == help && $cur != -* ]] && ((COMP_CWORD == 2)); then\n        ", out);
    put_verb_names(out, verbs, n);
    fputs("\n        return\n    fi\n    case $verb in\n", out);
    for (size_t i = 0; i < n; i++)
        put_verb(out, &verbs[i]);
    fputs("        *) return ;;\n    esac\n", out);
    fputs(epilogue, out);
}
