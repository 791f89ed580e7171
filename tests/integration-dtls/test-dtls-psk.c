/* SPDX-License-Identifier: MIT */
/* DTLS with pre-shared keys end to end: SetCredentials, requests over the session to
 * coap-server-gnutls (block-wise, observe), handshake failures, a server restart, sharing and
 * refusing (socket, peer) pairs, and secrets that never travel on the bus. */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-helper.h"
#include "check-main.h"
#include "dtls-helper.h"
#include "internal/bus-api.h"
#include "net-helper.h"

#define BODY_SIZE (1024 * 1024)

typedef struct Ctx {
        TestBus *bus;
        char *client;
        int fd;
} Ctx;

static void ctx_open(Ctx *c, uint16_t port) {
        ck_assert_int_eq(test_bus_new(&c->bus), 0);
        ck_assert_int_eq(test_bus_create_client(c->bus, "dtls", &c->client, NULL), 0);
        c->fd = port ? test_udp_socket(AF_INET, test_peer_host(), port) : -EBADF;
        ck_assert_int_ge(c->fd, port ? 0 : -EBADF);
}

static void ctx_close(Ctx *c) {
        c->bus = test_bus_free(c->bus);
        free(c->client);
        safe_close(c->fd);
}

static uint16_t dtls_port(void) {
        return (uint16_t) (test_peer_port() + 1);
}

static void set_psk(Ctx *c, const char *key, uint32_t handshake_timeout_ms) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        ck_assert_msg(test_set_psk(c->bus, c->client, TEST_PSK_IDENTITY, key, handshake_timeout_ms,
                                   &error) >= 0,
                      "SetCredentials: %s: %s", error.name, error.message);
}

static int32_t get(Ctx *c, const char *path, uint64_t *ret_usec) {
        int32_t result = 0;

        ck_assert_int_eq(test_request_result(c->bus, c->client, c->fd,
                                             &(TestRequest){.method = TEST_GET, .path = path},
                                             20 * USEC_PER_SEC, &result, ret_usec),
                         0);
        return result;
}

static void diag(const char *fmt, ...) _printf_(1, 2);
static void diag(const char *fmt, ...) {
        va_list ap;

        printf("# ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

START_TEST(test_psk_get) {
        Ctx c = {};
        uint64_t first, second;
        bool secure = true;

        ctx_open(&c, dtls_port());
        ck_assert_int_eq(test_get_client_bool(c.bus, c.client, "Secure", &secure), 0);
        ck_assert(!secure);
        set_psk(&c, TEST_PSK_KEY, 0);
        ck_assert_int_eq(test_get_client_bool(c.bus, c.client, "Secure", &secure), 0);
        ck_assert(secure);

        ck_assert_int_eq(get(&c, "time", &first), 0x45);
        ck_assert_int_eq(get(&c, "time", &second), 0x45);
        diag("DTLS PSK: handshake + first GET %.2f ms, next GET on the session %.2f ms",
             (double) first / 1000, (double) second / 1000);

        /* Close: close_notify, the session and our socket copy go. */
        ck_assert_int_ge(test_bus_call_void(c.bus, c.client, "Close", NULL), 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(c.bus, "Sockets", 0, 2 * USEC_PER_SEC), 0);
        ctx_close(&c);
}
END_TEST

static void put_body(Ctx *c, const uint8_t *body, size_t len) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        TestResponse *resp = NULL;
        uint64_t id;
        size_t n;

        ck_assert_msg(test_bus_request(c->bus, c->client, c->fd, "",
                                       &(TestRequest){.method = TEST_PUT,
                                                      .path = "example_data",
                                                      .payload = body,
                                                      .payload_len = len,
                                                      .block_size = 1024},
                                       &id, &error) >= 0,
                      "PUT: %s: %s", error.name, error.message);
        ck_assert_int_eq(test_bus_collect(c->bus, id, 60 * USEC_PER_SEC, &resp, &n), 0);
        ck_assert_uint_eq(n, len / 1024);
        ck_assert(resp[n - 1].final);
        ck_assert_msg(resp[n - 1].result == 0x44 || resp[n - 1].result == 0x41, "PUT ended with %d",
                      resp[n - 1].result);
        test_responses_free(resp, n);
}

/* GETs the body back byte-exact; returns the time it took. */
static uint64_t get_body(Ctx *c, const uint8_t *expected, size_t len) {
        TestResponse *resp = NULL;
        uint64_t id, offset = 0, start = test_now_usec(), usec;
        size_t n;

        ck_assert_int_ge(test_bus_request(c->bus, c->client, c->fd, "",
                                          &(TestRequest){.method = TEST_GET,
                                                         .path = "example_data",
                                                         .block_size = 1024},
                                          &id, NULL),
                         0);
        ck_assert_int_eq(test_bus_collect(c->bus, id, 60 * USEC_PER_SEC, &resp, &n), 0);
        usec = resp[n - 1].received_usec - start;
        for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(resp[i].result, 0x45);
                ck_assert_uint_eq(resp[i].offset, offset);
                ck_assert_uint_le(offset + resp[i].payload_len, len);
                ck_assert_msg(memcmp(resp[i].payload, expected + offset, resp[i].payload_len) == 0,
                              "block %zu differs", i);
                offset += resp[i].payload_len;
        }
        ck_assert(resp[n - 1].final && resp[n - 1].last_block);
        ck_assert_uint_eq(offset, len);
        test_responses_free(resp, n);
        return usec;
}

START_TEST(test_psk_blockwise_throughput) {
        _cleanup_free_ uint8_t *body = malloc(BODY_SIZE);
        Ctx secure = {}, plain = {};
        uint64_t t_dtls, t_udp;

        ck_assert_ptr_nonnull(body);
        test_fill_random(body, BODY_SIZE, 0xd715);
        ctx_open(&secure, dtls_port());
        set_psk(&secure, TEST_PSK_KEY, 0);
        put_body(&secure, body, BODY_SIZE);
        t_dtls = get_body(&secure, body, BODY_SIZE);

        /* The same resource through the server's plain endpoint. */
        ctx_open(&plain, test_peer_port());
        t_udp = get_body(&plain, body, BODY_SIZE);
        diag("1 MiB GET: DTLS %.2f MB/s (%.0f ms), plain UDP %.2f MB/s (%.0f ms)",
             (double) BODY_SIZE / (double) t_dtls, (double) t_dtls / 1000,
             (double) BODY_SIZE / (double) t_udp, (double) t_udp / 1000);
        ctx_close(&plain);
        ctx_close(&secure);
}
END_TEST

START_TEST(test_psk_block_size_fits) {
        uint8_t body[4096];
        char path[256] = "long/";
        TestResponse *resp = NULL;
        uint64_t id;
        size_t n;
        Ctx c = {};

        /* With this path a 1024-byte block would not fit a DTLS record: 512 does. */
        memset(path + 5, 'x', 200);
        test_fill_random(body, sizeof body, 4096);
        ctx_open(&c, dtls_port());
        set_psk(&c, TEST_PSK_KEY, 0);
        ck_assert_int_ge(test_bus_request(c.bus, c.client, c.fd, "",
                                          &(TestRequest){.method = TEST_PUT,
                                                         .path = path,
                                                         .payload = body,
                                                         .payload_len = sizeof body,
                                                         .block_size = 1024},
                                          &id, NULL),
                         0);
        ck_assert_int_eq(test_bus_collect(c.bus, id, 10 * USEC_PER_SEC, &resp, &n), 0);
        ck_assert_uint_eq(n, sizeof body / 512);
        for (size_t i = 0; i + 1 < n; i++)
                ck_assert_uint_eq(resp[i].offset, (i + 1) * 512);
        ck_assert_msg(resp[n - 1].result == 0x41 || resp[n - 1].result == 0x44, "PUT ended with %d",
                      resp[n - 1].result);
        test_responses_free(resp, n);
        ctx_close(&c);
}
END_TEST

START_TEST(test_psk_observe) {
        TestResponse r = {};
        uint64_t id;
        Ctx c = {};

        ctx_open(&c, dtls_port());
        set_psk(&c, TEST_PSK_KEY, 0);
        ck_assert_int_ge(
                test_bus_request(
                        c.bus, c.client, c.fd, "",
                        &(TestRequest){.method = TEST_GET, .path = "time", .observe = true}, &id,
                        NULL),
                0);
        for (int i = 0; i < 3; i++) {
                ck_assert_int_eq(test_bus_next_response(c.bus, id, 5 * USEC_PER_SEC, &r), 0);
                ck_assert_int_eq(r.result, 0x45);
                ck_assert(r.has_observe);
                ck_assert(!r.final);
                test_response_done(&r);
        }
        ck_assert_int_ge(test_bus_call_id(c.bus, c.client, "Cancel", id, NULL), 0);
        ck_assert_int_eq(test_bus_next_response(c.bus, id, USEC_PER_SEC, &r), 0);
        ck_assert_int_eq(r.result, -ECANCELED);
        ck_assert(r.final);
        test_response_done(&r);
        ctx_close(&c);
}
END_TEST

START_TEST(test_psk_wrong_key) {
        uint64_t usec;
        Ctx c = {};

        ctx_open(&c, dtls_port());
        /* The server cannot decrypt our Finished and says nothing: the handshake times out. */
        set_psk(&c, "notTheKey", 2000);
        ck_assert_int_eq(get(&c, "time", &usec), -ETIMEDOUT);
        /* Well before the CoAP retransmissions (about 45 s) would give up. */
        ck_assert_uint_ge(usec, 1900 * USEC_PER_MSEC);
        ck_assert_uint_le(usec, 5 * USEC_PER_SEC);
        diag("wrong PSK: -ETIMEDOUT after %.0f ms (handshake-timeout 2000 ms)",
             (double) usec / 1000);
        /* The right key works: new credentials, new session. From another source port: the
         * server keeps its half of the failed handshake for a while, and meanwhile drops every
         * datagram from the old one. */
        set_psk(&c, TEST_PSK_KEY, 2000);
        safe_close(c.fd);
        c.fd = test_udp_socket(AF_INET, test_peer_host(), dtls_port());
        ck_assert_int_ge(c.fd, 0);
        ck_assert_int_eq(get(&c, "time", NULL), 0x45);
        ctx_close(&c);
}
END_TEST

static const char *const restart_server_args[] = {"-k", TEST_PSK_KEY, "-h", TEST_PSK_IDENTITY,
                                                  NULL};

/* A PSK server of the test's own (it restarts it), and a session with it. A short handshake
 * timeout: a handshake the restarted server ignores fails soon. */
static void restart_server_start(Ctx *c, uint16_t *ret_port, pid_t *ret_pid) {
        ck_assert_int_eq(test_dtls_server_spawn(restart_server_args, 0, ret_port, ret_pid), 0);
        ctx_open(c, (uint16_t) (*ret_port + 1));
        set_psk(c, TEST_PSK_KEY, 3000);
        ck_assert_int_eq(get(c, "time", NULL), 0x45);
}

/* Restarts the server on its port; it knows nothing of our session and drops its records
 * silently, so a quick request on the session we still have times out. */
static void restart_server_drops_session(Ctx *c, uint16_t port, pid_t *pid) {
        int32_t result = 0;

        test_child_stop(*pid);
        ck_assert_int_eq(test_dtls_server_spawn(restart_server_args, port, &port, pid), 0);
        ck_assert_int_eq(test_request_result(c->bus, c->client, c->fd,
                                             &(TestRequest){.method = TEST_GET,
                                                            .path = "time",
                                                            .ack_timeout = 200,
                                                            .ack_random_percent = 100,
                                                            .max_retransmission = 1},
                                             5 * USEC_PER_SEC, &result, NULL),
                         0);
        ck_assert_int_eq(result, -ETIMEDOUT);
}

START_TEST(test_psk_server_restart) {
        uint16_t port;
        int32_t result;
        pid_t pid;
        Ctx c = {};

        restart_server_start(&c, &port, &pid);
        restart_server_drops_session(&c, port, &pid);
        /* That timeout reset the session: the next request handshakes again. libcoap's server
         * may still hold half a session for our address, built from our stale records, and then
         * ignore one new handshake from it; that one fails after the handshake timeout, and the
         * request after it handshakes afresh, as an application retrying would. */
        for (unsigned attempt = 1;; attempt++) {
                result = get(&c, "time", NULL);
                if (result == 0x45) {
                        diag("server restart: recovered on attempt %u", attempt);
                        break;
                }
                ck_assert_int_eq(result, -ETIMEDOUT);
                ck_assert_uint_lt(attempt, 3);
        }
        ctx_close(&c);
        test_child_stop(pid);
}
END_TEST

/* A request the server acknowledged but never answered (RFC 7252 §5.2.2) times out after the
 * separate-response wait; the server is there, so its session stays. Shown with a server that
 * then loses the session: the next request's records go to it on the old session and time out,
 * where a reset session would have made a new handshake and succeeded. */
START_TEST(test_psk_separate_timeout_keeps_session) {
        uint16_t port;
        pid_t pid;
        Ctx c = {};

        restart_server_start(&c, &port, &pid);
        /* The server ACKs at once and would answer after 10 s; the daemon waits 6. */
        ck_assert_int_eq(get(&c, "async?10", NULL), -ETIMEDOUT);
        restart_server_drops_session(&c, port, &pid);
        ctx_close(&c);
        test_child_stop(pid);
}
END_TEST

/* An ICMP port unreachable for the handshake's first flight fails the request, and the
 * handshake stops with it: a socket bound to that port afterwards hears no retransmitted
 * ClientHello (GnuTLS would send one within a second or two, for 30 s). */
START_TEST(test_psk_port_unreachable_stops_handshake) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        _cleanup_close_ int sink = -EBADF;
        struct pollfd pfd;
        uint16_t port;
        Ctx c = {};

        ck_assert_int_eq(test_udp_closed_port(&port), 0);
        ctx_open(&c, port);
        set_psk(&c, TEST_PSK_KEY, 0);
        ck_assert_int_eq(get(&c, "time", NULL), -ECONNREFUSED);

        sink = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(sink, 0);
        sa.sin_port = htons(port);
        ck_assert_int_eq(bind(sink, (struct sockaddr *) &sa, sizeof sa), 0);
        pfd = (struct pollfd){.fd = sink, .events = POLLIN};
        ck_assert_int_eq(poll(&pfd, 1, 3000), 0);
        ctx_close(&c);
}
END_TEST

START_TEST(test_psk_sharing) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        TestBus *other_bus = NULL;
        char *same = NULL, *plain = NULL, *different = NULL;
        uint64_t id;
        Ctx c = {};

        ctx_open(&c, dtls_port());
        set_psk(&c, TEST_PSK_KEY, 0);
        ck_assert_int_eq(get(&c, "time", NULL), 0x45);

        /* Same inputs from another caller: the same session. */
        ck_assert_int_eq(test_bus_new(&other_bus), 0);
        ck_assert_int_eq(test_bus_create_client(other_bus, "same", &same, NULL), 0);
        ck_assert_int_ge(test_set_psk(other_bus, same, TEST_PSK_IDENTITY, TEST_PSK_KEY, 0, NULL),
                         0);
        {
                int32_t result = 0;

                ck_assert_int_eq(
                        test_request_result(other_bus, same, c.fd,
                                            &(TestRequest){.method = TEST_GET, .path = "time"},
                                            10 * USEC_PER_SEC, &result, NULL),
                        0);
                ck_assert_int_eq(result, 0x45);
        }

        /* Plain CoAP, or other credentials, on that (socket, peer): refused. */
        ck_assert_int_eq(test_bus_create_client(c.bus, "plain", &plain, NULL), 0);
        ck_assert_int_lt(test_bus_request(c.bus, plain, c.fd, "",
                                          &(TestRequest){.method = TEST_GET, .path = "time"}, &id,
                                          &error),
                         0);
        ck_assert_str_eq(error.name, COAPCLIENTD_ERROR_SOCKET_IN_USE);
        ck_assert_int_eq(sd_bus_error_get_errno(&error), EALREADY);
        sd_bus_error_free(&error);
        ck_assert_int_eq(test_bus_create_client(c.bus, "different", &different, NULL), 0);
        ck_assert_int_ge(test_set_psk(c.bus, different, "other", TEST_PSK_KEY, 0, NULL), 0);
        ck_assert_int_lt(test_bus_request(c.bus, different, c.fd, "",
                                          &(TestRequest){.method = TEST_GET, .path = "time"}, &id,
                                          &error),
                         0);
        ck_assert_str_eq(error.name, COAPCLIENTD_ERROR_SOCKET_IN_USE);
        sd_bus_error_free(&error);

        /* Once both clients let go of the session, plain CoAP may use the pair (and times out:
         * the peer speaks DTLS only). */
        ck_assert_int_ge(test_bus_call_void(c.bus, c.client, "ClearCredentials", NULL), 0);
        ck_assert_int_ge(test_bus_call_void(other_bus, same, "Close", NULL), 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(c.bus, "Sockets", 0, 2 * USEC_PER_SEC), 0);
        {
                int32_t result = 0;

                ck_assert_int_eq(test_request_result(c.bus, plain, c.fd,
                                                     &(TestRequest){.method = TEST_GET,
                                                                    .path = "time",
                                                                    .ack_timeout = 100,
                                                                    .ack_random_percent = 100,
                                                                    .max_retransmission = 0},
                                                     5 * USEC_PER_SEC, &result, NULL),
                                 0);
                ck_assert_int_eq(result, -ETIMEDOUT);
        }
        free(same);
        free(plain);
        free(different);
        test_bus_free(other_bus);
        ctx_close(&c);
}
END_TEST

static void expect_invalid(Ctx *c, const TestCreds *creds, int fd, const char *what) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        ck_assert_msg(test_set_credentials(c->bus, c->client, creds, fd, &error) < 0,
                      "%s was accepted", what);
        ck_assert_msg(sd_bus_error_has_name(&error, COAPCLIENTD_ERROR_INVALID_CREDENTIALS),
                      "%s: %s: %s", what, error.name, error.message);
        ck_assert_int_eq(sd_bus_error_get_errno(&error), EINVAL);
        /* The message never quotes the secret. */
        ck_assert_ptr_null(strstr(error.message, TEST_PSK_KEY));
}

START_TEST(test_bad_credentials) {
        const TestCreds psk = {.type = "psk", .psk_identity = TEST_PSK_IDENTITY};
        const char *key = TEST_PSK_KEY;
        _cleanup_close_ int unsealed = -EBADF, sealed = -EBADF, empty = -EBADF, big = -EBADF,
                            file = -EBADF;
        int pipe_fds[2];
        char long_key[65];
        bool secure = true;
        Ctx c = {};

        bus_api_register_errors();
        ctx_open(&c, 0);
        sealed = test_secret_memfd(key, strlen(key), true);
        unsealed = test_secret_memfd(key, strlen(key), false);
        empty = test_secret_memfd("", 0, true);
        memset(long_key, 'k', sizeof long_key);
        big = test_secret_memfd(long_key, sizeof long_key, true);
        file = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(sealed, 0);
        ck_assert_int_ge(unsealed, 0);
        ck_assert_int_ge(empty, 0);
        ck_assert_int_ge(big, 0);
        ck_assert_int_ge(file, 0);
        ck_assert_int_eq(pipe2(pipe_fds, O_CLOEXEC), 0);
        ck_assert_int_eq(write(pipe_fds[1], key, strlen(key)), (ssize_t) strlen(key));

        /* Secrets only from sealed memfds. */
        expect_invalid(&c, &psk, unsealed, "an unsealed memfd");
        expect_invalid(&c, &psk, pipe_fds[0], "a pipe");
        expect_invalid(&c, &psk, file, "a regular file");
        expect_invalid(&c, &psk, empty, "an empty PSK");
        expect_invalid(&c, &psk, big, "a 65-byte PSK");
        /* The dictionary. */
        expect_invalid(&c, &(TestCreds){.psk_identity = "x"}, sealed, "no type");
        expect_invalid(&c, &(TestCreds){.type = "kerberos"}, sealed, "an unknown type");
        expect_invalid(&c, &(TestCreds){.type = "psk"}, sealed, "PSK without identity");
        expect_invalid(&c, &(TestCreds){.type = "psk", .psk_identity = "x", .extra_key = "color"},
                       sealed, "an unknown key");
        expect_invalid(&c, &(TestCreds){.type = "psk", .psk_identity = "x", .server_name = "a"},
                       sealed, "PSK with server-name");
        expect_invalid(&c,
                       &(TestCreds){.type = "psk", .psk_identity = "x", .handshake_timeout_ms = 5},
                       sealed, "a 5 ms handshake-timeout");
        expect_invalid(&c, &(TestCreds){.type = "rpk"}, sealed, "RPK without server key");
        expect_invalid(&c, &(TestCreds){.type = "x509", .ca = "junk", .ca_len = 4}, empty,
                       "an unparsable CA");
        expect_invalid(&c, &(TestCreds){.type = "x509"}, sealed, "a key without certificate");
        ck_assert_int_eq(test_get_client_bool(c.bus, c.client, "Secure", &secure), 0);
        ck_assert(!secure);

        /* The good one still works afterwards, and ClearCredentials undoes it. */
        ck_assert_int_ge(test_set_credentials(c.bus, c.client, &psk, sealed, NULL), 0);
        ck_assert_int_eq(test_get_client_bool(c.bus, c.client, "Secure", &secure), 0);
        ck_assert(secure);
        ck_assert_int_ge(test_bus_call_void(c.bus, c.client, "ClearCredentials", NULL), 0);
        ck_assert_int_eq(test_get_client_bool(c.bus, c.client, "Secure", &secure), 0);
        ck_assert(!secure);
        safe_close(pipe_fds[0]);
        safe_close(pipe_fds[1]);
        ctx_close(&c);
}
END_TEST

static bool file_contains(const char *path, const char *needle) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *f = fopen(path, "re");
        bool found;

        if (!f)
                return false;
        buf = malloc(4 * 1024 * 1024 + 1);
        if (buf)
                len = fread(buf, 1, 4 * 1024 * 1024, f);
        fclose(f);
        if (!buf)
                return false;
        buf[len] = '\0';
        /* The output may hold NULs: search every piece. */
        found = false;
        for (size_t off = 0; off < len && !found; off += strlen(buf + off) + 1)
                found = strstr(buf + off, needle) != NULL;
        return found;
}

START_TEST(test_key_not_on_the_bus) {
        static const char secret_key[] = "k3y-0n1y-1n-a-memfd";
        const char *dir = getenv("TEST_TMPDIR");
        char out[512], log[512];
        uint64_t deadline;
        pid_t monitor;
        Ctx c = {};

        ck_assert_ptr_nonnull(dir);
        snprintf(out, sizeof out, "%s/monitor.out", dir);
        snprintf(log, sizeof log, "%s/daemon.log", dir);
        monitor = fork();
        ck_assert_int_ge(monitor, 0);
        if (monitor == 0) {
                char address[512];
                int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                snprintf(address, sizeof address, "--address=%s",
                         getenv(COAPCLIENTD_BUS_ADDRESS_ENV));
                (void) dup2(fd, STDOUT_FILENO);
                (void) dup2(fd, STDERR_FILENO);
                execlp("busctl", "busctl", address, "monitor", "--no-pager", (char *) NULL);
                _exit(127);
        }

        ctx_open(&c, 0);
        /* Wait until the monitor sees our traffic, so that it surely saw SetCredentials. */
        deadline = test_now_usec() + 5 * USEC_PER_SEC;
        while (!file_contains(out, "ListClients") && test_now_usec() < deadline) {
                char **paths = NULL;

                ck_assert_int_ge(test_bus_list_clients(c.bus, &paths, NULL), 0);
                test_strv_free(paths);
                (void) test_bus_run(c.bus, 50 * USEC_PER_MSEC);
        }
        set_psk(&c, secret_key, 0);
        deadline = test_now_usec() + 5 * USEC_PER_SEC;
        while (!file_contains(out, "SetCredentials") && test_now_usec() < deadline)
                (void) test_bus_run(c.bus, 50 * USEC_PER_MSEC);
        kill(monitor, SIGTERM);
        waitpid(monitor, NULL, 0);

        ck_assert_msg(file_contains(out, "SetCredentials"), "the monitor saw no SetCredentials");
        ck_assert_msg(file_contains(out, TEST_PSK_IDENTITY), "the monitor missed the identity");
        ck_assert_msg(!file_contains(out, secret_key), "the PSK appeared on the bus");
        /* Not even the daemon's debug log has it. */
        ck_assert(file_contains(log, "psk credentials set"));
        ck_assert_msg(!file_contains(log, secret_key), "the PSK appeared in the daemon's log");
        ctx_close(&c);
}
END_TEST

static Suite *dtls_psk_suite(void) {
        Suite *s = suite_create("dtls-psk");
        TCase *tc = tcase_create("psk");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_psk_get);
        tcase_add_test(tc, test_psk_blockwise_throughput);
        tcase_add_test(tc, test_psk_block_size_fits);
        tcase_add_test(tc, test_psk_observe);
        tcase_add_test(tc, test_psk_wrong_key);
        tcase_add_test(tc, test_psk_server_restart);
        tcase_add_test(tc, test_psk_separate_timeout_keeps_session);
        tcase_add_test(tc, test_psk_port_unreachable_stops_handshake);
        tcase_add_test(tc, test_psk_sharing);
        tcase_add_test(tc, test_bad_credentials);
        tcase_add_test(tc, test_key_not_on_the_bus);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(dtls_psk_suite)
