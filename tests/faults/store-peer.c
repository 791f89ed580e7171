/* SPDX-License-Identifier: MIT */
/*
 * store-peer: a small CoAP server that deduplicates as RFC 7252 §4.5 asks, for fault-injection
 * tests whose path duplicates, delays and reorders datagrams (libcoap 4.3.1's coap-server runs
 * its handler again for a retransmitted request, which corrupts a Block1 upload).
 *
 *   store-peer [--port=N] [--lifetime=SEC] [--stats=FILE]
 *
 * One resource, /store, holding one body:
 *   PUT  stores it. Block1 uploads are reassembled per source, Request-Tag and token: 2.31
 *        Continue with the Block1 option for each block but the last, 2.04 Changed for the
 *        last, 4.08 Request Entity Incomplete for a block that does not continue the upload.
 *   GET  serves it with Block2 (the request's SZX, 1024 bytes without one) and an ETag that
 *        changes with every stored body.
 * A request whose (source, message ID) was seen within EXCHANGE_LIFETIME is not processed
 * again: a CON gets the first response re-sent, a NON is dropped.
 *
 * Listens on 127.0.0.1 only. Prints the port on stdout ("PORT\n"), then runs until
 * SIGTERM/SIGINT or the lifetime (default 300 s). SIGUSR1 writes the counters to the stats file;
 * at exit they go to the stats file and stderr as one line of key=value pairs.
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

#include "coap-msg.h"
#include "coap-option.h"
#include "internal/macro.h"
#include "stats-file.h"

#define MAX_DATAGRAM      2048
#define RESPONSE_MAX      1152 /* header, token, ETag, Content-Format, Block, Size2, 1024 bytes */
#define SEEN_MAX          4096 /* exchanges remembered; beyond it the oldest is forgotten */
#define UPLOADS_MAX       8
#define BODY_MAX          (8u << 20)
#define REQUEST_TAG_MAX   8
/* RFC 7252 §4.8.2 with the default transmission parameters. */
#define EXCHANGE_LIFETIME (247 * USEC_PER_SEC)
#define STORE_PATH        "store"
#define CODE_BAD_OPTION   0x82
#define CODE_NOT_ALLOWED  0x85

typedef struct Seen {
        struct sockaddr_in src;
        uint16_t mid;
        uint64_t expires;
        size_t len; /* 0: nothing to re-send (a NON) */
        uint8_t response[RESPONSE_MAX];
} Seen;

typedef struct Upload {
        bool used;
        struct sockaddr_in src;
        uint8_t tag[REQUEST_TAG_MAX], tag_len;
        uint8_t token[COAP_TOKEN_MAX], token_len;
        uint8_t *data;
        size_t len, allocated;
        uint64_t touched;
} Upload;

typedef struct Stats {
        uint64_t received, malformed, duplicates, blocks, continues, changed, incomplete, rejected,
                gets;
} Stats;

typedef struct Peer {
        int fd;
        Seen seen[SEEN_MAX]; /* a ring */
        size_t n_seen, next_seen;
        Upload uploads[UPLOADS_MAX];
        uint8_t *body;
        size_t body_len;
        uint32_t etag;
        uint16_t next_mid;
        Stats stats;
        const char *stats_path;
} Peer;

/* What one request is answered with. */
typedef struct Reply {
        uint8_t code;
        bool has_block1, has_block2;
        CoapBlock block1, block2;
        const uint8_t *payload;
        size_t payload_len;
} Reply;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static bool addr_equal(const struct sockaddr_in *a, const struct sockaddr_in *b) {
        return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static void stats_format(const void *userdata, FILE *f) {
        const Peer *p = userdata;
        const Stats *s = &p->stats;

        fprintf(f,
                "received=%" PRIu64 " malformed=%" PRIu64 " duplicates=%" PRIu64 " blocks=%" PRIu64
                " continues=%" PRIu64 " changed=%" PRIu64 " incomplete=%" PRIu64
                " rejected=%" PRIu64 " gets=%" PRIu64 " stored=%zu\n",
                s->received, s->malformed, s->duplicates, s->blocks, s->continues, s->changed,
                s->incomplete, s->rejected, s->gets, p->body_len);
}

static Seen *peer_find_seen(Peer *p, const struct sockaddr_in *src, uint16_t mid, uint64_t now) {
        for (size_t i = 0; i < p->n_seen; i++) {
                Seen *s = &p->seen[i];

                if (s->mid == mid && s->expires > now && addr_equal(&s->src, src))
                        return s;
        }
        return NULL;
}

static void peer_remember(Peer *p, const struct sockaddr_in *src, uint16_t mid,
                          const uint8_t *response, size_t len, uint64_t now) {
        Seen *s = &p->seen[p->next_seen];

        *s = (Seen){.src = *src, .mid = mid, .expires = now + EXCHANGE_LIFETIME, .len = len};
        memcpy(s->response, response, len);
        p->next_seen = (p->next_seen + 1) % SEEN_MAX;
        p->n_seen = MIN(p->n_seen + 1, (size_t) SEEN_MAX);
}

static void upload_reset(Upload *u) {
        free(u->data);
        *u = (Upload){};
}

/* The upload of (source, Request-Tag, token); with create, a fresh one (the least recently
 * used slot when all are taken). */
static Upload *peer_upload(Peer *p, const struct sockaddr_in *src, const CoapMsg *m,
                           const CoapOption *tag, bool create, uint64_t now) {
        Upload *lru = &p->uploads[0];

        for (size_t i = 0; i < UPLOADS_MAX; i++) {
                Upload *u = &p->uploads[i];

                if (u->used && addr_equal(&u->src, src) && u->tag_len == tag->len &&
                    memcmp(u->tag, tag->value, tag->len) == 0 && u->token_len == m->token_len &&
                    memcmp(u->token, m->token, m->token_len) == 0) {
                        if (!create)
                                return u;
                        lru = u;
                        break;
                }
                if (!u->used || (lru->used && u->touched < lru->touched))
                        lru = u;
        }
        if (!create)
                return NULL;
        upload_reset(lru);
        lru->used = true;
        lru->src = *src;
        lru->tag_len = (uint8_t) tag->len;
        memcpy(lru->tag, tag->value, tag->len);
        lru->token_len = m->token_len;
        memcpy(lru->token, m->token, m->token_len);
        lru->touched = now;
        return lru;
}

static int upload_append(Upload *u, const uint8_t *data, size_t len) {
        if (len > BODY_MAX - u->len)
                return -EFBIG;
        if (u->len + len > u->allocated) {
                size_t n = MAX(u->allocated * 2, u->len + len);
                uint8_t *d = realloc(u->data, MIN(n, (size_t) BODY_MAX));

                if (!d)
                        return -ENOMEM;
                u->data = d;
                u->allocated = MIN(n, (size_t) BODY_MAX);
        }
        if (len > 0)
                memcpy(u->data + u->len, data, len);
        u->len += len;
        return 0;
}

static void peer_store(Peer *p, uint8_t *data, size_t len) {
        free(p->body);
        p->body = data;
        p->body_len = len;
        p->etag++;
}

static void peer_put(Peer *p, const struct sockaddr_in *src, const CoapMsg *m, uint64_t now,
                     Reply *r) {
        CoapOption opt, tag = {.value = (const uint8_t *) ""};
        CoapBlock blk;
        size_t size;
        Upload *u;

        if (!coap_msg_find_option(m, COAP_OPTION_BLOCK1, &opt)) {
                uint8_t *copy = malloc(m->payload_len ?: 1);

                if (!copy) {
                        r->code = COAP_CODE_INTERNAL_SERVER_ERROR;
                        return;
                }
                memcpy(copy, m->payload ?: (const uint8_t *) "", m->payload_len);
                peer_store(p, copy, m->payload_len);
                p->stats.changed++;
                r->code = COAP_CODE_CHANGED;
                return;
        }
        if (coap_block_decode(opt.value, opt.len, &blk) < 0 ||
            (coap_msg_find_option(m, COAP_OPTION_REQUEST_TAG, &tag) && tag.len > REQUEST_TAG_MAX)) {
                r->code = COAP_CODE_BAD_REQUEST;
                return;
        }
        p->stats.blocks++;
        size = coap_szx_to_size(blk.szx);
        if (blk.more && m->payload_len != size) {
                r->code = COAP_CODE_BAD_REQUEST;
                return;
        }
        u = peer_upload(p, src, m, &tag, blk.num == 0, now);
        /* RFC 7959 §2.9.2: a block that does not continue what this upload holds. */
        if (!u || (size_t) blk.num * size != u->len) {
                p->stats.incomplete++;
                r->code = COAP_CODE_REQUEST_ENTITY_INCOMPLETE;
                return;
        }
        u->touched = now;
        if (upload_append(u, m->payload, m->payload_len) < 0) {
                upload_reset(u);
                r->code = COAP_CODE_REQUEST_ENTITY_TOO_LARGE;
                return;
        }
        r->has_block1 = true;
        r->block1 = blk;
        if (blk.more) {
                p->stats.continues++;
                r->code = COAP_CODE_CONTINUE;
                return;
        }
        peer_store(p, TAKE_PTR(u->data), u->len);
        upload_reset(u);
        p->stats.changed++;
        r->code = COAP_CODE_CHANGED;
}

static void peer_get(Peer *p, const CoapMsg *m, Reply *r) {
        CoapBlock blk = {.szx = COAP_BLOCK_SZX_MAX};
        CoapOption opt;
        size_t size, offset;

        p->stats.gets++;
        if (coap_msg_find_option(m, COAP_OPTION_BLOCK2, &opt) &&
            coap_block_decode(opt.value, opt.len, &blk) < 0) {
                r->code = COAP_CODE_BAD_REQUEST;
                return;
        }
        size = coap_szx_to_size(blk.szx);
        offset = (size_t) blk.num * size;
        if (offset > p->body_len || (offset == p->body_len && offset > 0)) {
                r->code = COAP_CODE_BAD_REQUEST;
                return;
        }
        r->code = COAP_CODE_CONTENT;
        r->payload = p->body ? p->body + offset : NULL;
        r->payload_len = MIN(size, p->body_len - offset);
        r->has_block2 = true;
        r->block2 =
                (CoapBlock){.num = blk.num, .more = offset + size < p->body_len, .szx = blk.szx};
}

/* 0 when the request is for /store and carries no critical option this server ignores. */
static uint8_t request_check(const CoapMsg *m) {
        CoapOptionIter it;
        CoapOption o;
        unsigned segments = 0;
        bool found = false;

        coap_option_iter_init(&it, m);
        while (coap_option_iter_next(&it, &o))
                switch (o.number) {
                case COAP_OPTION_URI_PATH:
                        segments++;
                        found = o.len == strlen(STORE_PATH) &&
                                memcmp(o.value, STORE_PATH, o.len) == 0;
                        break;
                case COAP_OPTION_URI_HOST:
                case COAP_OPTION_URI_PORT:
                case COAP_OPTION_BLOCK1:
                case COAP_OPTION_BLOCK2:
                        break;
                default:
                        if (COAP_OPTION_IS_CRITICAL(o.number))
                                return CODE_BAD_OPTION;
                }
        return segments == 1 && found ? 0 : COAP_CODE_NOT_FOUND;
}

static int reply_build(Peer *p, const CoapMsg *m, const Reply *r, uint8_t *buf, size_t *ret_len) {
        bool con = m->type == COAP_TYPE_CON;
        uint8_t etag[4], b1[3], b2[3];
        CoapBuilder b;
        int n;

        coap_builder_init(&b, buf, RESPONSE_MAX, con ? COAP_TYPE_ACK : COAP_TYPE_NON, r->code,
                          con ? m->mid : p->next_mid++, m->token, m->token_len);
        if (r->code == COAP_CODE_CONTENT) {
                etag[0] = (uint8_t) (p->etag >> 24);
                etag[1] = (uint8_t) (p->etag >> 16);
                etag[2] = (uint8_t) (p->etag >> 8);
                etag[3] = (uint8_t) p->etag;
                (void) coap_builder_add_option(&b, COAP_OPTION_ETAG, etag, sizeof(etag));
                (void) coap_builder_add_uint_option(&b, COAP_OPTION_CONTENT_FORMAT,
                                                    COAP_CONTENT_FORMAT_OCTET_STREAM);
        }
        if (r->has_block2) {
                n = coap_block_encode(&r->block2, b2);
                if (n < 0)
                        return n;
                (void) coap_builder_add_option(&b, COAP_OPTION_BLOCK2, b2, (size_t) n);
        }
        if (r->has_block1) {
                n = coap_block_encode(&r->block1, b1);
                if (n < 0)
                        return n;
                (void) coap_builder_add_option(&b, COAP_OPTION_BLOCK1, b1, (size_t) n);
        }
        if (r->has_block2 && r->block2.num == 0)
                (void) coap_builder_add_uint_option(&b, COAP_OPTION_SIZE2, (uint32_t) p->body_len);
        (void) coap_builder_set_payload(&b, r->payload, r->payload_len);
        return coap_builder_finish(&b, ret_len);
}

static void peer_send(Peer *p, const struct sockaddr_in *dst, const uint8_t *buf, size_t len) {
        (void) sendto(p->fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *) dst, sizeof(*dst));
}

static void peer_handle(Peer *p, const struct sockaddr_in *src, const uint8_t *buf, size_t len,
                        uint64_t now) {
        uint8_t out[RESPONSE_MAX];
        size_t out_len = 0;
        Reply r = {};
        CoapMsg m;
        Seen *s;

        p->stats.received++;
        if (coap_msg_parse(buf, len, &m, NULL) < 0) {
                p->stats.malformed++;
                return;
        }
        if (m.code == COAP_CODE_EMPTY) {
                /* A CoAP ping gets its RST; an ACK or RST from a client needs nothing. */
                if (m.type == COAP_TYPE_CON) {
                        CoapBuilder b;

                        coap_builder_init(&b, out, sizeof(out), COAP_TYPE_RST, COAP_CODE_EMPTY,
                                          m.mid, NULL, 0);
                        if (coap_builder_finish(&b, &out_len) == 0)
                                peer_send(p, src, out, out_len);
                }
                return;
        }
        if (COAP_CODE_CLASS(m.code) != 0 || (m.type != COAP_TYPE_CON && m.type != COAP_TYPE_NON)) {
                p->stats.malformed++;
                return;
        }
        s = peer_find_seen(p, src, m.mid, now);
        if (s) {
                p->stats.duplicates++;
                if (s->len > 0)
                        peer_send(p, src, s->response, s->len);
                return;
        }

        r.code = request_check(&m);
        if (r.code == 0) {
                if (m.code == COAP_CODE_PUT)
                        peer_put(p, src, &m, now, &r);
                else if (m.code == COAP_CODE_GET)
                        peer_get(p, &m, &r);
                else
                        r.code = CODE_NOT_ALLOWED;
        }
        if (COAP_CODE_CLASS(r.code) != 2)
                p->stats.rejected++;
        if (reply_build(p, &m, &r, out, &out_len) < 0) {
                p->stats.malformed++;
                return;
        }
        peer_send(p, src, out, out_len);
        peer_remember(p, src, m.mid, out, m.type == COAP_TYPE_CON ? out_len : 0, now);
}

static int peer_run(Peer *p, int sig_fd, uint64_t lifetime_usec) {
        static uint8_t buf[MAX_DATAGRAM];
        uint64_t end = now_usec() + lifetime_usec;

        for (;;) {
                struct pollfd pfd[2] = {
                        {.fd = sig_fd, .events = POLLIN},
                        {.fd = p->fd, .events = POLLIN},
                };
                uint64_t now = now_usec();

                if (now >= end)
                        return 0;
                if (poll(pfd, ELEMENTSOF(pfd), (int) MIN((end - now + 999) / 1000, 1000u)) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (pfd[0].revents & POLLIN) {
                        struct signalfd_siginfo si;

                        if (read(sig_fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                                if (si.ssi_signo != SIGUSR1)
                                        return 0;
                                stats_file_write(p->stats_path, stats_format, p);
                        }
                }
                for (;;) {
                        struct sockaddr_in src;
                        socklen_t src_len = sizeof(src);
                        ssize_t n = recvfrom(p->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
                                             (struct sockaddr *) &src, &src_len);

                        if (n < 0)
                                break;
                        if ((size_t) n > sizeof(buf) || src.sin_family != AF_INET) {
                                p->stats.received++;
                                p->stats.malformed++;
                                continue;
                        }
                        peer_handle(p, &src, buf, (size_t) n, now_usec());
                }
        }
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end != '\0' || end == s || s[0] == '-')
                return -EINVAL;
        *ret = v;
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"port", required_argument, NULL, 'p'},
                {"lifetime", required_argument, NULL, 't'},
                {"stats", required_argument, NULL, 'S'},
                {},
        };
        static Peer peer; /* large: keep it off the stack */
        Peer *p = &peer;
        struct sockaddr_in addr = {.sin_family = AF_INET};
        socklen_t addr_len = sizeof(addr);
        uint64_t port = 0, lifetime = 300;
        sigset_t mask;
        int c, sig_fd, rc;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                int e = 0;

                switch (c) {
                case 'p':
                        e = parse_u64(optarg, &port);
                        break;
                case 't':
                        e = parse_u64(optarg, &lifetime);
                        break;
                case 'S':
                        p->stats_path = optarg;
                        break;
                default:
                        e = -EINVAL;
                }
                if (e < 0)
                        break;
        }
        if (c >= 0 || optind != argc || port > 65535 || lifetime == 0 || lifetime > 3600) {
                fputs("Usage: store-peer [--port=N] [--lifetime=SEC] [--stats=FILE]\n", stderr);
                return EXIT_FAILURE;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return EXIT_FAILURE;
        sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons((uint16_t) port);
        if (sig_fd < 0 || p->fd < 0 || bind(p->fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 ||
            getsockname(p->fd, (struct sockaddr *) &addr, &addr_len) < 0) {
                perror("store-peer");
                safe_close(p->fd);
                safe_close(sig_fd);
                return EXIT_FAILURE;
        }
        printf("%u\n", ntohs(addr.sin_port));
        fflush(stdout);

        rc = peer_run(p, sig_fd, lifetime * USEC_PER_SEC);
        stats_file_write(p->stats_path, stats_format, p);
        fputs("store-peer: ", stderr);
        stats_format(p, stderr);
        for (size_t i = 0; i < UPLOADS_MAX; i++)
                upload_reset(&p->uploads[i]);
        free(p->body);
        safe_close(p->fd);
        safe_close(sig_fd);
        return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
