/* SPDX-License-Identifier: MIT */
/* The engine's map and heap across their in-place first entries and their tables: the same
 * answers before and after the table comes. */

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "check-main.h"
#include "coap-engine-heap.h"
#include "coap-engine-map.h"

#define N_ITEMS 40

static size_t count_key(const CoapMap *m, uint64_t key) {
        size_t pos = 0, n = 0;

        while (coap_map_next(m, key, &pos))
                n++;
        return n;
}

static size_t count_all(const CoapMap *m) {
        size_t pos = 0, n = 0;

        while (coap_map_iterate(m, &pos))
                n++;
        return n;
}

START_TEST(test_map_inline_entry) {
        int a, b;
        CoapMap m = {};

        ck_assert_ptr_null(coap_map_get(&m, 1));
        ck_assert_int_eq(coap_map_reserve(&m, 1), 0);
        /* One entry needs no table. */
        ck_assert_ptr_null(m.slots);
        coap_map_put(&m, 1, &a);
        ck_assert_ptr_eq(coap_map_get(&m, 1), &a);
        ck_assert_ptr_null(coap_map_get(&m, 2));
        /* Removing what is not there changes nothing. */
        coap_map_remove(&m, 1, &b);
        coap_map_remove(&m, 2, &a);
        ck_assert_uint_eq(m.n, 1);
        coap_map_remove(&m, 1, &a);
        ck_assert_uint_eq(m.n, 0);
        ck_assert_ptr_null(coap_map_get(&m, 1));
        ck_assert_uint_eq(count_all(&m), 0);
        coap_map_done(&m);
}
END_TEST

START_TEST(test_map_to_table_and_back) {
        int v[N_ITEMS];
        CoapMap m = {};

        ck_assert_int_eq(coap_map_reserve(&m, 1), 0);
        coap_map_put(&m, 7, &v[0]);
        /* The second entry brings the table; the first moves into it. */
        for (size_t i = 1; i < N_ITEMS; i++) {
                ck_assert_int_eq(coap_map_reserve(&m, m.n + 1), 0);
                coap_map_put(&m, i % 3 == 0 ? 7 : 100 + i, &v[i]);
        }
        ck_assert_ptr_nonnull(m.slots);
        ck_assert_uint_eq(m.n, N_ITEMS);
        ck_assert_uint_eq(count_all(&m), N_ITEMS);
        /* The multimap keeps every value of a repeated key: 0, 3, 6, ..., 39. */
        ck_assert_uint_eq(count_key(&m, 7), (N_ITEMS + 2) / 3);
        ck_assert_ptr_eq(coap_map_get(&m, 101), &v[1]);
        for (size_t i = 0; i < N_ITEMS; i++)
                coap_map_remove(&m, i % 3 == 0 ? 7 : 100 + i, &v[i]);
        ck_assert_uint_eq(m.n, 0);
        ck_assert_uint_eq(count_all(&m), 0);
        ck_assert_ptr_null(coap_map_get(&m, 7));
        /* The table stays, and takes entries again. */
        coap_map_put(&m, 5, &v[5]);
        ck_assert_ptr_eq(coap_map_get(&m, 5), &v[5]);
        coap_map_done(&m);
        ck_assert_ptr_null(m.slots);
        ck_assert_uint_eq(m.n, 0);
}
END_TEST

static void heap_expect_order(CoapHeap *h, size_t n) {
        uint64_t last = 0;

        for (size_t i = 0; i < n; i++) {
                CoapTimer *t = coap_heap_peek(h);

                ck_assert_ptr_nonnull(t);
                ck_assert_uint_ge(t->deadline, last);
                last = t->deadline;
                coap_timer_stop(h, t);
                ck_assert_uint_eq(t->idx, COAP_TIMER_IDLE);
        }
        ck_assert_ptr_null(coap_heap_peek(h));
}

START_TEST(test_heap_inline_slot) {
        CoapTimer t[N_ITEMS];
        CoapHeap h = {};

        for (size_t i = 0; i < N_ITEMS; i++)
                t[i] = (CoapTimer){.idx = COAP_TIMER_IDLE};
        ck_assert_int_eq(coap_heap_reserve(&h, 1), 0);
        ck_assert_ptr_eq(h.items, h.small);
        coap_timer_set(&h, &t[0], 50);
        coap_timer_set(&h, &t[0], 40); /* moved in place */
        ck_assert_ptr_eq(coap_heap_peek(&h), &t[0]);
        /* More timers: the queued one moves to an array. */
        ck_assert_int_eq(coap_heap_reserve(&h, N_ITEMS), 0);
        ck_assert_ptr_ne(h.items, h.small);
        for (size_t i = 1; i < N_ITEMS; i++)
                coap_timer_set(&h, &t[i], (i * 37) % 101);
        ck_assert_uint_eq(h.n, N_ITEMS);
        heap_expect_order(&h, N_ITEMS);
        coap_heap_done(&h);
        ck_assert_ptr_null(h.items);
}
END_TEST

START_TEST(test_heap_reserve_past_32_bits) {
        CoapHeap h = {};

        ck_assert_int_eq(coap_heap_reserve(&h, 4), 0);
#if SIZE_MAX > UINT32_MAX
        /* Counts are 32-bit: refused before any allocation, the heap as it was. */
        ck_assert_int_eq(coap_heap_reserve(&h, (size_t) UINT32_MAX + 1), -ENOMEM);
        ck_assert_int_eq(coap_heap_reserve(&h, SIZE_MAX), -ENOMEM);
#endif
        ck_assert_uint_eq(h.cap, 4);
        coap_heap_done(&h);
}
END_TEST

static Suite *containers_suite(void) {
        Suite *s = suite_create("engine-containers");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_map_inline_entry);
        tcase_add_test(tc, test_map_to_table_and_back);
        tcase_add_test(tc, test_heap_inline_slot);
        tcase_add_test(tc, test_heap_reserve_past_32_bits);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(containers_suite)
