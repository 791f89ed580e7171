/* SPDX-License-Identifier: MIT */
/* org.freedesktop.LogControl1 (https://www.freedesktop.org/software/systemd/man/latest/
 * org.freedesktop.LogControl1.html): LogLevel and LogTarget, writable by privileged callers
 * only (sd-bus checks CAP_SYS_ADMIN on writable properties not marked unprivileged), and
 * SyslogIdentifier. */
#include "bus/bus-logcontrol.h"

#include <errno.h>
#include <string.h>

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
        SD_BUS_WRITABLE_PROPERTY("LogLevel", "s", property_get, property_set_level, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_WRITABLE_PROPERTY("LogTarget", "s", property_get, property_set_target, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("SyslogIdentifier", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

int bus_logcontrol_register(BusService *b) {
        int r;

        /* A floating slot: it goes with the bus connection. */
        r = sd_bus_add_object_vtable(b->bus, NULL, LOGCONTROL_PATH, LOGCONTROL_IFACE,
                                     logcontrol_vtable, b);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", LOGCONTROL_IFACE);
        return 0;
}
