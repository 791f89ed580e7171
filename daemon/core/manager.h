/* SPDX-License-Identifier: MIT */
#pragma once

/* The Manager owns the event loop, every caller, client, request and socket, and the limits.
 * It knows no front end: the D-Bus one (daemon/bus/) and the data channel (daemon/channel/)
 * hook into it. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "coap-engine-heap.h"
#include "coap-engine.h"
#include "config/config.h"
#include "internal/macro.h"
#include "util/hashmap.h"
#include "util/list.h"

typedef struct Manager Manager;
typedef struct Caller Caller;
typedef struct Client Client;
typedef struct Request Request;
typedef struct Socket Socket;
typedef struct SocketPeer SocketPeer;
typedef struct SocketRx SocketRx;
typedef struct SocketTx SocketTx;
typedef struct PeerCredentials PeerCredentials;
typedef struct CallerSink CallerSink;

/* Everything a caller can make the daemon allocate is bounded here: compile-time defaults,
 * overridden by the configuration file. */
typedef struct Limits {
        uint32_t max_callers;
        uint32_t max_callers_per_user; /* per-user quotas: every uid but root (core/user.h) */
        uint32_t max_channels_per_user;
        uint32_t max_clients_per_user;
        uint32_t max_requests_per_user;
        uint64_t max_payload_bytes_per_user;
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
                .max_callers = CONFIG_DEFAULT_MAX_CALLERS,                                 \
                .max_callers_per_user = CONFIG_DEFAULT_MAX_CALLERS_PER_USER,               \
                .max_channels_per_user = CONFIG_DEFAULT_MAX_CHANNELS_PER_USER,             \
                .max_clients_per_user = CONFIG_DEFAULT_MAX_CLIENTS_PER_USER,               \
                .max_requests_per_user = CONFIG_DEFAULT_MAX_REQUESTS_PER_USER,             \
                .max_payload_bytes_per_user = CONFIG_DEFAULT_MAX_PAYLOAD_BYTES_PER_USER,   \
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

/* How long after sockets were freed their memory goes back to the system (malloc_trim()). */
#define MANAGER_TRIM_DELAY_USEC (2 * USEC_PER_SEC)

/* What a front end hooks into the core. */
typedef void (*ManagerFlushFunc)(void *userdata);
typedef int (*ManagerOpenChannelFunc)(void *userdata, Caller *caller, int *ret_peer_fd);

#define MANAGER_FLUSH_HOOKS_MAX 4

/* A front end that watches requests start and end (the debug log, coapclientctl monitor). */
typedef struct ManagerRequestWatch {
        void (*started)(void *userdata, const Request *r, const CoapRequestSpec *spec);
        /* result: a code byte or -errno; error_message: what the app is told with an error
         * (GnuTLS' reason for a DTLS failure), or NULL. */
        void (*ended)(void *userdata, const Request *r, int result, const char *error_message);
        void *userdata;
} ManagerRequestWatch;

/* Where the core reads the time (manager_now()). */
typedef uint64_t (*ManagerClockFunc)(Manager *m);

struct Manager {
        sd_event *event;
        /* The loop's time (sd_event_now()); the core's tests set their own, to run its timers
         * at the times they choose. */
        ManagerClockFunc clock;

        ManagerConfig config; /* the limits, and what requests get by default */

        Hashmap *callers;       /* unique name -> Caller */
        Hashmap *users;         /* uid -> User: what each uid holds */
        Hashmap *clients;       /* id -> Client */
        Hashmap *requests;      /* id -> Request */
        Hashmap *sockets;       /* SocketKey -> Socket */
        uint64_t payload_bytes; /* of all requests in flight: bounded by max_payload_bytes_total */
        uint32_t n_registered_sockets; /* on the data channels, of all users */

        /* Sockets without requests are freed from this timer SOCKET_LINGER_USEC after their last
         * request, never from inside a call stack that may still hold them (e.g. their own
         * engine's event callback). */
        Socket *gc_queue; /* LIST */
        sd_event_source *gc_source;
        sd_event_source *trim_source; /* malloc_trim() after sockets were freed */

        uint64_t last_client_id;
        uint64_t last_request_id;

        /* Every engine's callbacks (set with the first socket) and the stats they all count in. */
        CoapEngineEnv engine_env;
        CoapEngineStats stats;

        /* Every socket is read through one epoll set, edge-triggered, behind one io source: a
         * turn of the loop reads all the sockets that became ready, however many there are
         * (socket.c). The receive buffers come with the first socket (one reader at a time). */
        int socket_epoll_fd;
        sd_event_source *socket_epoll_source;
        SocketRx *socket_rx;
        /* Plain datagrams sent by a batch of input, sent when it is handled (socket-tx.h). */
        SocketTx *socket_tx;
        /* Every socket's timer, by deadline and by the time it must have run by, behind one timer
         * source armed for the earliest (socket.c). */
        CoapHeap socket_timers, socket_latest;
        sd_event_source *socket_timer_source;

        /* Front ends that batch events: flushed at the end of every handler that may make some
         * (manager_flush()). */
        struct {
                ManagerFlushFunc func;
                void *userdata;
        } flush_hooks[MANAGER_FLUSH_HOOKS_MAX];
        size_t n_flush_hooks;

        /* The data channel front end, if any: makes a caller's channel (manager_open_channel()). */
        ManagerOpenChannelFunc open_channel;
        void *open_channel_userdata;

        ManagerRequestWatch request_watch; /* funcs NULL: none */
};

int manager_new(const ManagerConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

int manager_run(Manager *m);

/* CLOCK_MONOTONIC microseconds, from Manager.clock. */
uint64_t manager_now(Manager *m);

Caller *manager_find_caller(Manager *m, const char *name);

/* Front ends: a flush hook runs after every handler that may have produced events. */
int manager_add_flush_hook(Manager *m, ManagerFlushFunc func, void *userdata);
void manager_flush(Manager *m);
void manager_set_channel_opener(Manager *m, ManagerOpenChannelFunc func, void *userdata);
/* The caller's data channel, through the front end that makes them: -EOPNOTSUPP without one,
 * -EDQUOT at the user's MaxChannelsPerUser. The channel is the caller's sink that holds it. */
int manager_open_channel(Manager *m, Caller *caller, int *ret_peer_fd);

void manager_queue_socket_gc(Manager *m, Socket *s);
/* Sets a CLOCK_MONOTONIC timer source to fire once at usec. */
int manager_arm_timer(sd_event_source *timer, uint64_t usec);

/* Summed over every engine, live and freed. */
void manager_get_stats(Manager *m, CoapEngineStats *ret);
