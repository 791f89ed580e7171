/* SPDX-License-Identifier: MIT */
/* Forged signals from another uid (issue 12 point 3): ten NameOwnerChanged of our bus name
 * ("the daemon left", "the daemon was replaced") and ten Response signals on client paths
 * 1..10, all unicast to a libcoapclient process (the victim, with an observation running) and
 * to a raw sd-bus caller whose match asks for Responses of the daemon's well-known name.
 * The victim's requests all succeed and its observation goes on; the daemon holds no client
 * objects besides the three real ones; the raw caller receives no Response the daemon did not
 * send. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "hostile-util.h"
#include "internal/bus-api.h"
#include "internal/macro.h"

#define FORGERIES "10"
#define GETS      "10"

START_TEST(test_forgery) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *victim_name = NULL;
        HostileCaller victim = {}, raw = {}, forger = {};
        char line[512], raw_name[256];
        unsigned ok, failed, obs_errors, genuine, forged;
        uint32_t clients0, clients;

        ck_assert_int_ge(hostile_bus_open(&bus), 0);
        ck_assert(hostile_daemon_same(bus));
        ck_assert_int_ge(hostile_manager_u32(bus, "Clients", &clients0), 0);

        ck_assert_int_ge(hostile_spawn(hostile_user(0), (const char *const[]){"victim", GETS, NULL},
                                       &victim),
                         0);
        ck_assert_int_eq(hostile_expect(&victim, "ready", line, sizeof(line),
                                        hostile_usec(30 * USEC_PER_SEC)),
                         0);
        ck_assert_int_ge(hostile_unique_name_of(bus, victim.pid, &victim_name), 0);
        ck_assert_int_ge(
                hostile_spawn(hostile_user(2), (const char *const[]){"rawwatch", NULL}, &raw), 0);
        ck_assert_int_eq(hostile_expect(&raw, "rawwatch ", line, sizeof(line),
                                        hostile_usec(30 * USEC_PER_SEC)),
                         0);
        ck_assert_int_eq(sscanf(line, "rawwatch %255s", raw_name), 1);

        ck_assert_int_ge(hostile_spawn(hostile_user(1),
                                       (const char *const[]){"forge", FORGERIES, victim_name,
                                                             raw_name, NULL},
                                       &forger),
                         0);
        ck_assert_int_eq(hostile_expect(&forger, "forged", line, sizeof(line),
                                        hostile_usec(30 * USEC_PER_SEC)),
                         0);

        ck_assert_int_eq(hostile_send(&victim, "go"), 0);
        ck_assert_int_eq(hostile_expect(&victim, "victim ", line, sizeof(line),
                                        hostile_usec(120 * USEC_PER_SEC)),
                         0);
        ck_assert_int_eq(sscanf(line, "victim %u %u %u", &ok, &failed, &obs_errors), 3);
        ck_assert_int_eq(hostile_send(&raw, "go"), 0);
        ck_assert_int_eq(hostile_expect(&raw, "rawwatch ", line, sizeof(line),
                                        hostile_usec(60 * USEC_PER_SEC)),
                         0);
        ck_assert_int_eq(sscanf(line, "rawwatch %u %u", &genuine, &forged), 2);
        /* The victim holds two clients, the raw caller one. */
        ck_assert_int_ge(hostile_manager_u32(bus, "Clients", &clients), 0);
        printf("# %s NameOwnerChanged and %s Response forged by %s to each of %s (%s) and %s "
               "(%s)\n",
               FORGERIES, FORGERIES, hostile_user(1), victim_name, hostile_user(0), raw_name,
               hostile_user(2));
        printf("# victim: %u GETs succeeded, %u failed, %u errors on its observation; raw "
               "caller: %u genuine Responses, %u forged; daemon clients: %u (3 expected)\n",
               ok, failed, obs_errors, genuine, forged, clients - clients0);
        fflush(stdout);

        ck_assert_int_eq(hostile_stop(&forger, hostile_usec(10 * USEC_PER_SEC)), 0);
        ck_assert_int_eq(hostile_stop(&raw, hostile_usec(10 * USEC_PER_SEC)), 0);
        ck_assert_int_eq(hostile_stop(&victim, hostile_usec(10 * USEC_PER_SEC)), 0);

        ck_assert_uint_eq(ok, 10);
        ck_assert_uint_eq(failed, 0);
        ck_assert_uint_eq(obs_errors, 0);
        ck_assert_uint_ge(genuine, 1);
        ck_assert_uint_eq(forged, 0);
        ck_assert_uint_eq(clients, clients0 + 3);
        ck_assert_uint_eq(
                hostile_await_manager_u32(bus, "Clients", clients0, hostile_usec(5 * USEC_PER_SEC)),
                clients0);
        ck_assert(hostile_daemon_same(bus));
}
END_TEST

static Suite *forgery_suite(void) {
        Suite *s = suite_create("hostile-forgery");
        TCase *tc = tcase_create("forgery");

        tcase_set_timeout(tc, (double) hostile_usec(60 * USEC_PER_SEC) / USEC_PER_SEC);
        tcase_add_test(tc, test_forgery);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(forgery_suite)
