/* SPDX-License-Identifier: MIT */
#include "core/socket-tx.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A turn holds at most this many datagrams and bytes: 32 requests in flight, or a block of a
 * 1 KiB block-wise transfer each, fit; what does not is sent at once. */
#define SOCKET_TX_MAX   32
#define SOCKET_TX_BYTES (16 * 1024)

typedef struct SocketTxEntry {
        void *owner; /* NULL: sent by socket_tx_forget() */
        int fd;
        int error;
        CoapAddr dest;
} SocketTxEntry;

struct SocketTx {
        SocketTxFailedFunc failed;
        unsigned depth;
        unsigned n;
        size_t used;
        SocketTxEntry entries[SOCKET_TX_MAX];
        struct mmsghdr msgs[SOCKET_TX_MAX];
        struct iovec iovs[SOCKET_TX_MAX];
        uint8_t buf[SOCKET_TX_BYTES];
};

int socket_tx_new(SocketTxFailedFunc failed, SocketTx **ret) {
        /* Not calloc(): the buffer's pages are touched only as far as datagrams reach. */
        SocketTx *tx = malloc(sizeof(SocketTx));

        if (!tx)
                return -ENOMEM;
        memset(tx, 0, offsetof(SocketTx, buf));
        tx->failed = failed;
        *ret = tx;
        return 0;
}

SocketTx *socket_tx_free(SocketTx *tx) {
        free(tx);
        return NULL;
}

void socket_tx_begin(SocketTx *tx) {
        if (tx)
                tx->depth++;
}

/* Sends entries [i, end), which share one fd and owner; a failed one keeps its errno. */
static void socket_tx_send_run(SocketTx *tx, unsigned i, unsigned end) {
        while (i < end) {
                int k = sendmmsg(tx->entries[i].fd, tx->msgs + i, end - i,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);

                if (k > 0)
                        i += (unsigned) k;
                else if (k < 0 && errno == EINTR)
                        continue;
                else /* the first of the rest failed */
                        tx->entries[i++].error = k < 0 ? -errno : -EIO;
        }
}

void socket_tx_end(SocketTx *tx) {
        unsigned n;

        if (!tx || tx->depth == 0 || --tx->depth > 0)
                return;
        n = tx->n;
        for (unsigned i = 0, j; i < n; i = j) {
                for (j = i + 1; j < n && tx->entries[j].fd == tx->entries[i].fd &&
                                tx->entries[j].owner == tx->entries[i].owner;
                     j++)
                        ;
                if (tx->entries[i].owner)
                        socket_tx_send_run(tx, i, j);
        }
        /* Not taking datagrams any more (depth 0): what the handlers send goes out at once. */
        for (unsigned i = 0; i < n; i++)
                if (tx->entries[i].owner && tx->entries[i].error < 0)
                        tx->failed(tx->entries[i].owner, tx->iovs[i].iov_base, tx->iovs[i].iov_len,
                                   &tx->entries[i].dest, tx->entries[i].error);
        tx->n = 0;
        tx->used = 0;
}

int socket_tx_add(SocketTx *tx, int fd, void *owner, const CoapAddr *dest, const uint8_t *buf,
                  size_t len) {
        SocketTxEntry *e;
        uint8_t *copy;

        if (!tx || tx->depth == 0 || tx->n == SOCKET_TX_MAX || len > SOCKET_TX_BYTES - tx->used)
                return -ENOBUFS;
        copy = memcpy(tx->buf + tx->used, buf, len);
        tx->used += len;
        e = &tx->entries[tx->n];
        *e = (SocketTxEntry){.owner = owner, .fd = fd};
        if (dest && dest->len > 0)
                e->dest = *dest;
        tx->iovs[tx->n] = (struct iovec){.iov_base = copy, .iov_len = len};
        tx->msgs[tx->n].msg_hdr = (struct msghdr){
                .msg_name = e->dest.len > 0 ? &e->dest.ss : NULL,
                .msg_namelen = e->dest.len,
                .msg_iov = &tx->iovs[tx->n],
                .msg_iovlen = 1,
        };
        tx->n++;
        return 0;
}

void socket_tx_forget(SocketTx *tx, void *owner) {
        if (!tx)
                return;
        for (unsigned i = 0; i < tx->n; i++)
                if (tx->entries[i].owner == owner) {
                        (void) sendmmsg(tx->entries[i].fd, tx->msgs + i, 1,
                                        MSG_DONTWAIT | MSG_NOSIGNAL);
                        tx->entries[i].owner = NULL;
                }
}
