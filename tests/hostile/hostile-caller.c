/* SPDX-License-Identifier: MIT */
/* The attackers and bystanders of the hostile-caller tests, one command per role. The tests run
 * it as an unprivileged user (setpriv) on the bus of $COAPCLIENTD_BUS_ADDRESS. It reports on
 * stdout, one line each, takes "go" lines on stdin where a role waits for its cue, and leaves
 * (closing every connection) when its stdin ends.
 *
 *   hold N client|channel   N connections, each making one client (or opening its data
 *                           channel) and holding it: "held OK REFUSED", then one
 *                           "refused COUNT NAME: MESSAGE" per distinct refusal and "end"
 *   flood N                 a raw connection that sends N Introspect/GetAll calls and never
 *                           reads: "flooded SENT BYTES" (or "cut SENT BYTES ERRNO" if the bus
 *                           cut it off)
 *   forge N DEST...         N NameOwnerChanged of our bus name and N Response signals on client
 *                           paths 1..N, unicast to each DEST: "forged"
 *   victim N                libcoapclient: an observation and a GET ("ready"), then after "go"
 *                           a second client and N GETs: "victim OK FAILED OBSERVE_ERRORS"
 *   rawwatch                plain sd-bus, a match on Response: "rawwatch UNIQUE", after "go" one
 *                           GET: "rawwatch GENUINE FORGED" (Responses not sent by the daemon)
 *   bystander               libcoapclient client with one GET done ("ready"); after each "go" a
 *                           new connection reads a Manager property and the client GETs again:
 *                           "bystander PROP_USEC GET_CODE GET_USEC"
 *   stall N                 N connections, each with a client and a 96 KiB GET of example_data,
 *                           never reading: "stalled N"
 *   overflow N              one connection, two clients, N GETs of example_data, never
 *                           answering a Ping; once the daemon stops sending:
 *                           "overflow DELIVERED IN_FLIGHT REFUSED cut|connected" (Response
 *                           signals sent; "cut" when the daemon freed its clients)
 *   hog MAX_CONNECTIONS PORT
 *                           everything one user can take: connections with a channel and as
 *                           many clients as allowed, then connections with a channel only, until
 *                           refused; requests with 1 MiB payloads and then
 *                           without, towards 127.0.0.1:PORT (silent), until refused: "hog
 *                           CALLERS CHANNELS CLIENTS REQUESTS PAYLOAD_BYTES", "refused ..." and
 *                           "end"
 *   get                     plain sd-bus, a client and a GET of the peer's "/": "get CODE" or
 *                           "get error NAME: MESSAGE"
 *   register N              a client and a data channel; one socket for the peer registered
 *                           under ids 1..N, then a GET naming id 1 and one naming id N:
 *                           "register CODE RESULT NAME" (the first GET's result, the second's and
 *                           its error name, or "-")
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bus-helper.h"
#include "channel-wire.h"
#include "client-test-util.h"
#include "hostile-util.h"
#include "internal/bus-api.h"
#include "internal/macro.h"
#include "net-helper.h"

#define REFUSALS_MAX 16

/* Distinct refusals, counted. */
typedef struct Refusals {
        char *what[REFUSALS_MAX];
        unsigned count[REFUSALS_MAX];
        size_t n;
        unsigned total;
} Refusals;

static void refusals_add(Refusals *f, const sd_bus_error *e, int r) {
        char buf[512];

        snprintf(buf, sizeof(buf), "%s: %s", e && e->name ? e->name : "errno",
                 e && e->message ? e->message : strerror(-r));
        f->total++;
        for (size_t i = 0; i < f->n; i++)
                if (strcmp(f->what[i], buf) == 0) {
                        f->count[i]++;
                        return;
                }
        if (f->n == REFUSALS_MAX)
                return;
        f->what[f->n] = strdup(buf);
        f->count[f->n++] = 1;
}

static void refusals_print(Refusals *f) {
        for (size_t i = 0; i < f->n; i++) {
                printf("refused %u %s\n", f->count[i], f->what[i] ?: "(out of memory)");
                free(f->what[i]);
        }
        printf("end\n");
        fflush(stdout);
}

/* Waits for "go" on stdin: 0, or -EPIPE when stdin ended first. */
static int await_go(void) {
        char line[64];

        while (fgets(line, sizeof(line), stdin))
                if (strcmp(line, "go\n") == 0)
                        return 0;
        return -EPIPE;
}

static void await_eof(void) {
        char line[64];

        while (fgets(line, sizeof(line), stdin))
                ;
}

static int call_manager(sd_bus *bus, const char *member, sd_bus_error *error,
                        sd_bus_message **reply, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                                           COAPCLIENTD_MANAGER_IFACE, member);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        return sd_bus_call(bus, m, 0, error, reply);
}

static int cmd_hold(unsigned n, bool channel) {
        sd_bus **buses = calloc(n, sizeof(sd_bus *));
        int *fds = calloc(n, sizeof(int));
        Refusals refused = {};
        unsigned ok = 0;

        if (!buses || !fds)
                return EXIT_FAILURE;
        for (unsigned i = 0; i < n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                int r, fd;

                fds[i] = -EBADF;
                r = hostile_bus_open(&buses[i]);
                if (r >= 0)
                        r = call_manager(buses[i], channel ? "OpenChannel" : "CreateClient", &error,
                                         &reply, channel ? NULL : "s", "hold");
                if (r >= 0 && channel) {
                        r = sd_bus_message_read(reply, "h", &fd);
                        if (r >= 0)
                                fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                }
                if (r < 0)
                        refusals_add(&refused, &error, r);
                else
                        ok++;
        }
        printf("held %u %u\n", ok, refused.total);
        refusals_print(&refused);
        await_eof();
        for (unsigned i = 0; i < n; i++) {
                sd_bus_flush_close_unref(buses[i]);
                safe_close(fds[i]);
        }
        free(buses);
        free(fds);
        return EXIT_SUCCESS;
}

/* A raw D-Bus method call: little-endian header with PATH, INTERFACE, MEMBER, DESTINATION and
 * (with a string argument) SIGNATURE. */
static size_t put_field(uint8_t *b, size_t o, uint8_t code, char type, const char *v) {
        size_t len = strlen(v);

        while (o % 8)
                b[o++] = 0;
        b[o++] = code;
        b[o++] = 1;
        b[o++] = (uint8_t) type;
        b[o++] = 0;
        if (type == 'g')
                b[o++] = (uint8_t) len;
        else {
                uint32_t l = (uint32_t) len;

                memcpy(b + o, &l, 4);
                o += 4;
        }
        memcpy(b + o, v, len + 1);
        return o + len + 1;
}

static size_t encode_call(uint8_t *b, uint32_t serial, const char *dest, const char *path,
                          const char *iface, const char *member, const char *arg) {
        uint32_t body_len = 0, fields_len, l;
        size_t o = 16;

        o = put_field(b, o, 1, 'o', path);
        o = put_field(b, o, 2, 's', iface);
        o = put_field(b, o, 3, 's', member);
        o = put_field(b, o, 6, 's', dest);
        if (arg)
                o = put_field(b, o, 8, 'g', "s");
        fields_len = (uint32_t) (o - 16);
        while (o % 8)
                b[o++] = 0;
        if (arg) {
                l = (uint32_t) strlen(arg);
                memcpy(b + o, &l, 4);
                memcpy(b + o + 4, arg, l + 1);
                body_len = 4 + l + 1;
                o += body_len;
        }
        b[0] = 'l';
        b[1] = 1; /* METHOD_CALL */
        b[2] = 0;
        b[3] = 1;
        memcpy(b + 4, &body_len, 4);
        memcpy(b + 8, &serial, 4);
        memcpy(b + 12, &fields_len, 4);
        return o;
}

static int write_all(int fd, const uint8_t *p, size_t len) {
        while (len > 0) {
                ssize_t k = send(fd, p, len, MSG_NOSIGNAL);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                p += k;
                len -= (size_t) k;
        }
        return 0;
}

/* Connects and authenticates by hand: sd-bus would read the replies. */
static int raw_connect(void) {
        const char *address = getenv(COAPCLIENTD_BUS_ADDRESS_ENV), *p, *e;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char auth[128], uid[32], reply[256];
        size_t n = 0;
        int fd;

        if (!address || !(p = strstr(address, "unix:path=")))
                return -EINVAL;
        p += strlen("unix:path=");
        e = strchrnul(p, ',');
        if ((size_t) (e - p) >= sizeof(sa.sun_path))
                return -EINVAL;
        memcpy(sa.sun_path, p, (size_t) (e - p));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                goto fail;
        snprintf(uid, sizeof(uid), "%u", (unsigned) getuid());
        n = (size_t) snprintf(auth, sizeof(auth), "%cAUTH EXTERNAL ", 0);
        for (const char *c = uid; *c; c++)
                n += (size_t) snprintf(auth + n, sizeof(auth) - n, "%02x", (unsigned) *c);
        n += (size_t) snprintf(auth + n, sizeof(auth) - n, "\r\n");
        if (write_all(fd, (const uint8_t *) auth, n) < 0)
                goto fail;
        n = 0;
        while (n < sizeof(reply) - 1 && !memchr(reply, '\n', n)) {
                ssize_t k = read(fd, reply + n, sizeof(reply) - 1 - n);

                if (k <= 0)
                        goto fail;
                n += (size_t) k;
        }
        if (strncmp(reply, "OK ", 3) != 0 || write_all(fd, (const uint8_t *) "BEGIN\r\n", 7) < 0)
                goto fail;
        return fd;
fail:
        close(fd);
        return -EPROTO;
}

static int cmd_flood(unsigned n) {
        _cleanup_close_ int fd = raw_connect();
        _cleanup_free_ uint8_t *buf = malloc(1024 * 1024);
        unsigned sent = 0;
        uint64_t bytes = 0;
        size_t len;
        int r;

        if (fd < 0 || !buf) {
                fprintf(stderr, "flood: cannot connect\n");
                return EXIT_FAILURE;
        }
        len = encode_call(buf, 1, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "Hello", NULL);
        r = write_all(fd, buf, len);
        while (r >= 0 && sent < n) {
                len = 0;
                /* Batches of 256 calls, the largest replies the daemon has (Introspect of the
                 * root object) alternating with property reads. */
                for (unsigned i = 0; i < 256 && sent < n; i++, sent++)
                        len += sent % 2 ? encode_call(buf + len, sent + 2, COAPCLIENTD_BUS_NAME,
                                                      COAPCLIENTD_ROOT_PATH,
                                                      "org.freedesktop.DBus.Properties", "GetAll",
                                                      COAPCLIENTD_MANAGER_IFACE)
                                        : encode_call(buf + len, sent + 2, COAPCLIENTD_BUS_NAME,
                                                      COAPCLIENTD_ROOT_PATH,
                                                      "org.freedesktop.DBus.Introspectable",
                                                      "Introspect", NULL);
                r = write_all(fd, buf, len);
                bytes += len;
        }

        if (r < 0)
                printf("cut %u %" PRIu64 " %d\n", sent, bytes, -r);
        else
                printf("flooded %u %" PRIu64 "\n", sent, bytes);
        fflush(stdout);
        await_eof();
        return EXIT_SUCCESS;
}

static int cmd_forge(unsigned n, char **dests, int n_dests) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *owner = NULL;
        const char *daemon;
        int r;

        r = hostile_bus_open(&bus);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetNameOwner", NULL, &owner, "s",
                                       COAPCLIENTD_BUS_NAME);
        if (r >= 0)
                r = sd_bus_message_read(owner, "s", &daemon);
        for (int d = 0; r >= 0 && d < n_dests; d++)
                for (unsigned i = 0; r >= 0 && i < n; i++) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *noc = NULL, *resp = NULL;
                        char path[128];

                        /* "The daemon left", and "the daemon was replaced". */
                        r = sd_bus_message_new_signal(bus, &noc, "/org/freedesktop/DBus",
                                                      "org.freedesktop.DBus", "NameOwnerChanged");
                        if (r >= 0)
                                r = sd_bus_message_set_destination(noc, dests[d]);
                        if (r >= 0)
                                r = sd_bus_message_append(noc, "sss", COAPCLIENTD_BUS_NAME, daemon,
                                                          i % 2 ? ":1.424242" : "");
                        if (r >= 0)
                                r = sd_bus_send(bus, noc, NULL);
                        snprintf(path, sizeof(path), COAPCLIENTD_CLIENT_PREFIX "/%u", i + 1);
                        if (r >= 0)
                                r = sd_bus_message_new_signal(bus, &resp, path,
                                                              COAPCLIENTD_CLIENT_IFACE, "Response");
                        if (r >= 0)
                                r = sd_bus_message_set_destination(resp, dests[d]);
                        if (r >= 0)
                                r = sd_bus_message_append(resp, "tit", (uint64_t) i + 1, 0x45,
                                                          UINT64_C(0));
                        if (r >= 0)
                                r = sd_bus_message_append_array(resp, 'y', "forged", 6);
                        if (r >= 0)
                                r = sd_bus_message_append(resp, "bba{sv}", true, true, 0);
                        if (r >= 0)
                                r = sd_bus_send(bus, resp, NULL);
                }
        /* The bus handles one connection's messages in order: once it answers this, it has
         * delivered (or refused) every signal above. */
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetId", NULL, NULL, NULL);
        if (r < 0) {
                fprintf(stderr, "forge: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        printf("forged\n");
        fflush(stdout);
        await_eof();
        return EXIT_SUCCESS;
}

/* For the libcoapclient roles: requests may still call back into this stack frame. */
_Noreturn static void die(const char *role, const char *what, int r) {
        printf("# %s: %s: %s\n", role, what, strerror(r < 0 ? -r : r));
        fflush(stdout);
        _exit(EXIT_FAILURE);
}

static int cmd_victim(unsigned n) {
        struct coap_client c1 = {}, c2 = {};
        Recorder get, obs;
        struct coap_client_request obs_req, req;
        unsigned ok = 0, failed = 0, obs_errors;
        int fd1 = -EBADF, fd2 = -EBADF, r;

        recorder_init(&get);
        recorder_init(&obs);
        req = make_request(COAP_METHOD_GET, "/", &get);
        r = coap_client_init(&c1, "victim");
        if (r < 0)
                die("victim", "coap_client_init", r);
        fd1 = peer_socket(true);
        fd2 = peer_socket(true);
        if (fd1 < 0 || fd2 < 0)
                die("victim", "socket", fd1 < 0 ? fd1 : fd2);
        obs_req = make_request(COAP_METHOD_GET, "time", &obs);
        obs_req.options = &(const struct coap_client_option){.code = COAP_OPTION_OBSERVE};
        obs_req.num_options = 1;
        r = coap_client_req(&c1, fd2, NULL, &obs_req, NULL);
        if (r < 0 || !recorder_wait_last(&obs, 1, 30))
                die("victim", "observation", r < 0 ? r : -ETIMEDOUT);
        r = do_request(&c1, fd1, &req, &get);
        if (r != 0x45)
                die("victim", "first GET", r < 0 ? r : -EPROTO);
        printf("ready\n");
        fflush(stdout);
        if (await_go() < 0)
                die("victim", "stdin", -EPIPE);

        /* A bus round trip after the forgeries: the library reads them meanwhile. */
        if (coap_client_init(&c2, "victim-2") < 0)
                failed++;
        for (unsigned i = 0; i < n; i++) {
                r = do_request(i % 2 ? &c2 : &c1, fd1, &req, &get);
                if (r == 0x45)
                        ok++;
                else {
                        failed++;
                        printf("# GET %u: %d\n", i, r);
                }
        }
        pthread_mutex_lock(&obs.lock);
        obs_errors = obs.n_errors;
        pthread_mutex_unlock(&obs.lock);
        printf("victim %u %u %u\n", ok, failed, obs_errors);
        fflush(stdout);
        await_eof();
        coap_client_deinit(&c1);
        coap_client_deinit(&c2);
        close(fd1);
        close(fd2);
        recorder_done(&get);
        recorder_done(&obs);
        return EXIT_SUCCESS;
}

static int cmd_rawwatch(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *owner = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *unique, *client, *daemon;
        unsigned genuine = 0, forged = 0;
        uint64_t id = 0, deadline;
        bool done = false;
        int r;

        r = hostile_bus_open(&bus);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='" COAPCLIENTD_BUS_NAME
                                     "',interface='" COAPCLIENTD_CLIENT_IFACE "',member='Response'",
                                     NULL, NULL);
        if (r >= 0)
                r = call_manager(bus, "CreateClient", &error, &reply, "s", "rawwatch");
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &client);
        if (r >= 0)
                r = sd_bus_get_unique_name(bus, &unique);
        if (r < 0) {
                fprintf(stderr, "rawwatch: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        printf("rawwatch %s %s\n", unique, client);
        fflush(stdout);
        if (await_go() < 0)
                return EXIT_FAILURE;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetNameOwner", NULL, &owner, "s",
                               COAPCLIENTD_BUS_NAME);
        if (r >= 0)
                r = sd_bus_message_read(owner, "s", &daemon);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        if (r >= 0 && fd >= 0) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *rr = NULL;

                r = sd_bus_message_new_method_call(bus, &m, COAPCLIENTD_BUS_NAME, client,
                                                   COAPCLIENTD_CLIENT_IFACE, "Request");
                if (r >= 0)
                        r = sd_bus_message_append(m, "hsa{sv}", fd, "", 2, "method", "y", 1, "path",
                                                  "s", "");
                if (r >= 0)
                        r = sd_bus_call(bus, m, 0, &error, &rr);
                if (r >= 0)
                        r = sd_bus_message_read(rr, "t", &id);
        }
        if (r < 0) {
                fprintf(stderr, "rawwatch: request: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        /* Every Response the match lets through, until our request's final one. */
        deadline = test_now_usec() + 30 * USEC_PER_SEC;
        while (!done && test_now_usec() < deadline) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                r = sd_bus_process(bus, &m);
                if (r < 0)
                        break;
                if (m && sd_bus_message_is_signal(m, COAPCLIENTD_CLIENT_IFACE, "Response") > 0) {
                        uint64_t rid;

                        if (strcmp(sd_bus_message_get_sender(m) ?: "", daemon) != 0) {
                                forged++;
                                continue;
                        }
                        genuine++;
                        if (sd_bus_message_read(m, "t", &rid) >= 0 && rid == id)
                                done = true;
                }
                if (r == 0)
                        (void) sd_bus_wait(bus, 100 * USEC_PER_MSEC);
        }
        printf("rawwatch %u %u\n", genuine, forged);
        fflush(stdout);
        await_eof();
        return EXIT_SUCCESS;
}

static int cmd_bystander(void) {
        struct coap_client c = {};
        Recorder rec;
        struct coap_client_request req;
        uint64_t t0, t1, t2;
        uint32_t clients;
        sd_bus *bus = NULL;
        int fd, code, r;

        recorder_init(&rec);
        req = make_request(COAP_METHOD_GET, "/", &rec);
        fd = peer_socket(true);
        if (fd < 0)
                die("bystander", "socket", fd);
        r = coap_client_init(&c, "bystander");
        if (r < 0)
                die("bystander", "coap_client_init", r);
        r = do_request(&c, fd, &req, &rec);
        if (r != 0x45)
                die("bystander", "first GET", r < 0 ? r : -EPROTO);
        printf("ready\n");
        fflush(stdout);
        if (await_go() < 0)
                die("bystander", "stdin", -EPIPE);

        do {
                /* A new caller arrives and reads a property. */
                t0 = test_now_usec();
                r = hostile_bus_open(&bus);
                if (r >= 0)
                        r = sd_bus_get_property_trivial(
                                bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                                COAPCLIENTD_MANAGER_IFACE, "Clients", NULL, 'u', &clients);
                t1 = test_now_usec();
                bus = sd_bus_flush_close_unref(bus);
                if (r < 0)
                        printf("# property read: %s\n", strerror(-r));
                code = do_request(&c, fd, &req, &rec);
                t2 = test_now_usec();
                printf("bystander %" PRIu64 " %d %" PRIu64 "\n", r < 0 ? UINT64_MAX : t1 - t0, code,
                       t2 - t1);
                fflush(stdout);
        } while (await_go() >= 0);
        coap_client_deinit(&c);
        close(fd);
        recorder_done(&rec);
        return EXIT_SUCCESS;
}

/* A Request of example_data on a socket of its own (libcoap serves one block-wise transfer per
 * resource and session); the reply is read only with wait. */
static int send_get(sd_bus *bus, const char *client, bool wait, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_close_ int fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        int r;

        if (fd < 0)
                return fd;
        r = sd_bus_message_new_method_call(bus, &m, COAPCLIENTD_BUS_NAME, client,
                                           COAPCLIENTD_CLIENT_IFACE, "Request");
        if (r >= 0)
                r = sd_bus_message_append(m, "hsa{sv}", fd, "", 2, "method", "y", 1, "path", "s",
                                          "example_data");
        if (r < 0)
                return r;
        return wait ? sd_bus_call(bus, m, 0, error, NULL) : sd_bus_send(bus, m, NULL);
}

static int cmd_stall(unsigned n) {
        sd_bus **buses = calloc(n, sizeof(sd_bus *));
        const char *step = "";
        unsigned i;
        int r = 0;

        if (!buses)
                return EXIT_FAILURE;
        for (i = 0; r >= 0 && i < n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *client;

                step = "connect";
                r = hostile_bus_open(&buses[i]);
                if (r >= 0) {
                        step = "CreateClient";
                        r = call_manager(buses[i], "CreateClient", &error, &reply, "s", "stall");
                }
                if (r >= 0)
                        r = sd_bus_message_read(reply, "o", &client);
                if (r >= 0) {
                        step = "Request";
                        r = send_get(buses[i], client, false, NULL);
                }
                if (r >= 0)
                        r = sd_bus_flush(buses[i]);
                if (r < 0 && error.name)
                        fprintf(stderr, "stall: %s: %s\n", error.name, error.message);
        }
        if (r < 0) {
                fprintf(stderr, "stall: caller %u: %s: %s\n", i - 1, step, strerror(-r));
                return EXIT_FAILURE;
        }
        printf("stalled %u\n", n);
        fflush(stdout);
        await_eof();
        for (i = 0; i < n; i++)
                sd_bus_flush_close_unref(buses[i]);
        free(buses);
        return EXIT_SUCCESS;
}

/* Sums a client property over clients; sd_bus_call() leaves every other message queued, so the
 * daemon's Pings stay unanswered. */
static int sum_property(sd_bus *bus, char **clients, const char *property, char type,
                        uint64_t *ret) {
        uint64_t sum = 0;

        for (size_t i = 0; clients[i]; i++) {
                uint64_t t = 0;
                uint32_t u = 0;
                int r;

                r = sd_bus_get_property_trivial(bus, COAPCLIENTD_BUS_NAME, clients[i],
                                                COAPCLIENTD_CLIENT_IFACE, property, NULL, type,
                                                type == 't' ? (void *) &t : (void *) &u);
                if (r < 0)
                        return r;
                sum += type == 't' ? t : u;
        }
        *ret = sum;
        return 0;
}

static int cmd_overflow(unsigned n) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        char *clients[3] = {};
        uint64_t delivered = 0, in_flight = 0, last = UINT64_MAX, deadline;
        unsigned refused = 0, quiet = 0;
        bool cut = false;
        int r;

        r = hostile_bus_open(&bus);
        for (size_t i = 0; r >= 0 && i < 2; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *client;

                r = call_manager(bus, "CreateClient", NULL, &reply, "s", "overflow");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "o", &client);
                if (r >= 0 && !(clients[i] = strdup(client)))
                        r = -ENOMEM;
        }
        for (unsigned i = 0; r >= 0 && i < n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                if (send_get(bus, clients[i % 2], true, &error) < 0) {
                        refused++;
                        printf("# request %u: %s: %s\n", i, error.name ?: "?", error.message ?: "");
                }
        }
        if (r < 0) {
                fprintf(stderr, "overflow: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        /* Until every request ended, or the count stood still for 2 s (paused downloads). */
        deadline = test_now_usec() + hostile_usec(60 * USEC_PER_SEC);
        while (test_now_usec() < deadline) {
                uint64_t d, f;

                r = sum_property(bus, clients, "ResponsesDelivered", 't', &d);
                if (r >= 0)
                        r = sum_property(bus, clients, "RequestsInFlight", 'u', &f);
                if (r < 0) {
                        /* Cut off: the daemon freed our clients (or dropped us). */
                        cut = true;
                        break;
                }
                delivered = d;
                in_flight = f;
                if (in_flight == 0)
                        break;
                quiet = delivered == last ? quiet + 1 : 0;
                if (quiet >= 8)
                        break;
                last = delivered;
                usleep(250 * 1000);
        }
        printf("overflow %" PRIu64 " %" PRIu64 " %u %s\n", delivered, in_flight, refused,
               cut ? "cut" : "connected");
        fflush(stdout);
        await_eof();
        free(clients[0]);
        free(clients[1]);
        return EXIT_SUCCESS;
}

static bool is_ceiling(const sd_bus_error *e) {
        return sd_bus_error_has_name(e, COAPCLIENTD_ERROR_LIMITS_EXCEEDED);
}

static int hog_request(sd_bus *bus, const char *client, int fd, const char *dest,
                       const uint8_t *payload, size_t len, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, COAPCLIENTD_BUS_NAME, client,
                                           COAPCLIENTD_CLIENT_IFACE, "Request");
        if (r >= 0)
                r = sd_bus_message_append(m, "hs", fd, dest);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}{sv}{sv}", "method", "y", payload ? 3 : 1,
                                          "ack-timeout", "u", 600000, "max-retransmission", "y", 0);
        if (r >= 0 && payload) {
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", "payload");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "ay");
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y', payload, len);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_call(bus, m, 0, error, NULL);
}

typedef struct HogClient {
        sd_bus *bus; /* the connection that made it, the only one that may use it */
        char *path;
} HogClient;

static int cmd_hog(unsigned max_connections, unsigned port) {
        sd_bus **buses = calloc(max_connections, sizeof(sd_bus *));
        int *channels = calloc(max_connections, sizeof(int));
        HogClient *clients = NULL;
        size_t n_clients = 0;
        unsigned callers = 0, n_channels = 0, requests = 0;
        uint64_t payload_bytes = 0;
        _cleanup_free_ uint8_t *payload = calloc(1, 1024 * 1024);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        Refusals refused = {};
        char dest[32];
        bool full = false;

        if (!buses || !channels || !payload || fd < 0)
                return EXIT_FAILURE;
        snprintf(dest, sizeof(dest), "127.0.0.1:%u", port);
        /* Connections with a channel and clients until no more clients come, then with a
         * channel alone (each still a caller) until no more channels come. */
        for (unsigned i = 0; i < max_connections; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                unsigned made = 0;
                int r, ch;

                channels[i] = -EBADF;
                r = hostile_bus_open(&buses[i]);
                if (r < 0) {
                        refusals_add(&refused, NULL, r);
                        break;
                }
                callers++;
                r = call_manager(buses[i], "OpenChannel", &error, &reply, NULL);
                if (r >= 0 && sd_bus_message_read(reply, "h", &ch) >= 0) {
                        channels[i] = fcntl(ch, F_DUPFD_CLOEXEC, 3);
                        n_channels++;
                } else {
                        refusals_add(&refused, &error, r);
                        if (full)
                                break;
                }
                while (!full) {
                        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *rep = NULL;
                        const char *path;
                        HogClient *l;

                        r = call_manager(buses[i], "CreateClient", &e, &rep, "s", "hog");
                        if (r < 0) {
                                refusals_add(&refused, &e, r);
                                /* Not even one on a new connection: the user has all it gets. */
                                full = made == 0 || is_ceiling(&e);
                                break;
                        }
                        made++;
                        l = realloc(clients, (n_clients + 1) * sizeof(HogClient));
                        if (!l || sd_bus_message_read(rep, "o", &path) < 0)
                                return EXIT_FAILURE;
                        clients = l;
                        clients[n_clients++] = (HogClient){.bus = buses[i], .path = strdup(path)};
                }
        }
        /* Payload bytes first (each request holds 1 MiB of them) until refused, then requests
         * without payload on every client until refused for any reason but the client's own
         * limit. Each request stays in flight for minutes: the peer never answers. */
        for (size_t i = 0; i < n_clients; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                int r = hog_request(clients[i].bus, clients[i].path, fd, dest, payload, 1024 * 1024,
                                    &error);

                if (r < 0) {
                        refusals_add(&refused, &error, r);
                        break;
                }
                requests++;
                payload_bytes += 1024 * 1024;
        }
        for (size_t i = 0; i < n_clients; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                int r;

                while ((r = hog_request(clients[i].bus, clients[i].path, fd, dest, NULL, 0,
                                        &error)) >= 0)
                        requests++;
                refusals_add(&refused, &error, r);
                if (!sd_bus_error_has_name(&error, COAPCLIENTD_ERROR_TOO_MANY_REQUESTS))
                        break;
        }
        printf("hog %u %u %zu %u %" PRIu64 "\n", callers, n_channels, n_clients, requests,
               payload_bytes);
        refusals_print(&refused);
        await_eof();
        for (unsigned i = 0; i < callers; i++) {
                sd_bus_flush_close_unref(buses[i]);
                safe_close(channels[i]);
        }
        for (size_t i = 0; i < n_clients; i++)
                free(clients[i].path);
        free(clients);
        free(buses);
        free(channels);
        return EXIT_SUCCESS;
}

static int cmd_get(void) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = hostile_get("get", &error);
        if (r < 0)
                printf("get error %s: %s\n", error.name ?: "errno", error.message ?: strerror(-r));
        else
                printf("get %d\n", r);
        fflush(stdout);
        return EXIT_SUCCESS;
}

/* One message on the channel with its fds; 0 or -errno. */
static int chan_send(int chan, const uint8_t *buf, size_t len, const int *fds, size_t n_fds) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * 16)];
        } control = {};
        struct iovec iov = {.iov_base = (void *) buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        if (n_fds > 0)
                channel_attach_fds(&mh, &control, sizeof(control), fds, n_fds);
        return sendmsg(chan, &mh, MSG_NOSIGNAL) == (ssize_t) len ? 0 : -errno;
}

/* Reads EVENTs until tag's final one: its result and error name ("-": none). */
static int chan_final(int chan, uint64_t tag, int32_t *ret_result, char *name, size_t size) {
        static uint8_t buf[CHANNEL_MESSAGE_MAX];
        uint64_t deadline = test_now_usec() + hostile_usec(30 * USEC_PER_SEC);

        while (test_now_usec() < deadline) {
                ChannelParseError pe = CHANNEL_PARSE_OK;
                size_t offset = 0;
                ChannelFrame f;
                ssize_t n;

                if (poll(&(struct pollfd){.fd = chan, .events = POLLIN}, 1, 100) <= 0)
                        continue;
                n = recv(chan, buf, sizeof(buf), 0);
                if (n <= 0)
                        return n < 0 ? -errno : -ECONNRESET;
                while (channel_next_frame(buf, (size_t) n, &offset, &f, &pe) > 0) {
                        ChannelEvent ev;

                        if (channel_decode_event(&f, &ev, &pe) < 0)
                                return -EBADMSG;
                        if (ev.tag != tag || !(ev.flags & CHANNEL_EVENT_FINAL))
                                continue;
                        *ret_result = ev.result;
                        snprintf(name, size, "%s", ev.error_name ?: "-");
                        return 0;
                }
        }
        return -ETIMEDOUT;
}

static int cmd_register(unsigned n) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int chan = -EBADF, fd = -EBADF;
        uint8_t buf[1024];
        char name[256] = "";
        int32_t first = 0, last = 0;
        uint64_t id = 0, client_id;
        int r, received;

        r = test_bus_new(&b);
        if (r >= 0)
                r = test_bus_create_client(b, "register", &client, NULL);
        if (r >= 0)
                r = call_manager(b->bus, "OpenChannel", NULL, &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_read(reply, "h", &received);
        if (r >= 0) {
                chan = fcntl(received, F_DUPFD_CLOEXEC, 3);
                fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
                r = chan < 0 || fd < 0 ? -EBADF : 0;
        }
        client_id = client ? strtoull(client + strlen(COAPCLIENTD_CLIENT_PREFIX "/"), NULL, 10) : 0;
        /* 16 registrations a message, each with its own copy of the fd. */
        while (r >= 0 && id < n) {
                int fds[16];
                size_t len = 0, k = 0;

                for (; k < 16 && id < n; k++) {
                        fds[k] = fd;
                        len += (size_t) channel_encode_socket(CHANNEL_FRAME_REGISTER_SOCKET, ++id,
                                                              buf + len, sizeof(buf) - len);
                }
                r = chan_send(chan, buf, len, fds, k);
        }
        for (uint64_t tag = 1; r >= 0 && tag <= 2; tag++) {
                long len =
                        channel_encode_request(&(ChannelRequest){.client = client_id,
                                                                 .tag = tag,
                                                                 .method = TEST_GET,
                                                                 .flags = CHANNEL_REQUEST_SOCKET_ID,
                                                                 .socket_id = tag == 1 ? 1 : n,
                                                                 .path = ""},
                                               buf, sizeof(buf));

                r = len < 0 ? (int) len : chan_send(chan, buf, (size_t) len, NULL, 0);
                if (r >= 0)
                        r = chan_final(chan, tag, tag == 1 ? &first : &last, name, sizeof(name));
        }
        if (r < 0)
                printf("register error %d\n", r);
        else
                printf("register %d %d %s\n", first, last, name);
        fflush(stdout);
        await_eof();
        return EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        const char *cmd = argc > 1 ? argv[1] : "";
        unsigned n = argc > 2 ? (unsigned) strtoul(argv[2], NULL, 10) : 0;

        if (bus_api_register_errors() < 0)
                return EXIT_FAILURE;
        if (strcmp(cmd, "hold") == 0 && argc == 4)
                return cmd_hold(n, strcmp(argv[3], "channel") == 0);
        if (strcmp(cmd, "flood") == 0 && argc == 3)
                return cmd_flood(n);
        if (strcmp(cmd, "forge") == 0 && argc >= 4)
                return cmd_forge(n, argv + 3, argc - 3);
        if (strcmp(cmd, "victim") == 0 && argc == 3)
                return cmd_victim(n);
        if (strcmp(cmd, "rawwatch") == 0)
                return cmd_rawwatch();
        if (strcmp(cmd, "bystander") == 0)
                return cmd_bystander();
        if (strcmp(cmd, "stall") == 0 && argc == 3)
                return cmd_stall(n);
        if (strcmp(cmd, "overflow") == 0 && argc == 3)
                return cmd_overflow(n);
        if (strcmp(cmd, "hog") == 0 && argc == 4)
                return cmd_hog(n, (unsigned) strtoul(argv[3], NULL, 10));
        if (strcmp(cmd, "get") == 0)
                return cmd_get();
        if (strcmp(cmd, "register") == 0 && argc == 3)
                return cmd_register(n);
        fprintf(stderr, "usage: see the head of hostile-caller.c\n");
        return EXIT_FAILURE;
}
