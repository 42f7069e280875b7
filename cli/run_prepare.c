/*
 * run_prepare.c — everything `leakwatch run` settles before it runs CMD
 * (run.h): CMD through PATH as execvp would find it; libleakwatch.so
 * ($LEAKWATCH_PRELOAD, else next to this leakwatch binary: ../preload/ in a
 * build tree, ../LIBDIR/ or ../lib/ when installed); and whether the
 * dynamic loader would load the preload into CMD at all. It would not, and
 * would say nothing, for a static program (no PT_INTERP: no loader runs), a
 * set-user-ID or set-group-ID program or one with file capabilities
 * (secure-execution mode ignores LD_PRELOAD paths with slashes), or an ELF
 * of another class or machine than the preload (skipped with a warning).
 * A script is judged by its #! interpreter (a few levels deep), since that
 * is what the kernel runs. ELF headers are read with libelf.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef LEAKWATCH_LIBDIR
#define LEAKWATCH_LIBDIR "lib"
#endif

#define PRELOAD_NAME "libleakwatch.so"
#define MAX_SCRIPT_DEPTH 4

/* ---- CMD ---- */

static bool is_executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int not_runnable(const char *cmd, const char *why, int status)
{
    fprintf(stderr, "leakwatch run: %s: %s\n", cmd, why);
    return status;
}

int lwc_run_resolve(const char *cmd, char *exe, size_t size)
{
    if (strchr(cmd, '/')) {
        if ((size_t)snprintf(exe, size, "%s", cmd) >= size)
            return not_runnable(cmd, "path too long", 127);
        if (access(exe, F_OK) != 0)
            return not_runnable(cmd, strerror(errno), 127);
        return is_executable_file(exe) ? 0 : not_runnable(cmd, "not an executable file", 126);
    }
    const char *path = getenv("PATH");
    bool seen = false;
    for (const char *p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin"; ; p++) {
        size_t n = strcspn(p, ":");
        if ((size_t)snprintf(exe, size, "%.*s%s%s", (int)n, n ? p : ".", "/", cmd) < size) {
            if (is_executable_file(exe))
                return 0;
            seen |= access(exe, F_OK) == 0;
        }
        p += n;
        if (!*p)
            break;
    }
    return seen ? not_runnable(cmd, "not an executable file", 126) : not_runnable(cmd, "command not found", 127);
}

/* ---- libleakwatch.so ---- */

static bool usable_file(const char *path, char *out, size_t size)
{
    struct stat st;
    char real[PATH_MAX];
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, R_OK) != 0 || !realpath(path, real))
        return false;
    return (size_t)snprintf(out, size, "%s", real) < size;
}

int lwc_run_find_preload(char *out, size_t size)
{
    const char *env = getenv("LEAKWATCH_PRELOAD");
    if (env && *env) {
        if (usable_file(env, out, size))
            return 0;
        fprintf(stderr, "leakwatch run: LEAKWATCH_PRELOAD=%s: not a readable file\n", env);
        return 2;
    }
    char self[PATH_MAX], candidate[PATH_MAX * 2];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = 0;
        const char *rel[] = { "../preload", LEAKWATCH_LIBDIR[0] == '/' ? NULL : "../" LEAKWATCH_LIBDIR, "../lib" };
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(candidate, sizeof candidate, "%s/%s/" PRELOAD_NAME, self, rel[i] ? rel[i] : "../lib");
            if (usable_file(candidate, out, size))
                return 0;
        }
        if (LEAKWATCH_LIBDIR[0] == '/' && usable_file(LEAKWATCH_LIBDIR "/" PRELOAD_NAME, out, size))
            return 0;
    }
    fprintf(stderr, "leakwatch run: cannot find " PRELOAD_NAME " next to this leakwatch (../preload/, ../"
                    LEAKWATCH_LIBDIR "/, ../lib/); set LEAKWATCH_PRELOAD to its path\n");
    return 2;
}

/* ---- would the loader preload into it? ---- */

struct elf_facts {
    bool elf, interp;
    int class;        /* ELFCLASS32 / ELFCLASS64 */
    int machine;
};

static bool read_elf_facts(const char *path, struct elf_facts *f)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    GElf_Ehdr eh;
    size_t nph = 0;
    if (e && elf_kind(e) == ELF_K_ELF && gelf_getehdr(e, &eh) && elf_getphdrnum(e, &nph) == 0) {
        f->elf = true;
        f->class = gelf_getclass(e);
        f->machine = eh.e_machine;
        for (size_t i = 0; i < nph; i++) {
            GElf_Phdr ph;
            if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_INTERP)
                f->interp = true;
        }
    }
    if (e)
        elf_end(e);
    close(fd);
    return true;
}

static int refuse(const char *exe, const char *why)
{
    fprintf(stderr, "leakwatch run: refusing to run %s: %s\n", exe, why);
    return 2;
}

/* Set-ID bits and file capabilities put the loader in secure-execution
 * mode, where LD_PRELOAD is ignored (for set-ID programs, in practice). */
static int check_secure_mode(const char *exe)
{
    struct stat st;
    if (stat(exe, &st) != 0)
        return 0;   /* exec will say */
    const char *bit = st.st_mode & S_ISUID ? "set-user-ID" : st.st_mode & S_ISGID ? "set-group-ID" : NULL;
    char why[256];
    if (bit) {
        snprintf(why, sizeof why, "it is %s, and the dynamic loader ignores LD_PRELOAD for such programs "
                 "(secure-execution mode): leakwatch would not be loaded into it", bit);
        return refuse(exe, why);
    }
    if (getxattr(exe, "security.capability", NULL, 0) > 0)
        return refuse(exe, "it has file capabilities, and the dynamic loader ignores LD_PRELOAD for such "
                           "programs (secure-execution mode): leakwatch would not be loaded into it");
    return 0;
}

/* "#!/path/interp args" -> /path/interp; false when not a script. */
static bool script_interpreter(const char *path, char *out, size_t size)
{
    char line[PATH_MAX + 8];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, line, sizeof line - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n < 3 || line[0] != '#' || line[1] != '!')
        return false;
    line[n] = 0;
    char *p = line + 2;
    p += strspn(p, " \t");
    size_t len = strcspn(p, " \t\n");
    return len > 0 && len < size && snprintf(out, size, "%.*s", (int)len, p) > 0;
}

static int check_elf(const char *exe, const struct elf_facts *f, const struct elf_facts *pre, const char *preload)
{
    char why[PATH_MAX + 256];
    if (!f->interp)
        return refuse(exe, "it is statically linked (no program interpreter): the dynamic loader never runs, "
                           "so LD_PRELOAD cannot load leakwatch into it");
    if (pre->elf && (f->class != pre->class || f->machine != pre->machine)) {
        snprintf(why, sizeof why, "it is a %d-bit program for ELF machine %d, and %s is %d-bit for machine %d: "
                 "the dynamic loader would skip the preload", f->class == ELFCLASS32 ? 32 : 64, f->machine, preload,
                 pre->class == ELFCLASS32 ? 32 : 64, pre->machine);
        return refuse(exe, why);
    }
    return 0;
}

int lwc_run_check_loadable(const char *exe, const char *preload)
{
    struct elf_facts pre, f;
    char path[PATH_MAX], next[PATH_MAX];
    read_elf_facts(preload, &pre);
    snprintf(path, sizeof path, "%s", exe);
    for (int depth = 0; depth <= MAX_SCRIPT_DEPTH; depth++) {
        if (!read_elf_facts(path, &f)) {
            fprintf(stderr, "leakwatch run: warning: cannot read %s to check that leakwatch can be preloaded "
                            "into it: %s\n", path, strerror(errno));
            return check_secure_mode(path);
        }
        if (f.elf) {
            int rc = check_secure_mode(path);
            return rc ? rc : check_elf(path, &f, &pre, preload);
        }
        if (!script_interpreter(path, next, sizeof next))
            return 0;   /* neither ELF nor script: exec will say what it is */
        snprintf(path, sizeof path, "%s", next);
    }
    return 0;
}

/* ---- the private tree ---- */

bool lwc_run_make_dirs(struct lwc_run_plan *p, bool reports)
{
    const char *tmpdir = getenv("TMPDIR");
    /* a socket path is at most 107 bytes: keep the tree short */
    if (!tmpdir || tmpdir[0] != '/' || strlen(tmpdir) > 48)
        tmpdir = "/tmp";
    snprintf(p->tmp, sizeof p->tmp, "%s/leakwatch-run.XXXXXX", tmpdir);
    if (!mkdtemp(p->tmp)) {
        fprintf(stderr, "leakwatch run: cannot make a directory in %s: %s\n", tmpdir, strerror(errno));
        p->tmp[0] = 0;
        return false;
    }
    bool fits = (size_t)snprintf(p->sockdir, sizeof p->sockdir, "%s/lw", p->tmp) < sizeof p->sockdir &&
                (size_t)snprintf(p->reports, sizeof p->reports, "%s/exit", p->tmp) < sizeof p->reports;
    if (!fits || mkdir(p->sockdir, 0700) != 0 || (reports && mkdir(p->reports, 0700) != 0)) {
        fprintf(stderr, "leakwatch run: cannot make a directory in %s: %s\n", p->tmp, strerror(errno));
        lwc_run_remove_dirs(p);
        return false;
    }
    return true;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void lwc_run_remove_dirs(struct lwc_run_plan *p)
{
    if (p->tmp[0])
        nftw(p->tmp, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    p->tmp[0] = 0;
}
