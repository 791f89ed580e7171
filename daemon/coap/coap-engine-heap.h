/* SPDX-License-Identifier: MIT */
#pragma once

/* A binary min-heap of timers for the engine. Timers are embedded in their owners; each knows
 * its heap slot, so removal and rescheduling are O(log n). Pure: libc only. */

#include <stddef.h>
#include <stdint.h>

#define COAP_TIMER_IDLE SIZE_MAX

typedef struct CoapTimer {
        uint64_t deadline;
        size_t idx; /* slot in the heap, COAP_TIMER_IDLE when not queued */
} CoapTimer;

/* The first timer has its slot in the heap itself (most sockets have one timer at a time, and an
 * array of its own cost 32 bytes): a heap must not move once it has reserved room. */
#define COAP_HEAP_SMALL 1

typedef struct CoapHeap {
        CoapTimer **items; /* small, or an array of cap */
        uint32_t n;        /* 32 bits: a heap in every engine, of each socket */
        uint32_t cap;
        CoapTimer *small[COAP_HEAP_SMALL];
} CoapHeap;

void coap_heap_done(CoapHeap *h);
/* Makes room for n timers, so that coap_timer_set() cannot fail. 0 or -ENOMEM (also past
 * UINT32_MAX timers). */
int coap_heap_reserve(CoapHeap *h, size_t n);
/* Queues t at deadline, or moves it there if queued. Needs reserved room. */
void coap_timer_set(CoapHeap *h, CoapTimer *t, uint64_t deadline);
void coap_timer_stop(CoapHeap *h, CoapTimer *t);
/* Earliest timer, or NULL. */
CoapTimer *coap_heap_peek(const CoapHeap *h);
