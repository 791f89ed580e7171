/* SPDX-License-Identifier: MIT */
#pragma once

/* The pure parts of coapclientctl: URIs, option values, names of codes and formats. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coapclient/coap_client.h"

#define CTL_DEFAULT_PORT        5683
#define CTL_DEFAULT_SECURE_PORT 5684

typedef struct CtlUri {
        bool secure; /* coaps:// */
        char *host;  /* without brackets; an IPv6 zone as "%name" */
        uint16_t port;
        char *path; /* "/a/b?x=1", percent-decoded; "/" for the root */
} CtlUri;

/* Parses coap://host[:port][/path][?query] and the same with coaps:// (DTLS, port 5684 by
 * default). -EINVAL malformed, -EPROTONOSUPPORT another scheme. */
int ctl_uri_parse(const char *s, CtlUri *ret);
void ctl_uri_done(CtlUri *u);

/* "NUM:VALUE": VALUE as text, 0xHEX bytes, or #N an unsigned integer (minimal big-endian). */
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

/* 0 for 2.xx, 2 for 4.xx, 3 for 5.xx, 4 for anything else and for errors. */
int ctl_exit_code(int code);

enum {
        CTL_EXIT_SUCCESS = 0,
        CTL_EXIT_USAGE = 1,
        CTL_EXIT_CLIENT_ERROR = 2,
        CTL_EXIT_SERVER_ERROR = 3,
        CTL_EXIT_TRANSPORT = 4,
};
