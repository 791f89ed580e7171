/* SPDX-License-Identifier: MIT */

/* DTLS through the library: the credential store, coap_client_set_tls() and its errors, and
 * requests over PSK, X.509 and raw public keys against coap-server-gnutls, with the failures
 * the header documents. Runs inside tls-env.sh (test PKI and peers) inside test-env.sh. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"

enum {
        TAG_PSK = 1,
        TAG_CA,
        TAG_CA_DER,
        TAG_OTHER_CA,
        TAG_CLIENT_CERT,
        TAG_RPK,
        TAG_RPK_SERVER,
        TAG_RPK_OTHER,
        TAG_SCRATCH,
};

static const char psk_id[] = "CoAP";
static const char psk_key[] = "secretPSK";

static uint16_t env_port(const char *name, int delta) {
        const char *s = getenv(name);

        ck_assert_ptr_nonnull(s);
        return (uint16_t) (atoi(s) + delta);
}

/* A UDP socket connect()ed to 127.0.0.1:port, as Zephyr wants for DTLS. */
static int socket_to(uint16_t port) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        int fd;

        ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr), 1);
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(connect(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        return fd;
}

/* A file of the test PKI, with room for one more byte. */
static uint8_t *pki_file(const char *name, size_t *ret_len) {
        char path[1024];
        uint8_t *buf = malloc(65536);
        ssize_t n;
        int fd;

        ck_assert_ptr_nonnull(buf);
        ck_assert_ptr_nonnull(getenv("TLS_PKI_DIR"));
        snprintf(path, sizeof(path), "%s/%s", getenv("TLS_PKI_DIR"), name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_msg(fd >= 0, "cannot open %s", path);
        n = read(fd, buf, 65535);
        ck_assert_int_gt(n, 0);
        close(fd);
        *ret_len = (size_t) n;
        return buf;
}

static void add_file(int tag, enum coap_client_tls_credential_type type, const char *name) {
        size_t len;
        uint8_t *buf = pki_file(name, &len);

        ck_assert_int_eq(coap_client_tls_credential_add(tag, type, buf, len), 0);
        free(buf);
}

/* The store is process-wide: every test starts from the same tags. */
static void setup_store(void) {
        uint8_t *ca;
        size_t len;

        /* Zephyr style: lengths with the NUL (sizeof). */
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_PSK, COAP_CLIENT_TLS_CREDENTIAL_PSK_ID,
                                                        psk_id, sizeof(psk_id)),
                         0);
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_PSK, COAP_CLIENT_TLS_CREDENTIAL_PSK,
                                                        psk_key, strlen(psk_key)),
                         0);
        ca = pki_file("ca.pem", &len);
        ca[len++] = '\0';
        ck_assert_int_eq(coap_client_tls_credential_add(
                                 TAG_CA, COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE, ca, len),
                         0);
        free(ca);
        add_file(TAG_CA_DER, COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE, "ca.der");
        add_file(TAG_OTHER_CA, COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE, "other-ca.pem");
        add_file(TAG_CLIENT_CERT, COAP_CLIENT_TLS_CREDENTIAL_SERVER_CERTIFICATE, "client.pem");
        add_file(TAG_CLIENT_CERT, COAP_CLIENT_TLS_CREDENTIAL_PRIVATE_KEY, "client.key");
        add_file(TAG_RPK, COAP_CLIENT_TLS_CREDENTIAL_PRIVATE_KEY, "rpk-client.key");
        add_file(TAG_RPK_SERVER, COAP_CLIENT_TLS_CREDENTIAL_RAW_PUBLIC_KEY, "rpk-server.pub");
        add_file(TAG_RPK_OTHER, COAP_CLIENT_TLS_CREDENTIAL_RAW_PUBLIC_KEY, "rpk-other.pub");
}

static void teardown_store(void) {
        static const struct {
                int tag;
                enum coap_client_tls_credential_type type;
        } all[] = {
                {TAG_PSK, COAP_CLIENT_TLS_CREDENTIAL_PSK_ID},
                {TAG_PSK, COAP_CLIENT_TLS_CREDENTIAL_PSK},
                {TAG_CA, COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE},
                {TAG_CA_DER, COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE},
                {TAG_OTHER_CA, COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE},
                {TAG_CLIENT_CERT, COAP_CLIENT_TLS_CREDENTIAL_SERVER_CERTIFICATE},
                {TAG_CLIENT_CERT, COAP_CLIENT_TLS_CREDENTIAL_PRIVATE_KEY},
                {TAG_RPK, COAP_CLIENT_TLS_CREDENTIAL_PRIVATE_KEY},
                {TAG_RPK_SERVER, COAP_CLIENT_TLS_CREDENTIAL_RAW_PUBLIC_KEY},
                {TAG_RPK_OTHER, COAP_CLIENT_TLS_CREDENTIAL_RAW_PUBLIC_KEY},
        };

        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
                ck_assert_int_eq(coap_client_tls_credential_delete(all[i].tag, all[i].type), 0);
}

/* One GET of /time over a new client and socket with these TLS settings; returns the final
 * code or error of the callback, and what coap_client_last_error() said in an error callback
 * (or "") in ret_message if given. */
static int get_time_message(uint16_t port, const int *tags, size_t n, const char *hostname,
                            int flags, uint32_t handshake_timeout_ms, char *ret_message,
                            size_t size) {
        struct coap_client client = {};
        struct coap_client_request req;
        Recorder rec;
        int sock, r;

        recorder_init(&rec);
        sock = socket_to(port);
        ck_assert_int_eq(coap_client_init(&client, "tls"), 0);
        if (handshake_timeout_ms > 0)
                ck_assert_int_eq(
                        coap_client_set_tls_handshake_timeout(&client, handshake_timeout_ms), 0);
        ck_assert_int_eq(coap_client_set_tls(&client, tags, n, hostname, flags), 0);
        req = make_request(COAP_METHOD_GET, "time", &rec);
        r = do_request(&client, sock, &req, &rec);
        if (r == COAP_RESPONSE_CODE_CONTENT) {
                regex_t re;
                char body[64] = "";

                memcpy(body, rec.body, rec.body_len < sizeof(body) - 1 ? rec.body_len : 0);
                ck_assert_int_eq(regcomp(&re, "^[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8}$",
                                         REG_EXTENDED | REG_NOSUB),
                                 0);
                ck_assert_msg(regexec(&re, body, 0, NULL, 0) == 0, "body '%s'", body);
                regfree(&re);
        }
        ck_assert_uint_eq(rec.n_last, 1);
        ck_assert(!rec.error_not_last);
        if (ret_message)
                snprintf(ret_message, size, "%s", rec.error_message);
        coap_client_deinit(&client);
        close(sock);
        recorder_done(&rec);
        return r;
}

static int get_time(uint16_t port, const int *tags, size_t n, const char *hostname, int flags,
                    uint32_t handshake_timeout_ms) {
        return get_time_message(port, tags, n, hostname, flags, handshake_timeout_ms, NULL, 0);
}

START_TEST(test_store) {
        static const uint8_t data[] = {1, 2, 3};

        /* Zephyr's rules: one credential per tag and type. */
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK,
                                                        data, sizeof(data)),
                         0);
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK,
                                                        data, sizeof(data)),
                         -EEXIST);
        ck_assert_int_eq(
                coap_client_tls_credential_delete(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK), 0);
        ck_assert_int_eq(
                coap_client_tls_credential_delete(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK),
                -ENOENT);
        ck_assert_int_eq(
                coap_client_tls_credential_delete(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK_ID),
                -ENOENT);

        ck_assert_int_eq(coap_client_tls_credential_add(-1, COAP_CLIENT_TLS_CREDENTIAL_PSK, data,
                                                        sizeof(data)),
                         -EINVAL);
        ck_assert_int_eq(coap_client_tls_credential_add(
                                 TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_NONE, data, sizeof(data)),
                         -EINVAL);
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_SCRATCH,
                                                        (enum coap_client_tls_credential_type) 7,
                                                        data, sizeof(data)),
                         -EINVAL);
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK,
                                                        NULL, 3),
                         -EINVAL);
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK,
                                                        data, 0),
                         -EINVAL);
        /* An identity of NULs only is empty. */
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_SCRATCH,
                                                        COAP_CLIENT_TLS_CREDENTIAL_PSK_ID, "\0", 2),
                         -EINVAL);
        ck_assert_int_eq(
                coap_client_tls_credential_delete(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_NONE),
                -EINVAL);
}
END_TEST

START_TEST(test_set_tls_errors) {
        static const uint8_t long_psk[65] = {1};
        static const char bad_pem[] =
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        const int psk_only[] = {TAG_SCRATCH}, unknown[] = {TAG_PSK, 999},
                  cert_only[] = {TAG_SCRATCH}, rpk_no_server[] = {TAG_RPK}, psk[] = {TAG_PSK};
        struct coap_client client = {}, never = {};
        struct coap_client_request req;
        Recorder rec;
        int sock;

        ck_assert_int_eq(coap_client_set_tls(&never, psk, 1, NULL, 0), -EINVAL);
        ck_assert_int_eq(coap_client_set_tls(NULL, psk, 1, NULL, 0), -EINVAL);
        ck_assert_int_eq(coap_client_set_tls_handshake_timeout(&never, 1000), -EINVAL);
        ck_assert_int_eq(coap_client_init(&client, "errors"), 0);
        ck_assert_int_eq(coap_client_set_tls(&client, NULL, 1, NULL, 0), -EINVAL);
        ck_assert_int_eq(coap_client_set_tls(&client, psk, 1, NULL, 1 << 5), -EINVAL);
        ck_assert_int_eq(coap_client_set_tls(&client, psk, 1, "", 0), -EINVAL);
        ck_assert_int_eq(coap_client_set_tls(&client, unknown, 2, NULL, 0), -ENOENT);
        ck_assert_int_eq(coap_client_set_tls_handshake_timeout(&client, 99), -EINVAL);
        ck_assert_int_eq(coap_client_set_tls_handshake_timeout(&client, 600001), -EINVAL);

        /* Incomplete sets. */
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK,
                                                        psk_key, strlen(psk_key)),
                         0);
        ck_assert_int_eq(coap_client_set_tls(&client, psk_only, 1, NULL, 0), -EINVAL);
        ck_assert_int_eq(
                coap_client_tls_credential_delete(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK), 0);
        add_file(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_SERVER_CERTIFICATE, "client.pem");
        ck_assert_int_eq(coap_client_set_tls(&client, cert_only, 1, NULL, 0), -EINVAL);
        ck_assert_int_eq(coap_client_tls_credential_delete(
                                 TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_SERVER_CERTIFICATE),
                         0);
        ck_assert_int_eq(coap_client_set_tls(&client, rpk_no_server, 1, NULL, 0), -EINVAL);

        /* What only coapclientd can tell: a PSK too long, a certificate it cannot parse. */
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK,
                                                        long_psk, sizeof(long_psk)),
                         0);
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_SCRATCH,
                                                        COAP_CLIENT_TLS_CREDENTIAL_PSK_ID, "id", 2),
                         0);
        ck_assert_int_eq(coap_client_set_tls(&client, psk_only, 1, NULL, 0), -EINVAL);
        ck_assert_int_eq(
                coap_client_tls_credential_delete(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK), 0);
        ck_assert_int_eq(
                coap_client_tls_credential_delete(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK_ID),
                0);
        ck_assert_int_eq(coap_client_tls_credential_add(TAG_SCRATCH,
                                                        COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE,
                                                        bad_pem, sizeof(bad_pem)),
                         0);
        ck_assert_int_eq(coap_client_set_tls(&client, cert_only, 1, NULL, 0), -EINVAL);
        ck_assert_int_eq(coap_client_tls_credential_delete(
                                 TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_CA_CERTIFICATE),
                         0);

        /* Failures change nothing: the client still speaks plain CoAP. */
        recorder_init(&rec);
        sock = socket_to(env_port("COAP_PEER_PORT", 0));
        req = make_request(COAP_METHOD_GET, "time", &rec);
        ck_assert_int_eq(do_request(&client, sock, &req, &rec), COAP_RESPONSE_CODE_CONTENT);
        coap_client_deinit(&client);
        close(sock);
        recorder_done(&rec);
}
END_TEST

START_TEST(test_psk) {
        const int tags[] = {TAG_PSK};
        struct coap_client client = {};
        struct coap_client_request req;
        Recorder rec;
        int sock, plain;

        ck_assert_int_eq(get_time(env_port("COAP_PEER_PORT", 1), tags, 1, NULL, 0, 0),
                         COAP_RESPONSE_CODE_CONTENT);

        /* Several requests over one session, then back to plain CoAP on the same client. */
        recorder_init(&rec);
        sock = socket_to(env_port("COAP_PEER_PORT", 1));
        plain = socket_to(env_port("COAP_PEER_PORT", 0));
        ck_assert_int_eq(coap_client_init(&client, "psk"), 0);
        ck_assert_int_eq(coap_client_set_tls(&client, tags, 1, NULL, 0), 0);
        req = make_request(COAP_METHOD_PUT, "tls-test", &rec);
        req.payload = (const uint8_t *) "over dtls";
        req.len = strlen("over dtls");
        ck_assert_int_eq(do_request(&client, sock, &req, &rec), COAP_RESPONSE_CODE_CREATED);
        req = make_request(COAP_METHOD_GET, "tls-test", &rec);
        ck_assert_int_eq(do_request(&client, sock, &req, &rec), COAP_RESPONSE_CODE_CONTENT);
        ck_assert_uint_eq(rec.body_len, strlen("over dtls"));
        ck_assert(memcmp(rec.body, "over dtls", rec.body_len) == 0);
        ck_assert_int_eq(coap_client_set_tls(&client, NULL, 0, NULL, 0), 0);
        ck_assert_int_eq(do_request(&client, plain, &req, &rec), COAP_RESPONSE_CODE_CONTENT);
        req = make_request(COAP_METHOD_DELETE, "tls-test", &rec);
        ck_assert_int_eq(do_request(&client, plain, &req, &rec), COAP_RESPONSE_CODE_DELETED);
        coap_client_deinit(&client);
        close(sock);
        close(plain);
        recorder_done(&rec);
}
END_TEST

START_TEST(test_psk_wrong_key) {
        static const char wrong[] = "wrongPSK";
        const int tags[] = {TAG_SCRATCH};
        char message[512] = "unset";
        uint64_t t0;

        ck_assert_int_eq(coap_client_tls_credential_add(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK,
                                                        wrong, strlen(wrong)),
                         0);
        ck_assert_int_eq(coap_client_tls_credential_add(
                                 TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK_ID, psk_id, 4),
                         0);
        /* The server cannot decrypt our Finished and drops it: only the timeout ends it, which
         * has no reason to give. */
        t0 = now_usec();
        ck_assert_int_eq(get_time_message(env_port("COAP_PEER_PORT", 1), tags, 1, NULL, 0, 1000,
                                          message, sizeof(message)),
                         -ETIMEDOUT);
        ck_assert_str_eq(message, "");
        ck_assert_uint_lt(now_usec() - t0, 10 * 1000000u);
        ck_assert_int_eq(
                coap_client_tls_credential_delete(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK), 0);
        ck_assert_int_eq(
                coap_client_tls_credential_delete(TAG_SCRATCH, COAP_CLIENT_TLS_CREDENTIAL_PSK_ID),
                0);
}
END_TEST

START_TEST(test_x509) {
        const int good[] = {TAG_CA, TAG_CLIENT_CERT},
                  der_and_other[] = {TAG_OTHER_CA, TAG_CA_DER, TAG_CLIENT_CERT},
                  wrong_ca[] = {TAG_OTHER_CA, TAG_CLIENT_CERT}, no_client_cert[] = {TAG_CA},
                  cert_only[] = {TAG_CLIENT_CERT}, der[] = {TAG_CA_DER, TAG_CLIENT_CERT};
        uint16_t port = env_port("COAPS_X509_PORT", 0);
        char message[512];

        ck_assert_int_eq(get_time(port, good, 2, "127.0.0.1", 0, 0), COAP_RESPONSE_CODE_CONTENT);
        ck_assert_int_eq(get_time(port, der, 2, "127.0.0.1", 0, 0), COAP_RESPONSE_CODE_CONTENT);
        /* Several CAs, one of them DER: they travel as one PEM list. */
        ck_assert_int_eq(get_time(port, der_and_other, 3, "localhost", 0, 0),
                         COAP_RESPONSE_CODE_CONTENT);
        /* The callback learns why from coap_client_last_error(): GnuTLS' verification result. */
        ck_assert_int_eq(
                get_time_message(port, wrong_ca, 2, "127.0.0.1", 0, 0, message, sizeof(message)),
                -EACCES);
        ck_assert_msg(strstr(message, "DTLS session failed: ") == message &&
                              strstr(message, "issuer is unknown"),
                      "message '%s'", message);
        ck_assert_int_eq(
                get_time_message(port, good, 2, "example.com", 0, 0, message, sizeof(message)),
                -EACCES);
        ck_assert_msg(strstr(message, "The name in the certificate does not match"), "message '%s'",
                      message);
        /* The server wants a client certificate. */
        ck_assert_int_eq(get_time(port, no_client_cert, 1, "127.0.0.1", 0, 0), -EACCES);
        /* Without verification of the server, our certificate alone. */
        ck_assert_int_eq(get_time(port, cert_only, 1, NULL, COAP_CLIENT_TLS_INSECURE, 0),
                         COAP_RESPONSE_CODE_CONTENT);
}
END_TEST

START_TEST(test_rpk) {
        const int good[] = {TAG_RPK, TAG_RPK_SERVER}, other[] = {TAG_RPK, TAG_RPK_OTHER},
                  insecure[] = {TAG_RPK};
        uint16_t port = env_port("COAPS_RPK_PORT", 0);

        ck_assert_int_eq(get_time(port, good, 2, NULL, 0, 0), COAP_RESPONSE_CODE_CONTENT);
        ck_assert_int_eq(get_time(port, other, 2, NULL, 0, 0), -EACCES);
        ck_assert_int_eq(get_time(port, insecure, 1, NULL, COAP_CLIENT_TLS_INSECURE, 0),
                         COAP_RESPONSE_CODE_CONTENT);
}
END_TEST

static Suite *tls_suite(void) {
        Suite *s = suite_create("client-tls");
        TCase *tc = tcase_create("tls");

        tcase_set_timeout(tc, 90);
        tcase_add_checked_fixture(tc, setup_store, teardown_store);
        tcase_add_test(tc, test_store);
        tcase_add_test(tc, test_set_tls_errors);
        tcase_add_test(tc, test_psk);
        tcase_add_test(tc, test_psk_wrong_key);
        tcase_add_test(tc, test_x509);
        tcase_add_test(tc, test_rpk);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(tls_suite)
