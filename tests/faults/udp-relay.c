/* SPDX-License-Identifier: MIT */
/*
 * udp-relay: a faulty UDP path between CoAP clients and one peer, for fault-injection tests.
 *
 *   udp-relay --peer=127.0.0.1:5683 [--listen=127.0.0.1:0] [--loss=PCT] [--loss-up=PCT]
 *             [--loss-down=PCT] [--dup=PCT] [--reorder=PCT] [--hold-ms=MS] [--delay-ms=MS]
 *             [--seed=N] [--lifetime=SEC] [--stats=FILE]
 *             [--trace]
 *
 * Every client address that sends to the listening socket gets its own upstream socket
 * connected to the peer, so the peer sees one session per client. "up" is client -> peer,
 * "down" is peer -> client. Per datagram and direction, in this order of random draws: drop
 * (loss %), duplicate (dup %, the copy follows at once), and for each copy hold (reorder %: the
 * copy waits until the next datagram of that direction has gone, or hold-ms at most). Every
 * forwarded datagram is delayed by delay-ms. The random sequence comes from --seed alone.
 *
 * Prints the listening port on stdout ("PORT\n"), then runs until SIGTERM/SIGINT or the
 * lifetime (default 300 s) ends. SIGUSR1 writes the counters to the stats file; at exit they
 * go to the stats file and stderr as one line of key=value pairs. --trace logs every datagram
 * and decision on stderr. Loopback addresses only.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal/macro.h"
#include "stats-file.h"

#define MAX_SESSIONS 128
#define MAX_DATAGRAM 65535
#define MAX_PENDING  4096
#define DIR_UP       0
#define DIR_DOWN     1

typedef struct Addr {
        struct sockaddr_storage ss;
        socklen_t len;
} Addr;

typedef struct Packet {
        uint64_t deadline;
        uint64_t seq; /* ties keep insertion order */
        int dir;
        size_t session;
        size_t len;
        uint8_t *data;
} Packet;

typedef struct DirStats {
        uint64_t received, sent, dropped, duplicated, reordered, send_errors, overflow;
} DirStats;

typedef struct Session {
        Addr client;
        int up_fd; /* connected to the peer */
} Session;

typedef struct Relay {
        int listen_fd;
        Addr peer;
        double loss[2], dup, reorder;
        uint64_t hold_usec, delay_usec;
        uint64_t rng;
        Session sessions[MAX_SESSIONS];
        size_t n_sessions;
        uint64_t sessions_refused;
        Packet pending[MAX_PENDING]; /* unordered; the earliest (deadline, seq) goes first */
        size_t n_pending;
        Packet held[2];
        bool has_held[2];
        uint64_t next_seq;
        DirStats stats[2];
        const char *stats_path;
        bool trace;
} Relay;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* splitmix64: a small, well-mixed generator whose sequence depends on the seed only. */
static uint64_t rng_next(Relay *r) {
        uint64_t z = (r->rng += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static bool rng_chance(Relay *r, double percent) {
        /* Always draw, so that the sequence of draws does not depend on the settings. */
        double x = (double) (rng_next(r) >> 11) / (double) (UINT64_C(1) << 53) * 100.0;

        return x < percent;
}

static bool addr_is_loopback(const Addr *a) {
        if (a->ss.ss_family == AF_INET) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *) &a->ss;

                return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
        }
        if (a->ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &a->ss;
                const uint8_t *b = sin6->sin6_addr.s6_addr;

                if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
                        return true;
                return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && b[12] == 127;
        }
        return false;
}

static bool addr_equal(const Addr *a, const Addr *b) {
        return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* "A.B.C.D:PORT" or "[IPv6]:PORT". */
static int addr_parse(const char *s, Addr *ret) {
        char host[INET6_ADDRSTRLEN + 2];
        const char *colon;
        char *end;
        unsigned long port;
        size_t n;

        memset(ret, 0, sizeof(*ret));
        if (s[0] == '[') {
                const char *close = strchr(s, ']');

                if (!close || close[1] != ':')
                        return -EINVAL;
                n = (size_t) (close - s - 1);
                colon = close + 1;
                s++;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                n = (size_t) (colon - s);
        }
        if (n == 0 || n >= sizeof(host))
                return -EINVAL;
        memcpy(host, s, n);
        host[n] = '\0';
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno != 0 || *end != '\0' || end == colon + 1 || port > 65535)
                return -EINVAL;

        if (strchr(host, ':')) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ret->ss;

                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons((uint16_t) port);
                if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
                        return -EINVAL;
                ret->len = sizeof(*sin6);
        } else {
                struct sockaddr_in *sin = (struct sockaddr_in *) &ret->ss;

                sin->sin_family = AF_INET;
                sin->sin_port = htons((uint16_t) port);
                if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
                        return -EINVAL;
                ret->len = sizeof(*sin);
        }
        return addr_is_loopback(ret) ? 0 : -EADDRNOTAVAIL;
}

static int parse_percent(const char *s, double *ret) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || *end != '\0' || end == s || !(v >= 0.0 && v <= 100.0))
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno != 0 || *end != '\0' || end == s || s[0] == '-')
                return -EINVAL;
        *ret = v;
        return 0;
}

static void stats_format(const void *userdata, FILE *f) {
        static const char *const names[2] = {"up", "down"};
        const Relay *r = userdata;

        for (int d = 0; d < 2; d++) {
                const DirStats *s = &r->stats[d];

                fprintf(f,
                        "%s_received=%" PRIu64 " %s_sent=%" PRIu64 " %s_dropped=%" PRIu64
                        " %s_duplicated=%" PRIu64 " %s_reordered=%" PRIu64
                        " %s_send_errors=%" PRIu64 " %s_overflow=%" PRIu64 " ",
                        names[d], s->received, names[d], s->sent, names[d], s->dropped, names[d],
                        s->duplicated, names[d], s->reordered, names[d], s->send_errors, names[d],
                        s->overflow);
        }
        fprintf(f, "sessions=%zu sessions_refused=%" PRIu64 "\n", r->n_sessions,
                r->sessions_refused);
}

/* --trace: one line per datagram and decision on stderr, for debugging a failed test. */
static void trace(const Relay *r, int dir, size_t session, const uint8_t *buf, size_t len,
                  const char *what) {
        uint64_t t = now_usec();

        if (!r->trace)
                return;
        fprintf(stderr, "relay %" PRIu64 ".%06" PRIu64 " %s s%zu len=%zu", t / USEC_PER_SEC,
                t % USEC_PER_SEC, dir == DIR_UP ? "up  " : "down", session, len);
        /* The CoAP header (type, code, message ID, token) and the block options. */
        if (len >= 4 && (size_t) (buf[0] & 0x0f) <= MIN(len - 4, (size_t) 8)) {
                size_t tkl = buf[0] & 0x0fu, k = 4 + tkl;
                unsigned number = 0;

                fprintf(stderr, " t=%u c=%u.%02u mid=%u tok=", (buf[0] >> 4) & 3u, buf[1] >> 5,
                        buf[1] & 0x1fu, (unsigned) (buf[2] << 8 | buf[3]));
                for (size_t i = 0; i < tkl; i++)
                        fprintf(stderr, "%02x", buf[4 + i]);
                while (k < len && buf[k] != 0xff) {
                        unsigned delta = buf[k] >> 4, olen = buf[k] & 0x0fu, v = 0;

                        k++;
                        if (delta == 15 || olen == 15)
                                break;
                        if (delta >= 13) {
                                size_t ext = delta == 13 ? 1 : 2;

                                if (k + ext > len)
                                        break;
                                delta = ext == 1 ? buf[k] + 13u
                                                 : (unsigned) (buf[k] << 8 | buf[k + 1]) + 269u;
                                k += ext;
                        }
                        if (olen >= 13) {
                                size_t ext = olen == 13 ? 1 : 2;

                                if (k + ext > len)
                                        break;
                                olen = ext == 1 ? buf[k] + 13u
                                                : (unsigned) (buf[k] << 8 | buf[k + 1]) + 269u;
                                k += ext;
                        }
                        if (k + olen > len)
                                break;
                        number += delta;
                        for (unsigned i = 0; i < olen && i < 4; i++)
                                v = v << 8 | buf[k + i];
                        if (number == 23 || number == 27)
                                fprintf(stderr, " block%u=%u/%u/%u", number == 23 ? 2u : 1u, v >> 4,
                                        (v >> 3) & 1u, 16u << (v & 7u));
                        else if (number == 4)
                                fprintf(stderr, " etag=%x", v);
                        k += olen;
                }
        }
        fprintf(stderr, " %s\n", what);
}

static void packet_send(Relay *r, const Packet *p) {
        const Session *s = &r->sessions[p->session];
        ssize_t n;

        if (p->dir == DIR_UP)
                n = send(s->up_fd, p->data, p->len, MSG_DONTWAIT);
        else
                n = sendto(r->listen_fd, p->data, p->len, MSG_DONTWAIT,
                           (const struct sockaddr *) &s->client.ss, s->client.len);
        if (n < 0)
                r->stats[p->dir].send_errors++;
        else
                r->stats[p->dir].sent++;
        trace(r, p->dir, p->session, p->data, p->len, n < 0 ? "send-error" : "sent");
}

static void relay_enqueue(Relay *r, Packet *p, uint64_t deadline) {
        if (r->n_pending >= MAX_PENDING) {
                r->stats[p->dir].overflow++;
                free(p->data);
                return;
        }
        p->deadline = deadline;
        p->seq = r->next_seq++;
        r->pending[r->n_pending++] = *p;
}

static void relay_release_held(Relay *r, int dir, uint64_t deadline) {
        if (!r->has_held[dir])
                return;
        r->has_held[dir] = false;
        relay_enqueue(r, &r->held[dir], deadline);
}

/* Takes one received datagram of dir through the fault model. */
static void relay_inject(Relay *r, int dir, size_t session, const uint8_t *buf, size_t len,
                         uint64_t now) {
        bool drop = rng_chance(r, r->loss[dir]);
        bool dup = rng_chance(r, r->dup);
        unsigned copies = dup ? 2 : 1;

        r->stats[dir].received++;
        trace(r, dir, session, buf, len, drop ? "drop" : dup ? "dup" : "pass");
        if (drop) {
                r->stats[dir].dropped++;
                return;
        }
        if (dup)
                r->stats[dir].duplicated++;
        for (unsigned i = 0; i < copies; i++) {
                bool hold = rng_chance(r, r->reorder);
                Packet p = {.dir = dir, .session = session, .len = len};

                p.data = malloc(len ? len : 1);
                if (!p.data) {
                        r->stats[dir].overflow++;
                        continue;
                }
                memcpy(p.data, buf, len);
                if (hold && !r->has_held[dir]) {
                        r->stats[dir].reordered++;
                        trace(r, dir, session, buf, len, "hold");
                        p.deadline = now + r->hold_usec;
                        r->held[dir] = p;
                        r->has_held[dir] = true;
                        continue;
                }
                relay_enqueue(r, &p, now + r->delay_usec);
                /* The held one goes right after the datagram that overtook it. */
                relay_release_held(r, dir, now + r->delay_usec);
        }
}

static void relay_flush(Relay *r, uint64_t now) {
        for (int d = 0; d < 2; d++)
                if (r->has_held[d] && r->held[d].deadline <= now)
                        relay_release_held(r, d, now + r->delay_usec);
        for (;;) {
                size_t best = SIZE_MAX;
                Packet p;

                for (size_t i = 0; i < r->n_pending; i++) {
                        const Packet *q = &r->pending[i];

                        if (q->deadline > now)
                                continue;
                        if (best == SIZE_MAX || q->deadline < r->pending[best].deadline ||
                            (q->deadline == r->pending[best].deadline &&
                             q->seq < r->pending[best].seq))
                                best = i;
                }
                if (best == SIZE_MAX)
                        return;
                p = r->pending[best];
                r->pending[best] = r->pending[--r->n_pending];
                packet_send(r, &p);
                free(p.data);
        }
}

static uint64_t relay_next_deadline(const Relay *r) {
        uint64_t t = UINT64_MAX;

        for (size_t i = 0; i < r->n_pending; i++)
                t = MIN(t, r->pending[i].deadline);
        for (int d = 0; d < 2; d++)
                if (r->has_held[d])
                        t = MIN(t, r->held[d].deadline);
        return t;
}

static int relay_session(Relay *r, const Addr *client, size_t *ret) {
        int fd;

        for (size_t i = 0; i < r->n_sessions; i++)
                if (addr_equal(&r->sessions[i].client, client)) {
                        *ret = i;
                        return 0;
                }
        if (r->n_sessions >= MAX_SESSIONS) {
                r->sessions_refused++;
                return -ENOSPC;
        }
        fd = socket(r->peer.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) &r->peer.ss, r->peer.len) < 0) {
                int e = -errno;

                safe_close(fd);
                return e;
        }
        r->sessions[r->n_sessions] = (Session){.client = *client, .up_fd = fd};
        *ret = r->n_sessions++;
        return 0;
}

static void relay_read_listen(Relay *r, uint8_t *buf, uint64_t now) {
        for (;;) {
                Addr src = {.len = sizeof(src.ss)};
                size_t session = 0;
                ssize_t n;

                n = recvfrom(r->listen_fd, buf, MAX_DATAGRAM, MSG_DONTWAIT,
                             (struct sockaddr *) &src.ss, &src.len);
                if (n < 0)
                        return;
                if (relay_session(r, &src, &session) < 0)
                        continue;
                relay_inject(r, DIR_UP, session, buf, (size_t) n, now);
        }
}

static void relay_read_session(Relay *r, size_t session, uint8_t *buf, uint64_t now) {
        for (;;) {
                ssize_t n = recv(r->sessions[session].up_fd, buf, MAX_DATAGRAM, MSG_DONTWAIT);

                /* ECONNREFUSED (the peer is down) is consumed here like any other error: the
                 * client then simply sees no answer, as on a real path. */
                if (n < 0) {
                        if (errno == ECONNREFUSED)
                                continue;
                        return;
                }
                relay_inject(r, DIR_DOWN, session, buf, (size_t) n, now);
        }
}

static void relay_done(Relay *r) {
        for (size_t i = 0; i < r->n_pending; i++)
                free(r->pending[i].data);
        for (int d = 0; d < 2; d++)
                if (r->has_held[d])
                        free(r->held[d].data);
        for (size_t i = 0; i < r->n_sessions; i++)
                safe_close(r->sessions[i].up_fd);
        safe_close(r->listen_fd);
}

static int relay_run(Relay *r, int sig_fd, uint64_t lifetime_usec) {
        static uint8_t buf[MAX_DATAGRAM];
        uint64_t end = now_usec() + lifetime_usec;

        for (;;) {
                struct pollfd pfd[2 + MAX_SESSIONS];
                uint64_t now = now_usec(), next;
                size_t n_sessions = r->n_sessions;
                int timeout;

                relay_flush(r, now);
                if (now >= end)
                        return 0;
                next = MIN(relay_next_deadline(r), end);
                timeout = (int) MIN((next - now + 999) / 1000, (uint64_t) 1000);

                pfd[0] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
                pfd[1] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
                for (size_t i = 0; i < n_sessions; i++)
                        pfd[2 + i] = (struct pollfd){.fd = r->sessions[i].up_fd, .events = POLLIN};
                if (poll(pfd, 2 + n_sessions, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                now = now_usec();
                if (pfd[0].revents & POLLIN) {
                        struct signalfd_siginfo si;

                        if (read(sig_fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                                if (si.ssi_signo != SIGUSR1)
                                        return 0;
                                stats_file_write(r->stats_path, stats_format, r);
                        }
                }
                if (pfd[1].revents)
                        relay_read_listen(r, buf, now);
                for (size_t i = 0; i < n_sessions; i++)
                        if (pfd[2 + i].revents)
                                relay_read_session(r, i, buf, now);
        }
}

static void usage(FILE *f) {
        fputs("Usage: udp-relay --peer=ADDR:PORT [--listen=ADDR:PORT] [--loss=PCT]\n"
              "                 [--loss-up=PCT] [--loss-down=PCT] [--dup=PCT] [--reorder=PCT]\n"
              "                 [--hold-ms=MS] [--delay-ms=MS] [--seed=N] [--lifetime=SEC]\n"
              "                 [--stats=FILE] [--trace]\n",
              f);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"peer", required_argument, NULL, 'p'},
                {"listen", required_argument, NULL, 'l'},
                {"loss", required_argument, NULL, 'L'},
                {"loss-up", required_argument, NULL, 'U'},
                {"loss-down", required_argument, NULL, 'D'},
                {"dup", required_argument, NULL, 'd'},
                {"reorder", required_argument, NULL, 'r'},
                {"hold-ms", required_argument, NULL, 'H'},
                {"delay-ms", required_argument, NULL, 'y'},
                {"seed", required_argument, NULL, 's'},
                {"lifetime", required_argument, NULL, 't'},
                {"stats", required_argument, NULL, 'S'},
                {"trace", no_argument, NULL, 'T'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        static Relay relay; /* large: keep it off the stack */
        Relay *r = &relay;
        Addr listen_addr;
        uint64_t seed = 1, lifetime = 300, hold_ms = 50, delay_ms = 0;
        bool have_peer = false;
        sigset_t mask;
        int c, sig_fd, rc;

        r->listen_fd = -EBADF;
        (void) addr_parse("127.0.0.1:0", &listen_addr);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                int e = 0;
                double v;

                switch (c) {
                case 'p':
                        e = addr_parse(optarg, &r->peer);
                        have_peer = e == 0;
                        break;
                case 'l':
                        e = addr_parse(optarg, &listen_addr);
                        break;
                case 'L':
                        e = parse_percent(optarg, &v);
                        r->loss[DIR_UP] = r->loss[DIR_DOWN] = v;
                        break;
                case 'U':
                        e = parse_percent(optarg, &r->loss[DIR_UP]);
                        break;
                case 'D':
                        e = parse_percent(optarg, &r->loss[DIR_DOWN]);
                        break;
                case 'd':
                        e = parse_percent(optarg, &r->dup);
                        break;
                case 'r':
                        e = parse_percent(optarg, &r->reorder);
                        break;
                case 'H':
                        e = parse_u64(optarg, &hold_ms);
                        break;
                case 'y':
                        e = parse_u64(optarg, &delay_ms);
                        break;
                case 's':
                        e = parse_u64(optarg, &seed);
                        break;
                case 't':
                        e = parse_u64(optarg, &lifetime);
                        break;
                case 'S':
                        r->stats_path = optarg;
                        break;
                case 'T':
                        r->trace = true;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_SUCCESS;
                default:
                        usage(stderr);
                        return EXIT_FAILURE;
                }
                if (e < 0) {
                        fprintf(stderr, "udp-relay: bad value: %s%s\n", optarg,
                                e == -EADDRNOTAVAIL ? " (loopback addresses only)" : "");
                        return EXIT_FAILURE;
                }
        }
        if (!have_peer || optind != argc || hold_ms > 60000 || delay_ms > 60000 || lifetime == 0 ||
            lifetime > 3600) {
                usage(stderr);
                return EXIT_FAILURE;
        }
        r->rng = seed;
        r->hold_usec = hold_ms * USEC_PER_MSEC;
        r->delay_usec = delay_ms * USEC_PER_MSEC;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return EXIT_FAILURE;
        sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sig_fd < 0) {
                perror("udp-relay: signalfd");
                return EXIT_FAILURE;
        }

        r->listen_fd =
                socket(listen_addr.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (r->listen_fd < 0 ||
            bind(r->listen_fd, (struct sockaddr *) &listen_addr.ss, listen_addr.len) < 0) {
                perror("udp-relay: bind");
                relay_done(r);
                safe_close(sig_fd);
                return EXIT_FAILURE;
        }
        listen_addr.len = sizeof(listen_addr.ss);
        (void) getsockname(r->listen_fd, (struct sockaddr *) &listen_addr.ss, &listen_addr.len);
        printf("%u\n", ntohs(listen_addr.ss.ss_family == AF_INET
                                     ? ((struct sockaddr_in *) &listen_addr.ss)->sin_port
                                     : ((struct sockaddr_in6 *) &listen_addr.ss)->sin6_port));
        fflush(stdout);

        rc = relay_run(r, sig_fd, lifetime * USEC_PER_SEC);
        stats_file_write(r->stats_path, stats_format, r);
        fputs("udp-relay: ", stderr);
        stats_format(r, stderr);
        relay_done(r);
        safe_close(sig_fd);
        return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
