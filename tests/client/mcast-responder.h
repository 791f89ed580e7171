/* SPDX-License-Identifier: MIT */
#pragma once

/* A member of a multicast group on the loopback for the multicast tests: it joins the group on
 * 127.0.0.1 (IP_ADD_MEMBERSHIP), and answers each request with a NON 2.05 from its own unicast
 * address (another 127.0.0.x, so that members have distinct sources), `repeats` times the same
 * datagram (a retransmission the client must not deliver twice). */

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define MCAST_TEST_GROUP  "239.255.0.1"
#define MCAST_TEST_GROUP6 "ff02::fd" /* All CoAP Nodes, link-local */

typedef struct McastResponder {
        int rx, tx, stop_fd;
        pthread_t thread;
        struct sockaddr_in source;   /* where its answers come from (IPv4) */
        struct sockaddr_in6 source6; /* (IPv6) */
        char payload[16];
        unsigned repeats;
        /* Written by its thread, read after mcast_responder_stop(). */
        unsigned n_requests; /* requests received on the group */
        unsigned n_not_non;  /* of which not NON */
} McastResponder;

/* A port for the group, unlikely to collide with parallel test runs. */
uint16_t mcast_test_port(void);
/* The group's address at port. */
struct sockaddr_in mcast_test_group(uint16_t port);
/* A UDP socket bound to 127.0.0.1:0 that sends multicast out of the loopback: the application's
 * part (IP_MULTICAST_IF, IP_MULTICAST_LOOP). */
int mcast_test_client_socket(void);

void mcast_responder_start(McastResponder *r, const char *unicast_ip, uint16_t port,
                           const char *payload, unsigned repeats);
/* The same in network namespace netns (/run/netns/NAME, NULL: ours), joining the group on the
 * interface with address ifaddr and answering from unicast_ip. */
void mcast_responder_start_in(McastResponder *r, const char *netns, const char *ifaddr,
                              const char *unicast_ip, uint16_t port, const char *payload,
                              unsigned repeats);
/* An IPv6 member in netns, joining MCAST_TEST_GROUP6 on interface ifname and answering from
 * unicast_ip. */
void mcast_responder_start6_in(McastResponder *r, const char *netns, const char *ifname,
                               const char *unicast_ip, uint16_t port, const char *payload,
                               unsigned repeats);
/* Stops it; returns how many datagrams reached its unicast address (an RST would). */
unsigned mcast_responder_stop(McastResponder *r);
