/* SPDX-License-Identifier: MIT */
#pragma once

/* What docs/dbus-api.md promises of a request either front end decoded (fuzz-bus-request,
 * fuzz-channel-request): abort() on any broken promise. */

#include <stdlib.h>

#include "core/request.h"
#include "internal/bus-api.h"

#define check(expr)              \
        do {                     \
                if (!(expr))     \
                        abort(); \
        } while (0)

/* A small configured payload limit, so that inputs reach it cheaply. */
#define FUZZ_MAX_PAYLOAD 300

/* Accepted: every field within its limits. */
void request_args_check_accepted(const RequestArgs *a);
/* Refused with r: one of our error names, whose errno is -r. */
void request_args_check_refused(int r, const sd_bus_error *error);
