/* SPDX-License-Identifier: MIT */
/* Parses arbitrary bytes as a configuration file. A rejected file must leave the Config as it
 * was and say where and why; an accepted one must give values within range, and writing those
 * values out again must parse back to the same Config. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define check(expr)              \
        do {                     \
                if (!(expr))     \
                        abort(); \
        } while (0)

static void check_config_equal(const Config *a, const Config *b) {
        check(a->max_clients_per_caller == b->max_clients_per_caller);
        check(a->max_clients == b->max_clients);
        check(a->max_requests_per_client == b->max_requests_per_client);
        check(a->max_requests == b->max_requests);
        check(a->max_payload_bytes == b->max_payload_bytes);
        check(a->ack_timeout_ms == b->ack_timeout_ms);
        check(a->ack_random_percent == b->ack_random_percent);
        check(a->backoff_percent == b->backoff_percent);
        check(a->max_retransmit == b->max_retransmit);
        check(a->block_size == b->block_size);
}

static void check_ranges(const Config *c) {
        check(c->max_clients_per_caller >= 1 && c->max_clients_per_caller <= 1000000);
        check(c->max_clients >= 1 && c->max_clients <= 1000000);
        check(c->max_requests_per_client >= 1 && c->max_requests_per_client <= 1000000);
        check(c->max_requests >= 1 && c->max_requests <= 1000000);
        check(c->max_payload_bytes >= 1 && c->max_payload_bytes <= (UINT64_C(1) << 30));
        check(c->ack_timeout_ms >= 1 && c->ack_timeout_ms <= 600000);
        check(c->ack_random_percent >= 100 && c->ack_random_percent <= 1000);
        check(c->backoff_percent >= 100 && c->backoff_percent <= 400);
        check(c->max_retransmit <= 10);
        check(c->block_size >= 16 && c->block_size <= 1024 &&
              (c->block_size & (c->block_size - 1)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ConfigError e = {0};
        Config c, orig, again;
        char text[512];
        int r, n;

        config_init_defaults(&c);
        orig = c;
        r = config_parse_buffer(&c, "fuzz.conf", (const char *) data, size, &e);
        if (r < 0) {
                check(r == -EINVAL || r == -ENOMEM);
                if (r == -EINVAL) {
                        check(strcmp(e.file, "fuzz.conf") == 0);
                        check(e.message[0] != '\0');
                        check(e.line <= size + 1);
                }
                check_config_equal(&c, &orig);
                return 0;
        }
        check_ranges(&c);

        n = snprintf(text, sizeof(text),
                     "[Limits]\nMaxClientsPerCaller=%u\nMaxClients=%u\nMaxRequestsPerClient=%u\n"
                     "MaxRequests=%u\nMaxPayloadBytes=%llu\n[Defaults]\nAckTimeoutSec=%ums\n"
                     "AckRandomPercent=%u\nBackoffPercent=%u\nMaxRetransmit=%u\nBlockSize=%u\n",
                     c.max_clients_per_caller, c.max_clients, c.max_requests_per_client,
                     c.max_requests, (unsigned long long) c.max_payload_bytes, c.ack_timeout_ms,
                     c.ack_random_percent, c.backoff_percent, c.max_retransmit, c.block_size);
        check(n > 0 && (size_t) n < sizeof(text));
        config_init_defaults(&again);
        check(config_parse_buffer(&again, "again.conf", text, (size_t) n, NULL) == 0);
        check_config_equal(&again, &c);
        return 0;
}
