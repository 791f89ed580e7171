/* SPDX-License-Identifier: MIT */
#include "client-test-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

uint8_t *make_body(size_t size, uint32_t seed) {
        uint8_t *b = malloc(size);

        if (!b)
                abort();
        for (size_t i = 0; i < size; i++) {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                b[i] = (uint8_t) seed;
        }
        return b;
}

void cond_init_monotonic(pthread_cond_t *cond) {
        pthread_condattr_t attr;

        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(cond, &attr);
        pthread_condattr_destroy(&attr);
}

bool cond_wait_count(pthread_mutex_t *lock, pthread_cond_t *cond, const unsigned *counter,
                     unsigned n, unsigned timeout_sec) {
        struct timespec deadline;
        bool ok;

        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_sec;
        pthread_mutex_lock(lock);
        while (*counter < n)
                if (pthread_cond_timedwait(cond, lock, &deadline) == ETIMEDOUT)
                        break;
        ok = *counter >= n;
        pthread_mutex_unlock(lock);
        return ok;
}

void recorder_init(Recorder *r) {
        *r = (Recorder){};
        pthread_mutex_init(&r->lock, NULL);
        cond_init_monotonic(&r->cond);
}

void recorder_done(Recorder *r) {
        free(r->body);
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
}

void recorder_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len, bool last_block,
                 void *user_data) {
        Recorder *r = user_data;
        struct coap_client_response_info info;
        bool has_info = coap_client_get_response_info(&info) == 0;

        pthread_mutex_lock(&r->lock);
        if (r->n_calls == 0)
                r->first_code = code;
        r->n_calls++;
        r->code = code;
        if (code < 0) {
                const char *message = coap_client_last_error();

                r->n_errors++;
                r->error_not_last = r->error_not_last || !last_block;
                snprintf(r->error_message, sizeof(r->error_message), "%s", message ?: "");
        } else {
                if (offset != r->next_offset)
                        r->bad_offset = true;
                if (offset == 0)
                        r->body_len = 0;
                if (len > 0) {
                        uint8_t *b = realloc(r->body, offset + len);

                        if (b) {
                                memcpy(b + offset, payload, len);
                                r->body = b;
                                r->body_len = offset + len;
                        } else
                                r->bad_offset = true;
                }
                r->next_offset = last_block ? 0 : offset + len;
                if (has_info) {
                        r->has_info = true;
                        r->info = info;
                }
        }
        if (last_block)
                r->n_last++;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
}

bool recorder_wait_last(Recorder *r, unsigned n, unsigned timeout_sec) {
        return cond_wait_count(&r->lock, &r->cond, &r->n_last, n, timeout_sec);
}

bool recorder_wait_errors(Recorder *r, unsigned n, unsigned timeout_sec) {
        return cond_wait_count(&r->lock, &r->cond, &r->n_errors, n, timeout_sec);
}

bool recorder_pump_last(Recorder *r, unsigned n, unsigned timeout_sec) {
        return pump_until(&r->n_last, n, timeout_sec);
}

bool pump_until(const unsigned *counter, unsigned n, unsigned timeout_sec) {
        uint64_t deadline = now_usec() + (uint64_t) timeout_sec * 1000000u;
        int fd = coap_client_get_fd();

        if (fd < 0)
                return false;
        while (*counter < n) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                uint64_t now = now_usec(), t = coap_client_get_timeout_usec();

                if (now >= deadline)
                        return false;
                if (t > deadline - now)
                        t = deadline - now;
                (void) poll(&p, 1, (int) ((t + 999) / 1000));
                if (coap_client_process() < 0)
                        return false;
        }
        return true;
}

/* A counter of r, read under its lock. */
static unsigned recorder_read(Recorder *r, const unsigned *counter) {
        unsigned n;

        pthread_mutex_lock(&r->lock);
        n = *counter;
        pthread_mutex_unlock(&r->lock);
        return n;
}

unsigned recorder_n_last(Recorder *r) {
        return recorder_read(r, &r->n_last);
}

unsigned recorder_n_calls(Recorder *r) {
        return recorder_read(r, &r->n_calls);
}

int peer_address(struct sockaddr_in *ret) {
        const char *host = getenv("COAP_PEER_HOST"), *port = getenv("COAP_PEER_PORT");

        if (!host || !port)
                return -ENXIO;
        *ret = (struct sockaddr_in){
                .sin_family = AF_INET,
                .sin_port = htons((uint16_t) atoi(port)),
        };
        return inet_pton(AF_INET, host, &ret->sin_addr) == 1 ? 0 : -EINVAL;
}

int peer_socket(bool connected) {
        struct sockaddr_in peer, local = {
                                         .sin_family = AF_INET,
                                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                 };
        int fd, r;

        r = peer_address(&peer);
        if (r < 0)
                return r;
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connected)
                r = connect(fd, (struct sockaddr *) &peer, sizeof(peer));
        else
                r = bind(fd, (struct sockaddr *) &local, sizeof(local));
        if (r < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

struct coap_client_request make_request(enum coap_method method, const char *path, Recorder *rec) {
        return (struct coap_client_request){
                .method = method,
                .confirmable = true,
                .path = path,
                .fmt = COAP_CONTENT_FORMAT_TEXT_PLAIN,
                .cb = recorder_cb,
                .user_data = rec,
        };
}

int do_request(struct coap_client *client, int sock, const struct coap_client_request *req,
               Recorder *rec) {
        unsigned n = recorder_n_last(rec);
        int r;

        r = coap_client_req(client, sock, NULL, req, NULL);
        if (r < 0)
                return r;
        if (!recorder_wait_last(rec, n + 1, 30))
                return -ETIMEDOUT;
        pthread_mutex_lock(&rec->lock);
        r = rec->code;
        pthread_mutex_unlock(&rec->lock);
        return r;
}
