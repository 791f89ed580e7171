/* SPDX-License-Identifier: MIT */
#pragma once

/* A plain sd-bus client of coapclientd for the integration tests (deliberately not the client
 * library): method calls, Response signals queued per connection, bounded waits. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

#include "internal/macro.h"

#define TEST_GET    1
#define TEST_POST   2
#define TEST_PUT    3
#define TEST_DELETE 4

#define TEST_ERROR_UNKNOWN_OBJECT "org.freedesktop.DBus.Error.UnknownObject"
#define TEST_ERROR_UNKNOWN_METHOD "org.freedesktop.DBus.Error.UnknownMethod"
#define TEST_ERROR_INVALID_ARGS   "org.freedesktop.DBus.Error.InvalidArgs"

typedef struct TestOption {
        uint16_t number;
        const uint8_t *value;
        size_t len;
} TestOption;

/* One raw a{sv} entry, for values TestRequest cannot express (zero, wrong types, unknown keys).
 * type is the D-Bus type of the variant: 'y', 'q', 'u', 't', 'b' use u; 's' uses s. */
typedef struct TestExtra {
        const char *key;
        char type;
        uint64_t u;
        const char *s;
} TestExtra;

/* One Request's a{sv}. Zero/NULL fields are not sent. */
typedef struct TestRequest {
        uint8_t method;
        bool non; /* "confirmable" false; otherwise true is sent */
        const char *path;
        const uint8_t *payload;
        size_t payload_len;
        bool observe;
        const TestOption *options;
        size_t n_options;
        uint32_t ack_timeout;
        uint16_t ack_random_percent;
        uint16_t backoff_percent;
        uint8_t max_retransmission;
        uint16_t block_size;
        const TestExtra *extra;
        size_t n_extra;
} TestRequest;

typedef struct TestResponse {
        char *path;        /* the client object that emitted it */
        char *destination; /* the unicast destination of the signal */
        uint64_t id;
        int32_t result;
        uint64_t offset;
        uint8_t *payload;
        size_t payload_len;
        bool last_block;
        bool final;
        bool has_observe;
        uint64_t observe;
        char *source;           /* the "source" detail (a multicast answer's member), or NULL */
        char *error_message;    /* details' "error-message", or NULL */
        uint64_t received_usec; /* CLOCK_MONOTONIC */
} TestResponse;

typedef struct TestBus {
        sd_bus *bus;
        sd_bus_slot *match;
        const char *unique_name;
        TestResponse *queue;
        size_t n_queue;
        size_t n_allocated;
} TestBus;

uint64_t test_now_usec(void);

/* Connects to $COAPCLIENTD_BUS_ADDRESS and subscribes to Response signals. */
int test_bus_new(TestBus **ret);
TestBus *test_bus_free(TestBus *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(TestBus *, test_bus_free);

void test_response_done(TestResponse *r);

/* Dispatches incoming messages for timeout_usec, queueing Response signals. */
int test_bus_run(TestBus *b, uint64_t timeout_usec);
/* Takes the oldest queued Response of request id, waiting at most timeout_usec for one.
 * -ETIMEDOUT when none came. */
int test_bus_next_response(TestBus *b, uint64_t id, uint64_t timeout_usec, TestResponse *ret);
/* Waits until the final Response of id (at most timeout_usec) and returns every Response of id
 * in order. -ETIMEDOUT when the final one did not come. */
int test_bus_collect(TestBus *b, uint64_t id, uint64_t timeout_usec, TestResponse **ret,
                     size_t *ret_n);
void test_responses_free(TestResponse *r, size_t n);
/* Queued Responses of id (UINT64_MAX: of any id). */
size_t test_bus_count_queued(TestBus *b, uint64_t id);

int test_bus_create_client(TestBus *b, const char *name, char **ret_path, sd_bus_error *error);
int test_bus_list_clients(TestBus *b, char ***ret_paths, sd_bus_error *error);
int test_bus_request(TestBus *b, const char *client, int fd, const char *destination,
                     const TestRequest *req, uint64_t *ret_id, sd_bus_error *error);
/* Cancel / DeregisterObserve (id) and CancelAll / Close (no argument). */
int test_bus_call_id(TestBus *b, const char *client, const char *member, uint64_t id,
                     sd_bus_error *error);
int test_bus_call_void(TestBus *b, const char *client, const char *member, sd_bus_error *error);

int test_bus_get_manager_u32(TestBus *b, const char *property, uint32_t *ret);
int test_bus_get_manager_u64(TestBus *b, const char *property, uint64_t *ret);
/* Polls the property until it equals expected, at most timeout_usec; returns the last value
 * read. The daemon frees unused sockets in a deferred event, so counters may lag the final
 * Response by one loop iteration. */
uint32_t test_bus_await_manager_u32(TestBus *b, const char *property, uint32_t expected,
                                    uint64_t timeout_usec);
/* The same for the daemon's fd count. */
int test_bus_await_daemon_fds(TestBus *b, int expected, uint64_t timeout_usec);
int test_bus_get_client_string(TestBus *b, const char *client, const char *property, char **ret,
                               sd_bus_error *error);
int test_bus_introspect(TestBus *b, const char *path, char **ret_xml, sd_bus_error *error);

void test_strv_free(char **l);

/* A coapclientd of its own, on a dbus-daemon of its own ($TEST_BUS_CONF), reading only the
 * configuration config (file contents): for limits the shared daemon of test-env.sh cannot have.
 * Exports COAPCLIENTD_BUS_ADDRESS and COAPCLIENTD_PID, so that test_bus_new() and the daemon
 * probes of net-helper.h use it from then on. Both processes die with the calling process. */
typedef struct TestPrivateDaemon {
        pid_t bus_pid;
        pid_t pid;
        char config_path[64];
} TestPrivateDaemon;

int test_private_daemon_start(const char *config, TestPrivateDaemon *ret);
/* SIGTERM to both; returns the daemon's exit code (0 expected: sanitizer builds report leaks
 * through it), 128 + signal if a signal killed it, or a negative errno. */
int test_private_daemon_stop(TestPrivateDaemon *d);
