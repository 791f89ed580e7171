/* SPDX-License-Identifier: MIT */
#include "mcast-responder.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

uint16_t mcast_test_port(void) {
        return (uint16_t) (20000 + getpid() % 20000);
}

struct sockaddr_in mcast_test_group(uint16_t port) {
        struct sockaddr_in g = {.sin_family = AF_INET, .sin_port = htons(port)};

        ck_assert_int_eq(inet_pton(AF_INET, MCAST_TEST_GROUP, &g.sin_addr), 1);
        return g;
}

int mcast_test_client_socket(void) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct in_addr ifaddr = {.s_addr = htonl(INADDR_LOOPBACK)};
        unsigned char loop = 1;
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifaddr, sizeof(ifaddr)), 0);
        ck_assert_int_eq(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop)), 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        return fd;
}

static void *responder_thread(void *userdata) {
        McastResponder *r = userdata;
        uint16_t mid = (uint16_t) (0x4000 + r->tx);

        for (;;) {
                struct pollfd p[2] = {{.fd = r->rx, .events = POLLIN},
                                      {.fd = r->stop_fd, .events = POLLIN}};
                struct sockaddr_storage from;
                socklen_t from_len = sizeof(from);
                uint8_t in[1500], out[64];
                size_t tkl, n;
                ssize_t len;

                if (poll(p, 2, -1) < 0 && errno == EINTR)
                        continue;
                if (p[1].revents)
                        return NULL;
                len = recvfrom(r->rx, in, sizeof(in), MSG_DONTWAIT, (struct sockaddr *) &from,
                               &from_len);
                if (len < 4 || (in[0] >> 6) != 1)
                        continue;
                r->n_requests++;
                if (((in[0] >> 4) & 3) != 1)
                        r->n_not_non++;
                tkl = in[0] & 0xf;
                if (tkl > 8 || (size_t) len < 4 + tkl)
                        continue;
                /* NON 2.05, a MID of its own, the request's token, the payload. */
                out[0] = (uint8_t) (1u << 6 | 1u << 4 | tkl);
                out[1] = 0x45;
                out[2] = (uint8_t) (mid >> 8);
                out[3] = (uint8_t) mid;
                mid++;
                memcpy(out + 4, in + 4, tkl);
                n = 4 + tkl;
                out[n++] = 0xff;
                memcpy(out + n, r->payload, strlen(r->payload));
                n += strlen(r->payload);
                for (unsigned i = 0; i < r->repeats; i++)
                        (void) sendto(r->tx, out, n, 0, (struct sockaddr *) &from, from_len);
        }
}

void mcast_responder_start(McastResponder *r, const char *unicast_ip, uint16_t port,
                           const char *payload, unsigned repeats) {
        mcast_responder_start_in(r, NULL, "127.0.0.1", unicast_ip, port, payload, repeats);
}

/* Runs the calling thread in netns (NULL: stays); returns the fd to come back with, or -1. */
static int enter_netns(const char *netns) {
        char path[256];
        int home, fd;

        if (!netns)
                return -1;
        home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(home, 0);
        snprintf(path, sizeof(path), "/run/netns/%s", netns);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(setns(fd, CLONE_NEWNET), 0);
        close(fd);
        return home;
}

/* The sockets live in the namespace they were made in; the thread comes back. */
static void leave_netns(int home) {
        if (home < 0)
                return;
        ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
        close(home);
}

static void responder_run(McastResponder *r, const char *payload, unsigned repeats) {
        snprintf(r->payload, sizeof(r->payload), "%s", payload);
        r->repeats = repeats;
        r->stop_fd = eventfd(0, EFD_CLOEXEC);
        ck_assert_int_ge(r->stop_fd, 0);
        ck_assert_int_eq(pthread_create(&r->thread, NULL, responder_thread, r), 0);
}

void mcast_responder_start_in(McastResponder *r, const char *netns, const char *ifaddr,
                              const char *unicast_ip, uint16_t port, const char *payload,
                              unsigned repeats) {
        struct sockaddr_in group = mcast_test_group(port);
        struct ip_mreq mreq = {.imr_multiaddr = group.sin_addr};
        socklen_t len = sizeof(r->source);
        int one = 1, home;

        *r = (McastResponder){};
        ck_assert_int_eq(inet_pton(AF_INET, ifaddr, &mreq.imr_interface), 1);
        home = enter_netns(netns);
        r->rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(r->rx, 0);
        ck_assert_int_eq(setsockopt(r->rx, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
        ck_assert_int_eq(bind(r->rx, (struct sockaddr *) &group, sizeof(group)), 0);
        ck_assert_int_eq(setsockopt(r->rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)), 0);

        r->tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(r->tx, 0);
        r->source = (struct sockaddr_in){.sin_family = AF_INET};
        ck_assert_int_eq(inet_pton(AF_INET, unicast_ip, &r->source.sin_addr), 1);
        ck_assert_int_eq(bind(r->tx, (struct sockaddr *) &r->source, sizeof(r->source)), 0);
        ck_assert_int_eq(getsockname(r->tx, (struct sockaddr *) &r->source, &len), 0);
        leave_netns(home);
        responder_run(r, payload, repeats);
}

void mcast_responder_start6_in(McastResponder *r, const char *netns, const char *ifname,
                               const char *unicast_ip, uint16_t port, const char *payload,
                               unsigned repeats) {
        struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
        struct ipv6_mreq mreq = {};
        socklen_t len = sizeof(r->source6);
        int one = 1, home;

        *r = (McastResponder){};
        ck_assert_int_eq(inet_pton(AF_INET6, MCAST_TEST_GROUP6, &mreq.ipv6mr_multiaddr), 1);
        home = enter_netns(netns);
        mreq.ipv6mr_interface = if_nametoindex(ifname);
        ck_assert_uint_ne(mreq.ipv6mr_interface, 0);
        r->rx = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(r->rx, 0);
        ck_assert_int_eq(setsockopt(r->rx, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
        ck_assert_int_eq(bind(r->rx, (struct sockaddr *) &any, sizeof(any)), 0);
        ck_assert_int_eq(setsockopt(r->rx, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof(mreq)), 0);

        r->tx = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(r->tx, 0);
        r->source6 = (struct sockaddr_in6){.sin6_family = AF_INET6};
        ck_assert_int_eq(inet_pton(AF_INET6, unicast_ip, &r->source6.sin6_addr), 1);
        ck_assert_int_eq(bind(r->tx, (struct sockaddr *) &r->source6, sizeof(r->source6)), 0);
        ck_assert_int_eq(getsockname(r->tx, (struct sockaddr *) &r->source6, &len), 0);
        leave_netns(home);
        responder_run(r, payload, repeats);
}

unsigned mcast_responder_stop(McastResponder *r) {
        unsigned n = 0;
        uint8_t buf[1500];

        ck_assert_int_eq(eventfd_write(r->stop_fd, 1), 0);
        ck_assert_int_eq(pthread_join(r->thread, NULL), 0);
        while (recv(r->tx, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
                n++;
        close(r->rx);
        close(r->tx);
        close(r->stop_fd);
        return n;
}
