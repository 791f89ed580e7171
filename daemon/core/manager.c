/* SPDX-License-Identifier: MIT */
#include "core/manager.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "coap-option.h"
#include "config/config.h"
#include "core/caller.h"
#include "core/client.h"
#include "core/socket-tx.h"
#include "core/socket.h"
#include "core/user.h"
#include "util/log.h"

int manager_arm_timer(sd_event_source *timer, uint64_t usec) {
        int r = sd_event_source_set_time(timer, usec);

        return r < 0 ? r : sd_event_source_set_enabled(timer, SD_EVENT_ONESHOT);
}

/* Armed already: for an earlier time, from which its handler arms it again if need be. */
static int manager_arm_timer_if_off(sd_event_source *timer, uint64_t usec) {
        int enabled = SD_EVENT_OFF;

        if (sd_event_source_get_enabled(timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return 0;
        return manager_arm_timer(timer, usec);
}

static int manager_on_trim(sd_event_source *source, uint64_t usec, void *userdata) {
        (void) source;
        (void) usec;
        (void) userdata;
        (void) malloc_trim(0);
        return 0;
}

/* glibc keeps the heap pages it got back for later allocations: once 10,000 observations had
 * ended, the daemon still held the 16 MiB they took. Sockets hold most of what requests leave
 * behind, so a while after sockets were freed the free pages go back to the system; at most once
 * per MANAGER_TRIM_DELAY_USEC while sockets keep going. */
static void manager_schedule_trim(Manager *m, uint64_t now) {
        int r = manager_arm_timer_if_off(m->trim_source, now + MANAGER_TRIM_DELAY_USEC);

        if (r < 0)
                log_debug_errno(r, "Failed to schedule returning freed memory, ignoring: %m");
}

static int manager_on_gc(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t next = UINT64_MAX;
        bool freed = false;
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
                freed = socket_collect(s) || freed;
        }
        if (freed)
                manager_schedule_trim(m, usec);
        if (next == UINT64_MAX)
                return 0;
        r = manager_arm_timer(m->gc_source, next);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule socket collection, ignoring: %m");
        return 0;
}

void manager_queue_socket_gc(Manager *m, Socket *s) {
        int r;

        s->idle_since = manager_now(m);
        if (s->in_gc_queue)
                return;
        LIST_PREPEND(gc_queue, m->gc_queue, s);
        s->in_gc_queue = true;
        if (!m->gc_source) /* shutting down: manager_free() frees every socket */
                return;
        /* An earlier socket's collection rearms it for the later ones. */
        r = manager_arm_timer_if_off(m->gc_source, s->idle_since + SOCKET_LINGER_USEC);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule socket collection, ignoring: %m");
}

void manager_config_from_config(const Config *c, ManagerConfig *ret) {
        int szx = coap_size_to_szx(c->block_size);

        *ret = (ManagerConfig){
                .limits =
                        {
                                .max_callers = c->max_callers,
                                .max_callers_per_user = c->max_callers_per_user,
                                .max_channels_per_user = c->max_channels_per_user,
                                .max_clients_per_user = c->max_clients_per_user,
                                .max_requests_per_user = c->max_requests_per_user,
                                .max_payload_bytes_per_user = c->max_payload_bytes_per_user,
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

static uint64_t manager_loop_now(Manager *m) {
        uint64_t now = 0;

        /* The time of the current loop iteration; fails only if the clock is unsupported. */
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                log_error("Failed to read CLOCK_MONOTONIC");
        return now;
}

int manager_new(const ManagerConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t mask;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        m->config = *config;
        m->clock = manager_loop_now;
        m->socket_epoll_fd = -EBADF;

        r = hashmap_new(&caller_hash_ops, &m->callers);
        if (r < 0)
                return r;
        r = hashmap_new(&user_hash_ops, &m->users);
        if (r < 0)
                return r;
        r = hashmap_new(&client_hash_ops, &m->clients);
        if (r < 0)
                return r;
        r = hashmap_new(&request_hash_ops, &m->requests);
        if (r < 0)
                return r;
        r = hashmap_new(&socket_hash_ops, &m->sockets);
        if (r < 0)
                return r;

        /* Not sd_event_default(): the default loop checks its thread with a gettid() system call on
         * every iteration. */
        r = sd_event_new(&m->event);
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

        r = socket_reader_new(m);
        if (r < 0)
                return r;
        r = socket_timers_new(m);
        if (r < 0)
                return r;

        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable watchdog, ignoring: %m");

        r = sd_event_add_time(m->event, &m->gc_source, CLOCK_MONOTONIC, 0, 10 * USEC_PER_MSEC,
                              manager_on_gc, m);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(m->gc_source, SD_EVENT_OFF);
        if (r < 0)
                return r;
        r = sd_event_add_time(m->event, &m->trim_source, CLOCK_MONOTONIC, 0, USEC_PER_SEC,
                              manager_on_trim, m);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(m->trim_source, SD_EVENT_OFF);
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
        m->trim_source = sd_event_source_disable_unref(m->trim_source);
        while ((c = hashmap_first(m->callers)))
                caller_free(c);
        while ((s = hashmap_first(m->sockets)))
                socket_free(s);
        sd_event_source_disable_unref(m->socket_timer_source);
        coap_heap_done(&m->socket_timers);
        coap_heap_done(&m->socket_latest);
        /* It owns socket_epoll_fd. */
        sd_event_source_disable_unref(m->socket_epoll_source);
        free(m->socket_rx);
        socket_tx_free(m->socket_tx);

        sd_event_unref(m->event);

        hashmap_free(m->callers);
        hashmap_free(m->users);
        hashmap_free(m->clients);
        hashmap_free(m->requests);
        hashmap_free(m->sockets);
        free(m);
        return NULL;
}

int manager_run(Manager *m) {
        return sd_event_loop(m->event);
}

uint64_t manager_now(Manager *m) {
        return m->clock(m);
}

void manager_get_stats(Manager *m, CoapEngineStats *ret) {
        *ret = m->stats;
}

Caller *manager_find_caller(Manager *m, const char *name) {
        return name ? hashmap_get(m->callers, name) : NULL;
}

int manager_add_flush_hook(Manager *m, ManagerFlushFunc func, void *userdata) {
        if (m->n_flush_hooks >= MANAGER_FLUSH_HOOKS_MAX)
                return -ENOSPC;
        m->flush_hooks[m->n_flush_hooks].func = func;
        m->flush_hooks[m->n_flush_hooks].userdata = userdata;
        m->n_flush_hooks++;
        return 0;
}

void manager_flush(Manager *m) {
        for (size_t i = 0; i < m->n_flush_hooks; i++)
                m->flush_hooks[i].func(m->flush_hooks[i].userdata);
}

void manager_set_channel_opener(Manager *m, ManagerOpenChannelFunc func, void *userdata) {
        m->open_channel = func;
        m->open_channel_userdata = userdata;
}

int manager_open_channel(Manager *m, Caller *caller, int *ret_peer_fd) {
        int r;

        if (!m->open_channel)
                return -EOPNOTSUPP;
        r = user_can_add_channel(caller->user);
        if (r < 0)
                return r;
        r = m->open_channel(m->open_channel_userdata, caller, ret_peer_fd);
        if (r < 0)
                return r;
        caller->user->n_channels++;
        return 0;
}
