/* SPDX-License-Identifier: MIT */
#include "coap-engine-heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void coap_heap_done(CoapHeap *h) {
        if (h->items != h->small)
                free(h->items);
        *h = (CoapHeap){};
}

/* The first array past the slot in the heap; doubled as needed. */
#define HEAP_CAPACITY_MIN 4

int coap_heap_reserve(CoapHeap *h, size_t n) {
        CoapTimer **items;
        size_t cap;

        if (n <= h->cap)
                return 0;
        if (n > UINT32_MAX)
                return -ENOMEM;
        if (n <= COAP_HEAP_SMALL) {
                h->items = h->small;
                h->cap = COAP_HEAP_SMALL;
                return 0;
        }
        cap = h->cap < HEAP_CAPACITY_MIN ? HEAP_CAPACITY_MIN : h->cap;
        while (cap < n)
                cap *= 2;
        if (cap > UINT32_MAX)
                cap = UINT32_MAX; /* still >= n */
        if (h->items == h->small) {
                items = malloc(cap * sizeof(CoapTimer *));
                if (items)
                        memcpy(items, h->small, h->n * sizeof(CoapTimer *));
        } else
                items = realloc(h->items, cap * sizeof(CoapTimer *));
        if (!items)
                return -ENOMEM;
        h->items = items;
        h->cap = (uint32_t) cap;
        return 0;
}

static void heap_place(CoapHeap *h, CoapTimer *t, size_t i) {
        h->items[i] = t;
        t->idx = i;
}

static void heap_sift_up(CoapHeap *h, size_t i) {
        CoapTimer *t = h->items[i];

        while (i > 0) {
                size_t parent = (i - 1) / 2;

                if (h->items[parent]->deadline <= t->deadline)
                        break;
                heap_place(h, h->items[parent], i);
                i = parent;
        }
        heap_place(h, t, i);
}

static void heap_sift_down(CoapHeap *h, size_t i) {
        CoapTimer *t = h->items[i];

        for (;;) {
                size_t child = 2 * i + 1;

                if (child >= h->n)
                        break;
                if (child + 1 < h->n && h->items[child + 1]->deadline < h->items[child]->deadline)
                        child++;
                if (t->deadline <= h->items[child]->deadline)
                        break;
                heap_place(h, h->items[child], i);
                i = child;
        }
        heap_place(h, t, i);
}

void coap_timer_set(CoapHeap *h, CoapTimer *t, uint64_t deadline) {
        t->deadline = deadline;
        if (t->idx == COAP_TIMER_IDLE) {
                heap_place(h, t, h->n++);
                heap_sift_up(h, t->idx);
                return;
        }
        heap_sift_up(h, t->idx);
        heap_sift_down(h, t->idx);
}

void coap_timer_stop(CoapHeap *h, CoapTimer *t) {
        size_t i = t->idx;
        CoapTimer *last;

        if (i == COAP_TIMER_IDLE)
                return;
        t->idx = COAP_TIMER_IDLE;
        last = h->items[--h->n];
        if (last == t)
                return;
        heap_place(h, last, i);
        heap_sift_up(h, i);
        heap_sift_down(h, last->idx);
}

CoapTimer *coap_heap_peek(const CoapHeap *h) {
        return h->n > 0 ? h->items[0] : NULL;
}
