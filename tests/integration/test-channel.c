/* SPDX-License-Identifier: MIT */
/* The data channel end to end (Manager.OpenChannel(), wire/channel-wire.h), spoken with plain
 * sd-bus and the frame codec against the real daemon and coap-server-gnutls: requests and their
 * events, refusals with their error names, ownership, cancellation, broken framing and the
 * channel's life next to its caller's. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-helper.h"
#include "channel-wire.h"
#include "check-main.h"
#include "internal/bus-api.h"
#include "internal/request-rules.h"
#include "net-helper.h"

#define WAIT_USEC  (10 * USEC_PER_SEC)
/* How long "nothing comes" is watched for. */
#define QUIET_USEC (300 * USEC_PER_MSEC)
/* Counters settle within one loop iteration, idle sockets within ~100 ms; valgrind is slow. */
#define AWAIT_USEC (3 * USEC_PER_SEC)

#define FINAL_FLAGS (CHANNEL_EVENT_FINAL | CHANNEL_EVENT_LAST_BLOCK)

/* The daemon takes at most this many fds per message (daemon/channel/channel.c). */

#define COAP_OPTION_URI_PATH 11
#define COAP_TYPE_NON        1
#define COAP_TYPE_ACK        2

/* One decoded EVENT frame, owning its strings. */
typedef struct Event {
        uint64_t client, tag;
        int32_t result;
        uint32_t flags;
        uint64_t offset;
        uint8_t type;
        uint32_t observe;
        char *error_name;
        char *error_message; /* CHANNEL_EVENT_ERROR_MESSAGE */
        uint8_t *payload;    /* NUL-terminated */
        size_t payload_len;
        /* The message section (CHANNEL_EVENT_MESSAGE). */
        uint8_t code, token_len;
        uint8_t *options;
        size_t options_len;
} Event;

/* Our end of a data channel, with the events read from it but not taken yet. */
typedef struct Chan {
        TestBus *bus; /* dispatched while waiting, so that the daemon's pings are answered */
        int fd;
        Event *queue;
        size_t n_queue;
        bool eof;
} Chan;

static void event_done(Event *e) {
        free(e->error_name);
        free(e->error_message);
        free(e->payload);
        free(e->options);
        *e = (Event){};
}

static void events_free(Event *e, size_t n) {
        for (size_t i = 0; i < n; i++)
                event_done(&e[i]);
        free(e);
}

/* Manager.OpenChannel() on b: our end of the channel, or a negative errno with error set. */
static int open_channel(TestBus *b, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int fd, r;

        r = sd_bus_call_method(b->bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                               COAPCLIENTD_MANAGER_IFACE, "OpenChannel", error, &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return r;
        /* The message owns its fd. */
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        return fd < 0 ? -errno : fd;
}

static void chan_open(Chan *ch, TestBus *b) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        *ch = (Chan){.bus = b};
        ch->fd = open_channel(b, &error);
        ck_assert_msg(ch->fd >= 0, "OpenChannel: %s: %s", error.name, error.message);
}

static void chan_close(Chan *ch) {
        safe_close(ch->fd);
        events_free(ch->queue, ch->n_queue);
        *ch = (Chan){.fd = -EBADF};
}

static void send_message(int fd, const uint8_t *buf, size_t len, const int *fds, size_t n_fds) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * (CHANNEL_FDS_MAX + 1))];
        } control = {};
        struct iovec iov = {.iov_base = (void *) buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        ck_assert_uint_le(n_fds, CHANNEL_FDS_MAX + 1);
        if (n_fds > 0)
                channel_attach_fds(&mh, &control, sizeof(control), fds, n_fds);
        /* The daemon hands out a non-blocking end: wait for room. */
        for (;;) {
                ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

                if (n < 0 && errno == EAGAIN) {
                        ck_assert_int_eq(poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1,
                                              (int) (WAIT_USEC / USEC_PER_MSEC)),
                                         1);
                        continue;
                }
                ck_assert_msg(n == (ssize_t) len, "sendmsg: %zd (%s)", n, strerror(errno));
                return;
        }
}

static size_t encode_request(const ChannelRequest *req, uint8_t *buf, size_t size) {
        long n = channel_encode_request(req, buf, size);

        ck_assert_int_gt(n, 0);
        return (size_t) n;
}

/* One REQUEST frame in a message of its own, carrying fds. */
static void send_request(Chan *ch, const ChannelRequest *req, const int *fds, size_t n_fds) {
        _cleanup_free_ uint8_t *buf = malloc(CHANNEL_MESSAGE_MAX);

        ck_assert_ptr_nonnull(buf);
        send_message(ch->fd, buf, encode_request(req, buf, CHANNEL_MESSAGE_MAX), fds, n_fds);
}

static void send_upload(Chan *ch, uint64_t client, uint64_t tag, uint64_t offset,
                        const uint8_t *data, size_t len, bool end) {
        _cleanup_free_ uint8_t *buf = malloc(CHANNEL_MESSAGE_MAX);
        long n;

        ck_assert_ptr_nonnull(buf);
        n = channel_encode_upload(&(ChannelUpload){.client = client,
                                                   .tag = tag,
                                                   .offset = offset,
                                                   .flags = end ? CHANNEL_UPLOAD_END : 0,
                                                   .data = data,
                                                   .len = (uint32_t) len},
                                  buf, CHANNEL_MESSAGE_MAX);
        ck_assert_int_gt(n, 0);
        send_message(ch->fd, buf, (size_t) n, NULL, 0);
}

static void send_ids(Chan *ch, ChannelFrameType type, uint64_t client, uint64_t tag) {
        uint8_t buf[CHANNEL_HEADER_SIZE + 16];
        long n = channel_encode_ids(type, client, tag, buf, sizeof(buf));

        ck_assert_int_eq(n, (long) sizeof(buf));
        send_message(ch->fd, buf, sizeof(buf), NULL, 0);
}

/* Queues the events of one message. */
static void chan_decode(Chan *ch, const uint8_t *msg, size_t len) {
        ChannelParseError pe = CHANNEL_PARSE_OK;
        size_t offset = 0;
        ChannelFrame f;
        int r;

        while ((r = channel_next_frame(msg, len, &offset, &f, &pe)) > 0) {
                ChannelEvent ev;
                Event *e;

                ck_assert_int_eq(f.type, CHANNEL_FRAME_EVENT);
                ck_assert_msg(channel_decode_event(&f, &ev, &pe) == 0, "bad EVENT: %s",
                              channel_parse_error_to_string(pe));
                ch->queue = realloc(ch->queue, (ch->n_queue + 1) * sizeof(Event));
                ck_assert_ptr_nonnull(ch->queue);
                e = &ch->queue[ch->n_queue++];
                *e = (Event){
                        .client = ev.client,
                        .tag = ev.tag,
                        .result = ev.result,
                        .flags = ev.flags,
                        .offset = ev.offset,
                        .type = ev.type,
                        .observe = ev.observe,
                        .error_name = ev.error_name ? strdup(ev.error_name) : NULL,
                        .error_message = ev.error_message ? strdup(ev.error_message) : NULL,
                        .payload = malloc(ev.payload_len + 1),
                        .payload_len = ev.payload_len,
                        .code = ev.code,
                        .token_len = ev.token_len,
                        .options = ev.options_len > 0 ? malloc(ev.options_len) : NULL,
                        .options_len = ev.options_len,
                };
                ck_assert_ptr_nonnull(e->payload);
                if (ev.options_len > 0) {
                        ck_assert_ptr_nonnull(e->options);
                        memcpy(e->options, ev.options, ev.options_len);
                }
                if (ev.payload_len > 0)
                        memcpy(e->payload, ev.payload, ev.payload_len);
                e->payload[ev.payload_len] = '\0';
        }
        ck_assert_msg(r == 0, "bad message from the daemon: %s", channel_parse_error_to_string(pe));
}

/* Reads messages until done(ch, userdata) holds or the deadline passes (-ETIMEDOUT), or the
 * daemon closes the channel (-ECONNRESET). */
static int chan_run_until(Chan *ch, uint64_t deadline, bool (*done)(Chan *, const void *),
                          const void *userdata) {
        static uint8_t buf[CHANNEL_MESSAGE_MAX];

        for (;;) {
                struct pollfd p = {.fd = ch->fd, .events = POLLIN};
                uint64_t now;
                ssize_t n;
                int k;

                if (done && done(ch, userdata))
                        return 0;
                if (ch->eof)
                        return -ECONNRESET;
                now = test_now_usec();
                if (now >= deadline)
                        return done ? -ETIMEDOUT : 0;
                if (ch->bus)
                        (void) test_bus_run(ch->bus, 0);
                /* Short polls: the bus is dispatched in between. */
                k = poll(&p, 1,
                         (int) ((deadline - now) / 1000 < 20 ? (deadline - now) / 1000 : 20));
                ck_assert_int_ge(k, 0);
                if (k == 0)
                        continue;
                n = recv(ch->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n < 0 && errno == ECONNRESET)
                        n = 0;
                ck_assert_int_ge(n, 0);
                ck_assert_int_le(n, CHANNEL_MESSAGE_MAX);
                if (n == 0)
                        ch->eof = true; /* SEQPACKET end of stream */
                else
                        chan_decode(ch, buf, (size_t) n);
        }
}

static size_t chan_count(Chan *ch, uint64_t tag) {
        size_t n = 0;

        for (size_t i = 0; i < ch->n_queue; i++)
                if (ch->queue[i].tag == tag)
                        n++;
        return n;
}

static bool has_event(Chan *ch, const void *userdata) {
        return chan_count(ch, *(const uint64_t *) userdata) > 0;
}

static bool has_final(Chan *ch, const void *userdata) {
        uint64_t tag = *(const uint64_t *) userdata;

        for (size_t i = 0; i < ch->n_queue; i++)
                if (ch->queue[i].tag == tag && (ch->queue[i].flags & CHANNEL_EVENT_FINAL))
                        return true;
        return false;
}

static bool has_two(Chan *ch, const void *userdata) {
        return chan_count(ch, *(const uint64_t *) userdata) >= 2;
}

/* Takes every queued event of tag, in order. */
static size_t chan_take(Chan *ch, uint64_t tag, Event **ret) {
        size_t n = chan_count(ch, tag), k = 0;
        Event *out = calloc(n ? n : 1, sizeof(Event));

        ck_assert_ptr_nonnull(out);
        for (size_t i = 0; i < ch->n_queue; i++) {
                if (ch->queue[i].tag == tag)
                        out[k++] = ch->queue[i];
                else
                        ch->queue[i - k] = ch->queue[i];
        }
        ch->n_queue -= k;
        *ret = out;
        return n;
}

/* The oldest event of tag, waiting for it. */
static void chan_next(Chan *ch, uint64_t tag, uint64_t timeout_usec, Event *ret) {
        int r = chan_run_until(ch, test_now_usec() + timeout_usec, has_event, &tag);

        ck_assert_msg(r == 0, "no event for tag %llu: %s", (unsigned long long) tag, strerror(-r));
        for (size_t i = 0; i < ch->n_queue; i++)
                if (ch->queue[i].tag == tag) {
                        *ret = ch->queue[i];
                        memmove(ch->queue + i, ch->queue + i + 1,
                                (ch->n_queue - i - 1) * sizeof(Event));
                        ch->n_queue--;
                        return;
                }
}

/* Every event of tag up to its final one. */
static size_t chan_collect(Chan *ch, uint64_t tag, uint64_t timeout_usec, Event **ret) {
        int r = chan_run_until(ch, test_now_usec() + timeout_usec, has_final, &tag);

        ck_assert_msg(r == 0, "no final event for tag %llu: %s", (unsigned long long) tag,
                      strerror(-r));
        return chan_take(ch, tag, ret);
}

/* The only event of tag, which must be final. */
static Event chan_final(Chan *ch, uint64_t tag, uint64_t timeout_usec) {
        Event *e = NULL, ret;
        size_t n = chan_collect(ch, tag, timeout_usec, &e);

        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(e[0].tag, tag);
        ck_assert_uint_eq(e[0].flags & FINAL_FLAGS, FINAL_FLAGS);
        ret = e[0];
        free(e);
        return ret;
}

/* Nothing arrives for a while, and the channel stays open. */
static void chan_assert_quiet(Chan *ch) {
        ck_assert_int_eq(chan_run_until(ch, test_now_usec() + QUIET_USEC, NULL, NULL), 0);
        ck_assert_msg(ch->n_queue == 0, "unexpected event: tag %llu result %d",
                      (unsigned long long) ch->queue[0].tag, ch->queue[0].result);
}

/* The daemon closes the channel. */
static void chan_assert_closed(Chan *ch) {
        ck_assert_int_eq(chan_run_until(ch, test_now_usec() + WAIT_USEC, NULL, NULL), -ECONNRESET);
}

/* Sends req with fds and checks its only event: a refusal named error_name with -errnum, and
 * no error message (as an older library would need: this one never asks for them). */
static void assert_refused(Chan *ch, const ChannelRequest *req, const int *fds, size_t n_fds,
                           const char *error_name, int errnum) {
        Event e;

        send_request(ch, req, fds, n_fds);
        e = chan_final(ch, req->tag, WAIT_USEC);
        ck_assert_uint_eq(e.client, req->client);
        ck_assert_msg(e.error_name && strcmp(e.error_name, error_name) == 0,
                      "tag %llu: error %s, expected %s", (unsigned long long) req->tag,
                      e.error_name ?: "(none)", error_name);
        ck_assert_int_eq(e.result, -errnum);
        ck_assert_uint_eq(e.payload_len, 0);
        ck_assert_uint_eq(e.flags & CHANNEL_EVENT_ERROR_MESSAGE, 0);
        ck_assert_ptr_null(e.error_message);
        event_done(&e);
}

/* A caller with one client and its channel. */
typedef struct Fixture {
        TestBus *bus;
        char *path;
        uint64_t client;
        Chan ch;
} Fixture;

static uint64_t client_id(const char *path) {
        const char *prefix = COAPCLIENTD_CLIENT_PREFIX "/";
        char *end;
        uint64_t id;

        ck_assert_int_eq(strncmp(path, prefix, strlen(prefix)), 0);
        id = strtoull(path + strlen(prefix), &end, 10);
        ck_assert(*end == '\0' && id > 0);
        return id;
}

static void fixture_open_no_channel(Fixture *f, const char *name) {
        ck_assert_int_eq(test_bus_new(&f->bus), 0);
        ck_assert_int_eq(test_bus_create_client(f->bus, name, &f->path, NULL), 0);
        f->client = client_id(f->path);
        f->ch = (Chan){.fd = -EBADF};
}

static void fixture_open(Fixture *f, const char *name) {
        fixture_open_no_channel(f, name);
        chan_open(&f->ch, f->bus);
}

static void fixture_close(Fixture *f) {
        chan_close(&f->ch);
        f->bus = test_bus_free(f->bus);
        free(f->path);
        f->path = NULL;
}

static ChannelRequest get_request(const Fixture *f, uint64_t tag, const char *path) {
        return (ChannelRequest){
                .client = f->client,
                .tag = tag,
                .method = TEST_GET,
                .flags = CHANNEL_REQUEST_CONFIRMABLE,
                .path = path,
        };
}

static struct sockaddr_in peer_sockaddr(void) {
        struct sockaddr_in sin = {
                .sin_family = AF_INET,
                .sin_port = htons(test_peer_port()),
        };

        ck_assert_int_eq(inet_pton(AF_INET, test_peer_host(), &sin.sin_addr), 1);
        return sin;
}

static int peer_socket(void) {
        int fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());

        ck_assert_int_ge(fd, 0);
        return fd;
}

/* A socket connected to a peer that never answers: its CON requests stay in flight for a
 * minute. *ret_silent is the peer's socket. */
static int silent_socket(int *ret_silent) {
        uint16_t port;
        int fd;

        *ret_silent = test_udp_silent(AF_INET, &port);
        ck_assert_int_ge(*ret_silent, 0);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);
        return fd;
}

static int memfd_with(const uint8_t *data, size_t len) {
        int fd = memfd_create("payload", MFD_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, len), (ssize_t) len);
        return fd;
}

static void make_pipe(int *ret_read, int *ret_write) {
        int p[2];

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        *ret_read = p[0];
        *ret_write = p[1];
}

static uint32_t manager_u32(TestBus *b, const char *property) {
        uint32_t v;

        ck_assert_int_ge(test_bus_get_manager_u32(b, property, &v), 0);
        return v;
}

static void assert_inflight(TestBus *b, uint32_t expected) {
        ck_assert_uint_eq(test_bus_await_manager_u32(b, "RequestsInFlight", expected, AWAIT_USEC),
                          expected);
}

/* The daemon's fd count once the earlier tests' callers are gone (they leave the bus as their
 * test ends) and it has no socket and no request left. */
static int settled_fds(TestBus *b, uint32_t callers) {
        int fds;

        ck_assert_uint_eq(test_bus_await_manager_u32(b, "Callers", callers, AWAIT_USEC), callers);
        ck_assert_uint_eq(test_bus_await_manager_u32(b, "Sockets", 0, AWAIT_USEC), 0);
        assert_inflight(b, 0);
        fds = test_daemon_fd_count_settled();
        ck_assert_int_gt(fds, 0);
        return fds;
}

/* Whether the daemon's log (test-env.sh) has needle, waiting a little for it. */
static bool daemon_log_contains(const char *needle) {
        const char *dir = getenv("TEST_TMPDIR");
        uint64_t deadline = test_now_usec() + AWAIT_USEC;
        char path[512];

        ck_assert_ptr_nonnull(dir);
        snprintf(path, sizeof(path), "%s/daemon.log", dir);
        do {
                _cleanup_free_ char *text = NULL;
                size_t size = 0;
                FILE *f = fopen(path, "re");
                bool found;

                ck_assert_ptr_nonnull(f);
                ck_assert_int_ge(getdelim(&text, &size, '\0', f), 0);
                fclose(f);
                found = strstr(text, needle);
                if (found)
                        return true;
                usleep(20 * 1000);
        } while (test_now_usec() < deadline);
        return false;
}

START_TEST(test_open_channel) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(test_bus_freep) TestBus *a = NULL, *b = NULL;
        _cleanup_close_ int fa = -EBADF, fb = -EBADF;
        int type = 0, domain = 0;
        socklen_t len = sizeof(type);
        uint32_t callers0;
        struct stat sa, sb;

        ck_assert_int_eq(test_bus_new(&a), 0);
        ck_assert_int_eq(test_bus_new(&b), 0);
        /* Earlier tests' callers may still be leaving. */
        callers0 = test_bus_await_manager_u32(a, "Callers", 0, AWAIT_USEC);
        ck_assert_uint_eq(callers0, 0);

        fa = open_channel(a, &error);
        ck_assert_msg(fa >= 0, "OpenChannel: %s", error.message);
        ck_assert_int_eq(getsockopt(fa, SOL_SOCKET, SO_TYPE, &type, &len), 0);
        ck_assert_int_eq(type, SOCK_SEQPACKET);
        len = sizeof(domain);
        ck_assert_int_eq(getsockopt(fa, SOL_SOCKET, SO_DOMAIN, &domain, &len), 0);
        ck_assert_int_eq(domain, AF_UNIX);
        /* A channel alone makes a caller. */
        ck_assert_uint_eq(manager_u32(a, "Callers"), callers0 + 1);

        /* One per connection. */
        ck_assert_int_lt(open_channel(a, &error), 0);
        ck_assert_str_eq(error.name, COAPCLIENTD_ERROR_CHANNEL_EXISTS);
        ck_assert_int_eq(sd_bus_error_get_errno(&error), EBUSY);

        fb = open_channel(b, NULL);
        ck_assert_int_ge(fb, 0);
        len = sizeof(type);
        ck_assert_int_eq(getsockopt(fb, SOL_SOCKET, SO_TYPE, &type, &len), 0);
        ck_assert_int_eq(type, SOCK_SEQPACKET);
        ck_assert_int_eq(fstat(fa, &sa), 0);
        ck_assert_int_eq(fstat(fb, &sb), 0);
        ck_assert(sa.st_ino != sb.st_ino);
        ck_assert_uint_eq(test_bus_await_manager_u32(a, "Callers", callers0 + 2, AWAIT_USEC),
                          callers0 + 2);

        /* Closing the channel of a caller without clients ends the caller; it may open one
         * again. */
        fa = safe_close(fa);
        ck_assert_uint_eq(test_bus_await_manager_u32(a, "Callers", callers0 + 1, AWAIT_USEC),
                          callers0 + 1);
        fa = open_channel(a, NULL);
        ck_assert_int_ge(fa, 0);
}
END_TEST

START_TEST(test_get) {
        _cleanup_close_ int connected = -EBADF, unconnected = -EBADF;
        struct sockaddr_in dest = peer_sockaddr();
        uint8_t buf[1024];
        size_t len;
        Fixture f = {};
        ChannelRequest req;
        Event e;

        fixture_open(&f, "get");
        connected = peer_socket();
        unconnected = test_udp_socket(AF_INET, NULL, 0);
        ck_assert_int_ge(unconnected, 0);

        /* CON on a connected socket: one piggybacked 2.05. */
        req = get_request(&f, 1, "");
        send_request(&f.ch, &req, &connected, 1);
        e = chan_final(&f.ch, 1, WAIT_USEC);
        ck_assert_uint_eq(e.client, f.client);
        ck_assert_int_eq(e.result, 0x45);
        ck_assert_uint_eq(e.flags & (FINAL_FLAGS | CHANNEL_EVENT_SILENT), FINAL_FLAGS);
        ck_assert_uint_eq(e.offset, 0);
        ck_assert_uint_eq(e.type, COAP_TYPE_ACK);
        ck_assert_ptr_null(e.error_name);
        ck_assert_msg(strstr((const char *) e.payload, "libcoap"), "payload: %s", e.payload);
        event_done(&e);

        /* An explicit destination on an unconnected socket. */
        req = get_request(&f, 2, "time");
        req.dest = (const uint8_t *) &dest;
        req.dest_len = sizeof(dest);
        ck_assert_uint_eq(req.dest_len, 16);
        send_request(&f.ch, &req, &unconnected, 1);
        e = chan_final(&f.ch, 2, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        ck_assert_ptr_null(e.error_name);
        ck_assert_uint_gt(e.payload_len, 0);
        event_done(&e);

        /* NON: the response is NON too. */
        req = get_request(&f, 3, "time");
        req.flags = 0;
        send_request(&f.ch, &req, &connected, 1);
        e = chan_final(&f.ch, 3, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        ck_assert_uint_eq(e.type, COAP_TYPE_NON);
        event_done(&e);

        /* Two frames in one message, each with its own socket. */
        req = get_request(&f, 4, "");
        len = encode_request(&req, buf, sizeof(buf));
        req = get_request(&f, 5, "time");
        req.dest = (const uint8_t *) &dest;
        req.dest_len = sizeof(dest);
        len += encode_request(&req, buf + len, sizeof(buf) - len);
        send_message(f.ch.fd, buf, len, (const int[]){connected, unconnected}, 2);
        e = chan_final(&f.ch, 4, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        ck_assert_msg(strstr((const char *) e.payload, "libcoap"), "payload: %s", e.payload);
        event_done(&e);
        e = chan_final(&f.ch, 5, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        event_done(&e);

        /* Tags are per client: another client of ours may use the same one at once. */
        {
                _cleanup_free_ char *path = NULL;
                Fixture g = f;

                ck_assert_int_eq(test_bus_create_client(f.bus, "get-2", &path, NULL), 0);
                g.client = client_id(path);
                req = get_request(&g, 7, "");
                len = encode_request(&req, buf, sizeof(buf));
                req = get_request(&f, 7, "time");
                len += encode_request(&req, buf + len, sizeof(buf) - len);
                send_message(f.ch.fd, buf, len, (const int[]){connected, connected}, 2);
                ck_assert_int_eq(
                        chan_run_until(&f.ch, test_now_usec() + WAIT_USEC, has_two, &(uint64_t){7}),
                        0);
                for (size_t i = 0; i < 2; i++) {
                        chan_next(&f.ch, 7, 0, &e);
                        ck_assert_int_eq(e.result, 0x45);
                        ck_assert_uint_eq(e.flags & FINAL_FLAGS, FINAL_FLAGS);
                        if (e.client == g.client)
                                ck_assert_ptr_nonnull(strstr((const char *) e.payload, "libcoap"));
                        else
                                ck_assert_uint_eq(e.client, f.client);
                        event_done(&e);
                }
                ck_assert_int_ge(test_bus_call_void(f.bus, path, "Close", NULL), 0);
        }

        /* A 4.04 is a response like any other. */
        req = get_request(&f, 6, "nonexistent");
        send_request(&f.ch, &req, &connected, 1);
        e = chan_final(&f.ch, 6, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x84);
        ck_assert_ptr_null(e.error_name);
        event_done(&e);

        assert_inflight(f.bus, 0);
        /* Nothing went over D-Bus. */
        ck_assert_int_eq(test_bus_run(f.bus, 0), 0);
        ck_assert_uint_eq(test_bus_count_queued(f.bus, UINT64_MAX), 0);
        fixture_close(&f);
}
END_TEST

/* A REQUEST with CHANNEL_REQUEST_MESSAGE turns on the message section for the channel's EVENTs:
 * the response's code, token and options as the server sent them. */
START_TEST(test_message_section) {
        _cleanup_close_ int connected = -EBADF;
        Fixture f = {};
        ChannelRequest req;
        Event e;

        fixture_open(&f, "message");
        connected = peer_socket();

        req = get_request(&f, 1, "time");
        send_request(&f.ch, &req, &connected, 1);
        e = chan_final(&f.ch, 1, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        ck_assert_uint_eq(e.flags & CHANNEL_EVENT_MESSAGE, 0);
        event_done(&e);

        /* coap-server's /time answers with Observe (6) first, then Max-Age (14). */
        req = get_request(&f, 2, "time");
        req.flags |= CHANNEL_REQUEST_MESSAGE | CHANNEL_REQUEST_OBSERVE;
        send_request(&f.ch, &req, &connected, 1);
        chan_next(&f.ch, 2, WAIT_USEC, &e);
        ck_assert_int_eq(e.result, 0x45);
        ck_assert_uint_eq(e.flags & CHANNEL_EVENT_MESSAGE, CHANNEL_EVENT_MESSAGE);
        ck_assert_uint_eq(e.code, 0x45);
        ck_assert_uint_gt(e.token_len, 0);
        ck_assert_uint_ge(e.options_len, 2);
        ck_assert_uint_eq(e.options[0] >> 4, 6);
        event_done(&e);
        send_ids(&f.ch, CHANNEL_FRAME_CANCEL, f.client, 2);
        e = chan_final(&f.ch, 2, WAIT_USEC);
        ck_assert_int_eq(e.result, -ECANCELED);
        /* An error has no message. */
        ck_assert_uint_eq(e.flags & CHANNEL_EVENT_MESSAGE, 0);
        event_done(&e);

        /* From then on every response of the channel carries it. */
        req = get_request(&f, 3, "time");
        send_request(&f.ch, &req, &connected, 1);
        e = chan_final(&f.ch, 3, WAIT_USEC);
        ck_assert_uint_eq(e.flags & CHANNEL_EVENT_MESSAGE, CHANNEL_EVENT_MESSAGE);
        ck_assert_uint_eq(e.code, 0x45);
        event_done(&e);
        fixture_close(&f);
}
END_TEST

/* Many messages at once, each with its own socket: every request goes out over its own, and
 * each gets its answer. */
START_TEST(test_burst) {
        _cleanup_close_ int connected = -EBADF, unconnected = -EBADF;
        struct sockaddr_in dest = peer_sockaddr();
        const uint64_t n = 30; /* below MaxRequestsPerClient */
        Fixture f = {};

        fixture_open(&f, "burst");
        connected = peer_socket();
        unconnected = test_udp_socket(AF_INET, NULL, 0);
        ck_assert_int_ge(unconnected, 0);

        for (uint64_t tag = 0; tag < n; tag++) {
                ChannelRequest req = get_request(&f, tag, tag % 2 ? "time" : "");

                if (tag % 2) {
                        req.dest = (const uint8_t *) &dest;
                        req.dest_len = sizeof(dest);
                }
                send_request(&f.ch, &req, tag % 2 ? &unconnected : &connected, 1);
        }
        for (uint64_t tag = 0; tag < n; tag++) {
                Event e = chan_final(&f.ch, tag, WAIT_USEC);

                ck_assert_msg(e.result == 0x45, "tag %llu: %d (%s)", (unsigned long long) tag,
                              e.result, e.error_name ?: "no error name");
                if (tag % 2 == 0)
                        ck_assert_ptr_nonnull(strstr((const char *) e.payload, "libcoap"));
                event_done(&e);
        }
        assert_inflight(f.bus, 0);
        chan_assert_quiet(&f.ch);
        fixture_close(&f);
}
END_TEST

START_TEST(test_tx_params) {
        _cleanup_close_ int silent = -EBADF, fd = -EBADF;
        Fixture f = {};
        ChannelRequest req;
        uint64_t start, elapsed;
        Event e;

        fixture_open(&f, "params");
        fd = silent_socket(&silent);
        req = get_request(&f, 1, "x");
        req.flags |= CHANNEL_REQUEST_PARAMS;
        req.ack_timeout_ms = 100;
        req.ack_random_percent = 100;
        req.backoff_percent = 200;
        req.max_retransmission = 1;
        start = test_now_usec();
        send_request(&f.ch, &req, &fd, 1);
        /* Sent at 0 and 100 ms, given up at 300 ms. */
        e = chan_final(&f.ch, 1, WAIT_USEC);
        elapsed = test_now_usec() - start;
        ck_assert_int_eq(e.result, -ETIMEDOUT);
        ck_assert_ptr_null(e.error_name);
        ck_assert_msg(elapsed >= 250 * USEC_PER_MSEC && elapsed < 2 * USEC_PER_SEC,
                      "timed out after %llu ms", (unsigned long long) elapsed / 1000);
        event_done(&e);
        assert_inflight(f.bus, 0);
        fixture_close(&f);
}
END_TEST

/* The events of a Block2 GET of path rebuild expected exactly. */
static void get_body(Fixture *f, int fd, uint64_t tag, const char *path, uint16_t block_size,
                     const uint8_t *expected, size_t len) {
        ChannelRequest req = get_request(f, tag, path);
        Event *e = NULL;
        uint64_t offset = 0;
        size_t n;

        req.block_size = block_size;
        send_request(&f->ch, &req, &fd, 1);
        n = chan_collect(&f->ch, tag, WAIT_USEC, &e);
        ck_assert_uint_ge(n, 1);
        for (size_t i = 0; i < n; i++) {
                bool last = i + 1 == n;

                ck_assert_int_eq(e[i].result, 0x45);
                ck_assert_ptr_null(e[i].error_name);
                ck_assert_uint_eq(e[i].offset, offset);
                ck_assert(!!(e[i].flags & CHANNEL_EVENT_LAST_BLOCK) == last);
                ck_assert(!!(e[i].flags & CHANNEL_EVENT_FINAL) == last);
                /* The first request carries no Block2, so the server may answer it with a bigger
                 * block (RFC 7959 2.4); later blocks have the size asked for. */
                if (block_size && i > 0 && !last)
                        ck_assert_uint_eq(e[i].payload_len, block_size);
                ck_assert_uint_le(offset + e[i].payload_len, len);
                ck_assert_msg(memcmp(e[i].payload, expected + offset, e[i].payload_len) == 0,
                              "block %zu at offset %llu differs", i, (unsigned long long) offset);
                offset += e[i].payload_len;
        }
        ck_assert_uint_eq(offset, len);
        if (block_size)
                ck_assert_uint_gt(n, 1);
        events_free(e, n);
}

/* The events of a PUT: 2.31 Continue per block, then 2.01 or 2.04. */
static void assert_put_events(Fixture *f, uint64_t tag, size_t len, uint16_t block_size) {
        Event *e = NULL;
        size_t n = chan_collect(&f->ch, tag, WAIT_USEC, &e);

        if (block_size)
                ck_assert_uint_eq(n, (len + block_size - 1) / block_size);
        for (size_t i = 0; i + 1 < n; i++) {
                ck_assert_int_eq(e[i].result, 0x5f);
                ck_assert_uint_eq(e[i].flags & FINAL_FLAGS, 0);
                if (block_size)
                        ck_assert_uint_eq(e[i].offset, (i + 1) * block_size);
        }
        ck_assert_uint_eq(e[n - 1].flags & FINAL_FLAGS, FINAL_FLAGS);
        ck_assert_ptr_null(e[n - 1].error_name);
        ck_assert_msg(e[n - 1].result == 0x41 || e[n - 1].result == 0x44, "PUT ended with %d",
                      e[n - 1].result);
        events_free(e, n);
}

START_TEST(test_blockwise) {
        const size_t len = 2000;
        _cleanup_free_ uint8_t *body = malloc(len);
        _cleanup_close_ int fd = -EBADF;
        Fixture f = {};
        ChannelRequest req;

        ck_assert_ptr_nonnull(body);
        test_fill_random(body, len, 0xc4a77e1);
        fixture_open(&f, "blockwise");
        fd = peer_socket();

        req = get_request(&f, 1, "chan-blocks");
        req.method = TEST_PUT;
        req.block_size = 64;
        req.payload = body;
        req.payload_len = (uint32_t) len;
        send_request(&f.ch, &req, &fd, 1);
        assert_put_events(&f, 1, len, 64);

        get_body(&f, fd, 2, "chan-blocks", 64, body, len);
        /* With the server's block size. */
        get_body(&f, fd, 3, "chan-blocks", 0, body, len);
        assert_inflight(f.bus, 0);
        fixture_close(&f);
}
END_TEST

/* The final event of tag, after any number of others (acknowledged blocks). */
static Event chan_last(Chan *ch, uint64_t tag) {
        Event *e = NULL, ret;
        size_t n = chan_collect(ch, tag, WAIT_USEC, &e);

        ck_assert_uint_ge(n, 1);
        ret = e[n - 1];
        e[n - 1] = (Event){};
        events_free(e, n);
        return ret;
}

/* A streamed body: its beginning in the REQUEST, the rest in UPLOAD frames, read back whole;
 * and what breaks a stream. */
START_TEST(test_stream) {
        const size_t len = 5000;
        _cleanup_free_ uint8_t *body = malloc(len), *big = calloc(1, CHANNEL_UPLOAD_WINDOW);
        _cleanup_close_ int fd = -EBADF;
        Fixture f = {};
        ChannelRequest req;
        Event e;

        ck_assert_ptr_nonnull(body);
        ck_assert_ptr_nonnull(big);
        test_fill_random(body, len, 0x57ea);
        fixture_open(&f, "stream");
        fd = peer_socket();

        req = get_request(&f, 1, "chan-stream");
        req.method = TEST_PUT;
        req.flags |= CHANNEL_REQUEST_STREAM;
        req.block_size = 256;
        req.payload = body;
        req.payload_len = 1024;
        send_request(&f.ch, &req, &fd, 1);
        send_upload(&f.ch, f.client, 1, 1024, body + 1024, 1976, false);
        send_upload(&f.ch, f.client, 1, 3000, body + 3000, 2000, true);
        assert_put_events(&f, 1, len, 256);
        get_body(&f, fd, 2, "chan-stream", 256, body, len);

        /* One block does not begin a stream. */
        req.tag = 3;
        req.payload_len = 256;
        send_request(&f.ch, &req, &fd, 1);
        e = chan_final(&f.ch, 3, WAIT_USEC);
        ck_assert_int_eq(e.result, -EINVAL);
        ck_assert_str_eq(e.error_name, COAPCLIENTD_ERROR_INVALID_ARGUMENT);
        event_done(&e);

        /* More than the window past what the server acknowledged. */
        req.tag = 4;
        req.payload_len = 1024;
        send_request(&f.ch, &req, &fd, 1);
        send_upload(&f.ch, f.client, 4, 1024, big, CHANNEL_UPLOAD_WINDOW, false);
        e = chan_last(&f.ch, 4);
        ck_assert_int_eq(e.result, -ENOBUFS);
        event_done(&e);

        /* A gap. */
        req.tag = 5;
        send_request(&f.ch, &req, &fd, 1);
        send_upload(&f.ch, f.client, 5, 1025, body, 1, true);
        e = chan_last(&f.ch, 5);
        ck_assert_int_eq(e.result, -EINVAL);
        event_done(&e);

        /* An UPLOAD for a request that is gone changes nothing. */
        send_upload(&f.ch, f.client, 5, 1025, body, 1, true);
        assert_inflight(f.bus, 0);
        fixture_close(&f);
}
END_TEST

START_TEST(test_payloads) {
        static const char inline_body[] = "a payload in the frame",
                          post_body[] = "posted: another payload";
        const size_t len = 3000;
        _cleanup_free_ uint8_t *body = malloc(len);
        _cleanup_close_ int fd = -EBADF, memfd = -EBADF, pr = -EBADF, pw = -EBADF;
        Fixture f = {};
        ChannelRequest req;

        ck_assert_ptr_nonnull(body);
        test_fill_random(body, len, 0xfd);
        fixture_open(&f, "payloads");
        fd = peer_socket();

        /* Inline. */
        req = get_request(&f, 1, "chan-put");
        req.method = TEST_PUT;
        req.flags |= CHANNEL_REQUEST_CONTENT_FORMAT;
        req.content_format = 0; /* text/plain */
        req.payload = (const uint8_t *) inline_body;
        req.payload_len = sizeof(inline_body) - 1;
        send_request(&f.ch, &req, &fd, 1);
        assert_put_events(&f, 1, req.payload_len, 0);
        get_body(&f, fd, 2, "chan-put", 0, (const uint8_t *) inline_body, sizeof(inline_body) - 1);

        /* POST replaces it too (coap-server's dynamic resources). */
        req.tag = 3;
        req.method = TEST_POST;
        req.payload = (const uint8_t *) post_body;
        req.payload_len = sizeof(post_body) - 1;
        send_request(&f.ch, &req, &fd, 1);
        assert_put_events(&f, 3, req.payload_len, 0);
        get_body(&f, fd, 12, "chan-put", 0, (const uint8_t *) post_body, sizeof(post_body) - 1);

        /* In a memfd, block-wise (the default block size is smaller than 3000). */
        memfd = memfd_with(body, len);
        req = get_request(&f, 4, "chan-put");
        req.method = TEST_PUT;
        req.flags |= CHANNEL_REQUEST_PAYLOAD_FD;
        req.payload_len = (uint32_t) len;
        send_request(&f.ch, &req, (const int[]){fd, memfd}, 2);
        assert_put_events(&f, 4, len, 0);
        get_body(&f, fd, 5, "chan-put", 0, body, len);

        /* A memfd of another size, no memfd, a pipe: refused before anything is sent. */
        req.tag = 6;
        req.payload_len = (uint32_t) len + 1;
        assert_refused(&f.ch, &req, (const int[]){fd, memfd}, 2, COAPCLIENTD_ERROR_INVALID_ARGUMENT,
                       EINVAL);
        req.tag = 7;
        req.payload_len = (uint32_t) len - 1;
        assert_refused(&f.ch, &req, (const int[]){fd, memfd}, 2, COAPCLIENTD_ERROR_INVALID_ARGUMENT,
                       EINVAL);
        req.tag = 8;
        req.payload_len = (uint32_t) len;
        assert_refused(&f.ch, &req, &fd, 1, COAPCLIENTD_ERROR_INVALID_ARGUMENT, EINVAL);
        make_pipe(&pr, &pw);
        req.tag = 9;
        req.payload_len = 4;
        assert_refused(&f.ch, &req, (const int[]){fd, pr}, 2, COAPCLIENTD_ERROR_INVALID_ARGUMENT,
                       EINVAL);
        /* The resource still holds the memfd's bytes. */
        get_body(&f, fd, 10, "chan-put", 0, body, len);

        /* Beyond MaxPayloadBytes: refused by its size, before the memfd is looked at. */
        req.tag = 11;
        req.payload_len = manager_u32(f.bus, "MaxPayloadBytes") + 1;
        assert_refused(&f.ch, &req, (const int[]){fd, memfd}, 2,
                       COAPCLIENTD_ERROR_PAYLOAD_TOO_LARGE, EMSGSIZE);
        assert_inflight(f.bus, 0);
        fixture_close(&f);
}
END_TEST

START_TEST(test_refusals) {
        _cleanup_close_ int connected = -EBADF, unconnected = -EBADF, tcp = -EBADF, pr = -EBADF,
                            pw = -EBADF, silent = -EBADF, quiet = -EBADF;
        struct sockaddr_in dest = peer_sockaddr(), bad = peer_sockaddr();
        struct sockaddr_in6 dest6 = {.sin6_family = AF_INET6, .sin6_port = htons(5683)};
        uint8_t buf[512];
        Fixture f = {};
        ChannelRequest req;
        size_t len;
        Event e;

        fixture_open(&f, "refusals");
        connected = peer_socket();
        unconnected = test_udp_socket(AF_INET, NULL, 0);
        ck_assert_int_ge(unconnected, 0);
        tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(tcp, 0);
        make_pipe(&pr, &pw);
        dest6.sin6_addr = in6addr_loopback;

        req = get_request(&f, 1, "time");
        assert_refused(&f.ch, &req, NULL, 0, COAPCLIENTD_ERROR_NOT_A_SOCKET, ENOTSOCK);
        req.tag = 2;
        assert_refused(&f.ch, &req, &pr, 1, COAPCLIENTD_ERROR_NOT_A_SOCKET, ENOTSOCK);
        req.tag = 3;
        assert_refused(&f.ch, &req, &tcp, 1, COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET, ESOCKTNOSUPPORT);

        /* Destinations. */
        req.tag = 4;
        bad.sin_family = AF_INET6;
        req.dest = (const uint8_t *) &bad;
        req.dest_len = sizeof(bad);
        assert_refused(&f.ch, &req, &unconnected, 1, COAPCLIENTD_ERROR_INVALID_ADDRESS, EINVAL);
        req.tag = 5;
        bad = dest;
        bad.sin_port = 0;
        assert_refused(&f.ch, &req, &unconnected, 1, COAPCLIENTD_ERROR_INVALID_ADDRESS, EINVAL);
        req.tag = 6;
        req.dest = (const uint8_t *) &dest6; /* IPv6 for an IPv4 socket */
        req.dest_len = sizeof(dest6);
        assert_refused(&f.ch, &req, &unconnected, 1, COAPCLIENTD_ERROR_INVALID_ADDRESS, EINVAL);
        req.tag = 7;
        req.dest = NULL;
        req.dest_len = 0;
        assert_refused(&f.ch, &req, &unconnected, 1, COAPCLIENTD_ERROR_INVALID_ADDRESS, EINVAL);

        /* The request itself. */
        req = get_request(&f, 8, "time");
        req.method = 0;
        assert_refused(&f.ch, &req, &connected, 1, COAPCLIENTD_ERROR_INVALID_METHOD, EINVAL);
        req.tag = 9;
        req.method = 8;
        assert_refused(&f.ch, &req, &connected, 1, COAPCLIENTD_ERROR_INVALID_METHOD, EINVAL);
        req = get_request(&f, 10, "time");
        req.flags |= CHANNEL_REQUEST_PARAMS;
        req.ack_timeout_ms = 1;
        req.backoff_percent = 200;
        assert_refused(&f.ch, &req, &connected, 1, COAPCLIENTD_ERROR_INVALID_PARAMETERS, EINVAL);
        req.tag = 11;
        req.ack_timeout_ms = 2000;
        req.max_retransmission = COAPCLIENTD_MAX_RETRANSMISSION_MAX + 1;
        assert_refused(&f.ch, &req, &connected, 1, COAPCLIENTD_ERROR_INVALID_PARAMETERS, EINVAL);
        req = get_request(&f, 12, "time");
        req.block_size = 100;
        assert_refused(&f.ch, &req, &connected, 1, COAPCLIENTD_ERROR_INVALID_PARAMETERS, EINVAL);
        req = get_request(&f, 13, "time");
        req.options[0] = (ChannelOption){.number = COAP_OPTION_URI_PATH, .len = 1, .value = buf};
        req.n_options = 1;
        buf[0] = 'x';
        assert_refused(&f.ch, &req, &connected, 1, COAPCLIENTD_ERROR_INVALID_OPTION, EINVAL);
        req.tag = 14;
        req.options[0].number = 0;
        assert_refused(&f.ch, &req, &connected, 1, COAPCLIENTD_ERROR_INVALID_OPTION, EINVAL);
        {
                /* A path segment over 255 bytes. */
                char path[300];

                memset(path, 'a', sizeof(path) - 1);
                path[sizeof(path) - 1] = '\0';
                req = get_request(&f, 15, path);
                assert_refused(&f.ch, &req, &connected, 1, COAPCLIENTD_ERROR_INVALID_PATH, EINVAL);
        }

        /* A tag in flight already: the first request goes on. */
        quiet = silent_socket(&silent);
        req = get_request(&f, 16, "x");
        send_request(&f.ch, &req, &quiet, 1);
        assert_inflight(f.bus, 1);
        /* Asked for, the refusal says what it is about. */
        req.flags |= CHANNEL_REQUEST_ERROR_MESSAGE;
        send_request(&f.ch, &req, &connected, 1);
        e = chan_final(&f.ch, 16, WAIT_USEC);
        ck_assert_str_eq(e.error_name, COAPCLIENTD_ERROR_INVALID_ARGUMENT);
        ck_assert_int_eq(e.result, -EINVAL);
        ck_assert_uint_eq(e.flags & CHANNEL_EVENT_ERROR_MESSAGE, CHANNEL_EVENT_ERROR_MESSAGE);
        ck_assert_str_eq(e.error_message, "Request tag 16 is in flight already.");
        event_done(&e);
        ck_assert_uint_eq(manager_u32(f.bus, "RequestsInFlight"), 1);
        send_ids(&f.ch, CHANNEL_FRAME_CANCEL, f.client, 16);
        e = chan_final(&f.ch, 16, WAIT_USEC);
        ck_assert_int_eq(e.result, -ECANCELED);
        event_done(&e);

        /* Malformed after the ids: refused as such, the parse error in the daemon's log. */
        req = get_request(&f, 17, "time");
        len = encode_request(&req, buf, sizeof(buf));
        buf[CHANNEL_HEADER_SIZE + 35] = 4; /* the flags' high byte: bit 10, unknown */
        send_message(f.ch.fd, buf, len, &connected, 1);
        e = chan_final(&f.ch, 17, WAIT_USEC);
        ck_assert_str_eq(e.error_name, COAPCLIENTD_ERROR_INVALID_ARGUMENT);
        ck_assert_int_eq(e.result, -EINVAL);
        ck_assert_uint_eq(e.client, f.client);
        event_done(&e);
        ck_assert(daemon_log_contains("Malformed request frame: unknown flags"));

        /* Trailing bytes after the last field (the frame's size covers them). */
        req = get_request(&f, 18, "time");
        len = encode_request(&req, buf, sizeof(buf));
        buf[len] = 0xaa;
        buf[0] = (uint8_t) (len + 1); /* the size's low byte: frames here are < 256 bytes */
        ck_assert_uint_lt(len + 1, 256);
        send_message(f.ch.fd, buf, len + 1, &connected, 1);
        e = chan_final(&f.ch, 18, WAIT_USEC);
        ck_assert_str_eq(e.error_name, COAPCLIENTD_ERROR_INVALID_ARGUMENT);
        ck_assert_int_eq(e.result, -EINVAL);
        event_done(&e);

        /* Only the ids: nothing else to parse, still ours to answer. */
        req = get_request(&f, 19, "time");
        len = encode_request(&req, buf, sizeof(buf));
        buf[0] = CHANNEL_HEADER_SIZE + 16;
        send_message(f.ch.fd, buf, CHANNEL_HEADER_SIZE + 16, &connected, 1);
        e = chan_final(&f.ch, 19, WAIT_USEC);
        ck_assert_str_eq(e.error_name, COAPCLIENTD_ERROR_INVALID_ARGUMENT);
        ck_assert_int_eq(e.result, -EINVAL);
        event_done(&e);

        /* Shorter than the ids: nobody to answer, and the channel goes on. */
        buf[0] = CHANNEL_HEADER_SIZE + 8;
        send_message(f.ch.fd, buf, CHANNEL_HEADER_SIZE + 8, &connected, 1);
        chan_assert_quiet(&f.ch);
        req = get_request(&f, 20, "");
        send_request(&f.ch, &req, &connected, 1);
        e = chan_final(&f.ch, 20, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        event_done(&e);

        assert_inflight(f.bus, 0);
        fixture_close(&f);
}
END_TEST

/* Each REQUEST frame takes its socket from the message's fds, even one the daemon cannot
 * parse: otherwise the frames after it would go out over each other's sockets. */
START_TEST(test_malformed_takes_its_fd) {
        _cleanup_close_ int connected = -EBADF, pr = -EBADF, pw = -EBADF;
        uint8_t buf[512];
        Fixture f = {};
        ChannelRequest req;
        size_t len, first;
        Event e;

        fixture_open(&f, "fd-order");
        connected = peer_socket();
        make_pipe(&pr, &pw);

        req = get_request(&f, 1, "time");
        first = encode_request(&req, buf, sizeof(buf));
        buf[CHANNEL_HEADER_SIZE + 35] = 4; /* unknown flag bit 10: malformed, low byte readable */
        req = get_request(&f, 2, "");
        len = first + encode_request(&req, buf + first, sizeof(buf) - first);
        send_message(f.ch.fd, buf, len, (const int[]){pr, connected}, 2);

        e = chan_final(&f.ch, 1, WAIT_USEC);
        ck_assert_str_eq(e.error_name, COAPCLIENTD_ERROR_INVALID_ARGUMENT);
        event_done(&e);
        e = chan_final(&f.ch, 2, WAIT_USEC);
        ck_assert_msg(e.result == 0x45, "the second frame got %d (%s)", e.result,
                      e.error_name ?: "no error name");
        event_done(&e);
        assert_inflight(f.bus, 0);
        fixture_close(&f);
}
END_TEST

START_TEST(test_ownership) {
        _cleanup_close_ int fd = -EBADF, silent = -EBADF, quiet = -EBADF;
        Fixture a = {}, b = {};
        ChannelRequest req;
        uint64_t sent0, sent1;
        uint8_t buf[512];
        size_t len;
        int fds0;
        Event e;

        fixture_open(&a, "mine");
        fixture_open(&b, "theirs");
        ck_assert_uint_ne(a.client, b.client);
        fd = peer_socket();
        fds0 = settled_fds(a.bus, 2);

        /* A request naming B's client, valid or not, and one naming nobody's: no event anywhere,
         * nothing sent. */
        ck_assert_int_ge(test_bus_get_manager_u64(a.bus, "MessagesSent", &sent0), 0);
        req = get_request(&b, 1, "time");
        send_request(&a.ch, &req, &fd, 1);
        req.tag = 2;
        len = encode_request(&req, buf, sizeof(buf));
        buf[CHANNEL_HEADER_SIZE + 17] |= 0x80; /* flags: malformed */
        send_message(a.ch.fd, buf, len, &fd, 1);
        req = get_request(&a, 3, "time");
        req.client = a.client + b.client + 1000;
        send_request(&a.ch, &req, &fd, 1);
        chan_assert_quiet(&a.ch);
        chan_assert_quiet(&b.ch);
        ck_assert_int_eq(test_bus_run(b.bus, 0), 0);
        ck_assert_uint_eq(test_bus_count_queued(b.bus, UINT64_MAX), 0);
        ck_assert_int_ge(test_bus_get_manager_u64(a.bus, "MessagesSent", &sent1), 0);
        ck_assert_uint_eq(sent1, sent0);
        ck_assert_int_eq(test_bus_await_daemon_fds(a.bus, fds0, AWAIT_USEC), fds0);

        /* The channel still works for A's own client. */
        req = get_request(&a, 4, "");
        send_request(&a.ch, &req, &fd, 1);
        e = chan_final(&a.ch, 4, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        ck_assert_uint_eq(e.client, a.client);
        event_done(&e);

        /* A cannot cancel B's request. */
        quiet = silent_socket(&silent);
        req = get_request(&b, 5, "x");
        send_request(&b.ch, &req, &quiet, 1);
        assert_inflight(a.bus, 1);
        send_ids(&a.ch, CHANNEL_FRAME_CANCEL, b.client, 5);
        send_ids(&a.ch, CHANNEL_FRAME_DEREGISTER_OBSERVE, b.client, 5);
        send_ids(&a.ch, CHANNEL_FRAME_CANCEL_ALL, b.client, 0);
        chan_assert_quiet(&a.ch);
        chan_assert_quiet(&b.ch);
        ck_assert_uint_eq(manager_u32(a.bus, "RequestsInFlight"), 1);
        /* Nor does A's channel carry B's tag for A's client. */
        send_ids(&a.ch, CHANNEL_FRAME_CANCEL, a.client, 5);
        chan_assert_quiet(&b.ch);
        ck_assert_uint_eq(manager_u32(a.bus, "RequestsInFlight"), 1);

        send_ids(&b.ch, CHANNEL_FRAME_CANCEL, b.client, 5);
        e = chan_final(&b.ch, 5, WAIT_USEC);
        ck_assert_int_eq(e.result, -ECANCELED);
        event_done(&e);
        chan_assert_quiet(&a.ch);
        assert_inflight(a.bus, 0);
        fixture_close(&a);
        fixture_close(&b);
}
END_TEST

START_TEST(test_cancel) {
        _cleanup_close_ int silent = -EBADF, quiet = -EBADF, fd = -EBADF;
        Fixture f = {};
        ChannelRequest req;
        Event e;

        fixture_open(&f, "cancel");
        quiet = silent_socket(&silent);
        fd = peer_socket();

        req = get_request(&f, 1, "x");
        send_request(&f.ch, &req, &quiet, 1);
        assert_inflight(f.bus, 1);
        /* Unknown tags are ignored. */
        send_ids(&f.ch, CHANNEL_FRAME_CANCEL, f.client, 99);
        send_ids(&f.ch, CHANNEL_FRAME_DEREGISTER_OBSERVE, f.client, 99);
        chan_assert_quiet(&f.ch);
        ck_assert_uint_eq(manager_u32(f.bus, "RequestsInFlight"), 1);
        send_ids(&f.ch, CHANNEL_FRAME_CANCEL, f.client, 1);
        e = chan_final(&f.ch, 1, WAIT_USEC);
        ck_assert_int_eq(e.result, -ECANCELED);
        ck_assert_ptr_null(e.error_name);
        event_done(&e);
        assert_inflight(f.bus, 0);
        /* Once ended, a tag is unknown: cancelling again does nothing. */
        send_ids(&f.ch, CHANNEL_FRAME_CANCEL, f.client, 1);
        chan_assert_quiet(&f.ch);

        /* CANCEL_ALL: two to the silent peer, one separate response that would take 5 s. */
        req = get_request(&f, 2, "x");
        send_request(&f.ch, &req, &quiet, 1);
        req.tag = 3;
        send_request(&f.ch, &req, &quiet, 1);
        req = get_request(&f, 4, "async?5");
        send_request(&f.ch, &req, &fd, 1);
        assert_inflight(f.bus, 3);
        send_ids(&f.ch, CHANNEL_FRAME_CANCEL_ALL, f.client, 0);
        for (uint64_t tag = 2; tag <= 4; tag++) {
                Event *all = NULL;
                size_t n = chan_collect(&f.ch, tag, WAIT_USEC, &all);

                /* async?5 may have had its empty ACK reported; nothing else. */
                ck_assert_uint_ge(n, 1);
                ck_assert_int_eq(all[n - 1].result, -ECANCELED);
                ck_assert_uint_eq(all[n - 1].flags & FINAL_FLAGS, FINAL_FLAGS);
                for (size_t i = 0; i + 1 < n; i++)
                        ck_assert_uint_eq(all[i].flags & CHANNEL_EVENT_FINAL, 0);
                events_free(all, n);
        }
        assert_inflight(f.bus, 0);
        chan_assert_quiet(&f.ch);

        /* The tags may be used again. */
        req = get_request(&f, 2, "");
        send_request(&f.ch, &req, &fd, 1);
        e = chan_final(&f.ch, 2, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        event_done(&e);
        fixture_close(&f);
}
END_TEST

START_TEST(test_observe) {
        _cleanup_close_ int fd = -EBADF;
        Fixture f = {};
        ChannelRequest req;
        Event e, *all = NULL;
        uint32_t first;
        size_t n;

        fixture_open(&f, "observe");
        fd = peer_socket();
        req = get_request(&f, 1, "time");
        req.flags |= CHANNEL_REQUEST_OBSERVE;
        send_request(&f.ch, &req, &fd, 1);
        chan_next(&f.ch, 1, WAIT_USEC, &e);
        ck_assert_int_eq(e.result, 0x45);
        ck_assert_uint_eq(e.flags & (CHANNEL_EVENT_OBSERVE | CHANNEL_EVENT_FINAL),
                          CHANNEL_EVENT_OBSERVE);
        first = e.observe;
        event_done(&e);
        /* coap-server notifies "time" every second. */
        chan_next(&f.ch, 1, WAIT_USEC, &e);
        ck_assert_int_eq(e.result, 0x45);
        ck_assert_uint_eq(e.flags & (CHANNEL_EVENT_OBSERVE | CHANNEL_EVENT_FINAL),
                          CHANNEL_EVENT_OBSERVE);
        ck_assert_uint_gt(e.observe, first);
        event_done(&e);

        /* Deregistering ends it with the answer to the GET without Observe (RFC 7641 3.6);
         * notifications may still come before it. */
        send_ids(&f.ch, CHANNEL_FRAME_DEREGISTER_OBSERVE, f.client, 1);
        n = chan_collect(&f.ch, 1, WAIT_USEC, &all);
        ck_assert_int_eq(all[n - 1].result, 0x45);
        ck_assert_uint_eq(all[n - 1].flags & (CHANNEL_EVENT_OBSERVE | FINAL_FLAGS), FINAL_FLAGS);
        ck_assert_ptr_null(all[n - 1].error_name);
        events_free(all, n);
        assert_inflight(f.bus, 0);
        chan_assert_quiet(&f.ch);
        fixture_close(&f);
}
END_TEST

START_TEST(test_broken_framing) {
        static const struct {
                const char *what;
                uint8_t header[CHANNEL_HEADER_SIZE];
                size_t len;
        } broken[] = {
                {"size beyond the message", {100, 0, 0, 0, CHANNEL_FRAME_CANCEL, 0, 0, 0}, 8},
                {"size below the header", {4, 0, 0, 0, CHANNEL_FRAME_CANCEL, 0, 0, 0}, 8},
                {"unknown frame type", {8, 0, 0, 0, 99, 0, 0, 0}, 8},
                {"reserved field not zero", {8, 0, 0, 0, CHANNEL_FRAME_CANCEL, 0, 1, 0}, 8},
                {"truncated header", {8, 0, 0, 0}, 4},
        };
        _cleanup_close_ int fd = -EBADF, silent = -EBADF, quiet = -EBADF;
        _cleanup_free_ uint8_t *huge = calloc(1, CHANNEL_MESSAGE_MAX + 1);
        Fixture f = {};
        ChannelRequest req;
        char **clients = NULL;
        size_t n = 0;
        int fds0;
        Event e;

        ck_assert_ptr_nonnull(huge);
        fixture_open(&f, "framing");
        fd = peer_socket();
        quiet = silent_socket(&silent);
        fds0 = settled_fds(f.bus, 1);

        /* Our EVENT frames are ignored. */
        {
                uint8_t buf[256];
                long len = channel_encode_event(
                        &(ChannelEvent){.client = f.client, .tag = 1, .flags = FINAL_FLAGS}, buf,
                        sizeof(buf));

                ck_assert_int_gt(len, 0);
                send_message(f.ch.fd, buf, (size_t) len, NULL, 0);
                chan_assert_quiet(&f.ch);
        }

        for (size_t i = 0; i < ELEMENTSOF(broken) + 2; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *version = NULL;
                const char *what;

                /* A request in flight ends with the channel, without an event. */
                req = get_request(&f, 1, "x");
                send_request(&f.ch, &req, &quiet, 1);
                assert_inflight(f.bus, 1);
                if (i < ELEMENTSOF(broken)) {
                        what = broken[i].what;
                        send_message(f.ch.fd, broken[i].header, broken[i].len, NULL, 0);
                } else if (i == ELEMENTSOF(broken)) {
                        what = "message over the maximum";
                        send_message(f.ch.fd, huge, CHANNEL_MESSAGE_MAX + 1, NULL, 0);
                } else {
                        uint8_t ids[CHANNEL_HEADER_SIZE + 16];
                        int many[CHANNEL_FDS_MAX + 1];

                        what = "more fds than a message may carry";
                        for (size_t k = 0; k < ELEMENTSOF(many); k++)
                                many[k] = quiet;
                        ck_assert_int_gt(channel_encode_ids(CHANNEL_FRAME_CANCEL, f.client, 99, ids,
                                                            sizeof(ids)),
                                         0);
                        send_message(f.ch.fd, ids, sizeof(ids), many, ELEMENTSOF(many));
                }
                chan_assert_closed(&f.ch);
                ck_assert_msg(f.ch.n_queue == 0, "%s: an event came", what);
                assert_inflight(f.bus, 0);

                ck_assert(test_daemon_alive());
                ck_assert_int_ge(sd_bus_get_property_string(
                                         f.bus->bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                                         COAPCLIENTD_MANAGER_IFACE, "Version", &error, &version),
                                 0);
                ck_assert_int_ge(test_bus_list_clients(f.bus, &clients, NULL), 0);
                n = 0;
                for (char **c = clients; c && *c; c++, n++)
                        ck_assert_str_eq(*c, f.path);
                ck_assert_uint_eq(n, 1);
                test_strv_free(clients);

                chan_close(&f.ch);
                chan_open(&f.ch, f.bus);
                req = get_request(&f, 2, "");
                send_request(&f.ch, &req, &fd, 1);
                e = chan_final(&f.ch, 2, WAIT_USEC);
                ck_assert_int_eq(e.result, 0x45);
                event_done(&e);
        }
        /* Nothing the broken messages carried stayed open. */
        ck_assert_int_eq(test_bus_await_daemon_fds(f.bus, fds0, AWAIT_USEC), fds0);
        fixture_close(&f);
}
END_TEST

START_TEST(test_close_in_flight) {
        _cleanup_close_ int fd = -EBADF, silent = -EBADF, quiet = -EBADF;
        char **clients = NULL;
        Fixture f = {};
        ChannelRequest req;
        size_t n = 0;
        int fds0;
        Event e;

        fixture_open_no_channel(&f, "close");
        fd = peer_socket();
        quiet = silent_socket(&silent);
        fds0 = settled_fds(f.bus, 1);

        chan_open(&f.ch, f.bus);
        req = get_request(&f, 1, "x");
        send_request(&f.ch, &req, &quiet, 1);
        req = get_request(&f, 2, "async?5");
        send_request(&f.ch, &req, &fd, 1);
        req = get_request(&f, 3, "x");
        req.flags = 0; /* NON */
        send_request(&f.ch, &req, &quiet, 1);
        assert_inflight(f.bus, 3);
        ck_assert_uint_eq(test_bus_await_manager_u32(f.bus, "Sockets", 2, AWAIT_USEC), 2);

        chan_close(&f.ch);
        assert_inflight(f.bus, 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(f.bus, "Sockets", 0, AWAIT_USEC), 0);
        ck_assert_int_eq(test_bus_await_daemon_fds(f.bus, fds0, AWAIT_USEC), fds0);
        /* The caller and its client stay: its bus connection is alive. */
        ck_assert_uint_eq(manager_u32(f.bus, "Callers"), 1);
        ck_assert_uint_eq(manager_u32(f.bus, "Clients"), 1);
        ck_assert_int_ge(test_bus_list_clients(f.bus, &clients, NULL), 0);
        for (char **c = clients; c && *c; c++, n++)
                ck_assert_str_eq(*c, f.path);
        ck_assert_uint_eq(n, 1);
        test_strv_free(clients);
        ck_assert_int_eq(test_bus_run(f.bus, 0), 0);
        ck_assert_uint_eq(test_bus_count_queued(f.bus, UINT64_MAX), 0);

        /* A new channel, with the old tags free again. */
        chan_open(&f.ch, f.bus);
        req = get_request(&f, 1, "");
        send_request(&f.ch, &req, &fd, 1);
        e = chan_final(&f.ch, 1, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        event_done(&e);
        fixture_close(&f);
}
END_TEST

/* A REGISTER_SOCKET or RELEASE_SOCKET frame in a message of its own; fd < 0: none with it. */
static void send_socket(Chan *ch, ChannelFrameType type, uint64_t id, int fd) {
        uint8_t buf[CHANNEL_HEADER_SIZE + 8];

        ck_assert_int_eq(channel_encode_socket(type, id, buf, sizeof(buf)), (long) sizeof(buf));
        send_message(ch->fd, buf, sizeof(buf), fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
}

static ChannelRequest registered_get(const Fixture *f, uint64_t tag, const char *path,
                                     uint64_t socket_id) {
        ChannelRequest req = get_request(f, tag, path);

        req.flags |= CHANNEL_REQUEST_SOCKET_ID;
        req.socket_id = socket_id;
        return req;
}

/* A GET without an fd on the registered socket, answered 2.05. */
static void assert_registered_get(Fixture *f, uint64_t tag, uint64_t socket_id) {
        ChannelRequest req = registered_get(f, tag, "", socket_id);
        Event e;

        send_request(&f->ch, &req, NULL, 0);
        e = chan_final(&f->ch, tag, WAIT_USEC);
        ck_assert_msg(e.result == 0x45, "tag %llu: %d (%s)", (unsigned long long) tag, e.result,
                      e.error_name ?: "no error name");
        event_done(&e);
}

/* A registered socket serves requests without fds, outlives the app's fd and the daemon's
 * linger while registered, and goes with its release. */
START_TEST(test_register_socket) {
        _cleanup_close_ int fd = -EBADF;
        ChannelRequest req;
        Fixture f = {};
        int fds0;

        fixture_open_no_channel(&f, "register");
        fds0 = settled_fds(f.bus, 1);
        chan_open(&f.ch, f.bus);

        /* The app closes its fd at once: the daemon's copy keeps the socket. */
        fd = peer_socket();
        send_socket(&f.ch, CHANNEL_FRAME_REGISTER_SOCKET, 7, fd);
        fd = safe_close(fd);
        for (uint64_t tag = 1; tag <= 3; tag++)
                assert_registered_get(&f, tag, 7);
        ck_assert_uint_eq(test_bus_await_manager_u32(f.bus, "Sockets", 1, AWAIT_USEC), 1);
        /* Past the daemon's linger of an unused socket: still there. */
        chan_assert_quiet(&f.ch);
        ck_assert_uint_eq(manager_u32(f.bus, "Sockets"), 1);
        assert_registered_get(&f, 4, 7);

        send_socket(&f.ch, CHANNEL_FRAME_RELEASE_SOCKET, 7, -EBADF);
        ck_assert_uint_eq(test_bus_await_manager_u32(f.bus, "Sockets", 0, AWAIT_USEC), 0);
        req = registered_get(&f, 5, "", 7);
        assert_refused(&f.ch, &req, NULL, 0, COAPCLIENTD_ERROR_INVALID_ARGUMENT, EBADF);

        chan_close(&f.ch);
        ck_assert_int_eq(test_bus_await_daemon_fds(f.bus, fds0, AWAIT_USEC), fds0);
        fixture_close(&f);
}
END_TEST

/* What a broken or hostile library may send about registrations: each refusal is named on the
 * requests that depend on it, fds keep their frames, and nothing leaks. */
START_TEST(test_register_refusals) {
        _cleanup_close_ int fd = -EBADF, pr = -EBADF, pw = -EBADF, tcp = -EBADF;
        _cleanup_close_ int silent = -EBADF, quiet = -EBADF;
        uint8_t buf[512];
        ChannelRequest req;
        Fixture f = {};
        size_t len;
        int fds0;
        long n;
        Event e;

        fixture_open_no_channel(&f, "register-refusals");
        fd = peer_socket();
        quiet = silent_socket(&silent);
        make_pipe(&pr, &pw);
        tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(tcp, 0);
        fds0 = settled_fds(f.bus, 1);
        chan_open(&f.ch, f.bus);

        /* An id never registered. */
        req = registered_get(&f, 1, "", 99);
        assert_refused(&f.ch, &req, NULL, 0, COAPCLIENTD_ERROR_INVALID_ARGUMENT, EBADF);
        /* Registrations of what is no UDP socket, or of nothing. */
        send_socket(&f.ch, CHANNEL_FRAME_REGISTER_SOCKET, 1, pr);
        req = registered_get(&f, 2, "", 1);
        assert_refused(&f.ch, &req, NULL, 0, COAPCLIENTD_ERROR_NOT_A_SOCKET, ENOTSOCK);
        send_socket(&f.ch, CHANNEL_FRAME_REGISTER_SOCKET, 2, tcp);
        req = registered_get(&f, 3, "", 2);
        assert_refused(&f.ch, &req, NULL, 0, COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET, ESOCKTNOSUPPORT);
        send_socket(&f.ch, CHANNEL_FRAME_REGISTER_SOCKET, 3, -EBADF);
        req = registered_get(&f, 4, "", 3);
        assert_refused(&f.ch, &req, NULL, 0, COAPCLIENTD_ERROR_NOT_A_SOCKET, ENOTSOCK);
        /* Releases of ids that are not registered, refused ones included, are ignored. */
        send_socket(&f.ch, CHANNEL_FRAME_RELEASE_SOCKET, 1000, -EBADF);
        send_socket(&f.ch, CHANNEL_FRAME_RELEASE_SOCKET, 1, -EBADF);

        /* A malformed registration takes its fd all the same: the REQUEST after it in the message
         * gets its own socket, and the registration nothing. */
        n = channel_encode_socket(CHANNEL_FRAME_REGISTER_SOCKET, 4, buf, sizeof(buf));
        ck_assert_int_eq(n, 16);
        buf[0] = 15; /* a body of 7 bytes */
        len = 15;
        req = get_request(&f, 5, "");
        len += encode_request(&req, buf + len, sizeof(buf) - len);
        send_message(f.ch.fd, buf, len, (const int[]){pr, fd}, 2);
        e = chan_final(&f.ch, 5, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        event_done(&e);
        req = registered_get(&f, 6, "", 4);
        assert_refused(&f.ch, &req, NULL, 0, COAPCLIENTD_ERROR_INVALID_ARGUMENT, EBADF);

        /* Released while a request runs on it: the request keeps the socket; new requests cannot
         * name it any more. */
        send_socket(&f.ch, CHANNEL_FRAME_REGISTER_SOCKET, 5, quiet);
        req = registered_get(&f, 7, "x", 5);
        send_request(&f.ch, &req, NULL, 0);
        assert_inflight(f.bus, 1);
        send_socket(&f.ch, CHANNEL_FRAME_RELEASE_SOCKET, 5, -EBADF);
        req = registered_get(&f, 8, "", 5);
        assert_refused(&f.ch, &req, NULL, 0, COAPCLIENTD_ERROR_INVALID_ARGUMENT, EBADF);
        assert_inflight(f.bus, 1);
        /* The socket of request 5 lingers a little: then the request's alone is left. */
        ck_assert_uint_eq(test_bus_await_manager_u32(f.bus, "Sockets", 1, AWAIT_USEC), 1);
        send_ids(&f.ch, CHANNEL_FRAME_CANCEL, f.client, 7);
        assert_inflight(f.bus, 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(f.bus, "Sockets", 0, AWAIT_USEC), 0);

        /* The same id registered twice: the channel is closed, its registrations released. */
        send_socket(&f.ch, CHANNEL_FRAME_REGISTER_SOCKET, 6, fd);
        assert_registered_get(&f, 9, 6);
        send_socket(&f.ch, CHANNEL_FRAME_REGISTER_SOCKET, 6, quiet);
        chan_assert_closed(&f.ch);
        chan_close(&f.ch);
        ck_assert_uint_eq(test_bus_await_manager_u32(f.bus, "Sockets", 0, AWAIT_USEC), 0);
        ck_assert_int_eq(test_bus_await_daemon_fds(f.bus, fds0, AWAIT_USEC), fds0);
        fixture_close(&f);
}
END_TEST

/* A flood of registrations stops at the caller's limit (MaxRequestsPerUser, or MaxRequests for
 * root), named on the request that needs the refused one; its channel's end releases them all,
 * and another caller is served meanwhile. */
START_TEST(test_register_flood) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = malloc(16 * (CHANNEL_HEADER_SIZE + 8));
        Fixture f = {}, other = {};
        ChannelRequest req;
        uint32_t limit;
        uint64_t id = 0;
        int fds0;
        Event e;

        ck_assert_ptr_nonnull(buf);
        fixture_open_no_channel(&f, "register-flood");
        limit = manager_u32(f.bus, geteuid() == 0 ? "MaxRequests" : "MaxRequestsPerUser");
        fd = peer_socket();
        fds0 = settled_fds(f.bus, 1);
        chan_open(&f.ch, f.bus);

        /* 16 registrations per message, each with its own copy of the fd. */
        while (id < limit + 16) {
                int fds[16];
                size_t len = 0;

                for (size_t i = 0; i < 16; i++) {
                        fds[i] = fd;
                        len += (size_t) channel_encode_socket(CHANNEL_FRAME_REGISTER_SOCKET, ++id,
                                                              buf + len, CHANNEL_HEADER_SIZE + 8);
                }
                send_message(f.ch.fd, buf, len, fds, 16);
        }
        /* One socket for them all. */
        assert_registered_get(&f, 1, 1);
        assert_registered_get(&f, 2, limit);
        /* The last refusal is remembered, the ones before it are unknown ids. */
        req = registered_get(&f, 3, "", id);
        assert_refused(&f.ch, &req, NULL, 0, COAPCLIENTD_ERROR_LIMITS_EXCEEDED, ENOBUFS);
        req = registered_get(&f, 4, "", limit + 1);
        assert_refused(&f.ch, &req, NULL, 0, COAPCLIENTD_ERROR_INVALID_ARGUMENT, EBADF);
        ck_assert_uint_eq(manager_u32(f.bus, "Sockets"), 1);

        /* Another caller's requests still run, on an fd of their own. */
        fixture_open(&other, "register-flood-other");
        req = get_request(&other, 1, "");
        send_request(&other.ch, &req, &fd, 1);
        e = chan_final(&other.ch, 1, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        event_done(&e);
        fixture_close(&other);

        chan_close(&f.ch);
        ck_assert_uint_eq(test_bus_await_manager_u32(f.bus, "Sockets", 0, AWAIT_USEC), 0);
        ck_assert_int_eq(test_bus_await_daemon_fds(f.bus, fds0, AWAIT_USEC), fds0);
        fixture_close(&f);
}
END_TEST

static long daemon_rss_kib(void) {
        char path[64], line[256];
        long kib = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) test_daemon_pid());
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

/* A caller that floods requests (each refused: no socket) and never reads: once its unread
 * refusals pass twice its budget the daemon stops reading it, so the daemon's memory stays
 * bounded, others are served meanwhile, and the caller recovers by reading. */
START_TEST(test_flood_unread) {
        static uint8_t msg[CHANNEL_MESSAGE_MAX];
        _cleanup_close_ int fd = -EBADF;
        Fixture f = {}, other = {};
        size_t len = 0, n_msgs = 0;
        long rss0, rss1;
        uint64_t deadline, tag = 0;
        ChannelRequest req;
        Event e;

        fixture_open(&f, "flood");
        fixture_open(&other, "other");
        fd = peer_socket();
        rss0 = daemon_rss_kib();
        ck_assert_int_gt(rss0, 0);
        for (;;) {
                long n;

                req = get_request(&f, ++tag, "");
                n = channel_encode_request(&req, msg + len, sizeof(msg) - len);
                if (n < 0)
                        break;
                len += (size_t) n;
        }
        /* 1 s of sending whatever the channel takes: about 120 bytes of refusal per frame. */
        deadline = test_now_usec() + USEC_PER_SEC;
        while (test_now_usec() < deadline) {
                if (send(f.ch.fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
                        n_msgs++;
                else
                        (void) poll(&(struct pollfd){.fd = f.ch.fd, .events = POLLOUT}, 1, 10);
                (void) test_bus_run(f.bus, 0);
        }
        rss1 = daemon_rss_kib();
        printf("# %zu messages of %zu refused requests sent; daemon RSS %ld -> %ld KiB\n", n_msgs,
               (size_t) (tag - 1), rss0, rss1);
        /* Twice the 1 MiB budget, a few messages read in one go, and the heap's slack. */
        ck_assert_int_lt(rss1 - rss0, 16 * 1024);
        ck_assert(daemon_log_contains("not reading its requests until it catches up"));

        /* Another caller is served meanwhile. */
        req = get_request(&other, 1, "");
        send_request(&other.ch, &req, &fd, 1);
        e = chan_final(&other.ch, 1, WAIT_USEC);
        ck_assert_int_eq(e.result, 0x45);
        event_done(&e);

        /* Reading everything brings the flooder back: its next request is answered. */
        for (;;) {
                ssize_t n = recv(f.ch.fd, msg, sizeof(msg), MSG_DONTWAIT);

                if (n > 0)
                        continue;
                if (poll(&(struct pollfd){.fd = f.ch.fd, .events = POLLIN}, 1, 500) <= 0)
                        break;
        }
        req = get_request(&f, 1, "");
        ck_assert_int_eq(poll(&(struct pollfd){.fd = f.ch.fd, .events = POLLOUT}, 1, 10000), 1);
        send_request(&f.ch, &req, &fd, 1);
        for (;;) {
                e = chan_final(&f.ch, 1, WAIT_USEC);
                if (e.result == 0x45)
                        break;
                /* A refusal of the flood's own tag 1 may still come first. */
                event_done(&e);
        }
        event_done(&e);
        fixture_close(&other);
        fixture_close(&f);
}
END_TEST

START_TEST(test_leave_bus) {
        _cleanup_(test_bus_freep) TestBus *observer = NULL;
        _cleanup_close_ int fd = -EBADF, silent = -EBADF, quiet = -EBADF;
        Fixture f = {};
        ChannelRequest req;
        int fds0;

        ck_assert_int_eq(test_bus_new(&observer), 0);
        fd = peer_socket();
        quiet = silent_socket(&silent);
        fds0 = settled_fds(observer, 0);

        fixture_open(&f, "leaving");
        req = get_request(&f, 1, "x");
        send_request(&f.ch, &req, &quiet, 1);
        req = get_request(&f, 2, "async?5");
        send_request(&f.ch, &req, &fd, 1);
        assert_inflight(observer, 2);
        ck_assert_uint_eq(manager_u32(observer, "Callers"), 1);

        /* Off the bus, with the channel's end still open here. */
        f.bus = test_bus_free(f.bus);
        f.ch.bus = NULL;
        ck_assert_uint_eq(test_bus_await_manager_u32(observer, "Callers", 0, AWAIT_USEC), 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(observer, "Clients", 0, AWAIT_USEC), 0);
        assert_inflight(observer, 0);
        ck_assert_uint_eq(test_bus_await_manager_u32(observer, "Sockets", 0, AWAIT_USEC), 0);
        chan_assert_closed(&f.ch);
        ck_assert_uint_eq(f.ch.n_queue, 0);
        ck_assert_int_eq(test_bus_await_daemon_fds(observer, fds0, AWAIT_USEC), fds0);
        fixture_close(&f);
}
END_TEST

static Suite *channel_suite(void) {
        Suite *s = suite_create("channel");
        TCase *tc = tcase_create("channel");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_open_channel);
        tcase_add_test(tc, test_get);
        tcase_add_test(tc, test_message_section);
        tcase_add_test(tc, test_stream);
        tcase_add_test(tc, test_burst);
        tcase_add_test(tc, test_tx_params);
        tcase_add_test(tc, test_blockwise);
        tcase_add_test(tc, test_payloads);
        tcase_add_test(tc, test_refusals);
        tcase_add_test(tc, test_malformed_takes_its_fd);
        tcase_add_test(tc, test_ownership);
        tcase_add_test(tc, test_cancel);
        tcase_add_test(tc, test_observe);
        tcase_add_test(tc, test_broken_framing);
        tcase_add_test(tc, test_close_in_flight);
        tcase_add_test(tc, test_register_socket);
        tcase_add_test(tc, test_register_refusals);
        tcase_add_test(tc, test_register_flood);
        tcase_add_test(tc, test_flood_unread);
        tcase_add_test(tc, test_leave_bus);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(channel_suite)
