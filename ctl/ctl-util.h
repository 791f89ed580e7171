/* SPDX-License-Identifier: MIT */
#pragma once

/* The pure parts of coapclientctl: URIs, option values, names of codes and formats. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "coapclient/coap_client.h"

#define CTL_DEFAULT_PORT        5683
#define CTL_DEFAULT_SECURE_PORT 5684

typedef struct CtlUri {
        bool secure;          /* coaps:// */
        char *host;           /* without brackets; an IPv6 zone as "%name" */
        bool host_is_literal; /* an IP address, not a name: no Uri-Host (RFC 7252 §6.4) */
        uint16_t port;
        char *path; /* "/a/b?x=1", percent-decoded; "/" for the root */
} CtlUri;

/* Parses coap://host[:port][/path][?query] and the same with coaps:// (DTLS, port 5684 by
 * default). -EINVAL malformed, -EPROTONOSUPPORT another scheme, -EMSGSIZE a part longer than
 * a CoAP option holds; *ret_reason then names the bad part. */
int ctl_uri_parse(const char *s, CtlUri *ret, const char **ret_reason);
void ctl_uri_done(CtlUri *u);

/* An IPv4 or IPv6 multicast address (an IPv6 zone "%name" allowed); false for names. */
bool ctl_host_is_multicast(const char *host);

/* "NUM:VALUE": VALUE as text, 0xHEX bytes, or #N an unsigned integer (minimal big-endian).
 * -EMSGSIZE: longer than MAX_COAP_CLIENT_OPTION_LEN. */
int ctl_option_parse(const char *s, struct coap_client_option *ret);
/* An unsigned integer option value, minimal big-endian. */
struct coap_client_option ctl_option_uint(uint16_t code, uint32_t v);

/* A number or one of text, link, xml, octet, exi, json, cbor (or the media type). */
int ctl_content_format_parse(const char *s, uint16_t *ret);
const char *ctl_content_format_name(uint16_t format);

/* "Content" for 2.05 and so on; NULL when unknown. */
const char *ctl_code_name(int code);

/* A PSK as text, or as bytes in 0xHEX; at most size bytes. -EINVAL: empty, bad hex or too
 * long. */
int ctl_psk_parse(const char *s, uint8_t *buf, size_t size, size_t *ret_len);

/* What a request error means over coaps://, beyond strerror(); NULL: nothing to add. */
const char *ctl_tls_error_hint(int error);

/* The exit codes, documented in coapclientctl(1). */
enum {
        CTL_EXIT_SUCCESS = 0,
        CTL_EXIT_FAILURE = 1,      /* a limit of coapclientd, out of memory, anything else */
        CTL_EXIT_USAGE = 2,        /* bad arguments */
        CTL_EXIT_DAEMON = 3,       /* coapclientd unreachable, or gone during the request */
        CTL_EXIT_TIMEOUT = 4,      /* no response from the peer */
        CTL_EXIT_PEER = 5,         /* the peer refused: RST, ICMP error, failed DTLS handshake */
        CTL_EXIT_CLIENT_ERROR = 6, /* CoAP 4.xx */
        CTL_EXIT_SERVER_ERROR = 7, /* CoAP 5.xx */
        CTL_EXIT_IO = 8,           /* reading or writing a local file */
};

/* The exit code for a response code (2.xx success, 4.xx, 5.xx, other codes the peer's fault)
 * or for the negative errno a request ended with. */
int ctl_exit_code(int code);

/* The exit code for an error returned by a libcoapclient call (not a callback): there
 * -ECONNREFUSED means coapclientd is not running, -EINVAL a request it cannot take. */
int ctl_call_exit_code(int error);

/* Which limit of coapclientd an error of a request means, naming its setting; NULL: none. */
const char *ctl_limit_hint(int error);

/* Writes s as a JSON string, quotes included. */
void ctl_json_string(FILE *f, const char *s);
/* Writes buf as a JSON string of its base64 (RFC 4648), quotes included. */
void ctl_json_base64(FILE *f, const uint8_t *buf, size_t len);
/* Well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code points above U+10FFFF) without
 * NUL bytes: text that a JSON string can carry as it is. */
bool ctl_is_text(const uint8_t *buf, size_t len);
