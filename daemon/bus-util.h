/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers that translate D-Bus input into daemon types. */

#include <systemd/sd-bus.h>

#include "coap-engine.h"

/* "" (connected socket: len 0), "A.B.C.D:PORT" or "[IPv6]:PORT" with an optional "%scope"
 * (interface name or index) inside the brackets. Port 1..65535. On an AF_INET6 socket an IPv4
 * destination becomes its v4-mapped address, as the kernel reports its datagrams. -EINVAL for
 * anything else, or an IPv6 destination on an AF_INET socket. */
int parse_destination(const char *s, int socket_family, CoapAddr *ret);

/* Inside an a{sv} dict entry, after the key: enters the variant if it holds signature, else
 * fails with InvalidArgument naming the key. */
int bus_message_enter_variant_of(sd_bus_message *m, const char *key, const char *signature,
                                 sd_bus_error *error);
