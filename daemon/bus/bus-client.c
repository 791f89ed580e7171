/* SPDX-License-Identifier: MIT */
#include "bus/bus-client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus-caller.h"
#include "bus/bus-credentials.h"
#include "bus/bus-request.h"
#include "coap-option.h"
#include "core/socket.h"
#include "internal/bus-api.h"
#include "util/log.h"

static int method_request(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Client *c = userdata;
        BusCaller *bc = bus_caller_find(c->caller);
        const char *destination;
        RequestError e = {};
        RequestArgs a;
        uint64_t id;
        int fd, r;

        /* object_find() served the client to its own caller, who is tracked on the bus. */
        if (!bc)
                return -ESRCH;
        r = sd_bus_message_read(msg, "hs", &fd, &destination);
        if (r < 0)
                return r;
        r = bus_request_parse(msg, &c->manager->config, &a, error);
        if (r < 0)
                return r;
        r = request_submit(c, fd, &(RequestDestination){.string = destination}, &a, &bc->sink, 0,
                           &id, &e);
        if (r < 0)
                return bus_error_from_request(error, &e, r);
        return sd_bus_reply_method_return(msg, "t", id);
}

static int method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Client *c = userdata;
        uint64_t id;
        int r;

        r = sd_bus_message_read(msg, "t", &id);
        if (r < 0)
                return r;
        r = client_cancel(c, id);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_UNKNOWN_REQUEST,
                                         "No request %" PRIu64 " in flight on this client.", id);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_cancel_all(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        (void) error;
        client_cancel_all(userdata);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_deregister_observe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Client *c = userdata;
        uint64_t id;
        int r;

        r = sd_bus_message_read(msg, "t", &id);
        if (r < 0)
                return r;
        r = client_deregister_observe(c, id);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_UNKNOWN_REQUEST,
                                         "No request %" PRIu64 " in flight on this client.", id);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_NOT_OBSERVING,
                                         "Request %" PRIu64 " is not an observation.", id);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Failed to send the deregistration: %m");
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_close(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Client *c = userdata;
        Caller *caller = c->caller;
        int r;

        (void) error;
        /* As Zephyr's cancel: every request gets its final -ECANCELED before the reply. */
        client_cancel_all(c);
        r = sd_bus_reply_method_return(msg, NULL);
        client_free(c);
        caller_gc(caller);
        return r;
}

static int method_set_credentials(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        PeerCredentials *creds = NULL;
        int r;

        r = bus_credentials_parse(msg, &creds, error);
        if (r < 0)
                return r;
        client_set_credentials(userdata, creds);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_clear_credentials(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        (void) error;
        client_set_credentials(userdata, NULL);
        return sd_bus_reply_method_return(msg, NULL);
}

static int property_get_secure(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error) {
        Client *c = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "b", c->creds != NULL);
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error) {
        Client *c = userdata;

        (void) bus, (void) path, (void) interface, (void) error;
        return sd_bus_message_append(reply, "s",
                                     strcmp(property, "Name") == 0 ? c->name : c->caller->name);
}

static int property_get_counter(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        Client *c = userdata;
        uint64_t v;

        (void) bus, (void) path, (void) interface, (void) error;
        if (strcmp(property, "RequestsInFlight") == 0)
                return sd_bus_message_append(reply, "u", c->n_requests);
        if (strcmp(property, "RequestsCompleted") == 0)
                v = c->requests_completed;
        else if (strcmp(property, "RequestsFailed") == 0)
                v = c->requests_failed;
        else
                v = c->responses_delivered;
        return sd_bus_message_append(reply, "t", v);
}

static const sd_bus_vtable client_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS(
                "Request", SD_BUS_ARGS("h", socket, "s", destination, "a{sv}", request),
                SD_BUS_RESULT("t", request_id), method_request, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_ARGS("t", request_id), SD_BUS_NO_RESULT,
                                method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelAll", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel_all,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DeregisterObserve", SD_BUS_ARGS("t", request_id), SD_BUS_NO_RESULT,
                                method_deregister_observe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Close", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_close,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetCredentials", SD_BUS_ARGS("a{sv}", credentials, "h", secret),
                                SD_BUS_NO_RESULT, method_set_credentials,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ClearCredentials", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                                method_clear_credentials, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Response",
                                SD_BUS_ARGS("t", request_id, "i", result, "t", offset, "ay",
                                            payload, "b", last_block, "b", final, "a{sv}", details),
                                0),
        SD_BUS_PROPERTY("Name", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Owner", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RequestsInFlight", "u", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("RequestsCompleted", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("RequestsFailed", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("ResponsesDelivered", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Secure", "b", property_get_secure, 0, 0),
        SD_BUS_VTABLE_END,
};

/* PREFIX/ID with ID in plain decimal, no leading zero. */
static int client_path_parse(const char *path, uint64_t *ret) {
        const char *p;
        uint64_t id = 0;

        if (strncmp(path, COAPCLIENTD_CLIENT_PREFIX "/", strlen(COAPCLIENTD_CLIENT_PREFIX "/")) !=
            0)
                return -EINVAL;
        p = path + strlen(COAPCLIENTD_CLIENT_PREFIX "/");
        if (*p < '1' || *p > '9')
                return -EINVAL;
        for (; *p; p++) {
                if (*p < '0' || *p > '9' || id > (UINT64_MAX - 9) / 10)
                        return -EINVAL;
                id = id * 10 + (uint64_t) (*p - '0');
        }
        *ret = id;
        return 0;
}

static const char *current_sender(sd_bus *bus) {
        sd_bus_message *m = sd_bus_get_current_message(bus);

        return m ? sd_bus_message_get_sender(m) : NULL;
}

/* Another caller must not even learn that the object exists: it gets UnknownObject. */
static int client_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                              void **found, sd_bus_error *error) {
        Manager *m = ((BusService *) userdata)->manager;
        const char *sender = current_sender(bus);
        uint64_t id;
        Client *c;

        (void) interface, (void) error;
        if (!sender || client_path_parse(path, &id) < 0)
                return 0;
        c = hashmap_get(m->clients, &id);
        if (!c || strcmp(c->caller->name, sender) != 0)
                return 0;
        *found = c;
        return 1;
}

static int client_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                  sd_bus_error *error) {
        Caller *caller =
                manager_find_caller(((BusService *) userdata)->manager, current_sender(bus));
        char buf[BUS_CLIENT_PATH_MAX];
        char **l;
        size_t i = 0;
        Client *c;

        (void) path, (void) error;
        l = calloc((caller ? caller->n_clients : 0) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (caller)
                LIST_FOREACH(clients, c, caller->clients) {
                        l[i] = strdup(bus_client_path(c, buf));
                        if (!l[i]) {
                                while (i > 0)
                                        free(l[--i]);
                                free(l);
                                return -ENOMEM;
                        }
                        i++;
                }
        *nodes = l;
        return 0;
}

int bus_client_register(BusService *b) {
        int r;

        r = sd_bus_add_fallback_vtable(b->bus, &b->client_slot, COAPCLIENTD_CLIENT_PREFIX,
                                       COAPCLIENTD_CLIENT_IFACE, client_vtable, client_object_find,
                                       b);
        if (r < 0)
                return log_error_errno(r, "Failed to register the Client objects: %m");
        r = sd_bus_add_node_enumerator(b->bus, &b->enumerator_slot, COAPCLIENTD_CLIENT_PREFIX,
                                       client_node_enumerator, b);
        if (r < 0)
                return log_error_errno(r, "Failed to register the Client enumerator: %m");
        return 0;
}
