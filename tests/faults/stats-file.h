/* SPDX-License-Identifier: MIT */
#pragma once

/* The counters file of a fault tool (udp-relay, bad-peer, store-peer), read by the tests. */

#include <stdio.h>

/* Writes format(userdata)'s output to path (nothing when path is NULL): into path.tmp first,
 * then renamed, so that a reader never sees half a line. */
void stats_file_write(const char *path, void (*format)(const void *userdata, FILE *f),
                      const void *userdata);
