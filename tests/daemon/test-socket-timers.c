/* SPDX-License-Identifier: MIT */
/* The sockets' shared timer (core/socket.c): real sockets and engines on loopback, a peer that
 * never answers, and the manager's clock set by the test. The clock runs behind CLOCK_MONOTONIC,
 * so every armed timer is already due for sd-event: one sd_event_run() with no timeout fires the
 * shared source, and the test says what "now" is when it runs. Nothing waits. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check-main.h"
#include "coap-defs.h"
#include "core/manager.h"
#include "core/socket.h"
#include "internal/macro.h"

#define N_SOCKETS    4
#define MAX_DATAGRAM 256
/* Later than every time the tests set; the loop's clock must be past it. */
#define SPAN_USEC    (60 * USEC_PER_SEC)

static uint64_t t0, fake_now;

static uint64_t fake_clock(Manager *m) {
        (void) m;
        return fake_now;
}

typedef struct Datagram {
        uint8_t buf[MAX_DATAGRAM];
        size_t len;
} Datagram;

typedef struct Fixture {
        Manager *m;
        int peer_fd; /* the server: reads, never answers */
        int app_fd[N_SOCKETS];
        Socket *s[N_SOCKETS];
        uint16_t port[N_SOCKETS]; /* each socket's, as the peer sees it */
        Datagram sent[N_SOCKETS]; /* the last request's on each: what its retransmissions repeat */
} Fixture;

static uint16_t local_port(int fd) {
        struct sockaddr_in sin;
        socklen_t len = sizeof sin;

        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sin, &len), 0);
        return ntohs(sin.sin_port);
}

static int udp_socket(void) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sin, sizeof sin), 0);
        return fd;
}

/* The sd-event source every socket's timer is behind: whether it is armed, when, how loosely. */
static bool source_armed(Fixture *f, uint64_t *ret_time, uint64_t *ret_accuracy) {
        int enabled;

        ck_assert_int_ge(sd_event_source_get_enabled(f->m->socket_timer_source, &enabled), 0);
        if (enabled == SD_EVENT_OFF)
                return false;
        ck_assert_int_eq(enabled, SD_EVENT_ONESHOT);
        ck_assert_int_ge(sd_event_source_get_time(f->m->socket_timer_source, ret_time), 0);
        ck_assert_int_ge(sd_event_source_get_time_accuracy(f->m->socket_timer_source, ret_accuracy),
                         0);
        return true;
}

static void assert_armed_at(Fixture *f, uint64_t usec) {
        uint64_t time, accuracy;

        ck_assert_msg(source_armed(f, &time, &accuracy), "shared timer off, want t0+%" PRIu64,
                      usec - t0);
        ck_assert_uint_eq(time - t0, usec - t0);
}

/* One iteration of the loop: true if it dispatched a source. Only the shared timer can be due. */
static bool run_once(Fixture *f) {
        int r = sd_event_run(f->m->event, 0);

        ck_assert_int_ge(r, 0);
        return r > 0;
}

static void setup(Fixture *f) {
        ManagerConfig config = MANAGER_CONFIG_DEFAULT;
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        struct timespec ts;
        int enabled;

        /* Right after boot the clock may not be past the span yet: wait for it (only then). */
        for (;;) {
                ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
                if ((uint64_t) ts.tv_sec * USEC_PER_SEC > SPAN_USEC)
                        break;
                ck_assert_int_eq(usleep(100 * 1000), 0);
        }
        fake_now = t0 = (uint64_t) ts.tv_sec * USEC_PER_SEC - SPAN_USEC;

        *f = (Fixture){.peer_fd = udp_socket()};
        ck_assert_int_eq(manager_new(&config, &f->m), 0);
        f->m->clock = fake_clock;
        ck_assert_int_eq(getsockname(f->peer_fd, (struct sockaddr *) &peer, &len), 0);

        for (size_t i = 0; i < N_SOCKETS; i++) {
                f->app_fd[i] = udp_socket();
                ck_assert_int_eq(connect(f->app_fd[i], (struct sockaddr *) &peer, len), 0);
                f->port[i] = local_port(f->app_fd[i]);
                ck_assert_int_eq(socket_acquire(f->m, f->app_fd[i], &f->s[i]), 0);
                socket_ref(f->s[i]); /* kept however idle its engine */
        }
        /* The collection the new sockets queued: it keeps them, and leaves only the shared timer
         * to fire. */
        ck_assert(run_once(f));
        ck_assert_int_ge(sd_event_source_get_enabled(f->m->gc_source, &enabled), 0);
        ck_assert_int_eq(enabled, SD_EVENT_OFF);
        ck_assert(!run_once(f));
}

static void teardown(Fixture *f) {
        for (size_t i = 0; i < N_SOCKETS; i++) {
                if (f->s[i])
                        socket_unref(f->s[i]);
                close(f->app_fd[i]);
        }
        manager_free(f->m);
        close(f->peer_fd);
}

/* Which socket sent each datagram the peer got since last asked, in order, into ret[]. */
static size_t received(Fixture *f, size_t ret[], Datagram dgrams[], size_t max) {
        size_t n = 0;

        for (;;) {
                struct sockaddr_in src;
                socklen_t len = sizeof src;
                Datagram d;
                ssize_t k = recvfrom(f->peer_fd, d.buf, sizeof d.buf, MSG_DONTWAIT,
                                     (struct sockaddr *) &src, &len);
                size_t i = 0;

                if (k < 0)
                        break;
                ck_assert_uint_lt(n, max);
                while (i < N_SOCKETS && f->port[i] != ntohs(src.sin_port))
                        i++;
                ck_assert_uint_lt(i, N_SOCKETS);
                d.len = (size_t) k;
                ret[n] = i;
                dgrams[n++] = d;
        }
        return n;
}

/* A confirmable GET on socket i, first sent now and retransmitted ack_ms later (no randomness). */
static void submit(Fixture *f, size_t i, uint64_t id, uint32_t ack_ms) {
        CoapRequestSpec spec = {
                .id = id,
                .owner = 1,
                .method = COAP_CODE_GET,
                .confirmable = true,
                .path = "t",
                .content_format = -1,
                .params = {.ack_timeout_ms = ack_ms,
                           .ack_random_percent = 100,
                           .backoff_percent = 200,
                           .max_retransmission = 4},
                .block_szx = COAP_BLOCK_SZX_MAX,
        };
        size_t from[2];
        Datagram d[2];

        ck_assert_int_eq(socket_submit(f->s[i], &spec), 0);
        ck_assert_uint_eq(received(f, from, d, 2), 1);
        ck_assert_uint_eq(from[0], i);
        f->sent[i] = d[0];
}

/* The peer got exactly these sockets' retransmissions, in this order. */
static void assert_retransmitted(Fixture *f, const size_t want[], size_t n_want) {
        size_t from[2 * N_SOCKETS];
        Datagram d[2 * N_SOCKETS];
        size_t n = received(f, from, d, 2 * N_SOCKETS);

        ck_assert_uint_eq(n, n_want);
        for (size_t k = 0; k < n; k++) {
                ck_assert_uint_eq(from[k], want[k]);
                ck_assert_uint_eq(d[k].len, f->sent[from[k]].len);
                ck_assert_mem_eq(d[k].buf, f->sent[from[k]].buf, d[k].len);
        }
}

/* Fired late, past three deadlines: those three sockets run, by deadline, once each, and the
 * source is armed for the fourth. */
START_TEST(test_late_fire_runs_every_due_socket) {
        Fixture f;

        setup(&f);
        /* Queued out of order: the heap orders them. */
        submit(&f, 2, 1, 3000);
        submit(&f, 0, 2, 1000);
        submit(&f, 3, 3, 4000);
        submit(&f, 1, 4, 2000);
        assert_armed_at(&f, t0 + 1 * USEC_PER_SEC);
        ck_assert_uint_eq(f.m->socket_timers.n, N_SOCKETS);

        fake_now = t0 + 3500 * USEC_PER_MSEC;
        ck_assert(run_once(&f));
        assert_retransmitted(&f, (const size_t[]){0, 1, 2}, 3);
        /* The three ran are queued again for their next retransmission, after the fourth. */
        ck_assert_uint_eq(f.m->socket_timers.n, N_SOCKETS);
        ck_assert_uint_eq(f.m->socket_latest.n, N_SOCKETS);
        assert_armed_at(&f, t0 + 4 * USEC_PER_SEC);

        fake_now = t0 + 4 * USEC_PER_SEC;
        ck_assert(run_once(&f));
        assert_retransmitted(&f, (const size_t[]){3}, 1);
        /* Socket 0 retransmitted at 3.5 s with twice its timeout. */
        assert_armed_at(&f, t0 + 5500 * USEC_PER_MSEC);
        teardown(&f);
}
END_TEST

/* Fired on time: only the socket due runs. */
START_TEST(test_on_time_fire_runs_the_first_only) {
        Fixture f;

        setup(&f);
        submit(&f, 1, 1, 2000);
        submit(&f, 0, 2, 1000);
        fake_now = t0 + 1 * USEC_PER_SEC;
        ck_assert(run_once(&f));
        assert_retransmitted(&f, (const size_t[]){0}, 1);
        assert_armed_at(&f, t0 + 2 * USEC_PER_SEC);
        teardown(&f);
}
END_TEST

/* A socket freed while its timer is queued leaves both heaps, and the source follows when it was
 * the first. */
START_TEST(test_freed_socket_leaves_both_heaps) {
        uint64_t time, accuracy;
        Fixture f;

        setup(&f);
        for (size_t i = 0; i < N_SOCKETS; i++)
                submit(&f, i, i + 1, (uint32_t) (i + 1) * 1000);
        assert_armed_at(&f, t0 + 1 * USEC_PER_SEC);

        /* Neither first: the source stays. */
        f.s[1] = socket_free(f.s[1]);
        ck_assert_uint_eq(f.m->socket_timers.n, 3);
        ck_assert_uint_eq(f.m->socket_latest.n, 3);
        assert_armed_at(&f, t0 + 1 * USEC_PER_SEC);

        /* The first: the source moves to the next. */
        f.s[0] = socket_free(f.s[0]);
        ck_assert_uint_eq(f.m->socket_timers.n, 2);
        ck_assert_uint_eq(f.m->socket_latest.n, 2);
        assert_armed_at(&f, t0 + 3 * USEC_PER_SEC);

        fake_now = t0 + 4 * USEC_PER_SEC;
        ck_assert(run_once(&f));
        assert_retransmitted(&f, (const size_t[]){2, 3}, 2);

        /* The last ones: the source goes off. */
        f.s[2] = socket_free(f.s[2]);
        f.s[3] = socket_free(f.s[3]);
        ck_assert_uint_eq(f.m->socket_timers.n, 0);
        ck_assert_uint_eq(f.m->socket_latest.n, 0);
        ck_assert(!source_armed(&f, &time, &accuracy));
        ck_assert(!run_once(&f));
        teardown(&f);
}
END_TEST

/* A request with an earlier deadline moves its socket's timer, and the source with it when that
 * makes it the first. */
START_TEST(test_earlier_deadline_rearms) {
        Fixture f;

        setup(&f);
        submit(&f, 0, 1, 2000);
        submit(&f, 1, 2, 4000);
        assert_armed_at(&f, t0 + 2 * USEC_PER_SEC);

        fake_now = t0 + 500 * USEC_PER_MSEC;
        submit(&f, 1, 3, 1000);
        assert_armed_at(&f, t0 + 1500 * USEC_PER_MSEC);

        fake_now = t0 + 1500 * USEC_PER_MSEC;
        ck_assert(run_once(&f));
        assert_retransmitted(&f, (const size_t[]){1}, 1);
        assert_armed_at(&f, t0 + 2 * USEC_PER_SEC);
        teardown(&f);
}
END_TEST

/* A later request on a socket whose timer comes first leaves the timer where it is: it runs the
 * earlier retransmission on time, then queues the later one. */
START_TEST(test_later_request_keeps_earlier_deadline) {
        Fixture f;
        Datagram first;

        setup(&f);
        submit(&f, 0, 1, 1000);
        first = f.sent[0];
        submit(&f, 0, 2, 2500);
        assert_armed_at(&f, t0 + 1 * USEC_PER_SEC);

        fake_now = t0 + 1 * USEC_PER_SEC;
        ck_assert(run_once(&f));
        f.sent[0] = first;
        assert_retransmitted(&f, (const size_t[]){0}, 1);
        /* The second request's first retransmission, before the first's second (at 3 s). */
        assert_armed_at(&f, t0 + 2500 * USEC_PER_MSEC);
        teardown(&f);
}
END_TEST

/* The next request of a sequence, due later than the timer its ended predecessor left, does not
 * move it: the timer runs for nothing, then queues the request's deadline. */
START_TEST(test_later_deadline_leaves_timer) {
        Fixture f;

        setup(&f);
        submit(&f, 0, 1, 2000);
        ck_assert_int_eq(socket_cancel(f.s[0], 1), 0);
        fake_now = t0 + 500 * USEC_PER_MSEC;
        submit(&f, 0, 2, 2000);
        assert_armed_at(&f, t0 + 2 * USEC_PER_SEC);

        fake_now = t0 + 2 * USEC_PER_SEC;
        ck_assert(run_once(&f));
        assert_retransmitted(&f, NULL, 0);
        assert_armed_at(&f, t0 + 2500 * USEC_PER_MSEC);

        fake_now = t0 + 2500 * USEC_PER_MSEC;
        ck_assert(run_once(&f));
        assert_retransmitted(&f, (const size_t[]){0}, 1);
        teardown(&f);
}
END_TEST

/* A multiple of every range the first timeout is drawn from below (750 ms, 16 ms): the first
 * retransmission comes exactly after the ACK timeout; the tokens still differ. */
static uint64_t pinned_random(void *userdata) {
        static uint64_t n;

        (void) userdata;
        return ++n * 6 * USEC_PER_SEC;
}

/* The source runs late by no more than the earliest time any socket must have run by, which need
 * not be the first socket's. */
START_TEST(test_accuracy_ends_at_earliest_latest) {
        CoapRequestSpec spec = {
                .owner = 1,
                .method = COAP_CODE_GET,
                .confirmable = true,
                .content_format = -1,
                .params = {.backoff_percent = 200, .max_retransmission = 4},
                .block_szx = COAP_BLOCK_SZX_MAX,
        };
        uint64_t time, accuracy;
        Fixture f;

        setup(&f);
        f.m->engine_env.random_u64 = pinned_random;
        /* Due at 1.5 s, by 2.25 s: an eighth of the time left, 187.5 ms, is its accuracy. */
        spec.id = 1;
        spec.params.ack_timeout_ms = 1500;
        spec.params.ack_random_percent = 150;
        ck_assert_int_eq(socket_submit(f.s[0], &spec), 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f.s[0]->engine) - t0, 1500 * USEC_PER_MSEC);
        ck_assert_uint_eq(f.s[0]->latest.deadline - t0, 1687500);
        /* Due later, at 1.6 s, but by 1.616 s. */
        spec.id = 2;
        spec.params.ack_timeout_ms = 1600;
        spec.params.ack_random_percent = 101;
        ck_assert_int_eq(socket_submit(f.s[1], &spec), 0);
        ck_assert_uint_eq(f.s[1]->latest.deadline - t0, 1616 * USEC_PER_MSEC);

        ck_assert(source_armed(&f, &time, &accuracy));
        ck_assert_uint_eq(time - t0, 1500 * USEC_PER_MSEC);
        ck_assert_uint_eq(accuracy, 116 * USEC_PER_MSEC);
        teardown(&f);
}
END_TEST

/* Nothing due: no source armed, no wake-up. A socket whose requests all ended keeps its timer,
 * which then runs once for nothing and leaves the source off. */
START_TEST(test_nothing_due_leaves_source_off) {
        uint64_t time, accuracy;
        Fixture f;

        setup(&f);
        ck_assert(!source_armed(&f, &time, &accuracy));
        ck_assert(!run_once(&f));

        submit(&f, 0, 1, 1000);
        ck_assert_int_eq(socket_cancel(f.s[0], 1), 0);
        ck_assert(coap_engine_is_idle(f.s[0]->engine));
        assert_armed_at(&f, t0 + 1 * USEC_PER_SEC);

        fake_now = t0 + 1 * USEC_PER_SEC;
        ck_assert(run_once(&f));
        assert_retransmitted(&f, NULL, 0);
        ck_assert(!source_armed(&f, &time, &accuracy));
        ck_assert_uint_eq(f.m->socket_timers.n, 0);
        ck_assert_uint_eq(f.m->socket_latest.n, 0);
        ck_assert(!run_once(&f));
        teardown(&f);
}
END_TEST

static Suite *socket_timers_suite(void) {
        Suite *s = suite_create("socket-timers");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_late_fire_runs_every_due_socket);
        tcase_add_test(tc, test_on_time_fire_runs_the_first_only);
        tcase_add_test(tc, test_freed_socket_leaves_both_heaps);
        tcase_add_test(tc, test_earlier_deadline_rearms);
        tcase_add_test(tc, test_later_request_keeps_earlier_deadline);
        tcase_add_test(tc, test_later_deadline_leaves_timer);
        tcase_add_test(tc, test_accuracy_ends_at_earliest_latest);
        tcase_add_test(tc, test_nothing_due_leaves_source_off);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(socket_timers_suite)
