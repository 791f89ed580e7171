/* SPDX-License-Identifier: MIT */
#include "bus/bus-caller.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "coap-msg.h"
#include "internal/bus-api.h"
#include "util/log.h"

static BusCaller *bus_caller_from_sink(const CallerSink *sink) {
        return (BusCaller *) ((uint8_t *) sink - offsetof(BusCaller, sink));
}

static int append_detail_uint(sd_bus_message *s, const CoapMsg *msg, uint16_t number,
                              const char *key, char type) {
        uint32_t v;

        if (coap_msg_get_uint_option(msg, number, &v) < 0)
                return 0;
        if (type == 'q') {
                if (v > UINT16_MAX)
                        return 0;
                return sd_bus_message_append(s, "{sv}", key, "q", (uint16_t) v);
        }
        return sd_bus_message_append(s, "{sv}", key, "u", v);
}

static int append_details(sd_bus_message *s, const CoapEvent *ev) {
        const CoapMsg *msg = ev->msg;
        CoapOption etag;
        int r;

        r = sd_bus_message_open_container(s, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        if (ev->silent) {
                /* Zephyr makes no callback here; the library only forgets the request. */
                r = sd_bus_message_append(s, "{sv}", "silent", "b", 1);
                if (r < 0)
                        return r;
        }
        if (msg) {
                r = append_detail_uint(s, msg, COAP_OPTION_CONTENT_FORMAT, "content-format", 'q');
                if (r < 0)
                        return r;
                r = append_detail_uint(s, msg, COAP_OPTION_OBSERVE, "observe", 'u');
                if (r < 0)
                        return r;
                r = append_detail_uint(s, msg, COAP_OPTION_SIZE2, "size2", 'u');
                if (r < 0)
                        return r;
                if (coap_msg_find_option(msg, COAP_OPTION_ETAG, &etag)) {
                        r = sd_bus_message_open_container(s, SD_BUS_TYPE_DICT_ENTRY, "sv");
                        if (r >= 0)
                                r = sd_bus_message_append(s, "s", "etag");
                        if (r >= 0)
                                r = sd_bus_message_open_container(s, SD_BUS_TYPE_VARIANT, "ay");
                        if (r >= 0)
                                r = sd_bus_message_append_array(s, 'y', etag.value, etag.len);
                        if (r >= 0)
                                r = sd_bus_message_close_container(s);
                        if (r >= 0)
                                r = sd_bus_message_close_container(s);
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_append(s, "{sv}", "type", "y", msg->type);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(s);
}

#define RESPONSE_SIGNAL_OVERHEAD 200

static int bus_caller_send_response(BusCaller *bc, Client *c, const CoapEvent *ev) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        BusService *b = bc->service;
        char path[BUS_CLIENT_PATH_MAX];
        int r;

        r = sd_bus_message_new_signal(b->bus, &s, bus_client_path(c, path),
                                      COAPCLIENTD_CLIENT_IFACE, "Response");
        if (r < 0)
                goto fail;
        /* Unicast: only the owner receives its responses. */
        r = sd_bus_message_set_destination(s, c->caller->name);
        if (r < 0)
                goto fail;
        r = sd_bus_message_append(s, "tit", ev->id, (int32_t) ev->result, (uint64_t) ev->offset);
        if (r < 0)
                goto fail;
        r = sd_bus_message_append_array(s, 'y', ev->payload, ev->payload ? ev->payload_len : 0);
        if (r < 0)
                goto fail;
        r = sd_bus_message_append(s, "bb", (int) ev->last_block, (int) ev->final);
        if (r < 0)
                goto fail;
        r = append_details(s, ev);
        if (r < 0)
                goto fail;
        r = sd_bus_send(b->bus, s, NULL);
        if (r < 0)
                goto fail;
        /* Roughly its size on the wire: payload, the two names and the fixed fields. */
        bus_caller_account_signal(bc, (ev->payload ? ev->payload_len : 0) + strlen(path) +
                                              strlen(c->caller->name) + RESPONSE_SIGNAL_OVERHEAD);
        bus_service_check_queue(b);
        return 0;
fail:
        return log_warning_errno(
                r, "Client %" PRIu64 ": failed to send Response for request %" PRIu64 ": %m", c->id,
                ev->id);
}

static int bus_caller_send_event(CallerSink *sink, Client *c, const Request *r,
                                 const CoapEvent *ev) {
        (void) r;
        return bus_caller_send_response(bus_caller_from_sink(sink), c, ev);
}

static uint64_t bus_caller_unread(const CallerSink *sink) {
        const BusCaller *bc = bus_caller_from_sink(sink);

        return bc->unprobed ? 0 : bc->sent_bytes - bc->acked_bytes;
}

static void bus_caller_free(CallerSink *sink) {
        BusCaller *bc = bus_caller_from_sink(sink);

        sd_bus_slot_unref(bc->probe_slot);
        sd_bus_track_unref(bc->track);
        free(bc);
}

static const CallerSinkOps bus_caller_ops = {
        .send_event = bus_caller_send_event,
        .unread = bus_caller_unread,
        .free = bus_caller_free,
};

static int bus_caller_on_vanish(sd_bus_track *track, void *userdata) {
        Caller *c = userdata;

        (void) track;
        log_debug("Caller %s left: freeing its %" PRIu32 " clients", c->name, c->n_clients);
        caller_free(c);
        return 0;
}

BusCaller *bus_caller_find(Caller *c) {
        CallerSink *sink = c ? caller_find_sink(c, &bus_caller_ops) : NULL;

        return sink ? bus_caller_from_sink(sink) : NULL;
}

int bus_caller_get(BusService *b, const char *name, Caller **ret) {
        BusCaller *bc;
        Caller *c;
        int r;

        r = manager_get_caller(b->manager, name, &c);
        if (r < 0)
                return r;
        if (bus_caller_find(c)) {
                *ret = c;
                return 0;
        }
        bc = calloc(1, sizeof(BusCaller));
        if (!bc) {
                caller_gc(c);
                return -ENOMEM;
        }
        bc->service = b;
        caller_add_sink(c, &bc->sink, &bus_caller_ops, false);
        r = sd_bus_track_new(b->bus, &bc->track, bus_caller_on_vanish, c);
        if (r >= 0)
                r = sd_bus_track_add_name(bc->track, name);
        if (r < 0) {
                caller_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

static int bus_caller_on_probe_reply(sd_bus_message *reply, void *userdata,
                                     sd_bus_error *ret_error);

/* Pings after every sixteenth of the budget, and at once while the caller is held back. */
static void bus_caller_maybe_probe(BusCaller *bc) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        Caller *c = bc->sink.caller;
        uint64_t interval = c->manager->config.limits.max_queued_bytes_per_caller / 16;
        int r;

        if (bc->unprobed || bc->probe_slot)
                return;
        if (bc->sent_bytes - bc->probe_mark < interval &&
            !((c->paused || c->stalled) && bc->sent_bytes > bc->acked_bytes))
                return;
        r = sd_bus_message_new_method_call(bc->service->bus, &m, c->name, "/",
                                           "org.freedesktop.DBus.Peer", "Ping");
        if (r >= 0)
                r = sd_bus_message_set_auto_start(m, false);
        if (r >= 0)
                r = sd_bus_call_async(bc->service->bus, &bc->probe_slot, m,
                                      bus_caller_on_probe_reply, bc, BUS_CALLER_PROBE_TIMEOUT_USEC);
        if (r < 0) {
                log_warning_errno(r, "Failed to ping caller %s, ignoring: %m", c->name);
                return;
        }
        bc->probe_mark = bc->sent_bytes;
}

static int bus_caller_on_probe_reply(sd_bus_message *reply, void *userdata,
                                     sd_bus_error *ret_error) {
        BusCaller *bc = userdata;
        Caller *c = bc->sink.caller;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *sender = sd_bus_message_get_sender(reply);

        (void) ret_error;
        bc->probe_slot = sd_bus_slot_unref(bc->probe_slot);
        if (e && !(sender && strcmp(sender, c->name) == 0)) {
                /* From the bus or our own sd-bus, not from the caller: nothing was read. */
                if (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY) ||
                    sd_bus_error_has_name(e, SD_BUS_ERROR_TIMEOUT)) {
                        bc->sink.unresponsive = true;
                        caller_stall(c);
                        bus_caller_maybe_probe(bc);
                } else if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                           sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
                           sd_bus_error_has_name(e, SD_BUS_ERROR_DISCONNECTED))
                        log_debug("Caller %s is leaving", c->name); /* the track frees it */
                else {
                        log_warning("Cannot ping caller %s (%s): its signals go without flow "
                                    "control",
                                    c->name, e->name);
                        bc->unprobed = true;
                        caller_check_flow(c);
                }
                return 0;
        }

        /* Any answer from the caller itself comes after it read everything sent before. */
        bc->acked_bytes = bc->probe_mark;
        bc->sink.unresponsive = false;
        caller_check_flow(c);
        bus_caller_maybe_probe(bc);
        return 0;
}

void bus_caller_account_signal(BusCaller *bc, size_t size) {
        bc->sent_bytes += size;
        if (bc->unprobed)
                return;
        caller_check_flow(bc->sink.caller);
        bus_caller_maybe_probe(bc);
}
