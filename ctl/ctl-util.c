/* SPDX-License-Identifier: MIT */
#include "ctl-util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) tolower((unsigned char) c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -EINVAL;
}

/* Decodes %XX, except the separators the path syntax gives meaning to. */
static char *percent_decode(const char *s, size_t n) {
        char *out = malloc(n + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;

                if (s[i] == '%' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 &&
                    (lo = hex_value(s[i + 2])) >= 0) {
                        char c = (char) (hi << 4 | lo);

                        if (c != '/' && c != '?' && c != '&' && c != '\0') {
                                *o++ = c;
                                i += 2;
                                continue;
                        }
                }
                *o++ = s[i];
        }
        *o = '\0';
        return out;
}

/* The longest Uri-Path segment or Uri-Query argument: one CoAP option (RFC 7252 §5.10). */
#define URI_PART_MAX 255

static bool parts_fit(const char *path) {
        const char *query = strchr(path, '?');
        size_t run = 0;

        for (const char *q = path; *q; q++) {
                bool separator = query && q >= query ? q == query || *q == '&' : *q == '/';

                run = separator ? 0 : run + 1;
                if (run > URI_PART_MAX)
                        return false;
        }
        return true;
}

static bool is_ip_literal(const char *host) {
        char buf[INET6_ADDRSTRLEN];
        size_t n = strcspn(host, "%");
        struct in6_addr a;

        if (n >= sizeof(buf))
                return false;
        memcpy(buf, host, n);
        buf[n] = '\0';
        return inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, buf, &a) == 1;
}

bool ctl_host_is_multicast(const char *host) {
        char buf[INET6_ADDRSTRLEN];
        size_t n = strcspn(host, "%");
        struct in6_addr a6;
        struct in_addr a4;

        if (inet_pton(AF_INET, host, &a4) == 1)
                return IN_MULTICAST(ntohl(a4.s_addr));
        if (n >= sizeof(buf))
                return false;
        memcpy(buf, host, n);
        buf[n] = '\0';
        return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_MULTICAST(&a6);
}

#define FAIL(error, reason)                   \
        do {                                  \
                if (ret_reason)               \
                        *ret_reason = reason; \
                return error;                 \
        } while (0)

int ctl_uri_parse(const char *s, CtlUri *ret, const char **ret_reason) {
        const char *host, *host_end, *p;
        unsigned long port = CTL_DEFAULT_PORT;
        bool bracketed = false;
        CtlUri u = {};

        if (strncasecmp(s, "coaps://", 8) == 0) {
                u.secure = true;
                port = CTL_DEFAULT_SECURE_PORT;
                host = s + 8;
        } else if (strncasecmp(s, "coap://", 7) == 0)
                host = s + 7;
        else if (strstr(s, "://"))
                FAIL(-EPROTONOSUPPORT, "the scheme: coap:// or coaps:// expected");
        else
                FAIL(-EINVAL, "no scheme: coap:// or coaps:// expected");
        if (*host == '[') {
                host++;
                host_end = strchr(host, ']');
                if (!host_end)
                        FAIL(-EINVAL, "the host: an IPv6 address without its closing ']'");
                p = host_end + 1;
                bracketed = true;
        } else {
                host_end = host + strcspn(host, ":/?#");
                p = host_end;
        }
        if (host_end == host)
                FAIL(-EINVAL, "the host: empty");
        if ((size_t) (host_end - host) > URI_PART_MAX)
                FAIL(-EMSGSIZE, "the host: longer than 255 bytes");
        if (*p == ':') {
                char *end;

                p++;
                if (!isdigit((unsigned char) *p))
                        FAIL(-EINVAL, "the port: a number within 1..65535 expected");
                errno = 0;
                port = strtoul(p, &end, 10);
                if (errno != 0 || port == 0 || port > UINT16_MAX)
                        FAIL(-EINVAL, "the port: a number within 1..65535 expected");
                p = end;
        }
        if (*p != '\0' && *p != '/' && *p != '?' && *p != '#')
                FAIL(-EINVAL, bracketed ? "after the host: ':PORT', '/' or '?' expected"
                                        : "the port or what follows it: '/' or '?' expected");
        if (strchr(p, '#'))
                FAIL(-EINVAL, "a fragment ('#'): CoAP URIs have none (RFC 7252 §6.1)");

        u.host = percent_decode(host, (size_t) (host_end - host));
        if (*p == '?') {
                /* "coap://h?q": the root with a query. */
                char *q = percent_decode(p, strlen(p));

                u.path = q ? malloc(strlen(q) + 2) : NULL;
                if (u.path) {
                        u.path[0] = '/';
                        strcpy(u.path + 1, q);
                }
                free(q);
        } else if (*p == '/')
                u.path = percent_decode(p, strlen(p));
        else
                u.path = strdup("/");
        if (!u.host || !u.path) {
                ctl_uri_done(&u);
                FAIL(-ENOMEM, "out of memory");
        }
        if (!parts_fit(u.path)) {
                ctl_uri_done(&u);
                FAIL(-EMSGSIZE, "the path or query: a segment or argument longer than 255 bytes");
        }
        u.host_is_literal = bracketed || is_ip_literal(u.host);
        u.port = (uint16_t) port;
        *ret = u;
        return 0;
}

void ctl_uri_done(CtlUri *u) {
        free(u->host);
        free(u->path);
        *u = (CtlUri){};
}

struct coap_client_option ctl_option_uint(uint16_t code, uint32_t v) {
        struct coap_client_option o = {.code = code};
        uint8_t be[4] = {(uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v};
        size_t skip = 0;

        while (skip < 4 && be[skip] == 0)
                skip++;
        o.len = (uint8_t) (4 - skip);
        memcpy(o.value, be + skip, o.len);
        return o;
}

int ctl_option_parse(const char *s, struct coap_client_option *ret) {
        struct coap_client_option o = {};
        const char *value;
        unsigned long number;
        char *end;

        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        number = strtoul(s, &end, 10);
        if (*end != ':' || number == 0 || number > UINT16_MAX)
                return -EINVAL;
        value = end + 1;
        o.code = (uint16_t) number;

        if (value[0] == '#') {
                unsigned long long v;

                if (!isdigit((unsigned char) value[1]))
                        return -EINVAL;
                errno = 0;
                v = strtoull(value + 1, &end, 10);
                if (errno != 0 || *end != '\0' || v > UINT32_MAX)
                        return -EINVAL;
                o = ctl_option_uint(o.code, (uint32_t) v);
        } else if (strncasecmp(value, "0x", 2) == 0) {
                size_t n = strlen(value + 2);

                if (n % 2 != 0)
                        return -EINVAL;
                if (n / 2 > MAX_COAP_CLIENT_OPTION_LEN)
                        return -EMSGSIZE;
                for (size_t i = 0; i < n / 2; i++) {
                        int hi = hex_value(value[2 + 2 * i]), lo = hex_value(value[3 + 2 * i]);

                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        o.value[i] = (uint8_t) (hi << 4 | lo);
                }
                o.len = (uint8_t) (n / 2);
        } else {
                size_t n = strlen(value);

                if (n > MAX_COAP_CLIENT_OPTION_LEN)
                        return -EMSGSIZE;
                memcpy(o.value, value, n);
                o.len = (uint8_t) n;
        }
        *ret = o;
        return 0;
}

int ctl_psk_parse(const char *s, uint8_t *buf, size_t size, size_t *ret_len) {
        size_t n;

        if (strncasecmp(s, "0x", 2) != 0) {
                n = strlen(s);
                if (n == 0 || n > size)
                        return -EINVAL;
                memcpy(buf, s, n);
                *ret_len = n;
                return 0;
        }
        s += 2;
        n = strlen(s);
        if (n == 0 || n % 2 != 0 || n / 2 > size)
                return -EINVAL;
        for (size_t i = 0; i < n / 2; i++) {
                int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return -EINVAL;
                buf[i] = (uint8_t) (hi << 4 | lo);
        }
        *ret_len = n / 2;
        return 0;
}

const char *ctl_tls_error_hint(int error) {
        switch (error) {
        case -EACCES:
                return "DTLS authentication failed: the server's certificate or key was not "
                       "accepted (see --ca, --server-name, --rpk-server), or the server rejected "
                       "ours.";
        case -ECONNREFUSED:
                return "The server refused the DTLS handshake (no common cipher suite, or an "
                       "unknown PSK identity).";
        case -ETIMEDOUT:
                return "No response over DTLS: the server is unreachable, or the handshake did "
                       "not complete (as with a wrong PSK key).";
        case -ECONNRESET:
                return "The server reset or closed the DTLS session.";
        default:
                return NULL;
        }
}

static const struct {
        const char *name;
        const char *media_type;
        uint16_t format;
} formats[] = {
        {"text", "text/plain", COAP_CONTENT_FORMAT_TEXT_PLAIN},
        {"link", "application/link-format", COAP_CONTENT_FORMAT_APP_LINK_FORMAT},
        {"xml", "application/xml", COAP_CONTENT_FORMAT_APP_XML},
        {"octet", "application/octet-stream", COAP_CONTENT_FORMAT_APP_OCTET_STREAM},
        {"exi", "application/exi", COAP_CONTENT_FORMAT_APP_EXI},
        {"json", "application/json", COAP_CONTENT_FORMAT_APP_JSON},
        {"cbor", "application/cbor", COAP_CONTENT_FORMAT_APP_CBOR},
};

int ctl_content_format_parse(const char *s, uint16_t *ret) {
        if (isdigit((unsigned char) *s)) {
                char *end;
                unsigned long v = strtoul(s, &end, 10);

                if (*end != '\0' || v > UINT16_MAX)
                        return -EINVAL;
                *ret = (uint16_t) v;
                return 0;
        }
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
                if (strcasecmp(s, formats[i].name) == 0 ||
                    strcasecmp(s, formats[i].media_type) == 0) {
                        *ret = formats[i].format;
                        return 0;
                }
        return -EINVAL;
}

const char *ctl_content_format_name(uint16_t format) {
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
                if (formats[i].format == format)
                        return formats[i].media_type;
        return NULL;
}

const char *ctl_code_name(int code) {
        switch (code) {
        case COAP_RESPONSE_CODE_OK:
                return "OK";
        case COAP_RESPONSE_CODE_CREATED:
                return "Created";
        case COAP_RESPONSE_CODE_DELETED:
                return "Deleted";
        case COAP_RESPONSE_CODE_VALID:
                return "Valid";
        case COAP_RESPONSE_CODE_CHANGED:
                return "Changed";
        case COAP_RESPONSE_CODE_CONTENT:
                return "Content";
        case COAP_RESPONSE_CODE_CONTINUE:
                return "Continue";
        case COAP_RESPONSE_CODE_BAD_REQUEST:
                return "Bad Request";
        case COAP_RESPONSE_CODE_UNAUTHORIZED:
                return "Unauthorized";
        case COAP_RESPONSE_CODE_BAD_OPTION:
                return "Bad Option";
        case COAP_RESPONSE_CODE_FORBIDDEN:
                return "Forbidden";
        case COAP_RESPONSE_CODE_NOT_FOUND:
                return "Not Found";
        case COAP_RESPONSE_CODE_NOT_ALLOWED:
                return "Method Not Allowed";
        case COAP_RESPONSE_CODE_NOT_ACCEPTABLE:
                return "Not Acceptable";
        case COAP_RESPONSE_CODE_INCOMPLETE:
                return "Request Entity Incomplete";
        case COAP_RESPONSE_CODE_CONFLICT:
                return "Conflict";
        case COAP_RESPONSE_CODE_PRECONDITION_FAILED:
                return "Precondition Failed";
        case COAP_RESPONSE_CODE_REQUEST_TOO_LARGE:
                return "Request Entity Too Large";
        case COAP_RESPONSE_CODE_UNSUPPORTED_CONTENT_FORMAT:
                return "Unsupported Content-Format";
        case COAP_RESPONSE_CODE_UNPROCESSABLE_ENTITY:
                return "Unprocessable Entity";
        case COAP_RESPONSE_CODE_TOO_MANY_REQUESTS:
                return "Too Many Requests";
        case COAP_RESPONSE_CODE_INTERNAL_ERROR:
                return "Internal Server Error";
        case COAP_RESPONSE_CODE_NOT_IMPLEMENTED:
                return "Not Implemented";
        case COAP_RESPONSE_CODE_BAD_GATEWAY:
                return "Bad Gateway";
        case COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE:
                return "Service Unavailable";
        case COAP_RESPONSE_CODE_GATEWAY_TIMEOUT:
                return "Gateway Timeout";
        case COAP_RESPONSE_CODE_PROXYING_NOT_SUPPORTED:
                return "Proxying Not Supported";
        default:
                return NULL;
        }
}

int ctl_exit_code(int code) {
        if (code >= 0)
                switch (COAP_RESPONSE_CODE_CLASS(code)) {
                case 2:
                        return CTL_EXIT_SUCCESS;
                case 4:
                        return CTL_EXIT_CLIENT_ERROR;
                case 5:
                        return CTL_EXIT_SERVER_ERROR;
                default:
                        return CTL_EXIT_PEER;
                }
        switch (code) {
        case -ETIMEDOUT:
                return CTL_EXIT_TIMEOUT;
        case -ECONNRESET:
        case -ECONNREFUSED:
        case -EHOSTUNREACH:
        case -ENETUNREACH:
        case -EACCES:
        case -EPROTO:
        case -EBADMSG:
                return CTL_EXIT_PEER;
        case -ECONNABORTED:
                return CTL_EXIT_DAEMON;
        default:
                return CTL_EXIT_FAILURE;
        }
}

int ctl_call_exit_code(int error) {
        switch (error) {
        case -ECONNREFUSED:
        case -ECONNABORTED:
        case -ENOENT:
        case -ENOTCONN:
        case -ECONNRESET:
        case -EHOSTDOWN:
        case -EACCES:
        case -EPERM:
                return CTL_EXIT_DAEMON;
        case -EINVAL:
                return CTL_EXIT_USAGE;
        default:
                return CTL_EXIT_FAILURE;
        }
}

const char *ctl_limit_hint(int error) {
        switch (error) {
        case -EAGAIN:
                return "coapclientd's limit of requests in flight per client "
                       "(MaxRequestsPerClient=) was reached.";
        case -ENOSPC:
                return "coapclientd's limit of clients per caller (MaxClientsPerCaller=) was "
                       "reached.";
        case -EMSGSIZE:
                return "The payload is larger than coapclientd accepts (MaxPayloadBytes=).";
        case -ENOBUFS:
                return "A daemon-wide limit of coapclientd was reached (MaxClients=, MaxRequests= "
                       "or the payload bytes in flight), or its queue for this caller is full.";
        case -EDQUOT:
                return "This user's quota in coapclientd was reached (MaxClientsPerUser=, "
                       "MaxRequestsPerUser=, MaxPayloadBytesPerUser=, MaxCallersPerUser= or "
                       "MaxChannelsPerUser=).";
        case -EUSERS:
                return "coapclientd serves its maximum of callers (MaxCallers=).";
        default:
                return NULL;
        }
}

void ctl_json_string(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                switch (*p) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                fprintf(f, "\\u%04x", *p);
                        else
                                fputc(*p, f);
                }
        fputc('"', f);
}

void ctl_json_base64(FILE *f, const uint8_t *buf, size_t len) {
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

        fputc('"', f);
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) buf[i] << 16;
                size_t n = len - i < 3 ? len - i : 3;

                if (n > 1)
                        v |= (uint32_t) buf[i + 1] << 8;
                if (n > 2)
                        v |= buf[i + 2];
                fputc(alphabet[v >> 18 & 0x3f], f);
                fputc(alphabet[v >> 12 & 0x3f], f);
                fputc(n > 1 ? alphabet[v >> 6 & 0x3f] : '=', f);
                fputc(n > 2 ? alphabet[v & 0x3f] : '=', f);
        }
        fputc('"', f);
}

bool ctl_is_text(const uint8_t *buf, size_t len) {
        for (size_t i = 0; i < len;) {
                uint8_t c = buf[i];
                uint32_t cp;
                size_t n;

                if (c == 0)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 2, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 3, cp = c & 0x07;
                else
                        return false;
                if (len - i <= n)
                        return false;
                for (size_t k = 1; k <= n; k++) {
                        if ((buf[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (buf[i + k] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += n + 1;
        }
        return true;
}
