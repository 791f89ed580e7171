/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "internal/macro.h"
#include "util/hashmap.h"

#define N_MANY 5000

/* The key is not the value's first member: the table finds it through HashOps.key. */
typedef struct Item {
        unsigned visits;
        uint64_t id;
} Item;

static const void *item_key(const void *v) {
        return &((const Item *) v)->id;
}

static const HashOps item_ops = {.key = item_key, .hash = uint64_hash, .equal = uint64_equal};

static Item *items_new(size_t n) {
        Item *items = calloc(n, sizeof(Item));

        ck_assert_ptr_nonnull(items);
        for (size_t i = 0; i < n; i++)
                items[i].id = (uint64_t) i * 7919 + 1; /* neither dense nor sequential */
        return items;
}

static void clear_visits(Item *items, size_t n) {
        for (size_t i = 0; i < n; i++)
                items[i].visits = 0;
}

static size_t iterate_all(Hashmap *h) {
        HashmapIter it = {};
        size_t n = 0;
        void *v;

        while (hashmap_iterate(h, &it, &v)) {
                ((Item *) v)->visits++;
                n++;
        }
        return n;
}

START_TEST(test_null_and_empty) {
        HashmapIter it = {};
        Hashmap *h = NULL;
        uint64_t key = 1;
        void *v;

        /* Lookups on a NULL table are how callers treat a table never created. */
        ck_assert_ptr_null(hashmap_get(NULL, &key));
        ck_assert_ptr_null(hashmap_remove(NULL, &key));
        ck_assert_uint_eq(hashmap_size(NULL), 0);
        ck_assert_ptr_null(hashmap_first(NULL));
        ck_assert(!hashmap_iterate(NULL, &it, &v));
        ck_assert_ptr_null(hashmap_free(NULL));

        ck_assert_int_eq(hashmap_new(&item_ops, &h), 0);
        ck_assert_ptr_null(hashmap_get(h, &key));
        ck_assert_ptr_null(hashmap_remove(h, &key));
        ck_assert_uint_eq(hashmap_size(h), 0);
        ck_assert_ptr_null(hashmap_first(h));
        ck_assert(!hashmap_iterate(h, &it, &v));
        ck_assert_ptr_null(hashmap_free(h));
}
END_TEST

START_TEST(test_put_get_duplicate) {
        Item a = {.id = 42}, b = {.id = 42};
        uint64_t key = 42, other = 43;
        Hashmap *h;

        ck_assert_int_eq(hashmap_new(&item_ops, &h), 0);
        ck_assert_int_eq(hashmap_put(h, &a), 0);
        /* An equal key stored elsewhere is the same key. */
        ck_assert_int_eq(hashmap_put(h, &b), -EEXIST);
        ck_assert_uint_eq(hashmap_size(h), 1);
        ck_assert_ptr_eq(hashmap_get(h, &key), &a);
        ck_assert_ptr_null(hashmap_get(h, &other));
        ck_assert_ptr_eq(hashmap_first(h), &a);
        ck_assert_ptr_null(hashmap_remove(h, &other));
        ck_assert_ptr_eq(hashmap_remove(h, &key), &a);
        ck_assert_ptr_null(hashmap_get(h, &key));
        ck_assert_uint_eq(hashmap_size(h), 0);
        /* The key is free again once removed. */
        ck_assert_int_eq(hashmap_put(h, &b), 0);
        ck_assert_ptr_eq(hashmap_get(h, &key), &b);
        hashmap_free(h);
}
END_TEST

START_TEST(test_many_keys) {
        Item *items = items_new(N_MANY);
        Hashmap *h;

        ck_assert_int_eq(hashmap_new(&item_ops, &h), 0);
        for (size_t i = 0; i < N_MANY; i++) {
                ck_assert_int_eq(hashmap_put(h, &items[i]), 0);
                ck_assert_uint_eq(hashmap_size(h), i + 1);
        }
        /* Every key survives the table growing many times. */
        for (size_t i = 0; i < N_MANY; i++) {
                uint64_t key = items[i].id, missing = items[i].id + 1;

                ck_assert_ptr_eq(hashmap_get(h, &key), &items[i]);
                ck_assert_ptr_null(hashmap_get(h, &missing));
                ck_assert_int_eq(hashmap_put(h, &items[i]), -EEXIST);
        }
        ck_assert_uint_eq(iterate_all(h), N_MANY);
        for (size_t i = 0; i < N_MANY; i++)
                ck_assert_uint_eq(items[i].visits, 1);

        for (size_t i = 0; i < N_MANY; i += 2) {
                uint64_t key = items[i].id;

                ck_assert_ptr_eq(hashmap_remove(h, &key), &items[i]);
                ck_assert_ptr_null(hashmap_remove(h, &key));
        }
        ck_assert_uint_eq(hashmap_size(h), N_MANY / 2);
        clear_visits(items, N_MANY);
        ck_assert_uint_eq(iterate_all(h), N_MANY / 2);
        for (size_t i = 0; i < N_MANY; i++) {
                uint64_t key = items[i].id;

                ck_assert_uint_eq(items[i].visits, i % 2);
                ck_assert_ptr_eq(hashmap_get(h, &key), i % 2 ? &items[i] : NULL);
        }
        hashmap_free(h);
        free(items);
}
END_TEST

START_TEST(test_drain_with_first) {
        Item *items = items_new(N_MANY);
        size_t n = 0;
        Hashmap *h;
        Item *it;

        ck_assert_int_eq(hashmap_new(&item_ops, &h), 0);
        for (size_t i = 0; i < N_MANY; i++)
                ck_assert_int_eq(hashmap_put(h, &items[i]), 0);
        /* manager_free()'s pattern: take any value, remove it, until none is left. */
        while ((it = hashmap_first(h))) {
                ck_assert_uint_eq(it->visits, 0);
                it->visits++;
                ck_assert_ptr_eq(hashmap_remove(h, &it->id), it);
                n++;
        }
        ck_assert_uint_eq(n, N_MANY);
        ck_assert_uint_eq(hashmap_size(h), 0);
        hashmap_free(h);
        free(items);
}
END_TEST

/* Values that are their own keys. */
static const void *itself(const void *v) {
        return v;
}

static const HashOps string_ops = {.key = itself, .hash = string_hash, .equal = string_equal};

START_TEST(test_string_keys) {
        static const char *const names[] = {":1.1", ":1.10", ":1.100", "", "a", "b", "ab", "ba"};
        char copy[16];
        Hashmap *h;

        ck_assert_int_eq(hashmap_new(&string_ops, &h), 0);
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                ck_assert_int_eq(hashmap_put(h, (void *) names[i]), 0);
        ck_assert_int_eq(hashmap_put(h, (void *) "ab"), -EEXIST);
        /* Keys compare by content, not by pointer. */
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                strcpy(copy, names[i]);
                ck_assert_ptr_eq(hashmap_get(h, copy), names[i]);
        }
        ck_assert_ptr_null(hashmap_get(h, ":1.1000"));
        ck_assert_ptr_null(hashmap_get(h, "A"));
        strcpy(copy, ":1.10");
        ck_assert_ptr_eq(hashmap_remove(h, copy), names[1]);
        ck_assert_ptr_eq(hashmap_get(h, ":1.1"), names[0]);
        ck_assert_ptr_eq(hashmap_get(h, ":1.100"), names[2]);
        ck_assert_uint_eq(hashmap_size(h), ELEMENTSOF(names) - 1);
        hashmap_free(h);
}
END_TEST

/* Every key in one chain: removal at the head, in the middle and at the tail of a chain. */
static uint64_t constant_hash(const void *key) {
        (void) key;
        return 7;
}

static const HashOps colliding_ops = {
        .key = item_key, .hash = constant_hash, .equal = uint64_equal};

START_TEST(test_collisions) {
        static const size_t order[] = {0, 99, 50, 1, 98, 51, 49};
        Item *items = items_new(100);
        Hashmap *h;

        ck_assert_int_eq(hashmap_new(&colliding_ops, &h), 0);
        for (size_t i = 0; i < 100; i++)
                ck_assert_int_eq(hashmap_put(h, &items[i]), 0);
        ck_assert_int_eq(hashmap_put(h, &items[50]), -EEXIST);
        for (size_t k = 0; k < ELEMENTSOF(order); k++) {
                uint64_t key = items[order[k]].id;

                ck_assert_ptr_eq(hashmap_remove(h, &key), &items[order[k]]);
                ck_assert_ptr_null(hashmap_get(h, &key));
        }
        ck_assert_uint_eq(hashmap_size(h), 100 - ELEMENTSOF(order));
        ck_assert_uint_eq(iterate_all(h), 100 - ELEMENTSOF(order));
        for (size_t i = 0; i < 100; i++) {
                bool removed = false;

                for (size_t k = 0; k < ELEMENTSOF(order); k++)
                        removed = removed || order[k] == i;
                ck_assert_uint_eq(items[i].visits, removed ? 0 : 1);
                ck_assert_ptr_eq(hashmap_get(h, &items[i].id), removed ? NULL : &items[i]);
        }
        hashmap_free(h);
        free(items);
}
END_TEST

/* Struct keys as the socket table uses them: hashed and compared bytewise. */
typedef struct PairKey {
        uint32_t a, b;
} PairKey;

static uint64_t pair_hash(const void *key) {
        return hash_bytes(key, sizeof(PairKey));
}

static bool pair_equal(const void *x, const void *y) {
        return memcmp(x, y, sizeof(PairKey)) == 0;
}

static const HashOps pair_ops = {.key = itself, .hash = pair_hash, .equal = pair_equal};

START_TEST(test_struct_keys) {
        PairKey keys[64];
        Hashmap *h;

        ck_assert_int_eq(hashmap_new(&pair_ops, &h), 0);
        for (uint32_t i = 0; i < 64; i++) {
                keys[i] = (PairKey){.a = i / 8, .b = i % 8};
                ck_assert_int_eq(hashmap_put(h, &keys[i]), 0);
        }
        for (uint32_t i = 0; i < 64; i++) {
                PairKey k = {.a = i / 8, .b = i % 8}, swapped = {.a = i % 8, .b = i / 8};

                ck_assert_uint_eq(hash_bytes(&k, sizeof k), hash_bytes(&keys[i], sizeof k));
                ck_assert_ptr_eq(hashmap_get(h, &k), &keys[i]);
                ck_assert_ptr_eq(hashmap_get(h, &swapped), &keys[(i % 8) * 8 + i / 8]);
        }
        ck_assert_ptr_null(hashmap_get(h, &(PairKey){.a = 8, .b = 0}));
        /* Byte order matters: the hash is not a sum of the bytes. */
        ck_assert_uint_ne(hash_bytes(&keys[1], sizeof(PairKey)),
                          hash_bytes(&keys[8], sizeof(PairKey)));
        hashmap_free(h);
}
END_TEST

START_TEST(test_hash_bytes_every_byte_counts) {
        /* Whole words and the bytes after them: a change in any byte changes the hash. */
        static const size_t sizes[] = {1, 7, 8, 12, 24, 28};
        uint8_t zero[28] = {}, key[28];

        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
                for (size_t i = 0; i < sizes[s]; i++) {
                        memset(key, 0, sizeof key);
                        key[i] = 1;
                        ck_assert_uint_ne(hash_bytes(key, sizes[s]), hash_bytes(zero, sizes[s]));
                        ck_assert_uint_eq(hash_bytes(key, sizes[s]), hash_bytes(key, sizes[s]));
                }
        /* The length counts too, not only the bytes. */
        ck_assert_uint_ne(hash_bytes(zero, 8), hash_bytes(zero, 16));
}
END_TEST

static Suite *hashmap_suite(void) {
        Suite *s = suite_create("hashmap");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_null_and_empty);
        tcase_add_test(tc, test_put_get_duplicate);
        tcase_add_test(tc, test_many_keys);
        tcase_add_test(tc, test_drain_with_first);
        tcase_add_test(tc, test_string_keys);
        tcase_add_test(tc, test_collisions);
        tcase_add_test(tc, test_struct_keys);
        tcase_add_test(tc, test_hash_bytes_every_byte_counts);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(hashmap_suite)
