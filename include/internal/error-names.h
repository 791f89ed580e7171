/* SPDX-License-Identifier: MIT */
#pragma once

/* The names of the daemon's refusals: D-Bus error names on the bus, and the error names of the
 * data channel's final EVENT frames (docs/dbus-api.md). Plain strings, so that layers without
 * sd-bus can name a refusal; internal/bus-api.h maps them to errnos for sd-bus. */

#define COAPCLIENTD_ERROR(name) "org.coapclientd.CoapClient1.Error." name

#define COAPCLIENTD_ERROR_INVALID_ARGUMENT    COAPCLIENTD_ERROR("InvalidArgument")
#define COAPCLIENTD_ERROR_INVALID_METHOD      COAPCLIENTD_ERROR("InvalidMethod")
#define COAPCLIENTD_ERROR_INVALID_PATH        COAPCLIENTD_ERROR("InvalidPath")
#define COAPCLIENTD_ERROR_INVALID_OPTION      COAPCLIENTD_ERROR("InvalidOption")
#define COAPCLIENTD_ERROR_INVALID_ADDRESS     COAPCLIENTD_ERROR("InvalidAddress")
#define COAPCLIENTD_ERROR_INVALID_PARAMETERS  COAPCLIENTD_ERROR("InvalidParameters")
#define COAPCLIENTD_ERROR_NOT_A_SOCKET        COAPCLIENTD_ERROR("NotASocket")
#define COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET  COAPCLIENTD_ERROR("UnsupportedSocket")
#define COAPCLIENTD_ERROR_PAYLOAD_TOO_LARGE   COAPCLIENTD_ERROR("PayloadTooLarge")
#define COAPCLIENTD_ERROR_TOO_MANY_CLIENTS    COAPCLIENTD_ERROR("TooManyClients")
#define COAPCLIENTD_ERROR_TOO_MANY_REQUESTS   COAPCLIENTD_ERROR("TooManyRequests")
#define COAPCLIENTD_ERROR_LIMITS_EXCEEDED     COAPCLIENTD_ERROR("LimitsExceeded")
#define COAPCLIENTD_ERROR_UNKNOWN_REQUEST     COAPCLIENTD_ERROR("UnknownRequest")
#define COAPCLIENTD_ERROR_NOT_OBSERVING       COAPCLIENTD_ERROR("NotObserving")
#define COAPCLIENTD_ERROR_SEND_FAILED         COAPCLIENTD_ERROR("SendFailed")
#define COAPCLIENTD_ERROR_INVALID_CREDENTIALS COAPCLIENTD_ERROR("InvalidCredentials")
#define COAPCLIENTD_ERROR_SOCKET_IN_USE       COAPCLIENTD_ERROR("SocketInUse")
#define COAPCLIENTD_ERROR_CHANNEL_EXISTS      COAPCLIENTD_ERROR("ChannelExists")
#define COAPCLIENTD_ERROR_MULTICAST_DTLS      COAPCLIENTD_ERROR("MulticastWithDtls")
