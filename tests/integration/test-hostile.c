/* SPDX-License-Identifier: MIT */
/* A table of malformed and hostile D-Bus calls. Each row gets its named error, and afterwards the
 * daemon is alive, holds no request, socket, client or caller it did not hold before, has as many
 * fds as before, and sent no Response to the hostile caller. Whatever another caller (the victim)
 * or another client of the same caller (the sibling) had in flight survives the row. */

#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bus-helper.h"
#include "check-main.h"
#include "internal/bus-api.h"
#include "net-helper.h"

#define PROPERTIES_IFACE         "org.freedesktop.DBus.Properties"
#define ERROR_UNKNOWN_PROPERTY   "org.freedesktop.DBus.Error.UnknownProperty"
#define ERROR_PROPERTY_READ_ONLY "org.freedesktop.DBus.Error.PropertyReadOnly"

typedef enum FdKind {
        FD_UDP_CONNECTED, /* to the coap-server peer; destination "" */
        FD_UDP_UNCONNECTED,
        FD_UDP6_UNCONNECTED,
        FD_UDP6_V6ONLY,
        FD_UDP_SHUT_DOWN, /* connected to the peer, then shutdown(SHUT_RDWR) */
        FD_PIPE_READ,
        FD_PIPE_WRITE,
        FD_DEV_NULL,
        FD_REGULAR_FILE,
        FD_DIRECTORY,
        FD_O_PATH,
        FD_EVENTFD,
        FD_MEMFD,
        FD_TIMERFD,
        FD_EPOLL,
        FD_TCP,
        FD_TCP_LISTENING,
        FD_TCP_CONNECTED,
        FD_TCP6,
        FD_UNIX_STREAM,
        FD_UNIX_DGRAM,
        FD_UNIX_SEQPACKET,
        FD_NETLINK,
        FD_PACKET,
        FD_RAW,
        FD_RAW6,
        FD_UDPLITE,
        FD_ICMP_PING,
} FdKind;

typedef enum Call {
        CALL_REQUEST,       /* Request(fd, destination, req) */
        CALL_RAW,           /* member with arguments from signature (and dict) */
        CALL_ID,            /* member(t id) */
        CALL_VOID,          /* member() */
        CALL_GET,           /* Properties.Get(interface, member) */
        CALL_GET_ALL,       /* Properties.GetAll(interface) */
        CALL_SET,           /* Properties.Set(interface, member, <s "x">) */
        CALL_INTROSPECT,    /* Introspectable.Introspect() */
        CALL_CREATE_CLIENT, /* CreateClient(name) */
} Call;

typedef enum Target {
        TARGET_OWN, /* the hostile caller's client */
        TARGET_VICTIM,
        TARGET_ROOT,
        TARGET_PATH,             /* the row's path */
        TARGET_OWN_LEADING_ZERO, /* the own client's path with its id written 0ID */
        TARGET_OWN_CHILD,        /* below the own client's path */
        TARGET_CLOSED,           /* the own client of SETUP_CLOSED_CLIENT */
} Target;

typedef enum IdKind {
        ID_LITERAL,
        ID_OWN, /* the request of SETUP_OWN_* */
        ID_VICTIM,
        ID_SIBLING,
} IdKind;

typedef enum Setup {
        SETUP_VICTIM = 1 << 0,        /* another caller with an observation in flight */
        SETUP_SIBLING = 1 << 1,       /* a second own client with an observation in flight */
        SETUP_OWN_PLAIN = 1 << 2,     /* an own GET in flight, not an observation */
        SETUP_OWN_FINISHED = 1 << 3,  /* an own GET that has had its final Response */
        SETUP_OWN_CANCELLED = 1 << 4, /* an own observation already cancelled */
        SETUP_FULL_CLIENTS = 1 << 5,  /* MaxClientsPerCaller own clients */
        SETUP_FULL_REQUESTS = 1 << 6, /* MaxRequestsPerClient own requests in flight */
        SETUP_PAYLOAD_OVER = 1 << 7,  /* req payload of MaxPayloadBytes + 1 bytes */
        SETUP_CLOSED_CLIENT = 1 << 8, /* an own client created and closed again */
} Setup;

typedef struct Row {
        const char *name;
        Call call;
        FdKind fd;
        const char *destination; /* CALL_REQUEST; the name of CALL_CREATE_CLIENT */
        TestRequest req;
        Target target;
        const char *path;               /* TARGET_PATH */
        const char *interface;          /* NULL: the Manager's on the root, else the Client's */
        const char *member;             /* method, or property of CALL_GET and CALL_SET */
        const char *signature;          /* CALL_RAW: of h s u t a{ss} a{sv} */
        int (*dict)(sd_bus_message *m); /* CALL_RAW: appended after signature */
        IdKind id_kind;
        uint64_t id;
        unsigned setup;
        const char *error;
        const char *detail; /* if set, part of the error message */
} Row;

typedef struct Ctx {
        unsigned setup; /* of the row */
        TestBus *bus;   /* the hostile caller */
        char *client;
        int fds;
        int fd;
        int keep; /* kept open during the call: the listener of FD_TCP_CONNECTED */
        int silent;
        int silent_fd; /* connected to the silent peer */
        TestBus *victim;
        char *victim_client;
        uint64_t victim_id;
        char *sibling;
        uint64_t sibling_id;
        uint64_t own_id;
        char **clients; /* of SETUP_FULL_CLIENTS */
        size_t n_clients;
        uint64_t *ids; /* of SETUP_FULL_REQUESTS */
        size_t n_ids;
        uint8_t *payload;
        char *closed;
        char path[256];
} Ctx;

/* Inputs too large to write out. */
static char long_segment_path[2 + 256 + 1];
static char long_query_path[2 + 256 + 1];
static char long_path[1025 + 1];
static char long_destination[4096 + 1];
static char long_bracket_destination[1 + 200 + 7 + 1];
static char long_name[256 + 1];
static uint8_t option_value[256];
static TestOption too_many_options[17];

static const TestOption big_option[] = {{.number = 2048, .value = option_value, .len = 256}};
#define OPTION(n)                                                           \
        {                                                                   \
                { .number = (n), .value = (const uint8_t *) "x", .len = 1 } \
        }
static const TestOption option_0[] = OPTION(0);
static const TestOption option_uri_path[] = OPTION(11);
static const TestOption option_content_format[] = OPTION(12);
static const TestOption option_uri_query[] = OPTION(15);
static const TestOption option_block1[] = OPTION(27);
static const TestOption option_size1[] = OPTION(60);
static const TestOption option_echo[] = OPTION(252);
static const TestOption option_request_tag[] = OPTION(292);

#define EXTRA(k, t, v)                                \
        {                                             \
                { .key = (k), .type = (t), .u = (v) } \
        }
#define EXTRA_S(k, v)                                 \
        {                                             \
                { .key = (k), .type = 's', .s = (v) } \
        }
static const TestExtra method_0[] = EXTRA("method", 'y', 0);
static const TestExtra method_s[] = EXTRA_S("method", "GET");
static const TestExtra method_q[] = EXTRA("method", 'q', 1);
static const TestExtra method_again[] = EXTRA("method", 'y', 1);
static const TestExtra path_again[] = EXTRA_S("path", "y");
static const TestExtra content_format_u[] = EXTRA("content-format", 'u', 0);
static const TestExtra payload_s[] = EXTRA_S("payload", "data");
static const TestExtra observe_u[] = EXTRA("observe", 'u', 1);
static const TestExtra ack_timeout_q[] = EXTRA("ack-timeout", 'q', 2000);
static const TestExtra ack_random_percent_u[] = EXTRA("ack-random-percent", 'u', 150);
static const TestExtra backoff_percent_y[] = EXTRA("backoff-percent", 'y', 200);
static const TestExtra max_retransmission_q[] = EXTRA("max-retransmission", 'q', 4);
static const TestExtra block_size_u[] = EXTRA("block-size", 'u', 64);
static const TestExtra block_size_0[] = EXTRA("block-size", 'q', 0);
static const TestExtra unknown_key[] = EXTRA("bogus", 'u', 1);
static const TestExtra empty_key[] = EXTRA("", 'u', 1);
static const TestExtra capitalised_key[] = EXTRA("Method", 'y', 1);

/* A valid request with one change. */
#define GET(...) \
        { .method = TEST_GET, .path = "x", __VA_ARGS__ }
#define WITH_EXTRA(e)   GET(.extra = (e), .n_extra = ELEMENTSOF(e))
#define WITH_OPTIONS(o) GET(.options = (o), .n_options = ELEMENTSOF(o))
#define REQUEST(kind, dest, ...) \
        .call = CALL_REQUEST, .fd = (kind), .destination = (dest), __VA_ARGS__
/* Request rows that fail on their dictionary: the descriptor and destination are fine. */
#define BAD_DICT(...)   REQUEST(FD_UDP_CONNECTED, "", .req = __VA_ARGS__)
/* Request rows that fail on their descriptor: the dictionary and destination are fine. */
#define BAD_FD(kind)    REQUEST(kind, "127.0.0.1:5683", .req = GET())
#define BAD_DEST(dest)  REQUEST(FD_UDP_UNCONNECTED, dest, .req = GET())
#define BAD_DEST6(dest) REQUEST(FD_UDP6_UNCONNECTED, dest, .req = GET())

/* The a{sv} of a Request whose "path" is not UTF-8: as 's' it cannot even be sent (see
 * test_unsendable), so a caller can only try it as bytes. */
static int dict_path_bytes(sd_bus_message *m) {
        return sd_bus_message_append(m, "a{sv}", 2, "method", "y", (uint8_t) TEST_GET, "path", "ay",
                                     2, (uint8_t) 0xff, (uint8_t) 0xfe);
}

/* test_bus_request() always sends "confirmable" as 'b'. */
static int dict_confirmable_y(sd_bus_message *m) {
        return sd_bus_message_append(m, "a{sv}", 2, "method", "y", (uint8_t) TEST_GET,
                                     "confirmable", "y", (uint8_t) 1);
}

static int dict_options_uay(sd_bus_message *m) {
        return sd_bus_message_append(m, "a{sv}", 2, "method", "y", (uint8_t) TEST_GET, "options",
                                     "a(uay)", 1, (uint32_t) 17, 1, (uint8_t) 0);
}

static int dict_options_struct(sd_bus_message *m) {
        return sd_bus_message_append(m, "a{sv}", 2, "method", "y", (uint8_t) TEST_GET, "options",
                                     "(qay)", (uint16_t) 17, 1, (uint8_t) 0);
}

#define RAW(m, sig)    .call = CALL_RAW, .member = (m), .signature = (sig)
/* InvalidArgument has several causes: the message tells them apart. */
#define IS_WRONG_TYPE  .error = COAPCLIENTD_ERROR_INVALID_ARGUMENT, .detail = "must be of type"
#define IS_TWICE       .error = COAPCLIENTD_ERROR_INVALID_ARGUMENT, .detail = "given twice"
#define IS_UNKNOWN_KEY .error = COAPCLIENTD_ERROR_INVALID_ARGUMENT, .detail = "Unknown request key"

static const Row rows[] = {
        /* Descriptors that are not sockets. */
        {"pipe read end", BAD_FD(FD_PIPE_READ), .error = COAPCLIENTD_ERROR_NOT_A_SOCKET},
        {"pipe write end", BAD_FD(FD_PIPE_WRITE), .error = COAPCLIENTD_ERROR_NOT_A_SOCKET},
        {"/dev/null", BAD_FD(FD_DEV_NULL), .error = COAPCLIENTD_ERROR_NOT_A_SOCKET},
        {"regular file", BAD_FD(FD_REGULAR_FILE), .error = COAPCLIENTD_ERROR_NOT_A_SOCKET},
        {"directory", BAD_FD(FD_DIRECTORY), .error = COAPCLIENTD_ERROR_NOT_A_SOCKET},
        {"O_PATH descriptor", BAD_FD(FD_O_PATH), .error = COAPCLIENTD_ERROR_NOT_A_SOCKET},
        {"eventfd", BAD_FD(FD_EVENTFD), .error = COAPCLIENTD_ERROR_NOT_A_SOCKET},
        {"memfd", BAD_FD(FD_MEMFD), .error = COAPCLIENTD_ERROR_NOT_A_SOCKET},
        {"timerfd", BAD_FD(FD_TIMERFD), .error = COAPCLIENTD_ERROR_NOT_A_SOCKET},
        {"epoll", BAD_FD(FD_EPOLL), .error = COAPCLIENTD_ERROR_NOT_A_SOCKET},
        /* Sockets that are not AF_INET/AF_INET6 datagram sockets. */
        {"TCP, unbound", BAD_FD(FD_TCP), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"TCP, listening", BAD_FD(FD_TCP_LISTENING), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"TCP, connected", BAD_FD(FD_TCP_CONNECTED), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"TCP over IPv6", BAD_FD(FD_TCP6), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"UNIX stream", BAD_FD(FD_UNIX_STREAM), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"UNIX datagram", BAD_FD(FD_UNIX_DGRAM), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"UNIX seqpacket", BAD_FD(FD_UNIX_SEQPACKET),
         .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"netlink datagram", BAD_FD(FD_NETLINK), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"packet datagram", BAD_FD(FD_PACKET), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"raw IPv4", BAD_FD(FD_RAW), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"raw IPv6", BAD_FD(FD_RAW6), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"UDP-Lite", BAD_FD(FD_UDPLITE), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"ICMP ping", BAD_FD(FD_ICMP_PING), .error = COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        /* UDP sockets the first datagram cannot leave: the send() error, no Response. */
        {"UDP socket shut down", REQUEST(FD_UDP_SHUT_DOWN, "", .req = GET()),
         .error = "System.Error.EPIPE"},
        {"IPv4 destination on an IPV6_V6ONLY socket",
         REQUEST(FD_UDP6_V6ONLY, "127.0.0.1:5683", .req = GET()),
         .error = "System.Error.ENETUNREACH"},
        {"broadcast without SO_BROADCAST", BAD_DEST("255.255.255.255:5683"),
         .error = SD_BUS_ERROR_ACCESS_DENIED},

        /* Destinations. */
        {"empty destination, unconnected", BAD_DEST(""),
         .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"garbage", BAD_DEST("garbage"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"host name", BAD_DEST("localhost:5683"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"no port", BAD_DEST("127.0.0.1"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"empty port", BAD_DEST("127.0.0.1:"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"port 0", BAD_DEST("127.0.0.1:0"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"port 65536", BAD_DEST("127.0.0.1:65536"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"port -1", BAD_DEST("127.0.0.1:-1"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"port +5683", BAD_DEST("127.0.0.1:+5683"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"port abc", BAD_DEST("127.0.0.1:abc"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"five octets", BAD_DEST("127.0.0.1.5:5683"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"octet 256", BAD_DEST("256.0.0.1:5683"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"space inside", BAD_DEST("127.0.0.1 :5683"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"leading space", BAD_DEST(" 127.0.0.1:5683"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"trailing space", BAD_DEST("127.0.0.1:5683 "), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"4096 bytes", BAD_DEST(long_destination), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"IPv6 on an IPv4 socket", BAD_DEST("[::1]:5683"),
         .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"v4-mapped IPv6 on an IPv4 socket", BAD_DEST("[::ffff:127.0.0.1]:5683"),
         .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"[::1] without port", BAD_DEST6("[::1]"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"[::1]: empty port", BAD_DEST6("[::1]:"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"unclosed bracket", BAD_DEST6("[::1:5683"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"IPv6 without brackets", BAD_DEST6("::1:5683"),
         .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"IPv4 in brackets", BAD_DEST6("[127.0.0.1]:5683"),
         .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"bad IPv6", BAD_DEST6("[zz::1]:5683"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"unknown scope", BAD_DEST6("[fe80::1%nosuchif]:5683"),
         .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"empty scope", BAD_DEST6("[fe80::1%]:5683"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"scope 0", BAD_DEST6("[fe80::1%0]:5683"), .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"scope name of 16 bytes", BAD_DEST6("[fe80::1%abcdefghijklmnop]:5683"),
         .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"200 bytes in brackets", BAD_DEST6(long_bracket_destination),
         .error = COAPCLIENTD_ERROR_INVALID_ADDRESS},
        /* A numeric scope is taken as is (the interface may come later): sending fails. */
        {"scope index of no interface", BAD_DEST6("[fe80::1%99999]:5683"),
         .error = "System.Error.ENETUNREACH"},

        /* The order of checks: dictionary, limits, socket, destination. */
        {"bad method with a pipe and a bad destination",
         REQUEST(FD_PIPE_READ, "garbage", .req = {.method = 8, .path = "x"}),
         .error = COAPCLIENTD_ERROR_INVALID_METHOD},
        {"too many requests with a pipe", REQUEST(FD_PIPE_READ, "garbage", .req = GET()),
         .setup = SETUP_FULL_REQUESTS, .error = COAPCLIENTD_ERROR_TOO_MANY_REQUESTS},
        {"pipe with a bad destination", REQUEST(FD_PIPE_READ, "garbage", .req = GET()),
         .error = COAPCLIENTD_ERROR_NOT_A_SOCKET},

        /* Methods. */
        {"method missing", BAD_DICT({.path = "x"}), .error = COAPCLIENTD_ERROR_INVALID_METHOD},
        {"method 0", BAD_DICT({.path = "x", .extra = method_0, .n_extra = 1}),
         .error = COAPCLIENTD_ERROR_INVALID_METHOD},
        {"method 8", BAD_DICT({.method = 8, .path = "x"}),
         .error = COAPCLIENTD_ERROR_INVALID_METHOD},
        {"method 255", BAD_DICT({.method = 255, .path = "x"}),
         .error = COAPCLIENTD_ERROR_INVALID_METHOD},
        {"method of type s", BAD_DICT({.path = "x", .extra = method_s, .n_extra = 1}),
         IS_WRONG_TYPE},
        {"method of type q", BAD_DICT({.path = "x", .extra = method_q, .n_extra = 1}),
         IS_WRONG_TYPE},
        {"method twice", BAD_DICT(WITH_EXTRA(method_again)), IS_TWICE},

        /* Paths. */
        {"path segment of 256 bytes", BAD_DICT({.method = TEST_GET, .path = long_segment_path}),
         .error = COAPCLIENTD_ERROR_INVALID_PATH},
        {"query segment of 256 bytes", BAD_DICT({.method = TEST_GET, .path = long_query_path}),
         .error = COAPCLIENTD_ERROR_INVALID_PATH},
        {"path of 1025 bytes", BAD_DICT({.method = TEST_GET, .path = long_path}),
         .error = COAPCLIENTD_ERROR_INVALID_PATH},
        {"path twice", BAD_DICT(WITH_EXTRA(path_again)), IS_TWICE},
        {"non-UTF-8 path as bytes", RAW("Request", "hs"), .dict = dict_path_bytes, IS_WRONG_TYPE},

        /* Options. */
        {"17 options", BAD_DICT(WITH_OPTIONS(too_many_options)),
         .error = COAPCLIENTD_ERROR_INVALID_OPTION},
        {"option value of 256 bytes", BAD_DICT(WITH_OPTIONS(big_option)),
         .error = COAPCLIENTD_ERROR_INVALID_OPTION},
        {"option 0", BAD_DICT(WITH_OPTIONS(option_0)), .error = COAPCLIENTD_ERROR_INVALID_OPTION},
        {"option 11 Uri-Path", BAD_DICT(WITH_OPTIONS(option_uri_path)),
         .error = COAPCLIENTD_ERROR_INVALID_OPTION},
        {"option 12 Content-Format", BAD_DICT(WITH_OPTIONS(option_content_format)),
         .error = COAPCLIENTD_ERROR_INVALID_OPTION},
        {"option 15 Uri-Query", BAD_DICT(WITH_OPTIONS(option_uri_query)),
         .error = COAPCLIENTD_ERROR_INVALID_OPTION},
        {"option 27 Block1", BAD_DICT(WITH_OPTIONS(option_block1)),
         .error = COAPCLIENTD_ERROR_INVALID_OPTION},
        {"option 60 Size1", BAD_DICT(WITH_OPTIONS(option_size1)),
         .error = COAPCLIENTD_ERROR_INVALID_OPTION},
        {"option 252 Echo", BAD_DICT(WITH_OPTIONS(option_echo)),
         .error = COAPCLIENTD_ERROR_INVALID_OPTION},
        {"option 292 Request-Tag", BAD_DICT(WITH_OPTIONS(option_request_tag)),
         .error = COAPCLIENTD_ERROR_INVALID_OPTION},
        {"options of type a(uay)", RAW("Request", "hs"), .dict = dict_options_uay, IS_WRONG_TYPE},
        {"options of type (qay)", RAW("Request", "hs"), .dict = dict_options_struct, IS_WRONG_TYPE},

        /* Payload. */
        {"payload of MaxPayloadBytes + 1", BAD_DICT(GET()), .setup = SETUP_PAYLOAD_OVER,
         .error = COAPCLIENTD_ERROR_PAYLOAD_TOO_LARGE},
        {"payload of type s", BAD_DICT(WITH_EXTRA(payload_s)), IS_WRONG_TYPE},

        /* Transmission parameters and block size, on both sides of their ranges. */
        {"ack-timeout 99", BAD_DICT(GET(.ack_timeout = 99)),
         .error = COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"ack-timeout 600001", BAD_DICT(GET(.ack_timeout = 600001)),
         .error = COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"ack-random-percent 99", BAD_DICT(GET(.ack_random_percent = 99)),
         .error = COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"ack-random-percent 1001", BAD_DICT(GET(.ack_random_percent = 1001)),
         .error = COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"backoff-percent 99", BAD_DICT(GET(.backoff_percent = 99)),
         .error = COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"backoff-percent 1001", BAD_DICT(GET(.backoff_percent = 1001)),
         .error = COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"max-retransmission 21", BAD_DICT(GET(.max_retransmission = 21)),
         .error = COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"block-size 0", BAD_DICT(WITH_EXTRA(block_size_0)),
         .error = COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"block-size 8", BAD_DICT(GET(.block_size = 8)),
         .error = COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"block-size 100", BAD_DICT(GET(.block_size = 100)),
         .error = COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"block-size 2048", BAD_DICT(GET(.block_size = 2048)),
         .error = COAPCLIENTD_ERROR_INVALID_PARAMETERS},

        /* Keys: unknown, and every known key with a value of the wrong type. */
        {"unknown key", BAD_DICT(WITH_EXTRA(unknown_key)), IS_UNKNOWN_KEY},
        {"empty key", BAD_DICT(WITH_EXTRA(empty_key)), IS_UNKNOWN_KEY},
        {"key in another case", BAD_DICT({.path = "x", .extra = capitalised_key, .n_extra = 1}),
         IS_UNKNOWN_KEY},
        {"confirmable of type y", RAW("Request", "hs"), .dict = dict_confirmable_y, IS_WRONG_TYPE},
        {"content-format of type u", BAD_DICT(WITH_EXTRA(content_format_u)), IS_WRONG_TYPE},
        {"observe of type u", BAD_DICT(WITH_EXTRA(observe_u)), IS_WRONG_TYPE},
        {"ack-timeout of type q", BAD_DICT(WITH_EXTRA(ack_timeout_q)), IS_WRONG_TYPE},
        {"ack-random-percent of type u", BAD_DICT(WITH_EXTRA(ack_random_percent_u)), IS_WRONG_TYPE},
        {"backoff-percent of type y", BAD_DICT(WITH_EXTRA(backoff_percent_y)), IS_WRONG_TYPE},
        {"max-retransmission of type q", BAD_DICT(WITH_EXTRA(max_retransmission_q)), IS_WRONG_TYPE},
        {"block-size of type u", BAD_DICT(WITH_EXTRA(block_size_u)), IS_WRONG_TYPE},

        /* Limits per caller and per client. */
        {"CreateClient beyond MaxClientsPerCaller", .call = CALL_CREATE_CLIENT,
         .destination = "one too many", .setup = SETUP_FULL_CLIENTS,
         .error = COAPCLIENTD_ERROR_TOO_MANY_CLIENTS},
        {"CreateClient with a name of 256 bytes", .call = CALL_CREATE_CLIENT,
         .destination = long_name, .error = COAPCLIENTD_ERROR_INVALID_ARGUMENT,
         .detail = "longer than 255 bytes"},
        {"Request beyond MaxRequestsPerClient", BAD_DICT(GET()), .setup = SETUP_FULL_REQUESTS,
         .error = COAPCLIENTD_ERROR_TOO_MANY_REQUESTS},

        /* Request ids that are not the client's requests in flight. */
        {"Cancel of an id never issued", .call = CALL_ID, .member = "Cancel", .id = 424242,
         .error = COAPCLIENTD_ERROR_UNKNOWN_REQUEST},
        {"Cancel of id 0", .call = CALL_ID, .member = "Cancel", .id = 0,
         .error = COAPCLIENTD_ERROR_UNKNOWN_REQUEST},
        {"Cancel of id 2^64-1", .call = CALL_ID, .member = "Cancel", .id = UINT64_MAX,
         .error = COAPCLIENTD_ERROR_UNKNOWN_REQUEST},
        {"DeregisterObserve of an id never issued", .call = CALL_ID, .member = "DeregisterObserve",
         .id = 424242, .error = COAPCLIENTD_ERROR_UNKNOWN_REQUEST},
        {"Cancel of a finished request", .call = CALL_ID, .member = "Cancel", .id_kind = ID_OWN,
         .setup = SETUP_OWN_FINISHED, .error = COAPCLIENTD_ERROR_UNKNOWN_REQUEST},
        {"DeregisterObserve of a finished request", .call = CALL_ID, .member = "DeregisterObserve",
         .id_kind = ID_OWN, .setup = SETUP_OWN_FINISHED,
         .error = COAPCLIENTD_ERROR_UNKNOWN_REQUEST},
        {"Cancel of a cancelled request", .call = CALL_ID, .member = "Cancel", .id_kind = ID_OWN,
         .setup = SETUP_OWN_CANCELLED, .error = COAPCLIENTD_ERROR_UNKNOWN_REQUEST},
        {"DeregisterObserve of a request that is no observation", .call = CALL_ID,
         .member = "DeregisterObserve", .id_kind = ID_OWN, .setup = SETUP_OWN_PLAIN,
         .error = COAPCLIENTD_ERROR_NOT_OBSERVING},
        {"Cancel of a sibling client's request", .call = CALL_ID, .member = "Cancel",
         .id_kind = ID_SIBLING, .setup = SETUP_SIBLING, .error = COAPCLIENTD_ERROR_UNKNOWN_REQUEST},
        {"DeregisterObserve of a sibling client's request", .call = CALL_ID,
         .member = "DeregisterObserve", .id_kind = ID_SIBLING, .setup = SETUP_SIBLING,
         .error = COAPCLIENTD_ERROR_UNKNOWN_REQUEST},
        {"Cancel of another caller's request", .call = CALL_ID, .member = "Cancel",
         .id_kind = ID_VICTIM, .setup = SETUP_VICTIM, .error = COAPCLIENTD_ERROR_UNKNOWN_REQUEST},
        {"DeregisterObserve of another caller's request", .call = CALL_ID,
         .member = "DeregisterObserve", .id_kind = ID_VICTIM, .setup = SETUP_VICTIM,
         .error = COAPCLIENTD_ERROR_UNKNOWN_REQUEST},

        /* Another caller's client object: every method and property, as if it did not exist. */
        {"Request on another caller's client", REQUEST(FD_UDP_CONNECTED, "", .req = GET()),
         .target = TARGET_VICTIM, .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"Cancel on another caller's client", .call = CALL_ID, .member = "Cancel",
         .target = TARGET_VICTIM, .id_kind = ID_VICTIM, .setup = SETUP_VICTIM,
         .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"CancelAll on another caller's client", .call = CALL_VOID, .member = "CancelAll",
         .target = TARGET_VICTIM, .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"DeregisterObserve on another caller's client", .call = CALL_ID,
         .member = "DeregisterObserve", .target = TARGET_VICTIM, .id_kind = ID_VICTIM,
         .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"Close on another caller's client", .call = CALL_VOID, .member = "Close",
         .target = TARGET_VICTIM, .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"SetCredentials on another caller's client", RAW("SetCredentials", "a{sv}h"),
         .target = TARGET_VICTIM, .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"ClearCredentials on another caller's client", .call = CALL_VOID,
         .member = "ClearCredentials", .target = TARGET_VICTIM, .setup = SETUP_VICTIM,
         .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"unknown method on another caller's client", .call = CALL_VOID, .member = "Frobnicate",
         .target = TARGET_VICTIM, .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"Get Name of another caller's client", .call = CALL_GET, .member = "Name",
         .target = TARGET_VICTIM, .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"Get Owner of another caller's client", .call = CALL_GET, .member = "Owner",
         .target = TARGET_VICTIM, .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"Get RequestsInFlight of another caller's client", .call = CALL_GET,
         .member = "RequestsInFlight", .target = TARGET_VICTIM, .setup = SETUP_VICTIM,
         .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"Get RequestsCompleted of another caller's client", .call = CALL_GET,
         .member = "RequestsCompleted", .target = TARGET_VICTIM, .setup = SETUP_VICTIM,
         .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"Get RequestsFailed of another caller's client", .call = CALL_GET,
         .member = "RequestsFailed", .target = TARGET_VICTIM, .setup = SETUP_VICTIM,
         .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"Get ResponsesDelivered of another caller's client", .call = CALL_GET,
         .member = "ResponsesDelivered", .target = TARGET_VICTIM, .setup = SETUP_VICTIM,
         .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"Get Secure of another caller's client", .call = CALL_GET, .member = "Secure",
         .target = TARGET_VICTIM, .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"GetAll of another caller's client", .call = CALL_GET_ALL, .target = TARGET_VICTIM,
         .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"Set Name of another caller's client", .call = CALL_SET, .member = "Name",
         .target = TARGET_VICTIM, .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"Introspect another caller's client", .call = CALL_INTROSPECT, .target = TARGET_VICTIM,
         .setup = SETUP_VICTIM, .error = TEST_ERROR_UNKNOWN_OBJECT},

        /* Client paths that name no client. */
        {"client that never was", .call = CALL_VOID, .member = "CancelAll", .target = TARGET_PATH,
         .path = COAPCLIENTD_CLIENT_PREFIX "/999999", .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"client 0", .call = CALL_VOID, .member = "CancelAll", .target = TARGET_PATH,
         .path = COAPCLIENTD_CLIENT_PREFIX "/0", .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"client id beyond 2^64", .call = CALL_VOID, .member = "CancelAll", .target = TARGET_PATH,
         .path = COAPCLIENTD_CLIENT_PREFIX "/99999999999999999999999",
         .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"client id not a number", .call = CALL_VOID, .member = "CancelAll", .target = TARGET_PATH,
         .path = COAPCLIENTD_CLIENT_PREFIX "/x", .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"own client id with a leading zero", .call = CALL_VOID, .member = "CancelAll",
         .target = TARGET_OWN_LEADING_ZERO, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"below the own client", .call = CALL_VOID, .member = "CancelAll",
         .target = TARGET_OWN_CHILD, .error = TEST_ERROR_UNKNOWN_OBJECT},
        {"closed client", .call = CALL_VOID, .member = "CancelAll", .target = TARGET_CLOSED,
         .setup = SETUP_CLOSED_CLIENT, .error = TEST_ERROR_UNKNOWN_OBJECT},
        /* The prefix is an object of everybody's (it enumerates the caller's clients). */
        {"Client method on the client prefix", .call = CALL_VOID, .member = "CancelAll",
         .target = TARGET_PATH, .path = COAPCLIENTD_CLIENT_PREFIX,
         .error = TEST_ERROR_UNKNOWN_METHOD},

        /* Unknown members and interfaces, read-only properties. */
        {"unknown Client method", .call = CALL_VOID, .member = "Frobnicate",
         .error = TEST_ERROR_UNKNOWN_METHOD},
        {"unknown Manager method", .call = CALL_VOID, .member = "Frobnicate", .target = TARGET_ROOT,
         .error = TEST_ERROR_UNKNOWN_METHOD},
        {"Client method on the Manager", .call = CALL_VOID, .member = "CancelAll",
         .target = TARGET_ROOT, .error = TEST_ERROR_UNKNOWN_METHOD},
        {"Manager method on a client", .call = CALL_VOID, .member = "ListClients",
         .error = TEST_ERROR_UNKNOWN_METHOD},
        {"unknown interface on a client", .call = CALL_VOID, .member = "CancelAll",
         .interface = COAPCLIENTD_BUS_NAME ".Bogus", .error = TEST_ERROR_UNKNOWN_METHOD},
        {"unknown Manager property", .call = CALL_GET, .member = "Bogus", .target = TARGET_ROOT,
         .error = ERROR_UNKNOWN_PROPERTY},
        {"Set Manager Version", .call = CALL_SET, .member = "Version", .target = TARGET_ROOT,
         .error = ERROR_PROPERTY_READ_ONLY},
        {"Set Client Name", .call = CALL_SET, .member = "Name", .error = ERROR_PROPERTY_READ_ONLY},

        /* Signatures other than the contract's. */
        {"Request(s)", RAW("Request", "s"), .error = TEST_ERROR_INVALID_ARGS},
        {"Request(hs)", RAW("Request", "hs"), .error = TEST_ERROR_INVALID_ARGS},
        {"Request(hsa{ss})", RAW("Request", "hsa{ss}"), .error = TEST_ERROR_INVALID_ARGS},
        {"Request(hsa{sv}u)", RAW("Request", "hsa{sv}u"), .error = TEST_ERROR_INVALID_ARGS},
        {"Request(usa{sv})", RAW("Request", "usa{sv}"), .error = TEST_ERROR_INVALID_ARGS},
        {"Cancel(u)", RAW("Cancel", "u"), .error = TEST_ERROR_INVALID_ARGS},
        {"Cancel()", RAW("Cancel", ""), .error = TEST_ERROR_INVALID_ARGS},
        {"DeregisterObserve(s)", RAW("DeregisterObserve", "s"), .error = TEST_ERROR_INVALID_ARGS},
        {"CancelAll(t)", RAW("CancelAll", "t"), .error = TEST_ERROR_INVALID_ARGS},
        {"Close(t)", RAW("Close", "t"), .error = TEST_ERROR_INVALID_ARGS},
        {"SetCredentials(a{sv})", RAW("SetCredentials", "a{sv}"), .error = TEST_ERROR_INVALID_ARGS},
        {"CreateClient(u)", RAW("CreateClient", "u"), .target = TARGET_ROOT,
         .error = TEST_ERROR_INVALID_ARGS},
        {"CreateClient()", RAW("CreateClient", ""), .target = TARGET_ROOT,
         .error = TEST_ERROR_INVALID_ARGS},
        {"ListClients(s)", RAW("ListClients", "s"), .target = TARGET_ROOT,
         .error = TEST_ERROR_INVALID_ARGS},
};

static void setup_inputs(void) {
        memcpy(long_segment_path, "a/", 2);
        memset(long_segment_path + 2, 's', 256);
        memcpy(long_query_path, "a?", 2);
        memset(long_query_path + 2, 'q', 256);
        /* 1025 bytes of short segments: only the total is too long. */
        for (size_t i = 0; i + 1 < sizeof(long_path); i++)
                long_path[i] = i % 2 == 0 ? 'p' : '/';
        memset(long_destination, '1', sizeof(long_destination) - 1);
        memcpy(long_destination + sizeof(long_destination) - 6, ":5683", 5);
        long_bracket_destination[0] = '[';
        memset(long_bracket_destination + 1, '1', 200);
        memcpy(long_bracket_destination + 201, "]:5683", 7);
        memset(long_name, 'n', sizeof(long_name) - 1);
        memset(option_value, 'o', sizeof(option_value));
        for (size_t i = 0; i < ELEMENTSOF(too_many_options); i++)
                /* Distinct elective, safe-to-forward numbers. */
                too_many_options[i] = (TestOption){.number = (uint16_t) (2048 + 4 * i),
                                                   .value = (const uint8_t *) "v",
                                                   .len = 1};
}

static int fd_or_errno(int fd) {
        return fd < 0 ? -errno : fd;
}

static int make_tcp_connected(int *ret_listener) {
        _cleanup_close_ int listener = -EBADF, fd = -EBADF;
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sin);

        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listener < 0)
                return -errno;
        if (bind(listener, (struct sockaddr *) &sin, len) < 0 || listen(listener, 1) < 0 ||
            getsockname(listener, (struct sockaddr *) &sin, &len) < 0)
                return -errno;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sin, len) < 0)
                return -errno;
        *ret_listener = TAKE_FD(listener);
        return TAKE_FD(fd);
}

/* The descriptor of a Request row, or a negative errno when the kernel refuses to make it. */
static int make_fd(FdKind kind, int *keep) {
        _cleanup_close_ int fd = -EBADF;
        int fds[2], one = 1;

        switch (kind) {
        case FD_UDP_CONNECTED:
                return test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        case FD_UDP_UNCONNECTED:
                return test_udp_socket(AF_INET, NULL, 0);
        case FD_UDP6_UNCONNECTED:
                return test_udp_socket(AF_INET6, NULL, 0);
        case FD_UDP6_V6ONLY:
                fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
                        return -errno;
                return TAKE_FD(fd);
        case FD_UDP_SHUT_DOWN:
                fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
                if (fd < 0)
                        return fd;
                if (shutdown(fd, SHUT_RDWR) < 0)
                        return -errno;
                return TAKE_FD(fd);
        case FD_PIPE_READ:
        case FD_PIPE_WRITE:
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return -errno;
                close(fds[kind == FD_PIPE_READ ? 1 : 0]);
                return fds[kind == FD_PIPE_READ ? 0 : 1];
        case FD_DEV_NULL:
                return fd_or_errno(open("/dev/null", O_RDWR | O_CLOEXEC));
        case FD_REGULAR_FILE: {
                char path[] = "/tmp/test-hostile.XXXXXX";

                fd = mkostemp(path, O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                (void) unlink(path);
                return TAKE_FD(fd);
        }
        case FD_DIRECTORY:
                return fd_or_errno(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        case FD_O_PATH:
                return fd_or_errno(open("/", O_PATH | O_CLOEXEC));
        case FD_EVENTFD:
                return fd_or_errno(eventfd(0, EFD_CLOEXEC));
        case FD_MEMFD:
                return fd_or_errno(memfd_create("test-hostile", MFD_CLOEXEC));
        case FD_TIMERFD:
                return fd_or_errno(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
        case FD_EPOLL:
                return fd_or_errno(epoll_create1(EPOLL_CLOEXEC));
        case FD_TCP:
                return fd_or_errno(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        case FD_TCP_LISTENING:
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || listen(fd, 1) < 0)
                        return -errno;
                return TAKE_FD(fd);
        case FD_TCP_CONNECTED:
                return make_tcp_connected(keep);
        case FD_TCP6:
                return fd_or_errno(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
        case FD_UNIX_STREAM:
                return fd_or_errno(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        case FD_UNIX_DGRAM:
                return fd_or_errno(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        case FD_UNIX_SEQPACKET:
                return fd_or_errno(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        case FD_NETLINK:
                return fd_or_errno(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE));
        case FD_PACKET:
                return fd_or_errno(socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        case FD_RAW:
                return fd_or_errno(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP));
        case FD_RAW6:
                return fd_or_errno(socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP));
        case FD_UDPLITE:
                return fd_or_errno(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDPLITE));
        case FD_ICMP_PING:
                return fd_or_errno(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP));
        }
        return -EINVAL;
}

static bool kernel_refused(int r) {
        return r == -EPERM || r == -EACCES || r == -EAFNOSUPPORT || r == -EPROTONOSUPPORT ||
               r == -ESOCKTNOSUPPORT;
}

static void assert_error(int r, const sd_bus_error *error, const char *expected, const char *what) {
        ck_assert_msg(r < 0, "%s: accepted, expected %s", what, expected);
        ck_assert_msg(sd_bus_error_has_name(error, expected), "%s: got %s (%s), expected %s", what,
                      error->name, error->message, expected);
}

/* The final -ECANCELED of id, after a Cancel that must succeed: the request was still there.
 * Before it, at most max_notifications notifications of an observation. */
static void cancel_and_collect(TestBus *b, const char *client, uint64_t id,
                               size_t max_notifications) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        TestResponse *resp = NULL;
        size_t n;

        ck_assert_msg(test_bus_call_id(b, client, "Cancel", id, &error) >= 0,
                      "request %" PRIu64 " did not survive: %s", id, error.name);
        ck_assert_int_eq(test_bus_collect(b, id, 5 * USEC_PER_SEC, &resp, &n), 0);
        ck_assert_uint_le(n - 1, max_notifications);
        for (size_t i = 0; i + 1 < n; i++)
                ck_assert(resp[i].result == 0x45 && !resp[i].final);
        ck_assert_int_eq(resp[n - 1].result, -ECANCELED);
        ck_assert(resp[n - 1].final);
        test_responses_free(resp, n);
}

static uint64_t request_silent(Ctx *ctx, TestBus *b, const char *client, bool observe) {
        uint64_t id;

        ck_assert_int_ge(
                test_bus_request(
                        b, client, ctx->silent_fd, "",
                        &(TestRequest){.method = TEST_GET, .path = "quiet", .observe = observe},
                        &id, NULL),
                0);
        return id;
}

static void await_idle(TestBus *b, uint32_t clients, uint32_t callers) {
        ck_assert_uint_eq(test_bus_await_manager_u32(b, "RequestsInFlight", 0, USEC_PER_SEC), 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(b, "Sockets", 0, USEC_PER_SEC), 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(b, "Clients", clients, USEC_PER_SEC), clients);
        ck_assert_uint_eq(test_bus_await_manager_u32(b, "Callers", callers, USEC_PER_SEC), callers);
}

static void ctx_open(Ctx *ctx) {
        *ctx = (Ctx){.fd = -EBADF, .keep = -EBADF, .silent = -EBADF, .silent_fd = -EBADF};
        setup_inputs();
        ck_assert_int_eq(test_bus_new(&ctx->bus), 0);
        /* The callers of earlier rows are gone once the daemon has seen their disconnect. */
        await_idle(ctx->bus, 0, 0);
        ck_assert_int_eq(test_bus_create_client(ctx->bus, "hostile", &ctx->client, NULL), 0);
        ctx->fds = test_daemon_fd_count();
        ck_assert_int_gt(ctx->fds, 0);
}

static void ctx_setup(Ctx *ctx, const Row *row) {
        uint16_t port;

        ctx->setup = row->setup;
        if (row->setup & (SETUP_VICTIM | SETUP_SIBLING | SETUP_OWN_PLAIN | SETUP_OWN_CANCELLED |
                          SETUP_FULL_REQUESTS)) {
                ctx->silent = test_udp_silent(AF_INET, &port);
                ck_assert_int_ge(ctx->silent, 0);
                ctx->silent_fd = test_udp_socket(AF_INET, "127.0.0.1", port);
                ck_assert_int_ge(ctx->silent_fd, 0);
        }
        if (row->setup & SETUP_VICTIM) {
                ck_assert_int_eq(test_bus_new(&ctx->victim), 0);
                ck_assert_int_eq(
                        test_bus_create_client(ctx->victim, "victim", &ctx->victim_client, NULL),
                        0);
                ctx->victim_id = request_silent(ctx, ctx->victim, ctx->victim_client, true);
        }
        if (row->setup & SETUP_SIBLING) {
                ck_assert_int_eq(test_bus_create_client(ctx->bus, "sibling", &ctx->sibling, NULL),
                                 0);
                ctx->sibling_id = request_silent(ctx, ctx->bus, ctx->sibling, true);
        }
        if (row->setup & SETUP_OWN_PLAIN)
                ctx->own_id = request_silent(ctx, ctx->bus, ctx->client, false);
        if (row->setup & SETUP_OWN_CANCELLED) {
                ctx->own_id = request_silent(ctx, ctx->bus, ctx->client, true);
                cancel_and_collect(ctx->bus, ctx->client, ctx->own_id, 0);
        }
        if (row->setup & SETUP_OWN_FINISHED) {
                _cleanup_close_ int fd =
                        test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
                TestResponse *resp = NULL;
                size_t n;

                ck_assert_int_ge(fd, 0);
                ck_assert_int_ge(
                        test_bus_request(ctx->bus, ctx->client, fd, "",
                                         &(TestRequest){.method = TEST_GET, .path = "time"},
                                         &ctx->own_id, NULL),
                        0);
                ck_assert_int_eq(
                        test_bus_collect(ctx->bus, ctx->own_id, 5 * USEC_PER_SEC, &resp, &n), 0);
                ck_assert_int_eq(resp[n - 1].result, 0x45);
                test_responses_free(resp, n);
        }
        if (row->setup & SETUP_FULL_CLIENTS) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                uint32_t max;

                ck_assert_int_ge(test_bus_get_manager_u32(ctx->bus, "MaxClientsPerCaller", &max),
                                 0);
                ck_assert_uint_le(max, 4096);
                ctx->clients = calloc(max, sizeof(char *));
                ck_assert_ptr_nonnull(ctx->clients);
                /* The context's client is the first. */
                for (; ctx->n_clients + 1 < max; ctx->n_clients++)
                        ck_assert_msg(test_bus_create_client(ctx->bus, "more",
                                                             &ctx->clients[ctx->n_clients],
                                                             &error) >= 0,
                                      "client %zu of %u: %s", ctx->n_clients + 2, max, error.name);
        }
        if (row->setup & SETUP_FULL_REQUESTS) {
                uint32_t max;

                ck_assert_int_ge(test_bus_get_manager_u32(ctx->bus, "MaxRequestsPerClient", &max),
                                 0);
                ck_assert_uint_le(max, 4096);
                ctx->ids = calloc(max, sizeof(uint64_t));
                ck_assert_ptr_nonnull(ctx->ids);
                for (; ctx->n_ids < max; ctx->n_ids++)
                        ctx->ids[ctx->n_ids] = request_silent(ctx, ctx->bus, ctx->client, false);
        }
        if (row->setup & SETUP_CLOSED_CLIENT) {
                ck_assert_int_eq(test_bus_create_client(ctx->bus, "closed", &ctx->closed, NULL), 0);
                ck_assert_int_ge(test_bus_call_void(ctx->bus, ctx->closed, "Close", NULL), 0);
        }
        if (row->setup & SETUP_PAYLOAD_OVER) {
                uint32_t max;

                ck_assert_int_ge(test_bus_get_manager_u32(ctx->bus, "MaxPayloadBytes", &max), 0);
                /* dbus-daemon's message size limit is far above any sane MaxPayloadBytes. */
                ck_assert_uint_le(max, 16 * 1024 * 1024);
                ctx->payload = calloc(1, (size_t) max + 1);
                ck_assert_ptr_nonnull(ctx->payload);
        }
}

static const char *row_path(Ctx *ctx, const Row *row) {
        switch (row->target) {
        case TARGET_OWN:
                return ctx->client;
        case TARGET_VICTIM:
                return ctx->victim_client;
        case TARGET_ROOT:
                return COAPCLIENTD_ROOT_PATH;
        case TARGET_PATH:
                return row->path;
        case TARGET_OWN_LEADING_ZERO:
                snprintf(ctx->path, sizeof(ctx->path), COAPCLIENTD_CLIENT_PREFIX "/0%s",
                         strrchr(ctx->client, '/') + 1);
                return ctx->path;
        case TARGET_OWN_CHILD:
                snprintf(ctx->path, sizeof(ctx->path), "%s/1", ctx->client);
                return ctx->path;
        case TARGET_CLOSED:
                return ctx->closed;
        }
        return NULL;
}

static const char *row_interface(const Row *row) {
        if (row->interface)
                return row->interface;
        return row->target == TARGET_ROOT ? COAPCLIENTD_MANAGER_IFACE : COAPCLIENTD_CLIENT_IFACE;
}

static uint64_t row_id(const Ctx *ctx, const Row *row) {
        switch (row->id_kind) {
        case ID_LITERAL:
                return row->id;
        case ID_OWN:
                return ctx->own_id;
        case ID_VICTIM:
                return ctx->victim_id;
        case ID_SIBLING:
                return ctx->sibling_id;
        }
        return 0;
}

/* Appends one plausible value per type of signature (h s u t a{ss} a{sv}). */
static int append_signature(sd_bus_message *m, const char *sig, int fd) {
        while (*sig) {
                int r;

                if (strncmp(sig, "a{ss}", 5) == 0) {
                        r = sd_bus_message_append(m, "a{ss}", 1, "method", "GET");
                        sig += 5;
                } else if (strncmp(sig, "a{sv}", 5) == 0) {
                        r = sd_bus_message_append(m, "a{sv}", 1, "method", "y", (uint8_t) TEST_GET);
                        sig += 5;
                } else {
                        switch (*sig) {
                        case 'h':
                                r = sd_bus_message_append(m, "h", fd);
                                break;
                        case 's':
                                r = sd_bus_message_append(m, "s", "");
                                break;
                        case 'u':
                                r = sd_bus_message_append(m, "u", (uint32_t) 1);
                                break;
                        case 't':
                                r = sd_bus_message_append(m, "t", (uint64_t) 1);
                                break;
                        default:
                                return -EINVAL;
                        }
                        sig++;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int row_call(Ctx *ctx, const Row *row, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *path = row_path(ctx, row), *iface = row_interface(row);
        sd_bus *bus = ctx->bus->bus;
        TestRequest req = row->req;
        char *s = NULL;
        int r;

        ck_assert_ptr_nonnull(path);
        switch (row->call) {
        case CALL_REQUEST:
                if (ctx->payload) {
                        uint32_t max;

                        ck_assert_int_ge(
                                test_bus_get_manager_u32(ctx->bus, "MaxPayloadBytes", &max), 0);
                        req.payload = ctx->payload;
                        req.payload_len = (size_t) max + 1;
                }
                return test_bus_request(ctx->bus, path, ctx->fd, row->destination, &req, NULL,
                                        error);
        case CALL_RAW:
                r = sd_bus_message_new_method_call(bus, &m, COAPCLIENTD_BUS_NAME, path, iface,
                                                   row->member);
                ck_assert_int_ge(r, 0);
                ck_assert_int_ge(append_signature(m, row->signature, ctx->fd), 0);
                if (row->dict)
                        ck_assert_int_ge(row->dict(m), 0);
                return sd_bus_call(bus, m, 10 * USEC_PER_SEC, error, NULL);
        case CALL_ID:
                return sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME, path, iface, row->member,
                                          error, NULL, "t", row_id(ctx, row));
        case CALL_VOID:
                return sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME, path, iface, row->member,
                                          error, NULL, NULL);
        case CALL_GET:
                return sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME, path, PROPERTIES_IFACE, "Get",
                                          error, NULL, "ss", iface, row->member);
        case CALL_GET_ALL:
                return sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME, path, PROPERTIES_IFACE,
                                          "GetAll", error, NULL, "s", iface);
        case CALL_SET:
                return sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME, path, PROPERTIES_IFACE, "Set",
                                          error, NULL, "ssv", iface, row->member, "s", "x");
        case CALL_INTROSPECT:
                return sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME, path,
                                          "org.freedesktop.DBus.Introspectable", "Introspect",
                                          error, NULL, NULL);
        case CALL_CREATE_CLIENT:
                r = test_bus_create_client(ctx->bus, row->destination, &s, error);
                free(s);
                return r;
        }
        return -EINVAL;
}

/* What the setup put in flight survived the row; then everything is released. */
static void ctx_teardown(Ctx *ctx) {
        if (ctx->victim) {
                cancel_and_collect(ctx->victim, ctx->victim_client, ctx->victim_id, 0);
                ck_assert_uint_eq(test_bus_count_queued(ctx->victim, UINT64_MAX), 0);
                ctx->victim = test_bus_free(ctx->victim);
                free(ctx->victim_client);
        }
        if (ctx->sibling) {
                cancel_and_collect(ctx->bus, ctx->sibling, ctx->sibling_id, 0);
                ck_assert_int_ge(test_bus_call_void(ctx->bus, ctx->sibling, "Close", NULL), 0);
                free(ctx->sibling);
        }
        if (ctx->setup & SETUP_OWN_PLAIN)
                cancel_and_collect(ctx->bus, ctx->client, ctx->own_id, 0);
        for (size_t i = 0; i < ctx->n_clients; i++) {
                ck_assert_int_ge(test_bus_call_void(ctx->bus, ctx->clients[i], "Close", NULL), 0);
                free(ctx->clients[i]);
        }
        free(ctx->clients);
        if (ctx->n_ids > 0) {
                ck_assert_int_ge(test_bus_call_void(ctx->bus, ctx->client, "CancelAll", NULL), 0);
                for (size_t i = 0; i < ctx->n_ids; i++) {
                        TestResponse *resp = NULL;
                        size_t n;

                        ck_assert_int_eq(test_bus_collect(ctx->bus, ctx->ids[i], 5 * USEC_PER_SEC,
                                                          &resp, &n),
                                         0);
                        ck_assert_int_eq(resp[n - 1].result, -ECANCELED);
                        test_responses_free(resp, n);
                }
        }
        free(ctx->ids);
        free(ctx->payload);
        free(ctx->closed);
        safe_close(ctx->silent_fd);
        safe_close(ctx->silent);
        safe_close(ctx->keep);
        safe_close(ctx->fd);
}

/* The daemon is up, holds only the context's client and caller, no request or socket, and no
 * more fds than before the row; the hostile caller got no Response. */
static void ctx_close(Ctx *ctx) {
        ck_assert(test_daemon_alive());
        await_idle(ctx->bus, 1, 1);
        ck_assert_int_eq(test_bus_await_daemon_fds(ctx->bus, ctx->fds, USEC_PER_SEC), ctx->fds);
        ck_assert_uint_eq(test_bus_count_queued(ctx->bus, UINT64_MAX), 0);
        ctx->bus = test_bus_free(ctx->bus);
        free(ctx->client);
}

START_TEST(test_row) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const Row *row = &rows[_i];
        Ctx ctx;
        int r;

        ctx_open(&ctx);
        if (row->call == CALL_REQUEST || (row->call == CALL_RAW && strchr(row->signature, 'h'))) {
                ctx.fd = make_fd(row->fd, &ctx.keep);
                if (kernel_refused(ctx.fd)) {
                        printf("# SKIP '%s': %s\n", row->name, strerror(-ctx.fd));
                        fflush(stdout);
                        ctx_close(&ctx);
                        return;
                }
                ck_assert_msg(ctx.fd >= 0, "%s: %s", row->name, strerror(-ctx.fd));
        }
        ctx_setup(&ctx, row);
        r = row_call(&ctx, row, &error);
        assert_error(r, &error, row->error, row->name);
        if (row->detail)
                ck_assert_msg(strstr(error.message, row->detail), "%s: message '%s' lacks '%s'",
                              row->name, error.message, row->detail);
        ctx_teardown(&ctx);
        ctx_close(&ctx);
}
END_TEST

/* Inputs that sd-bus refuses to send, so they never reach the daemon: a closed descriptor and a
 * string that is not UTF-8 (dbus-daemon would also drop such a message). */
START_TEST(test_unsendable) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        int fds[2];

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_ge(sd_bus_message_new_method_call(b->bus, &m, COAPCLIENTD_BUS_NAME,
                                                        COAPCLIENTD_CLIENT_PREFIX "/1",
                                                        COAPCLIENTD_CLIENT_IFACE, "Request"),
                         0);
        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        close(fds[0]);
        close(fds[1]);
        ck_assert_int_eq(sd_bus_message_append(m, "h", fds[0]), -EBADF);
        m = sd_bus_message_unref(m);
        ck_assert_int_ge(sd_bus_message_new_method_call(b->bus, &m, COAPCLIENTD_BUS_NAME,
                                                        COAPCLIENTD_CLIENT_PREFIX "/1",
                                                        COAPCLIENTD_CLIENT_IFACE, "Request"),
                         0);
        ck_assert_int_eq(sd_bus_message_append(m, "s", "\xff\xfe"), -EINVAL);
}
END_TEST

/* A second caller B can neither cancel nor deregister the first caller A's request through its
 * own client, nor receive its Responses: A's request completes as if B had not been there. */
START_TEST(test_other_caller_cannot_interfere) {
        _cleanup_(sd_bus_error_free) sd_bus_error e1 = SD_BUS_ERROR_NULL, e2 = SD_BUS_ERROR_NULL;
        _cleanup_(test_bus_freep) TestBus *a = NULL, *b = NULL;
        _cleanup_free_ char *client_a = NULL, *client_b = NULL;
        _cleanup_close_ int fd = -EBADF;
        TestResponse *resp = NULL;
        uint64_t id, observation;
        size_t n;

        ck_assert_int_eq(test_bus_new(&a), 0);
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(a, "a", &client_a, NULL), 0);
        ck_assert_int_eq(test_bus_create_client(b, "b", &client_b, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        /* A separate response after one second: in flight during all of B's attempts. */
        ck_assert_int_ge(test_bus_request(a, client_a, fd, "",
                                          &(TestRequest){.method = TEST_GET, .path = "async?1"},
                                          &id, NULL),
                         0);
        ck_assert_int_ge(
                test_bus_request(
                        a, client_a, fd, "",
                        &(TestRequest){.method = TEST_GET, .path = "time", .observe = true},
                        &observation, NULL),
                0);

        assert_error(test_bus_call_id(b, client_b, "Cancel", id, &e1), &e1,
                     COAPCLIENTD_ERROR_UNKNOWN_REQUEST, "B cancels A's request");
        assert_error(test_bus_call_id(b, client_b, "DeregisterObserve", observation, &e2), &e2,
                     COAPCLIENTD_ERROR_UNKNOWN_REQUEST, "B deregisters A's observation");
        ck_assert_int_ge(test_bus_call_void(b, client_b, "CancelAll", NULL), 0);
        ck_assert_int_ge(test_bus_call_void(b, client_b, "Close", NULL), 0);

        ck_assert_int_eq(test_bus_collect(a, id, 5 * USEC_PER_SEC, &resp, &n), 0);
        ck_assert_int_eq(resp[n - 1].result, 0x45);
        ck_assert_str_eq((const char *) resp[n - 1].payload, "done");
        test_responses_free(resp, n);
        /* The observation is still registered: A, and only A, can end it. */
        cancel_and_collect(a, client_a, observation, SIZE_MAX);

        ck_assert_int_eq(test_bus_run(b, 100 * USEC_PER_MSEC), 0);
        ck_assert_uint_eq(test_bus_count_queued(b, UINT64_MAX), 0);
}
END_TEST

static void assert_request_error(TestBus *b, const char *client, int fd, const TestRequest *req,
                                 const char *expected, const char *what) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        assert_error(test_bus_request(b, client, fd, "", req, NULL, &error), &error, expected,
                     what);
}

static void assert_create_error(TestBus *b, const char *expected, const char *what) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;

        assert_error(test_bus_create_client(b, "over", &path, &error), &error, expected, what);
}

/* The limits per caller and per client, and in total, on a daemon of its own with tiny limits:
 * 2 clients per caller and 3 in all, 2 requests per client and 3 in all, payloads up to 64
 * bytes. Each refusal names the limit; freeing resources makes room again. */
START_TEST(test_limits) {
        _cleanup_(test_bus_freep) TestBus *a = NULL, *b = NULL;
        _cleanup_free_ char *a1 = NULL, *a2 = NULL, *a3 = NULL, *b1 = NULL;
        _cleanup_close_ int silent = -EBADF, fd = -EBADF;
        const TestRequest get = {.method = TEST_GET, .path = "quiet"};
        uint8_t payload[65] = {};
        TestPrivateDaemon d;
        uint64_t ids[4];
        uint32_t v;
        uint16_t port;
        int fds;

        ck_assert_int_eq(test_private_daemon_start("[Limits]\n"
                                                   "MaxClientsPerCaller=2\n"
                                                   "MaxClients=3\n"
                                                   "MaxRequestsPerClient=2\n"
                                                   "MaxRequests=3\n"
                                                   "MaxPayloadBytes=64\n",
                                                   &d),
                         0);
        ck_assert_int_eq(test_bus_new(&a), 0);
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(a, "MaxClientsPerCaller", &v), 0);
        ck_assert_uint_eq(v, 2);
        ck_assert_int_ge(test_bus_get_manager_u32(a, "MaxRequestsPerClient", &v), 0);
        ck_assert_uint_eq(v, 2);
        ck_assert_int_ge(test_bus_get_manager_u32(a, "MaxPayloadBytes", &v), 0);
        ck_assert_uint_eq(v, 64);
        silent = test_udp_silent(AF_INET, &port);
        ck_assert_int_ge(silent, 0);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);

        /* Clients: A reaches its own limit, B the daemon's. */
        ck_assert_int_eq(test_bus_create_client(a, "a1", &a1, NULL), 0);
        fds = test_daemon_fd_count_settled();
        ck_assert_int_gt(fds, 0);
        ck_assert_int_eq(test_bus_create_client(a, "a2", &a2, NULL), 0);
        assert_create_error(a, COAPCLIENTD_ERROR_TOO_MANY_CLIENTS, "A's third client");
        ck_assert_int_eq(test_bus_create_client(b, "b1", &b1, NULL), 0);
        assert_create_error(b, COAPCLIENTD_ERROR_LIMITS_EXCEEDED, "the daemon's fourth client");

        /* Requests: a1 reaches the client's limit, a2 the daemon's. */
        ck_assert_int_ge(test_bus_request(a, a1, fd, "", &get, &ids[0], NULL), 0);
        ck_assert_int_ge(test_bus_request(a, a1, fd, "", &get, &ids[1], NULL), 0);
        assert_request_error(a, a1, fd, &get, COAPCLIENTD_ERROR_TOO_MANY_REQUESTS,
                             "a1's third request");
        ck_assert_int_ge(test_bus_request(a, a2, fd, "", &get, &ids[2], NULL), 0);
        assert_request_error(a, a2, fd, &get, COAPCLIENTD_ERROR_LIMITS_EXCEEDED,
                             "the daemon's fourth request");
        assert_request_error(b, b1, fd, &get, COAPCLIENTD_ERROR_LIMITS_EXCEEDED,
                             "B's first request beyond the daemon's limit");
        /* The dictionary is checked before the limits. */
        assert_request_error(
                b, b1, fd,
                &(TestRequest){
                        .method = TEST_PUT, .path = "quiet", .payload = payload, .payload_len = 65},
                COAPCLIENTD_ERROR_PAYLOAD_TOO_LARGE, "payload of 65 bytes");

        /* Room again: a1's requests cancelled, then B may send 64 bytes. */
        ck_assert_int_ge(test_bus_call_void(a, a1, "CancelAll", NULL), 0);
        for (size_t i = 0; i < 2; i++) {
                TestResponse *resp = NULL;
                size_t n;

                ck_assert_int_eq(test_bus_collect(a, ids[i], 5 * USEC_PER_SEC, &resp, &n), 0);
                ck_assert_int_eq(resp[n - 1].result, -ECANCELED);
                test_responses_free(resp, n);
        }
        ck_assert_int_ge(test_bus_request(b, b1, fd, "",
                                          &(TestRequest){.method = TEST_PUT,
                                                         .path = "quiet",
                                                         .payload = payload,
                                                         .payload_len = 64},
                                          &ids[3], NULL),
                         0);
        cancel_and_collect(b, b1, ids[3], 0);
        cancel_and_collect(a, a2, ids[2], 0);

        /* B leaves: its client goes, and A may have a client more (but no more than 2). */
        b = test_bus_free(b);
        ck_assert_uint_eq(test_bus_await_manager_u32(a, "Callers", 1, USEC_PER_SEC), 1);
        ck_assert_int_ge(test_bus_call_void(a, a2, "Close", NULL), 0);
        ck_assert_int_eq(test_bus_create_client(a, "a3", &a3, NULL), 0);
        assert_create_error(a, COAPCLIENTD_ERROR_TOO_MANY_CLIENTS, "A's third client again");

        ck_assert_uint_eq(test_bus_await_manager_u32(a, "RequestsInFlight", 0, USEC_PER_SEC), 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(a, "Sockets", 0, USEC_PER_SEC), 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(a, "Clients", 2, USEC_PER_SEC), 2);
        ck_assert_int_eq(test_bus_await_daemon_fds(a, fds, USEC_PER_SEC), fds);
        a = test_bus_free(a);
        ck_assert_int_eq(test_private_daemon_stop(&d), 0);
}
END_TEST

/* A caller that passes a new socket with every request uses up the daemon's file descriptors:
 * the request that finds none left fails with EMFILE, the daemon carries on, and ending requests
 * makes room again. On a daemon of its own that inherits a limit of 64 descriptors. */
START_TEST(test_fd_exhaustion) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(test_bus_freep) TestBus *a = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int silent = -EBADF;
        const TestRequest get = {.method = TEST_GET, .path = "quiet"};
        struct rlimit rl;
        TestPrivateDaemon d;
        unsigned accepted = 0;
        uint64_t id;
        uint16_t port;
        int r = 0;

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        rl.rlim_cur = 64;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        ck_assert_int_eq(test_private_daemon_start("[Limits]\nMaxRequestsPerClient=128\n", &d), 0);
        ck_assert_int_eq(test_bus_new(&a), 0);
        ck_assert_int_eq(test_bus_create_client(a, "greedy", &client, NULL), 0);
        silent = test_udp_silent(AF_INET, &port);
        ck_assert_int_ge(silent, 0);

        /* MaxRequestsPerClient (raised to 128) is not reached first. */
        while (accepted < 64) {
                _cleanup_close_ int fd = test_udp_socket(AF_INET, "127.0.0.1", port);

                ck_assert_int_ge(fd, 0);
                r = test_bus_request(a, client, fd, "", &get, NULL, &error);
                if (r < 0)
                        break;
                accepted++;
        }
        ck_assert_uint_gt(accepted, 0);
        assert_error(r, &error, "System.Error.EMFILE", "request beyond the fd limit");
        ck_assert(test_daemon_alive());

        ck_assert_int_ge(test_bus_call_void(a, client, "CancelAll", NULL), 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(a, "Sockets", 0, USEC_PER_SEC), 0);
        {
                _cleanup_close_ int fd = test_udp_socket(AF_INET, "127.0.0.1", port);

                ck_assert_int_ge(test_bus_request(a, client, fd, "", &get, &id, NULL), 0);
                cancel_and_collect(a, client, id, 0);
        }
        a = test_bus_free(a);
        ck_assert_int_eq(test_private_daemon_stop(&d), 0);
}
END_TEST

START_TEST(test_still_serving) {
        _cleanup_close_ int fd = -EBADF;
        TestResponse *resp = NULL;
        Ctx ctx;
        uint64_t id;
        size_t n;

        ctx_open(&ctx);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(test_bus_request(ctx.bus, ctx.client, fd, "",
                                          &(TestRequest){.method = TEST_GET, .path = "time"}, &id,
                                          NULL),
                         0);
        ck_assert_int_eq(test_bus_collect(ctx.bus, id, 5 * USEC_PER_SEC, &resp, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(resp[0].result, 0x45);
        ck_assert_uint_gt(resp[0].payload_len, 0);
        test_responses_free(resp, n);
        ctx_close(&ctx);
}
END_TEST

static Suite *hostile_suite(void) {
        Suite *s = suite_create("hostile");
        TCase *tc = tcase_create("hostile");

        tcase_set_timeout(tc, 10);
        tcase_add_loop_test(tc, test_row, 0, (int) ELEMENTSOF(rows));
        tcase_add_test(tc, test_unsendable);
        tcase_add_test(tc, test_other_caller_cannot_interfere);
        tcase_add_test(tc, test_still_serving);
        suite_add_tcase(s, tc);

        /* Starts a bus and a daemon of its own. */
        tc = tcase_create("limits");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_limits);
        tcase_add_test(tc, test_fd_exhaustion);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(hostile_suite)
