/* SPDX-License-Identifier: MIT */
/* The DTLS module with PSK against an in-process GnuTLS server: handshake, data, loss,
 * timeouts, alerts, close_notify, resumption. */

#include <errno.h>
#include <string.h>
#include <time.h>

#include "check-main.h"
#include "dtls-harness.h"
#include "internal/macro.h"

#define IDENTITY "client1"
#define KEY      "secretPSK"

static DtlsCredentials *psk_creds(const char *identity, const char *key) {
        DtlsCredentials *c = NULL;

        ck_assert_int_eq(dtls_credentials_new_psk(identity, key, strlen(key), &c), 0);
        return c;
}

/* Client and server with PSK; the client is created but not started. */
static void setup_psk(Harness *h, const char *identity, const char *key) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = psk_creds(identity, key);

        harness_init(h);
        harness_server_psk(h, IDENTITY, KEY);
        harness_server_start(h);
        harness_client(h, c);
}

static bool client_has_reply(Harness *h) {
        return h->n_received > 0;
}

static bool server_has_data(Harness *h) {
        return h->server_received_len > 0;
}

START_TEST(test_psk_handshake_and_data) {
        Harness h;
        _cleanup_free_ char *desc = NULL;

        setup_psk(&h, IDENTITY, KEY);
        ck_assert_int_eq(dtls_get_state(h.client), DTLS_STATE_NEW);
        ck_assert_int_eq(dtls_send(h.client, (const uint8_t *) "x", 1), -EAGAIN);
        ck_assert_int_eq(dtls_describe(h.client, &desc), -ENOTCONN);

        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert_uint_eq(h.n_states, 2);
        ck_assert_int_eq(h.states[0], DTLS_STATE_HANDSHAKING);
        ck_assert_int_eq(h.states[1], DTLS_STATE_ESTABLISHED);
        ck_assert_int_eq(h.errors[1], 0);
        ck_assert_int_eq(dtls_get_error(h.client), 0);
        ck_assert(!dtls_is_resumed(h.client));
        ck_assert_uint_eq(dtls_next_timeout(h.client), USEC_INFINITY);

        ck_assert_int_eq(dtls_describe(h.client, &desc), 0);
        ck_assert_ptr_nonnull(strstr(desc, "DTLS1.2"));
        ck_assert_int_eq(gnutls_kx_get(h.server), GNUTLS_KX_ECDHE_PSK); /* forward secrecy */

        /* client -> server */
        ck_assert_int_eq(dtls_send(h.client, (const uint8_t *) "\x40\x01\x12\x34", 4), 0);
        ck_assert(harness_run(&h, server_has_data, HARNESS_TOTAL_USEC));
        ck_assert_uint_eq(h.server_received_len, 4);
        ck_assert_mem_eq(h.server_received, "\x40\x01\x12\x34", 4);

        /* server -> client: two records, two deliveries */
        ck_assert_int_eq(harness_server_send(&h, "hello"), 0);
        ck_assert_int_eq(harness_server_send(&h, "world"), 0);
        ck_assert(harness_run(&h, client_has_reply, HARNESS_TOTAL_USEC));
        ck_assert_uint_eq(h.n_received, 2);
        ck_assert_uint_eq(h.received_len, 10);
        ck_assert_mem_eq(h.received, "helloworld", 10);

        harness_done(&h);
}
END_TEST

START_TEST(test_psk_ccm8) {
        Harness h;
        _cleanup_free_ char *desc = NULL;

        setup_psk(&h, IDENTITY, KEY);
        /* CoAP's mandatory suite TLS_PSK_WITH_AES_128_CCM_8 and nothing else. */
        h.server_priority = "NONE:+VERS-DTLS1.2:+PSK:+AES-128-CCM-8:+AEAD:+COMP-NULL:+SIGN-ALL:"
                            "+GROUP-ALL";
        harness_server_start(&h);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert_int_eq(dtls_describe(h.client, &desc), 0);
        ck_assert_ptr_nonnull(strstr(desc, "(PSK)"));
        ck_assert_ptr_nonnull(strstr(desc, "AES-128-CCM-8"));
        /* 8-byte explicit nonce + 8-byte tag + 13-byte header within the MTU */
        ck_assert_uint_eq(dtls_get_max_payload(h.client), DTLS_DEFAULT_MTU - 13 - 8 - 8);
        harness_done(&h);
}
END_TEST

START_TEST(test_psk_unknown_identity) {
        Harness h;

        setup_psk(&h, "intruder", KEY);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_FAILED);
        ck_assert_int_eq(harness_last_error(&h), -EACCES);
        ck_assert_int_eq(dtls_get_error(h.client), -EACCES);
        ck_assert_int_eq(dtls_send(h.client, (const uint8_t *) "x", 1), -ENOTCONN);
        ck_assert_ptr_nonnull(dtls_get_error_reason(h.client));
        /* The failure dropped the GnuTLS session; the next handshake makes a new one. */
        harness_server_start(&h);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_FAILED);
        ck_assert_int_eq(dtls_get_error(h.client), -EACCES);
        harness_done(&h);
}
END_TEST

/* Credentials of one kind share one parsed priority: freeing some, even all, takes it from no
 * session of others, and the next credentials parse it again. */
START_TEST(test_credentials_share_priority) {
        DtlsCredentials *other = psk_creds(IDENTITY, KEY);
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        other = dtls_credentials_unref(other);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        h.client = dtls_free(h.client); /* the last credentials: their priority goes */
        other = psk_creds(IDENTITY, KEY);
        harness_client(&h, other);
        other = dtls_credentials_unref(other);
        harness_server_start(&h);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        harness_done(&h);
}
END_TEST

START_TEST(test_psk_wrong_key) {
        Harness h;

        setup_psk(&h, IDENTITY, "not-the-key");
        ck_assert_int_eq(dtls_set_timeouts(h.client, HARNESS_RETRANSMIT_USEC, 400 * USEC_PER_MSEC),
                         0);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_FAILED);
        /* Documented: the server discards our undecryptable Finished, nobody sends an alert. */
        ck_assert_int_eq(harness_last_error(&h), -ETIMEDOUT);
        ck_assert(!h.server_done);
        harness_done(&h);
}
END_TEST

START_TEST(test_no_shared_cipher) {
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        h.server_priority = "NORMAL:-VERS-ALL:+VERS-DTLS1.2:+PSK:-CIPHER-ALL:+AES-128-CBC:+SHA1";
        harness_server_start(&h);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_FAILED);
        ck_assert_int_eq(harness_last_error(&h), -ECONNREFUSED);
        harness_done(&h);
}
END_TEST

static bool client_not_handshaking(Harness *h) {
        return dtls_get_state(h->client) != DTLS_STATE_HANDSHAKING;
}

/* Datagrams are numbered per direction from 0. With ECDHE-PSK the client sends ClientHello (0),
 * then ClientKeyExchange, ChangeCipherSpec, Finished; the server ServerHello, ServerKeyExchange,
 * ServerHelloDone, then NewSessionTicket, ChangeCipherSpec, Finished. */
static const struct {
        unsigned to_server_first, to_server_n, to_client_first, to_client_n;
} loss_patterns[] = {
        {0, 1, 0, 0}, /* first ClientHello */
        {0, 2, 0, 0}, /* ClientHello and its first retransmission */
        {0, 0, 0, 1}, /* ServerHello */
        {0, 1, 0, 1}, /* both first flights */
        {1, 3, 0, 0}, /* the client's last flight */
        {0, 0, 3, 3}, /* the server's last flight */
        {1, 1, 2, 2}, /* a bit of everything */
};

START_TEST(test_loss_recovers) {
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        h.to_server.drop_first = loss_patterns[_i].to_server_first;
        h.to_server.drop_n = loss_patterns[_i].to_server_n;
        h.to_client.drop_first = loss_patterns[_i].to_client_first;
        h.to_client.drop_n = loss_patterns[_i].to_client_n;
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert(h.server_done);
        ck_assert_uint_eq(h.to_server.dropped, loss_patterns[_i].to_server_n);
        ck_assert_uint_eq(h.to_client.dropped, loss_patterns[_i].to_client_n);

        ck_assert_int_eq(dtls_send(h.client, (const uint8_t *) "after", 5), 0);
        ck_assert(harness_run(&h, server_has_data, HARNESS_TOTAL_USEC));
        ck_assert_mem_eq(h.server_received, "after", 5);
        harness_done(&h);
}
END_TEST

START_TEST(test_handshake_timeout_fake_clock) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = psk_creds(IDENTITY, KEY);
        Harness h;
        uint64_t t0 = 1000 * USEC_PER_SEC, next;

        /* No server at all: every flight is lost. */
        harness_init(&h);
        harness_client(&h, c);
        ck_assert_int_eq(dtls_set_timeouts(h.client, 1 * USEC_PER_SEC, 30 * USEC_PER_SEC), 0);
        ck_assert_int_eq(dtls_start(h.client, t0), 0);
        ck_assert_int_eq(dtls_get_state(h.client), DTLS_STATE_HANDSHAKING);
        ck_assert_uint_eq(h.to_server.pushed, 1);
        next = dtls_next_timeout(h.client);
        ck_assert_uint_gt(next, t0);
        ck_assert_uint_le(next, t0 + 1 * USEC_PER_SEC);

        /* Early or on-time wakeups before the total timeout keep it handshaking. */
        ck_assert_int_eq(dtls_on_timeout(h.client, t0), 0);
        ck_assert_int_eq(dtls_on_timeout(h.client, t0 + 29 * USEC_PER_SEC), 0);
        ck_assert_int_eq(dtls_get_state(h.client), DTLS_STATE_HANDSHAKING);
        ck_assert_uint_le(dtls_next_timeout(h.client), t0 + 30 * USEC_PER_SEC);

        ck_assert_int_eq(dtls_on_timeout(h.client, t0 + 30 * USEC_PER_SEC), 0);
        ck_assert_int_eq(dtls_get_state(h.client), DTLS_STATE_FAILED);
        ck_assert_int_eq(harness_last_error(&h), -ETIMEDOUT);
        ck_assert_uint_eq(dtls_next_timeout(h.client), USEC_INFINITY);
        ck_assert_int_eq(dtls_feed(h.client, (const uint8_t *) "x", 1, t0), -ENOTCONN);
        harness_done(&h);
}
END_TEST

START_TEST(test_handshake_timeout_gnutls_clock) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = psk_creds(IDENTITY, KEY);
        struct timespec ts = {.tv_nsec = 60 * 1000 * 1000};
        Harness h;

        /* The caller's clock stands still (it is only moved to the retransmission deadline),
         * while GnuTLS' real clock passes the total timeout: GnuTLS' verdict counts too. */
        harness_init(&h);
        harness_client(&h, c);
        ck_assert_int_eq(dtls_set_timeouts(h.client, 5 * USEC_PER_MSEC, 30 * USEC_PER_MSEC), 0);
        ck_assert_int_eq(dtls_start(h.client, 0), 0);
        ck_assert_int_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), 0);
        ck_assert_uint_lt(dtls_next_timeout(h.client), 30 * USEC_PER_MSEC);
        ck_assert_int_eq(dtls_on_timeout(h.client, dtls_next_timeout(h.client)), 0);
        ck_assert_int_eq(dtls_get_state(h.client), DTLS_STATE_FAILED);
        ck_assert_int_eq(harness_last_error(&h), -ETIMEDOUT);
        harness_done(&h);
}
END_TEST

START_TEST(test_handshake_timeout_real_clock) {
        Harness h;

        /* A server that never answers: GnuTLS retransmits on its clock until our deadline. */
        setup_psk(&h, IDENTITY, KEY);
        h.to_server.drop_n = 1000;
        ck_assert_int_eq(dtls_set_timeouts(h.client, 20 * USEC_PER_MSEC, 300 * USEC_PER_MSEC), 0);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_FAILED);
        ck_assert_int_eq(harness_last_error(&h), -ETIMEDOUT);
        ck_assert_uint_ge(h.to_server.pushed, 3); /* 20, 40, 80, 160 ms: retransmissions */
        harness_done(&h);
}
END_TEST

static bool server_eof(Harness *h) {
        return h->server_eof;
}

START_TEST(test_close_notify_by_client) {
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert_int_eq(dtls_close(h.client), 0);
        ck_assert_int_eq(harness_last_state(&h), DTLS_STATE_CLOSED);
        ck_assert_int_eq(harness_last_error(&h), 0);
        ck_assert(harness_run(&h, server_eof, HARNESS_TOTAL_USEC));
        ck_assert_int_eq(dtls_send(h.client, (const uint8_t *) "x", 1), -ENOTCONN);
        /* Idempotent: no second state change. */
        ck_assert_int_eq(dtls_close(h.client), 0);
        ck_assert_uint_eq(h.n_states, 3);
        harness_done(&h);
}
END_TEST

static bool client_closed(Harness *h) {
        return dtls_get_state(h->client) == DTLS_STATE_CLOSED;
}

START_TEST(test_close_notify_by_server) {
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert_int_eq(gnutls_bye(h.server, GNUTLS_SHUT_WR), 0);
        ck_assert(harness_run(&h, client_closed, HARNESS_TOTAL_USEC));
        ck_assert_int_eq(harness_last_error(&h), -ECONNRESET);
        harness_done(&h);
}
END_TEST

static bool client_failed(Harness *h) {
        return dtls_get_state(h->client) == DTLS_STATE_FAILED;
}

START_TEST(test_fatal_alert_after_establishment) {
        _cleanup_(dtls_session_data_freep) DtlsSessionData *s = NULL;
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert_int_eq(dtls_get_session_data(h.client, &s), 0);
        s = dtls_session_data_free(s);
        ck_assert_int_eq(gnutls_alert_send(h.server, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR), 0);
        ck_assert(harness_run(&h, client_failed, HARNESS_TOTAL_USEC));
        ck_assert_int_eq(harness_last_error(&h), -ECONNRESET);
        /* A session that ended in a fatal alert must not be resumed. */
        ck_assert_int_eq(dtls_get_session_data(h.client, &s), -ENODATA);
        harness_done(&h);
}
END_TEST

START_TEST(test_garbage_is_ignored) {
        static const uint8_t junk[][16] = {
                {0x17, 0xfe, 0xfd, 0x00, 0x01, 0, 0, 0, 0, 0, 0x07, 0x00, 0x03, 1, 2, 3},
                {0x15, 0xfe, 0xfd, 0x00, 0x00, 0, 0, 0, 0, 0, 0x09, 0x00, 0x02, 2, 40, 0},
                {0x16, 0xfe, 0xfd, 0x00, 0x00, 0, 0, 0, 0, 0, 0x00, 0x00, 0x03, 1, 2, 3},
                {0x40, 0x01, 0x12, 0x34, 0xb4, 't', 'i', 'm', 'e'},
        };
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        for (size_t i = 0; i < ELEMENTSOF(junk); i++)
                for (size_t len = 1; len <= sizeof(junk[i]); len++)
                        ck_assert_int_eq(dtls_feed(h.client, junk[i], len, harness_now()), 0);
        ck_assert_int_eq(dtls_get_state(h.client), DTLS_STATE_ESTABLISHED);
        ck_assert_uint_eq(h.n_received, 0);
        ck_assert_int_eq(harness_server_send(&h, "still"), 0);
        ck_assert(harness_run(&h, client_has_reply, HARNESS_TOTAL_USEC));
        ck_assert_mem_eq(h.received, "still", 5);
        harness_done(&h);
}
END_TEST

START_TEST(test_records_after_junk_in_one_datagram) {
        uint8_t dgram[256];
        Datagram rec;
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert_int_eq(harness_server_send(&h, "one"), 0);
        ck_assert_uint_eq(h.to_client.n, 1);
        rec = h.to_client.items[h.to_client.head];
        ck_assert_uint_le(rec.len + 16, sizeof(dgram));

        /* A record that fails authentication, then a genuine one, in one datagram. */
        memcpy(dgram, rec.data, rec.len);
        dgram[rec.len - 1] ^= 0x55;
        memcpy(dgram + rec.len, rec.data, rec.len);
        dgram[10] = 0x77; /* distinct sequence number for the forged copy */
        ck_assert_int_eq(dtls_feed(h.client, dgram, 2 * rec.len, harness_now()), 0);
        ck_assert_uint_eq(h.n_received, 1);
        ck_assert_mem_eq(h.received, "one", 3);

        /* Replayed: dropped. */
        ck_assert_int_eq(dtls_feed(h.client, rec.data, rec.len, harness_now()), 0);
        ck_assert_uint_eq(h.n_received, 1);
        harness_done(&h);
}
END_TEST

START_TEST(test_callbacks_reenter) {
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        h.send_on_established = "queued";
        h.close_on_deliver = true;
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert(harness_run(&h, server_has_data, HARNESS_TOTAL_USEC));
        ck_assert_mem_eq(h.server_received, "queued", 6);

        /* Two records in flight; the first delivery closes the session: no second delivery. */
        ck_assert_int_eq(harness_server_send(&h, "first"), 0);
        ck_assert_int_eq(harness_server_send(&h, "second"), 0);
        ck_assert(harness_run(&h, client_has_reply, HARNESS_TOTAL_USEC));
        harness_pump(&h);
        ck_assert_uint_eq(h.n_received, 1);
        ck_assert_int_eq(dtls_get_state(h.client), DTLS_STATE_CLOSED);
        ck_assert(h.server_eof);
        harness_done(&h);
}
END_TEST

START_TEST(test_resumption) {
        _cleanup_(dtls_session_data_freep) DtlsSessionData *s = NULL;
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        ck_assert_int_eq(dtls_get_session_data(h.client, &s), -ENODATA);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert(!gnutls_session_is_resumed(h.server));
        ck_assert_int_eq(dtls_start(h.client, harness_now()), -EBUSY);
        ck_assert_int_eq(dtls_close(h.client), 0);
        harness_pump(&h);

        /* Same Dtls, new server session (same ticket key): abbreviated handshake. */
        harness_server_start(&h);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert(gnutls_session_is_resumed(h.server));
        ck_assert(dtls_is_resumed(h.client));
        ck_assert_int_eq(dtls_get_session_data(h.client, &s), 0);
        ck_assert_int_eq(dtls_send(h.client, (const uint8_t *) "resumed", 7), 0);
        ck_assert(harness_run(&h, server_has_data, HARNESS_TOTAL_USEC));
        ck_assert_mem_eq(h.server_received, "resumed", 7);
        h.client = dtls_free(h.client); /* no close_notify: the data stays valid */

        /* A new Dtls (e.g. a new socket) resumes with the exported data. */
        {
                _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = psk_creds(IDENTITY, KEY);

                harness_client(&h, c);
        }
        ck_assert_int_eq(dtls_set_session_data(h.client, s), 0);
        harness_server_start(&h);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert(gnutls_session_is_resumed(h.server));
        ck_assert(dtls_is_resumed(h.client));

        /* An abbreviated handshake whose last (client) flight is lost: the server retransmits
         * its flight, the established client answers it from dtls_feed(). */
        ck_assert_int_eq(dtls_close(h.client), 0);
        harness_pump(&h);
        harness_server_start(&h);
        h.to_server.drop_first = h.to_server.pushed + 1;
        h.to_server.drop_n = 2;
        h.to_server.dropped = 0;
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert(h.server_done);
        ck_assert(gnutls_session_is_resumed(h.server));
        ck_assert_uint_eq(h.to_server.dropped, 2);

        /* Forgetting the data means a full handshake. */
        ck_assert_int_eq(dtls_close(h.client), 0);
        harness_pump(&h);
        ck_assert_int_eq(dtls_set_session_data(h.client, NULL), 0);
        harness_server_start(&h);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert(!gnutls_session_is_resumed(h.server));
        ck_assert(!dtls_is_resumed(h.client));
        harness_done(&h);
}
END_TEST

START_TEST(test_send_limits_and_push_errors) {
        uint8_t big[DTLS_DEFAULT_MTU] = {};
        size_t max;
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        max = dtls_get_max_payload(h.client);
        ck_assert_uint_gt(max, 1100);
        ck_assert_uint_lt(max, DTLS_DEFAULT_MTU);
        ck_assert_int_eq(dtls_send(h.client, big, max + 1), -EMSGSIZE);
        ck_assert_int_eq(dtls_send(h.client, big, max), 0);

        ck_assert_int_eq(dtls_set_mtu(h.client, 600), 0);
        ck_assert_uint_lt(dtls_get_max_payload(h.client), 600);
        ck_assert_int_eq(dtls_send(h.client, big, max), -EMSGSIZE);
        ck_assert_int_eq(dtls_set_mtu(h.client, 100), -EINVAL);

        h.push_result = -ENOBUFS;
        ck_assert_int_eq(dtls_send(h.client, big, 10), -ENOBUFS);
        h.push_result = 0;
        ck_assert_int_eq(dtls_send(h.client, big, 10), 0);
        ck_assert_int_eq(dtls_get_state(h.client), DTLS_STATE_ESTABLISHED);
        harness_done(&h);
}
END_TEST

START_TEST(test_push_error_during_handshake_is_loss) {
        Harness h;

        setup_psk(&h, IDENTITY, KEY);
        h.push_result = -EHOSTUNREACH;
        ck_assert_int_eq(dtls_start(h.client, harness_now()), 0);
        ck_assert_int_eq(dtls_get_state(h.client), DTLS_STATE_HANDSHAKING);
        h.push_result = 0;
        ck_assert(harness_run(&h, client_not_handshaking, HARNESS_TOTAL_USEC));
        ck_assert_int_eq(dtls_get_state(h.client), DTLS_STATE_ESTABLISHED);
        harness_done(&h);
}
END_TEST

START_TEST(test_api_misuse) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = NULL;
        uint8_t key[65] = {1};
        Dtls *d = NULL;

        ck_assert_int_eq(dtls_credentials_new_psk(NULL, key, 8, &c), -EINVAL);
        ck_assert_int_eq(dtls_credentials_new_psk("", key, 8, &c), -EINVAL);
        ck_assert_int_eq(dtls_credentials_new_psk("id", key, 0, &c), -EINVAL);
        ck_assert_int_eq(dtls_credentials_new_psk("id", key, 65, &c), -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(dtls_credentials_new_psk("id", key, 64, &c), 0);
        ck_assert_int_eq(dtls_credentials_set_client_cert(c, "x", 1, "y", 1), -EINVAL);
        ck_assert_ptr_eq(dtls_credentials_ref(c), c);
        ck_assert_ptr_null(dtls_credentials_unref(c));
        ck_assert_ptr_null(dtls_credentials_unref(NULL));

        ck_assert_int_eq(dtls_new(c, &(DtlsIo){}, &d), -EINVAL);
        ck_assert_ptr_null(dtls_free(NULL));
        ck_assert_int_eq(dtls_get_state(NULL), DTLS_STATE_FAILED);
        ck_assert_uint_eq(dtls_next_timeout(NULL), USEC_INFINITY);
        ck_assert_ptr_null(dtls_session_data_free(NULL));

        ck_assert_str_eq(dtls_state_to_string(DTLS_STATE_NEW), "new");
        ck_assert_str_eq(dtls_state_to_string(DTLS_STATE_HANDSHAKING), "handshaking");
        ck_assert_str_eq(dtls_state_to_string(DTLS_STATE_ESTABLISHED), "established");
        ck_assert_str_eq(dtls_state_to_string(DTLS_STATE_CLOSED), "closed");
        ck_assert_str_eq(dtls_state_to_string(DTLS_STATE_FAILED), "failed");
        ck_assert_ptr_null(dtls_state_to_string(_DTLS_STATE_MAX));
}
END_TEST

static Suite *dtls_psk_suite(void) {
        Suite *s = suite_create("dtls-psk");
        TCase *tc = tcase_create("psk");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_psk_handshake_and_data);
        tcase_add_test(tc, test_psk_ccm8);
        tcase_add_test(tc, test_psk_unknown_identity);
        tcase_add_test(tc, test_credentials_share_priority);
        tcase_add_test(tc, test_psk_wrong_key);
        tcase_add_test(tc, test_no_shared_cipher);
        tcase_add_loop_test(tc, test_loss_recovers, 0, (int) ELEMENTSOF(loss_patterns));
        tcase_add_test(tc, test_handshake_timeout_fake_clock);
        tcase_add_test(tc, test_handshake_timeout_gnutls_clock);
        tcase_add_test(tc, test_handshake_timeout_real_clock);
        tcase_add_test(tc, test_close_notify_by_client);
        tcase_add_test(tc, test_close_notify_by_server);
        tcase_add_test(tc, test_fatal_alert_after_establishment);
        tcase_add_test(tc, test_garbage_is_ignored);
        tcase_add_test(tc, test_records_after_junk_in_one_datagram);
        tcase_add_test(tc, test_callbacks_reenter);
        tcase_add_test(tc, test_resumption);
        tcase_add_test(tc, test_send_limits_and_push_errors);
        tcase_add_test(tc, test_push_error_during_handshake_is_loss);
        tcase_add_test(tc, test_api_misuse);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(dtls_psk_suite)
