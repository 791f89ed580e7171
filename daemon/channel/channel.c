/* SPDX-License-Identifier: MIT */
#include "channel/channel.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "channel-wire.h"
#include "channel/channel-request.h"
#include "coap-defs.h"
#include "coap-msg.h"
#include "core/client.h"
#include "core/request.h"
#include "core/socket-tx.h"
#include "internal/error-names.h"
#include "util/log.h"

/* Messages per recvmmsg() (the manager's shared receive buffer holds as many). */
#define CHANNEL_RX_SLOTS                   8
/* Messages read per wake-up, so that one busy caller cannot hold the loop. */
#define CHANNEL_READS_PER_DISPATCH         64
#define CHANNEL_BATCH_INITIAL              4096
#define CHANNEL_PAYLOAD_BYTES_PER_DISPATCH (4 * 1024 * 1024)
/* How long and how far intermediate blocks of a download may wait for more. */
#define CHANNEL_COALESCE_USEC              (1 * USEC_PER_MSEC)
#define CHANNEL_COALESCE_BYTES             (16 * 1024)
/* The largest batch buffer the hub keeps for the next one: a download's coalesced blocks. */
#define CHANNEL_SPARE_MAX                  (2 * CHANNEL_COALESCE_BYTES)

struct ChannelMessage {
        ChannelMessage *next;
        size_t len;
        uint8_t data[];
};

/* A socket the caller registered: requests name it by id instead of bringing its fd. */
struct ChannelSocket {
        uint64_t id;
        Socket *socket; /* with the registration's reference */
};

static const void *channel_socket_key(const void *v) {
        return &((const ChannelSocket *) v)->id;
}

static const HashOps channel_socket_hash_ops = {
        .key = channel_socket_key, .hash = uint64_hash, .equal = uint64_equal};

static Channel *channel_from_sink(const CallerSink *sink) {
        return (Channel *) ((uint8_t *) sink - offsetof(Channel, sink));
}

static uint64_t channel_unread_bytes(const Channel *ch) {
        return ch->backlog_bytes + ch->batch_len;
}

/* A caller that sends but does not read must not make its backlog grow for ever: above twice
 * its budget the daemon stops reading its requests (and the refusals they would bring) until
 * it has read down to its budget. A hangup is reported either way. */
static void channel_update_events(Channel *ch) {
        uint64_t budget = ch->hub->manager->config.limits.max_queued_bytes_per_caller;
        uint64_t unread = channel_unread_bytes(ch);
        int r;

        if (!ch->throttled && unread > 2 * budget) {
                log_warning("Channel of %s: %" PRIu64 " bytes of responses unread, not reading "
                            "its requests until it catches up",
                            ch->sink.caller->name, unread);
                ch->throttled = true;
        } else if (ch->throttled && unread <= budget)
                ch->throttled = false;
        r = sd_event_source_set_io_events(ch->io_source,
                                          (ch->throttled ? 0 : EPOLLIN) |
                                                  (ch->backlog && !ch->broken ? EPOLLOUT : 0));
        if (r < 0)
                log_warning_errno(r, "Channel of %s: failed to update its events: %m",
                                  ch->sink.caller->name);
}

static void channel_drop_output(Channel *ch) {
        while (ch->backlog) {
                ChannelMessage *msg = ch->backlog;

                ch->backlog = msg->next;
                free(msg);
        }
        ch->backlog_tail = NULL;
        ch->backlog_bytes = 0;
        ch->batch_len = 0;
}

/* Events were lost or cannot be sent: the caller must not wait for them. Shutting the socket
 * down gives it end-of-stream (its requests then fail with -ECONNABORTED) and us a hangup, on
 * which the channel is closed. */
static void channel_break(Channel *ch, int error) {
        if (ch->broken)
                return;
        /* The caller going away mid-write is ordinary; anything else is worth a warning. */
        if (error == -EPIPE || error == -ECONNRESET)
                log_debug_errno(error, "Channel of %s: the caller's end is gone",
                                ch->sink.caller->name);
        else
                log_warning_errno(error, "Channel of %s broke, closing it: %m",
                                  ch->sink.caller->name);
        ch->broken = true;
        channel_drop_output(ch);
        (void) shutdown(ch->fd, SHUT_RDWR);
}

static int channel_write(Channel *ch, const uint8_t *data, size_t len) {
        ssize_t n = send(ch->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        int r = -errno;

        if (n >= 0)
                return 0;
        if (r == -EAGAIN || r == -EINTR)
                return -EAGAIN;
        channel_break(ch, r);
        return r;
}

/* Sends what the socket takes of the backlog. */
static void channel_send_backlog(Channel *ch) {
        while (ch->backlog && !ch->broken) {
                ChannelMessage *msg = ch->backlog;

                if (channel_write(ch, msg->data, msg->len) < 0)
                        break;
                ch->backlog = msg->next;
                if (!ch->backlog)
                        ch->backlog_tail = NULL;
                ch->backlog_bytes -= msg->len;
                free(msg);
        }
}

static void channel_flush(Channel *ch) {
        int r = -EAGAIN;

        if (ch->batch_len == 0 || ch->broken)
                return;
        if (!ch->backlog)
                r = channel_write(ch, ch->batch, ch->batch_len);
        if (r == -EAGAIN) {
                ChannelMessage *msg = malloc(sizeof(ChannelMessage) + ch->batch_len);

                if (!msg) {
                        /* Losing events would hang requests: give the channel up instead. */
                        channel_break(ch, -ENOMEM);
                        return;
                }
                msg->next = NULL;
                msg->len = ch->batch_len;
                memcpy(msg->data, ch->batch, ch->batch_len);
                if (ch->backlog_tail)
                        ch->backlog_tail->next = msg;
                else
                        ch->backlog = msg;
                ch->backlog_tail = msg;
                ch->backlog_bytes += msg->len;
                channel_update_events(ch);
        }
        ch->batch_len = 0;
}

/* Intermediate blocks of a block-wise body may wait for more: the app gets them a little later
 * but in fewer, larger messages, which on a busy CPU saves it a wake-up per block. Everything
 * else goes at once. */
static bool channel_may_wait(const Channel *ch, uint64_t now) {
        return !ch->urgent && ch->batch_len < CHANNEL_COALESCE_BYTES &&
               now < ch->batch_since + CHANNEL_COALESCE_USEC;
}

/* An idle channel keeps no buffer: callers with a few clients each are the common case, and
 * 4 KiB each would be most of their cost. The hub keeps the largest one up to CHANNEL_SPARE_MAX
 * for the next batch of any channel: no malloc() and free() per turn of the loop, and a download's
 * batches do not grow from 4 KiB again each time. */
static void channel_release_batch(Channel *ch) {
        ChannelHub *h = ch->hub;

        if (ch->batch_size <= CHANNEL_SPARE_MAX && ch->batch_size > h->spare_size) {
                free(h->spare_batch);
                h->spare_batch = ch->batch;
                h->spare_size = ch->batch_size;
        } else
                free(ch->batch);
        ch->batch = NULL;
        ch->batch_size = 0;
}

void channel_flush_all(ChannelHub *h) {
        uint64_t now, next = UINT64_MAX;
        Channel *waiting = NULL, *ch;
        int r;

        /* Every handler ends here, most with nothing to send (a flush source left enabled by a
         * channel closed since runs once, finds nothing and goes off by itself). */
        if (!h->pending)
                return;
        now = manager_now(h->manager);

        /* A flow-control change may produce events and mark a channel again: loop until none is
         * left. */
        while ((ch = h->pending)) {
                LIST_REMOVE(pending, h->pending, ch);
                if (channel_may_wait(ch, now)) {
                        LIST_PREPEND(pending, waiting, ch);
                        next = MIN(next, ch->batch_since + CHANNEL_COALESCE_USEC);
                        continue;
                }
                ch->pending = false;
                ch->urgent = false;
                channel_flush(ch);
                channel_update_events(ch);
                channel_release_batch(ch);
                caller_check_flow(ch->sink.caller);
        }
        h->pending = waiting;
        (void) sd_event_source_set_enabled(h->flush_source, SD_EVENT_OFF);
        if (next == UINT64_MAX)
                return;
        r = manager_arm_timer(h->coalesce_source, next);
        if (r < 0) {
                /* Without the timer they could wait for ever: send them now. */
                log_warning_errno(r, "Failed to arm the coalescing timer: %m");
                while ((ch = h->pending)) {
                        ch->urgent = true;
                        LIST_REMOVE(pending, h->pending, ch);
                        ch->pending = false;
                        channel_flush(ch);
                }
        }
}

/* Room for size more bytes in the batch, sending the batch first when it would overflow. */
static int channel_reserve(Channel *ch, size_t size) {
        size_t want;
        uint8_t *p;

        if (ch->batch_len + size > CHANNEL_MESSAGE_MAX)
                channel_flush(ch);
        if (ch->batch_len + size <= ch->batch_size)
                return 0;
        if (!ch->batch && ch->hub->spare_batch) {
                ch->batch = TAKE_PTR(ch->hub->spare_batch);
                ch->batch_size = ch->hub->spare_size;
                ch->hub->spare_size = 0;
                if (ch->batch_len + size <= ch->batch_size)
                        return 0;
        }
        want = ch->batch_size ? ch->batch_size : CHANNEL_BATCH_INITIAL;
        while (want < ch->batch_len + size)
                want *= 2;
        p = realloc(ch->batch, want);
        if (!p)
                return -ENOMEM;
        ch->batch = p;
        ch->batch_size = want;
        return 0;
}

static void event_details(const Channel *ch, const CoapEvent *ev, ChannelEvent *out) {
        const CoapMsg *msg = ev->msg;
        CoapOption etag;
        uint32_t v;

        if (ev->silent)
                out->flags |= CHANNEL_EVENT_SILENT;
        if (ev->source) {
                out->flags |= CHANNEL_EVENT_SOURCE;
                out->source = (const uint8_t *) &ev->source->ss;
                out->source_len = (uint8_t) ev->source->len;
        }
        if (!msg)
                return;
        out->type = msg->type;
        /* A datagram's options fit the u16 length. */
        if (ch->messages && msg->options_len <= UINT16_MAX) {
                out->flags |= CHANNEL_EVENT_MESSAGE;
                out->mid = msg->mid;
                out->code = msg->code;
                out->token_len = msg->token_len;
                memcpy(out->token, msg->token, msg->token_len);
                out->options = msg->options;
                out->options_len = (uint16_t) msg->options_len;
        }
        if (coap_msg_get_uint_option(msg, COAP_OPTION_CONTENT_FORMAT, &v) >= 0 && v <= UINT16_MAX) {
                out->flags |= CHANNEL_EVENT_CONTENT_FORMAT;
                out->content_format = (uint16_t) v;
        }
        if (coap_msg_get_uint_option(msg, COAP_OPTION_OBSERVE, &v) >= 0) {
                out->flags |= CHANNEL_EVENT_OBSERVE;
                out->observe = v;
        }
        if (coap_msg_get_uint_option(msg, COAP_OPTION_SIZE2, &v) >= 0) {
                out->flags |= CHANNEL_EVENT_SIZE2;
                out->size2 = v;
        }
        if (coap_msg_find_option(msg, COAP_OPTION_ETAG, &etag) && etag.len <= CHANNEL_ETAG_MAX) {
                out->etag_len = (uint8_t) etag.len;
                memcpy(out->etag, etag.value, etag.len);
        }
}

int channel_send_event(Channel *ch, Client *c, uint64_t tag, const CoapEvent *ev,
                       const char *error_name, const char *error_message) {
        ChannelEvent out = {
                .client = c->id,
                .tag = tag,
                .result = ev->result,
                .flags = (ev->last_block ? CHANNEL_EVENT_LAST_BLOCK : 0) |
                         (ev->final ? CHANNEL_EVENT_FINAL : 0),
                .offset = ev->offset,
                .error_name = error_name,
                .payload = ev->payload,
                .payload_len = ev->payload ? (uint32_t) ev->payload_len : 0,
        };
        long n;
        int r;

        if (ch->broken)
                return -ENOTCONN;
        event_details(ch, ev, &out);
        /* Our messages are far shorter than the limit; were one not, an event without it beats
         * a broken channel. */
        if (ch->error_messages && error_message &&
            strlen(error_message) < CHANNEL_ERROR_MESSAGE_MAX) {
                out.flags |= CHANNEL_EVENT_ERROR_MESSAGE;
                out.error_message = error_message;
        }
        r = channel_reserve(ch, channel_event_size(&out));
        if (r < 0) {
                /* A lost event could be a request's last: give the channel up instead. */
                channel_break(ch, r);
                return r;
        }
        if (ch->broken) /* sending the full batch failed */
                return -ENOTCONN;
        n = channel_encode_event(&out, ch->batch + ch->batch_len, ch->batch_size - ch->batch_len);
        if (n < 0) {
                /* Cannot happen with the engine's events; were it to, losing one could hang a
                 * request, so the channel goes. */
                channel_break(ch, (int) n);
                return (int) n;
        }
        ch->batch_len += (size_t) n;
        ch->urgent = ch->urgent || ev->result < 0 || ev->last_block || ev->final;
        if (ch->pending && channel_may_wait(ch, manager_now(ch->hub->manager)))
                /* Its flush is due already: at the end of this turn, or when its blocks have
                 * waited long enough (the coalescing timer). Enabling the flush source again
                 * would only have it disabled again, per block of a download. */
                return 0;
        if (!ch->pending) {
                LIST_PREPEND(pending, ch->hub->pending, ch);
                ch->pending = true;
                ch->batch_since = manager_now(ch->hub->manager);
        }
        r = sd_event_source_set_enabled(ch->hub->flush_source, SD_EVENT_ONESHOT);
        if (r < 0)
                /* Without the deferred flush, send now rather than never. */
                channel_flush(ch);
        return 0;
}

/* Refuses one request: its only event, final, carries the errno and names the refusal (a
 * system error by the name D-Bus gives its errno, as a Request() call would get). */
static void channel_refuse(Channel *ch, Client *c, uint64_t tag, const RequestError *e, int r) {
        _cleanup_(sd_bus_error_free) sd_bus_error system = SD_BUS_ERROR_NULL;
        const char *name = e->name;

        if (r >= 0)
                r = -EIO;
        if (!name) {
                (void) sd_bus_error_set_errno(&system, r);
                name = system.name;
        }
        log_debug("Channel of %s: request %" PRIu64 " refused: %s", ch->sink.caller->name, tag,
                  e->message[0] ? e->message : name);
        (void) channel_send_event(ch, c, tag,
                                  &(CoapEvent){
                                          .result = r,
                                          .last_block = true,
                                          .final = true,
                                  },
                                  name, e->message[0] ? e->message : NULL);
}

/* The client, if it exists and belongs to the channel's caller; other callers' clients are
 * indistinguishable from missing ones. */
static Client *channel_find_client(Channel *ch, uint64_t id) {
        Client *c = hashmap_get(ch->hub->manager->clients, &id);

        return c && c->caller == ch->sink.caller ? c : NULL;
}

/* The socket registered as id; or the error of its refused registration, or -EBADF, with e
 * set. */
static int channel_find_socket(Channel *ch, uint64_t id, Socket **ret, RequestError *e) {
        ChannelSocket *cs = ch->sockets ? hashmap_get(ch->sockets, &id) : NULL;

        if (cs) {
                *ret = cs->socket;
                return 0;
        }
        if (ch->failed_socket && ch->failed_socket_id == id) {
                *e = *ch->failed_socket;
                return ch->failed_socket_error;
        }
        return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ARGUMENT, -EBADF,
                                 "Socket id %" PRIu64 " is not registered.", id);
}

/* fds: the frame's (channel_frame_n_fds()), -EBADF where the message had too few. */
static void channel_on_request(Channel *ch, const ChannelFrame *f, const int fds[static 2]) {
        _cleanup_free_ uint8_t *payload = NULL;
        ChannelParseError pe = CHANNEL_PARSE_OK;
        RequestError error = {};
        ChannelRequest req;
        int sock = -EBADF, payload_fd = -EBADF, r;
        Socket *s = NULL;
        RequestArgs a;
        uint64_t id;
        Client *c;

        r = channel_decode_request(f, &req, &pe);
        if (r < 0) {
                uint64_t client, tag;

                log_debug("Channel of %s: malformed request: %s", ch->sink.caller->name,
                          channel_parse_error_to_string(pe));
                /* The ids come first: answer the request if it names one of ours. */
                if (f->body_len < 16 ||
                    channel_decode_ids(&(ChannelFrame){.type = CHANNEL_FRAME_CANCEL,
                                                       .body = f->body,
                                                       .body_len = 16},
                                       &client, &tag, &pe) < 0 ||
                    !(c = channel_find_client(ch, client)))
                        return;
                r = request_error_set(&error, COAPCLIENTD_ERROR_INVALID_ARGUMENT, -EINVAL,
                                      "Malformed request frame: %s.",
                                      channel_parse_error_to_string(pe));
                channel_refuse(ch, c, tag, &error, r);
                return;
        }
        /* The library reads error messages from now on, this request's refusal included. */
        if (req.flags & CHANNEL_REQUEST_ERROR_MESSAGE)
                ch->error_messages = true;
        c = channel_find_client(ch, req.client);
        if (!c) {
                /* No client of this caller: nobody to tell but the log. */
                log_debug("Channel of %s: request for unknown client %" PRIu64,
                          ch->sink.caller->name, req.client);
                return;
        }
        if (client_find_by_tag(c, &ch->sink, req.tag)) {
                r = request_error_set(&error, COAPCLIENTD_ERROR_INVALID_ARGUMENT, -EINVAL,
                                      "Request tag %" PRIu64 " is in flight already.", req.tag);
                channel_refuse(ch, c, req.tag, &error, r);
                return;
        }
        if (req.flags & CHANNEL_REQUEST_SOCKET_ID) {
                r = channel_find_socket(ch, req.socket_id, &s, &error);
                if (r < 0) {
                        channel_refuse(ch, c, req.tag, &error, r);
                        return;
                }
        } else
                sock = fds[0];
        if (req.flags & CHANNEL_REQUEST_PAYLOAD_FD)
                payload_fd = fds[s ? 0 : 1];
        if (!s && sock < 0) {
                r = request_error_set(&error, COAPCLIENTD_ERROR_NOT_A_SOCKET, -ENOTSOCK,
                                      "The request came without its socket fd.");
                channel_refuse(ch, c, req.tag, &error, r);
                return;
        }

        /* The library reads message sections from now on (API 403's data->packet). */
        if (req.flags & CHANNEL_REQUEST_MESSAGE)
                ch->messages = true;

        /* A large payload is read only for a request that may run. */
        r = req.flags & CHANNEL_REQUEST_PAYLOAD_FD
                    ? request_precheck(c, sock, req.payload_len, &error)
                    : 0;
        if (r >= 0 && payload_fd >= 0)
                ch->payload_bytes_read += req.payload_len;
        if (r >= 0)
                r = channel_request_to_args(&req, &ch->hub->manager->config, payload_fd, &a,
                                            &payload, &error);
        if (r >= 0) {
                const RequestDestination dest = {
                        .sockaddr = req.dest,
                        .sockaddr_len = req.dest_len,
                };

                r = s ? request_submit_socket(c, s, &dest, &a, &ch->sink, req.tag, &id, &error)
                      : request_submit(c, sock, &dest, &a, &ch->sink, req.tag, &id, &error);
        }
        if (r < 0)
                channel_refuse(ch, c, req.tag, &error, r);
}

static void channel_socket_free(Channel *ch, ChannelSocket *cs) {
        request_release_socket(ch->user, cs->socket);
        free(cs);
}

/* REGISTER_SOCKET: fd (-EBADF: the message had none) under the frame's id. A registration that
 * is refused is remembered, so that the requests naming it say why. -EBADMSG: the id is
 * registered already, which only a broken or hostile library does. */
static int channel_on_register(Channel *ch, const ChannelFrame *f, int fd) {
        _cleanup_free_ RequestError *error = NULL;
        ChannelParseError pe = CHANNEL_PARSE_OK;
        ChannelSocket *cs;
        uint64_t id;
        int r;

        if (channel_decode_socket(f, &id, &pe) < 0) {
                log_debug("Channel of %s: malformed frame: %s", ch->sink.caller->name,
                          channel_parse_error_to_string(pe));
                return 0;
        }
        if (ch->sockets && hashmap_get(ch->sockets, &id)) {
                log_warning("Channel of %s: socket id %" PRIu64 " registered twice, closing it",
                            ch->sink.caller->name, id);
                return -EBADMSG;
        }
        if (!ch->sockets) {
                r = hashmap_new(&channel_socket_hash_ops, &ch->sockets);
                if (r < 0)
                        return r;
        }
        error = calloc(1, sizeof(RequestError));
        cs = calloc(1, sizeof(ChannelSocket));
        if (!error || !cs) {
                free(cs);
                return -ENOMEM;
        }
        cs->id = id;
        r = request_register_socket(ch->user, fd, &cs->socket, error);
        if (r >= 0) {
                r = hashmap_put(ch->sockets, cs);
                if (r < 0) {
                        channel_socket_free(ch, cs);
                        return r;
                }
                return 0;
        }
        free(cs);
        if (!error->name)
                (void) request_error_set(error, NULL, r, "Registering the socket failed: %s",
                                         strerror(-r));
        log_debug("Channel of %s: socket id %" PRIu64 " refused: %s", ch->sink.caller->name, id,
                  error->message);
        free(ch->failed_socket);
        ch->failed_socket = TAKE_PTR(error);
        ch->failed_socket_id = id;
        ch->failed_socket_error = r;
        return 0;
}

/* RELEASE_SOCKET. An unknown id is only logged: its registration may have been refused. The
 * socket itself stays while requests run on it. */
static void channel_on_release(Channel *ch, const ChannelFrame *f) {
        ChannelParseError pe = CHANNEL_PARSE_OK;
        ChannelSocket *cs;
        uint64_t id;

        if (channel_decode_socket(f, &id, &pe) < 0) {
                log_debug("Channel of %s: malformed frame: %s", ch->sink.caller->name,
                          channel_parse_error_to_string(pe));
                return;
        }
        cs = ch->sockets ? hashmap_remove(ch->sockets, &id) : NULL;
        if (!cs) {
                log_debug("Channel of %s: release of socket id %" PRIu64 ", which is not "
                          "registered",
                          ch->sink.caller->name, id);
                return;
        }
        channel_socket_free(ch, cs);
}

static void channel_on_ids(Channel *ch, const ChannelFrame *f) {
        ChannelParseError pe = CHANNEL_PARSE_OK;
        uint64_t client, tag;
        Request *r;
        Client *c;

        if (channel_decode_ids(f, &client, &tag, &pe) < 0) {
                log_debug("Channel of %s: malformed frame: %s", ch->sink.caller->name,
                          channel_parse_error_to_string(pe));
                return;
        }
        c = channel_find_client(ch, client);
        if (!c)
                return;
        if (f->type == CHANNEL_FRAME_CANCEL_ALL) {
                client_cancel_all(c);
                return;
        }
        /* Unknown tags are normal: the request may have ended while this was on its way. */
        r = client_find_by_tag(c, &ch->sink, tag);
        if (!r)
                return;
        if (f->type == CHANNEL_FRAME_CANCEL)
                (void) client_cancel(c, r->id);
        else if (f->type == CHANNEL_FRAME_REREGISTER_OBSERVE)
                (void) client_reregister_observe(c, r->id);
        else
                (void) client_deregister_observe(c, r->id);
}

/* More of a streamed body. The engine checks that it follows on and fits the window; an UPLOAD
 * for a request that ended meanwhile is normal. */
static void channel_on_upload(Channel *ch, const ChannelFrame *f) {
        ChannelParseError pe = CHANNEL_PARSE_OK;
        ChannelUpload up;
        Request *r;
        Client *c;

        if (channel_decode_upload(f, &up, &pe) < 0) {
                log_debug("Channel of %s: malformed frame: %s", ch->sink.caller->name,
                          channel_parse_error_to_string(pe));
                return;
        }
        c = channel_find_client(ch, up.client);
        r = c ? client_find_by_tag(c, &ch->sink, up.tag) : NULL;
        if (r)
                (void) client_append(c, r->id, up.offset, up.data, up.len,
                                     up.flags & CHANNEL_UPLOAD_END);
}

/* One message: frames in order, each REQUEST and REGISTER_SOCKET taking its fds from fds[].
 * -EBADMSG: the framing itself is broken (or a socket id registered twice) and the channel
 * cannot be trusted any more. */
static int channel_on_message(Channel *ch, const uint8_t *buf, size_t len, const int *fds,
                              size_t n_fds) {
        ChannelParseError pe = CHANNEL_PARSE_OK;
        size_t offset = 0, next_fd = 0;
        ChannelFrame f;
        int r;

        while ((r = channel_next_frame(buf, len, &offset, &f, &pe)) > 0) {
                /* Its fds first, even from a frame we refuse, so that the next frame gets its
                 * own. */
                int own[2] = {-EBADF, -EBADF};

                for (size_t i = 0, n = channel_frame_n_fds(&f); i < n && next_fd < n_fds; i++)
                        own[i] = fds[next_fd++];
                if (f.type == CHANNEL_FRAME_REQUEST)
                        channel_on_request(ch, &f, own);
                else if (f.type == CHANNEL_FRAME_REGISTER_SOCKET) {
                        r = channel_on_register(ch, &f, own[0]);
                        if (r < 0)
                                return r;
                } else if (f.type == CHANNEL_FRAME_RELEASE_SOCKET)
                        channel_on_release(ch, &f);
                else if (f.type == CHANNEL_FRAME_UPLOAD)
                        channel_on_upload(ch, &f);
                else if (f.type == CHANNEL_FRAME_EVENT)
                        log_debug("Channel of %s: ignoring an EVENT frame", ch->sink.caller->name);
                else
                        channel_on_ids(ch, &f);
        }
        if (r < 0)
                log_warning("Channel of %s: %s, closing it", ch->sink.caller->name,
                            channel_parse_error_to_string(pe));
        return r;
}

/* The fds of one received message, in order; a surplus beyond CHANNEL_FDS_MAX is closed. */
static size_t collect_fds(struct msghdr *mh, int fds[static CHANNEL_FDS_MAX]) {
        size_t n_fds = 0;

        for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
                size_t k;

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t j = 0; j < k; j++) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(cm) + j * sizeof(int), sizeof(int));
                        if (n_fds < CHANNEL_FDS_MAX)
                                fds[n_fds++] = fd;
                        else
                                safe_close(fd);
                }
        }
        return n_fds;
}

/* Up to CHANNEL_RX_SLOTS messages per system call: one for a lone request, and a burst of
 * requests costs a fraction of a call each. */
static int channel_read(Channel *ch) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * CHANNEL_FDS_MAX)];
        } control[CHANNEL_RX_SLOTS];
        struct iovec iov[CHANNEL_RX_SLOTS];
        struct mmsghdr mm[CHANNEL_RX_SLOTS];

        ch->payload_bytes_read = 0;

        for (unsigned round = 0; round < CHANNEL_READS_PER_DISPATCH / CHANNEL_RX_SLOTS; round++) {
                int n, r = 0;

                for (size_t i = 0; i < CHANNEL_RX_SLOTS; i++) {
                        iov[i] = (struct iovec){
                                .iov_base = ch->hub->rx_buffer + i * CHANNEL_MESSAGE_MAX,
                                .iov_len = CHANNEL_MESSAGE_MAX,
                        };
                        mm[i] = (struct mmsghdr){.msg_hdr = {
                                                         .msg_iov = &iov[i],
                                                         .msg_iovlen = 1,
                                                         .msg_control = &control[i],
                                                         .msg_controllen = sizeof(control[i]),
                                                 }};
                }
                n = recvmmsg(ch->fd, mm, CHANNEL_RX_SLOTS, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL);
                if (n < 0)
                        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
                for (int i = 0; i < n; i++) {
                        struct msghdr *mh = &mm[i].msg_hdr;
                        int fds[CHANNEL_FDS_MAX];
                        size_t n_fds = collect_fds(mh, fds);

                        if (r < 0)
                                ; /* the channel is closing: only close what came along */
                        else if (mm[i].msg_len == 0 && n_fds == 0)
                                r = -ECONNRESET; /* end of stream: the caller closed its end */
                        else if (mh->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
                                log_warning("Channel of %s: message over %d bytes or %d fds, "
                                            "closing it",
                                            ch->sink.caller->name, CHANNEL_MESSAGE_MAX,
                                            CHANNEL_FDS_MAX);
                                r = -EMSGSIZE;
                        } else
                                r = channel_on_message(ch, iov[i].iov_base, mm[i].msg_len, fds,
                                                       n_fds);
                        for (size_t j = 0; j < n_fds; j++)
                                safe_close(fds[j]);
                }
                if (r < 0)
                        return r;
                channel_flush_all(ch->hub);
                /* Others' turn after a few MiB of memfd payloads, however few the messages. */
                if (ch->throttled || n < CHANNEL_RX_SLOTS ||
                    ch->payload_bytes_read > CHANNEL_PAYLOAD_BYTES_PER_DISPATCH)
                        return 0;
        }
        return 0;
}

static void channel_free(Channel *ch) {
        ChannelSocket *cs;

        while ((cs = hashmap_first(ch->sockets))) {
                hashmap_remove(ch->sockets, &cs->id);
                channel_socket_free(ch, cs);
        }
        hashmap_free(ch->sockets);
        free(ch->failed_socket);
        if (ch->pending)
                LIST_REMOVE(pending, ch->hub->pending, ch);
        sd_event_source_disable_unref(ch->io_source);
        safe_close(ch->fd);
        channel_drop_output(ch);
        free(ch->batch);
        free(ch);
}

/* The caller closed its end or broke the protocol: its channel requests end without events. */
static void channel_close(Channel *ch) {
        Caller *caller = ch->sink.caller;

        caller_remove_sink(caller, &ch->sink);
        channel_free(ch);
        /* Its backlog went with it: a caller held back by it may go on. */
        caller_check_flow(caller);
        caller_gc(caller);
}

static int channel_on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Channel *ch = userdata;
        ChannelHub *h = ch->hub;
        int r = 0;

        (void) source, (void) fd;
        if (revents & EPOLLOUT) {
                channel_send_backlog(ch);
                channel_update_events(ch);
        }
        /* The requests of the frames read go out together, before their events. */
        socket_tx_begin(h->manager->socket_tx);
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                r = channel_read(ch);
        socket_tx_end(h->manager->socket_tx);
        if (r >= 0 && (revents & (EPOLLHUP | EPOLLERR)) && !(revents & EPOLLIN))
                r = -ECONNRESET;
        if (r < 0) {
                log_debug_errno(r, "Channel of %s closed: %m", ch->sink.caller->name);
                channel_close(ch);
        } else
                caller_check_flow(ch->sink.caller);
        channel_flush_all(h);
        return 0;
}

static int channel_sink_send_event(CallerSink *sink, Client *c, const Request *r,
                                   const CoapEvent *ev, const char *error_message) {
        return channel_send_event(channel_from_sink(sink), c, r->tag, ev, NULL, error_message);
}

static uint64_t channel_sink_unread(const CallerSink *sink) {
        return channel_unread_bytes(channel_from_sink(sink));
}

static void channel_sink_free(CallerSink *sink) {
        channel_free(channel_from_sink(sink));
}

static const CallerSinkOps channel_sink_ops = {
        .send_event = channel_sink_send_event,
        .unread = channel_sink_unread,
        .free = channel_sink_free,
};

int channel_new(ChannelHub *h, Caller *caller, int *ret_peer_fd) {
        _cleanup_close_ int peer = -EBADF;
        int pair[2], r;
        Channel *ch;

        if (caller_find_sink(caller, &channel_sink_ops))
                return -EBUSY;
        if (!h->rx_buffer) {
                h->rx_buffer = malloc(CHANNEL_RX_SLOTS * CHANNEL_MESSAGE_MAX);
                if (!h->rx_buffer)
                        return -ENOMEM;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                return -errno;
        peer = pair[1];
        ch = calloc(1, sizeof(Channel));
        if (!ch) {
                safe_close(pair[0]);
                return -ENOMEM;
        }
        ch->hub = h;
        ch->user = caller->user;
        ch->fd = pair[0];
        r = sd_event_add_io(h->manager->event, &ch->io_source, ch->fd, EPOLLIN, channel_on_io, ch);
        if (r < 0) {
                channel_free(ch);
                return r;
        }
        caller_add_sink(caller, &ch->sink, &channel_sink_ops, true);
        *ret_peer_fd = TAKE_FD(peer);
        return 0;
}

static int channel_hub_on_flush(sd_event_source *source, void *userdata) {
        (void) source;
        channel_flush_all(userdata);
        return 0;
}

static int channel_hub_on_coalesce(sd_event_source *source, uint64_t usec, void *userdata) {
        (void) source, (void) usec;
        channel_flush_all(userdata);
        return 0;
}

static void channel_hub_flush(void *userdata) {
        channel_flush_all(userdata);
}

static int channel_hub_open(void *userdata, Caller *caller, int *ret_peer_fd) {
        return channel_new(userdata, caller, ret_peer_fd);
}

int channel_hub_new(Manager *m, ChannelHub **ret) {
        _cleanup_(channel_hub_freep) ChannelHub *h = NULL;
        int r;

        h = calloc(1, sizeof(ChannelHub));
        if (!h)
                return -ENOMEM;
        h->manager = m;
        r = sd_event_add_defer(m->event, &h->flush_source, channel_hub_on_flush, h);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(h->flush_source, SD_EVENT_OFF);
        if (r < 0)
                return r;
        /* Accuracy 0 would be sd-event's default of 250 ms. */
        r = sd_event_add_time(m->event, &h->coalesce_source, CLOCK_MONOTONIC, 0, 100 /* us */,
                              channel_hub_on_coalesce, h);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(h->coalesce_source, SD_EVENT_OFF);
        if (r < 0)
                return r;
        r = manager_add_flush_hook(m, channel_hub_flush, h);
        if (r < 0)
                return r;
        manager_set_channel_opener(m, channel_hub_open, h);
        *ret = TAKE_PTR(h);
        return 0;
}

ChannelHub *channel_hub_free(ChannelHub *h) {
        if (!h)
                return NULL;
        manager_set_channel_opener(h->manager, NULL, NULL);
        sd_event_source_disable_unref(h->flush_source);
        sd_event_source_disable_unref(h->coalesce_source);
        free(h->rx_buffer);
        free(h->spare_batch);
        free(h);
        return NULL;
}
