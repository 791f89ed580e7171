/* SPDX-License-Identifier: MIT */
#pragma once

/* A decoded REQUEST frame of the data channel as the RequestArgs both front ends submit: the
 * same setters, checks and error names as the D-Bus Request()'s a{sv}. */

#include "channel-wire.h"
#include "core/request.h"

/* payload_fd: the frame's memfd (CHANNEL_REQUEST_PAYLOAD_FD), read into *ret_payload (the
 * caller frees it; a->payload points there), or -1 when the message brought none. Pointers in a
 * point into req and *ret_payload. Bad input: error set to a named error, < 0. */
int channel_request_to_args(const ChannelRequest *req, const ManagerConfig *config, int payload_fd,
                            RequestArgs *a, uint8_t **ret_payload, RequestError *e);
