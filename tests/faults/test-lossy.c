/* SPDX-License-Identifier: MIT */
/* coapclientd over a bad path: udp-relay between the daemon and its peer drops 20 % of the
 * datagrams each way, duplicates and reorders them. 1 MiB block-wise bodies must still arrive
 * byte-exact, both ways, and observe notifications must never go backwards or repeat. */

#include <check.h>
#include <fcntl.h>
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
#include "net-helper.h"

#define OBSERVE_USEC  (9 * USEC_PER_SEC)
#define BODY_SIZE     (1024 * 1024)
#define BLOCK_SIZE    1024
#define N_BLOCKS      (BODY_SIZE / BLOCK_SIZE)
/* Three times what 1 MiB takes with the daemon under valgrind. */
#define TRANSFER_USEC (90 * USEC_PER_SEC)

/*
 * Loopback answers in well under a millisecond, so the private daemon of the block-wise case
 * gets a short default ACK timeout (a request's ack-timeout cannot go below 100 ms on the bus,
 * the configuration's default can), drawn from [1, 1.5) x that, without back-off.
 *
 * Each block is a lock-step round trip that survives with p = 0.8 x 0.8 = 0.64 (a duplicate is
 * drawn after the drop: it never rescues a lost datagram; a held one only adds a chance). With
 * max-retransmission 20 an exchange fails only when all 21 transmissions are lost:
 * 0.36^21 = 4.8e-10 per block, 1e-6 for the 2 x 1024 blocks of a run. A block waits
 * 0.36 / 0.64 = 0.56 timeouts on average, plus one per request or response held longer than the
 * timeout: measured ~720 retransmissions per MiB, ~20 s at 20 ms. The daemon under valgrind
 * causes no extra retransmissions at 30 ms (same count, measured), so a modest scale keeps that
 * run at ~30 s per MiB.
 */
#define ACK_TIMEOUT_MS          20
#define ACK_TIMEOUT_MS_VALGRIND 30
#define MAX_RETRANSMISSION      20

typedef struct Path {
        const char *stats;
        uint16_t port;
        pid_t pid;
} Path;

static bool daemon_under_valgrind(void) {
        const char *w = getenv("COAPCLIENTD_WRAPPER");

        return w && strstr(w, "valgrind");
}

static unsigned ack_timeout_ms(void) {
        return daemon_under_valgrind() ? ACK_TIMEOUT_MS_VALGRIND : ACK_TIMEOUT_MS;
}

static void path_start(Path *p, uint16_t peer_port, const char *stats, const char *const *args) {
        p->stats = stats;
        ck_assert_int_eq(fault_relay_spawn(peer_port, stats, args, &p->port, &p->pid), 0);
}

static void child_stop(pid_t pid, const char *stats, const char *what) {
        int status = fault_child_stop(pid);

        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        fault_stats_print(what, stats);
}

static uint64_t stat_of(const char *stats, const char *key) {
        uint64_t v = 0;

        ck_assert_int_eq(fault_stats_get(stats, key, &v), 0);
        return v;
}

/* The faults really happened, in both directions. */
static void path_check_faults(const Path *p) {
        ck_assert_uint_gt(stat_of(p->stats, "up_dropped"), 0);
        ck_assert_uint_gt(stat_of(p->stats, "down_dropped"), 0);
        ck_assert_uint_gt(stat_of(p->stats, "up_duplicated"), 0);
        ck_assert_uint_gt(stat_of(p->stats, "down_duplicated"), 0);
        ck_assert_uint_gt(stat_of(p->stats, "up_reordered") + stat_of(p->stats, "down_reordered"),
                          0);
}

/* A relay with 20 % loss each way, 10 % duplicates and 10 % held back: for at most twice the
 * ACK timeout, so that a request is also overtaken by its own retransmission. */
static void path_start_heavy(Path *p, uint16_t peer_port, const char *stats, unsigned seed) {
        char hold[32], seed_arg[32];
        const char *const args[] = {"--loss=20", "--dup=10", "--reorder=10", hold, seed_arg, NULL};

        snprintf(hold, sizeof(hold), "--hold-ms=%u", 2 * ack_timeout_ms());
        snprintf(seed_arg, sizeof(seed_arg), "--seed=%u", seed);
        path_start(p, peer_port, stats, args);
}

/* Starts store-peer ($FAULTS_STORE_PEER) and reads the port it prints. */
static void store_peer_start(const char *stats, uint16_t *ret_port, pid_t *ret_pid) {
        const char *tool = getenv("FAULTS_STORE_PEER");
        _cleanup_free_ char *stats_arg = NULL;
        char line[16] = "";
        pid_t parent = getpid(), pid;
        FILE *f;
        int p[2];

        ck_assert_ptr_nonnull(tool);
        ck_assert_int_gt(asprintf(&stats_arg, "--stats=%s", stats), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                /* The peer must not outlive the test, whatever happens to the test. */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent || dup2(p[1], STDOUT_FILENO) < 0)
                        _exit(EXIT_FAILURE);
                execl(tool, tool, stats_arg, "--lifetime=300", (char *) NULL);
                _exit(127);
        }
        safe_close(p[1]);
        f = fdopen(p[0], "re");
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
        fclose(f);
        ck_assert_int_gt(atoi(line), 0);
        *ret_port = (uint16_t) atoi(line);
        *ret_pid = pid;
}

/* A private daemon whose default ACK timeout is short; the test's bus then talks to it. */
static void lossy_daemon_start(TestPrivateDaemon *d) {
        char config[128];

        snprintf(config, sizeof(config), "[Defaults]\nAckTimeoutSec=%ums\n", ack_timeout_ms());
        ck_assert_int_eq(test_private_daemon_start(config, d), 0);
}

static void request_init(TestRequest *req, uint8_t method, const char *path, const uint8_t *body,
                         size_t size) {
        *req = (TestRequest){
                .method = method,
                .path = path,
                .payload = body,
                .payload_len = size,
                .ack_random_percent = 150,
                .backoff_percent = 100,
                .max_retransmission = MAX_RETRANSMISSION,
        };
}

/* One request; returns all its Responses, the last one final. */
static TestResponse *run_request(TestBus *b, const char *client, int fd, const char *dest,
                                 const TestRequest *req, size_t *ret_n) {
        TestResponse *rs = NULL;
        uint64_t id;

        ck_assert_int_eq(test_bus_request(b, client, fd, dest, req, &id, NULL), 0);
        ck_assert_int_eq(test_bus_collect(b, id, TRANSFER_USEC, &rs, ret_n), 0);
        ck_assert_uint_ge(*ret_n, 1);
        ck_assert_msg(rs[*ret_n - 1].final && rs[*ret_n - 1].last_block, "result %d",
                      rs[*ret_n - 1].result);
        return rs;
}

/* A GET's blocks: each exactly once, in order, and together byte-exact. */
static bool body_matches(const TestResponse *rs, size_t n, const uint8_t *body, size_t size) {
        size_t have = 0;

        for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(rs[i].result, 0x45);
                ck_assert_uint_eq(rs[i].offset, have);
                ck_assert(rs[i].last_block == (i == n - 1));
                if (have + rs[i].payload_len > size ||
                    memcmp(rs[i].payload, body + have, rs[i].payload_len) != 0)
                        return false;
                have += rs[i].payload_len;
        }
        return have == size;
}

static void check_get(const TestResponse *rs, size_t n, const uint8_t *body, const char *what) {
        ck_assert_uint_eq(n, N_BLOCKS);
        ck_assert_msg(body_matches(rs, n, body, BODY_SIZE), "%s: body differs", what);
}

/* One 2.31 Continue per block but the last, in order, none twice (the offset is where the
 * acknowledged data ends), then 2.04. */
static void check_put(const TestResponse *rs, size_t n) {
        ck_assert_uint_eq(n, N_BLOCKS);
        for (size_t i = 0; i + 1 < n; i++) {
                ck_assert_int_eq(rs[i].result, 0x5f);
                ck_assert_uint_eq(rs[i].offset, (i + 1) * BLOCK_SIZE);
        }
        ck_assert_int_eq(rs[n - 1].result, 0x44);
}

static uint8_t *body_new(uint32_t seed) {
        uint8_t *body = malloc(BODY_SIZE);

        ck_assert_ptr_nonnull(body);
        test_fill_random(body, BODY_SIZE, seed);
        return body;
}

/*
 * At the same time, each through its own heavy-loss relay:
 * GET  1 MiB from coap-server's /example_data, put there first on a clean path;
 * PUT  1 MiB to store-peer, which deduplicates (coap-server does not, see store-peer.c), then
 *      read back on a clean path: byte-exact, and every block processed exactly once.
 */
START_TEST(test_blockwise_1mib_heavy_loss) {
        TestPrivateDaemon d;
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL, *get_stats = NULL, *put_stats = NULL,
                            *peer_stats = NULL;
        _cleanup_free_ uint8_t *get_body = body_new(1), *put_body = body_new(2);
        _cleanup_close_ int get_fd = -EBADF, put_fd = -EBADF, server_fd = -EBADF, store_fd = -EBADF;
        uint64_t retrans0, retrans1, t0, get_id, put_id, t_get, t_put;
        char get_dest[64], put_dest[64];
        Path get_path, put_path;
        uint16_t peer_port;
        TestResponse *rs;
        TestRequest req;
        size_t n = 0;
        pid_t peer_pid;

        get_stats = fault_tmp_path("relay-get");
        put_stats = fault_tmp_path("relay-put");
        peer_stats = fault_tmp_path("store-peer");
        ck_assert(get_stats && put_stats && peer_stats);
        store_peer_start(peer_stats, &peer_port, &peer_pid);
        path_start_heavy(&get_path, test_peer_port(), get_stats, 20);
        path_start_heavy(&put_path, peer_port, put_stats, 21);
        lossy_daemon_start(&d);
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "lossy", &client, NULL), 0);
        get_fd = test_udp_socket(AF_INET, NULL, 0);
        put_fd = test_udp_socket(AF_INET, NULL, 0);
        server_fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        store_fd = test_udp_socket(AF_INET, "127.0.0.1", peer_port);
        ck_assert(get_fd >= 0 && put_fd >= 0 && server_fd >= 0 && store_fd >= 0);
        test_format_destination(get_dest, sizeof(get_dest), "127.0.0.1", get_path.port);
        test_format_destination(put_dest, sizeof(put_dest), "127.0.0.1", put_path.port);

        request_init(&req, TEST_PUT, "example_data", get_body, BODY_SIZE);
        rs = run_request(b, client, server_fd, "", &req, &n);
        ck_assert_msg(rs[n - 1].result == 0x41 || rs[n - 1].result == 0x44, "direct PUT: %d",
                      rs[n - 1].result);
        test_responses_free(rs, n);

        ck_assert_int_eq(test_bus_get_manager_u64(b, "Retransmissions", &retrans0), 0);
        t0 = fault_now_usec();
        request_init(&req, TEST_GET, "example_data", NULL, 0);
        ck_assert_int_eq(test_bus_request(b, client, get_fd, get_dest, &req, &get_id, NULL), 0);
        request_init(&req, TEST_PUT, "store", put_body, BODY_SIZE);
        ck_assert_int_eq(test_bus_request(b, client, put_fd, put_dest, &req, &put_id, NULL), 0);

        ck_assert_int_eq(test_bus_collect(b, get_id, TRANSFER_USEC, &rs, &n), 0);
        check_get(rs, n, get_body, "GET through the relay");
        t_get = rs[n - 1].received_usec - t0;
        test_responses_free(rs, n);
        ck_assert_int_eq(test_bus_collect(b, put_id, TRANSFER_USEC, &rs, &n), 0);
        check_put(rs, n);
        t_put = rs[n - 1].received_usec - t0;
        test_responses_free(rs, n);
        ck_assert_int_eq(test_bus_get_manager_u64(b, "Retransmissions", &retrans1), 0);
        printf("# %d bytes through 20%% loss each way (ack-timeout %u ms): GET in %" PRIu64
               " ms, PUT in %" PRIu64 " ms, %" PRIu64 " retransmissions\n",
               BODY_SIZE, ack_timeout_ms(), t_get / 1000, t_put / 1000, retrans1 - retrans0);

        request_init(&req, TEST_GET, "store", NULL, 0);
        rs = run_request(b, client, store_fd, "", &req, &n);
        check_get(rs, n, put_body, "store-peer's copy");
        test_responses_free(rs, n);

        child_stop(get_path.pid, get_stats, "GET relay");
        child_stop(put_path.pid, put_stats, "PUT relay");
        child_stop(peer_pid, peer_stats, "store-peer");
        path_check_faults(&get_path);
        path_check_faults(&put_path);
        ck_assert_uint_gt(retrans1, retrans0);
        /* Duplicates reached the peer and were answered from its cache: every block ran the
         * handler once, the last one too. */
        ck_assert_uint_gt(stat_of(peer_stats, "duplicates"), 0);
        ck_assert_uint_eq(stat_of(peer_stats, "blocks"), N_BLOCKS);
        ck_assert_uint_eq(stat_of(peer_stats, "continues"), N_BLOCKS - 1);
        ck_assert_uint_eq(stat_of(peer_stats, "changed"), 1);
        ck_assert_uint_eq(stat_of(peer_stats, "incomplete"), 0);
        ck_assert_uint_eq(stat_of(peer_stats, "rejected"), 0);
        b = test_bus_free(b);
        ck_assert_int_eq(test_private_daemon_stop(&d), 0);
}
END_TEST

/* /time notifies every second. A hold of 1.5 s lets a later notification overtake an
 * earlier one; duplicates repeat message IDs. */
START_TEST(test_observe_order) {
        static const char *const args[] = {"--loss=20",      "--dup=20", "--reorder=30",
                                           "--hold-ms=1500", "--seed=4", NULL};
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL, *stats = NULL;
        _cleanup_close_ int fd = -EBADF;
        uint64_t id, deadline, last_seq = 0;
        unsigned delivered = 0;
        TestResponse *rs = NULL;
        size_t n = 0;
        char dest[64];
        Path path;
        TestRequest req = {
                .method = TEST_GET,
                .path = "time",
                .observe = true,
                .ack_timeout = 200,
                .backoff_percent = 100,
                .max_retransmission = 10,
        };

        stats = fault_tmp_path("relay-observe");
        ck_assert_ptr_nonnull(stats);
        path_start(&path, test_peer_port(), stats, args);
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "observe", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, NULL, 0);
        ck_assert_int_ge(fd, 0);
        test_format_destination(dest, sizeof(dest), "127.0.0.1", path.port);
        ck_assert_int_eq(test_bus_request(b, client, fd, dest, &req, &id, NULL), 0);

        deadline = fault_now_usec() + OBSERVE_USEC;
        while (fault_now_usec() < deadline) {
                TestResponse r;

                if (test_bus_next_response(b, id, deadline - fault_now_usec(), &r) < 0)
                        break;
                ck_assert_msg(!r.final, "observation ended: %d", r.result);
                ck_assert_int_eq(r.result, 0x45);
                if (r.has_observe) {
                        /* Strictly fresher: no repeat, no step back (no wrap in 9 s). */
                        ck_assert_msg(delivered == 0 || r.observe > last_seq,
                                      "notification %" PRIu64 " after %" PRIu64, r.observe,
                                      last_seq);
                        last_seq = r.observe;
                }
                delivered++;
                test_response_done(&r);
        }
        printf("# observe: %u notifications delivered, last sequence number %" PRIu64 "\n",
               delivered, last_seq);
        ck_assert_uint_ge(delivered, 3);

        ck_assert_int_ge(test_bus_call_id(b, client, "Cancel", id, NULL), 0);
        ck_assert_int_eq(test_bus_collect(b, id, 5 * USEC_PER_SEC, &rs, &n), 0);
        ck_assert_int_eq(rs[n - 1].result, -ECANCELED);
        for (size_t i = 0; i + 1 < n; i++)
                if (rs[i].has_observe) {
                        ck_assert(rs[i].observe > last_seq);
                        last_seq = rs[i].observe;
                }
        test_responses_free(rs, n);
        child_stop(path.pid, stats, "observe relay");
        ck_assert_uint_gt(stat_of(stats, "down_duplicated"), 0);
        ck_assert_uint_gt(stat_of(stats, "down_reordered"), 0);
        ck_assert(test_daemon_alive());
}
END_TEST

static Suite *lossy_suite(void) {
        Suite *s = suite_create("faults-lossy");
        TCase *tc = tcase_create("lossy");

        tcase_set_timeout(tc, 150);
        tcase_add_test(tc, test_blockwise_1mib_heavy_loss);
        tcase_add_test(tc, test_observe_order);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(lossy_suite)
