/* SPDX-License-Identifier: MIT */
/* Multicast is plain CoAP: a multicast request from a client with DTLS credentials is refused
 * with MulticastWithDtls (EPROTONOSUPPORT), before anything is sent. */

#include <check.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus-helper.h"
#include "check-main.h"
#include "dtls-helper.h"
#include "internal/bus-api.h"

START_TEST(test_multicast_with_dtls) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const TestExtra window = {"multicast-timeout", 'u', 300, NULL};
        struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        char *client = NULL;
        uint64_t id, sent = 1;
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &any, sizeof(any)), 0);
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "secure", &client, NULL), 0);
        ck_assert_int_ge(test_set_psk(b, client, "id", TEST_PSK_KEY, 0, NULL), 0);
        ck_assert_int_lt(test_bus_request(b, client, fd, "239.255.0.1:5683",
                                          &(TestRequest){.method = TEST_GET,
                                                         .non = true,
                                                         .path = "p",
                                                         .extra = &window,
                                                         .n_extra = 1},
                                          &id, &error),
                         0);
        ck_assert_str_eq(error.name, COAPCLIENTD_ERROR_MULTICAST_DTLS);
        ck_assert_int_eq(sd_bus_error_get_errno(&error), EPROTONOSUPPORT);
        ck_assert_int_eq(test_bus_get_manager_u64(b, "MessagesSent", &sent), 0);
        ck_assert_uint_eq(sent, 0);
        close(fd);
        free(client);
}
END_TEST

static Suite *dtls_multicast_suite(void) {
        Suite *s = suite_create("dtls-multicast");
        TCase *tc = tcase_create("refused");

        tcase_add_test(tc, test_multicast_with_dtls);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(dtls_multicast_suite)
