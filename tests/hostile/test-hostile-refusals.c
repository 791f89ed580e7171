/* SPDX-License-Identifier: MIT */
/* The smaller refusals of issue 12 point 6, each named:
 * - a socket connected to one address with a request for another destination is refused with
 *   InvalidAddress (it used to be sent nowhere and time out after every retransmission), through
 *   Request and through the data channel alike;
 * - LimitsExceeded names the limit it hit: the payload bytes held for requests in flight, and
 *   the number of requests in flight, each with a message of its own;
 * - a channel payload fd must be a memfd (docs/dbus-api.md, "The data channel"): a plain file
 *   on tmpfs is refused with InvalidArgument like any other non-memfd, a memfd (sealed or
 *   not) is taken;
 * - sockets registered on a data channel count against the user's MaxRequestsPerUser: one past
 *   it is refused with LimitsExceeded naming the limit, root's registrations go on meanwhile,
 *   and the user's leaving releases them all. */

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus-helper.h"
#include "channel-wire.h"
#include "check-main.h"
#include "hostile-util.h"
#include "internal/bus-api.h"
#include "internal/macro.h"
#include "net-helper.h"

#define PAYLOAD_SIZE 2000

/* The final EVENT of tag on the channel: its result, and its error name (or ""). */
typedef struct Final {
        int32_t result;
        char error_name[256];
} Final;

static Final chan_final(int fd, uint64_t tag) {
        static uint8_t buf[CHANNEL_MESSAGE_MAX];
        uint64_t deadline = test_now_usec() + hostile_usec(30 * USEC_PER_SEC);

        for (;;) {
                ChannelParseError pe = CHANNEL_PARSE_OK;
                size_t offset = 0;
                ChannelFrame f;
                ssize_t n;
                int r;

                ck_assert_msg(test_now_usec() < deadline, "no final event for tag %llu",
                              (unsigned long long) tag);
                r = poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, 100);
                ck_assert_int_ge(r, 0);
                if (r == 0)
                        continue;
                n = recv(fd, buf, sizeof(buf), 0);
                ck_assert_int_gt(n, 0);
                while ((r = channel_next_frame(buf, (size_t) n, &offset, &f, &pe)) > 0) {
                        ChannelEvent ev;
                        Final fin = {};

                        ck_assert_int_eq(channel_decode_event(&f, &ev, &pe), 0);
                        if (ev.tag != tag || !(ev.flags & CHANNEL_EVENT_FINAL))
                                continue;
                        fin.result = ev.result;
                        snprintf(fin.error_name, sizeof(fin.error_name), "%s", ev.error_name ?: "");
                        return fin;
                }
                ck_assert_int_eq(r, 0);
        }
}

static void chan_send(int fd, const ChannelRequest *req, const int *fds, size_t n_fds) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * 2)];
        } control = {};
        static uint8_t buf[CHANNEL_MESSAGE_MAX];
        long len = channel_encode_request(req, buf, sizeof(buf));
        struct iovec iov = {.iov_base = buf};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        ck_assert_int_gt(len, 0);
        ck_assert_uint_le(n_fds, 2);
        iov.iov_len = (size_t) len;
        channel_attach_fds(&mh, &control, sizeof(control), fds, n_fds);
        ck_assert_int_eq(sendmsg(fd, &mh, MSG_NOSIGNAL), len);
}

/* A client of root and its channel. */
static void open_client(TestBus **ret_bus, char **ret_path, uint64_t *ret_id, int *ret_chan) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int fd;

        ck_assert_int_eq(test_bus_new(ret_bus), 0);
        ck_assert_int_eq(test_bus_create_client(*ret_bus, "refusals", ret_path, NULL), 0);
        *ret_id = strtoull(*ret_path + strlen(COAPCLIENTD_CLIENT_PREFIX "/"), NULL, 10);
        ck_assert_int_ge(sd_bus_call_method((*ret_bus)->bus, COAPCLIENTD_BUS_NAME,
                                            COAPCLIENTD_ROOT_PATH, COAPCLIENTD_MANAGER_IFACE,
                                            "OpenChannel", NULL, &reply, NULL),
                         0);
        ck_assert_int_ge(sd_bus_message_read(reply, "h", &fd), 0);
        *ret_chan = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        ck_assert_int_ge(*ret_chan, 0);
}

START_TEST(test_connected_socket_other_destination) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int fd = -EBADF, chan = -EBADF;
        /* Short retransmissions: where the request is taken, it ends soon either way. */
        TestRequest req = {
                .method = TEST_GET, .path = "", .ack_timeout = 200, .max_retransmission = 1};
        struct sockaddr_in other = {.sin_family = AF_INET};
        char dest[64];
        uint64_t client_id, id;
        uint16_t port;
        Final fin;

        open_client(&b, &client, &client_id, &chan);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(test_udp_closed_port(&port), 0);
        test_format_destination(dest, sizeof(dest), "127.0.0.1", port);

        (void) test_bus_request(b, client, fd, dest, &req, &id, &error);
        printf("# Request on a socket connected to %s:%u, destination %s: %s %s\n",
               test_peer_host(), test_peer_port(), dest, error.name ?: "accepted",
               error.message ?: "");
        fflush(stdout);

        other.sin_port = htons(port);
        ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", &other.sin_addr), 1);
        chan_send(chan,
                  &(ChannelRequest){.client = client_id,
                                    .tag = 1,
                                    .method = TEST_GET,
                                    .flags = CHANNEL_REQUEST_CONFIRMABLE | CHANNEL_REQUEST_PARAMS,
                                    .ack_timeout_ms = 200,
                                    .ack_random_percent = 150,
                                    .backoff_percent = 200,
                                    .max_retransmission = 1,
                                    .dest = (const uint8_t *) &other,
                                    .dest_len = sizeof(other),
                                    .path = ""},
                  &fd, 1);
        fin = chan_final(chan, 1);
        printf("# the same through the channel: %d %s\n", fin.result, fin.error_name);
        fflush(stdout);
        ck_assert_str_eq(error.name ?: "", COAPCLIENTD_ERROR_INVALID_ADDRESS);
        ck_assert_str_eq(fin.error_name, COAPCLIENTD_ERROR_INVALID_ADDRESS);
        ck_assert_int_eq(fin.result, -EINVAL);

        /* The connected peer itself is served. */
        chan_send(chan,
                  &(ChannelRequest){.client = client_id,
                                    .tag = 2,
                                    .method = TEST_GET,
                                    .flags = CHANNEL_REQUEST_CONFIRMABLE,
                                    .path = ""},
                  &fd, 1);
        ck_assert_int_eq(chan_final(chan, 2).result, 0x45);
}
END_TEST

/* Requests that stay in flight (the peer never answers) until one is refused: its error. */
static void fill_until_refused(TestBus *b, const char *client, int fd, const TestRequest *req,
                               sd_bus_error *error, unsigned *ret_taken) {
        uint64_t id;

        for (*ret_taken = 0; *ret_taken < 64; (*ret_taken)++)
                if (test_bus_request(b, client, fd, "", req, &id, error) < 0)
                        return;
        ck_abort_msg("64 requests, none refused");
}

START_TEST(test_limits_exceeded_names_its_limit) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error payload_error = SD_BUS_ERROR_NULL,
                                                  count_error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int silent = -EBADF, fd = -EBADF;
        uint8_t payload[1000] = {};
        TestRequest put = {.method = TEST_PUT,
                           .path = "x",
                           .payload = payload,
                           .payload_len = sizeof(payload),
                           .ack_timeout = 600000};
        TestRequest get = {.method = TEST_GET, .path = "x", .ack_timeout = 600000};
        TestPrivateDaemon d;
        unsigned with_payload, without;
        uint16_t port;

        /* Small limits of a daemon of its own: 4 payloads of 1000 bytes fit, 16 requests. */
        ck_assert_int_eq(test_private_daemon_start("[Limits]\n"
                                                   "MaxRequests=16\n"
                                                   "MaxPayloadBytes=4096\n"
                                                   "MaxPayloadBytesTotal=4096\n",
                                                   &d),
                         0);
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "limits", &client, NULL), 0);
        silent = test_udp_silent(AF_INET, &port);
        ck_assert_int_ge(silent, 0);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);

        fill_until_refused(b, client, fd, &put, &payload_error, &with_payload);
        fill_until_refused(b, client, fd, &get, &count_error, &without);
        printf("# after %u requests with 1000 payload bytes: %s: %s\n", with_payload,
               payload_error.name, payload_error.message);
        printf("# after %u more without payload: %s: %s\n", without, count_error.name,
               count_error.message);
        fflush(stdout);

        ck_assert_str_eq(payload_error.name, COAPCLIENTD_ERROR_LIMITS_EXCEEDED);
        ck_assert_str_eq(count_error.name, COAPCLIENTD_ERROR_LIMITS_EXCEEDED);
        ck_assert_msg(strcasestr(payload_error.message, "payload"),
                      "the payload refusal does not name its limit");
        ck_assert_msg(strcasestr(count_error.message, "request") &&
                              !strcasestr(count_error.message, "payload"),
                      "the request-count refusal does not name its limit");
        ck_assert_str_ne(payload_error.message, count_error.message);

        b = test_bus_free(b);
        ck_assert_int_eq(test_private_daemon_stop(&d), 0);
}
END_TEST

static int tmpfs_file_with(const uint8_t *data, size_t len) {
        int fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, len), (ssize_t) len);
        return fd;
}

static int memfd_with(const uint8_t *data, size_t len, bool sealed) {
        int fd = memfd_create("payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, len), (ssize_t) len);
        if (sealed)
                ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW),
                                 0);
        return fd;
}

START_TEST(test_payload_fd_not_memfd) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int chan = -EBADF, fd = -EBADF, tmpfs = -EBADF, memfd = -EBADF,
                            sealed = -EBADF;
        uint8_t payload[PAYLOAD_SIZE];
        uint64_t client_id;
        ChannelRequest req;
        Final fin;

        open_client(&b, &client, &client_id, &chan);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        test_fill_random(payload, sizeof(payload), 6);
        tmpfs = tmpfs_file_with(payload, sizeof(payload));
        memfd = memfd_with(payload, sizeof(payload), false);
        sealed = memfd_with(payload, sizeof(payload), true);
        req = (ChannelRequest){
                .client = client_id,
                .method = TEST_PUT,
                .flags = CHANNEL_REQUEST_CONFIRMABLE | CHANNEL_REQUEST_PAYLOAD_FD,
                .path = "example_data",
                .payload_len = sizeof(payload),
        };

        req.tag = 1;
        chan_send(chan, &req, (const int[]){fd, tmpfs}, 2);
        fin = chan_final(chan, 1);
        printf("# a tmpfs file as payload fd: %d %s\n", fin.result, fin.error_name);
        fflush(stdout);
        ck_assert_str_eq(fin.error_name, COAPCLIENTD_ERROR_INVALID_ARGUMENT);
        ck_assert_int_eq(fin.result, -EINVAL);

        req.tag = 2;
        chan_send(chan, &req, (const int[]){fd, memfd}, 2);
        fin = chan_final(chan, 2);
        ck_assert_msg(fin.result >= 0x41 && fin.result <= 0x44, "memfd: %d %s", fin.result,
                      fin.error_name);

        req.tag = 3;
        chan_send(chan, &req, (const int[]){fd, sealed}, 2);
        fin = chan_final(chan, 3);
        ck_assert_msg(fin.result >= 0x41 && fin.result <= 0x44, "sealed memfd: %d %s", fin.result,
                      fin.error_name);
}
END_TEST

START_TEST(test_registration_quota) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int chan = -EBADF, fd = -EBADF;
        uint8_t frame[CHANNEL_HEADER_SIZE + 8];
        char line[512], arg[16], name[256];
        HostileCaller reg = {};
        int first = 0, last = 0;
        uint32_t quota;
        uint64_t id;
        Final fin;

        ck_assert_int_ge(hostile_bus_open(&bus), 0);
        ck_assert_int_ge(hostile_manager_u32(bus, "MaxRequestsPerUser", &quota), 0);
        /* The earlier tests' sockets go first. */
        ck_assert_uint_eq(
                hostile_await_manager_u32(bus, "Sockets", 0, hostile_usec(10 * USEC_PER_SEC)), 0);
        snprintf(arg, sizeof(arg), "%u", quota + 1);
        ck_assert_int_ge(
                hostile_spawn(hostile_user(0), (const char *const[]){"register", arg, NULL}, &reg),
                0);
        ck_assert_int_eq(hostile_expect(&reg, "register ", line, sizeof(line),
                                        hostile_usec(60 * USEC_PER_SEC)),
                         0);
        printf("# %s, %s ids: %s\n", hostile_user(0), arg, line);
        fflush(stdout);
        ck_assert_int_eq(sscanf(line, "register %d %d %255s", &first, &last, name), 3);
        ck_assert_int_eq(first, 0x45);
        ck_assert_int_eq(last, -ENOBUFS);
        ck_assert_str_eq(name, COAPCLIENTD_ERROR_LIMITS_EXCEEDED);

        /* Root registers and is served meanwhile. */
        open_client(&b, &client, &id, &chan);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(
                channel_encode_socket(CHANNEL_FRAME_REGISTER_SOCKET, 1, frame, sizeof(frame)),
                (long) sizeof(frame));
        {
                union {
                        struct cmsghdr h;
                        uint8_t buf[CMSG_SPACE(sizeof(int))];
                } control = {};
                struct iovec iov = {.iov_base = frame, .iov_len = sizeof(frame)};
                struct msghdr mh = {.msg_iov = &iov,
                                    .msg_iovlen = 1,
                                    .msg_control = &control,
                                    .msg_controllen = sizeof(control)};
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &fd, sizeof(int));
                ck_assert_int_eq(sendmsg(chan, &mh, MSG_NOSIGNAL), (ssize_t) sizeof(frame));
        }
        {
                uint8_t buf[256];
                long len =
                        channel_encode_request(&(ChannelRequest){.client = id,
                                                                 .tag = 1,
                                                                 .method = TEST_GET,
                                                                 .flags = CHANNEL_REQUEST_SOCKET_ID,
                                                                 .socket_id = 1,
                                                                 .path = ""},
                                               buf, sizeof(buf));

                ck_assert_int_gt(len, 0);
                ck_assert_int_eq(send(chan, buf, (size_t) len, MSG_NOSIGNAL), len);
        }
        fin = chan_final(chan, 1);
        ck_assert_int_eq(fin.result, 0x45);

        /* The user's leaving releases its registrations: root's socket is left. */
        ck_assert_int_eq(hostile_stop(&reg, hostile_usec(10 * USEC_PER_SEC)), 0);
        ck_assert_uint_eq(
                hostile_await_manager_u32(bus, "Sockets", 1, hostile_usec(10 * USEC_PER_SEC)), 1);
        chan = safe_close(chan);
        ck_assert_uint_eq(
                hostile_await_manager_u32(bus, "Sockets", 0, hostile_usec(10 * USEC_PER_SEC)), 0);
}
END_TEST

static Suite *refusals_suite(void) {
        Suite *s = suite_create("hostile-refusals");
        TCase *tc = tcase_create("refusals");

        tcase_set_timeout(tc, (double) hostile_usec(30 * USEC_PER_SEC) / USEC_PER_SEC);
        tcase_add_test(tc, test_connected_socket_other_destination);
        tcase_add_test(tc, test_limits_exceeded_names_its_limit);
        tcase_add_test(tc, test_payload_fd_not_memfd);
        tcase_add_test(tc, test_registration_quota);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(refusals_suite)
