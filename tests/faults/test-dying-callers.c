/* SPDX-License-Identifier: MIT */
/* 1000 callers die in the middle of a request (each a forked process with its own bus
 * connection, a client, a socket and a pending /async?5 request). The daemon must free all of
 * it: fds, clients, requests and sockets return to the baseline and RSS growth stays bounded. */

#include <check.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-helper.h"
#include "check-main.h"
#include "fault-util.h"
#include "internal/bus-api.h"
#include "net-helper.h"

#define N_CALLERS                    1000
#define CONCURRENCY                  32
/* Generous: the daemon's peak working set for 32 callers, plus allocator slack; a sanitizer
 * build keeps freed memory in quarantine (FAULTS_SANITIZED=1 from meson). */
#define RSS_GROWTH_MAX_KIB           (16 * 1024)
#define RSS_GROWTH_MAX_SANITIZED_KIB (128 * 1024)

typedef enum Death {
        DIE_AFTER_REPLY,  /* the request is accepted, then the caller exits */
        DIE_BEFORE_REPLY, /* the caller exits while the daemon handles Request */
        DIE_KILLED,       /* the caller is SIGKILLed by the test while waiting */
        _DIE_MAX,
} Death;

/* The child: no Check here, the exit status tells the parent what happened. */
static _Noreturn void caller_run(Death death, unsigned i) {
        sd_bus_message *m = NULL, *reply = NULL;
        const char *client;
        sd_bus *bus = NULL;
        char name[32];
        int fd, r;

        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        if (fd < 0)
                _exit(10);
        if (sd_bus_new(&bus) < 0 ||
            sd_bus_set_address(bus, getenv(COAPCLIENTD_BUS_ADDRESS_ENV)) < 0 ||
            sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_negotiate_fds(bus, 1) < 0 ||
            sd_bus_start(bus) < 0)
                _exit(11);
        snprintf(name, sizeof(name), "dying-%u", i);
        r = sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                               COAPCLIENTD_MANAGER_IFACE, "CreateClient", NULL, &reply, "s", name);
        if (r < 0 || sd_bus_message_read(reply, "o", &client) < 0)
                _exit(12);
        if (sd_bus_message_new_method_call(bus, &m, COAPCLIENTD_BUS_NAME, client,
                                           COAPCLIENTD_CLIENT_IFACE, "Request") < 0 ||
            sd_bus_message_append(m, "hsa{sv}", fd, "", 2, "method", "y", 1, "path", "s",
                                  "async?5") < 0)
                _exit(13);
        switch (death) {
        case DIE_AFTER_REPLY:
                if (sd_bus_call(bus, m, 10 * USEC_PER_SEC, NULL, NULL) < 0)
                        _exit(14);
                _exit(0);
        case DIE_BEFORE_REPLY:
                if (sd_bus_send(bus, m, NULL) < 0 || sd_bus_flush(bus) < 0)
                        _exit(15);
                _exit(0);
        case DIE_KILLED:
                if (sd_bus_call(bus, m, 10 * USEC_PER_SEC, NULL, NULL) < 0)
                        _exit(14);
                /* Tell the parent, then wait for the SIGKILL. */
                (void) kill(getppid(), SIGUSR1);
                pause();
                _exit(16);
        case _DIE_MAX:
                break;
        }
        _exit(17);
}

typedef struct Figures {
        int fds;
        long rss_kib;
        uint32_t clients, callers, requests, sockets;
        uint64_t sent;
} Figures;

static void figures_read(TestBus *b, Figures *f) {
        f->fds = test_daemon_fd_count();
        f->rss_kib = fault_rss_kib(test_daemon_pid());
        ck_assert_int_ge(test_bus_get_manager_u32(b, "Clients", &f->clients), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "Callers", &f->callers), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "RequestsInFlight", &f->requests), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "Sockets", &f->sockets), 0);
        ck_assert_int_ge(test_bus_get_manager_u64(b, "MessagesSent", &f->sent), 0);
}

static void figures_print(const char *what, const Figures *f) {
        printf("# %s: fds=%d VmRSS=%ld KiB Clients=%" PRIu32 " Callers=%" PRIu32
               " RequestsInFlight=%" PRIu32 " Sockets=%" PRIu32 " MessagesSent=%" PRIu64 "\n",
               what, f->fds, f->rss_kib, f->clients, f->callers, f->requests, f->sockets, f->sent);
        fflush(stdout);
}

static volatile sig_atomic_t ready;

static void on_usr1(int sig) {
        (void) sig;
        ready++;
}

START_TEST(test_dying_callers) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        struct sigaction sa = {.sa_handler = on_usr1};
        unsigned started = 0, done = 0, failed = 0, counts[_DIE_MAX] = {};
        Figures before, peak = {}, after;
        pid_t running[CONCURRENCY] = {};
        uint64_t t0 = fault_now_usec();
        sigset_t usr1, old;

        ck_assert_int_eq(test_bus_new(&b), 0);
        figures_read(b, &before);
        figures_print("before", &before);
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);

        while (done < N_CALLERS) {
                /* Keep CONCURRENCY callers alive at a time. */
                for (unsigned k = 0; k < CONCURRENCY && started < N_CALLERS; k++) {
                        Death death = (Death) (started % _DIE_MAX);
                        pid_t pid;

                        if (running[k] != 0)
                                continue;
                        ready = 0;
                        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &usr1, &old), 0);
                        pid = fork();
                        ck_assert_int_ge(pid, 0);
                        if (pid == 0) {
                                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                                caller_run(death, started);
                        }
                        if (death == DIE_KILLED) {
                                uint64_t deadline = fault_now_usec() + 10 * USEC_PER_SEC;

                                while (!ready && fault_now_usec() < deadline) {
                                        int status;

                                        /* A child that failed early never signals. */
                                        if (waitpid(pid, &status, WNOHANG) == pid) {
                                                failed++;
                                                done++;
                                                pid = 0;
                                                break;
                                        }
                                        sigsuspend(&old);
                                }
                                if (pid > 0)
                                        ck_assert_int_eq(kill(pid, SIGKILL), 0);
                        }
                        ck_assert_int_eq(sigprocmask(SIG_SETMASK, &old, NULL), 0);
                        running[k] = pid;
                        counts[death]++;
                        started++;
                }
                for (unsigned k = 0; k < CONCURRENCY; k++) {
                        int status;

                        if (running[k] == 0 || waitpid(running[k], &status, WNOHANG) != running[k])
                                continue;
                        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) &&
                            !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                                printf("# caller %d ended with status 0x%x\n", (int) running[k],
                                       (unsigned) status);
                                failed++;
                        }
                        running[k] = 0;
                        done++;
                }
                if (done % 100 == 0) {
                        Figures now;

                        figures_read(b, &now);
                        peak.fds = MAX(peak.fds, now.fds);
                        peak.rss_kib = MAX(peak.rss_kib, now.rss_kib);
                        peak.clients = MAX(peak.clients, now.clients);
                        peak.requests = MAX(peak.requests, now.requests);
                        peak.sockets = MAX(peak.sockets, now.sockets);
                        peak.callers = MAX(peak.callers, now.callers);
                }
                (void) usleep(1000);
        }
        printf("# %u callers (%u after the reply, %u before it, %u killed) in %" PRIu64
               " ms, %u failed\n",
               started, counts[DIE_AFTER_REPLY], counts[DIE_BEFORE_REPLY], counts[DIE_KILLED],
               (fault_now_usec() - t0) / 1000, failed);
        figures_print("peak (sampled)", &peak);
        ck_assert_uint_eq(failed, 0);

        /* Everything returns to the baseline. */
        ck_assert_uint_eq(
                test_bus_await_manager_u32(b, "Clients", before.clients, 10 * USEC_PER_SEC),
                before.clients);
        ck_assert_uint_eq(test_bus_await_manager_u32(b, "RequestsInFlight", before.requests,
                                                     5 * USEC_PER_SEC),
                          before.requests);
        ck_assert_uint_eq(
                test_bus_await_manager_u32(b, "Sockets", before.sockets, 5 * USEC_PER_SEC),
                before.sockets);
        ck_assert_int_eq(test_bus_await_daemon_fds(b, before.fds, 5 * USEC_PER_SEC), before.fds);
        figures_read(b, &after);
        figures_print("after", &after);
        ck_assert_uint_eq(after.callers, before.callers);
        /* The callers really got their requests out: every accepted one sent a datagram. */
        ck_assert_uint_ge(after.sent - before.sent, counts[DIE_AFTER_REPLY] + counts[DIE_KILLED]);
        ck_assert_int_lt(after.rss_kib - before.rss_kib,
                         fault_sanitized() ? RSS_GROWTH_MAX_SANITIZED_KIB : RSS_GROWTH_MAX_KIB);
        ck_assert(test_daemon_alive());
}
END_TEST

/* And it still serves: a live caller's request completes. */
START_TEST(test_still_serving) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int fd = -EBADF;
        TestRequest req = {.method = TEST_GET, .path = "time"};
        TestResponse *rs = NULL;
        size_t n = 0;
        uint64_t id;

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "survivor", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(test_bus_request(b, client, fd, "", &req, &id, NULL), 0);
        ck_assert_int_eq(test_bus_collect(b, id, 5 * USEC_PER_SEC, &rs, &n), 0);
        ck_assert_int_eq(rs[n - 1].result, 0x45);
        test_responses_free(rs, n);
}
END_TEST

static Suite *dying_callers_suite(void) {
        Suite *s = suite_create("faults-dying-callers");
        TCase *tc = tcase_create("dying-callers");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_dying_callers);
        tcase_add_test(tc, test_still_serving);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(dying_callers_suite)
