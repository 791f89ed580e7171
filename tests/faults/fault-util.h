/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers of the fault-injection tests: the udp-relay and bad-peer tools, their stats files,
 * and probes of a process (fds, RSS). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A path in $TEST_TMPDIR (or /tmp), malloc()ed. */
char *fault_tmp_path(const char *name);

/* Starts udp-relay ($FAULTS_UDP_RELAY) towards 127.0.0.1:peer_port with the extra arguments
 * (NULL-terminated), writing its stats to stats_path. */
int fault_relay_spawn(uint16_t peer_port, const char *stats_path, const char *const *args,
                      uint16_t *ret_port, pid_t *ret_pid);
/* Starts bad-peer ($FAULTS_BAD_PEER) in mode, writing its stats to stats_path. */
int fault_bad_peer_spawn(const char *mode, const char *stats_path, uint16_t *ret_port,
                         pid_t *ret_pid);
/* SIGTERM and reap (SIGKILL after 5 s); returns the exit status, or -errno. */
int fault_child_stop(pid_t pid);

/* The value of key in a stats file of key=value pairs. -ENOENT when absent. */
int fault_stats_get(const char *path, const char *key, uint64_t *ret);
/* Waits at most timeout_usec until key >= min; returns the last value read (0 if none). */
uint64_t fault_stats_await(const char *path, const char *key, uint64_t min, uint64_t timeout_usec);
/* Prints the whole stats line as a TAP diagnostic ("# what: ..."). */
void fault_stats_print(const char *what, const char *path);

/* VmRSS of pid in KiB, or -errno. */
long fault_rss_kib(pid_t pid);
/* Open fds of pid, or -errno. */
int fault_fd_count(pid_t pid);
bool fault_pid_alive(pid_t pid);
/* A sanitizer build ($FAULTS_SANITIZED=1) or a daemon under valgrind: freed memory stays in
 * quarantine, RSS bounds grow. */
bool fault_sanitized(void);

uint64_t fault_now_usec(void);
