/* SPDX-License-Identifier: MIT */
#include "core/caller.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "util/log.h"

static const void *caller_key(const void *v) {
        return ((const Caller *) v)->name;
}

const HashOps caller_hash_ops = {.key = caller_key, .hash = string_hash, .equal = string_equal};

int manager_get_caller(Manager *m, const char *name, uid_t uid, Caller **ret) {
        _cleanup_free_ Caller *c = NULL;
        User *u;
        int r;

        c = manager_find_caller(m, name);
        if (c) {
                *ret = TAKE_PTR(c);
                return 0;
        }

        r = user_acquire(m, uid, &u);
        if (r < 0)
                return r;
        if (hashmap_size(m->callers) >= user_share(u, m->config.limits.max_callers)) {
                user_release(u);
                return -EUSERS;
        }
        c = calloc(1, sizeof(Caller));
        if (!c) {
                user_release(u);
                return -ENOMEM;
        }
        c->manager = m;
        c->user = u;
        c->name = strdup(name);
        if (!c->name) {
                user_release(u);
                return -ENOMEM;
        }
        r = hashmap_put(m->callers, c);
        if (r < 0) {
                free(c->name);
                user_release(u);
                return r;
        }
        log_debug("Caller %s (uid %u) arrived", c->name, (unsigned) uid);
        *ret = TAKE_PTR(c);
        return 0;
}

Caller *caller_free(Caller *c) {
        if (!c)
                return NULL;
        while (c->clients)
                client_free(c->clients);
        while (c->sinks) {
                CallerSink *sink = c->sinks;

                LIST_REMOVE(sinks, c->sinks, sink);
                sink->caller = NULL;
                if (sink->holds_caller)
                        c->user->n_channels--;
                sink->ops->free(sink);
        }
        hashmap_remove(c->manager->callers, c->name);
        user_release(c->user);
        sd_event_source_disable_unref(c->stall_source);
        free(c->name);
        free(c);
        return NULL;
}

void caller_gc(Caller *c) {
        CallerSink *sink;

        if (!c || c->n_clients > 0)
                return;
        LIST_FOREACH(sinks, sink, c->sinks)
                if (sink->holds_caller)
                        return;
        caller_free(c);
}

void caller_add_sink(Caller *c, CallerSink *sink, const CallerSinkOps *ops, bool holds_caller) {
        *sink = (CallerSink){
                .ops = ops,
                .caller = c,
                .holds_caller = holds_caller,
        };
        LIST_PREPEND(sinks, c->sinks, sink);
}

void caller_remove_sink(Caller *c, CallerSink *sink) {
        Client *cl;

        LIST_REMOVE(sinks, c->sinks, sink);
        sink->caller = NULL;
        if (sink->holds_caller)
                c->user->n_channels--;
        LIST_FOREACH(clients, cl, c->clients)
                client_drop_sink_requests(cl, sink);
}

CallerSink *caller_find_sink(Caller *c, const CallerSinkOps *ops) {
        CallerSink *sink;

        LIST_FOREACH(sinks, sink, c->sinks)
                if (sink->ops == ops)
                        return sink;
        return NULL;
}

/* What the caller has not read yet, over every front end. */
static uint64_t caller_unread(const Caller *c) {
        const CallerSink *sink;
        uint64_t n = 0;

        LIST_FOREACH(sinks, sink, c->sinks)
                n += sink->ops->unread(sink);
        return n;
}

static bool caller_unresponsive(const Caller *c) {
        const CallerSink *sink;

        LIST_FOREACH(sinks, sink, c->sinks)
                if (sink->unresponsive)
                        return true;
        return false;
}

static void caller_set_paused(Caller *c, bool paused) {
        Client *cl;

        if (c->paused == paused)
                return;
        c->paused = paused;
        log_debug("Caller %s: downloads %s (%" PRIu64 " bytes unread)", c->name,
                  paused ? "paused" : "resumed", caller_unread(c));
        LIST_FOREACH(clients, cl, c->clients) {
                if (paused)
                        client_pause(cl);
                else
                        client_resume(cl);
                /* A resumed download that fails sends an event, which may pause again. */
                if (c->paused != paused)
                        return;
        }
}

/* Its requests end from a defer source: an engine may be emitting one of their events now. */
static int caller_on_stall(sd_event_source *source, void *userdata) {
        Caller *c = userdata;
        Client *cl;

        (void) source;
        LIST_FOREACH(clients, cl, c->clients)
                client_fail_all(cl, -ENOBUFS);
        c->paused = false; /* nothing left to hold */
        manager_flush(c->manager);
        return 0;
}

void caller_stall(Caller *c) {
        int r;

        if (c->stalled)
                return;
        c->stalled = true;
        log_warning("Caller %s is not reading its responses (%" PRIu64
                    " bytes unread): ending its requests with ENOBUFS",
                    c->name, caller_unread(c));
        if (!c->stall_source)
                r = sd_event_add_defer(c->manager->event, &c->stall_source, caller_on_stall, c);
        else
                r = sd_event_source_set_enabled(c->stall_source, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error_errno(r, "Failed to schedule ending the requests of %s: %m", c->name);
}

void caller_check_flow(Caller *c) {
        uint64_t budget = c->manager->config.limits.max_queued_bytes_per_caller,
                 unread = caller_unread(c);

        if (!c->stalled && unread > 2 * budget)
                caller_stall(c);
        else if (!c->stalled && unread > budget)
                caller_set_paused(c, true);
        else if (unread <= budget / 2 && !caller_unresponsive(c)) {
                if (c->stalled)
                        log_info("Caller %s reads its responses again", c->name);
                c->stalled = false;
                caller_set_paused(c, false);
        }
}
