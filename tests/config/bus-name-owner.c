/* SPDX-License-Identifier: MIT */
/* Test fixture: connects to the bus at ADDRESS, takes each NAME, prints "ready" and then serves
 * until killed. sd-bus itself answers org.freedesktop.DBus.Peer.Ping on every path, which is
 * all the policy test calls. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "internal/macro.h"

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (argc < 3) {
                fprintf(stderr, "usage: %s ADDRESS NAME...\n", argv[0]);
                return EXIT_FAILURE;
        }

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, argv[1]);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                fprintf(stderr, "cannot connect to %s: %s\n", argv[1], strerror(-r));
                return EXIT_FAILURE;
        }
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
                r = sd_bus_process(bus, NULL);
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
