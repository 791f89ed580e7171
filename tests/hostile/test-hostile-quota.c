/* SPDX-License-Identifier: MIT */
/* One uid takes everything it can (issue 12 point 5): up to 250 connections (the system bus
 * allows 256 per user), each with a data channel and as many clients as the daemon gives, then
 * more with a channel only, then requests holding 1 MiB payloads and requests without, all in
 * flight towards a peer that never answers, until refused. Every refusal must be named
 * (TooManyClients, TooManyRequests, LimitsExceeded); then a caller of another uid and root each
 * still create a client and complete a GET. */

#include <check.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "hostile-util.h"
#include "internal/bus-api.h"
#include "internal/macro.h"
#include "net-helper.h"

#define MAX_CONNECTIONS "250"

static bool named_refusal(const char *name) {
        return strcmp(name, COAPCLIENTD_ERROR_TOO_MANY_CLIENTS) == 0 ||
               strcmp(name, COAPCLIENTD_ERROR_TOO_MANY_REQUESTS) == 0 ||
               strcmp(name, COAPCLIENTD_ERROR_LIMITS_EXCEEDED) == 0;
}

START_TEST(test_one_uid_takes_everything) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error root_error = SD_BUS_ERROR_NULL;
        _cleanup_close_ int silent = -EBADF;
        HostileCaller hog = {}, other = {};
        char line[1024], port_arg[16];
        unsigned callers, channels, clients, requests, unnamed = 0;
        uint64_t payload;
        uint16_t port;
        int root_code;

        ck_assert_int_ge(hostile_bus_open(&bus), 0);
        ck_assert(hostile_daemon_same(bus));
        silent = test_udp_silent(AF_INET, &port);
        ck_assert_int_ge(silent, 0);
        snprintf(port_arg, sizeof(port_arg), "%u", port);

        ck_assert_int_ge(
                hostile_spawn(hostile_user(0),
                              (const char *const[]){"hog", MAX_CONNECTIONS, port_arg, NULL}, &hog),
                0);
        ck_assert_int_eq(
                hostile_expect(&hog, "hog ", line, sizeof(line), hostile_usec(240 * USEC_PER_SEC)),
                0);
        ck_assert_int_eq(sscanf(line, "hog %u %u %u %u %" SCNu64, &callers, &channels, &clients,
                                &requests, &payload),
                         5);
        printf("# %s holds %u callers, %u channels, %u clients, %u requests in flight with "
               "%" PRIu64 " payload bytes\n",
               hostile_user(0), callers, channels, clients, requests, payload);
        for (;;) {
                char name[256];

                ck_assert_int_eq(hostile_read_line(&hog, line, sizeof(line),
                                                   hostile_usec(10 * USEC_PER_SEC)),
                                 0);
                if (strcmp(line, "end") == 0)
                        break;
                printf("# %s: %s\n", hostile_user(0), line);
                ck_assert_int_eq(sscanf(line, "refused %*u %255[^:]", name), 1);
                if (!named_refusal(name) || !strchr(line, ':') || strlen(strchr(line, ':')) < 3)
                        unnamed++;
        }
        fflush(stdout);

        ck_assert_int_ge(hostile_spawn(hostile_user(1), (const char *const[]){"get", NULL}, &other),
                         0);
        ck_assert_int_eq(
                hostile_expect(&other, "get ", line, sizeof(line), hostile_usec(30 * USEC_PER_SEC)),
                0);
        root_code = hostile_get("root", &root_error);
        printf("# meanwhile %s: %s; root: %d %s\n", hostile_user(1), line, root_code,
               root_error.name ?: "");
        fflush(stdout);

        ck_assert_int_eq(hostile_stop(&other, hostile_usec(10 * USEC_PER_SEC)), 0);
        ck_assert_int_eq(hostile_stop(&hog, hostile_usec(30 * USEC_PER_SEC)), 0);
        ck_assert(hostile_daemon_same(bus));
        ck_assert_msg(unnamed == 0, "refusals without a named limit");
        ck_assert_str_eq(line, "get 69");
        ck_assert_int_eq(root_code, 0x45);
}
END_TEST

static Suite *quota_suite(void) {
        Suite *s = suite_create("hostile-quota");
        TCase *tc = tcase_create("quota");

        tcase_set_timeout(tc, (double) hostile_usec(150 * USEC_PER_SEC) / USEC_PER_SEC);
        tcase_add_test(tc, test_one_uid_takes_everything);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(quota_suite)
