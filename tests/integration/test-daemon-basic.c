/* SPDX-License-Identifier: MIT */
/* The daemon's basic surface end to end: the Manager as busctl sees it, and plain requests
 * (CON, NON, separate response, 4.04, connected and unconnected sockets, IPv4 and IPv6) against
 * a real coap-server-gnutls. */

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "bus-helper.h"
#include "check-main.h"
#include "internal/bus-api.h"
#include "net-helper.h"

#define WAIT_USEC (5 * USEC_PER_SEC)

static char *busctl(const char *args) {
        char cmd[1024], *out = NULL;
        size_t size = 0;
        FILE *f, *p;

        snprintf(cmd, sizeof(cmd), "busctl --address='%s' %s 2>&1",
                 getenv("COAPCLIENTD_BUS_ADDRESS"), args);
        p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        f = open_memstream(&out, &size);
        ck_assert_ptr_nonnull(f);
        for (int c; (c = fgetc(p)) != EOF;)
                fputc(c, f);
        fclose(f);
        ck_assert_int_eq(pclose(p), 0);
        return out;
}

START_TEST(test_busctl_surface) {
        _cleanup_free_ char *list = NULL, *created = NULL, *version = NULL, *intro = NULL,
                            *clients = NULL;

        list = busctl("list --no-pager");
        ck_assert_ptr_nonnull(strstr(list, COAPCLIENTD_BUS_NAME));
        created = busctl("call " COAPCLIENTD_BUS_NAME " " COAPCLIENTD_ROOT_PATH
                         " " COAPCLIENTD_MANAGER_IFACE " CreateClient s busctl");
        ck_assert_msg(strncmp(created, "o \"" COAPCLIENTD_CLIENT_PREFIX "/",
                              strlen("o \"" COAPCLIENTD_CLIENT_PREFIX "/")) == 0,
                      "CreateClient via busctl gave: %s", created);
        /* busctl's client went away with busctl, and nobody else's is listed. */
        clients = busctl("call " COAPCLIENTD_BUS_NAME " " COAPCLIENTD_ROOT_PATH
                         " " COAPCLIENTD_MANAGER_IFACE " ListClients");
        ck_assert_str_eq(clients, "ao 0\n");
        version = busctl("get-property " COAPCLIENTD_BUS_NAME " " COAPCLIENTD_ROOT_PATH
                         " " COAPCLIENTD_MANAGER_IFACE " Version");
        ck_assert_msg(strncmp(version, "s \"", 3) == 0 && strlen(version) > 5, "Version: %s",
                      version);
        intro = busctl("introspect --no-pager " COAPCLIENTD_BUS_NAME " " COAPCLIENTD_ROOT_PATH);
        ck_assert_ptr_nonnull(strstr(intro, ".CreateClient"));
        ck_assert_ptr_nonnull(strstr(intro, ".MaxPayloadBytes"));
}
END_TEST

START_TEST(test_manager_properties) {
        static const char *const u32_props[] = {"Clients",
                                                "Callers",
                                                "Sockets",
                                                "RequestsInFlight",
                                                "MaxClientsPerCaller",
                                                "MaxRequestsPerClient",
                                                "MaxPayloadBytes"};
        static const char *const u64_props[] = {"MessagesSent", "MessagesReceived",
                                                "Retransmissions", "Timeouts"};
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *path = NULL, *version = NULL, *name = NULL, *owner = NULL;
        char **clients = NULL;
        uint32_t before, after, v;
        uint64_t t;
        size_t n = 0;

        ck_assert_int_eq(test_bus_new(&b), 0);
        for (size_t i = 0; i < ELEMENTSOF(u32_props); i++)
                ck_assert_msg(test_bus_get_manager_u32(b, u32_props[i], &v) >= 0, "%s",
                              u32_props[i]);
        for (size_t i = 0; i < ELEMENTSOF(u64_props); i++)
                ck_assert_msg(test_bus_get_manager_u64(b, u64_props[i], &t) >= 0, "%s",
                              u64_props[i]);
        ck_assert_int_ge(
                sd_bus_get_property_string(b->bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                                           COAPCLIENTD_MANAGER_IFACE, "Version", NULL, &version),
                0);
        ck_assert_uint_gt(strlen(version), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "MaxClientsPerCaller", &v), 0);
        ck_assert_uint_gt(v, 0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "MaxRequestsPerClient", &v), 0);
        ck_assert_uint_gt(v, 0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "MaxPayloadBytes", &v), 0);
        ck_assert_uint_ge(v, 1024);

        ck_assert_int_ge(test_bus_get_manager_u32(b, "Clients", &before), 0);
        ck_assert_int_eq(test_bus_create_client(b, "basic", &path, NULL), 0);
        ck_assert_int_eq(
                strncmp(path, COAPCLIENTD_CLIENT_PREFIX "/", strlen(COAPCLIENTD_CLIENT_PREFIX "/")),
                0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "Clients", &after), 0);
        ck_assert_uint_eq(after, before + 1);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "Callers", &v), 0);
        ck_assert_uint_ge(v, 1);

        ck_assert_int_ge(test_bus_list_clients(b, &clients, NULL), 0);
        for (char **c = clients; c && *c; c++, n++)
                ck_assert_str_eq(*c, path);
        ck_assert_uint_eq(n, 1);
        test_strv_free(clients);

        ck_assert_int_ge(test_bus_get_client_string(b, path, "Name", &name, NULL), 0);
        ck_assert_str_eq(name, "basic");
        ck_assert_int_ge(test_bus_get_client_string(b, path, "Owner", &owner, NULL), 0);
        ck_assert_str_eq(owner, b->unique_name);

        ck_assert_int_ge(test_bus_call_void(b, path, "Close", NULL), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "Clients", &after), 0);
        ck_assert_uint_eq(after, before);
}
END_TEST

/* One request over fd to dest; returns its only Response, which must be final. */
static void request_one(TestBus *b, const char *client, int fd, const char *dest,
                        const TestRequest *req, uint64_t timeout_usec, TestResponse *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        TestResponse *resp = NULL;
        uint64_t id;
        size_t n;

        ck_assert_msg(test_bus_request(b, client, fd, dest, req, &id, &error) >= 0,
                      "Request failed: %s: %s", error.name, error.message);
        ck_assert_int_eq(test_bus_collect(b, id, timeout_usec, &resp, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert(resp[0].final);
        ck_assert(resp[0].last_block);
        ck_assert_uint_eq(resp[0].offset, 0);
        ck_assert_str_eq(resp[0].path, client);
        ck_assert_str_eq(resp[0].destination, b->unique_name);
        *ret = resp[0];
        free(resp);
}

START_TEST(test_con_get) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int fd = -EBADF;
        TestResponse r;
        uint64_t sent0, sent1, recv0, recv1;
        uint32_t inflight;

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "con", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(test_bus_get_manager_u64(b, "MessagesSent", &sent0), 0);
        ck_assert_int_ge(test_bus_get_manager_u64(b, "MessagesReceived", &recv0), 0);

        request_one(b, client, fd, "", &(TestRequest){.method = TEST_GET, .path = ""}, WAIT_USEC,
                    &r);
        ck_assert_int_eq(r.result, 0x45);
        ck_assert_uint_gt(r.payload_len, 0);
        ck_assert_msg(strstr((const char *) r.payload, "libcoap"), "payload: %s", r.payload);
        test_response_done(&r);

        ck_assert_int_ge(test_bus_get_manager_u64(b, "MessagesSent", &sent1), 0);
        ck_assert_int_ge(test_bus_get_manager_u64(b, "MessagesReceived", &recv1), 0);
        ck_assert_uint_ge(sent1, sent0 + 1);
        ck_assert_uint_ge(recv1, recv0 + 1);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "RequestsInFlight", &inflight), 0);
        ck_assert_uint_eq(inflight, 0);
}
END_TEST

START_TEST(test_non_get) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int fd = -EBADF;
        TestResponse r;

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "non", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        request_one(b, client, fd, "",
                    &(TestRequest){.method = TEST_GET, .non = true, .path = "time"}, WAIT_USEC, &r);
        ck_assert_int_eq(r.result, 0x45);
        ck_assert_uint_gt(r.payload_len, 0);
        test_response_done(&r);
}
END_TEST

START_TEST(test_separate_response) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int fd = -EBADF;
        TestResponse r;
        uint64_t start, elapsed;

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "async", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        start = test_now_usec();
        request_one(b, client, fd, "", &(TestRequest){.method = TEST_GET, .path = "async?2"},
                    8 * USEC_PER_SEC, &r);
        elapsed = r.received_usec - start;
        ck_assert_int_eq(r.result, 0x45);
        ck_assert_uint_eq(r.payload_len, 4);
        ck_assert_mem_eq(r.payload, "done", 4);
        ck_assert_msg(elapsed >= 1800 * USEC_PER_MSEC && elapsed < 5 * USEC_PER_SEC,
                      "separate response after %llu ms", (unsigned long long) elapsed / 1000);
        test_response_done(&r);
}
END_TEST

START_TEST(test_not_found) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int fd = -EBADF;
        TestResponse r;

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "404", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        request_one(b, client, fd, "", &(TestRequest){.method = TEST_GET, .path = "nonexistent"},
                    WAIT_USEC, &r);
        ck_assert_int_eq(r.result, 0x84);
        test_response_done(&r);
}
END_TEST

START_TEST(test_unconnected_with_destination) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int fd = -EBADF;
        char dest[64];
        TestResponse r;

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "unconnected", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, NULL, 0);
        ck_assert_int_ge(fd, 0);
        test_format_destination(dest, sizeof(dest), test_peer_host(), test_peer_port());
        request_one(b, client, fd, dest, &(TestRequest){.method = TEST_GET, .path = "time"},
                    WAIT_USEC, &r);
        ck_assert_int_eq(r.result, 0x45);
        ck_assert_uint_gt(r.payload_len, 0);
        test_response_done(&r);
}
END_TEST

START_TEST(test_ipv6) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int connected = -EBADF, unconnected = -EBADF;
        char dest[64];
        uint16_t port;
        pid_t pid;
        TestResponse r;

        ck_assert_int_eq(test_coap_server_spawn("::1", &port, &pid), 0);
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "ipv6", &client, NULL), 0);

        unconnected = test_udp_socket(AF_INET6, NULL, 0);
        ck_assert_int_ge(unconnected, 0);
        test_format_destination(dest, sizeof(dest), "::1", port);
        request_one(b, client, unconnected, dest, &(TestRequest){.method = TEST_GET, .path = ""},
                    WAIT_USEC, &r);
        ck_assert_int_eq(r.result, 0x45);
        ck_assert_msg(strstr((const char *) r.payload, "libcoap"), "payload: %s", r.payload);
        test_response_done(&r);

        connected = test_udp_socket(AF_INET6, "::1", port);
        ck_assert_int_ge(connected, 0);
        request_one(b, client, connected, "", &(TestRequest){.method = TEST_GET, .path = "time"},
                    WAIT_USEC, &r);
        ck_assert_int_eq(r.result, 0x45);
        ck_assert_uint_gt(r.payload_len, 0);
        test_response_done(&r);
        test_child_stop(pid);
}
END_TEST

static Suite *basic_suite(void) {
        Suite *s = suite_create("daemon-basic");
        TCase *tc = tcase_create("basic");

        tcase_set_timeout(tc, 10);
        tcase_add_test(tc, test_busctl_surface);
        tcase_add_test(tc, test_manager_properties);
        tcase_add_test(tc, test_con_get);
        tcase_add_test(tc, test_non_get);
        tcase_add_test(tc, test_separate_response);
        tcase_add_test(tc, test_not_found);
        tcase_add_test(tc, test_unconnected_with_destination);
        tcase_add_test(tc, test_ipv6);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(basic_suite)
