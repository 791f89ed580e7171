/* SPDX-License-Identifier: MIT */
#include "bus-helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal/bus-api.h"
#include "net-helper.h"

#define CALL_TIMEOUT_USEC (10 * USEC_PER_SEC)

uint64_t test_now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

void test_response_done(TestResponse *r) {
        free(r->path);
        free(r->destination);
        free(r->payload);
        free(r->source);
        free(r->error_message);
        *r = (TestResponse){};
}

void test_responses_free(TestResponse *r, size_t n) {
        for (size_t i = 0; i < n; i++)
                test_response_done(&r[i]);
        free(r);
}

void test_strv_free(char **l) {
        if (!l)
                return;
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
}

static int read_uint_variant(sd_bus_message *m, uint64_t *ret) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        switch (contents[0]) {
        case 'y': {
                uint8_t v;
                r = sd_bus_message_read(m, "v", "y", &v);
                *ret = v;
                return r;
        }
        case 'q': {
                uint16_t v;
                r = sd_bus_message_read(m, "v", "q", &v);
                *ret = v;
                return r;
        }
        case 'u': {
                uint32_t v;
                r = sd_bus_message_read(m, "v", "u", &v);
                *ret = v;
                return r;
        }
        case 't': {
                uint64_t v;
                r = sd_bus_message_read(m, "v", "t", &v);
                *ret = v;
                return r;
        }
        case 'i': {
                int32_t v;
                r = sd_bus_message_read(m, "v", "i", &v);
                *ret = (uint64_t) v;
                return r;
        }
        default:
                return -EBADMSG;
        }
}

static int parse_details(sd_bus_message *m, TestResponse *resp) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, "observe") == 0) {
                        r = read_uint_variant(m, &resp->observe);
                        if (r < 0)
                                return r;
                        resp->has_observe = true;
                } else if (strcmp(key, "source") == 0) {
                        const char *s;

                        r = sd_bus_message_read(m, "v", "s", &s);
                        if (r < 0)
                                return r;
                        free(resp->source);
                        resp->source = strdup(s);
                        if (!resp->source)
                                return -ENOMEM;
                } else if (strcmp(key, "error-message") == 0 && !resp->error_message) {
                        const char *s;

                        r = sd_bus_message_read(m, "v", "s", &s);
                        if (r < 0)
                                return r;
                        resp->error_message = strdup(s);
                        if (!resp->error_message)
                                return -ENOMEM;
                } else {
                        r = sd_bus_message_skip(m, "v");
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int on_response(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        TestBus *b = userdata;
        TestResponse resp = {};
        const void *payload;
        size_t len;
        int last_block, final;
        int r;

        (void) error;
        resp.received_usec = test_now_usec();
        r = sd_bus_message_read(m, "tit", &resp.id, &resp.result, &resp.offset);
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(m, 'y', &payload, &len);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "bb", &last_block, &final);
        if (r < 0)
                return r;
        resp.last_block = last_block;
        resp.final = final;
        r = parse_details(m, &resp);
        if (r < 0)
                return r;
        resp.path = strdup(sd_bus_message_get_path(m));
        resp.destination = strdup(sd_bus_message_get_destination(m) ?: "");
        resp.payload = malloc(len + 1); /* NUL-terminated for string checks */
        if (!resp.path || !resp.destination || !resp.payload) {
                test_response_done(&resp);
                return -ENOMEM;
        }
        memcpy(resp.payload, payload, len);
        resp.payload[len] = 0;
        resp.payload_len = len;

        if (b->n_queue == b->n_allocated) {
                size_t n = b->n_allocated ? b->n_allocated * 2 : 64;
                TestResponse *q = realloc(b->queue, n * sizeof(*q));

                if (!q) {
                        test_response_done(&resp);
                        return -ENOMEM;
                }
                b->queue = q;
                b->n_allocated = n;
        }
        b->queue[b->n_queue++] = resp;
        return 0;
}

int test_bus_new(TestBus **ret) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        const char *address = getenv(COAPCLIENTD_BUS_ADDRESS_ENV);
        int r;

        if (!address)
                return -ENXIO;
        r = bus_api_register_errors();
        if (r < 0)
                return r;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        r = sd_bus_new(&b->bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(b->bus, address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(b->bus, 1);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(b->bus, 1);
        if (r < 0)
                return r;
        r = sd_bus_start(b->bus);
        if (r < 0)
                return r;
        r = sd_bus_get_unique_name(b->bus, &b->unique_name);
        if (r < 0)
                return r;
        r = sd_bus_add_match(b->bus, &b->match,
                             "type='signal',interface='" COAPCLIENTD_CLIENT_IFACE
                             "',member='Response'",
                             on_response, b);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

TestBus *test_bus_free(TestBus *b) {
        if (!b)
                return NULL;
        sd_bus_slot_unref(b->match);
        sd_bus_flush_close_unref(b->bus);
        test_responses_free(b->queue, b->n_queue);
        free(b);
        return NULL;
}

/* Dispatches until deadline or until done(b, userdata) holds. */
static int run_until(TestBus *b, uint64_t deadline, bool (*done)(TestBus *, const void *),
                     const void *userdata) {
        for (;;) {
                uint64_t now;
                int r;

                r = sd_bus_process(b->bus, NULL);
                if (r < 0)
                        return r;
                if (done && done(b, userdata))
                        return 0;
                if (r > 0)
                        continue;
                now = test_now_usec();
                if (now >= deadline)
                        return done ? -ETIMEDOUT : 0;
                r = sd_bus_wait(b->bus, deadline - now);
                if (r < 0)
                        return r;
        }
}

int test_bus_run(TestBus *b, uint64_t timeout_usec) {
        return run_until(b, test_now_usec() + timeout_usec, NULL, NULL);
}

static bool has_queued(TestBus *b, const void *userdata) {
        return test_bus_count_queued(b, *(const uint64_t *) userdata) > 0;
}

static bool has_final(TestBus *b, const void *userdata) {
        uint64_t id = *(const uint64_t *) userdata;

        for (size_t i = 0; i < b->n_queue; i++)
                if (b->queue[i].id == id && b->queue[i].final)
                        return true;
        return false;
}

size_t test_bus_count_queued(TestBus *b, uint64_t id) {
        size_t n = 0;

        for (size_t i = 0; i < b->n_queue; i++)
                if (id == UINT64_MAX || b->queue[i].id == id)
                        n++;
        return n;
}

int test_bus_next_response(TestBus *b, uint64_t id, uint64_t timeout_usec, TestResponse *ret) {
        int r;

        r = run_until(b, test_now_usec() + timeout_usec, has_queued, &id);
        if (r < 0)
                return r;
        for (size_t i = 0; i < b->n_queue; i++)
                if (b->queue[i].id == id) {
                        *ret = b->queue[i];
                        memmove(b->queue + i, b->queue + i + 1,
                                (b->n_queue - i - 1) * sizeof(*b->queue));
                        b->n_queue--;
                        return 0;
                }
        return -ESRCH;
}

int test_bus_collect(TestBus *b, uint64_t id, uint64_t timeout_usec, TestResponse **ret,
                     size_t *ret_n) {
        TestResponse *out;
        size_t n = 0, k = 0;
        int r;

        r = run_until(b, test_now_usec() + timeout_usec, has_final, &id);
        if (r < 0)
                return r;
        n = test_bus_count_queued(b, id);
        out = calloc(n, sizeof(*out));
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < b->n_queue; i++) {
                if (b->queue[i].id == id)
                        out[k++] = b->queue[i];
                else
                        b->queue[i - k] = b->queue[i];
        }
        b->n_queue -= k;
        *ret = out;
        *ret_n = n;
        return 0;
}

int test_bus_create_client(TestBus *b, const char *name, char **ret_path, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = sd_bus_call_method(b->bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                               COAPCLIENTD_MANAGER_IFACE, "CreateClient", error, &reply, "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        *ret_path = strdup(path);
        return *ret_path ? 0 : -ENOMEM;
}

int test_bus_list_clients(TestBus *b, char ***ret_paths, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(b->bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                               COAPCLIENTD_MANAGER_IFACE, "ListClients", error, &reply, NULL);
        if (r < 0)
                return r;
        return sd_bus_message_read_strv(reply, ret_paths);
}

static int append_extra(sd_bus_message *m, const TestExtra *e) {
        char sig[2] = {e->type, 0};
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", e->key);
        if (r < 0)
                return r;
        switch (e->type) {
        case 'y':
                r = sd_bus_message_append(m, "v", sig, (uint8_t) e->u);
                break;
        case 'q':
                r = sd_bus_message_append(m, "v", sig, (uint16_t) e->u);
                break;
        case 'u':
                r = sd_bus_message_append(m, "v", sig, (uint32_t) e->u);
                break;
        case 't':
                r = sd_bus_message_append(m, "v", sig, e->u);
                break;
        case 'b':
                r = sd_bus_message_append(m, "v", sig, (int) !!e->u);
                break;
        case 's':
                r = sd_bus_message_append(m, "v", sig, e->s);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int append_bytes(sd_bus_message *m, const char *key, const uint8_t *p, size_t len) {
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", key);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'v', "ay");
        if (r < 0)
                return r;
        r = sd_bus_message_append_array(m, 'y', p, len);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int append_options(sd_bus_message *m, const TestOption *o, size_t n) {
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", "options");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'v', "a(qay)");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "(qay)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = sd_bus_message_open_container(m, 'r', "qay");
                if (r < 0)
                        return r;
                r = sd_bus_message_append(m, "q", o[i].number);
                if (r < 0)
                        return r;
                r = sd_bus_message_append_array(m, 'y', o[i].value, o[i].len);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int append_request(sd_bus_message *m, const TestRequest *req) {
        const TestExtra fields[] = {
                {"method", 'y', req->method, NULL},
                {"confirmable", 'b', !req->non, NULL},
                {"path", 's', 0, req->path},
                {"observe", 'b', req->observe, NULL},
                {"ack-timeout", 'u', req->ack_timeout, NULL},
                {"ack-random-percent", 'q', req->ack_random_percent, NULL},
                {"backoff-percent", 'q', req->backoff_percent, NULL},
                {"max-retransmission", 'y', req->max_retransmission, NULL},
                {"block-size", 'q', req->block_size, NULL},
        };
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                /* "confirmable" is always sent; the rest only when set */
                bool unset = fields[i].type == 's' ? !fields[i].s : fields[i].u == 0;

                if (unset && i != 1)
                        continue;
                r = append_extra(m, &fields[i]);
                if (r < 0)
                        return r;
        }
        if (req->payload) {
                r = append_bytes(m, "payload", req->payload, req->payload_len);
                if (r < 0)
                        return r;
        }
        if (req->n_options > 0) {
                r = append_options(m, req->options, req->n_options);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < req->n_extra; i++) {
                r = append_extra(m, &req->extra[i]);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

int test_bus_request(TestBus *b, const char *client, int fd, const char *destination,
                     const TestRequest *req, uint64_t *ret_id, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        uint64_t id;
        int r;

        r = sd_bus_message_new_method_call(b->bus, &m, COAPCLIENTD_BUS_NAME, client,
                                           COAPCLIENTD_CLIENT_IFACE, "Request");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "hs", fd, destination);
        if (r < 0)
                return r;
        r = append_request(m, req);
        if (r < 0)
                return r;
        r = sd_bus_call(b->bus, m, CALL_TIMEOUT_USEC, error, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "t", &id);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = id;
        return 0;
}

int test_bus_call_id(TestBus *b, const char *client, const char *member, uint64_t id,
                     sd_bus_error *error) {
        return sd_bus_call_method(b->bus, COAPCLIENTD_BUS_NAME, client, COAPCLIENTD_CLIENT_IFACE,
                                  member, error, NULL, "t", id);
}

int test_bus_call_void(TestBus *b, const char *client, const char *member, sd_bus_error *error) {
        return sd_bus_call_method(b->bus, COAPCLIENTD_BUS_NAME, client, COAPCLIENTD_CLIENT_IFACE,
                                  member, error, NULL, NULL);
}

int test_bus_get_manager_u32(TestBus *b, const char *property, uint32_t *ret) {
        return sd_bus_get_property_trivial(b->bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                                           COAPCLIENTD_MANAGER_IFACE, property, NULL, 'u', ret);
}

int test_bus_get_manager_u64(TestBus *b, const char *property, uint64_t *ret) {
        return sd_bus_get_property_trivial(b->bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                                           COAPCLIENTD_MANAGER_IFACE, property, NULL, 't', ret);
}

uint32_t test_bus_await_manager_u32(TestBus *b, const char *property, uint32_t expected,
                                    uint64_t timeout_usec) {
        uint64_t deadline = test_now_usec() + timeout_usec;
        uint32_t v = UINT32_MAX;

        while (test_bus_get_manager_u32(b, property, &v) >= 0 && v != expected &&
               test_now_usec() < deadline)
                (void) test_bus_run(b, 10 * USEC_PER_MSEC);
        return v;
}

int test_bus_await_daemon_fds(TestBus *b, int expected, uint64_t timeout_usec) {
        uint64_t deadline = test_now_usec() + timeout_usec;
        int n;

        while ((n = test_daemon_fd_count()) >= 0 && n != expected && test_now_usec() < deadline)
                (void) test_bus_run(b, 10 * USEC_PER_MSEC);
        return n;
}

int test_bus_get_client_string(TestBus *b, const char *client, const char *property, char **ret,
                               sd_bus_error *error) {
        return sd_bus_get_property_string(b->bus, COAPCLIENTD_BUS_NAME, client,
                                          COAPCLIENTD_CLIENT_IFACE, property, error, ret);
}

int test_bus_introspect(TestBus *b, const char *path, char **ret_xml, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *xml;
        int r;

        r = sd_bus_call_method(b->bus, COAPCLIENTD_BUS_NAME, path,
                               "org.freedesktop.DBus.Introspectable", "Introspect", error, &reply,
                               NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "s", &xml);
        if (r < 0)
                return r;
        *ret_xml = strdup(xml);
        return *ret_xml ? 0 : -ENOMEM;
}

#define PRIVATE_DAEMON_START_USEC (30 * USEC_PER_SEC) /* valgrind starts slowly */

/* Reads one line (the bus address dbus-daemon prints) within the start timeout. */
static int read_line(int fd, char *buf, size_t size) {
        uint64_t deadline = test_now_usec() + PRIVATE_DAEMON_START_USEC;
        size_t n = 0;

        while (n + 1 < size) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                uint64_t now = test_now_usec();
                ssize_t k;

                if (now >= deadline)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) ((deadline - now) / USEC_PER_MSEC) + 1) < 0)
                        return -errno;
                k = read(fd, buf + n, 1);
                if (k < 0 && errno != EINTR && errno != EAGAIN)
                        return -errno;
                if (k == 0)
                        return -EPIPE;
                if (k > 0 && buf[n++] == '\n') {
                        buf[n - 1] = '\0';
                        return 0;
                }
        }
        return -ENOBUFS;
}

static int write_config(const char *config, char *path, size_t size) {
        _cleanup_close_ int fd = -EBADF;
        size_t len = strlen(config);

        snprintf(path, size, "/tmp/coapclientd-test-conf.XXXXXX");
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, config, len) != (ssize_t) len)
                return errno > 0 ? -errno : -EIO;
        return 0;
}

static int await_bus_name(const char *address, pid_t pid) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        uint64_t deadline = test_now_usec() + PRIVATE_DAEMON_START_USEC;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        while (sd_bus_get_name_creds(bus, COAPCLIENTD_BUS_NAME, 0, NULL) < 0) {
                if (kill(pid, 0) < 0 || waitpid(pid, NULL, WNOHANG) == pid)
                        return -ESRCH;
                if (test_now_usec() >= deadline)
                        return -ETIMEDOUT;
                (void) usleep(20 * 1000);
        }
        return 0;
}

/* In a forked child: stdout and stderr to a log in $TEST_TMPDIR (kept when a test fails). */
static void redirect_output(const char *name) {
        const char *tmpdir = getenv("TEST_TMPDIR");
        char path[4096];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", tmpdir ?: "/tmp", name);
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        (void) dup2(fd, STDOUT_FILENO);
        (void) dup2(fd, STDERR_FILENO);
}

int test_private_daemon_start(const char *config, TestPrivateDaemon *ret) {
        const char *bus_conf = getenv("TEST_BUS_CONF"), *bin = getenv("COAPCLIENTD_BIN");
        char address[512], pid_str[32];
        TestPrivateDaemon d = {.bus_pid = -1, .pid = -1};
        int p[2], r;

        if (!bus_conf || !bin)
                return -ENXIO;
        r = write_config(config, d.config_path, sizeof(d.config_path));
        if (r < 0)
                return r;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        d.bus_pid = fork();
        if (d.bus_pid < 0) {
                close(p[0]);
                close(p[1]);
                return -errno;
        }
        if (d.bus_pid == 0) {
                char conf_arg[4096], print_arg[64];
                int fd = dup(p[1]); /* without O_CLOEXEC */

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                redirect_output("private-bus.log");
                snprintf(conf_arg, sizeof(conf_arg), "--config-file=%s", bus_conf);
                snprintf(print_arg, sizeof(print_arg), "--print-address=%d", fd);
                execlp("dbus-daemon", "dbus-daemon", "--nofork", conf_arg, print_arg, NULL);
                _exit(127);
        }
        close(p[1]);
        r = read_line(p[0], address, sizeof(address));
        close(p[0]);
        if (r < 0) {
                (void) test_private_daemon_stop(&d);
                return r;
        }

        d.pid = fork();
        if (d.pid < 0) {
                r = -errno;
                (void) test_private_daemon_stop(&d);
                return r;
        }
        if (d.pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                redirect_output("private-daemon.log");
                /* Through the shell for $COAPCLIENTD_WRAPPER (e.g. valgrind), as test-env.sh. */
                execl("/bin/sh", "sh", "-c",
                      "exec ${COAPCLIENTD_WRAPPER:-} \"$0\" --bus-address=\"$1\" "
                      "--config=\"$2\" --log-level=debug",
                      bin, address, d.config_path, NULL);
                _exit(127);
        }
        r = await_bus_name(address, d.pid);
        if (r < 0) {
                (void) test_private_daemon_stop(&d);
                return r;
        }
        snprintf(pid_str, sizeof(pid_str), "%d", (int) d.pid);
        if (setenv(COAPCLIENTD_BUS_ADDRESS_ENV, address, 1) < 0 ||
            setenv("COAPCLIENTD_PID", pid_str, 1) < 0) {
                r = -errno;
                (void) test_private_daemon_stop(&d);
                return r;
        }
        *ret = d;
        return 0;
}

static int stop_child(pid_t pid) {
        int status;

        if (pid <= 0)
                return 0;
        (void) kill(pid, SIGTERM);
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int test_private_daemon_stop(TestPrivateDaemon *d) {
        int r = stop_child(d->pid);

        (void) stop_child(d->bus_pid);
        if (d->config_path[0])
                (void) unlink(d->config_path);
        *d = (TestPrivateDaemon){.bus_pid = -1, .pid = -1};
        return r;
}
