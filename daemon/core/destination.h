/* SPDX-License-Identifier: MIT */
#pragma once

/* Request destinations, from either front end, as the engine's addresses. */

#include <stddef.h>

#include "coap-engine.h"

/* "" (connected socket: len 0), "A.B.C.D:PORT" or "[IPv6]:PORT" with an optional "%scope"
 * (interface name or index) inside the brackets. Port 1..65535. On an AF_INET6 socket an IPv4
 * destination becomes its v4-mapped address, as the kernel reports its datagrams. -EINVAL for
 * anything else, or an IPv6 destination on an AF_INET socket. */
int parse_destination(const char *s, int socket_family, CoapAddr *ret);

/* The same from a struct sockaddr_in/_in6 as the kernel lays it out (len 0: connected socket),
 * e.g. from the data channel. */
int parse_sockaddr(const void *sa, size_t len, int socket_family, CoapAddr *ret);

/* The inverse of parse_destination(): "A.B.C.D:PORT", or "[IPv6]:PORT" with "%index" for a
 * scoped address, into buf (DESTINATION_STRING_MAX). -EAFNOSUPPORT for anything else. */
#define DESTINATION_STRING_MAX 72
int format_destination(const CoapAddr *a, char buf[static DESTINATION_STRING_MAX]);
