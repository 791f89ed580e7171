/* SPDX-License-Identifier: MIT */

/* The sample of the seed document (coap_client_interface.rst), verbatim but for the typo
 * "static struct coap_client;", compiled with the project's warnings (-Wall -Wextra -Werror
 * and more) and run against coap-server-gnutls through coapclientd. */

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cond = PTHREAD_COND_INITIALIZER;
static char log_text[4096];
static char log_payload[256];
static bool log_finished;

__attribute__((format(printf, 5, 6))) static void
seed_log(size_t offset, const uint8_t *payload, size_t len, void *user_data, const char *fmt, ...) {
        size_t used;
        va_list ap;

        pthread_mutex_lock(&log_lock);
        used = strlen(log_text);
        va_start(ap, fmt);
        (void) vsnprintf(log_text + used, sizeof(log_text) - used, fmt, ap);
        va_end(ap);
        used = strlen(log_text);
        (void) snprintf(log_text + used, sizeof(log_text) - used, "\n");
        if (offset == 0 && payload && len < sizeof(log_payload)) {
                memcpy(log_payload, payload, len);
                log_payload[len] = '\0';
        }
        /* The sample leaves user_data NULL. */
        if (user_data)
                (void) snprintf(log_text, sizeof(log_text), "unexpected user_data\n");
        if (strstr(fmt, "Last packet") || strstr(fmt, "Error"))
                log_finished = true;
        pthread_cond_broadcast(&log_cond);
        pthread_mutex_unlock(&log_lock);
}

/* Zephyr's logging macros, which the sample uses. They record what the sample logs together
 * with the callback's other arguments, which is also what keeps -Wunused-parameter quiet
 * (Zephyr itself builds with -Wno-unused-parameter). */
#define LOG_INF(...) seed_log(offset, payload, len, user_data, __VA_ARGS__)
#define LOG_ERR(...) seed_log(offset, payload, len, user_data, __VA_ARGS__)

void response_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len, bool last_block,
                 void *user_data);

/* clang-format off */
/* ---- seed sample, second block, verbatim ---- */
void response_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                 bool last_block, void *user_data)
{
    if (code >= 0) {
        LOG_INF("CoAP response from server %d", code);
        if (last_block) {
            LOG_INF("Last packet received");
        }
    } else {
        LOG_ERR("Error in sending request %d", code);
    }
}
/* ---- end of seed ---- */

/* The application around the first block: sock is not connected, address is the peer. */
static int seed_application(int sock, struct sockaddr address)
{
    int ret;

/* ---- seed sample, first block, verbatim but the typo ---- */
static struct coap_client client;
struct coap_client_request req = { 0 };

coap_client_init(&client, NULL);

req.method = COAP_METHOD_GET;
req.confirmable = true;
req.path = "test";
req.fmt = COAP_CONTENT_FORMAT_TEXT_PLAIN;
req.cb = response_cb;
req.payload = NULL;
req.len = 0;

/* Sock is a file descriptor referencing a socket, address is the sockaddr struct for the
 * destination address of the request or NULL if the socket is already connected. */
ret = coap_client_req(&client, sock, &address, &req, -1);
/* ---- end of seed ---- */

    return ret;
}
/* clang-format on */

static void run_seed(int sock, struct sockaddr address, char *ret_log, size_t size) {
        struct timespec deadline;

        pthread_mutex_lock(&log_lock);
        log_text[0] = log_payload[0] = '\0';
        log_finished = false;
        pthread_mutex_unlock(&log_lock);

        ck_assert_int_eq(seed_application(sock, address), 0);

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 30;
        pthread_mutex_lock(&log_lock);
        while (!log_finished)
                if (pthread_cond_timedwait(&log_cond, &log_lock, &deadline) == ETIMEDOUT)
                        break;
        snprintf(ret_log, size, "%s", log_text);
        pthread_mutex_unlock(&log_lock);
}

START_TEST(test_seed_sample) {
        struct sockaddr_in peer;
        struct sockaddr address;
        struct coap_client helper = {};
        struct coap_client_request put;
        char log[4096];
        Recorder rec;
        int sock;

        ck_assert_int_eq(peer_address(&peer), 0);
        memcpy(&address, &peer, sizeof(peer));
        sock = peer_socket(/* connected= */ false);
        ck_assert_int_ge(sock, 0);

        /* coap-server-gnutls has no /test yet: 4.04 reaches the sample's callback. */
        run_seed(sock, address, log, sizeof(log));
        ck_assert_str_eq(log, "CoAP response from server 132\nLast packet received\n");

        /* Create /test (coap-server-gnutls -d) and run the sample again: 2.05 and the body. */
        recorder_init(&rec);
        ck_assert_int_eq(coap_client_init(&helper, "seed-helper"), 0);
        put = make_request(COAP_METHOD_PUT, "test", &rec);
        put.payload = (const uint8_t *) "hello from the seed";
        put.len = strlen("hello from the seed");
        ck_assert_int_eq(coap_client_req(&helper, sock, (struct sockaddr *) &peer, &put, NULL), 0);
        ck_assert(recorder_wait_last(&rec, 1, 30));
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_CREATED);
        coap_client_deinit(&helper);
        recorder_done(&rec);

        run_seed(sock, address, log, sizeof(log));
        ck_assert_str_eq(log, "CoAP response from server 69\nLast packet received\n");
        ck_assert_str_eq(log_payload, "hello from the seed");
        close(sock);
}
END_TEST

static Suite *seed_suite(void) {
        Suite *s = suite_create("seed-sample");
        TCase *tc = tcase_create("seed");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_seed_sample);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(seed_suite)
