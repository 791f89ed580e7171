/* SPDX-License-Identifier: MIT */
/* org.freedesktop.LogControl1 (https://www.freedesktop.org/software/systemd/man/latest/
 * org.freedesktop.LogControl1.html): LogLevel and LogTarget, writable by privileged callers
 * only (sd-bus checks CAP_SYS_ADMIN on writable properties not marked unprivileged), and
 * SyslogIdentifier. */
#include "bus/bus-logcontrol.h"

#include <errno.h>
#include <string.h>

#include "bus/bus-caller.h"
#include "util/log.h"

#define LOGCONTROL_PATH  "/org/freedesktop/LogControl1"
#define LOGCONTROL_IFACE "org.freedesktop.LogControl1"

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const char *v;

        (void) bus, (void) path, (void) interface, (void) userdata, (void) error;
        if (strcmp(property, "LogLevel") == 0)
                v = log_level_to_string(log_get_max_level());
        else if (strcmp(property, "LogTarget") == 0)
                v = log_target_to_string(log_get_target());
        else
                v = "coapclientd";
        return sd_bus_message_append(reply, "s", v);
}

static int property_set_level(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *value, void *userdata,
                              sd_bus_error *error) {
        const char *s;
        int r, level;

        (void) path, (void) interface, (void) userdata;
        r = sd_bus_message_read(value, "s", &s);
        if (r < 0)
                return r;
        level = log_level_from_string(s);
        if (level < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid log level '%s'.", s);
        log_set_max_level(level);
        log_info("Log level set to %s.", log_level_to_string(level));
        return sd_bus_emit_properties_changed(bus, LOGCONTROL_PATH, LOGCONTROL_IFACE, property,
                                              NULL);
}

static int property_set_target(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *value, void *userdata,
                               sd_bus_error *error) {
        const char *s;
        int r, t;

        (void) path, (void) interface, (void) userdata;
        r = sd_bus_message_read(value, "s", &s);
        if (r < 0)
                return r;
        t = log_target_from_string(s);
        if (t < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                         "Log target '%s' is not supported (auto, console, "
                                         "journal, null).",
                                         s);
        log_set_target((LogTarget) t);
        return sd_bus_emit_properties_changed(bus, LOGCONTROL_PATH, LOGCONTROL_IFACE, property,
                                              NULL);
}

static const sd_bus_vtable logcontrol_vtable[] = {
        SD_BUS_VTABLE_START(0),
        /* Sets are answered by logcontrol_set() below, before sd-bus sees them. */
        SD_BUS_WRITABLE_PROPERTY("LogLevel", "s", property_get, property_set_level, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_WRITABLE_PROPERTY("LogTarget", "s", property_get, property_set_target, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("SyslogIdentifier", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

/* Properties.Set on our LogControl1 object, for root alone. sd-bus would check the caller's
 * privileges with a synchronous call to the bus; the bus told us who the caller is already, or
 * tells us without blocking (the call waits meanwhile). */
static int logcontrol_set(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        const char *interface, *property;
        uid_t uid;
        int r;

        r = bus_caller_get_uid(b, m, logcontrol_set, b, &uid, error);
        if (r <= 0)
                return r;
        if (uid != 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "Only root may change how coapclientd logs.");
        r = sd_bus_message_read(m, "ss", &interface, &property);
        if (r < 0)
                return r;
        if (strcmp(interface, LOGCONTROL_IFACE) != 0 ||
            (strcmp(property, "LogLevel") != 0 && strcmp(property, "LogTarget") != 0))
                return sd_bus_error_setf(error, SD_BUS_ERROR_PROPERTY_READ_ONLY,
                                         "Property %s.%s cannot be set.", interface, property);
        r = sd_bus_message_enter_container(m, 'v', "s");
        if (r < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_SIGNATURE,
                                        "The value must be a string.");
        r = (strcmp(property, "LogLevel") == 0 ? property_set_level : property_set_target)(
                b->bus, LOGCONTROL_PATH, interface, property, m, b, error);
        if (r < 0 || sd_bus_error_is_set(error))
                return r;
        r = sd_bus_reply_method_return(m, NULL);
        return r < 0 ? r : 1;
}

int bus_logcontrol_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *path = sd_bus_message_get_path(m);
        int r;

        (void) ret_error;
        if (!sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Properties", "Set") || !path ||
            strcmp(path, LOGCONTROL_PATH) != 0)
                return 0;
        r = logcontrol_set(m, userdata, &error);
        if (sd_bus_error_is_set(&error))
                (void) sd_bus_reply_method_error(m, &error);
        else if (r < 0)
                (void) sd_bus_reply_method_errno(m, r, NULL);
        return 1;
}

int bus_logcontrol_register(BusService *b) {
        int r;

        /* A floating slot: it goes with the bus connection. */
        r = sd_bus_add_object_vtable(b->bus, NULL, LOGCONTROL_PATH, LOGCONTROL_IFACE,
                                     logcontrol_vtable, b);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", LOGCONTROL_IFACE);
        return 0;
}
