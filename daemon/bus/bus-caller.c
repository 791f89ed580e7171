/* SPDX-License-Identifier: MIT */
#include "bus/bus-caller.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coap-msg.h"
#include "core/destination.h"
#include "internal/bus-api.h"
#include "util/log.h"

static void bus_service_next_call(BusService *b);
static void bus_caller_send_creds_query(BusCaller *bc);
static void bus_caller_run_deferred(BusCaller *bc);

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

static int append_details(sd_bus_message *s, const CoapEvent *ev, const char *error_message) {
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
        if (error_message) {
                r = sd_bus_message_append(s, "{sv}", "error-message", "s", error_message);
                if (r < 0)
                        return r;
        }
        if (ev->source) {
                char source[DESTINATION_STRING_MAX];

                r = format_destination(ev->source, source);
                if (r >= 0)
                        r = sd_bus_message_append(s, "{sv}", "source", "s", source);
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

static int bus_caller_send_response(BusCaller *bc, Client *c, const CoapEvent *ev,
                                    const char *error_message) {
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
        r = append_details(s, ev, error_message);
        if (r < 0)
                goto fail;
        r = sd_bus_send(b->bus, s, NULL);
        if (r < 0)
                goto fail;
        /* Roughly its size on the wire: payload, the two names, the message and the fixed
         * fields. */
        bus_caller_account(
                bc, (ev->payload ? ev->payload_len : 0) + strlen(path) + strlen(c->caller->name) +
                            (error_message ? strlen(error_message) : 0) + RESPONSE_SIGNAL_OVERHEAD);
        bus_service_check_queue(b);
        return 0;
fail:
        return log_warning_errno(
                r, "Client %" PRIu64 ": failed to send Response for request %" PRIu64 ": %m", c->id,
                ev->id);
}

static int bus_caller_send_event(CallerSink *sink, Client *c, const Request *r, const CoapEvent *ev,
                                 const char *error_message) {
        (void) r;
        return bus_caller_send_response(bus_caller_from_sink(sink), c, ev, error_message);
}

static uint64_t bus_caller_unread(const CallerSink *sink) {
        const BusCaller *bc = bus_caller_from_sink(sink);

        return bc->unprobed ? 0 : bc->sent_bytes - bc->acked_bytes;
}

/* The core frees the caller (its last client went): the peer stays known while it is on the
 * bus. */
static void bus_caller_detach(CallerSink *sink) {
        bus_caller_from_sink(sink)->caller = NULL;
}

static const CallerSinkOps bus_caller_ops = {
        .send_event = bus_caller_send_event,
        .unread = bus_caller_unread,
        .free = bus_caller_detach,
};

BusCaller *bus_caller_find(Caller *c) {
        CallerSink *sink = c ? caller_find_sink(c, &bus_caller_ops) : NULL;

        return sink ? bus_caller_from_sink(sink) : NULL;
}

/* A call of ours is answered or abandoned: its slot goes, and with it its share of the limits. */
static void bus_service_call_done(BusService *b, sd_bus_slot **slot, bool probe) {
        *slot = sd_bus_slot_unref(*slot);
        b->n_calls--;
        if (probe)
                b->n_probes--;
}

static void bus_caller_release_calls(BusCaller *bc) {
        BusService *b = bc->service;

        if (bc->probe_slot)
                bus_service_call_done(b, &bc->probe_slot, true);
        if (bc->creds_slot)
                bus_service_call_done(b, &bc->creds_slot, false);
        if (bc->unit_slot)
                bus_service_call_done(b, &bc->unit_slot, false);
        if (bc->probe_queued)
                LIST_REMOVE(probe_queue, b->probe_queue, bc);
        if (bc->creds_queued)
                LIST_REMOVE(creds_queue, b->creds_queue, bc);
        bc->probe_queued = bc->creds_queued = false;
}

BusCaller *bus_caller_free(BusCaller *bc) {
        if (!bc)
                return NULL;
        caller_free(bc->caller);
        while (bc->n_deferred > 0)
                sd_bus_message_unref(bc->deferred[--bc->n_deferred].message);
        bus_caller_release_calls(bc);
        bus_service_next_call(bc->service);
        hashmap_remove(bc->service->callers, bc->name);
        free(bc->unit);
        free(bc->name);
        free(bc);
        return NULL;
}

static int bus_caller_on_unit(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        BusCaller *bc = userdata;
        const char *path;

        (void) ret_error;
        bus_service_call_done(bc->service, &bc->unit_slot, false);
        bus_service_next_call(bc->service);
        if (sd_bus_message_is_method_error(reply, NULL) ||
            sd_bus_message_read(reply, "o", &path) < 0)
                return 0;
        (void) sd_bus_path_decode(path, "/org/freedesktop/systemd1/unit", &bc->unit);
        return 0;
}

/* Which unit the caller runs in, for status and the log: systemd knows (our sandbox hides other
 * users' /proc). Only when a call slot is free, never queued: it is a nicety. */
static void bus_caller_query_unit(BusCaller *bc, uint32_t pid) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        BusService *b = bc->service;
        int r;

        if (b->n_calls >= BUS_CALLS_MAX || bc->unit_slot)
                return;
        r = sd_bus_message_new_method_call(b->bus, &m, "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager", "GetUnitByPID");
        if (r >= 0)
                r = sd_bus_message_set_auto_start(m, false);
        if (r >= 0)
                r = sd_bus_message_append(m, "u", pid);
        if (r >= 0)
                r = sd_bus_call_async(b->bus, &bc->unit_slot, m, bus_caller_on_unit, bc, 0);
        if (r < 0)
                return;
        b->n_calls++;
}

static int bus_caller_on_creds(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        BusCaller *bc = userdata;
        uint32_t v;
        int r;

        (void) ret_error;
        bus_service_call_done(bc->service, &bc->creds_slot, false);
        bc->creds_done = true;
        bus_service_next_call(bc->service);
        if (sd_bus_message_is_method_error(reply, NULL)) {
                bus_caller_run_deferred(bc);
                return 0;
        }
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        break;
                if (strcmp(key, "UnixUserID") == 0 || strcmp(key, "ProcessID") == 0) {
                        r = sd_bus_message_read(reply, "v", "u", &v);
                        if (r < 0)
                                break;
                        (void) snprintf(key[0] == 'U' ? bc->uid_str : bc->pid_str,
                                        sizeof(bc->uid_str), "%" PRIu32, v);
                        if (key[0] == 'U') {
                                bc->uid = (uid_t) v;
                                bc->creds_known = true;
                        } else {
                                bc->pid = (pid_t) v;
                                bus_caller_query_unit(bc, v);
                        }
                } else {
                        r = sd_bus_message_skip(reply, "v");
                        if (r < 0)
                                break;
                }
                r = sd_bus_message_exit_container(reply);
        }
        bus_caller_run_deferred(bc);
        return 0;
}

/* Who the peer is, for the log, asked without blocking the loop. */
static void bus_caller_send_creds_query(BusCaller *bc) {
        BusService *b = bc->service;
        int r;

        r = sd_bus_call_method_async(b->bus, &bc->creds_slot, "org.freedesktop.DBus",
                                     "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "GetConnectionCredentials", bus_caller_on_creds, bc, "s",
                                     bc->name);
        if (r < 0) {
                log_debug_errno(r, "Cannot ask the bus who %s is: %m", bc->name);
                return;
        }
        b->n_calls++;
}

static const void *bus_caller_key(const void *v) {
        return ((const BusCaller *) v)->name;
}

const HashOps bus_caller_hash_ops = {
        .key = bus_caller_key, .hash = string_hash, .equal = string_equal};

int bus_caller_get_peer(BusService *b, const char *name, BusCaller **ret) {
        BusCaller *bc;
        int r;

        bc = hashmap_get(b->callers, name);
        if (bc) {
                *ret = bc;
                return 0;
        }
        bc = calloc(1, sizeof(BusCaller));
        if (!bc)
                return -ENOMEM;
        bc->service = b;
        bc->name = strdup(name);
        if (!bc->name) {
                free(bc);
                return -ENOMEM;
        }
        r = hashmap_put(b->callers, bc);
        if (r < 0) {
                free(bc->name);
                free(bc);
                return r;
        }
        strcpy(bc->uid_str, "?");
        strcpy(bc->pid_str, "?");
        if (b->n_calls < BUS_CALLS_MAX)
                bus_caller_send_creds_query(bc);
        else {
                LIST_APPEND(creds_queue, b->creds_queue, bc);
                bc->creds_queued = true;
        }
        *ret = bc;
        return 0;
}

static int bus_caller_make(BusCaller *bc, sd_bus_error *error) {
        const Limits *l = &bc->service->manager->config.limits;
        int r;

        if (!bc->creds_known)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "The bus cannot tell who caller %s is.", bc->name);
        r = manager_get_caller(bc->service->manager, bc->name, bc->uid, &bc->caller);
        if (r == -EUSERS)
                return sd_bus_error_setf(
                        error, COAPCLIENTD_ERROR_LIMITS_EXCEEDED,
                        "The daemon serves at most %" PRIu32 " callers (MaxCallers%s).",
                        l->max_callers, bc->uid == 0 ? "" : ", less root's reserve");
        if (r == -EDQUOT) {
                log_notice("Caller %s (uid %s, pid %s) refused: its user has %" PRIu32
                           " callers (MaxCallersPerUser)",
                           bc->name, bc->uid_str, bc->pid_str, l->max_callers_per_user);
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_LIMITS_EXCEEDED,
                                         "User %s may have at most %" PRIu32
                                         " callers (MaxCallersPerUser).",
                                         bc->uid_str, l->max_callers_per_user);
        }
        if (r < 0)
                return r;
        caller_add_sink(bc->caller, &bc->sink, &bus_caller_ops, false);
        return 1;
}

/* 1 once the bus has said who bc is; else msg waits for it (0), or cannot (< 0). */
static int bus_caller_wait_creds(BusCaller *bc, sd_bus_message *msg,
                                 sd_bus_message_handler_t handler, void *userdata,
                                 sd_bus_error *error) {
        if (bc->creds_done)
                return 1;
        if (bc->n_deferred >= BUS_CALLER_DEFERRED_MAX)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_LIMITS_EXCEEDED,
                                         "At most %d calls may wait for the daemon to learn who "
                                         "their caller is.",
                                         BUS_CALLER_DEFERRED_MAX);
        bc->deferred[bc->n_deferred].message = sd_bus_message_ref(msg);
        bc->deferred[bc->n_deferred].handler = handler;
        bc->deferred[bc->n_deferred].userdata = userdata;
        bc->n_deferred++;
        return 0;
}

int bus_caller_get_uid(BusService *b, sd_bus_message *msg, sd_bus_message_handler_t handler,
                       void *userdata, uid_t *ret, sd_bus_error *error) {
        BusCaller *bc;
        int r;

        r = bus_caller_get_peer(b, sd_bus_message_get_sender(msg), &bc);
        if (r < 0)
                return r;
        r = bus_caller_wait_creds(bc, msg, handler, userdata, error);
        if (r <= 0)
                return r;
        if (!bc->creds_known)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "The bus cannot tell who caller %s is.", bc->name);
        *ret = bc->uid;
        return 1;
}

int bus_caller_get(BusService *b, sd_bus_message *msg, sd_bus_message_handler_t handler,
                   Caller **ret, sd_bus_error *error) {
        BusCaller *bc;
        int r;

        r = bus_caller_get_peer(b, sd_bus_message_get_sender(msg), &bc);
        if (r < 0)
                return r;
        if (!bc->caller) {
                /* Who it is decides its quotas: this call runs again once the bus has said. */
                r = bus_caller_wait_creds(bc, msg, handler, b, error);
                if (r <= 0)
                        return r;
        }
        if (!bc->caller) {
                r = bus_caller_make(bc, error);
                if (r <= 0)
                        return r < 0 ? r : -EIO;
        }
        *ret = bc->caller;
        return 1;
}

/* The calls that waited for the creds, in order, as sd-bus would have run them. */
static void bus_caller_run_deferred(BusCaller *bc) {
        BusService *b = bc->service;

        while (bc->n_deferred > 0) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = bc->deferred[0].message;
                sd_bus_message_handler_t handler = bc->deferred[0].handler;
                void *userdata = bc->deferred[0].userdata;
                int r;

                memmove(bc->deferred, bc->deferred + 1, --bc->n_deferred * sizeof(bc->deferred[0]));
                r = sd_bus_message_rewind(m, true);
                if (r >= 0)
                        r = handler(m, userdata, &error);
                if (sd_bus_error_is_set(&error))
                        r = sd_bus_reply_method_error(m, &error);
                else if (r < 0)
                        r = sd_bus_reply_method_errno(m, r, NULL);
                if (r < 0)
                        log_debug_errno(r, "Failed to answer a call of %s: %m", bc->name);
                if (!hashmap_get(b->callers, sd_bus_message_get_sender(m)))
                        return; /* the handler freed bc (it cannot, but be safe) */
        }
        manager_flush(b->manager);
}

void bus_caller_vanished(BusService *b, const char *name) {
        BusCaller *bc = hashmap_get(b->callers, name);

        if (!bc)
                return;
        log_debug("Caller %s left: freeing its %" PRIu32 " clients", name,
                  bc->caller ? bc->caller->n_clients : 0);
        bus_caller_free(bc);
}

static int bus_caller_on_probe_reply(sd_bus_message *reply, void *userdata,
                                     sd_bus_error *ret_error);

static void bus_caller_send_probe(BusCaller *bc) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        BusService *b = bc->service;
        int r;

        r = sd_bus_message_new_method_call(b->bus, &m, bc->name, "/", "org.freedesktop.DBus.Peer",
                                           "Ping");
        if (r >= 0)
                r = sd_bus_message_set_auto_start(m, false);
        if (r >= 0)
                r = sd_bus_call_async(b->bus, &bc->probe_slot, m, bus_caller_on_probe_reply, bc,
                                      BUS_CALLER_PROBE_TIMEOUT_USEC);
        if (r < 0) {
                log_warning_errno(r, "Failed to ping caller %s, ignoring: %m", bc->name);
                return;
        }
        b->n_calls++;
        b->n_probes++;
        bc->probe_mark = bc->sent_bytes;
}

/* Pings after every sixteenth of the budget, and at once while the caller is held back. At
 * most BUS_CALLS_MAX of our calls are pending at once: the bus limits the calls a connection may
 * have waiting for replies, and a refused Ping must not cost a caller its flow control. The
 * others wait their turn in order. */
static void bus_caller_maybe_probe(BusCaller *bc) {
        Caller *c = bc->caller;
        uint64_t interval = bc->service->manager->config.limits.max_queued_bytes_per_caller / 16;
        BusService *b = bc->service;

        if (bc->unprobed || bc->probe_slot || bc->probe_queued)
                return;
        if (bc->sent_bytes - bc->probe_mark < interval &&
            !(((c && (c->paused || c->stalled)) || bc->throttled) &&
              bc->sent_bytes > bc->acked_bytes))
                return;
        if (b->n_calls >= BUS_CALLS_MAX || b->n_probes >= BUS_PROBES_MAX) {
                LIST_APPEND(probe_queue, b->probe_queue, bc);
                bc->probe_queued = true;
                return;
        }
        bus_caller_send_probe(bc);
}

static void bus_service_next_call(BusService *b) {
        /* New callers first: their calls wait for the answer. */
        while (b->n_calls < BUS_CALLS_MAX && b->creds_queue) {
                BusCaller *bc = b->creds_queue;

                LIST_REMOVE(creds_queue, b->creds_queue, bc);
                bc->creds_queued = false;
                bus_caller_send_creds_query(bc);
        }
        while (b->n_calls < BUS_CALLS_MAX && b->n_probes < BUS_PROBES_MAX && b->probe_queue) {
                BusCaller *bc = b->probe_queue;

                LIST_REMOVE(probe_queue, b->probe_queue, bc);
                bc->probe_queued = false;
                bus_caller_send_probe(bc);
        }
}

static void bus_caller_check(BusCaller *bc) {
        uint64_t budget = bc->service->manager->config.limits.max_queued_bytes_per_caller;
        uint64_t unread = bc->sent_bytes - bc->acked_bytes;

        if (bc->caller)
                caller_check_flow(bc->caller);
        if (!bc->throttled && unread > 2 * budget) {
                bc->throttled = true;
                log_debug("Caller %s: %" PRIu64 " bytes unread, its calls wait unanswered",
                          bc->name, unread);
        } else if (bc->throttled && unread <= budget && !bc->sink.unresponsive) {
                bc->throttled = false;
                bc->dropped_bytes = 0;
        }
}

static int bus_caller_on_probe_reply(sd_bus_message *reply, void *userdata,
                                     sd_bus_error *ret_error) {
        BusCaller *bc = userdata;
        BusService *b = bc->service;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *sender = sd_bus_message_get_sender(reply);

        (void) ret_error;
        bus_service_call_done(b, &bc->probe_slot, true);
        if (e && !(sender && strcmp(sender, bc->name) == 0)) {
                /* From the bus or our own sd-bus, not from the caller: nothing was read. */
                if (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY) ||
                    sd_bus_error_has_name(e, SD_BUS_ERROR_TIMEOUT)) {
                        bc->sink.unresponsive = true;
                        if (bc->caller)
                                caller_stall(bc->caller);
                        bus_caller_maybe_probe(bc);
                } else if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                           sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
                           sd_bus_error_has_name(e, SD_BUS_ERROR_DISCONNECTED))
                        log_debug("Caller %s is leaving", bc->name); /* NameOwnerChanged frees it */
                else if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED)) {
                        /* The bus policy forbids it: only then for good. */
                        log_warning("Cannot ping caller %s (%s): its signals go without flow "
                                    "control",
                                    bc->name, e->name);
                        bc->unprobed = true;
                        bus_caller_check(bc);
                } else {
                        /* A transient refusal (e.g. LimitsExceeded): try again on its next
                         * bytes. */
                        log_debug("Ping of caller %s refused (%s), retrying later", bc->name,
                                  e->name);
                        bc->probe_mark = bc->acked_bytes;
                }
                bus_service_next_call(b);
                return 0;
        }

        /* Any answer from the caller itself comes after it read everything sent before. */
        bc->acked_bytes = bc->probe_mark;
        bc->sink.unresponsive = false;
        bus_caller_check(bc);
        bus_caller_maybe_probe(bc);
        bus_service_next_call(b);
        return 0;
}

void bus_caller_account(BusCaller *bc, size_t size) {
        bc->sent_bytes += size;
        if (bc->unprobed)
                return;
        bus_caller_check(bc);
        bus_caller_maybe_probe(bc);
}

/* Roughly what the reply to a call costs the bus to hold for the caller: introspection is the
 * largest of our replies, properties next; everything else is small. */
static size_t bus_reply_estimate(sd_bus_message *m) {
        const char *interface = sd_bus_message_get_interface(m);

        if (interface && strcmp(interface, "org.freedesktop.DBus.Introspectable") == 0)
                return 8192;
        if (interface && strcmp(interface, "org.freedesktop.DBus.Properties") == 0)
                return 2048;
        return 512;
}

static void bus_caller_cut_off(BusCaller *bc) {
        Caller *c = bc->caller;

        bc->cut_off = true;
        log_notice("Caller %s (uid %s, pid %s) does not read its replies: %" PRIu64
                   " bytes unread; ignoring it and freeing its %" PRIu32 " clients",
                   bc->name, bc->uid_str, bc->pid_str, bc->sent_bytes - bc->acked_bytes,
                   c ? c->n_clients : 0);
        caller_free(c);
}

int bus_caller_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        BusService *b = userdata;
        const char *sender = sd_bus_message_get_sender(m);
        uint64_t budget = b->manager->config.limits.max_queued_bytes_per_caller;
        BusCaller *bc;
        int r;

        (void) ret_error;
        if (!sd_bus_message_is_method_call(m, NULL, NULL) || !sender || sender[0] != ':')
                return 0;
        r = bus_caller_get_peer(b, sender, &bc);
        if (r < 0)
                return 0; /* out of memory: serve it rather than drop it */
        if (bc->cut_off)
                return 1;
        if (bc->throttled && !bc->unprobed) {
                /* No reply until it reads what it has: one that never does is cut off. */
                bc->dropped_bytes += bus_reply_estimate(m);
                if (bc->sent_bytes - bc->acked_bytes + bc->dropped_bytes > 4 * budget)
                        bus_caller_cut_off(bc);
                return 1;
        }
        if (!sd_bus_message_get_expect_reply(m))
                return 0;
        bus_caller_account(bc, bus_reply_estimate(m));
        return 0;
}
