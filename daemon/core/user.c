/* SPDX-License-Identifier: MIT */
#include "core/user.h"

#include <errno.h>
#include <stdlib.h>

#include "util/log.h"

static uint64_t uid_hash(const void *p) {
        return hash_bytes(p, sizeof(uid_t));
}

static bool uid_equal(const void *a, const void *b) {
        return *(const uid_t *) a == *(const uid_t *) b;
}

static const void *user_key(const void *v) {
        return &((const User *) v)->uid;
}

const HashOps user_hash_ops = {.key = user_key, .hash = uid_hash, .equal = uid_equal};

int user_acquire(Manager *m, uid_t uid, User **ret) {
        User *u = hashmap_get(m->users, &uid);
        int r;

        if (u) {
                if (uid != 0 && u->n_callers >= m->config.limits.max_callers_per_user)
                        return -EDQUOT;
                u->n_callers++;
                *ret = u;
                return 0;
        }
        u = calloc(1, sizeof(User));
        if (!u)
                return -ENOMEM;
        u->manager = m;
        u->uid = uid;
        u->n_callers = 1;
        r = hashmap_put(m->users, u);
        if (r < 0) {
                free(u);
                return r;
        }
        *ret = u;
        return 0;
}

void user_release(User *u) {
        if (!u || --u->n_callers > 0)
                return;
        hashmap_remove(u->manager->users, &u->uid);
        free(u);
}

uint64_t user_share(const User *u, uint64_t limit) {
        return u->uid == 0 ? limit : limit - limit / USER_ROOT_RESERVE_DIVISOR;
}

int user_can_add_client(const User *u) {
        const Limits *l = &u->manager->config.limits;

        if (u->uid != 0 && u->n_clients >= l->max_clients_per_user)
                return -EDQUOT;
        if (hashmap_size(u->manager->clients) >= user_share(u, l->max_clients))
                return -ENOBUFS;
        return 0;
}

int user_can_add_request(const User *u, size_t payload_len) {
        const Limits *l = &u->manager->config.limits;

        if (u->uid != 0 && (u->n_requests >= l->max_requests_per_user ||
                            payload_len > l->max_payload_bytes_per_user - u->payload_bytes))
                return -EDQUOT;
        if (hashmap_size(u->manager->requests) >= user_share(u, l->max_requests) ||
            u->manager->payload_bytes > user_share(u, l->max_payload_bytes_total) ||
            payload_len > user_share(u, l->max_payload_bytes_total) - u->manager->payload_bytes)
                return -ENOBUFS;
        return 0;
}

int user_can_add_socket(const User *u) {
        const Limits *l = &u->manager->config.limits;

        if (u->uid != 0 && u->n_sockets >= l->max_requests_per_user)
                return -EDQUOT;
        if (u->manager->n_registered_sockets >= user_share(u, l->max_requests))
                return -ENOBUFS;
        return 0;
}

int user_can_add_channel(const User *u) {
        const Limits *l = &u->manager->config.limits;

        if (u->uid != 0 && u->n_channels >= l->max_channels_per_user)
                return -EDQUOT;
        return 0;
}
