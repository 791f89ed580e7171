/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "check-main.h"
#include "util/log.h"

START_TEST(test_level_names) {
        static const struct {
                const char *name;
                int level;
        } names[] = {
                {"emerg", LOG_EMERG},   {"alert", LOG_ALERT}, {"crit", LOG_CRIT},
                {"err", LOG_ERR},       {"error", LOG_ERR},   {"warning", LOG_WARNING},
                {"notice", LOG_NOTICE}, {"info", LOG_INFO},   {"debug", LOG_DEBUG},
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                ck_assert_int_eq(log_level_from_string(names[i].name), names[i].level);
}
END_TEST

START_TEST(test_level_numbers) {
        char s[2] = {0};

        for (char c = '0'; c <= '7'; c++) {
                s[0] = c;
                ck_assert_int_eq(log_level_from_string(s), c - '0');
        }
}
END_TEST

START_TEST(test_level_rejected) {
        static const char *const bad[] = {
                "",      "8",     "9",     "-1",      "07",     "00",       "10",
                " 7",    "7 ",    "DEBUG", "Debug",   "warn",   "errors",   "inf",
                "info ", " info", "trace", "emerg\n", "debug7", "critical",
        };

        ck_assert_int_eq(log_level_from_string(NULL), -EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(log_level_from_string(bad[i]) == -EINVAL, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_max_level) {
        log_set_max_level(LOG_ERR);
        ck_assert_int_eq(log_get_max_level(), LOG_ERR);
        /* Below the maximum nothing is printed, yet the error is returned all the same. */
        ck_assert_int_eq(log_debug_errno(EIO, "not printed"), -EIO);
        ck_assert_int_eq(log_debug_errno(-EIO, "not printed"), -EIO);
        ck_assert_int_eq(log_error_errno(-ENOENT, "printed: %m"), -ENOENT);
        ck_assert_int_eq(log_error_errno(0, "printed"), 0);
        log_set_max_level(LOG_DEBUG);
        ck_assert_int_eq(log_get_max_level(), LOG_DEBUG);
        ck_assert_int_eq(log_debug_errno(EPERM, "printed: %m"), -EPERM);
}
END_TEST

static Suite *log_suite(void) {
        Suite *s = suite_create("log");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_level_names);
        tcase_add_test(tc, test_level_numbers);
        tcase_add_test(tc, test_level_rejected);
        tcase_add_test(tc, test_max_level);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(log_suite)
