/* SPDX-License-Identifier: MIT */
#include "socket.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "util/log.h"
#include "util/random-util.h"

/* Datagrams read per wakeup before yielding to other sources; the io source is level-triggered,
 * so the rest is read on the next iteration. */
#define SOCKET_READ_BURST 256

static void socket_rearm(Socket *s) {
        uint64_t deadline = coap_engine_next_deadline(s->engine);
        int r;

        if (deadline == UINT64_MAX) {
                r = sd_event_source_set_enabled(s->timer_source, SD_EVENT_OFF);
                if (r < 0)
                        log_warning_errno(r, "Failed to disable socket timer, ignoring: %m");
                return;
        }
        r = sd_event_source_set_time(s->timer_source, deadline);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->timer_source, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error_errno(r, "Failed to arm socket timer: %m");
}

static int socket_send(void *userdata, const CoapAddr *dest, const uint8_t *buf, size_t len) {
        Socket *s = userdata;
        ssize_t n;

        if (dest && dest->len > 0)
                n = sendto(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                           (const struct sockaddr *) &dest->ss, dest->len);
        else
                n = send(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
                int r = -errno; /* EWOULDBLOCK is EAGAIN on Linux */

                return log_debug_errno(r, "Failed to send %zu byte datagram on fd %d: %m", len,
                                       s->fd);
        }
        return 0;
}

static void socket_event(void *userdata, const CoapEvent *ev) {
        Socket *s = userdata;
        Request *r = hashmap_get(s->manager->requests, &ev->id);

        if (!r || r->socket != s || r->client->id != ev->owner) {
                log_debug("Dropping event for unknown request %" PRIu64, ev->id);
                return;
        }
        client_dispatch_event(r->client, r, ev);
}

static uint64_t socket_random(void *userdata) {
        (void) userdata;
        return random_u64();
}

static int socket_on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Socket *s = userdata;
        Manager *m = s->manager;

        (void) fd;
        if (revents & (EPOLLHUP | EPOLLRDHUP)) {
                /* shutdown() by the caller: reads would return 0 bytes forever. */
                log_warning("Socket fd %d was shut down, stopping it", s->fd);
                coap_engine_fail_all(s->engine, -EIO, manager_now(m));
                (void) sd_event_source_set_enabled(source, SD_EVENT_OFF);
                socket_rearm(s);
                return 0;
        }
        for (unsigned i = 0; i < SOCKET_READ_BURST; i++) {
                CoapAddr src = {};
                struct iovec iov = {.iov_base = m->rx_buffer, .iov_len = sizeof m->rx_buffer};
                struct msghdr mh = {
                        .msg_name = &src.ss,
                        .msg_namelen = sizeof src.ss,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                };
                ssize_t n;

                n = recvmsg(s->fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
                if (n < 0) {
                        if (errno == EAGAIN)
                                break;
                        if (errno == EINTR)
                                continue;
                        if (errno == ECONNREFUSED || errno == EHOSTUNREACH ||
                            errno == ENETUNREACH) {
                                /* A connected socket reports ICMP errors here: the peer is down. */
                                int error = -errno;

                                log_debug_errno(error, "Socket fd %d failed: %m", s->fd);
                                coap_engine_fail_all(s->engine, error, manager_now(m));
                                break;
                        }
                        log_warning_errno(errno, "Failed to receive on fd %d, stopping it: %m",
                                          s->fd);
                        coap_engine_fail_all(s->engine, -EIO, manager_now(m));
                        /* A persistent error would wake us forever; a new request re-enables. */
                        (void) sd_event_source_set_enabled(source, SD_EVENT_OFF);
                        break;
                }
                src.len = mh.msg_namelen;
                log_debug("Received %zd byte datagram on fd %d", n, s->fd);
                coap_engine_feed(s->engine, m->rx_buffer, MIN((size_t) n, sizeof m->rx_buffer),
                                 &src, (size_t) n > sizeof m->rx_buffer, manager_now(m));
        }
        socket_rearm(s);
        return 0;
}

static int socket_on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Socket *s = userdata;

        (void) source, (void) usec;
        /* The loop's time, not the scheduled one: every engine call of an iteration sees the same
         * clock, which never goes backwards. */
        coap_engine_tick(s->engine, manager_now(s->manager));
        socket_rearm(s);
        return 0;
}

static int socket_check_type(int fd, SocketKey *ret_key, int *ret_family) {
        int family, type;
        socklen_t len;
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return -ENOTSOCK;
        len = sizeof family;
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0)
                return -errno;
        len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
                return -errno;
        if ((family != AF_INET && family != AF_INET6) || type != SOCK_DGRAM)
                return -ESOCKTNOSUPPORT;
        *ret_key = (SocketKey){.dev = (uint64_t) st.st_dev, .ino = (uint64_t) st.st_ino};
        *ret_family = family;
        return 0;
}

int socket_acquire(Manager *m, int fd, Socket **ret) {
        _cleanup_(socket_freep) Socket *s = NULL;
        SocketKey key;
        int r, family = AF_UNSPEC;

        r = socket_check_type(fd, &key, &family);
        if (r < 0)
                return r;

        s = hashmap_get(m->sockets, &key);
        if (s) {
                *ret = TAKE_PTR(s);
                return 0;
        }

        s = calloc(1, sizeof(Socket));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->key = key;
        s->family = family;
        /* The message owns fd; ours must outlive it. Flags stay untouched: they are shared with
         * the caller's copy, so every send and receive passes MSG_DONTWAIT. */
        s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (s->fd < 0)
                return -errno;

        r = coap_engine_new(&(const CoapEngineEnv){.userdata = s,
                                                   .send = socket_send,
                                                   .event = socket_event,
                                                   .random_u64 = socket_random},
                            manager_now(m), &s->engine);
        if (r < 0)
                return r;

        r = sd_event_add_io(m->event, &s->io_source, s->fd, EPOLLIN | EPOLLRDHUP, socket_on_io, s);
        if (r < 0)
                return r;
        r = sd_event_add_time(m->event, &s->timer_source, CLOCK_MONOTONIC, 0, USEC_PER_MSEC,
                              socket_on_timer, s);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(s->timer_source, SD_EVENT_OFF);
        if (r < 0)
                return r;

        r = hashmap_put(m->sockets, &s->key, s);
        if (r < 0)
                return r;

        log_debug("New socket fd %d (%s)", s->fd, family == AF_INET6 ? "IPv6" : "IPv4");
        /* Collected unless a request takes a reference before the loop runs again. */
        manager_queue_socket_gc(m, s);
        *ret = TAKE_PTR(s);
        return 0;
}

Socket *socket_free(Socket *s) {
        Manager *m;

        if (!s)
                return NULL;
        m = s->manager;
        if (s->engine) {
                const CoapEngineStats *st = coap_engine_get_stats(s->engine);

                m->freed_stats.messages_sent += st->messages_sent;
                m->freed_stats.messages_received += st->messages_received;
                m->freed_stats.retransmissions += st->retransmissions;
                m->freed_stats.timeouts += st->timeouts;
                m->freed_stats.malformed += st->malformed;
                m->freed_stats.unmatched += st->unmatched;
        }
        if (hashmap_get(m->sockets, &s->key) == s)
                hashmap_remove(m->sockets, &s->key);
        if (s->in_gc_queue)
                LIST_REMOVE(gc_queue, m->gc_queue, s);
        sd_event_source_disable_unref(s->io_source);
        sd_event_source_disable_unref(s->timer_source);
        coap_engine_free(s->engine);
        if (s->fd >= 0)
                log_debug("Freeing socket fd %d", s->fd);
        safe_close(s->fd);
        free(s);
        return NULL;
}

bool socket_is_connected(Socket *s) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;

        return getpeername(s->fd, (struct sockaddr *) &ss, &len) >= 0;
}

void socket_ref(Socket *s) {
        s->n_refs++;
}

void socket_unref(Socket *s) {
        assert(s->n_refs > 0);
        if (--s->n_refs == 0)
                manager_queue_socket_gc(s->manager, s);
}

int socket_submit(Socket *s, const CoapRequestSpec *spec) {
        int r;

        /* A receive error may have stopped reading; a new request gives the socket a new chance. */
        (void) sd_event_source_set_enabled(s->io_source, SD_EVENT_ON);
        r = coap_engine_submit(s->engine, spec, manager_now(s->manager));
        socket_rearm(s);
        return r;
}

int socket_cancel(Socket *s, uint64_t id) {
        int r = coap_engine_cancel(s->engine, id, manager_now(s->manager));

        socket_rearm(s);
        return r;
}

size_t socket_cancel_owner(Socket *s, uint64_t owner) {
        size_t n = coap_engine_cancel_owner(s->engine, owner, manager_now(s->manager));

        socket_rearm(s);
        return n;
}

void socket_drop_owner(Socket *s, uint64_t owner) {
        coap_engine_drop_owner(s->engine, owner);
        socket_rearm(s);
}

int socket_deregister_observe(Socket *s, uint64_t id) {
        int r = coap_engine_deregister_observe(s->engine, id, manager_now(s->manager));

        socket_rearm(s);
        return r;
}
