/* SPDX-License-Identifier: MIT */
#pragma once

/* The D-Bus names shared by the daemon, the client library and the tests. The introspection
 * XML in dbus/ is the contract; docs/dbus-api.md documents it. */

#include <errno.h>

#include <systemd/sd-bus.h>

#include "internal/error-names.h"

#define COAPCLIENTD_BUS_NAME        "org.coapclientd.CoapClient1"
#define COAPCLIENTD_ROOT_PATH       "/org/coapclientd/CoapClient1"
#define COAPCLIENTD_CLIENT_PREFIX   "/org/coapclientd/CoapClient1/client"
#define COAPCLIENTD_MANAGER_IFACE   "org.coapclientd.CoapClient1.Manager"
#define COAPCLIENTD_CLIENT_IFACE    "org.coapclientd.CoapClient1.Client"
#define COAPCLIENTD_BUS_ADDRESS_ENV "COAPCLIENTD_BUS_ADDRESS"

/* Registers the name <-> errno map with sd-bus, so that sd_bus_error_get_errno() on either side
 * gives the errno Zephyr's coap_client_req() would return. One copy per binary. */
static inline int bus_api_register_errors(void) {
        static const sd_bus_error_map map[] = {
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_INVALID_ARGUMENT, EINVAL),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_INVALID_METHOD, EINVAL),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_INVALID_PATH, EINVAL),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_INVALID_OPTION, EINVAL),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_INVALID_ADDRESS, EINVAL),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_INVALID_PARAMETERS, EINVAL),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_NOT_A_SOCKET, ENOTSOCK),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET, ESOCKTNOSUPPORT),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_PAYLOAD_TOO_LARGE, EMSGSIZE),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_TOO_MANY_CLIENTS, ENOSPC),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_TOO_MANY_REQUESTS, EAGAIN),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_LIMITS_EXCEEDED, ENOBUFS),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_UNKNOWN_REQUEST, ENOENT),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_NOT_OBSERVING, EINVAL),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_SEND_FAILED, EIO),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_INVALID_CREDENTIALS, EINVAL),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_SOCKET_IN_USE, EALREADY),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_CHANNEL_EXISTS, EBUSY),
                SD_BUS_ERROR_MAP(COAPCLIENTD_ERROR_MULTICAST_DTLS, EPROTONOSUPPORT),
                SD_BUS_ERROR_MAP_END,
        };
        static int registered = 0;
        int r;

        if (registered)
                return 0;
        r = sd_bus_error_add_map(map);
        if (r < 0)
                return r;
        registered = 1;
        return 0;
}
