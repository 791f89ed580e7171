/* SPDX-License-Identifier: MIT */
#include "bus/bus-request.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "bus/bus-util.h"
#include "internal/bus-api.h"

int bus_error_from_request(sd_bus_error *error, const RequestError *e, int r) {
        if (e->name)
                return sd_bus_error_set(error, e->name, e->message);
        if (e->message[0])
                return sd_bus_error_set_errnof(error, -r, "%s", e->message);
        return r;
}

static int read_options(sd_bus_message *m, RequestArgs *a, RequestError *e) {
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(qay)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_STRUCT, "qay")) > 0) {
                const void *value;
                uint16_t number;
                size_t len;

                r = sd_bus_message_read(m, "q", &number);
                if (r < 0)
                        return r;
                r = sd_bus_message_read_array(m, 'y', &value, &len);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;

                r = request_args_add_option(a, number, value, len, e);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Reads the value of one a{sv} entry whose key is known to be valid. */
static int read_request_key(sd_bus_message *m, const ManagerConfig *config, const char *key,
                            RequestArgs *a, RequestError *e) {
        uint32_t u32;
        uint16_t u16;
        uint8_t u8;
        int b, r;

        if (strcmp(key, "method") == 0) {
                r = sd_bus_message_read(m, "y", &u8);
                a->method = u8;
        } else if (strcmp(key, "confirmable") == 0) {
                r = sd_bus_message_read(m, "b", &b);
                a->confirmable = b;
        } else if (strcmp(key, "path") == 0)
                r = sd_bus_message_read(m, "s", &a->path);
        else if (strcmp(key, "content-format") == 0) {
                r = sd_bus_message_read(m, "q", &u16);
                a->content_format = u16;
        } else if (strcmp(key, "payload") == 0) {
                const void *p;
                size_t len;

                r = sd_bus_message_read_array(m, 'y', &p, &len);
                if (r >= 0)
                        r = request_args_set_payload(a, p, len, config, e);
        } else if (strcmp(key, "options") == 0)
                r = read_options(m, a, e);
        else if (strcmp(key, "observe") == 0) {
                r = sd_bus_message_read(m, "b", &b);
                a->observe = b;
        } else if (strcmp(key, "ack-timeout") == 0) {
                r = sd_bus_message_read(m, "u", &u32);
                if (r >= 0)
                        r = request_args_set_tx_param(a, REQUEST_ACK_TIMEOUT, u32, e);
        } else if (strcmp(key, "ack-random-percent") == 0) {
                r = sd_bus_message_read(m, "q", &u16);
                if (r >= 0)
                        r = request_args_set_tx_param(a, REQUEST_ACK_RANDOM_PERCENT, u16, e);
        } else if (strcmp(key, "backoff-percent") == 0) {
                r = sd_bus_message_read(m, "q", &u16);
                if (r >= 0)
                        r = request_args_set_tx_param(a, REQUEST_BACKOFF_PERCENT, u16, e);
        } else if (strcmp(key, "max-retransmission") == 0) {
                r = sd_bus_message_read(m, "y", &u8);
                if (r >= 0)
                        r = request_args_set_tx_param(a, REQUEST_MAX_RETRANSMISSION, u8, e);
        } else if (strcmp(key, "multicast-timeout") == 0)
                r = sd_bus_message_read(m, "u", &a->multicast_ms);
        else {
                assert(strcmp(key, "block-size") == 0);
                r = sd_bus_message_read(m, "q", &u16);
                if (r >= 0)
                        r = request_args_set_block_size(a, u16, e);
        }
        return r;
}

static const BusDictKey request_keys[] = {
        {"method", "y"},
        {"confirmable", "b"},
        {"path", "s"},
        {"content-format", "q"},
        {"payload", "ay"},
        {"options", "a(qay)"},
        {"observe", "b"},
        {"ack-timeout", "u"},
        {"ack-random-percent", "q"},
        {"backoff-percent", "q"},
        {"max-retransmission", "y"},
        {"block-size", "q"},
        {"multicast-timeout", "u"},
};

int bus_request_parse(sd_bus_message *m, const ManagerConfig *config, RequestArgs *a,
                      sd_bus_error *error) {
        RequestError e = {};
        uint32_t seen = 0;
        int r;

        request_args_init(a, config);

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
                int i;

                i = bus_dict_entry_read_key(m, request_keys, ELEMENTSOF(request_keys), &seen,
                                            COAPCLIENTD_ERROR_INVALID_ARGUMENT, "request", error);
                if (i < 0)
                        return i;
                r = read_request_key(m, config, request_keys[i].key, a, &e);
                if (r < 0)
                        return bus_error_from_request(error, &e, r);
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        r = request_args_finish(a, &e);
        return r < 0 ? bus_error_from_request(error, &e, r) : 0;
}
