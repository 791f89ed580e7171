/* SPDX-License-Identifier: MIT */
/* Datagrams from a hostile "server" into a DTLS client that has just sent its ClientHello: record
 * framing, handshake message parsing and reassembly, alerts, timers. The input is a sequence of
 * datagrams, each preceded by its length (2 bytes, big endian); a trailing partial one is fed as
 * it is. Past the handshake records are authenticated, so this is where untrusted bytes reach
 * the most code. */

#include <errno.h>
#include <stdlib.h>

#include "dtls.h"
#include "fuzz.h"

#define check(expr)              \
        do {                     \
                if (!(expr))     \
                        abort(); \
        } while (0)

static int push(void *userdata, const uint8_t *buf, size_t len) {
        (void) userdata;
        check(buf && len > 0 && len <= DTLS_DEFAULT_MTU);
        return 0;
}

static void deliver(void *userdata, const uint8_t *buf, size_t len) {
        (void) userdata;
        check(buf || len == 0);
}

static void state_changed(void *userdata, DtlsState s, int error) {
        (void) userdata;
        check(s > DTLS_STATE_NEW && s < _DTLS_STATE_MAX);
        check((s == DTLS_STATE_FAILED) == (error < 0) || s == DTLS_STATE_CLOSED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const uint8_t key[] = "fuzzing-psk";
        DtlsIo io = {.push = push, .deliver = deliver, .state_changed = state_changed};
        DtlsCredentials *c = NULL;
        Dtls *d = NULL;
        uint64_t now = 1000000;

        check(dtls_credentials_new_psk("fuzz", key, sizeof(key) - 1, &c) == 0);
        check(dtls_new(c, &io, &d) == 0);
        c = dtls_credentials_unref(c);
        check(dtls_start(d, now) == 0);

        while (size > 0) {
                size_t len = size >= 2 ? (size_t) data[0] << 8 | data[1] : size;
                const uint8_t *p = size >= 2 ? data + 2 : data;
                size_t avail = size >= 2 ? size - 2 : size;
                int r;

                if (len > avail)
                        len = avail;
                r = dtls_feed(d, p, len, now);
                check(r == 0 || r == -ENOTCONN);
                now += 100000;
                check(dtls_on_timeout(d, now) == 0);
                check(dtls_next_timeout(d) >= now || dtls_get_state(d) != DTLS_STATE_HANDSHAKING);
                data = p + len;
                size = avail - len;
        }
        (void) dtls_send(d, (const uint8_t *) "x", 1);
        check(dtls_close(d) == 0);
        dtls_free(d);
        return 0;
}
