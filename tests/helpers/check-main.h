/* SPDX-License-Identifier: MIT */
#pragma once

/* One Check executable per test file: TAP on stdout, so meson counts every case. */

#include <check.h>
#include <stdlib.h>

#define DEFINE_CHECK_MAIN(suite_fn)                               \
        int main(void) {                                          \
                SRunner *sr = srunner_create(suite_fn());         \
                int failed;                                       \
                srunner_set_tap(sr, "-");                         \
                srunner_run_all(sr, CK_SILENT);                   \
                failed = srunner_ntests_failed(sr);               \
                srunner_free(sr);                                 \
                return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE; \
        }
