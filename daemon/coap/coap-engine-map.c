/* SPDX-License-Identifier: MIT */
#include "coap-engine-map.h"

#include <errno.h>
#include <stdlib.h>

/* splitmix64's finalizer: sequential ids and MIDs spread over all slots. */
static uint64_t map_hash(uint64_t k) {
        k ^= k >> 30;
        k *= UINT64_C(0xbf58476d1ce4e5b9);
        k ^= k >> 27;
        k *= UINT64_C(0x94d049bb133111eb);
        k ^= k >> 31;
        return k;
}

void coap_map_done(CoapMap *m) {
        free(m->slots);
        *m = (CoapMap){};
}

/* The first table, past the entry kept in the map itself; doubled as needed. */
#define MAP_CAPACITY_MIN 4

static void map_insert(CoapMapSlot *slots, size_t mask, uint64_t key, void *value) {
        size_t i = (size_t) map_hash(key) & mask;

        while (slots[i].value)
                i = (i + 1) & mask;
        slots[i] = (CoapMapSlot){.key = key, .value = value};
}

int coap_map_reserve(CoapMap *m, size_t n) {
        size_t cap = m->slots ? (size_t) m->mask + 1 : 0, new_cap;
        CoapMapSlot *slots;

        if (m->slots ? n <= cap / 2 : n <= COAP_MAP_SMALL)
                return 0;
        if (n > UINT32_MAX / 2)
                return -ENOMEM;
        new_cap = cap < MAP_CAPACITY_MIN ? MAP_CAPACITY_MIN : cap;
        while (n > new_cap / 2)
                new_cap *= 2;
        slots = calloc(new_cap, sizeof(CoapMapSlot));
        if (!slots)
                return -ENOMEM;
        if (m->slots) {
                for (size_t i = 0; i < cap; i++)
                        if (m->slots[i].value)
                                map_insert(slots, new_cap - 1, m->slots[i].key, m->slots[i].value);
        } else
                for (size_t i = 0; i < m->n; i++)
                        map_insert(slots, new_cap - 1, m->small[i].key, m->small[i].value);
        free(m->slots);
        m->slots = slots;
        m->mask = (uint32_t) (new_cap - 1);
        return 0;
}

void coap_map_put(CoapMap *m, uint64_t key, void *value) {
        if (m->slots)
                map_insert(m->slots, m->mask, key, value);
        else
                m->small[m->n] = (CoapMapSlot){.key = key, .value = value};
        m->n++;
}

void *coap_map_next(const CoapMap *m, uint64_t key, size_t *pos) {
        if (!m->slots) {
                for (; *pos < m->n; (*pos)++)
                        if (m->small[*pos].key == key)
                                return m->small[(*pos)++].value;
                return NULL;
        }
        for (size_t i = ((size_t) map_hash(key) + *pos) & m->mask; m->slots[i].value;
             i = (i + 1) & m->mask) {
                (*pos)++;
                if (m->slots[i].key == key)
                        return m->slots[i].value;
        }
        return NULL;
}

void *coap_map_get(const CoapMap *m, uint64_t key) {
        size_t pos = 0;

        return coap_map_next(m, key, &pos);
}

void coap_map_remove(CoapMap *m, uint64_t key, const void *value) {
        size_t i, j;

        if (!m->slots) {
                for (i = 0; i < m->n; i++)
                        if (m->small[i].key == key && m->small[i].value == value) {
                                m->small[i] = m->small[--m->n];
                                m->small[m->n] = (CoapMapSlot){};
                                return;
                        }
                return;
        }
        for (i = (size_t) map_hash(key) & m->mask; m->slots[i].value; i = (i + 1) & m->mask)
                if (m->slots[i].key == key && m->slots[i].value == value)
                        break;
        if (!m->slots[i].value)
                return;

        /* Backward-shift: pull later entries of the cluster into the hole when their home slot
         * is not between the hole and them. */
        for (j = (i + 1) & m->mask; m->slots[j].value; j = (j + 1) & m->mask) {
                size_t home = (size_t) map_hash(m->slots[j].key) & m->mask;

                if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
                        m->slots[i] = m->slots[j];
                        i = j;
                }
        }
        m->slots[i] = (CoapMapSlot){};
        m->n--;
}

void *coap_map_iterate(const CoapMap *m, size_t *pos) {
        if (!m->slots)
                return *pos < m->n ? m->small[(*pos)++].value : NULL;
        for (; *pos <= m->mask; (*pos)++)
                if (m->slots[*pos].value)
                        return m->slots[(*pos)++].value;
        return NULL;
}
