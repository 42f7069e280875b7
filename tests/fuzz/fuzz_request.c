/*
 * fuzz_request.c — libFuzzer target for the request parser of the preload's
 * socket (preload/serve/request.c), without a socket: the input's first byte seeds
 * how the rest is cut into pieces (as recv() may deliver it: 1..64 bytes at a
 * time, never more than the server's buffer has room for), the pieces are fed
 * to lw_request_examine the way server.c's read_request does, and every
 * outcome is compared with reference.h's plain reading of the protocol. The
 * bytes of the buffer past what was "received" are poisoned, so the parser
 * reading or writing beyond them is an ASan report, not luck.
 *
 * Built and run by scripts/fuzz (clang -fsanitize=fuzzer,address,undefined).
 */
#include "reference.h"
#include "serve/request.h"

#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_request: %s\n", what);
    abort();
}

static void must(bool ok, const char *what)
{
    if (!ok)
        fail(what);
}

/* A small xorshift, so that the cutting is a function of the input alone. */
static size_t next_piece(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return 1 + x % 64;
}

static enum lw_request_verb verb_named(const char *name)
{
    if (!name)
        return LW_VERB_UNKNOWN;
    if (strcmp(name, "ping") == 0)
        return LW_VERB_PING;
    if (strcmp(name, "status") == 0)
        return LW_VERB_STATUS;
    if (strcmp(name, "threads") == 0)
        return LW_VERB_THREADS;
    return LW_VERB_HOOKS;
}

static void check_line(const char *buf, size_t received, bool more, const struct expected_request *e,
                       const unsigned char *stream)
{
    must(e->outcome == EXPECT_LINE, "a line was accepted that the protocol refuses");
    must(strlen(buf) == e->line_len, "the accepted line has the wrong length");
    must(memcmp(buf, stream, e->line_len) == 0, "the accepted line differs from what was sent");
    must(more == (received > e->newline_at + 1), "`more` is wrong about bytes after the newline");
    must(lw_request_verb(buf) == verb_named(e->verb), "the verb was misread");
}

static void check_bad(const char *error, const struct expected_request *e)
{
    must(error != NULL && *error != 0, "a bad request came without an error sentence");
    if (e->outcome == EXPECT_NOT_PRINTABLE)
        must(strstr(error, "printable ASCII") != NULL, "non-printable bytes refused for another reason");
    else if (e->outcome == EXPECT_TOO_LONG)
        must(strstr(error, "longer than 256") != NULL, "an overlong line refused for another reason");
    else
        fail("a request was refused that the protocol accepts (or that was still incomplete)");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint32_t state = 0x9e3779b9u ^ data[0];
    const unsigned char *stream = data + 1;
    size_t stream_len = size - 1;
    struct expected_request e = expect_request(stream, stream_len);

    char *buf = malloc(LW_REQUEST_MAX + 1);
    if (!buf)
        return 0;
    size_t received = 0;
    for (;;) {
        size_t piece = next_piece(&state);
        size_t room = LW_REQUEST_MAX - received;
        if (piece > room)
            piece = room;
        if (piece > stream_len - received)
            piece = stream_len - received;
        if (piece == 0) {   /* the client hung up before a newline */
            must(e.outcome == EXPECT_HANG_UP, "the parser wanted more after a complete or bad request");
            break;
        }
        memcpy(buf + received, stream + received, piece);
        received += piece;
        bool more = false;
        const char *error = NULL;
        ASAN_POISON_MEMORY_REGION(buf + received, LW_REQUEST_MAX + 1 - received);
        enum lw_request_progress progress = lw_request_examine(buf, received, &more, &error);
        ASAN_UNPOISON_MEMORY_REGION(buf + received, LW_REQUEST_MAX + 1 - received);
        if (progress == LW_REQUEST_LINE) {
            check_line(buf, received, more, &e, stream);
            break;
        }
        if (progress == LW_REQUEST_BAD) {
            check_bad(error, &e);
            break;
        }
        must(progress == LW_REQUEST_INCOMPLETE, "an unknown progress value");
        must(received < LW_REQUEST_MAX, "the parser wants more than the buffer can hold");
    }
    free(buf);
    return 0;
}
