/* SPDX-License-Identifier: MIT */
/* coapclientd is SIGKILLed in the middle of block-wise transfers made through libcoapclient and
 * started again on the same bus: each pending request gets exactly one error callback
 * (-ECONNABORTED) promptly and nothing after it, the blocks before it were intact, new requests
 * work after the restart, and repeated crashes leak no descriptors in the application.
 * Runs with TEST_NO_DAEMON=1: the test runs the daemons itself. A relay with a delay stretches
 * the transfers (1 MiB takes seconds), so that the crash lands in the middle of them. */

#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"
#include "fault-util.h"
#include "internal/bus-api.h"
#include "internal/macro.h"
#include "net-helper.h"

#define BODY_SIZE        (1024 * 1024)
#define UPLOAD_SIZE      (256 * 1024)
#define CYCLES           3
#define ABORT_BOUND_USEC (2 * USEC_PER_SEC)

static bool name_has_owner(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int has = 0;

        ck_assert_int_ge(sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "NameHasOwner", NULL, &reply,
                                            "s", COAPCLIENTD_BUS_NAME),
                         0);
        ck_assert_int_ge(sd_bus_message_read(reply, "b", &has), 0);
        return has;
}

/* Starts coapclientd on the test bus and waits (bounded) until it owns its name. */
static pid_t daemon_start(void) {
        _cleanup_free_ char *log = fault_tmp_path("daemon.log");
        uint64_t deadline = fault_now_usec() + 10 * USEC_PER_SEC;
        char arg[1024];
        sd_bus *bus = NULL;
        pid_t pid;

        ck_assert_ptr_nonnull(log);
        snprintf(arg, sizeof(arg), "--bus-address=%s", getenv(COAPCLIENTD_BUS_ADDRESS_ENV));
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

                if (fd >= 0) {
                        (void) dup2(fd, STDOUT_FILENO);
                        (void) dup2(fd, STDERR_FILENO);
                }
                execl(getenv("COAPCLIENTD_BIN"), "coapclientd", arg, (char *) NULL);
                _exit(127);
        }
        ck_assert_int_ge(sd_bus_new(&bus), 0);
        ck_assert_int_ge(sd_bus_set_address(bus, getenv(COAPCLIENTD_BUS_ADDRESS_ENV)), 0);
        ck_assert_int_ge(sd_bus_set_bus_client(bus, 1), 0);
        ck_assert_int_ge(sd_bus_start(bus), 0);
        while (!name_has_owner(bus)) {
                ck_assert_msg(fault_pid_alive(pid), "coapclientd died at start");
                ck_assert_uint_lt(fault_now_usec(), deadline);
                (void) usleep(20 * 1000);
        }
        sd_bus_flush_close_unref(bus);
        return pid;
}

static struct sockaddr_in loopback(uint16_t port) {
        return (struct sockaddr_in){
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
}

static unsigned recorder_calls_after(Recorder *r, unsigned usec) {
        (void) usleep(usec);
        return recorder_n_calls(r);
}

START_TEST(test_crash_mid_transfer) {
        struct coap_transmission_parameters params = coap_get_transmission_parameters();
        _cleanup_free_ uint8_t *body = NULL;
        _cleanup_free_ char *stats = NULL;
        static const char *const relay_args[] = {"--delay-ms=4", NULL};
        struct coap_client client = {};
        struct sockaddr_in relayed;
        struct coap_client_request req;
        uint16_t relay_port;
        int fd_direct, fd_relayed, app_fds = -1, status;
        pid_t daemon, relay;
        Recorder rec;

        body = malloc(BODY_SIZE);
        ck_assert_ptr_nonnull(body);
        test_fill_random(body, BODY_SIZE, 4242);
        stats = fault_tmp_path("restart-relay");
        ck_assert_ptr_nonnull(stats);
        ck_assert_int_eq(
                fault_relay_spawn(test_peer_port(), stats, relay_args, &relay_port, &relay), 0);
        relayed = loopback(relay_port);
        fd_direct = test_udp_socket(AF_INET, "127.0.0.1", test_peer_port());
        fd_relayed = test_udp_socket(AF_INET, NULL, 0);
        ck_assert(fd_direct >= 0 && fd_relayed >= 0);
        params.ack_timeout = 1000;

        daemon = daemon_start();
        ck_assert_int_eq(coap_client_init(&client, "restart"), 0);
        /* The body to download, put directly. */
        recorder_init(&rec);
        req = make_request(COAP_METHOD_PUT, "example_data", &rec);
        req.payload = body;
        req.len = BODY_SIZE;
        ck_assert_int_eq(coap_client_req(&client, fd_direct, NULL, &req, &params), 0);
        ck_assert(recorder_wait_last(&rec, 1, 30));
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_CREATED);
        recorder_done(&rec);

        for (int cycle = 0; cycle < CYCLES; cycle++) {
                Recorder get, put;
                uint64_t killed_at;
                unsigned calls;

                recorder_init(&get);
                recorder_init(&put);
                req = make_request(COAP_METHOD_GET, "example_data", &get);
                ck_assert_int_eq(coap_client_req(&client, fd_relayed, (struct sockaddr *) &relayed,
                                                 &req, &params),
                                 0);
                /* An upload to a resource nobody reads back: only its fate matters. */
                req = make_request(COAP_METHOD_PUT, "upload", &put);
                req.payload = body;
                req.len = UPLOAD_SIZE;
                ck_assert_int_eq(coap_client_req(&client, fd_relayed, (struct sockaddr *) &relayed,
                                                 &req, &params),
                                 0);
                /* Mid-transfer: some blocks in, far from the end. */
                for (uint64_t end = fault_now_usec() + 10 * USEC_PER_SEC;
                     recorder_n_calls(&get) < 8;) {
                        ck_assert_uint_lt(fault_now_usec(), end);
                        (void) usleep(1000);
                }
                ck_assert_int_eq(kill(daemon, SIGKILL), 0);
                killed_at = fault_now_usec();
                ck_assert_int_eq(waitpid(daemon, &status, 0), daemon);

                ck_assert(recorder_wait_last(&get, 1, 5));
                ck_assert(recorder_wait_last(&put, 1, 5));
                printf("# cycle %d: GET aborted after %zu bytes, PUT after %u progress "
                       "callbacks, %" PRIu64 " ms after the kill\n",
                       cycle, get.body_len, put.n_calls - 1, (fault_now_usec() - killed_at) / 1000);
                fflush(stdout);
                ck_assert_uint_lt(fault_now_usec() - killed_at, ABORT_BOUND_USEC);
                ck_assert_int_eq(get.code, -ECONNABORTED);
                ck_assert_int_eq(put.code, -ECONNABORTED);
                ck_assert_uint_eq(get.n_errors, 1);
                ck_assert_uint_eq(put.n_errors, 1);
                ck_assert(!get.error_not_last && !put.error_not_last);
                /* The blocks before the crash were contiguous and intact. */
                ck_assert(!get.bad_offset);
                ck_assert_uint_lt(get.body_len, BODY_SIZE);
                ck_assert_mem_eq(get.body, body, get.body_len);
                /* Nothing after the final callback. */
                calls = recorder_n_calls(&get) + recorder_n_calls(&put);
                ck_assert_uint_eq(recorder_calls_after(&get, 300 * 1000) + recorder_n_calls(&put),
                                  calls);
                ck_assert(!coap_client_has_ongoing_exchange(&client));

                /* A new daemon: the same client works again, byte-exact. */
                daemon = daemon_start();
                recorder_done(&get);
                recorder_init(&get);
                req = make_request(COAP_METHOD_GET, "example_data", &get);
                ck_assert_int_eq(do_request(&client, fd_direct, &req, &get),
                                 COAP_RESPONSE_CODE_CONTENT);
                ck_assert_uint_eq(get.body_len, BODY_SIZE);
                ck_assert_mem_eq(get.body, body, BODY_SIZE);
                recorder_done(&get);
                recorder_done(&put);

                /* The library reconnects without leaking: same fd count every cycle. */
                if (app_fds < 0)
                        app_fds = fault_fd_count(getpid());
                else
                        ck_assert_int_eq(fault_fd_count(getpid()), app_fds);
        }

        coap_client_deinit(&client);
        ck_assert_int_eq(kill(daemon, SIGTERM), 0);
        ck_assert_int_eq(waitpid(daemon, &status, 0), daemon);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_int_eq(fault_child_stop(relay), 0);
        fault_stats_print("relay", stats);
        safe_close(fd_direct);
        safe_close(fd_relayed);
}
END_TEST

static Suite *restart_suite(void) {
        Suite *s = suite_create("faults-daemon-restart");
        TCase *tc = tcase_create("daemon-restart");

        tcase_set_timeout(tc, 90);
        tcase_add_test(tc, test_crash_mid_transfer);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(restart_suite)
