/* SPDX-License-Identifier: MIT */
#pragma once

/* The CoAP message codec (RFC 7252 §3): parse a datagram into a view, build one into a buffer.
 * Pure: libc only, no allocation, no clock, no I/O. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coap-defs.h"

/* One option: a number and a value that points into someone else's bytes. */
typedef struct CoapOption {
        uint16_t number;
        uint16_t len;
        const uint8_t *value;
} CoapOption;

/* A parsed message. Points into the parsed buffer, which must outlive it. */
typedef struct CoapMsg {
        uint8_t type; /* CoapType */
        uint8_t code;
        uint16_t mid;
        uint8_t token_len;
        uint8_t token[COAP_TOKEN_MAX];
        const uint8_t *options; /* the raw, validated option bytes */
        size_t options_len;
        size_t n_options;
        /* Bit n: option n is present, for n < 63; bit 63: some option of 63 or more is. Lets a
         * lookup of an absent option skip the scan. */
        uint64_t present;
        const uint8_t *payload; /* NULL when there is none */
        size_t payload_len;
} CoapMsg;

/* Why a datagram is not a CoAP message. Each malformation has its own value. */
typedef enum CoapParseError {
        COAP_PARSE_OK = 0,
        COAP_PARSE_TOO_SHORT,         /* fewer than 4 bytes */
        COAP_PARSE_BAD_VERSION,       /* version field is not 1 */
        COAP_PARSE_BAD_TOKEN_LENGTH,  /* TKL 9..15 */
        COAP_PARSE_TRUNCATED_TOKEN,   /* datagram ends inside the token */
        COAP_PARSE_BAD_OPTION_DELTA,  /* delta nibble 15 without being the payload marker */
        COAP_PARSE_BAD_OPTION_LENGTH, /* length nibble 15 */
        COAP_PARSE_TRUNCATED_OPTION,  /* ends inside an option header or value */
        COAP_PARSE_OPTION_OVERFLOW,   /* option number exceeds 65535 */
        COAP_PARSE_EMPTY_PAYLOAD,     /* payload marker followed by no payload */
        COAP_PARSE_BAD_EMPTY_MESSAGE, /* code 0.00 with a token, options or payload */
        COAP_PARSE_RESERVED_CODE,     /* code class 1, 6 or 7 (reserved) */
        COAP_PARSE_OPTION_TOO_LONG,   /* option value over 65535 bytes (len is 16 bit) */
        _COAP_PARSE_ERROR_MAX,
} CoapParseError;

const char *coap_parse_error_to_string(CoapParseError e);

/* Returns 0, or -EBADMSG with *ret_error (may be NULL) naming the malformation.
 * On failure *ret is left untouched. */
int coap_msg_parse(const uint8_t *buf, size_t len, CoapMsg *ret, CoapParseError *ret_error);

/* Option iteration over a parsed (hence validated) message. */
typedef struct CoapOptionIter {
        const uint8_t *p;
        const uint8_t *end;
        uint16_t number;
} CoapOptionIter;

void coap_option_iter_init(CoapOptionIter *it, const CoapMsg *m);
bool coap_option_iter_next(CoapOptionIter *it, CoapOption *ret);

/* First option with this number: true and *ret filled (ret may be NULL), or false. The message
 * must come from coap_msg_parse() (which fills present). */
bool coap_msg_find_option(const CoapMsg *m, uint16_t number, CoapOption *ret);
/* Unsigned integer option: 0, -ENOENT when absent, -EBADMSG when longer than 4 bytes. */
int coap_msg_get_uint_option(const CoapMsg *m, uint16_t number, uint32_t *ret);

/* Unsigned integer option values (RFC 7252 §3.2): minimal big-endian encoding into out[4];
 * returns the length (0 for value 0). */
size_t coap_uint_encode(uint32_t value, uint8_t out[4]);
/* 0, or -EBADMSG when len > 4. */
int coap_uint_decode(const uint8_t *value, size_t len, uint32_t *ret);

/* Builds a message into caller memory. Options must be added in ascending number order.
 * Errors are sticky: after one, every call returns it again, and so does coap_builder_finish(). */
typedef struct CoapBuilder {
        uint8_t *buf;
        size_t cap;
        size_t len;
        uint16_t last_number;
        bool has_payload;
        int error;
} CoapBuilder;

/* token_len > 8 makes the builder fail with -EINVAL; cap < 4 + token_len with -EMSGSIZE. */
void coap_builder_init(CoapBuilder *b, uint8_t *buf, size_t cap, CoapType type, uint8_t code,
                       uint16_t mid, const uint8_t *token, uint8_t token_len);
/* -EINVAL: number below the previous one, value longer than 65535+269, or after the payload;
 * -EMSGSIZE: no room. */
int coap_builder_add_option(CoapBuilder *b, uint16_t number, const void *value, size_t len);
/* Minimal big-endian encoding (0 is the empty value). */
int coap_builder_add_uint_option(CoapBuilder *b, uint16_t number, uint32_t value);
/* Options that must already be sorted (see coap_options_sort()). */
int coap_builder_add_options(CoapBuilder *b, const CoapOption *opts, size_t n);
/* len 0 adds nothing (no marker). Only once, after all options. */
int coap_builder_set_payload(CoapBuilder *b, const void *payload, size_t len);
/* Returns the sticky error, or 0 and the encoded length in *ret_len. */
int coap_builder_finish(CoapBuilder *b, size_t *ret_len);

/* Encoded size of a message with these parts, for sizing buffers exactly. */
size_t coap_msg_encoded_size(uint8_t token_len, const CoapOption *sorted_opts, size_t n_opts,
                             size_t payload_len);

/* Stable sort by option number (repeated options keep their order). */
void coap_options_sort(CoapOption *opts, size_t n);
