/* SPDX-License-Identifier: MIT */
#pragma once

/* Throwaway keys and certificates, generated with the GnuTLS API when a test runs, so no private
 * key is ever committed. EC P-256 keeps generation fast. */

#include <gnutls/gnutls.h>

typedef struct TestCert {
        gnutls_datum_t cert_pem; /* certificate */
        gnutls_datum_t cert_der;
        gnutls_datum_t key_pem; /* private key */
        gnutls_datum_t pub_pem; /* SubjectPublicKeyInfo */
        void *crt;              /* gnutls_x509_crt_t, for signing */
        void *key;              /* gnutls_x509_privkey_t */
} TestCert;

/* A self-signed CA. */
void test_pki_ca(TestCert *ret, const char *cn);
/* A leaf signed by ca with a DNS name and an IPv4 literal as subjectAltNames (both may be NULL). */
void test_pki_leaf(TestCert *ret, const TestCert *ca, const char *cn, const char *dns,
                   const char *ip);
/* Only a key pair (pub_pem, key_pem), for raw public keys. */
void test_pki_keypair(TestCert *ret);
void test_pki_done(TestCert *c);
