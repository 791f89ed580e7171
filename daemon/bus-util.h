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

/* The same from a struct sockaddr_in/_in6 as the kernel lays it out (len 0: connected socket),
 * e.g. from the data channel. */
int parse_sockaddr(const void *sa, size_t len, int socket_family, CoapAddr *ret);

/* One key of an a{sv} argument and its variant's signature (NULL: the caller reads the variant
 * itself, e.g. one that may hold either of two types). */
typedef struct BusDictKey {
        const char *key;
        const char *signature;
} BusDictKey;

/* Inside an a{sv} dict entry, after the key: enters the variant if it holds signature, else
 * fails with error_name, saying "<What> key '<key>' must be of type ...". what names the
 * argument in lower case ("request"). */
int bus_message_enter_variant_of(sd_bus_message *m, const char *key, const char *signature,
                                 const char *error_name, const char *what, sd_bus_error *error);

/* Inside an a{sv} dict entry: reads the key and looks it up in keys; an unknown key, or one
 * already recorded in *seen (one bit per key), fails with error_name. Enters the variant when
 * the key has a signature. Returns the key's index. */
int bus_dict_entry_read_key(sd_bus_message *m, const BusDictKey *keys, size_t n_keys,
                            uint32_t *seen, const char *error_name, const char *what,
                            sd_bus_error *error);
