/* SPDX-License-Identifier: MIT */
#include "coap-msg.h"

#include <errno.h>
#include <string.h>

/* Extended delta/length fields (RFC 7252 §3.1): nibble 13 adds one byte (value - 13), nibble 14
 * two bytes (value - 269). */
#define EXT1_BASE  13u
#define EXT2_BASE  269u
#define OPTION_MAX (65535u + EXT2_BASE)

size_t coap_uint_encode(uint32_t value, uint8_t out[4]) {
        size_t n = 0;

        for (uint32_t v = value; v > 0; v >>= 8)
                n++;
        for (size_t i = 0; i < n; i++)
                out[i] = (uint8_t) (value >> (8 * (n - 1 - i)));
        return n;
}

int coap_uint_decode(const uint8_t *value, size_t len, uint32_t *ret) {
        uint32_t v = 0;

        if (len > 4)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++)
                v = v << 8 | value[i];
        if (ret)
                *ret = v;
        return 0;
}

static const char *const parse_error_table[_COAP_PARSE_ERROR_MAX] = {
        [COAP_PARSE_OK] = "ok",
        [COAP_PARSE_TOO_SHORT] = "too-short",
        [COAP_PARSE_BAD_VERSION] = "bad-version",
        [COAP_PARSE_BAD_TOKEN_LENGTH] = "bad-token-length",
        [COAP_PARSE_TRUNCATED_TOKEN] = "truncated-token",
        [COAP_PARSE_BAD_OPTION_DELTA] = "bad-option-delta",
        [COAP_PARSE_BAD_OPTION_LENGTH] = "bad-option-length",
        [COAP_PARSE_TRUNCATED_OPTION] = "truncated-option",
        [COAP_PARSE_OPTION_OVERFLOW] = "option-overflow",
        [COAP_PARSE_EMPTY_PAYLOAD] = "empty-payload",
        [COAP_PARSE_BAD_EMPTY_MESSAGE] = "bad-empty-message",
        [COAP_PARSE_RESERVED_CODE] = "reserved-code",
        [COAP_PARSE_OPTION_TOO_LONG] = "option-too-long",
};

const char *coap_parse_error_to_string(CoapParseError e) {
        if ((unsigned) e >= _COAP_PARSE_ERROR_MAX)
                return NULL;
        return parse_error_table[e];
}

/* Reads the extension of one nibble. Returns false when the bytes run out. */
static bool nibble_decode(unsigned nibble, const uint8_t **p, const uint8_t *end, uint32_t *ret) {
        if (nibble < EXT1_BASE) {
                *ret = nibble;
                return true;
        }
        if (nibble == EXT1_BASE) {
                if (end - *p < 1)
                        return false;
                *ret = EXT1_BASE + (*p)[0];
                *p += 1;
                return true;
        }
        /* 14; 15 is rejected by the caller */
        if (end - *p < 2)
                return false;
        *ret = EXT2_BASE + ((uint32_t) (*p)[0] << 8 | (*p)[1]);
        *p += 2;
        return true;
}

/* Decodes one option header and skips its value; *p must not be at the payload marker. */
static CoapParseError option_decode(const uint8_t **p, const uint8_t *end, uint32_t *ret_delta,
                                    const uint8_t **ret_value, uint32_t *ret_len) {
        const uint8_t *q = *p;
        unsigned delta_nibble, len_nibble;
        uint32_t delta, len;

        if (q >= end)
                return COAP_PARSE_TRUNCATED_OPTION;
        delta_nibble = q[0] >> 4;
        len_nibble = q[0] & 0x0Fu;
        q++;
        if (delta_nibble == 15)
                return COAP_PARSE_BAD_OPTION_DELTA;
        if (len_nibble == 15)
                return COAP_PARSE_BAD_OPTION_LENGTH;
        if (!nibble_decode(delta_nibble, &q, end, &delta) ||
            !nibble_decode(len_nibble, &q, end, &len))
                return COAP_PARSE_TRUNCATED_OPTION;
        if ((size_t) (end - q) < len)
                return COAP_PARSE_TRUNCATED_OPTION;

        *ret_delta = delta;
        *ret_value = q;
        *ret_len = len;
        *p = q + len;
        return COAP_PARSE_OK;
}

/* Its bit in CoapMsg.present. */
static uint64_t option_bit(uint32_t number) {
        return UINT64_C(1) << (number < 63 ? number : 63);
}

static int parse_fail(CoapParseError e, CoapParseError *ret_error) {
        if (ret_error)
                *ret_error = e;
        return -EBADMSG;
}

int coap_msg_parse(const uint8_t *buf, size_t len, CoapMsg *ret, CoapParseError *ret_error) {
        const uint8_t *p, *end, *options;
        CoapMsg m = {};
        uint32_t number = 0;
        uint8_t code_class;

        if (!buf || len < COAP_HEADER_SIZE)
                return parse_fail(COAP_PARSE_TOO_SHORT, ret_error);
        if (buf[0] >> 6 != COAP_VERSION)
                return parse_fail(COAP_PARSE_BAD_VERSION, ret_error);

        m.type = (uint8_t) ((buf[0] >> 4) & 0x03u);
        m.token_len = buf[0] & 0x0Fu;
        m.code = buf[1];
        m.mid = (uint16_t) (buf[2] << 8 | buf[3]);

        if (m.token_len > COAP_TOKEN_MAX)
                return parse_fail(COAP_PARSE_BAD_TOKEN_LENGTH, ret_error);
        code_class = COAP_CODE_CLASS(m.code);
        if (code_class == 1 || code_class == 6 || code_class == 7)
                return parse_fail(COAP_PARSE_RESERVED_CODE, ret_error);
        if (m.code == COAP_CODE_EMPTY && (m.token_len > 0 || len > COAP_HEADER_SIZE))
                return parse_fail(COAP_PARSE_BAD_EMPTY_MESSAGE, ret_error);
        if (len - COAP_HEADER_SIZE < m.token_len)
                return parse_fail(COAP_PARSE_TRUNCATED_TOKEN, ret_error);
        memcpy(m.token, buf + COAP_HEADER_SIZE, m.token_len);

        options = p = buf + COAP_HEADER_SIZE + m.token_len;
        end = buf + len;
        while (p < end) {
                const uint8_t *value;
                uint32_t delta, vlen;
                CoapParseError e;

                if (*p == COAP_PAYLOAD_MARKER) {
                        if (end - p == 1)
                                return parse_fail(COAP_PARSE_EMPTY_PAYLOAD, ret_error);
                        m.payload = p + 1;
                        m.payload_len = (size_t) (end - m.payload);
                        break;
                }
                e = option_decode(&p, end, &delta, &value, &vlen);
                if (e != COAP_PARSE_OK)
                        return parse_fail(e, ret_error);
                number += delta;
                if (number > UINT16_MAX)
                        return parse_fail(COAP_PARSE_OPTION_OVERFLOW, ret_error);
                if (vlen > UINT16_MAX)
                        return parse_fail(COAP_PARSE_OPTION_TOO_LONG, ret_error);
                m.present |= option_bit(number);
                m.n_options++;
        }
        m.options = options;
        m.options_len = (size_t) (p - options);

        if (ret)
                *ret = m;
        if (ret_error)
                *ret_error = COAP_PARSE_OK;
        return 0;
}

void coap_option_iter_init(CoapOptionIter *it, const CoapMsg *m) {
        *it = (CoapOptionIter){
                .p = m->options,
                .end = m->options ? m->options + m->options_len : NULL,
        };
}

bool coap_option_iter_next(CoapOptionIter *it, CoapOption *ret) {
        const uint8_t *p = it->p, *value;
        uint32_t delta, len;

        if (!p || p >= it->end)
                return false;
        /* The message was validated; this only guards against a hand-made CoapMsg. */
        if (option_decode(&p, it->end, &delta, &value, &len) != COAP_PARSE_OK ||
            it->number + delta > UINT16_MAX || len > UINT16_MAX) {
                it->p = it->end;
                return false;
        }
        it->p = p;
        it->number = (uint16_t) (it->number + delta);
        if (ret)
                *ret = (CoapOption){.number = it->number, .len = (uint16_t) len, .value = value};
        return true;
}

bool coap_msg_find_option(const CoapMsg *m, uint16_t number, CoapOption *ret) {
        CoapOptionIter it;
        CoapOption o;

        if (!(m->present & option_bit(number)))
                return false;
        coap_option_iter_init(&it, m);
        while (coap_option_iter_next(&it, &o)) {
                if (o.number > number)
                        break;
                if (o.number == number) {
                        if (ret)
                                *ret = o;
                        return true;
                }
        }
        return false;
}

int coap_msg_get_uint_option(const CoapMsg *m, uint16_t number, uint32_t *ret) {
        CoapOption o;

        if (!coap_msg_find_option(m, number, &o))
                return -ENOENT;
        return coap_uint_decode(o.value, o.len, ret);
}

/* Bytes of extension for one delta or length value. */
static size_t nibble_ext_size(size_t v) {
        return v < EXT1_BASE ? 0 : v < EXT2_BASE ? 1 : 2;
}

static size_t option_encoded_size(uint16_t delta, size_t len) {
        return 1 + nibble_ext_size(delta) + nibble_ext_size(len) + len;
}

/* Writes the nibble for v and appends its extension at *ext. */
static uint8_t nibble_encode(size_t v, uint8_t **ext) {
        if (v < EXT1_BASE)
                return (uint8_t) v;
        if (v < EXT2_BASE) {
                *(*ext)++ = (uint8_t) (v - EXT1_BASE);
                return EXT1_BASE;
        }
        v -= EXT2_BASE;
        *(*ext)++ = (uint8_t) (v >> 8);
        *(*ext)++ = (uint8_t) v;
        return EXT1_BASE + 1;
}

static int builder_fail(CoapBuilder *b, int error) {
        b->error = error;
        return error;
}

void coap_builder_init(CoapBuilder *b, uint8_t *buf, size_t cap, CoapType type, uint8_t code,
                       uint16_t mid, const uint8_t *token, uint8_t token_len) {
        *b = (CoapBuilder){.buf = buf, .cap = cap};

        if (token_len > COAP_TOKEN_MAX || (token_len > 0 && !token) ||
            (unsigned) type > COAP_TYPE_RST) {
                b->error = -EINVAL;
                return;
        }
        if (!buf || cap < (size_t) COAP_HEADER_SIZE + token_len) {
                b->error = -EMSGSIZE;
                return;
        }
        buf[0] = (uint8_t) (COAP_VERSION << 6 | (unsigned) type << 4 | token_len);
        buf[1] = code;
        buf[2] = (uint8_t) (mid >> 8);
        buf[3] = (uint8_t) mid;
        if (token_len > 0)
                memcpy(buf + COAP_HEADER_SIZE, token, token_len);
        b->len = (size_t) COAP_HEADER_SIZE + token_len;
}

int coap_builder_add_option(CoapBuilder *b, uint16_t number, const void *value, size_t len) {
        uint16_t delta;
        uint8_t *p, *ext;

        if (b->error < 0)
                return b->error;
        if (b->has_payload || number < b->last_number || len > OPTION_MAX || (len > 0 && !value))
                return builder_fail(b, -EINVAL);

        delta = (uint16_t) (number - b->last_number);
        if (option_encoded_size(delta, len) > b->cap - b->len)
                return builder_fail(b, -EMSGSIZE);

        p = b->buf + b->len;
        ext = p + 1;
        p[0] = (uint8_t) (nibble_encode(delta, &ext) << 4);
        p[0] |= nibble_encode(len, &ext);
        if (len > 0)
                memcpy(ext, value, len);
        b->len = (size_t) (ext - b->buf) + len;
        b->last_number = number;
        return 0;
}

int coap_builder_add_uint_option(CoapBuilder *b, uint16_t number, uint32_t value) {
        uint8_t v[4];
        size_t n = coap_uint_encode(value, v);

        return coap_builder_add_option(b, number, v, n);
}

int coap_builder_add_options(CoapBuilder *b, const CoapOption *opts, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int r = coap_builder_add_option(b, opts[i].number, opts[i].value, opts[i].len);
                if (r < 0)
                        return r;
        }
        return b->error;
}

int coap_builder_set_payload(CoapBuilder *b, const void *payload, size_t len) {
        if (b->error < 0)
                return b->error;
        if (b->has_payload || (len > 0 && !payload))
                return builder_fail(b, -EINVAL);
        b->has_payload = true;
        if (len == 0)
                return 0;
        if (len >= b->cap - b->len)
                return builder_fail(b, -EMSGSIZE);
        b->buf[b->len] = COAP_PAYLOAD_MARKER;
        memcpy(b->buf + b->len + 1, payload, len);
        b->len += 1 + len;
        return 0;
}

int coap_builder_finish(CoapBuilder *b, size_t *ret_len) {
        if (b->error < 0)
                return b->error;
        if (ret_len)
                *ret_len = b->len;
        return 0;
}

size_t coap_msg_encoded_size(uint8_t token_len, const CoapOption *sorted_opts, size_t n_opts,
                             size_t payload_len) {
        size_t size = (size_t) COAP_HEADER_SIZE + token_len;
        uint16_t last = 0;

        for (size_t i = 0; i < n_opts; i++) {
                size += option_encoded_size((uint16_t) (sorted_opts[i].number - last),
                                            sorted_opts[i].len);
                last = sorted_opts[i].number;
        }
        if (payload_len > 0)
                size += 1 + payload_len;
        return size;
}

void coap_options_sort(CoapOption *opts, size_t n) {
        /* Insertion sort: stable, and option lists are short. */
        for (size_t i = 1; i < n; i++) {
                CoapOption o = opts[i];
                size_t j = i;

                for (; j > 0 && opts[j - 1].number > o.number; j--)
                        opts[j] = opts[j - 1];
                opts[j] = o;
        }
}
