/* SPDX-License-Identifier: MIT */

/* coapclientctl: one CoAP request (or observation) from the command line, through
 * libcoapclient and coapclientd. It makes its own UDP socket, connect()ed to the peer, and
 * runs the library in external-loop mode, so everything happens in this one thread. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl-util.h"
#include "internal/macro.h"

typedef struct Args {
        enum coap_method method;
        bool observe;
        const char *uri;
        bool non;
        int content_format; /* -1: none */
        const char *payload;
        const char *payload_file;
        const char *output;
        int block_szx; /* -1: default */
        struct coap_client_option options[COAP_CLIENT_MAX_EXTRA_OPTIONS];
        size_t n_options;
        double timeout;       /* seconds, 0: none */
        uint32_t ack_timeout; /* ms, 0: default */
        int retransmit;       /* -1: default */
        unsigned count;       /* observe: notifications before stopping, 0: no limit */
        bool verbose;
        int family;

        /* coaps:// */
        const char *psk_identity;
        bool has_psk;
        uint8_t psk[64]; /* from --psk-key, wiped from argv */
        size_t psk_len;
        const char *psk_key_file;
        const char *ca, *cert, *key, *rpk, *rpk_server, *server_name;
        bool insecure;
} Args;

/* What the callback reports to the loop. */
typedef struct Run {
        const Args *args;
        struct coap_client *client;
        bool secure;    /* coaps:// */
        bool uploading; /* a payload: callbacks carry the bytes sent as offset */
        FILE *out;
        bool progress; /* stderr is a terminal */
        bool done;     /* the request is over */
        bool stopping; /* observe: enough notifications, deregistering */
        int code;      /* the last code or error */
        unsigned notifications;
        size_t received; /* bytes of the current body */
        uint32_t size2;  /* 0: unknown */
        bool blockwise;  /* the current body came in more than one block */
        uint64_t start_usec;
        uint64_t drawn_usec; /* last progress line */
} Run;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static void help(void) {
        printf("Usage: coapclientctl COMMAND URI [OPTIONS]\n"
               "\n"
               "Sends one CoAP request through coapclientd and prints the response body.\n"
               "\n"
               "Commands:\n"
               "  get URI       GET the resource\n"
               "  put URI       PUT the payload\n"
               "  post URI      POST the payload\n"
               "  delete URI    DELETE the resource\n"
               "  observe URI   GET with Observe and print every notification\n"
               "\n"
               "URI: coap://HOST[:PORT][/PATH][?QUERY], HOST an IPv4 address, an IPv6 address\n"
               "in brackets or a host name; PORT defaults to 5683. coaps:// runs DTLS 1.2\n"
               "(default port 5684) with the credentials below.\n"
               "\n"
               "Options:\n"
               "  -n --non                   send a non-confirmable request\n"
               "  -c --content-format=FMT    Content-Format of the payload: a number or text,\n"
               "                             json, cbor, octet, link, xml, exi\n"
               "  -a --accept=FMT            ask for this Content-Format (Accept option)\n"
               "  -p --payload=TEXT          the request payload\n"
               "  -f --payload-file=FILE     read the payload from FILE ('-': stdin)\n"
               "  -o --output=FILE           write the response body to FILE\n"
               "  -b --block-size=N          block size, 16..1024 (default 1024)\n"
               "  -O --option=NUM:VALUE      add an option; VALUE is text, 0xHEX or #NUMBER\n"
               "  -t --timeout=SECONDS       give up (observe: stop) after SECONDS\n"
               "     --ack-timeout=MS        initial retransmission timeout (default 2000)\n"
               "     --retransmit=N          retransmissions of a confirmable message (default "
               "4)\n"
               "  -C --count=N               observe: stop after N notifications\n"
               "  -4 / -6                    use IPv4 / IPv6 only when resolving HOST\n"
               "  -v --verbose               show response codes and options on stderr\n"
               "  -h --help                  show this help\n"
               "     --version               show the version\n"
               "\n"
               "DTLS (coaps://), one of: a pre-shared key, X.509 certificates, raw public keys:\n"
               "     --psk-identity=ID       PSK identity\n"
               "     --psk-key=KEY           PSK as text or 0xHEX (visible to other users\n"
               "                             while starting: prefer --psk-key-file)\n"
               "     --psk-key-file=FILE     read the PSK (text or 0xHEX) from FILE\n"
               "     --ca=FILE               CA certificate(s) to verify the server with (PEM\n"
               "                             or DER; default: the system's trust store)\n"
               "     --cert=FILE --key=FILE  client certificate and its private key\n"
               "     --server-name=NAME      name the server certificate must match (default:\n"
               "                             the URI's host)\n"
               "     --rpk=KEYFILE           raw public keys: our private key\n"
               "     --rpk-server=PUBFILE    the server's public key (PEM or DER)\n"
               "     --insecure              do not verify the server (testing only)\n"
               "\n"
               "Exit status: 0 success (2.xx), 1 usage error, 2 CoAP client error (4.xx),\n"
               "3 CoAP server error (5.xx), 4 transport error (timeout, reset, refused,\n"
               "failed DTLS handshake, coapclientd unreachable).\n"
               "\n"
               "The bus is the system bus, or $COAPCLIENTD_BUS_ADDRESS when set.\n");
}

_printf_(1, 2) static int usage_error(const char *fmt, ...) {
        va_list ap;

        fputs("coapclientctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'coapclientctl --help'.\n", stderr);
        return -CTL_EXIT_USAGE;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *ret) {
        unsigned long v;
        char *end;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int add_option(Args *a, struct coap_client_option o) {
        if (a->n_options >= ELEMENTSOF(a->options))
                return usage_error("Too many options (at most %d).", COAP_CLIENT_MAX_EXTRA_OPTIONS);
        a->options[a->n_options++] = o;
        return 0;
}

/* The DTLS options make one of three modes, and only with coaps:// (checked with the URI). */
static int check_tls_args(const Args *a) {
        bool psk = a->psk_identity || a->has_psk || a->psk_key_file,
             x509 = a->ca || a->cert || a->key || a->server_name, rpk = a->rpk || a->rpk_server;

        if (a->has_psk && a->psk_key_file)
                return usage_error("%s", "--psk-key and --psk-key-file exclude each other.");
        if (psk && (!a->psk_identity || (!a->has_psk && !a->psk_key_file)))
                return usage_error("%s", "A PSK needs --psk-identity and --psk-key or "
                                         "--psk-key-file.");
        if (psk + x509 + rpk > 1)
                return usage_error("%s", "Choose one of a PSK, X.509 (--ca, --cert, --key, "
                                         "--server-name) and raw public keys (--rpk).");
        if (!a->cert != !a->key)
                return usage_error("%s", "--cert and --key go together.");
        if (a->rpk_server && !a->rpk)
                return usage_error("%s", "--rpk-server needs --rpk with our own key.");
        if (a->rpk && !a->rpk_server && !a->insecure)
                return usage_error("%s", "--rpk needs --rpk-server with the server's public key "
                                         "(or --insecure).");
        return 0;
}

static bool has_tls_args(const Args *a) {
        return a->psk_identity || a->has_psk || a->psk_key_file || a->ca || a->cert || a->key ||
               a->server_name || a->rpk || a->rpk_server || a->insecure;
}

/* Returns 0, or minus the exit code. */
static int parse_args(int argc, char *argv[], Args *a) {
        enum {
                ARG_ACK_TIMEOUT = 0x100,
                ARG_RETRANSMIT,
                ARG_VERSION,
                ARG_PSK_IDENTITY,
                ARG_PSK_KEY,
                ARG_PSK_KEY_FILE,
                ARG_CA,
                ARG_CERT,
                ARG_KEY,
                ARG_RPK,
                ARG_RPK_SERVER,
                ARG_SERVER_NAME,
                ARG_INSECURE,
        };
        static const struct option long_options[] = {
                {"non", no_argument, NULL, 'n'},
                {"content-format", required_argument, NULL, 'c'},
                {"accept", required_argument, NULL, 'a'},
                {"payload", required_argument, NULL, 'p'},
                {"payload-file", required_argument, NULL, 'f'},
                {"output", required_argument, NULL, 'o'},
                {"block-size", required_argument, NULL, 'b'},
                {"option", required_argument, NULL, 'O'},
                {"timeout", required_argument, NULL, 't'},
                {"ack-timeout", required_argument, NULL, ARG_ACK_TIMEOUT},
                {"retransmit", required_argument, NULL, ARG_RETRANSMIT},
                {"count", required_argument, NULL, 'C'},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {"psk-identity", required_argument, NULL, ARG_PSK_IDENTITY},
                {"psk-key", required_argument, NULL, ARG_PSK_KEY},
                {"psk-key-file", required_argument, NULL, ARG_PSK_KEY_FILE},
                {"ca", required_argument, NULL, ARG_CA},
                {"cert", required_argument, NULL, ARG_CERT},
                {"key", required_argument, NULL, ARG_KEY},
                {"rpk", required_argument, NULL, ARG_RPK},
                {"rpk-server", required_argument, NULL, ARG_RPK_SERVER},
                {"server-name", required_argument, NULL, ARG_SERVER_NAME},
                {"insecure", no_argument, NULL, ARG_INSECURE},
                {},
        };
        static const struct {
                const char *name;
                enum coap_method method;
        } commands[] = {
                {"get", COAP_METHOD_GET},     {"put", COAP_METHOD_PUT},
                {"post", COAP_METHOD_POST},   {"delete", COAP_METHOD_DELETE},
                {"observe", COAP_METHOD_GET},
        };
        const char *command;
        unsigned long v;
        uint16_t fmt;
        char *end;
        int c, r;

        *a = (Args){
                .content_format = -1,
                .block_szx = -1,
                .retransmit = -1,
                .family = AF_UNSPEC,
        };
        while ((c = getopt_long(argc, argv, "nc:a:p:f:o:b:O:t:C:v46h", long_options, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        a->non = true;
                        break;
                case 'c':
                        if (ctl_content_format_parse(optarg, &fmt) < 0)
                                return usage_error("Unknown content format '%s'.", optarg);
                        a->content_format = fmt;
                        break;
                case 'a':
                        if (ctl_content_format_parse(optarg, &fmt) < 0)
                                return usage_error("Unknown content format '%s'.", optarg);
                        r = add_option(a, ctl_option_uint(COAP_OPTION_ACCEPT, fmt));
                        if (r < 0)
                                return r;
                        break;
                case 'p':
                        a->payload = optarg;
                        break;
                case 'f':
                        a->payload_file = optarg;
                        break;
                case 'o':
                        a->output = optarg;
                        break;
                case 'b':
                        if (parse_uint(optarg, 1024, &v) < 0 || v < 16 || (v & (v - 1)) != 0)
                                return usage_error("Block size '%s' is not a power of two "
                                                   "within 16..1024.",
                                                   optarg);
                        a->block_szx = __builtin_ctzl(v) - 4;
                        break;
                case 'O': {
                        struct coap_client_option o;

                        if (ctl_option_parse(optarg, &o) < 0)
                                return usage_error("Bad option '%s' (NUM:VALUE, VALUE text of "
                                                   "at most 12 bytes, 0xHEX or #NUMBER).",
                                                   optarg);
                        r = add_option(a, o);
                        if (r < 0)
                                return r;
                        break;
                }
                case 't':
                        errno = 0;
                        a->timeout = strtod(optarg, &end);
                        if (errno != 0 || *end != '\0' || !(a->timeout > 0) || a->timeout > 1e9)
                                return usage_error("Bad timeout '%s'.", optarg);
                        break;
                case ARG_ACK_TIMEOUT:
                        if (parse_uint(optarg, 600000, &v) < 0 || v == 0)
                                return usage_error("Bad ACK timeout '%s'.", optarg);
                        a->ack_timeout = (uint32_t) v;
                        break;
                case ARG_RETRANSMIT:
                        if (parse_uint(optarg, 20, &v) < 0)
                                return usage_error("Bad retransmission count '%s' (0..20).",
                                                   optarg);
                        a->retransmit = (int) v;
                        break;
                case 'C':
                        if (parse_uint(optarg, UINT32_MAX, &v) < 0 || v == 0)
                                return usage_error("Bad count '%s'.", optarg);
                        a->count = (unsigned) v;
                        break;
                case 'v':
                        a->verbose = true;
                        break;
                case '4':
                        a->family = AF_INET;
                        break;
                case '6':
                        a->family = AF_INET6;
                        break;
                case 'h':
                        help();
                        return 1;
                case ARG_VERSION:
                        printf("coapclientctl %s\n", PACKAGE_VERSION);
                        return 1;
                case ARG_PSK_IDENTITY:
                        if (optarg[0] == '\0')
                                return usage_error("%s", "Empty PSK identity.");
                        a->psk_identity = optarg;
                        break;
                case ARG_PSK_KEY:
                        if (ctl_psk_parse(optarg, a->psk, sizeof(a->psk), &a->psk_len) < 0)
                                return usage_error("%s", "Bad PSK (1..64 bytes, text or 0xHEX).");
                        a->has_psk = true;
                        /* Out of /proc/PID/cmdline. */
                        memset(optarg, 'x', strlen(optarg));
                        break;
                case ARG_PSK_KEY_FILE:
                        a->psk_key_file = optarg;
                        break;
                case ARG_CA:
                        a->ca = optarg;
                        break;
                case ARG_CERT:
                        a->cert = optarg;
                        break;
                case ARG_KEY:
                        a->key = optarg;
                        break;
                case ARG_RPK:
                        a->rpk = optarg;
                        break;
                case ARG_RPK_SERVER:
                        a->rpk_server = optarg;
                        break;
                case ARG_SERVER_NAME:
                        if (optarg[0] == '\0')
                                return usage_error("%s", "Empty server name.");
                        a->server_name = optarg;
                        break;
                case ARG_INSECURE:
                        a->insecure = true;
                        break;
                default:
                        return -CTL_EXIT_USAGE;
                }
        }

        if (optind + 2 != argc)
                return usage_error("Expected a COMMAND and a URI%s.",
                                   optind + 2 < argc ? ", and nothing more" : "");
        command = argv[optind];
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(command, commands[i].name) == 0) {
                        a->method = commands[i].method;
                        a->observe = strcmp(command, "observe") == 0;
                }
        if (a->method == 0)
                return usage_error("Unknown command '%s'.", command);
        a->uri = argv[optind + 1];
        if (a->payload && a->payload_file)
                return usage_error("%s", "--payload and --payload-file exclude each other.");
        if (a->count > 0 && !a->observe)
                return usage_error("%s", "--count only applies to observe.");
        r = check_tls_args(a);
        if (r < 0)
                return r;
        if (a->observe)
                r = add_option(a, (struct coap_client_option){.code = COAP_OPTION_OBSERVE});
        else
                r = 0;
        return r;
}

static int read_all(int fd, uint8_t **ret, size_t *ret_len) {
        size_t len = 0, size = 0;
        uint8_t *buf = NULL;

        for (;;) {
                ssize_t n;

                if (len == size) {
                        uint8_t *b;

                        size = size ? size * 2 : 64 * 1024;
                        b = realloc(buf, size);
                        if (!b) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = b;
                }
                n = read(fd, buf + len, size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        free(buf);
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static int read_file(const char *path, uint8_t **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return read_all(fd, ret, ret_len);
}

static int load_payload(const Args *a, uint8_t **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        *ret = NULL;
        *ret_len = 0;
        if (a->payload) {
                *ret = (uint8_t *) strdup(a->payload);
                *ret_len = strlen(a->payload);
                return *ret ? 0 : -ENOMEM;
        }
        if (!a->payload_file)
                return 0;
        if (strcmp(a->payload_file, "-") == 0)
                return read_all(STDIN_FILENO, ret, ret_len);
        fd = open(a->payload_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = read_all(fd, ret, ret_len);
        return r;
}

/* A UDP socket connect()ed to the URI's host. */
static int open_socket(const Args *a, const CtlUri *uri) {
        struct addrinfo hints = {.ai_family = a->family, .ai_socktype = SOCK_DGRAM}, *res;
        char port[8];
        int fd = -EBADF, r;

        snprintf(port, sizeof(port), "%u", uri->port);
        r = getaddrinfo(uri->host, port, &hints, &res);
        if (r != 0) {
                fprintf(stderr, "coapclientctl: Cannot resolve '%s': %s\n", uri->host,
                        gai_strerror(r));
                return -EHOSTUNREACH;
        }
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
                        continue;
                fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) >= 0)
                        break;
                r = -errno;
                fd = safe_close(fd);
        }
        freeaddrinfo(res);
        if (fd < 0)
                fprintf(stderr, "coapclientctl: Cannot reach '%s': %s\n", uri->host,
                        strerror(r < 0 ? -r : EHOSTUNREACH));
        return fd;
}

static void print_code(int code) {
        const char *name = ctl_code_name(code);

        fprintf(stderr, "%d.%02d%s%s\n", COAP_RESPONSE_CODE_CLASS(code),
                COAP_RESPONSE_CODE_DETAIL(code), name ? " " : "", name ?: "");
}

static void print_details(int code) {
        struct coap_client_response_info info;

        print_code(code);
        if (coap_client_get_response_info(&info) < 0)
                return;
        if (info.has_content_format) {
                const char *name = ctl_content_format_name(info.content_format);

                fprintf(stderr, "Content-Format: %u%s%s%s\n", info.content_format, name ? " (" : "",
                        name ?: "", name ? ")" : "");
        }
        if (info.has_observe)
                fprintf(stderr, "Observe: %u\n", info.observe);
        if (info.has_size2)
                fprintf(stderr, "Size2: %u\n", info.size2);
        if (info.etag_len > 0) {
                fprintf(stderr, "ETag: 0x");
                for (size_t i = 0; i < info.etag_len; i++)
                        fprintf(stderr, "%02x", info.etag[i]);
                fprintf(stderr, "\n");
        }
}

static void show_progress(Run *run, bool last) {
        uint64_t now = now_usec();
        double secs = (double) (now - run->start_usec) / 1e6;
        double rate = secs > 0 ? (double) run->received / 1024.0 / secs : 0;

        /* At most ten redraws a second. */
        if (!last && now - run->drawn_usec < USEC_PER_SEC / 10)
                return;
        run->drawn_usec = now;

        if (run->size2 > 0)
                fprintf(stderr, "\r\033[K%zu / %u bytes (%u%%), %.1f KiB/s", run->received,
                        run->size2, (unsigned) (run->received * 100 / run->size2), rate);
        else
                fprintf(stderr, "\r\033[K%zu bytes, %.1f KiB/s", run->received, rate);
        if (last)
                fprintf(stderr, "\n");
}

static void response_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                        bool last_block, void *user_data) {
        Run *run = user_data;
        struct coap_client_response_info info;

        run->code = code;
        if (code < 0) {
                const char *hint = run->secure ? ctl_tls_error_hint(code) : NULL;

                /* A non-confirmable deregistration ends with -ECANCELED. */
                if (!(run->stopping && code == -ECANCELED)) {
                        fprintf(stderr, "coapclientctl: Request failed: %s\n", strerror(-code));
                        if (hint)
                                fprintf(stderr, "coapclientctl: %s\n", hint);
                } else
                        run->code = COAP_RESPONSE_CODE_CONTENT;
                run->done = true;
                return;
        }

        /* The first block of a response; for an upload, the answer to its last block (the
         * answers before it, 2.31 Continue, only report progress). */
        if (run->uploading ? last_block : offset == 0) {
                run->received = 0;
                run->size2 = 0;
                run->blockwise = !last_block;
                if (run->args->verbose)
                        print_details(code);
                else if (COAP_RESPONSE_CODE_CLASS(code) != 2)
                        print_code(code);
        }
        if (coap_client_get_response_info(&info) >= 0 && info.has_size2)
                run->size2 = info.size2;
        /* The answer to a deregistration repeats the last notification. */
        if (run->stopping)
                len = 0;
        if (len > 0 && fwrite(payload, 1, len, run->out) != len) {
                fprintf(stderr, "coapclientctl: Cannot write the response: %m\n");
                run->code = -EIO;
                run->done = true;
                coap_client_cancel_requests(run->client);
                return;
        }
        run->received = offset + len;
        if (run->progress && run->blockwise && !run->args->observe)
                show_progress(run, last_block);
        if (!last_block)
                return;

        if (run->args->observe && !run->stopping && COAP_RESPONSE_CODE_CLASS(code) == 2) {
                /* One notification complete: one per line. */
                if (len > 0 && payload[len - 1] != '\n')
                        fputc('\n', run->out);
                fflush(run->out);
                run->notifications++;
                if (run->args->count > 0 && run->notifications >= run->args->count) {
                        const struct coap_client_request match = {.method = COAP_METHOD_GET};

                        /* Deregister; the server's answer is the final callback. */
                        run->stopping = true;
                        if (coap_client_deregister_observe(run->client, &match) < 0) {
                                coap_client_cancel_requests(run->client);
                                run->code = COAP_RESPONSE_CODE_CONTENT;
                                run->done = true;
                        }
                }
        }
        /* The library forgets a request before its final callback: also an observation the
         * server did not take, or ended. */
        if (!coap_client_has_ongoing_exchange(run->client))
                run->done = true;
}

/* Adds the contents of path as a credential of tag; key material is wiped afterwards. */
static int add_file_credential(int tag, enum coap_client_tls_credential_type type,
                               const char *path) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int r;

        r = read_file(path, &buf, &len);
        if (r < 0) {
                fprintf(stderr, "coapclientctl: Cannot read '%s': %s\n", path, strerror(-r));
                return -CTL_EXIT_USAGE;
        }
        r = len > 0 ? coap_client_tls_credential_add(tag, type, buf, len) : -EINVAL;
        explicit_bzero(buf, len);
        free(buf);
        if (r < 0) {
                fprintf(stderr, "coapclientctl: Cannot use '%s': %s\n", path, strerror(-r));
                return -CTL_EXIT_USAGE;
        }
        return 0;
}

/* The PSK of --psk-key-file: text or 0xHEX as for --psk-key, one trailing newline ignored. */
static int load_psk_file(Args *a) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int r;

        r = read_file(a->psk_key_file, &buf, &len);
        if (r < 0) {
                fprintf(stderr, "coapclientctl: Cannot read '%s': %s\n", a->psk_key_file,
                        strerror(-r));
                return -CTL_EXIT_USAGE;
        }
        if (len > 0 && buf[len - 1] == '\n')
                len--;
        if (len > 0 && buf[len - 1] == '\r')
                len--;
        r = -EINVAL;
        if (len < 2 * sizeof(a->psk) + 3 && !memchr(buf, '\0', len)) {
                char text[2 * sizeof(a->psk) + 3];

                memcpy(text, buf, len);
                text[len] = '\0';
                r = ctl_psk_parse(text, a->psk, sizeof(a->psk), &a->psk_len);
                explicit_bzero(text, sizeof(text));
        }
        explicit_bzero(buf, len);
        free(buf);
        if (r < 0) {
                fprintf(stderr, "coapclientctl: Bad PSK in '%s' (1..64 bytes, text or 0xHEX).\n",
                        a->psk_key_file);
                return -CTL_EXIT_USAGE;
        }
        a->has_psk = true;
        return 0;
}

/* Registers the credentials of the command line under one tag and gives them to the client.
 * Returns 0 or minus the exit code. */
static int setup_tls(Args *a, const CtlUri *uri, struct coap_client *client) {
        static const int tags[] = {1};
        const char *hostname = NULL;
        bool any = true;
        int r = 0;

        if (a->psk_key_file) {
                r = load_psk_file(a);
                if (r < 0)
                        return r;
        }
        if (a->has_psk) {
                r = coap_client_tls_credential_add(tags[0], COAP_CLIENT_TLS_CREDENTIAL_PSK_ID,
                                                   a->psk_identity, strlen(a->psk_identity));
                if (r >= 0)
                        r = coap_client_tls_credential_add(tags[0], COAP_CLIENT_TLS_CREDENTIAL_PSK,
                                                           a->psk, a->psk_len);
                explicit_bzero(a->psk, sizeof(a->psk));
                if (r < 0) {
                        fprintf(stderr, "coapclientctl: Bad PSK identity: %s\n", strerror(-r));
                        return -CTL_EXIT_USAGE;
                }
        } else if (a->rpk) {
                r = add_file_credential(tags[0], COAP_CLIENT_TLS_CREDENTIAL_PRIVATE_KEY, a->rpk);
                if (r >= 0 && a->rpk_server)
                        r = add_file_credential(tags[0], COAP_CLIENT_TLS_CREDENTIAL_RAW_PUBLIC_KEY,
                                                a->rpk_server);
        } else {
                hostname = a->server_name ?: uri->host;
                if (a->ca)
                        r = add_file_credential(tags[0], COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE,
                                                a->ca);
                if (r >= 0 && a->cert)
                        r = add_file_credential(
                                tags[0], COAP_CLIENT_TLS_CREDENTIAL_SERVER_CERTIFICATE, a->cert);
                if (r >= 0 && a->key)
                        r = add_file_credential(tags[0], COAP_CLIENT_TLS_CREDENTIAL_PRIVATE_KEY,
                                                a->key);
                any = a->ca || a->cert;
        }
        if (r < 0)
                return r;

        r = coap_client_set_tls(client, any ? tags : NULL, any ? 1 : 0, hostname,
                                a->insecure ? COAP_CLIENT_TLS_INSECURE : 0);
        if (r == -EINVAL || r == -ENOENT) {
                fprintf(stderr, "coapclientctl: coapclientd did not accept the credentials "
                                "(a certificate or key it cannot load?).\n");
                return -CTL_EXIT_USAGE;
        }
        if (r < 0) {
                fprintf(stderr, "coapclientctl: Cannot set up DTLS: %s\n", strerror(-r));
                return -CTL_EXIT_TRANSPORT;
        }
        return 0;
}

static int setup_signals(void) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Runs the loop until the request is over; returns the exit code. */
static int run_loop(Run *run, int sig_fd) {
        uint64_t deadline = run->args->timeout > 0
                                    ? now_usec() + (uint64_t) (run->args->timeout * 1e6)
                                    : UINT64_MAX;
        int lib_fd = coap_client_get_fd();

        while (!run->done) {
                struct pollfd p[2] = {
                        {.fd = lib_fd, .events = POLLIN},
                        {.fd = sig_fd, .events = POLLIN},
                };
                uint64_t t = coap_client_get_timeout_usec(), now = now_usec();
                bool interrupted;
                int ms;

                if (now >= deadline)
                        t = 0;
                else if (deadline - now < t)
                        t = deadline - now;
                ms = t == UINT64_MAX ? -1 : (int) MIN((t + 999) / 1000, (uint64_t) INT32_MAX);
                if (poll(p, 2, ms) < 0 && errno != EINTR) {
                        fprintf(stderr, "coapclientctl: poll() failed: %m\n");
                        return CTL_EXIT_TRANSPORT;
                }
                interrupted = p[1].revents & POLLIN;
                (void) coap_client_process();
                if (run->done)
                        break;
                if (!coap_client_has_ongoing_exchange(run->client)) {
                        /* Forgotten without a callback: a NON request got no response. */
                        fprintf(stderr, "coapclientctl: No response.\n");
                        return CTL_EXIT_TRANSPORT;
                }
                if (interrupted || now_usec() >= deadline) {
                        coap_client_cancel_requests(run->client);
                        /* An observation ends this way normally. */
                        if (run->args->observe && run->notifications > 0)
                                return CTL_EXIT_SUCCESS;
                        if (!interrupted)
                                fprintf(stderr, "coapclientctl: Timed out.\n");
                        return CTL_EXIT_TRANSPORT;
                }
        }
        return ctl_exit_code(run->code);
}

static int run(Args *a) {
        _cleanup_free_ uint8_t *payload = NULL;
        _cleanup_close_ int sock = -EBADF, sig_fd = -EBADF;
        struct coap_transmission_parameters params;
        struct coap_client client = {};
        struct coap_client_request req;
        _cleanup_(ctl_uri_done) CtlUri uri = {};
        size_t payload_len;
        Run state;
        FILE *out = stdout;
        int r;

        r = ctl_uri_parse(a->uri, &uri);
        if (r == -EPROTONOSUPPORT)
                return -usage_error("Unsupported URI scheme in '%s' (coap:// or coaps://).",
                                    a->uri);
        if (r < 0)
                return -usage_error("Bad URI '%s'.", a->uri);
        if (!uri.secure && has_tls_args(a))
                return -usage_error("%s", "The DTLS options need a coaps:// URI.");
        if (uri.secure && !has_tls_args(a))
                return -usage_error("%s", "coaps:// needs credentials: --psk-identity with "
                                          "--psk-key or --psk-key-file, --ca, --cert with --key, "
                                          "or --rpk.");
        if (a->insecure)
                fprintf(stderr, "coapclientctl: Warning: --insecure: the server is not verified, "
                                "anyone on the path can read and change this exchange.\n");
        r = load_payload(a, &payload, &payload_len);
        if (r < 0) {
                fprintf(stderr, "coapclientctl: Cannot read the payload: %s\n", strerror(-r));
                return CTL_EXIT_USAGE;
        }
        if (a->output) {
                out = fopen(a->output, "we");
                if (!out) {
                        fprintf(stderr, "coapclientctl: Cannot open '%s': %m\n", a->output);
                        return CTL_EXIT_USAGE;
                }
        }

        sock = open_socket(a, &uri);
        sig_fd = setup_signals();
        r = sock < 0 ? CTL_EXIT_TRANSPORT : 0;
        if (r == 0 && sig_fd < 0) {
                fprintf(stderr, "coapclientctl: Cannot set up signals: %s\n", strerror(-sig_fd));
                r = CTL_EXIT_TRANSPORT;
        }
        if (r == 0) {
                (void) coap_client_loop_external();
                r = coap_client_init(&client, "coapclientctl");
                if (r < 0) {
                        fprintf(stderr, "coapclientctl: Cannot reach coapclientd: %s\n",
                                strerror(-r));
                        r = CTL_EXIT_TRANSPORT;
                }
        }
        if (r == 0 && uri.secure)
                r = -setup_tls(a, &uri, &client);
        if (r == 0 && a->block_szx >= 0)
                (void) coap_client_set_block_size(&client, (enum coap_block_size) a->block_szx);

        if (r == 0) {
                state = (Run){
                        .args = a,
                        .client = &client,
                        .secure = uri.secure,
                        .uploading = payload_len > 0,
                        .out = out,
                        .progress = isatty(STDERR_FILENO),
                        .start_usec = now_usec(),
                };
                req = (struct coap_client_request){
                        .method = a->method,
                        .confirmable = !a->non,
                        .path = uri.path,
                        .fmt = a->content_format >= 0 ? (enum coap_content_format) a->content_format
                                                      : COAP_CONTENT_FORMAT_TEXT_PLAIN,
                        .payload = a->payload || a->payload_file ? payload : NULL,
                        .len = payload_len,
                        .cb = response_cb,
                        .options = a->options,
                        .num_options = (uint8_t) a->n_options,
                        .user_data = &state,
                };
                params = coap_get_transmission_parameters();
                if (a->ack_timeout > 0)
                        params.ack_timeout = a->ack_timeout;
                if (a->retransmit >= 0)
                        params.max_retransmission = (uint8_t) a->retransmit;
                r = coap_client_req(&client, sock, NULL, &req, &params);
                if (r < 0) {
                        fprintf(stderr, "coapclientctl: Cannot send the request: %s\n",
                                strerror(-r));
                        r = r == -EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_TRANSPORT;
                } else
                        r = run_loop(&state, sig_fd);
        }

        coap_client_deinit(&client);
        if (out != stdout && fclose(out) != 0 && r == 0) {
                fprintf(stderr, "coapclientctl: Cannot write '%s': %m\n", a->output);
                r = CTL_EXIT_TRANSPORT;
        } else if (out == stdout && fflush(stdout) != 0 && r == 0)
                r = CTL_EXIT_TRANSPORT;
        return r;
}

int main(int argc, char *argv[]) {
        Args args;
        int r;

        r = parse_args(argc, argv, &args);
        if (r > 0)
                return CTL_EXIT_SUCCESS;
        if (r < 0)
                return -r;
        r = run(&args);
        explicit_bzero(args.psk, sizeof(args.psk));
        return r;
}
