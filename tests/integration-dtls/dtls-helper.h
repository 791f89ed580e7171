/* SPDX-License-Identifier: MIT */
#pragma once

/* SetCredentials over plain sd-bus, sealed secrets, and coap-server-gnutls peers with DTLS
 * options, for the DTLS integration tests. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bus-helper.h"

#define TEST_PSK_IDENTITY "CoAP"      /* what tests/helpers/test-env.sh gives its peer */
#define TEST_PSK_KEY      "secretPSK" /* ... with -h and -k */

/* One SetCredentials a{sv}. NULL/zero fields are not sent. */
typedef struct TestCreds {
        const char *type;
        const char *psk_identity;
        const void *ca;
        size_t ca_len;
        const char *server_name;
        const void *certificate;
        size_t certificate_len;
        const void *server_public_key;
        size_t server_public_key_len;
        bool insecure;
        uint32_t handshake_timeout_ms;
        const char *extra_key; /* an extra "s" entry, for unknown keys */
} TestCreds;

/* A memfd holding data, sealed against writes, shrinking and growing when seal is true. */
int test_secret_memfd(const void *data, size_t len, bool seal);

int test_set_credentials(TestBus *b, const char *client, const TestCreds *c, int secret_fd,
                         sd_bus_error *error);
/* PSK credentials with the key in a sealed memfd. */
int test_set_psk(TestBus *b, const char *client, const char *identity, const char *key,
                 uint32_t handshake_timeout_ms, sd_bus_error *error);
int test_get_client_bool(TestBus *b, const char *client, const char *property, bool *ret);

/* coap-server-gnutls -A 127.0.0.1 -p PORT ARGS... (args NULL-terminated) on port, or on a free
 * even port when port is 0; waits (bounded) until it answers a CoAP ping on PORT. Its DTLS port
 * is PORT + 1. Dies with the calling process. */
int test_dtls_server_spawn(const char *const *args, uint16_t port, uint16_t *ret_port,
                           pid_t *ret_pid);

/* Writes a file below $TEST_TMPDIR; *ret_path is malloc()ed. */
int test_write_tmp_file(const char *name, const void *data, size_t len, char **ret_path);

/* One request on fd (connected) and its final result; *ret_usec: Request call to final
 * Response. The a{sv} is req; every Response is checked to be of its id. */
int test_request_result(TestBus *b, const char *client, int fd, const TestRequest *req,
                        uint64_t timeout_usec, int32_t *ret_result, uint64_t *ret_usec);
/* The same, and the final Response's "error-message" (NULL: none; the caller frees it). */
int test_request_result_message(TestBus *b, const char *client, int fd, const TestRequest *req,
                                uint64_t timeout_usec, int32_t *ret_result, uint64_t *ret_usec,
                                char **ret_message);
