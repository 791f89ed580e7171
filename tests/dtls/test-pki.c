/* SPDX-License-Identifier: MIT */
#include "test-pki.h"

#include <arpa/inet.h>
#include <check.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/x509.h>

static gnutls_x509_privkey_t make_key(void) {
        gnutls_x509_privkey_t k;

        ck_assert_int_eq(gnutls_x509_privkey_init(&k), 0);
        ck_assert_int_eq(
                gnutls_x509_privkey_generate(k, GNUTLS_PK_ECDSA,
                                             GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                0);
        return k;
}

static void export_key(TestCert *c, gnutls_x509_privkey_t k) {
        gnutls_privkey_t pk;
        gnutls_pubkey_t pub;

        ck_assert_int_eq(gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &c->key_pem), 0);
        ck_assert_int_eq(gnutls_privkey_init(&pk), 0);
        ck_assert_int_eq(gnutls_privkey_import_x509(pk, k, 0), 0);
        ck_assert_int_eq(gnutls_pubkey_init(&pub), 0);
        ck_assert_int_eq(gnutls_pubkey_import_privkey(pub, pk, 0, 0), 0);
        ck_assert_int_eq(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_PEM, &c->pub_pem), 0);
        gnutls_pubkey_deinit(pub);
        gnutls_privkey_deinit(pk);
        c->key = k;
}

static gnutls_x509_crt_t make_crt(gnutls_x509_privkey_t k, const char *cn, unsigned serial) {
        gnutls_x509_crt_t crt;
        unsigned char sn[4] = {0, 0, (unsigned char) (serial >> 8), (unsigned char) serial};
        time_t now = time(NULL);

        ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
        ck_assert_int_eq(gnutls_x509_crt_set_version(crt, 3), 0);
        ck_assert_int_eq(gnutls_x509_crt_set_serial(crt, sn, sizeof(sn)), 0);
        ck_assert_int_eq(gnutls_x509_crt_set_activation_time(crt, now - 3600), 0);
        ck_assert_int_eq(gnutls_x509_crt_set_expiration_time(crt, now + 24 * 3600), 0);
        ck_assert_int_eq(
                gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn)),
                0);
        ck_assert_int_eq(gnutls_x509_crt_set_key(crt, k), 0);
        return crt;
}

static void finish(TestCert *c, gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer,
                   gnutls_x509_privkey_t issuer_key) {
        ck_assert_int_eq(gnutls_x509_crt_sign2(crt, issuer, issuer_key, GNUTLS_DIG_SHA256, 0), 0);
        ck_assert_int_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c->cert_pem), 0);
        ck_assert_int_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &c->cert_der), 0);
        c->crt = crt;
}

void test_pki_ca(TestCert *ret, const char *cn) {
        static unsigned serial = 1;
        gnutls_x509_privkey_t k = make_key();
        gnutls_x509_crt_t crt = make_crt(k, cn, serial++);

        *ret = (TestCert){};
        ck_assert_int_eq(gnutls_x509_crt_set_basic_constraints(crt, 1, -1), 0);
        ck_assert_int_eq(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN), 0);
        finish(ret, crt, crt, k);
        export_key(ret, k);
}

void test_pki_leaf(TestCert *ret, const TestCert *ca, const char *cn, const char *dns,
                   const char *ip) {
        static unsigned serial = 1000;
        gnutls_x509_privkey_t k = make_key();
        gnutls_x509_crt_t crt = make_crt(k, cn, serial++);
        unsigned char addr[4];

        *ret = (TestCert){};
        ck_assert_int_eq(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), 0);
        ck_assert_int_eq(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE), 0);
        if (dns)
                ck_assert_int_eq(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, dns,
                                                                      strlen(dns),
                                                                      GNUTLS_FSAN_APPEND),
                                 0);
        if (ip) {
                ck_assert_int_eq(inet_pton(AF_INET, ip, addr), 1);
                ck_assert_int_eq(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS,
                                                                      addr, sizeof(addr),
                                                                      GNUTLS_FSAN_APPEND),
                                 0);
        }
        finish(ret, crt, ca->crt, ca->key);
        export_key(ret, k);
}

void test_pki_keypair(TestCert *ret) {
        *ret = (TestCert){};
        export_key(ret, make_key());
}

void test_pki_done(TestCert *c) {
        gnutls_free(c->cert_pem.data);
        gnutls_free(c->cert_der.data);
        gnutls_free(c->key_pem.data);
        gnutls_free(c->pub_pem.data);
        if (c->crt)
                gnutls_x509_crt_deinit(c->crt);
        if (c->key)
                gnutls_x509_privkey_deinit(c->key);
        *c = (TestCert){};
}
