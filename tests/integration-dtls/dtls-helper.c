/* SPDX-License-Identifier: MIT */
#include "dtls-helper.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal/bus-api.h"
#include "net-helper.h"

#define CALL_TIMEOUT_USEC         (10 * USEC_PER_SEC)
#define SERVER_START_TIMEOUT_USEC (5 * USEC_PER_SEC)

int test_secret_memfd(const void *data, size_t len, bool seal) {
        _cleanup_close_ int fd = -EBADF;
        const uint8_t *p = data;

        fd = memfd_create("coapclientd-test-secret", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < len;) {
                ssize_t n = write(fd, p + off, len - off);

                if (n < 0)
                        return -errno;
                off += (size_t) n;
        }
        if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static int append_bytes(sd_bus_message *m, const char *key, const void *data, size_t len) {
        int r;

        r = sd_bus_message_open_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, SD_BUS_TYPE_VARIANT, "ay");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', data, len);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_creds(sd_bus_message *m, const TestCreds *c) {
        int r;

        r = sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r >= 0 && c->type)
                r = sd_bus_message_append(m, "{sv}", "type", "s", c->type);
        if (r >= 0 && c->psk_identity)
                r = sd_bus_message_append(m, "{sv}", "psk-identity", "s", c->psk_identity);
        if (r >= 0 && c->ca)
                r = append_bytes(m, "ca", c->ca, c->ca_len);
        if (r >= 0 && c->server_name)
                r = sd_bus_message_append(m, "{sv}", "server-name", "s", c->server_name);
        if (r >= 0 && c->certificate)
                r = append_bytes(m, "certificate", c->certificate, c->certificate_len);
        if (r >= 0 && c->server_public_key)
                r = append_bytes(m, "server-public-key", c->server_public_key,
                                 c->server_public_key_len);
        if (r >= 0 && c->insecure)
                r = sd_bus_message_append(m, "{sv}", "insecure", "b", 1);
        if (r >= 0 && c->handshake_timeout_ms)
                r = sd_bus_message_append(m, "{sv}", "handshake-timeout", "u",
                                          c->handshake_timeout_ms);
        if (r >= 0 && c->extra_key)
                r = sd_bus_message_append(m, "{sv}", c->extra_key, "s", "x");
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int test_set_credentials(TestBus *b, const char *client, const TestCreds *c, int secret_fd,
                         sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int r;

        r = sd_bus_message_new_method_call(b->bus, &m, COAPCLIENTD_BUS_NAME, client,
                                           COAPCLIENTD_CLIENT_IFACE, "SetCredentials");
        if (r < 0)
                return r;
        r = append_creds(m, c);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "h", secret_fd);
        if (r < 0)
                return r;
        return sd_bus_call(b->bus, m, CALL_TIMEOUT_USEC, error, &reply);
}

int test_set_psk(TestBus *b, const char *client, const char *identity, const char *key,
                 uint32_t handshake_timeout_ms, sd_bus_error *error) {
        _cleanup_close_ int fd = test_secret_memfd(key, strlen(key), true);

        if (fd < 0)
                return fd;
        return test_set_credentials(b, client,
                                    &(TestCreds){.type = "psk",
                                                 .psk_identity = identity,
                                                 .handshake_timeout_ms = handshake_timeout_ms},
                                    fd, error);
}

int test_get_client_bool(TestBus *b, const char *client, const char *property, bool *ret) {
        int v = 0, r;

        r = sd_bus_get_property_trivial(b->bus, COAPCLIENTD_BUS_NAME, client,
                                        COAPCLIENTD_CLIENT_IFACE, property, NULL, 'b', &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

static pid_t spawn(const char *const *args, uint16_t port) {
        const char *argv[32] = {"coap-server-gnutls", "-A", "127.0.0.1", "-p"};
        char port_str[8];
        size_t n = 4;
        pid_t parent = getpid(), pid;

        snprintf(port_str, sizeof port_str, "%u", port);
        argv[n++] = port_str;
        for (; args && *args && n + 1 < ELEMENTSOF(argv); args++)
                argv[n++] = *args;
        argv[n] = NULL;
        pid = fork();
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(EXIT_FAILURE);
                if (null >= 0) {
                        (void) dup2(null, STDOUT_FILENO);
                        (void) dup2(null, STDERR_FILENO);
                }
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        return pid;
}

/* Whether something holds UDP port on 127.0.0.1: then we cannot bind it. */
static bool udp_port_held(uint16_t port) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sin = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };

        return fd >= 0 && bind(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0;
}

int test_dtls_server_spawn(const char *const *args, uint16_t port, uint16_t *ret_port,
                           pid_t *ret_pid) {
        for (int attempt = 0; attempt < 20; attempt++) {
                /* Below the ephemeral range (32768 on), and apart from test-env.sh's peers. */
                uint16_t p = port ? port : (uint16_t) (26400 + ((unsigned) rand() % 3150) * 2);
                pid_t pid = spawn(args, p);
                int r;

                if (pid < 0)
                        return -errno;
                r = test_coap_ping(AF_INET, "127.0.0.1", p, SERVER_START_TIMEOUT_USEC);
                /* Still alive: it is the one answering, not another process on that port; and it
                 * holds the DTLS port too (coap-server carries on without it when that is
                 * taken). */
                if (r >= 0 && waitpid(pid, NULL, WNOHANG) == 0 &&
                    udp_port_held((uint16_t) (p + 1))) {
                        *ret_port = p;
                        *ret_pid = pid;
                        return 0;
                }
                test_child_stop(pid);
                if (port)
                        return r < 0 ? r : -EADDRINUSE;
        }
        return -EADDRINUSE;
}

int test_write_tmp_file(const char *name, const void *data, size_t len, char **ret_path) {
        const char *dir = getenv("TEST_TMPDIR");
        _cleanup_free_ char *path = NULL;
        FILE *f;
        bool ok;

        if (asprintf(&path, "%s/%s", dir ?: "/tmp", name) < 0)
                return -ENOMEM;
        f = fopen(path, "we");
        if (!f)
                return -errno;
        ok = fwrite(data, 1, len, f) == len;
        ok = fclose(f) == 0 && ok;
        if (!ok)
                return -EIO;
        *ret_path = TAKE_PTR(path);
        return 0;
}

int test_request_result_message(TestBus *b, const char *client, int fd, const TestRequest *req,
                                uint64_t timeout_usec, int32_t *ret_result, uint64_t *ret_usec,
                                char **ret_message) {
        uint64_t start = test_now_usec(), id;
        TestResponse *resp = NULL;
        size_t n;
        int r;

        r = test_bus_request(b, client, fd, "", req, &id, NULL);
        if (r < 0)
                return r;
        r = test_bus_collect(b, id, timeout_usec, &resp, &n);
        if (r < 0)
                return r;
        *ret_result = resp[n - 1].result;
        if (ret_usec)
                *ret_usec = resp[n - 1].received_usec - start;
        if (ret_message)
                *ret_message = TAKE_PTR(resp[n - 1].error_message);
        test_responses_free(resp, n);
        return 0;
}

int test_request_result(TestBus *b, const char *client, int fd, const TestRequest *req,
                        uint64_t timeout_usec, int32_t *ret_result, uint64_t *ret_usec) {
        return test_request_result_message(b, client, fd, req, timeout_usec, ret_result, ret_usec,
                                           NULL);
}
