/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers of the client-lib tests: the peer that tests/helpers/test-env.sh started, and a
 * recorder of response callbacks that tests wait on. */

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coapclient/coap_client.h"

typedef struct Recorder {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned n_calls;    /* callbacks */
        unsigned n_last;     /* callbacks with last_block */
        unsigned n_errors;   /* callbacks with a negative code */
        int16_t first_code;  /* of the first callback */
        int16_t code;        /* of the latest callback */
        bool bad_offset;     /* a block did not start where the previous one ended */
        bool error_not_last; /* an error callback without last_block */
        size_t next_offset;  /* where the next block of the current body must start */
        uint8_t *body;       /* the latest body, reassembled */
        size_t body_len;
        bool has_info; /* coap_client_get_response_info() worked in a callback */
        struct coap_client_response_info info; /* of the latest successful response */
        char error_message[512]; /* coap_client_last_error() in the latest error callback, or "" */
} Recorder;

void recorder_init(Recorder *r);
void recorder_done(Recorder *r);
void recorder_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len, bool last_block,
                 void *user_data);
/* Waits (library thread mode) until r has n callbacks with last_block; false on timeout. */
bool recorder_wait_last(Recorder *r, unsigned n, unsigned timeout_sec);
/* Waits until r has n error callbacks; false on timeout. */
bool recorder_wait_errors(Recorder *r, unsigned n, unsigned timeout_sec);
/* The same in external-loop mode: runs coap_client_process() meanwhile. */
bool recorder_pump_last(Recorder *r, unsigned n, unsigned timeout_sec);
/* External-loop mode: runs coap_client_process() until *counter (counted by callbacks, which run
 * in this thread) reaches n; false on timeout or a failed coap_client_process(). */
bool pump_until(const unsigned *counter, unsigned n, unsigned timeout_sec);
unsigned recorder_n_last(Recorder *r);
unsigned recorder_n_calls(Recorder *r);

/* COAP_PEER_HOST:COAP_PEER_PORT from the environment. */
int peer_address(struct sockaddr_in *ret);
/* A UDP socket for the peer: connect()ed to it, or bound to 127.0.0.1:0. */
int peer_socket(bool connected);
/* A request of method for path with cb = recorder_cb and user_data = rec. */
struct coap_client_request make_request(enum coap_method method, const char *path, Recorder *rec);
/* Runs a request and waits for its final callback; returns the last code, or the error of
 * coap_client_req(). Thread mode. */
int do_request(struct coap_client *client, int sock, const struct coap_client_request *req,
               Recorder *rec);

uint64_t now_usec(void);
/* size bytes of xorshift from seed (no runs, so a misplaced block shows); aborts if out of
 * memory. */
uint8_t *make_body(size_t size, uint32_t seed);
/* A condition variable on CLOCK_MONOTONIC, for cond_wait_count(). */
void cond_init_monotonic(pthread_cond_t *cond);
/* Waits on cond until *counter, guarded by lock, reaches n; false after timeout_sec. */
bool cond_wait_count(pthread_mutex_t *lock, pthread_cond_t *cond, const unsigned *counter,
                     unsigned n, unsigned timeout_sec);
