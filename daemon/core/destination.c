/* SPDX-License-Identifier: MIT */
#include "core/destination.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *s, uint16_t *ret) {
        unsigned long v = 0;
        size_t n = strlen(s);

        if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                v = v * 10 + (unsigned long) (s[i] - '0');
        if (v < 1 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

static int parse_scope(const char *s, uint32_t *ret) {
        size_t n = strlen(s);

        if (n == 0 || n >= IF_NAMESIZE)
                return -EINVAL;
        if (strspn(s, "0123456789") == n) {
                unsigned long v = strtoul(s, NULL, 10);

                if (v == 0 || v > UINT32_MAX)
                        return -EINVAL;
                *ret = (uint32_t) v;
                return 0;
        }
        *ret = if_nametoindex(s);
        return *ret == 0 ? -EINVAL : 0;
}

/* Destinations as the kernel reports the source of datagrams, so that equal peers compare
 * equal: only family, port, address (and scope) set, an IPv4 address v4-mapped on an AF_INET6
 * socket. Ports in network byte order. */
static CoapAddr coap_addr_ipv4(struct in_addr addr, uint16_t port, int socket_family) {
        CoapAddr a = {};

        if (socket_family == AF_INET6) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &a.ss;

                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = port;
                sin6->sin6_addr.s6_addr[10] = 0xff;
                sin6->sin6_addr.s6_addr[11] = 0xff;
                memcpy(&sin6->sin6_addr.s6_addr[12], &addr, 4);
                a.len = sizeof(struct sockaddr_in6);
        } else {
                struct sockaddr_in *sin = (struct sockaddr_in *) &a.ss;

                sin->sin_family = AF_INET;
                sin->sin_port = port;
                sin->sin_addr = addr;
                a.len = sizeof(struct sockaddr_in);
        }
        return a;
}

static CoapAddr coap_addr_ipv6(const struct in6_addr *addr, uint16_t port, uint32_t scope) {
        CoapAddr a = {.len = sizeof(struct sockaddr_in6)};
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &a.ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = port;
        sin6->sin6_addr = *addr;
        sin6->sin6_scope_id = scope;
        return a;
}

int parse_destination(const char *s, int socket_family, CoapAddr *ret) {
        char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
        const char *port_str;
        uint16_t port;

        if (s[0] == '\0') {
                *ret = (CoapAddr){};
                return 0;
        }

        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                struct in6_addr in6;
                uint32_t scope = 0;
                char *pct;

                if (!end || end[1] != ':' || (size_t) (end - s - 1) >= sizeof host)
                        return -EINVAL;
                memcpy(host, s + 1, (size_t) (end - s - 1));
                host[end - s - 1] = '\0';
                port_str = end + 2;
                pct = strchr(host, '%');
                if (pct) {
                        *pct = '\0';
                        if (parse_scope(pct + 1, &scope) < 0)
                                return -EINVAL;
                }
                if (socket_family != AF_INET6 || inet_pton(AF_INET6, host, &in6) != 1 ||
                    parse_port(port_str, &port) < 0)
                        return -EINVAL;
                *ret = coap_addr_ipv6(&in6, htons(port), scope);
        } else {
                const char *colon = strrchr(s, ':');
                struct in_addr in;

                if (!colon || (size_t) (colon - s) >= sizeof host)
                        return -EINVAL;
                memcpy(host, s, (size_t) (colon - s));
                host[colon - s] = '\0';
                port_str = colon + 1;
                if (inet_pton(AF_INET, host, &in) != 1 || parse_port(port_str, &port) < 0)
                        return -EINVAL;
                *ret = coap_addr_ipv4(in, htons(port), socket_family);
        }
        return 0;
}

int parse_sockaddr(const void *sa, size_t len, int socket_family, CoapAddr *ret) {
        sa_family_t family;

        if (len == 0) {
                *ret = (CoapAddr){};
                return 0;
        }
        if (len < sizeof(family))
                return -EINVAL;
        memcpy(&family, sa, sizeof(family));
        if (family == AF_INET && len == sizeof(struct sockaddr_in)) {
                struct sockaddr_in in;

                memcpy(&in, sa, sizeof(in));
                if (in.sin_port == 0)
                        return -EINVAL;
                *ret = coap_addr_ipv4(in.sin_addr, in.sin_port, socket_family);
        } else if (family == AF_INET6 && len == sizeof(struct sockaddr_in6) &&
                   socket_family == AF_INET6) {
                struct sockaddr_in6 in6;

                memcpy(&in6, sa, sizeof(in6));
                if (in6.sin6_port == 0)
                        return -EINVAL;
                *ret = coap_addr_ipv6(&in6.sin6_addr, in6.sin6_port, in6.sin6_scope_id);
        } else
                return -EINVAL;
        return 0;
}

int format_destination(const CoapAddr *a, char buf[static DESTINATION_STRING_MAX]) {
        char ip[INET6_ADDRSTRLEN];

        if (a->ss.ss_family == AF_INET) {
                const struct sockaddr_in *in = (const void *) &a->ss;

                if (!inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)))
                        return -errno;
                (void) snprintf(buf, DESTINATION_STRING_MAX, "%s:%u", ip, ntohs(in->sin_port));
                return 0;
        }
        if (a->ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const void *) &a->ss;

                if (!inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)))
                        return -errno;
                if (in6->sin6_scope_id != 0)
                        (void) snprintf(buf, DESTINATION_STRING_MAX, "[%s%%%u]:%u", ip,
                                        in6->sin6_scope_id, ntohs(in6->sin6_port));
                else
                        (void) snprintf(buf, DESTINATION_STRING_MAX, "[%s]:%u", ip,
                                        ntohs(in6->sin6_port));
                return 0;
        }
        return -EAFNOSUPPORT;
}
