/* SPDX-License-Identifier: MIT */
#pragma once

/* The Manager owns the event loop, the bus connection, every caller, client, request and
 * socket, and the limits. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "coap-engine.h"
#include "config.h"
#include "internal/macro.h"
#include "util/hashmap.h"
#include "util/list.h"

typedef struct Manager Manager;
typedef struct Caller Caller;
typedef struct Client Client;
typedef struct Request Request;
typedef struct Socket Socket;
typedef struct SocketPeer SocketPeer;
typedef struct PeerCredentials PeerCredentials;
typedef struct Channel Channel;

/* Everything a caller can make the daemon allocate is bounded here: compile-time defaults,
 * overridden by the configuration file. */
typedef struct Limits {
        uint32_t max_clients_per_caller;
        uint32_t max_clients;
        uint32_t max_requests_per_client;
        uint32_t max_requests;
        uint32_t max_payload_bytes;
        uint64_t max_payload_bytes_total;
        /* Response signal bytes a caller may leave unread before its downloads pause; at twice
         * this its requests end with -ENOBUFS (docs/dbus-api.md, "Flow control"). */
        uint64_t max_queued_bytes_per_caller;
        uint64_t bus_queue_warn; /* queued outgoing bus messages above which we warn */
} Limits;

#define LIMITS_DEFAULT                                                                     \
        ((Limits){                                                                         \
                .max_clients_per_caller = CONFIG_DEFAULT_MAX_CLIENTS_PER_CALLER,           \
                .max_clients = CONFIG_DEFAULT_MAX_CLIENTS,                                 \
                .max_requests_per_client = CONFIG_DEFAULT_MAX_REQUESTS_PER_CLIENT,         \
                .max_requests = CONFIG_DEFAULT_MAX_REQUESTS,                               \
                .max_payload_bytes = CONFIG_DEFAULT_MAX_PAYLOAD_BYTES,                     \
                .max_payload_bytes_total = CONFIG_DEFAULT_MAX_PAYLOAD_BYTES_TOTAL,         \
                .max_queued_bytes_per_caller = CONFIG_DEFAULT_MAX_QUEUED_BYTES_PER_CALLER, \
                .bus_queue_warn = 4096,                                                    \
        })

/* What the configuration file sets: the limits, and the transmission parameters and block
 * size of requests that do not bring their own. */
typedef struct ManagerConfig {
        Limits limits;
        CoapTxParams tx_params;
        uint8_t block_szx;
} ManagerConfig;

#define MANAGER_CONFIG_DEFAULT                       \
        ((ManagerConfig){                            \
                .limits = LIMITS_DEFAULT,            \
                .tx_params = COAP_TX_PARAMS_DEFAULT, \
                .block_szx = COAP_BLOCK_SZX_MAX,     \
        })

typedef struct Config Config;
/* From a loaded configuration file (daemon/config.h). */
void manager_config_from_config(const Config *c, ManagerConfig *ret);

#define MANAGER_RX_BUFFER_SIZE (64 * 1024)

/* How long a socket without requests stays open: an app's next request on it (the common case,
 * right after the last) then finds it ready instead of building it anew. Short, since the app may
 * close its own descriptor meanwhile and the port stays bound until then. */
#define SOCKET_LINGER_USEC (100 * USEC_PER_MSEC)

/* A caller's pending Peer.Ping times out after this: it is then treated as stalled. */
#define CALLER_PROBE_TIMEOUT_USEC (30 * USEC_PER_SEC)

/* One D-Bus peer (unique name) that owns at least one client. */
struct Caller {
        Manager *manager;
        char *name;
        sd_bus_track *track;
        Client *clients; /* LIST */
        uint32_t n_clients;
        Channel *channel; /* its data channel, if it opened one */

        /* Flow control of its Response signals. A Peer.Ping is answered only after the caller
         * has read every message we sent before it, so its reply acknowledges them. */
        uint64_t sent_bytes;           /* of the signals sent to it */
        uint64_t acked_bytes;          /* of those it has read */
        uint64_t probe_mark;           /* sent_bytes when the last Ping was sent */
        sd_bus_slot *probe_slot;       /* the pending Ping */
        bool paused;                   /* its downloads hold before their next block */
        bool stalled;                  /* its requests were ended: no signals until it catches up */
        bool unresponsive;             /* a Ping timed out: stalled until one is answered */
        bool unprobed;                 /* it cannot be pinged (bus policy): no flow control */
        sd_event_source *stall_source; /* ends its requests outside any engine call */
};

struct Manager {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *manager_slot, *client_slot, *enumerator_slot;

        ManagerConfig config; /* the limits, and what requests get by default */

        Hashmap *callers;       /* unique name -> Caller */
        Hashmap *clients;       /* id -> Client */
        Hashmap *requests;      /* id -> Request */
        Hashmap *sockets;       /* SocketKey -> Socket */
        uint64_t payload_bytes; /* of all requests in flight: bounded by max_payload_bytes_total */

        /* Sockets without requests are freed from this timer SOCKET_LINGER_USEC after their last
         * request, never from inside a call stack that may still hold them (e.g. their own
         * engine's event callback). */
        Socket *gc_queue; /* LIST */
        sd_event_source *gc_source;

        uint64_t last_client_id;
        uint64_t last_request_id;

        CoapEngineStats freed_stats; /* of engines already freed */
        bool bus_queue_warned;

        uint8_t rx_buffer[MANAGER_RX_BUFFER_SIZE]; /* shared by every socket: one reader at a time
                                                    */
        /* Shared by every data channel, from the first one on: CHANNEL_RX_SLOTS messages. */
        uint8_t *channel_rx_buffer;
        Channel *pending_channels;        /* LIST: channels with events to send */
        sd_event_source *flush_source;    /* sends them when no handler did */
        sd_event_source *coalesce_source; /* sends those whose blocks waited long enough */
};

int manager_new(const ManagerConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Connects to address (NULL: the system bus), publishes the objects and takes the bus name. */
int manager_connect_bus(Manager *m, const char *address);
int manager_run(Manager *m);

uint64_t manager_now(Manager *m);

/* Finds or creates the Caller for a unique name, tracking it on the bus. */
int manager_get_caller(Manager *m, const char *name, Caller **ret);
Caller *manager_find_caller(Manager *m, const char *name);
/* Frees every client of the caller (their requests dropped without events) and the caller. */
Caller *caller_free(Caller *c);
/* Frees the caller if it has no client and no data channel left. */
void caller_gc(Caller *c);
/* Accounts a signal of size bytes sent to the caller: pings it every so often, pauses or stalls
 * it when it falls behind. Safe from an engine event handler. */
void caller_account_signal(Caller *c, size_t size);
/* Pauses, stalls or resumes the caller by what it has not read yet: its unacknowledged signals
 * and its data channel's backlog. */
void caller_check_flow(Caller *c);

void manager_queue_socket_gc(Manager *m, Socket *s);
/* Sets a CLOCK_MONOTONIC timer source to fire once at usec. */
int manager_arm_timer(sd_event_source *timer, uint64_t usec);

/* Sum over live engines and freed ones. */
void manager_get_stats(Manager *m, CoapEngineStats *ret);
/* Warns (once per crossing) when our outgoing bus queue grows past the limit. */
void manager_check_bus_queue(Manager *m);
