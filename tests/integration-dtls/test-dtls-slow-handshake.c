/* SPDX-License-Identifier: MIT */
/* Handshakes never block the daemon: while one client's DTLS handshake with a peer that never
 * answers is pending, another client's plain requests keep completing, all of them before that
 * handshake fails on time. */

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "bus-helper.h"
#include "check-main.h"
#include "dtls-helper.h"
#include "net-helper.h"

#define IN_FLIGHT 16

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

/* A wrapped daemon (valgrind) is tens of times slower. */
static bool daemon_wrapped(void) {
        const char *w = getenv("COAPCLIENTD_WRAPPER");

        return w && *w;
}

/* Counts the ClientHellos waiting on fd: DTLS records of type 22 (handshake) whose message,
 * after the 13-byte record header, is of type 1. */
static unsigned drain_client_hellos(int fd) {
        uint8_t buf[2048];
        unsigned n = 0;
        ssize_t len;

        while ((len = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) >= 0)
                if (len >= 14 && buf[0] == 22 && buf[13] == 1)
                        n++;
        ck_assert_int_eq(errno, EAGAIN);
        return n;
}

static void get_root(TestBus *b, const char *client, int fd, uint64_t *ret_id) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        ck_assert_msg(test_bus_request(b, client, fd, "",
                                       &(TestRequest){.method = TEST_GET, .path = ""}, ret_id,
                                       &error) >= 0,
                      "Request: %s: %s", error.name, error.message);
}

START_TEST(test_slow_handshake_does_not_block) {
        bool wrapped = daemon_wrapped();
        unsigned n_gets = wrapped ? 200 : 1000, sent = 0, done = 0, hellos;
        uint32_t handshake_ms = wrapped ? 20000 : 3000;
        uint64_t handshake_usec = handshake_ms * USEC_PER_MSEC,
                 margin_usec = (wrapped ? 10 : 2) * USEC_PER_SEC;
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *client_a = NULL, *client_b = NULL;
        _cleanup_close_ int silent = -EBADF, fd_a = -EBADF, fd_b = -EBADF;
        uint64_t ids[IN_FLIGHT], id_a, a_start, b_start, b_done = 0, a_failed;
        struct pollfd pfd = {.events = POLLIN};
        uint16_t silent_port;
        TestResponse r = {};

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "slow-handshake", &client_a, NULL), 0);
        ck_assert_int_eq(test_bus_create_client(b, "plain", &client_b, NULL), 0);
        silent = test_udp_silent(AF_INET, &silent_port);
        ck_assert_int_ge(silent, 0);
        fd_a = test_udp_socket(AF_INET, "127.0.0.1", silent_port);
        ck_assert_int_ge(fd_a, 0);
        fd_b = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd_b, 0);

        /* A: a handshake that stays pending until its timeout. */
        ck_assert_msg(test_set_psk(b, client_a, TEST_PSK_IDENTITY, TEST_PSK_KEY, handshake_ms,
                                   &error) >= 0,
                      "SetCredentials: %s: %s", error.name, error.message);
        a_start = test_now_usec();
        get_root(b, client_a, fd_a, &id_a);
        /* B starts once the first ClientHello is out: the handshake is surely under way. */
        pfd.fd = silent;
        ck_assert_int_eq(poll(&pfd, 1, (int) (handshake_usec / USEC_PER_MSEC)), 1);

        /* B: plain GETs on a socket of its own, IN_FLIGHT at a time; both clients share one bus
         * connection, so A's failure, had it come earlier, would be read before B's last answer. */
        b_start = test_now_usec();
        for (; sent < IN_FLIGHT && sent < n_gets; sent++)
                get_root(b, client_b, fd_b, &ids[sent]);
        while (done < n_gets) {
                ck_assert_int_eq(test_bus_next_response(b, ids[done % IN_FLIGHT],
                                                        handshake_usec + margin_usec, &r),
                                 0);
                ck_assert_int_eq(r.result, 0x45);
                ck_assert(r.final);
                ck_assert_str_eq(r.path, client_b);
                b_done = r.received_usec;
                test_response_done(&r);
                done++;
                ck_assert_msg(test_bus_count_queued(b, id_a) == 0,
                              "the handshake ended when only %u of %u GETs had completed", done,
                              n_gets);
                if (sent < n_gets) {
                        get_root(b, client_b, fd_b, &ids[sent % IN_FLIGHT]);
                        sent++;
                }
        }

        /* Only now does A fail, on time. */
        ck_assert_int_eq(test_bus_next_response(b, id_a, handshake_usec + margin_usec, &r), 0);
        ck_assert_int_eq(r.result, -ETIMEDOUT);
        ck_assert(r.final);
        ck_assert_str_eq(r.path, client_a);
        a_failed = r.received_usec;
        test_response_done(&r);
        ck_assert_uint_gt(a_failed, b_done);
        ck_assert_uint_ge(a_failed - a_start, handshake_usec - 100 * USEC_PER_MSEC);
        ck_assert_uint_le(a_failed - a_start, handshake_usec + margin_usec);
        /* The handshake was alive all along: GnuTLS retransmitted its ClientHello. */
        hellos = drain_client_hellos(silent);
        ck_assert_uint_ge(hellos, 2);

        diag("%u plain GETs of / (%d in flight) in %.0f ms: %.0f requests/s, the last %.0f ms "
             "before the pending handshake failed",
             n_gets, IN_FLIGHT, (double) (b_done - b_start) / 1000,
             (double) n_gets * USEC_PER_SEC / (double) (b_done - b_start),
             (double) (a_failed - b_done) / 1000);
        diag("pending handshake: -ETIMEDOUT after %.0f ms (handshake-timeout %u ms), %u "
             "ClientHellos sent",
             (double) (a_failed - a_start) / 1000, handshake_ms, hellos);
}
END_TEST

static Suite *dtls_slow_handshake_suite(void) {
        Suite *s = suite_create("dtls-slow-handshake");
        TCase *tc = tcase_create("slow-handshake");

        /* Under valgrind: up to 20 s of handshake + 10 s margin, and a slow start. */
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_slow_handshake_does_not_block);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(dtls_slow_handshake_suite)
