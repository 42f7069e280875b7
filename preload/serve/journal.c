/*
 * journal.c — LEAKWATCH_LOG=journal: the periodic summary line (monitor.c)
 * as a structured entry of the systemd journal, so that
 * `journalctl LEAKWATCH_LEAKED=1` lists the processes that leaked:
 *
 *   MESSAGE (the summary line), PRIORITY (4 when a thread is leaked or
 *   deadlocked, else 6), SYSLOG_IDENTIFIER=leakwatch, LEAKWATCH_PID,
 *   LEAKWATCH_LEAKED (1 or 0), LEAKWATCH_THREADS and one count per verdict
 *   (LEAKWATCH_RUNNING, _WAITING, _SUSPECT, _LEAKED_THREADS, _DEADLOCKED),
 *   LEAKWATCH_CREATED, _EXITED, _PEAK, and LEAKWATCH_DROPPED when entries
 *   were replaced before they could be sent.
 *
 * The preload does not link libsystemd: most programs never ask for the
 * journal, and a second copy of a library the program may load itself is
 * what the preload avoids. It is dlopen'ed (libsystemd.so.0) only here,
 * only when this target is chosen, by a thread of ours.
 *
 * Never blocking anyone on the journal: sd_journal_sendv writes to a
 * datagram socket that blocks while journald's queue is full. So the
 * monitor never calls it. It drops the newest entry into a one-slot mailbox
 * (replacing one not yet sent, and counting it) and returns; the writer, a
 * thread of ours (lw_internal_thread_create: its calls pass our hooks
 * straight through and no report shows it), takes the entry and sends it,
 * and is the only one that ever waits for journald.
 */
#include "serve/journal.h"
#include "base/util.h"
#include "record/internal.h"

#include <dlfcn.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define LIBSYSTEMD "libsystemd.so.0"
#define FIELDS 16

/* What one entry says; plain data, copied in and out of the mailbox. */
struct entry {
    char message[512];
    int pid;
    size_t threads, counts[LW_VERDICT_COUNT];
    uint64_t created, exited;
    uint32_t peak;
};

static struct {
    lw_lock_t lock;        /* guards everything below but `posted` */
    struct entry entry;
    bool full;             /* an entry waits to be sent */
    uint32_t dropped;      /* entries replaced before they were sent */
    bool writer_started;   /* in this process (a fork child starts its own) */
    bool unavailable;      /* libsystemd could not be loaded: entries are dropped */
    uint32_t posted;       /* the writer's futex word: bumped at every post */
} mailbox = { .lock = LW_LOCK_INIT };

typedef int (*sendv_fn)(const struct iovec *iov, int n);

bool lw_journal_is_target(const char *target)
{
    return strcmp(target, "journal") == 0;
}

/* ---- the writer thread ---- */

static void say_unavailable(const char *why)
{
    char line[400];
    int n = snprintf(line, sizeof line, "leakwatch: LEAKWATCH_LOG=journal: cannot use " LIBSYSTEMD " (%s): "
                     "nothing is logged\n", why ? why : "no sd_journal_sendv");
    (void)!write(STDERR_FILENO, line, n > 0 && (size_t)n < sizeof line ? (size_t)n : 0);
}

static sendv_fn load_sendv(void)
{
    void *lib = dlopen(LIBSYSTEMD, RTLD_NOW | RTLD_LOCAL);
    sendv_fn fn = lib ? (sendv_fn)dlsym(lib, "sd_journal_sendv") : NULL;
    if (!fn)
        say_unavailable(lib ? NULL : dlerror());
    return fn;
}

/* Sleep until a post newer than `seen`. */
static void wait_for_post(uint32_t seen)
{
    while (__atomic_load_n(&mailbox.posted, __ATOMIC_ACQUIRE) == seen)
        lw_raw_syscall6(SYS_futex, (long)&mailbox.posted, FUTEX_WAIT_PRIVATE, seen, 0, 0, 0);
}

/* The entry waiting in the mailbox, if any, and how many were dropped. */
static bool take_entry(struct entry *e, uint32_t *dropped)
{
    lw_lock(&mailbox.lock);
    bool full = mailbox.full;
    if (full) {
        *e = mailbox.entry;
        *dropped = mailbox.dropped;
        mailbox.full = false;
        mailbox.dropped = 0;
    }
    lw_unlock(&mailbox.lock);
    return full;
}

/* "NAME=value" into buf; the iovec for it. */
static struct iovec field(char *buf, size_t size, const char *name, unsigned long long value)
{
    int n = snprintf(buf, size, "%s=%llu", name, value);
    return (struct iovec){ buf, n > 0 && (size_t)n < size ? (size_t)n : 0 };
}

static void send_entry(sendv_fn sendv, const struct entry *e, uint32_t dropped)
{
    char text[FIELDS][64], message[sizeof e->message + 8];
    struct iovec iov[FIELDS + 1];
    int n = 0;
    size_t stuck = e->counts[LW_LEAKED] + e->counts[LW_DEADLOCKED];
    int len = snprintf(message, sizeof message, "MESSAGE=%s", e->message);
    iov[n++] = (struct iovec){ message, len > 0 ? strcspn(message, "\n") : 0 };
    iov[n++] = field(text[0], sizeof text[0], "PRIORITY", stuck ? 4 : 6);
    iov[n++] = (struct iovec){ (char *)"SYSLOG_IDENTIFIER=leakwatch", 27 };
    iov[n++] = field(text[1], sizeof text[1], "LEAKWATCH_PID", (unsigned long long)e->pid);
    iov[n++] = field(text[2], sizeof text[2], "LEAKWATCH_LEAKED", stuck > 0);
    iov[n++] = field(text[3], sizeof text[3], "LEAKWATCH_THREADS", e->threads);
    iov[n++] = field(text[4], sizeof text[4], "LEAKWATCH_RUNNING", e->counts[LW_RUNNING]);
    iov[n++] = field(text[5], sizeof text[5], "LEAKWATCH_WAITING", e->counts[LW_WAITING]);
    iov[n++] = field(text[6], sizeof text[6], "LEAKWATCH_SUSPECT", e->counts[LW_SUSPECT]);
    iov[n++] = field(text[7], sizeof text[7], "LEAKWATCH_LEAKED_THREADS", e->counts[LW_LEAKED]);
    iov[n++] = field(text[8], sizeof text[8], "LEAKWATCH_DEADLOCKED", e->counts[LW_DEADLOCKED]);
    iov[n++] = field(text[9], sizeof text[9], "LEAKWATCH_CREATED", e->created);
    iov[n++] = field(text[10], sizeof text[10], "LEAKWATCH_EXITED", e->exited);
    iov[n++] = field(text[11], sizeof text[11], "LEAKWATCH_PEAK", e->peak);
    if (dropped)
        iov[n++] = field(text[12], sizeof text[12], "LEAKWATCH_DROPPED", dropped);
    sendv(iov, n);   /* a full journal socket makes this wait: only this thread does */
}

static void *write_entries(void *arg)
{
    (void)arg;
    sendv_fn sendv = load_sendv();
    if (!sendv) {
        lw_lock(&mailbox.lock);
        mailbox.unavailable = true;
        mailbox.full = false;
        lw_unlock(&mailbox.lock);
        return NULL;
    }
    for (;;) {
        uint32_t seen = __atomic_load_n(&mailbox.posted, __ATOMIC_ACQUIRE), dropped;
        struct entry e;
        if (take_entry(&e, &dropped))
            send_entry(sendv, &e, dropped);
        else
            wait_for_post(seen);
    }
    return NULL;
}

/* A fork child has no writer: it starts its own at its first entry. */
static void forget_writer_in_child(void)
{
    mailbox.lock.word = 0;
    mailbox.full = false;
    mailbox.dropped = 0;
    mailbox.writer_started = false;
}

/* ---- the monitor's side ---- */

static void post(const struct entry *e)
{
    lw_lock(&mailbox.lock);
    if (mailbox.full)
        mailbox.dropped++;
    mailbox.entry = *e;
    mailbox.full = !mailbox.unavailable;
    bool start = !mailbox.writer_started && !mailbox.unavailable;
    mailbox.writer_started = true;
    lw_unlock(&mailbox.lock);
    __atomic_add_fetch(&mailbox.posted, 1, __ATOMIC_RELEASE);
    lw_raw_syscall6(SYS_futex, (long)&mailbox.posted, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
    if (!start)
        return;
    static bool atfork_registered;
    if (!atfork_registered)
        atfork_registered = pthread_atfork(NULL, NULL, forget_writer_in_child) == 0;
    if (lw_internal_thread_create(write_entries, NULL) != 0) {
        say_unavailable("no thread to write with");
        lw_lock(&mailbox.lock);
        mailbox.unavailable = true;
        mailbox.full = false;
        lw_unlock(&mailbox.lock);
    }
}

void lw_journal_log(const char *line, const struct lw_snapshot *snap, const struct lw_analysis *a)
{
    struct entry e = { .pid = snap->pid, .threads = snap->nthreads, .created = snap->created,
                       .exited = snap->exited, .peak = snap->peak };
    snprintf(e.message, sizeof e.message, "%s", line);
    memcpy(e.counts, a->counts, sizeof e.counts);
    post(&e);
}
