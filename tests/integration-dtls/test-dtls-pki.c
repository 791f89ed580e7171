/* SPDX-License-Identifier: MIT */
/* DTLS with certificates and raw public keys end to end: coap-server-gnutls with a test CA
 * (mutual authentication) or a raw key pair, and the failures a client must see: wrong CA,
 * wrong server name, wrong server key. */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bus-helper.h"
#include "check-main.h"
#include "dtls-helper.h"
#include "internal/bus-api.h"
#include "net-helper.h"
#include "test-pki.h"

/* One server of each kind for the whole run (the checks fork per test, so they are made in the
 * unchecked fixture, once). */
static TestCert ca, other_ca, server, client, server_rpk, client_rpk, other_rpk;
static uint16_t x509_port, rpk_port;
static pid_t x509_pid, rpk_pid;

static void write_pem(const char *name, const gnutls_datum_t *d, char **ret_path) {
        ck_assert_int_eq(test_write_tmp_file(name, d->data, d->size, ret_path), 0);
}

static void servers_start(void) {
        _cleanup_free_ char *ca_path = NULL, *cert_path = NULL, *key_path = NULL, *rpk_path = NULL;

        test_pki_ca(&ca, "coapclientd test CA");
        test_pki_ca(&other_ca, "another CA");
        test_pki_leaf(&server, &ca, "localhost", "localhost", "127.0.0.1");
        test_pki_leaf(&client, &ca, "coapclientd test client", NULL, NULL);
        test_pki_keypair(&server_rpk);
        test_pki_keypair(&client_rpk);
        test_pki_keypair(&other_rpk);

        write_pem("ca.pem", &ca.cert_pem, &ca_path);
        write_pem("server.pem", &server.cert_pem, &cert_path);
        write_pem("server.key", &server.key_pem, &key_path);
        write_pem("server-rpk.pem", &server_rpk.key_pem, &rpk_path);
        /* -C: the server also verifies our client certificate against the CA. */
        ck_assert_int_eq(
                test_dtls_server_spawn(
                        (const char *const[]){"-c", cert_path, "-j", key_path, "-C", ca_path, NULL},
                        0, &x509_port, &x509_pid),
                0);
        ck_assert_int_eq(test_dtls_server_spawn((const char *const[]){"-M", rpk_path, NULL}, 0,
                                                &rpk_port, &rpk_pid),
                         0);
}

static void servers_stop(void) {
        test_child_stop(x509_pid);
        test_child_stop(rpk_pid);
        test_pki_done(&ca);
        test_pki_done(&other_ca);
        test_pki_done(&server);
        test_pki_done(&client);
        test_pki_done(&server_rpk);
        test_pki_done(&client_rpk);
        test_pki_done(&other_rpk);
}

/* SetCredentials with creds and secret (a sealed memfd), then one GET /time on a socket
 * connected to port; returns its final result, and its "error-message" in *ret_message if
 * given. */
static int32_t get_with_message(const TestCreds *creds, const gnutls_datum_t *secret, uint16_t port,
                                uint64_t *ret_usec, char **ret_message) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_close_ int fd = -EBADF, secret_fd = -EBADF;
        _cleanup_(test_bus_freep) TestBus *bus = NULL;
        _cleanup_free_ char *path = NULL;
        int32_t result = 0;

        ck_assert_int_eq(test_bus_new(&bus), 0);
        ck_assert_int_eq(test_bus_create_client(bus, "pki", &path, NULL), 0);
        secret_fd =
                test_secret_memfd(secret ? secret->data : NULL, secret ? secret->size : 0, true);
        ck_assert_int_ge(secret_fd, 0);
        ck_assert_msg(test_set_credentials(bus, path, creds, secret_fd, &error) >= 0,
                      "SetCredentials: %s: %s", error.name, error.message);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(test_request_result_message(
                                 bus, path, fd, &(TestRequest){.method = TEST_GET, .path = "time"},
                                 20 * USEC_PER_SEC, &result, ret_usec, ret_message),
                         0);
        return result;
}

static int32_t get_with(const TestCreds *creds, const gnutls_datum_t *secret, uint16_t port,
                        uint64_t *ret_usec) {
        return get_with_message(creds, secret, port, ret_usec, NULL);
}

static TestCreds x509_creds(const TestCert *trust, const char *server_name) {
        return (TestCreds){
                .type = "x509",
                .ca = trust->cert_pem.data,
                .ca_len = trust->cert_pem.size,
                .server_name = server_name,
                .certificate = client.cert_pem.data,
                .certificate_len = client.cert_pem.size,
                .handshake_timeout_ms = 5000,
        };
}

START_TEST(test_x509_get) {
        TestCreds creds = x509_creds(&ca, "localhost");
        uint64_t usec;

        ck_assert_int_eq(get_with(&creds, &client.key_pem, x509_port + 1, &usec), 0x45);
        printf("# DTLS X.509 (ECDSA P-256, mutual): handshake + first GET %.2f ms\n",
               (double) usec / 1000);
        fflush(stdout);
        /* The server's IP address is in its certificate too. */
        creds = x509_creds(&ca, "127.0.0.1");
        ck_assert_int_eq(get_with(&creds, &client.key_pem, x509_port + 1, NULL), 0x45);
        /* The same certificate in DER works as well. */
        creds.ca = ca.cert_der.data;
        creds.ca_len = ca.cert_der.size;
        ck_assert_int_eq(get_with(&creds, &client.key_pem, x509_port + 1, NULL), 0x45);
}
END_TEST

START_TEST(test_x509_wrong_ca) {
        TestCreds creds = x509_creds(&other_ca, "localhost");
        _cleanup_free_ char *message = NULL;

        /* The final Response says why, in GnuTLS' words. */
        ck_assert_int_eq(get_with_message(&creds, &client.key_pem, x509_port + 1, NULL, &message),
                         -EACCES);
        ck_assert_ptr_nonnull(message);
        ck_assert_str_eq(message, "DTLS session failed: The certificate is NOT trusted. The "
                                  "certificate issuer is unknown.");
}
END_TEST

START_TEST(test_x509_wrong_name) {
        TestCreds creds = x509_creds(&ca, "coap.example.org");

        ck_assert_int_eq(get_with(&creds, &client.key_pem, x509_port + 1, NULL), -EACCES);
        /* insecure skips every check of the server (tests and labs only). */
        creds.insecure = true;
        ck_assert_int_eq(get_with(&creds, &client.key_pem, x509_port + 1, NULL), 0x45);
}
END_TEST

START_TEST(test_rpk_get) {
        TestCreds creds = {
                .type = "rpk",
                .server_public_key = server_rpk.pub_pem.data,
                .server_public_key_len = server_rpk.pub_pem.size,
                .handshake_timeout_ms = 5000,
        };
        uint64_t usec;

        ck_assert_int_eq(get_with(&creds, &client_rpk.key_pem, rpk_port + 1, &usec), 0x45);
        printf("# DTLS raw public keys: handshake + first GET %.2f ms\n", (double) usec / 1000);
        fflush(stdout);
}
END_TEST

START_TEST(test_rpk_wrong_key) {
        TestCreds creds = {
                .type = "rpk",
                .server_public_key = other_rpk.pub_pem.data,
                .server_public_key_len = other_rpk.pub_pem.size,
                .handshake_timeout_ms = 5000,
        };

        ck_assert_int_eq(get_with(&creds, &client_rpk.key_pem, rpk_port + 1, NULL), -EACCES);
}
END_TEST

static Suite *dtls_pki_suite(void) {
        Suite *s = suite_create("dtls-pki");
        TCase *tc = tcase_create("pki");

        tcase_set_timeout(tc, 30);
        tcase_add_unchecked_fixture(tc, servers_start, servers_stop);
        tcase_add_test(tc, test_x509_get);
        tcase_add_test(tc, test_x509_wrong_ca);
        tcase_add_test(tc, test_x509_wrong_name);
        tcase_add_test(tc, test_rpk_get);
        tcase_add_test(tc, test_rpk_wrong_key);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(dtls_pki_suite)
