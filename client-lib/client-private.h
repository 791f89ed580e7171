/* SPDX-License-Identifier: MIT */
#pragma once

/* State shared by the public API (client.c) and the bus loop (loop.c). Everything here is
 * guarded by lib.lock; user callbacks always run without it. */

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <systemd/sd-bus.h>

/* The seed's types (API 304) and the packet types of API 403. */
#define COAPCLIENT_BUILDING_LIBRARY
#include "coapclient/coap_client.h"

#define _public_ __attribute__((visibility("default")))

/* The longest D-Bus name (sd-bus checks the senders it receives). */
#define LIB_BUS_NAME_MAX 255

typedef struct coap_client_private Client;
typedef struct Request Request;
typedef struct Delivery Delivery;
typedef struct Replay Replay;

/* A socket of the application registered on the data channel (REGISTER_SOCKET), so that its
 * requests name it by id instead of carrying the fd. The daemon holds the socket while it is
 * registered, so its inode cannot be reused meanwhile: an fd whose inode changed is another
 * socket (the application closed the first, and the number came back). */
typedef struct LibSocket {
        uint64_t id; /* 0: a free entry */
        int fd;      /* the application's */
        dev_t dev;
        ino_t ino;
        bool used; /* a request named it since the last sweep */
} LibSocket;

/* Registrations at once: beyond, requests carry their fd as before. */
#define LIB_SOCKETS_MAX 64

/* What a request needs sent first to name its socket by id (lib_socket_prepare_locked()). */
typedef struct LibSocketPlan {
        LibSocket *entry; /* NULL: the fd goes with the request */
        uint64_t id;      /* the id the request names */
        bool registering; /* the message registers id (the fd goes with it) into entry */
        bool releasing;   /* ... after releasing entry's registration of an older inode */
        int fd;
        dev_t dev;
        ino_t ino;
} LibSocketPlan;

/* coap_client_set_tls(): what to send as SetCredentials(), again when the daemon-side object
 * is created anew. Tags, not credentials: they are looked up at each sending. */
typedef struct ClientTls {
        int *sec_tags; /* without duplicates */
        size_t n_sec_tags;
        char *hostname;
        int flags;
        uint32_t handshake_timeout_ms; /* 0: the daemon's default */
} ClientTls;

/* One coap_client_init(): the daemon-side object and the pending requests. */
struct coap_client_private {
        unsigned n_ref;
        struct coap_client *owner; /* NULL once deinitialised */
        char *name;
        char *path;                    /* daemon object; NULL: create it on the next request */
        uint64_t id;                   /* the object's id, path's last element */
        char *daemon;                  /* unique bus name of the daemon that holds path */
        uint16_t block_size;           /* bytes; 0: the daemon's default */
        ClientTls *tls;                /* NULL: plain CoAP */
        uint32_t handshake_timeout_ms; /* for the next ClientTls; 0: the daemon's default */
        uint32_t multicast_timeout_ms; /* API 304's requests to a group: the window; 0: none */
        /* Callbacks of this client running right now; atomic: the library's thread ends a
         * final callback without the lock (lib_thread()). */
        _Atomic unsigned n_running;
        Request *requests; /* pending (not yet finally reported), newest first */
        Client *clients_prev, *clients_next;
};

/* What registering an observation again with a new coapclientd takes: the request as it was
 * sent, on a duplicate of the application's socket. */
struct Replay {
        int sock;
        bool has_addr; /* false: the socket's connected peer */
        struct sockaddr_storage addr;
        struct coap_transmission_parameters params;
        struct coapclient_request_ref req; /* path, options and payload point into data */
        bool has_payload;
        uint8_t *data;
        struct coapclient_option_ref options[];
};

/* One coap_client_req() until its final callback. */
struct Request {
        unsigned n_ref;
        Client *client;                    /* holds a reference */
        uint64_t id;                       /* its tag on the data channel */
        char daemon[LIB_BUS_NAME_MAX + 1]; /* unique bus name of the daemon running it */

        /* Copies for Zephyr's cancel matching. */
        enum coap_method method;
        char *path;
        unsigned api; /* 304 or 403: the type of cb */
        void (*cb)(void);
        void *user_data;
        bool observe;
        uint64_t socket_id;  /* the registered socket it named; 0: its fd went with it */
        Replay *replay;      /* an observation without a streamed body; NULL otherwise */
        bool replay_pending; /* its coapclientd went away: to be registered with the next */

        /* API 403's payload_cb while it streams the body (CHANNEL_REQUEST_STREAM). */
        int (*payload_cb)(size_t offset, const uint8_t **payload, size_t *len, bool *last_block,
                          void *user_data);
        bool streaming;        /* more of the body is to come from payload_cb */
        bool stream_queued;    /* a delivery to ask payload_cb for more is queued */
        size_t stream_block;   /* the block size payload_cb is asked for */
        uint64_t stream_sent;  /* bytes sent so far */
        uint64_t stream_acked; /* the offset of the latest event: the window starts there */

        bool linked;          /* in client->requests: pending, matchable */
        bool final_queued;    /* the last callback is queued: nothing more is queued */
        bool cancelled;       /* -ECANCELED was reported or suppressed: drop queued callbacks */
        bool in_callback;     /* its callback runs in cb_thread */
        bool deferred_cancel; /* report -ECANCELED in cb_thread once the callback returns */
        pthread_t cb_thread;
        /* Preallocated for the final error, so reporting cannot fail: in the request's own
         * allocation, after it, as is path. */
        Delivery *spare;
        Request *requests_prev, *requests_next;
        Request *report_next; /* chain of -ECANCELED callbacks to make, see client.c */
};

/* One callback waiting to be made. */
struct Delivery {
        Request *request; /* holds a reference */
        int result;
        uint64_t offset;
        const uint8_t *payload;
        size_t len;
        bool last_block;
        bool final;
        bool silent; /* no callback (a NON request timed out, as in Zephyr): only forget */
        bool pump;   /* no callback: ask the request's payload_cb for more of its body */
        bool spare;  /* request->spare: freed with the request */
        struct coap_client_response_info info;
        struct sockaddr_storage source; /* a multicast response's responder */
        socklen_t source_len;           /* 0: none */
        bool has_packet;                /* the daemon sent the message (API 403 requests) */
        struct coap_packet packet;      /* its data is data[]: header, token, options, payload */
        char *error_message; /* in data[] after them: for coap_client_last_error(), or NULL */
        Delivery *next;
        uint8_t data[]; /* payload points here */
};

typedef struct Lib {
        pthread_mutex_t lock;
        pthread_cond_t callbacks_done;       /* signalled when a callback returns */
        _Atomic unsigned n_callback_waiters; /* threads waiting for callbacks_done */

        bool external; /* coap_client_loop_external(): no thread */
        int epoll_fd;  /* wake_fd, the bus fd and channel_fd; what coap_client_get_fd() returns */
        int wake_fd;   /* eventfd: work was queued behind the loop's back */
        bool thread_started, thread_stop;
        pthread_t thread;

        sd_bus *bus;
        int bus_fd;                /* registered in epoll_fd, -1: none */
        uint32_t bus_epoll_events; /* as registered */
        sd_bus_slot *owner_slot;

        int channel_fd;              /* the data channel, -1: none */
        char *channel_daemon;        /* unique bus name of the daemon at its other end */
        uint64_t channel_generation; /* counts the channels opened */
        uint8_t *channel_buf;        /* one message in, CHANNEL_MESSAGE_MAX */
        uint8_t *channel_buf_tx;     /* one message out (the API's threads, under the lock) */
        uint64_t last_tag;
        uint32_t max_requests_per_client, max_payload_bytes; /* the daemon's limits */
        /* Sockets registered on the channel, found by fd; a socket found there with its inode was
         * checked to be a UDP socket when registered. */
        LibSocket sockets[LIB_SOCKETS_MAX];
        size_t n_sockets;
        uint64_t last_socket_id;
        uint64_t sockets_sweep; /* CLOCK_MONOTONIC usec: release those unused since; 0: none */

        unsigned n_clients;
        Client *clients;
        Delivery *queue_head, *queue_tail;

        struct coap_transmission_parameters defaults;

        /* Observations waiting for a coapclientd to register with again: try at the next turn
         * (replay_now), and give up at replay_deadline (CLOCK_MONOTONIC usec, 0: none wait). */
        bool replay_now;
        uint64_t replay_deadline;
} Lib;

extern Lib lib;

#define LIB_LOCK()   assert_se_zero(pthread_mutex_lock(&lib.lock))
#define LIB_UNLOCK() assert_se_zero(pthread_mutex_unlock(&lib.lock))
#define assert_se_zero(expr)      \
        do {                      \
                int _r_ = (expr); \
                assert(_r_ == 0); \
                (void) _r_;       \
        } while (0)

Client *client_ref(Client *c);
Client *client_unref(Client *c);
/* Close() of c's object, without waiting, addressed to the daemon that made it. */
void client_call_close_locked(Client *c);
Request *request_ref(Request *r);
Request *request_unref(Request *r);
void request_unlink(Request *r);

/* Creates the epoll fd and the eventfd once. */
int lib_setup_fds_locked(void);
/* Starts the library thread once (not in external mode). */
int lib_start_thread_locked(void);
/* Makes the loop look at the bus and the queue again. */
void lib_wake_locked(void);
/* Opens the shared connection if it is not open. */
int lib_open_bus_locked(void);
/* Closes the shared connection (last client gone). */
void lib_close_bus_locked(void);
/* The connection broke: every pending request gets -ECONNABORTED, the connection is closed. */
void lib_bus_broken_locked(void);
/* What the loop found ready. */
typedef enum LibReady {
        LIB_READY_WAKE = 1 << 0,    /* wake_fd: callbacks queued, or the bus read behind our back */
        LIB_READY_BUS = 1 << 1,     /* the bus fd, or a bus timeout */
        LIB_READY_CHANNEL = 1 << 2, /* the data channel */
        LIB_READY_ALL = LIB_READY_WAKE | LIB_READY_BUS | LIB_READY_CHANNEL,
} LibReady;

/* lib.epoll_fd holds at most three: the wake eventfd, the bus and the data channel. */
#define LIB_EPOLL_EVENTS 4
/* What epoll_wait() on lib.epoll_fd found (n: its result) as LibReady. */
LibReady lib_ready_from_events(const struct epoll_event *events, int n);
/* Reads what is ready and makes every queued callback; returns locked. ret_held: see
 * deliver_queue_locked(). */
void lib_process_locked(LibReady ready, Delivery **ret_held);
/* Relative timeout for the external loop. */
uint64_t lib_timeout_locked(void);

/* channel.c: opens the data channel if there is none (and reads the daemon's limits). */
int lib_open_channel_locked(void);
void lib_close_channel_locked(void);
/* Sends one message with up to two fds, without waiting: -EAGAIN when the channel is full,
 * -ECONNABORTED when it is gone. */
int lib_channel_send_locked(const uint8_t *buf, size_t len, const int *fds, size_t n_fds);
/* Waits, with the lock dropped, until the channel takes more (0), or gives up (-EAGAIN), or the
 * channel was closed or replaced (-ESTALE) or c deinitialised (-EINVAL) meanwhile. */
int lib_channel_wait_writable_locked(const Client *c);
/* Reads one message of the channel (drain: every message) and queues the callbacks it
 * brings. */
void lib_channel_read_locked(bool drain);
/* The registration of fd with the inode st, if it is registered. */
LibSocket *lib_socket_find_locked(int fd, const struct stat *st);
/* Plans how a request names its socket fd (st: its inode; NULL: carry the fd) and writes the
 * frames that go before the request into buf (of size bytes, room for two): a RELEASE_SOCKET of
 * a stale registration of fd, a REGISTER_SOCKET (with the fd) of a new one. Returns their size.
 * Nothing is recorded before lib_socket_commit_locked(), once the message is sent. */
size_t lib_socket_prepare_locked(int fd, const struct stat *st, uint8_t *buf, size_t size,
                                 LibSocketPlan *ret);
void lib_socket_commit_locked(const LibSocketPlan *p);
/* Releases registration id (after a refused request that named it: it may be the registration
 * that was refused). */
void lib_socket_forget_locked(uint64_t id);
/* Releases the registrations no request used since the last sweep, at lib.sockets_sweep. */
void lib_sockets_sweep_locked(uint64_t now);

/* Queues a callback to make. */
void queue_push_locked(Delivery *d);
/* Every pending request run by daemon (NULL: any) gets -ECONNABORTED; observations of a daemon
 * (not NULL) wait to be registered with the next one instead. */
void lib_abort_requests_locked(const char *daemon);
/* Registers the waiting observations with the coapclientd that now owns the bus name. One
 * that cannot be gets its final error callback, unless coapclientd is not there yet and
 * replay_deadline is still ahead. */
void lib_replay_locked(uint64_t now);
Replay *replay_free(Replay *rp);
uint64_t lib_now_usec(void);
/* An event of a streaming request moved its window: queues asking payload_cb for more. */
void lib_stream_acked_locked(Request *r, uint64_t offset);

/* Queues the final error callback of r (once). */
void lib_queue_error_locked(Request *r, int error);
/* Makes the -ECANCELED callback of r now, from the calling thread: drops and retakes the
 * lock. */
void lib_report_cancel_locked(Request *r);

/* The delivery whose callback runs in this thread, for coap_client_get_response_info(). */
extern _Thread_local const Delivery *lib_current_delivery;
/* The client whose callback runs in this thread, so coap_client_deinit() does not wait for
 * itself. */
extern _Thread_local const Client *lib_current_client;

/* Maps a failed bus call to the errno coap_client_req() documents; keeps the error's message
 * for coap_client_last_error(). */
int lib_bus_error_to_errno(const sd_bus_error *e, int r);

/* tls.c: t with its own copies of sec_tags and hostname. */
int client_tls_new(const int *sec_tags, size_t n, const char *hostname, int flags, ClientTls **ret);
ClientTls *client_tls_free(ClientTls *t);
/* -ENOENT: a tag without credentials; -EINVAL: an incomplete set. */
int client_tls_check_locked(const ClientTls *t);
/* Appends SetCredentials()' arguments: the a{sv} and the sealed memfd with the secret. */
int client_tls_append_locked(sd_bus_message *m, const ClientTls *t);
