/* SPDX-License-Identifier: MIT */
#include "fault-util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal/macro.h"

#define TOOL_START_TIMEOUT_MSEC 5000
#define TOOL_STOP_TIMEOUT_USEC  (5 * USEC_PER_SEC)

uint64_t fault_now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

char *fault_tmp_path(const char *name) {
        const char *dir = getenv("TEST_TMPDIR") ?: "/tmp";
        char *p;

        if (asprintf(&p, "%s/%s.%d", dir, name, (int) getpid()) < 0)
                return NULL;
        return p;
}

/* Runs argv with stdout on a pipe and reads the port from its first line. */
static int tool_spawn(char *const *argv, uint16_t *ret_port, pid_t *ret_pid) {
        pid_t parent = getpid(), pid;
        char line[32];
        size_t n = 0;
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int e = -errno;

                safe_close(p[0]);
                safe_close(p[1]);
                return e;
        }
        if (pid == 0) {
                /* The tool must not outlive the test, whatever happens to the test. */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(EXIT_FAILURE);
                if (dup2(p[1], STDOUT_FILENO) < 0)
                        _exit(EXIT_FAILURE);
                execv(argv[0], argv);
                _exit(127);
        }
        safe_close(p[1]);
        while (n < sizeof(line) - 1) {
                struct pollfd pfd = {.fd = p[0], .events = POLLIN};
                ssize_t k;

                if (poll(&pfd, 1, TOOL_START_TIMEOUT_MSEC) <= 0)
                        break;
                k = read(p[0], line + n, sizeof(line) - 1 - n);
                if (k <= 0)
                        break;
                n += (size_t) k;
                if (memchr(line, '\n', n))
                        break;
        }
        safe_close(p[0]);
        line[n] = '\0';
        if (!memchr(line, '\n', n) || atoi(line) <= 0) {
                (void) fault_child_stop(pid);
                return -EIO;
        }
        *ret_port = (uint16_t) atoi(line);
        *ret_pid = pid;
        return 0;
}

int fault_relay_spawn(uint16_t peer_port, const char *stats_path, const char *const *args,
                      uint16_t *ret_port, pid_t *ret_pid) {
        const char *tool = getenv("FAULTS_UDP_RELAY");
        char *argv[32], peer[64], stats[4096];
        size_t n = 0;

        if (!tool)
                return -ENXIO;
        snprintf(peer, sizeof(peer), "--peer=127.0.0.1:%u", peer_port);
        snprintf(stats, sizeof(stats), "--stats=%s", stats_path);
        argv[n++] = (char *) tool;
        argv[n++] = peer;
        argv[n++] = stats;
        for (; args && *args && n < ELEMENTSOF(argv) - 1; args++)
                argv[n++] = (char *) *args;
        argv[n] = NULL;
        return tool_spawn(argv, ret_port, ret_pid);
}

int fault_bad_peer_spawn(const char *mode, const char *stats_path, uint16_t *ret_port,
                         pid_t *ret_pid) {
        const char *tool = getenv("FAULTS_BAD_PEER");
        char stats[4096];
        char *argv[] = {(char *) tool, (char *) mode, stats, NULL};

        if (!tool)
                return -ENXIO;
        snprintf(stats, sizeof(stats), "--stats=%s", stats_path);
        return tool_spawn(argv, ret_port, ret_pid);
}

int fault_child_stop(pid_t pid) {
        uint64_t deadline = fault_now_usec() + TOOL_STOP_TIMEOUT_USEC;
        int status;

        if (pid <= 0)
                return -EINVAL;
        (void) kill(pid, SIGTERM);
        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);

                if (r == pid)
                        return status;
                if (r < 0)
                        return -errno;
                if (fault_now_usec() >= deadline) {
                        (void) kill(pid, SIGKILL);
                        if (waitpid(pid, &status, 0) < 0)
                                return -errno;
                        return status;
                }
                (void) usleep(10 * 1000);
        }
}

int fault_stats_get(const char *path, const char *key, uint64_t *ret) {
        char line[4096], pattern[128];
        const char *p;
        FILE *f;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        if (!fgets(line, sizeof(line), f)) {
                fclose(f);
                return -ENODATA;
        }
        fclose(f);
        snprintf(pattern, sizeof(pattern), " %s=", key);
        /* Match whole keys: at the start of the line or after a space. */
        if (strncmp(line, pattern + 1, strlen(pattern + 1)) == 0)
                p = line + strlen(pattern + 1);
        else if ((p = strstr(line, pattern)))
                p += strlen(pattern);
        else
                return -ENOENT;
        *ret = strtoull(p, NULL, 10);
        return 0;
}

uint64_t fault_stats_await(const char *path, const char *key, uint64_t min, uint64_t timeout_usec) {
        uint64_t deadline = fault_now_usec() + timeout_usec, v = 0;

        for (;;) {
                if (fault_stats_get(path, key, &v) < 0)
                        v = 0;
                if (v >= min || fault_now_usec() >= deadline)
                        return v;
                (void) usleep(10 * 1000);
        }
}

void fault_stats_print(const char *what, const char *path) {
        char line[4096];
        FILE *f = fopen(path, "re");

        if (!f)
                return;
        if (fgets(line, sizeof(line), f))
                printf("# %s: %s%s", what, line, strchr(line, '\n') ? "" : "\n");
        fclose(f);
        fflush(stdout);
}

long fault_rss_kib(pid_t pid) {
        char path[64], line[256];
        long kib = -ENOENT;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "VmRSS:", 6) == 0) {
                        kib = strtol(line + 6, NULL, 10);
                        break;
                }
        fclose(f);
        return kib;
}

int fault_fd_count(pid_t pid) {
        char path[64];
        struct dirent *de;
        DIR *d;
        int n = 0;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        d = opendir(path);
        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

bool fault_pid_alive(pid_t pid) {
        char path[64], state = 0;
        FILE *f;

        /* kill(pid, 0) also succeeds for a zombie: look at the state. */
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return false;
        if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
                state = 0;
        fclose(f);
        return state != 0 && state != 'Z' && state != 'X';
}

bool fault_sanitized(void) {
        const char *e = getenv("FAULTS_SANITIZED"), *w = getenv("COAPCLIENTD_WRAPPER");

        /* A daemon under valgrind keeps freed blocks in its own free queue too. */
        return (e && strcmp(e, "1") == 0) || (w && strstr(w, "valgrind"));
}
