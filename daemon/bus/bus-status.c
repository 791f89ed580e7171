/* SPDX-License-Identifier: MIT */
/* What operators see of the daemon (coapclientctl status and monitor): its configuration and
 * counters (GetStatus), its callers with their clients (ListCallers: all for root, one's own
 * for others), and the requests as they start and end (with the error message an app gets,
 * such as GnuTLS' reason for a DTLS failure), sent to the monitors (root only) as unicast
 * signals and logged at debug level with the caller's pid, uid and unit. */
#include "bus/bus-status.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-login.h>

#include "bus/bus-caller.h"
#include "core/caller.h"
#include "core/client.h"
#include "core/socket.h"
#include "core/user.h"
#include "internal/bus-api.h"
#include "util/log.h"

/* Who a caller is: its uid (the core's user), its pid and its systemd unit (what the bus and
 * systemd told bus-caller.c; the unit from /proc where our sandbox lets us read it). */
typedef struct CallerInfo {
        const char *name;
        uint32_t uid, pid; /* UINT32_MAX, 0: unknown */
        char *unit;        /* "" when unknown */
} CallerInfo;

/* A request started while watching: what its end is reported with. */
typedef struct Watched {
        uint64_t id; /* the key */
        const char *method;
        char *uri;
        uint64_t start_usec;
} Watched;

static const void *watched_key(const void *v) {
        return &((const Watched *) v)->id;
}

static const HashOps watched_hash_ops = {
        .key = watched_key, .hash = uint64_hash, .equal = uint64_equal};

/* Entries of requests gone without an end beyond those in flight before they are pruned. */
#define WATCHED_SLACK 64

struct BusStatus {
        BusService *service;
        Hashmap *watched;       /* request id -> Watched */
        sd_bus_track *monitors; /* who called Monitor() and is still on the bus */
};

static void caller_info_done(CallerInfo *i) {
        free(i->unit);
        i->unit = NULL;
}

static void caller_info_get(const Caller *c, CallerInfo *ret) {
        BusCaller *bc = c ? bus_caller_find((Caller *) c) : NULL;
        CallerInfo i = {
                .name = c ? c->name : "?",
                .uid = c && c->user ? (uint32_t) c->user->uid : UINT32_MAX,
        };

        if (bc && bc->pid > 0)
                i.pid = (uint32_t) bc->pid;
        if (bc && bc->unit)
                i.unit = strdup(bc->unit);
        else if (i.pid == 0 || sd_pid_get_unit((pid_t) i.pid, &i.unit) < 0)
                i.unit = NULL;
        *ret = i;
}

static const char *caller_info_unit(const CallerInfo *i) {
        return i->unit ?: "";
}

static void watched_free(Watched *w) {
        if (!w)
                return;
        free(w->uri);
        free(w);
}

static int method_get_status(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusStatus *s = userdata;
        Manager *m = s->service->manager;
        const Limits *l = &m->config.limits;
        const CoapTxParams *p = &m->config.tx_params;
        CoapEngineStats st;
        int r;

        (void) error;
        manager_get_stats(m, &st);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(
                reply, "a{sv}", 32, "Version", "s", PACKAGE_VERSION, "LogLevel", "s",
                log_level_to_string(log_get_max_level()), "MaxCallers", "u", l->max_callers,
                "MaxCallersPerUser", "u", l->max_callers_per_user, "MaxChannelsPerUser", "u",
                l->max_channels_per_user, "MaxClientsPerUser", "u", l->max_clients_per_user,
                "MaxRequestsPerUser", "u", l->max_requests_per_user, "MaxPayloadBytesPerUser", "t",
                l->max_payload_bytes_per_user, "MaxClientsPerCaller", "u",
                l->max_clients_per_caller, "MaxClients", "u", l->max_clients,
                "MaxRequestsPerClient", "u", l->max_requests_per_client, "MaxRequests", "u",
                l->max_requests, "MaxPayloadBytes", "u", l->max_payload_bytes,
                "MaxPayloadBytesTotal", "t", l->max_payload_bytes_total, "MaxQueuedBytesPerCaller",
                "t", l->max_queued_bytes_per_caller, "AckTimeoutMSec", "u", p->ack_timeout_ms,
                "AckRandomPercent", "u", (uint32_t) p->ack_random_percent, "BackoffPercent", "u",
                (uint32_t) p->backoff_percent, "MaxRetransmit", "u",
                (uint32_t) p->max_retransmission, "BlockSize", "u",
                (uint32_t) (16u << m->config.block_szx), "Users", "u",
                (uint32_t) hashmap_size(m->users), "Callers", "u",
                (uint32_t) hashmap_size(m->callers), "Clients", "u",
                (uint32_t) hashmap_size(m->clients), "Sockets", "u",
                (uint32_t) hashmap_size(m->sockets), "RequestsInFlight", "u",
                (uint32_t) hashmap_size(m->requests), "PayloadBytesInFlight", "t", m->payload_bytes,
                "Monitors", "u", (uint32_t) sd_bus_track_count(s->monitors), "MessagesSent", "t",
                st.messages_sent, "MessagesReceived", "t", st.messages_received, "Retransmissions",
                "t", st.retransmissions, "Timeouts", "t", st.timeouts, "MalformedReceived", "t",
                st.malformed);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int append_caller(sd_bus_message *reply, const Caller *c, const CallerInfo *i) {
        const Client *cl;
        int r;

        r = sd_bus_message_open_container(reply, 'r', "suusa(tsutt)");
        if (r >= 0)
                r = sd_bus_message_append(reply, "suus", c->name, i->uid, i->pid,
                                          caller_info_unit(i));
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(tsutt)");
        if (r < 0)
                return r;
        LIST_FOREACH(clients, cl, c->clients) {
                r = sd_bus_message_append(reply, "(tsutt)", cl->id, cl->name, cl->n_requests,
                                          cl->requests_completed, cl->requests_failed);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int method_list_callers(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusStatus *s = userdata;
        HashmapIter it = {};
        Caller *c;
        uid_t uid;
        int r;

        r = bus_caller_get_uid(s->service, msg, method_list_callers, s, &uid, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* answered once the bus has said who the caller is */
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(suusa(tsutt))");
        if (r < 0)
                return r;
        while (hashmap_iterate(s->service->manager->callers, &it, (void **) &c)) {
                _cleanup_(caller_info_done) CallerInfo i = {};

                /* root sees everyone, others only themselves (their other connections too). */
                if (uid != 0 && (!c->user || c->user->uid != uid))
                        continue;
                caller_info_get(c, &i);
                r = append_caller(reply, c, &i);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_monitor(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusStatus *s = userdata;
        uid_t uid;
        int r;

        /* The bus policy allows it to root alone; checked here too, for buses without it. */
        r = bus_caller_get_uid(s->service, msg, method_monitor, s, &uid, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* answered once the bus has said who the caller is */
        if (uid != 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "Only root may monitor the requests of every caller.");
        if (!s->monitors) {
                r = sd_bus_track_new(s->service->bus, &s->monitors, NULL, NULL);
                if (r < 0)
                        return r;
        }
        r = sd_bus_track_add_name(s->monitors, sd_bus_message_get_sender(msg));
        if (r < 0)
                return r;
        log_notice("%s monitors the requests.", sd_bus_message_get_sender(msg));
        return sd_bus_reply_method_return(msg, NULL);
}

static bool watching(const BusStatus *s) {
        return log_get_max_level() >= LOG_DEBUG || sd_bus_track_count(s->monitors) > 0;
}

static const char *method_name(unsigned method) {
        static const char *const names[] = {"GET",   "POST",  "PUT",   "DELETE",
                                            "FETCH", "PATCH", "iPATCH"};

        return method >= 1 && method <= ELEMENTSOF(names) ? names[method - 1] : "?";
}

/* "coap://192.0.2.1:5683/a/b?q": the destination, or the connected socket's peer. */
static char *request_uri(const Request *r, const CoapRequestSpec *spec) {
        struct sockaddr_storage ss = {};
        socklen_t len = sizeof(ss);
        char host[INET6_ADDRSTRLEN] = "?", *uri;
        unsigned port = 0;

        if (spec->dest && spec->dest->len > 0) {
                memcpy(&ss, &spec->dest->ss, MIN((size_t) spec->dest->len, sizeof(ss)));
        } else if (getpeername(r->socket->fd, (struct sockaddr *) &ss, &len) < 0)
                ss.ss_family = AF_UNSPEC;
        if (ss.ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) &ss;

                (void) inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
                port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &ss;

                (void) inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                port = ntohs(in6->sin6_port);
        }
        if (asprintf(&uri, "%s://%s%s%s:%u/%s", r->client->creds ? "coaps" : "coap",
                     ss.ss_family == AF_INET6 ? "[" : "", host,
                     ss.ss_family == AF_INET6 ? "]" : "", port,
                     spec->path && spec->path[0] == '/' ? spec->path + 1 : spec->path ?: "") < 0)
                return NULL;
        return uri;
}

/* What RequestEnded does not carry, to one monitor just before it: a signal of its own, so that
 * RequestEnded keeps the signature monitors already read. */
static int send_details(BusStatus *s, const char *name, uint64_t id, const char *error_message) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int k;

        k = sd_bus_message_new_signal(s->service->bus, &m, COAPCLIENTD_ROOT_PATH,
                                      COAPCLIENTD_MANAGER_IFACE, "RequestEndedDetails");
        if (k >= 0)
                k = sd_bus_message_set_destination(m, name);
        if (k >= 0)
                k = sd_bus_message_append(m, "ta{sv}", id, 1, "error-message", "s", error_message);
        if (k >= 0)
                k = sd_bus_send(NULL, m, NULL);
        return k;
}

/* One signal to every monitor, each its own copy (unicast: nobody else may read it); an end
 * with an error message is preceded by its RequestEndedDetails. */
static void emit(BusStatus *s, const char *member, const Request *r, const CallerInfo *i,
                 const char *method, const char *uri, bool end, int result, uint64_t usec,
                 const char *error_message) {
        for (const char *name = sd_bus_track_first(s->monitors); name;
             name = sd_bus_track_next(s->monitors)) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                int k;

                if (end && error_message) {
                        k = send_details(s, name, r->id, error_message);
                        if (k < 0)
                                log_debug_errno(k, "Cannot send RequestEndedDetails to %s: %m",
                                                name);
                }
                k = sd_bus_message_new_signal(s->service->bus, &m, COAPCLIENTD_ROOT_PATH,
                                              COAPCLIENTD_MANAGER_IFACE, member);
                if (k >= 0)
                        k = sd_bus_message_set_destination(m, name);
                if (k >= 0)
                        k = sd_bus_message_append(m, "tsuusss", r->id, i->name, i->uid, i->pid,
                                                  caller_info_unit(i), method, uri);
                if (k >= 0 && end)
                        k = sd_bus_message_append(m, "it", (int32_t) result, usec);
                if (k >= 0)
                        k = sd_bus_send(NULL, m, NULL);
                if (k < 0)
                        log_debug_errno(k, "Cannot send %s to %s: %m", member, name);
        }
}

/* Requests dropped without a final event (their caller went) leave their entries: dropped
 * here once they outnumber the requests in flight by a margin. */
static void watched_prune(BusStatus *s) {
        Hashmap *requests = s->service->manager->requests;
        HashmapIter it = {};
        Watched *w, **stale;
        size_t n = 0;

        if (hashmap_size(s->watched) <= hashmap_size(requests) + WATCHED_SLACK)
                return;
        stale = calloc(hashmap_size(s->watched), sizeof(*stale));
        if (!stale)
                return;
        while (hashmap_iterate(s->watched, &it, (void **) &w))
                if (!hashmap_get(requests, &w->id))
                        stale[n++] = w;
        for (size_t k = 0; k < n; k++)
                watched_free(hashmap_remove(s->watched, &stale[k]->id));
        free(stale);
}

static void on_started(void *userdata, const Request *r, const CoapRequestSpec *spec) {
        _cleanup_(caller_info_done) CallerInfo i = {};
        BusStatus *s = userdata;
        Watched *w;

        if (!watching(s))
                return;
        watched_prune(s);
        w = calloc(1, sizeof(Watched));
        if (!w)
                return;
        w->id = r->id;
        w->method = method_name(spec->method);
        w->uri = request_uri(r, spec);
        w->start_usec = manager_now(s->service->manager);
        if (!w->uri || hashmap_put(s->watched, w) < 0) {
                watched_free(w);
                return;
        }
        caller_info_get(r->client->caller, &i);
        log_debug("Request %" PRIu64 " of %s (pid %" PRIu32 ", uid %" PRIu32 ", unit %s), client "
                  "%" PRIu64 ": %s %s",
                  r->id, i.name, i.pid, i.uid, i.unit ?: "-", r->client->id, w->method, w->uri);
        emit(s, "RequestStarted", r, &i, w->method, w->uri, false, 0, 0, NULL);
}

static void on_ended(void *userdata, const Request *r, int result, const char *error_message) {
        _cleanup_(caller_info_done) CallerInfo i = {};
        _cleanup_free_ char *what = NULL;
        BusStatus *s = userdata;
        uint64_t usec;
        Watched *w;

        w = hashmap_remove(s->watched, &r->id);
        if (!w || !watching(s)) {
                watched_free(w);
                return;
        }
        usec = manager_now(s->service->manager) - w->start_usec;
        caller_info_get(r->client->caller, &i);
        if (result >= 0 && asprintf(&what, "%d.%02d", result >> 5, result & 0x1f) < 0)
                what = NULL;
        log_debug("Request %" PRIu64 " of %s (pid %" PRIu32 ", uid %" PRIu32 "): %s %s: %s%s%s "
                  "after %" PRIu64 " ms",
                  r->id, i.name, i.pid, i.uid, w->method, w->uri, what ?: strerror(-result),
                  error_message ? ": " : "", error_message ?: "", usec / USEC_PER_MSEC);
        emit(s, "RequestEnded", r, &i, w->method, w->uri, true, result, usec, error_message);
        watched_free(w);
}

static const sd_bus_vtable status_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("GetStatus", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", status),
                                method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListCallers", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(suusa(tsutt))", callers), method_list_callers,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Monitor", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_monitor,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("RequestStarted",
                                SD_BUS_ARGS("t", id, "s", caller, "u", uid, "u", pid, "s", unit,
                                            "s", method, "s", uri),
                                0),
        SD_BUS_SIGNAL_WITH_ARGS("RequestEnded",
                                SD_BUS_ARGS("t", id, "s", caller, "u", uid, "u", pid, "s", unit,
                                            "s", method, "s", uri, "i", result, "t", duration_usec),
                                0),
        SD_BUS_SIGNAL_WITH_ARGS("RequestEndedDetails", SD_BUS_ARGS("t", id, "a{sv}", details), 0),
        SD_BUS_VTABLE_END,
};

int bus_status_new(BusService *b, BusStatus **ret) {
        BusStatus *s;
        int r;

        s = calloc(1, sizeof(BusStatus));
        if (!s)
                return log_error_errno(ENOMEM, "Out of memory.");
        s->service = b;
        r = hashmap_new(&watched_hash_ops, &s->watched);
        /* A floating slot: it goes with the bus connection. */
        if (r >= 0)
                r = sd_bus_add_object_vtable(b->bus, NULL, COAPCLIENTD_ROOT_PATH,
                                             COAPCLIENTD_MANAGER_IFACE, status_vtable, s);
        if (r < 0) {
                bus_status_free(s);
                return log_error_errno(r, "Failed to register the status methods: %m");
        }
        b->manager->request_watch = (ManagerRequestWatch){
                .started = on_started,
                .ended = on_ended,
                .userdata = s,
        };
        *ret = s;
        return 0;
}

BusStatus *bus_status_free(BusStatus *s) {
        void *v;

        if (!s)
                return NULL;
        if (s->service->manager->request_watch.userdata == s)
                s->service->manager->request_watch = (ManagerRequestWatch){};
        while ((v = hashmap_first(s->watched)))
                watched_free(hashmap_remove(s->watched, &((Watched *) v)->id));
        hashmap_free(s->watched);
        sd_bus_track_unref(s->monitors);
        free(s);
        return NULL;
}
