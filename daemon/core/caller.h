/* SPDX-License-Identifier: MIT */
#pragma once

/* A caller: one peer of the daemon (a D-Bus unique name), the clients it made, and the sinks its
 * events go to (one per front end it uses). Flow control lives here: a caller that leaves too
 * much unread has its downloads paused, then its requests ended. */

#include <stdbool.h>
#include <stdint.h>

#include "core/manager.h"
#include "core/user.h"
#include "util/list.h"

/* Where a front end delivers a caller's events (a D-Bus signal, a data channel frame). Embedded
 * in the front end's own object; the core reaches it only through ops. */
typedef struct CallerSinkOps {
        /* One event of r, whose front end knows it by r->tag; error_message (NULL: none) says
         * more about a final error (e.g. GnuTLS' reason for a DTLS failure). < 0: it could not
         * be delivered. */
        int (*send_event)(CallerSink *sink, Client *c, const Request *r, const CoapEvent *ev,
                          const char *error_message);
        /* Bytes sent to the caller that it has not read yet. */
        uint64_t (*unread)(const CallerSink *sink);
        /* The caller goes: the front end frees its object. */
        void (*free)(CallerSink *sink);
} CallerSinkOps;

struct CallerSink {
        const CallerSinkOps *ops;
        Caller *caller;
        bool holds_caller; /* the caller lives while this sink does, clients or not */
        bool unresponsive; /* the front end cannot tell what was read: hold the caller back */
        LIST_FIELDS(CallerSink, sinks);
};

struct Caller {
        Manager *manager;
        char *name;
        User *user;      /* its uid's quotas */
        Client *clients; /* LIST */
        uint32_t n_clients;
        CallerSink *sinks; /* LIST */

        bool paused;                   /* its downloads hold before their next block */
        bool stalled;                  /* its requests were ended: no events until it catches up */
        sd_event_source *stall_source; /* ends its requests outside any engine call */
};

/* Finds or makes the Caller for a unique name whose connection belongs to uid. -EUSERS: the
 * daemon has its maximum of callers (less root's reserve for others); -EDQUOT: the user has. */
extern const HashOps caller_hash_ops; /* Manager.callers, key: the unique name */

int manager_get_caller(Manager *m, const char *name, uid_t uid, Caller **ret);
/* Frees every client of the caller (their requests dropped without events), its sinks, and the
 * caller. NULL-safe. */
Caller *caller_free(Caller *c);
/* Frees the caller if it has no client and no sink that holds it. */
void caller_gc(Caller *c);

/* Attaches a front end's sink (the caller does not own it until caller_free()). */
void caller_add_sink(Caller *c, CallerSink *sink, const CallerSinkOps *ops, bool holds_caller);
/* Detaches it; requests whose events went there are dropped without events. */
void caller_remove_sink(Caller *c, CallerSink *sink);
CallerSink *caller_find_sink(Caller *c, const CallerSinkOps *ops);

/* Ends the caller's requests with -ENOBUFS (from a defer source) and drops its events until
 * caller_check_flow() finds it caught up. */
void caller_stall(Caller *c);
/* Pauses, stalls or resumes the caller by what it has not read yet, summed over its sinks. Safe
 * from an engine event handler. */
void caller_check_flow(Caller *c);
