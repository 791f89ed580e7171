/* SPDX-License-Identifier: MIT */
#include "daemon-test-util.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "client-test-util.h"
#include "internal/bus-api.h"

/* Waits until the bus name has an owner (or none), from NameOwnerChanged: no polling. */
static void wait_for_name(bool owned) {
        uint64_t deadline = now_usec() + 20 * 1000000u;
        sd_bus *bus = NULL;
        sd_bus_slot *slot = NULL;

        ck_assert_int_ge(sd_bus_new(&bus), 0);
        ck_assert_int_ge(sd_bus_set_address(bus, getenv(COAPCLIENTD_BUS_ADDRESS_ENV)), 0);
        ck_assert_int_ge(sd_bus_set_bus_client(bus, true), 0);
        ck_assert_int_ge(sd_bus_start(bus), 0);
        ck_assert_int_ge(sd_bus_match_signal(bus, &slot, "org.freedesktop.DBus",
                                             "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                             "NameOwnerChanged", NULL, NULL),
                         0);
        for (;;) {
                sd_bus_message *reply = NULL;
                int has;

                ck_assert_int_ge(sd_bus_call_method(bus, "org.freedesktop.DBus",
                                                    "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                                    "NameHasOwner", NULL, &reply, "s",
                                                    COAPCLIENTD_BUS_NAME),
                                 0);
                ck_assert_int_ge(sd_bus_message_read(reply, "b", &has), 0);
                sd_bus_message_unref(reply);
                if (!!has == owned)
                        break;
                ck_assert_uint_lt(now_usec(), deadline);
                /* Ask again after every message, NameOwnerChanged in particular. */
                if (sd_bus_process(bus, NULL) > 0)
                        continue;
                ck_assert_int_ge(sd_bus_wait(bus, deadline - now_usec()), 0);
        }
        sd_bus_slot_unref(slot);
        sd_bus_flush_close_unref(bus);
}

pid_t start_daemon(void) {
        char arg[1024], log[1024];
        pid_t pid;

        snprintf(arg, sizeof(arg), "--bus-address=%s", getenv(COAPCLIENTD_BUS_ADDRESS_ENV));
        snprintf(log, sizeof(log), "%s/daemon-%d.log", getenv("TEST_TMPDIR") ?: "/tmp",
                 (int) getpid());
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                execl(getenv("COAPCLIENTD_BIN"), "coapclientd", arg, (char *) NULL);
                _exit(127);
        }
        wait_for_name(true);
        return pid;
}

int stop_daemon(pid_t pid, int sig) {
        int status;

        ck_assert_int_eq(kill(pid, sig), 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return status;
}

void stop_daemon_cleanly(pid_t pid) {
        int status = stop_daemon(pid, SIGTERM);

        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}

void observe_time(struct coap_client *client, int sock, Recorder *rec) {
        static const struct coap_client_option observe = {.code = COAP_OPTION_OBSERVE};
        struct coap_client_request req = make_request(COAP_METHOD_GET, "time", rec);

        req.options = &observe;
        req.num_options = 1;
        ck_assert_int_eq(coap_client_req(client, sock, NULL, &req, NULL), 0);
}
