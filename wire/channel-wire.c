/* SPDX-License-Identifier: MIT */
#include "channel-wire.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

/* Body layouts (offsets in bytes, little-endian):
 *   REQUEST  0 client u64, 8 tag u64, 16 method u8, 17 flags (low byte) u8,
 *            18 content_format u16, 20 block_size u16, 22 path_len u16 (with its NUL),
 *            24 ack_timeout_ms u32, 28 ack_random_percent u16, 30 backoff_percent u16,
 *            32 max_retransmission u8, 33 n_options u8, 34 dest_len u8,
 *            35 flags (high byte) u8, 36 payload_len u32;
 *            then multicast_ms u32 (with CHANNEL_REQUEST_MULTICAST), socket_id u64 (with
 *            CHANNEL_REQUEST_SOCKET_ID), dest, path, options (number u16, len u8, value),
 *            payload (unless in an fd)
 *   EVENT    0 client u64, 8 tag u64, 16 result i32, 20 flags u32, 24 offset u64,
 *            32 content_format u16, 34 type u8, 35 etag_len u8, 36 observe u32, 40 size2 u32,
 *            44 error_len u8 (with its NUL, 0: none), 45 zero[3], 48 etag[8],
 *            56 payload_len u32; then error name, the error message section (with
 *            CHANNEL_EVENT_ERROR_MESSAGE: len u16 with its NUL, the string), the message section
 *            (with CHANNEL_EVENT_MESSAGE: 0 mid u16, 2 code u8, 3 token_len u8, 4 options_len u16,
 *            6 token, options), the source section (with CHANNEL_EVENT_SOURCE: 0 len u8, then
 *            len bytes, a sockaddr_in or _in6), payload
 *   IDS      0 client u64, 8 tag u64
 *   SOCKET   0 id u64 (REGISTER_SOCKET, RELEASE_SOCKET)
 *   UPLOAD   0 client u64, 8 tag u64, 16 offset u64, 24 flags u32, 28 len u32; then the bytes */
#define REQUEST_FIXED  40
#define EVENT_FIXED    60
#define IDS_SIZE       16
#define MESSAGE_FIXED  6
#define UPLOAD_FIXED   32
#define MULTICAST_SIZE 4
#define SOCKET_ID_SIZE 8

static const char *const parse_error_table[_CHANNEL_PARSE_ERROR_MAX] = {
        [CHANNEL_PARSE_OK] = "ok",
        [CHANNEL_PARSE_TRUNCATED_HEADER] = "truncated frame header",
        [CHANNEL_PARSE_BAD_FRAME_SIZE] = "frame size out of range",
        [CHANNEL_PARSE_RESERVED_NOT_ZERO] = "reserved field not zero",
        [CHANNEL_PARSE_UNKNOWN_TYPE] = "unknown frame type",
        [CHANNEL_PARSE_TRUNCATED_BODY] = "frame body shorter than its fields",
        [CHANNEL_PARSE_TRAILING_BYTES] = "bytes after the last field",
        [CHANNEL_PARSE_UNKNOWN_FLAGS] = "unknown flags",
        [CHANNEL_PARSE_BAD_DESTINATION] = "destination neither empty nor a sockaddr_in/_in6",
        [CHANNEL_PARSE_BAD_PATH] = "path not a NUL-terminated string",
        [CHANNEL_PARSE_TOO_MANY_OPTIONS] = "too many options",
        [CHANNEL_PARSE_BAD_ERROR_NAME] = "error name not a NUL-terminated string",
        [CHANNEL_PARSE_BAD_ETAG] = "ETag longer than 8 bytes",
        [CHANNEL_PARSE_BAD_TOKEN] = "token longer than 8 bytes",
        [CHANNEL_PARSE_BAD_ERROR_MESSAGE] = "error message not a NUL-terminated string",
        [CHANNEL_PARSE_BAD_MULTICAST] = "multicast window of 0 ms",
        [CHANNEL_PARSE_BAD_SOURCE] = "source neither a sockaddr_in nor _in6",
};

const char *channel_parse_error_to_string(ChannelParseError e) {
        return e < _CHANNEL_PARSE_ERROR_MAX ? parse_error_table[e] : NULL;
}

static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
        put16(p, (uint16_t) v);
        put16(p + 2, (uint16_t) (v >> 16));
}

static void put64(uint8_t *p, uint64_t v) {
        put32(p, (uint32_t) v);
        put32(p + 4, (uint32_t) (v >> 32));
}

static uint16_t get16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p) {
        return (uint32_t) get16(p) | (uint32_t) get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p) {
        return (uint64_t) get32(p) | (uint64_t) get32(p + 4) << 32;
}

static void put_header(uint8_t *buf, size_t size, ChannelFrameType type) {
        put32(buf, (uint32_t) size);
        put16(buf + 4, (uint16_t) type);
        put16(buf + 6, 0);
}

/* A string of len bytes (0: none) whose last byte, and only that, is NUL. */
static bool is_c_string(const uint8_t *p, size_t len) {
        return len > 0 && p[len - 1] == '\0' && !memchr(p, '\0', len - 1);
}

static bool dest_len_valid(size_t len) {
        return len == 0 || len == 16 || len == CHANNEL_DEST_MAX;
}

long channel_encode_request(const ChannelRequest *req, uint8_t *buf, size_t size) {
        size_t path_len, total;
        uint8_t *p;

        /* Bounded before any sum, so that nothing wraps where size_t has 32 bits. */
        if (!req->path || (req->flags & ~CHANNEL_REQUEST_FLAGS_ALL) ||
            req->n_options > CHANNEL_OPTIONS_MAX || !dest_len_valid(req->dest_len) ||
            (req->dest_len > 0 && !req->dest) ||
            (!(req->flags & CHANNEL_REQUEST_PAYLOAD_FD) &&
             (req->payload_len > CHANNEL_MESSAGE_MAX || (req->payload_len > 0 && !req->payload))))
                return -EINVAL;
        for (size_t i = 0; i < req->n_options; i++)
                if (req->options[i].len > 0 && !req->options[i].value)
                        return -EINVAL;
        path_len = strlen(req->path) + 1;
        if (path_len > UINT16_MAX)
                return -EINVAL;
        if ((req->flags & CHANNEL_REQUEST_MULTICAST) && req->multicast_ms == 0)
                return -EINVAL;
        total = CHANNEL_HEADER_SIZE + REQUEST_FIXED + req->dest_len + path_len;
        if (req->flags & CHANNEL_REQUEST_MULTICAST)
                total += MULTICAST_SIZE;
        if (req->flags & CHANNEL_REQUEST_SOCKET_ID)
                total += SOCKET_ID_SIZE;
        for (size_t i = 0; i < req->n_options; i++)
                total += 3 + req->options[i].len;
        if (!(req->flags & CHANNEL_REQUEST_PAYLOAD_FD))
                total += req->payload_len;
        if (total > CHANNEL_MESSAGE_MAX)
                return -EINVAL;
        if (total > size)
                return -ENOBUFS;

        put_header(buf, total, CHANNEL_FRAME_REQUEST);
        p = buf + CHANNEL_HEADER_SIZE;
        put64(p, req->client);
        put64(p + 8, req->tag);
        p[16] = req->method;
        p[17] = (uint8_t) req->flags;
        put16(p + 18, req->content_format);
        put16(p + 20, req->block_size);
        put16(p + 22, (uint16_t) path_len);
        put32(p + 24, req->ack_timeout_ms);
        put16(p + 28, req->ack_random_percent);
        put16(p + 30, req->backoff_percent);
        p[32] = req->max_retransmission;
        p[33] = (uint8_t) req->n_options;
        p[34] = (uint8_t) req->dest_len;
        p[35] = (uint8_t) (req->flags >> 8);
        put32(p + 36, req->payload_len);
        p += REQUEST_FIXED;
        if (req->flags & CHANNEL_REQUEST_MULTICAST) {
                put32(p, req->multicast_ms);
                p += MULTICAST_SIZE;
        }
        if (req->flags & CHANNEL_REQUEST_SOCKET_ID) {
                put64(p, req->socket_id);
                p += SOCKET_ID_SIZE;
        }
        if (req->dest_len > 0)
                memcpy(p, req->dest, req->dest_len);
        p += req->dest_len;
        memcpy(p, req->path, path_len);
        p += path_len;
        for (size_t i = 0; i < req->n_options; i++) {
                const ChannelOption *o = &req->options[i];

                put16(p, o->number);
                p[2] = o->len;
                if (o->len > 0)
                        memcpy(p + 3, o->value, o->len);
                p += 3 + o->len;
        }
        if (!(req->flags & CHANNEL_REQUEST_PAYLOAD_FD) && req->payload_len > 0)
                memcpy(p, req->payload, req->payload_len);
        return (long) total;
}

static size_t message_size(const ChannelEvent *ev) {
        return ev->flags & CHANNEL_EVENT_MESSAGE
                       ? MESSAGE_FIXED + (size_t) ev->token_len + ev->options_len
                       : 0;
}

/* The error message section: its length field and the string with its NUL. */
static size_t error_message_size(const ChannelEvent *ev) {
        return ev->flags & CHANNEL_EVENT_ERROR_MESSAGE ? 2 + strlen(ev->error_message) + 1 : 0;
}

static size_t source_size(const ChannelEvent *ev) {
        return ev->flags & CHANNEL_EVENT_SOURCE ? 1 + (size_t) ev->source_len : 0;
}

size_t channel_event_size(const ChannelEvent *ev) {
        return CHANNEL_HEADER_SIZE + EVENT_FIXED +
               (ev->error_name ? strlen(ev->error_name) + 1 : 0) + error_message_size(ev) +
               message_size(ev) + source_size(ev) + ev->payload_len;
}

long channel_encode_event(const ChannelEvent *ev, uint8_t *buf, size_t size) {
        size_t error_len = ev->error_name ? strlen(ev->error_name) + 1 : 0, total;
        uint8_t *p;

        if ((ev->flags & ~CHANNEL_EVENT_FLAGS_ALL) || ev->etag_len > CHANNEL_ETAG_MAX ||
            error_len > CHANNEL_ERROR_NAME_MAX || ev->payload_len > CHANNEL_MESSAGE_MAX ||
            (ev->payload_len > 0 && !ev->payload))
                return -EINVAL;
        if (!(ev->flags & CHANNEL_EVENT_ERROR_MESSAGE) != !ev->error_message ||
            error_message_size(ev) > 2 + CHANNEL_ERROR_MESSAGE_MAX)
                return -EINVAL;
        if ((ev->flags & CHANNEL_EVENT_MESSAGE) &&
            (ev->token_len > CHANNEL_TOKEN_MAX || (ev->options_len > 0 && !ev->options)))
                return -EINVAL;
        if ((ev->flags & CHANNEL_EVENT_SOURCE) &&
            (ev->source_len == 0 || !dest_len_valid(ev->source_len) || !ev->source))
                return -EINVAL;
        total = CHANNEL_HEADER_SIZE + EVENT_FIXED + error_len + error_message_size(ev) +
                message_size(ev) + source_size(ev) + ev->payload_len;
        if (total > CHANNEL_MESSAGE_MAX)
                return -EINVAL;
        if (total > size)
                return -ENOBUFS;

        put_header(buf, total, CHANNEL_FRAME_EVENT);
        p = buf + CHANNEL_HEADER_SIZE;
        put64(p, ev->client);
        put64(p + 8, ev->tag);
        put32(p + 16, (uint32_t) ev->result);
        put32(p + 20, ev->flags);
        put64(p + 24, ev->offset);
        put16(p + 32, ev->content_format);
        p[34] = ev->type;
        p[35] = ev->etag_len;
        put32(p + 36, ev->observe);
        put32(p + 40, ev->size2);
        p[44] = (uint8_t) error_len;
        memset(p + 45, 0, 3);
        memset(p + 48, 0, CHANNEL_ETAG_MAX);
        memcpy(p + 48, ev->etag, ev->etag_len);
        put32(p + 56, ev->payload_len);
        p += EVENT_FIXED;
        if (error_len > 0)
                memcpy(p, ev->error_name, error_len);
        p += error_len;
        if (ev->flags & CHANNEL_EVENT_ERROR_MESSAGE) {
                size_t len = error_message_size(ev) - 2;

                put16(p, (uint16_t) len);
                memcpy(p + 2, ev->error_message, len);
                p += 2 + len;
        }
        if (ev->flags & CHANNEL_EVENT_MESSAGE) {
                put16(p, ev->mid);
                p[2] = ev->code;
                p[3] = ev->token_len;
                put16(p + 4, ev->options_len);
                p += MESSAGE_FIXED;
                memcpy(p, ev->token, ev->token_len);
                p += ev->token_len;
                if (ev->options_len > 0)
                        memcpy(p, ev->options, ev->options_len);
                p += ev->options_len;
        }
        if (ev->flags & CHANNEL_EVENT_SOURCE) {
                p[0] = ev->source_len;
                memcpy(p + 1, ev->source, ev->source_len);
                p += 1 + ev->source_len;
        }
        if (ev->payload_len > 0)
                memcpy(p, ev->payload, ev->payload_len);
        return (long) total;
}

long channel_encode_upload(const ChannelUpload *up, uint8_t *buf, size_t size) {
        size_t total;
        uint8_t *p;

        if ((up->flags & ~CHANNEL_UPLOAD_FLAGS_ALL) || up->len > CHANNEL_MESSAGE_MAX ||
            (up->len > 0 && !up->data))
                return -EINVAL;
        total = CHANNEL_HEADER_SIZE + UPLOAD_FIXED + up->len;
        if (total > CHANNEL_MESSAGE_MAX)
                return -EINVAL;
        if (total > size)
                return -ENOBUFS;
        put_header(buf, total, CHANNEL_FRAME_UPLOAD);
        p = buf + CHANNEL_HEADER_SIZE;
        put64(p, up->client);
        put64(p + 8, up->tag);
        put64(p + 16, up->offset);
        put32(p + 24, up->flags);
        put32(p + 28, up->len);
        if (up->len > 0)
                memcpy(p + UPLOAD_FIXED, up->data, up->len);
        return (long) total;
}

long channel_encode_ids(ChannelFrameType type, uint64_t client, uint64_t tag, uint8_t *buf,
                        size_t size) {
        if (type != CHANNEL_FRAME_CANCEL && type != CHANNEL_FRAME_CANCEL_ALL &&
            type != CHANNEL_FRAME_DEREGISTER_OBSERVE && type != CHANNEL_FRAME_REREGISTER_OBSERVE)
                return -EINVAL;
        if (size < CHANNEL_HEADER_SIZE + IDS_SIZE)
                return -ENOBUFS;
        put_header(buf, CHANNEL_HEADER_SIZE + IDS_SIZE, type);
        put64(buf + CHANNEL_HEADER_SIZE, client);
        put64(buf + CHANNEL_HEADER_SIZE + 8, type == CHANNEL_FRAME_CANCEL_ALL ? 0 : tag);
        return CHANNEL_HEADER_SIZE + IDS_SIZE;
}

long channel_encode_socket(ChannelFrameType type, uint64_t id, uint8_t *buf, size_t size) {
        if (type != CHANNEL_FRAME_REGISTER_SOCKET && type != CHANNEL_FRAME_RELEASE_SOCKET)
                return -EINVAL;
        if (size < CHANNEL_HEADER_SIZE + SOCKET_ID_SIZE)
                return -ENOBUFS;
        put_header(buf, CHANNEL_HEADER_SIZE + SOCKET_ID_SIZE, type);
        put64(buf + CHANNEL_HEADER_SIZE, id);
        return CHANNEL_HEADER_SIZE + SOCKET_ID_SIZE;
}

static int fail(ChannelParseError *error, ChannelParseError e) {
        *error = e;
        return -EBADMSG;
}

int channel_next_frame(const uint8_t *msg, size_t len, size_t *offset, ChannelFrame *ret,
                       ChannelParseError *error) {
        size_t left = len - *offset;
        uint32_t size;
        uint16_t type;

        if (*offset >= len)
                return 0;
        if (left < CHANNEL_HEADER_SIZE)
                return fail(error, CHANNEL_PARSE_TRUNCATED_HEADER);
        size = get32(msg + *offset);
        type = get16(msg + *offset + 4);
        if (size < CHANNEL_HEADER_SIZE || size > left || size > CHANNEL_MESSAGE_MAX)
                return fail(error, CHANNEL_PARSE_BAD_FRAME_SIZE);
        if (get16(msg + *offset + 6) != 0)
                return fail(error, CHANNEL_PARSE_RESERVED_NOT_ZERO);
        switch (type) {
        case CHANNEL_FRAME_REQUEST:
        case CHANNEL_FRAME_CANCEL:
        case CHANNEL_FRAME_CANCEL_ALL:
        case CHANNEL_FRAME_DEREGISTER_OBSERVE:
        case CHANNEL_FRAME_UPLOAD:
        case CHANNEL_FRAME_REREGISTER_OBSERVE:
        case CHANNEL_FRAME_REGISTER_SOCKET:
        case CHANNEL_FRAME_RELEASE_SOCKET:
        case CHANNEL_FRAME_EVENT:
                break;
        default:
                return fail(error, CHANNEL_PARSE_UNKNOWN_TYPE);
        }
        *ret = (ChannelFrame){
                .type = type,
                .body = msg + *offset + CHANNEL_HEADER_SIZE,
                .body_len = size - CHANNEL_HEADER_SIZE,
        };
        *offset += size;
        return 1;
}

int channel_decode_request(const ChannelFrame *f, ChannelRequest *ret, ChannelParseError *error) {
        const uint8_t *p = f->body, *end = f->body + f->body_len;
        ChannelRequest req;
        size_t path_len;

        if (f->type != CHANNEL_FRAME_REQUEST)
                return fail(error, CHANNEL_PARSE_UNKNOWN_TYPE);
        if (f->body_len < REQUEST_FIXED)
                return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
        req = (ChannelRequest){
                .client = get64(p),
                .tag = get64(p + 8),
                .method = p[16],
                .flags = (uint16_t) (p[17] | p[35] << 8),
                .content_format = get16(p + 18),
                .block_size = get16(p + 20),
                .ack_timeout_ms = get32(p + 24),
                .ack_random_percent = get16(p + 28),
                .backoff_percent = get16(p + 30),
                .max_retransmission = p[32],
                .n_options = p[33],
                .dest_len = p[34],
                .payload_len = get32(p + 36),
        };
        path_len = get16(p + 22);
        if (req.flags & ~CHANNEL_REQUEST_FLAGS_ALL)
                return fail(error, CHANNEL_PARSE_UNKNOWN_FLAGS);
        if (!dest_len_valid(req.dest_len))
                return fail(error, CHANNEL_PARSE_BAD_DESTINATION);
        if (req.n_options > CHANNEL_OPTIONS_MAX)
                return fail(error, CHANNEL_PARSE_TOO_MANY_OPTIONS);
        p += REQUEST_FIXED;
        if (req.flags & CHANNEL_REQUEST_MULTICAST) {
                if (end - p < MULTICAST_SIZE)
                        return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
                req.multicast_ms = get32(p);
                if (req.multicast_ms == 0)
                        return fail(error, CHANNEL_PARSE_BAD_MULTICAST);
                p += MULTICAST_SIZE;
        }
        if (req.flags & CHANNEL_REQUEST_SOCKET_ID) {
                if (end - p < SOCKET_ID_SIZE)
                        return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
                req.socket_id = get64(p);
                p += SOCKET_ID_SIZE;
        }

        if ((size_t) (end - p) < req.dest_len + path_len)
                return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
        req.dest = req.dest_len > 0 ? p : NULL;
        p += req.dest_len;
        if (!is_c_string(p, path_len))
                return fail(error, CHANNEL_PARSE_BAD_PATH);
        req.path = (const char *) p;
        p += path_len;

        for (size_t i = 0; i < req.n_options; i++) {
                ChannelOption *o = &req.options[i];

                if (end - p < 3 || (size_t) (end - p - 3) < p[2])
                        return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
                o->number = get16(p);
                o->len = p[2];
                o->value = p + 3;
                p += 3 + o->len;
        }

        if (!(req.flags & CHANNEL_REQUEST_PAYLOAD_FD)) {
                if ((size_t) (end - p) < req.payload_len)
                        return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
                req.payload = req.payload_len > 0 ? p : NULL;
                p += req.payload_len;
        }
        if (p != end)
                return fail(error, CHANNEL_PARSE_TRAILING_BYTES);
        *ret = req;
        return 0;
}

int channel_decode_event(const ChannelFrame *f, ChannelEvent *ret, ChannelParseError *error) {
        const uint8_t *p = f->body, *end = f->body + f->body_len;
        ChannelEvent ev;
        size_t error_len;

        if (f->type != CHANNEL_FRAME_EVENT)
                return fail(error, CHANNEL_PARSE_UNKNOWN_TYPE);
        if (f->body_len < EVENT_FIXED)
                return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
        ev = (ChannelEvent){
                .client = get64(p),
                .tag = get64(p + 8),
                .result = (int32_t) get32(p + 16),
                .flags = get32(p + 20),
                .offset = get64(p + 24),
                .content_format = get16(p + 32),
                .type = p[34],
                .etag_len = p[35],
                .observe = get32(p + 36),
                .size2 = get32(p + 40),
                .payload_len = get32(p + 56),
        };
        error_len = p[44];
        if (ev.flags & ~CHANNEL_EVENT_FLAGS_ALL)
                return fail(error, CHANNEL_PARSE_UNKNOWN_FLAGS);
        if (p[45] != 0 || p[46] != 0 || p[47] != 0)
                return fail(error, CHANNEL_PARSE_RESERVED_NOT_ZERO);
        if (ev.etag_len > CHANNEL_ETAG_MAX)
                return fail(error, CHANNEL_PARSE_BAD_ETAG);
        for (size_t i = ev.etag_len; i < CHANNEL_ETAG_MAX; i++)
                if (p[48 + i] != 0)
                        return fail(error, CHANNEL_PARSE_RESERVED_NOT_ZERO);
        memcpy(ev.etag, p + 48, ev.etag_len);
        p += EVENT_FIXED;

        if ((size_t) (end - p) < error_len)
                return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
        if (error_len > 0) {
                if (!is_c_string(p, error_len))
                        return fail(error, CHANNEL_PARSE_BAD_ERROR_NAME);
                ev.error_name = (const char *) p;
        }
        p += error_len;
        if (ev.flags & CHANNEL_EVENT_ERROR_MESSAGE) {
                size_t len;

                if (end - p < 2)
                        return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
                len = get16(p);
                p += 2;
                if ((size_t) (end - p) < len)
                        return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
                if (len > CHANNEL_ERROR_MESSAGE_MAX || !is_c_string(p, len))
                        return fail(error, CHANNEL_PARSE_BAD_ERROR_MESSAGE);
                ev.error_message = (const char *) p;
                p += len;
        }
        if (ev.flags & CHANNEL_EVENT_MESSAGE) {
                if (end - p < MESSAGE_FIXED)
                        return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
                ev.mid = get16(p);
                ev.code = p[2];
                ev.token_len = p[3];
                ev.options_len = get16(p + 4);
                p += MESSAGE_FIXED;
                if (ev.token_len > CHANNEL_TOKEN_MAX)
                        return fail(error, CHANNEL_PARSE_BAD_TOKEN);
                if ((size_t) (end - p) < (size_t) ev.token_len + ev.options_len)
                        return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
                memcpy(ev.token, p, ev.token_len);
                p += ev.token_len;
                ev.options = ev.options_len > 0 ? p : NULL;
                p += ev.options_len;
        }
        if (ev.flags & CHANNEL_EVENT_SOURCE) {
                if (end - p < 1)
                        return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
                ev.source_len = p[0];
                p++;
                if (ev.source_len == 0 || !dest_len_valid(ev.source_len))
                        return fail(error, CHANNEL_PARSE_BAD_SOURCE);
                if ((size_t) (end - p) < ev.source_len)
                        return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
                ev.source = p;
                p += ev.source_len;
        }
        if ((size_t) (end - p) < ev.payload_len)
                return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
        ev.payload = ev.payload_len > 0 ? p : NULL;
        p += ev.payload_len;
        if (p != end)
                return fail(error, CHANNEL_PARSE_TRAILING_BYTES);
        *ret = ev;
        return 0;
}

int channel_decode_upload(const ChannelFrame *f, ChannelUpload *ret, ChannelParseError *error) {
        ChannelUpload up;

        if (f->type != CHANNEL_FRAME_UPLOAD)
                return fail(error, CHANNEL_PARSE_UNKNOWN_TYPE);
        if (f->body_len < UPLOAD_FIXED)
                return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
        up = (ChannelUpload){
                .client = get64(f->body),
                .tag = get64(f->body + 8),
                .offset = get64(f->body + 16),
                .flags = get32(f->body + 24),
                .len = get32(f->body + 28),
        };
        if (up.flags & ~CHANNEL_UPLOAD_FLAGS_ALL)
                return fail(error, CHANNEL_PARSE_UNKNOWN_FLAGS);
        if (f->body_len - UPLOAD_FIXED < up.len)
                return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
        if (f->body_len - UPLOAD_FIXED > up.len)
                return fail(error, CHANNEL_PARSE_TRAILING_BYTES);
        up.data = up.len > 0 ? f->body + UPLOAD_FIXED : NULL;
        *ret = up;
        return 0;
}

int channel_decode_ids(const ChannelFrame *f, uint64_t *ret_client, uint64_t *ret_tag,
                       ChannelParseError *error) {
        if (f->type != CHANNEL_FRAME_CANCEL && f->type != CHANNEL_FRAME_CANCEL_ALL &&
            f->type != CHANNEL_FRAME_DEREGISTER_OBSERVE &&
            f->type != CHANNEL_FRAME_REREGISTER_OBSERVE)
                return fail(error, CHANNEL_PARSE_UNKNOWN_TYPE);
        if (f->body_len < IDS_SIZE)
                return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
        if (f->body_len > IDS_SIZE)
                return fail(error, CHANNEL_PARSE_TRAILING_BYTES);
        *ret_client = get64(f->body);
        *ret_tag = get64(f->body + 8);
        return 0;
}

int channel_decode_socket(const ChannelFrame *f, uint64_t *ret_id, ChannelParseError *error) {
        if (f->type != CHANNEL_FRAME_REGISTER_SOCKET && f->type != CHANNEL_FRAME_RELEASE_SOCKET)
                return fail(error, CHANNEL_PARSE_UNKNOWN_TYPE);
        if (f->body_len < SOCKET_ID_SIZE)
                return fail(error, CHANNEL_PARSE_TRUNCATED_BODY);
        if (f->body_len > SOCKET_ID_SIZE)
                return fail(error, CHANNEL_PARSE_TRAILING_BYTES);
        *ret_id = get64(f->body);
        return 0;
}

size_t channel_frame_n_fds(const ChannelFrame *f) {
        size_t n = 0;

        if (f->type == CHANNEL_FRAME_REGISTER_SOCKET)
                return 1;
        if (f->type != CHANNEL_FRAME_REQUEST)
                return 0;
        if (f->body_len <= 35 || !(f->body[35] & (CHANNEL_REQUEST_SOCKET_ID >> 8)))
                n++;
        if (f->body_len > 17 && (f->body[17] & CHANNEL_REQUEST_PAYLOAD_FD))
                n++;
        return n;
}

void channel_attach_fds(struct msghdr *mh, void *control, size_t size, const int *fds,
                        size_t n_fds) {
        struct cmsghdr *cm;

        assert(n_fds > 0 && CMSG_SPACE(sizeof(int) * n_fds) <= size);
        mh->msg_control = control;
        mh->msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
        cm = CMSG_FIRSTHDR(mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
}
