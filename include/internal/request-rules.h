/* SPDX-License-Identifier: MIT */
#pragma once

/* What coapclientd accepts in a request (docs/dbus-api.md): enforced by the daemon, and checked
 * first by the library so that coap_client_req() fails at once, as Zephyr's does. One copy for
 * both, so that they cannot drift apart. */

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Ranges of the transmission parameters. */
#define COAPCLIENTD_ACK_TIMEOUT_MIN        100
#define COAPCLIENTD_ACK_TIMEOUT_MAX        600000
#define COAPCLIENTD_PERCENT_MIN            100
#define COAPCLIENTD_PERCENT_MAX            1000
#define COAPCLIENTD_MAX_RETRANSMISSION_MAX 20
#define COAPCLIENTD_PATH_MAX               1024

/* Option numbers a request may not set: 0, and those the daemon sets itself from the path
 * (Uri-Path 11, Uri-Query 15), the payload (Content-Format 12) or its block-wise and Echo state
 * (Block1 27, Size1 60, Echo 252, Request-Tag 292). Block2 (23) is allowed: Zephyr's early
 * negotiation. */
static inline bool coapclientd_option_is_reserved(uint16_t number) {
        switch (number) {
        case 0:
        case 11:
        case 12:
        case 15:
        case 27:
        case 60:
        case 252:
        case 292:
                return true;
        default:
                return false;
        }
}

/* The socket's address family, or -ENOTSOCK. Asks the socket, never a file system (an fd on a
 * stuck FUSE mount would block fstat()); an fd that arrived with a message is open, so EBADF
 * means O_PATH: no socket either. */
static inline int coapclientd_socket_family(int fd, int *ret) {
        socklen_t len = sizeof(int);

        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, ret, &len) < 0)
                return errno == ENOTSOCK || errno == EBADF ? -ENOTSOCK : -errno;
        return 0;
}

/* Only AF_INET/AF_INET6 UDP sockets: UDP-Lite and ICMP ping sockets are SOCK_DGRAM too. 0,
 * -ENOTSOCK or -ESOCKTNOSUPPORT. */
static inline int coapclientd_check_udp_socket(int fd) {
        int family, type, protocol, r;
        socklen_t len;

        r = coapclientd_socket_family(fd, &family);
        if (r < 0)
                return r;
        len = sizeof(int);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
                return -errno;
        len = sizeof(int);
        if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) < 0)
                return -errno;
        if ((family != AF_INET && family != AF_INET6) || type != SOCK_DGRAM ||
            protocol != IPPROTO_UDP)
                return -ESOCKTNOSUPPORT;
        return 0;
}

/* A multicast group (IPv4 224.0.0.0/4, IPv6 ff00::/8): the destinations a request with a
 * multicast window (RFC 7252 §8) must have. */
static inline bool coapclientd_sockaddr_is_multicast(const struct sockaddr *sa, socklen_t len) {
        if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
                return IN_MULTICAST(
                        ntohl(((const struct sockaddr_in *) (const void *) sa)->sin_addr.s_addr));
        if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
                return IN6_IS_ADDR_MULTICAST(
                        &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr);
        return false;
}
