/* SPDX-License-Identifier: MIT */
/* design-floor: the fastest any implementation of coapclientd's design as built (three processes,
 * a socket for the data channel) could be on this machine. A request takes coapclientd's path with
 * nothing done on the way: an app process sends a ready CoAP CON GET of /small to a relay process
 * over a SOCK_SEQPACKET pair (the data channel), the relay sends it to the peer from its UDP socket
 * and the response back over the pair, and the app's reader thread hands it to the main thread that
 * waits (the library's thread, as Zephyr's client calls back), or the main thread reads it itself
 * (-x: the library in the app's loop). No D-Bus, no sd-event, no CoAP parsing, no token matching,
 * no copying into frames; the relay batches as coapclientd does (recvmmsg() and sendmmsg(), the
 * responses of a turn in one message to the app). Its ratio to libcoap in the same run is a ceiling
 * for coapclientd's.
 *
 * usage: design-floor [-x] [-f] [-b] [-n N] [-w W] HOST PORT
 *   -x  the main thread reads the responses (no reader thread)
 *   -f  the relay may run on any CPU (placement free); otherwise it inherits this one's
 *   -b  the relay runs under SCHED_BATCH, as coapclientd's unit runs the daemon
 * Prints "design-floor mode=thread|external n= window= bad= secs= rate= app_cpu_us=
 * relay_cpu_us=": CPU per request of the app (both threads) and of the relay, from the
 * scheduler's nanosecond counts. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH     64
#define DGRAM_MAX 1280
#define STALL_SEC 5
/* CON GET, token length 4, then MID, token, Uri-Path "small". */
#define REQ_LEN   14

static unsigned completed, bad;
/* The app's receive buffer: its reader thread uses it, or with -x its main thread, never both. */
static uint8_t app_buf[BATCH * (DGRAM_MAX + 2)];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* The relay's CPU in ns (one thread): the first field of /proc/PID/schedstat. */
static uint64_t proc_cpu_ns(pid_t pid) {
        unsigned long long ns = 0;
        char path[64];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/schedstat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        if (fscanf(f, "%llu", &ns) != 1)
                ns = 0;
        fclose(f);
        return ns;
}

/* The app's CPU in ns, both its threads. */
static uint64_t self_cpu_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* The relay: forwards what the app sends to the peer, and the peer's answers back, until the app
 * closes its end. */
static int relay(int chan, int udp) {
        static uint8_t in[BATCH][DGRAM_MAX], out[BATCH * (DGRAM_MAX + 2)];
        struct iovec iov[BATCH];
        struct mmsghdr msgs[BATCH];
        struct epoll_event ev[2];
        int ep = epoll_create1(EPOLL_CLOEXEC);

        if (ep < 0)
                return -errno;
        ev[0] = (struct epoll_event){.events = EPOLLIN, .data.fd = chan};
        ev[1] = (struct epoll_event){.events = EPOLLIN, .data.fd = udp};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, chan, &ev[0]) < 0 ||
            epoll_ctl(ep, EPOLL_CTL_ADD, udp, &ev[1]) < 0)
                return -errno;
        for (int i = 0; i < BATCH; i++) {
                iov[i] = (struct iovec){in[i], DGRAM_MAX};
                msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
        }
        for (;;) {
                int k = epoll_wait(ep, ev, 2, -1);

                for (int e = 0; e < k; e++) {
                        size_t len = 0;
                        int n = recvmmsg(ev[e].data.fd, msgs, BATCH, MSG_DONTWAIT, NULL);

                        if (n < 0)
                                continue;
                        if (ev[e].data.fd == chan) {
                                if (n == 0 || msgs[0].msg_len == 0)
                                        return 0; /* the app is done */
                                for (int i = 0; i < n; i++)
                                        iov[i].iov_len = msgs[i].msg_len;
                                (void) sendmmsg(udp, msgs, (unsigned) n, 0);
                                for (int i = 0; i < n; i++)
                                        iov[i].iov_len = DGRAM_MAX;
                                continue;
                        }
                        /* The turn's responses in one message: a 2-byte length before each. */
                        for (int i = 0; i < n; i++) {
                                out[len] = (uint8_t) (msgs[i].msg_len >> 8);
                                out[len + 1] = (uint8_t) msgs[i].msg_len;
                                memcpy(out + len + 2, in[i], msgs[i].msg_len);
                                len += 2 + msgs[i].msg_len;
                        }
                        (void) send(chan, out, len, MSG_NOSIGNAL);
                }
        }
}

/* The responses in one message from the relay: counts them, and those that are not a
 * piggybacked 2.05. */
static unsigned take_responses(const uint8_t *buf, size_t len, unsigned *n_bad) {
        unsigned n = 0;

        for (size_t at = 0; at + 2 <= len;) {
                size_t l = (size_t) buf[at] << 8 | buf[at + 1];

                if (at + 2 + l > len)
                        break;
                if (l < 4 || (buf[at + 2] & 0x30) != 0x20 || buf[at + 3] != 0x45)
                        (*n_bad)++;
                n++;
                at += 2 + l;
        }
        return n;
}

static void *reader(void *arg) {
        int chan = *(int *) arg;
        ssize_t len;

        while ((len = recv(chan, app_buf, sizeof(app_buf), 0)) > 0) {
                unsigned b = 0, n = take_responses(app_buf, (size_t) len, &b);

                pthread_mutex_lock(&lock);
                completed += n;
                bad += b;
                pthread_mutex_unlock(&lock);
                /* After the unlock, as coapclient_bench's callback signals. */
                pthread_cond_signal(&cond);
        }
        return NULL;
}

static int send_request(int chan, uint16_t mid) {
        /* CON GET, token length 4; MID and the token's last two bytes filled in below. */
        uint8_t req[REQ_LEN] = {0x44, 0x01, 0, 0, 't', 'k', 0, 0, 0xb5, 's', 'm', 'a', 'l', 'l'};

        req[2] = req[6] = (uint8_t) (mid >> 8);
        req[3] = req[7] = (uint8_t) mid;
        return send(chan, req, sizeof(req), MSG_NOSIGNAL) == (ssize_t) sizeof(req) ? 0 : -errno;
}

/* Waits until more than have responses are in; false after STALL_SEC without one. */
static bool wait_more(int chan, bool external, unsigned have) {
        struct timespec ts;
        bool ok = true;

        if (external) {
                ssize_t len = recv(chan, app_buf, sizeof(app_buf), 0);

                if (len <= 0)
                        return false;
                completed += take_responses(app_buf, (size_t) len, &bad);
                return true;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += STALL_SEC;
        pthread_mutex_lock(&lock);
        while (completed <= have && ok)
                ok = pthread_cond_timedwait(&cond, &lock, &ts) == 0;
        pthread_mutex_unlock(&lock);
        return ok;
}

static unsigned completed_now(void) {
        unsigned c;

        pthread_mutex_lock(&lock);
        c = completed;
        pthread_mutex_unlock(&lock);
        return c;
}

int main(int argc, char **argv) {
        struct timeval stall = {.tv_sec = STALL_SEC};
        struct sockaddr_in peer = {.sin_family = AF_INET};
        unsigned n = 10000, window = 1, sent = 0;
        bool external = false, any_cpu = false, batch = false;
        uint64_t t0, t1, app0, app1, relay0, relay1;
        int pair[2], opt, udp, status;
        uint16_t mid = (uint16_t) now_ns();
        pthread_t thread;
        pid_t pid;

        while ((opt = getopt(argc, argv, "xfbn:w:")) >= 0)
                switch (opt) {
                case 'b':
                        batch = true;
                        break;
                case 'x':
                        external = true;
                        break;
                case 'f':
                        any_cpu = true;
                        break;
                case 'n':
                        n = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'w':
                        window = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                default:
                        return 2;
                }
        if (argc - optind != 2 || n == 0 || window == 0 || window > BATCH ||
            inet_pton(AF_INET, argv[optind], &peer.sin_addr) != 1) {
                fprintf(stderr, "usage: design-floor [-x] [-f] [-b] [-n N] [-w W<=%d] HOST PORT\n",
                        BATCH);
                return 2;
        }
        peer.sin_port = htons((uint16_t) strtoul(argv[optind + 1], NULL, 10));
        udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (udp < 0 || connect(udp, (struct sockaddr *) &peer, sizeof(peer)) < 0 ||
            socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
                perror("design-floor");
                return 1;
        }
        pid = fork();
        if (pid < 0) {
                perror("design-floor: fork");
                return 1;
        }
        if (pid == 0) {
                if (any_cpu) {
                        cpu_set_t all;

                        CPU_ZERO(&all);
                        for (int c = 0; c < CPU_SETSIZE; c++)
                                CPU_SET(c, &all);
                        (void) sched_setaffinity(0, sizeof(all), &all);
                }
                if (batch && sched_setscheduler(0, SCHED_BATCH, &(struct sched_param){0}) < 0)
                        _exit(1);
                close(pair[0]);
                _exit(relay(pair[1], udp) < 0 ? 1 : 0);
        }
        close(pair[1]);
        close(udp);
        /* A lost datagram (there should be none on loopback) ends the run instead of hanging it. */
        (void) setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &stall, sizeof(stall));
        if (!external && pthread_create(&thread, NULL, reader, &pair[0]) != 0) {
                perror("design-floor: thread");
                return 1;
        }

        relay0 = proc_cpu_ns(pid);
        app0 = self_cpu_ns();
        t0 = now_ns();
        while (sent < n) {
                unsigned have = completed_now();

                for (; sent < n && sent - have < window; sent++)
                        if (send_request(pair[0], mid++) < 0) {
                                perror("design-floor: send");
                                return 1;
                        }
                if (!wait_more(pair[0], external, have))
                        break;
        }
        while (completed_now() < sent && wait_more(pair[0], external, completed_now()))
                ;
        t1 = now_ns();
        app1 = self_cpu_ns();
        relay1 = proc_cpu_ns(pid);

        shutdown(pair[0], SHUT_RDWR);
        if (!external)
                pthread_join(thread, NULL);
        close(pair[0]);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "design-floor: the relay failed\n");
        if (completed < n) {
                fprintf(stderr, "design-floor: stalled at %u of %u\n", completed, n);
                return 1;
        }
        printf("design-floor mode=%s n=%u window=%u bad=%u secs=%.3f rate=%.0f app_cpu_us=%.2f "
               "relay_cpu_us=%.2f\n",
               external ? "external" : "thread", n, window, bad, (t1 - t0) / 1e9,
               n / ((t1 - t0) / 1e9), (double) (app1 - app0) / 1e3 / n,
               (double) (relay1 - relay0) / 1e3 / n);
        return bad ? 1 : 0;
}
