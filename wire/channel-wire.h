/* SPDX-License-Identifier: MIT */
#pragma once

/* The data channel between libcoapclient and coapclientd (libc only, shared by both).
 *
 * Manager.OpenChannel() hands a caller one end of an AF_UNIX SOCK_SEQPACKET socketpair. Requests
 * go down it and their response blocks come back up it, without a D-Bus message or a
 * dbus-daemon hop per request; D-Bus stays the control plane (clients, credentials).
 *
 * A message is one or more frames, each a little-endian header (u32 size of the whole frame,
 * u16 type, u16 zero) and a body. File descriptors travel as SCM_RIGHTS on the message, taken in
 * frame order: a REGISTER_SOCKET frame takes the next one (the socket it registers), a REQUEST
 * frame its socket unless it names a registered one (CHANNEL_REQUEST_SOCKET_ID), then a memfd
 * with CHANNEL_REQUEST_PAYLOAD_FD (a payload too large for a message). Request tags and socket
 * ids are chosen by the library:
 * the daemon answers with EVENT frames that carry them, so nothing waits for a reply. The
 * format is documented in docs/dbus-api.md ("The data channel"). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The largest message either side sends or accepts. */
#define CHANNEL_MESSAGE_MAX       (128 * 1024)
#define CHANNEL_HEADER_SIZE       8
#define CHANNEL_OPTIONS_MAX       16
#define CHANNEL_DEST_MAX          28 /* sizeof(struct sockaddr_in6) */
#define CHANNEL_ETAG_MAX          8
#define CHANNEL_ERROR_NAME_MAX    255  /* with its NUL */
#define CHANNEL_ERROR_MESSAGE_MAX 1024 /* with its NUL */
/* The most fds a message carries: a message with more closes the channel. */
#define CHANNEL_FDS_MAX           16

typedef enum ChannelFrameType {
        CHANNEL_FRAME_REQUEST = 1,            /* library -> daemon */
        CHANNEL_FRAME_CANCEL = 2,             /* library -> daemon: client, tag */
        CHANNEL_FRAME_CANCEL_ALL = 3,         /* library -> daemon: client */
        CHANNEL_FRAME_DEREGISTER_OBSERVE = 4, /* library -> daemon: client, tag */
        CHANNEL_FRAME_UPLOAD = 5,             /* library -> daemon: more of a streamed body */
        CHANNEL_FRAME_REREGISTER_OBSERVE = 6, /* library -> daemon: client, tag */
        CHANNEL_FRAME_REGISTER_SOCKET = 7,    /* library -> daemon: socket id, the socket's fd */
        CHANNEL_FRAME_RELEASE_SOCKET = 8,     /* library -> daemon: socket id */
        CHANNEL_FRAME_EVENT = 16,             /* daemon -> library */
} ChannelFrameType;

typedef enum ChannelParseError {
        CHANNEL_PARSE_OK,
        CHANNEL_PARSE_TRUNCATED_HEADER,
        CHANNEL_PARSE_BAD_FRAME_SIZE,
        CHANNEL_PARSE_RESERVED_NOT_ZERO,
        CHANNEL_PARSE_UNKNOWN_TYPE,
        CHANNEL_PARSE_TRUNCATED_BODY,
        CHANNEL_PARSE_TRAILING_BYTES,
        CHANNEL_PARSE_UNKNOWN_FLAGS,
        CHANNEL_PARSE_BAD_DESTINATION,
        CHANNEL_PARSE_BAD_PATH,
        CHANNEL_PARSE_TOO_MANY_OPTIONS,
        CHANNEL_PARSE_BAD_ERROR_NAME,
        CHANNEL_PARSE_BAD_ETAG,
        CHANNEL_PARSE_BAD_TOKEN,
        CHANNEL_PARSE_BAD_ERROR_MESSAGE,
        CHANNEL_PARSE_BAD_MULTICAST,
        CHANNEL_PARSE_BAD_SOURCE,
        _CHANNEL_PARSE_ERROR_MAX,
} ChannelParseError;

const char *channel_parse_error_to_string(ChannelParseError e);

/* REQUEST flags. */
#define CHANNEL_REQUEST_CONFIRMABLE    (1u << 0)
#define CHANNEL_REQUEST_OBSERVE        (1u << 1) /* add Observe: 0 unless an option sets it */
#define CHANNEL_REQUEST_CONTENT_FORMAT (1u << 2)
#define CHANNEL_REQUEST_PARAMS         (1u << 3) /* the four transmission parameters are set */
#define CHANNEL_REQUEST_PAYLOAD_FD     (1u << 4) /* payload_len bytes are in the second fd */
/* The sender reads CHANNEL_EVENT_MESSAGE: the channel's EVENTs carry it from then on. */
#define CHANNEL_REQUEST_MESSAGE        (1u << 5)
/* A streamed body: the payload is its beginning (more than one block of block_size, which must
 * be set, and at most CHANNEL_UPLOAD_WINDOW bytes, inline), UPLOAD frames bring the rest. */
#define CHANNEL_REQUEST_STREAM         (1u << 6)
/* The sender reads CHANNEL_EVENT_ERROR_MESSAGE: the channel's EVENTs carry it from then on. */
#define CHANNEL_REQUEST_ERROR_MESSAGE  (1u << 7)
/* A multicast request (RFC 7252 §8): multicast_ms (> 0) follows the fixed fields, and the
 * request's EVENTs carry the responder's address (CHANNEL_EVENT_SOURCE). */
#define CHANNEL_REQUEST_MULTICAST      (1u << 8)
/* The request runs on the socket registered as socket_id (a u64 after multicast_ms) and takes
 * no socket fd. */
#define CHANNEL_REQUEST_SOCKET_ID      (1u << 9)
#define CHANNEL_REQUEST_FLAGS_ALL      0x3ffu

/* Flow control of a streamed body: the sender may have sent up to this many bytes past the
 * offset of the request's latest EVENT (its last acknowledged block; 0 at first). The daemon
 * holds no more than that of it; a stream that sends more fails with -ENOBUFS. */
#define CHANNEL_UPLOAD_WINDOW (64 * 1024)

typedef struct ChannelOption {
        uint16_t number;
        uint8_t len;
        const uint8_t *value;
} ChannelOption;

typedef struct ChannelRequest {
        uint64_t client; /* the id of the client object (its path's last element) */
        uint64_t tag;    /* chosen by the sender, echoed in every EVENT of the request */
        uint8_t method;
        uint16_t flags;
        uint16_t content_format;
        uint16_t block_size; /* bytes, also asked for in the first request (early negotiation);
                              * 0: the daemon's default, not asked for */
        /* With CHANNEL_REQUEST_PARAMS, in the ranges of the D-Bus keys of the same names. */
        uint32_t ack_timeout_ms;
        uint16_t ack_random_percent; /* 0: the daemon's default */
        uint16_t backoff_percent;
        uint8_t max_retransmission;
        const uint8_t *dest; /* a struct sockaddr_in or _in6 as the kernel lays it out */
        size_t dest_len;     /* 0: the socket's connected peer */
        const char *path;    /* NUL-terminated within the frame */
        ChannelOption options[CHANNEL_OPTIONS_MAX];
        size_t n_options;
        const uint8_t *payload; /* NULL with CHANNEL_REQUEST_PAYLOAD_FD */
        uint32_t payload_len;
        uint32_t multicast_ms; /* with CHANNEL_REQUEST_MULTICAST: the window */
        uint64_t socket_id;    /* with CHANNEL_REQUEST_SOCKET_ID */
} ChannelRequest;

/* EVENT flags. */
#define CHANNEL_EVENT_LAST_BLOCK     (1u << 0)
#define CHANNEL_EVENT_FINAL          (1u << 1)
#define CHANNEL_EVENT_SILENT         (1u << 2) /* no callback: the library only forgets it */
#define CHANNEL_EVENT_CONTENT_FORMAT (1u << 3)
#define CHANNEL_EVENT_OBSERVE        (1u << 4)
#define CHANNEL_EVENT_SIZE2          (1u << 5)
/* The response's header and raw options follow (only on a channel that had a REQUEST with
 * CHANNEL_REQUEST_MESSAGE, so that a library that never asks never meets the flag). */
#define CHANNEL_EVENT_MESSAGE        (1u << 6)
/* What went wrong, in words, follows the error name: set with error_message (only on a channel
 * that had a REQUEST with CHANNEL_REQUEST_ERROR_MESSAGE, for the same reason). */
#define CHANNEL_EVENT_ERROR_MESSAGE  (1u << 7)
/* The responder's address follows (only for a request with CHANNEL_REQUEST_MULTICAST). */
#define CHANNEL_EVENT_SOURCE         (1u << 8)
#define CHANNEL_EVENT_FLAGS_ALL      0x1ffu
#define CHANNEL_TOKEN_MAX            8

/* One call of Zephyr's response callback, as the Response signal carries it. */
typedef struct ChannelEvent {
        uint64_t client;
        uint64_t tag;
        int32_t result; /* CoAP code, or a negative errno */
        uint32_t flags;
        uint64_t offset;
        uint16_t content_format;
        uint8_t type; /* CoAP message type of the response */
        uint8_t etag_len;
        uint32_t observe;
        uint32_t size2;
        uint8_t etag[CHANNEL_ETAG_MAX];
        const char *error_name; /* the D-Bus error name of a refused request, else NULL */
        /* With CHANNEL_EVENT_ERROR_MESSAGE: what went wrong (a refusal's D-Bus error message,
         * GnuTLS' reason for a DTLS failure), at most CHANNEL_ERROR_MESSAGE_MAX with its NUL. */
        const char *error_message;
        /* With CHANNEL_EVENT_MESSAGE: the response's message ID, code byte, token and options as
         * they were on the wire (RFC 7252 encoding, not checked here). */
        uint16_t mid;
        uint8_t code;
        uint8_t token_len;
        uint8_t token[CHANNEL_TOKEN_MAX];
        const uint8_t *options;
        uint16_t options_len;
        /* With CHANNEL_EVENT_SOURCE: a struct sockaddr_in or _in6 as the kernel lays it out. */
        const uint8_t *source;
        uint8_t source_len;
        const uint8_t *payload;
        uint32_t payload_len;
} ChannelEvent;

/* UPLOAD flags. */
#define CHANNEL_UPLOAD_END       (1u << 0) /* the body ends with these bytes */
#define CHANNEL_UPLOAD_FLAGS_ALL 0x1u

/* The next bytes of a streamed body, at offset (the end of what came before). */
typedef struct ChannelUpload {
        uint64_t client;
        uint64_t tag;
        uint64_t offset;
        uint32_t flags;
        const uint8_t *data;
        uint32_t len;
} ChannelUpload;

typedef struct ChannelFrame {
        uint16_t type;
        const uint8_t *body;
        size_t body_len;
} ChannelFrame;

/* The encoded size of the frame for ev. */
size_t channel_event_size(const ChannelEvent *ev);

/* Encoders write one frame at buf and return its size; -ENOBUFS (nothing written) when it does
 * not fit in size, -EINVAL when the input breaks a rule above. */
long channel_encode_request(const ChannelRequest *req, uint8_t *buf, size_t size);
long channel_encode_event(const ChannelEvent *ev, uint8_t *buf, size_t size);
long channel_encode_upload(const ChannelUpload *up, uint8_t *buf, size_t size);
/* CANCEL, DEREGISTER_OBSERVE and REREGISTER_OBSERVE (client, tag) and CANCEL_ALL (client; tag
 * ignored). */
long channel_encode_ids(ChannelFrameType type, uint64_t client, uint64_t tag, uint8_t *buf,
                        size_t size);
/* REGISTER_SOCKET and RELEASE_SOCKET (the socket's id). */
long channel_encode_socket(ChannelFrameType type, uint64_t id, uint8_t *buf, size_t size);

/* The next frame of a message at *offset: 1 and advances *offset, 0 at the end, or -EBADMSG with
 * *error set. Checks the header only. */
int channel_next_frame(const uint8_t *msg, size_t len, size_t *offset, ChannelFrame *ret,
                       ChannelParseError *error);
/* Bodies. Pointers in ret point into the frame; -EBADMSG with *error set. */
int channel_decode_request(const ChannelFrame *f, ChannelRequest *ret, ChannelParseError *error);
int channel_decode_event(const ChannelFrame *f, ChannelEvent *ret, ChannelParseError *error);
int channel_decode_upload(const ChannelFrame *f, ChannelUpload *ret, ChannelParseError *error);
int channel_decode_ids(const ChannelFrame *f, uint64_t *ret_client, uint64_t *ret_tag,
                       ChannelParseError *error);
int channel_decode_socket(const ChannelFrame *f, uint64_t *ret_id, ChannelParseError *error);
/* The fds a frame takes from its message, read from a REQUEST's flags even when the rest of the
 * body is malformed, so that the frames after it still get their own: a REGISTER_SOCKET 1; a
 * REQUEST 1 (its socket) unless CHANNEL_REQUEST_SOCKET_ID, plus 1 with
 * CHANNEL_REQUEST_PAYLOAD_FD; any other frame 0. */
size_t channel_frame_n_fds(const ChannelFrame *f);

/* Attaches fds (n_fds > 0) to mh as one SCM_RIGHTS message, written into control: size bytes,
 * at least CMSG_SPACE(sizeof(int) * n_fds), aligned for a struct cmsghdr. */
void channel_attach_fds(struct msghdr *mh, void *control, size_t size, const int *fds,
                        size_t n_fds);
