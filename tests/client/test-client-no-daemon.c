/* SPDX-License-Identifier: MIT */

/* coapclientd absent: coap_client_init() returns the documented -ECONNREFUSED, whether the bus
 * is missing or the service is not on it, and coap_client_last_error() says which. Runs with
 * TEST_NO_DAEMON=1 (test-env.sh starts the bus only). */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "coapclient/coap_client.h"
#include "internal/bus-api.h"
#include "internal/macro.h"

START_TEST(test_no_bus) {
        struct coap_client client = {};
        _cleanup_free_ char *saved = strdup(getenv(COAPCLIENTD_BUS_ADDRESS_ENV));
        const char *e;

        ck_assert_ptr_nonnull(saved);
        ck_assert_int_eq(setenv(COAPCLIENTD_BUS_ADDRESS_ENV, "unix:path=/nonexistent/bus", 1), 0);
        ck_assert_int_eq(coap_client_init(&client, NULL), -ECONNREFUSED);
        e = coap_client_last_error();
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(strstr(e, "unix:path=/nonexistent/bus") && strstr(e, "No such file"),
                      "last error: %s", e);
        ck_assert_int_eq(setenv(COAPCLIENTD_BUS_ADDRESS_ENV, saved, 1), 0);
}
END_TEST

START_TEST(test_not_on_the_bus) {
        struct coap_client client = {};
        const char *e;

        ck_assert_int_eq(coap_client_init(&client, NULL), -ECONNREFUSED);
        e = coap_client_last_error();
        ck_assert_ptr_nonnull(e);
        /* The test bus has no activation: the name is simply unknown. */
        ck_assert_msg(strstr(e, "org.freedesktop.DBus.Error.ServiceUnknown") ||
                              strstr(e, "org.freedesktop.DBus.Error.NameHasNoOwner"),
                      "last error: %s", e);
        coap_client_deinit(&client);
}
END_TEST

static Suite *no_daemon_suite(void) {
        Suite *s = suite_create("client-no-daemon");
        TCase *tc = tcase_create("init");

        tcase_add_test(tc, test_no_bus);
        tcase_add_test(tc, test_not_on_the_bus);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(no_daemon_suite)
