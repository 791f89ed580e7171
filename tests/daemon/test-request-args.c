/* SPDX-License-Identifier: MIT */
/* The Request() dictionary decoder, fed messages built on a bus that never talks to anyone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus/bus-request.h"
#include "check-main.h"
#include "coap-option.h"
#include "internal/bus-api.h"

static sd_bus *bus;
static int peer_fd = -EBADF;
static ManagerConfig default_config;

/* sd-bus only builds messages on a bus that is open: one over a socketpair whose other end
 * nobody reads is enough. */
static void setup(void) {
        int sv[2];

        default_config = MANAGER_CONFIG_DEFAULT;
        ck_assert_int_eq(bus_api_register_errors(), 0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(sd_bus_new(&bus), 0);
        ck_assert_int_eq(sd_bus_set_fd(bus, sv[0], sv[0]), 0);
        ck_assert_int_eq(sd_bus_start(bus), 0);
        peer_fd = sv[1];
}

static void teardown(void) {
        bus = sd_bus_close_unref(bus);
        peer_fd = safe_close(peer_fd);
}

static sd_bus_message *request_new(void) {
        sd_bus_message *m = NULL;

        ck_assert_int_eq(sd_bus_message_new_method_call(bus, &m, COAPCLIENTD_BUS_NAME,
                                                        COAPCLIENTD_CLIENT_PREFIX "/1",
                                                        COAPCLIENTD_CLIENT_IFACE, "Request"),
                         0);
        ck_assert_int_ge(sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, "{sv}"), 0);
        return m;
}

static void append_bytes(sd_bus_message *m, const char *key, const void *p, size_t n) {
        ck_assert_int_ge(sd_bus_message_open_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv"), 0);
        ck_assert_int_ge(sd_bus_message_append(m, "s", key), 0);
        ck_assert_int_ge(sd_bus_message_open_container(m, SD_BUS_TYPE_VARIANT, "ay"), 0);
        ck_assert_int_ge(sd_bus_message_append_array(m, 'y', p, n), 0);
        ck_assert_int_ge(sd_bus_message_close_container(m), 0);
        ck_assert_int_ge(sd_bus_message_close_container(m), 0);
}

typedef struct TestOption {
        uint16_t number;
        const char *value; /* NULL: len bytes of 'v' */
        size_t len;
} TestOption;

static void append_options(sd_bus_message *m, const TestOption *opts, size_t n) {
        ck_assert_int_ge(sd_bus_message_open_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv"), 0);
        ck_assert_int_ge(sd_bus_message_append(m, "s", "options"), 0);
        ck_assert_int_ge(sd_bus_message_open_container(m, SD_BUS_TYPE_VARIANT, "a(qay)"), 0);
        ck_assert_int_ge(sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, "(qay)"), 0);
        for (size_t i = 0; i < n; i++) {
                uint8_t filler[512];

                ck_assert_uint_le(opts[i].len, sizeof filler);
                memset(filler, 'v', sizeof filler);
                ck_assert_int_ge(sd_bus_message_open_container(m, SD_BUS_TYPE_STRUCT, "qay"), 0);
                ck_assert_int_ge(sd_bus_message_append(m, "q", opts[i].number), 0);
                ck_assert_int_ge(sd_bus_message_append_array(
                                         m, 'y', opts[i].value ?: (char *) filler, opts[i].len),
                                 0);
                ck_assert_int_ge(sd_bus_message_close_container(m), 0);
        }
        for (size_t i = 0; i < 3; i++)
                ck_assert_int_ge(sd_bus_message_close_container(m), 0);
}

/* Closes the dictionary, seals and rewinds m as the bus would deliver it, and decodes it. */
static int decode(sd_bus_message *m, const ManagerConfig *config, RequestArgs *a,
                  sd_bus_error *error) {
        ck_assert_int_ge(sd_bus_message_close_container(m), 0);
        ck_assert_int_ge(sd_bus_message_seal(m, 1, 0), 0);
        ck_assert_int_ge(sd_bus_message_rewind(m, true), 0);
        return bus_request_parse(m, config, a, error);
}

static void decode_ok(sd_bus_message *m, const ManagerConfig *config, RequestArgs *a) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = decode(m, config, a, &error);
        ck_assert_msg(r == 0, "decode: %d %s: %s", r, error.name ?: "-", error.message ?: "-");
        ck_assert(!sd_bus_error_is_set(&error));
}

/* The named error, its errno as return value, and (when given) a word of its message. */
static void decode_fails(sd_bus_message *m, const ManagerConfig *config, const char *name,
                         int errnum, const char *mention) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        RequestArgs a;
        int r;

        r = decode(m, config, &a, &error);
        ck_assert_msg(sd_bus_error_has_name(&error, name), "got %d %s: %s", r, error.name ?: "-",
                      error.message ?: "-");
        ck_assert_int_eq(r, -errnum);
        if (mention)
                ck_assert_msg(strstr(error.message, mention), "'%s' does not mention '%s'",
                              error.message, mention);
        sd_bus_error_free(&error);
}

START_TEST(test_defaults) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
        ManagerConfig config = MANAGER_CONFIG_DEFAULT;
        RequestArgs a;

        /* The defaults come from the configuration, not from built-in values. */
        config.tx_params = (CoapTxParams){
                .ack_timeout_ms = 3000,
                .ack_random_percent = 120,
                .backoff_percent = 300,
                .max_retransmission = 2,
        };
        config.block_szx = 3;
        ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "method", "y", 1), 0);
        decode_ok(m, &config, &a);
        ck_assert_int_eq(a.method, COAP_CODE_GET);
        ck_assert(a.confirmable);
        ck_assert_str_eq(a.path, "");
        ck_assert_int_eq(a.content_format, -1);
        ck_assert_uint_eq(a.payload_len, 0);
        ck_assert_uint_eq(a.n_options, 0);
        ck_assert(!a.observe);
        ck_assert_uint_eq(a.params.ack_timeout_ms, 3000);
        ck_assert_uint_eq(a.params.ack_random_percent, 120);
        ck_assert_uint_eq(a.params.backoff_percent, 300);
        ck_assert_uint_eq(a.params.max_retransmission, 2);
        ck_assert_uint_eq(a.block_szx, 3);
}
END_TEST

START_TEST(test_every_key) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
        static const TestOption opts[] = {
                {.number = COAP_OPTION_ACCEPT, .value = "\x32", .len = 1},
                {.number = COAP_OPTION_ETAG, .value = "etag", .len = 4},
                {.number = COAP_OPTION_BLOCK2, .value = "\x02", .len = 1},
        };
        RequestArgs a;

        ck_assert_int_ge(sd_bus_message_append(m, "{sv}{sv}{sv}{sv}", "method", "y", 3,
                                               "confirmable", "b", 0, "path", "s",
                                               "/sensors/temp?unit=c&x", "content-format", "q", 50),
                         0);
        append_bytes(m, "payload", "hello", 5);
        append_options(m, opts, ELEMENTSOF(opts));
        ck_assert_int_ge(sd_bus_message_append(
                                 m, "{sv}{sv}{sv}{sv}{sv}{sv}", "observe", "b", 1, "ack-timeout",
                                 "u", 100, "ack-random-percent", "q", 1000, "backoff-percent", "q",
                                 100, "max-retransmission", "y", 20, "block-size", "q", 16),
                         0);
        decode_ok(m, &default_config, &a);
        ck_assert_int_eq(a.method, COAP_CODE_PUT);
        ck_assert(!a.confirmable);
        ck_assert_str_eq(a.path, "/sensors/temp?unit=c&x");
        ck_assert_int_eq(a.content_format, 50);
        ck_assert_uint_eq(a.payload_len, 5);
        ck_assert_mem_eq(a.payload, "hello", 5);
        ck_assert(a.observe);
        /* The given options in order but Block2 NUM 0, which asks for early negotiation, then the
         * Observe that "observe" adds. */
        ck_assert_uint_eq(a.n_options, ELEMENTSOF(opts));
        for (size_t i = 0; i < ELEMENTSOF(opts) - 1; i++) {
                ck_assert_uint_eq(a.options[i].number, opts[i].number);
                ck_assert_uint_eq(a.options[i].len, opts[i].len);
                ck_assert_mem_eq(a.options[i].value, opts[i].value, opts[i].len);
        }
        ck_assert_uint_eq(a.options[2].number, COAP_OPTION_OBSERVE);
        ck_assert_uint_eq(a.options[2].len, 0);
        ck_assert(a.block2_early);
        ck_assert_uint_eq(a.params.ack_timeout_ms, 100);
        ck_assert_uint_eq(a.params.ack_random_percent, 1000);
        ck_assert_uint_eq(a.params.backoff_percent, 100);
        ck_assert_uint_eq(a.params.max_retransmission, 20);
        ck_assert_uint_eq(a.block_szx, 0);
}
END_TEST

START_TEST(test_observe_option_given) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
        static const TestOption opts[] = {
                {.number = COAP_OPTION_OBSERVE, .value = "\x01", .len = 1}};
        RequestArgs a;

        ck_assert_int_ge(sd_bus_message_append(m, "{sv}{sv}", "observe", "b", 1, "method", "y", 1),
                         0);
        append_options(m, opts, 1);
        decode_ok(m, &default_config, &a);
        /* The caller's Observe (here: deregister, 1) wins over the added 0. */
        ck_assert(a.observe);
        ck_assert_uint_eq(a.n_options, 1);
        ck_assert_uint_eq(a.options[0].number, COAP_OPTION_OBSERVE);
        ck_assert_uint_eq(a.options[0].len, 1);
        ck_assert_uint_eq(a.options[0].value[0], 1);
}
END_TEST

START_TEST(test_observe_false) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
        RequestArgs a;

        ck_assert_int_ge(sd_bus_message_append(m, "{sv}{sv}", "method", "y", 1, "observe", "b", 0),
                         0);
        decode_ok(m, &default_config, &a);
        ck_assert(!a.observe);
        ck_assert_uint_eq(a.n_options, 0);
}
END_TEST

START_TEST(test_methods) {
        for (unsigned method = 0; method <= 255; method++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
                RequestArgs a;

                ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "method", "y", method), 0);
                if (method >= COAP_CODE_GET && method <= COAP_CODE_IPATCH) {
                        decode_ok(m, &default_config, &a);
                        ck_assert_int_eq(a.method, (int) method);
                } else
                        decode_fails(m, &default_config, COAPCLIENTD_ERROR_INVALID_METHOD, EINVAL,
                                     "1..7");
        }
}
END_TEST

START_TEST(test_method_missing) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();

        decode_fails(m, &default_config, COAPCLIENTD_ERROR_INVALID_METHOD, EINVAL, "method");
}
END_TEST

START_TEST(test_method_missing_with_others) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();

        ck_assert_int_ge(
                sd_bus_message_append(m, "{sv}{sv}", "path", "s", "a", "confirmable", "b", 1), 0);
        decode_fails(m, &default_config, COAPCLIENTD_ERROR_INVALID_METHOD, EINVAL, "method");
}
END_TEST

START_TEST(test_unknown_keys) {
        static const char *const keys[] = {"",    "Method",      "methods",    "ack_timeout",
                                           "uri", "block-size ", "payload\x01"};

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();

                ck_assert_int_ge(
                        sd_bus_message_append(m, "{sv}{sv}", "method", "y", 1, keys[i], "y", 1), 0);
                decode_fails(m, &default_config, COAPCLIENTD_ERROR_INVALID_ARGUMENT, EINVAL,
                             "Unknown request key");
        }
}
END_TEST

START_TEST(test_unknown_key_before_missing_method) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();

        /* The dictionary is checked before the method. */
        ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "bogus", "s", "x"), 0);
        decode_fails(m, &default_config, COAPCLIENTD_ERROR_INVALID_ARGUMENT, EINVAL, "'bogus'");
}
END_TEST

START_TEST(test_duplicate_keys) {
        static const char *const keys[] = {"method", "path", "observe"};

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
                char name[32];

                if (strcmp(keys[i], "method") == 0)
                        ck_assert_int_ge(sd_bus_message_append(m, "{sv}{sv}", "method", "y", 1,
                                                               "method", "y", 1),
                                         0);
                else if (strcmp(keys[i], "path") == 0)
                        ck_assert_int_ge(sd_bus_message_append(m, "{sv}{sv}{sv}", "method", "y", 1,
                                                               "path", "s", "a", "path", "s", "a"),
                                         0);
                else
                        ck_assert_int_ge(sd_bus_message_append(m, "{sv}{sv}{sv}", "observe", "b", 0,
                                                               "method", "y", 1, "observe", "b", 1),
                                         0);
                snprintf(name, sizeof name, "'%s' given twice", keys[i]);
                decode_fails(m, &default_config, COAPCLIENTD_ERROR_INVALID_ARGUMENT, EINVAL, name);
        }
}
END_TEST

/* Every key with a value of a type it does not take. */
START_TEST(test_wrong_types) {
        static const struct {
                const char *key, *signature;
        } keys[] = {
                {"method", "y"},          {"confirmable", "b"},        {"path", "s"},
                {"content-format", "q"},  {"payload", "ay"},           {"options", "a(qay)"},
                {"observe", "b"},         {"ack-timeout", "u"},        {"ack-random-percent", "q"},
                {"backoff-percent", "q"}, {"max-retransmission", "y"}, {"block-size", "q"},
        };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                for (int wrong = 0; wrong < 4; wrong++) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
                        char mention[64];
                        int r;

                        if (strcmp(keys[i].key, "method") != 0)
                                ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "method", "y", 1),
                                                 0);
                        switch (wrong) {
                        case 0: /* a string, or for "path" a byte */
                                r = strcmp(keys[i].signature, "s") == 0
                                            ? sd_bus_message_append(m, "{sv}", keys[i].key, "y", 1)
                                            : sd_bus_message_append(m, "{sv}", keys[i].key, "s",
                                                                    "1");
                                break;
                        case 1: /* an int32, the usual mistake for any number */
                                r = sd_bus_message_append(m, "{sv}", keys[i].key, "i", 1);
                                break;
                        case 2: /* a uint64 */
                                r = sd_bus_message_append(m, "{sv}", keys[i].key, "t", UINT64_C(1));
                                break;
                        default: /* an array of the right element type is never a scalar */
                                r = strcmp(keys[i].signature, "ay") == 0
                                            ? sd_bus_message_append(m, "{sv}", keys[i].key, "aq", 1,
                                                                    1)
                                            : sd_bus_message_append(m, "{sv}", keys[i].key, "ay", 1,
                                                                    1);
                                break;
                        }
                        ck_assert_int_ge(r, 0);
                        snprintf(mention, sizeof mention, "'%s' must be of type '%s'", keys[i].key,
                                 keys[i].signature);
                        decode_fails(m, &default_config, COAPCLIENTD_ERROR_INVALID_ARGUMENT, EINVAL,
                                     mention);
                }
}
END_TEST

START_TEST(test_options_wrong_element_type) {
        static const char *const signatures[] = {"a(uay)", "a(qs)", "a(qayy)",
                                                 "a(q)",   "aay",   "a{qay}"};

        for (size_t i = 0; i < ELEMENTSOF(signatures); i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();

                ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "method", "y", 1), 0);
                ck_assert_int_ge(sd_bus_message_open_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv"), 0);
                ck_assert_int_ge(sd_bus_message_append(m, "s", "options"), 0);
                ck_assert_int_ge(
                        sd_bus_message_open_container(m, SD_BUS_TYPE_VARIANT, signatures[i]), 0);
                ck_assert_int_ge(
                        sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, signatures[i] + 1), 0);
                ck_assert_int_ge(sd_bus_message_close_container(m), 0);
                ck_assert_int_ge(sd_bus_message_close_container(m), 0);
                ck_assert_int_ge(sd_bus_message_close_container(m), 0);
                decode_fails(m, &default_config, COAPCLIENTD_ERROR_INVALID_ARGUMENT, EINVAL,
                             "'options'");
        }
}
END_TEST

typedef struct RangeCase {
        const char *key;
        char type;
        uint32_t value;
        bool ok;
} RangeCase;

START_TEST(test_parameter_ranges) {
        static const RangeCase cases[] = {
                {"ack-timeout", 'u', 0, false},
                {"ack-timeout", 'u', 99, false},
                {"ack-timeout", 'u', 100, true},
                {"ack-timeout", 'u', 600000, true},
                {"ack-timeout", 'u', 600001, false},
                {"ack-timeout", 'u', UINT32_MAX, false},
                {"ack-random-percent", 'q', 0, false},
                {"ack-random-percent", 'q', 99, false},
                {"ack-random-percent", 'q', 100, true},
                {"ack-random-percent", 'q', 1000, true},
                {"ack-random-percent", 'q', 1001, false},
                {"ack-random-percent", 'q', UINT16_MAX, false},
                {"backoff-percent", 'q', 99, false},
                {"backoff-percent", 'q', 100, true},
                {"backoff-percent", 'q', 1000, true},
                {"backoff-percent", 'q', 1001, false},
                {"max-retransmission", 'y', 0, true},
                {"max-retransmission", 'y', 20, true},
                {"max-retransmission", 'y', 21, false},
                {"max-retransmission", 'y', 255, false},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
                const RangeCase *c = &cases[i];
                RequestArgs a;
                uint32_t got;
                int r;

                ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "method", "y", 1), 0);
                if (c->type == 'u')
                        r = sd_bus_message_append(m, "{sv}", c->key, "u", c->value);
                else if (c->type == 'q')
                        r = sd_bus_message_append(m, "{sv}", c->key, "q", (uint16_t) c->value);
                else
                        r = sd_bus_message_append(m, "{sv}", c->key, "y", (uint8_t) c->value);
                ck_assert_int_ge(r, 0);
                if (!c->ok) {
                        decode_fails(m, &default_config, COAPCLIENTD_ERROR_INVALID_PARAMETERS,
                                     EINVAL, c->key);
                        continue;
                }
                decode_ok(m, &default_config, &a);
                if (strcmp(c->key, "ack-timeout") == 0)
                        got = a.params.ack_timeout_ms;
                else if (strcmp(c->key, "ack-random-percent") == 0)
                        got = a.params.ack_random_percent;
                else if (strcmp(c->key, "backoff-percent") == 0)
                        got = a.params.backoff_percent;
                else
                        got = a.params.max_retransmission;
                ck_assert_uint_eq(got, c->value);
        }
}
END_TEST

START_TEST(test_block_sizes) {
        static const uint16_t bad[] = {0, 1, 8, 15, 17, 48, 1000, 1023, 1025, 2048, 4096, 65535};

        for (unsigned szx = 0; szx <= 6; szx++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
                RequestArgs a;

                ck_assert_int_ge(sd_bus_message_append(m, "{sv}{sv}", "method", "y", 1,
                                                       "block-size", "q", 16u << szx),
                                 0);
                decode_ok(m, &default_config, &a);
                ck_assert_uint_eq(a.block_szx, szx);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();

                ck_assert_int_ge(sd_bus_message_append(m, "{sv}{sv}", "method", "y", 1,
                                                       "block-size", "q", bad[i]),
                                 0);
                decode_fails(m, &default_config, COAPCLIENTD_ERROR_INVALID_PARAMETERS, EINVAL,
                             "'block-size'");
        }
}
END_TEST

/* A Block2 option NUM 0 asks for early negotiation: it leaves the options, caps the block size
 * and flags the request; any other Block2 goes out as given. */
START_TEST(test_early_block2) {
        static const TestOption early = {.number = COAP_OPTION_BLOCK2, .value = "\x03", .len = 1};
        static const TestOption num1 = {.number = COAP_OPTION_BLOCK2, .value = "\x13", .len = 1};
        static const uint16_t sizes[] = {0, 1024, 64};
        static const uint8_t expected[] = {3, 3, 2};

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
                RequestArgs a;

                ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "method", "y", 1), 0);
                if (sizes[i] > 0)
                        ck_assert_int_ge(
                                sd_bus_message_append(m, "{sv}", "block-size", "q", sizes[i]), 0);
                append_options(m, &early, 1);
                decode_ok(m, &default_config, &a);
                ck_assert_uint_eq(a.n_options, 0);
                ck_assert(a.block2_early);
                ck_assert_uint_eq(a.block_szx, expected[i]);
        }
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
                RequestArgs a;

                ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "method", "y", 1), 0);
                append_options(m, &num1, 1);
                decode_ok(m, &default_config, &a);
                ck_assert_uint_eq(a.n_options, 1);
                ck_assert(!a.block2_early);
                ck_assert_uint_eq(a.block_szx, 6);
        }
}
END_TEST

START_TEST(test_payload_limit) {
        static const size_t good[] = {0, 1, 63, 64};
        ManagerConfig config = MANAGER_CONFIG_DEFAULT;
        uint8_t payload[65];

        for (size_t i = 0; i < sizeof payload; i++)
                payload[i] = (uint8_t) i;
        config.limits.max_payload_bytes = 64;
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
                RequestArgs a;

                ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "method", "y", 2), 0);
                append_bytes(m, "payload", payload, good[i]);
                decode_ok(m, &config, &a);
                ck_assert_uint_eq(a.payload_len, good[i]);
                if (good[i] > 0)
                        ck_assert_mem_eq(a.payload, payload, good[i]);
        }

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
        ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "method", "y", 2), 0);
        append_bytes(m, "payload", payload, 65);
        decode_fails(m, &config, COAPCLIENTD_ERROR_PAYLOAD_TOO_LARGE, EMSGSIZE, "65 bytes");
}
END_TEST

START_TEST(test_payload_default_limit) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
        size_t len = MANAGER_CONFIG_DEFAULT.limits.max_payload_bytes + 1;
        _cleanup_free_ uint8_t *payload = calloc(1, len);

        ck_assert_ptr_nonnull(payload);
        ck_assert_int_ge(sd_bus_message_append(m, "{sv}", "method", "y", 3), 0);
        append_bytes(m, "payload", payload, len);
        decode_fails(m, &default_config, COAPCLIENTD_ERROR_PAYLOAD_TOO_LARGE, EMSGSIZE, "1048576");
}
END_TEST

static void check_options(const TestOption *opts, size_t n, bool observe, const char *error_name,
                          const char *mention) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
        RequestArgs a;

        ck_assert_int_ge(
                sd_bus_message_append(m, "{sv}{sv}", "method", "y", 1, "observe", "b", observe), 0);
        append_options(m, opts, n);
        if (error_name) {
                decode_fails(m, &default_config, error_name, EINVAL, mention);
                return;
        }
        decode_ok(m, &default_config, &a);
        ck_assert_uint_eq(a.n_options, n + observe);
        for (size_t i = 0; i < n; i++) {
                ck_assert_uint_eq(a.options[i].number, opts[i].number);
                ck_assert_uint_eq(a.options[i].len, opts[i].len);
                for (size_t k = 0; k < opts[i].len; k++)
                        ck_assert_uint_eq(a.options[i].value[k],
                                          opts[i].value ? (uint8_t) opts[i].value[k] : 'v');
        }
        if (observe) {
                ck_assert_uint_eq(a.options[n].number, COAP_OPTION_OBSERVE);
                ck_assert_uint_eq(a.options[n].len, 0);
        }
}

START_TEST(test_options_count) {
        TestOption opts[REQUEST_OPTIONS_MAX + 1];

        for (size_t i = 0; i < ELEMENTSOF(opts); i++)
                opts[i] = (TestOption){.number = (uint16_t) (2000 + i), .len = i};
        check_options(opts, 0, false, NULL, NULL);
        check_options(opts, REQUEST_OPTIONS_MAX, false, NULL, NULL);
        /* "observe" may add a 17th. */
        check_options(opts, REQUEST_OPTIONS_MAX, true, NULL, NULL);
        check_options(opts, REQUEST_OPTIONS_MAX + 1, false, COAPCLIENTD_ERROR_INVALID_OPTION,
                      "At most 16");
        check_options(opts, REQUEST_OPTIONS_MAX + 1, true, COAPCLIENTD_ERROR_INVALID_OPTION,
                      "At most 16");
}
END_TEST

START_TEST(test_options_value_length) {
        TestOption opts[] = {
                {.number = COAP_OPTION_ETAG, .len = 0},
                {.number = COAP_OPTION_IF_MATCH, .len = REQUEST_OPTION_VALUE_MAX},
        };

        check_options(opts, ELEMENTSOF(opts), false, NULL, NULL);
        opts[1].len = REQUEST_OPTION_VALUE_MAX + 1;
        check_options(opts, ELEMENTSOF(opts), false, COAPCLIENTD_ERROR_INVALID_OPTION,
                      "longer than 255");
        opts[1].len = 512;
        check_options(opts, ELEMENTSOF(opts), false, COAPCLIENTD_ERROR_INVALID_OPTION,
                      "longer than 255");
}
END_TEST

START_TEST(test_options_numbers) {
        /* The numbers the daemon sets itself, and 0, which no option has. */
        static const uint16_t refused[] = {
                0,
                COAP_OPTION_URI_PATH,
                COAP_OPTION_URI_QUERY,
                COAP_OPTION_CONTENT_FORMAT,
                COAP_OPTION_BLOCK1,
                COAP_OPTION_SIZE1,
                COAP_OPTION_ECHO,
                COAP_OPTION_REQUEST_TAG,
        };
        static const uint16_t allowed[] = {
                COAP_OPTION_IF_MATCH,
                COAP_OPTION_URI_HOST,
                COAP_OPTION_ETAG,
                COAP_OPTION_IF_NONE_MATCH,
                COAP_OPTION_OBSERVE,
                COAP_OPTION_URI_PORT,
                COAP_OPTION_ACCEPT,
                COAP_OPTION_BLOCK2,
                COAP_OPTION_SIZE2,
                COAP_OPTION_PROXY_URI,
                65535,
        };

        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                TestOption opts[] = {
                        {.number = COAP_OPTION_ACCEPT, .len = 1},
                        {.number = refused[i], .len = 1},
                };
                char mention[32];

                snprintf(mention, sizeof mention, "Option %u cannot", (unsigned) refused[i]);
                check_options(opts, ELEMENTSOF(opts), false, COAPCLIENTD_ERROR_INVALID_OPTION,
                              mention);
        }
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++) {
                TestOption opt = {.number = allowed[i], .value = "\x01\x02", .len = 2};

                check_options(&opt, 1, false, NULL, NULL);
        }
}
END_TEST

static void check_path(const char *path, bool ok) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = request_new();
        RequestArgs a;

        ck_assert_int_ge(sd_bus_message_append(m, "{sv}{sv}", "method", "y", 1, "path", "s", path),
                         0);
        if (!ok) {
                decode_fails(m, &default_config, COAPCLIENTD_ERROR_INVALID_PATH, EINVAL, "Path");
                return;
        }
        decode_ok(m, &default_config, &a);
        ck_assert_str_eq(a.path, path);
}

/* A path of len bytes: segments of seg bytes separated by sep. */
static char *make_path(size_t len, size_t seg, char sep) {
        char *p = malloc(len + 1);

        ck_assert_ptr_nonnull(p);
        for (size_t i = 0; i < len; i++)
                p[i] = (i + 1) % (seg + 1) == 0 ? sep : 'p';
        p[len] = '\0';
        return p;
}

START_TEST(test_path) {
        static const char *const good[] = {"",        "/",  "a",     "/a/b/c",      "a//b",
                                           "a?x=1&y", "?q", "a/b?&", "sensors/temp"};

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                check_path(good[i], true);
}
END_TEST

START_TEST(test_path_limits) {
        _cleanup_free_ char *longest = make_path(REQUEST_PATH_MAX, 255, '/');
        _cleanup_free_ char *too_long = make_path(REQUEST_PATH_MAX + 1, 255, '/');
        _cleanup_free_ char *seg = make_path(255, 255, '/');
        _cleanup_free_ char *big_seg = make_path(256, 256, '/');
        _cleanup_free_ char *separators = make_path(REQUEST_PATH_MAX, 0, '/');
        _cleanup_free_ char *query = NULL, *big_query = NULL;

        check_path(longest, true);
        check_path(too_long, false);
        check_path(seg, true);
        check_path(big_seg, false);
        /* Only separators: as many empty segments as bytes, all skipped. */
        check_path(separators, true);
        ck_assert_int_gt(asprintf(&query, "a?%s&b", seg), 0);
        check_path(query, true);
        ck_assert_int_gt(asprintf(&big_query, "a?%s&b", big_seg), 0);
        check_path(big_query, false);

        /* Past 32 options the check counts them on the heap: a segment too long still fails
         * there, at the end as at the start. */
        for (size_t i = 0; i < 3; i++) {
                _cleanup_free_ char *many = NULL;

                ck_assert_int_gt(asprintf(&many, "%s%s%s",
                                          i == 0 ? big_seg : "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/",
                                          "q/r/s/t/u/v/w/x/y/z/a/b/c/d/e/f/g/h/",
                                          i == 2 ? seg : (i == 1 ? big_seg : "z")),
                                 0);
                check_path(many, i == 2);
        }
}
END_TEST

START_TEST(test_not_a_dict) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        RequestArgs a;

        /* Another signature is a read failure, not a named error: the vtable never lets one in. */
        ck_assert_int_eq(sd_bus_message_new_method_call(bus, &m, COAPCLIENTD_BUS_NAME,
                                                        COAPCLIENTD_CLIENT_PREFIX "/1",
                                                        COAPCLIENTD_CLIENT_IFACE, "Request"),
                         0);
        ck_assert_int_ge(sd_bus_message_append(m, "s", "method"), 0);
        ck_assert_int_ge(sd_bus_message_seal(m, 1, 0), 0);
        ck_assert_int_ge(sd_bus_message_rewind(m, true), 0);
        ck_assert_int_lt(bus_request_parse(m, &default_config, &a, &error), 0);
        ck_assert(!sd_bus_error_is_set(&error));
}
END_TEST

static Suite *request_args_suite(void) {
        Suite *s = suite_create("request_args");
        TCase *tc = tcase_create("decode");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_every_key);
        tcase_add_test(tc, test_observe_option_given);
        tcase_add_test(tc, test_observe_false);
        tcase_add_test(tc, test_methods);
        tcase_add_test(tc, test_method_missing);
        tcase_add_test(tc, test_method_missing_with_others);
        tcase_add_test(tc, test_unknown_keys);
        tcase_add_test(tc, test_unknown_key_before_missing_method);
        tcase_add_test(tc, test_duplicate_keys);
        tcase_add_test(tc, test_wrong_types);
        tcase_add_test(tc, test_options_wrong_element_type);
        tcase_add_test(tc, test_parameter_ranges);
        tcase_add_test(tc, test_block_sizes);
        tcase_add_test(tc, test_early_block2);
        tcase_add_test(tc, test_payload_limit);
        tcase_add_test(tc, test_payload_default_limit);
        tcase_add_test(tc, test_options_count);
        tcase_add_test(tc, test_options_value_length);
        tcase_add_test(tc, test_options_numbers);
        tcase_add_test(tc, test_path);
        tcase_add_test(tc, test_path_limits);
        tcase_add_test(tc, test_not_a_dict);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(request_args_suite)
