/* SPDX-License-Identifier: MIT */
/* Feeds the input as one data-channel message to the daemon's REQUEST path without a daemon:
 * each REQUEST frame that decodes becomes RequestArgs as daemon/channel/channel-request.c makes
 * them, with a memfd for a payload the frame says is in one (of the right size or one byte off,
 * by the tag's lowest bit). A refused request must carry one of our error names whose errno is
 * the return value; an accepted one must be within every limit docs/dbus-api.md promises. */

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "channel/channel-request.h"
#include "fuzz.h"
#include "request-args-check.h"

/* A memfd of n bytes, -1 when it cannot be made (then the request goes without one). */
static int make_memfd(size_t n) {
        int fd = memfd_create("fuzz-payload", MFD_CLOEXEC);

        if (fd >= 0 && ftruncate(fd, (off_t) n) < 0)
                fd = safe_close(fd);
        return fd;
}

static void feed_request(const ChannelFrame *f) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ uint8_t *payload = NULL;
        RequestError e = {};
        _cleanup_close_ int payload_fd = -EBADF;
        ManagerConfig config = MANAGER_CONFIG_DEFAULT;
        ChannelParseError pe;
        ChannelRequest req;
        RequestArgs a;
        int r;

        if (channel_decode_request(f, &req, &pe) < 0)
                return;
        config.limits.max_payload_bytes = FUZZ_MAX_PAYLOAD;
        /* Only sizes the payload limit may let through: larger ones are refused unread. */
        if ((req.flags & CHANNEL_REQUEST_PAYLOAD_FD) && req.payload_len <= FUZZ_MAX_PAYLOAD + 1)
                payload_fd = make_memfd(req.payload_len + (req.tag & 1));

        r = channel_request_to_args(&req, &config, payload_fd, &a, &payload, &e);
        /* As the data channel names a refusal: through the same map as D-Bus. */
        if (e.name)
                (void) sd_bus_error_set(&error, e.name, e.message);
        if (r >= 0) {
                check(r == 0 && !sd_bus_error_is_set(&error));
                request_args_check_accepted(&a);
                check(!(req.flags & CHANNEL_REQUEST_PAYLOAD_FD) || a.payload_len == 0 ||
                      a.payload == payload);
        } else if (r != -ENOMEM)
                request_args_check_refused(r, &error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ChannelParseError pe;
        size_t offset = 0;
        ChannelFrame f;

        check(bus_api_register_errors() >= 0);
        while (channel_next_frame(data, size, &offset, &f, &pe) > 0)
                if (f.type == CHANNEL_FRAME_REQUEST)
                        feed_request(&f);
        return 0;
}
