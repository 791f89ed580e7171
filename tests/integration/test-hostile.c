/* SPDX-License-Identifier: MIT */
/* Malformed calls get their named D-Bus error, leak nothing, and leave the daemon serving. */

#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus-helper.h"
#include "check-main.h"
#include "internal/bus-api.h"
#include "net-helper.h"

typedef enum FdKind {
        FD_UDP_CONNECTED, /* to the peer; destination "" */
        FD_UDP_UNCONNECTED,
        FD_PIPE,
        FD_DEV_NULL,
        FD_TCP,
        FD_UNIX_DGRAM,
        FD_RAW,
} FdKind;

typedef struct HostileCase {
        const char *name;
        FdKind fd;
        const char *destination;
        TestRequest req;
        const char *error;
} HostileCase;

static char long_segment_path[256 + 3];
static char long_path[2001];
static uint8_t option_value[300];
static TestOption too_many_options[17];
static const TestOption big_option[] = {{.number = 2049, .value = option_value, .len = 300}};
static const TestOption uri_path_option[] = {
        {.number = 11, .value = (const uint8_t *) "x", .len = 1}};
static const TestExtra method_zero[] = {{.key = "method", .type = 'y', .u = 0}};
static const TestExtra method_string[] = {{.key = "method", .type = 's', .s = "GET"}};
static const TestExtra unknown_key[] = {{.key = "bogus", .type = 'u', .u = 1}};
static const TestExtra ack_timeout_zero[] = {{.key = "ack-timeout", .type = 'u', .u = 0}};

#define GET(...) \
        { .method = TEST_GET, .path = "x", __VA_ARGS__ }

static const HostileCase cases[] = {
        {"pipe", FD_PIPE, "", GET(), COAPCLIENTD_ERROR_NOT_A_SOCKET},
        {"/dev/null", FD_DEV_NULL, "", GET(), COAPCLIENTD_ERROR_NOT_A_SOCKET},
        {"tcp socket", FD_TCP, "", GET(), COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"unix dgram socket", FD_UNIX_DGRAM, "", GET(), COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"raw socket", FD_RAW, "127.0.0.1:5683", GET(), COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET},
        {"dest garbage", FD_UDP_UNCONNECTED, "garbage", GET(), COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"dest without port", FD_UDP_UNCONNECTED, "1.2.3.4", GET(),
         COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"dest port 0", FD_UDP_UNCONNECTED, "1.2.3.4:0", GET(), COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"dest port 70000", FD_UDP_UNCONNECTED, "1.2.3.4:70000", GET(),
         COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"dest unclosed bracket", FD_UDP_UNCONNECTED, "[::1", GET(),
         COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"dest bad ipv6", FD_UDP_UNCONNECTED, "[zz::1]:5683", GET(),
         COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"dest ipv6 on ipv4 socket", FD_UDP_UNCONNECTED, "[::1]:5683", GET(),
         COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"no dest on unconnected socket", FD_UDP_UNCONNECTED, "", GET(),
         COAPCLIENTD_ERROR_INVALID_ADDRESS},
        {"method missing", FD_UDP_CONNECTED, "", {.path = "x"}, COAPCLIENTD_ERROR_INVALID_METHOD},
        {"method 0",
         FD_UDP_CONNECTED,
         "",
         {.path = "x", .extra = method_zero, .n_extra = 1},
         COAPCLIENTD_ERROR_INVALID_METHOD},
        {"method 9",
         FD_UDP_CONNECTED,
         "",
         {.method = 9, .path = "x"},
         COAPCLIENTD_ERROR_INVALID_METHOD},
        {"path segment 256 bytes",
         FD_UDP_CONNECTED,
         "",
         {.method = TEST_GET, .path = long_segment_path},
         COAPCLIENTD_ERROR_INVALID_PATH},
        {"path 2000 bytes",
         FD_UDP_CONNECTED,
         "",
         {.method = TEST_GET, .path = long_path},
         COAPCLIENTD_ERROR_INVALID_PATH},
        {"17 options", FD_UDP_CONNECTED, "", GET(.options = too_many_options, .n_options = 17),
         COAPCLIENTD_ERROR_INVALID_OPTION},
        {"option value 300 bytes", FD_UDP_CONNECTED, "", GET(.options = big_option, .n_options = 1),
         COAPCLIENTD_ERROR_INVALID_OPTION},
        {"option 11 (Uri-Path)", FD_UDP_CONNECTED, "",
         GET(.options = uri_path_option, .n_options = 1), COAPCLIENTD_ERROR_INVALID_OPTION},
        {"unknown key", FD_UDP_CONNECTED, "", GET(.extra = unknown_key, .n_extra = 1),
         COAPCLIENTD_ERROR_INVALID_ARGUMENT},
        {"method of type s",
         FD_UDP_CONNECTED,
         "",
         {.path = "x", .extra = method_string, .n_extra = 1},
         COAPCLIENTD_ERROR_INVALID_ARGUMENT},
        {"ack-timeout 0", FD_UDP_CONNECTED, "", GET(.extra = ack_timeout_zero, .n_extra = 1),
         COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"ack-random-percent 50", FD_UDP_CONNECTED, "", GET(.ack_random_percent = 50),
         COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"backoff-percent 50", FD_UDP_CONNECTED, "", GET(.backoff_percent = 50),
         COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"block-size 100", FD_UDP_CONNECTED, "", GET(.block_size = 100),
         COAPCLIENTD_ERROR_INVALID_PARAMETERS},
        {"block-size 2048", FD_UDP_CONNECTED, "", GET(.block_size = 2048),
         COAPCLIENTD_ERROR_INVALID_PARAMETERS},
};

static void setup_inputs(void) {
        long_segment_path[0] = 'a';
        long_segment_path[1] = '/';
        memset(long_segment_path + 2, 's', 256);
        for (size_t i = 0; i + 1 < sizeof(long_path); i += 2)
                memcpy(long_path + i, "p/", 2);
        long_path[sizeof(long_path) - 2] = 'p';
        for (size_t i = 0; i < ELEMENTSOF(too_many_options); i++)
                /* Distinct elective, non-critical, unsafe-to-forward-free numbers. */
                too_many_options[i] = (TestOption){.number = (uint16_t) (2048 + 4 * i),
                                                   .value = (const uint8_t *) "v",
                                                   .len = 1};
        memset(option_value, 'o', sizeof(option_value));
}

/* Returns the fd, or -EPERM-like errors for kinds the environment does not allow. */
static int make_fd(FdKind kind) {
        int fds[2], fd;

        switch (kind) {
        case FD_UDP_CONNECTED:
                return test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        case FD_UDP_UNCONNECTED:
                return test_udp_socket(AF_INET, NULL, 0);
        case FD_PIPE:
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return -errno;
                close(fds[0]);
                return fds[1];
        case FD_DEV_NULL:
                fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                return fd < 0 ? -errno : fd;
        case FD_TCP:
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                return fd < 0 ? -errno : fd;
        case FD_UNIX_DGRAM:
                fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                return fd < 0 ? -errno : fd;
        case FD_RAW:
                fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
                return fd < 0 ? -errno : fd;
        }
        return -EINVAL;
}

typedef struct Fixture {
        TestBus *bus;
        char *client;
        int fds;
} Fixture;

static void fixture_open(Fixture *f) {
        setup_inputs();
        ck_assert_int_eq(test_bus_new(&f->bus), 0);
        ck_assert_int_eq(test_bus_create_client(f->bus, "hostile", &f->client, NULL), 0);
        f->fds = test_daemon_fd_count();
        ck_assert_int_gt(f->fds, 0);
}

/* The daemon is up, holds no request or socket, and no more fds than at fixture_open(). */
static void fixture_close(Fixture *f) {
        uint32_t inflight;

        ck_assert(test_daemon_alive());
        ck_assert_int_ge(test_bus_get_manager_u32(f->bus, "RequestsInFlight", &inflight), 0);
        ck_assert_uint_eq(inflight, 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(f->bus, "Sockets", 0, USEC_PER_SEC), 0);
        ck_assert_int_eq(test_bus_await_daemon_fds(f->bus, f->fds, USEC_PER_SEC), f->fds);
        f->bus = test_bus_free(f->bus);
        free(f->client);
}

static void assert_error(int r, const sd_bus_error *error, const char *expected, const char *what) {
        ck_assert_msg(r < 0, "%s: accepted, expected %s", what, expected);
        ck_assert_msg(sd_bus_error_has_name(error, expected), "%s: got %s (%s), expected %s", what,
                      error->name, error->message, expected);
}

START_TEST(test_hostile_request) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const HostileCase *c = &cases[_i];
        _cleanup_close_ int fd = -EBADF;
        Fixture f = {};
        uint64_t id = 0;
        int r;

        fd = make_fd(c->fd);
        if (fd == -EPERM || fd == -EACCES) {
                fprintf(stderr, "# skipping '%s': %s\n", c->name, strerror(-fd));
                return;
        }
        ck_assert_int_ge(fd, 0);
        fixture_open(&f);
        r = test_bus_request(f.bus, f.client, fd, c->destination, &c->req, &id, &error);
        if (r >= 0) /* leave no request behind before failing */
                (void) test_bus_call_id(f.bus, f.client, "Cancel", id, NULL);
        assert_error(r, &error, c->error, c->name);
        fixture_close(&f);
}
END_TEST

START_TEST(test_payload_too_large) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ uint8_t *payload = NULL;
        _cleanup_close_ int fd = -EBADF;
        Fixture f = {};
        uint32_t max;
        int r;

        fixture_open(&f);
        ck_assert_int_ge(test_bus_get_manager_u32(f.bus, "MaxPayloadBytes", &max), 0);
        /* dbus-daemon's own message size limit is far above any sane MaxPayloadBytes. */
        ck_assert_uint_le(max, 16 * 1024 * 1024);
        payload = calloc(1, (size_t) max + 1);
        ck_assert_ptr_nonnull(payload);
        fd = make_fd(FD_UDP_CONNECTED);
        ck_assert_int_ge(fd, 0);
        r = test_bus_request(f.bus, f.client, fd, "",
                             &(TestRequest){.method = TEST_PUT,
                                            .path = "big",
                                            .payload = payload,
                                            .payload_len = (size_t) max + 1},
                             NULL, &error);
        assert_error(r, &error, COAPCLIENTD_ERROR_PAYLOAD_TOO_LARGE, "payload MaxPayloadBytes+1");
        fixture_close(&f);
}
END_TEST

START_TEST(test_too_many_clients) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        Fixture f = {};
        uint32_t max;

        fixture_open(&f);
        ck_assert_int_ge(test_bus_get_manager_u32(f.bus, "MaxClientsPerCaller", &max), 0);
        ck_assert_uint_le(max, 4096);
        /* The fixture's client is the first. */
        for (uint32_t i = 1; i < max; i++) {
                _cleanup_free_ char *p = NULL;

                ck_assert_msg(test_bus_create_client(f.bus, "more", &p, &error) >= 0,
                              "client %u of %u: %s", i + 1, max, error.name);
        }
        assert_error(test_bus_create_client(f.bus, "one too many", &path, &error), &error,
                     COAPCLIENTD_ERROR_TOO_MANY_CLIENTS, "CreateClient beyond the limit");
        fixture_close(&f);
}
END_TEST

START_TEST(test_too_many_requests) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_close_ int silent = -EBADF, fd = -EBADF;
        const TestRequest req = {.method = TEST_GET, .path = "x"};
        Fixture f = {};
        uint16_t port;
        uint32_t max;

        fixture_open(&f);
        ck_assert_int_ge(test_bus_get_manager_u32(f.bus, "MaxRequestsPerClient", &max), 0);
        ck_assert_uint_le(max, 4096);
        silent = test_udp_silent(AF_INET, &port);
        ck_assert_int_ge(silent, 0);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);
        for (uint32_t i = 0; i < max; i++)
                ck_assert_msg(test_bus_request(f.bus, f.client, fd, "", &req, NULL, &error) >= 0,
                              "request %u of %u: %s", i + 1, max, error.name);
        assert_error(test_bus_request(f.bus, f.client, fd, "", &req, NULL, &error), &error,
                     COAPCLIENTD_ERROR_TOO_MANY_REQUESTS, "Request beyond the limit");
        ck_assert_int_ge(test_bus_call_void(f.bus, f.client, "CancelAll", NULL), 0);
        fixture_close(&f);
}
END_TEST

START_TEST(test_bad_calls) {
        _cleanup_(sd_bus_error_free) sd_bus_error e1 = SD_BUS_ERROR_NULL, e2 = SD_BUS_ERROR_NULL,
                                                  e3 = SD_BUS_ERROR_NULL, e4 = SD_BUS_ERROR_NULL,
                                                  e5 = SD_BUS_ERROR_NULL;
        Fixture f = {};
        int r;

        fixture_open(&f);
        assert_error(test_bus_call_id(f.bus, f.client, "Cancel", 424242, &e1), &e1,
                     COAPCLIENTD_ERROR_UNKNOWN_REQUEST, "Cancel of an unknown id");
        assert_error(test_bus_call_id(f.bus, f.client, "DeregisterObserve", 424242, &e2), &e2,
                     COAPCLIENTD_ERROR_UNKNOWN_REQUEST, "DeregisterObserve of an unknown id");
        assert_error(test_bus_call_void(f.bus, f.client, "Frobnicate", &e3), &e3,
                     TEST_ERROR_UNKNOWN_METHOD, "unknown method");
        r = sd_bus_call_method(f.bus->bus, COAPCLIENTD_BUS_NAME, f.client, COAPCLIENTD_CLIENT_IFACE,
                               "Request", &e4, NULL, "s", "x");
        assert_error(r, &e4, TEST_ERROR_INVALID_ARGS, "Request with signature s");
        r = sd_bus_call_method(f.bus->bus, COAPCLIENTD_BUS_NAME,
                               COAPCLIENTD_CLIENT_PREFIX "/999999", COAPCLIENTD_CLIENT_IFACE,
                               "CancelAll", &e5, NULL, NULL);
        assert_error(r, &e5, TEST_ERROR_UNKNOWN_OBJECT, "CancelAll on a client that never was");
        fixture_close(&f);
}
END_TEST

START_TEST(test_still_serving) {
        _cleanup_close_ int fd = -EBADF;
        TestResponse *resp = NULL;
        Fixture f = {};
        uint64_t id;
        size_t n;

        fixture_open(&f);
        fd = make_fd(FD_UDP_CONNECTED);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(test_bus_request(f.bus, f.client, fd, "",
                                          &(TestRequest){.method = TEST_GET, .path = "time"}, &id,
                                          NULL),
                         0);
        ck_assert_int_eq(test_bus_collect(f.bus, id, 5 * USEC_PER_SEC, &resp, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(resp[0].result, 0x45);
        ck_assert_uint_gt(resp[0].payload_len, 0);
        test_responses_free(resp, n);
        fixture_close(&f);
}
END_TEST

static Suite *hostile_suite(void) {
        Suite *s = suite_create("hostile");
        TCase *tc = tcase_create("hostile");

        tcase_set_timeout(tc, 10);
        tcase_add_loop_test(tc, test_hostile_request, 0, (int) ELEMENTSOF(cases));
        tcase_add_test(tc, test_payload_too_large);
        tcase_add_test(tc, test_too_many_clients);
        tcase_add_test(tc, test_too_many_requests);
        tcase_add_test(tc, test_bad_calls);
        tcase_add_test(tc, test_still_serving);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(hostile_suite)
