/* SPDX-License-Identifier: MIT */
#pragma once

/* Plain datagrams held while the loop handles one batch of input (a channel's frames, the ready
 * sockets) and sent when it is handled, with one sendmmsg() per run of one socket's datagrams: a
 * turn that submits ten requests makes one system call instead of ten. A datagram that fails then
 * goes back to its owner (its socket) once the whole batch is out, outside any engine call. The
 * Manager owns the one SocketTx; sockets own nothing in it. */

#include <stddef.h>
#include <stdint.h>

#include "coap-engine.h"

typedef struct SocketTx SocketTx;

/* The datagram buf (len bytes, to dest, len 0: connected) of owner failed with error. */
typedef void (*SocketTxFailedFunc)(void *owner, const uint8_t *buf, size_t len,
                                   const CoapAddr *dest, int error);

int socket_tx_new(SocketTxFailedFunc failed, SocketTx **ret);
/* NULL-safe; returns NULL. What it holds is not sent. */
SocketTx *socket_tx_free(SocketTx *tx);

/* Datagrams are held from the outermost begin to its end, which sends them and reports the
 * failures. NULL-safe. */
void socket_tx_begin(SocketTx *tx);
void socket_tx_end(SocketTx *tx);

/* Holds a copy of the datagram for fd. 0, or -ENOBUFS: not between begin and end, or full (the
 * caller sends it itself). NULL-safe. */
int socket_tx_add(SocketTx *tx, int fd, void *owner, const CoapAddr *dest, const uint8_t *buf,
                  size_t len);
/* owner goes away before the end: its datagrams are sent now, their errors ignored. NULL-safe. */
void socket_tx_forget(SocketTx *tx, void *owner);
