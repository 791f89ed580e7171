/* SPDX-License-Identifier: MIT */
#pragma once

/* The hostile-caller tests: callers of other uids (tests/hostile/hostile-caller, run through
 * setpriv), the daemon's identity on the bus, and bounds scaled for slow daemons. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

/* The unprivileged test users hostile-env.sh created: "coapt-a" .. "coapt-e". */
#define HOSTILE_N_USERS 5
const char *hostile_user(unsigned i);

/* How much slower than a plain build the daemon runs: $HOSTILE_TIME_SCALE if set, else 20 under
 * valgrind ($COAPCLIENTD_WRAPPER), 3 in a sanitizer build ($HOSTILE_SANITIZED=1), else 1. */
unsigned hostile_scale(void);
/* usec × hostile_scale(). */
uint64_t hostile_usec(uint64_t usec);

/* One hostile-caller process, run as user (NULL: root) with a pipe on its stdin and stdout. It
 * dies with the test (parent-death signal); closing its stdin tells it to leave. */
typedef struct HostileCaller {
        pid_t pid;
        int in_fd;  /* its stdin */
        int out_fd; /* its stdout */
        char buf[4096];
        size_t n_buf;
} HostileCaller;

/* args: the hostile-caller command and its arguments, NULL-terminated. */
int hostile_spawn(const char *user, const char *const *args, HostileCaller *ret);
/* The next line it prints (without the newline), waiting at most timeout_usec: -ETIMEDOUT, or
 * -EPIPE when it exited. */
int hostile_read_line(HostileCaller *c, char *line, size_t size, uint64_t timeout_usec);
/* Reads lines until one starts with prefix, echoing the others as TAP diagnostics. */
int hostile_expect(HostileCaller *c, const char *prefix, char *line, size_t size,
                   uint64_t timeout_usec);
/* Writes one line to its stdin. */
int hostile_send(HostileCaller *c, const char *line);
/* Closes its stdin and reaps it (SIGKILL after timeout_usec): its exit status, 128 + signal,
 * or -errno. A NULL-safe no-op on a caller never spawned. */
int hostile_stop(HostileCaller *c, uint64_t timeout_usec);

/* The pid that owns org.coapclientd.CoapClient1 on bus, or -errno (-ENXIO: nobody). */
int hostile_daemon_pid(sd_bus *bus, pid_t *ret);
/* The unique name of the connection of pid (its first one), or -ENOENT. */
int hostile_unique_name_of(sd_bus *bus, pid_t pid, char **ret);
/* A new connection to $COAPCLIENTD_BUS_ADDRESS. */
int hostile_bus_open(sd_bus **ret);
/* A Manager property of type u. */
int hostile_manager_u32(sd_bus *bus, const char *property, uint32_t *ret);
/* Polls it until it equals expected, at most timeout_usec; returns the last value read (or
 * UINT32_MAX if none could be). */
uint32_t hostile_await_manager_u32(sd_bus *bus, const char *property, uint32_t expected,
                                   uint64_t timeout_usec);
/* Checks that the daemon of $COAPCLIENTD_PID still owns the bus name; a TAP diagnostic if not. */
bool hostile_daemon_same(sd_bus *bus);
/* A connection of its own with a client called name, and a GET of the peer's "/": its result
 * code, or -errno with the bus error in error where the daemon refused. */
int hostile_get(const char *name, sd_bus_error *error);
