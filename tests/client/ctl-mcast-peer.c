/* SPDX-License-Identifier: MIT */
/* Two members of MCAST_TEST_GROUP on the loopback for test-coapclientctl.sh: answering from
 * 127.0.0.4 with PAYLOAD_A and from 127.0.0.5 with PAYLOAD_B. Prints the group's port once
 * both have joined and runs until SIGTERM. A check test case run in-process, as
 * mcast-responder.c asserts with check. */

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "mcast-responder.h"

static const char *payload_a, *payload_b;

START_TEST(test_members) {
        McastResponder a, b;
        uint16_t port = mcast_test_port();
        sigset_t mask;
        int sig;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &mask, NULL), 0);
        mcast_responder_start(&a, "127.0.0.4", port, payload_a, 1);
        mcast_responder_start(&b, "127.0.0.5", port, payload_b, 1);
        printf("%u\n", port);
        ck_assert_int_eq(fflush(stdout), 0);
        ck_assert_int_eq(sigwait(&mask, &sig), 0);
        mcast_responder_stop(&a);
        mcast_responder_stop(&b);
}
END_TEST

int main(int argc, char *argv[]) {
        Suite *s = suite_create("ctl-mcast-peer");
        TCase *tc = tcase_create("members");
        SRunner *sr;
        int failed;

        if (argc != 3) {
                fprintf(stderr, "Usage: %s PAYLOAD_A PAYLOAD_B\n", argv[0]);
                return 2;
        }
        payload_a = argv[1];
        payload_b = argv[2];
        tcase_set_timeout(tc, 0);
        tcase_add_test(tc, test_members);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_SILENT);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
