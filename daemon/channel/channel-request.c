/* SPDX-License-Identifier: MIT */
#include "channel/channel-request.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal/error-names.h"
#include "internal/macro.h"

/* Whether fd is a memfd: its /proc link names one. F_GET_SEALS alone would take any tmpfs or
 * hugetlbfs file as well. */
static bool fd_is_memfd(int fd) {
        char path[64], target[16];
        ssize_t n;

        (void) snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, target, sizeof(target));
        return n >= 7 && memcmp(target, "/memfd:", 7) == 0;
}

/* Reads the payload a request left in a memfd: exactly len bytes from offset 0. Only a memfd: a
 * file on a slow or stuck file system would block the daemon. pread, not mmap: the sender may
 * still truncate it. */
static int read_payload_fd(int fd, size_t len, uint8_t **ret, RequestError *e) {
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t done = 0;

        if (!fd_is_memfd(fd) || fcntl(fd, F_GET_SEALS) < 0 || fstat(fd, &st) < 0 ||
            !S_ISREG(st.st_mode) || (uint64_t) st.st_size != len)
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ARGUMENT, -EINVAL,
                                         "The payload fd is not a memfd of %zu bytes.", len);
        buf = malloc(len ? len : 1);
        if (!buf)
                return -ENOMEM;
        while (done < len) {
                ssize_t n = pread(fd, buf + done, len - done, (off_t) done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ARGUMENT, -EINVAL,
                                                 "The payload fd ended after %zu bytes.", done);
                done += (size_t) n;
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

int channel_request_to_args(const ChannelRequest *req, const ManagerConfig *config, int payload_fd,
                            RequestArgs *a, uint8_t **ret_payload, RequestError *e) {
        int r;

        request_args_init(a, config);
        a->method = req->method;
        a->confirmable = req->flags & CHANNEL_REQUEST_CONFIRMABLE;
        a->observe = req->flags & CHANNEL_REQUEST_OBSERVE;
        a->path = req->path;
        if (req->flags & CHANNEL_REQUEST_CONTENT_FORMAT)
                a->content_format = req->content_format;
        for (size_t i = 0; i < req->n_options; i++) {
                r = request_args_add_option(a, req->options[i].number, req->options[i].value,
                                            req->options[i].len, e);
                if (r < 0)
                        return r;
        }
        if (req->flags & CHANNEL_REQUEST_PARAMS) {
                r = request_args_set_tx_param(a, REQUEST_ACK_TIMEOUT, req->ack_timeout_ms, e);
                if (r >= 0 && req->ack_random_percent != 0)
                        r = request_args_set_tx_param(a, REQUEST_ACK_RANDOM_PERCENT,
                                                      req->ack_random_percent, e);
                if (r >= 0)
                        r = request_args_set_tx_param(a, REQUEST_BACKOFF_PERCENT,
                                                      req->backoff_percent, e);
                if (r >= 0)
                        r = request_args_set_tx_param(a, REQUEST_MAX_RETRANSMISSION,
                                                      req->max_retransmission, e);
                if (r < 0)
                        return r;
        }
        if (req->block_size != 0) {
                r = request_args_set_block_size(a, req->block_size, e);
                if (r < 0)
                        return r;
                /* The library sends a block size only when the application chose one, with
                 * coap_client_set_block_size() or coap_client_option_initial_block2(): both ask
                 * for it from the first response on (RFC 7959 §2.4 early negotiation). */
                a->block2_early = true;
        }
        /* The size first: a memfd is only read when its length is acceptable. */
        r = request_args_set_payload(a, req->payload, req->payload_len, config, e);
        if (r < 0)
                return r;
        if (req->flags & CHANNEL_REQUEST_STREAM) {
                /* The beginning inline, more than one block of a size the library chose. */
                if ((req->flags & CHANNEL_REQUEST_PAYLOAD_FD) || req->block_size == 0 ||
                    req->payload_len <= req->block_size || req->payload_len > CHANNEL_UPLOAD_WINDOW)
                        return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ARGUMENT, -EINVAL,
                                                 "A streamed body begins inline with more than "
                                                 "one block and at most %d bytes.",
                                                 CHANNEL_UPLOAD_WINDOW);
                a->stream_window = CHANNEL_UPLOAD_WINDOW;
        }
        a->multicast_ms = req->multicast_ms;
        if (req->flags & CHANNEL_REQUEST_PAYLOAD_FD) {
                if (payload_fd < 0)
                        return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ARGUMENT, -EINVAL,
                                                 "The request's payload fd is missing.");
                r = read_payload_fd(payload_fd, req->payload_len, ret_payload, e);
                if (r < 0)
                        return r;
                a->payload = *ret_payload;
        }
        return request_args_finish(a, e);
}
