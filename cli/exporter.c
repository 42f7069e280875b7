/*
 * exporter.c — `leakwatch exporter`: the families of `leakwatch metrics`
 * served over HTTP at /metrics, for Prometheus to scrape (default
 * 127.0.0.1:9469, --listen). libmicrohttpd does the HTTP, a thread per
 * connection, so concurrent scrapers never wait for each other.
 *
 * Every scrape asks every process anew, each from a thread of its own, and
 * waits for the answers until the scrape's deadline: --budget (default 5 s),
 * or less when Prometheus says its own scrape timeout is shorter
 * (X-Prometheus-Scrape-Timeout-Seconds). A process that has not answered by
 * then is written as leakwatch_up 0 with its ask time: a hung process costs
 * one timed-out sample, never a stalled scrape. Its asking thread is left
 * to finish on its own (every ask is bounded by the budget too, through
 * LEAKWATCH_TIMEOUT_MS) and its late answer is dropped. Two families are
 * the exporter's own: leakwatch_ask_duration_seconds per process and
 * leakwatch_scrape_duration_seconds.
 */
#include "client.h"
#include "deadline.h"
#include "metrics.h"
#include "verbs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define DEFAULT_LISTEN "127.0.0.1:9469"
#define CONNECTION_LIMIT 64
#define IDLE_CONNECTION_SECONDS 30
#define PROMETHEUS_MARGIN 0.5   /* seconds left to Prometheus for the transfer */
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct scrape;

/* One process asked in one scrape. */
struct ask {
    struct scrape *scrape;
    struct lwc_target target;
    struct lwc_metrics_proc proc;
    double seconds;          /* how long it took, or the deadline's budget when late */
    bool listed;             /* answered, or failed as a live process: it gets series */
    bool done;
};

/* What the asking threads share with the scrape that started them. The
 * last of them (or the scrape) to let go frees it. */
struct scrape {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    size_t pending;          /* asks not done */
    size_t refs;             /* the scrape, and each asking thread still running */
    bool closed;             /* the scrape stopped waiting: late answers are dropped */
    const struct lwc_suppressions *supp;
    struct ask *asks;
    size_t n;
};

static const struct lwc_suppressions *exporter_supp;
static double exporter_budget;
/* json-c and the symbolizer (libelf, libdw) are not shared between threads:
 * explaining a reply (only needed with suppressions) takes turns. */
static pthread_mutex_t explain_lock = PTHREAD_MUTEX_INITIALIZER;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- asking, one thread per process ---- */

static void release_scrape(struct scrape *s)
{
    pthread_mutex_lock(&s->lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (!last)
        return;
    for (size_t i = 0; i < s->n; i++)
        lwc_clear_target(&s->asks[i].target);
    free(s->asks);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
    free(s);
}

/* Ask one process; the result is kept only if the scrape still waits. */
static void *ask_one(void *arg)
{
    struct ask *a = arg;
    struct scrape *s = a->scrape;
    struct lwc_metrics_proc proc = { .pid = a->target.pid };
    char err[1024];
    enum lwc_failure why;
    double start = now_seconds();
    json_object *reply = lwc_ask(&a->target, "threads", &why, err, sizeof err);
    if (reply) {
        bool explain = lwc_supp_count(s->supp) > 0;
        if (explain)
            pthread_mutex_lock(&explain_lock);
        lwc_metrics_fill(&proc, reply, s->supp);
        if (explain)
            pthread_mutex_unlock(&explain_lock);
        json_object_put(reply);
    } else if (why == LWC_FAILED) {
        lwc_metrics_unanswered(&proc);
    }
    pthread_mutex_lock(&s->lock);
    if (!s->closed) {
        a->proc = proc;
        a->listed = reply || why == LWC_FAILED;   /* gone, stale or not ours: not listed */
        a->seconds = now_seconds() - start;
        a->done = true;
    }
    s->pending--;
    pthread_cond_signal(&s->changed);
    pthread_mutex_unlock(&s->lock);
    release_scrape(s);
    return NULL;
}

static void start_asking(struct scrape *s)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (size_t i = 0; i < s->n; i++) {
        pthread_t th;
        pthread_mutex_lock(&s->lock);
        s->refs++;
        s->pending++;
        pthread_mutex_unlock(&s->lock);
        if (pthread_create(&th, &attr, ask_one, &s->asks[i]) != 0) {
            pthread_mutex_lock(&s->lock);
            s->refs--;
            s->pending--;
            pthread_mutex_unlock(&s->lock);
            s->asks[i].proc.pid = s->asks[i].target.pid;
            lwc_metrics_unanswered(&s->asks[i].proc);
            s->asks[i].listed = s->asks[i].done = true;
        }
    }
    pthread_attr_destroy(&attr);
}

/* Wait for every answer until the deadline (CLOCK_MONOTONIC seconds); then
 * stop waiting: the asks not done are late. */
static void wait_for_answers(struct scrape *s, double deadline)
{
    struct timespec until = { (time_t)deadline, (long)((deadline - floor(deadline)) * 1e9) };
    pthread_mutex_lock(&s->lock);
    while (s->pending > 0 && pthread_cond_timedwait(&s->changed, &s->lock, &until) != ETIMEDOUT)
        ;
    s->closed = true;
    pthread_mutex_unlock(&s->lock);
}

/* The late asks become timed-out samples: down, with the whole budget. */
static void mark_late(struct scrape *s, double budget)
{
    for (size_t i = 0; i < s->n; i++) {
        struct ask *a = &s->asks[i];
        if (a->done)
            continue;
        a->proc.pid = a->target.pid;
        lwc_metrics_unanswered(&a->proc);
        a->seconds = budget;
        a->listed = true;
    }
}

/* ---- rendering ---- */

static void print_own_families(FILE *out, const struct lwc_metrics_proc *procs, const double *seconds, size_t n,
                               double scrape_seconds)
{
    lwc_metrics_family(out, "leakwatch_ask_duration_seconds", "gauge",
                       "Seconds this scrape took to ask and judge the process (the budget when it did not answer "
                       "in time).");
    for (size_t i = 0; i < n; i++) {
        lwc_metrics_series(out, "leakwatch_ask_duration_seconds", &procs[i], NULL, NULL);
        fprintf(out, " %.6f\n", seconds[i]);
    }
    lwc_metrics_family(out, "leakwatch_scrape_duration_seconds", "gauge",
                       "Seconds the exporter took to gather this scrape.");
    fprintf(out, "leakwatch_scrape_duration_seconds %.6f\n", scrape_seconds);
}

/* The listed processes, in pid order (lwc_list_targets sorts them). */
static char *render(const struct scrape *s, double scrape_seconds, size_t *len)
{
    struct lwc_metrics_proc *procs = calloc(s->n ? s->n : 1, sizeof *procs);
    double *seconds = calloc(s->n ? s->n : 1, sizeof *seconds);
    char *text = NULL;
    FILE *out = procs && seconds ? open_memstream(&text, len) : NULL;
    if (out) {
        size_t k = 0;
        for (size_t i = 0; i < s->n; i++) {
            if (!s->asks[i].listed)
                continue;
            procs[k] = s->asks[i].proc;
            seconds[k++] = s->asks[i].seconds;
        }
        lwc_metrics_print(out, procs, k);
        print_own_families(out, procs, seconds, k, scrape_seconds);
        if (fclose(out) != 0) {
            free(text);
            text = NULL;
        }
    }
    free(procs);
    free(seconds);
    return text;
}

/* ---- one scrape ---- */

static struct scrape *new_scrape(void)
{
    struct scrape *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    struct lwc_target *targets;
    s->n = lwc_list_targets(&targets);
    s->asks = calloc(s->n ? s->n : 1, sizeof *s->asks);
    if (!s->asks) {
        lwc_free_targets(targets, s->n);
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < s->n; i++) {
        s->asks[i].scrape = s;
        s->asks[i].target = targets[i];   /* the paths move into the ask */
    }
    free(targets);
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);   /* the deadline's clock */
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, &monotonic);
    pthread_condattr_destroy(&monotonic);
    s->refs = 1;
    s->supp = exporter_supp;
    return s;
}

/* The scrape's text (malloc'ed), within budget seconds; NULL when out of
 * memory. */
static char *scrape(double budget, size_t *len)
{
    double start = now_seconds();
    struct scrape *s = new_scrape();
    if (!s)
        return NULL;
    start_asking(s);
    wait_for_answers(s, start + budget);
    mark_late(s, budget);
    char *text = render(s, now_seconds() - start, len);
    release_scrape(s);
    return text;
}

/* --budget, or less when Prometheus says it gives up sooner. */
static double budget_for(struct MHD_Connection *c)
{
    const char *header = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Prometheus-Scrape-Timeout-Seconds");
    char *end;
    double theirs = header ? strtod(header, &end) : 0;
    if (!header || end == header || !isfinite(theirs) || theirs - PROMETHEUS_MARGIN >= exporter_budget)
        return exporter_budget;
    return theirs - PROMETHEUS_MARGIN > 0.1 ? theirs - PROMETHEUS_MARGIN : 0.1;
}

/* ---- HTTP ---- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    char *body = strdup(text);
    return body ? respond(c, status, "text/plain; charset=utf-8", body, strlen(body)) : MHD_NO;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)cls, (void)version, (void)upload, (void)upload_size, (void)state;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/") == 0)
        return respond_text(c, MHD_HTTP_OK, "leakwatch exporter: the metrics are at /metrics\n");
    if (strcmp(url, "/metrics") != 0)
        return respond_text(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
    size_t len = 0;
    char *text = scrape(budget_for(c), &len);
    if (!text)
        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return respond(c, MHD_HTTP_OK, CONTENT_TYPE, text, len);
}

/* ---- the verb ---- */

/* "HOST:PORT", "[V6]:PORT" or ":PORT" (every IPv4 address). */
static bool parse_listen(const char *spec, struct sockaddr_storage *ss, bool *v6)
{
    const char *colon = strrchr(spec, ':');
    char host[64];
    if (!colon || (size_t)(colon - spec) >= sizeof host)
        return false;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535)
        return false;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1;
    }
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    *v6 = false;
    return !*host ? (in4->sin_addr.s_addr = htonl(INADDR_ANY), true) : inet_pton(AF_INET, host, &in4->sin_addr) == 1;
}

/* The asks' own socket deadline is the budget: a late ask's thread ends
 * soon after its scrape gave up on it. */
static void bound_asks_by(double budget)
{
    char ms[32];
    snprintf(ms, sizeof ms, "%ld", (long)ceil(budget * 1000));
    setenv("LEAKWATCH_TIMEOUT_MS", ms, 1);
}

static struct MHD_Daemon *start_daemon(const struct sockaddr_storage *ss, bool v6)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     (v6 ? MHD_USE_IPv6 : 0);
    return MHD_start_daemon(flags, 0, NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_CONNECTION_SECONDS, MHD_OPTION_END);
}

static void announce(FILE *out, struct MHD_Daemon *d, const char *spec, bool v6)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(strrchr(spec, ':') - spec), spec);
    fprintf(out, "leakwatch exporter: serving http://%s:%u/metrics\n", *host ? host : (v6 ? "[::]" : "0.0.0.0"),
            info ? (unsigned)info->port : 0u);
    fflush(out);
}

int lwc_cmd_exporter(const struct lwc_options *o)
{
    const char *spec = o->listen ? o->listen : DEFAULT_LISTEN;
    struct sockaddr_storage ss;
    bool v6;
    if (!parse_listen(spec, &ss, &v6)) {
        fprintf(stderr, "leakwatch exporter: --listen: not HOST:PORT, [IPV6]:PORT or :PORT: '%s'\n", spec);
        return EXIT_USAGE;
    }
    exporter_supp = o->supp;
    exporter_budget = o->budget;
    bound_asks_by(o->budget);
    lwc_deadline_without_watchdog();
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    signal(SIGPIPE, SIG_IGN);                  /* a scraper that hung up is libmicrohttpd's to notice */
    pthread_sigmask(SIG_BLOCK, &stop, NULL);   /* every thread of ours inherits it; main waits for them */
    struct MHD_Daemon *d = start_daemon(&ss, v6);
    if (!d) {
        fprintf(stderr, "leakwatch exporter: cannot listen on %s: %s\n", spec, strerror(errno));
        return EXIT_USAGE;
    }
    announce(stderr, d, spec, v6);
    int sig;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    return EXIT_FINE;
}
