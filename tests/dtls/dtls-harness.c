/* SPDX-License-Identifier: MIT */
#include "dtls-harness.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/dtls.h>

#include "internal/macro.h"

#define SERVER_PRIORITY                                                                   \
        "NORMAL:-VERS-ALL:+VERS-DTLS1.2:+ECDHE-PSK:+PSK:+AES-128-CCM-8:+CTYPE-CLI-RAWPK:" \
        "+CTYPE-SRV-RAWPK"

static void queue_push(Queue *q, const void *buf, size_t len) {
        Datagram *dg;

        if (q->pushed++ - q->drop_first < q->drop_n) {
                q->dropped++;
                return;
        }
        ck_assert_uint_lt(q->n, HARNESS_QUEUE_MAX);
        dg = &q->items[(q->head + q->n) % HARNESS_QUEUE_MAX];
        dg->data = malloc(len > 0 ? len : 1);
        ck_assert_ptr_nonnull(dg->data);
        memcpy(dg->data, buf, len);
        dg->len = len;
        q->n++;
}

static bool queue_pop(Queue *q, Datagram *ret) {
        if (q->n == 0)
                return false;
        *ret = q->items[q->head];
        q->head = (q->head + 1) % HARNESS_QUEUE_MAX;
        q->n--;
        return true;
}

static void queue_clear(Queue *q) {
        Datagram dg;

        while (queue_pop(q, &dg))
                free(dg.data);
}

/* ---- client callbacks ---- */

static int client_push(void *u, const uint8_t *buf, size_t len) {
        Harness *h = u;

        if (h->push_result < 0)
                return h->push_result;
        queue_push(&h->to_server, buf, len);
        return 0;
}

static void client_deliver(void *u, const uint8_t *buf, size_t len) {
        Harness *h = u;

        ck_assert_uint_le(h->received_len + len, sizeof(h->received));
        memcpy(h->received + h->received_len, buf, len);
        h->received_len += len;
        h->n_received++;
        if (h->close_on_deliver)
                ck_assert_int_eq(dtls_close(h->client), 0);
}

static void client_state_changed(void *u, DtlsState s, int error) {
        Harness *h = u;

        ck_assert_uint_lt(h->n_states, ELEMENTSOF(h->states));
        h->states[h->n_states] = s;
        h->errors[h->n_states] = error;
        h->n_states++;
        if (s == DTLS_STATE_ESTABLISHED && h->send_on_established)
                ck_assert_int_eq(dtls_send(h->client, (const uint8_t *) h->send_on_established,
                                           strlen(h->send_on_established)),
                                 0);
}

/* ---- server transport ---- */

static ssize_t server_pull(gnutls_transport_ptr_t p, void *buf, size_t size) {
        Harness *h = p;
        Datagram dg;
        size_t n;

        if (!queue_pop(&h->to_server, &dg)) {
                gnutls_transport_set_errno(h->server, EAGAIN);
                return -1;
        }
        n = MIN(size, dg.len);
        memcpy(buf, dg.data, n);
        free(dg.data);
        return (ssize_t) n;
}

static int server_pull_timeout(gnutls_transport_ptr_t p, unsigned ms) {
        Harness *h = p;

        (void) ms;
        return h->to_server.n > 0;
}

static ssize_t server_push(gnutls_transport_ptr_t p, const void *buf, size_t size) {
        Harness *h = p;

        queue_push(&h->to_client, buf, size);
        return (ssize_t) size;
}

static int server_psk_cb(gnutls_session_t s, const char *username, gnutls_datum_t *key) {
        Harness *h = gnutls_session_get_ptr(s);

        if (!h->psk_identity || strcmp(username, h->psk_identity) != 0) {
                h->psk_unknown = true;
                return -1;
        }
        key->data = gnutls_malloc(h->psk_key.size);
        ck_assert_ptr_nonnull(key->data);
        memcpy(key->data, h->psk_key.data, h->psk_key.size);
        key->size = h->psk_key.size;
        return 0;
}

void harness_init(Harness *h) {
        *h = (Harness){};
        ck_assert_int_eq(gnutls_session_ticket_key_generate(&h->ticket_key), 0);
}

void harness_done(Harness *h) {
        h->client = dtls_free(h->client);
        if (h->server)
                gnutls_deinit(h->server);
        if (h->server_psk)
                gnutls_psk_free_server_credentials(h->server_psk);
        if (h->server_cert)
                gnutls_certificate_free_credentials(h->server_cert);
        gnutls_memset(h->ticket_key.data, 0, h->ticket_key.size);
        gnutls_free(h->ticket_key.data);
        queue_clear(&h->to_server);
        queue_clear(&h->to_client);
        *h = (Harness){};
}

void harness_server_psk(Harness *h, const char *identity, const char *key) {
        ck_assert_int_eq(gnutls_psk_allocate_server_credentials(&h->server_psk), 0);
        gnutls_psk_set_server_credentials_function(h->server_psk, server_psk_cb);
        h->psk_identity = identity;
        h->psk_key =
                (gnutls_datum_t){.data = (unsigned char *) key, .size = (unsigned) strlen(key)};
}

void harness_server_cert(Harness *h, const gnutls_datum_t *cert_pem,
                         const gnutls_datum_t *key_pem) {
        ck_assert_int_eq(gnutls_certificate_allocate_credentials(&h->server_cert), 0);
        ck_assert_int_eq(gnutls_certificate_set_x509_key_mem(h->server_cert, cert_pem, key_pem,
                                                             GNUTLS_X509_FMT_PEM),
                         0);
}

void harness_server_rawpk(Harness *h, const gnutls_datum_t *pub_pem,
                          const gnutls_datum_t *key_pem) {
        ck_assert_int_eq(gnutls_certificate_allocate_credentials(&h->server_cert), 0);
        ck_assert_int_eq(gnutls_certificate_set_rawpk_key_mem(h->server_cert, pub_pem, key_pem,
                                                              GNUTLS_X509_FMT_PEM, NULL, 0, NULL, 0,
                                                              0),
                         0);
        h->server_flags |= GNUTLS_ENABLE_RAWPK;
}

void harness_server_start(Harness *h) {
        gnutls_session_t s;

        if (h->server)
                gnutls_deinit(h->server);
        ck_assert_int_eq(gnutls_init(&s, GNUTLS_SERVER | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK |
                                                 h->server_flags),
                         0);
        h->server = s;
        h->server_started = h->server_done = h->server_eof = false;
        h->server_error = 0;
        h->server_received_len = 0;
        gnutls_session_set_ptr(s, h);
        gnutls_transport_set_ptr(s, h);
        gnutls_transport_set_push_function(s, server_push);
        gnutls_transport_set_pull_function(s, server_pull);
        gnutls_transport_set_pull_timeout_function(s, server_pull_timeout);
        gnutls_dtls_set_mtu(s, DTLS_DEFAULT_MTU);
        gnutls_dtls_set_timeouts(s, HARNESS_RETRANSMIT_USEC / 1000, HARNESS_TOTAL_USEC / 1000);
        if (h->server_psk)
                ck_assert_int_eq(gnutls_credentials_set(s, GNUTLS_CRD_PSK, h->server_psk), 0);
        if (h->server_cert) {
                ck_assert_int_eq(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, h->server_cert),
                                 0);
                gnutls_certificate_server_set_request(s, h->server_cert_request);
        }
        ck_assert_int_eq(
                gnutls_priority_set_direct(
                        s, h->server_priority ? h->server_priority : SERVER_PRIORITY, NULL),
                0);
        ck_assert_int_eq(gnutls_session_ticket_enable_server(s, &h->ticket_key), 0);
}

void harness_client(Harness *h, DtlsCredentials *c) {
        DtlsIo io = {
                .userdata = h,
                .push = client_push,
                .deliver = client_deliver,
                .state_changed = client_state_changed,
        };

        ck_assert_int_eq(dtls_new(c, &io, &h->client), 0);
        ck_assert_int_eq(dtls_set_timeouts(h->client, HARNESS_RETRANSMIT_USEC, HARNESS_TOTAL_USEC),
                         0);
}

uint64_t harness_now(void) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static void server_step(Harness *h) {
        int r;

        if (!h->server || h->server_error != 0)
                return;
        h->server_started = true;
        while (!h->server_done) {
                r = gnutls_handshake(h->server);
                if (r == 0)
                        h->server_done = true;
                else if (r == GNUTLS_E_AGAIN)
                        return;
                else if (gnutls_error_is_fatal(r)) {
                        h->server_error = r;
                        /* What RFC 4279 §2 suggests; GnuTLS itself would say internal_error. */
                        if (h->psk_unknown)
                                (void) gnutls_alert_send(h->server, GNUTLS_AL_FATAL,
                                                         GNUTLS_A_UNKNOWN_PSK_IDENTITY);
                        else
                                (void) gnutls_alert_send_appropriate(h->server, r);
                        return;
                }
        }
        for (;;) {
                uint8_t buf[2048];
                ssize_t n = gnutls_record_recv(h->server, buf, sizeof(buf));

                if (n > 0) {
                        ck_assert_uint_le(h->server_received_len + (size_t) n,
                                          sizeof(h->server_received));
                        memcpy(h->server_received + h->server_received_len, buf, (size_t) n);
                        h->server_received_len += (size_t) n;
                } else if (n == 0) {
                        h->server_eof = true;
                        return;
                } else if (n == GNUTLS_E_AGAIN) {
                        return;
                } else if (gnutls_error_is_fatal((int) n)) {
                        h->server_error = (int) n;
                        return;
                }
        }
}

void harness_pump(Harness *h) {
        Datagram dg;

        while (h->to_server.n > 0 || h->to_client.n > 0) {
                while (h->to_server.n > 0) {
                        if (!h->server || h->server_error != 0 || h->server_eof) {
                                queue_clear(&h->to_server);
                                break;
                        }
                        server_step(h);
                }
                while (queue_pop(&h->to_client, &dg)) {
                        (void) dtls_feed(h->client, dg.data, dg.len, harness_now());
                        free(dg.data);
                }
        }
}

bool harness_run(Harness *h, bool (*done)(Harness *h), uint64_t limit_usec) {
        uint64_t limit = harness_now() + limit_usec;

        for (;;) {
                uint64_t now, next;
                struct timespec ts;

                harness_pump(h);
                if (done(h))
                        return true;
                now = harness_now();
                if (now >= limit)
                        return false;
                next = dtls_next_timeout(h->client);
                if (h->server_started && !h->server_done && h->server_error == 0)
                        next = MIN(next, now + gnutls_dtls_get_timeout(h->server) * USEC_PER_MSEC);
                if (next == USEC_INFINITY)
                        return false; /* nothing left that could make progress */
                next = MIN(next, limit);
                /* Waiting for the earliest timer is the event loop, not a timing fudge. */
                ts.tv_sec = (time_t) (next / USEC_PER_SEC);
                ts.tv_nsec = (long) (next % USEC_PER_SEC) * 1000;
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                        ;
                ck_assert_int_eq(dtls_on_timeout(h->client, harness_now()), 0);
                if (h->server_started && !h->server_done)
                        server_step(h);
        }
}

static bool client_settled(Harness *h) {
        DtlsState s = dtls_get_state(h->client);

        return s != DTLS_STATE_HANDSHAKING && (s != DTLS_STATE_ESTABLISHED || h->server_done);
}

DtlsState harness_handshake(Harness *h) {
        ck_assert_int_eq(dtls_start(h->client, harness_now()), 0);
        ck_assert(harness_run(h, client_settled, 2 * HARNESS_TOTAL_USEC));
        return dtls_get_state(h->client);
}

int harness_server_send(Harness *h, const char *text) {
        ssize_t n = gnutls_record_send(h->server, text, strlen(text));

        return n < 0 ? (int) n : 0;
}

DtlsState harness_last_state(const Harness *h) {
        ck_assert_uint_gt(h->n_states, 0);
        return h->states[h->n_states - 1];
}

int harness_last_error(const Harness *h) {
        ck_assert_uint_gt(h->n_states, 0);
        return h->errors[h->n_states - 1];
}
