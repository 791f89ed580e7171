/* SPDX-License-Identifier: MIT */
#pragma once

/* What one uid holds in the daemon, over all its callers: the per-user quotas are checked here,
 * on top of the daemon-wide limits, so that one local user cannot take what every other user
 * needs. Root is bounded by the daemon-wide limits alone; everyone else by the per-user quotas
 * and by the daemon-wide limits less a reserve kept for root (USER_ROOT_RESERVE_DIVISOR). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/manager.h"

/* Non-root users together may take the daemon-wide limits less 1/8. */
#define USER_ROOT_RESERVE_DIVISOR 8

typedef struct User {
        Manager *manager;
        uid_t uid;
        uint32_t n_callers; /* the user lives while it has callers */
        uint32_t n_clients;
        uint32_t n_requests;
        uint32_t n_channels;
        uint32_t n_sockets; /* registered on its channels */
        uint64_t payload_bytes;
} User;

extern const HashOps user_hash_ops; /* key: const uid_t * */

/* The user for uid with one caller more: -EDQUOT at MaxCallersPerUser. */
int user_acquire(Manager *m, uid_t uid, User **ret);
/* One caller less; frees the user with its last. NULL-safe. */
void user_release(User *u);

/* The share of a daemon-wide limit u may reach. */
uint64_t user_share(const User *u, uint64_t limit);
/* Whether u may hold one client, request (with payload_len bytes) or channel more: 0, or
 * -EDQUOT at its quota, -ENOBUFS at its share of the daemon-wide limit. */
int user_can_add_client(const User *u);
int user_can_add_request(const User *u, size_t payload_len);
int user_can_add_channel(const User *u);
/* The same for a socket registered on a channel. */
int user_can_add_socket(const User *u);
