/* SPDX-License-Identifier: MIT */
#include "manager.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "bus-client.h"
#include "bus-manager.h"
#include "channel.h"
#include "client.h"
#include "coap-option.h"
#include "config.h"
#include "internal/bus-api.h"
#include "socket.h"
#include "util/log.h"

static uint64_t socket_key_hash(const void *key) {
        return hash_bytes(key, sizeof(SocketKey));
}

static bool socket_key_equal(const void *a, const void *b) {
        return memcmp(a, b, sizeof(SocketKey)) == 0;
}

static const HashOps socket_key_hash_ops = {.hash = socket_key_hash, .equal = socket_key_equal};

int manager_arm_timer(sd_event_source *timer, uint64_t usec) {
        int r = sd_event_source_set_time(timer, usec);

        return r < 0 ? r : sd_event_source_set_enabled(timer, SD_EVENT_ONESHOT);
}

static int manager_on_gc(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t next = UINT64_MAX;
        Socket *s, *n;
        int r;

        (void) source;
        LIST_FOREACH_SAFE(gc_queue, s, n, m->gc_queue) {
                if (s->n_refs == 0 && s->idle_since + SOCKET_LINGER_USEC > usec) {
                        next = MIN(next, s->idle_since + SOCKET_LINGER_USEC);
                        continue;
                }
                LIST_REMOVE(gc_queue, m->gc_queue, s);
                s->in_gc_queue = false;
                (void) socket_collect(s);
        }
        if (next == UINT64_MAX)
                return 0;
        r = manager_arm_timer(m->gc_source, next);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule socket collection, ignoring: %m");
        return 0;
}

void manager_queue_socket_gc(Manager *m, Socket *s) {
        int enabled = SD_EVENT_OFF, r;

        s->idle_since = manager_now(m);
        if (s->in_gc_queue)
                return;
        LIST_PREPEND(gc_queue, m->gc_queue, s);
        s->in_gc_queue = true;
        if (!m->gc_source) /* shutting down: manager_free() frees every socket */
                return;
        /* Armed already: for an earlier socket, which rearms it for the later ones. */
        if (sd_event_source_get_enabled(m->gc_source, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return;
        r = manager_arm_timer(m->gc_source, s->idle_since + SOCKET_LINGER_USEC);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule socket collection, ignoring: %m");
}

static int manager_on_flush(sd_event_source *source, void *userdata) {
        (void) source;
        channel_flush_all(userdata);
        return 0;
}

static int manager_on_coalesce(sd_event_source *source, uint64_t usec, void *userdata) {
        (void) source, (void) usec;
        channel_flush_all(userdata);
        return 0;
}

void manager_config_from_config(const Config *c, ManagerConfig *ret) {
        int szx = coap_size_to_szx(c->block_size);

        *ret = (ManagerConfig){
                .limits =
                        {
                                .max_clients_per_caller = c->max_clients_per_caller,
                                .max_clients = c->max_clients,
                                .max_requests_per_client = c->max_requests_per_client,
                                .max_requests = c->max_requests,
                                .max_payload_bytes =
                                        (uint32_t) MIN(c->max_payload_bytes, UINT32_MAX),
                                .max_payload_bytes_total = c->max_payload_bytes_total,
                                .max_queued_bytes_per_caller = c->max_queued_bytes_per_caller,
                                .bus_queue_warn = LIMITS_DEFAULT.bus_queue_warn,
                        },
                .tx_params =
                        {
                                .ack_timeout_ms = c->ack_timeout_ms,
                                .ack_random_percent = c->ack_random_percent,
                                .backoff_percent = c->backoff_percent,
                                .max_retransmission = c->max_retransmit,
                        },
                /* The parser only accepts powers of two within 16..1024. */
                .block_szx = szx >= 0 ? (uint8_t) szx : COAP_BLOCK_SZX_MAX,
        };
}

int manager_new(const ManagerConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t mask;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        m->config = *config;

        r = hashmap_new(&string_hash_ops, &m->callers);
        if (r < 0)
                return r;
        r = hashmap_new(&uint64_hash_ops, &m->clients);
        if (r < 0)
                return r;
        r = hashmap_new(&uint64_hash_ops, &m->requests);
        if (r < 0)
                return r;
        r = hashmap_new(&socket_key_hash_ops, &m->sockets);
        if (r < 0)
                return r;

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;

        /* SIGTERM and SIGINT end the loop with exit code 0 (a NULL handler exits with userdata). */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        r = sd_event_add_signal(m->event, NULL, SIGTERM, NULL, NULL);
        if (r < 0)
                return r;
        r = sd_event_add_signal(m->event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return r;

        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable watchdog, ignoring: %m");

        r = sd_event_add_defer(m->event, &m->flush_source, manager_on_flush, m);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(m->flush_source, SD_EVENT_OFF);
        if (r < 0)
                return r;

        /* Accuracy 0 would be sd-event's default of 250 ms. */
        r = sd_event_add_time(m->event, &m->coalesce_source, CLOCK_MONOTONIC, 0, 100 /* us */,
                              manager_on_coalesce, m);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(m->coalesce_source, SD_EVENT_OFF);
        if (r < 0)
                return r;

        r = sd_event_add_time(m->event, &m->gc_source, CLOCK_MONOTONIC, 0, 10 * USEC_PER_MSEC,
                              manager_on_gc, m);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(m->gc_source, SD_EVENT_OFF);
        if (r < 0)
                return r;
        /* Normal priority: an idle one would starve while a busy caller keeps other sources
         * pending, and unused sockets would pile up. Being an event source of its own, it never
         * runs inside an engine or DTLS callback. */

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        Caller *c;
        Socket *s;

        if (!m)
                return NULL;

        m->gc_source = sd_event_source_disable_unref(m->gc_source);
        while ((c = hashmap_first(m->callers)))
                caller_free(c);
        m->flush_source = sd_event_source_disable_unref(m->flush_source);
        m->coalesce_source = sd_event_source_disable_unref(m->coalesce_source);
        while ((s = hashmap_first(m->sockets)))
                socket_free(s);

        sd_bus_slot_unref(m->manager_slot);
        sd_bus_slot_unref(m->client_slot);
        sd_bus_slot_unref(m->enumerator_slot);
        sd_bus_flush_close_unref(m->bus);

        sd_event_unref(m->event);

        hashmap_free(m->callers);
        hashmap_free(m->clients);
        hashmap_free(m->requests);
        hashmap_free(m->sockets);
        free(m->channel_rx_buffer);
        free(m);
        return NULL;
}

static int manager_open_bus(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!address)
                return sd_bus_open_system_with_description(ret, "coapclientd");

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_description(bus, "coapclientd");
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

int manager_connect_bus(Manager *m, const char *address) {
        int r;

        r = bus_api_register_errors();
        if (r < 0)
                return log_error_errno(r, "Failed to register D-Bus error names: %m");

        r = manager_open_bus(address, &m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to %s: %m",
                                       address ?: "the system bus");
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        /* Losing the bus ends the loop (with a failure exit code). */
        r = sd_bus_set_exit_on_disconnect(m->bus, true);
        if (r < 0)
                return log_error_errno(r, "Failed to set exit on disconnect: %m");

        r = bus_manager_register(m);
        if (r < 0)
                return r;
        r = bus_client_register(m);
        if (r < 0)
                return r;

        r = sd_bus_request_name(m->bus, COAPCLIENTD_BUS_NAME, 0);
        if (r == -EEXIST)
                return log_error_errno(r, "Bus name %s is already taken by another process.",
                                       COAPCLIENTD_BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "Failed to request bus name %s: %m",
                                       COAPCLIENTD_BUS_NAME);
        return 0;
}

int manager_run(Manager *m) {
        return sd_event_loop(m->event);
}

uint64_t manager_now(Manager *m) {
        uint64_t now = 0;

        /* The time of the current loop iteration; fails only if the clock is unsupported. */
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                log_error("Failed to read CLOCK_MONOTONIC");
        return now;
}

Caller *manager_find_caller(Manager *m, const char *name) {
        return name ? hashmap_get(m->callers, name) : NULL;
}

static int caller_on_vanish(sd_bus_track *track, void *userdata) {
        Caller *c = userdata;

        (void) track;
        log_debug("Caller %s left: freeing its %" PRIu32 " clients", c->name, c->n_clients);
        caller_free(c);
        return 0;
}

int manager_get_caller(Manager *m, const char *name, Caller **ret) {
        Caller *c;
        int r;

        c = manager_find_caller(m, name);
        if (c) {
                *ret = c;
                return 0;
        }

        c = calloc(1, sizeof(Caller));
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->name = strdup(name);
        if (!c->name) {
                free(c);
                return -ENOMEM;
        }
        r = hashmap_put(m->callers, c->name, c);
        if (r < 0) {
                free(c->name);
                free(c);
                return r;
        }
        r = sd_bus_track_new(m->bus, &c->track, caller_on_vanish, c);
        if (r >= 0)
                r = sd_bus_track_add_name(c->track, name);
        if (r < 0) {
                caller_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

Caller *caller_free(Caller *c) {
        if (!c)
                return NULL;
        channel_free(c->channel);
        while (c->clients)
                client_free(c->clients);
        hashmap_remove(c->manager->callers, c->name);
        sd_bus_slot_unref(c->probe_slot);
        sd_event_source_disable_unref(c->stall_source);
        sd_bus_track_unref(c->track);
        free(c->name);
        free(c);
        return NULL;
}

void caller_gc(Caller *c) {
        if (c && c->n_clients == 0 && !c->channel)
                caller_free(c);
}

/* What the caller has not read yet: its unacknowledged signals and its channel's backlog. */
static uint64_t caller_unread(const Caller *c) {
        return (c->unprobed ? 0 : c->sent_bytes - c->acked_bytes) +
               channel_unread_bytes(c->channel);
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
                /* A resumed download that fails sends a signal, which may pause again. */
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
        return 0;
}

static void caller_stall(Caller *c) {
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

static int caller_on_probe_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);

/* Pings after every sixteenth of the budget, and at once while the caller is held back. */
static void caller_maybe_probe(Caller *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        uint64_t interval = c->manager->config.limits.max_queued_bytes_per_caller / 16;
        int r;

        if (c->unprobed || c->probe_slot)
                return;
        if (c->sent_bytes - c->probe_mark < interval &&
            !((c->paused || c->stalled) && c->sent_bytes > c->acked_bytes))
                return;
        r = sd_bus_message_new_method_call(c->manager->bus, &m, c->name, "/",
                                           "org.freedesktop.DBus.Peer", "Ping");
        if (r >= 0)
                r = sd_bus_message_set_auto_start(m, false);
        if (r >= 0)
                r = sd_bus_call_async(c->manager->bus, &c->probe_slot, m, caller_on_probe_reply, c,
                                      CALLER_PROBE_TIMEOUT_USEC);
        if (r < 0) {
                log_warning_errno(r, "Failed to ping caller %s, ignoring: %m", c->name);
                return;
        }
        c->probe_mark = c->sent_bytes;
}

static int caller_on_probe_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Caller *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *sender = sd_bus_message_get_sender(reply);

        (void) ret_error;
        c->probe_slot = sd_bus_slot_unref(c->probe_slot);
        if (e && !(sender && strcmp(sender, c->name) == 0)) {
                /* From the bus or our own sd-bus, not from the caller: nothing was read. */
                if (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY) ||
                    sd_bus_error_has_name(e, SD_BUS_ERROR_TIMEOUT)) {
                        c->unresponsive = true;
                        caller_stall(c);
                        caller_maybe_probe(c);
                } else if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                           sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
                           sd_bus_error_has_name(e, SD_BUS_ERROR_DISCONNECTED))
                        log_debug("Caller %s is leaving", c->name); /* the track frees it */
                else {
                        log_warning("Cannot ping caller %s (%s): its signals go without flow "
                                    "control",
                                    c->name, e->name);
                        c->unprobed = true;
                        c->stalled = false;
                        caller_set_paused(c, false);
                }
                return 0;
        }

        /* Any answer from the caller itself comes after it read everything sent before. */
        c->acked_bytes = c->probe_mark;
        c->unresponsive = false;
        caller_check_flow(c);
        caller_maybe_probe(c);
        return 0;
}

void caller_check_flow(Caller *c) {
        uint64_t budget = c->manager->config.limits.max_queued_bytes_per_caller,
                 unread = caller_unread(c);

        if (!c->stalled && unread > 2 * budget)
                caller_stall(c);
        else if (!c->stalled && unread > budget)
                caller_set_paused(c, true);
        else if (unread <= budget / 2 && !c->unresponsive) {
                if (c->stalled)
                        log_info("Caller %s reads its responses again", c->name);
                c->stalled = false;
                caller_set_paused(c, false);
        }
}

void caller_account_signal(Caller *c, size_t size) {
        c->sent_bytes += size;
        if (c->unprobed)
                return;
        caller_check_flow(c);
        caller_maybe_probe(c);
}

void manager_get_stats(Manager *m, CoapEngineStats *ret) {
        CoapEngineStats st = m->freed_stats;
        HashmapIter it = {};
        void *v;

        while (hashmap_iterate(m->sockets, &it, &v)) {
                const CoapEngineStats *e = coap_engine_get_stats(((Socket *) v)->engine);

                st.messages_sent += e->messages_sent;
                st.messages_received += e->messages_received;
                st.retransmissions += e->retransmissions;
                st.timeouts += e->timeouts;
                st.malformed += e->malformed;
                st.unmatched += e->unmatched;
        }
        *ret = st;
}

void manager_check_bus_queue(Manager *m) {
        uint64_t n;

        if (sd_bus_get_n_queued_write(m->bus, &n) < 0)
                return;
        if (!m->bus_queue_warned && n > m->config.limits.bus_queue_warn) {
                log_warning("%" PRIu64 " messages queued for the bus: a receiver is not reading "
                            "its signals",
                            n);
                m->bus_queue_warned = true;
        } else if (m->bus_queue_warned && n <= m->config.limits.bus_queue_warn / 2)
                m->bus_queue_warned = false;
}
