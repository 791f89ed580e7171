/* SPDX-License-Identifier: MIT */
#pragma once

/* Sockets, peers and daemon probes for the integration tests. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The coap-server-gnutls started by test-env.sh. */
const char *test_peer_host(void);
uint16_t test_peer_port(void);

/* A UDP socket bound to the loopback of family on an ephemeral port; connected to host:port
 * when host is not NULL. */
int test_udp_socket(int family, const char *host, uint16_t port);
/* A bound loopback UDP socket nobody reads from (a peer that never answers). */
int test_udp_silent(int family, uint16_t *ret_port);
/* A loopback UDP port on which nothing listens (ICMP port unreachable). */
int test_udp_closed_port(uint16_t *ret_port);
/* "127.0.0.1:5683" or "[::1]:5683". */
void test_format_destination(char *buf, size_t size, const char *host, uint16_t port);

/* Starts coap-server-gnutls on host (an IPv4 or IPv6 literal) on a free port and waits (bounded)
 * until it answers a CoAP ping. Dies with the calling process. */
int test_coap_server_spawn(const char *host, uint16_t *ret_port, pid_t *ret_pid);
/* The same with extra options (NULL-terminated, at most 8), e.g. "-e" (echo PUT bodies). */
int test_coap_server_spawn_args(const char *host, const char *const *extra, uint16_t *ret_port,
                                pid_t *ret_pid);
/* A forked peer on 127.0.0.1 that answers every CON with RST and counts nothing else. */
int test_rst_peer_spawn(uint16_t *ret_port, pid_t *ret_pid);
/* A forked peer on 127.0.0.1 that answers every CON request with noise first (an oversized
 * datagram, a malformed one, a response with a foreign token), then the real piggybacked 2.05
 * "ok" twice (a duplicate). */
int test_noisy_peer_spawn(uint16_t *ret_port, pid_t *ret_pid);
/* A forked relay on 127.0.0.1 that forwards datagrams between its first client and
 * 127.0.0.1:upstream, dropping every drop_every-th datagram in each direction. */
int test_lossy_relay_spawn(uint16_t upstream, unsigned drop_every, uint16_t *ret_port,
                           pid_t *ret_pid);
void test_child_stop(pid_t pid);

/* Sends an empty CON (CoAP ping) and waits at most timeout_usec for the RST. */
int test_coap_ping(int family, const char *host, uint16_t port, uint64_t timeout_usec);

/* The daemon started by test-env.sh: $COAPCLIENTD_PID. */
pid_t test_daemon_pid(void);
bool test_daemon_alive(void);
/* Open fds of the daemon, from /proc/PID/fd. */
int test_daemon_fd_count(void);
/* The same once it has stopped changing (at most 3 s): a baseline taken while the daemon, or the
 * valgrind it runs under, still holds a passing fd would not be met again. */
int test_daemon_fd_count_settled(void);

/* Fills buf with pseudo-random bytes from a fixed seed. */
void test_fill_random(uint8_t *buf, size_t len, uint32_t seed);
