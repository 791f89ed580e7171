/* SPDX-License-Identifier: MIT */
/* obs-peer: the CoAP server of the bench's scale scenario. One UDP socket on an IPv4 address
 * answers GETs of any path; a GET with Observe 0 registers an observation, one per client
 * endpoint (RFC 7641 §4.1: a new registration from an endpoint replaces its old one), a GET
 * with Observe 1 or a RST answering a notification ends it, and so does an ICMP port unreachable
 * for a notification (IP_RECVERR): a peer left running does not keep sending to closed ports. Once
 * a second, on a fixed grid from start-up, every observer gets one NON 2.05 notification whose
 * Observe value (and text payload) is the tick number, so sequence numbers increase by one per
 * second. Reads with recvmmsg(), writes with sendmmsg(): 10,000 observers cost it a few percent of
 * a core.
 *
 *   obs-peer [-A ADDR] [-p PORT] [-S STATSFILE]
 *
 * STATSFILE is replaced after every tick with one line
 *   ticks=T observers=O sent=S tick_ns=NS registrations=R
 * (sent: notifications sent so far; tick_ns: CLOCK_MONOTONIC time of the last tick), which the
 * bench reads to align its measurement window with the ticks. IPv4 only. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH         256
#define MSG_MAX       1280
#define TABLE_BITS    16 /* hash slots: twice MAX_OBSERVERS */
#define MAX_OBSERVERS (1u << (TABLE_BITS - 1))
#define SLOT_EMPTY    0u
#define SLOT_DELETED  UINT32_MAX
#define OPT_OBSERVE   6
#define NSEC_PER_SEC  1000000000ull

typedef struct Observer {
        struct sockaddr_in addr;
        uint8_t token[8];
        uint8_t tkl;
} Observer;

typedef struct Peer {
        int fd;
        Observer *observers; /* dense, for the tick */
        uint32_t n_observers;
        uint32_t *slots; /* index into observers + 1, or SLOT_EMPTY / SLOT_DELETED */
        uint16_t next_mid;
        uint32_t ticks;
        uint64_t sent, registrations, tick_ns;
        const char *stats_path;
} Peer;

/* The batch being built: datagrams and their destinations, flushed with sendmmsg(). */
typedef struct OutBatch {
        struct mmsghdr msgs[BATCH];
        struct iovec iovs[BATCH];
        struct sockaddr_in dests[BATCH];
        uint8_t bufs[BATCH][64];
        unsigned n;
} OutBatch;

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        (void) sig;
        stop = 1;
}

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * NSEC_PER_SEC + (uint64_t) ts.tv_nsec;
}

static uint32_t endpoint_hash(const struct sockaddr_in *a) {
        uint32_t h =
                (a->sin_addr.s_addr ^ ((uint32_t) a->sin_port << 16) ^ a->sin_port) * 2654435761u;

        return h >> (32 - TABLE_BITS);
}

static bool same_endpoint(const struct sockaddr_in *a, const struct sockaddr_in *b) {
        return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* The slot that holds a's observer, or the first free one on its probe sequence; *found says
 * which. */
static uint32_t find_slot(const Peer *p, const struct sockaddr_in *a, bool *found) {
        uint32_t mask = (1u << TABLE_BITS) - 1, i = endpoint_hash(a), free_slot = UINT32_MAX;

        for (;; i = (i + 1) & mask) {
                uint32_t v = p->slots[i];

                if (v == SLOT_EMPTY) {
                        *found = false;
                        return free_slot != UINT32_MAX ? free_slot : i;
                }
                if (v == SLOT_DELETED) {
                        if (free_slot == UINT32_MAX)
                                free_slot = i;
                        continue;
                }
                if (same_endpoint(&p->observers[v - 1].addr, a)) {
                        *found = true;
                        return i;
                }
        }
}

static int observer_put(Peer *p, const struct sockaddr_in *a, const uint8_t *token, uint8_t tkl) {
        bool found;
        uint32_t slot = find_slot(p, a, &found);
        Observer *o;

        if (!found) {
                if (p->n_observers >= MAX_OBSERVERS)
                        return -ENOSPC;
                p->slots[slot] = ++p->n_observers;
        }
        o = &p->observers[p->slots[slot] - 1];
        o->addr = *a;
        memcpy(o->token, token, tkl);
        o->tkl = tkl;
        p->registrations++;
        return 0;
}

static void observer_remove(Peer *p, const struct sockaddr_in *a) {
        bool found;
        uint32_t slot = find_slot(p, a, &found), idx;

        if (!found)
                return;
        idx = p->slots[slot] - 1;
        p->slots[slot] = SLOT_DELETED;
        /* the last one moves into the hole */
        if (idx != --p->n_observers) {
                uint32_t moved;

                p->observers[idx] = p->observers[p->n_observers];
                moved = find_slot(p, &p->observers[idx].addr, &found);
                p->slots[moved] = idx + 1;
        }
}

static void batch_flush(Peer *p, OutBatch *b, bool notifications) {
        unsigned done = 0;

        while (done < b->n) {
                int r = sendmmsg(p->fd, b->msgs + done, b->n - done, 0);

                if (r < 0) {
                        /* EINTR, or the error of an earlier datagram (IP_RECVERR), which the
                         * failed call consumed: this one was not sent yet */
                        if (errno == EINTR || errno == ECONNREFUSED || errno == EHOSTUNREACH)
                                continue;
                        /* a datagram that cannot go is lost, as on a network */
                        done++;
                        continue;
                }
                done += (unsigned) r;
                if (notifications)
                        p->sent += (unsigned) r;
        }
        b->n = 0;
}

/* Appends a response (type, code, mid, token, Observe when observe >= 0, payload) to b. */
static void batch_add(Peer *p, OutBatch *b, const struct sockaddr_in *dest, uint8_t type,
                      uint8_t code, uint16_t mid, const uint8_t *token, uint8_t tkl,
                      int64_t observe, bool notifications) {
        uint8_t *m = b->bufs[b->n];
        size_t len = 0;

        m[len++] = (uint8_t) (0x40 | (type << 4) | tkl);
        m[len++] = code;
        m[len++] = (uint8_t) (mid >> 8);
        m[len++] = (uint8_t) mid;
        memcpy(m + len, token, tkl);
        len += tkl;
        if (observe >= 0) {
                uint32_t v = (uint32_t) observe & 0xffffff;
                uint8_t n = v > 0xffff ? 3 : v > 0xff ? 2 : v > 0 ? 1 : 0;

                m[len++] = (uint8_t) (OPT_OBSERVE << 4 | n);
                for (int i = n - 1; i >= 0; i--)
                        m[len++] = (uint8_t) (v >> (8 * i));
        }
        len += (size_t) snprintf((char *) m + len, 64 - len, "\xff%u", p->ticks);
        b->dests[b->n] = *dest;
        b->iovs[b->n] = (struct iovec){.iov_base = m, .iov_len = len};
        b->msgs[b->n].msg_hdr = (struct msghdr){.msg_name = &b->dests[b->n],
                                                .msg_namelen = sizeof(struct sockaddr_in),
                                                .msg_iov = &b->iovs[b->n],
                                                .msg_iovlen = 1};
        if (++b->n == BATCH)
                batch_flush(p, b, notifications);
}

/* The Observe option of a request: -1 when absent, else its value; -2 when malformed. */
static int64_t parse_observe(const uint8_t *m, size_t len, size_t off) {
        unsigned number = 0;

        while (off < len && m[off] != 0xff) {
                unsigned delta = m[off] >> 4, olen = m[off] & 0xf;

                off++;
                if (delta == 13)
                        delta = off < len ? 13u + m[off++] : 99999;
                else if (delta == 14) {
                        delta = off + 1 < len ? 269u + (m[off] << 8 | m[off + 1]) : 99999;
                        off += 2;
                }
                if (olen == 13)
                        olen = off < len ? 13u + m[off++] : 99999;
                else if (olen == 14) {
                        olen = off + 1 < len ? 269u + (m[off] << 8 | m[off + 1]) : 99999;
                        off += 2;
                }
                if (delta == 15 || olen == 15 || delta == 99999 || olen == 99999 ||
                    off + olen > len)
                        return -2;
                number += delta;
                if (number == OPT_OBSERVE) {
                        uint32_t v = 0;

                        if (olen > 3)
                                return -2;
                        for (unsigned i = 0; i < olen; i++)
                                v = v << 8 | m[off + i];
                        return v;
                }
                if (number > OPT_OBSERVE)
                        return -1;
                off += olen;
        }
        return -1;
}

static void handle(Peer *p, OutBatch *b, const uint8_t *m, size_t len,
                   const struct sockaddr_in *src) {
        uint8_t type, tkl, code;
        uint16_t mid;
        int64_t observe;

        if (len < 4 || m[0] >> 6 != 1)
                return;
        type = (m[0] >> 4) & 3;
        tkl = m[0] & 0xf;
        code = m[1];
        mid = (uint16_t) (m[2] << 8 | m[3]);
        if (tkl > 8 || len < 4u + tkl)
                return;
        if (type == 3) { /* RST: the client forgot the observation (RFC 7641 §3.6) */
                observer_remove(p, src);
                return;
        }
        if (type == 2 || code == 0) /* ACK, or a CoAP ping answered by nothing */
                return;
        if (code >> 5 != 0) /* a response: not for a server */
                return;
        observe = parse_observe(m, len, 4u + tkl);
        /* a CON request gets a piggybacked ACK, a NON one a NON response */
        type = type == 0 ? 2 : 1;
        if (code != 1 || observe == -2) {
                batch_add(p, b, src, type, code != 1 ? 0x85 : 0x80, mid, m + 4, tkl, -1, false);
                return;
        }
        if (observe == 0 && observer_put(p, src, m + 4, tkl) >= 0) {
                batch_add(p, b, src, type, 0x45, mid, m + 4, tkl, p->ticks, false);
                return;
        }
        if (observe == 1)
                observer_remove(p, src);
        batch_add(p, b, src, type, 0x45, mid, m + 4, tkl, -1, false);
}

/* ICMP errors for notifications: the observer's endpoint is gone (RFC 7641 §3.6 counts it as
 * a reject). */
static void drain_errors(Peer *p) {
        for (;;) {
                struct sockaddr_in dest;
                uint8_t data[64], control[256];
                struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
                struct msghdr mh = {.msg_name = &dest,
                                    .msg_namelen = sizeof dest,
                                    .msg_iov = &iov,
                                    .msg_iovlen = 1,
                                    .msg_control = control,
                                    .msg_controllen = sizeof control};

                if (recvmsg(p->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
                        return;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        const struct sock_extended_err *ee = (const void *) CMSG_DATA(c);

                        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR &&
                            ee->ee_origin == SO_EE_ORIGIN_ICMP && ee->ee_errno == ECONNREFUSED &&
                            mh.msg_namelen == sizeof dest)
                                observer_remove(p, &dest);
                }
        }
}

static void drain(Peer *p, OutBatch *b) {
        static uint8_t bufs[BATCH][MSG_MAX];
        static struct mmsghdr msgs[BATCH];
        static struct iovec iovs[BATCH];
        static struct sockaddr_in srcs[BATCH];
        int n;

        do {
                for (unsigned i = 0; i < BATCH; i++) {
                        iovs[i] = (struct iovec){.iov_base = bufs[i], .iov_len = MSG_MAX};
                        msgs[i].msg_hdr = (struct msghdr){.msg_name = &srcs[i],
                                                          .msg_namelen = sizeof srcs[i],
                                                          .msg_iov = &iovs[i],
                                                          .msg_iovlen = 1};
                }
                n = recvmmsg(p->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
                for (int i = 0; i < n; i++)
                        if (msgs[i].msg_hdr.msg_namelen == sizeof srcs[i])
                                handle(p, b, bufs[i], msgs[i].msg_len, &srcs[i]);
                batch_flush(p, b, false);
        } while (n == BATCH);
}

static void notify_all(Peer *p, OutBatch *b) {
        p->ticks++;
        for (uint32_t i = 0; i < p->n_observers; i++) {
                const Observer *o = &p->observers[i];

                batch_add(p, b, &o->addr, 1, 0x45, p->next_mid++, o->token, o->tkl, p->ticks, true);
        }
        batch_flush(p, b, true);
}

static void write_stats(const Peer *p) {
        char tmp[4096];
        FILE *f;

        if (!p->stats_path)
                return;
        snprintf(tmp, sizeof tmp, "%s.tmp", p->stats_path);
        f = fopen(tmp, "we");
        if (!f)
                return;
        fprintf(f, "ticks=%u observers=%u sent=%llu tick_ns=%llu registrations=%llu\n", p->ticks,
                p->n_observers, (unsigned long long) p->sent, (unsigned long long) p->tick_ns,
                (unsigned long long) p->registrations);
        if (fclose(f) == 0)
                (void) rename(tmp, p->stats_path);
}

int main(int argc, char **argv) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(5683)};
        static OutBatch batch;
        Peer p = {.next_mid = 1};
        int opt, size = 16 << 20;
        uint64_t start, next_tick;

        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        while ((opt = getopt(argc, argv, "A:p:S:")) != -1) {
                if (opt == 'A' && inet_pton(AF_INET, optarg, &sa.sin_addr) == 1)
                        continue;
                if (opt == 'p') {
                        sa.sin_port = htons((uint16_t) atoi(optarg));
                        continue;
                }
                if (opt == 'S') {
                        p.stats_path = optarg;
                        continue;
                }
                fprintf(stderr, "usage: obs-peer [-A IPV4ADDR] [-p PORT] [-S STATSFILE]\n");
                return 2;
        }
        p.observers = calloc(MAX_OBSERVERS, sizeof(Observer));
        p.slots = calloc(1u << TABLE_BITS, sizeof(uint32_t));
        if (!p.observers || !p.slots)
                return 1;
        p.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (p.fd < 0 || bind(p.fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                perror("obs-peer: bind");
                return 1;
        }
        /* 10,000 registrations may arrive at once; the larger buffer needs CAP_NET_ADMIN */
        if (setsockopt(p.fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
                (void) setsockopt(p.fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        if (setsockopt(p.fd, IPPROTO_IP, IP_RECVERR, &(int){1}, sizeof(int)) < 0) {
                perror("obs-peer: IP_RECVERR");
                return 1;
        }
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);

        start = now_ns();
        next_tick = start + NSEC_PER_SEC;
        write_stats(&p);
        while (!stop) {
                uint64_t now = now_ns();
                struct pollfd pfd = {.fd = p.fd, .events = POLLIN};

                if (now >= next_tick) {
                        p.tick_ns = now;
                        notify_all(&p, &batch);
                        write_stats(&p);
                        next_tick += NSEC_PER_SEC;
                        continue;
                }
                if (poll(&pfd, 1, (int) ((next_tick - now + 999999) / 1000000)) > 0) {
                        if (pfd.revents & POLLERR)
                                drain_errors(&p);
                        drain(&p, &batch);
                }
        }
        fprintf(stderr,
                "obs-peer: %u ticks, %u observers, %llu notifications, %llu registrations\n",
                p.ticks, p.n_observers, (unsigned long long) p.sent,
                (unsigned long long) p.registrations);
        return 0;
}
