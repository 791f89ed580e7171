/* SPDX-License-Identifier: MIT */
#pragma once

/* DTLS 1.2 client sessions over GnuTLS, one per (socket, peer). I/O-free: the module never
 * touches a socket, a clock or sd-event. Received datagrams go in through dtls_feed(), datagrams
 * to send come out through DtlsIo.push(), decrypted datagrams through DtlsIo.deliver(), and the
 * caller passes `now` (microseconds on its own monotonic clock, e.g. CLOCK_BOOTTIME) and arms one
 * timer at dtls_next_timeout().
 *
 * Typical use by a secure socket:
 *
 *     dtls_credentials_new_psk("id", key, key_len, &creds);
 *     dtls_new(creds, &(DtlsIo){ u, push, deliver, state_changed }, &d);
 *     dtls_start(d, now);                 -> ClientHello through push()
 *     on every datagram from the peer:    dtls_feed(d, buf, len, now);
 *     when the timer fires:               dtls_on_timeout(d, now);
 *     state_changed(ESTABLISHED, 0):      flush queued CoAP messages with dtls_send()
 *     CoAP engine send:                   dtls_send(d, msg, len)   (-EAGAIN until established)
 *
 * Cipher suites (DTLS 1.2 only, AEAD only, DTLS 1.0 refused):
 *   PSK:   ECDHE-PSK and PSK with AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305, AES-128-CCM and
 *          AES-128-CCM-8 (TLS_PSK_WITH_AES_128_CCM_8 is CoAP's mandatory suite, RFC 7252 §9.1.3.1);
 *   X.509: ECDHE-ECDSA and ECDHE-RSA with the same ciphers;
 *   RPK:   like X.509 with raw public keys (RFC 7250) in both directions.
 *
 * Errors, as the `error` argument of state_changed(FAILED or CLOSED, error) and dtls_get_error():
 *   -EACCES        authentication failed: certificate or raw public key verification failed,
 *                  the peer rejected our identity or credentials (alerts unknown_psk_identity,
 *                  bad_certificate, unknown_ca, access_denied, decrypt_error, ...). GnuTLS
 *                  servers answer an unknown PSK identity with internal_error, which reads
 *                  as -ECONNREFUSED;
 *   -ECONNREFUSED  the peer refused the handshake for protocol reasons (handshake_failure,
 *                  protocol_version, insufficient_security: no shared version/cipher/group);
 *   -ETIMEDOUT     the handshake did not finish within the total timeout. A wrong PSK *key* for
 *                  an identity the server knows ends here too: the server cannot decrypt our
 *                  Finished and DTLS silently discards such records (RFC 6347 §4.1.2.7), so no
 *                  side ever gets an alert;
 *   -ECONNRESET    after establishment: the peer sent close_notify (state CLOSED) or a fatal
 *                  alert (state FAILED);
 *   -EPROTO        any other fatal TLS error, -ENOMEM on allocation failure.
 *
 * Re-entrancy: the callbacks run synchronously inside dtls_start(), dtls_feed(),
 * dtls_on_timeout() and dtls_close(). They may call dtls_send() (e.g. to flush queued CoAP
 * messages from state_changed(ESTABLISHED)), dtls_close() and the getters on the same session,
 * but must not call dtls_free(), dtls_start() or dtls_feed() on it. Not thread-safe: one thread
 * (the daemon's event loop) per session and per credentials object.
 *
 * Not in GnuTLS 3.7 (Debian 12), hence not here:
 *   - DTLS 1.3 (RFC 9147): would be one more "+VERS-DTLS1.3" in the priority strings in dtls.c;
 *     dtls_next_timeout() would then also cover ACK/key-update timers after establishment.
 *   - Connection ID (RFC 9146): would be negotiated in dtls_start() (extension) and change
 *     nothing in this API except that dtls_feed() could accept datagrams from a new peer address
 *     for the same session; the caller's (socket, peer) lookup would then key on the CID.
 * Both would plug in behind the same DtlsIo/Dtls interface, e.g. as another back-end. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define DTLS_DEFAULT_MTU               1232U /* 1280 (IPv6 minimum) - 40 (IPv6) - 8 (UDP) */
#define DTLS_DEFAULT_RETRANSMIT_USEC   (UINT64_C(1000) * 1000)  /* first retransmission */
#define DTLS_DEFAULT_HANDSHAKE_TIMEOUT (UINT64_C(30000) * 1000) /* whole handshake */

/* ---- Credentials ----------------------------------------------------------------------------
 *
 * Immutable after creation, reference counted, shareable by many sessions. All inputs are memory
 * buffers (the daemon reads them from a sealed memfd); certificates and keys may be PEM or DER
 * (told apart by a "-----BEGIN" prefix). Inputs are copied or parsed at once: the caller may wipe
 * and free its buffers right after the call. Secret material held by the object (PSK, private
 * keys inside GnuTLS) is wiped when the last reference goes away. Files are never opened, so an
 * unprivileged caller cannot make the daemon read files on its behalf. */

typedef struct DtlsCredentials DtlsCredentials;

typedef enum DtlsCredentialsFlags {
        /* Skip all verification of the server (X.509 chain and name, or its raw public key).
         * For tests and lab setups only: the session is then open to a man in the middle. */
        DTLS_CREDENTIALS_INSECURE = 1 << 0,
} DtlsCredentialsFlags;

/* Pre-shared key: identity (non-empty string, sent in clear) and raw key bytes (1..64). */
int dtls_credentials_new_psk(const char *identity, const void *key, size_t key_len,
                             DtlsCredentials **ret);

/* X.509. The server's chain is verified against the CA certificates in ca (one or more; NULL:
 * the system trust store). server_name, if not NULL, must match the server certificate (DNS name
 * or IP address) and is sent as SNI unless it is an IP address; if NULL only the chain is
 * verified. A client certificate is optional (dtls_credentials_set_client_cert()). */
int dtls_credentials_new_x509(const void *ca, size_t ca_len, const char *server_name,
                              DtlsCredentialsFlags flags, DtlsCredentials **ret);

/* X.509 only, before the first dtls_new() with these credentials: our certificate chain and
 * private key (unencrypted), sent when the server asks for a client certificate. */
int dtls_credentials_set_client_cert(DtlsCredentials *c, const void *cert, size_t cert_len,
                                     const void *key, size_t key_len);

/* Raw public keys (RFC 7250). key is our private key (the public key is derived from it).
 * server_pubkey is the server's SubjectPublicKeyInfo (PEM "PUBLIC KEY" or DER), compared
 * byte for byte with what the server presents. It may be NULL only with
 * DTLS_CREDENTIALS_INSECURE (-EINVAL otherwise). */
int dtls_credentials_new_rpk(const void *key, size_t key_len, const void *server_pubkey,
                             size_t server_pubkey_len, DtlsCredentialsFlags flags,
                             DtlsCredentials **ret);

DtlsCredentials *dtls_credentials_ref(DtlsCredentials *c);
DtlsCredentials *dtls_credentials_unref(DtlsCredentials *c); /* NULL-safe, returns NULL */

static inline void dtls_credentials_unrefp(DtlsCredentials **c) {
        if (*c)
                dtls_credentials_unref(*c);
}

/* ---- Sessions ------------------------------------------------------------------------------ */

typedef struct Dtls Dtls;

typedef enum DtlsState {
        DTLS_STATE_NEW,         /* dtls_start() not called yet */
        DTLS_STATE_HANDSHAKING, /* dtls_send() returns -EAGAIN */
        DTLS_STATE_ESTABLISHED,
        DTLS_STATE_CLOSED, /* close_notify sent (error 0) or received (error -ECONNRESET) */
        DTLS_STATE_FAILED, /* error < 0; see the list above */
        _DTLS_STATE_MAX,
} DtlsState;

/* "new", "handshaking", "established", "closed", "failed" */
const char *dtls_state_to_string(DtlsState s);

typedef struct DtlsIo {
        void *userdata;
        /* Sends one datagram to the peer. Returns 0 or a negative errno. A failed handshake
         * datagram counts as lost (the retransmission timer recovers); a failed application
         * datagram is reported by dtls_send(). */
        int (*push)(void *userdata, const uint8_t *buf, size_t len);
        /* One decrypted datagram from the peer (one DTLS record), valid during the call. */
        void (*deliver)(void *userdata, const uint8_t *buf, size_t len);
        /* Every state change after dtls_start(): HANDSHAKING (error 0), ESTABLISHED (0),
         * CLOSED (0 or -ECONNRESET), FAILED (< 0). May be NULL. */
        void (*state_changed)(void *userdata, DtlsState state, int error);
} DtlsIo;

/* Takes a reference on c; io is copied (push and deliver are required). */
int dtls_new(DtlsCredentials *c, const DtlsIo *io, Dtls **ret);
Dtls *dtls_free(Dtls *d); /* NULL-safe, returns NULL; sends nothing (see dtls_close()) */

static inline void dtls_freep(Dtls **d) {
        if (*d)
                dtls_free(*d);
}

/* Path MTU for handshake and records (IP and UDP headers excluded): 256..65507, any time. */
int dtls_set_mtu(Dtls *d, unsigned mtu);

/* Largest plaintext dtls_send() accepts now, from the MTU and the negotiated cipher (an
 * estimate before establishment). The CoAP layer sizes its blocks with it. */
size_t dtls_get_max_payload(Dtls *d);

/* Handshake timers, taking effect at the next dtls_start(): first retransmission after
 * retransmit_usec (doubling up to 60 s, GnuTLS' own schedule) and failure with -ETIMEDOUT after
 * total_usec. Millisecond resolution; both >= 1 ms; -EINVAL otherwise. */
int dtls_set_timeouts(Dtls *d, uint64_t retransmit_usec, uint64_t total_usec);

/* Starts a handshake (from NEW, CLOSED or FAILED; -EBUSY otherwise): state HANDSHAKING, first
 * flight through push(). If an earlier handshake of this session succeeded, or resumption data
 * was set with dtls_set_session_data(), the server is offered an abbreviated handshake (session
 * ticket or ID). Session failures arrive through state_changed(); the return value is < 0 only
 * for misuse or -ENOMEM. */
int dtls_start(Dtls *d, uint64_t now);

/* One datagram received from the peer: handshake progress or records for deliver(). Returns
 * -ENOTCONN (datagram dropped) in NEW, CLOSED and FAILED, 0 otherwise. Invalid records, and
 * datagrams that are not a sequence of whole records, are dropped silently as DTLS requires. */
int dtls_feed(Dtls *d, const uint8_t *buf, size_t len, uint64_t now);

/* Encrypts buf as one record and pushes it. Returns 0; -EAGAIN while NEW or HANDSHAKING (no
 * internal queue: the caller keeps its messages until state_changed(ESTABLISHED)); -ENOTCONN
 * when CLOSED or FAILED; -EMSGSIZE above dtls_get_max_payload(); or the error of push(). */
int dtls_send(Dtls *d, const uint8_t *buf, size_t len);

/* Absolute time (caller's clock) at which dtls_on_timeout() must be called; USEC_INFINITY
 * (UINT64_MAX) when no timer is needed. Changes after every call that takes `now`. */
uint64_t dtls_next_timeout(Dtls *d);

/* Drives handshake retransmission and the total handshake timeout; harmless when early. GnuTLS
 * measures retransmission intervals on its own (real-time) clock, the total timeout is measured
 * on the caller's clock. */
int dtls_on_timeout(Dtls *d, uint64_t now);

/* Sends close_notify when ESTABLISHED and moves to CLOSED (error 0); aborts a handshake.
 * Idempotent. Resumption data is kept for the next dtls_start(). */
int dtls_close(Dtls *d);

DtlsState dtls_get_state(Dtls *d);
int dtls_get_error(Dtls *d); /* the error of the last FAILED/CLOSED transition, else 0 */
/* GnuTLS' reason for the last failure (the peer's alert, what certificate verification found,
 * or the error's text), NULL when it has none (e.g. a timeout). Valid until the next call. */
const char *dtls_get_error_reason(Dtls *d);

/* True when the current/last handshake was abbreviated (resumed). */
bool dtls_is_resumed(Dtls *d);

/* Human-readable negotiated parameters, e.g. "(DTLS1.2)-(ECDHE-PSK-SECP256R1)-(AES-128-CCM-8)".
 * -ENOTCONN before establishment. *ret is malloc()ed. */
int dtls_describe(Dtls *d, char **ret);

/* ---- Resumption data ------------------------------------------------------------------------
 *
 * What a later handshake to the same peer needs to be abbreviated (it contains the master
 * secret: it is wiped on free). A session keeps its own copy after every successful handshake
 * and drops it after a fatal error; these calls move it between sessions, e.g. when a socket is
 * replaced. */

typedef struct DtlsSessionData DtlsSessionData;

/* -ENODATA when no handshake of d has succeeded (or its data was dropped). */
int dtls_get_session_data(Dtls *d, DtlsSessionData **ret);
/* Copies s into d for its next dtls_start(); s == NULL forgets the data. */
int dtls_set_session_data(Dtls *d, const DtlsSessionData *s);
DtlsSessionData *dtls_session_data_free(DtlsSessionData *s); /* NULL-safe, wipes */

static inline void dtls_session_data_freep(DtlsSessionData **s) {
        if (*s)
                dtls_session_data_free(*s);
}

/* ---- Digest ---------------------------------------------------------------------------------
 *
 * SHA-256 over the concatenation of n_iov buffers (empty ones allowed), e.g. for the daemon's
 * credential fingerprints: here so that the daemon needs GnuTLS only through this module.
 * Returns 0 or -ENOMEM. */

#define DTLS_SHA256_SIZE 32U

int dtls_sha256(const struct iovec *iov, size_t n_iov, uint8_t ret[DTLS_SHA256_SIZE]);
