/* SPDX-License-Identifier: MIT */
#pragma once

/* A DTLS client (the module under test) and a GnuTLS DTLS server in one process, joined by two
 * in-memory datagram queues that can drop datagrams. Both sides are non-blocking; the test pumps
 * them. Timers run on CLOCK_MONOTONIC because GnuTLS measures retransmission on a real clock;
 * short timeouts keep loss tests fast. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

#include "dtls.h"

#define HARNESS_QUEUE_MAX       64
#define HARNESS_RETRANSMIT_USEC (UINT64_C(40) * 1000)
#define HARNESS_TOTAL_USEC      (UINT64_C(5) * 1000 * 1000)

typedef struct Datagram {
        uint8_t *data;
        size_t len;
} Datagram;

typedef struct Queue {
        Datagram items[HARNESS_QUEUE_MAX];
        size_t head, n;
        unsigned drop_first; /* drop datagrams number drop_first .. drop_first + drop_n - 1 */
        unsigned drop_n;     /* (counted from 0 over all pushed) */
        unsigned pushed;     /* datagrams pushed, dropped ones included */
        unsigned dropped;
} Queue;

typedef struct Harness {
        Dtls *client;
        Queue to_server, to_client;
        int push_result;                 /* returned by the client's push callback */
        const char *send_on_established; /* sent from inside state_changed(ESTABLISHED) */
        bool close_on_deliver;           /* dtls_close() from inside deliver() */

        /* client observations */
        DtlsState states[16];
        int errors[16];
        unsigned n_states;
        uint8_t received[4096];
        size_t received_len;
        unsigned n_received;

        /* server */
        gnutls_session_t server;
        unsigned server_flags; /* extra gnutls_init() flags */
        const char *server_priority;
        gnutls_certificate_request_t server_cert_request;
        gnutls_psk_server_credentials_t server_psk;
        gnutls_certificate_credentials_t server_cert;
        gnutls_datum_t ticket_key;
        const char *psk_identity;
        gnutls_datum_t psk_key;
        bool psk_unknown; /* the client's identity was not ours */
        bool server_started, server_done, server_eof;
        int server_error;
        uint8_t server_received[4096];
        size_t server_received_len;
} Harness;

void harness_init(Harness *h);
void harness_done(Harness *h);

void harness_server_psk(Harness *h, const char *identity, const char *key);
void harness_server_cert(Harness *h, const gnutls_datum_t *cert_pem, const gnutls_datum_t *key_pem);
void harness_server_rawpk(Harness *h, const gnutls_datum_t *pub_pem, const gnutls_datum_t *key_pem);
/* (Re)creates the server session; h->server_priority NULL means a permissive default. */
void harness_server_start(Harness *h);
/* Creates h->client with the short test timeouts; does not start it. */
void harness_client(Harness *h, DtlsCredentials *c);

uint64_t harness_now(void);
/* Moves datagrams both ways until both queues are empty. */
void harness_pump(Harness *h);
/* Pumps and drives both sides' timers on the real clock until done(h) or limit_usec passed. */
bool harness_run(Harness *h, bool (*done)(Harness *h), uint64_t limit_usec);
/* Starts the client and runs until the client is no longer handshaking. */
DtlsState harness_handshake(Harness *h);
int harness_server_send(Harness *h, const char *text);

DtlsState harness_last_state(const Harness *h);
int harness_last_error(const Harness *h);
