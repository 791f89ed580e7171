/* SPDX-License-Identifier: MIT */
/*
 * bad-peer: a UDP CoAP peer that misbehaves in one way, for fault-injection tests.
 *
 *   bad-peer MODE [--listen=127.0.0.1:0] [--stats=FILE] [--lifetime=SEC]
 *
 * Every request (a CON or NON message with a request code) gets the answer of MODE:
 *
 *   garbage          a zero-length datagram, 16 bytes of noise with CoAP version 0, a 3-byte runt
 *                    and a version-1 CON header with the reserved token length 9
 *   rst              an RST with the request's message ID
 *   wrong-token      a separate CON 2.05 with a new message ID and a token nobody asked for
 *   wrong-token-ack  a piggybacked ACK 2.05 with the request's message ID but another token
 *   oversize         a piggybacked 2.05 with the right token, 65507 bytes in all (the largest
 *                    UDP/IPv4 datagram), payload bytes i % 251
 *   ok-then-die      a piggybacked 2.05 "ok", then the peer exits
 *   ack-then-silent  an empty ACK, and never the separate response
 *   bad-block        a piggybacked 2.05 with Block2 NUM 3, M 1, SZX 6 to a request that asked
 *                    for no block (a block-wise body that does not start at 0)
 *   lost-ack         an empty ACK, a separate CON 2.05 "sep", and the same datagram again 300 ms
 *                    later, as if our ACK had been lost (RFC 7252 §4.5: it must be ACKed again)
 *   notify           a piggybacked 2.05 with Observe 1, then a CON notification every 200 ms
 *                    (Observe 2, 3, ...) until one is answered with RST, at most 25
 *   silent           nothing
 *
 * Prints the listening port on stdout ("PORT\n"). After every datagram it rewrites the stats
 * file: requests, sent, rst_received (RSTs for messages we sent as CON), ack_received (empty
 * ACKs for them), other_received, empty_received (empty messages but those RSTs). Exits on SIGTERM
 * or after the lifetime (default 120 s).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal/macro.h"
#include "stats-file.h"

#define OVERSIZE_DATAGRAM 65507
#define MAX_DATAGRAM      65535
#define TOKEN_MAX         8
#define SENT_MIDS         256
#define LOST_ACK_MSEC     300
#define NOTIFY_MSEC       200
#define NOTIFY_MAX        25

typedef enum Mode {
        MODE_GARBAGE,
        MODE_RST,
        MODE_WRONG_TOKEN,
        MODE_WRONG_TOKEN_ACK,
        MODE_OVERSIZE,
        MODE_OK_THEN_DIE,
        MODE_ACK_THEN_SILENT,
        MODE_BAD_BLOCK,
        MODE_LOST_ACK,
        MODE_NOTIFY,
        MODE_SILENT,
        _MODE_MAX,
} Mode;

static const char *const mode_names[_MODE_MAX] = {
        [MODE_GARBAGE] = "garbage",
        [MODE_RST] = "rst",
        [MODE_WRONG_TOKEN] = "wrong-token",
        [MODE_WRONG_TOKEN_ACK] = "wrong-token-ack",
        [MODE_OVERSIZE] = "oversize",
        [MODE_OK_THEN_DIE] = "ok-then-die",
        [MODE_ACK_THEN_SILENT] = "ack-then-silent",
        [MODE_BAD_BLOCK] = "bad-block",
        [MODE_LOST_ACK] = "lost-ack",
        [MODE_NOTIFY] = "notify",
        [MODE_SILENT] = "silent",
};

typedef struct Request {
        uint8_t type;
        uint8_t code;
        uint16_t mid;
        uint8_t token[TOKEN_MAX];
        uint8_t tkl;
} Request;

typedef struct Peer {
        int fd;
        Mode mode;
        const char *stats_path;
        struct sockaddr_storage src;
        socklen_t src_len;
        uint16_t next_mid;
        uint16_t con_mids[SENT_MIDS]; /* message IDs of the CONs we sent, a ring */
        size_t n_con_mids;
        uint64_t due_msec; /* CLOCK_MONOTONIC: when peer_on_timer() runs; 0 never */
        Request last;      /* the request the timer works for */
        uint8_t resend[256];
        size_t resend_len;
        uint32_t observe;
        uint64_t requests, sent, rst_received, ack_received, other_received, empty_received;
} Peer;

static uint8_t out[MAX_DATAGRAM];

static void stats_format(const void *userdata, FILE *f) {
        const Peer *p = userdata;

        fprintf(f,
                "requests=%" PRIu64 " sent=%" PRIu64 " rst_received=%" PRIu64
                " ack_received=%" PRIu64 " other_received=%" PRIu64 " empty_received=%" PRIu64 "\n",
                p->requests, p->sent, p->rst_received, p->ack_received, p->other_received,
                p->empty_received);
}

static void peer_send(Peer *p, const uint8_t *buf, size_t len) {
        if (sendto(p->fd, buf, len, 0, (struct sockaddr *) &p->src, p->src_len) >= 0)
                p->sent++;
}

/* Header (version 1) and token; returns the length written to out. */
static size_t put_header(uint8_t type, uint8_t code, uint16_t mid, const uint8_t *token,
                         uint8_t tkl) {
        out[0] = (uint8_t) (0x40 | type << 4 | tkl);
        out[1] = code;
        out[2] = (uint8_t) (mid >> 8);
        out[3] = (uint8_t) mid;
        if (tkl > 0)
                memcpy(out + 4, token, tkl);
        return 4 + (size_t) tkl;
}

static size_t put_payload(size_t k, const void *payload, size_t len) {
        out[k++] = 0xff;
        memcpy(out + k, payload, len);
        return k + len;
}

/* A token of the same length that differs from the request's (length 1 if it had none). */
static uint8_t other_token(const Request *req, uint8_t *ret) {
        uint8_t tkl = req->tkl ? req->tkl : 1;

        for (uint8_t i = 0; i < tkl; i++)
                ret[i] = (uint8_t) ((i < req->tkl ? req->token[i] : 0) ^ 0xa5);
        return tkl;
}

static uint64_t now_msec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* A CON notification of the last request: Observe 6 (delta 6, length 3), a new message ID. */
static void peer_notify(Peer *p) {
        uint8_t observe[4] = {0x63, (uint8_t) (p->observe >> 16), (uint8_t) (p->observe >> 8),
                              (uint8_t) p->observe};
        char text[16];
        size_t k = put_header(0, 0x45, p->next_mid, p->last.token, p->last.tkl);

        memcpy(out + k, observe, sizeof(observe));
        k = put_payload(k + sizeof(observe), text,
                        (size_t) snprintf(text, sizeof(text), "n%" PRIu32, p->observe));
        p->observe++;
        p->con_mids[p->n_con_mids++ % SENT_MIDS] = p->next_mid++;
        peer_send(p, out, k);
}

static void peer_on_timer(Peer *p) {
        p->due_msec = 0;
        if (p->mode == MODE_LOST_ACK) {
                peer_send(p, p->resend, p->resend_len);
                return;
        }
        /* MODE_NOTIFY: until the client rejects one. */
        if (p->rst_received > 0 || p->observe > NOTIFY_MAX)
                return;
        peer_notify(p);
        p->due_msec = now_msec() + NOTIFY_MSEC;
}

static void peer_answer(Peer *p, const Request *req) {
        uint8_t ack = req->type == 0 ? 2 : 1; /* ACK to a CON, NON to a NON */
        uint16_t mid = req->type == 0 ? req->mid : p->next_mid++;
        uint8_t token[TOKEN_MAX];
        size_t k;

        switch (p->mode) {
        case MODE_GARBAGE: {
                static const uint8_t noise[16] = {0x12, 0x9f, 0x00, 0xee, 0x31, 0x07, 0xc4, 0x5a,
                                                  0x66, 0x81, 0x2b, 0xd0, 0x3c, 0x19, 0xfe, 0x70};
                static const uint8_t runt[3] = {0x40, 0x45, 0x00};

                peer_send(p, out, 0);
                peer_send(p, noise, sizeof(noise));
                peer_send(p, runt, sizeof(runt));
                /* CON, TKL 9 (reserved): a format error that deserves an RST (RFC 7252 §3). */
                k = put_header(0, 0x45, p->next_mid, req->token, 0);
                out[0] |= 9;
                memset(out + k, 0x5c, 9);
                k += 9;
                p->con_mids[p->n_con_mids++ % SENT_MIDS] = p->next_mid++;
                peer_send(p, out, k);
                return;
        }
        case MODE_RST:
                k = put_header(3, 0, req->mid, NULL, 0);
                peer_send(p, out, k);
                return;
        case MODE_WRONG_TOKEN: {
                uint8_t tkl = other_token(req, token);

                k = put_header(0, 0x45, p->next_mid, token, tkl);
                k = put_payload(k, "wrong", 5);
                p->con_mids[p->n_con_mids++ % SENT_MIDS] = p->next_mid++;
                peer_send(p, out, k);
                return;
        }
        case MODE_WRONG_TOKEN_ACK: {
                uint8_t tkl = other_token(req, token);

                k = put_header(ack, 0x45, mid, token, tkl);
                k = put_payload(k, "wrong", 5);
                peer_send(p, out, k);
                return;
        }
        case MODE_OVERSIZE:
                k = put_header(ack, 0x45, mid, req->token, req->tkl);
                out[k++] = 0xff;
                for (size_t i = 0; k < OVERSIZE_DATAGRAM; i++)
                        out[k++] = (uint8_t) (i % 251);
                peer_send(p, out, k);
                return;
        case MODE_OK_THEN_DIE:
                k = put_header(ack, 0x45, mid, req->token, req->tkl);
                k = put_payload(k, "ok", 2);
                peer_send(p, out, k);
                stats_file_write(p->stats_path, stats_format, p);
                exit(EXIT_SUCCESS);
        case MODE_ACK_THEN_SILENT:
                if (req->type == 0) {
                        k = put_header(2, 0, req->mid, NULL, 0);
                        peer_send(p, out, k);
                }
                return;
        case MODE_BAD_BLOCK: {
                /* Block2 (23): delta 13 + 10, length 1; NUM 3, M 1, SZX 6. */
                static const uint8_t block2[3] = {0xd1, 0x0a, 3 << 4 | 1 << 3 | 6};
                uint8_t body[1024];

                memset(body, 'b', sizeof(body));
                k = put_header(ack, 0x45, mid, req->token, req->tkl);
                memcpy(out + k, block2, sizeof(block2));
                k = put_payload(k + sizeof(block2), body, sizeof(body));
                peer_send(p, out, k);
                return;
        }
        case MODE_LOST_ACK:
                if (req->type != 0)
                        return;
                k = put_header(2, 0, req->mid, NULL, 0);
                peer_send(p, out, k);
                k = put_header(0, 0x45, p->next_mid, req->token, req->tkl);
                k = put_payload(k, "sep", 3);
                p->con_mids[p->n_con_mids++ % SENT_MIDS] = p->next_mid++;
                memcpy(p->resend, out, k);
                p->resend_len = k;
                peer_send(p, out, k);
                p->due_msec = now_msec() + LOST_ACK_MSEC;
                return;
        case MODE_NOTIFY: {
                static const uint8_t observe1[2] = {0x61, 1}; /* Observe (6) = 1 */

                k = put_header(ack, 0x45, mid, req->token, req->tkl);
                memcpy(out + k, observe1, sizeof(observe1));
                k = put_payload(k + sizeof(observe1), "n1", 2);
                peer_send(p, out, k);
                p->last = *req;
                p->observe = 2;
                p->due_msec = now_msec() + NOTIFY_MSEC;
                return;
        }
        case MODE_SILENT:
        case _MODE_MAX:
                return;
        }
}

static bool mid_was_con(const Peer *p, uint16_t mid) {
        for (size_t i = 0; i < MIN(p->n_con_mids, (size_t) SENT_MIDS); i++)
                if (p->con_mids[i] == mid)
                        return true;
        return false;
}

static void peer_on_datagram(Peer *p, const uint8_t *buf, size_t len) {
        Request req;

        if (len < 4 || (buf[0] >> 6) != 1 || (buf[0] & 0x0f) > TOKEN_MAX ||
            len < 4 + (size_t) (buf[0] & 0x0f)) {
                p->other_received++;
                return;
        }
        req = (Request){
                .type = (uint8_t) ((buf[0] >> 4) & 3),
                .code = buf[1],
                .mid = (uint16_t) (buf[2] << 8 | buf[3]),
                .tkl = (uint8_t) (buf[0] & 0x0f),
        };
        memcpy(req.token, buf + 4, req.tkl);

        if (req.type == 3) {
                if (mid_was_con(p, req.mid))
                        p->rst_received++;
                else
                        p->other_received++;
                return;
        }
        if (req.code == 0) {
                if (req.type == 2 && mid_was_con(p, req.mid))
                        p->ack_received++;
                else
                        p->empty_received++;
                return;
        }
        if (req.type > 1 || (req.code >> 5) != 0) {
                p->other_received++;
                return;
        }
        p->requests++;
        peer_answer(p, &req);
}

static int parse_listen(const char *s, struct sockaddr_in *ret) {
        char host[INET_ADDRSTRLEN];
        const char *colon = strrchr(s, ':');
        char *end;
        unsigned long port;

        if (!colon || (size_t) (colon - s) >= sizeof(host))
                return -EINVAL;
        memcpy(host, s, (size_t) (colon - s));
        host[colon - s] = '\0';
        port = strtoul(colon + 1, &end, 10);
        if (*end != '\0' || end == colon + 1 || port > 65535)
                return -EINVAL;
        *ret = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
        if (inet_pton(AF_INET, host, &ret->sin_addr) != 1)
                return -EINVAL;
        /* Loopback only: this tool must never talk to a real network. */
        return (ntohl(ret->sin_addr.s_addr) >> 24) == 127 ? 0 : -EADDRNOTAVAIL;
}

static void usage(FILE *f) {
        fputs("Usage: bad-peer MODE [--listen=127.0.0.1:PORT] [--stats=FILE] [--lifetime=SEC]\n"
              "Modes:",
              f);
        for (int m = 0; m < _MODE_MAX; m++)
                fprintf(f, " %s", mode_names[m]);
        fputc('\n', f);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"listen", required_argument, NULL, 'l'},
                {"stats", required_argument, NULL, 'S'},
                {"lifetime", required_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        static uint8_t buf[MAX_DATAGRAM];
        Peer peer = {.fd = -EBADF, .mode = _MODE_MAX, .next_mid = 0x7000};
        struct sockaddr_in addr = {};
        socklen_t addr_len = sizeof(addr);
        unsigned long lifetime = 120;
        int c;

        (void) parse_listen("127.0.0.1:0", &addr);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                char *end;

                switch (c) {
                case 'l':
                        if (parse_listen(optarg, &addr) < 0) {
                                fprintf(stderr, "bad-peer: bad --listen (loopback only): %s\n",
                                        optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case 'S':
                        peer.stats_path = optarg;
                        break;
                case 't':
                        lifetime = strtoul(optarg, &end, 10);
                        if (*end != '\0' || lifetime == 0 || lifetime > 3600) {
                                usage(stderr);
                                return EXIT_FAILURE;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_SUCCESS;
                default:
                        usage(stderr);
                        return EXIT_FAILURE;
                }
        }
        if (optind + 1 != argc) {
                usage(stderr);
                return EXIT_FAILURE;
        }
        for (int m = 0; m < _MODE_MAX; m++)
                if (strcmp(argv[optind], mode_names[m]) == 0)
                        peer.mode = (Mode) m;
        if (peer.mode == _MODE_MAX) {
                usage(stderr);
                return EXIT_FAILURE;
        }

        peer.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (peer.fd < 0 || bind(peer.fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 ||
            getsockname(peer.fd, (struct sockaddr *) &addr, &addr_len) < 0) {
                perror("bad-peer: bind");
                return EXIT_FAILURE;
        }
        printf("%u\n", ntohs(addr.sin_port));
        fflush(stdout);
        stats_file_write(peer.stats_path, stats_format, &peer);
        /* SIGALRM's default action ends the process: the lifetime bound needs nothing else. */
        alarm((unsigned) lifetime);

        for (;;) {
                struct pollfd pfd = {.fd = peer.fd, .events = POLLIN};
                uint64_t now = now_msec();
                ssize_t n;

                if (peer.due_msec > 0 && peer.due_msec <= now) {
                        peer_on_timer(&peer);
                        stats_file_write(peer.stats_path, stats_format, &peer);
                        continue;
                }
                if (poll(&pfd, 1, peer.due_msec > 0 ? (int) (peer.due_msec - now) : -1) == 0)
                        continue;
                peer.src_len = sizeof(peer.src);
                n = recvfrom(peer.fd, buf, sizeof(buf), 0, (struct sockaddr *) &peer.src,
                             &peer.src_len);
                if (n < 0) {
                        if (errno == EINTR || errno == ECONNREFUSED)
                                continue;
                        perror("bad-peer: recvfrom");
                        return EXIT_FAILURE;
                }
                peer_on_datagram(&peer, buf, (size_t) n);
                stats_file_write(peer.stats_path, stats_format, &peer);
        }
}
