/* SPDX-License-Identifier: MIT */
/* Splits the input into data channel frames and decodes each by its type. A decoded frame is
 * encoded again: a REQUEST, IDS or SOCKET frame must come back byte for byte (every byte is a
 * field or checked to be zero; CANCEL_ALL's tag is sent as 0), an EVENT except the ETag bytes
 * after etag_len, which the decoder ignores; decoding the new frame must give the same fields. */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "channel-wire.h"
#include "fuzz.h"

#define check(expr)              \
        do {                     \
                if (!(expr))     \
                        abort(); \
        } while (0)

#define EVENT_ETAG_OFFSET (CHANNEL_HEADER_SIZE + 48)

static bool inside(const void *p, size_t len, const ChannelFrame *f) {
        const uint8_t *q = p;

        return q >= f->body && q <= f->body + f->body_len &&
               len <= f->body_len - (size_t) (q - f->body);
}

static void check_failure(int r, ChannelParseError e) {
        check(r == -EBADMSG);
        check(e > CHANNEL_PARSE_OK && e < _CHANNEL_PARSE_ERROR_MAX);
        check(channel_parse_error_to_string(e));
}

/* Exactly one frame of the given type fills msg. */
static void next_only_frame(const uint8_t *msg, size_t len, uint16_t type, ChannelFrame *f) {
        size_t offset = 0;

        check(channel_next_frame(msg, len, &offset, f, NULL) == 1);
        check(offset == len);
        check(f->type == type);
        check(channel_next_frame(msg, len, &offset, f, NULL) == 0);
}

/* A buffer of exactly the frame's size, so ASan catches a write past what the encoder claims. */
static uint8_t *frame_buffer(size_t size) {
        uint8_t *buf = malloc(size);

        check(buf);
        return buf;
}

static void check_request_valid(const ChannelRequest *r, const ChannelFrame *f) {
        size_t path_len = strlen(r->path) + 1;

        check(r->flags == (r->flags & CHANNEL_REQUEST_FLAGS_ALL));
        check(r->dest_len == 0 || r->dest_len == 16 || r->dest_len == CHANNEL_DEST_MAX);
        check(r->dest_len == 0 ? !r->dest : inside(r->dest, r->dest_len, f));
        check((r->flags & CHANNEL_REQUEST_MULTICAST) ? r->multicast_ms > 0 : r->multicast_ms == 0);
        check((r->flags & CHANNEL_REQUEST_SOCKET_ID) || r->socket_id == 0);
        check(channel_frame_n_fds(f) == (size_t) (!(r->flags & CHANNEL_REQUEST_SOCKET_ID) +
                                                  !!(r->flags & CHANNEL_REQUEST_PAYLOAD_FD)));
        check(inside(r->path, path_len, f));
        check(r->n_options <= CHANNEL_OPTIONS_MAX);
        for (size_t i = 0; i < r->n_options; i++)
                check(inside(r->options[i].value, r->options[i].len, f));
        if ((r->flags & CHANNEL_REQUEST_PAYLOAD_FD) || r->payload_len == 0)
                check(!r->payload);
        else
                check(inside(r->payload, r->payload_len, f));
}

static void check_request_equal(const ChannelRequest *a, const ChannelRequest *b) {
        check(a->client == b->client);
        check(a->tag == b->tag);
        check(a->method == b->method);
        check(a->flags == b->flags);
        check(a->content_format == b->content_format);
        check(a->block_size == b->block_size);
        check(a->ack_timeout_ms == b->ack_timeout_ms);
        check(a->ack_random_percent == b->ack_random_percent);
        check(a->backoff_percent == b->backoff_percent);
        check(a->max_retransmission == b->max_retransmission);
        check(a->multicast_ms == b->multicast_ms);
        check(a->socket_id == b->socket_id);
        check(a->dest_len == b->dest_len);
        check(a->dest_len == 0 || memcmp(a->dest, b->dest, a->dest_len) == 0);
        check(strcmp(a->path, b->path) == 0);
        check(a->n_options == b->n_options);
        for (size_t i = 0; i < a->n_options; i++) {
                check(a->options[i].number == b->options[i].number);
                check(a->options[i].len == b->options[i].len);
                check(memcmp(a->options[i].value, b->options[i].value, a->options[i].len) == 0);
        }
        check(a->payload_len == b->payload_len);
        check((a->payload == NULL) == (b->payload == NULL));
        check(!a->payload || memcmp(a->payload, b->payload, a->payload_len) == 0);
}

static void fuzz_request(const ChannelFrame *f) {
        const uint8_t *frame = f->body - CHANNEL_HEADER_SIZE;
        size_t size = CHANNEL_HEADER_SIZE + f->body_len;
        ChannelParseError e = _CHANNEL_PARSE_ERROR_MAX;
        ChannelRequest req, again;
        ChannelFrame f2;
        uint8_t *buf;
        int r;

        r = channel_decode_request(f, &req, &e);
        if (r < 0) {
                check_failure(r, e);
                return;
        }
        check_request_valid(&req, f);

        buf = frame_buffer(size);
        check(channel_encode_request(&req, buf, size - 1) == -ENOBUFS);
        check(channel_encode_request(&req, buf, size) == (long) size);
        check(memcmp(buf, frame, size) == 0);
        next_only_frame(buf, size, CHANNEL_FRAME_REQUEST, &f2);
        check(channel_decode_request(&f2, &again, NULL) == 0);
        check_request_equal(&req, &again);
        free(buf);
}

static void check_event_equal(const ChannelEvent *a, const ChannelEvent *b) {
        check(a->client == b->client);
        check(a->tag == b->tag);
        check(a->result == b->result);
        check(a->flags == b->flags);
        check(a->offset == b->offset);
        check(a->content_format == b->content_format);
        check(a->type == b->type);
        check(a->observe == b->observe);
        check(a->size2 == b->size2);
        check(a->etag_len == b->etag_len);
        check(memcmp(a->etag, b->etag, sizeof(a->etag)) == 0);
        check((a->error_name == NULL) == (b->error_name == NULL));
        check(!a->error_name || strcmp(a->error_name, b->error_name) == 0);
        check((a->error_message == NULL) == (b->error_message == NULL));
        check(!a->error_message || strcmp(a->error_message, b->error_message) == 0);
        check(a->mid == b->mid);
        check(a->code == b->code);
        check(a->token_len == b->token_len);
        check(memcmp(a->token, b->token, a->token_len) == 0);
        check(a->options_len == b->options_len);
        check((a->options == NULL) == (b->options == NULL));
        check(!a->options || memcmp(a->options, b->options, a->options_len) == 0);
        check(a->source_len == b->source_len);
        check((a->source == NULL) == (b->source == NULL));
        check(!a->source || memcmp(a->source, b->source, a->source_len) == 0);
        check(a->payload_len == b->payload_len);
        check((a->payload == NULL) == (b->payload == NULL));
        check(!a->payload || memcmp(a->payload, b->payload, a->payload_len) == 0);
}

static void fuzz_event(const ChannelFrame *f) {
        const uint8_t *frame = f->body - CHANNEL_HEADER_SIZE;
        size_t size = CHANNEL_HEADER_SIZE + f->body_len, etag_end;
        ChannelParseError e = _CHANNEL_PARSE_ERROR_MAX;
        ChannelEvent ev, again;
        ChannelFrame f2;
        uint8_t *buf;
        int r;

        r = channel_decode_event(f, &ev, &e);
        if (r < 0) {
                check_failure(r, e);
                return;
        }
        check(ev.flags == (ev.flags & CHANNEL_EVENT_FLAGS_ALL));
        check(ev.etag_len <= CHANNEL_ETAG_MAX);
        for (size_t i = ev.etag_len; i < CHANNEL_ETAG_MAX; i++)
                check(ev.etag[i] == 0);
        check(!ev.error_name || inside(ev.error_name, strlen(ev.error_name) + 1, f));
        check(!(ev.flags & CHANNEL_EVENT_ERROR_MESSAGE) == !ev.error_message);
        check(!ev.error_message || (strlen(ev.error_message) < CHANNEL_ERROR_MESSAGE_MAX &&
                                    inside(ev.error_message, strlen(ev.error_message) + 1, f)));
        check(ev.payload_len == 0 ? !ev.payload : inside(ev.payload, ev.payload_len, f));
        check(ev.token_len <= CHANNEL_TOKEN_MAX);
        check((ev.flags & CHANNEL_EVENT_MESSAGE) || (ev.token_len == 0 && ev.options_len == 0));
        check(ev.options_len == 0 ? !ev.options : inside(ev.options, ev.options_len, f));
        check((ev.flags & CHANNEL_EVENT_SOURCE)
                      ? (ev.source_len == 16 || ev.source_len == CHANNEL_DEST_MAX) &&
                                inside(ev.source, ev.source_len, f)
                      : ev.source_len == 0 && !ev.source);

        check(channel_event_size(&ev) == size);
        buf = frame_buffer(size);
        check(channel_encode_event(&ev, buf, size - 1) == -ENOBUFS);
        check(channel_encode_event(&ev, buf, size) == (long) size);
        etag_end = EVENT_ETAG_OFFSET + ev.etag_len;
        check(memcmp(buf, frame, etag_end) == 0);
        for (size_t i = etag_end; i < EVENT_ETAG_OFFSET + CHANNEL_ETAG_MAX; i++)
                check(buf[i] == 0);
        check(memcmp(buf + EVENT_ETAG_OFFSET + CHANNEL_ETAG_MAX,
                     frame + EVENT_ETAG_OFFSET + CHANNEL_ETAG_MAX,
                     size - EVENT_ETAG_OFFSET - CHANNEL_ETAG_MAX) == 0);
        next_only_frame(buf, size, CHANNEL_FRAME_EVENT, &f2);
        check(channel_decode_event(&f2, &again, NULL) == 0);
        check_event_equal(&ev, &again);
        free(buf);
}

static void fuzz_ids(const ChannelFrame *f) {
        const uint8_t *frame = f->body - CHANNEL_HEADER_SIZE;
        ChannelParseError e = _CHANNEL_PARSE_ERROR_MAX;
        uint64_t client, tag, client2, tag2;
        uint8_t buf[CHANNEL_HEADER_SIZE + 16];
        ChannelFrame f2;
        int r;

        r = channel_decode_ids(f, &client, &tag, &e);
        if (r < 0) {
                check_failure(r, e);
                return;
        }
        check(f->body_len == 16);
        check(channel_encode_ids(f->type, client, tag, buf, sizeof(buf) - 1) == -ENOBUFS);
        check(channel_encode_ids(f->type, client, tag, buf, sizeof(buf)) == (long) sizeof(buf));
        check(memcmp(buf, frame, CHANNEL_HEADER_SIZE + 8) == 0);
        if (f->type == CHANNEL_FRAME_CANCEL_ALL)
                tag = 0;
        else
                check(memcmp(buf, frame, sizeof(buf)) == 0);
        next_only_frame(buf, sizeof(buf), f->type, &f2);
        check(channel_decode_ids(&f2, &client2, &tag2, NULL) == 0);
        check(client2 == client);
        check(tag2 == tag);
}

static void fuzz_upload(const ChannelFrame *f) {
        const uint8_t *frame = f->body - CHANNEL_HEADER_SIZE;
        size_t size = CHANNEL_HEADER_SIZE + f->body_len;
        ChannelParseError e = _CHANNEL_PARSE_ERROR_MAX;
        ChannelUpload up, again;
        ChannelFrame f2;
        uint8_t *buf;
        int r;

        r = channel_decode_upload(f, &up, &e);
        if (r < 0) {
                check_failure(r, e);
                return;
        }
        check(up.flags == (up.flags & CHANNEL_UPLOAD_FLAGS_ALL));
        check(up.len == 0 ? !up.data : inside(up.data, up.len, f));
        buf = frame_buffer(size);
        check(channel_encode_upload(&up, buf, size - 1) == -ENOBUFS);
        check(channel_encode_upload(&up, buf, size) == (long) size);
        check(memcmp(buf, frame, size) == 0);
        next_only_frame(buf, size, CHANNEL_FRAME_UPLOAD, &f2);
        check(channel_decode_upload(&f2, &again, NULL) == 0);
        check(again.client == up.client && again.tag == up.tag && again.offset == up.offset &&
              again.flags == up.flags && again.len == up.len);
        free(buf);
}

static void fuzz_socket(const ChannelFrame *f) {
        const uint8_t *frame = f->body - CHANNEL_HEADER_SIZE;
        ChannelParseError e = _CHANNEL_PARSE_ERROR_MAX;
        uint8_t buf[CHANNEL_HEADER_SIZE + 8];
        uint64_t id, id2;
        ChannelFrame f2;
        int r;

        check(channel_frame_n_fds(f) == (f->type == CHANNEL_FRAME_REGISTER_SOCKET));
        r = channel_decode_socket(f, &id, &e);
        if (r < 0) {
                check_failure(r, e);
                return;
        }
        check(f->body_len == 8);
        check(channel_encode_socket(f->type, id, buf, sizeof(buf) - 1) == -ENOBUFS);
        check(channel_encode_socket(f->type, id, buf, sizeof(buf)) == (long) sizeof(buf));
        check(memcmp(buf, frame, sizeof(buf)) == 0);
        next_only_frame(buf, sizeof(buf), f->type, &f2);
        check(channel_decode_socket(&f2, &id2, NULL) == 0);
        check(id2 == id);
}

/* Every decoder but the frame's own refuses it by its type. */
static void check_wrong_decoders(const ChannelFrame *f) {
        ChannelParseError e;
        ChannelRequest req;
        ChannelEvent ev;
        ChannelUpload up;
        uint64_t client, tag;

        if (f->type != CHANNEL_FRAME_UPLOAD) {
                e = CHANNEL_PARSE_OK;
                check(channel_decode_upload(f, &up, &e) == -EBADMSG);
                check(e == CHANNEL_PARSE_UNKNOWN_TYPE);
        }
        if (f->type != CHANNEL_FRAME_REQUEST) {
                e = CHANNEL_PARSE_OK;
                check(channel_decode_request(f, &req, &e) == -EBADMSG);
                check(e == CHANNEL_PARSE_UNKNOWN_TYPE);
        }
        if (f->type != CHANNEL_FRAME_EVENT) {
                e = CHANNEL_PARSE_OK;
                check(channel_decode_event(f, &ev, &e) == -EBADMSG);
                check(e == CHANNEL_PARSE_UNKNOWN_TYPE);
        }
        if (f->type == CHANNEL_FRAME_REQUEST || f->type == CHANNEL_FRAME_EVENT ||
            f->type == CHANNEL_FRAME_UPLOAD || f->type == CHANNEL_FRAME_REGISTER_SOCKET ||
            f->type == CHANNEL_FRAME_RELEASE_SOCKET) {
                e = CHANNEL_PARSE_OK;
                check(channel_decode_ids(f, &client, &tag, &e) == -EBADMSG);
                check(e == CHANNEL_PARSE_UNKNOWN_TYPE);
        }
        if (f->type != CHANNEL_FRAME_REGISTER_SOCKET && f->type != CHANNEL_FRAME_RELEASE_SOCKET) {
                e = CHANNEL_PARSE_OK;
                check(channel_decode_socket(f, &client, &e) == -EBADMSG);
                check(e == CHANNEL_PARSE_UNKNOWN_TYPE);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ChannelParseError e = _CHANNEL_PARSE_ERROR_MAX;
        size_t offset = 0, before;
        ChannelFrame f;
        int r;

        for (;;) {
                before = offset;
                r = channel_next_frame(data, size, &offset, &f, &e);
                if (r <= 0)
                        break;
                check(offset > before && offset <= size);
                check(offset - before <= CHANNEL_MESSAGE_MAX);
                check(f.body == data + before + CHANNEL_HEADER_SIZE);
                check(f.body_len == offset - before - CHANNEL_HEADER_SIZE);

                check_wrong_decoders(&f);
                switch (f.type) {
                case CHANNEL_FRAME_REQUEST:
                        fuzz_request(&f);
                        break;
                case CHANNEL_FRAME_EVENT:
                        fuzz_event(&f);
                        break;
                case CHANNEL_FRAME_UPLOAD:
                        fuzz_upload(&f);
                        break;
                case CHANNEL_FRAME_CANCEL:
                case CHANNEL_FRAME_CANCEL_ALL:
                case CHANNEL_FRAME_DEREGISTER_OBSERVE:
                case CHANNEL_FRAME_REREGISTER_OBSERVE:
                        fuzz_ids(&f);
                        break;
                case CHANNEL_FRAME_REGISTER_SOCKET:
                case CHANNEL_FRAME_RELEASE_SOCKET:
                        fuzz_socket(&f);
                        break;
                default:
                        abort();
                }
        }
        if (r == 0) {
                check(offset == size);
        } else {
                check_failure(r, e);
                check(offset == before);
        }
        return 0;
}
