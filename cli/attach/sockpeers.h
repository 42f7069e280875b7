/*
 * sockpeers.h — which UNIX sockets are each other's other end (sockpeers.c),
 * from the kernel's socket diagnostics (NETLINK_SOCK_DIAG, UDIAG_SHOW_PEER):
 * what the preload learns by hooking socketpair(), an attach reads. A
 * connected pair whose both ends this process holds is a socketpair: an
 * in-process channel. And a process that holds a UNIX socket to another
 * process may have fds in flight to it (SCM_RIGHTS, invisible in any fd
 * table): its channels then count as possibly held elsewhere.
 */
#ifndef LWA_SOCKPEERS_H
#define LWA_SOCKPEERS_H

#include "core/fdsnap.h"

#include <sys/types.h>

struct lwa_sockpeers;

/* The UNIX sockets of pid and their peers (NULL: none known, out of memory). */
struct lwa_sockpeers *lwa_sockpeers_read(pid_t pid);
void lwa_sockpeers_free(struct lwa_sockpeers *p);

/* As the history the snapshot's fd part asks (fdsnap.h); NULL for NULL. */
const struct lw_fd_history *lwa_sockpeers_history(struct lwa_sockpeers *p);

#endif
