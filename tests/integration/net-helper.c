/* SPDX-License-Identifier: MIT */
#include "net-helper.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal/macro.h"

#define SERVER_START_TIMEOUT_USEC (5 * USEC_PER_SEC)

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

const char *test_peer_host(void) {
        return getenv("COAP_PEER_HOST") ?: "127.0.0.1";
}

uint16_t test_peer_port(void) {
        const char *p = getenv("COAP_PEER_PORT");

        return p ? (uint16_t) strtoul(p, NULL, 10) : 0;
}

static int make_addr(int family, const char *host, uint16_t port, struct sockaddr_storage *ss,
                     socklen_t *len) {
        memset(ss, 0, sizeof(*ss));
        if (family == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *) ss;

                sin->sin_family = AF_INET;
                sin->sin_port = htons(port);
                if (inet_pton(AF_INET, host ?: "127.0.0.1", &sin->sin_addr) != 1)
                        return -EINVAL;
                *len = sizeof(*sin);
        } else {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;

                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons(port);
                if (inet_pton(AF_INET6, host ?: "::1", &sin6->sin6_addr) != 1)
                        return -EINVAL;
                *len = sizeof(*sin6);
        }
        return 0;
}

static int local_port(int fd, uint16_t *ret) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);

        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return -errno;
        *ret = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                             : ((struct sockaddr_in6 *) &ss)->sin6_port);
        return 0;
}

int test_udp_socket(int family, const char *host, uint16_t port) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_storage ss;
        socklen_t len;
        int r;

        fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        r = make_addr(family, NULL, 0, &ss, &len);
        if (r < 0)
                return r;
        if (bind(fd, (struct sockaddr *) &ss, len) < 0)
                return -errno;
        if (host) {
                r = make_addr(family, host, port, &ss, &len);
                if (r < 0)
                        return r;
                if (connect(fd, (struct sockaddr *) &ss, len) < 0)
                        return -errno;
        }
        return TAKE_FD(fd);
}

int test_udp_silent(int family, uint16_t *ret_port) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = test_udp_socket(family, NULL, 0);
        if (fd < 0)
                return fd;
        r = local_port(fd, ret_port);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

int test_udp_closed_port(uint16_t *ret_port) {
        _cleanup_close_ int fd = -EBADF;

        /* A just-released ephemeral port is very unlikely to be taken again during one test. */
        fd = test_udp_silent(AF_INET, ret_port);
        return fd < 0 ? fd : 0;
}

void test_format_destination(char *buf, size_t size, const char *host, uint16_t port) {
        if (strchr(host, ':'))
                snprintf(buf, size, "[%s]:%u", host, port);
        else
                snprintf(buf, size, "%s:%u", host, port);
}

int test_coap_ping(int family, const char *host, uint16_t port, uint64_t timeout_usec) {
        static const uint8_t ping[4] = {0x40, 0x00, 0x12, 0x34}; /* CON, empty, MID 0x1234 */
        _cleanup_close_ int fd = -EBADF;
        uint64_t deadline = now_usec() + timeout_usec;

        fd = test_udp_socket(family, host, port);
        if (fd < 0)
                return fd;
        for (;;) {
                uint8_t buf[64];
                uint64_t now = now_usec();
                struct pollfd p = {.fd = fd, .events = POLLIN};
                ssize_t n;

                if (now >= deadline)
                        return -ETIMEDOUT;
                /* A refused send (nobody bound yet) is retried on the next round. */
                (void) send(fd, ping, sizeof(ping), 0);
                if (poll(&p, 1, (int) MIN((deadline - now) / 1000 + 1, 50)) < 0)
                        return -errno;
                if (!(p.revents & (POLLIN | POLLERR)))
                        continue;
                n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n >= 4 && (buf[0] & 0x30) == 0x30 && buf[2] == 0x12 && buf[3] == 0x34)
                        return 0;
        }
}

static int free_port_pair(uint16_t *ret) {
        /* coap-server also takes PORT+1 (DTLS) and the same numbers on TCP. */
        for (int i = 0; i < 50; i++) {
                /* Below the ephemeral range (32768 on), and apart from test-env.sh's peers. */
                uint16_t port = (uint16_t) (26400 + ((unsigned) rand() % 3150) * 2);
                bool ok = true;

                for (int k = 0; k < 2 && ok; k++) {
                        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                        struct sockaddr_in sin = {
                                .sin_family = AF_INET,
                                .sin_port = htons((uint16_t) (port + k)),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                        };

                        ok = fd >= 0 && bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == 0;
                }
                if (ok) {
                        *ret = port;
                        return 0;
                }
        }
        return -EADDRINUSE;
}

static pid_t fork_child(void) {
        pid_t parent = getpid();
        pid_t pid = fork();

        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(EXIT_FAILURE);
        }
        return pid;
}

int test_coap_server_spawn(const char *host, uint16_t *ret_port, pid_t *ret_pid) {
        return test_coap_server_spawn_args(host, NULL, ret_port, ret_pid);
}

int test_coap_server_spawn_args(const char *host, const char *const *extra, uint16_t *ret_port,
                                pid_t *ret_pid) {
        int family = strchr(host, ':') ? AF_INET6 : AF_INET;
        uint16_t port;
        pid_t pid;
        int r;

        srand((unsigned) (getpid() ^ now_usec()));
        r = free_port_pair(&port);
        if (r < 0)
                return r;
        pid = fork_child();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                const char *argv[16] = {"coap-server-gnutls", "-A", host, "-p", NULL, "-d", "16"};
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                char port_str[8];
                size_t n = 7;

                snprintf(port_str, sizeof(port_str), "%u", port);
                argv[4] = port_str;
                for (size_t i = 0; extra && extra[i] && n + 1 < ELEMENTSOF(argv); i++)
                        argv[n++] = extra[i];
                if (null >= 0) {
                        (void) dup2(null, STDOUT_FILENO);
                        (void) dup2(null, STDERR_FILENO);
                }
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        r = test_coap_ping(family, host, port, SERVER_START_TIMEOUT_USEC);
        if (r < 0) {
                test_child_stop(pid);
                return r;
        }
        *ret_port = port;
        *ret_pid = pid;
        return 0;
}

static int spawn_loop(int fd, void (*loop)(int fd, const void *arg), const void *arg,
                      pid_t *ret_pid) {
        pid_t pid = fork_child();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                loop(fd, arg);
                _exit(EXIT_SUCCESS);
        }
        *ret_pid = pid;
        return 0;
}

static void rst_loop(int fd, const void *arg) {
        (void) arg;
        for (;;) {
                uint8_t buf[2048];
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *) &ss, &len);

                if (n < 0 && errno != EINTR)
                        return;
                if (n >= 4 && (buf[0] & 0x30) == 0x00) {
                        uint8_t rst[4] = {0x70, 0x00, buf[2], buf[3]};

                        (void) sendto(fd, rst, sizeof(rst), 0, (struct sockaddr *) &ss, len);
                }
        }
}

int test_rst_peer_spawn(uint16_t *ret_port, pid_t *ret_pid) {
        _cleanup_close_ int fd = -EBADF;

        fd = test_udp_silent(AF_INET, ret_port);
        if (fd < 0)
                return fd;
        return spawn_loop(fd, rst_loop, NULL, ret_pid);
}

static void noisy_loop(int fd, const void *arg) {
        static uint8_t big[65000];

        (void) arg;
        for (;;) {
                uint8_t buf[2048], resp[32];
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *) &ss, &len);
                const struct sockaddr *to = (const struct sockaddr *) &ss;
                size_t tkl, k = 0;

                if (n < 0 && errno != EINTR)
                        return;
                if (n < 4 || (buf[0] & 0x30) != 0x00 || (size_t) n < 4 + (size_t) (buf[0] & 0x0f))
                        continue;
                tkl = buf[0] & 0x0f;
                (void) sendto(fd, big, sizeof(big), 0, to, len);
                (void) sendto(fd, "\xff\x45", 2, 0, to, len); /* version 3, truncated header */
                /* NON 2.05 with a token nobody asked for */
                (void) sendto(fd, "\x54\x45\x00\x01\xde\xad\xbe\xef\xff!", 10, 0, to, len);
                resp[k++] = (uint8_t) (0x60 | tkl); /* ACK */
                resp[k++] = 0x45;
                resp[k++] = buf[2];
                resp[k++] = buf[3];
                memcpy(resp + k, buf + 4, tkl);
                k += tkl;
                memcpy(resp + k, "\xffok", 3);
                k += 3;
                (void) sendto(fd, resp, k, 0, to, len);
                (void) sendto(fd, resp, k, 0, to, len);
        }
}

int test_noisy_peer_spawn(uint16_t *ret_port, pid_t *ret_pid) {
        _cleanup_close_ int fd = -EBADF;

        fd = test_udp_silent(AF_INET, ret_port);
        if (fd < 0)
                return fd;
        return spawn_loop(fd, noisy_loop, NULL, ret_pid);
}

typedef struct RelayArgs {
        uint16_t upstream;
        unsigned drop_every;
} RelayArgs;

static void relay_loop(int fd, const void *arg) {
        const RelayArgs *a = arg;
        struct sockaddr_in up = {
                .sin_family = AF_INET,
                .sin_port = htons(a->upstream),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        struct sockaddr_storage client = {};
        socklen_t client_len = 0;
        unsigned counts[2] = {};

        for (;;) {
                uint8_t buf[2048];
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *) &ss, &len);
                const struct sockaddr_in *src = (const struct sockaddr_in *) &ss;
                bool from_up;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                from_up =
                        src->sin_port == up.sin_port && src->sin_addr.s_addr == up.sin_addr.s_addr;
                if (!from_up && client_len == 0) {
                        client = ss;
                        client_len = len;
                }
                if (++counts[from_up] % a->drop_every == 0)
                        continue;
                if (from_up)
                        (void) sendto(fd, buf, (size_t) n, 0, (struct sockaddr *) &client,
                                      client_len);
                else
                        (void) sendto(fd, buf, (size_t) n, 0, (struct sockaddr *) &up, sizeof(up));
        }
}

int test_lossy_relay_spawn(uint16_t upstream, unsigned drop_every, uint16_t *ret_port,
                           pid_t *ret_pid) {
        _cleanup_close_ int fd = -EBADF;
        RelayArgs args = {.upstream = upstream, .drop_every = drop_every};

        if (drop_every < 2)
                return -EINVAL;
        fd = test_udp_silent(AF_INET, ret_port);
        if (fd < 0)
                return fd;
        /* The child gets its own copy of args through fork. */
        return spawn_loop(fd, relay_loop, &args, ret_pid);
}

void test_child_stop(pid_t pid) {
        if (pid <= 0)
                return;
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
}

pid_t test_daemon_pid(void) {
        const char *p = getenv("COAPCLIENTD_PID");

        return p ? (pid_t) strtol(p, NULL, 10) : -1;
}

bool test_daemon_alive(void) {
        pid_t pid = test_daemon_pid();

        return pid > 0 && kill(pid, 0) == 0;
}

int test_daemon_fd_count(void) {
        char path[64];
        DIR *d;
        struct dirent *de;
        int n = 0;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) test_daemon_pid());
        d = opendir(path);
        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

int test_daemon_fd_count_settled(void) {
        uint64_t deadline = now_usec() + 3 * USEC_PER_SEC;
        int n = test_daemon_fd_count(), same = 0;

        /* Equal for 100 ms on end. */
        while (n >= 0 && same < 4 && now_usec() < deadline) {
                int m;

                usleep(25 * 1000);
                m = test_daemon_fd_count();
                same = m == n ? same + 1 : 0;
                n = m;
        }
        return n;
}

void test_fill_random(uint8_t *buf, size_t len, uint32_t seed) {
        uint32_t x = seed ?: 1;

        for (size_t i = 0; i < len; i++) {
                /* xorshift32 */
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                buf[i] = (uint8_t) x;
        }
}
