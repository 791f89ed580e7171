/* SPDX-License-Identifier: MIT */

/* coapclientctl: one CoAP request (or observation) from the command line, through
 * libcoapclient and coapclientd. It makes its own UDP socket, connect()ed to the peer, and
 * runs the library in external-loop mode, so everything happens in this one thread. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
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
#include "ctl-bus.h"
#include "ctl-util.h"
#include "internal/macro.h"
#include "link-format.h"

typedef enum Verb {
        VERB_REQUEST,
        VERB_OBSERVE,
        VERB_DISCOVER,
        VERB_STATUS,  /* no URI: coapclientd itself */
        VERB_MONITOR, /* no URI */
} Verb;

typedef struct Args {
        enum coap_method method;
        Verb verb;
        bool observe;
        bool json;
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
        const char *interface; /* discover to a group: send it out of this interface */

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
        FILE *out;      /* NULL: the body goes to body (discover) */
        char *body;     /* discover: the 2.xx body collected */
        size_t body_len;
        bool progress; /* stderr is a terminal */
        bool done;     /* the request is over */
        bool stopping; /* observe: enough notifications, deregistering */
        bool ending;   /* cancelled by us (--timeout, a signal): no error for -ECANCELED */
        bool write_failed;
        bool json;           /* each response as a JSON line on stdout */
        bool group;          /* discover to a multicast group */
        unsigned responders; /* discover to a group: members that answered with links */
        struct coap_client_response_info info; /* json: of the current response */
        int code;                              /* the last code or error */
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
        printf("Usage: coapclientctl COMMAND [URI] [OPTIONS]\n"
               "\n"
               "Sends one CoAP request through coapclientd and prints the response body,\n"
               "or shows what coapclientd does.\n"
               "\n"
               "Commands:\n"
               "  get URI       GET the resource\n"
               "  put URI       PUT the payload\n"
               "  post URI      POST the payload\n"
               "  delete URI    DELETE the resource\n"
               "  fetch URI     FETCH with the payload as the query (RFC 8132)\n"
               "  patch URI     PATCH the resource with the payload (RFC 8132)\n"
               "  ipatch URI    iPATCH: an idempotent PATCH (RFC 8132)\n"
               "  observe URI   GET with Observe and print every notification\n"
               "  discover URI  list the resources of /.well-known/core (RFC 6690)\n"
               "  status        coapclientd's version, limits, defaults, counters and\n"
               "                callers (all for root, one's own for others)\n"
               "  monitor       show requests as they start and end (root only)\n"
               "\n"
               "URI: coap://HOST[:PORT][/PATH][?QUERY], HOST an IPv4 address, an IPv6 address\n"
               "in brackets or a host name (sent as Uri-Host); PORT defaults to 5683.\n"
               "discover to a multicast group (e.g. coap://[ff02::fd]/) asks every member\n"
               "with a NON request and lists each one's links under its address for the\n"
               "--timeout window (default 2 s); other verbs cannot ask a group.\n"
               "coaps:// runs DTLS 1.2 (default port 5684) with the credentials below.\n"
               "\n"
               "Options:\n"
               "  -n --non                   send a non-confirmable request\n"
               "  -c --content-format=FMT    Content-Format of the payload (none unless given):\n"
               "                             a number or text, json, cbor, octet, link, xml, exi\n"
               "  -a --accept=FMT            ask for this Content-Format (Accept option)\n"
               "  -p --payload=TEXT          the request payload\n"
               "  -f --payload-file=FILE     read the payload from FILE ('-': stdin)\n"
               "  -o --output=FILE           write the response body to FILE, only on 2.xx\n"
               "  -b --block-size=N          block size, 16..1024 (default 1024); downloads\n"
               "                             ask for it from the first block\n"
               "  -O --option=NUM:VALUE      add an option; VALUE is text, 0xHEX or #NUMBER\n"
               "                             (at most %d bytes)\n"
               "  -t --timeout=SECONDS       give up (observe: stop) after SECONDS; discover\n"
               "                             to a group: collect answers for SECONDS\n"
               "     --interface=NAME        discover to a group: send it out of NAME\n"
               "                             (default: as the routing table says)\n"
               "     --ack-timeout=MS        initial retransmission timeout (default 2000)\n"
               "     --retransmit=N          retransmissions of a CON message (default 4)\n"
               "  -C --count=N               observe: stop after N notifications;\n"
               "                             monitor: after N requests ended\n"
               "  -4 / -6                    use IPv4 / IPv6 only when resolving HOST\n"
               "  -j --json                  print JSON: the response (code, options, payload\n"
               "                             or payload_base64; observe: one per line), the\n"
               "                             links of discover, status, monitor events\n"
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
               "Exit status: 0 success (2.xx), 1 other failure (e.g. a limit of coapclientd),\n"
               "2 usage error, 3 coapclientd unreachable, 4 no response (timeout), 5 the peer\n"
               "refused (RST, ICMP error, failed DTLS handshake, unknown host), 6 CoAP 4.xx,\n"
               "7 CoAP 5.xx, 8 local I/O error; 130/143 after SIGINT/SIGTERM.\n"
               "\n"
               "The bus is the system bus, or $COAPCLIENTD_BUS_ADDRESS when set.\n",
               MAX_COAP_CLIENT_OPTION_LEN);
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
                ARG_INTERFACE,
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
                {"interface", required_argument, NULL, ARG_INTERFACE},
                {"retransmit", required_argument, NULL, ARG_RETRANSMIT},
                {"count", required_argument, NULL, 'C'},
                {"json", no_argument, NULL, 'j'},
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
                Verb verb;
        } commands[] = {
                {"get", COAP_METHOD_GET, VERB_REQUEST},
                {"put", COAP_METHOD_PUT, VERB_REQUEST},
                {"post", COAP_METHOD_POST, VERB_REQUEST},
                {"delete", COAP_METHOD_DELETE, VERB_REQUEST},
                {"fetch", COAP_METHOD_FETCH, VERB_REQUEST},
                {"patch", COAP_METHOD_PATCH, VERB_REQUEST},
                {"ipatch", COAP_METHOD_IPATCH, VERB_REQUEST},
                {"observe", COAP_METHOD_GET, VERB_OBSERVE},
                {"discover", COAP_METHOD_GET, VERB_DISCOVER},
                {"status", 0, VERB_STATUS},
                {"monitor", 0, VERB_MONITOR},
        };
        const char *command;
        bool known;
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
        while ((c = getopt_long(argc, argv, "nc:a:p:f:o:b:O:t:C:jv46h", long_options, NULL)) >= 0) {
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

                        r = ctl_option_parse(optarg, &o);
                        if (r == -EMSGSIZE)
                                return usage_error("Option value of '%s' too long: at most %d "
                                                   "bytes.",
                                                   optarg, MAX_COAP_CLIENT_OPTION_LEN);
                        if (r < 0)
                                return usage_error("Bad option '%s' (NUM:VALUE, NUM 1..65535, "
                                                   "VALUE text, 0xHEX or #NUMBER).",
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
                case ARG_INTERFACE:
                        a->interface = optarg;
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
                case 'j':
                        a->json = true;
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
                        /* getopt_long() said what is wrong. */
                        fputs("Try 'coapclientctl --help'.\n", stderr);
                        return -CTL_EXIT_USAGE;
                }
        }

        if (optind >= argc)
                return usage_error("%s", "Expected a COMMAND.");
        command = argv[optind];
        known = false;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(command, commands[i].name) == 0) {
                        a->method = commands[i].method;
                        a->verb = commands[i].verb;
                        known = true;
                }
        if (!known)
                return usage_error("Unknown command '%s'.", command);
        if (a->verb == VERB_STATUS || a->verb == VERB_MONITOR) {
                if (optind + 1 != argc)
                        return usage_error("%s takes no URI.", command);
                if (a->count > 0 && a->verb != VERB_MONITOR)
                        return usage_error("%s", "--count applies to observe and monitor.");
                return 0;
        }
        if (optind + 2 != argc)
                return usage_error("Expected a COMMAND and a URI%s.",
                                   optind + 2 < argc ? ", and nothing more" : "");
        a->observe = a->verb == VERB_OBSERVE;
        a->uri = argv[optind + 1];
        if (a->payload && a->payload_file)
                return usage_error("%s", "--payload and --payload-file exclude each other.");
        if (a->count > 0 && !a->observe)
                return usage_error("%s", "--count applies to observe and monitor.");
        if (a->json && a->output)
                return usage_error("%s", "--json writes the body into its output: no --output.");
        if (a->verb == VERB_DISCOVER && (a->payload || a->payload_file || a->output))
                return usage_error("%s", "discover takes no payload and no --output.");
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

/* discover to a group: an unconnected socket (the answers come from the members' own
 * addresses) that loops its requests back to local members and leaves by --interface; *group
 * is where to send. */
static int open_group_socket(const Args *a, const CtlUri *uri, struct sockaddr_storage *group) {
        struct addrinfo hints = {.ai_family = a->family,
                                 .ai_socktype = SOCK_DGRAM,
                                 .ai_flags = AI_NUMERICHOST},
                        *res;
        unsigned ifindex = 0;
        char port[8];
        int fd, r, one = 1;

        if (a->interface) {
                ifindex = if_nametoindex(a->interface);
                if (ifindex == 0) {
                        fprintf(stderr, "coapclientctl: No interface '%s': %m\n", a->interface);
                        return -ENODEV;
                }
        }
        snprintf(port, sizeof(port), "%u", uri->port);
        r = getaddrinfo(uri->host, port, &hints, &res);
        if (r != 0) {
                fprintf(stderr, "coapclientctl: Bad group '%s': %s\n", uri->host, gai_strerror(r));
                return -EINVAL;
        }
        memcpy(group, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);

        fd = socket(group->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                r = -errno;
        else if (group->ss_family == AF_INET) {
                struct ip_mreqn m = {.imr_ifindex = (int) ifindex};
                unsigned char loop = 1;

                if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop)) < 0 ||
                    (ifindex > 0 && setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof(m)) < 0))
                        r = -errno;
        } else if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof(one)) < 0 ||
                   (ifindex > 0 &&
                    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex)) < 0))
                r = -errno;
        if (r < 0) {
                fprintf(stderr, "coapclientctl: Cannot set up a socket for the group '%s': %s\n",
                        uri->host, strerror(-r));
                safe_close(fd);
                return r;
        }
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

/* The body of a 2.xx response goes to the output (discover: to memory), any other body, a
 * diagnostic message, to stderr, so that neither -o FILE nor stdout ever holds it. */
static int write_body(Run *run, int code, const uint8_t *payload, size_t len) {
        if (!run->json && COAP_RESPONSE_CODE_CLASS(code) != 2) {
                fwrite(payload, 1, len, stderr);
                return 0;
        }
        if (!run->out) {
                char *b = realloc(run->body, run->body_len + len + 1);

                if (!b)
                        return -ENOMEM;
                memcpy(b + run->body_len, payload, len);
                run->body = b;
                run->body_len += len;
                b[run->body_len] = '\0';
                return 0;
        }
        if (fwrite(payload, 1, len, run->out) != len)
                return -errno;
        return 0;
}

/* --json: one response as one line, {"code": "2.05", "status": "Content", its options, and
 * "payload" (text) or "payload_base64"}; the collected body is consumed. */
static int print_json_response(Run *run, int code) {
        const struct coap_client_response_info *i = &run->info;
        const char *name = ctl_code_name(code);
        const uint8_t *body = (const uint8_t *) run->body;

        printf("{\"code\":\"%d.%02d\"", COAP_RESPONSE_CODE_CLASS(code),
               COAP_RESPONSE_CODE_DETAIL(code));
        if (name) {
                printf(",\"status\":");
                ctl_json_string(stdout, name);
        }
        if (i->has_content_format)
                printf(",\"content_format\":%u", i->content_format);
        if (i->has_observe)
                printf(",\"observe\":%" PRIu32, i->observe);
        if (i->has_size2)
                printf(",\"size2\":%" PRIu32, i->size2);
        if (i->etag_len > 0) {
                printf(",\"etag\":\"");
                for (size_t k = 0; k < i->etag_len; k++)
                        printf("%02x", i->etag[k]);
                putchar('"');
        }
        if (run->body_len > 0 && ctl_is_text(body, run->body_len)) {
                printf(",\"payload\":");
                ctl_json_string(stdout, run->body);
        } else if (run->body_len > 0) {
                printf(",\"payload_base64\":");
                ctl_json_base64(stdout, body, run->body_len);
        }
        printf("}\n");
        run->body_len = 0;
        return fflush(stdout) == 0 ? 0 : -errno;
}

/* The output cannot take the body: the request ends here. */
static void write_failed(Run *run, int error) {
        if (error == -ENOMEM)
                fprintf(stderr, "coapclientctl: Out of memory for the response.\n");
        else
                fprintf(stderr, "coapclientctl: Cannot write the response to %s: %s\n",
                        run->args->output ?: "standard output", strerror(-error));
        run->write_failed = error != -ENOMEM;
        run->code = error;
        run->done = true;
        run->ending = true;
        coap_client_cancel_requests(run->client);
}

static void response_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                        bool last_block, void *user_data) {
        Run *run = user_data;
        struct coap_client_response_info info;
        int r;

        run->code = code;
        if (code < 0) {
                const char *hint = run->secure ? ctl_tls_error_hint(code) : NULL;

                /* We cancelled (--timeout, a signal), or a non-confirmable deregistration
                 * ended: not a failure of the request. */
                if (run->ending && code == -ECANCELED)
                        ;
                else if (run->stopping && code == -ECANCELED)
                        run->code = COAP_RESPONSE_CODE_CONTENT;
                else {
                        /* GnuTLS' reason for a DTLS failure, from coapclientd. */
                        const char *detail = run->secure ? coap_client_last_error() : NULL;

                        fprintf(stderr, "coapclientctl: Request failed: %s%s%s\n", strerror(-code),
                                detail ? ": " : "", detail ?: "");
                        hint = hint ?: ctl_limit_hint(code);
                        if (hint)
                                fprintf(stderr, "coapclientctl: %s\n", hint);
                }
                run->done = true;
                return;
        }

        /* The first block of a response; for an upload, the answer to its last block (the
         * answers before it, 2.31 Continue, only report progress). */
        if (run->uploading ? last_block : offset == 0) {
                run->received = 0;
                run->size2 = 0;
                run->blockwise = !last_block;
                run->body_len = 0;
                if (run->json && coap_client_get_response_info(&run->info) < 0)
                        run->info = (struct coap_client_response_info){};
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
        r = len > 0 ? write_body(run, code, payload, len) : 0;
        if (r < 0) {
                write_failed(run, r);
                return;
        }
        run->received = offset + len;
        if (run->progress && run->blockwise && !run->args->observe)
                show_progress(run, last_block);
        if (!last_block)
                return;
        if (!run->json && len > 0 && COAP_RESPONSE_CODE_CLASS(code) != 2 &&
            payload[len - 1] != '\n')
                fputc('\n', stderr);
        if (run->json && !run->stopping) {
                r = print_json_response(run, code);
                if (r < 0) {
                        write_failed(run, r);
                        return;
                }
        }

        if (run->args->observe && !run->stopping && COAP_RESPONSE_CODE_CLASS(code) == 2) {
                /* One notification complete: one per line. */
                if (run->out && len > 0 && payload[len - 1] != '\n')
                        fputc('\n', run->out);
                if (run->out && fflush(run->out) != 0) {
                        write_failed(run, -errno);
                        return;
                }
                run->notifications++;
                if (run->args->count > 0 && run->notifications >= run->args->count) {
                        const struct coap_client_request match = {.method = COAP_METHOD_GET};

                        /* Deregister; the server's answer is the final callback. */
                        run->stopping = true;
                        if (coap_client_deregister_observe(run->client, &match) < 0) {
                                run->ending = true;
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
                return -CTL_EXIT_IO;
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
                return -CTL_EXIT_IO;
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
                return -ctl_call_exit_code(r);
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

/* Where the body goes: standard output, a device or pipe written directly, or a regular file
 * written through a temporary file beside it that replaces it only on success, so that an
 * error or a broken transfer never leaves a half or wrong file. */
typedef struct Output {
        const char *path; /* NULL: standard output */
        char *target;     /* the file replaced on success (symbolic links resolved) */
        char *tmp;        /* NULL: written directly */
        FILE *f;
} Output;

/* The temporary file beside o->target. */
static int output_open_tmp(Output *o, const struct stat *st) {
        _cleanup_free_ char *dir = NULL;
        char *slash;
        mode_t mask;
        int fd;

        dir = strdup(o->target);
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (asprintf(&o->tmp, "%s/.coapclientctl.XXXXXX",
                     !slash         ? "."
                     : slash == dir ? ""
                                    : (*slash = '\0', dir)) < 0) {
                o->tmp = NULL;
                return -ENOMEM;
        }
        fd = mkostemp(o->tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        mask = umask(0);
        umask(mask);
        (void) fchmod(fd, st ? st->st_mode & 07777 : 0666 & ~mask);
        o->f = fdopen(fd, "w");
        if (!o->f) {
                int r = -errno;

                close(fd);
                (void) unlink(o->tmp);
                return r;
        }
        return 0;
}

static int output_open(Output *o, const char *path) {
        struct stat st;
        bool exists;
        int r;

        *o = (Output){.path = path, .f = stdout};
        if (!path)
                return 0;
        exists = stat(path, &st) >= 0;
        if (exists && !S_ISREG(st.st_mode)) {
                o->f = fopen(path, "we");
                return o->f ? 0 : -errno;
        }
        o->target = realpath(path, NULL) ?: strdup(path);
        r = o->target ? output_open_tmp(o, exists ? &st : NULL) : -ENOMEM;
        if (r < 0) {
                o->f = NULL;
                o->tmp = (free(o->tmp), NULL);
                o->target = (free(o->target), NULL);
        }
        return r;
}

/* Closes the output; a temporary file replaces the target when commit is set and is removed
 * otherwise. Returns 0 or the errno of a failed write. */
static int output_close(Output *o, bool commit) {
        int r = 0;

        if (o->f == stdout)
                r = fflush(stdout) != 0 ? -errno : 0;
        else if (o->f && fclose(o->f) != 0)
                r = -errno;
        o->f = NULL;
        if (o->tmp) {
                if (commit && r == 0 && rename(o->tmp, o->target) < 0)
                        r = -errno;
                if (!commit || r < 0)
                        (void) unlink(o->tmp);
        }
        o->tmp = (free(o->tmp), NULL);
        o->target = (free(o->target), NULL);
        return commit ? r : 0;
}

/* Runs the loop until the request is over; returns the exit code. */
static int run_loop(Run *run, int sig_fd) {
        /* To a group, --timeout is the window: the library ends the request. */
        uint64_t deadline = run->args->timeout > 0 && !run->group
                                    ? now_usec() + (uint64_t) (run->args->timeout * 1e6)
                                    : UINT64_MAX;
        int lib_fd = coap_client_get_fd();

        while (!run->done) {
                struct pollfd p[2] = {
                        {.fd = lib_fd, .events = POLLIN},
                        {.fd = sig_fd, .events = POLLIN},
                };
                uint64_t t = coap_client_get_timeout_usec(), now = now_usec();
                struct signalfd_siginfo si = {};
                int ms;

                if (now >= deadline)
                        t = 0;
                else if (deadline - now < t)
                        t = deadline - now;
                ms = t == UINT64_MAX ? -1 : (int) MIN((t + 999) / 1000, (uint64_t) INT32_MAX);
                if (poll(p, 2, ms) < 0 && errno != EINTR) {
                        fprintf(stderr, "coapclientctl: poll() failed: %m\n");
                        return CTL_EXIT_FAILURE;
                }
                if ((p[1].revents & POLLIN) && read(sig_fd, &si, sizeof(si)) != sizeof(si))
                        si.ssi_signo = SIGTERM;
                (void) coap_client_process();
                if (run->done)
                        break;
                if (!coap_client_has_ongoing_exchange(run->client)) {
                        /* Forgotten without a callback: a NON request got no response. */
                        fprintf(stderr, "coapclientctl: No response.\n");
                        return CTL_EXIT_TIMEOUT;
                }
                if (si.ssi_signo != 0 || now_usec() >= deadline) {
                        run->ending = true;
                        coap_client_cancel_requests(run->client);
                        /* An observation ends this way normally. */
                        if (run->args->observe && run->notifications > 0)
                                return CTL_EXIT_SUCCESS;
                        if (si.ssi_signo != 0)
                                return 128 + (int) si.ssi_signo;
                        fprintf(stderr, "coapclientctl: Timed out after %g s.\n",
                                run->args->timeout);
                        return CTL_EXIT_TIMEOUT;
                }
        }
        if (run->write_failed)
                return CTL_EXIT_IO;
        return ctl_exit_code(run->code);
}

static bool has_option(const Args *a, uint16_t code) {
        for (size_t i = 0; i < a->n_options; i++)
                if (a->options[i].code == code)
                        return true;
        return false;
}

/* The options the URI and -b make: Uri-Host for a host name (RFC 7252 §6.4), Block2 to ask
 * for the block size from the first block on (RFC 7959 §2.4). */
static int add_implicit_options(Args *a, const CtlUri *uri, bool has_payload) {
        int r;

        if (!uri->host_is_literal && !has_option(a, COAP_OPTION_URI_HOST)) {
                struct coap_client_option o = {.code = COAP_OPTION_URI_HOST};
                size_t n = strlen(uri->host);

                if (n > MAX_COAP_CLIENT_OPTION_LEN) {
                        fprintf(stderr,
                                "coapclientctl: The host name '%s' (%zu bytes) does not fit in "
                                "libcoapclient's option values (at most %d bytes): give the "
                                "address instead.\n",
                                uri->host, n, MAX_COAP_CLIENT_OPTION_LEN);
                        return -CTL_EXIT_FAILURE;
                }
                memcpy(o.value, uri->host, n);
                o.len = (uint8_t) n;
                r = add_option(a, o);
                if (r < 0)
                        return r;
        }
        if (a->block_szx >= 0 && !has_payload && !has_option(a, COAP_OPTION_BLOCK2)) {
                r = add_option(a, ctl_option_uint(COAP_OPTION_BLOCK2, (uint32_t) a->block_szx));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* discover: "/" and a bare query ask /.well-known/core. */
static char *discovery_path(const char *path) {
        char *p;

        if (path[0] == '/' && (path[1] == '\0' || path[1] == '?')) {
                if (asprintf(&p, "/.well-known/core%s", path + 1) < 0)
                        return NULL;
                return p;
        }
        return strdup(path);
}

static bool needs_quotes(const char *v) {
        return v[0] == '\0' || strpbrk(v, " \t\"\\,;") != NULL;
}

static void print_links_text(const CtlLinkList *l) {
        int width = 0;

        for (size_t i = 0; i < l->n_links; i++)
                width = MAX(width, (int) MIN(strlen(l->links[i].target), (size_t) 40));
        for (size_t i = 0; i < l->n_links; i++) {
                const CtlLink *k = &l->links[i];

                printf("%-*s", k->n_params > 0 ? width : 0, k->target);
                for (size_t j = 0; j < k->n_params; j++) {
                        const CtlLinkParam *p = &k->params[j];

                        if (!p->value)
                                printf("  %s", p->name);
                        else if (needs_quotes(p->value)) {
                                printf("  %s=", p->name);
                                ctl_json_string(stdout, p->value);
                        } else
                                printf("  %s=%s", p->name, p->value);
                }
                putchar('\n');
        }
}

/* [{"href": TARGET, "attributes": {NAME: VALUE or true}}]; a name given more than once has
 * its values joined with spaces, as RFC 6690 joins relation types. */
static void print_links_json(const CtlLinkList *l) {
        printf("[");
        for (size_t i = 0; i < l->n_links; i++) {
                const CtlLink *k = &l->links[i];
                bool first = true;

                printf("%s{\"href\":", i > 0 ? "," : "");
                ctl_json_string(stdout, k->target);
                printf(",\"attributes\":{");
                for (size_t j = 0; j < k->n_params; j++) {
                        const char *name = k->params[j].name;
                        _cleanup_free_ char *joined = NULL;
                        bool seen = false;

                        for (size_t e = 0; e < j && !seen; e++)
                                seen = strcmp(k->params[e].name, name) == 0;
                        if (seen)
                                continue;
                        for (size_t e = j; e < k->n_params; e++) {
                                const char *v = k->params[e].value;
                                char *n;

                                if (!v || strcmp(k->params[e].name, name) != 0)
                                        continue;
                                if (asprintf(&n, "%s%s%s", joined ?: "", joined ? " " : "", v) < 0)
                                        continue;
                                free(joined);
                                joined = n;
                        }
                        printf("%s", first ? "" : ",");
                        ctl_json_string(stdout, name);
                        putchar(':');
                        if (joined)
                                ctl_json_string(stdout, joined);
                        else
                                printf("true");
                        first = false;
                }
                printf("}}");
        }
        printf("]");
}

static int print_discovery(const Run *run) {
        _cleanup_(ctl_link_list_done) CtlLinkList links = {};
        int r;

        r = ctl_link_format_parse(run->body ?: "", run->body_len, &links);
        if (r == -ENOMEM) {
                fprintf(stderr, "coapclientctl: Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }
        if (r < 0) {
                fprintf(stderr, "coapclientctl: The answer is not in link format (RFC 6690):\n");
                fwrite(run->body, 1, run->body_len, stderr);
                fputc('\n', stderr);
                return CTL_EXIT_PEER;
        }
        if (run->args->json) {
                print_links_json(&links);
                putchar('\n');
        } else
                print_links_text(&links);
        return CTL_EXIT_SUCCESS;
}

/* discover to a group: each member's links as they come, under its address (--json: one
 * {"source": ADDRESS, "links": [...]} per line); the callback without a source ends the window. */
static void group_response_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                              bool last_block, void *user_data) {
        _cleanup_(ctl_link_list_done) CtlLinkList links = {};
        Run *run = user_data;
        struct sockaddr_storage ss;
        socklen_t ss_len = sizeof(ss);
        char addr[INET6_ADDRSTRLEN], source[INET6_ADDRSTRLEN + 8];
        uint16_t port;
        int r;

        if (code < 0) {
                response_cb(code, offset, payload, len, last_block, user_data);
                return;
        }
        if (coap_client_get_response_source((struct sockaddr *) &ss, &ss_len) < 0) {
                run->code = COAP_RESPONSE_CODE_CONTENT;
                run->done = true;
                return;
        }
        if (ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *) &ss;

                inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
                port = ntohs(s6->sin6_port);
                snprintf(source, sizeof(source), "[%s]:%u", addr, port);
        } else {
                const struct sockaddr_in *s4 = (const struct sockaddr_in *) &ss;

                inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
                port = ntohs(s4->sin_port);
                snprintf(source, sizeof(source), "%s:%u", addr, port);
        }
        if (COAP_RESPONSE_CODE_CLASS(code) != 2) {
                fprintf(stderr, "coapclientctl: %s answered ", source);
                print_code(code);
                return;
        }
        r = ctl_link_format_parse((const char *) payload, len, &links);
        if (r < 0) {
                fprintf(stderr, "coapclientctl: %s: %s\n", source,
                        r == -ENOMEM ? "Out of memory." : "The answer is not in link format.");
                return;
        }
        run->responders++;
        if (run->args->json) {
                printf("{\"source\":");
                ctl_json_string(stdout, source);
                printf(",\"links\":");
                print_links_json(&links);
                printf("}\n");
        } else {
                printf("%s%s\n", run->responders > 1 ? "\n" : "", source);
                print_links_text(&links);
        }
}

/* Reports an error of a libcoapclient call with what coapclientd said; returns the exit code. */
static int call_failed(const char *what, int error) {
        const char *hint = ctl_limit_hint(error), *detail = coap_client_last_error();

        fprintf(stderr, "coapclientctl: %s: %s\n", what, strerror(-error));
        if (hint)
                fprintf(stderr, "coapclientctl: %s\n", hint);
        else if (detail)
                fprintf(stderr, "coapclientctl: %s\n", detail);
        return ctl_call_exit_code(error);
}

static int run(Args *a) {
        _cleanup_free_ uint8_t *payload = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int sock = -EBADF, sig_fd = -EBADF;
        struct coap_transmission_parameters params;
        struct coap_client client = {};
        struct coap_client_request req;
        _cleanup_(ctl_uri_done) CtlUri uri = {};
        const char *reason = NULL;
        struct sockaddr_storage group_addr;
        bool group;
        size_t payload_len;
        Output out;
        Run state = {};
        int r, k;

        r = ctl_uri_parse(a->uri, &uri, &reason);
        if (r == -ENOMEM) {
                fprintf(stderr, "coapclientctl: Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }
        if (r < 0)
                return -usage_error("Bad URI '%s': %s.", a->uri, reason);
        group = ctl_host_is_multicast(uri.host);
        if (group && a->verb != VERB_DISCOVER)
                return -usage_error("Only discover can ask the group '%s'; ask one server by its "
                                    "own address.",
                                    uri.host);
        if (group && uri.secure)
                return -usage_error("%s", "Discovery to a group runs over coap:// only.");
        if (!group && a->interface)
                return -usage_error("%s", "--interface is for discover to a multicast group.");
        if (!uri.secure && has_tls_args(a))
                return -usage_error("%s", "The DTLS options need a coaps:// URI.");
        if (uri.secure && !has_tls_args(a))
                return -usage_error("%s", "coaps:// needs credentials: --psk-identity with "
                                          "--psk-key or --psk-key-file, --ca, --cert with --key, "
                                          "or --rpk.");
        path = a->verb == VERB_DISCOVER ? discovery_path(uri.path) : strdup(uri.path);
        if (!path) {
                fprintf(stderr, "coapclientctl: Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }
        r = load_payload(a, &payload, &payload_len);
        if (r < 0) {
                fprintf(stderr, "coapclientctl: Cannot read the payload from '%s': %s\n",
                        a->payload_file ?: "--payload", strerror(-r));
                return r == -ENOMEM ? CTL_EXIT_FAILURE : CTL_EXIT_IO;
        }
        r = add_implicit_options(a, &uri, a->payload || a->payload_file);
        if (r < 0)
                return -r;
        if (a->insecure)
                fprintf(stderr, "coapclientctl: Warning: --insecure: the server is not verified, "
                                "anyone on the path can read and change this exchange.\n");

        sock = group ? open_group_socket(a, &uri, &group_addr) : open_socket(a, &uri);
        if (sock < 0)
                return group ? CTL_EXIT_FAILURE : CTL_EXIT_PEER;
        sig_fd = setup_signals();
        if (sig_fd < 0) {
                fprintf(stderr, "coapclientctl: Cannot set up signals: %s\n", strerror(-sig_fd));
                return CTL_EXIT_FAILURE;
        }
        r = output_open(&out, a->output);
        if (r < 0) {
                fprintf(stderr, "coapclientctl: Cannot open '%s': %s\n", a->output, strerror(-r));
                return r == -ENOMEM ? CTL_EXIT_FAILURE : CTL_EXIT_IO;
        }

        (void) coap_client_loop_external();
        r = coap_client_init(&client, "coapclientctl");
        if (r < 0)
                r = call_failed(ctl_limit_hint(r) ? "Cannot make a client in coapclientd"
                                                  : "Cannot reach coapclientd",
                                r);
        if (r == 0 && uri.secure)
                r = -setup_tls(a, &uri, &client);
        if (r == 0 && a->block_szx >= 0)
                (void) coap_client_set_block_size(&client, (enum coap_block_size) a->block_szx);
        /* The window: --timeout, else 2 s. */
        if (r == 0 && group)
                (void) coap_client_set_multicast_timeout(
                        &client, a->timeout > 0
                                         ? (uint32_t) MIN(a->timeout * 1000, (double) UINT32_MAX)
                                         : 2000);

        if (r == 0) {
                state = (Run){
                        .args = a,
                        .client = &client,
                        .secure = uri.secure,
                        .uploading = payload_len > 0,
                        .out = a->verb == VERB_DISCOVER || a->json ? NULL : out.f,
                        .json = a->json && a->verb != VERB_DISCOVER,
                        .progress = isatty(STDERR_FILENO),
                        .start_usec = now_usec(),
                        .group = group,
                };
                req = (struct coap_client_request){
                        .method = a->method,
                        .confirmable = !a->non && !group,
                        .path = path,
                        .fmt = a->content_format >= 0 ? (enum coap_content_format) a->content_format
                                                      : COAP_CONTENT_FORMAT_NONE,
                        .payload = a->payload || a->payload_file ? payload : NULL,
                        .len = payload_len,
                        .cb = group ? group_response_cb : response_cb,
                        .options = a->options,
                        .num_options = (uint8_t) a->n_options,
                        .user_data = &state,
                };
                params = coap_get_transmission_parameters();
                if (a->ack_timeout > 0)
                        params.ack_timeout = a->ack_timeout;
                if (a->retransmit >= 0)
                        params.max_retransmission = (uint8_t) a->retransmit;
                r = coap_client_req(&client, sock, group ? (struct sockaddr *) &group_addr : NULL,
                                    &req, &params);
                if (r < 0)
                        r = call_failed("Cannot send the request", r);
                else
                        r = run_loop(&state, sig_fd);
        }
        coap_client_deinit(&client);

        if (r == CTL_EXIT_SUCCESS && group && state.responders == 0) {
                fprintf(stderr, "coapclientctl: No member of the group answered.\n");
                r = CTL_EXIT_TIMEOUT;
        } else if (r == CTL_EXIT_SUCCESS && a->verb == VERB_DISCOVER && !group)
                r = print_discovery(&state);
        free(state.body);
        k = output_close(&out, r == CTL_EXIT_SUCCESS);
        if (k < 0) {
                fprintf(stderr, "coapclientctl: Cannot write %s%s%s: %s\n", a->output ? "'" : "",
                        a->output ?: "standard output", a->output ? "'" : "", strerror(-k));
                r = CTL_EXIT_IO;
        }
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
        if (args.verb == VERB_STATUS)
                return ctl_status(args.json);
        if (args.verb == VERB_MONITOR) {
                _cleanup_close_ int sig_fd = setup_signals();

                if (sig_fd < 0) {
                        fprintf(stderr, "coapclientctl: Cannot set up signals: %s\n",
                                strerror(-sig_fd));
                        return CTL_EXIT_FAILURE;
                }
                return ctl_monitor(args.json, args.timeout, args.count, sig_fd);
        }
        r = run(&args);
        explicit_bzero(args.psk, sizeof(args.psk));
        return r;
}
