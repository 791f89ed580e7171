/* SPDX-License-Identifier: MIT */
#pragma once

/* The DTLS module, coapclientd-dtls.so: dtls.c and GnuTLS as a private shared object that the
 * daemon dlopen()s on first use (dtls-loader.c), so that a daemon that does no DTLS maps no
 * GnuTLS. Its one exported symbol, DTLS_MODULE_SYMBOL, is a function returning the table below.
 *
 * The table holds the dtls.h functions the daemon calls; a daemon file that needs another one
 * adds it here, in dtls-module.c and in dtls-loader.c. */

#include "dtls.h"

#define DTLS_MODULE_SYMBOL "coapclientd_dtls_module"

typedef struct DtlsModule {
        /* The module must come from the daemon's own build: same version, same table. */
        const char *version;
        size_t size;

        __typeof__(dtls_sha256) *sha256;
        __typeof__(dtls_credentials_new_psk) *credentials_new_psk;
        __typeof__(dtls_credentials_new_x509) *credentials_new_x509;
        __typeof__(dtls_credentials_set_client_cert) *credentials_set_client_cert;
        __typeof__(dtls_credentials_new_rpk) *credentials_new_rpk;
        __typeof__(dtls_credentials_unref) *credentials_unref;
        __typeof__(dtls_state_to_string) *state_to_string;
        __typeof__(dtls_new) *new;
        __typeof__(dtls_free) *free;
        __typeof__(dtls_get_max_payload) *get_max_payload;
        __typeof__(dtls_set_timeouts) *set_timeouts;
        __typeof__(dtls_start) *start;
        __typeof__(dtls_feed) *feed;
        __typeof__(dtls_send) *send;
        __typeof__(dtls_next_timeout) *next_timeout;
        __typeof__(dtls_on_timeout) *on_timeout;
        __typeof__(dtls_close) *close;
        __typeof__(dtls_get_state) *get_state;
        __typeof__(dtls_is_resumed) *is_resumed;
        __typeof__(dtls_describe) *describe;
        __typeof__(dtls_get_error_reason) *get_error_reason;
} DtlsModule;

/* The exported function, for the module's own definition; the loader finds it by name. */
const DtlsModule *coapclientd_dtls_module(void);
