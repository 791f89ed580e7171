/* SPDX-License-Identifier: MIT */
#include "hashmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing, linear probing, backward-shift deletion: a slot is the value's pointer (NULL:
 * empty), its key found through HashOps.key. No allocation per entry, and at 10,000 observations
 * the daemon's tables of clients, requests and sockets take 128 KiB each, not 256 (a slot that kept
 * the key's pointer too). */
typedef void *Slot;

struct Hashmap {
        const HashOps *ops;
        Slot *slots;
        size_t n_slots; /* 0 or a power of two */
        size_t size;
};

/* The first table; grown (doubled) past 2/3 full. */
#define INITIAL_SLOTS 8

/* splitmix64's finalizer: spreads sequential ids over all bits. */
static uint64_t mix64(uint64_t x) {
        x ^= x >> 30;
        x *= UINT64_C(0xbf58476d1ce4e5b9);
        x ^= x >> 27;
        x *= UINT64_C(0x94d049bb133111eb);
        x ^= x >> 31;
        return x;
}

uint64_t hash_bytes(const void *p, size_t n) {
        const uint8_t *b = p;
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        size_t i = 0;

        /* Eight bytes at a time through the finalizer, the rest as FNV-1a: the keys are small
         * structs (a socket's inode, a peer's address) looked up several times per request. */
        for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
                uint64_t w;

                memcpy(&w, b + i, sizeof w);
                h = mix64(h ^ w);
        }
        for (; i < n; i++) {
                h ^= b[i];
                h *= UINT64_C(0x100000001b3);
        }
        return mix64(h);
}

uint64_t uint64_hash(const void *key) {
        return mix64(*(const uint64_t *) key);
}

bool uint64_equal(const void *a, const void *b) {
        return *(const uint64_t *) a == *(const uint64_t *) b;
}

uint64_t string_hash(const void *key) {
        return hash_bytes(key, strlen(key));
}

bool string_equal(const void *a, const void *b) {
        return strcmp(a, b) == 0;
}

int hashmap_new(const HashOps *ops, Hashmap **ret) {
        Hashmap *h;

        h = calloc(1, sizeof(Hashmap));
        if (!h)
                return -ENOMEM;
        h->ops = ops;
        *ret = h;
        return 0;
}

Hashmap *hashmap_free(Hashmap *h) {
        if (!h)
                return NULL;
        free(h->slots);
        free(h);
        return NULL;
}

static size_t hashmap_home(const Hashmap *h, const void *key) {
        return (size_t) h->ops->hash(key) & (h->n_slots - 1);
}

/* The slot of key, or the empty slot that ends its probe sequence. Needs n_slots > 0. */
static size_t hashmap_find(const Hashmap *h, const void *key) {
        size_t mask = h->n_slots - 1, i = hashmap_home(h, key);

        while (h->slots[i] && !h->ops->equal(h->ops->key(h->slots[i]), key))
                i = (i + 1) & mask;
        return i;
}

static int hashmap_grow(Hashmap *h) {
        size_t n = h->n_slots ? h->n_slots * 2 : INITIAL_SLOTS;
        Slot *old = h->slots;
        size_t n_old = h->n_slots;

        h->slots = calloc(n, sizeof(Slot));
        if (!h->slots) {
                h->slots = old;
                return -ENOMEM;
        }
        h->n_slots = n;
        for (size_t i = 0; i < n_old; i++)
                if (old[i])
                        h->slots[hashmap_find(h, h->ops->key(old[i]))] = old[i];
        free(old);
        return 0;
}

int hashmap_put(Hashmap *h, void *value) {
        const void *key = h->ops->key(value);
        int r;

        if (h->n_slots > 0 && h->slots[hashmap_find(h, key)])
                return -EEXIST;
        if ((h->size + 1) * 3 > h->n_slots * 2) {
                r = hashmap_grow(h);
                if (r < 0)
                        return r;
        }
        h->slots[hashmap_find(h, key)] = value;
        h->size++;
        return 0;
}

void *hashmap_get(const Hashmap *h, const void *key) {
        if (!h || h->size == 0)
                return NULL;
        return h->slots[hashmap_find(h, key)];
}

void *hashmap_remove(Hashmap *h, const void *key) {
        size_t mask, i, j;
        void *value;

        if (!h || h->size == 0)
                return NULL;
        mask = h->n_slots - 1;
        i = hashmap_find(h, key);
        value = h->slots[i];
        if (!value)
                return NULL;
        /* Pull later entries of the cluster into the hole unless their home lies after it. */
        for (j = (i + 1) & mask; h->slots[j]; j = (j + 1) & mask) {
                size_t home = hashmap_home(h, h->ops->key(h->slots[j]));

                if (((j - home) & mask) >= ((j - i) & mask)) {
                        h->slots[i] = h->slots[j];
                        i = j;
                }
        }
        h->slots[i] = NULL;
        h->size--;
        return value;
}

size_t hashmap_size(const Hashmap *h) {
        return h ? h->size : 0;
}

void *hashmap_first(const Hashmap *h) {
        HashmapIter it = {};
        void *v;

        return hashmap_iterate(h, &it, &v) ? v : NULL;
}

bool hashmap_iterate(const Hashmap *h, HashmapIter *it, void **ret_value) {
        if (!h)
                return false;
        for (; it->slot < h->n_slots; it->slot++)
                if (h->slots[it->slot]) {
                        *ret_value = h->slots[it->slot++];
                        return true;
                }
        return false;
}
