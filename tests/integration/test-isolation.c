/* SPDX-License-Identifier: MIT */
/* Callers are isolated from each other, and a caller that vanishes leaves nothing behind. */

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-helper.h"
#include "check-main.h"
#include "internal/bus-api.h"
#include "net-helper.h"

START_TEST(test_other_callers_client_invisible) {
        _cleanup_(test_bus_freep) TestBus *a = NULL, *b = NULL;
        _cleanup_free_ char *client_a = NULL, *client_b = NULL, *name = NULL, *xml = NULL;
        _cleanup_close_ int fd = -EBADF;
        char node[128], **list = NULL;
        size_t n = 0;
        TestResponse *resp = NULL;
        uint64_t id;
        size_t n_resp;
        struct {
                const char *what;
                int r;
                sd_bus_error error;
        } calls[5] = {};

        ck_assert_int_eq(test_bus_new(&a), 0);
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(a, "a", &client_a, NULL), 0);
        ck_assert_int_eq(test_bus_create_client(b, "b", &client_b, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(test_bus_request(a, client_a, fd, "",
                                          &(TestRequest){.method = TEST_GET, .path = "async?1"},
                                          &id, NULL),
                         0);

        calls[0].what = "Request";
        calls[0].r = test_bus_request(b, client_a, fd, "",
                                      &(TestRequest){.method = TEST_GET, .path = "time"}, NULL,
                                      &calls[0].error);
        calls[1].what = "Cancel";
        calls[1].r = test_bus_call_id(b, client_a, "Cancel", id, &calls[1].error);
        calls[2].what = "CancelAll";
        calls[2].r = test_bus_call_void(b, client_a, "CancelAll", &calls[2].error);
        calls[3].what = "Close";
        calls[3].r = test_bus_call_void(b, client_a, "Close", &calls[3].error);
        calls[4].what = "Get Name";
        calls[4].r = test_bus_get_client_string(b, client_a, "Name", &name, &calls[4].error);
        for (size_t i = 0; i < ELEMENTSOF(calls); i++) {
                ck_assert_msg(calls[i].r < 0, "%s on A's client succeeded for B", calls[i].what);
                ck_assert_msg(sd_bus_error_has_name(&calls[i].error, TEST_ERROR_UNKNOWN_OBJECT),
                              "%s: %s", calls[i].what, calls[i].error.name);
                sd_bus_error_free(&calls[i].error);
        }

        /* ListClients and introspection show B only its own client. */
        ck_assert_int_ge(test_bus_list_clients(b, &list, NULL), 0);
        for (char **c = list; c && *c; c++, n++)
                ck_assert_str_eq(*c, client_b);
        ck_assert_uint_eq(n, 1);
        test_strv_free(list);
        ck_assert_int_ge(test_bus_introspect(b, COAPCLIENTD_CLIENT_PREFIX, &xml, NULL), 0);
        snprintf(node, sizeof(node), "<node name=\"%s\"", strrchr(client_a, '/') + 1);
        ck_assert_msg(!strstr(xml, node), "B's introspection shows A's client:\n%s", xml);
        snprintf(node, sizeof(node), "<node name=\"%s\"", strrchr(client_b, '/') + 1);
        ck_assert_msg(strstr(xml, node), "B's introspection lacks its own client:\n%s", xml);

        /* A's request survived all of it. */
        ck_assert_int_eq(test_bus_collect(a, id, 5 * USEC_PER_SEC, &resp, &n_resp), 0);
        ck_assert_uint_eq(n_resp, 1);
        ck_assert_int_eq(resp[0].result, 0x45);
        test_responses_free(resp, n_resp);
}
END_TEST

START_TEST(test_signals_unicast) {
        _cleanup_(test_bus_freep) TestBus *a = NULL, *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int fd = -EBADF;
        TestResponse *resp = NULL;
        uint64_t id;
        size_t n;

        ck_assert_int_eq(test_bus_new(&a), 0);
        /* B subscribes to every Response signal, without eavesdropping. */
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(a, "a", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);

        ck_assert_int_ge(test_bus_request(a, client, fd, "",
                                          &(TestRequest){.method = TEST_GET,
                                                         .path = "example_data",
                                                         .block_size = 256},
                                          &id, NULL),
                         0);
        ck_assert_int_eq(test_bus_collect(a, id, 5 * USEC_PER_SEC, &resp, &n), 0);
        ck_assert_uint_ge(n, 2);
        for (size_t i = 0; i < n; i++)
                ck_assert_str_eq(resp[i].destination, a->unique_name);
        test_responses_free(resp, n);

        ck_assert_int_eq(test_bus_run(b, 500 * USEC_PER_MSEC), 0);
        ck_assert_uint_eq(test_bus_count_queued(b, UINT64_MAX), 0);
}
END_TEST

static int wait_name_gone(TestBus *b, const char *name) {
        uint64_t deadline = test_now_usec() + 5 * USEC_PER_SEC;

        while (sd_bus_get_name_creds(b->bus, name, 0, NULL) >= 0) {
                if (test_now_usec() >= deadline)
                        return -ETIMEDOUT;
                (void) test_bus_run(b, 10 * USEC_PER_MSEC);
        }
        return 0;
}

typedef struct Counters {
        uint32_t clients, callers, sockets, inflight;
        int fds;
} Counters;

static void read_counters(TestBus *b, Counters *c) {
        ck_assert_int_ge(test_bus_get_manager_u32(b, "Clients", &c->clients), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "Callers", &c->callers), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "Sockets", &c->sockets), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "RequestsInFlight", &c->inflight), 0);
        c->fds = test_daemon_fd_count();
        ck_assert_int_gt(c->fds, 0);
}

static bool counters_equal(const Counters *x, const Counters *y) {
        return x->clients == y->clients && x->callers == y->callers && x->sockets == y->sockets &&
               x->inflight == y->inflight && x->fds == y->fds;
}

/* The child: a caller with an observation and a slow request in flight that dies. */
static void vanishing_caller(int ready_fd, int go_fd) {
        TestBus *b = NULL;
        char *client = NULL, dest[64], name[256] = {};
        char c;
        int fd, silent;
        uint16_t port;

        if (test_bus_new(&b) < 0 || test_bus_create_client(b, "doomed", &client, NULL) < 0)
                _exit(EXIT_FAILURE);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        silent = test_udp_silent(AF_INET, &port);
        if (fd < 0 || silent < 0)
                _exit(EXIT_FAILURE);
        snprintf(dest, sizeof(dest), "127.0.0.1:%u", port);
        if (test_bus_request(b, client, fd, "",
                             &(TestRequest){.method = TEST_GET, .path = "time", .observe = true},
                             NULL, NULL) < 0 ||
            test_bus_request(b, client, fd, "",
                             &(TestRequest){.method = TEST_GET, .path = "async?5"}, NULL, NULL) < 0)
                _exit(EXIT_FAILURE);
        /* A second socket, to a peer that never answers. */
        close(fd);
        fd = test_udp_socket(AF_INET, NULL, 0);
        if (fd < 0 ||
            test_bus_request(b, client, fd, dest,
                             &(TestRequest){.method = TEST_GET, .path = "slow"}, NULL, NULL) < 0)
                _exit(EXIT_FAILURE);
        /* Let the first notification go out, so the daemon has sent signals to us. */
        (void) test_bus_run(b, 200 * USEC_PER_MSEC);
        snprintf(name, sizeof(name), "%s", b->unique_name);
        if (write(ready_fd, name, strlen(name)) < 0)
                _exit(EXIT_FAILURE);
        (void) read(go_fd, &c, 1);
        _exit(EXIT_SUCCESS);
}

START_TEST(test_caller_vanishes) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int fd = -EBADF;
        Counters base, during, after;
        TestResponse *resp = NULL;
        char name[256] = {};
        int ready[2], go[2], status;
        uint64_t id, deadline;
        size_t n;
        pid_t pid;

        /* Warm up: one full request, so lazily created daemon fds exist in the baseline. */
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "witness", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(test_bus_request(b, client, fd, "",
                                          &(TestRequest){.method = TEST_GET, .path = "time"}, &id,
                                          NULL),
                         0);
        ck_assert_int_eq(test_bus_collect(b, id, 5 * USEC_PER_SEC, &resp, &n), 0);
        test_responses_free(resp, n);
        /* The daemon frees an idle socket one loop step after its last request: wait for it. */
        deadline = test_now_usec() + 5 * USEC_PER_SEC;
        for (;;) {
                read_counters(b, &base);
                if ((base.sockets == 0 && base.inflight == 0) || test_now_usec() >= deadline)
                        break;
                (void) test_bus_run(b, 20 * USEC_PER_MSEC);
        }
        base.fds = test_daemon_fd_count_settled();

        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                close(ready[0]);
                close(go[1]);
                vanishing_caller(ready[1], go[0]);
        }
        close(ready[1]);
        close(go[0]);
        ck_assert_int_gt(read(ready[0], name, sizeof(name) - 1), 0);
        close(ready[0]);

        read_counters(b, &during);
        ck_assert_uint_eq(during.clients, base.clients + 1);
        ck_assert_uint_eq(during.callers, base.callers + 1);
        ck_assert_uint_eq(during.sockets, base.sockets + 2);
        ck_assert_uint_eq(during.inflight, base.inflight + 3);
        ck_assert_int_ge(during.fds, base.fds + 2);

        close(go[1]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_int_eq(wait_name_gone(b, name), 0);

        /* The daemon learns of the disconnect through the bus; poll until it has cleaned up. */
        deadline = test_now_usec() + 3 * USEC_PER_SEC;
        for (;;) {
                read_counters(b, &after);
                if (counters_equal(&after, &base) || test_now_usec() >= deadline)
                        break;
                (void) test_bus_run(b, 20 * USEC_PER_MSEC);
        }
        ck_assert_uint_eq(after.clients, base.clients);
        ck_assert_uint_eq(after.callers, base.callers);
        ck_assert_uint_eq(after.sockets, base.sockets);
        ck_assert_uint_eq(after.inflight, base.inflight);
        ck_assert_int_eq(after.fds, base.fds);

        /* And it still serves the caller that stayed. */
        ck_assert_int_ge(test_bus_request(b, client, fd, "",
                                          &(TestRequest){.method = TEST_GET, .path = "time"}, &id,
                                          NULL),
                         0);
        ck_assert_int_eq(test_bus_collect(b, id, 5 * USEC_PER_SEC, &resp, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(resp[0].result, 0x45);
        test_responses_free(resp, n);
}
END_TEST

static Suite *isolation_suite(void) {
        Suite *s = suite_create("isolation");
        TCase *tc = tcase_create("isolation");

        tcase_set_timeout(tc, 15);
        tcase_add_test(tc, test_other_callers_client_invisible);
        tcase_add_test(tc, test_signals_unicast);
        tcase_add_test(tc, test_caller_vanishes);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(isolation_suite)
