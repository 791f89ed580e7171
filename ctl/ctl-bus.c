/* SPDX-License-Identifier: MIT */
#include "ctl-bus.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "ctl-util.h"
#include "internal/bus-api.h"
#include "internal/macro.h"

static int bus_open(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *address = getenv(COAPCLIENTD_BUS_ADDRESS_ENV);
        int r;

        if (!address || address[0] == '\0')
                return sd_bus_open_system(ret);
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

/* Reports a failed call of coapclientd; returns the exit code. */
static int call_failed(const char *method, const sd_bus_error *e, int r) {
        fprintf(stderr, "coapclientctl: %s failed: %s\n", method,
                e && e->message ? e->message : strerror(-r));
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED))
                return CTL_EXIT_FAILURE;
        return CTL_EXIT_DAEMON;
}

static int open_or_fail(sd_bus **ret) {
        int r = bus_open(ret);

        if (r < 0) {
                fprintf(stderr, "coapclientctl: Cannot connect to the bus: %s\n", strerror(-r));
                return CTL_EXIT_DAEMON;
        }
        return 0;
}

/* One value of GetStatus' a{sv}, as text (json: as JSON). */
static int print_variant(sd_bus_message *m, bool json) {
        const char *contents, *s;
        uint64_t t;
        uint32_t u;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;
        switch (contents[0]) {
        case 's':
                r = sd_bus_message_read(m, "s", &s);
                if (r >= 0 && json)
                        ctl_json_string(stdout, s);
                else if (r >= 0)
                        fputs(s, stdout);
                break;
        case 'u':
                r = sd_bus_message_read(m, "u", &u);
                if (r >= 0)
                        printf("%" PRIu32, u);
                break;
        case 't':
                r = sd_bus_message_read(m, "t", &t);
                if (r >= 0)
                        printf("%" PRIu64, t);
                break;
        default:
                r = sd_bus_message_skip(m, contents);
                if (r >= 0)
                        fputs(json ? "null" : "?", stdout);
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int print_status(sd_bus_message *reply, bool json) {
        const char *key;
        bool first = true;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        return r;
                if (json) {
                        printf("%s", first ? "" : ",");
                        ctl_json_string(stdout, key);
                        putchar(':');
                } else
                        printf("%24s: ", key);
                r = print_variant(reply, json);
                if (r < 0)
                        return r;
                if (!json)
                        putchar('\n');
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
                first = false;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(reply);
}

static int print_callers(sd_bus_message *reply, bool json) {
        const char *name, *unit, *client_name;
        uint64_t id, completed, failed;
        uint32_t uid, pid, in_flight;
        bool first = true;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(suusa(tsutt))");
        if (r < 0)
                return r;
        if (!json)
                printf("\nCallers:\n");
        while ((r = sd_bus_message_enter_container(reply, 'r', "suusa(tsutt)")) > 0) {
                bool first_client = true;

                r = sd_bus_message_read(reply, "suus", &name, &uid, &pid, &unit);
                if (r < 0)
                        return r;
                if (json) {
                        printf("%s{\"name\":", first ? "" : ",");
                        ctl_json_string(stdout, name);
                        printf(",\"uid\":%" PRIu32 ",\"pid\":%" PRIu32 ",\"unit\":", uid, pid);
                        ctl_json_string(stdout, unit);
                        printf(",\"clients\":[");
                } else
                        printf("  %s  pid %" PRIu32 "  uid %" PRIu32 "  unit %s\n", name, pid, uid,
                               unit[0] ? unit : "-");
                r = sd_bus_message_enter_container(reply, 'a', "(tsutt)");
                if (r < 0)
                        return r;
                while ((r = sd_bus_message_read(reply, "(tsutt)", &id, &client_name, &in_flight,
                                                &completed, &failed)) > 0) {
                        if (json) {
                                printf("%s{\"id\":%" PRIu64 ",\"name\":", first_client ? "" : ",",
                                       id);
                                ctl_json_string(stdout, client_name);
                                printf(",\"requests_in_flight\":%" PRIu32
                                       ",\"requests_completed\":%" PRIu64
                                       ",\"requests_failed\":%" PRIu64 "}",
                                       in_flight, completed, failed);
                        } else
                                printf("      client %" PRIu64 " \"%s\": %" PRIu32
                                       " in flight, %" PRIu64 " completed, %" PRIu64 " failed\n",
                                       id, client_name, in_flight, completed, failed);
                        first_client = false;
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
                if (json)
                        printf("]}");
                first = false;
        }
        if (r < 0)
                return r;
        if (!json && first)
                printf("  (none%s)\n", geteuid() == 0 ? "" : " of this user");
        return sd_bus_message_exit_container(reply);
}

int ctl_status(bool json) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *status = NULL, *callers = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = open_or_fail(&bus);
        if (r > 0)
                return r;
        r = sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                               COAPCLIENTD_MANAGER_IFACE, "GetStatus", &e, &status, NULL);
        if (r < 0)
                return call_failed("GetStatus", &e, r);
        r = sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                               COAPCLIENTD_MANAGER_IFACE, "ListCallers", &e, &callers, NULL);
        if (r < 0)
                return call_failed("ListCallers", &e, r);

        if (json)
                printf("{\"status\":{");
        r = print_status(status, json);
        if (r >= 0 && json)
                printf("},\"callers\":[");
        if (r >= 0)
                r = print_callers(callers, json);
        if (r >= 0 && json)
                printf("]}\n");
        if (r < 0) {
                fprintf(stderr, "coapclientctl: Unexpected answer from coapclientd: %s\n",
                        strerror(-r));
                return CTL_EXIT_DAEMON;
        }
        return fflush(stdout) == 0 ? CTL_EXIT_SUCCESS : CTL_EXIT_IO;
}

typedef struct Monitor {
        bool json;
        unsigned count, ended;
        char *daemon;        /* the unique name that answered Monitor(): the only sender heard */
        int error;           /* of reading a signal */
        uint64_t details_id; /* the request error_message belongs to */
        char *error_message; /* of the RequestEndedDetails before its RequestEnded, or NULL */
} Monitor;

static void monitor_done(Monitor *mon) {
        free(mon->daemon);
        free(mon->error_message);
}

/* RequestEndedDetails: kept for the RequestEnded of the same request, which follows it. */
static int read_details(sd_bus_message *m, Monitor *mon) {
        const char *key, *message = NULL;
        uint64_t id;
        int r;

        r = sd_bus_message_read(m, "t", &id);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r >= 0 && strcmp(key, "error-message") == 0)
                        r = sd_bus_message_read(m, "v", "s", &message);
                else if (r >= 0)
                        r = sd_bus_message_skip(m, "v"); /* a key of a later version */
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        free(mon->error_message);
        mon->error_message = message ? strdup(message) : NULL;
        if (message && !mon->error_message)
                return -ENOMEM;
        mon->details_id = id;
        return 0;
}

static int on_request(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Monitor *mon = userdata;
        const char *sender = sd_bus_message_get_sender(m);
        const char *caller, *unit, *method, *uri, *message = NULL;
        bool end = sd_bus_message_is_signal(m, NULL, "RequestEnded");
        uint64_t id, usec = 0;
        uint32_t uid, pid;
        int32_t result = 0;
        char what[32];
        int r;

        (void) error;
        /* The match takes any sender's broadcast on our path too: anyone may emit one. */
        if (!sender || !mon->daemon || strcmp(sender, mon->daemon) != 0)
                return 0;
        if (sd_bus_message_is_signal(m, NULL, "RequestEndedDetails")) {
                r = read_details(m, mon);
                if (r < 0)
                        mon->error = r;
                return 0;
        }
        if (!end && !sd_bus_message_is_signal(m, NULL, "RequestStarted"))
                return 0;
        r = sd_bus_message_read(m, "tsuusss", &id, &caller, &uid, &pid, &unit, &method, &uri);
        if (r >= 0 && end)
                r = sd_bus_message_read(m, "it", &result, &usec);
        if (r < 0) {
                mon->error = r;
                return 0;
        }
        if (end && mon->error_message && mon->details_id == id)
                message = mon->error_message;
        if (result >= 0)
                snprintf(what, sizeof(what), "%d.%02d", result >> 5, result & 0x1f);
        else
                snprintf(what, sizeof(what), "%s", strerror(-result));
        if (mon->json) {
                printf("{\"event\":\"%s\",\"id\":%" PRIu64 ",\"caller\":", end ? "end" : "start",
                       id);
                ctl_json_string(stdout, caller);
                printf(",\"uid\":%" PRIu32 ",\"pid\":%" PRIu32 ",\"unit\":", uid, pid);
                ctl_json_string(stdout, unit);
                printf(",\"method\":\"%s\",\"uri\":", method);
                ctl_json_string(stdout, uri);
                if (end) {
                        printf(",\"result\":");
                        ctl_json_string(stdout, what);
                        printf(",\"duration_usec\":%" PRIu64, usec);
                }
                if (message) {
                        printf(",\"error_message\":");
                        ctl_json_string(stdout, message);
                }
                printf("}\n");
        } else if (end)
                printf("end    %-6" PRIu64 " %s pid %" PRIu32 " uid %" PRIu32 "  %s %s -> %s in "
                       "%.1f ms%s%s\n",
                       id, caller, pid, uid, method, uri, what, (double) usec / 1000.0,
                       message ? ": " : "", message ?: "");
        else
                printf("start  %-6" PRIu64 " %s pid %" PRIu32 " uid %" PRIu32 "  %s %s\n", id,
                       caller, pid, uid, method, uri);
        fflush(stdout);
        if (end) {
                mon->ended++;
                mon->error_message = (free(mon->error_message), NULL);
        }
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

int ctl_monitor(bool json, double timeout_sec, unsigned count, int sig_fd) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t deadline =
                timeout_sec > 0 ? now_usec() + (uint64_t) (timeout_sec * 1e6) : UINT64_MAX;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(monitor_done) Monitor mon = {.json = json, .count = count};
        int r;

        r = open_or_fail(&bus);
        if (r > 0)
                return r;
        /* The signals come to us alone (unicast); the match lets sd-bus hand them over. */
        r = sd_bus_match_signal(bus, NULL, NULL, COAPCLIENTD_ROOT_PATH, COAPCLIENTD_MANAGER_IFACE,
                                NULL, on_request, &mon);
        if (r < 0) {
                fprintf(stderr, "coapclientctl: Cannot listen: %s\n", strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        r = sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                               COAPCLIENTD_MANAGER_IFACE, "Monitor", &e, &reply, NULL);
        if (r < 0)
                return call_failed("Monitor", &e, r);
        /* Signals that came meanwhile wait in sd-bus' queue until it knows whom to trust. */
        mon.daemon = strdup(sd_bus_message_get_sender(reply) ?: "");
        if (!mon.daemon) {
                fprintf(stderr, "coapclientctl: Out of memory.\n");
                return CTL_EXIT_FAILURE;
        }
        if (!json)
                fprintf(stderr, "Monitoring the requests of coapclientd; Ctrl-C ends.\n");

        for (;;) {
                struct pollfd p[2] = {
                        {.fd = sd_bus_get_fd(bus)},
                        {.fd = sig_fd, .events = POLLIN},
                };
                uint64_t now = now_usec(), t = UINT64_MAX;
                int ms, events;

                do
                        r = sd_bus_process(bus, NULL);
                while (r > 0 && mon.error == 0 && (count == 0 || mon.ended < count));
                if (r < 0) {
                        fprintf(stderr, "coapclientctl: Lost coapclientd: %s\n", strerror(-r));
                        return CTL_EXIT_DAEMON;
                }
                if (mon.error < 0) {
                        fprintf(stderr, "coapclientctl: Unexpected signal from coapclientd: %s\n",
                                strerror(-mon.error));
                        return CTL_EXIT_DAEMON;
                }
                if (count > 0 && mon.ended >= count)
                        break;
                if (now >= deadline)
                        break;
                events = sd_bus_get_events(bus);
                p[0].events = (short) (POLLIN | (events > 0 ? events : 0));
                (void) sd_bus_get_timeout(bus, &t);
                if (t != UINT64_MAX)
                        t = t > now ? t - now : 0;
                if (deadline != UINT64_MAX && deadline - now < t)
                        t = deadline - now;
                ms = t == UINT64_MAX ? -1 : (int) MIN((t + 999) / 1000, (uint64_t) INT32_MAX);
                if (poll(p, 2, ms) < 0 && errno != EINTR) {
                        fprintf(stderr, "coapclientctl: poll() failed: %m\n");
                        return CTL_EXIT_FAILURE;
                }
                if (p[1].revents & POLLIN)
                        break;
        }
        return fflush(stdout) == 0 ? CTL_EXIT_SUCCESS : CTL_EXIT_IO;
}
