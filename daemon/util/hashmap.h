/* SPDX-License-Identifier: MIT */
#pragma once

/* A small open-addressing hash table of values that hold their own keys: a slot is one pointer, and
 * the table allocates only its slots. Values are not freed by the table. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HashOps {
        const void *(*key)(const void *value); /* where value keeps its key */
        uint64_t (*hash)(const void *key);
        bool (*equal)(const void *a, const void *b);
} HashOps;

/* For HashOps of the common key types. */
uint64_t uint64_hash(const void *key); /* key: const uint64_t * */
bool uint64_equal(const void *a, const void *b);
uint64_t string_hash(const void *key); /* key: const char * */
bool string_equal(const void *a, const void *b);

/* For keys that are plain structs without padding: hashed and compared bytewise. */
uint64_t hash_bytes(const void *p, size_t n);

typedef struct Hashmap Hashmap;

int hashmap_new(const HashOps *ops, Hashmap **ret);
Hashmap *hashmap_free(Hashmap *h);

/* 0, -EEXIST when value's key is present, -ENOMEM. value is not NULL. */
int hashmap_put(Hashmap *h, void *value);
void *hashmap_get(const Hashmap *h, const void *key);
/* Returns the removed value, or NULL. */
void *hashmap_remove(Hashmap *h, const void *key);
size_t hashmap_size(const Hashmap *h);
/* Any one value (NULL when empty): lets callers drain the table by freeing values that remove
 * themselves. */
void *hashmap_first(const Hashmap *h);

/* Iteration: HashmapIter i = {}; while (hashmap_iterate(h, &i, &v)) ...; the table must not
 * change meanwhile. */
typedef struct HashmapIter {
        size_t slot; /* the next one to look at */
} HashmapIter;

bool hashmap_iterate(const Hashmap *h, HashmapIter *it, void **ret_value);
