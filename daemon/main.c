/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include <systemd/sd-daemon.h>

#include "bus/bus-service.h"
#include "channel/channel.h"
#include "config/config.h"
#include "core/manager.h"
#include "internal/bus-api.h"
#include "util/log.h"

static void help(void) {
        printf("Usage: coapclientd [OPTIONS]\n\n"
               "CoAP client service: runs CoAP requests over sockets handed over on D-Bus.\n\n"
               "  --bus-address=ADDR  connect to this bus (default: $%s,\n"
               "                      else the system bus)\n"
               "  --config=FILE       read only this configuration file (default:\n"
               "                      %s\n"
               "                      and %s/*.conf)\n"
               "  --log-level=LEVEL   err, warning, notice, info (default) or debug\n"
               "  --help              show this help\n"
               "  --version           show the version\n",
               COAPCLIENTD_BUS_ADDRESS_ENV, CONFIG_MAIN_PATH, CONFIG_DROPIN_DIR);
}

/* Returns 1 to run, 0 to exit successfully, < 0 on a usage error. */
static int parse_argv(int argc, char *argv[], const char **ret_address, const char **ret_config) {
        enum { ARG_BUS_ADDRESS = 0x100, ARG_CONFIG, ARG_LOG_LEVEL, ARG_HELP, ARG_VERSION };
        static const struct option options[] = {
                {"bus-address", required_argument, NULL, ARG_BUS_ADDRESS},
                {"config", required_argument, NULL, ARG_CONFIG},
                {"log-level", required_argument, NULL, ARG_LOG_LEVEL},
                {"help", no_argument, NULL, ARG_HELP},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        const char *address = getenv(COAPCLIENTD_BUS_ADDRESS_ENV);
        int c, level;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_BUS_ADDRESS:
                        address = optarg;
                        break;
                case ARG_CONFIG:
                        *ret_config = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        level = log_level_from_string(optarg);
                        if (level < 0)
                                return log_error_errno(EINVAL, "Invalid log level '%s'.", optarg);
                        log_set_max_level(level);
                        break;
                case ARG_HELP:
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("coapclientd %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument '%s'.", argv[optind]);

        *ret_address = address && address[0] ? address : NULL;
        return 1;
}

static int load_config(const char *path, ManagerConfig *ret) {
        ConfigError error = {};
        Config c;
        int r;

        config_init_defaults(&c);
        if (path)
                r = config_load_file(&c, path, &error);
        else
                r = config_load(&c, CONFIG_MAIN_PATH, CONFIG_DROPIN_DIR, &error);
        if (r < 0) {
                if (error.line > 0)
                        return log_error_errno(r, "%s:%u: %s", error.file, error.line,
                                               error.message);
                return log_error_errno(r, "%s: %s", error.file, error.message);
        }
        manager_config_from_config(&c, ret);
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(channel_hub_freep) ChannelHub *channels = NULL;
        _cleanup_(bus_service_freep) BusService *bus = NULL;
        const char *address = NULL, *config_path = NULL;
        ManagerConfig config;
        int r;

        log_setup();
        /* EX_CONFIG for bad options or configuration: the unit's RestartPreventExitStatus= keeps
         * systemd from restarting into the same error. */
        r = parse_argv(argc, argv, &address, &config_path);
        if (r <= 0)
                return r < 0 ? EX_CONFIG : EXIT_SUCCESS;

        r = load_config(config_path, &config);
        if (r < 0)
                return EX_CONFIG;

        r = manager_new(&config, &m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                return EXIT_FAILURE;
        }
        r = channel_hub_new(m, &channels);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the data channels: %m");
                return EXIT_FAILURE;
        }
        r = bus_service_new(m, address, &bus);
        if (r < 0)
                return EXIT_FAILURE;

        log_info("coapclientd %s running as %s.", PACKAGE_VERSION, COAPCLIENTD_BUS_NAME);
        (void) sd_notify(false, "READY=1\nSTATUS=Processing requests...");

        r = manager_run(m);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down...");
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return EXIT_FAILURE;
        }
        log_debug("Exiting with status %d.", r);
        return r;
}
