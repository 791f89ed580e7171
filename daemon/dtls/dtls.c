/* SPDX-License-Identifier: MIT */
#include "dtls.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "internal/macro.h"

/* DTLS 1.2 only; AEAD ciphers only, best first; CCM-8 last (its 64-bit tag is the weakest) but
 * present, as CoAP mandates it. */
#define PRIORITY_BASE                                                           \
        "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:" \
        "+CHACHA20-POLY1305:+AES-128-CCM:+AES-128-CCM-8:-MAC-ALL:+AEAD:-KX-ALL"
#define PRIORITY_PSK   PRIORITY_BASE ":+ECDHE-PSK:+PSK"
#define PRIORITY_X509  PRIORITY_BASE ":+ECDHE-ECDSA:+ECDHE-RSA"
#define PRIORITY_RAWPK PRIORITY_X509 ":-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"

#define PSK_KEY_MAX 64U

typedef enum DtlsAuth {
        DTLS_AUTH_PSK,
        DTLS_AUTH_X509,
        DTLS_AUTH_RAWPK,
} DtlsAuth;

struct DtlsCredentials {
        unsigned n_ref;
        DtlsAuth auth;
        DtlsCredentialsFlags flags;
        bool in_use;                /* a session exists: the credentials are frozen */
        gnutls_priority_t priority; /* priority_acquire()d */
        gnutls_psk_client_credentials_t psk;
        gnutls_certificate_credentials_t cert;
        char *server_name;        /* X.509: name to verify, NULL: chain only */
        gnutls_datum_t server_pk; /* RPK: expected SubjectPublicKeyInfo, DER */
};

struct DtlsSessionData {
        gnutls_datum_t data;
};

struct Dtls {
        DtlsCredentials *creds;
        DtlsIo io;
        gnutls_session_t session;
        DtlsState state;
        int error;
        char *reason; /* GnuTLS' words for the last failure, NULL when none */

        unsigned mtu;
        unsigned retransmit_ms;
        unsigned total_ms;

        /* The datagram dtls_feed() is handing to GnuTLS' pull function. */
        const uint8_t *in_buf;
        size_t in_len;
        bool pull_starved; /* GnuTLS asked for more than we had: it has no records left */
        int push_error;

        uint64_t handshake_deadline; /* caller's clock */
        uint64_t retransmit_deadline;
        gnutls_datum_t resume; /* from the last successful handshake, or set by the caller */
        unsigned in_callback;
};

static const char *const state_table[_DTLS_STATE_MAX] = {
        [DTLS_STATE_NEW] = "new",
        [DTLS_STATE_HANDSHAKING] = "handshaking",
        [DTLS_STATE_ESTABLISHED] = "established",
        [DTLS_STATE_CLOSED] = "closed",
        [DTLS_STATE_FAILED] = "failed",
};

const char *dtls_state_to_string(DtlsState s) {
        if (s < 0 || s >= _DTLS_STATE_MAX)
                return NULL;
        return state_table[s];
}

static void datum_wipe(gnutls_datum_t *d) {
        if (d->data) {
                gnutls_memset(d->data, 0, d->size);
                gnutls_free(d->data);
        }
        *d = (gnutls_datum_t){};
}

static int datum_copy(gnutls_datum_t *dst, const void *src, size_t len) {
        gnutls_datum_t n = {};

        if (len > UINT_MAX)
                return -EINVAL;
        n.data = gnutls_malloc(len > 0 ? len : 1);
        if (!n.data)
                return -ENOMEM;
        if (len > 0)
                memcpy(n.data, src, len);
        n.size = (unsigned) len;
        datum_wipe(dst);
        *dst = n;
        return 0;
}

static gnutls_x509_crt_fmt_t guess_format(const void *buf, size_t len) {
        static const char pem[] = "-----BEGIN";

        /* PEM files may start with comments or blank lines: look for the armor anywhere. */
        if (memmem(buf, len, pem, sizeof(pem) - 1))
                return GNUTLS_X509_FMT_PEM;
        return GNUTLS_X509_FMT_DER;
}

/* Maps a GnuTLS error of a local operation (not a received alert) to errno. */
static int errno_from_gnutls(int r) {
        switch (r) {
        case GNUTLS_E_MEMORY_ERROR:
                return -ENOMEM;
        case GNUTLS_E_TIMEDOUT:
                return -ETIMEDOUT;
        case GNUTLS_E_CERTIFICATE_ERROR:
        case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
        case GNUTLS_E_CERTIFICATE_REQUIRED:
        case GNUTLS_E_NO_CERTIFICATE_FOUND:
        case GNUTLS_E_PK_SIG_VERIFY_FAILED:
        case GNUTLS_E_ERROR_IN_FINISHED_PACKET:
        case GNUTLS_E_DECRYPTION_FAILED:
                return -EACCES;
        case GNUTLS_E_NO_CIPHER_SUITES:
        case GNUTLS_E_UNKNOWN_CIPHER_SUITE:
        case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
        case GNUTLS_E_INSUFFICIENT_CREDENTIALS:
        case GNUTLS_E_NO_COMMON_KEY_SHARE:
        case GNUTLS_E_UNSUPPORTED_CERTIFICATE_TYPE:
        case GNUTLS_E_UNKNOWN_PK_ALGORITHM:
        case GNUTLS_E_ECC_UNSUPPORTED_CURVE:
                return -ECONNREFUSED;
        case GNUTLS_E_LARGE_PACKET:
                return -EMSGSIZE;
        default:
                return -EPROTO;
        }
}

static int errno_from_alert(gnutls_alert_description_t a) {
        switch (a) {
        case GNUTLS_A_UNKNOWN_PSK_IDENTITY:
        case GNUTLS_A_BAD_CERTIFICATE:
        case GNUTLS_A_UNSUPPORTED_CERTIFICATE:
        case GNUTLS_A_CERTIFICATE_REVOKED:
        case GNUTLS_A_CERTIFICATE_EXPIRED:
        case GNUTLS_A_CERTIFICATE_UNKNOWN:
        case GNUTLS_A_UNKNOWN_CA:
        case GNUTLS_A_ACCESS_DENIED:
        case GNUTLS_A_DECRYPT_ERROR:
        case GNUTLS_A_BAD_RECORD_MAC:
        case GNUTLS_A_DECRYPTION_FAILED:
        case GNUTLS_A_CERTIFICATE_REQUIRED:
                return -EACCES;
        default:
                return -ECONNREFUSED;
        }
}

/* ---- Credentials ---------------------------------------------------------------------------- */

/* One parsed priority per kind of authentication, shared by every credentials object of that
 * kind and so by every session: a parse costs ~8 KB for as long as it is in use (a session's
 * own gnutls_priority_set_direct() kept one per session) and the CPU of the parse. GnuTLS counts
 * the sessions using it; the count here is the credentials objects'. The lock: credentials
 * objects may live in different threads. */
static const char *const priority_table[] = {
        [DTLS_AUTH_PSK] = PRIORITY_PSK,
        [DTLS_AUTH_X509] = PRIORITY_X509,
        [DTLS_AUTH_RAWPK] = PRIORITY_RAWPK,
};

static struct {
        gnutls_priority_t priority;
        unsigned n_users;
} priority_cache[ELEMENTSOF(priority_table)];
static pthread_mutex_t priority_lock = PTHREAD_MUTEX_INITIALIZER;

static int priority_acquire(DtlsAuth auth, gnutls_priority_t *ret) {
        int r = 0;

        pthread_mutex_lock(&priority_lock);
        if (priority_cache[auth].n_users == 0)
                r = gnutls_priority_init(&priority_cache[auth].priority, priority_table[auth],
                                         NULL);
        if (r >= 0) {
                priority_cache[auth].n_users++;
                *ret = priority_cache[auth].priority;
        }
        pthread_mutex_unlock(&priority_lock);
        if (r < 0)
                return errno_from_gnutls(r) == -ENOMEM ? -ENOMEM : -EINVAL;
        return 0;
}

static void priority_release(DtlsAuth auth) {
        pthread_mutex_lock(&priority_lock);
        assert(priority_cache[auth].n_users > 0);
        if (--priority_cache[auth].n_users == 0) {
                gnutls_priority_deinit(priority_cache[auth].priority);
                priority_cache[auth].priority = NULL;
        }
        pthread_mutex_unlock(&priority_lock);
}

static int credentials_alloc(DtlsAuth auth, DtlsCredentialsFlags flags, DtlsCredentials **ret) {
        DtlsCredentials *c;
        int r;

        if (flags & ~DTLS_CREDENTIALS_INSECURE)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->auth = auth;
        c->flags = flags;
        r = priority_acquire(auth, &c->priority);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

DtlsCredentials *dtls_credentials_ref(DtlsCredentials *c) {
        if (c) {
                assert(c->n_ref > 0);
                c->n_ref++;
        }
        return c;
}

DtlsCredentials *dtls_credentials_unref(DtlsCredentials *c) {
        if (!c)
                return NULL;
        assert(c->n_ref > 0);
        if (--c->n_ref > 0)
                return NULL;
        priority_release(c->auth);
        /* GnuTLS wipes the PSK and private keys it holds when freeing them. */
        if (c->psk)
                gnutls_psk_free_client_credentials(c->psk);
        if (c->cert)
                gnutls_certificate_free_credentials(c->cert);
        free(c->server_name);
        datum_wipe(&c->server_pk);
        free(c);
        return NULL;
}

int dtls_credentials_new_psk(const char *identity, const void *key, size_t key_len,
                             DtlsCredentials **ret) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = NULL;
        gnutls_datum_t k;
        int r;

        if (!identity || !*identity || !key || key_len == 0 || key_len > PSK_KEY_MAX || !ret)
                return -EINVAL;
        r = credentials_alloc(DTLS_AUTH_PSK, 0, &c);
        if (r < 0)
                return r;
        if (gnutls_psk_allocate_client_credentials(&c->psk) < 0)
                return -ENOMEM;
        k = (gnutls_datum_t){.data = (unsigned char *) key, .size = (unsigned) key_len};
        r = gnutls_psk_set_client_credentials(c->psk, identity, &k, GNUTLS_PSK_KEY_RAW);
        if (r < 0)
                return errno_from_gnutls(r) == -ENOMEM ? -ENOMEM : -EINVAL;
        *ret = TAKE_PTR(c);
        return 0;
}

/* Verifies the server's raw public key against the one we expect. */
static int verify_rawpk(gnutls_session_t session) {
        Dtls *d = gnutls_session_get_ptr(session);
        const gnutls_datum_t *peer;
        unsigned n = 0;

        if (d->creds->flags & DTLS_CREDENTIALS_INSECURE)
                return 0;
        if (gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_RAWPK)
                return GNUTLS_E_CERTIFICATE_ERROR;
        peer = gnutls_certificate_get_peers(session, &n);
        if (!peer || n != 1 || peer[0].size != d->creds->server_pk.size ||
            memcmp(peer[0].data, d->creds->server_pk.data, peer[0].size) != 0)
                return GNUTLS_E_CERTIFICATE_ERROR;
        return 0;
}

static int cert_credentials_alloc(DtlsAuth auth, DtlsCredentialsFlags flags,
                                  DtlsCredentials **ret) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = NULL;
        int r;

        r = credentials_alloc(auth, flags, &c);
        if (r < 0)
                return r;
        if (gnutls_certificate_allocate_credentials(&c->cert) < 0)
                return -ENOMEM;
        /* X.509 is verified per session by gnutls_session_set_verify_cert(). */
        if (auth == DTLS_AUTH_RAWPK)
                gnutls_certificate_set_verify_function(c->cert, verify_rawpk);
        *ret = TAKE_PTR(c);
        return 0;
}

int dtls_credentials_new_x509(const void *ca, size_t ca_len, const char *server_name,
                              DtlsCredentialsFlags flags, DtlsCredentials **ret) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = NULL;
        int r;

        if ((!ca && ca_len > 0) || (ca && (ca_len == 0 || ca_len > UINT_MAX)) || !ret)
                return -EINVAL;
        if (server_name && !*server_name)
                return -EINVAL;
        r = cert_credentials_alloc(DTLS_AUTH_X509, flags, &c);
        if (r < 0)
                return r;
        if (server_name) {
                c->server_name = strdup(server_name);
                if (!c->server_name)
                        return -ENOMEM;
        }
        if (ca) {
                gnutls_datum_t d = {.data = (unsigned char *) ca, .size = (unsigned) ca_len};

                r = gnutls_certificate_set_x509_trust_mem(c->cert, &d, guess_format(ca, ca_len));
                if (r <= 0)
                        return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
        } else if (!(flags & DTLS_CREDENTIALS_INSECURE)) {
                r = gnutls_certificate_set_x509_system_trust(c->cert);
                if (r < 0)
                        return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -ENOENT;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int dtls_credentials_set_client_cert(DtlsCredentials *c, const void *cert, size_t cert_len,
                                     const void *key, size_t key_len) {
        gnutls_datum_t cd, kd;
        gnutls_x509_crt_fmt_t fmt;
        int r;

        if (!c || c->auth != DTLS_AUTH_X509 || !cert || cert_len == 0 || cert_len > UINT_MAX ||
            !key || key_len == 0 || key_len > UINT_MAX)
                return -EINVAL;
        if (c->in_use)
                return -EBUSY;
        fmt = guess_format(cert, cert_len);
        if (guess_format(key, key_len) != fmt)
                return -EINVAL;
        cd = (gnutls_datum_t){.data = (unsigned char *) cert, .size = (unsigned) cert_len};
        kd = (gnutls_datum_t){.data = (unsigned char *) key, .size = (unsigned) key_len};
        r = gnutls_certificate_set_x509_key_mem2(c->cert, &cd, &kd, fmt, NULL, 0);
        if (r < 0)
                return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
        return 0;
}

/* Imports our RPK private key and installs it with its derived public key. */
static int rawpk_set_key(gnutls_certificate_credentials_t cred, const void *key, size_t len) {
        gnutls_datum_t kd = {.data = (unsigned char *) key, .size = (unsigned) len};
        gnutls_privkey_t priv = NULL;
        gnutls_pubkey_t pub = NULL;
        gnutls_pcert_st pcert;
        bool have_pcert = false;
        int r;

        if (gnutls_privkey_init(&priv) < 0 || gnutls_pubkey_init(&pub) < 0) {
                r = GNUTLS_E_MEMORY_ERROR;
                goto fail;
        }
        r = gnutls_privkey_import_x509_raw(priv, &kd, guess_format(key, len), NULL, 0);
        if (r < 0)
                goto fail;
        r = gnutls_pubkey_import_privkey(pub, priv, 0, 0);
        if (r < 0)
                goto fail;
        r = gnutls_pcert_import_rawpk(&pcert, pub, 0); /* takes pub */
        if (r < 0)
                goto fail;
        pub = NULL;
        have_pcert = true;
        r = gnutls_certificate_set_key(cred, NULL, 0, &pcert, 1, priv); /* takes both */
        if (r < 0)
                goto fail;
        return 0;
fail:
        if (have_pcert)
                gnutls_pcert_deinit(&pcert);
        gnutls_pubkey_deinit(pub);
        gnutls_privkey_deinit(priv);
        return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
}

/* Normalises a public key (PEM or DER SubjectPublicKeyInfo) to DER. */
static int spki_to_der(const void *buf, size_t len, gnutls_datum_t *ret) {
        gnutls_datum_t in = {.data = (unsigned char *) buf, .size = (unsigned) len};
        gnutls_pubkey_t pub;
        int r;

        if (gnutls_pubkey_init(&pub) < 0)
                return -ENOMEM;
        r = gnutls_pubkey_import(pub, &in, guess_format(buf, len));
        if (r >= 0)
                r = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, ret);
        gnutls_pubkey_deinit(pub);
        if (r < 0)
                return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
        return 0;
}

int dtls_credentials_new_rpk(const void *key, size_t key_len, const void *server_pubkey,
                             size_t server_pubkey_len, DtlsCredentialsFlags flags,
                             DtlsCredentials **ret) {
        _cleanup_(dtls_credentials_unrefp) DtlsCredentials *c = NULL;
        int r;

        if (!key || key_len == 0 || key_len > UINT_MAX || !ret)
                return -EINVAL;
        if (server_pubkey ? server_pubkey_len == 0 || server_pubkey_len > UINT_MAX
                          : !(flags & DTLS_CREDENTIALS_INSECURE))
                return -EINVAL;
        r = cert_credentials_alloc(DTLS_AUTH_RAWPK, flags, &c);
        if (r < 0)
                return r;
        r = rawpk_set_key(c->cert, key, key_len);
        if (r < 0)
                return r;
        if (server_pubkey) {
                r = spki_to_der(server_pubkey, server_pubkey_len, &c->server_pk);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- Sessions ------------------------------------------------------------------------------- */

static void dtls_set_state(Dtls *d, DtlsState s, int error) {
        d->state = s;
        d->error = error;
        if (!d->io.state_changed)
                return;
        d->in_callback++;
        d->io.state_changed(d->io.userdata, s, error);
        d->in_callback--;
}

static ssize_t pull_cb(gnutls_transport_ptr_t p, void *buf, size_t size) {
        Dtls *d = p;
        size_t n;

        if (!d->in_buf) {
                d->pull_starved = true;
                gnutls_transport_set_errno(d->session, EAGAIN);
                return -1;
        }
        /* One datagram per call; GnuTLS' buffer holds the largest record, so a longer datagram
         * is malformed anyway and truncating it gets it discarded. */
        n = MIN(size, d->in_len);
        memcpy(buf, d->in_buf, n);
        d->in_buf = NULL;
        d->in_len = 0;
        return (ssize_t) n;
}

/* Mandatory with a custom pull function. Never waits: the caller's loop does. */
static int pull_timeout_cb(gnutls_transport_ptr_t p, unsigned ms) {
        Dtls *d = p;

        (void) ms;
        return d->in_buf ? 1 : 0;
}

static ssize_t push_cb(gnutls_transport_ptr_t p, const void *buf, size_t size) {
        Dtls *d = p;
        int r;

        /* A datagram that cannot be sent is a lost datagram; reporting it to GnuTLS would
         * make it buffer and retry in ways that do not suit datagrams. */
        r = d->io.push(d->io.userdata, buf, size);
        if (r < 0)
                d->push_error = r;
        return (ssize_t) size;
}

int dtls_new(DtlsCredentials *c, const DtlsIo *io, Dtls **ret) {
        Dtls *d;

        if (!c || !io || !io->push || !io->deliver || !ret)
                return -EINVAL;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->creds = dtls_credentials_ref(c);
        c->in_use = true;
        d->io = *io;
        d->state = DTLS_STATE_NEW;
        d->mtu = DTLS_DEFAULT_MTU;
        d->retransmit_ms = (unsigned) (DTLS_DEFAULT_RETRANSMIT_USEC / USEC_PER_MSEC);
        d->total_ms = (unsigned) (DTLS_DEFAULT_HANDSHAKE_TIMEOUT / USEC_PER_MSEC);
        d->handshake_deadline = USEC_INFINITY;
        d->retransmit_deadline = USEC_INFINITY;
        *ret = d;
        return 0;
}

static void dtls_session_reset(Dtls *d) {
        if (d->session) {
                gnutls_deinit(d->session);
                d->session = NULL;
        }
        d->in_buf = NULL;
        d->in_len = 0;
        d->handshake_deadline = USEC_INFINITY;
        d->retransmit_deadline = USEC_INFINITY;
}

Dtls *dtls_free(Dtls *d) {
        if (!d)
                return NULL;
        assert(d->in_callback == 0);
        dtls_session_reset(d);
        datum_wipe(&d->resume);
        dtls_credentials_unref(d->creds);
        free(d->reason);
        free(d);
        return NULL;
}

int dtls_set_mtu(Dtls *d, unsigned mtu) {
        if (!d || mtu < 256 || mtu > 65507)
                return -EINVAL;
        d->mtu = mtu;
        if (d->session)
                gnutls_dtls_set_mtu(d->session, mtu);
        return 0;
}

size_t dtls_get_max_payload(Dtls *d) {
        if (!d)
                return 0;
        if (d->session)
                return gnutls_dtls_get_data_mtu(d->session);
        /* Before a session exists: the worst AEAD overhead, 13 header + 8 nonce + 16 tag. */
        return d->mtu - 37;
}

int dtls_set_timeouts(Dtls *d, uint64_t retransmit_usec, uint64_t total_usec) {
        if (!d || retransmit_usec < USEC_PER_MSEC || total_usec < USEC_PER_MSEC ||
            retransmit_usec / USEC_PER_MSEC > UINT_MAX / 2 ||
            total_usec / USEC_PER_MSEC > UINT_MAX / 2)
                return -EINVAL;
        d->retransmit_ms = (unsigned) (retransmit_usec / USEC_PER_MSEC);
        d->total_ms = (unsigned) (total_usec / USEC_PER_MSEC);
        return 0;
}

static bool is_ip_literal(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];

        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int dtls_session_setup(Dtls *d) {
        DtlsCredentials *c = d->creds;
        unsigned flags = GNUTLS_CLIENT | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK;
        int r;

        if (c->auth == DTLS_AUTH_RAWPK)
                flags |= GNUTLS_ENABLE_RAWPK;
        r = gnutls_init(&d->session, flags);
        if (r < 0) {
                d->session = NULL;
                return errno_from_gnutls(r);
        }
        gnutls_session_set_ptr(d->session, d);
        gnutls_transport_set_ptr(d->session, d);
        gnutls_transport_set_push_function(d->session, push_cb);
        gnutls_transport_set_pull_function(d->session, pull_cb);
        gnutls_transport_set_pull_timeout_function(d->session, pull_timeout_cb);
        gnutls_dtls_set_mtu(d->session, d->mtu);
        gnutls_dtls_set_timeouts(d->session, d->retransmit_ms, d->total_ms);

        switch (c->auth) {
        case DTLS_AUTH_PSK:
                r = gnutls_credentials_set(d->session, GNUTLS_CRD_PSK, c->psk);
                break;
        case DTLS_AUTH_X509:
                r = gnutls_credentials_set(d->session, GNUTLS_CRD_CERTIFICATE, c->cert);
                if (r >= 0 && c->server_name && !is_ip_literal(c->server_name))
                        r = gnutls_server_name_set(d->session, GNUTLS_NAME_DNS, c->server_name,
                                                   strlen(c->server_name));
                if (r >= 0 && !(c->flags & DTLS_CREDENTIALS_INSECURE))
                        gnutls_session_set_verify_cert(d->session, c->server_name, 0);
                break;
        case DTLS_AUTH_RAWPK:
                r = gnutls_credentials_set(d->session, GNUTLS_CRD_CERTIFICATE, c->cert);
                break;
        default:
                assert(false);
                return -EINVAL;
        }
        if (r >= 0)
                r = gnutls_priority_set(d->session, c->priority);
        /* Stale or foreign resumption data only costs a full handshake. */
        if (r >= 0 && d->resume.data)
                (void) gnutls_session_set_data(d->session, d->resume.data, d->resume.size);
        if (r < 0) {
                dtls_session_reset(d);
                return errno_from_gnutls(r) == -ENOMEM ? -ENOMEM : -EINVAL;
        }
        return 0;
}

/* GnuTLS' reason for a failure: the alert the peer sent, what certificate verification found,
 * or the error's text; for dtls_get_error_reason(). */
static void dtls_set_reason(Dtls *d, int gnutls_error) {
        gnutls_datum_t out = {};
        char buf[256];
        unsigned status;

        status = gnutls_session_get_verify_cert_status(d->session);
        if (gnutls_error == GNUTLS_E_FATAL_ALERT_RECEIVED) {
                const char *alert = gnutls_alert_get_name(gnutls_alert_get(d->session));

                snprintf(buf, sizeof(buf), "the peer sent the alert '%s'", alert ?: "unknown");
        } else if ((gnutls_error == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR ||
                    gnutls_error == GNUTLS_E_CERTIFICATE_ERROR) &&
                   status != 0 && status != UINT_MAX &&
                   gnutls_certificate_verification_status_print(
                           status, gnutls_certificate_type_get(d->session), &out, 0) >= 0) {
                size_t n;

                snprintf(buf, sizeof(buf), "%s", (const char *) out.data);
                gnutls_free(out.data);
                n = strlen(buf);
                while (n > 0 && buf[n - 1] == ' ')
                        buf[--n] = '\0';
        } else
                snprintf(buf, sizeof(buf), "%s", gnutls_strerror(gnutls_error));
        /* Kept by failed sessions only, not 256 bytes in each; out of memory, there is none. */
        free(d->reason);
        d->reason = buf[0] ? strdup(buf) : NULL;
}

static void dtls_fail(Dtls *d, int error) {
        /* Sessions that ended in a fatal error must not be resumed (RFC 5246 §7.2.2). */
        datum_wipe(&d->resume);
        /* Nothing of it serves again (the reason is ours), and a failed handshake would keep
         * ~24 KB of GnuTLS state for as long as its socket and client live. */
        dtls_session_reset(d);
        dtls_set_state(d, DTLS_STATE_FAILED, error);
}

/* Records per datagram are bounded by its size; so are "again" answers for discarded ones. */
#define DRAIN_DISCARDS_MAX (65536U / 13U)

static void dtls_drain(Dtls *d) {
        unsigned discards = 0;

        while (d->state == DTLS_STATE_ESTABLISHED) {
                gnutls_packet_t packet = NULL;
                gnutls_datum_t data;
                ssize_t n;

                d->pull_starved = false;
                n = gnutls_record_recv_packet(d->session, &packet);
                if (n > 0) {
                        gnutls_packet_get(packet, &data, NULL);
                        d->in_callback++;
                        d->io.deliver(d->io.userdata, data.data, data.size);
                        d->in_callback--;
                        gnutls_packet_deinit(packet);
                } else if (n == 0) {
                        dtls_session_reset(d);
                        dtls_set_state(d, DTLS_STATE_CLOSED, -ECONNRESET);
                } else if (n == GNUTLS_E_AGAIN) {
                        /* GnuTLS also says "again" when it discarded an invalid record; records
                         * after it in the same datagram are still buffered. */
                        if (d->pull_starved || ++discards > DRAIN_DISCARDS_MAX)
                                return;
                } else if (n == GNUTLS_E_REHANDSHAKE) {
                        /* Renegotiation is refused: one handshake per session keeps this simple
                         * and avoids the renegotiation attack surface. */
                        (void) gnutls_alert_send(d->session, GNUTLS_AL_WARNING,
                                                 GNUTLS_A_NO_RENEGOTIATION);
                } else if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
                        dtls_set_reason(d, (int) n);
                        dtls_fail(d, -ECONNRESET);
                } else if (gnutls_error_is_fatal((int) n)) {
                        (void) gnutls_alert_send_appropriate(d->session, (int) n);
                        dtls_set_reason(d, (int) n);
                        dtls_fail(d, errno_from_gnutls((int) n));
                }
                /* Other non-fatal errors (warning alerts, EINTR): keep reading. */
        }
}

static void dtls_handshake(Dtls *d, uint64_t now) {
        gnutls_datum_t data = {};
        int r;

        do
                r = gnutls_handshake(d->session);
        while (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_WARNING_ALERT_RECEIVED);

        /* GnuTLS' own total timeout (its clock) counts as much as ours; it is "non-fatal". */
        if (r == GNUTLS_E_TIMEDOUT) {
                dtls_fail(d, -ETIMEDOUT);
                return;
        }
        if (r < 0 && !gnutls_error_is_fatal(r)) {
                d->retransmit_deadline = now + gnutls_dtls_get_timeout(d->session) * USEC_PER_MSEC;
                return;
        }
        if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
                dtls_set_reason(d, r);
                dtls_fail(d, errno_from_alert(gnutls_alert_get(d->session)));
                return;
        }
        if (r < 0) {
                (void) gnutls_alert_send_appropriate(d->session, r);
                dtls_set_reason(d, r);
                dtls_fail(d, errno_from_gnutls(r));
                return;
        }

        d->handshake_deadline = USEC_INFINITY;
        d->retransmit_deadline = USEC_INFINITY;
        /* Keep what the next handshake needs to be abbreviated; without it, it is a full one.
         * A copy: GnuTLS hands over its growing buffer, ~2 KB for a few hundred bytes. */
        datum_wipe(&d->resume);
        if (gnutls_session_get_data2(d->session, &data) >= 0) {
                (void) datum_copy(&d->resume, data.data, data.size);
                datum_wipe(&data);
        }
        dtls_set_state(d, DTLS_STATE_ESTABLISHED, 0);
        /* The server's last flight may share a datagram with its first records. */
        dtls_drain(d);
}

int dtls_start(Dtls *d, uint64_t now) {
        int r;

        if (!d)
                return -EINVAL;
        if (d->state == DTLS_STATE_HANDSHAKING || d->state == DTLS_STATE_ESTABLISHED)
                return -EBUSY;
        dtls_session_reset(d);
        r = dtls_session_setup(d);
        if (r < 0)
                return r;
        d->push_error = 0;
        free(d->reason);
        d->reason = NULL;
        d->handshake_deadline = now + (uint64_t) d->total_ms * USEC_PER_MSEC;
        dtls_set_state(d, DTLS_STATE_HANDSHAKING, 0);
        if (d->state == DTLS_STATE_HANDSHAKING)
                dtls_handshake(d, now);
        return 0;
}

/* True when buf is a sequence of whole DTLS records. GnuTLS 3.7 keeps a truncated record's
 * bytes and glues the next datagram to them, so one short datagram (lost fragment, attack)
 * would corrupt every later record; such datagrams are dropped here instead. */
static bool datagram_is_whole_records(const uint8_t *buf, size_t len) {
        enum { HEADER = 13 }; /* type, version, epoch, sequence number, length */
        size_t off = 0;

        while (off < len) {
                size_t rlen;

                if (len - off < HEADER)
                        return false;
                rlen = (size_t) buf[off + 11] << 8 | buf[off + 12];
                if (rlen > len - off - HEADER)
                        return false;
                off += HEADER + rlen;
        }
        return true;
}

int dtls_feed(Dtls *d, const uint8_t *buf, size_t len, uint64_t now) {
        if (!d || (!buf && len > 0))
                return -EINVAL;
        if (d->state != DTLS_STATE_HANDSHAKING && d->state != DTLS_STATE_ESTABLISHED)
                return -ENOTCONN;
        if (!datagram_is_whole_records(buf, len))
                return 0;
        d->in_buf = buf;
        d->in_len = len;
        if (d->state == DTLS_STATE_HANDSHAKING)
                dtls_handshake(d, now);
        else
                dtls_drain(d);
        /* Never keep a pointer to the caller's buffer. */
        d->in_buf = NULL;
        d->in_len = 0;
        return 0;
}

int dtls_send(Dtls *d, const uint8_t *buf, size_t len) {
        ssize_t n;

        if (!d || (!buf && len > 0))
                return -EINVAL;
        if (d->state == DTLS_STATE_NEW || d->state == DTLS_STATE_HANDSHAKING)
                return -EAGAIN;
        if (d->state != DTLS_STATE_ESTABLISHED)
                return -ENOTCONN;
        if (len > gnutls_dtls_get_data_mtu(d->session))
                return -EMSGSIZE;
        d->push_error = 0;
        n = gnutls_record_send(d->session, buf, len);
        if (n < 0)
                return errno_from_gnutls((int) n);
        return d->push_error;
}

uint64_t dtls_next_timeout(Dtls *d) {
        if (!d || d->state != DTLS_STATE_HANDSHAKING)
                return USEC_INFINITY;
        return MIN(d->retransmit_deadline, d->handshake_deadline);
}

int dtls_on_timeout(Dtls *d, uint64_t now) {
        if (!d)
                return -EINVAL;
        if (d->state != DTLS_STATE_HANDSHAKING)
                return 0;
        if (now >= d->handshake_deadline) {
                dtls_fail(d, -ETIMEDOUT);
                return 0;
        }
        if (now >= d->retransmit_deadline)
                dtls_handshake(d, now);
        return 0;
}

int dtls_close(Dtls *d) {
        if (!d)
                return -EINVAL;
        if (d->state != DTLS_STATE_HANDSHAKING && d->state != DTLS_STATE_ESTABLISHED)
                return 0;
        if (d->state == DTLS_STATE_ESTABLISHED)
                (void) gnutls_bye(d->session, GNUTLS_SHUT_WR);
        dtls_session_reset(d);
        dtls_set_state(d, DTLS_STATE_CLOSED, 0);
        return 0;
}

DtlsState dtls_get_state(Dtls *d) {
        return d ? d->state : DTLS_STATE_FAILED;
}

int dtls_get_error(Dtls *d) {
        return d ? d->error : -EINVAL;
}

const char *dtls_get_error_reason(Dtls *d) {
        return d ? d->reason : NULL;
}

bool dtls_is_resumed(Dtls *d) {
        return d && d->session && d->state == DTLS_STATE_ESTABLISHED &&
               gnutls_session_is_resumed(d->session);
}

int dtls_describe(Dtls *d, char **ret) {
        char *g, *s;

        if (!d || !ret)
                return -EINVAL;
        if (d->state != DTLS_STATE_ESTABLISHED)
                return -ENOTCONN;
        g = gnutls_session_get_desc(d->session);
        if (!g)
                return -ENOMEM;
        s = strdup(g);
        gnutls_free(g);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---- Resumption data ------------------------------------------------------------------------ */

int dtls_get_session_data(Dtls *d, DtlsSessionData **ret) {
        DtlsSessionData *s;
        int r;

        if (!d || !ret)
                return -EINVAL;
        if (!d->resume.data)
                return -ENODATA;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        r = datum_copy(&s->data, d->resume.data, d->resume.size);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int dtls_set_session_data(Dtls *d, const DtlsSessionData *s) {
        if (!d)
                return -EINVAL;
        if (!s) {
                datum_wipe(&d->resume);
                return 0;
        }
        return datum_copy(&d->resume, s->data.data, s->data.size);
}

DtlsSessionData *dtls_session_data_free(DtlsSessionData *s) {
        if (!s)
                return NULL;
        datum_wipe(&s->data);
        free(s);
        return NULL;
}

/* ---- Digest --------------------------------------------------------------------------------- */

int dtls_sha256(const struct iovec *iov, size_t n_iov, uint8_t ret[DTLS_SHA256_SIZE]) {
        gnutls_hash_hd_t h;
        int r = 0;

        if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n_iov && r >= 0; i++)
                if (iov[i].iov_len > 0)
                        r = gnutls_hash(h, iov[i].iov_base, iov[i].iov_len);
        gnutls_hash_deinit(h, ret);
        return r < 0 ? -ENOMEM : 0;
}
