/* SPDX-License-Identifier: MIT */
/* Builds the a{sv} dictionary of a Request() call from the input and decodes it as the daemon
 * does. Keys come from the known list or are junk; each value has the key's type or another one
 * (nested containers and variants included); the values themselves are input bytes. A refused
 * request must carry a named error whose errno is the return value; an accepted one must be
 * within every limit docs/dbus-api.md promises. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus/bus-request.h"
#include "coap-option.h"
#include "fuzz.h"
#include "internal/bus-api.h"
#include "request-args-check.h"

/* Array elements and value bytes one input may generate, to keep each run fast. */
#define FUZZ_BUDGET    20000
#define FUZZ_MAX_DEPTH 4

static const struct {
        const char *key;
        const char *signature;
} request_keys[] = {
        {"method", "y"},          {"confirmable", "b"},        {"path", "s"},
        {"content-format", "q"},  {"payload", "ay"},           {"options", "a(qay)"},
        {"observe", "b"},         {"ack-timeout", "u"},        {"ack-random-percent", "q"},
        {"backoff-percent", "q"}, {"max-retransmission", "y"}, {"block-size", "q"},
};

/* Other types a value may have: near misses of the right ones and nested containers. */
static const char *const other_signatures[] = {
        "y",       "b",       "n",     "q",     "i",      "u",  "x",      "t",      "d",
        "s",       "o",       "g",     "ay",    "aq",     "as", "a(qay)", "a(uay)", "a(qs)",
        "a(qayy)", "aa(qay)", "(qay)", "a{sv}", "a{qay}", "v",  "av",     "a(qv)",
};

static const uint16_t interesting_options[] = {
        0, 1, 4, 5, 6, 11, 12, 15, 17, 23, 27, 28, 35, 60, 252, 258, 292, 65535,
};

typedef struct Input {
        const uint8_t *p;
        size_t n;
        size_t budget;
} Input;

static uint8_t take8(Input *in) {
        uint8_t v;

        if (in->n == 0)
                return 0;
        v = in->p[0];
        in->p++;
        in->n--;
        return v;
}

/* Big-endian; each byte taken in its own statement, in order. */
static uint16_t take16(Input *in) {
        uint16_t hi = take8(in);

        return (uint16_t) (hi << 8 | take8(in));
}

static uint32_t take32(Input *in) {
        uint32_t hi = take16(in);

        return hi << 16 | take16(in);
}

static uint64_t take64(Input *in) {
        uint64_t hi = take32(in);

        return hi << 32 | take32(in);
}

static size_t spend(Input *in, size_t want) {
        size_t n = want < in->budget ? want : in->budget;

        in->budget -= n;
        return n;
}

/* Bytes of a string value: path-like characters, so that paths have segments and queries.
 * Past the input, a segment character, so that short inputs still make long paths. */
static void fill_text(Input *in, char *s, size_t len) {
        static const char alphabet[] = "abc/?&=x/%.-_~09";

        for (size_t i = 0; i < len; i++)
                s[i] = in->n > 0 ? alphabet[take8(in) % (sizeof alphabet - 1)] : 'a';
        s[len] = '\0';
}

/* Short (0..127) or, with the top bit, long (up to 2047). */
static size_t take_len(Input *in) {
        uint8_t b = take8(in);

        if (b & 0x80) {
                size_t hi = b & 0x7f;

                return (hi << 8 | take8(in)) % 2048;
        }
        return b;
}

static int append_string(sd_bus_message *m, Input *in) {
        size_t len = spend(in, take_len(in));
        char *s = malloc(len + 1);
        int r;

        if (!s)
                return -ENOMEM;
        fill_text(in, s, len);
        r = sd_bus_message_append_basic(m, SD_BUS_TYPE_STRING, s);
        free(s);
        return r;
}

static int append_bytes(sd_bus_message *m, Input *in) {
        size_t len = spend(in, take_len(in));
        uint8_t *b = malloc(len > 0 ? len : 1);
        int r;

        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++)
                b[i] = take8(in);
        r = sd_bus_message_append_array(m, 'y', b, len);
        free(b);
        return r;
}

/* Length of the single complete type at the start of sig. */
static size_t complete_type_len(const char *sig) {
        size_t i = 0, depth = 0;

        while (sig[i] == 'a')
                i++;
        if (sig[i] != '(' && sig[i] != '{')
                return i + 1;
        do {
                if (sig[i] == '(' || sig[i] == '{')
                        depth++;
                else if (sig[i] == ')' || sig[i] == '}')
                        depth--;
                i++;
        } while (depth > 0);
        return i;
}

static int append_value(sd_bus_message *m, const char *sig, Input *in, unsigned depth);

static int append_container_items(sd_bus_message *m, const char *items, size_t len, Input *in,
                                  unsigned depth) {
        for (size_t i = 0; i < len;) {
                size_t n = complete_type_len(items + i);
                char *one = strndup(items + i, n);
                int r;

                if (!one)
                        return -ENOMEM;
                r = append_value(m, one, in, depth);
                free(one);
                if (r < 0)
                        return r;
                i += n;
        }
        return 0;
}

static int append_option_number(sd_bus_message *m, Input *in) {
        uint8_t b = take8(in);
        uint16_t number = b & 1 ? interesting_options[(b >> 1) % ELEMENTSOF(interesting_options)]
                                : take16(in);

        return sd_bus_message_append_basic(m, SD_BUS_TYPE_UINT16, &number);
}

/* Appends one value of the single complete type sig. */
static int append_value(sd_bus_message *m, const char *sig, Input *in, unsigned depth) {
        union {
                uint8_t y;
                int b;
                uint16_t q;
                uint32_t u;
                uint64_t t;
                double d;
        } v;
        int r;

        switch (sig[0]) {
        case 'y':
                v.y = take8(in);
                return sd_bus_message_append_basic(m, 'y', &v);
        case 'b':
                v.b = take8(in) & 1;
                return sd_bus_message_append_basic(m, 'b', &v);
        case 'n':
        case 'q':
                v.q = take16(in);
                return sd_bus_message_append_basic(m, sig[0], &v);
        case 'i':
        case 'u':
                v.u = take32(in);
                return sd_bus_message_append_basic(m, sig[0], &v);
        case 'x':
        case 't':
                v.t = take64(in);
                return sd_bus_message_append_basic(m, sig[0], &v);
        case 'd':
                v.d = (double) take32(in) / 7.0;
                return sd_bus_message_append_basic(m, 'd', &v);
        case 's':
                return append_string(m, in);
        case 'o':
                return sd_bus_message_append_basic(m, 'o', take8(in) & 1 ? "/a/b" : "/");
        case 'g':
                return sd_bus_message_append_basic(m, 'g', take8(in) & 1 ? "a{sv}" : "");
        case 'v': {
                const char *inner =
                        depth < FUZZ_MAX_DEPTH
                                ? other_signatures[take8(in) % ELEMENTSOF(other_signatures)]
                                : "y";

                r = sd_bus_message_open_container(m, 'v', inner);
                if (r < 0)
                        return r;
                r = append_value(m, inner, in, depth + 1);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(m);
        }
        case '(':
        case '{': {
                size_t len = complete_type_len(sig);
                char *items = strndup(sig + 1, len - 2);

                if (!items)
                        return -ENOMEM;
                r = sd_bus_message_open_container(m, sig[0] == '(' ? 'r' : 'e', items);
                if (r >= 0 && strcmp(items, "qay") == 0 && sig[0] == '(') {
                        /* An option: numbers the daemon cares about more often than not. */
                        r = append_option_number(m, in);
                        if (r >= 0)
                                r = append_value(m, "ay", in, depth + 1);
                } else if (r >= 0)
                        r = append_container_items(m, items, strlen(items), in, depth + 1);
                free(items);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(m);
        }
        case 'a': {
                size_t count;

                if (strcmp(sig, "ay") == 0)
                        return append_bytes(m, in);
                /* Enough elements to pass the option limit of 16, few beyond. */
                count = depth < FUZZ_MAX_DEPTH ? spend(in, take8(in) % 20) : 0;
                r = sd_bus_message_open_container(m, 'a', sig + 1);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < count; i++) {
                        r = append_value(m, sig + 1, in, depth + 1);
                        if (r < 0)
                                return r;
                }
                return sd_bus_message_close_container(m);
        }
        default:
                abort(); /* a type missing from this switch */
        }
}

static int append_entry(sd_bus_message *m, Input *in) {
        uint8_t k = take8(in), t = take8(in);
        const char *key, *sig;
        char junk[32];
        size_t junk_len;
        int r;

        if (k % 16 < ELEMENTSOF(request_keys)) {
                key = request_keys[k % 16].key;
                /* Mostly the right type, so that values get read. */
                sig = t < 192 ? request_keys[k % 16].signature
                              : other_signatures[t % ELEMENTSOF(other_signatures)];
        } else {
                junk_len = take8(in) % sizeof junk;
                fill_text(in, junk, junk_len);
                key = junk;
                sig = other_signatures[t % ELEMENTSOF(other_signatures)];
        }

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(m, 's', key);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'v', sig);
        if (r < 0)
                return r;
        r = append_value(m, sig, in, 1);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static sd_bus *bus;
static int peer_fd = -EBADF;

/* sd-bus builds messages only on an open bus: one over a socketpair nobody reads. */
static sd_bus *get_bus(void) {
        int sv[2];

        if (bus)
                return bus;
        check(bus_api_register_errors() >= 0);
        check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        check(sd_bus_new(&bus) >= 0);
        check(sd_bus_set_fd(bus, sv[0], sv[0]) >= 0);
        check(sd_bus_start(bus) >= 0);
        peer_fd = sv[1];
        return bus;
}

__attribute__((destructor)) static void free_bus(void) {
        bus = sd_bus_close_unref(bus);
        peer_fd = safe_close(peer_fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        ManagerConfig config = MANAGER_CONFIG_DEFAULT;
        Input in = {.p = data, .n = size, .budget = FUZZ_BUDGET};
        unsigned n_entries;
        RequestArgs a;
        int r;

        config.limits.max_payload_bytes = FUZZ_MAX_PAYLOAD;
        check(sd_bus_message_new_method_call(get_bus(), &m, COAPCLIENTD_BUS_NAME,
                                             COAPCLIENTD_CLIENT_PREFIX "/1",
                                             COAPCLIENTD_CLIENT_IFACE, "Request") >= 0);
        check(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        n_entries = take8(&in) % 24;
        for (unsigned i = 0; i < n_entries; i++)
                if (append_entry(m, &in) < 0)
                        return 0; /* sd-bus refused to build it: nothing to decode */
        check(sd_bus_message_close_container(m) >= 0);
        check(sd_bus_message_seal(m, 1, 0) >= 0);
        check(sd_bus_message_rewind(m, true) >= 0);

        r = bus_request_parse(m, &config, &a, &error);
        if (r >= 0) {
                check(r == 0 && !sd_bus_error_is_set(&error));
                request_args_check_accepted(&a);
        } else if (r != -ENOMEM)
                /* The message is a well-formed a{sv}: every refusal is one of ours, by name. */
                request_args_check_refused(r, &error);
        return 0;
}
