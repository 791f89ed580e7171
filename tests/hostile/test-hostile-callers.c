/* SPDX-License-Identifier: MIT */
/* 1,000 callers at once, of five uids (the system bus allows 256 connections per user), each
 * making a client (and, in the second test, each only opening a data channel) and holding it.
 * The daemon must stay up with the same pid throughout; a caller it cannot take gets
 * LimitsExceeded naming its ceiling on callers; when they have all gone, a fresh caller of
 * another uid creates a client and completes a GET against coap-server-gnutls.
 * (Every tracked caller used to cost a match rule on the bus: at the system bus's 512 the
 * daemon exited, issue 12 point 1.) */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-helper.h"
#include "check-main.h"
#include "hostile-util.h"
#include "internal/bus-api.h"
#include "internal/macro.h"
#include "net-helper.h"

#define USERS            HOSTILE_N_USERS
#define CALLERS_PER_USER 200
#define CALLERS          (USERS * CALLERS_PER_USER)
#define LINE_MAX_BYTES   1024

/* VmRSS of the daemon in KiB, or -1. */
static long daemon_rss_kib(void) {
        char path[64], line[256];
        long kib = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) test_daemon_pid());
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (kib < 0 && fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld", &kib) != 1)
                        kib = -1;
        fclose(f);
        return kib;
}

/* The daemon closes what a caller had one loop turn after it left: polls the fd count. */
static int await_daemon_fds(int expected) {
        uint64_t deadline = test_now_usec() + hostile_usec(5 * USEC_PER_SEC);
        int n;

        while ((n = test_daemon_fd_count()) >= 0 && n != expected && test_now_usec() < deadline)
                usleep(20 * 1000);
        return n;
}

static void run_callers(const char *mode) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        HostileCaller callers[USERS] = {};
        char n_arg[16], line[LINE_MAX_BYTES];
        unsigned held = 0, refused = 0, bad = 0;
        uint32_t callers0, clients0, v;
        bool alive_while_held;
        TestPrivateDaemon d;
        long rss0, rss1, rss2;
        int fds0, fds1, fds2;

        /* A bus and daemon of its own, so that each test starts from a live daemon. */
        ck_assert_int_eq(test_private_daemon_start("", &d), 0);
        ck_assert_int_ge(hostile_bus_open(&bus), 0);
        ck_assert(hostile_daemon_same(bus));
        ck_assert_int_ge(hostile_manager_u32(bus, "Callers", &callers0), 0);
        ck_assert_int_ge(hostile_manager_u32(bus, "Clients", &clients0), 0);
        fds0 = test_daemon_fd_count_settled();
        rss0 = daemon_rss_kib();
        ck_assert_int_gt(fds0, 0);

        snprintf(n_arg, sizeof(n_arg), "%u", CALLERS_PER_USER);
        for (unsigned u = 0; u < USERS; u++)
                ck_assert_int_ge(hostile_spawn(hostile_user(u),
                                               (const char *const[]){"hold", n_arg, mode, NULL},
                                               &callers[u]),
                                 0);
        for (unsigned u = 0; u < USERS; u++) {
                unsigned ok, no;

                ck_assert_int_eq(hostile_expect(&callers[u], "held ", line, sizeof(line),
                                                hostile_usec(120 * USEC_PER_SEC)),
                                 0);
                ck_assert_int_eq(sscanf(line, "held %u %u", &ok, &no), 2);
                held += ok;
                refused += no;
                /* "refused COUNT NAME: MESSAGE" lines, then "end". */
                for (;;) {
                        unsigned count;
                        char name[256];
                        int k;

                        ck_assert_int_eq(hostile_read_line(&callers[u], line, sizeof(line),
                                                           hostile_usec(10 * USEC_PER_SEC)),
                                         0);
                        if (strcmp(line, "end") == 0)
                                break;
                        k = sscanf(line, "refused %u %255[^:]", &count, name);
                        ck_assert_int_eq(k, 2);
                        printf("# %s: %s\n", hostile_user(u), line);
                        if (strcmp(name, COAPCLIENTD_ERROR_LIMITS_EXCEEDED) != 0 ||
                            !strstr(line, "callers"))
                                bad += count;
                }
        }
        /* Everybody still holds what they got: the daemon must be the same process and answer. */
        alive_while_held = hostile_daemon_same(bus) && hostile_manager_u32(bus, "Clients", &v) >= 0;
        fds1 = test_daemon_fd_count();
        rss1 = daemon_rss_kib();
        printf("# %u callers (%s): %u served, %u refused, %u of them not with LimitsExceeded "
               "naming the callers; daemon alive while they held: %s; daemon fds %d, VmRSS "
               "%ld KiB (before: %d, %ld KiB)\n",
               CALLERS, mode, held, refused, bad, alive_while_held ? "yes" : "no", fds1, rss1, fds0,
               rss0);
        fflush(stdout);

        for (unsigned u = 0; u < USERS; u++)
                ck_assert_int_eq(hostile_stop(&callers[u], hostile_usec(10 * USEC_PER_SEC)), 0);

        ck_assert_msg(alive_while_held, "the daemon did not survive %u callers", CALLERS);
        ck_assert_uint_eq(held + refused, CALLERS);
        ck_assert_msg(bad == 0, "%u callers refused without LimitsExceeded naming the callers",
                      bad);
        ck_assert(hostile_daemon_same(bus));

        /* All gone: everything they held is freed, and a fresh caller is served. */
        ck_assert_uint_eq(hostile_await_manager_u32(bus, "Callers", callers0,
                                                    hostile_usec(30 * USEC_PER_SEC)),
                          callers0);
        ck_assert_uint_eq(
                hostile_await_manager_u32(bus, "Clients", clients0, hostile_usec(5 * USEC_PER_SEC)),
                clients0);
        fds2 = await_daemon_fds(fds0);
        rss2 = daemon_rss_kib();
        printf("# after they left: daemon fds %d, VmRSS %ld KiB\n", fds2, rss2);
        fflush(stdout);
        ck_assert_int_eq(fds2, fds0);
        {
                HostileCaller fresh = {};

                ck_assert_int_ge(
                        hostile_spawn(hostile_user(2), (const char *const[]){"get", NULL}, &fresh),
                        0);
                ck_assert_int_eq(hostile_expect(&fresh, "get ", line, sizeof(line),
                                                hostile_usec(30 * USEC_PER_SEC)),
                                 0);
                printf("# the fresh caller: %s\n", line);
                ck_assert_str_eq(line, "get 69");
                ck_assert_int_eq(hostile_stop(&fresh, hostile_usec(10 * USEC_PER_SEC)), 0);
        }
        ck_assert(hostile_daemon_same(bus));
        bus = sd_bus_flush_close_unref(bus);
        ck_assert_int_eq(test_private_daemon_stop(&d), 0);
}

START_TEST(test_callers_with_clients) {
        run_callers("client");
}
END_TEST

START_TEST(test_callers_with_channels) {
        run_callers("channel");
}
END_TEST

static Suite *callers_suite(void) {
        Suite *s = suite_create("hostile-callers");
        TCase *tc = tcase_create("callers");

        tcase_set_timeout(tc, (double) hostile_usec(150 * USEC_PER_SEC) / USEC_PER_SEC);
        tcase_add_test(tc, test_callers_with_clients);
        tcase_add_test(tc, test_callers_with_channels);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(callers_suite)
