/*
 * output.h — everything the preload writes by itself (a line on the
 * program's stderr, the LEAKWATCH_LOG line to a file, a FIFO or syslog, the
 * exit report's file), written so that it can never block: files opened
 * with O_NONBLOCK and checked for what they are, writes bounded by a
 * deadline, what cannot be written in time dropped. None of it may be
 * called with a lock held that the program's threads can need.
 */
#ifndef LW_OUTPUT_H
#define LW_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#define LW_OUTPUT_DEADLINE_MS 100   /* the longest any one write waits for room */

/* A line on the program's stderr (fd 2 as it is now, from any thread, ours
 * included): dropped when fd 2 is closed, a pipe nobody reads or that is
 * full, a terminal that is stopped. Never raises SIGPIPE; errno untouched. */
void lw_output_stderr(const char *buf, size_t len);

/* One message to the system log (a datagram to /dev/log, as syslog(3)
 * sends it, LOG_DAEMON | LOG_INFO), dropped when the log daemon is not
 * there or its queue is full. errno untouched. */
void lw_output_syslog(const char *message);

enum lw_append {
    LW_APPEND_WRITTEN,
    LW_APPEND_DROPPED,   /* nobody reading, or no room within the deadline */
    LW_APPEND_REFUSED,   /* the path names something else than what was asked for */
    LW_APPEND_FAILED,    /* cannot be opened (errno says why) */
};

/* Append buf to path: a regular file (created 0600 if missing, never
 * through a symlink), or, with fifo, an existing FIFO or character device
 * written without blocking (an atomic line, or nothing). */
enum lw_append lw_output_append(const char *path, bool fifo, const char *buf, size_t len);

/* Create (or truncate) the regular file path, 0600, never through a
 * symlink, and write buf into it whole. 0, or -1 with errno set (EINVAL:
 * the path names something else than a regular file); a file left
 * half-written is removed. */
int lw_output_create(const char *path, const char *buf, size_t len);

#endif
