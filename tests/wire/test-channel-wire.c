/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "channel-wire.h"
#include "check-main.h"

#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#define CANARY      0xa5

/* Frame offsets (header included) of the fields, from the layout comment in channel-wire.c. */
enum {
        REQ_FLAGS = 25,
        REQ_PATH_LEN = 30,
        REQ_N_OPTIONS = 41,
        REQ_DEST_LEN = 42,
        REQ_FLAGS_HIGH = 43,
        REQ_PAYLOAD_LEN = 44,
        REQ_MULTICAST = 48,
        EV_FLAGS = 28,
        EV_ETAG_LEN = 43,
        EV_ERROR_LEN = 52,
        EV_ZERO = 53,
        EV_PAYLOAD_LEN = 64,
        EV_SOURCE_LEN = 72, /* in BASE_EVENT_SOURCE */
};

/* sockaddr_in for 127.0.0.1:5683 and sockaddr_in6 for [::1]:5684, as x86-64 Linux lays them
 * out (family in host order, port and address in network order). */
static const uint8_t dest4[16] = {0x02, 0x00, 0x16, 0x33, 0x7f, 0x00, 0x00, 0x01};
static const uint8_t dest6[28] = {0x0a, 0x00, 0x16, 0x34, [23] = 0x01};

static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
        for (size_t i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static bool all_canary(const uint8_t *p, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (p[i] != CANARY)
                        return false;
        return true;
}

static bool within(const void *p, size_t len, const uint8_t *start, size_t size) {
        const uint8_t *q = p;

        return q >= start && q + len <= start + size;
}

/* Exactly one frame of the expected type fills msg. */
static void next_only_frame(const uint8_t *msg, size_t len, uint16_t type, ChannelFrame *f) {
        ChannelParseError e = _CHANNEL_PARSE_ERROR_MAX;
        size_t offset = 0;

        ck_assert_int_eq(channel_next_frame(msg, len, &offset, f, &e), 1);
        ck_assert_uint_eq(offset, len);
        ck_assert_uint_eq(f->type, type);
        ck_assert_ptr_eq(f->body, msg + CHANNEL_HEADER_SIZE);
        ck_assert_uint_eq(f->body_len, len - CHANNEL_HEADER_SIZE);
        ck_assert_int_eq(channel_next_frame(msg, len, &offset, f, &e), 0);
}

static void assert_request_equal(const ChannelRequest *a, const ChannelRequest *b,
                                 const uint8_t *frame, size_t frame_len) {
        ck_assert_uint_eq(a->client, b->client);
        ck_assert_uint_eq(a->tag, b->tag);
        ck_assert_uint_eq(a->method, b->method);
        ck_assert_uint_eq(a->flags, b->flags);
        ck_assert_uint_eq(a->content_format, b->content_format);
        ck_assert_uint_eq(a->block_size, b->block_size);
        ck_assert_uint_eq(a->ack_timeout_ms, b->ack_timeout_ms);
        ck_assert_uint_eq(a->ack_random_percent, b->ack_random_percent);
        ck_assert_uint_eq(a->backoff_percent, b->backoff_percent);
        ck_assert_uint_eq(a->max_retransmission, b->max_retransmission);
        ck_assert_uint_eq(a->flags & CHANNEL_REQUEST_MULTICAST ? a->multicast_ms : 0,
                          b->multicast_ms);
        ck_assert_uint_eq(a->flags & CHANNEL_REQUEST_SOCKET_ID ? a->socket_id : 0, b->socket_id);

        ck_assert_uint_eq(a->dest_len, b->dest_len);
        if (a->dest_len > 0) {
                ck_assert(within(b->dest, b->dest_len, frame, frame_len));
                ck_assert_mem_eq(a->dest, b->dest, a->dest_len);
        } else {
                ck_assert_ptr_null(b->dest);
        }

        ck_assert(within(b->path, strlen(b->path) + 1, frame, frame_len));
        ck_assert_str_eq(a->path, b->path);

        ck_assert_uint_eq(a->n_options, b->n_options);
        for (size_t i = 0; i < a->n_options; i++) {
                ck_assert_uint_eq(a->options[i].number, b->options[i].number);
                ck_assert_uint_eq(a->options[i].len, b->options[i].len);
                ck_assert(within(b->options[i].value, b->options[i].len, frame, frame_len));
                if (a->options[i].len > 0)
                        ck_assert_mem_eq(a->options[i].value, b->options[i].value,
                                         a->options[i].len);
        }

        ck_assert_uint_eq(a->payload_len, b->payload_len);
        if ((a->flags & CHANNEL_REQUEST_PAYLOAD_FD) || a->payload_len == 0) {
                ck_assert_ptr_null(b->payload);
        } else {
                ck_assert(within(b->payload, b->payload_len, frame, frame_len));
                ck_assert_mem_eq(a->payload, b->payload, a->payload_len);
        }
}

static void assert_event_equal(const ChannelEvent *a, const ChannelEvent *b, const uint8_t *frame,
                               size_t frame_len) {
        ck_assert_uint_eq(a->client, b->client);
        ck_assert_uint_eq(a->tag, b->tag);
        ck_assert_int_eq(a->result, b->result);
        ck_assert_uint_eq(a->flags, b->flags);
        ck_assert_uint_eq(a->offset, b->offset);
        ck_assert_uint_eq(a->content_format, b->content_format);
        ck_assert_uint_eq(a->type, b->type);
        ck_assert_uint_eq(a->observe, b->observe);
        ck_assert_uint_eq(a->size2, b->size2);
        ck_assert_uint_eq(a->etag_len, b->etag_len);
        ck_assert_mem_eq(a->etag, b->etag, a->etag_len);
        /* The bytes after the ETag are zero, whatever the sender's struct held there. */
        for (size_t i = b->etag_len; i < CHANNEL_ETAG_MAX; i++)
                ck_assert_uint_eq(b->etag[i], 0);

        if (a->error_name) {
                ck_assert_ptr_nonnull(b->error_name);
                ck_assert(within(b->error_name, strlen(b->error_name) + 1, frame, frame_len));
                ck_assert_str_eq(a->error_name, b->error_name);
        } else {
                ck_assert_ptr_null(b->error_name);
        }

        if (a->flags & CHANNEL_EVENT_ERROR_MESSAGE) {
                ck_assert_ptr_nonnull(b->error_message);
                ck_assert(within(b->error_message, strlen(b->error_message) + 1, frame, frame_len));
                ck_assert_str_eq(a->error_message, b->error_message);
        } else {
                ck_assert_ptr_null(b->error_message);
        }

        if (a->flags & CHANNEL_EVENT_MESSAGE) {
                ck_assert_uint_eq(a->mid, b->mid);
                ck_assert_uint_eq(a->code, b->code);
                ck_assert_uint_eq(a->token_len, b->token_len);
                ck_assert_mem_eq(a->token, b->token, a->token_len);
                ck_assert_uint_eq(a->options_len, b->options_len);
                if (a->options_len > 0) {
                        ck_assert(within(b->options, b->options_len, frame, frame_len));
                        ck_assert_mem_eq(a->options, b->options, a->options_len);
                } else
                        ck_assert_ptr_null(b->options);
        } else {
                ck_assert_uint_eq(b->token_len, 0);
                ck_assert_ptr_null(b->options);
        }

        if (a->flags & CHANNEL_EVENT_SOURCE) {
                ck_assert_uint_eq(a->source_len, b->source_len);
                ck_assert(within(b->source, b->source_len, frame, frame_len));
                ck_assert_mem_eq(a->source, b->source, a->source_len);
        } else {
                ck_assert_uint_eq(b->source_len, 0);
                ck_assert_ptr_null(b->source);
        }

        ck_assert_uint_eq(a->payload_len, b->payload_len);
        if (a->payload_len > 0) {
                ck_assert(within(b->payload, b->payload_len, frame, frame_len));
                ck_assert_mem_eq(a->payload, b->payload, a->payload_len);
        } else {
                ck_assert_ptr_null(b->payload);
        }
}

/* Encodes req into a buffer of exactly the expected size (so ASan sees any overflow), after
 * checking that one byte less is refused without a write, then decodes it back. */
static void round_trip_request(const ChannelRequest *req, size_t expected) {
        ChannelParseError e = _CHANNEL_PARSE_ERROR_MAX;
        ChannelRequest back;
        ChannelFrame f;
        uint8_t *buf = malloc(expected + 16);

        ck_assert_ptr_nonnull(buf);
        memset(buf, CANARY, expected + 16);
        ck_assert_int_eq(channel_encode_request(req, buf, expected - 1), -ENOBUFS);
        ck_assert(all_canary(buf, expected + 16));
        ck_assert_int_eq(channel_encode_request(req, buf, expected + 16), (long) expected);
        ck_assert(all_canary(buf + expected, 16));
        free(buf);

        buf = malloc(expected);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(channel_encode_request(req, buf, expected), (long) expected);
        next_only_frame(buf, expected, CHANNEL_FRAME_REQUEST, &f);
        ck_assert_int_eq(channel_decode_request(&f, &back, &e), 0);
        assert_request_equal(req, &back, buf, expected);
        free(buf);
}

static void round_trip_event(const ChannelEvent *ev, size_t expected) {
        ChannelParseError e = _CHANNEL_PARSE_ERROR_MAX;
        ChannelEvent back;
        ChannelFrame f;
        uint8_t *buf = malloc(expected + 16);

        ck_assert_uint_eq(channel_event_size(ev), expected);
        ck_assert_ptr_nonnull(buf);
        memset(buf, CANARY, expected + 16);
        ck_assert_int_eq(channel_encode_event(ev, buf, expected - 1), -ENOBUFS);
        ck_assert(all_canary(buf, expected + 16));
        ck_assert_int_eq(channel_encode_event(ev, buf, expected + 16), (long) expected);
        ck_assert(all_canary(buf + expected, 16));
        free(buf);

        buf = malloc(expected);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(channel_encode_event(ev, buf, expected), (long) expected);
        next_only_frame(buf, expected, CHANNEL_FRAME_EVENT, &f);
        ck_assert_int_eq(channel_decode_event(&f, &back, &e), 0);
        assert_event_equal(ev, &back, buf, expected);
        free(buf);
}

START_TEST(test_request_minimal) {
        const ChannelRequest req = {.path = ""};

        round_trip_request(&req, CHANNEL_HEADER_SIZE + 40 + 1);
}
END_TEST

START_TEST(test_request_dest4_options_payload) {
        static const uint8_t payload[] = "{\"on\":true}";
        const ChannelRequest req = {
                .client = 7,
                .tag = UINT64_MAX,
                .method = 3,
                .flags = CHANNEL_REQUEST_CONFIRMABLE | CHANNEL_REQUEST_OBSERVE |
                         CHANNEL_REQUEST_CONTENT_FORMAT | CHANNEL_REQUEST_PARAMS,
                .content_format = 50,
                .block_size = 1024,
                .ack_timeout_ms = 2000,
                .ack_random_percent = 150,
                .backoff_percent = 200,
                .max_retransmission = 4,
                .dest = dest4,
                .dest_len = sizeof(dest4),
                .path = "/lights/1",
                .options = {{6, 0, NULL},
                            {15, 4, (const uint8_t *) "a=bc"},
                            {60, 0, (const uint8_t *) ""},
                            {65535, 1, (const uint8_t *) "\xff"}},
                .n_options = 4,
                .payload = payload,
                .payload_len = sizeof(payload) - 1,
        };

        round_trip_request(&req, CHANNEL_HEADER_SIZE + 40 + 16 + 10 + 3 + 7 + 3 + 4 + 11);
}
END_TEST

START_TEST(test_request_dest6_max_options_payload_fd) {
        static uint8_t value[255];
        ChannelRequest req = {
                .client = 1,
                .tag = 2,
                .method = 2,
                .flags = CHANNEL_REQUEST_FLAGS_ALL,
                .dest = dest6,
                .dest_len = sizeof(dest6),
                .path = "upload",
                .n_options = CHANNEL_OPTIONS_MAX,
                /* Larger than a message: it travels in the memfd. */
                .payload_len = 10 * CHANNEL_MESSAGE_MAX,
                .multicast_ms = UINT32_MAX,
                .socket_id = UINT64_MAX,
        };
        size_t size = CHANNEL_HEADER_SIZE + 40 + 4 + 8 + 28 + 7;

        memset(value, 'v', sizeof(value));
        for (size_t i = 0; i < CHANNEL_OPTIONS_MAX; i++) {
                req.options[i] = (ChannelOption){(uint16_t) (i * 4000), (uint8_t) (i * 17), value};
                size += 3 + i * 17;
        }
        round_trip_request(&req, size);

        /* An inline payload pointer is ignored with the flag: the frame does not change. */
        {
                uint8_t a[4096], b[4096];
                long n = channel_encode_request(&req, a, sizeof(a));

                req.payload = value;
                ck_assert_int_eq(channel_encode_request(&req, b, sizeof(b)), n);
                ck_assert_mem_eq(a, b, (size_t) n);
        }
}
END_TEST

START_TEST(test_request_exactly_max) {
        ChannelRequest req = {.path = "big", .flags = CHANNEL_REQUEST_CONFIRMABLE};
        uint8_t *payload = calloc(1, CHANNEL_MESSAGE_MAX);

        ck_assert_ptr_nonnull(payload);
        req.payload = payload;
        req.payload_len = CHANNEL_MESSAGE_MAX - CHANNEL_HEADER_SIZE - 40 - 4;
        round_trip_request(&req, CHANNEL_MESSAGE_MAX);
        free(payload);
}
END_TEST

START_TEST(test_event_minimal) {
        const ChannelEvent ev = {0};

        round_trip_event(&ev, CHANNEL_HEADER_SIZE + 60);
}
END_TEST

START_TEST(test_event_full) {
        static uint8_t payload[1024], options[300];
        const ChannelEvent ev = {
                .client = UINT64_MAX,
                .tag = 1ull << 63,
                .result = -ETIMEDOUT,
                .flags = CHANNEL_EVENT_FLAGS_ALL,
                .offset = 1ull << 40,
                .content_format = 60,
                .type = 2,
                .etag_len = CHANNEL_ETAG_MAX,
                .observe = 0xffffff,
                .size2 = 123456,
                .etag = {1, 2, 3, 4, 5, 6, 7, 8},
                .error_name = "org.coapclientd.CoapClient1.Error.Timeout",
                .error_message = "DTLS session failed: timeout",
                .mid = 0xbeef,
                .code = 0x45,
                .token_len = CHANNEL_TOKEN_MAX,
                .token = {8, 7, 6, 5, 4, 3, 2, 1},
                .options = options,
                .options_len = sizeof(options),
                .source = dest6,
                .source_len = sizeof(dest6),
                .payload = payload,
                .payload_len = sizeof(payload),
        };

        memset(payload, 'p', sizeof(payload));
        memset(options, 'o', sizeof(options));
        round_trip_event(&ev, CHANNEL_HEADER_SIZE + 60 + 42 + 2 + 29 + 6 + 8 + 300 + 1 + 28 + 1024);
}
END_TEST

/* The message section, byte for byte: between the error name and the payload. */
START_TEST(test_event_message_bytes) {
        static const uint8_t options[] = {0xc1, 0x2a, 0x61,
                                          0x07}; /* Content-Format 42, Max-Age 7 */
        static const uint8_t expected[] = {
                0x34, 0x12, 0x44, 0x02, 0x04, 0x00, /* mid 0x1234, 2.04, tkl 2, options_len 4 */
                0xab, 0xcd,                         /* token */
                0xc1, 0x2a, 0x61, 0x07,             /* options */
                'o',  'k',                          /* payload */
        };
        const ChannelEvent ev = {
                .tag = 5,
                .result = 0x44,
                .flags = CHANNEL_EVENT_MESSAGE | CHANNEL_EVENT_LAST_BLOCK,
                .mid = 0x1234,
                .code = 0x44,
                .token_len = 2,
                .token = {0xab, 0xcd},
                .options = options,
                .options_len = sizeof(options),
                .payload = (const uint8_t *) "ok",
                .payload_len = 2,
        };
        uint8_t buf[CHANNEL_HEADER_SIZE + 60 + sizeof(expected)];

        ck_assert_int_eq(channel_encode_event(&ev, buf, sizeof(buf)), (long) sizeof(buf));
        ck_assert_mem_eq(buf + CHANNEL_HEADER_SIZE + 60, expected, sizeof(expected));
        round_trip_event(&ev, sizeof(buf));

        /* A token longer than 8 bytes is refused either way. */
        buf[CHANNEL_HEADER_SIZE + 60 + 3] = 9;
        {
                ChannelParseError e = CHANNEL_PARSE_OK;
                ChannelEvent back;
                ChannelFrame f;

                next_only_frame(buf, sizeof(buf), CHANNEL_FRAME_EVENT, &f);
                ck_assert_int_eq(channel_decode_event(&f, &back, &e), -EBADMSG);
                ck_assert_int_eq(e, CHANNEL_PARSE_BAD_TOKEN);
        }
}
END_TEST

/* The source section, byte for byte: after the message section, before the payload; and a
 * multicast REQUEST's window right after the fixed fields. Frames without the flags stay as
 * they were. */
START_TEST(test_multicast_bytes) {
        const ChannelEvent ev = {
                .result = 0x45,
                .flags = CHANNEL_EVENT_SOURCE | CHANNEL_EVENT_LAST_BLOCK,
                .source = dest4,
                .source_len = sizeof(dest4),
                .payload = (const uint8_t *) "ok",
                .payload_len = 2,
        };
        const ChannelRequest req = {
                .flags = CHANNEL_REQUEST_MULTICAST,
                .multicast_ms = 0x01020304,
                .dest = dest4,
                .dest_len = sizeof(dest4),
                .path = "p",
        };
        uint8_t buf[CHANNEL_HEADER_SIZE + 60 + 1 + sizeof(dest4) + 2];
        uint8_t rbuf[CHANNEL_HEADER_SIZE + 40 + 4 + sizeof(dest4) + 2];
        ChannelParseError e = CHANNEL_PARSE_OK;
        ChannelEvent back;
        ChannelRequest rback;
        ChannelFrame f;

        ck_assert_int_eq(channel_encode_event(&ev, buf, sizeof(buf)), (long) sizeof(buf));
        ck_assert_mem_eq(buf + EV_FLAGS, "\x01\x01\0\0", 4);
        ck_assert_uint_eq(buf[CHANNEL_HEADER_SIZE + 60], sizeof(dest4));
        ck_assert_mem_eq(buf + CHANNEL_HEADER_SIZE + 61, dest4, sizeof(dest4));
        ck_assert_mem_eq(buf + CHANNEL_HEADER_SIZE + 61 + sizeof(dest4), "ok", 2);
        round_trip_event(&ev, sizeof(buf));

        ck_assert_int_eq(channel_encode_request(&req, rbuf, sizeof(rbuf)), (long) sizeof(rbuf));
        /* Bit 8 of the flags: the low byte at 17, the high one at 35. */
        ck_assert_uint_eq(rbuf[REQ_FLAGS], 0);
        ck_assert_uint_eq(rbuf[REQ_FLAGS_HIGH], 1);
        ck_assert_mem_eq(rbuf + CHANNEL_HEADER_SIZE + 40, "\x04\x03\x02\x01", 4);
        ck_assert_mem_eq(rbuf + CHANNEL_HEADER_SIZE + 44, dest4, sizeof(dest4));
        round_trip_request(&req, sizeof(rbuf));

        /* A window of 0 is refused either way. */
        memset(rbuf + CHANNEL_HEADER_SIZE + 40, 0, 4);
        next_only_frame(rbuf, sizeof(rbuf), CHANNEL_FRAME_REQUEST, &f);
        ck_assert_int_eq(channel_decode_request(&f, &rback, &e), -EBADMSG);
        ck_assert_int_eq(e, CHANNEL_PARSE_BAD_MULTICAST);
        ck_assert_int_eq(channel_encode_request(
                                 &(ChannelRequest){.flags = CHANNEL_REQUEST_MULTICAST, .path = "p"},
                                 rbuf, sizeof(rbuf)),
                         -EINVAL);

        /* A source of neither size is refused either way. */
        buf[CHANNEL_HEADER_SIZE + 60] = 17;
        next_only_frame(buf, sizeof(buf), CHANNEL_FRAME_EVENT, &f);
        ck_assert_int_eq(channel_decode_event(&f, &back, &e), -EBADMSG);
        ck_assert_int_eq(e, CHANNEL_PARSE_BAD_SOURCE);
        ck_assert_int_eq(channel_encode_event(&(ChannelEvent){.flags = CHANNEL_EVENT_SOURCE,
                                                              .source = dest4,
                                                              .source_len = 17},
                                              buf, sizeof(buf)),
                         -EINVAL);
}
END_TEST

/* The error message section, byte for byte: after the error name, before the message section. */
START_TEST(test_event_error_message_bytes) {
        static const uint8_t expected[] = {
                'e',  '.',  'X',  0,                /* error name */
                0x05, 0x00,                         /* error message length, with the NUL */
                'b',  'a',  'd',  '!',  0,          /* error message */
                0x01, 0x00, 0x80, 0x00, 0x00, 0x00, /* mid 1, 4.00, tkl 0, options_len 0 */
        };
        ChannelEvent ev = {
                .result = -EACCES,
                .flags = CHANNEL_EVENT_ERROR_MESSAGE | CHANNEL_EVENT_MESSAGE |
                         CHANNEL_EVENT_LAST_BLOCK | CHANNEL_EVENT_FINAL,
                .error_name = "e.X",
                .error_message = "bad!",
                .mid = 1,
                .code = 0x80,
        };
        uint8_t buf[CHANNEL_HEADER_SIZE + 60 + sizeof(expected)];

        ck_assert_int_eq(channel_encode_event(&ev, buf, sizeof(buf)), (long) sizeof(buf));
        ck_assert_uint_eq(channel_event_size(&ev), sizeof(buf));
        ck_assert_mem_eq(buf + CHANNEL_HEADER_SIZE + 60, expected, sizeof(expected));
        round_trip_event(&ev, sizeof(buf));

        /* Alone: only the length and the string. */
        ev.flags = CHANNEL_EVENT_ERROR_MESSAGE | CHANNEL_EVENT_FINAL;
        ev.error_name = NULL;
        ev.error_message = "";
        round_trip_event(&ev, CHANNEL_HEADER_SIZE + 60 + 2 + 1);
}
END_TEST

/* The longest error message is CHANNEL_ERROR_MESSAGE_MAX bytes with its NUL, both ways. */
START_TEST(test_event_error_message_max) {
        static char message[CHANNEL_ERROR_MESSAGE_MAX + 1];
        static uint8_t buf[CHANNEL_HEADER_SIZE + 60 + 2 + CHANNEL_ERROR_MESSAGE_MAX + 1];
        ChannelParseError e = CHANNEL_PARSE_OK;
        ChannelEvent ev = {
                .result = -EPROTO,
                .flags = CHANNEL_EVENT_ERROR_MESSAGE | CHANNEL_EVENT_FINAL,
                .error_message = message,
                .payload = (const uint8_t *) "",
                .payload_len = 1,
        };
        ChannelEvent back;
        ChannelFrame f;

        memset(message, 'm', CHANNEL_ERROR_MESSAGE_MAX - 1);
        round_trip_event(&ev, sizeof(buf));

        message[CHANNEL_ERROR_MESSAGE_MAX - 1] = 'm';
        ck_assert_int_eq(channel_encode_event(&ev, buf, sizeof(buf)), -EINVAL);

        /* One more byte of string, whose NUL is the payload's: the decoder refuses it too. */
        message[CHANNEL_ERROR_MESSAGE_MAX - 1] = '\0';
        ck_assert_int_eq(channel_encode_event(&ev, buf, sizeof(buf)), (long) sizeof(buf));
        put16(buf + CHANNEL_HEADER_SIZE + 60, CHANNEL_ERROR_MESSAGE_MAX + 1);
        buf[CHANNEL_HEADER_SIZE + 60 + 2 + CHANNEL_ERROR_MESSAGE_MAX - 1] = 'm';
        next_only_frame(buf, sizeof(buf), CHANNEL_FRAME_EVENT, &f);
        ck_assert_int_eq(channel_decode_event(&f, &back, &e), -EBADMSG);
        ck_assert_int_eq(e, CHANNEL_PARSE_BAD_ERROR_MESSAGE);
}
END_TEST

START_TEST(test_event_results_and_etags) {
        static const int32_t results[] = {INT32_MIN, -1, 0, 0x45, INT32_MAX};

        for (size_t i = 0; i < ELEMENTS(results); i++)
                for (uint8_t etag_len = 0; etag_len <= CHANNEL_ETAG_MAX; etag_len++) {
                        /* Bytes after etag_len are junk the encoder must not send. */
                        const ChannelEvent ev = {
                                .result = results[i],
                                .flags = CHANNEL_EVENT_FINAL,
                                .etag_len = etag_len,
                                .etag = {0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7},
                                .payload = (const uint8_t *) "x",
                                .payload_len = 1,
                        };
                        ChannelEvent back;
                        ChannelFrame f;
                        uint8_t buf[128];
                        long n = channel_encode_event(&ev, buf, sizeof(buf));

                        ck_assert_int_eq(n, CHANNEL_HEADER_SIZE + 60 + 1);
                        next_only_frame(buf, (size_t) n, CHANNEL_FRAME_EVENT, &f);
                        ck_assert_int_eq(channel_decode_event(&f, &back, NULL), 0);
                        ck_assert_int_eq(back.result, results[i]);
                        ck_assert_uint_eq(back.etag_len, etag_len);
                        ck_assert_mem_eq(back.etag, ev.etag, etag_len);
                        for (size_t j = etag_len; j < CHANNEL_ETAG_MAX; j++) {
                                ck_assert_uint_eq(buf[56 + j], 0);
                                ck_assert_uint_eq(back.etag[j], 0);
                        }
                }
}
END_TEST

START_TEST(test_event_error_names) {
        char name[CHANNEL_ERROR_NAME_MAX + 1];
        ChannelEvent ev = {.result = -EINVAL, .error_name = ""};

        /* An empty name is still a name: one NUL byte, not "none". */
        round_trip_event(&ev, CHANNEL_HEADER_SIZE + 60 + 1);

        memset(name, 'n', sizeof(name) - 1);
        name[CHANNEL_ERROR_NAME_MAX - 1] = '\0';
        ev.error_name = name;
        round_trip_event(&ev, CHANNEL_HEADER_SIZE + 60 + CHANNEL_ERROR_NAME_MAX);
}
END_TEST

START_TEST(test_event_exactly_max) {
        ChannelEvent ev = {.error_name = "e"};
        uint8_t *payload = calloc(1, CHANNEL_MESSAGE_MAX);

        ck_assert_ptr_nonnull(payload);
        ev.payload = payload;
        ev.payload_len = CHANNEL_MESSAGE_MAX - CHANNEL_HEADER_SIZE - 60 - 2;
        round_trip_event(&ev, CHANNEL_MESSAGE_MAX);
        free(payload);
}
END_TEST

/* An UPLOAD frame byte for byte, and back. */
START_TEST(test_upload_bytes) {
        static const uint8_t expected[] = {
                0x2b, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, /* size 43, UPLOAD, 0 */
                0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* client */
                0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* tag */
                0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, /* offset 65536 */
                0x01, 0x00, 0x00, 0x00,                         /* END */
                0x03, 0x00, 0x00, 0x00,                         /* len 3 */
                'x',  'y',  'z',
        };
        const ChannelUpload up = {
                .client = 0x0102030405060708,
                .tag = 0x11,
                .offset = 65536,
                .flags = CHANNEL_UPLOAD_END,
                .data = (const uint8_t *) "xyz",
                .len = 3,
        };
        uint8_t buf[sizeof(expected)];
        ChannelUpload back;
        ChannelFrame f;

        ck_assert_int_eq(channel_encode_upload(&up, buf, sizeof(buf) - 1), -ENOBUFS);
        ck_assert_int_eq(channel_encode_upload(&up, buf, sizeof(buf)), (long) sizeof(buf));
        ck_assert_mem_eq(buf, expected, sizeof(expected));
        next_only_frame(buf, sizeof(buf), CHANNEL_FRAME_UPLOAD, &f);
        ck_assert_int_eq(channel_decode_upload(&f, &back, NULL), 0);
        ck_assert_uint_eq(back.client, up.client);
        ck_assert_uint_eq(back.tag, up.tag);
        ck_assert_uint_eq(back.offset, up.offset);
        ck_assert_uint_eq(back.flags, up.flags);
        ck_assert_uint_eq(back.len, 3);
        ck_assert_ptr_eq(back.data, buf + 40);

        /* Empty: the end of a body that ended on a block. */
        ck_assert_int_eq(channel_encode_upload(&(ChannelUpload){.flags = CHANNEL_UPLOAD_END}, buf,
                                               sizeof(buf)),
                         40);
        next_only_frame(buf, 40, CHANNEL_FRAME_UPLOAD, &f);
        ck_assert_int_eq(channel_decode_upload(&f, &back, NULL), 0);
        ck_assert_ptr_null(back.data);

        /* Unknown flags, bytes without a pointer, more than a message. */
        ck_assert_int_eq(channel_encode_upload(&(ChannelUpload){.flags = 2}, buf, sizeof(buf)),
                         -EINVAL);
        ck_assert_int_eq(channel_encode_upload(&(ChannelUpload){.len = 1}, buf, sizeof(buf)),
                         -EINVAL);
        ck_assert_int_eq(
                channel_encode_upload(&(ChannelUpload){.data = buf, .len = CHANNEL_MESSAGE_MAX},
                                      buf, sizeof(buf)),
                -EINVAL);
}
END_TEST

static const ChannelFrameType ids_types[] = {
        CHANNEL_FRAME_CANCEL,
        CHANNEL_FRAME_CANCEL_ALL,
        CHANNEL_FRAME_DEREGISTER_OBSERVE,
        CHANNEL_FRAME_REREGISTER_OBSERVE,
};

START_TEST(test_ids_round_trip) {
        const ChannelFrameType type = ids_types[_i];
        uint64_t client = 0, tag = 0;
        uint8_t buf[CHANNEL_HEADER_SIZE + 16 + 8];
        ChannelFrame f;

        memset(buf, CANARY, sizeof(buf));
        ck_assert_int_eq(channel_encode_ids(type, 1, 2, buf, 23), -ENOBUFS);
        ck_assert(all_canary(buf, sizeof(buf)));
        ck_assert_int_eq(
                channel_encode_ids(type, UINT64_MAX - 1, 0x8000000000000001, buf, sizeof(buf)), 24);
        ck_assert(all_canary(buf + 24, 8));
        next_only_frame(buf, 24, type, &f);
        ck_assert_int_eq(channel_decode_ids(&f, &client, &tag, NULL), 0);
        ck_assert_uint_eq(client, UINT64_MAX - 1);
        /* CANCEL_ALL names no request: its tag is always sent as 0. */
        ck_assert_uint_eq(tag, type == CHANNEL_FRAME_CANCEL_ALL ? 0 : 0x8000000000000001);
}
END_TEST

START_TEST(test_ids_einval) {
        static const int bad[] = {0, CHANNEL_FRAME_REQUEST, CHANNEL_FRAME_EVENT, 5, 15, 17, -1};
        uint8_t buf[32];

        memset(buf, CANARY, sizeof(buf));
        for (size_t i = 0; i < ELEMENTS(bad); i++) {
                ck_assert_int_eq(
                        channel_encode_ids((ChannelFrameType) bad[i], 1, 2, buf, sizeof(buf)),
                        -EINVAL);
                ck_assert_int_eq(channel_encode_ids((ChannelFrameType) bad[i], 1, 2, buf, 0),
                                 -EINVAL);
        }
        ck_assert(all_canary(buf, sizeof(buf)));
}
END_TEST

/* POST /a/b to 127.0.0.1:5683, confirmable, JSON, Accept: 50, payload "hi", all parameters. */
static const uint8_t request_bytes[] = {
        0x4a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, /* size 74, REQUEST, 0 */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* client */
        0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, /* tag */
        0x02, 0x0d, 0x32, 0x00, 0x00, 0x04, 0x04, 0x00, /* method, flags, cf, block, path_len */
        0xd0, 0x07, 0x00, 0x00, 0x96, 0x00, 0xc8, 0x00, /* ack timeout, random, backoff */
        0x04, 0x01, 0x10, 0x00, 0x02, 0x00, 0x00, 0x00, /* max retx, n_options, dest_len, 0, len */
        0x02, 0x00, 0x16, 0x33, 0x7f, 0x00, 0x00, 0x01, /* sockaddr_in */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* its padding */
        'a',  '/',  'b',  0x00, 0x11, 0x00, 0x01, 0x32, /* path, option 17 = 0x32 */
        'h',  'i',                                      /* payload */
};

static const uint8_t request_option_accept = 0x32;

static const ChannelRequest request_struct = {
        .client = 0x0102030405060708,
        .tag = 0x1112131415161718,
        .method = 2,
        .flags = CHANNEL_REQUEST_CONFIRMABLE | CHANNEL_REQUEST_CONTENT_FORMAT |
                 CHANNEL_REQUEST_PARAMS,
        .content_format = 50,
        .block_size = 1024,
        .ack_timeout_ms = 2000,
        .ack_random_percent = 150,
        .backoff_percent = 200,
        .max_retransmission = 4,
        .dest = dest4,
        .dest_len = sizeof(dest4),
        .path = "a/b",
        .options = {{17, 1, &request_option_accept}},
        .n_options = 1,
        .payload = (const uint8_t *) "hi",
        .payload_len = 2,
};

/* A refused request's last event: -ETIMEDOUT, an error name, a 3-byte ETag, payload "ok". */
static const uint8_t event_bytes[] = {
        0x4a, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, /* size 74, EVENT, 0 */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* client */
        0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, /* tag */
        0x92, 0xff, 0xff, 0xff, 0x13, 0x00, 0x00, 0x00, /* result -110, flags */
        0x00, 0x02, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, /* offset */
        0x3c, 0x00, 0x02, 0x03, 0xef, 0xcd, 0xab, 0x00, /* cf, type, etag_len, observe */
        0x00, 0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, /* size2, error_len, 0, 0, 0 */
        0xaa, 0xbb, 0xcc, 0x00, 0x00, 0x00, 0x00, 0x00, /* etag */
        0x02, 0x00, 0x00, 0x00, 'x',  '.',  'Y',  0x00, /* payload_len, error name */
        'o',  'k',                                      /* payload */
};

static const ChannelEvent event_struct = {
        .client = 0x0102030405060708,
        .tag = 0x1112131415161718,
        .result = -110,
        .flags = CHANNEL_EVENT_LAST_BLOCK | CHANNEL_EVENT_FINAL | CHANNEL_EVENT_OBSERVE,
        .offset = 0x100000200,
        .content_format = 60,
        .type = 2,
        .etag_len = 3,
        .observe = 0xabcdef,
        .size2 = 0x10000,
        .etag = {0xaa, 0xbb, 0xcc},
        .error_name = "x.Y",
        .payload = (const uint8_t *) "ok",
        .payload_len = 2,
};

static const uint8_t ids_bytes[] = {
        0x18, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, /* size 24, DEREGISTER_OBSERVE, 0 */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* client */
        0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, /* tag */
};

START_TEST(test_request_bytes) {
        uint8_t buf[sizeof(request_bytes)];
        ChannelRequest back;
        ChannelFrame f;

        ck_assert_int_eq(channel_encode_request(&request_struct, buf, sizeof(buf)),
                         (long) sizeof(request_bytes));
        ck_assert_mem_eq(buf, request_bytes, sizeof(request_bytes));

        next_only_frame(request_bytes, sizeof(request_bytes), CHANNEL_FRAME_REQUEST, &f);
        ck_assert_int_eq(channel_decode_request(&f, &back, NULL), 0);
        assert_request_equal(&request_struct, &back, request_bytes, sizeof(request_bytes));
        ck_assert_ptr_eq(back.path, (const char *) request_bytes + 64);
        ck_assert_ptr_eq(back.options[0].value, request_bytes + 71);
        ck_assert_ptr_eq(back.payload, request_bytes + 72);
}
END_TEST

START_TEST(test_event_bytes) {
        uint8_t buf[sizeof(event_bytes)];
        ChannelEvent back;
        ChannelFrame f;

        ck_assert_int_eq(channel_encode_event(&event_struct, buf, sizeof(buf)),
                         (long) sizeof(event_bytes));
        ck_assert_mem_eq(buf, event_bytes, sizeof(event_bytes));

        next_only_frame(event_bytes, sizeof(event_bytes), CHANNEL_FRAME_EVENT, &f);
        ck_assert_int_eq(channel_decode_event(&f, &back, NULL), 0);
        assert_event_equal(&event_struct, &back, event_bytes, sizeof(event_bytes));
        ck_assert_ptr_eq(back.error_name, (const char *) event_bytes + 68);
        ck_assert_ptr_eq(back.payload, event_bytes + 72);
}
END_TEST

START_TEST(test_ids_bytes) {
        uint8_t buf[sizeof(ids_bytes)];
        uint64_t client, tag;
        ChannelFrame f;

        ck_assert_int_eq(channel_encode_ids(CHANNEL_FRAME_DEREGISTER_OBSERVE, 0x0102030405060708,
                                            0x1112131415161718, buf, sizeof(buf)),
                         (long) sizeof(ids_bytes));
        ck_assert_mem_eq(buf, ids_bytes, sizeof(ids_bytes));

        next_only_frame(ids_bytes, sizeof(ids_bytes), CHANNEL_FRAME_DEREGISTER_OBSERVE, &f);
        ck_assert_int_eq(channel_decode_ids(&f, &client, &tag, NULL), 0);
        ck_assert_uint_eq(client, 0x0102030405060708);
        ck_assert_uint_eq(tag, 0x1112131415161718);

        /* CANCEL_ALL: type 3, tag bytes zero. */
        ck_assert_int_eq(channel_encode_ids(CHANNEL_FRAME_CANCEL_ALL, 0x0102030405060708,
                                            0x1112131415161718, buf, sizeof(buf)),
                         (long) sizeof(ids_bytes));
        ck_assert_mem_eq(buf, "\x18\0\0\0\x03\0\0\0", 8);
        ck_assert_mem_eq(buf + 8, ids_bytes + 8, 8);
        ck_assert_mem_eq(buf + 16, "\0\0\0\0\0\0\0\0", 8);

        /* REREGISTER_OBSERVE: type 6, as DEREGISTER_OBSERVE otherwise. */
        ck_assert_int_eq(channel_encode_ids(CHANNEL_FRAME_REREGISTER_OBSERVE, 0x0102030405060708,
                                            0x1112131415161718, buf, sizeof(buf)),
                         (long) sizeof(ids_bytes));
        ck_assert_mem_eq(buf, "\x18\0\0\0\x06\0\0\0", 8);
        ck_assert_mem_eq(buf + 8, ids_bytes + 8, 16);
}
END_TEST

START_TEST(test_concatenated) {
        uint8_t msg[1024];
        size_t len = 0, offset = 0;
        ChannelParseError e = CHANNEL_PARSE_OK;
        ChannelRequest req;
        ChannelEvent ev;
        ChannelFrame f;
        uint64_t client, tag;
        long n;

        n = channel_encode_request(&request_struct, msg, sizeof(msg));
        ck_assert_int_gt(n, 0);
        len += (size_t) n;
        n = channel_encode_ids(CHANNEL_FRAME_CANCEL, 5, 6, msg + len, sizeof(msg) - len);
        ck_assert_int_gt(n, 0);
        len += (size_t) n;
        n = channel_encode_event(&event_struct, msg + len, sizeof(msg) - len);
        ck_assert_int_gt(n, 0);
        len += (size_t) n;
        n = channel_encode_ids(CHANNEL_FRAME_CANCEL_ALL, 5, 7, msg + len, sizeof(msg) - len);
        ck_assert_int_gt(n, 0);
        len += (size_t) n;
        n = channel_encode_ids(CHANNEL_FRAME_DEREGISTER_OBSERVE, 5, 8, msg + len,
                               sizeof(msg) - len);
        ck_assert_int_gt(n, 0);
        len += (size_t) n;
        ck_assert_uint_eq(len, 74 + 24 + 74 + 24 + 24);

        ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), 1);
        ck_assert_uint_eq(offset, 74);
        ck_assert_uint_eq(f.type, CHANNEL_FRAME_REQUEST);
        ck_assert_int_eq(channel_decode_request(&f, &req, &e), 0);
        assert_request_equal(&request_struct, &req, msg, 74);

        ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), 1);
        ck_assert_uint_eq(f.type, CHANNEL_FRAME_CANCEL);
        ck_assert_int_eq(channel_decode_ids(&f, &client, &tag, &e), 0);
        ck_assert_uint_eq(client, 5);
        ck_assert_uint_eq(tag, 6);

        ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), 1);
        ck_assert_uint_eq(offset, 74 + 24 + 74);
        ck_assert_uint_eq(f.type, CHANNEL_FRAME_EVENT);
        ck_assert_int_eq(channel_decode_event(&f, &ev, &e), 0);
        assert_event_equal(&event_struct, &ev, msg + 98, 74);

        ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), 1);
        ck_assert_uint_eq(f.type, CHANNEL_FRAME_CANCEL_ALL);
        ck_assert_int_eq(channel_decode_ids(&f, &client, &tag, &e), 0);
        ck_assert_uint_eq(client, 5);
        ck_assert_uint_eq(tag, 0);

        ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), 1);
        ck_assert_uint_eq(f.type, CHANNEL_FRAME_DEREGISTER_OBSERVE);
        ck_assert_int_eq(channel_decode_ids(&f, &client, &tag, &e), 0);
        ck_assert_uint_eq(tag, 8);

        ck_assert_uint_eq(offset, len);
        ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), 0);
        ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), 0);
        ck_assert_uint_eq(offset, len);
        ck_assert_int_eq(e, CHANNEL_PARSE_OK);

        /* An empty message has no frame. */
        offset = 0;
        ck_assert_int_eq(channel_next_frame(msg, 0, &offset, &f, &e), 0);
}
END_TEST

/* A good frame, then a bad one: the first is returned, the second stops the iteration. */
START_TEST(test_concatenated_bad_tail) {
        static const struct {
                size_t tail_len;
                uint32_t tail_size;
                ChannelParseError error;
        } tails[] = {
                {1, 0, CHANNEL_PARSE_TRUNCATED_HEADER},
                {7, 0, CHANNEL_PARSE_TRUNCATED_HEADER},
                {20, 24, CHANNEL_PARSE_BAD_FRAME_SIZE},
                {24, 25, CHANNEL_PARSE_BAD_FRAME_SIZE},
        };
        uint8_t msg[48];
        ChannelParseError e = CHANNEL_PARSE_OK;
        ChannelFrame f, untouched;
        size_t len, offset = 0;

        for (size_t i = 0; i < ELEMENTS(tails); i++) {
                ck_assert_int_eq(channel_encode_ids(CHANNEL_FRAME_CANCEL, 1, 2, msg, 24), 24);
                ck_assert_int_eq(channel_encode_ids(CHANNEL_FRAME_CANCEL, 3, 4, msg + 24, 24), 24);
                put32(msg + 24, tails[i].tail_size);
                len = 24 + tails[i].tail_len;

                offset = 0;
                ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), 1);
                ck_assert_uint_eq(offset, 24);
                memset(&f, 0x5a, sizeof(f));
                untouched = f;
                ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), -EBADMSG);
                ck_assert_int_eq(e, tails[i].error);
                ck_assert_uint_eq(offset, 24);
                ck_assert_mem_eq(&f, &untouched, sizeof(f));
        }
}
END_TEST

static void assert_request_einval(const ChannelRequest *req) {
        uint8_t buf[512];

        memset(buf, CANARY, sizeof(buf));
        ck_assert_int_eq(channel_encode_request(req, buf, sizeof(buf)), -EINVAL);
        ck_assert_int_eq(channel_encode_request(req, buf, 0), -EINVAL);
        ck_assert(all_canary(buf, sizeof(buf)));
}

START_TEST(test_request_einval) {
        /* CHANNEL_REQUEST_MULTICAST with a window of 0, and bits past the defined ones. */
        static const uint16_t flags[] = {0x100, 0x3ff, 0x400, 0xffff};
        static const size_t dest_lens[] = {1, 15, 17, 27, 29, 255};
        static const uint8_t dest[255];
        ChannelRequest req = {.path = "p"};
        char *long_path;
        uint8_t *payload;

        for (size_t i = 0; i < ELEMENTS(flags); i++) {
                req.flags = flags[i];
                assert_request_einval(&req);
        }

        /* Every bit of the low byte has a meaning: none is refused as unknown. */
        req.flags = 0xff;
        round_trip_request(&req, CHANNEL_HEADER_SIZE + 40 + 2);
        req.flags = 0;

        req.dest = dest;
        for (size_t i = 0; i < ELEMENTS(dest_lens); i++) {
                req.dest_len = dest_lens[i];
                assert_request_einval(&req);
        }
        req.dest_len = 0;

        req.n_options = CHANNEL_OPTIONS_MAX + 1;
        assert_request_einval(&req);
        req.n_options = 0;

        req.path = NULL;
        assert_request_einval(&req);
        req.path = "p";

        req.payload_len = 1;
        assert_request_einval(&req);

        /* One byte over the message limit. */
        payload = calloc(1, CHANNEL_MESSAGE_MAX);
        ck_assert_ptr_nonnull(payload);
        req.payload = payload;
        req.payload_len = CHANNEL_MESSAGE_MAX - CHANNEL_HEADER_SIZE - 40 - 2 + 1;
        assert_request_einval(&req);
        free(payload);
        req.payload = NULL;
        req.payload_len = 0;

        /* path_len is a u16: 65534 characters and the NUL fit, one more does not. */
        long_path = malloc(UINT16_MAX + 1);
        ck_assert_ptr_nonnull(long_path);
        memset(long_path, 'a', UINT16_MAX);
        long_path[UINT16_MAX] = '\0';
        req.path = long_path;
        assert_request_einval(&req);
        long_path[UINT16_MAX - 1] = '\0';
        round_trip_request(&req, CHANNEL_HEADER_SIZE + 40 + UINT16_MAX);
        free(long_path);
}
END_TEST

static void assert_event_einval(const ChannelEvent *ev) {
        uint8_t buf[512];

        memset(buf, CANARY, sizeof(buf));
        ck_assert_int_eq(channel_encode_event(ev, buf, sizeof(buf)), -EINVAL);
        ck_assert_int_eq(channel_encode_event(ev, buf, 0), -EINVAL);
        ck_assert(all_canary(buf, sizeof(buf)));
}

START_TEST(test_event_einval) {
        /* CHANNEL_EVENT_SOURCE without a source, and bits past the defined ones. */
        static const uint32_t flags[] = {0x100, 0x200, 1u << 31, UINT32_MAX};
        char name[CHANNEL_ERROR_NAME_MAX + 1];
        ChannelEvent ev = {0};
        uint8_t *payload;

        for (size_t i = 0; i < ELEMENTS(flags); i++) {
                ev.flags = flags[i];
                assert_event_einval(&ev);
        }
        ev.flags = 0;

        /* The flag and the string go together. */
        ev.flags = CHANNEL_EVENT_ERROR_MESSAGE;
        assert_event_einval(&ev);
        ev.flags = 0;
        ev.error_message = "m";
        assert_event_einval(&ev);
        ev.error_message = NULL;

        ev.flags = CHANNEL_EVENT_MESSAGE;
        ev.token_len = CHANNEL_TOKEN_MAX + 1;
        assert_event_einval(&ev);
        ev.token_len = 0;
        ev.options_len = 1;
        assert_event_einval(&ev);
        ev.options_len = 0;
        ev.flags = 0;

        ev.etag_len = CHANNEL_ETAG_MAX + 1;
        assert_event_einval(&ev);
        ev.etag_len = UINT8_MAX;
        assert_event_einval(&ev);
        ev.etag_len = 0;

        /* 255 characters and the NUL do not fit the u8 length. */
        memset(name, 'n', CHANNEL_ERROR_NAME_MAX);
        name[CHANNEL_ERROR_NAME_MAX] = '\0';
        ev.error_name = name;
        assert_event_einval(&ev);
        ev.error_name = NULL;

        ev.payload_len = 1;
        assert_event_einval(&ev);

        payload = calloc(1, CHANNEL_MESSAGE_MAX);
        ck_assert_ptr_nonnull(payload);
        ev.payload = payload;
        ev.payload_len = CHANNEL_MESSAGE_MAX - CHANNEL_HEADER_SIZE - 60 + 1;
        assert_event_einval(&ev);
        ev.payload_len = UINT32_MAX;
        assert_event_einval(&ev);
        free(payload);
}
END_TEST

typedef enum Base {
        BASE_REQUEST,
        BASE_EVENT,
        BASE_EVENT_MESSAGE,
        BASE_EVENT_ERROR_MESSAGE,
        BASE_REQUEST_MULTICAST,
        BASE_EVENT_SOURCE,
        BASE_UPLOAD,
        BASE_CANCEL,
} Base;

/* The bases of the malformed frames:
 *   REQUEST (77 bytes): dest 48..63 (sockaddr_in), path "ab" 64..66, option 6 (empty) 67..69,
 *                       option 17 = 0x32 70..73, payload "xyz" 74..76
 *   EVENT (74 bytes):   etag_len 2, error name "e.X" 68..71, payload "pq" 72..73
 *   EVENT_MESSAGE (82 bytes): EVENT with CHANNEL_EVENT_MESSAGE, mid 72..73, code 74,
 *                       token_len 75 (1), options_len 76..77 (1), token 78, option 79,
 *                       payload "pq" 80..81
 *   EVENT_ERROR_MESSAGE (78 bytes): EVENT with CHANNEL_EVENT_ERROR_MESSAGE, length 72..73 (2),
 *                       "m" 74..75, payload "pq" 76..77
 *   REQUEST_MULTICAST (81 bytes): REQUEST with CHANNEL_REQUEST_MULTICAST, window 48..51
 *   EVENT_SOURCE (91 bytes): EVENT with CHANNEL_EVENT_SOURCE, source_len 72, source 73..88
 *                       (sockaddr_in), payload "pq" 89..90
 *   UPLOAD (41 bytes):  flags 32..35, len 36..39, one byte 40
 *   CANCEL (24 bytes) */
static size_t encode_base(Base base, uint8_t *buf, size_t size) {
        static const uint8_t accept = 0x32;
        const ChannelRequest req = {
                .client = 1,
                .tag = 2,
                .method = 1,
                .flags = CHANNEL_REQUEST_CONFIRMABLE,
                .dest = dest4,
                .dest_len = sizeof(dest4),
                .path = "ab",
                .options = {{6, 0, NULL}, {17, 1, &accept}},
                .n_options = 2,
                .payload = (const uint8_t *) "xyz",
                .payload_len = 3,
        };
        const ChannelEvent ev = {
                .client = 1,
                .tag = 2,
                .result = 0x45,
                .flags = CHANNEL_EVENT_FINAL,
                .etag_len = 2,
                .etag = {0xaa, 0xbb},
                .error_name = "e.X",
                .payload = (const uint8_t *) "pq",
                .payload_len = 2,
        };
        long n;

        switch (base) {
        case BASE_REQUEST:
                n = channel_encode_request(&req, buf, size);
                ck_assert_int_eq(n, 77);
                break;
        case BASE_EVENT:
                n = channel_encode_event(&ev, buf, size);
                ck_assert_int_eq(n, 74);
                break;
        case BASE_UPLOAD:
                n = channel_encode_upload(
                        &(ChannelUpload){
                                .client = 1, .tag = 2, .offset = 3, .data = &accept, .len = 1},
                        buf, size);
                ck_assert_int_eq(n, 41);
                break;
        case BASE_REQUEST_MULTICAST: {
                ChannelRequest m = req;

                m.flags = CHANNEL_REQUEST_MULTICAST;
                m.multicast_ms = 500;
                n = channel_encode_request(&m, buf, size);
                ck_assert_int_eq(n, 81);
                break;
        }
        case BASE_EVENT_SOURCE: {
                ChannelEvent m = ev;

                m.flags |= CHANNEL_EVENT_SOURCE;
                m.source = dest4;
                m.source_len = sizeof(dest4);
                n = channel_encode_event(&m, buf, size);
                ck_assert_int_eq(n, 91);
                break;
        }
        case BASE_EVENT_MESSAGE: {
                ChannelEvent m = ev;

                m.flags |= CHANNEL_EVENT_MESSAGE;
                m.token_len = 1;
                m.token[0] = 0x77;
                m.options = &accept;
                m.options_len = 1;
                n = channel_encode_event(&m, buf, size);
                ck_assert_int_eq(n, 82);
                break;
        }
        case BASE_EVENT_ERROR_MESSAGE: {
                ChannelEvent m = ev;

                m.flags |= CHANNEL_EVENT_ERROR_MESSAGE;
                m.error_message = "m";
                n = channel_encode_event(&m, buf, size);
                ck_assert_int_eq(n, 78);
                break;
        }
        default:
                n = channel_encode_ids(CHANNEL_FRAME_CANCEL, 1, 2, buf, size);
                ck_assert_int_eq(n, 24);
                break;
        }
        return (size_t) n;
}

/* One malformation per row: the message is a base frame resized by resize bytes (its size field
 * follows unless the header is what is tested), then width bytes at off replaced by value
 * (little-endian). header: channel_next_frame() rejects it; else the frame's decoder does. */
typedef struct BadFrame {
        const char *name;
        ChannelParseError error;
        Base base;
        bool header;
        int resize;
        uint8_t off, width;
        uint32_t value;
} BadFrame;

static const BadFrame bad_frames[] = {
        {"7-byte message", CHANNEL_PARSE_TRUNCATED_HEADER, BASE_CANCEL, true, -17, 0, 0, 0},
        {"1-byte message", CHANNEL_PARSE_TRUNCATED_HEADER, BASE_CANCEL, true, -23, 0, 0, 0},
        {"size 0", CHANNEL_PARSE_BAD_FRAME_SIZE, BASE_CANCEL, true, 0, 0, 4, 0},
        {"size 7", CHANNEL_PARSE_BAD_FRAME_SIZE, BASE_CANCEL, true, 0, 0, 4, 7},
        {"size past the message", CHANNEL_PARSE_BAD_FRAME_SIZE, BASE_CANCEL, true, 0, 0, 4, 25},
        {"size 0xffffffff", CHANNEL_PARSE_BAD_FRAME_SIZE, BASE_EVENT, true, 0, 0, 4, UINT32_MAX},
        {"header reserved byte 6", CHANNEL_PARSE_RESERVED_NOT_ZERO, BASE_CANCEL, true, 0, 6, 1, 1},
        {"header reserved byte 7", CHANNEL_PARSE_RESERVED_NOT_ZERO, BASE_EVENT, true, 0, 7, 1,
         0x80},
        {"type 0", CHANNEL_PARSE_UNKNOWN_TYPE, BASE_CANCEL, true, 0, 4, 2, 0},
        {"type 9", CHANNEL_PARSE_UNKNOWN_TYPE, BASE_CANCEL, true, 0, 4, 2, 9},
        {"type 15", CHANNEL_PARSE_UNKNOWN_TYPE, BASE_EVENT, true, 0, 4, 2, 15},
        {"type 17", CHANNEL_PARSE_UNKNOWN_TYPE, BASE_EVENT, true, 0, 4, 2, 17},
        {"type 0x0101", CHANNEL_PARSE_UNKNOWN_TYPE, BASE_REQUEST, true, 0, 4, 2, 0x0101},

        {"request body 39 bytes", CHANNEL_PARSE_TRUNCATED_BODY, BASE_REQUEST, false, -30, 0, 0, 0},
        {"request flag bit 10", CHANNEL_PARSE_UNKNOWN_FLAGS, BASE_REQUEST, false, 0, REQ_FLAGS_HIGH,
         1, 4},
        {"request flag bit 15", CHANNEL_PARSE_UNKNOWN_FLAGS, BASE_REQUEST, false, 0, REQ_FLAGS_HIGH,
         1, 0x80},
        {"multicast window 0", CHANNEL_PARSE_BAD_MULTICAST, BASE_REQUEST_MULTICAST, false, 0,
         REQ_MULTICAST, 4, 0},
        {"multicast window truncated", CHANNEL_PARSE_TRUNCATED_BODY, BASE_REQUEST_MULTICAST, false,
         -30, 0, 0, 0},
        {"dest_len 15", CHANNEL_PARSE_BAD_DESTINATION, BASE_REQUEST, false, 0, REQ_DEST_LEN, 1, 15},
        {"dest_len 17", CHANNEL_PARSE_BAD_DESTINATION, BASE_REQUEST, false, 0, REQ_DEST_LEN, 1, 17},
        {"dest_len 27", CHANNEL_PARSE_BAD_DESTINATION, BASE_REQUEST, false, 0, REQ_DEST_LEN, 1, 27},
        {"dest_len 29", CHANNEL_PARSE_BAD_DESTINATION, BASE_REQUEST, false, 0, REQ_DEST_LEN, 1, 29},
        {"dest_len 255", CHANNEL_PARSE_BAD_DESTINATION, BASE_REQUEST, false, 0, REQ_DEST_LEN, 1,
         255},
        {"dest past the end", CHANNEL_PARSE_TRUNCATED_BODY, BASE_REQUEST, false, -19, 0, 0, 0},
        {"path without NUL", CHANNEL_PARSE_BAD_PATH, BASE_REQUEST, false, 0, 66, 1, 'c'},
        {"path with an inner NUL", CHANNEL_PARSE_BAD_PATH, BASE_REQUEST, false, 0, 65, 1, 0},
        {"path_len 0", CHANNEL_PARSE_BAD_PATH, BASE_REQUEST, false, 0, REQ_PATH_LEN, 2, 0},
        {"path_len short of the NUL", CHANNEL_PARSE_BAD_PATH, BASE_REQUEST, false, 0, REQ_PATH_LEN,
         2, 2},
        {"path_len past the end", CHANNEL_PARSE_TRUNCATED_BODY, BASE_REQUEST, false, 0,
         REQ_PATH_LEN, 2, 30},
        {"path_len 0xffff", CHANNEL_PARSE_TRUNCATED_BODY, BASE_REQUEST, false, 0, REQ_PATH_LEN, 2,
         UINT16_MAX},
        {"17 options", CHANNEL_PARSE_TOO_MANY_OPTIONS, BASE_REQUEST, false, 0, REQ_N_OPTIONS, 1,
         17},
        {"255 options", CHANNEL_PARSE_TOO_MANY_OPTIONS, BASE_REQUEST, false, 0, REQ_N_OPTIONS, 1,
         255},
        {"option value past the end", CHANNEL_PARSE_TRUNCATED_BODY, BASE_REQUEST, false, 0, 72, 1,
         255},
        {"option value 1 byte past the end", CHANNEL_PARSE_TRUNCATED_BODY, BASE_REQUEST, false, -4,
         0, 0, 0},
        {"option header past the end", CHANNEL_PARSE_TRUNCATED_BODY, BASE_REQUEST, false, -5, 0, 0,
         0},
        {"one option less than sent", CHANNEL_PARSE_TRAILING_BYTES, BASE_REQUEST, false, 0,
         REQ_N_OPTIONS, 1, 1},
        {"request payload_len + 1", CHANNEL_PARSE_TRUNCATED_BODY, BASE_REQUEST, false, 0,
         REQ_PAYLOAD_LEN, 4, 4},
        {"request payload_len 0xffffffff", CHANNEL_PARSE_TRUNCATED_BODY, BASE_REQUEST, false, 0,
         REQ_PAYLOAD_LEN, 4, UINT32_MAX},
        {"request payload_len - 1", CHANNEL_PARSE_TRAILING_BYTES, BASE_REQUEST, false, 0,
         REQ_PAYLOAD_LEN, 4, 2},
        {"request trailing byte", CHANNEL_PARSE_TRAILING_BYTES, BASE_REQUEST, false, 1, 0, 0, 0},
        {"PAYLOAD_FD with inline bytes", CHANNEL_PARSE_TRAILING_BYTES, BASE_REQUEST, false, 0,
         REQ_FLAGS, 1, 0x11},

        {"event body 59 bytes", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT, false, -7, 0, 0, 0},
        {"event reserved byte 45", CHANNEL_PARSE_RESERVED_NOT_ZERO, BASE_EVENT, false, 0, EV_ZERO,
         1, 1},
        {"event reserved byte 46", CHANNEL_PARSE_RESERVED_NOT_ZERO, BASE_EVENT, false, 0,
         EV_ZERO + 1, 1, 1},
        {"event reserved byte 47", CHANNEL_PARSE_RESERVED_NOT_ZERO, BASE_EVENT, false, 0,
         EV_ZERO + 2, 1, 0x80},
        /* The base event with CHANNEL_EVENT_ERROR_MESSAGE: its payload "pq" is read as the
         * section's length. */
        {"error message section truncated", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT, false, 0,
         EV_FLAGS, 4, 0x82},
        {"error message length only", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT, false, -1, EV_FLAGS,
         4, 0x82},
        {"error message without NUL", CHANNEL_PARSE_BAD_ERROR_MESSAGE, BASE_EVENT_ERROR_MESSAGE,
         false, 0, 75, 1, 'n'},
        {"error message with an inner NUL", CHANNEL_PARSE_BAD_ERROR_MESSAGE,
         BASE_EVENT_ERROR_MESSAGE, false, 0, 74, 1, 0},
        {"error message length 0", CHANNEL_PARSE_BAD_ERROR_MESSAGE, BASE_EVENT_ERROR_MESSAGE, false,
         0, 72, 2, 0},
        {"error message length short of the NUL", CHANNEL_PARSE_BAD_ERROR_MESSAGE,
         BASE_EVENT_ERROR_MESSAGE, false, 0, 72, 2, 1},
        {"error message length over the NUL", CHANNEL_PARSE_BAD_ERROR_MESSAGE,
         BASE_EVENT_ERROR_MESSAGE, false, 0, 72, 2, 3},
        {"error message length past the end", CHANNEL_PARSE_TRUNCATED_BODY,
         BASE_EVENT_ERROR_MESSAGE, false, 0, 72, 2, 5},
        {"error message length 0xffff", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT_ERROR_MESSAGE,
         false, 0, 72, 2, UINT16_MAX},
        /* The base event with CHANNEL_EVENT_SOURCE: its payload's 'p' is no source length. */
        {"source_len 'p'", CHANNEL_PARSE_BAD_SOURCE, BASE_EVENT, false, 0, EV_FLAGS, 4, 0x102},
        {"source_len 0", CHANNEL_PARSE_BAD_SOURCE, BASE_EVENT_SOURCE, false, 0, EV_SOURCE_LEN, 1,
         0},
        {"source_len 28 past the end", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT_SOURCE, false, 0,
         EV_SOURCE_LEN, 1, 28},
        {"source section truncated", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT_SOURCE, false, -19, 0,
         0, 0},
        {"event flag bit 9", CHANNEL_PARSE_UNKNOWN_FLAGS, BASE_EVENT, false, 0, EV_FLAGS, 4, 0x202},
        /* The base event with CHANNEL_EVENT_MESSAGE: its 2-byte payload is too short for the
         * section. */
        {"message section truncated", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT, false, 0, EV_FLAGS,
         4, 0x42},
        {"token_len 9", CHANNEL_PARSE_BAD_TOKEN, BASE_EVENT_MESSAGE, false, 0, 75, 1, 9},
        {"options_len past the end", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT_MESSAGE, false, 0, 76,
         2, 5},
        {"options_len short", CHANNEL_PARSE_TRAILING_BYTES, BASE_EVENT_MESSAGE, false, 0, 76, 2, 0},
        {"event flag bit 31", CHANNEL_PARSE_UNKNOWN_FLAGS, BASE_EVENT, false, 0, EV_FLAGS, 4,
         1u << 31},
        {"etag_len 9", CHANNEL_PARSE_BAD_ETAG, BASE_EVENT, false, 0, EV_ETAG_LEN, 1, 9},
        {"etag_len 255", CHANNEL_PARSE_BAD_ETAG, BASE_EVENT, false, 0, EV_ETAG_LEN, 1, 255},
        {"error name without NUL", CHANNEL_PARSE_BAD_ERROR_NAME, BASE_EVENT, false, 0, 71, 1, 'Y'},
        {"error name with an inner NUL", CHANNEL_PARSE_BAD_ERROR_NAME, BASE_EVENT, false, 0, 69, 1,
         0},
        {"error_len short of the NUL", CHANNEL_PARSE_BAD_ERROR_NAME, BASE_EVENT, false, 0,
         EV_ERROR_LEN, 1, 3},
        {"error_len past the end", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT, false, 0, EV_ERROR_LEN,
         1, 7},
        {"error_len 255", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT, false, 0, EV_ERROR_LEN, 1, 255},
        {"event payload_len + 1", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT, false, 0,
         EV_PAYLOAD_LEN, 4, 3},
        {"event payload_len 0xffffffff", CHANNEL_PARSE_TRUNCATED_BODY, BASE_EVENT, false, 0,
         EV_PAYLOAD_LEN, 4, UINT32_MAX},
        {"event payload_len - 1", CHANNEL_PARSE_TRAILING_BYTES, BASE_EVENT, false, 0,
         EV_PAYLOAD_LEN, 4, 1},
        {"event trailing byte", CHANNEL_PARSE_TRAILING_BYTES, BASE_EVENT, false, 1, 0, 0, 0},

        {"upload body 31 bytes", CHANNEL_PARSE_TRUNCATED_BODY, BASE_UPLOAD, false, -10, 0, 0, 0},
        {"upload flag bit 1", CHANNEL_PARSE_UNKNOWN_FLAGS, BASE_UPLOAD, false, 0, 32, 4, 2},
        {"upload len + 1", CHANNEL_PARSE_TRUNCATED_BODY, BASE_UPLOAD, false, 0, 36, 4, 2},
        {"upload len - 1", CHANNEL_PARSE_TRAILING_BYTES, BASE_UPLOAD, false, 0, 36, 4, 0},
        {"ids body 15 bytes", CHANNEL_PARSE_TRUNCATED_BODY, BASE_CANCEL, false, -1, 0, 0, 0},
        {"CANCEL_ALL body 0 bytes", CHANNEL_PARSE_TRUNCATED_BODY, BASE_CANCEL, false, -16, 4, 2,
         CHANNEL_FRAME_CANCEL_ALL},
        {"ids body 17 bytes", CHANNEL_PARSE_TRAILING_BYTES, BASE_CANCEL, false, 1, 0, 0, 0},
        {"DEREGISTER_OBSERVE body 24 bytes", CHANNEL_PARSE_TRAILING_BYTES, BASE_CANCEL, false, 8, 4,
         2, CHANNEL_FRAME_DEREGISTER_OBSERVE},
};

START_TEST(test_parse_errors) {
        const BadFrame *t = &bad_frames[_i];
        ChannelParseError e = CHANNEL_PARSE_OK;
        uint8_t buf[256] = {0}, *msg;
        size_t len, offset = 0;
        ChannelFrame f;
        int r;

        len = (size_t) ((int) encode_base(t->base, buf, sizeof(buf)) + t->resize);
        if (!t->header && t->resize != 0)
                put32(buf, (uint32_t) len);
        for (size_t i = 0; i < t->width; i++)
                buf[t->off + i] = (uint8_t) (t->value >> (8 * i));
        /* A heap copy of exactly the message's size, so ASan sees any overread. */
        msg = malloc(len);
        ck_assert_ptr_nonnull(msg);
        memcpy(msg, buf, len);

        r = channel_next_frame(msg, len, &offset, &f, &e);
        if (t->header) {
                ck_assert_msg(r == -EBADMSG && e == t->error, "%s: got %d %s, expected %s", t->name,
                              r, channel_parse_error_to_string(e),
                              channel_parse_error_to_string(t->error));
                ck_assert_uint_eq(offset, 0);
        } else {
                ChannelRequest req, req_untouched;
                ChannelEvent ev, ev_untouched;
                ChannelUpload up, up_untouched;
                uint64_t client = 99, tag = 99;

                ck_assert_msg(r == 1, "%s: header rejected: %s", t->name,
                              channel_parse_error_to_string(e));
                memset(&req, 0x5a, sizeof(req));
                memset(&ev, 0x5a, sizeof(ev));
                memset(&up, 0x5a, sizeof(up));
                req_untouched = req;
                ev_untouched = ev;
                up_untouched = up;
                switch (f.type) {
                case CHANNEL_FRAME_REQUEST:
                        r = channel_decode_request(&f, &req, &e);
                        break;
                case CHANNEL_FRAME_EVENT:
                        r = channel_decode_event(&f, &ev, &e);
                        break;
                case CHANNEL_FRAME_UPLOAD:
                        r = channel_decode_upload(&f, &up, &e);
                        break;
                default:
                        r = channel_decode_ids(&f, &client, &tag, &e);
                        break;
                }
                ck_assert_msg(r == -EBADMSG && e == t->error, "%s: got %d %s, expected %s", t->name,
                              r, channel_parse_error_to_string(e),
                              channel_parse_error_to_string(t->error));
                ck_assert_mem_eq(&req, &req_untouched, sizeof(req));
                ck_assert_mem_eq(&ev, &ev_untouched, sizeof(ev));
                ck_assert_mem_eq(&up, &up_untouched, sizeof(up));
                ck_assert_uint_eq(client, 99);
                ck_assert_uint_eq(tag, 99);
        }
        free(msg);
}
END_TEST

/* size > CHANNEL_MESSAGE_MAX is refused even when the bytes are there; == is a frame. */
START_TEST(test_frame_size_limit) {
        ChannelParseError e = CHANNEL_PARSE_OK;
        size_t len = CHANNEL_MESSAGE_MAX + 1, offset = 0;
        uint8_t *msg = calloc(1, len);
        ChannelFrame f;

        ck_assert_ptr_nonnull(msg);
        put32(msg, CHANNEL_MESSAGE_MAX + 1);
        msg[4] = CHANNEL_FRAME_CANCEL;
        ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), -EBADMSG);
        ck_assert_int_eq(e, CHANNEL_PARSE_BAD_FRAME_SIZE);
        ck_assert_uint_eq(offset, 0);

        put32(msg, CHANNEL_MESSAGE_MAX);
        ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), 1);
        ck_assert_uint_eq(offset, CHANNEL_MESSAGE_MAX);
        ck_assert_uint_eq(f.body_len, CHANNEL_MESSAGE_MAX - CHANNEL_HEADER_SIZE);
        ck_assert_int_eq(channel_decode_ids(&f, &(uint64_t){0}, &(uint64_t){0}, &e), -EBADMSG);
        ck_assert_int_eq(e, CHANNEL_PARSE_TRAILING_BYTES);
        /* The last byte is a truncated header. */
        ck_assert_int_eq(channel_next_frame(msg, len, &offset, &f, &e), -EBADMSG);
        ck_assert_int_eq(e, CHANNEL_PARSE_TRUNCATED_HEADER);
        free(msg);
}
END_TEST

/* A frame takes its fds by its type and a REQUEST's flags alone, so that a malformed one does not
 * shift the fds of the frames after it. */
START_TEST(test_frame_n_fds) {
        uint8_t body[40] = {0};
        ChannelFrame f = {.type = CHANNEL_FRAME_REQUEST, .body = body, .body_len = sizeof(body)};

        ck_assert_uint_eq(channel_frame_n_fds(&f), 1);
        body[17] = CHANNEL_REQUEST_PAYLOAD_FD;
        ck_assert_uint_eq(channel_frame_n_fds(&f), 2);
        /* Unknown flag bits besides: still two. */
        body[17] = 0xff;
        ck_assert_uint_eq(channel_frame_n_fds(&f), 2);
        /* A registered socket: the payload fd only, or none. */
        body[35] = CHANNEL_REQUEST_SOCKET_ID >> 8;
        ck_assert_uint_eq(channel_frame_n_fds(&f), 1);
        body[17] = 0;
        ck_assert_uint_eq(channel_frame_n_fds(&f), 0);
        body[35] = 0xff;
        ck_assert_uint_eq(channel_frame_n_fds(&f), 0);
        /* Too short to hold the high flags: the socket, and the payload fd by the low ones. */
        f.body_len = 35;
        ck_assert_uint_eq(channel_frame_n_fds(&f), 1);
        body[17] = CHANNEL_REQUEST_PAYLOAD_FD;
        ck_assert_uint_eq(channel_frame_n_fds(&f), 2);
        /* Too short to hold any flags: the socket only. */
        f.body_len = 17;
        ck_assert_uint_eq(channel_frame_n_fds(&f), 1);

        /* A registration takes its socket, whatever its body; other frames take none. */
        f = (ChannelFrame){.type = CHANNEL_FRAME_REGISTER_SOCKET, .body = body, .body_len = 0};
        ck_assert_uint_eq(channel_frame_n_fds(&f), 1);
        f.type = CHANNEL_FRAME_RELEASE_SOCKET;
        ck_assert_uint_eq(channel_frame_n_fds(&f), 0);
        f.type = CHANNEL_FRAME_CANCEL;
        f.body_len = sizeof(body);
        ck_assert_uint_eq(channel_frame_n_fds(&f), 0);
}
END_TEST

/* REGISTER_SOCKET and RELEASE_SOCKET, byte for byte: the header and the id. */
START_TEST(test_socket_bytes) {
        static const uint8_t expected[] = {
                0x10, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, /* size 16, REGISTER_SOCKET, 0 */
                0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* id */
        };
        uint8_t buf[sizeof(expected) + 8];
        ChannelParseError e = CHANNEL_PARSE_OK;
        ChannelFrame f;
        uint64_t id = 0;

        memset(buf, CANARY, sizeof(buf));
        ck_assert_int_eq(channel_encode_socket(CHANNEL_FRAME_REGISTER_SOCKET, 1, buf, 15),
                         -ENOBUFS);
        ck_assert(all_canary(buf, sizeof(buf)));
        ck_assert_int_eq(channel_encode_socket(CHANNEL_FRAME_REGISTER_SOCKET, 0x0102030405060708,
                                               buf, sizeof(buf)),
                         16);
        ck_assert_mem_eq(buf, expected, sizeof(expected));
        ck_assert(all_canary(buf + 16, 8));
        next_only_frame(buf, 16, CHANNEL_FRAME_REGISTER_SOCKET, &f);
        ck_assert_int_eq(channel_decode_socket(&f, &id, &e), 0);
        ck_assert_uint_eq(id, 0x0102030405060708);

        ck_assert_int_eq(channel_encode_socket(CHANNEL_FRAME_RELEASE_SOCKET, UINT64_MAX, buf, 16),
                         16);
        ck_assert_mem_eq(buf, "\x10\0\0\0\x08\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff", 16);
        next_only_frame(buf, 16, CHANNEL_FRAME_RELEASE_SOCKET, &f);
        ck_assert_int_eq(channel_decode_socket(&f, &id, &e), 0);
        ck_assert_uint_eq(id, UINT64_MAX);

        /* Other types are refused by the encoder and the decoder. */
        ck_assert_int_eq(channel_encode_socket(CHANNEL_FRAME_CANCEL, 1, buf, sizeof(buf)), -EINVAL);
        ck_assert_int_eq(channel_encode_socket((ChannelFrameType) 9, 1, buf, sizeof(buf)), -EINVAL);
        f.type = CHANNEL_FRAME_CANCEL;
        ck_assert_int_eq(channel_decode_socket(&f, &id, &e), -EBADMSG);
        ck_assert_int_eq(e, CHANNEL_PARSE_UNKNOWN_TYPE);
        /* A body of other than 8 bytes. */
        f.type = CHANNEL_FRAME_REGISTER_SOCKET;
        f.body_len = 7;
        ck_assert_int_eq(channel_decode_socket(&f, &id, &e), -EBADMSG);
        ck_assert_int_eq(e, CHANNEL_PARSE_TRUNCATED_BODY);
        f.body_len = 9;
        ck_assert_int_eq(channel_decode_socket(&f, &id, &e), -EBADMSG);
        ck_assert_int_eq(e, CHANNEL_PARSE_TRAILING_BYTES);
        /* And the other decoders refuse them. */
        f.body_len = 8;
        ck_assert_int_eq(channel_decode_ids(&f, &id, &id, &e), -EBADMSG);
        ck_assert_int_eq(e, CHANNEL_PARSE_UNKNOWN_TYPE);
}
END_TEST

/* A REQUEST on a registered socket: the id after the multicast window, before the destination. */
START_TEST(test_request_socket_id_bytes) {
        const ChannelRequest req = {
                .flags = CHANNEL_REQUEST_SOCKET_ID | CHANNEL_REQUEST_MULTICAST,
                .multicast_ms = 0x01020304,
                .socket_id = 0x1112131415161718,
                .dest = dest4,
                .dest_len = sizeof(dest4),
                .path = "p",
        };
        uint8_t buf[CHANNEL_HEADER_SIZE + 40 + 4 + 8 + sizeof(dest4) + 2];
        ChannelParseError e = CHANNEL_PARSE_OK;
        ChannelRequest back;
        ChannelFrame f;

        ck_assert_int_eq(channel_encode_request(&req, buf, sizeof(buf)), (long) sizeof(buf));
        /* Bits 8 and 9 of the flags, in the high byte. */
        ck_assert_uint_eq(buf[REQ_FLAGS_HIGH], 3);
        ck_assert_mem_eq(buf + CHANNEL_HEADER_SIZE + 40, "\x04\x03\x02\x01", 4);
        ck_assert_mem_eq(buf + CHANNEL_HEADER_SIZE + 44, "\x18\x17\x16\x15\x14\x13\x12\x11", 8);
        ck_assert_mem_eq(buf + CHANNEL_HEADER_SIZE + 52, dest4, sizeof(dest4));
        round_trip_request(&req, sizeof(buf));
        next_only_frame(buf, sizeof(buf), CHANNEL_FRAME_REQUEST, &f);
        ck_assert_uint_eq(channel_frame_n_fds(&f), 0);

        /* Without a window the id comes first. */
        round_trip_request(
                &(ChannelRequest){.flags = CHANNEL_REQUEST_SOCKET_ID, .socket_id = 5, .path = ""},
                CHANNEL_HEADER_SIZE + 40 + 8 + 1);

        /* A body that ends inside the id. */
        f.body_len = 40 + 4 + 7;
        ck_assert_int_eq(channel_decode_request(&f, &back, &e), -EBADMSG);
        ck_assert_int_eq(e, CHANNEL_PARSE_TRUNCATED_BODY);
}
END_TEST

START_TEST(test_decode_wrong_type) {
        static const Base bases[] = {BASE_REQUEST, BASE_EVENT, BASE_UPLOAD, BASE_CANCEL};
        uint8_t buf[128];

        for (size_t i = 0; i < ELEMENTS(bases); i++) {
                ChannelParseError e = CHANNEL_PARSE_OK;
                ChannelRequest req, req_untouched;
                ChannelEvent ev, ev_untouched;
                uint64_t client = 99, tag = 99;
                size_t len = encode_base(bases[i], buf, sizeof(buf));
                ChannelFrame f;

                next_only_frame(buf, len,
                                bases[i] == BASE_REQUEST  ? CHANNEL_FRAME_REQUEST
                                : bases[i] == BASE_EVENT  ? CHANNEL_FRAME_EVENT
                                : bases[i] == BASE_UPLOAD ? CHANNEL_FRAME_UPLOAD
                                                          : CHANNEL_FRAME_CANCEL,
                                &f);
                memset(&req, 0x5a, sizeof(req));
                memset(&ev, 0x5a, sizeof(ev));
                req_untouched = req;
                ev_untouched = ev;
                if (bases[i] != BASE_REQUEST) {
                        e = CHANNEL_PARSE_OK;
                        ck_assert_int_eq(channel_decode_request(&f, &req, &e), -EBADMSG);
                        ck_assert_int_eq(e, CHANNEL_PARSE_UNKNOWN_TYPE);
                }
                if (bases[i] != BASE_EVENT) {
                        e = CHANNEL_PARSE_OK;
                        ck_assert_int_eq(channel_decode_event(&f, &ev, &e), -EBADMSG);
                        ck_assert_int_eq(e, CHANNEL_PARSE_UNKNOWN_TYPE);
                }
                if (bases[i] != BASE_CANCEL) {
                        e = CHANNEL_PARSE_OK;
                        ck_assert_int_eq(channel_decode_ids(&f, &client, &tag, &e), -EBADMSG);
                        ck_assert_int_eq(e, CHANNEL_PARSE_UNKNOWN_TYPE);
                }
                if (bases[i] != BASE_UPLOAD) {
                        ChannelUpload up;

                        e = CHANNEL_PARSE_OK;
                        ck_assert_int_eq(channel_decode_upload(&f, &up, &e), -EBADMSG);
                        ck_assert_int_eq(e, CHANNEL_PARSE_UNKNOWN_TYPE);
                }
                ck_assert_mem_eq(&req, &req_untouched, sizeof(req));
                ck_assert_mem_eq(&ev, &ev_untouched, sizeof(ev));
                ck_assert_uint_eq(client, 99);
                ck_assert_uint_eq(tag, 99);
        }
}
END_TEST

START_TEST(test_parse_error_coverage) {
        for (int e = CHANNEL_PARSE_OK + 1; e < _CHANNEL_PARSE_ERROR_MAX; e++) {
                bool found = false;

                for (size_t i = 0; i < ELEMENTS(bad_frames); i++)
                        found = found || bad_frames[i].error == (ChannelParseError) e;
                ck_assert_msg(found, "no frame for %s", channel_parse_error_to_string(e));
        }
}
END_TEST

START_TEST(test_parse_error_strings) {
        for (int e = 0; e < _CHANNEL_PARSE_ERROR_MAX; e++) {
                const char *s = channel_parse_error_to_string(e);

                ck_assert_ptr_nonnull(s);
                ck_assert_uint_gt(strlen(s), 0);
                for (int f = 0; f < e; f++)
                        ck_assert_str_ne(s, channel_parse_error_to_string(f));
        }
        ck_assert_ptr_null(channel_parse_error_to_string(_CHANNEL_PARSE_ERROR_MAX));
        ck_assert_ptr_null(channel_parse_error_to_string(_CHANNEL_PARSE_ERROR_MAX + 1));
        ck_assert_ptr_null(channel_parse_error_to_string((ChannelParseError) -1));
}
END_TEST

static Suite *channel_wire_suite(void) {
        Suite *s = suite_create("channel-wire");
        TCase *tc;

        tc = tcase_create("round-trip");
        tcase_add_test(tc, test_request_minimal);
        tcase_add_test(tc, test_request_dest4_options_payload);
        tcase_add_test(tc, test_request_dest6_max_options_payload_fd);
        tcase_add_test(tc, test_request_exactly_max);
        tcase_add_test(tc, test_event_minimal);
        tcase_add_test(tc, test_event_full);
        tcase_add_test(tc, test_event_message_bytes);
        tcase_add_test(tc, test_event_error_message_bytes);
        tcase_add_test(tc, test_event_error_message_max);
        tcase_add_test(tc, test_upload_bytes);
        tcase_add_test(tc, test_multicast_bytes);
        tcase_add_test(tc, test_event_results_and_etags);
        tcase_add_test(tc, test_event_error_names);
        tcase_add_test(tc, test_event_exactly_max);
        tcase_add_loop_test(tc, test_ids_round_trip, 0, (int) ELEMENTS(ids_types));
        tcase_add_test(tc, test_concatenated);
        tcase_add_test(tc, test_concatenated_bad_tail);
        suite_add_tcase(s, tc);

        tc = tcase_create("bytes");
        tcase_add_test(tc, test_request_bytes);
        tcase_add_test(tc, test_event_bytes);
        tcase_add_test(tc, test_ids_bytes);
        suite_add_tcase(s, tc);

        tc = tcase_create("encode-errors");
        tcase_add_test(tc, test_request_einval);
        tcase_add_test(tc, test_event_einval);
        tcase_add_test(tc, test_ids_einval);
        suite_add_tcase(s, tc);

        tc = tcase_create("parse-errors");
        tcase_add_loop_test(tc, test_parse_errors, 0, (int) ELEMENTS(bad_frames));
        tcase_add_test(tc, test_frame_size_limit);
        tcase_add_test(tc, test_decode_wrong_type);
        tcase_add_test(tc, test_frame_n_fds);
        tcase_add_test(tc, test_socket_bytes);
        tcase_add_test(tc, test_request_socket_id_bytes);
        tcase_add_test(tc, test_parse_error_coverage);
        tcase_add_test(tc, test_parse_error_strings);
        suite_add_tcase(s, tc);

        return s;
}

DEFINE_CHECK_MAIN(channel_wire_suite)
