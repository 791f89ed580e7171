/* SPDX-License-Identifier: MIT */
#include "bus/bus-manager.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "bus/bus-caller.h"
#include "bus/bus-client.h"
#include "core/client.h"
#include "internal/bus-api.h"
#include "util/log.h"

static int method_create_client(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        Manager *m = b->manager;
        char path[BUS_CLIENT_PATH_MAX];
        const char *name, *sender;
        Caller *caller;
        Client *c;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (strlen(name) > CLIENT_NAME_MAX)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_ARGUMENT,
                                         "Client name longer than %d bytes.", CLIENT_NAME_MAX);
        sender = sd_bus_message_get_sender(msg);
        if (!sender)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "Clients need a caller with a unique bus name.");

        r = bus_caller_get(b, msg, method_create_client, &caller, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* answered once the bus has said who the caller is */
        r = client_new(m, caller, name, &c);
        if (r == -ENOSPC) {
                caller_gc(caller);
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_TOO_MANY_CLIENTS,
                                         "A caller may have at most %" PRIu32 " clients.",
                                         m->config.limits.max_clients_per_caller);
        }
        if (r == -EDQUOT) {
                caller_gc(caller);
                return sd_bus_error_setf(
                        error, COAPCLIENTD_ERROR_LIMITS_EXCEEDED,
                        "User %u may have at most %" PRIu32 " clients (MaxClientsPerUser).",
                        (unsigned) caller->user->uid, m->config.limits.max_clients_per_user);
        }
        if (r == -ENOBUFS) {
                uid_t uid = caller->user->uid;

                caller_gc(caller);
                return sd_bus_error_setf(
                        error, COAPCLIENTD_ERROR_LIMITS_EXCEEDED,
                        "The daemon serves at most %" PRIu32 " clients (MaxClients%s).",
                        m->config.limits.max_clients, uid == 0 ? "" : ", less root's reserve");
        }
        if (r < 0) {
                caller_gc(caller);
                return r;
        }
        return sd_bus_reply_method_return(msg, "o", bus_client_path(c, path));
}

static int method_open_channel(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_close_ int fd = -EBADF;
        BusService *b = userdata;
        const char *sender;
        Caller *caller;
        int r;

        sender = sd_bus_message_get_sender(msg);
        if (!sender)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "A channel needs a caller with a unique bus name.");
        r = bus_caller_get(b, msg, method_open_channel, &caller, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* answered once the bus has said who the caller is */
        r = manager_open_channel(b->manager, caller, &fd);
        if (r == -EDQUOT) {
                uid_t uid = caller->user->uid;

                caller_gc(caller);
                return sd_bus_error_setf(
                        error, COAPCLIENTD_ERROR_LIMITS_EXCEEDED,
                        "User %u may have at most %" PRIu32 " data channels (MaxChannelsPerUser).",
                        (unsigned) uid, b->manager->config.limits.max_channels_per_user);
        }
        if (r == -EBUSY)
                return sd_bus_error_set(error, COAPCLIENTD_ERROR_CHANNEL_EXISTS,
                                        "The caller has a data channel already.");
        if (r < 0) {
                caller_gc(caller);
                return r;
        }
        log_debug("Data channel opened for %s", sender);
        return sd_bus_reply_method_return(msg, "h", fd);
}

static int method_list_clients(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusService *b = userdata;
        char path[BUS_CLIENT_PATH_MAX];
        Caller *caller;
        Client *c;
        int r;

        (void) error;
        caller = manager_find_caller(b->manager, sd_bus_message_get_sender(msg));

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "o");
        if (r < 0)
                return r;
        if (caller)
                LIST_FOREACH(clients, c, caller->clients) {
                        r = sd_bus_message_append(reply, "o", bus_client_path(c, path));
                        if (r < 0)
                                return r;
                }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        (void) bus, (void) path, (void) interface, (void) property, (void) userdata, (void) error;
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_get_counts(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error) {
        Manager *m = ((BusService *) userdata)->manager;
        uint32_t v;

        (void) bus, (void) path, (void) interface, (void) error;
        if (strcmp(property, "Clients") == 0)
                v = (uint32_t) hashmap_size(m->clients);
        else if (strcmp(property, "Callers") == 0)
                v = (uint32_t) hashmap_size(m->callers);
        else if (strcmp(property, "Sockets") == 0)
                v = (uint32_t) hashmap_size(m->sockets);
        else if (strcmp(property, "RequestsInFlight") == 0)
                v = (uint32_t) hashmap_size(m->requests);
        else if (strcmp(property, "MaxCallers") == 0)
                v = m->config.limits.max_callers;
        else if (strcmp(property, "MaxCallersPerUser") == 0)
                v = m->config.limits.max_callers_per_user;
        else if (strcmp(property, "MaxChannelsPerUser") == 0)
                v = m->config.limits.max_channels_per_user;
        else if (strcmp(property, "MaxClients") == 0)
                v = m->config.limits.max_clients;
        else if (strcmp(property, "MaxClientsPerUser") == 0)
                v = m->config.limits.max_clients_per_user;
        else if (strcmp(property, "MaxRequests") == 0)
                v = m->config.limits.max_requests;
        else if (strcmp(property, "MaxRequestsPerUser") == 0)
                v = m->config.limits.max_requests_per_user;
        else if (strcmp(property, "MaxClientsPerCaller") == 0)
                v = m->config.limits.max_clients_per_caller;
        else if (strcmp(property, "MaxRequestsPerClient") == 0)
                v = m->config.limits.max_requests_per_client;
        else if (strcmp(property, "MaxPayloadBytes") == 0)
                v = m->config.limits.max_payload_bytes;
        else
                return -EINVAL;
        return sd_bus_message_append(reply, "u", v);
}

static int property_get_bytes(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        const Limits *l = &((BusService *) userdata)->manager->config.limits;
        uint64_t v;

        (void) bus, (void) path, (void) interface, (void) error;
        if (strcmp(property, "MaxPayloadBytesTotal") == 0)
                v = l->max_payload_bytes_total;
        else if (strcmp(property, "MaxPayloadBytesPerUser") == 0)
                v = l->max_payload_bytes_per_user;
        else if (strcmp(property, "MaxQueuedBytesPerCaller") == 0)
                v = l->max_queued_bytes_per_caller;
        else
                return -EINVAL;
        return sd_bus_message_append(reply, "t", v);
}

static int property_get_stats(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        Manager *m = ((BusService *) userdata)->manager;
        CoapEngineStats st;
        uint64_t v;

        (void) bus, (void) path, (void) interface, (void) error;
        manager_get_stats(m, &st);
        if (strcmp(property, "MessagesSent") == 0)
                v = st.messages_sent;
        else if (strcmp(property, "MessagesReceived") == 0)
                v = st.messages_received;
        else if (strcmp(property, "Retransmissions") == 0)
                v = st.retransmissions;
        else if (strcmp(property, "Timeouts") == 0)
                v = st.timeouts;
        else
                return -EINVAL;
        return sd_bus_message_append(reply, "t", v);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("CreateClient", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", client),
                                method_create_client, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("OpenChannel", SD_BUS_NO_ARGS, SD_BUS_RESULT("h", channel),
                                method_open_channel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListClients", SD_BUS_NO_ARGS, SD_BUS_RESULT("ao", clients),
                                method_list_clients, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Clients", "u", property_get_counts, 0, 0),
        SD_BUS_PROPERTY("Callers", "u", property_get_counts, 0, 0),
        SD_BUS_PROPERTY("Sockets", "u", property_get_counts, 0, 0),
        SD_BUS_PROPERTY("RequestsInFlight", "u", property_get_counts, 0, 0),
        SD_BUS_PROPERTY("MessagesSent", "t", property_get_stats, 0, 0),
        SD_BUS_PROPERTY("MessagesReceived", "t", property_get_stats, 0, 0),
        SD_BUS_PROPERTY("Retransmissions", "t", property_get_stats, 0, 0),
        SD_BUS_PROPERTY("Timeouts", "t", property_get_stats, 0, 0),
        SD_BUS_PROPERTY("MaxCallers", "u", property_get_counts, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxCallersPerUser", "u", property_get_counts, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxChannelsPerUser", "u", property_get_counts, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxClients", "u", property_get_counts, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxClientsPerUser", "u", property_get_counts, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxRequests", "u", property_get_counts, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxRequestsPerUser", "u", property_get_counts, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxPayloadBytesTotal", "t", property_get_bytes, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxPayloadBytesPerUser", "t", property_get_bytes, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxQueuedBytesPerCaller", "t", property_get_bytes, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxClientsPerCaller", "u", property_get_counts, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxRequestsPerClient", "u", property_get_counts, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxPayloadBytes", "u", property_get_counts, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

int bus_manager_register(BusService *b) {
        int r;

        r = sd_bus_add_object_vtable(b->bus, &b->manager_slot, COAPCLIENTD_ROOT_PATH,
                                     COAPCLIENTD_MANAGER_IFACE, manager_vtable, b);
        if (r < 0)
                return log_error_errno(r, "Failed to register the Manager object: %m");
        return 0;
}
