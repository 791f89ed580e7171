/* SPDX-License-Identifier: MIT */
#pragma once

/* An open-addressing hash multimap from uint64_t keys to non-NULL pointers, for the engine's
 * lookups by id, token, message ID and owner. Linear probing with backward-shift deletion, load
 * at most 1/2. Up to COAP_MAP_SMALL entries live in the map itself, searched in order: most
 * sockets carry one exchange at a time, and a table each cost ~80 bytes. Pure: libc only. */

#include <stddef.h>
#include <stdint.h>

#define COAP_MAP_SMALL 1

typedef struct CoapMapSlot {
        uint64_t key;
        void *value; /* NULL: empty slot */
} CoapMapSlot;

typedef struct CoapMap {
        CoapMapSlot *slots; /* NULL: the entries are small[0..n) */
        uint32_t mask;      /* number of slots - 1 */
        uint32_t n;
        CoapMapSlot small[COAP_MAP_SMALL];
} CoapMap;

void coap_map_done(CoapMap *m);
/* Makes room for n entries, so that coap_map_put() cannot fail. 0 or -ENOMEM. */
int coap_map_reserve(CoapMap *m, size_t n);
/* Adds an entry (keys may repeat). Needs reserved room. */
void coap_map_put(CoapMap *m, uint64_t key, void *value);
/* The values stored under key, one per call: start with *pos = 0; NULL when there are no more. */
void *coap_map_next(const CoapMap *m, uint64_t key, size_t *pos);
/* The first value stored under key, or NULL. */
void *coap_map_get(const CoapMap *m, uint64_t key);
/* Removes the entry (key, value); no-op when absent. */
void coap_map_remove(CoapMap *m, uint64_t key, const void *value);
/* Every value, one per call, in no particular order: start with *pos = 0; NULL at the end. The
 * map must not change meanwhile. */
void *coap_map_iterate(const CoapMap *m, size_t *pos);
