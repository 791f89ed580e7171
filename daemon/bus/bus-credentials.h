/* SPDX-License-Identifier: MIT */
#pragma once

/* SetCredentials(a{sv} credentials, h secret): public parts in the dictionary, the secret (PSK
 * bytes or a private key) only through a sealed memfd, read once and wiped. */

#include <systemd/sd-bus.h>

#include "core/socket.h"

#define CREDENTIALS_SECRET_MAX       (64 * 1024)
#define CREDENTIALS_PSK_IDENTITY_MAX 256
#define CREDENTIALS_SERVER_NAME_MAX  253
#define CREDENTIALS_PUBLIC_MAX       (256 * 1024) /* "ca", "certificate", "server-public-key" */

/* Decodes the arguments at the read position of m. Bad input: sets error (InvalidCredentials)
 * and returns < 0; without error set, < 0 is an sd-bus read failure or -ENOMEM. */
int bus_credentials_parse(sd_bus_message *m, PeerCredentials **ret, sd_bus_error *error);
