/* SPDX-License-Identifier: MIT */
/* One unprivileged caller floods the daemon with Introspect and GetAll calls and never reads a
 * reply: enough calls that their replies add up to 1.25 × the bus's max_incoming_bytes
 * (127 MiB), which the bus charges to the daemon until the flooder reads them. While the
 * flood keeps the daemon busy, a bystander of another uid, which already has a libcoapclient
 * client and channel, does rounds of: connect anew and read a Manager property, then GET over
 * its data channel. Each must answer within 2 s: issue 12's acceptance bound (not a benchmark;
 * it was 25 s and 12 s), scaled by hostile_scale() for a daemon under valgrind or sanitizers. */

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-helper.h"
#include "check-main.h"
#include "hostile-util.h"
#include "internal/bus-api.h"
#include "internal/macro.h"

#define BUS_MAX_INCOMING_BYTES (127ull * 1024 * 1024) /* system-bus.conf */
#define BOUND_USEC             (2 * USEC_PER_SEC)

/* Calls whose replies add up to 1.25 × max_incoming_bytes; every other call is an Introspect
 * of the root object, whose reply alone is counted. */
static unsigned flood_calls(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *xml;

        ck_assert_int_ge(sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                                            "org.freedesktop.DBus.Introspectable", "Introspect",
                                            NULL, &reply, NULL),
                         0);
        ck_assert_int_ge(sd_bus_message_read(reply, "s", &xml), 0);
        ck_assert_uint_gt(strlen(xml), 0);
        return (unsigned) (2 * (BUS_MAX_INCOMING_BYTES * 5 / 4 / strlen(xml) + 1));
}

/* CPU time the daemon has used, in microseconds, from /proc/PID/stat. */
static uint64_t daemon_cpu_usec(void) {
        char path[64], buf[1024], *p;
        unsigned long utime, stime;
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%s/stat", getenv("COAPCLIENTD_PID") ?: "0");
        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* After the command's closing parenthesis: state is field 3, utime 14, stime 15. */
        p = strrchr(buf, ')');
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                                &utime, &stime),
                         2);
        return (uint64_t) (utime + stime) * USEC_PER_SEC / (uint64_t) sysconf(_SC_CLK_TCK);
}

START_TEST(test_flood) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        HostileCaller bystander = {}, flooder = {};
        char line[256], n_arg[32];
        uint64_t bound = hostile_usec(BOUND_USEC), deadline, bytes, prop_max = 0, get_max = 0;
        uint64_t cpu0, t0;
        unsigned n, sent, rounds = 0, failed = 0;
        bool busy = true;

        ck_assert_int_ge(hostile_bus_open(&bus), 0);
        ck_assert(hostile_daemon_same(bus));
        n = flood_calls(bus);

        ck_assert_int_ge(hostile_spawn(hostile_user(1), (const char *const[]){"bystander", NULL},
                                       &bystander),
                         0);
        ck_assert_int_eq(hostile_expect(&bystander, "ready", line, sizeof(line),
                                        hostile_usec(30 * USEC_PER_SEC)),
                         0);

        snprintf(n_arg, sizeof(n_arg), "%u", n);
        ck_assert_int_ge(hostile_spawn(hostile_user(0), (const char *const[]){"flood", n_arg, NULL},
                                       &flooder),
                         0);
        /* "flooded N BYTES" once every call is written, "cut N BYTES ERRNO" if the bus cut it
         * off first. */
        ck_assert_int_eq(
                hostile_read_line(&flooder, line, sizeof(line), hostile_usec(60 * USEC_PER_SEC)),
                0);
        printf("# flooder (%s): %s of %u calls\n", hostile_user(0), line, n);
        ck_assert_int_eq(sscanf(line, "%*s %u %" SCNu64, &sent, &bytes), 2);

        /* Rounds of the bystander for as long as the flood keeps the daemon busy: until it
         * spends less than a quarter of 250 ms on the CPU, or for 20 s at most. Not scaled for
         * valgrind: the flood's cost comes first, and back-to-back rounds keep a daemon under
         * valgrind busy by themselves. */
        deadline = test_now_usec() + 20 * USEC_PER_SEC;
        cpu0 = daemon_cpu_usec();
        t0 = test_now_usec();
        while (busy && test_now_usec() < deadline) {
                uint64_t prop_usec, get_usec;
                int code;

                ck_assert_int_eq(hostile_send(&bystander, "go"), 0);
                ck_assert_int_eq(hostile_expect(&bystander, "bystander ", line, sizeof(line),
                                                hostile_usec(120 * USEC_PER_SEC)),
                                 0);
                ck_assert_int_eq(sscanf(line, "bystander %" SCNu64 " %d %" SCNu64, &prop_usec,
                                        &code, &get_usec),
                                 3);
                rounds++;
                prop_max = MAX(prop_max, prop_usec);
                get_max = MAX(get_max, get_usec);
                if (prop_usec > bound || code != 0x45 || get_usec > bound) {
                        failed++;
                        printf("# round %u: property read %s%" PRIu64 " ms, channel GET %d in "
                               "%" PRIu64 " ms\n",
                               rounds, prop_usec == UINT64_MAX ? "failed, " : "",
                               prop_usec == UINT64_MAX ? 0 : prop_usec / 1000, code,
                               get_usec / 1000);
                        break;
                }
                if (test_now_usec() - t0 >= 250 * USEC_PER_MSEC) {
                        uint64_t cpu = daemon_cpu_usec();

                        busy = (cpu - cpu0) * 4 >= test_now_usec() - t0;
                        cpu0 = cpu;
                        t0 = test_now_usec();
                }
        }
        printf("# during the flood (%s), %u rounds of %s: slowest property read %s%" PRIu64
               " ms, slowest channel GET %" PRIu64 " ms (bound %" PRIu64 " ms)\n",
               busy ? "the daemon still busy after 20 s" : "until the daemon went idle", rounds,
               hostile_user(1), prop_max == UINT64_MAX ? "failed" : "",
               prop_max == UINT64_MAX ? 0 : prop_max / 1000, get_max / 1000, bound / 1000);
        fflush(stdout);

        ck_assert_int_eq(hostile_stop(&flooder, hostile_usec(10 * USEC_PER_SEC)), 0);
        ck_assert_int_eq(hostile_stop(&bystander, hostile_usec(10 * USEC_PER_SEC)), 0);
        ck_assert(hostile_daemon_same(bus));
        ck_assert_msg(failed == 0, "the bystander was not served within %" PRIu64 " ms",
                      bound / 1000);
}
END_TEST

static Suite *flood_suite(void) {
        Suite *s = suite_create("hostile-flood");
        TCase *tc = tcase_create("flood");

        tcase_set_timeout(tc, (double) hostile_usec(240 * USEC_PER_SEC) / USEC_PER_SEC);
        tcase_add_test(tc, test_flood);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(flood_suite)
