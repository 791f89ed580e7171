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
 * <zephyr/net/coap_client.h> and <zephyr/net/coap.h>. Differences from Zephyr are marked
 * "Linux:" below. The main ones:
 *
 *  - Several requests may be in flight per client (coapclientd's per-client limit, 64 by
 *    default, replaces CONFIG_COAP_CLIENT_MAX_REQUESTS) and there may be any number of clients
 *    (coapclientd's per-process limit replaces CONFIG_COAP_CLIENT_MAX_INSTANCES).
 *  - The default block size is 1024 bytes (Zephyr: CONFIG_COAP_CLIENT_BLOCK_SIZE, 256);
 *    coap_client_set_block_size() changes it per client.
 *  - Requests of one client may use different sockets at the same time; there is no
 *    -EALREADY, except where a socket's DTLS session does not fit (coap_client_req()).
 *  - DTLS: credentials are registered as with Zephyr's tls_credential_add() and attached to a
 *    client, not a socket, with coap_client_set_tls(); see "DTLS (coaps)" below.
 *  - If coapclientd goes away (stopped, restarted, crashed) or the bus connection breaks, every
 *    pending request gets one callback with -ECONNABORTED. The next coap_client_req()
 *    reconnects (and D-Bus activation may start the service again).
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

/** Largest value of a struct coap_client_option (Zephyr without
 * CONFIG_COAP_EXTENDED_OPTIONS_LEN). */
#define MAX_COAP_CLIENT_OPTION_LEN 12

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
        /** Length of value, at most MAX_COAP_CLIENT_OPTION_LEN. */
        uint8_t len;
        /** The option value. */
        uint8_t value[MAX_COAP_CLIENT_OPTION_LEN];
};

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
         * coap_client_option_initial_block2()) sets the block size of this request. Linux:
         * Uri-Path, Uri-Query, Content-Format, Block1, Size1 and Request-Tag come from the
         * other fields and coapclientd, and are rejected here with -EINVAL. */
        const struct coap_client_option *options;
        /** Number of entries in options, at most COAP_CLIENT_MAX_EXTRA_OPTIONS. */
        uint8_t num_options;
        /** Passed to cb. */
        void *user_data;
};

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
#define coap_client_req(client, sock, addr, req, params_or_retries) \
        _Generic((params_or_retries),                                                              \
                struct coap_transmission_parameters *: coap_client_req_params,                     \
                const struct coap_transmission_parameters *: coap_client_req_params,               \
                void *: coap_client_req_params,                                                    \
                default: coap_client_req_retries)((client), (sock), (addr), (req),                 \
                                                  (params_or_retries))

/** coap_client_req() with transmission parameters (NULL: the defaults of
 * coap_get_transmission_parameters()). */
int coap_client_req_params(struct coap_client *client, int sock, const struct sockaddr *addr,
                           const struct coap_client_request *req,
                           const struct coap_transmission_parameters *params);

/** coap_client_req() with the older retry count: the default parameters with
 * max_retransmission = retries, or the defaults when retries < 0. */
int coap_client_req_retries(struct coap_client *client, int sock, const struct sockaddr *addr,
                            const struct coap_client_request *req, int retries);

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
struct coap_client_option coap_client_option_initial_block2(void);

/**
 * Linux only. Sets the block size client uses for Block1 uploads and asks for in Block2
 * downloads (default COAP_BLOCK_1024).
 *
 * @return 0; -EINVAL for a NULL or uninitialised client or a size above COAP_BLOCK_1024.
 */
int coap_client_set_block_size(struct coap_client *client, enum coap_block_size block_size);

/** The defaults used when coap_client_req() gets NULL or -1 (Zephyr's <zephyr/net/coap.h>):
 * ack_timeout 2000, ack_random_percent 150, coap_backoff_percent 200,
 * max_retransmission 4. */
struct coap_transmission_parameters coap_get_transmission_parameters(void);

/** Changes the process-wide defaults returned by coap_get_transmission_parameters(). NULL is
 * ignored. */
void coap_set_transmission_parameters(const struct coap_transmission_parameters *params);

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
 * Linux only. The message that came with the last error coapclientd or the bus gave a call of
 * this library in the calling thread (e.g. "org.coapclientd.CoapClient1.Error.TooManyClients:
 * ..." after coap_client_init() failed with -ENOSPC), or NULL when there was none. Like errno,
 * a later success does not clear it. Valid until the next call of this library in the thread.
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
#endif

#endif
