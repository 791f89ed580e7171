/* SPDX-License-Identifier: MIT */
#include "hostile-util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bus-helper.h"
#include "internal/bus-api.h"
#include "internal/macro.h"
#include "net-helper.h"

static const char *const users[HOSTILE_N_USERS] = {"coapt-a", "coapt-b", "coapt-c", "coapt-d",
                                                   "coapt-e"};

const char *hostile_user(unsigned i) {
        return users[i % HOSTILE_N_USERS];
}

unsigned hostile_scale(void) {
        const char *s = getenv("HOSTILE_TIME_SCALE"), *w = getenv("COAPCLIENTD_WRAPPER");

        if (s && atoi(s) > 0)
                return (unsigned) atoi(s);
        if (w && strstr(w, "valgrind"))
                return 20;
        if (getenv("HOSTILE_SANITIZED") && strcmp(getenv("HOSTILE_SANITIZED"), "1") == 0)
                return 3;
        return 1;
}

uint64_t hostile_usec(uint64_t usec) {
        return usec * hostile_scale();
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

int hostile_spawn(const char *user, const char *const *args, HostileCaller *ret) {
        const char *bin = getenv("HOSTILE_CALLER");
        _cleanup_free_ const char **argv = NULL;
        char reuid[64], regid[64];
        int in[2], out[2];
        size_t n = 0, k = 0;
        pid_t pid;

        if (!bin)
                return -ENXIO;
        while (args[n])
                n++;
        argv = calloc(n + 8, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        if (user) {
                snprintf(reuid, sizeof(reuid), "--reuid=%s", user);
                snprintf(regid, sizeof(regid), "--regid=%s", user);
                argv[k++] = "setpriv";
                argv[k++] = reuid;
                argv[k++] = regid;
                argv[k++] = "--clear-groups";
                /* Applied after the uid change, which would clear an earlier one. */
                argv[k++] = "--pdeathsig=KILL";
        }
        argv[k++] = bin;
        for (size_t i = 0; i < n; i++)
                argv[k++] = args[i];
        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                close(in[0]);
                close(in[1]);
                return -errno;
        }
        pid = fork();
        if (pid < 0) {
                int r = -errno;

                close(in[0]);
                close(in[1]);
                close(out[0]);
                close(out[1]);
                return r;
        }
        if (pid == 0) {
                if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
                        _exit(127);
                if (!user)
                        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        *ret = (HostileCaller){.pid = pid, .in_fd = in[1], .out_fd = out[0]};
        return 0;
}

int hostile_read_line(HostileCaller *c, char *line, size_t size, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        for (;;) {
                char *nl = memchr(c->buf, '\n', c->n_buf);
                uint64_t now;
                ssize_t k;
                int r;

                if (nl) {
                        size_t len = (size_t) (nl - c->buf);

                        snprintf(line, size, "%.*s", (int) len, c->buf);
                        memmove(c->buf, nl + 1, c->n_buf - len - 1);
                        c->n_buf -= len + 1;
                        return 0;
                }
                if (c->n_buf == sizeof(c->buf))
                        return -ENOBUFS;
                now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(&(struct pollfd){.fd = c->out_fd, .events = POLLIN}, 1,
                         (int) ((deadline - now + 999) / 1000));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                k = read(c->out_fd, c->buf + c->n_buf, sizeof(c->buf) - c->n_buf);
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (k == 0)
                        return -EPIPE;
                if (k > 0)
                        c->n_buf += (size_t) k;
        }
}

int hostile_expect(HostileCaller *c, const char *prefix, char *line, size_t size,
                   uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        for (;;) {
                uint64_t now = now_usec();
                int r;

                r = hostile_read_line(c, line, size, now < deadline ? deadline - now : 0);
                if (r < 0)
                        return r;
                if (strncmp(line, prefix, strlen(prefix)) == 0)
                        return 0;
                printf("# caller %d: %s\n", (int) c->pid, line);
                fflush(stdout);
        }
}

int hostile_send(HostileCaller *c, const char *line) {
        size_t len = strlen(line);

        if (write(c->in_fd, line, len) != (ssize_t) len || write(c->in_fd, "\n", 1) != 1)
                return -errno;
        return 0;
}

int hostile_stop(HostileCaller *c, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;
        int status;

        if (c->pid <= 0)
                return 0;
        c->in_fd = safe_close(c->in_fd);
        for (;;) {
                pid_t p = waitpid(c->pid, &status, WNOHANG);

                if (p < 0)
                        return -errno;
                if (p > 0)
                        break;
                if (now_usec() >= deadline) {
                        (void) kill(c->pid, SIGKILL);
                        if (waitpid(c->pid, &status, 0) < 0)
                                return -errno;
                        break;
                }
                usleep(10 * 1000);
        }
        c->out_fd = safe_close(c->out_fd);
        c->pid = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int hostile_bus_open(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *address = getenv(COAPCLIENTD_BUS_ADDRESS_ENV);
        int r;

        if (!address)
                return -ENXIO;
        r = bus_api_register_errors();
        if (r < 0)
                return r;
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

static int pid_of(sd_bus *bus, const char *name, pid_t *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint32_t pid;
        int r;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetConnectionUnixProcessID", NULL, &reply,
                               "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "u", &pid);
        if (r < 0)
                return r;
        *ret = (pid_t) pid;
        return 0;
}

int hostile_daemon_pid(sd_bus *bus, pid_t *ret) {
        int r = pid_of(bus, COAPCLIENTD_BUS_NAME, ret);

        return r == -ENXIO || r == -ESRCH ? -ENXIO : r;
}

int hostile_unique_name_of(sd_bus *bus, pid_t pid, char **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name;
        int r;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "ListNames", NULL, &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "s");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "s", &name)) > 0) {
                pid_t p;

                if (name[0] != ':' || pid_of(bus, name, &p) < 0 || p != pid)
                        continue;
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        return r < 0 ? r : -ENOENT;
}

int hostile_manager_u32(sd_bus *bus, const char *property, uint32_t *ret) {
        return sd_bus_get_property_trivial(bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                                           COAPCLIENTD_MANAGER_IFACE, property, NULL, 'u', ret);
}

uint32_t hostile_await_manager_u32(sd_bus *bus, const char *property, uint32_t expected,
                                   uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;
        uint32_t v = UINT32_MAX;

        for (;;) {
                if (hostile_manager_u32(bus, property, &v) < 0)
                        v = UINT32_MAX;
                if (v == expected || now_usec() >= deadline)
                        return v;
                usleep(50 * 1000);
        }
}

bool hostile_daemon_same(sd_bus *bus) {
        const char *s = getenv("COAPCLIENTD_PID");
        pid_t pid = 0;
        int r;

        r = hostile_daemon_pid(bus, &pid);
        if (r < 0 || !s || pid != (pid_t) atoi(s) || kill(pid, 0) < 0) {
                printf("# the daemon (pid %s) no longer owns the bus name: %s, owner pid %d\n",
                       s ?: "?", r < 0 ? strerror(-r) : "ok", (int) pid);
                fflush(stdout);
                return false;
        }
        return true;
}

int hostile_get(const char *name, sd_bus_error *error) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int fd = -EBADF;
        TestRequest req = {.method = TEST_GET, .path = ""};
        TestResponse resp = {};
        uint64_t id;
        int r;

        r = test_bus_new(&b);
        if (r < 0)
                return r;
        r = test_bus_create_client(b, name, &client, error);
        if (r < 0)
                return r;
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        if (fd < 0)
                return fd;
        r = test_bus_request(b, client, fd, "", &req, &id, error);
        if (r < 0)
                return r;
        r = test_bus_next_response(b, id, hostile_usec(10 * USEC_PER_SEC), &resp);
        if (r < 0)
                return r;
        r = resp.result;
        test_response_done(&resp);
        return r;
}
