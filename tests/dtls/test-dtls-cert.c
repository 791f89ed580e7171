/* SPDX-License-Identifier: MIT */
/* The DTLS module with X.509 certificates and raw public keys against an in-process GnuTLS
 * server. The PKI is generated when the test runs. */

#include <errno.h>
#include <string.h>

#include <gnutls/abstract.h>

#include "check-main.h"
#include "dtls-harness.h"
#include "internal/macro.h"
#include "test-pki.h"

static TestCert ca, other_ca, server, client_leaf, server_raw, client_raw, stranger_raw;

static void pki_setup(void) {
        test_pki_ca(&ca, "Test CA");
        test_pki_ca(&other_ca, "Other CA");
        test_pki_leaf(&server, &ca, "server.test", "server.test", "127.0.0.1");
        test_pki_leaf(&client_leaf, &ca, "client", NULL, NULL);
        test_pki_keypair(&server_raw);
        test_pki_keypair(&client_raw);
        test_pki_keypair(&stranger_raw);
}

static void pki_teardown(void) {
        test_pki_done(&ca);
        test_pki_done(&other_ca);
        test_pki_done(&server);
        test_pki_done(&client_leaf);
        test_pki_done(&server_raw);
        test_pki_done(&client_raw);
        test_pki_done(&stranger_raw);
}

#define SERVER_PRIORITY_CERT "NORMAL:-VERS-ALL:+VERS-DTLS1.2"

/* X.509 server (cert by `ca`) and a client with the given credentials; returns the final state. */
static DtlsState x509_handshake(Harness *h, DtlsCredentials *c) {
        harness_init(h);
        harness_server_cert(h, &server.cert_pem, &server.key_pem);
        h->server_priority = SERVER_PRIORITY_CERT;
        harness_server_start(h);
        harness_client(h, c);
        return harness_handshake(h);
}

static DtlsCredentials *x509_creds(const gnutls_datum_t *ca_data, const char *name,
                                   DtlsCredentialsFlags flags) {
        DtlsCredentials *c = NULL;

        ck_assert_int_eq(dtls_credentials_new_x509(ca_data ? ca_data->data : NULL,
                                                   ca_data ? ca_data->size : 0, name, flags, &c),
                         0);
        return c;
}

static bool server_has_data(Harness *h) {
        return h->server_received_len > 0;
}

static const struct {
        const char *name;
        bool der;
} good_names[] = {
        {"server.test", false},
        {"127.0.0.1", false},
        {NULL, false}, /* chain only */
        {"server.test", true},
};

START_TEST(test_x509_ok) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = x509_creds(
                good_names[_i].der ? &ca.cert_der : &ca.cert_pem, good_names[_i].name, 0);
        _cleanup_free_ char *desc = NULL;
        Harness h;

        ck_assert_int_eq(x509_handshake(&h, c), DTLS_STATE_ESTABLISHED);
        ck_assert_int_eq(dtls_describe(h.client, &desc), 0);
        ck_assert_ptr_nonnull(strstr(desc, "DTLS1.2"));
        ck_assert_int_eq(gnutls_kx_get(h.server), GNUTLS_KX_ECDHE_ECDSA);
        ck_assert_int_eq(dtls_send(h.client, (const uint8_t *) "x509", 4), 0);
        ck_assert(harness_run(&h, server_has_data, HARNESS_TOTAL_USEC));
        ck_assert_mem_eq(h.server_received, "x509", 4);
        if (good_names[_i].name && strcmp(good_names[_i].name, "server.test") == 0) {
                char sni[64];
                size_t len = sizeof(sni);
                unsigned type;

                ck_assert_int_eq(gnutls_server_name_get(h.server, sni, &len, &type, 0), 0);
                ck_assert_str_eq(sni, "server.test");
        }
        harness_done(&h);
}
END_TEST

START_TEST(test_x509_wrong_ca) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c =
                x509_creds(&other_ca.cert_pem, "server.test", 0);
        Harness h;

        ck_assert_int_eq(x509_handshake(&h, c), DTLS_STATE_FAILED);
        ck_assert_int_eq(harness_last_error(&h), -EACCES);
        harness_done(&h);
}
END_TEST

START_TEST(test_x509_wrong_name) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c =
                x509_creds(&ca.cert_pem, "other.test", 0);
        Harness h;

        ck_assert_int_eq(x509_handshake(&h, c), DTLS_STATE_FAILED);
        ck_assert_int_eq(harness_last_error(&h), -EACCES);
        harness_done(&h);

        dtls_credentials_unref(c);
        c = x509_creds(&ca.cert_pem, "127.0.0.2", 0);
        ck_assert_int_eq(x509_handshake(&h, c), DTLS_STATE_FAILED);
        ck_assert_int_eq(harness_last_error(&h), -EACCES);
        harness_done(&h);
}
END_TEST

START_TEST(test_x509_insecure) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c =
                x509_creds(NULL, "whatever", DTLS_CREDENTIALS_INSECURE);
        Harness h;

        ck_assert_int_eq(x509_handshake(&h, c), DTLS_STATE_ESTABLISHED);
        harness_done(&h);
}
END_TEST

START_TEST(test_x509_client_cert) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *with =
                x509_creds(&ca.cert_pem, NULL, 0);
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *without =
                x509_creds(&ca.cert_pem, NULL, 0);
        unsigned status = 0;
        Harness h;

        ck_assert_int_eq(dtls_credentials_set_client_cert(
                                 with, client_leaf.cert_pem.data, client_leaf.cert_pem.size,
                                 client_leaf.key_pem.data, client_leaf.key_pem.size),
                         0);
        /* Mismatching certificate and key. */
        ck_assert_int_eq(dtls_credentials_set_client_cert(without, client_leaf.cert_pem.data,
                                                          client_leaf.cert_pem.size,
                                                          server.key_pem.data, server.key_pem.size),
                         -EINVAL);

        harness_init(&h);
        harness_server_cert(&h, &server.cert_pem, &server.key_pem);
        ck_assert_int_gt(gnutls_certificate_set_x509_trust_mem(h.server_cert, &ca.cert_pem,
                                                               GNUTLS_X509_FMT_PEM),
                         0);
        h.server_priority = SERVER_PRIORITY_CERT;
        h.server_cert_request = GNUTLS_CERT_REQUIRE;
        harness_server_start(&h);
        harness_client(&h, with);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_ESTABLISHED);
        ck_assert_int_eq(gnutls_certificate_verify_peers2(h.server, &status), 0);
        ck_assert_uint_eq(status, 0);
        ck_assert_int_eq(dtls_credentials_set_client_cert(
                                 with, client_leaf.cert_pem.data, client_leaf.cert_pem.size,
                                 client_leaf.key_pem.data, client_leaf.key_pem.size),
                         -EBUSY);

        /* The server requires a certificate we do not have. */
        h.client = dtls_free(h.client);
        harness_server_start(&h);
        harness_client(&h, without);
        ck_assert_int_eq(harness_handshake(&h), DTLS_STATE_FAILED);
        ck_assert_int_eq(harness_last_error(&h), -EACCES);
        harness_done(&h);
}
END_TEST

static DtlsState rpk_handshake(Harness *h, DtlsCredentials *c) {
        harness_init(h);
        harness_server_rawpk(h, &server_raw.pub_pem, &server_raw.key_pem);
        h->server_priority = SERVER_PRIORITY_CERT ":+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK";
        h->server_cert_request = GNUTLS_CERT_REQUEST;
        harness_server_start(h);
        harness_client(h, c);
        return harness_handshake(h);
}

START_TEST(test_rpk) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = NULL;
        const gnutls_datum_t *peer;
        gnutls_pubkey_t pub;
        gnutls_datum_t client_der;
        unsigned n = 0;
        Harness h;

        ck_assert_int_eq(dtls_credentials_new_rpk(client_raw.key_pem.data, client_raw.key_pem.size,
                                                  server_raw.pub_pem.data, server_raw.pub_pem.size,
                                                  0, &c),
                         0);
        ck_assert_int_eq(rpk_handshake(&h, c), DTLS_STATE_ESTABLISHED);
        ck_assert_int_eq(gnutls_certificate_type_get2(h.server, GNUTLS_CTYPE_SERVER),
                         GNUTLS_CRT_RAWPK);
        ck_assert_int_eq(gnutls_certificate_type_get2(h.server, GNUTLS_CTYPE_CLIENT),
                         GNUTLS_CRT_RAWPK);

        /* The server saw our raw public key. */
        peer = gnutls_certificate_get_peers(h.server, &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(gnutls_pubkey_init(&pub), 0);
        ck_assert_int_eq(gnutls_pubkey_import(pub, &client_raw.pub_pem, GNUTLS_X509_FMT_PEM), 0);
        ck_assert_int_eq(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &client_der), 0);
        ck_assert_uint_eq(peer[0].size, client_der.size);
        ck_assert_mem_eq(peer[0].data, client_der.data, client_der.size);
        gnutls_free(client_der.data);
        gnutls_pubkey_deinit(pub);
        harness_done(&h);
}
END_TEST

START_TEST(test_rpk_wrong_server_key) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = NULL;
        Harness h;

        ck_assert_int_eq(dtls_credentials_new_rpk(client_raw.key_pem.data, client_raw.key_pem.size,
                                                  stranger_raw.pub_pem.data,
                                                  stranger_raw.pub_pem.size, 0, &c),
                         0);
        ck_assert_int_eq(rpk_handshake(&h, c), DTLS_STATE_FAILED);
        ck_assert_int_eq(harness_last_error(&h), -EACCES);
        harness_done(&h);
}
END_TEST

START_TEST(test_rpk_insecure) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = NULL;
        Harness h;

        ck_assert_int_eq(dtls_credentials_new_rpk(client_raw.key_pem.data, client_raw.key_pem.size,
                                                  NULL, 0, 0, &c),
                         -EINVAL);
        ck_assert_int_eq(dtls_credentials_new_rpk(client_raw.key_pem.data, client_raw.key_pem.size,
                                                  NULL, 0, DTLS_CREDENTIALS_INSECURE, &c),
                         0);
        ck_assert_int_eq(rpk_handshake(&h, c), DTLS_STATE_ESTABLISHED);
        harness_done(&h);
}
END_TEST

START_TEST(test_bad_inputs) {
        static const char junk[] =
                "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
        DtlsCredentials *c = NULL;

        ck_assert_int_eq(dtls_credentials_new_x509(junk, sizeof(junk) - 1, NULL, 0, &c), -EINVAL);
        ck_assert_int_eq(dtls_credentials_new_x509("abc", 3, NULL, 0, &c), -EINVAL);
        ck_assert_int_eq(dtls_credentials_new_x509(NULL, 3, NULL, 0, &c), -EINVAL);
        ck_assert_int_eq(dtls_credentials_new_x509(ca.cert_pem.data, ca.cert_pem.size, "", 0, &c),
                         -EINVAL);
        ck_assert_int_eq(
                dtls_credentials_new_x509(ca.cert_pem.data, ca.cert_pem.size, NULL, 1 << 5, &c),
                -EINVAL);
        ck_assert_int_eq(dtls_credentials_new_rpk(junk, sizeof(junk) - 1, server_raw.pub_pem.data,
                                                  server_raw.pub_pem.size, 0, &c),
                         -EINVAL);
        ck_assert_int_eq(dtls_credentials_new_rpk(client_raw.key_pem.data, client_raw.key_pem.size,
                                                  "abc", 3, 0, &c),
                         -EINVAL);
        ck_assert_ptr_null(c);
}
END_TEST

static Suite *dtls_cert_suite(void) {
        Suite *s = suite_create("dtls-cert");
        TCase *tc = tcase_create("cert");

        tcase_set_timeout(tc, 30);
        tcase_add_unchecked_fixture(tc, pki_setup, pki_teardown);
        tcase_add_loop_test(tc, test_x509_ok, 0, (int) ELEMENTSOF(good_names));
        tcase_add_test(tc, test_x509_wrong_ca);
        tcase_add_test(tc, test_x509_wrong_name);
        tcase_add_test(tc, test_x509_insecure);
        tcase_add_test(tc, test_x509_client_cert);
        tcase_add_test(tc, test_rpk);
        tcase_add_test(tc, test_rpk_wrong_server_key);
        tcase_add_test(tc, test_rpk_insecure);
        tcase_add_test(tc, test_bad_inputs);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(dtls_cert_suite)
