/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's configuration: /etc/coapclientd/coapclientd.conf plus the drop-ins (*.conf) in
 * /etc/coapclientd/coapclientd.conf.d/, applied in name order (later wins), in the systemd style
 * of "[Section]" headers and "Key=Value" lines. Pure: libc only.
 *
 * An empty value ("Key=") resets the key to its default. Unknown sections and keys, bad values
 * and values out of range are errors, so a typo cannot silently leave a limit at its default.
 * Every loader applies a file completely or not at all: on error *c is unchanged. */

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults sized for an embedded device: together they bound what all callers can make the
 * daemon hold to about 16 MiB (payload copies 8 MiB, request and client state, unread signals of
 * a few stalled callers). docs/dbus-api.md, "Limits and bad input", explains each. */
#define CONFIG_DEFAULT_MAX_CALLERS                 512
#define CONFIG_DEFAULT_MAX_CLIENTS_PER_CALLER      32
#define CONFIG_DEFAULT_MAX_CALLERS_PER_USER        64
#define CONFIG_DEFAULT_MAX_CHANNELS_PER_USER       64
#define CONFIG_DEFAULT_MAX_CLIENTS_PER_USER        256
#define CONFIG_DEFAULT_MAX_REQUESTS_PER_USER       512
#define CONFIG_DEFAULT_MAX_PAYLOAD_BYTES_PER_USER  (UINT64_C(2) << 20)
#define CONFIG_DEFAULT_MAX_CLIENTS                 1024
#define CONFIG_DEFAULT_MAX_REQUESTS_PER_CLIENT     32
#define CONFIG_DEFAULT_MAX_REQUESTS                2048
#define CONFIG_DEFAULT_MAX_PAYLOAD_BYTES           (UINT64_C(1) << 20)
#define CONFIG_DEFAULT_MAX_PAYLOAD_BYTES_TOTAL     (UINT64_C(8) << 20)
#define CONFIG_DEFAULT_MAX_QUEUED_BYTES_PER_CALLER (UINT64_C(1) << 20)

typedef struct Config {
        /* [Limits] */
        uint32_t max_callers;                 /* bus peers with clients or a channel */
        uint32_t max_callers_per_user;        /* the same, of one uid (not root) */
        uint32_t max_channels_per_user;       /* data channels of one uid (not root) */
        uint32_t max_clients_per_user;        /* client contexts of one uid (not root) */
        uint32_t max_requests_per_user;       /* requests in flight of one uid (not root) */
        uint64_t max_payload_bytes_per_user;  /* payload bytes in flight of one uid (not root) */
        uint32_t max_clients_per_caller;      /* client contexts one bus peer may hold */
        uint32_t max_clients;                 /* client contexts of all peers */
        uint32_t max_requests_per_client;     /* requests in flight per client context */
        uint32_t max_requests;                /* requests in flight of all peers */
        uint64_t max_payload_bytes;           /* request payload of one request */
        uint64_t max_payload_bytes_total;     /* request payloads of all requests in flight */
        uint64_t max_queued_bytes_per_caller; /* unread Response signal bytes of one peer */

        /* [Defaults]: transmission parameters for requests that do not bring their own
         * (the fields of CoapTxParams in coap/coap-engine.h), and the preferred block size. */
        uint32_t ack_timeout_ms;
        uint16_t ack_random_percent;
        uint16_t backoff_percent;
        uint8_t max_retransmit;
        uint16_t block_size; /* 16, 32, ..., 1024: block SZX is log2(block_size) - 4 */
} Config;

#define CONFIG_MESSAGE_MAX 256

/* Where and why loading failed. line is 0 when the error is not about one line (e.g. the file
 * cannot be read). */
typedef struct ConfigError {
        char file[PATH_MAX];
        unsigned line;
        char message[CONFIG_MESSAGE_MAX];
} ConfigError;

void config_init_defaults(Config *c);

/* Parses one file's contents, size bytes (NUL bytes inside are an error). filename is only used
 * in ret_error. Returns 0 or -EINVAL. ret_error may be NULL. */
int config_parse_buffer(Config *c, const char *filename, const char *buf, size_t size,
                        ConfigError *ret_error);

/* Reads and applies one file. A missing file is -ENOENT (ret_error filled in); a file that
 * cannot be read gives its errno; a bad one -EINVAL. */
int config_load_file(Config *c, const char *path, ConfigError *ret_error);

/* The daemon's loader: main_path (a missing file is fine) and then every "*.conf" regular file
 * in dropin_dir (a missing directory is fine), in strcmp() order of their names. Either path may
 * be NULL to skip it. On error *c is unchanged. */
int config_load(Config *c, const char *main_path, const char *dropin_dir, ConfigError *ret_error);
