/* SPDX-License-Identifier: MIT */
#pragma once

/* CoAP constants (RFC 7252, 7959, 7641, 9175). Constants only: no code, no includes but libc. */

#include <stdint.h>

#define COAP_VERSION        1
#define COAP_HEADER_SIZE    4
#define COAP_TOKEN_MAX      8
#define COAP_PAYLOAD_MARKER 0xFF
#define COAP_BLOCK_SZX_MAX  6         /* 1024 bytes; 7 is BERT, not valid over UDP */
#define COAP_OBSERVE_MAX    0xFFFFFFu /* 24 bits */

typedef enum CoapType {
        COAP_TYPE_CON = 0,
        COAP_TYPE_NON = 1,
        COAP_TYPE_ACK = 2,
        COAP_TYPE_RST = 3,
} CoapType;

/* Code byte = class << 5 | detail. */
#define COAP_CODE(class, detail) ((uint8_t) (((class) << 5) | (detail)))
#define COAP_CODE_CLASS(code)    ((uint8_t) ((code) >> 5))
#define COAP_CODE_DETAIL(code)   ((uint8_t) (0x1F & (code)))

enum {
        COAP_CODE_EMPTY = 0x00,
        COAP_CODE_GET = 0x01,
        COAP_CODE_POST = 0x02,
        COAP_CODE_PUT = 0x03,
        COAP_CODE_DELETE = 0x04,
        COAP_CODE_FETCH = 0x05,
        COAP_CODE_PATCH = 0x06,
        COAP_CODE_IPATCH = 0x07,

        COAP_CODE_CREATED = 0x41,
        COAP_CODE_DELETED = 0x42,
        COAP_CODE_VALID = 0x43,
        COAP_CODE_CHANGED = 0x44,
        COAP_CODE_CONTENT = 0x45,
        COAP_CODE_CONTINUE = 0x5F,
        COAP_CODE_BAD_REQUEST = 0x80,
        COAP_CODE_UNAUTHORIZED = 0x81,
        COAP_CODE_NOT_FOUND = 0x84,
        COAP_CODE_REQUEST_ENTITY_INCOMPLETE = 0x88,
        COAP_CODE_REQUEST_ENTITY_TOO_LARGE = 0x8D,
        COAP_CODE_INTERNAL_SERVER_ERROR = 0xA0,
};

enum {
        COAP_OPTION_IF_MATCH = 1,
        COAP_OPTION_URI_HOST = 3,
        COAP_OPTION_ETAG = 4,
        COAP_OPTION_IF_NONE_MATCH = 5,
        COAP_OPTION_OBSERVE = 6,
        COAP_OPTION_URI_PORT = 7,
        COAP_OPTION_LOCATION_PATH = 8,
        COAP_OPTION_OSCORE = 9,
        COAP_OPTION_URI_PATH = 11,
        COAP_OPTION_CONTENT_FORMAT = 12,
        COAP_OPTION_MAX_AGE = 14,
        COAP_OPTION_URI_QUERY = 15,
        COAP_OPTION_ACCEPT = 17,
        COAP_OPTION_LOCATION_QUERY = 20,
        COAP_OPTION_BLOCK2 = 23,
        COAP_OPTION_BLOCK1 = 27,
        COAP_OPTION_SIZE2 = 28,
        COAP_OPTION_PROXY_URI = 35,
        COAP_OPTION_PROXY_SCHEME = 39,
        COAP_OPTION_SIZE1 = 60,
        COAP_OPTION_ECHO = 252,
        COAP_OPTION_NO_RESPONSE = 258,
        COAP_OPTION_REQUEST_TAG = 292,
};

/* Option numbers with bit 0 set are critical (RFC 7252 §5.4.1). */
#define COAP_OPTION_IS_CRITICAL(n) ((1 & (n)) != 0)

enum {
        COAP_CONTENT_FORMAT_TEXT_PLAIN = 0,
        COAP_CONTENT_FORMAT_LINK_FORMAT = 40,
        COAP_CONTENT_FORMAT_XML = 41,
        COAP_CONTENT_FORMAT_OCTET_STREAM = 42,
        COAP_CONTENT_FORMAT_EXI = 47,
        COAP_CONTENT_FORMAT_JSON = 50,
        COAP_CONTENT_FORMAT_CBOR = 60,
};

enum {
        COAP_OBSERVE_REGISTER = 0,
        COAP_OBSERVE_DEREGISTER = 1,
};
