/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's end of one caller's data channel (Manager.OpenChannel(), wire/channel-wire.h):
 * REQUEST and CANCEL frames in, EVENT frames out. Sockets the caller registered (REGISTER_SOCKET)
 * are held, each with a reference, until it releases them or the channel closes. Events are
 * batched: each goes into the current message, which is sent at the end of the handler that
 * produced it (or when it is full; blocks of a download may wait for a few more), so a burst of
 * responses costs one write. What the socket does not take waits in a backlog, counted against the
 * caller's flow-control budget. */

#include <stdbool.h>
#include <stdint.h>

#include "core/caller.h"

typedef struct ChannelMessage ChannelMessage;
typedef struct ChannelSocket ChannelSocket;
typedef struct Channel Channel;

/* Every channel of the daemon: the receive buffer they share, and the batches waiting to be
 * sent. Hooked into the manager: it opens the channels OpenChannel() asks for, and flushes their
 * batches at the end of every handler. */
typedef struct ChannelHub {
        Manager *manager;
        uint8_t *rx_buffer;   /* CHANNEL_RX_SLOTS messages, from the first channel on */
        uint8_t *spare_batch; /* an idle channel's batch buffer, for the next one */
        size_t spare_size;
        Channel *pending;                 /* LIST: channels with events to send */
        sd_event_source *flush_source;    /* sends them when no handler did */
        sd_event_source *coalesce_source; /* sends those whose blocks waited long enough */
} ChannelHub;

int channel_hub_new(Manager *m, ChannelHub **ret);
/* The channels themselves belong to their callers. NULL-safe. */
ChannelHub *channel_hub_free(ChannelHub *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(ChannelHub *, channel_hub_free);

struct Channel {
        CallerSink sink; /* sink.caller: its caller, NULL once detached */
        ChannelHub *hub;
        int fd;
        sd_event_source *io_source;
        bool pending;         /* in Manager.pending_channels: it has a batch to send */
        bool urgent;          /* the batch holds an event that may not wait */
        uint64_t batch_since; /* when its first event came */
        LIST_FIELDS(Channel, pending);

        uint8_t *batch; /* the message being assembled */
        size_t batch_len, batch_size;
        ChannelMessage *backlog, *backlog_tail; /* sent in order once the socket takes them */
        uint64_t backlog_bytes;
        bool broken;    /* shut down: events are dropped until the hangup is read */
        bool throttled; /* its requests are not read while it does not read its events */
        uint64_t payload_bytes_read; /* from memfds in this dispatch */
        bool messages;       /* a REQUEST had CHANNEL_REQUEST_MESSAGE: EVENTs carry the message */
        bool error_messages; /* one had CHANNEL_REQUEST_ERROR_MESSAGE: EVENTs carry those */

        User *user;       /* the caller's: its registered sockets are counted there */
        Hashmap *sockets; /* socket id -> ChannelSocket; NULL until the first registration */
        /* The last refused registration: the REQUESTs that name it are refused with its error. */
        uint64_t failed_socket_id;
        int failed_socket_error;
        struct RequestError *failed_socket; /* NULL: none */
};

/* Opens the caller's channel and returns the other end (owned by the caller of this function).
 * -EBUSY: the caller has one. */
int channel_new(ChannelHub *h, Caller *caller, int *ret_peer_fd);

/* Queues one event of the request the caller knows by tag; error_name names a refusal,
 * error_message (NULL: none) says what went wrong, on a channel that reads it. -ENOTCONN: the
 * channel broke; the event is dropped. */
int channel_send_event(Channel *ch, Client *c, uint64_t tag, const CoapEvent *ev,
                       const char *error_name, const char *error_message);

/* Sends the batch of every channel that has one due. Called at the end of every handler that may
 * produce events (and from a defer source for the others), so that a burst of events costs one
 * write and no extra turn of the loop. Batches of only intermediate download blocks may wait up
 * to 1 ms or 16 KiB for more (a timer sends them then). */
void channel_flush_all(ChannelHub *h);
