/* SPDX-License-Identifier: MIT */

/* The library's end of the data channel (wire/channel-wire.h): opened once per process with
 * Manager.OpenChannel(), it carries every request to the daemon and every response block back,
 * so that neither waits for a D-Bus round trip nor crosses dbus-daemon. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel-wire.h"
#include "client-private.h"
#include "internal/bus-api.h"
#include "internal/macro.h"

/* How long coap_client_req() waits for room in the channel before giving up with -EAGAIN. */
#define CHANNEL_SEND_TIMEOUT_MS 5000

/* A registered socket no request used for this long, give or take one more (the sweep runs this
 * often), is released. The daemon keeps a released socket a little longer (SOCKET_LINGER_USEC,
 * 100 ms): an application's next request on it, the common case, still finds it ready. */
#define SOCKET_RELEASE_USEC (100 * USEC_PER_MSEC)

static int read_limit(const char *daemon, const char *property, uint32_t *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_trivial(lib.bus, daemon, COAPCLIENTD_ROOT_PATH,
                                        COAPCLIENTD_MANAGER_IFACE, property, &error, 'u', ret);
        return r < 0 ? lib_bus_error_to_errno(&error, r) : 0;
}

int lib_open_channel_locked(void) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct epoll_event ev = {.events = EPOLLIN};
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *daemon = NULL;
        const char *sender;
        int received, r;

        if (lib.channel_fd >= 0)
                return 0;
        r = sd_bus_call_method(lib.bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                               COAPCLIENTD_MANAGER_IFACE, "OpenChannel", &error, &reply, NULL);
        lib_wake_locked();
        if (r < 0)
                return lib_bus_error_to_errno(&error, r);
        r = sd_bus_message_read(reply, "h", &received);
        if (r < 0)
                return r;
        sender = sd_bus_message_get_sender(reply);
        if (!sender)
                return -EPROTO;
        /* The message owns received. */
        fd = fcntl(received, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        daemon = strdup(sender);
        if (!daemon)
                return -ENOMEM;
        if (!lib.channel_buf)
                lib.channel_buf = malloc(CHANNEL_MESSAGE_MAX);
        if (!lib.channel_buf_tx)
                lib.channel_buf_tx = malloc(CHANNEL_MESSAGE_MAX);
        if (!lib.channel_buf || !lib.channel_buf_tx)
                return -ENOMEM;
        /* The limits coap_client_req() checks itself, to fail at once as Zephyr does. */
        r = read_limit(daemon, "MaxRequestsPerClient", &lib.max_requests_per_client);
        if (r >= 0)
                r = read_limit(daemon, "MaxPayloadBytes", &lib.max_payload_bytes);
        if (r < 0)
                return r;
        ev.data.fd = fd;
        if (epoll_ctl(lib.epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        lib.channel_fd = TAKE_FD(fd);
        lib.channel_daemon = TAKE_PTR(daemon);
        lib.channel_generation++;
        return 0;
}

void lib_close_channel_locked(void) {
        if (lib.channel_fd < 0)
                return;
        /* The daemon releases the channel's registrations with it. */
        memset(lib.sockets, 0, sizeof(lib.sockets));
        lib.n_sockets = 0;
        lib.sockets_sweep = 0;
        (void) epoll_ctl(lib.epoll_fd, EPOLL_CTL_DEL, lib.channel_fd, NULL);
        lib.channel_fd = safe_close(lib.channel_fd);
        lib.channel_daemon = (free(lib.channel_daemon), NULL);
}

/* The daemon closed the channel (it exited, or took us for a broken peer): every request that
 * went through it ends with -ECONNABORTED. Client objects stay: they are checked against the
 * daemon of the next channel. */
static void lib_channel_broken_locked(void) {
        lib_abort_requests_locked(lib.channel_daemon);
        lib_close_channel_locked();
}

int lib_channel_send_locked(const uint8_t *buf, size_t len, const int *fds, size_t n_fds) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * 2)];
        } control = {};
        struct iovec iov = {.iov_base = (void *) buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        assert(n_fds <= 2);
        if (lib.channel_fd < 0)
                return -ECONNABORTED;
        if (n_fds > 0)
                channel_attach_fds(&mh, &control, sizeof(control), fds, n_fds);
        for (;;) {
                int r;

                if (sendmsg(lib.channel_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
                        return 0;
                r = -errno;
                if (r == -EINTR)
                        continue;
                return r == -EPIPE || r == -ECONNRESET ? -ECONNABORTED : r;
        }
}

int lib_channel_wait_writable_locked(const Client *c) {
        uint64_t generation = lib.channel_generation;
        struct pollfd p = {.fd = lib.channel_fd, .events = POLLOUT};
        int n;

        /* The daemon reads its channels at every turn of its loop, unless this process leaves
         * its responses unread: then the library thread must be able to take the lock. */
        LIB_UNLOCK();
        n = poll(&p, 1, CHANNEL_SEND_TIMEOUT_MS);
        LIB_LOCK();
        if (lib.channel_generation != generation || lib.channel_fd < 0)
                return -ESTALE;
        if (!c->owner)
                return -EINVAL; /* deinitialised meanwhile */
        return n > 0 ? 0 : -EAGAIN;
}

LibSocket *lib_socket_find_locked(int fd, const struct stat *st) {
        for (size_t i = 0; i < LIB_SOCKETS_MAX; i++) {
                LibSocket *s = &lib.sockets[i];

                if (s->id != 0 && s->fd == fd)
                        return s->dev == st->st_dev && s->ino == st->st_ino ? s : NULL;
        }
        return NULL;
}

size_t lib_socket_prepare_locked(int fd, const struct stat *st, uint8_t *buf, size_t size,
                                 LibSocketPlan *ret) {
        LibSocket *entry = NULL, *free_entry = NULL;
        size_t len = 0;

        *ret = (LibSocketPlan){.fd = fd};
        if (!st || lib.channel_fd < 0)
                return 0;
        for (size_t i = 0; i < LIB_SOCKETS_MAX && !entry; i++) {
                LibSocket *s = &lib.sockets[i];

                if (s->id != 0 && s->fd == fd)
                        entry = s;
                else if (s->id == 0 && !free_entry)
                        free_entry = s;
        }
        if (entry && entry->dev == st->st_dev && entry->ino == st->st_ino) {
                ret->entry = entry;
                ret->id = entry->id;
                return 0;
        }
        if (entry) {
                /* Another socket under the number: the old one goes, the new one takes its entry.
                 */
                len += (size_t) channel_encode_socket(CHANNEL_FRAME_RELEASE_SOCKET, entry->id, buf,
                                                      size);
                ret->releasing = true;
                free_entry = entry;
        }
        if (!free_entry)
                return len;
        *ret = (LibSocketPlan){
                .entry = free_entry,
                .id = ++lib.last_socket_id,
                .registering = true,
                .releasing = ret->releasing,
                .fd = fd,
                .dev = st->st_dev,
                .ino = st->st_ino,
        };
        len += (size_t) channel_encode_socket(CHANNEL_FRAME_REGISTER_SOCKET, ret->id, buf + len,
                                              size - len);
        return len;
}

void lib_socket_commit_locked(const LibSocketPlan *p) {
        if (!p->entry)
                return;
        if (p->registering) {
                if (!p->releasing)
                        lib.n_sockets++;
                *p->entry = (LibSocket){.id = p->id, .fd = p->fd, .dev = p->dev, .ino = p->ino};
                if (lib.sockets_sweep == 0)
                        lib.sockets_sweep = lib_now_usec() + SOCKET_RELEASE_USEC;
        }
        p->entry->used = true;
}

/* Sends RELEASE_SOCKET frames for the entries that match (their ids in n frames), without
 * waiting: what the channel does not take now is released with the channel, or at the next
 * sweep. */
static void lib_sockets_release_locked(bool (*match)(const LibSocket *s, uint64_t arg),
                                       uint64_t arg) {
        uint8_t buf[LIB_SOCKETS_MAX * (CHANNEL_HEADER_SIZE + 8)];
        size_t len = 0;

        for (size_t i = 0; i < LIB_SOCKETS_MAX; i++)
                if (lib.sockets[i].id != 0 && match(&lib.sockets[i], arg))
                        len += (size_t) channel_encode_socket(CHANNEL_FRAME_RELEASE_SOCKET,
                                                              lib.sockets[i].id, buf + len,
                                                              sizeof(buf) - len);
        if (len == 0 || lib_channel_send_locked(buf, len, NULL, 0) < 0)
                return;
        for (size_t i = 0; i < LIB_SOCKETS_MAX; i++)
                if (lib.sockets[i].id != 0 && match(&lib.sockets[i], arg)) {
                        lib.sockets[i] = (LibSocket){};
                        lib.n_sockets--;
                }
}

static bool socket_has_id(const LibSocket *s, uint64_t id) {
        return s->id == id;
}

void lib_socket_forget_locked(uint64_t id) {
        lib_sockets_release_locked(socket_has_id, id);
}

static bool socket_unused(const LibSocket *s, uint64_t arg) {
        (void) arg;
        return !s->used;
}

void lib_sockets_sweep_locked(uint64_t now) {
        lib_sockets_release_locked(socket_unused, 0);
        for (size_t i = 0; i < LIB_SOCKETS_MAX; i++)
                lib.sockets[i].used = false;
        lib.sockets_sweep = lib.n_sockets > 0 ? now + SOCKET_RELEASE_USEC : 0;
}

static Request *request_find_locked(uint64_t client, uint64_t tag) {
        for (Client *c = lib.clients; c; c = c->clients_next) {
                if (c->id != client || !c->daemon || strcmp(c->daemon, lib.channel_daemon) != 0)
                        continue;
                for (Request *r = c->requests; r; r = r->requests_next)
                        if (r->id == tag)
                                return r;
        }
        return NULL;
}

/* The size of the response message rebuilt from ev: header, token, options, payload marker and
 * payload. 0: ev carries none, or it would not fit a struct coap_packet. */
static size_t event_message_size(const ChannelEvent *ev) {
        size_t n;

        if (!(ev->flags & CHANNEL_EVENT_MESSAGE))
                return 0;
        n = 4 + (size_t) ev->token_len + ev->options_len +
            (ev->payload_len > 0 ? 1 + (size_t) ev->payload_len : 0);
        return n <= UINT16_MAX ? n : 0;
}

/* d->data as the datagram the server sent, and d->packet over it. */
static void delivery_set_message(Delivery *d, const ChannelEvent *ev, size_t size) {
        uint8_t *p = d->data;

        p[0] = (uint8_t) (1u << 6 | (ev->type & 0x3u) << 4 | ev->token_len);
        p[1] = ev->code;
        p[2] = (uint8_t) (ev->mid >> 8);
        p[3] = (uint8_t) ev->mid;
        memcpy(p + 4, ev->token, ev->token_len);
        p += 4 + ev->token_len;
        if (ev->options_len > 0)
                memcpy(p, ev->options, ev->options_len);
        p += ev->options_len;
        if (ev->payload_len > 0)
                *p++ = 0xff;
        d->payload = ev->payload_len > 0 ? p : NULL;
        d->has_packet = true;
        d->packet = (struct coap_packet){
                .data = d->data,
                .offset = (uint16_t) size,
                .max_len = (uint16_t) size,
                .hdr_len = (uint8_t) (4 + ev->token_len),
                .opt_len = ev->options_len,
        };
}

/* What coap_client_last_error() says about ev, as for a failed D-Bus call: "NAME: MESSAGE",
 * "NAME" or "MESSAGE". Returns its size with the NUL, 0 when ev says nothing; writes it to buf
 * (of size bytes). */
static size_t event_error_format(const ChannelEvent *ev, char *buf, size_t size) {
        const char *message = ev->flags & CHANNEL_EVENT_ERROR_MESSAGE ? ev->error_message : NULL;
        int n;

        if (ev->result >= 0 || (!ev->error_name && !message))
                return 0;
        if (ev->error_name && message)
                n = snprintf(buf, size, "%s: %s", ev->error_name, message);
        else
                n = snprintf(buf, size, "%s", ev->error_name ?: message);
        return n < 0 ? 0 : (size_t) n + 1;
}

static void queue_event_locked(const ChannelEvent *ev) {
        Request *r = request_find_locked(ev->client, ev->tag);
        struct coap_client_response_info *info;
        size_t message_size, data_size, error_size;
        Delivery *d;

        /* Only a request of this daemon, still waiting for its callbacks. */
        if (!r || r->final_queued || r->cancelled || strcmp(r->daemon, lib.channel_daemon) != 0)
                return;
        /* A refusal may be that of the socket's registration: the next request registers anew. */
        if (ev->error_name && r->socket_id != 0)
                lib_socket_forget_locked(r->socket_id);
        /* Only API 403 shows the message (data->packet). */
        message_size = r->api == 403 ? event_message_size(ev) : 0;
        data_size = MAX(message_size, (size_t) ev->payload_len);
        error_size = event_error_format(ev, NULL, 0);
        /* Every byte is written below: the struct by the assignment, data[] by the copies. */
        d = malloc(sizeof(Delivery) + data_size + error_size);
        if (!d) {
                lib_queue_error_locked(r, -ENOMEM);
                return;
        }
        *d = (Delivery){
                .request = request_ref(r),
                .result =
                        ev->result >= INT16_MIN && ev->result <= UINT8_MAX ? ev->result : -EBADMSG,
                .offset = ev->offset,
                .payload = ev->payload_len > 0 ? d->data : NULL,
                .len = ev->payload_len,
                .last_block = (ev->flags & CHANNEL_EVENT_LAST_BLOCK) || ev->result < 0,
                .final = ev->flags & CHANNEL_EVENT_FINAL,
                .silent = ev->flags & CHANNEL_EVENT_SILENT,
        };
        if (message_size > 0)
                delivery_set_message(d, ev, message_size);
        if (ev->payload_len > 0)
                memcpy((uint8_t *) d->payload, ev->payload, ev->payload_len);
        if (ev->flags & CHANNEL_EVENT_SOURCE) {
                memcpy(&d->source, ev->source, ev->source_len);
                d->source_len = ev->source_len;
        }
        if (error_size > 0) {
                d->error_message = (char *) d->data + data_size;
                (void) event_error_format(ev, d->error_message, error_size);
        }
        info = &d->info;
        info->has_content_format = ev->flags & CHANNEL_EVENT_CONTENT_FORMAT;
        info->content_format = ev->content_format;
        info->has_observe = ev->flags & CHANNEL_EVENT_OBSERVE;
        info->observe = ev->observe;
        info->has_size2 = ev->flags & CHANNEL_EVENT_SIZE2;
        info->size2 = ev->size2;
        info->etag_len = MIN(ev->etag_len, (uint8_t) sizeof(info->etag));
        memcpy(info->etag, ev->etag, info->etag_len);
        if (d->final)
                r->final_queued = true;
        queue_push_locked(d);
        /* Each acknowledged block of a streamed body is an event: room for more. */
        if (r->streaming && d->final)
                r->streaming = false;
        else if (r->streaming && d->result >= 0)
                lib_stream_acked_locked(r, ev->offset);
}

/* One message of EVENT frames. A frame we cannot parse means the two ends disagree about the
 * format: nothing after it can be trusted. */
static int channel_on_message_locked(const uint8_t *buf, size_t len) {
        ChannelParseError pe = CHANNEL_PARSE_OK;
        size_t offset = 0;
        ChannelFrame f;
        int r;

        while ((r = channel_next_frame(buf, len, &offset, &f, &pe)) > 0) {
                ChannelEvent ev;

                if (f.type != CHANNEL_FRAME_EVENT)
                        continue;
                r = channel_decode_event(&f, &ev, &pe);
                if (r < 0)
                        return r;
                queue_event_locked(&ev);
        }
        return r;
}

void lib_channel_read_locked(bool drain) {
        /* One message at a time unless draining: the loop comes back while the channel is
         * readable, and a lone response then costs no second, empty read. */
        while (lib.channel_fd >= 0) {
                ssize_t n = recv(lib.channel_fd, lib.channel_buf, CHANNEL_MESSAGE_MAX,
                                 MSG_DONTWAIT | MSG_TRUNC);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                /* 0: end of stream, the daemon closed its end. */
                if (n <= 0 || n > CHANNEL_MESSAGE_MAX ||
                    channel_on_message_locked(lib.channel_buf, (size_t) n) < 0) {
                        lib_channel_broken_locked();
                        return;
                }
                if (!drain)
                        return;
        }
}
