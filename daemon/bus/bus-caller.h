/* SPDX-License-Identifier: MIT */
#pragma once

/* A peer of the daemon on the bus: every unique name that calls us, known from its first call
 * until the bus driver says it left (one NameOwnerChanged subscription for all, not a match rule
 * per peer, which the bus limits). It becomes a core Caller once it makes a client or opens a
 * channel.
 *
 * Everything we send it (method replies, Response signals) dbus-daemon holds, charged to our
 * connection, until it reads it; a peer that never reads would freeze the daemon for everyone.
 * So we ping it every so often: the reply, ordered behind everything sent before, acknowledges
 * it. Unacknowledged bytes pause its downloads, then end its requests (core/caller.c); above
 * twice its budget its calls get no reply (throttled) until it reads; above four times it is cut
 * off: its clients are freed and its calls dropped until it leaves. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "bus/bus.h"
#include "core/caller.h"

/* Calls of one peer that may wait for the bus to say who it is. */
#define BUS_CALLER_DEFERRED_MAX 8

/* A caller's pending Peer.Ping times out after this: it is then treated as stalled. */
#define BUS_CALLER_PROBE_TIMEOUT_USEC (30 * USEC_PER_SEC)

typedef struct BusCaller BusCaller;

struct BusCaller {
        CallerSink sink; /* its Response signals, while caller is set */
        BusService *service;
        char *name;
        Caller *caller;                /* once it made a client or opened a channel */
        char uid_str[12], pid_str[12]; /* "?" until the bus told us */
        uid_t uid;
        pid_t pid;        /* 0 until the bus told us */
        bool creds_known; /* uid is set */
        bool creds_done;  /* the bus answered (creds_known, or it could not tell) */
        sd_bus_slot *creds_slot;
        char *unit; /* its systemd unit, when systemd told us (status, logs) */
        sd_bus_slot *unit_slot;
        struct {
                sd_bus_message *message;
                sd_bus_message_handler_t handler;
                void *userdata;
        } deferred[BUS_CALLER_DEFERRED_MAX]; /* calls waiting for creds_done */
        size_t n_deferred;
        bool creds_queued;
        LIST_FIELDS(BusCaller, creds_queue);

        uint64_t sent_bytes;     /* of the replies and signals sent to it */
        uint64_t acked_bytes;    /* of those it has read */
        uint64_t probe_mark;     /* sent_bytes when the last Ping was sent */
        uint64_t dropped_bytes;  /* replies it did not get while throttled */
        sd_bus_slot *probe_slot; /* the pending Ping */
        bool probe_queued;       /* waiting for a free call slot */
        LIST_FIELDS(BusCaller, probe_queue);
        bool unprobed;  /* the bus policy forbids pinging it: no flow control */
        bool throttled; /* its calls get no reply until it reads */
        bool cut_off;   /* ignored until it leaves */
};

extern const HashOps bus_caller_hash_ops; /* BusService.callers, key: the unique name */

/* The peer for a unique name, made if needed. */
int bus_caller_get_peer(BusService *b, const char *name, BusCaller **ret);
/* The core caller for msg's sender, made if needed: 1 and *ret; 0 when msg must wait until the
 * bus has said who the sender is (its uid decides the quotas): handler(msg, b, ...) runs again
 * then and its reply is sent; < 0 with error set when refused (MaxCallers, MaxCallersPerUser). */
int bus_caller_get(BusService *b, sd_bus_message *msg, sd_bus_message_handler_t handler,
                   Caller **ret, sd_bus_error *error);
/* The uid of msg's sender, as the bus told us (never blocking): 1 and *ret; 0 when msg must
 * wait for the answer (handler(msg, userdata, ...) runs again then and its reply is sent); < 0
 * with error set when the bus cannot tell. */
int bus_caller_get_uid(BusService *b, sd_bus_message *msg, sd_bus_message_handler_t handler,
                       void *userdata, uid_t *ret, sd_bus_error *error);
/* The D-Bus side of a caller, or NULL. */
BusCaller *bus_caller_find(Caller *c);
/* Frees the peer and its caller. NULL-safe. */
BusCaller *bus_caller_free(BusCaller *bc);
/* The bus driver says the name left. */
void bus_caller_vanished(BusService *b, const char *name);
/* Accounts bytes sent to the peer: pings it every so often, holds it back when it falls
 * behind. Safe from an engine event handler. */
void bus_caller_account(BusCaller *bc, size_t size);
/* sd-bus filter for every incoming message: accounts each call's reply to its sender, and
 * drops the calls of throttled or cut-off senders. */
int bus_caller_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
