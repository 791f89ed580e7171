/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers for reading a{sv} arguments. */

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

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
