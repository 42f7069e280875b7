/*
 * watch.c — `leakwatch watch PID`: a summary of one process refreshed every
 * interval, like top. The summary is status PID's (counts by verdict,
 * threads, history and growth alarm, suppressions) followed by one line per
 * group of stuck threads; a group not seen at the previous refresh is marked
 * "new", one that grew says by how much.
 *
 * On a terminal each refresh is drawn in place on the alternate screen
 * (plain ANSI sequences, no curses), cut to the window's size, and the
 * keyboard is read in raw mode (termios: no echo, no line buffering, no
 * signal keys) so that q or Ctrl-C quit; the terminal is restored however
 * watch ends. Without a terminal, one summary per interval is printed with
 * no escape codes. Signals are blocked except inside ppoll, so a SIGINT or
 * SIGTERM always ends the wait at once and never interrupts drawing.
 *
 * Every write is checked: output that cannot be written ends watch (exit 2
 * and a message), a reader that went away (a closed pipe) ends it quietly
 * (exit 0). Each summary's strings are made printable first (they come
 * from the process). Each question has its deadline (deadline.h), whose
 * watchdog, should it fire, puts the terminal back first.
 */
#include "verbs.h"
#include "client.h"
#include "deadline.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define ALT_SCREEN_ON "\033[?1049h\033[?25l"   /* alternate screen, cursor hidden */
#define ALT_SCREEN_OFF "\033[?25h\033[?1049l"
#define HOME_CLEAR "\033[H\033[2J"
#define NEW_MARK "\033[1;7m"                    /* bold, reverse video */
#define RESET "\033[0m"

static volatile sig_atomic_t quit_signal, resized;
static int output_error;   /* errno of the first write to stdout that failed, 0 if none */

static void on_quit(int sig) { quit_signal = sig; }
static void on_resize(int sig) { (void)sig; resized = 1; }

struct seen {
    char *key;
    size_t count;
};

struct watch {
    const struct lwc_options *o;
    bool tty;              /* stdout: redraw in place */
    bool keys;             /* stdin: a terminal in raw mode */
    bool stdin_open;
    struct termios saved;
    struct lwc_style st;
    sigset_t waitmask;     /* the mask inside ppoll: our signals unblocked */
    struct seen *prev;     /* stuck groups at the previous refresh */
    size_t nprev;
    bool have_prev;
};

/* ---- the terminal ---- */

static void write_all(const char *s, size_t n)
{
    while (n && !output_error) {
        ssize_t k = write(STDOUT_FILENO, s, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            output_error = k < 0 ? errno : EIO;
            return;
        }
        s += k;
        n -= (size_t)k;
    }
}

static void terminal_enter(struct watch *w)
{
    if (w->keys) {
        struct termios raw = w->saved;
        raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO | ISIG | IEXTEN);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    if (w->tty)
        write_all(ALT_SCREEN_ON, strlen(ALT_SCREEN_ON));
}

static void terminal_leave(struct watch *w)
{
    if (w->tty)
        write_all(ALT_SCREEN_OFF, strlen(ALT_SCREEN_OFF));
    if (w->keys)
        tcsetattr(STDIN_FILENO, TCSANOW, &w->saved);
}

/* The watchdog's (deadline.c), in a signal handler: write and tcsetattr
 * only. */
static const struct watch *watched;

static void terminal_leave_now(void)
{
    if (watched && watched->tty)
        (void)!write(STDOUT_FILENO, ALT_SCREEN_OFF, strlen(ALT_SCREEN_OFF));
    if (watched && watched->keys)
        tcsetattr(STDIN_FILENO, TCSANOW, &watched->saved);
}

static void window_size(int *rows, int *cols)
{
    struct winsize ws;
    *rows = 24;
    *cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

/* Write one line cut to `cols` columns (escape sequences take none, UTF-8
 * continuation bytes neither), closing any colour it cut off. */
static void write_clipped_line(const char *line, size_t len, int cols)
{
    size_t i = 0;
    int used = 0;
    bool escapes = false, cut = false;
    while (i < len) {
        if (line[i] == '\033') {
            escapes = true;
            while (i < len && !(line[i] >= '@' && line[i] <= '~' && line[i] != '['))
                i++;
            i++;
            continue;
        }
        if (((unsigned char)line[i] & 0xc0) != 0x80 && used++ == cols) {
            cut = true;
            break;
        }
        i++;
    }
    write_all(line, i);
    if (cut && escapes)
        write_all(RESET, strlen(RESET));
}

/* The frame, drawn from the top left, at most rows - 1 lines. */
static void draw_in_place(const char *frame, size_t len)
{
    int rows, cols, row = 0;
    window_size(&rows, &cols);
    write_all(HOME_CLEAR, strlen(HOME_CLEAR));
    for (size_t start = 0; start < len && row < rows - 1; row++) {
        const char *nl = memchr(frame + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - frame) : len;
        write_clipped_line(frame + start, end - start, cols);
        write_all("\n", 1);
        start = end + 1;
    }
}

/* ---- asking ---- */

enum ask_result { ASKED, GONE, FAILED };

static enum ask_result ask(pid_t pid, json_object **reply, char *err, size_t errsize)
{
    struct lwc_target t;
    enum lwc_failure why = LWC_NOT_LISTENING;
    *reply = NULL;
    if (lwc_find_target(pid, &t, err, errsize)) {
        *reply = lwc_ask(&t, "threads", &why, err, errsize);
        lwc_clear_target(&t);
    }
    if (!*reply)
        lwc_deadline_stop();
    return *reply ? ASKED : why == LWC_FAILED ? FAILED : GONE;
}

/* ---- one summary ---- */

static const char *first_function(json_object *frames)
{
    for (size_t i = 0; i < lwc_len(frames); i++) {
        const char *fn = lwc_str(json_object_array_get_idx(frames, i), "function", NULL);
        if (fn)
            return fn;
    }
    return NULL;
}

static const struct seen *seen_before(const struct watch *w, const char *key)
{
    for (size_t i = 0; i < w->nprev; i++)
        if (strcmp(w->prev[i].key, key) == 0)
            return &w->prev[i];
    return NULL;
}

/* "new   5 leaked (+2), cond, parked 10.0s to 14.0s: waits in f, made in g  (e.g. tid 101 "worker")" */
static void print_group_line(FILE *f, const struct watch *w, const struct lwc_group *g)
{
    const struct seen *before = seen_before(w, g->key);
    bool is_new = w->have_prev && !before;
    json_object *t = g->first, *wait = lwc_get(t, "wait");
    char shortest[32], longest[32];
    lwc_format_seconds(shortest, sizeof shortest, g->shortest);
    lwc_format_seconds(longest, sizeof longest, g->longest);
    fprintf(f, "%s%s%s %zu %s", is_new && w->st.color ? NEW_MARK : "", is_new ? "new" : "   ",
            is_new && w->st.color ? RESET : "", g->count, lwc_str(t, "verdict", "?"));
    if (before && g->count > before->count)
        fprintf(f, " (+%zu)", g->count - before->count);
    if (wait)
        fprintf(f, ", %s, parked %s%s%s", lwc_str(wait, "kind", "?"), strcmp(shortest, longest) ? shortest : "",
                strcmp(shortest, longest) ? " to " : "", longest);
    const char *at = first_function(lwc_array(t, "wait_stack")), *made = first_function(lwc_array(t, "create_stack"));
    if (at || made)
        fprintf(f, ":%s%s%s%s%s", at ? " waits in " : "", at ? at : "", at && made ? "," : "",
                made ? " made in " : "", made ? made : "");
    const char *name = lwc_str(t, "name", "");
    fprintf(f, "  (%stid %lld%s%s%s)\n", g->count > 1 ? "e.g. " : "", (long long)lwc_int(t, "tid", 0),
            *name ? " \"" : "", name, *name ? "\"" : "");
}

static void forget_groups(struct watch *w)
{
    for (size_t i = 0; i < w->nprev; i++)
        free(w->prev[i].key);
    free(w->prev);
    w->prev = NULL;
    w->nprev = 0;
}

/* The stuck groups, then remember them for the next refresh. */
static void print_stuck_groups(FILE *f, struct watch *w, json_object *view)
{
    size_t ng = 0, nstuck = 0;
    struct lwc_group *groups = lwc_group_threads(lwc_array(view, "threads"), &ng);
    while (nstuck < ng && groups[nstuck].rank <= LWC_RANK_SUSPECT)
        nstuck++;
    if (nstuck == 0)
        fprintf(f, "no stuck threads\n");
    else
        fprintf(f, "stuck groups: %zu\n", nstuck);
    for (size_t i = 0; i < nstuck; i++)
        print_group_line(f, w, &groups[i]);
    forget_groups(w);
    w->prev = calloc(nstuck ? nstuck : 1, sizeof *w->prev);
    for (size_t i = 0; w->prev && i < nstuck; i++) {
        w->prev[w->nprev].count = groups[i].count;
        w->prev[w->nprev].key = groups[i].key;
        groups[i].key = NULL;   /* kept */
        w->nprev++;
    }
    w->have_prev = true;
    lwc_free_groups(groups, ng);
}

static void print_title(FILE *f, const struct watch *w)
{
    char clock[16] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm))
        strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    fprintf(f, "leakwatch watch %d, every %gs, %s%s\n", (int)w->o->pid, w->o->interval, clock,
            w->keys ? "  (q quits)" : "");
}

/* One summary as text (malloc'ed) from a reply, or an error line. */
static char *render(struct watch *w, json_object *reply, const char *error, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) {
        lwc_deadline_stop();
        return NULL;
    }
    print_title(f, w);
    json_object *view = reply ? lwc_explain(reply, w->o->supp) : NULL;
    lwc_deadline_stop();   /* the question is answered: what is left is drawing */
    if (view && lwc_view_printable(view)) {
        lwc_render_status_one(f, view, &w->st);
        fprintf(f, "\n");
        print_stuck_groups(f, w, view);
    } else if (reply) {
        fprintf(f, "could not show pid %d: out of memory\n", (int)w->o->pid);
    } else {
        fprintf(f, "could not ask pid %d: %s\n", (int)w->o->pid, error);
    }
    json_object_put(view);
    fclose(f);
    return buf;
}

static void show(struct watch *w, json_object *reply, const char *error, bool first)
{
    size_t len = 0;
    char *frame = render(w, reply, error, &len);
    if (!frame)
        return;
    if (w->tty) {
        draw_in_place(frame, len);
    } else {
        if (!first)
            write_all("\n", 1);
        write_all(frame, len);
    }
    free(frame);
}

/* ---- waiting between refreshes ---- */

enum next { REFRESH, QUIT };

/* Keys: q, Q, Ctrl-C and Ctrl-D quit; anything else is ignored. */
static enum next read_keys(struct watch *w)
{
    char keys[64];
    ssize_t n = read(STDIN_FILENO, keys, sizeof keys);
    if (n <= 0) {
        w->stdin_open = n < 0 && (errno == EINTR || errno == EAGAIN);
        return REFRESH;
    }
    for (ssize_t i = 0; i < n; i++)
        if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 3 || keys[i] == 4)
            return QUIT;
    return REFRESH;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep until the next refresh is due, a key says quit, or a signal does.
 * true: quit. A resized window is redrawn at once. */
static bool wait_interval(struct watch *w)
{
    double until = now_s() + w->o->interval;
    for (;;) {
        double left = until - now_s();
        if (quit_signal)
            return true;
        if (left <= 0 || resized) {
            resized = 0;
            return false;
        }
        struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
        struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
        int ready = ppoll(&p, w->keys && w->stdin_open ? 1 : 0, &ts, &w->waitmask);
        if (ready > 0 && read_keys(w) == QUIT)
            return true;
    }
}

static void catch_signals(struct watch *w, sigset_t *old)
{
    struct sigaction quit = { .sa_handler = on_quit }, resize = { .sa_handler = on_resize };
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGWINCH);
    sigprocmask(SIG_BLOCK, &block, old);
    w->waitmask = *old;
    sigdelset(&w->waitmask, SIGINT);
    sigdelset(&w->waitmask, SIGTERM);
    sigdelset(&w->waitmask, SIGHUP);
    sigdelset(&w->waitmask, SIGWINCH);
    sigaction(SIGINT, &quit, NULL);
    sigaction(SIGTERM, &quit, NULL);
    sigaction(SIGHUP, &quit, NULL);
    sigaction(SIGWINCH, &resize, NULL);
}

/* Refresh until told to quit (EXIT_FINE) or the process goes (EXIT_USAGE). */
static int watch_loop(struct watch *w, json_object *reply, char *gone, size_t gonesize)
{
    char err[1024] = "";
    long shown = 0;
    for (;;) {
        show(w, reply, err, shown == 0);
        json_object_put(reply);
        if (output_error)
            return EXIT_FINE;   /* (said by lwc_cmd_watch) */
        if (++shown == w->o->count)
            return EXIT_FINE;
        if (wait_interval(w))
            return EXIT_FINE;
        enum ask_result r = ask(w->o->pid, &reply, err, sizeof err);
        if (r == GONE) {
            snprintf(gone, gonesize, "pid %d went away (%s)", (int)w->o->pid, err);
            return EXIT_USAGE;
        }
    }
}

int lwc_cmd_watch(const struct lwc_options *o)
{
    struct watch w = { .o = o, .tty = isatty(STDOUT_FILENO), .st = lwc_style_for(STDOUT_FILENO) };
    json_object *reply = lwc_ask_pid(o->pid, "threads");
    if (!reply)
        return EXIT_USAGE;
    w.keys = w.tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &w.saved) == 0;
    w.stdin_open = true;
    sigset_t old;
    catch_signals(&w, &old);
    watched = &w;
    lwc_deadline_on_expiry(terminal_leave_now);
    terminal_enter(&w);
    char gone[1200] = "";
    int rc = watch_loop(&w, reply, gone, sizeof gone);
    terminal_leave(&w);
    lwc_deadline_on_expiry(NULL);
    watched = NULL;
    sigprocmask(SIG_SETMASK, &old, NULL);
    forget_groups(&w);
    if (rc != EXIT_FINE)
        fprintf(stderr, "leakwatch watch: %s\n", gone);
    if (output_error && output_error != EPIPE) {
        fprintf(stderr, "leakwatch watch: cannot write the output: %s\n", strerror(output_error));
        return EXIT_USAGE;
    }
    return rc;   /* (a reader that went away ends watch quietly) */
}
