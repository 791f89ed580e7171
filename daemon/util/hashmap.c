/* SPDX-License-Identifier: MIT */
#include "hashmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct Entry {
        struct Entry *next;
        const void *key;
        void *value;
        uint64_t hash;
} Entry;

struct Hashmap {
        const HashOps *ops;
        Entry **buckets;
        size_t n_buckets; /* a power of two */
        size_t size;
};

#define INITIAL_BUCKETS 16

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

static uint64_t uint64_hash(const void *key) {
        return mix64(*(const uint64_t *) key);
}

static bool uint64_equal(const void *a, const void *b) {
        return *(const uint64_t *) a == *(const uint64_t *) b;
}

static uint64_t string_hash(const void *key) {
        return hash_bytes(key, strlen(key));
}

static bool string_equal(const void *a, const void *b) {
        return strcmp(a, b) == 0;
}

const HashOps uint64_hash_ops = {.hash = uint64_hash, .equal = uint64_equal};
const HashOps string_hash_ops = {.hash = string_hash, .equal = string_equal};

int hashmap_new(const HashOps *ops, Hashmap **ret) {
        Hashmap *h;

        h = calloc(1, sizeof(Hashmap));
        if (!h)
                return -ENOMEM;
        h->buckets = calloc(INITIAL_BUCKETS, sizeof(Entry *));
        if (!h->buckets) {
                free(h);
                return -ENOMEM;
        }
        h->ops = ops;
        h->n_buckets = INITIAL_BUCKETS;
        *ret = h;
        return 0;
}

Hashmap *hashmap_free(Hashmap *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->n_buckets; i++)
                for (Entry *e = h->buckets[i], *n; e; e = n) {
                        n = e->next;
                        free(e);
                }
        free(h->buckets);
        free(h);
        return NULL;
}

static Entry **hashmap_find(const Hashmap *h, const void *key, uint64_t hash) {
        Entry **p = &h->buckets[hash & (h->n_buckets - 1)];

        for (; *p; p = &(*p)->next)
                if ((*p)->hash == hash && h->ops->equal((*p)->key, key))
                        return p;
        return p;
}

static void hashmap_grow(Hashmap *h) {
        size_t n = h->n_buckets * 2;
        Entry **b;

        b = calloc(n, sizeof(Entry *));
        if (!b)
                return; /* longer chains, still correct */
        for (size_t i = 0; i < h->n_buckets; i++)
                for (Entry *e = h->buckets[i], *next; e; e = next) {
                        next = e->next;
                        e->next = b[e->hash & (n - 1)];
                        b[e->hash & (n - 1)] = e;
                }
        free(h->buckets);
        h->buckets = b;
        h->n_buckets = n;
}

int hashmap_put(Hashmap *h, const void *key, void *value) {
        uint64_t hash = h->ops->hash(key);
        Entry **p, *e;

        p = hashmap_find(h, key, hash);
        if (*p)
                return -EEXIST;
        e = malloc(sizeof(Entry));
        if (!e)
                return -ENOMEM;
        *e = (Entry){.key = key, .value = value, .hash = hash};
        *p = e;
        h->size++;
        if (h->size > h->n_buckets)
                hashmap_grow(h);
        return 0;
}

void *hashmap_get(const Hashmap *h, const void *key) {
        Entry **p;

        if (!h)
                return NULL;
        p = hashmap_find(h, key, h->ops->hash(key));
        return *p ? (*p)->value : NULL;
}

void *hashmap_remove(Hashmap *h, const void *key) {
        Entry **p, *e;
        void *value;

        if (!h)
                return NULL;
        p = hashmap_find(h, key, h->ops->hash(key));
        e = *p;
        if (!e)
                return NULL;
        *p = e->next;
        value = e->value;
        free(e);
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
        const Entry *e = it->entry;

        if (!h)
                return false;
        while (!e) {
                if (it->bucket >= h->n_buckets)
                        return false;
                e = h->buckets[it->bucket++];
        }
        it->entry = e->next;
        *ret_value = e->value;
        return true;
}
