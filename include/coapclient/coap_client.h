/* SPDX-License-Identifier: MIT */
#ifndef COAPCLIENT_COAP_CLIENT_H
#define COAPCLIENT_COAP_CLIENT_H

/**
 * libcoapclient: the Zephyr RTOS CoAP client API (<zephyr/net/coap_client.h>) on Linux.
 *
 * The CoAP protocol itself (RFC 7252 messaging, RFC 7959 block-wise transfers, RFC 7641
 * observe, DTLS) runs in the coapclientd system service. This library hands each request,
 * together with the application's own UDP socket, to coapclientd over D-Bus and calls the
 * request's callback for every response block, notification or error, as Zephyr does.
 *
 * Code written for Zephyr's coap_client only needs this include instead of
 * <zephyr/net/coap_client.h> and <zephyr/net/coap.h>. Two versions of the API: by default the
 * seed's (Zephyr 3.4 to 4.2: the six-argument callback, const char *path, an options pointer);
 * with "#define COAPCLIENT_ZEPHYR_API 403" before the include the current one (Zephyr 4.3 and
 * later: struct coap_client_response_data with data->packet, path[] and options[] in the
 * request, payload_cb). Both are the same library and daemon. Differences from Zephyr are
 * marked "Linux:" below. The main ones:
 *
 *  - Several requests may be in flight per client (coapclientd's per-client limit, 32 by
 *    default, MaxRequestsPerClient= in coapclientd.conf(5), replaces
 *    CONFIG_COAP_CLIENT_MAX_REQUESTS) and there may be any number of clients
 *    (coapclientd's per-process limit replaces CONFIG_COAP_CLIENT_MAX_INSTANCES).
 *  - The default block size is 1024 bytes (Zephyr: CONFIG_COAP_CLIENT_BLOCK_SIZE, 256);
 *    coap_client_set_block_size() changes it per client.
 *  - Requests of one client may use different sockets at the same time; there is no
 *    -EALREADY, except where a socket's DTLS session does not fit (coap_client_req()), or for
 *    a second observation of a resource the client already observes on that socket (as
 *    Zephyr).
 *  - DTLS: credentials are registered as with Zephyr's tls_credential_add() and attached to a
 *    client, not a socket, with coap_client_set_tls(); see "DTLS (coaps)" below.
 *  - If coapclientd goes away (stopped, restarted, crashed) or the bus connection breaks, every
 *    pending request gets one callback with -ECONNABORTED. The next coap_client_req()
 *    reconnects (and D-Bus activation may start the service again). Observations (Observe 0,
 *    a body not from payload_cb) are the exception when coapclientd goes away: the library
 *    registers each again, on a duplicate of its socket, with the coapclientd that next owns
 *    the bus name (trying at once, then for up to 15 s), and the notifications go on to the
 *    same callback, with no error; one may be missed or repeated in the gap. Only an
 *    observation that cannot be registered again gets one final error callback
 *    (-ECONNABORTED when coapclientd did not come back).
 *  - The request (path, options and payload) is copied by coap_client_req(); the caller may
 *    reuse or free it, including the payload of a block-wise upload.
 *  - coap_client_deinit() releases a client; Zephyr has no equivalent.
 *  - Callbacks run in a thread owned by the library, like Zephyr's receive thread, unless the
 *    application calls coap_client_loop_external() first and runs coap_client_process() from
 *    its own event loop.
 *
 * Bus selection: the system bus, or the address in the environment variable
 * COAPCLIENTD_BUS_ADDRESS when it is set.
 *
 * Every function is thread-safe. A response callback may call any function of this API,
 * including coap_client_req() and the cancel functions, except coap_client_deinit() on its own
 * client.
 *
 * This library is not fork-safe: a child process must not use clients created before fork().
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Makes a CoAP code byte from its class and detail: 2.05 is (2 << 5) | 5 = 0x45. */
#define COAP_MAKE_RESPONSE_CODE(class, det) (((class) << 5) | (det))
/** The class of a code byte (2 for 2.05). */
#define COAP_RESPONSE_CODE_CLASS(code)      ((code) >> 5)
/** The detail of a code byte (5 for 2.05). */
#define COAP_RESPONSE_CODE_DETAIL(code)     ((code) &0x1F)

/** Request methods (the code byte of a request). */
enum coap_method {
        COAP_METHOD_GET = 1,
        COAP_METHOD_POST = 2,
        COAP_METHOD_PUT = 3,
        COAP_METHOD_DELETE = 4,
        COAP_METHOD_FETCH = 5,
        COAP_METHOD_PATCH = 6,
        COAP_METHOD_IPATCH = 7,
};

/** Message types (RFC 7252 §3). */
enum coap_msgtype {
        COAP_TYPE_CON = 0,
        COAP_TYPE_NON_CON = 1,
        COAP_TYPE_ACK = 2,
        COAP_TYPE_RESET = 3,
};

/** The empty code (0.00). */
#define COAP_CODE_EMPTY 0

/** Response codes, as the raw code byte the callback receives in result_code. */
enum coap_response_code {
        COAP_RESPONSE_CODE_OK = COAP_MAKE_RESPONSE_CODE(2, 0),
        COAP_RESPONSE_CODE_CREATED = COAP_MAKE_RESPONSE_CODE(2, 1),
        COAP_RESPONSE_CODE_DELETED = COAP_MAKE_RESPONSE_CODE(2, 2),
        COAP_RESPONSE_CODE_VALID = COAP_MAKE_RESPONSE_CODE(2, 3),
        COAP_RESPONSE_CODE_CHANGED = COAP_MAKE_RESPONSE_CODE(2, 4),
        COAP_RESPONSE_CODE_CONTENT = COAP_MAKE_RESPONSE_CODE(2, 5),
        COAP_RESPONSE_CODE_CONTINUE = COAP_MAKE_RESPONSE_CODE(2, 31),
        COAP_RESPONSE_CODE_BAD_REQUEST = COAP_MAKE_RESPONSE_CODE(4, 0),
        COAP_RESPONSE_CODE_UNAUTHORIZED = COAP_MAKE_RESPONSE_CODE(4, 1),
        COAP_RESPONSE_CODE_BAD_OPTION = COAP_MAKE_RESPONSE_CODE(4, 2),
        COAP_RESPONSE_CODE_FORBIDDEN = COAP_MAKE_RESPONSE_CODE(4, 3),
        COAP_RESPONSE_CODE_NOT_FOUND = COAP_MAKE_RESPONSE_CODE(4, 4),
        COAP_RESPONSE_CODE_NOT_ALLOWED = COAP_MAKE_RESPONSE_CODE(4, 5),
        COAP_RESPONSE_CODE_NOT_ACCEPTABLE = COAP_MAKE_RESPONSE_CODE(4, 6),
        COAP_RESPONSE_CODE_INCOMPLETE = COAP_MAKE_RESPONSE_CODE(4, 8),
        COAP_RESPONSE_CODE_CONFLICT = COAP_MAKE_RESPONSE_CODE(4, 9),
        COAP_RESPONSE_CODE_PRECONDITION_FAILED = COAP_MAKE_RESPONSE_CODE(4, 12),
        COAP_RESPONSE_CODE_REQUEST_TOO_LARGE = COAP_MAKE_RESPONSE_CODE(4, 13),
        COAP_RESPONSE_CODE_UNSUPPORTED_CONTENT_FORMAT = COAP_MAKE_RESPONSE_CODE(4, 15),
        COAP_RESPONSE_CODE_UNPROCESSABLE_ENTITY = COAP_MAKE_RESPONSE_CODE(4, 22),
        COAP_RESPONSE_CODE_TOO_MANY_REQUESTS = COAP_MAKE_RESPONSE_CODE(4, 29),
        COAP_RESPONSE_CODE_INTERNAL_ERROR = COAP_MAKE_RESPONSE_CODE(5, 0),
        COAP_RESPONSE_CODE_NOT_IMPLEMENTED = COAP_MAKE_RESPONSE_CODE(5, 1),
        COAP_RESPONSE_CODE_BAD_GATEWAY = COAP_MAKE_RESPONSE_CODE(5, 2),
        COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE = COAP_MAKE_RESPONSE_CODE(5, 3),
        COAP_RESPONSE_CODE_GATEWAY_TIMEOUT = COAP_MAKE_RESPONSE_CODE(5, 4),
        COAP_RESPONSE_CODE_PROXYING_NOT_SUPPORTED = COAP_MAKE_RESPONSE_CODE(5, 5),
};

/** Option numbers (RFC 7252 §5.10, RFC 7959, RFC 7641, RFC 9175, RFC 7967). */
enum coap_option_num {
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

/** Content formats (the CoRE parameters registry). */
enum coap_content_format {
        COAP_CONTENT_FORMAT_TEXT_PLAIN = 0,
        COAP_CONTENT_FORMAT_APP_LINK_FORMAT = 40,
        COAP_CONTENT_FORMAT_APP_XML = 41,
        COAP_CONTENT_FORMAT_APP_OCTET_STREAM = 42,
        COAP_CONTENT_FORMAT_APP_EXI = 47,
        COAP_CONTENT_FORMAT_APP_JSON = 50,
        COAP_CONTENT_FORMAT_APP_JSON_PATCH_JSON = 51,
        COAP_CONTENT_FORMAT_APP_MERGE_PATCH_JSON = 52,
        COAP_CONTENT_FORMAT_APP_CBOR = 60,
        /** Linux only, as coap_client_request.fmt: send the payload without a Content-Format
         * option. Out of the option's range, so no real format is taken away. */
        COAP_CONTENT_FORMAT_NONE = 0x10000,
};

/** Block sizes (the SZX of RFC 7959): bytes = 1 << (szx + 4). */
enum coap_block_size {
        COAP_BLOCK_16 = 0,
        COAP_BLOCK_32 = 1,
        COAP_BLOCK_64 = 2,
        COAP_BLOCK_128 = 3,
        COAP_BLOCK_256 = 4,
        COAP_BLOCK_512 = 5,
        COAP_BLOCK_1024 = 6,
};

/* The API version: 304 (default) is the seed's API of Zephyr 3.4 to 4.2, 403 the current one of
 * Zephyr 4.3 and later. Both are served by the same library and daemon. */
#ifndef COAPCLIENT_ZEPHYR_API
#define COAPCLIENT_ZEPHYR_API 304
#endif
#if COAPCLIENT_ZEPHYR_API != 304 && COAPCLIENT_ZEPHYR_API != 403
#error "COAPCLIENT_ZEPHYR_API must be 304 or 403"
#endif

/* Zephyr's Kconfig, with defaults that suit Linux; define them before the include to change them.
 * With API 403 extra option values hold up to 255 bytes unless the application defines
 * CONFIG_COAP_EXTENDED_OPTIONS_LEN_VALUE; with 304 only when it defines
 * CONFIG_COAP_EXTENDED_OPTIONS_LEN (else the seed's layout: 12 bytes). */
#if COAPCLIENT_ZEPHYR_API == 403 && !defined(CONFIG_COAP_EXTENDED_OPTIONS_LEN)
#define CONFIG_COAP_EXTENDED_OPTIONS_LEN 1
#endif
#if defined(CONFIG_COAP_EXTENDED_OPTIONS_LEN) && !defined(CONFIG_COAP_EXTENDED_OPTIONS_LEN_VALUE)
#define CONFIG_COAP_EXTENDED_OPTIONS_LEN_VALUE 255
#endif

/** Largest value of a struct coap_client_option: 12 (Zephyr without
 * CONFIG_COAP_EXTENDED_OPTIONS_LEN), else CONFIG_COAP_EXTENDED_OPTIONS_LEN_VALUE. coapclientd
 * takes up to 255. */
#ifdef CONFIG_COAP_EXTENDED_OPTIONS_LEN
#define MAX_COAP_CLIENT_OPTION_LEN CONFIG_COAP_EXTENDED_OPTIONS_LEN_VALUE
#define COAPCLIENT_OPTION_LEN_T    uint16_t
#else
#define MAX_COAP_CLIENT_OPTION_LEN 12
#define COAPCLIENT_OPTION_LEN_T    uint8_t
#endif

/** Most extra options one request may carry. Linux: Zephyr's
 * CONFIG_COAP_CLIENT_MAX_EXTRA_OPTIONS defaults to 2. */
#define COAP_CLIENT_MAX_EXTRA_OPTIONS 16

/**
 * Retransmission parameters of one request (Zephyr's struct from <zephyr/net/coap.h>).
 * coap_get_transmission_parameters() gives the defaults to start from.
 */
struct coap_transmission_parameters {
        /** Base ACK timeout in milliseconds (default 2000). */
        uint32_t ack_timeout;
        /** First timeout drawn from [ack_timeout, ack_timeout * percent / 100); 0 means the
         * default (150), otherwise >= 100. */
        uint16_t ack_random_percent;
        /** Growth of the timeout per retransmission in percent (default 200: doubling). */
        uint16_t coap_backoff_percent;
        /** Retransmissions after the first send (default 4). */
        uint8_t max_retransmission;
};

/** An extra option appended to a request verbatim (integers big-endian, minimal length). */
struct coap_client_option {
        /** Option number (enum coap_option_num or any other). */
        uint16_t code;
#ifdef CONFIG_COAP_EXTENDED_OPTIONS_LEN
        /** Length of value, at most MAX_COAP_CLIENT_OPTION_LEN and 255. */
        uint16_t len;
#else
        /** Length of value, at most MAX_COAP_CLIENT_OPTION_LEN. */
        uint8_t len;
#endif
        /** The option value. */
        uint8_t value[MAX_COAP_CLIENT_OPTION_LEN];
};

#if COAPCLIENT_ZEPHYR_API == 403 || defined(COAPCLIENT_BUILDING_LIBRARY)
/* ---- API 403: Zephyr's network types and packet-reading API (<zephyr/net/coap.h>) ----------- */

/* Zephyr 4.3 renamed the socket types; here they are Linux's. */
#define net_sockaddr         sockaddr
#define net_sockaddr_in      sockaddr_in
#define net_sockaddr_in6     sockaddr_in6
#define net_sockaddr_storage sockaddr_storage
typedef socklen_t net_socklen_t;

/** The longest token. */
#define COAP_TOKEN_MAX_LEN 8UL

/** A received CoAP message (Zephyr's layout): read it with the functions below. */
struct coap_packet {
        /** The message as received: header, token, options, payload. */
        uint8_t *data;
        /** Length of the message. */
        uint16_t offset;
        /** Size of data. */
        uint16_t max_len;
        /** Length of header and token. */
        uint8_t hdr_len;
        /** Length of the options. */
        uint16_t opt_len;
        /** Number of the last option. */
        uint16_t delta;
};

/** What the response callback of API 403 receives (Zephyr 4.3). */
struct coap_client_response_data {
        /** The raw CoAP code byte of the response, or a negative errno. */
        int16_t result_code;
        /** The response message; NULL on errors. */
        const struct coap_packet *packet;
        /** Where payload starts within the whole body. */
        size_t offset;
        /** The payload of this block, NULL when there is none. */
        const uint8_t *payload;
        /** Length of payload. */
        size_t payload_len;
        /** True on the last callback of a response; always on errors. */
        bool last_block;
        /** The responder of a multicast request (multicast_timeout_ms > 0); NULL otherwise, and
         * on the multicast request's last callback (the window closed). */
        const struct net_sockaddr *source;
        /** Length of source. */
        net_socklen_t source_len;
};

/** The version field of cpkt's header (1). */
uint8_t coap_header_get_version(const struct coap_packet *cpkt);
/** The type of cpkt (enum coap_msgtype). */
uint8_t coap_header_get_type(const struct coap_packet *cpkt);
/** Copies cpkt's token to token (room for COAP_TOKEN_MAX_LEN bytes); returns its length. */
uint8_t coap_header_get_token(const struct coap_packet *cpkt, uint8_t *token);
/** The code byte of cpkt (enum coap_response_code). */
uint8_t coap_header_get_code(const struct coap_packet *cpkt);
/** The message ID of cpkt. */
uint16_t coap_header_get_id(const struct coap_packet *cpkt);
/** cpkt's payload and its length in *len; NULL and 0 when there is none. */
const uint8_t *coap_packet_get_payload(const struct coap_packet *cpkt, uint16_t *len);
/** The value of the first option code in cpkt as an unsigned integer (network byte order);
 * -ENOENT when cpkt has none, -EINVAL for a NULL cpkt. */
int coap_get_option_int(const struct coap_packet *cpkt, uint16_t code);

/* Internal, for coap_find_options(): a position among cpkt's options, zeroed at first. */
struct coapclient_option_iter {
        size_t offset;
        uint16_t number;
};

/* Internal: the next option of cpkt. 1 and advances *iter, 0 after the last, -EINVAL for a NULL
 * or malformed cpkt. */
int coapclient_packet_next_option(const struct coap_packet *cpkt,
                                  struct coapclient_option_iter *iter, uint16_t *ret_code,
                                  const uint8_t **ret_value, uint16_t *ret_len);
#endif

#if COAPCLIENT_ZEPHYR_API == 403
/** One option of a received message, as coap_find_options() fills it (Zephyr's layout). */
struct coap_option {
        /** The option number. */
        uint16_t delta;
#ifdef CONFIG_COAP_EXTENDED_OPTIONS_LEN
        /** Length of value. */
        uint16_t len;
        /** The value. */
        uint8_t value[CONFIG_COAP_EXTENDED_OPTIONS_LEN_VALUE];
#else
        /** Length of value. */
        uint8_t len;
        /** The value. */
        uint8_t value[12];
#endif
};

/**
 * Copies the options code of cpkt, in their order, to options (veclen entries at most).
 *
 * @return how many were copied; -EINVAL for a NULL cpkt, or an option value longer than
 *         struct coap_option holds (CONFIG_COAP_EXTENDED_OPTIONS_LEN_VALUE).
 */
static inline int coap_find_options(const struct coap_packet *cpkt, uint16_t code,
                                    struct coap_option *options, uint16_t veclen) {
        struct coapclient_option_iter iter = {0, 0};
        int n = 0, r = 0;
        uint16_t c, len;
        const uint8_t *value;

        while (n < veclen &&
               (r = coapclient_packet_next_option(cpkt, &iter, &c, &value, &len)) > 0) {
                if (c != code)
                        continue;
                if (len > sizeof(options[n].value))
                        return -EINVAL;
                options[n].delta = c;
                options[n].len = (COAPCLIENT_OPTION_LEN_T) len;
                for (uint16_t i = 0; i < len; i++)
                        options[n].value[i] = value[i];
                n++;
        }
        return n == veclen || r == 0 ? n : r;
}

/** An option's value as an unsigned integer (network byte order). */
static inline unsigned int coap_option_value_to_int(const struct coap_option *option) {
        unsigned int v = 0;

        for (unsigned i = 0; i < option->len && i < 4; i++)
                v = (v << 8) | option->value[i];
        return v;
}
#endif

#if COAPCLIENT_ZEPHYR_API == 304
/**
 * The response callback.
 *
 * @param result_code The raw CoAP code byte of the response (2.05 Content = 0x45, see
 *        enum coap_response_code), or a negative errno when the request failed:
 *        -ETIMEDOUT (no response after the last retransmission; NON requests time out
 *        silently, without a callback), -ECONNRESET (the server answered with RST),
 *        -ECANCELED (cancelled, see coap_client_cancel_requests()), -ECONNREFUSED or another
 *        socket error seen by coapclientd, -EBADMSG (the server broke the block-wise
 *        transfer), -ECONNABORTED (Linux: coapclientd went away or the bus connection broke),
 *        -ENOMEM (Linux: the library could not queue a response); with DTLS also -EACCES,
 *        -ECONNREFUSED, -ETIMEDOUT, -ECONNRESET and -EPROTO for a failed handshake or session
 *        (see coap_client_set_tls()).
 * @param offset Where payload starts within the whole body of a block-wise response; 0
 *        otherwise. For a block-wise upload it is the number of bytes sent so far, this
 *        block included (as in Zephyr).
 * @param payload The payload of this block, NULL when there is none. Valid only during the
 *        callback.
 * @param len Length of payload.
 * @param last_block True on the last callback of a response: the response is complete (or
 *        failed). Always true on errors. For an observation, true on every notification
 *        whose body is complete, while the observation goes on.
 * @param user_data The request's user_data.
 *
 * Called once per block, per notification and per error. With the library thread (the
 * default) it runs in that thread; in external-loop mode it runs inside
 * coap_client_process(), or inside a cancel function for -ECANCELED.
 * coap_client_get_response_info() gives the response's options.
 */
typedef void (*coap_client_response_cb_t)(int16_t result_code, size_t offset,
                                          const uint8_t *payload, size_t len, bool last_block,
                                          void *user_data);

/** A request, as in Zephyr. Everything is copied by coap_client_req(). */
struct coap_client_request {
        /** Request method. */
        enum coap_method method;
        /** True: confirmable (CON); false: non-confirmable (NON). */
        bool confirmable;
        /** Resource path, e.g. "sensors/temp" or "q?a=1&b=2": split on '/' into Uri-Path
         * options, the part after '?' split on '&' into Uri-Query options. Must not be NULL
         * or empty; "/" is the root resource. */
        const char *path;
        /** Content-Format, sent only when payload is not NULL (Linux: and fmt is not
         * COAP_CONTENT_FORMAT_NONE). */
        enum coap_content_format fmt;
        /** Request body, or NULL. Bodies larger than the block size are sent block-wise
         * (Block1). */
        const uint8_t *payload;
        /** Length of payload. */
        size_t len;
        /** Response callback, or NULL for none. */
        coap_client_response_cb_t cb;
        /** Extra options, e.g. Observe (6) with value 0 (len 0, or one zero byte) to register
         * an observation, Accept, ETag, If-Match. A Block2 option (as from
         * coap_client_option_initial_block2()) sets the block size of this request and goes
         * out with its first message (RFC 7959 early negotiation). Linux:
         * Uri-Path, Uri-Query, Content-Format, Block1, Size1 and Request-Tag come from the
         * other fields and coapclientd, and are rejected here with -EINVAL. */
        const struct coap_client_option *options;
        /** Number of entries in options, at most COAP_CLIENT_MAX_EXTRA_OPTIONS. */
        uint8_t num_options;
        /** Passed to cb. */
        void *user_data;
};

#else /* COAPCLIENT_ZEPHYR_API == 403 */

/** Zephyr's CONFIG_COAP_CLIENT_MAX_PATH_LENGTH: the longest path of a request (Zephyr: 64). */
#ifndef CONFIG_COAP_CLIENT_MAX_PATH_LENGTH
#define CONFIG_COAP_CLIENT_MAX_PATH_LENGTH 255
#endif
/** Zephyr's CONFIG_COAP_CLIENT_MAX_EXTRA_OPTIONS: room for options in a request (Zephyr: 2;
 * coapclientd takes up to 16). */
#ifndef CONFIG_COAP_CLIENT_MAX_EXTRA_OPTIONS
#define CONFIG_COAP_CLIENT_MAX_EXTRA_OPTIONS 16
#endif
/** Size of struct coap_client_request's path, its NUL included. */
#define MAX_PATH_SIZE     (CONFIG_COAP_CLIENT_MAX_PATH_LENGTH + 1)
/** Size of struct coap_client_request's options. */
#define MAX_EXTRA_OPTIONS CONFIG_COAP_CLIENT_MAX_EXTRA_OPTIONS

/**
 * The response callback (Zephyr 4.3).
 *
 * @param data The response: data->result_code is the raw CoAP code byte (2.05 Content = 0x45)
 *        or a negative errno, the same as with API 304 (see there); data->packet the whole
 *        response (every option: coap_find_options(), coap_get_option_int()), NULL on errors;
 *        data->offset, data->payload, data->payload_len and data->last_block as with API 304.
 *        data->source is the responder of a multicast request (see multicast_timeout_ms), NULL
 *        otherwise. Everything is valid only during the callback.
 * @param user_data The request's user_data.
 */
typedef void (*coap_client_response_cb_t)(const struct coap_client_response_data *data,
                                          void *user_data);

/**
 * Supplies the body of an upload block by block (Zephyr 4.3).
 *
 * @param offset Where the block starts in the body.
 * @param payload Set to the block's bytes; they must stay valid until the callback is called
 *        again or returns to coap_client_req().
 * @param len The block size in; the block's length out. Every block but the last must be
 *        full.
 * @param last_block Set to true with the last block.
 * @param user_data The request's user_data.
 * @return 0, or a negative errno: coap_client_req() returns it, or, for a block asked for
 *         later, the response callback reports it (-EINVAL when the callback broke the rules)
 *         and the request ends.
 *
 * The body has no size limit: it is streamed with flow control. coap_client_req() asks for the
 * first 64 KiB (less when coapclientd's MaxPayloadBytes is smaller);
 * the rest is asked for in the library thread (or coap_client_process()) as the server
 * acknowledges blocks, never more than 64 KiB ahead of it, so what it reads through user_data
 * must stay valid until the request's final callback. The block size asked for is the
 * client's (coap_client_set_block_size(), 1024 bytes by default).
 */
typedef int (*coap_client_payload_cb_t)(size_t offset, const uint8_t **payload, size_t *len,
                                        bool *last_block, void *user_data);

/** A request (Zephyr 4.3). Everything is copied by coap_client_req(). */
struct coap_client_request {
        /** Request method. */
        enum coap_method method;
        /** True: confirmable (CON); false: non-confirmable (NON). */
        bool confirmable;
        /** Resource path, as with API 304; NUL-terminated within the array. */
        char path[MAX_PATH_SIZE];
        /** Content-Format, sent only with payload or payload_cb. */
        enum coap_content_format fmt;
        /** Request body, or NULL. */
        const uint8_t *payload;
        /** Length of payload. */
        size_t len;
        /** Supplies the body instead of payload, or NULL. */
        coap_client_payload_cb_t payload_cb;
        /** Response callback, or NULL for none. */
        coap_client_response_cb_t cb;
        /** Extra options, as with API 304. */
        struct coap_client_option options[MAX_EXTRA_OPTIONS];
        /** Number of entries used in options. */
        uint8_t num_options;
        /** Passed to cb and payload_cb. */
        void *user_data;
        /**
         * > 0: a multicast request (RFC 7252 §8) to the group addr, as Zephyr's: it goes out
         * NON (confirmable must be false, no Observe, no payload_cb) and every response from a
         * group member within this many ms is a callback with data->source set (one per
         * responder; a repeated answer is dropped); then a last callback with source NULL,
         * result_code 0, packet NULL and last_block false. Block-wise answers are dropped, as
         * Zephyr does. The application sets the socket options (IP_MULTICAST_IF, _TTL, _LOOP
         * or their IPv6 forms). Plain CoAP only: -EPROTONOSUPPORT for a client with TLS.
         */
        uint32_t multicast_timeout_ms;
};

#endif /* COAPCLIENT_ZEPHYR_API */

/**
 * A client context. The application allocates it (statically, as in Zephyr, or anywhere) and
 * passes it to coap_client_init(). Its contents are private; the pointer keeps the layout
 * stable across library versions.
 */
struct coap_client {
        /** Private. */
        struct coap_client_private *priv;
};

/**
 * Initialises a client context and registers it with coapclientd.
 *
 * @param client The context; must not be in use already.
 * @param info A name for the context shown in coapclientd's diagnostics, or NULL. (Zephyr
 *        ignores it.)
 * @return 0; -EINVAL when client is NULL; -EALREADY when client is already initialised;
 *         -ENOSPC when this process has too many clients in coapclientd; -ECONNREFUSED when
 *         coapclientd is not running and cannot be activated, or there is no bus; another
 *         negative errno when the bus cannot be reached otherwise (e.g. -EACCES).
 *         coap_client_last_error() then tells more. Linux: Zephyr returns -ENOSPC when its
 *         static table is full.
 */
int coap_client_init(struct coap_client *client, const char *info);

/**
 * Releases a client: pending requests are cancelled with a -ECANCELED callback each, and
 * callbacks of this client running in other threads are waited for, as by
 * coap_client_cancel_requests(). Afterwards client may be initialised again. NULL and
 * uninitialised clients are ignored. Must not be called from a callback of the same client.
 * The bus connection is closed with the last client.
 *
 * Linux only: Zephyr clients live forever.
 */
void coap_client_deinit(struct coap_client *client);

/* ---- Internal: how the inline functions of this header hand a request to the library, whatever
 * the application's CONFIG_ sizes are. Not for direct use. */

/** A request option by reference. */
struct coapclient_option_ref {
        uint16_t code;
        uint16_t len;
        const uint8_t *value;
};

/** A request of either API by reference. */
struct coapclient_request_ref {
        /** 304 or 403: the type of cb. */
        unsigned api;
        enum coap_method method;
        bool confirmable;
        const char *path;
        enum coap_content_format fmt;
        const uint8_t *payload;
        size_t len;
        int (*payload_cb)(size_t offset, const uint8_t **payload, size_t *len, bool *last_block,
                          void *user_data);
        void (*cb)(void);
        const struct coapclient_option_ref *options;
        uint8_t num_options;
        void *user_data;
        uint32_t multicast_timeout_ms;
};

int coapclient_req(struct coap_client *client, int sock, const struct sockaddr *addr,
                   const struct coapclient_request_ref *req,
                   const struct coap_transmission_parameters *params);
void coapclient_cancel_request(struct coap_client *client,
                               const struct coapclient_request_ref *req);
int coapclient_deregister_observe(struct coap_client *client,
                                  const struct coapclient_request_ref *req);
int coapclient_reregister_observe(struct coap_client *client,
                                  const struct coapclient_request_ref *req);

#if COAPCLIENT_ZEPHYR_API == 304
/**
 * Sends a request; the callback reports the outcome.
 *
 * This is a macro over coap_client_req_params() and coap_client_req_retries(), so that both
 * Zephyr signatures compile: the fifth argument may be a struct coap_transmission_parameters
 * pointer (newer Zephyr; NULL means the defaults) or an int number of retries (Zephyr 3.4/3.5;
 * -1 means the default).
 *
 * @param client An initialised client.
 * @param sock An open UDP socket (AF_INET or AF_INET6) owned by the caller. coapclientd uses
 *        a duplicate of it; the caller must not read from it while requests are pending. Call
 *        coap_client_cancel_requests() before closing it.
 * @param addr The destination (struct sockaddr_in or struct sockaddr_in6, cast), or NULL when
 *        sock is connected.
 * @param req The request; copied, so it may be reused when this returns.
 * @return 0 when the request is handed to coapclientd (it does not wait for the first
 *         datagram: what coapclientd refuses then, e.g. -ENOBUFS at a daemon-wide limit,
 *         -EALREADY for a DTLS socket mismatch or the errno of the first send, ends the request
 *         with that error in the callback); -EINVAL (client, req or path NULL, path empty or
 *         malformed, sock < 0, more than COAP_CLIENT_MAX_EXTRA_OPTIONS options, an option
 *         longer than MAX_COAP_CLIENT_OPTION_LEN, bad transmission parameters, bad method);
 *         -EAGAIN (the client has too many requests in flight); -ENOTSUP (addr is neither
 *         AF_INET nor AF_INET6); -ENOTSOCK or -ESOCKTNOSUPPORT (sock is not a UDP socket);
 *         -EMSGSIZE (payload larger than coapclientd accepts); -ECONNREFUSED (coapclientd is
 *         not running); or the errors of coap_client_set_tls() when the credentials had to be
 *         sent again after coapclientd restarted.
 */
#ifdef CONFIG_COAP_EXTENDED_OPTIONS_LEN
#define COAPCLIENT_REQ_PARAMS  coapclient_req_ext
#define COAPCLIENT_REQ_RETRIES coapclient_req_retries_ext
#else
#define COAPCLIENT_REQ_PARAMS  coap_client_req_params
#define COAPCLIENT_REQ_RETRIES coap_client_req_retries
#endif
#ifndef __cplusplus
#define coap_client_req(client, sock, addr, req, params_or_retries) \
        _Generic((params_or_retries),                                                              \
                struct coap_transmission_parameters *: COAPCLIENT_REQ_PARAMS,                      \
                const struct coap_transmission_parameters *: COAPCLIENT_REQ_PARAMS,                \
                void *: COAPCLIENT_REQ_PARAMS,                                                     \
                default: COAPCLIENT_REQ_RETRIES)((client), (sock), (addr), (req),                  \
                                                 (params_or_retries))
#endif

/** coap_client_req() with transmission parameters (NULL: the defaults of
 * coap_get_transmission_parameters()). */
int coap_client_req_params(struct coap_client *client, int sock, const struct sockaddr *addr,
                           const struct coap_client_request *req,
                           const struct coap_transmission_parameters *params);

/** coap_client_req() with the older retry count: the default parameters with
 * max_retransmission = retries, or the defaults when retries < 0. */
int coap_client_req_retries(struct coap_client *client, int sock, const struct sockaddr *addr,
                            const struct coap_client_request *req, int retries);

#endif /* COAPCLIENT_ZEPHYR_API == 304 */

/**
 * Cancels every pending request of client: each gets one callback with -ECANCELED and
 * last_block true, and no callback after that. A callback of one of them that is running in
 * another thread finishes first, then its -ECANCELED follows in that thread; this function
 * waits for both, so no callback of client runs once it returns (unless it is called from
 * inside a callback, where it does not wait), so the caller must not hold a lock that those
 * callbacks take. Called from a request's own callback, that request gets no second callback.
 * Call it before closing the socket, as in Zephyr.
 */
void coap_client_cancel_requests(struct coap_client *client);

#if COAPCLIENT_ZEPHYR_API == 304
/**
 * Cancels the pending requests of client that match req, as coap_client_cancel_requests(),
 * but without waiting (as Zephyr): a callback running in another thread may still finish,
 * followed by its -ECANCELED. method, path, cb and user_data are compared; a field that is 0
 * or NULL on either side matches anything, so a zeroed request matches every request.
 */
void coap_client_cancel_request(struct coap_client *client, const struct coap_client_request *req);

/**
 * Ends the observations of client that match req (as in coap_client_cancel_request()): a GET
 * with Observe 1 is sent on the registration's token. For a confirmable observation the
 * server's answer comes to the callback as the final response; for a non-confirmable one the
 * callback gets -ECANCELED.
 *
 * @return 0, also when nothing matched (as Zephyr); -EINVAL when client or req is NULL or
 *         client is not initialised; the first error from coapclientd otherwise.
 */
int coap_client_deregister_observe(struct coap_client *client,
                                   const struct coap_client_request *req);

/**
 * Refreshes the observations of client that match req (as in coap_client_cancel_request()),
 * Zephyr 4.5: the registration (Observe 0, the request's options, CON or NON as it was) is sent
 * again on its token with a new message ID (RFC 7641 §3.3.1), for instance when the
 * notifications have gone quiet for longer than their Max-Age. The observation goes on; the
 * server's answer comes to the callback as a notification. A confirmable refresh is
 * retransmitted until it is answered (no answer at all ends the observation with -ETIMEDOUT).
 *
 * Linux: coapclientd sends it after this returns; it is skipped, with no callback and the
 * observation going on as it was, while the registration or an earlier refresh still waits
 * for its answer, for a registration whose body went block-wise, or when the datagram cannot
 * be sent. It may be called from the observation's own callback.
 *
 * @return 0 when at least one observation matched; -ENOENT when none did (never registered,
 *         cancelled, deregistered or ended by the server); -EINVAL when client or req is NULL
 *         or client is not initialised; -ECONNABORTED or another errno when the refresh could
 *         not be handed to coapclientd.
 */
int coap_client_reregister_observe(struct coap_client *client,
                                   const struct coap_client_request *req);
#endif

/**
 * @return true while client has a request pending (its final callback not yet made).
 *         Linux: completed exchanges are not held for the exchange lifetime here; coapclientd
 *         keeps its own duplicate detection.
 */
bool coap_client_has_ongoing_exchange(struct coap_client *client);

/**
 * A Block2 option that asks the server for the client's block size from the first response
 * on (RFC 7959 early negotiation): code COAP_OPTION_BLOCK2, NUM 0, SZX of the default block
 * size (Linux: 1024 bytes, COAP_BLOCK_1024).
 */
#ifndef CONFIG_COAP_EXTENDED_OPTIONS_LEN
struct coap_client_option coap_client_option_initial_block2(void);
#else
static inline struct coap_client_option coap_client_option_initial_block2(void) {
        struct coap_client_option o;

        o.code = COAP_OPTION_BLOCK2;
        o.len = 1;
        for (size_t i = 0; i < MAX_COAP_CLIENT_OPTION_LEN; i++)
                o.value[i] = 0;
        o.value[0] = COAP_BLOCK_1024;
        return o;
}
#endif

/**
 * Linux only. Sets the block size client uses for Block1 uploads and asks for in Block2
 * downloads (default COAP_BLOCK_1024).
 *
 * @return 0; -EINVAL for a NULL or uninitialised client or a size above COAP_BLOCK_1024.
 */
int coap_client_set_block_size(struct coap_client *client, enum coap_block_size block_size);

/**
 * Linux only: multicast requests (RFC 7252 §8) for the seed's API, whose struct
 * coap_client_request has no multicast_timeout_ms. With timeout_ms > 0, each later request of
 * client with the seed's API (COAPCLIENT_ZEPHYR_API 304) to a multicast group (224.0.0.0/4,
 * ff00::/8) collects answers for that long, as API 403's multicast_timeout_ms does: NON only,
 * one callback per responder (coap_client_get_response_source() tells which), then a last
 * callback with result_code 0, no payload and last_block false. 0 (the default): such requests
 * go out as before, as a plain NON request. API 403 requests use their own field.
 *
 * @return 0; -EINVAL for a NULL or uninitialised client.
 */
int coap_client_set_multicast_timeout(struct coap_client *client, uint32_t timeout_ms);

/** The defaults used when coap_client_req() gets NULL or -1 (Zephyr's <zephyr/net/coap.h>):
 * ack_timeout 2000, ack_random_percent 150, coap_backoff_percent 200,
 * max_retransmission 4. */
struct coap_transmission_parameters coap_get_transmission_parameters(void);

/** Changes the process-wide defaults returned by coap_get_transmission_parameters(). NULL is
 * ignored. */
void coap_set_transmission_parameters(const struct coap_transmission_parameters *params);

#if COAPCLIENT_ZEPHYR_API == 403
/* Internal: req by reference (options only with_options), or -EINVAL when its path is not
 * NUL-terminated within its array or it claims more options than it holds. */
static inline int coapclient_request_ref_403(const struct coap_client_request *req,
                                             bool with_options, struct coapclient_option_ref *opts,
                                             struct coapclient_request_ref *ret) {
        size_t i;

        for (i = 0; i < MAX_PATH_SIZE && req->path[i] != '\0'; i++)
                ;
        if (i == MAX_PATH_SIZE || (with_options && req->num_options > MAX_EXTRA_OPTIONS))
                return -EINVAL;
        ret->api = 403;
        ret->method = req->method;
        ret->confirmable = req->confirmable;
        ret->path = req->path;
        ret->fmt = req->fmt;
        ret->payload = req->payload;
        ret->len = req->len;
        ret->payload_cb = req->payload_cb;
        ret->cb = (void (*)(void)) req->cb;
        ret->options = with_options ? opts : NULL;
        ret->num_options = with_options ? req->num_options : 0;
        ret->user_data = req->user_data;
        ret->multicast_timeout_ms = req->multicast_timeout_ms;
        for (i = 0; i < ret->num_options; i++) {
                if (req->options[i].len > MAX_COAP_CLIENT_OPTION_LEN)
                        return -EINVAL;
                opts[i].code = req->options[i].code;
                opts[i].len = req->options[i].len;
                opts[i].value = req->options[i].value;
        }
        return 0;
}

/**
 * Sends a request; the callback reports the outcome (Zephyr 4.3's signature).
 *
 * @param params The transmission parameters, or NULL for coap_get_transmission_parameters().
 * @return as with API 304, and -EINVAL also for a path not NUL-terminated within
 *         MAX_PATH_SIZE, more than MAX_EXTRA_OPTIONS options, payload and payload_cb both set,
 *         or multicast_timeout_ms > 0 with a destination that is no group, confirmable, an
 *         Observe option or payload_cb; -EPROTONOSUPPORT for multicast_timeout_ms > 0 on a client
 *         with TLS; the error payload_cb returned for the first 64 KiB of the body, or
 *         -EINVAL when it broke its rules there.
 */
static inline int coap_client_req(struct coap_client *client, int sock,
                                  const struct net_sockaddr *addr, struct coap_client_request *req,
                                  struct coap_transmission_parameters *params) {
        struct coapclient_option_ref opts[MAX_EXTRA_OPTIONS];
        struct coapclient_request_ref ref;
        int r;

        if (!req)
                return -EINVAL;
        r = coapclient_request_ref_403(req, true, opts, &ref);
        if (r < 0)
                return r;
        return coapclient_req(client, sock, addr, &ref, params);
}

/** Cancels the pending requests of client that match req, as with API 304. */
static inline void coap_client_cancel_request(struct coap_client *client,
                                              struct coap_client_request *req) {
        struct coapclient_request_ref ref;

        if (req && coapclient_request_ref_403(req, false, NULL, &ref) >= 0)
                coapclient_cancel_request(client, &ref);
}

/** Ends the observations of client that match req, as with API 304. */
static inline int coap_client_deregister_observe(struct coap_client *client,
                                                 struct coap_client_request *req) {
        struct coapclient_request_ref ref;
        int r;

        if (!req)
                return -EINVAL;
        r = coapclient_request_ref_403(req, false, NULL, &ref);
        return r < 0 ? r : coapclient_deregister_observe(client, &ref);
}

/** Refreshes the observations of client that match req (Zephyr 4.5), as with API 304. */
static inline int coap_client_reregister_observe(struct coap_client *client,
                                                 struct coap_client_request *req) {
        struct coapclient_request_ref ref;
        int r;

        if (!req)
                return -EINVAL;
        r = coapclient_request_ref_403(req, false, NULL, &ref);
        return r < 0 ? r : coapclient_reregister_observe(client, &ref);
}

#elif defined(CONFIG_COAP_EXTENDED_OPTIONS_LEN)
/* Internal: API 304 with the application's option layout. */
static inline int coapclient_req_ext(struct coap_client *client, int sock,
                                     const struct sockaddr *addr,
                                     const struct coap_client_request *req,
                                     const struct coap_transmission_parameters *params) {
        struct coapclient_option_ref opts[COAP_CLIENT_MAX_EXTRA_OPTIONS];
        struct coapclient_request_ref ref;

        if (!req || req->num_options > COAP_CLIENT_MAX_EXTRA_OPTIONS ||
            (req->num_options > 0 && !req->options))
                return -EINVAL;
        ref.api = 304;
        ref.method = req->method;
        ref.confirmable = req->confirmable;
        ref.path = req->path;
        ref.fmt = req->fmt;
        ref.payload = req->payload;
        ref.len = req->len;
        ref.payload_cb = NULL;
        ref.cb = (void (*)(void)) req->cb;
        ref.options = opts;
        ref.num_options = req->num_options;
        ref.user_data = req->user_data;
        ref.multicast_timeout_ms = 0;
        for (size_t i = 0; i < req->num_options; i++) {
                if (req->options[i].len > MAX_COAP_CLIENT_OPTION_LEN)
                        return -EINVAL;
                opts[i].code = req->options[i].code;
                opts[i].len = req->options[i].len;
                opts[i].value = req->options[i].value;
        }
        return coapclient_req(client, sock, addr, &ref, params);
}

static inline int coapclient_req_retries_ext(struct coap_client *client, int sock,
                                             const struct sockaddr *addr,
                                             const struct coap_client_request *req, int retries) {
        struct coap_transmission_parameters p = coap_get_transmission_parameters();

        if (retries >= 0)
                p.max_retransmission = (uint8_t) (retries < 255 ? retries : 255);
        return coapclient_req_ext(client, sock, addr, req, &p);
}

#endif

/**
 * Linux only: options of the response a callback reports. Each has_ flag tells whether the
 * response carried that option.
 */
struct coap_client_response_info {
        /** The response carried a Content-Format option. */
        bool has_content_format;
        /** The response carried an Observe option (it is a notification). */
        bool has_observe;
        /** The response carried a Size2 option. */
        bool has_size2;
        /** Content-Format of the response (enum coap_content_format or any other). */
        uint16_t content_format;
        /** Observe sequence number of a notification. */
        uint32_t observe;
        /** Size2: the size of the whole block-wise body, when the server tells it. */
        uint32_t size2;
        /** Length of etag; 0 when the response had no ETag. */
        uint8_t etag_len;
        /** ETag of the response. */
        uint8_t etag[8];
};

/**
 * Linux only. Fills info with the options of the response whose callback is running in the
 * calling thread.
 *
 * @return 0; -ENODATA outside a callback or for an error callback; -EINVAL for a NULL info.
 */
int coap_client_get_response_info(struct coap_client_response_info *info);

/**
 * Linux only. The responder of the multicast response whose callback is running in the calling
 * thread (see coap_client_set_multicast_timeout(); API 403 has data->source), like
 * getpeername(): copies at most *addrlen bytes of it to addr and sets *addrlen to its size.
 *
 * @return 0; -ENODATA outside a callback, for an error callback, a unicast response or the last
 *         callback of a multicast request; -EINVAL for a NULL argument.
 */
int coap_client_get_response_source(struct sockaddr *addr, socklen_t *addrlen);

/**
 * Linux only. The message that came with the last error coapclientd or the bus gave a call of
 * this library in the calling thread (e.g. "org.coapclientd.CoapClient1.Error.TooManyClients:
 * ..." after coap_client_init() failed with -ENOSPC), or NULL when there was none. Like errno,
 * a later success does not clear it. Valid until the next call of this library in the thread.
 *
 * Inside a response callback with an error (result < 0), it is that error's own message, or NULL
 * when it came without one: GnuTLS' reason for a DTLS failure (e.g. "DTLS session failed: The
 * certificate is NOT trusted. The certificate issuer is unknown." with -EACCES), or
 * "NAME: MESSAGE" for a request coapclientd refused.
 */
const char *coap_client_last_error(void);

/**
 * Linux only. Makes the library run without a thread of its own: callbacks then run only
 * inside coap_client_process() (and the cancel functions), in the caller's thread. Call it
 * before the first coap_client_init() of the process.
 *
 * @return 0, also when already in external-loop mode; -EBUSY when a client was initialised
 *         in the default mode already.
 */
int coap_client_loop_external(void);

/**
 * Linux only, external-loop mode. A file descriptor that polls readable (POLLIN) when
 * coap_client_process() has work. It stays the same for the life of the process, also
 * across reconnections.
 *
 * @return the fd (owned by the library; do not close it); -ENXIO when not in external-loop
 *         mode; another negative errno on failure.
 */
int coap_client_get_fd(void);

/**
 * Linux only, external-loop mode. The longest time the application may wait for the fd of
 * coap_client_get_fd() before calling coap_client_process(), in microseconds relative to now;
 * 0 means at once and UINT64_MAX means no limit. Ask again after each coap_client_process()
 * and each other call of this API.
 */
uint64_t coap_client_get_timeout_usec(void);

/**
 * Linux only, external-loop mode. Reads the bus and runs the due callbacks in the calling
 * thread; never blocks.
 *
 * @return 0; -ENXIO when not in external-loop mode.
 */
int coap_client_process(void);

/* ---- DTLS (coaps) -------------------------------------------------------------------------
 *
 * Linux: DTLS runs in coapclientd, not on the socket. Zephyr creates a DTLS socket
 * (socket(AF_INET, SOCK_DGRAM, IPPROTO_DTLS_1_2)), registers credentials with
 * tls_credential_add() and attaches them with setsockopt(SOL_TLS, TLS_SEC_TAG_LIST) and
 * setsockopt(SOL_TLS, TLS_HOSTNAME). Linux has no DTLS socket type, so here:
 *
 *   Zephyr                                          libcoapclient
 *   tls_credential_add(tag, type, buf, len)         coap_client_tls_credential_add(tag, type,
 *                                                   buf, len): the same arguments
 *   tls_credential_delete(tag, type)                coap_client_tls_credential_delete(tag, type)
 *   socket(..., IPPROTO_DTLS_1_2)                   socket(..., SOCK_DGRAM, 0), connect()ed to
 *                                                   the server (port 5684 for coaps)
 *   setsockopt(SOL_TLS, TLS_SEC_TAG_LIST, tags)  \  coap_client_set_tls(client, tags, n,
 *   setsockopt(SOL_TLS, TLS_HOSTNAME, name)      /  hostname, flags), once per client
 *   setsockopt(SOL_TLS, TLS_PEER_VERIFY, NONE)      flags COAP_CLIENT_TLS_INSECURE
 *   setsockopt(SOL_TLS, TLS_DTLS_HANDSHAKE_         coap_client_set_tls_handshake_timeout()
 *              TIMEOUT_MAX, ms)
 *
 * Every request of a client with TLS set runs over DTLS 1.2 (one session per socket and
 * server, kept by coapclientd while the client keeps its credentials); plain coap:// needs
 * another client or coap_client_set_tls(client, NULL, 0, NULL, 0), and another socket.
 * Handshake failures come to the response callback as errors: -EACCES (the server's
 * certificate or key was not accepted, or the server rejected ours), -ECONNREFUSED (the server
 * refused the handshake, e.g. no common cipher suite or an unknown PSK identity), -ETIMEDOUT
 * (no handshake within the handshake timeout; a wrong PSK key ends here too, since DTLS drops
 * what it cannot decrypt without an alert), -ECONNRESET (the server closed the session),
 * -EPROTO (any other DTLS failure). Some servers (libcoap) drop a new handshake from a source
 * port whose old session they still hold, e.g. after a failed handshake or a restart of
 * coapclientd: a new socket gets through at once.
 *
 * Secrets (the PSK and the private key) reach coapclientd only through a sealed memfd, never in
 * a D-Bus message.
 */

/** Types of credentials: Zephyr's enum tls_credential_type (<zephyr/net/tls_credentials.h>),
 * with the same values, plus the server's raw public key. */
enum coap_client_tls_credential_type {
        /** Unused, as in Zephyr. */
        COAP_CLIENT_TLS_CREDENTIAL_NONE = 0,
        /** A CA certificate (PEM or DER) that the server's chain must lead to. Several tags
         * with one CA each trust several CAs. */
        COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE = 1,
        /** Our own certificate (PEM or DER; PEM may hold a chain), sent when the server asks
         * for a client certificate. Zephyr calls it SERVER_CERTIFICATE (newer: PUBLIC_CERTIFICATE)
         * whichever side uses it. Needs a PRIVATE_KEY under the same tag list. */
        COAP_CLIENT_TLS_CREDENTIAL_SERVER_CERTIFICATE = 2,
        /** Our private key (PEM or DER, unencrypted): of the SERVER_CERTIFICATE, or without a
         * certificate our raw public key pair (RFC 7250). */
        COAP_CLIENT_TLS_CREDENTIAL_PRIVATE_KEY = 3,
        /** A pre-shared key: raw key bytes (1 to 64). */
        COAP_CLIENT_TLS_CREDENTIAL_PSK = 4,
        /** The identity of the PSK (text; a trailing NUL is ignored). */
        COAP_CLIENT_TLS_CREDENTIAL_PSK_ID = 5,
        /** Linux only: the server's raw public key (RFC 7250), its SubjectPublicKeyInfo as PEM
         * ("PUBLIC KEY") or DER, compared byte for byte with the key the server presents. */
        COAP_CLIENT_TLS_CREDENTIAL_RAW_PUBLIC_KEY = 6,
};

/** Zephyr's newer name of SERVER_CERTIFICATE. */
#define COAP_CLIENT_TLS_CREDENTIAL_PUBLIC_CERTIFICATE COAP_CLIENT_TLS_CREDENTIAL_SERVER_CERTIFICATE

/**
 * Registers a credential under sec_tag in the process-wide store, as Zephyr's
 * tls_credential_add(). Unlike Zephyr the buffer is copied: the caller may wipe it at once. PEM
 * data may include the trailing NUL that Zephyr's mbedTLS wants; text before "-----BEGIN" is
 * ignored. Copies are wiped (explicit_bzero()) when deleted and when the process exits.
 *
 * @param sec_tag The tag, >= 0.
 * @param type The kind of credential.
 * @param cred The data; see enum coap_client_tls_credential_type.
 * @param credlen Its length, 1 byte to 1 MiB.
 * @return 0; -EINVAL (sec_tag < 0, unknown type, cred NULL, bad length); -EEXIST (sec_tag
 *         already has a credential of this type, as in Zephyr); -ENOMEM.
 */
int coap_client_tls_credential_add(int sec_tag, enum coap_client_tls_credential_type type,
                                   const void *cred, size_t credlen);

/**
 * Removes and wipes a credential, as Zephyr's tls_credential_delete(). Clients that use the
 * tag keep the credentials coapclientd already has; they are looked up again only when
 * coap_client_set_tls() runs or coapclientd restarts.
 *
 * @return 0; -ENOENT when sec_tag has no credential of this type; -EINVAL.
 */
int coap_client_tls_credential_delete(int sec_tag, enum coap_client_tls_credential_type type);

/** Flags of coap_client_set_tls(). */
enum coap_client_tls_flags {
        /** Do not verify the server (its certificate chain and name, or its raw public key).
         * For tests only: anyone on the path can then read and change the traffic. Zephyr:
         * TLS_PEER_VERIFY set to TLS_PEER_VERIFY_NONE. */
        COAP_CLIENT_TLS_INSECURE = 1 << 0,
};

/**
 * Linux only. Makes every request of client run over DTLS with the credentials registered
 * under sec_tags: the equivalent of Zephyr's TLS_SEC_TAG_LIST and TLS_HOSTNAME socket options.
 * The credentials are looked up now and sent to coapclientd (again, automatically, when
 * coapclientd restarts). Calling it again replaces the credentials; sessions already
 * established stay until they end.
 *
 * The mode follows from the credentials found under all of sec_tags:
 *  - PSK and PSK_ID: pre-shared key;
 *  - RAW_PUBLIC_KEY, or a PRIVATE_KEY without SERVER_CERTIFICATE and CA_CERTIFICATE: raw
 *    public keys, our key pair from PRIVATE_KEY; without RAW_PUBLIC_KEY only with
 *    COAP_CLIENT_TLS_INSECURE;
 *  - otherwise X.509: the server's chain is verified against every CA_CERTIFICATE (none: the
 *    system's trust store), and hostname against its certificate; SERVER_CERTIFICATE with
 *    PRIVATE_KEY is our client certificate.
 * Where a type occurs under several tags, the first tag in sec_tags wins (CA certificates
 * excepted: all count).
 *
 * @param client An initialised client.
 * With n 0 and flags 0 the client goes back to plain CoAP (Linux: Zephyr needs a new socket).
 *
 * @param sec_tags Tags registered with coap_client_tls_credential_add(); may be NULL when n is
 *        0: then X.509 without verification (flags COAP_CLIENT_TLS_INSECURE), or plain CoAP
 *        (flags 0).
 * @param n Number of tags, at most 16.
 * @param hostname The server's name (DNS name or IP address) its certificate must match, also
 *        sent as SNI when it is a DNS name; NULL: only the chain is verified. Unused with PSK
 *        and raw public keys.
 * @param flags Zero or more of enum coap_client_tls_flags.
 * @return 0; -EINVAL (client not initialised, bad arguments, or an incomplete set: PSK without
 *         PSK_ID or the reverse, a SERVER_CERTIFICATE without PRIVATE_KEY, raw public keys
 *         without RAW_PUBLIC_KEY or COAP_CLIENT_TLS_INSECURE); -ENOENT (a tag has no
 *         credentials); -ENOMEM; -EOPNOTSUPP (coapclientd has no DTLS); or the error of
 *         coapclientd, e.g. -EINVAL for a certificate or key it cannot load, a PSK longer than
 *         64 bytes or a PSK_ID longer than 256. When coapclientd restarts, the next
 * coap_client_req() sends the credentials again and fails with this function's errors if they are
 * gone or broken meanwhile; requests never run in clear on a client with TLS set.
 */
int coap_client_set_tls(struct coap_client *client, const int *sec_tags, size_t n,
                        const char *hostname, int flags);

/**
 * Linux only. How long a DTLS handshake of client may take in all, retransmissions included,
 * before its requests fail with -ETIMEDOUT; Zephyr's TLS_DTLS_HANDSHAKE_TIMEOUT_MAX socket
 * option. Takes effect at once when TLS is set, otherwise with the next coap_client_set_tls().
 *
 * @param timeout_ms 100 to 600000; 0: coapclientd's default (30 s).
 * @return 0; -EINVAL (client not initialised, timeout out of range); the errors of
 *         coap_client_set_tls() when TLS is set.
 */
int coap_client_set_tls_handshake_timeout(struct coap_client *client, uint32_t timeout_ms);

#ifdef __cplusplus
}

#if COAPCLIENT_ZEPHYR_API == 304
/* C++ has no _Generic: overloads take the fifth argument of coap_client_req(). Pass nullptr, not
 * NULL, for the default parameters (NULL is an integer in C++, ambiguous here). */
static inline int coap_client_req(struct coap_client *client, int sock, const struct sockaddr *addr,
                                  const struct coap_client_request *req,
                                  const struct coap_transmission_parameters *params) {
        return COAPCLIENT_REQ_PARAMS(client, sock, addr, req, params);
}

static inline int coap_client_req(struct coap_client *client, int sock, const struct sockaddr *addr,
                                  const struct coap_client_request *req, int retries) {
        return COAPCLIENT_REQ_RETRIES(client, sock, addr, req, retries);
}
#endif
#endif

#endif
