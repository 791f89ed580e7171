/* SPDX-License-Identifier: MIT */
/* Test fixture of the bus policy test.
 *
 *   bus-name-owner ADDRESS NAME...   takes each NAME, prints "ready", then serves until killed,
 *                                    printing "signal SENDER INTERFACE.MEMBER" for each signal
 *                                    it receives. sd-bus itself answers
 *                                    org.freedesktop.DBus.Peer.Ping on every path.
 *   bus-name-owner --emit ADDRESS DEST
 *                                    sends a Response signal of a client object to DEST, then
 *                                    pings DEST: once the Ping is answered, DEST has printed the
 *                                    signal if the bus delivered it. Prints "sent". */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "internal/bus-api.h"
#include "internal/macro.h"

static int connect_bus(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                fprintf(stderr, "cannot connect to %s: %s\n", address, strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(bus);
        return 0;
}

static int emit(const char *address, const char *dest) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (connect_bus(address, &bus) < 0)
                return EXIT_FAILURE;
        r = sd_bus_message_new_signal(bus, &m, COAPCLIENTD_CLIENT_PREFIX "/1",
                                      COAPCLIENTD_CLIENT_IFACE, "Response");
        if (r >= 0)
                r = sd_bus_message_set_destination(m, dest);
        if (r >= 0)
                r = sd_bus_message_append(m, "titaybba{sv}", UINT64_C(1), 69, UINT64_C(0), 0, true,
                                          true, 0);
        if (r >= 0)
                r = sd_bus_send(bus, m, NULL);
        if (r >= 0)
                r = sd_bus_call_method(bus, dest, "/", "org.freedesktop.DBus.Peer", "Ping", NULL,
                                       NULL, NULL);
        if (r < 0) {
                fprintf(stderr, "cannot emit to %s: %s\n", dest, strerror(-r));
                return EXIT_FAILURE;
        }
        printf("sent\n");
        return EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (argc == 4 && strcmp(argv[1], "--emit") == 0)
                return emit(argv[2], argv[3]);
        if (argc < 3) {
                fprintf(stderr, "usage: %s ADDRESS NAME... | --emit ADDRESS DEST\n", argv[0]);
                return EXIT_FAILURE;
        }
        if (connect_bus(argv[1], &bus) < 0)
                return EXIT_FAILURE;
        for (int i = 2; i < argc; i++) {
                r = sd_bus_request_name(bus, argv[i], 0);
                if (r < 0) {
                        fprintf(stderr, "cannot own %s: %s\n", argv[i], strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        printf("ready\n");
        fflush(stdout);

        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                r = sd_bus_process(bus, &m);
                if (m && sd_bus_message_is_signal(m, NULL, NULL) > 0) {
                        printf("signal %s %s.%s\n", sd_bus_message_get_sender(m) ?: "-",
                               sd_bus_message_get_interface(m) ?: "-",
                               sd_bus_message_get_member(m) ?: "-");
                        fflush(stdout);
                }
                if (r > 0)
                        continue;
                if (r >= 0)
                        r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0) {
                        fprintf(stderr, "bus: %s\n", strerror(-r));
                        return EXIT_FAILURE;
                }
        }
}
