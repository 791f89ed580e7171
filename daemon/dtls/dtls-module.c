/* SPDX-License-Identifier: MIT */
#include "dtls-module.h"

const DtlsModule *coapclientd_dtls_module(void) {
        static const DtlsModule module = {
                .version = PACKAGE_VERSION,
                .size = sizeof(DtlsModule),
                .sha256 = dtls_sha256,
                .credentials_new_psk = dtls_credentials_new_psk,
                .credentials_new_x509 = dtls_credentials_new_x509,
                .credentials_set_client_cert = dtls_credentials_set_client_cert,
                .credentials_new_rpk = dtls_credentials_new_rpk,
                .credentials_unref = dtls_credentials_unref,
                .state_to_string = dtls_state_to_string,
                .new = dtls_new,
                .free = dtls_free,
                .get_max_payload = dtls_get_max_payload,
                .set_timeouts = dtls_set_timeouts,
                .start = dtls_start,
                .feed = dtls_feed,
                .send = dtls_send,
                .next_timeout = dtls_next_timeout,
                .on_timeout = dtls_on_timeout,
                .close = dtls_close,
                .get_state = dtls_get_state,
                .is_resumed = dtls_is_resumed,
                .describe = dtls_describe,
                .get_error_reason = dtls_get_error_reason,
        };

        return &module;
}
