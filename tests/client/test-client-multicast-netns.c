/* SPDX-License-Identifier: MIT */

/* Multicast between network namespaces (API 403): the application's socket lives in one
 * namespace with a bridge, two group members in two others, each behind a veth pair on the
 * bridge; coapclientd, in its own namespace, runs the request over the application's socket.
 * Nothing touches the namespace the tests run in, and the namespaces go at the end. Root only
 * (skipped otherwise, or without ip(8)). */

#define COAPCLIENT_ZEPHYR_API 403

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client-test-util.h"
#include "coapclient/coap_client.h"
#include "mcast-responder.h"

/* Long enough for both members' answers on a loaded machine (sanitizers, valgrind): the window
 * is how long the request waits for them. */
#define WINDOW_MS 1500

static char ns_app[32], ns_a[32], ns_b[32];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
        char cmd[2048];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof(cmd))
                return -E2BIG;
        return system(cmd) == 0 ? 0 : -EIO;
}

static void namespaces_remove(void) {
        (void) run("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null; "
                   "ip netns del %s 2>/dev/null",
                   ns_app, ns_a, ns_b);
}

/* app: br0 10.77.0.1/24 and fd00:77::1/64, with vA and vB; A: eth0 10.77.0.2 and fd00:77::2,
 * B: eth0 10.77.0.3 and fd00:77::3. No duplicate address detection: usable at once. */
static int namespaces_add(void) {
        int r;

        r = run("set -e; for n in %s %s %s; do ip netns add $n; ip -n $n link set lo up; done; "
                "ip -n %s link add br0 type bridge mcast_snooping 0; "
                "ip -n %s addr add 10.77.0.1/24 dev br0; ip -n %s link set br0 up; "
                "ip -n %s link add vA type veth peer name eth0 netns %s; "
                "ip -n %s link add vB type veth peer name eth0 netns %s; "
                "ip -n %s link set vA master br0 up; ip -n %s link set vB master br0 up; "
                "ip -n %s addr add 10.77.0.2/24 dev eth0; ip -n %s link set eth0 up; "
                "ip -n %s addr add 10.77.0.3/24 dev eth0; ip -n %s link set eth0 up; "
                "ip -n %s addr add fd00:77::1/64 dev br0 nodad; "
                "ip -n %s addr add fd00:77::2/64 dev eth0 nodad; "
                "ip -n %s addr add fd00:77::3/64 dev eth0 nodad",
                ns_app, ns_a, ns_b, ns_app, ns_app, ns_app, ns_app, ns_a, ns_app, ns_b, ns_app,
                ns_app, ns_a, ns_a, ns_b, ns_b, ns_app, ns_a, ns_b);
        if (r < 0)
                namespaces_remove();
        return r;
}

/* The application's socket, made in its namespace, sending multicast out of the bridge (IPv6:
 * *ret_ifindex is the bridge's index there). */
static int app_socket(int family, unsigned *ret_ifindex) {
        char path[64];
        int home, ns, fd;

        home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        snprintf(path, sizeof(path), "/run/netns/%s", ns_app);
        ns = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(home, 0);
        ck_assert_int_ge(ns, 0);
        ck_assert_int_eq(setns(ns, CLONE_NEWNET), 0);
        fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        if (ret_ifindex)
                *ret_ifindex = if_nametoindex("br0");
        ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
        close(ns);
        close(home);

        if (family == AF_INET) {
                struct sockaddr_in a = {.sin_family = AF_INET};

                ck_assert_int_eq(inet_pton(AF_INET, "10.77.0.1", &a.sin_addr), 1);
                ck_assert_int_eq(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &a.sin_addr,
                                            sizeof(a.sin_addr)),
                                 0);
                ck_assert_int_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        } else {
                struct sockaddr_in6 a = {.sin6_family = AF_INET6};
                int index = (int) *ret_ifindex;

                ck_assert_int_gt(index, 0);
                ck_assert_int_eq(inet_pton(AF_INET6, "fd00:77::1", &a.sin6_addr), 1);
                ck_assert_int_eq(
                        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof(index)), 0);
                ck_assert_int_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        }
        return fd;
}

typedef struct Rec {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct sockaddr_storage sources[4];
        socklen_t source_lens[4];
        unsigned n_answers;
        unsigned n_final;
        int16_t final_code;
} Rec;

static void response_cb(const struct coap_client_response_data *data, void *user_data) {
        Rec *r = user_data;

        pthread_mutex_lock(&r->lock);
        if (!data->source) {
                r->n_final++;
                r->final_code = data->result_code;
        } else if (r->n_answers < 4 && data->source_len <= sizeof(struct sockaddr_storage)) {
                memcpy(&r->sources[r->n_answers], data->source, data->source_len);
                r->source_lens[r->n_answers++] = data->source_len;
        }
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
}

static bool has_source(const Rec *r, const void *s, socklen_t len) {
        for (unsigned i = 0; i < r->n_answers; i++)
                if (r->source_lens[i] == len && memcmp(&r->sources[i], s, len) == 0)
                        return true;
        return false;
}

/* One multicast request from the app's namespace to both members; both answers arrive with
 * their sources, then the final callback. */
static void run_two_members(int family) {
        uint16_t port = mcast_test_port();
        struct sockaddr_storage group = {};
        struct coap_client client;
        struct coap_client_request req = {
                .method = COAP_METHOD_GET,
                .cb = response_cb,
                .multicast_timeout_ms = WINDOW_MS,
        };
        McastResponder a, b;
        unsigned ifindex = 0;
        Rec rec = {};
        int fd;

        pthread_mutex_init(&rec.lock, NULL);
        cond_init_monotonic(&rec.cond);
        req.user_data = &rec;
        strcpy(req.path, "who");
        fd = app_socket(family, &ifindex);
        if (family == AF_INET) {
                *(struct sockaddr_in *) &group = mcast_test_group(port);
                mcast_responder_start_in(&a, ns_a, "10.77.0.2", "10.77.0.2", port, "A", 2);
                mcast_responder_start_in(&b, ns_b, "10.77.0.3", "10.77.0.3", port, "B", 1);
        } else {
                struct sockaddr_in6 *g = (struct sockaddr_in6 *) &group;

                g->sin6_family = AF_INET6;
                g->sin6_port = htons(port);
                g->sin6_scope_id = ifindex;
                ck_assert_int_eq(inet_pton(AF_INET6, MCAST_TEST_GROUP6, &g->sin6_addr), 1);
                mcast_responder_start6_in(&a, ns_a, "eth0", "fd00:77::2", port, "A", 2);
                mcast_responder_start6_in(&b, ns_b, "eth0", "fd00:77::3", port, "B", 1);
        }
        ck_assert_int_eq(coap_client_init(&client, "netns"), 0);
        ck_assert_int_eq(coap_client_req(&client, fd, (struct net_sockaddr *) &group, &req, NULL),
                         0);

        ck_assert(cond_wait_count(&rec.lock, &rec.cond, &rec.n_final, 1, 30));
        pthread_mutex_lock(&rec.lock);
        ck_assert_int_eq(rec.final_code, 0);
        ck_assert_msg(rec.n_answers == 2, "%u answers; requests seen by A %u, B %u", rec.n_answers,
                      a.n_requests, b.n_requests);
        if (family == AF_INET) {
                ck_assert(has_source(&rec, &a.source, sizeof(a.source)));
                ck_assert(has_source(&rec, &b.source, sizeof(b.source)));
        } else {
                ck_assert(has_source(&rec, &a.source6, sizeof(a.source6)));
                ck_assert(has_source(&rec, &b.source6, sizeof(b.source6)));
        }
        pthread_mutex_unlock(&rec.lock);

        coap_client_deinit(&client);
        ck_assert_uint_eq(mcast_responder_stop(&a), 0);
        ck_assert_uint_eq(mcast_responder_stop(&b), 0);
        ck_assert_uint_eq(a.n_requests, 1);
        ck_assert_uint_eq(b.n_requests, 1);
        close(fd);
}

START_TEST(test_two_namespaces) {
        run_two_members(AF_INET);
}
END_TEST

/* ff02::fd on the bridge (the destination's scope is its index in the app's namespace). */
START_TEST(test_two_namespaces_ipv6) {
        run_two_members(AF_INET6);
}
END_TEST

int main(void) {
        SRunner *sr;
        Suite *s;
        TCase *tc;
        int failed;

        snprintf(ns_app, sizeof(ns_app), "coapmc-app-%d", (int) getpid());
        snprintf(ns_a, sizeof(ns_a), "coapmc-a-%d", (int) getpid());
        snprintf(ns_b, sizeof(ns_b), "coapmc-b-%d", (int) getpid());
        if (geteuid() != 0 || namespaces_add() < 0) {
                printf("1..0 # SKIP network namespaces need root and ip(8)\n");
                return EXIT_SUCCESS;
        }
        s = suite_create("client-multicast-netns");
        tc = tcase_create("netns");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_two_namespaces);
        tcase_add_test(tc, test_two_namespaces_ipv6);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_set_tap(sr, "-");
        srunner_run_all(sr, CK_SILENT);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        namespaces_remove();
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
