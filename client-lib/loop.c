/* SPDX-License-Identifier: MIT */

/* The process-wide half of the library: one bus connection shared by every client, the loop
 * that reads it (a thread of ours, or the application's loop through coap_client_process()),
 * and the queue of callbacks. Bus handlers only queue; callbacks run with the lock dropped, so
 * that they may call the API again (Zephyr's deadlock fix #112081). */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include "channel-wire.h"
#include "client-private.h"
#include "internal/bus-api.h"
#include "internal/macro.h"

#define OWNER_MATCH                                                                              \
        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"              \
        "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" COAPCLIENTD_BUS_NAME \
        "'"

Lib lib = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .callbacks_done = PTHREAD_COND_INITIALIZER,
        .epoll_fd = -EBADF,
        .wake_fd = -EBADF,
        .bus_fd = -EBADF,
        .channel_fd = -EBADF,
        .defaults =
                {
                        .ack_timeout = 2000,
                        .ack_random_percent = 150,
                        .coap_backoff_percent = 200,
                        .max_retransmission = 4,
                },
};

_Thread_local const Delivery *lib_current_delivery = NULL;
_Thread_local const Client *lib_current_client = NULL;
/* What coap_client_last_error() returns: per thread, like errno. A refusal's D-Bus error name
 * and message, or a DTLS failure's reason, fit. */
static _Thread_local char last_error[CHANNEL_ERROR_NAME_MAX + CHANNEL_ERROR_MESSAGE_MAX];

Client *client_ref(Client *c) {
        c->n_ref++;
        return c;
}

Client *client_unref(Client *c) {
        if (!c)
                return NULL;
        assert(c->n_ref > 0);
        if (--c->n_ref > 0)
                return NULL;
        assert(!c->requests);
        client_tls_free(c->tls);
        free(c->name);
        free(c->path);
        free(c->daemon);
        free(c);
        return NULL;
}

Request *request_ref(Request *r) {
        r->n_ref++;
        return r;
}

Request *request_unref(Request *r) {
        if (!r)
                return NULL;
        assert(r->n_ref > 0);
        if (--r->n_ref > 0)
                return NULL;
        assert(!r->linked);
        replay_free(r->replay);
        client_unref(r->client);
        free(r);
        return NULL;
}

void request_unlink(Request *r) {
        Client *c = r->client;

        if (!r->linked)
                return;
        if (r->requests_prev)
                r->requests_prev->requests_next = r->requests_next;
        else
                c->requests = r->requests_next;
        if (r->requests_next)
                r->requests_next->requests_prev = r->requests_prev;
        r->requests_prev = r->requests_next = NULL;
        r->linked = false;
        request_unref(r); /* the list's reference */
}

static Delivery *delivery_free(Delivery *d) {
        Request *r;

        if (!d)
                return NULL;
        r = d->request;
        if (!d->spare)
                free(d);
        request_unref(r);
        return NULL;
}

void queue_push_locked(Delivery *d) {
        d->next = NULL;
        if (lib.queue_tail)
                lib.queue_tail->next = d;
        else
                lib.queue_head = d;
        lib.queue_tail = d;
}

static Delivery *queue_pop_locked(void) {
        Delivery *d = lib.queue_head;

        if (!d)
                return NULL;
        lib.queue_head = d->next;
        if (!lib.queue_head)
                lib.queue_tail = NULL;
        return d;
}

void lib_wake_locked(void) {
        if (lib.wake_fd >= 0)
                (void) eventfd_write(lib.wake_fd, 1);
}

/* Calls r's callback (d NULL: -ECANCELED), without the lock. */
static void callback_invoke(Request *r, const Delivery *d) {
        const Delivery *saved_delivery = lib_current_delivery;
        const Client *saved_client = lib_current_client;
        Client *c = r->client;

        if (r->cb) {
                /* An error callback's own message (none: NULL), in the thread where the
                 * application asks. */
                if (!d || d->result < 0)
                        (void) snprintf(last_error, sizeof(last_error), "%s",
                                        d && d->error_message ? d->error_message : "");
                lib_current_delivery = d && d->result >= 0 ? d : NULL;
                lib_current_client = c;
                if (r->api == 403) {
                        const struct coap_client_response_data data = {
                                .result_code = d ? (int16_t) d->result : -ECANCELED,
                                .packet = lib_current_delivery && d->has_packet ? &d->packet : NULL,
                                .offset = d ? (size_t) d->offset : 0,
                                .payload = d ? d->payload : NULL,
                                .payload_len = d ? d->len : 0,
                                .last_block = d ? d->last_block : true,
                                .source = d && d->source_len > 0
                                                  ? (const struct net_sockaddr *) &d->source
                                                  : NULL,
                                .source_len = d ? d->source_len : 0,
                        };

                        ((void (*)(const struct coap_client_response_data *, void *)) r->cb)(
                                &data, r->user_data);
                } else if (d)
                        ((coap_client_response_cb_t) r->cb)((int16_t) d->result, (size_t) d->offset,
                                                            d->payload, d->len, d->last_block,
                                                            r->user_data);
                else
                        ((coap_client_response_cb_t) r->cb)(-ECANCELED, 0, NULL, 0, true,
                                                            r->user_data);
                lib_current_delivery = saved_delivery;
                lib_current_client = saved_client;
        }
}

static void callback_begin_locked(Request *r) {
        r->in_callback = true;
        r->cb_thread = pthread_self();
        r->client->n_running++;
}

/* Makes one callback of r (d NULL: -ECANCELED) with the lock dropped, then the -ECANCELED
 * that another thread deferred meanwhile. The caller holds a reference on r. */
static void callback_locked(Request *r, const Delivery *d) {
        Client *c = r->client;

        callback_begin_locked(r);
        LIB_UNLOCK();
        callback_invoke(r, d);
        LIB_LOCK();
        r->in_callback = false;
        c->n_running--;
        if (r->deferred_cancel) {
                r->deferred_cancel = false;
                callback_locked(r, NULL);
        }
        assert_se_zero(pthread_cond_broadcast(&lib.callbacks_done));
}

/* The final callback of d's request that deliver_queue_locked() held back, made by the
 * library's thread once it dropped the lock for its wait, and not taking it again afterwards:
 * the request is unlinked, no other thread reaches it, so only n_running is shared. A thread
 * waiting for it to drop (client_wait_callbacks_locked()) counts itself first and is signalled
 * under the lock. */
static void callback_held(const Delivery *d) {
        Request *r = d->request;
        Client *c = r->client;

        callback_invoke(r, d);
        r->in_callback = false;
        if (--c->n_running == 0 && lib.n_callback_waiters > 0) {
                LIB_LOCK();
                assert_se_zero(pthread_cond_broadcast(&lib.callbacks_done));
                LIB_UNLOCK();
        }
}

void lib_report_cancel_locked(Request *r) {
        callback_locked(r, NULL);
}

void lib_stream_acked_locked(Request *r, uint64_t offset) {
        Delivery *d;

        if (offset > r->stream_acked)
                r->stream_acked = offset;
        if (r->stream_queued ||
            r->stream_sent + r->stream_block > r->stream_acked + CHANNEL_UPLOAD_WINDOW)
                return;
        d = calloc(1, sizeof(Delivery));
        if (!d) {
                lib_queue_error_locked(r, -ENOMEM);
                return;
        }
        *d = (Delivery){.request = request_ref(r), .pump = true};
        r->stream_queued = true;
        queue_push_locked(d);
}

/* Ends r's stream with error: the daemon drops the request, the callback reports error. */
static void stream_fail_locked(Request *r, int error) {
        Client *c = r->client;
        uint8_t buf[CHANNEL_HEADER_SIZE + 16];
        long n;

        r->streaming = false;
        n = channel_encode_ids(CHANNEL_FRAME_CANCEL, c->id, r->id, buf, sizeof(buf));
        if (n > 0 && lib.channel_daemon && strcmp(r->daemon, lib.channel_daemon) == 0)
                (void) lib_channel_send_locked(buf, (size_t) n, NULL, 0);
        lib_queue_error_locked(r, error);
}

/* Asks r's payload_cb for the blocks that fit the window (with the lock dropped, counted as a
 * running callback of its client, as Zephyr calls it from its thread) and sends them as one
 * UPLOAD frame. */
static void stream_pump_locked(Request *r) {
        const Client *saved_client = lib_current_client;
        Client *c = r->client;
        size_t room, len = 0, block = r->stream_block;
        uint64_t offset = r->stream_sent;
        uint8_t *data, *frame;
        bool last = false;
        long n;
        int k = 0;

        r->stream_queued = false;
        if (!r->streaming || r->cancelled || r->final_queued)
                return;
        room = (size_t) (r->stream_acked + CHANNEL_UPLOAD_WINDOW - offset);
        data = malloc(room);
        frame = malloc(CHANNEL_HEADER_SIZE + 32 + room);
        if (!data || !frame) {
                free(data);
                free(frame);
                stream_fail_locked(r, -ENOMEM);
                return;
        }

        r->in_callback = true;
        r->cb_thread = pthread_self();
        c->n_running++;
        LIB_UNLOCK();
        lib_current_client = c;
        while (!last && len + block <= room) {
                const uint8_t *p = NULL;
                size_t got = block;

                k = r->payload_cb((size_t) (offset + len), &p, &got, &last, r->user_data);
                if (k >= 0 && (got > block || (got > 0 && !p) || (!last && got != block)))
                        k = -EINVAL;
                if (k < 0)
                        break;
                if (got > 0)
                        memcpy(data + len, p, got);
                len += got;
        }
        lib_current_client = saved_client;
        LIB_LOCK();
        r->in_callback = false;
        c->n_running--;

        if (k < 0)
                stream_fail_locked(r, k);
        else if (r->streaming && !r->cancelled && !r->final_queued) {
                n = channel_encode_upload(
                        &(ChannelUpload){
                                .client = c->id,
                                .tag = r->id,
                                .offset = offset,
                                .flags = last ? CHANNEL_UPLOAD_END : 0,
                                .data = data,
                                .len = (uint32_t) len,
                        },
                        frame, CHANNEL_HEADER_SIZE + 32 + room);
                for (;;) {
                        if (!lib.channel_daemon || strcmp(r->daemon, lib.channel_daemon) != 0)
                                break; /* the request is aborted with its channel */
                        k = lib_channel_send_locked(frame, (size_t) n, NULL, 0);
                        if (k != -EAGAIN)
                                break;
                        if (lib_channel_wait_writable_locked(c) < 0)
                                break;
                }
                r->stream_sent = offset + len;
                r->streaming = !last;
                /* Acknowledgements that came meanwhile may leave room already. */
                if (r->streaming)
                        lib_stream_acked_locked(r, r->stream_acked);
        }
        free(data);
        free(frame);
        if (r->deferred_cancel) {
                r->deferred_cancel = false;
                callback_locked(r, NULL);
        }
        assert_se_zero(pthread_cond_broadcast(&lib.callbacks_done));
}

/* Makes the queued callbacks. ret_held (the library's thread): the last of them, when it is a
 * request's final callback, is not made but returned, for callback_held(). */
static void deliver_queue_locked(Delivery **ret_held) {
        Delivery *d;

        while ((d = queue_pop_locked())) {
                Request *r = d->request;

                if (d->pump)
                        stream_pump_locked(r);
                else if (!r->cancelled) {
                        /* After the last callback the request is no longer ongoing: the callback
                         * may start the next one, and cancelling cannot reach it any more. */
                        if (d->final)
                                request_unlink(r);
                        if (ret_held && d->final && !d->silent && !lib.queue_head) {
                                callback_begin_locked(r);
                                *ret_held = d;
                                return;
                        }
                        if (!d->silent)
                                callback_locked(r, d);
                }
                delivery_free(d);
        }
}

void lib_queue_error_locked(Request *r, int error) {
        Delivery *d;

        if (r->final_queued || r->cancelled)
                return;
        /* Preallocated by the request, so that reporting a failure cannot fail. */
        d = TAKE_PTR(r->spare);
        assert(d);
        *d = (Delivery){
                .request = request_ref(r),
                .result = error,
                .last_block = true,
                .final = true,
                .spare = true,
        };
        r->final_queued = true;
        queue_push_locked(d);
        lib_wake_locked();
}

/* How long observations wait for a new coapclientd after theirs went away. */
#define REPLAY_WAIT_USEC (15 * USEC_PER_SEC)

uint64_t lib_now_usec(void) {
        struct timespec ts;

        assert_se_zero(clock_gettime(CLOCK_MONOTONIC, &ts));
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

void lib_abort_requests_locked(const char *daemon) {
        bool replay = false;

        for (Client *c = lib.clients; c; c = c->clients_next)
                for (Request *r = c->requests; r; r = r->requests_next) {
                        if (daemon && strcmp(r->daemon, daemon) != 0)
                                continue;
                        /* Without the bus there is nothing to wait for. */
                        if (daemon && r->replay && !r->final_queued) {
                                replay = replay || !r->replay_pending;
                                r->replay_pending = true;
                                continue;
                        }
                        lib_queue_error_locked(r, -ECONNABORTED);
                }
        if (!replay)
                return;
        /* Try at once: D-Bus activation, or a daemon that only dropped the channel. */
        if (lib.replay_deadline == 0)
                lib.replay_deadline = lib_now_usec() + REPLAY_WAIT_USEC;
        lib.replay_now = true;
        lib_wake_locked();
}

/* The daemon with unique name daemon (NULL: any, the bus is gone) no longer owns the bus name:
 * its client objects are forgotten. */
static void lib_daemon_gone_locked(const char *daemon) {
        /* What it sent before it went still counts; then its channel is closed. */
        if (lib.channel_daemon && (!daemon || strcmp(lib.channel_daemon, daemon) == 0)) {
                lib_channel_read_locked(/* drain= */ true);
                lib_close_channel_locked();
        }
        for (Client *c = lib.clients; c; c = c->clients_next)
                if (!daemon || (c->daemon && strcmp(c->daemon, daemon) == 0)) {
                        /* A daemon that lost the name to a successor may still be connected:
                         * free the object there rather than leave it behind (if it has left,
                         * the bus answers with an error nobody reads). */
                        if (daemon)
                                client_call_close_locked(c);
                        c->path = (free(c->path), NULL);
                        c->daemon = (free(c->daemon), NULL);
                }
        lib_abort_requests_locked(daemon);
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *sender, *name, *old_owner, *new_owner;

        (void) userdata;
        (void) ret_error;
        /* The match's sender= does not filter unicast signals (sd-bus lets a well-known sender
         * match any unique name): another caller could send this one to us directly. */
        sender = sd_bus_message_get_sender(m);
        if (!sender || strcmp(sender, "org.freedesktop.DBus") != 0)
                return 0;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (strcmp(name, COAPCLIENTD_BUS_NAME) != 0)
                return 0;
        if (old_owner[0] != '\0')
                lib_daemon_gone_locked(old_owner);
        /* A new coapclientd: the observations waiting for one go to it. */
        if (new_owner[0] != '\0' && lib.replay_deadline != 0) {
                lib.replay_now = true;
                lib_wake_locked();
        }
        return 0;
}

int lib_setup_fds_locked(void) {
        struct epoll_event ev = {.events = EPOLLIN};
        _cleanup_close_ int epoll_fd = -EBADF, wake_fd = -EBADF;

        if (lib.epoll_fd >= 0)
                return 0;
        epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd < 0)
                return -errno;
        wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (wake_fd < 0)
                return -errno;
        ev.data.fd = wake_fd;
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev) < 0)
                return -errno;
        lib.epoll_fd = TAKE_FD(epoll_fd);
        lib.wake_fd = TAKE_FD(wake_fd);
        return 0;
}

static void lib_update_epoll_locked(void) {
        struct epoll_event ev = {};
        int fd, events;

        if (!lib.bus || lib.epoll_fd < 0)
                return;
        fd = sd_bus_get_fd(lib.bus);
        events = sd_bus_get_events(lib.bus);
        if (fd < 0 || events < 0)
                return;
        ev.events = (events & POLLIN ? EPOLLIN : 0) | (events & POLLOUT ? EPOLLOUT : 0);
        ev.data.fd = fd;
        /* Called at every turn: a system call only when something changed. */
        if (fd == lib.bus_fd && ev.events == lib.bus_epoll_events)
                return;
        if ((fd == lib.bus_fd && epoll_ctl(lib.epoll_fd, EPOLL_CTL_MOD, fd, &ev) >= 0) ||
            epoll_ctl(lib.epoll_fd, EPOLL_CTL_ADD, fd, &ev) >= 0) {
                lib.bus_fd = fd;
                lib.bus_epoll_events = ev.events;
        }
}

uint64_t lib_timeout_locked(void) {
        uint64_t t, now;

        if (lib.queue_head || lib.replay_now)
                return 0;
        if (!lib.bus)
                return UINT64_MAX;
        /* The library's thread has just done it, at the end of lib_process_locked(); an
         * external loop may ask after API calls without processing. */
        if (lib.external)
                lib_update_epoll_locked();
        if (sd_bus_get_timeout(lib.bus, &t) <= 0)
                t = UINT64_MAX;
        if (lib.replay_deadline != 0)
                t = MIN(t, lib.replay_deadline);
        if (lib.sockets_sweep != 0)
                t = MIN(t, lib.sockets_sweep);
        if (t == UINT64_MAX)
                return UINT64_MAX;
        now = lib_now_usec();
        return t > now ? t - now : 0;
}

void lib_process_locked(LibReady ready, Delivery **ret_held) {
        eventfd_t v;

        if ((ready & LIB_READY_WAKE) && lib.wake_fd >= 0)
                (void) eventfd_read(lib.wake_fd, &v);
        if (ready & LIB_READY_CHANNEL)
                lib_channel_read_locked(/* drain= */ false);
        /* The API's own bus calls may have queued messages: they wake us. */
        while (lib.bus && (ready & (LIB_READY_BUS | LIB_READY_WAKE))) {
                int r;

                r = sd_bus_process(lib.bus, NULL);
                if (r < 0 || sd_bus_is_open(lib.bus) <= 0) {
                        lib_bus_broken_locked();
                        r = 0;
                }
                deliver_queue_locked(NULL);
                if (r == 0)
                        break;
        }
        if (lib.replay_deadline != 0) {
                uint64_t now = lib_now_usec();

                if (lib.replay_now || now >= lib.replay_deadline)
                        lib_replay_locked(now);
        }
        if (lib.sockets_sweep != 0) {
                uint64_t now = lib_now_usec();

                if (now >= lib.sockets_sweep)
                        lib_sockets_sweep_locked(now);
        }
        deliver_queue_locked(ret_held);
        lib_update_epoll_locked();
}

LibReady lib_ready_from_events(const struct epoll_event *events, int n) {
        /* Only what is ready: each needless look costs a system call. A timeout (0) is the
         * bus's; an error looks at everything. */
        LibReady ready = n < 0 ? LIB_READY_ALL : n == 0 ? LIB_READY_BUS : 0;

        for (int i = 0; i < n; i++)
                ready |= events[i].data.fd == lib.wake_fd      ? LIB_READY_WAKE
                         : events[i].data.fd == lib.channel_fd ? LIB_READY_CHANNEL
                                                               : LIB_READY_BUS;
        return ready;
}

static void *lib_thread(void *userdata) {
        (void) userdata;

        LibReady ready = LIB_READY_ALL;
        Delivery *held = NULL;

        LIB_LOCK();
        while (!lib.thread_stop) {
                struct epoll_event events[LIB_EPOLL_EVENTS];
                uint64_t t, deadline;
                int ms, n;

                /* The turn's last callback, when it is a request's final one, comes after the
                 * lock is dropped for the wait: an application thread that the callback woke
                 * may run first and take the lock (to send its next request), and the lock is
                 * not needed again until the next turn. */
                lib_process_locked(ready, &held);
                t = lib_timeout_locked();
                deadline = held && t != 0 && t != UINT64_MAX ? lib_now_usec() + t : 0;
                LIB_UNLOCK();
                if (held) {
                        callback_held(held);
                        /* The wait ends where it would have without the callback. */
                        if (deadline != 0) {
                                uint64_t now = lib_now_usec();

                                t = deadline > now ? deadline - now : 0;
                        }
                }
                ms = t == UINT64_MAX ? -1 : (int) MIN((t + 999) / 1000, (uint64_t) INT_MAX);
                n = epoll_wait(lib.epoll_fd, events, ELEMENTSOF(events), ms);
                LIB_LOCK();
                held = delivery_free(held);
                ready = lib_ready_from_events(events, n);
        }
        LIB_UNLOCK();
        return NULL;
}

int lib_start_thread_locked(void) {
        sigset_t all, saved;
        int r;

        if (lib.thread_started)
                return 0;
        r = lib_setup_fds_locked();
        if (r < 0)
                return r;
        /* Signals stay with the application's threads. */
        assert_se_zero(sigfillset(&all));
        assert_se_zero(pthread_sigmask(SIG_BLOCK, &all, &saved));
        r = pthread_create(&lib.thread, NULL, lib_thread, NULL);
        assert_se_zero(pthread_sigmask(SIG_SETMASK, &saved, NULL));
        if (r != 0)
                return -r;
        lib.thread_started = true;
        return 0;
}

_public_ const char *coap_client_last_error(void) {
        return last_error[0] != '\0' ? last_error : NULL;
}

int lib_open_bus_locked(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *owner_slot = NULL;
        const char *address;
        int r;

        if (lib.bus)
                return 0;
        r = bus_api_register_errors();
        if (r < 0)
                return r;

        address = secure_getenv(COAPCLIENTD_BUS_ADDRESS_ENV);
        if (address && address[0] != '\0') {
                r = sd_bus_new(&bus);
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
        } else
                r = sd_bus_open_system(&bus);
        if (r < 0) {
                snprintf(last_error, sizeof(last_error), "Cannot connect to %s: %s",
                         address && address[0] != '\0' ? address : "the system bus", strerror(-r));
                /* No bus: no coapclientd either, as the header says. */
                return r == -ENOENT ? -ECONNREFUSED : r;
        }

        r = sd_bus_add_match(bus, &owner_slot, OWNER_MATCH, on_name_owner_changed, NULL);
        if (r < 0)
                return r;

        lib.owner_slot = TAKE_PTR(owner_slot);
        lib.bus = TAKE_PTR(bus);
        lib_wake_locked();
        return 0;
}

void lib_close_bus_locked(void) {
        if (!lib.bus)
                return;
        if (lib.bus_fd >= 0) {
                (void) epoll_ctl(lib.epoll_fd, EPOLL_CTL_DEL, lib.bus_fd, NULL);
                lib.bus_fd = -EBADF;
        }
        lib_close_channel_locked();
        lib.owner_slot = sd_bus_slot_unref(lib.owner_slot);
        lib.bus = sd_bus_flush_close_unref(lib.bus);
}

void lib_bus_broken_locked(void) {
        lib_daemon_gone_locked(NULL);
        lib_close_bus_locked();
}

int lib_bus_error_to_errno(const sd_bus_error *e, int r) {
        if (sd_bus_error_is_set(e))
                snprintf(last_error, sizeof(last_error), "%s%s%s", e->name, e->message ? ": " : "",
                         e->message ?: "");
        /* Not running and not activatable (or its activation failed). */
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                   SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
            (e->name && strncmp(e->name, "org.freedesktop.DBus.Error.Spawn.", 33) == 0))
                return -ECONNREFUSED;
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY))
                return -ECONNABORTED;
        if (sd_bus_error_is_set(e)) {
                r = sd_bus_error_get_errno(e);
                return r > 0 ? -r : -EIO;
        }
        if (r == -ECONNRESET || r == -ENOTCONN || r == -EPIPE || r == -ESHUTDOWN)
                return -ECONNABORTED;
        return r < 0 ? r : -EIO;
}

/* At exit: stop the thread and close the connection. Clients the application never released
 * stay reachable from lib.clients. */
__attribute__((destructor)) static void lib_shutdown(void) {
        bool join;
        Delivery *d;

        LIB_LOCK();
        join = lib.thread_started && !pthread_equal(lib.thread, pthread_self());
        lib.thread_stop = true;
        lib_wake_locked();
        LIB_UNLOCK();
        if (lib.thread_started && !join)
                return;
        if (join)
                assert_se_zero(pthread_join(lib.thread, NULL));

        LIB_LOCK();
        lib.thread_started = false;
        while ((d = queue_pop_locked()))
                delivery_free(d);
        lib_close_bus_locked();
        lib.epoll_fd = safe_close(lib.epoll_fd);
        lib.wake_fd = safe_close(lib.wake_fd);
        lib.channel_buf = (free(lib.channel_buf), NULL);
        lib.channel_buf_tx = (free(lib.channel_buf_tx), NULL);
        LIB_UNLOCK();
}
