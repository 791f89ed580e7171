/* SPDX-License-Identifier: MIT */
/* The send batch (core/socket-tx.c) on real loopback sockets: what it holds leaves at the
 * outermost end, in order, and what fails then is reported once, with its bytes and address. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check-main.h"
#include "core/socket-tx.h"

typedef struct Failure {
        void *owner;
        uint8_t buf[64];
        size_t len;
        CoapAddr dest;
        int error;
} Failure;

static Failure failures[8];
static size_t n_failures;

static void on_failed(void *owner, const uint8_t *buf, size_t len, const CoapAddr *dest,
                      int error) {
        Failure *f = &failures[n_failures++];

        ck_assert_uint_le(n_failures, 8);
        ck_assert_uint_le(len, sizeof f->buf);
        *f = (Failure){.owner = owner, .len = len, .dest = *dest, .error = error};
        memcpy(f->buf, buf, len);
}

/* A server on loopback and a client connected to it. */
static void udp_pair(int *server, int *client) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;

        *server = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        *client = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(*server, 0);
        ck_assert_int_ge(*client, 0);
        ck_assert_int_eq(bind(*server, (struct sockaddr *) &a, sizeof a), 0);
        ck_assert_int_eq(getsockname(*server, (struct sockaddr *) &a, &len), 0);
        ck_assert_int_eq(connect(*client, (struct sockaddr *) &a, sizeof a), 0);
}

/* The next datagram on fd, "" when none is queued. */
static const char *next(int fd) {
        static char buf[64];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);

        if (n < 0) {
                ck_assert_int_eq(errno, EAGAIN);
                n = 0;
        }
        buf[n] = '\0';
        return buf;
}

static int add(SocketTx *tx, int fd, void *owner, const char *text) {
        return socket_tx_add(tx, fd, owner, &(CoapAddr){}, (const uint8_t *) text, strlen(text));
}

static SocketTx *setup(void) {
        SocketTx *tx = NULL;

        n_failures = 0;
        ck_assert_int_eq(socket_tx_new(on_failed, &tx), 0);
        return tx;
}

START_TEST(test_held_until_outermost_end) {
        SocketTx *tx = setup();
        int s1, c1, s2, c2, a, b;

        udp_pair(&s1, &c1);
        udp_pair(&s2, &c2);
        /* Not between begin and end: the caller sends it itself. */
        ck_assert_int_eq(add(tx, c1, &a, "x"), -ENOBUFS);
        socket_tx_begin(tx);
        socket_tx_begin(tx);
        ck_assert_int_eq(add(tx, c1, &a, "a1"), 0);
        ck_assert_int_eq(add(tx, c2, &b, "b1"), 0);
        ck_assert_int_eq(add(tx, c1, &a, "a2"), 0);
        ck_assert_int_eq(add(tx, c1, &a, "a3"), 0);
        socket_tx_end(tx);
        ck_assert_str_eq(next(s1), "");
        ck_assert_str_eq(next(s2), "");
        socket_tx_end(tx);
        ck_assert_str_eq(next(s1), "a1");
        ck_assert_str_eq(next(s1), "a2");
        ck_assert_str_eq(next(s1), "a3");
        ck_assert_str_eq(next(s1), "");
        ck_assert_str_eq(next(s2), "b1");
        ck_assert_str_eq(next(s2), "");
        ck_assert_uint_eq(n_failures, 0);
        /* Sent once: a second end has nothing left. */
        socket_tx_end(tx);
        ck_assert_str_eq(next(s1), "");
        ck_assert_int_eq(add(tx, c1, &a, "x"), -ENOBUFS);
        close(s1), close(c1), close(s2), close(c2);
        socket_tx_free(tx);
}
END_TEST

START_TEST(test_full) {
        SocketTx *tx = setup();
        static uint8_t big[16 * 1024 + 1];
        int s, c, a;
        unsigned n = 0;

        udp_pair(&s, &c);
        socket_tx_begin(tx);
        ck_assert_int_eq(socket_tx_add(tx, c, &a, &(CoapAddr){}, big, sizeof big), -ENOBUFS);
        while (add(tx, c, &a, "d") == 0)
                n++;
        ck_assert_uint_eq(n, 32);
        socket_tx_end(tx);
        for (unsigned i = 0; i < n; i++)
                ck_assert_str_eq(next(s), "d");
        ck_assert_str_eq(next(s), "");
        close(s), close(c);
        socket_tx_free(tx);
}
END_TEST

/* Broadcast without SO_BROADCAST: EACCES for that datagram only; those after it still go. */
START_TEST(test_failure_reported_after_the_batch) {
        SocketTx *tx = setup();
        CoapAddr to_server = {.len = sizeof(struct sockaddr_in)}, broadcast = to_server;
        socklen_t len = sizeof to_server.ss;
        int s, c, u, a;

        udp_pair(&s, &c);
        ck_assert_int_eq(getsockname(s, &to_server.ss.sa, &len), 0);
        broadcast.ss.in = (struct sockaddr_in){.sin_family = AF_INET,
                                               .sin_port = htons(9),
                                               .sin_addr.s_addr = htonl(INADDR_BROADCAST)};
        u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(u, 0);
        socket_tx_begin(tx);
        ck_assert_int_eq(socket_tx_add(tx, u, &a, &to_server, (const uint8_t *) "one", 3), 0);
        ck_assert_int_eq(socket_tx_add(tx, u, &a, &broadcast, (const uint8_t *) "lost", 4), 0);
        ck_assert_int_eq(socket_tx_add(tx, u, &a, &to_server, (const uint8_t *) "two", 3), 0);
        socket_tx_end(tx);
        ck_assert_str_eq(next(s), "one");
        ck_assert_str_eq(next(s), "two");
        ck_assert_uint_eq(n_failures, 1);
        ck_assert_ptr_eq(failures[0].owner, &a);
        ck_assert_int_eq(failures[0].error, -EACCES);
        ck_assert_uint_eq(failures[0].len, 4);
        ck_assert_mem_eq(failures[0].buf, "lost", 4);
        ck_assert_uint_eq(failures[0].dest.len, broadcast.len);
        ck_assert_mem_eq(&failures[0].dest.ss.in, &broadcast.ss.in, sizeof broadcast.ss.in);
        close(s), close(c), close(u);
        socket_tx_free(tx);
}
END_TEST

/* An owner that goes away before the end: its datagrams leave now, and only once. */
START_TEST(test_forget) {
        SocketTx *tx = setup();
        int s1, c1, s2, c2, a, b;

        udp_pair(&s1, &c1);
        udp_pair(&s2, &c2);
        socket_tx_begin(tx);
        ck_assert_int_eq(add(tx, c1, &a, "a1"), 0);
        ck_assert_int_eq(add(tx, c2, &b, "b1"), 0);
        socket_tx_forget(tx, &a);
        ck_assert_str_eq(next(s1), "a1");
        ck_assert_str_eq(next(s2), "");
        close(c1); /* its fd number may come back for another socket */
        socket_tx_end(tx);
        ck_assert_str_eq(next(s1), "");
        ck_assert_str_eq(next(s2), "b1");
        ck_assert_uint_eq(n_failures, 0);
        close(s1), close(s2), close(c2);
        socket_tx_free(tx);
}
END_TEST

START_TEST(test_null) {
        socket_tx_begin(NULL);
        ck_assert_int_eq(add(NULL, 0, NULL, "x"), -ENOBUFS);
        socket_tx_forget(NULL, NULL);
        socket_tx_end(NULL);
        ck_assert_ptr_null(socket_tx_free(NULL));
}
END_TEST

static Suite *socket_tx_suite(void) {
        Suite *s = suite_create("socket-tx");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_held_until_outermost_end);
        tcase_add_test(tc, test_full);
        tcase_add_test(tc, test_failure_reported_after_the_batch);
        tcase_add_test(tc, test_forget);
        tcase_add_test(tc, test_null);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(socket_tx_suite)
