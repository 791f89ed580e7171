/* SPDX-License-Identifier: MIT */
/* coapclient_bench: the coapclientd column of bench/run.sh. A Zephyr-style application on
 * libcoapclient (<coapclient/coap_client.h>) that talks to a CoAP server through coapclientd,
 * with callbacks from the library's own thread, and measures one figure per run:
 *
 *   seq      -n N            N sequential CON GETs of /small: rate, latency p50/p99
 *   window   -n N -w W       N CON GETs of /small, W in flight (spread over contexts when a
 *                            context takes fewer than W)
 *   get      -s SIZE -b BLK  one block-wise GET of PATH (expects SIZE bytes): MB/s
 *   put      -s SIZE -b BLK  one block-wise PUT of SIZE bytes to PATH: MB/s
 *   contexts -c N -P PROCS   N idle contexts (coap_client_init) from PROCS processes: daemon
 *                            RSS per context; then -n sequential GETs beside them
 *   inflight -c N -L LIMIT   N requests of PATH (e.g. async?5) in flight at once, LIMIT per
 *                            context (the daemon's MaxRequestsPerClient): daemon RSS per request
 *   observe -c N -P PROCS -S STATS -t SECS
 *                            N observations of PATH held at once by PROCS callers (processes,
 *                            each its own libcoapclient: a D-Bus connection and a data channel),
 *                            each on its own context and connected socket, against bench/obs-peer
 *                            (its STATS file gives its ticks): time until all are registered,
 *                            then for the peer's next SECS ticks the notifications delivered
 *                            (by Observe value) against those the peer sent, out-of-order
 *                            ones, daemon CPU (those SECS s and half a second) and RSS
 *   dtls -c N -P PROCS       N DTLS (PSK) sessions from PROCS callers, one per context and socket,
 *                            each held by an observation of PATH (a resource that does not
 *                            change, e.g. small) beside a GET of /small that says the session is
 *                            up: handshakes/s, daemon RSS per session (its socket, GnuTLS session
 *                            and the held observation), daemon CPU
 *                            per handshake (and its GET); at most
 *                            HANDSHAKE_WINDOW handshakes under way at once
 *
 * seq, window, get and put take -x: the library in external-loop mode
 * (coap_client_loop_external()), its callbacks made in the main thread, which polls the library's
 * fd instead of waiting for its thread, as a single-threaded libcoap client runs its own loop.
 *
 * usage: coapclient_bench --daemon-pid PID [--bus-pid PID] [--peer-pid PID] MODE [options] HOST
 * PORT Prints lines of key=value results; daemon_cpu_us, bus_cpu_us and app_cpu_us are the
 * CPU time per request (/proc/PID/task/TID/schedstat, ns) of coapclientd, dbus-daemon and this
 * program with the library's thread. Exits non-zero if any response is not 2.xx or a body is not
 * byte-exact. */

#include <arpa/inet.h>
#include <coapclient/coap_client.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#define STALL_SEC 15

typedef struct Exchange {
        uint64_t t_start, t_end; /* ns */
        size_t received;
        bool upload, done, failed;
} Exchange;

typedef struct Bench {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned completed, failed;
        const uint8_t *expect; /* when set, received bodies must match it */
} Bench;

static Bench bench = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL};

typedef struct Options {
        pid_t daemon_pid, bus_pid, peer_pid;
        const char *mode, *host, *path, *stats;
        bool dtls;
        unsigned n, window, count, procs, block, limit, secs;
        size_t size;
        uint16_t port;
} Options;

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* utime + stime of a process from /proc/PID/stat, in µs: whole clock ticks (10 ms) */
static int64_t proc_stat_cpu_us(pid_t pid) {
        char path[64], buf[1024];
        unsigned long utime, stime;
        const char *p;
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* the fields after the command name, which may contain spaces: state is field 3 */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                         &stime) != 2)
                return -1;
        return (int64_t) (utime + stime) * 1000000 / sysconf(_SC_CLK_TCK);
}

/* The CPU time of a process's live threads, in µs, from the scheduler's own nanosecond count
 * (the first field of /proc/PID/task/TID/schedstat): /proc/PID/stat counts whole 10 ms ticks,
 * too coarse for a few µs per request. Threads are the daemon's one, dbus-daemon's one, and
 * this program's main and library threads, which live through a measurement. Falls back to
 * /proc/PID/stat on a kernel without schedstat. */
static int64_t proc_cpu_us(pid_t pid) {
        char path[64];
        unsigned long long ns, sum = 0;
        struct dirent *de;
        bool any = false;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
        d = opendir(path);
        if (!d)
                return -1;
        while ((de = readdir(d))) {
                char file[320];
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(file, sizeof(file), "/proc/%d/task/%s/schedstat", (int) pid, de->d_name);
                f = fopen(file, "re");
                if (!f)
                        continue;
                if (fscanf(f, "%llu", &ns) == 1) {
                        sum += ns;
                        any = true;
                }
                fclose(f);
        }
        closedir(d);
        return any ? (int64_t) (sum / 1000) : proc_stat_cpu_us(pid);
}

static long daemon_rss_kib(pid_t pid) {
        char path[64], line[256];
        long kib = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

static void on_response(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                        bool last_block, void *user_data) {
        Exchange *x = user_data;
        bool ok = code >= 0 && COAP_RESPONSE_CODE_CLASS(code) == 2, completed = false;

        pthread_mutex_lock(&bench.lock);
        /* an upload reports each acknowledged block (2.31 Continue); a download must arrive in
         * order and, when bench.expect is set, byte-exact */
        if (ok && !x->upload) {
                ok = offset == x->received && (!bench.expect || len == 0 ||
                                               memcmp(bench.expect + offset, payload, len) == 0);
                if (ok)
                        x->received += len;
        }
        if (!ok) {
                if (!x->failed && bench.failed < 5)
                        fprintf(stderr, "exchange failed: code %d offset %zu (expected %zu)\n",
                                code, offset, x->received);
                x->failed = true;
                last_block = true;
        }
        if (last_block && !x->done) {
                x->done = true;
                x->t_end = now_ns();
                bench.completed++;
                if (x->failed)
                        bench.failed++;
                completed = true;
        }
        pthread_mutex_unlock(&bench.lock);
        /* After the unlock, as a Zephyr app gives its semaphore: signalled with the lock held, the
         * main thread would wake only to wait for the lock again. */
        if (completed)
                pthread_cond_signal(&bench.cond);
}

/* -x: the callbacks run in coap_client_process(), in this thread. */
static bool external;

/* wait_completed() in external-loop mode: polls the library's fd and runs its callbacks here. */
static bool pump_completed(unsigned target) {
        struct pollfd pfd = {.fd = coap_client_get_fd(), .events = POLLIN};
        unsigned last = bench.completed;
        uint64_t progress = now_ns();

        while (bench.completed < target) {
                uint64_t usec = coap_client_get_timeout_usec();
                int ms = usec >= (uint64_t) STALL_SEC * 1000000 ? STALL_SEC * 1000
                                                                : (int) ((usec + 999) / 1000);

                if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
                        return false;
                if (coap_client_process() < 0)
                        return false;
                if (bench.completed != last) {
                        last = bench.completed;
                        progress = now_ns();
                } else if (now_ns() - progress > (uint64_t) STALL_SEC * 1000000000) {
                        fprintf(stderr, "stalled at %u of %u\n", bench.completed, target);
                        return false;
                }
        }
        return true;
}

/* Waits until at least target exchanges completed; false after STALL_SEC without progress. */
static bool wait_completed(unsigned target) {
        unsigned last;
        bool ok = true;

        if (external)
                return pump_completed(target);

        pthread_mutex_lock(&bench.lock);
        last = bench.completed;
        while (bench.completed < target) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += STALL_SEC;
                if (pthread_cond_timedwait(&bench.cond, &bench.lock, &ts) == ETIMEDOUT) {
                        if (bench.completed == last) {
                                fprintf(stderr, "stalled at %u of %u\n", bench.completed, target);
                                ok = false;
                                break;
                        }
                        last = bench.completed;
                }
        }
        pthread_mutex_unlock(&bench.lock);
        return ok;
}

static int udp_connect(const Options *o) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(o->port)};
        int fd;

        if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1)
                return -EINVAL;
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static enum coap_block_size block_szx(unsigned block) {
        enum coap_block_size szx = COAP_BLOCK_16;

        while ((16u << szx) < block && szx < COAP_BLOCK_1024)
                szx++;
        return szx;
}

/* A pool of client contexts, each with its own connected socket; requests go to the first
 * context with a free slot, so the bench works whatever the per-context limit is. The library
 * knows a context by its address, so each is allocated once and never moved. */
typedef struct Pool {
        struct coap_client **clients;
        int *fds;
        unsigned n, next;
} Pool;

static int pool_grow(Pool *p, const Options *o) {
        struct coap_client **c;
        int *fds, fd, r;

        c = realloc(p->clients, (p->n + 1) * sizeof(*c));
        if (!c)
                return -ENOMEM;
        p->clients = c;
        fds = realloc(p->fds, (p->n + 1) * sizeof(int));
        if (!fds)
                return -ENOMEM;
        p->fds = fds;
        c[p->n] = calloc(1, sizeof(struct coap_client));
        if (!c[p->n])
                return -ENOMEM;
        r = coap_client_init(c[p->n], "bench");
        if (r < 0)
                return r;
        r = coap_client_set_block_size(c[p->n], block_szx(o->block));
        if (r < 0)
                return r;
        fd = udp_connect(o);
        if (fd < 0)
                return fd;
        p->fds[p->n++] = fd;
        return 0;
}

/* Sends one request on the pool, adding a context when every existing one is full and grow is
 * set. Returns 0, -EAGAIN (full and !grow) or another negative errno. */
static int pool_send(Pool *p, const Options *o, struct coap_client_request *req, bool grow) {
        for (unsigned tries = 0; tries < p->n; tries++) {
                unsigned i = (p->next + tries) % p->n;
                int r = coap_client_req(p->clients[i], p->fds[i], NULL, req, NULL);

                if (r != -EAGAIN) {
                        p->next = i;
                        return r;
                }
        }
        if (!grow)
                return -EAGAIN;
        int r = pool_grow(p, o);
        if (r < 0)
                return r;
        p->next = p->n - 1;
        return coap_client_req(p->clients[p->next], p->fds[p->next], NULL, req, NULL);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return (x > y) - (x < y);
}

static struct coap_client_request make_request(enum coap_method method, const char *path,
                                               Exchange *x) {
        return (struct coap_client_request){
                .method = method,
                .confirmable = true,
                .path = path,
                .cb = on_response,
                .user_data = x,
        };
}

/* seq and window: n GETs of /small, window in flight. */
static int run_gets(const Options *o, Pool *p) {
        Exchange *xs = calloc(o->n, sizeof(Exchange));
        uint64_t *lat = calloc(o->n, sizeof(uint64_t));
        unsigned sent = 0;
        int64_t cpu0, cpu1, bus0, bus1, self0, self1;
        uint64_t t0, t1;
        int r = 0;

        if (!xs || !lat) {
                r = -ENOMEM;
                goto out;
        }
        cpu0 = proc_cpu_us(o->daemon_pid);
        bus0 = o->bus_pid > 0 ? proc_cpu_us(o->bus_pid) : 0;
        self0 = proc_cpu_us(getpid());
        t0 = now_ns();
        while (sent < o->n) {
                unsigned completed;

                pthread_mutex_lock(&bench.lock);
                completed = bench.completed;
                pthread_mutex_unlock(&bench.lock);
                while (sent < o->n && sent - completed < o->window) {
                        struct coap_client_request req =
                                make_request(COAP_METHOD_GET, o->path, &xs[sent]);

                        xs[sent].t_start = now_ns();
                        r = pool_send(p, o, &req, true);
                        if (r < 0) {
                                fprintf(stderr, "coap_client_req: %s\n", strerror(-r));
                                goto out;
                        }
                        sent++;
                }
                if (!wait_completed(completed + 1)) {
                        r = -ETIMEDOUT;
                        goto out;
                }
        }
        if (!wait_completed(o->n)) {
                r = -ETIMEDOUT;
                goto out;
        }
        t1 = now_ns();
        cpu1 = proc_cpu_us(o->daemon_pid);
        bus1 = o->bus_pid > 0 ? proc_cpu_us(o->bus_pid) : 0;
        self1 = proc_cpu_us(getpid());
        for (unsigned i = 0; i < o->n; i++)
                lat[i] = xs[i].t_end - xs[i].t_start;
        qsort(lat, o->n, sizeof(uint64_t), cmp_u64);
        printf("coapclient_bench mode=%s n=%u window=%u contexts=%u ok=%u bad=%u secs=%.3f "
               "rate=%.0f p50_us=%.1f p99_us=%.1f daemon_cpu_us=%.2f bus_cpu_us=%.2f "
               "app_cpu_us=%.2f\n",
               o->mode, o->n, o->window, p->n, bench.completed - bench.failed, bench.failed,
               (t1 - t0) / 1e9, o->n / ((t1 - t0) / 1e9), lat[o->n / 2] / 1e3,
               lat[(size_t) (o->n * 0.99)] / 1e3, (double) (cpu1 - cpu0) / o->n,
               (double) (bus1 - bus0) / o->n, (double) (self1 - self0) / o->n);
out:
        free(xs);
        free(lat);
        return r < 0 ? r : bench.failed ? -EIO : 0;
}

/* get and put: one block-wise exchange of o->size bytes. */
static int run_blockwise(const Options *o, Pool *p, bool put) {
        uint8_t *body = malloc(o->size);
        Exchange x = {0};
        struct coap_client_request req =
                make_request(put ? COAP_METHOD_PUT : COAP_METHOD_GET, o->path, &x);
        /* ask for the block size from the first response on, as coap_bench does */
        struct coap_client_option block2 = coap_client_option_initial_block2();
        uint64_t t0, t1;
        int r;

        if (!body)
                return -ENOMEM;
        /* the same body as run.sh stores: SIZE bytes of 'x' */
        memset(body, 'x', o->size);
        if (put) {
                x.upload = true;
                req.payload = body;
                req.len = o->size;
        } else {
                bench.expect = body;
                req.options = &block2;
                req.num_options = 1;
        }
        t0 = now_ns();
        r = pool_send(p, o, &req, true);
        if (r >= 0 && !wait_completed(1))
                r = -ETIMEDOUT;
        t1 = now_ns();
        bench.expect = NULL;
        free(body);
        if (r < 0)
                return r;
        if (!put && x.received != o->size) {
                fprintf(stderr, "received %zu bytes, expected %zu\n", x.received, o->size);
                return -EIO;
        }
        printf("coapclient_bench mode=%s bytes=%zu block=%u ok=%u bad=%u secs=%.4f MB/s=%.2f\n",
               o->mode, o->size, o->block, bench.completed - bench.failed, bench.failed,
               (t1 - t0) / 1e9, o->size / ((t1 - t0) / 1e9) / 1e6);
        return bench.failed ? -EIO : 0;
}

/* A child of run_contexts: opens count contexts, says so on ready, holds them until hold
 * closes. */
static _Noreturn void hold_contexts(unsigned count, int ready, int hold) {
        struct coap_client *c = calloc(count, sizeof(*c));
        char byte = 1;

        if (!c)
                _exit(1);
        for (unsigned i = 0; i < count; i++) {
                int r = coap_client_init(&c[i], "idle");
                if (r < 0) {
                        fprintf(stderr, "coap_client_init #%u: %s\n", i, strerror(-r));
                        _exit(1);
                }
        }
        if (write(ready, &byte, 1) != 1)
                _exit(1);
        (void) read(hold, &byte, 1);
        _exit(0);
}

static int run_contexts(Options *o) {
        unsigned forked = 0, ready = 0;
        int ready_pipe[2], hold_pipe[2], r = 0;
        long rss0, rss1;
        char byte;
        Pool pool = {0};

        if (pipe2(ready_pipe, O_CLOEXEC) < 0 || pipe2(hold_pipe, O_CLOEXEC) < 0)
                return -errno;
        rss0 = daemon_rss_kib(o->daemon_pid);
        for (unsigned i = 0; i < o->procs; i++) {
                unsigned share = o->count / o->procs + (i < o->count % o->procs);
                pid_t pid = fork();

                if (pid < 0) {
                        r = -errno;
                        break;
                }
                if (pid == 0) {
                        close(ready_pipe[0]);
                        close(hold_pipe[1]);
                        hold_contexts(share, ready_pipe[1], hold_pipe[0]);
                }
                forked++;
        }
        close(ready_pipe[1]);
        close(hold_pipe[0]);
        while (ready < forked && read(ready_pipe[0], &byte, 1) == 1)
                ready++;
        if (ready < forked) {
                fprintf(stderr, "%u of %u processes failed to open their contexts\n",
                        forked - ready, forked);
                r = -EIO;
        }
        rss1 = daemon_rss_kib(o->daemon_pid);
        if (r == 0) {
                printf("coapclient_bench mode=contexts count=%u procs=%u rss0_kib=%ld "
                       "rss1_kib=%ld rss_per_item_b=%.1f\n",
                       o->count, o->procs, rss0, rss1, (rss1 - rss0) * 1024.0 / o->count);
                /* then the daemon's CPU per request with all of them open */
                o->window = 1;
                if (o->n > 0)
                        r = run_gets(o, &pool);
        }
        close(hold_pipe[1]);
        close(ready_pipe[0]);
        while (forked > 0 && wait(NULL) > 0)
                forked--;
        return r;
}

/* Waits until the daemon's Manager.RequestsInFlight reaches n (through its own connection to
 * COAPCLIENTD_BUS_ADDRESS). */
static int await_daemon_requests(uint32_t n) {
        const char *address = getenv("COAPCLIENTD_BUS_ADDRESS");
        sd_bus *bus = NULL;
        uint32_t v = 0;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address ? address : "");
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        for (unsigned i = 0; r >= 0 && i < STALL_SEC * 1000; i++) {
                r = sd_bus_get_property_trivial(
                        bus, "org.coapclientd.CoapClient1", "/org/coapclientd/CoapClient1",
                        "org.coapclientd.CoapClient1.Manager", "RequestsInFlight", NULL, 'u', &v);
                if (r < 0 || v >= n)
                        break;
                usleep(1000);
        }
        sd_bus_flush_close_unref(bus);
        if (r < 0)
                return r;
        return v >= n ? 0 : -ETIMEDOUT;
}

static int run_inflight(const Options *o, Pool *p) {
        Exchange *xs = calloc(o->count, sizeof(Exchange));
        unsigned sent = 0;
        long rss0, rss1;
        int r = 0;

        if (!xs)
                return -ENOMEM;
        /* the contexts and sockets first, so that the RSS delta is the requests' alone */
        while (p->n < (o->count + o->limit - 1) / o->limit) {
                r = pool_grow(p, o);
                if (r < 0)
                        goto out;
        }
        rss0 = daemon_rss_kib(o->daemon_pid);
        for (sent = 0; sent < o->count; sent++) {
                struct coap_client_request req = make_request(COAP_METHOD_GET, o->path, &xs[sent]);

                r = pool_send(p, o, &req, false);
                if (r < 0) {
                        fprintf(stderr, "request %u: %s\n", sent, strerror(-r));
                        goto out;
                }
        }
        /* Submission does not wait for the daemon: read its RSS once it holds them all. */
        r = await_daemon_requests(o->count);
        if (r < 0) {
                fprintf(stderr, "the daemon never had %u requests in flight: %s\n", o->count,
                        strerror(-r));
                goto out;
        }
        rss1 = daemon_rss_kib(o->daemon_pid);
        if (!wait_completed(o->count)) {
                r = -ETIMEDOUT;
                goto out;
        }
        printf("coapclient_bench mode=inflight count=%u contexts=%u ok=%u bad=%u rss0_kib=%ld "
               "rss1_kib=%ld rss_per_item_b=%.1f\n",
               o->count, p->n, bench.completed - bench.failed, bench.failed, rss0, rss1,
               (rss1 - rss0) * 1024.0 / o->count);
        r = bench.failed ? -EIO : 0;
out:
        free(xs);
        return r;
}

/* observe: what each caller counts, in memory shared with the parent; one writer each (the
 * caller's library thread). */
typedef struct ObserveCounters {
        atomic_uint registered, failed;
        atomic_uint_fast64_t delivered, out_of_order;
} ObserveCounters;

/* What all callers share. dtls: a semaphore that keeps at most HANDSHAKE_WINDOW handshakes
 * under way (coap-server-gnutls drops new handshakes beyond about a hundred in progress, and
 * each dropped one costs a 1 s retransmission). observe: the window, as the peer's ticks: a
 * notification counts as delivered when its Observe value (its tick) is in it, whenever it
 * arrives before the window is read. */
#define HANDSHAKE_WINDOW 64
typedef struct Shared {
        sem_t handshakes;
        atomic_uint window_first, window_last;
} Shared;

static Shared *shared;

typedef struct Observation {
        ObserveCounters *counters;
        uint32_t last_seq;
        bool registered;
} Observation;

static void on_notification(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                            bool last_block, void *user_data) {
        Observation *ob = user_data;
        struct coap_client_response_info info;

        (void) offset, (void) payload, (void) len, (void) last_block;
        if (code < 0 || COAP_RESPONSE_CODE_CLASS(code) != 2 ||
            coap_client_get_response_info(&info) < 0 || !info.has_observe) {
                if (atomic_fetch_add(&ob->counters->failed, 1) < 3)
                        fprintf(stderr, "observation failed: code %d\n", code);
                return;
        }
        /* the peer counts one per second from 0; no wrap-around within a run */
        if (ob->registered && info.observe <= ob->last_seq)
                atomic_fetch_add_explicit(&ob->counters->out_of_order, 1, memory_order_relaxed);
        ob->last_seq = info.observe;
        if (!ob->registered) {
                ob->registered = true;
                atomic_fetch_add(&ob->counters->registered, 1);
        } else if (info.observe >= atomic_load(&shared->window_first) &&
                   info.observe <= atomic_load(&shared->window_last))
                atomic_fetch_add_explicit(&ob->counters->delivered, 1, memory_order_relaxed);
}

/* The end of a DTLS session's first exchange: the handshake is done. */
static void on_session_up(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                          bool last_block, void *user_data) {
        ObserveCounters *counters = user_data;

        (void) offset, (void) payload, (void) len;
        if (!last_block)
                return;
        sem_post(&shared->handshakes);
        if (code < 0 || COAP_RESPONSE_CODE_CLASS(code) != 2) {
                if (atomic_fetch_add(&counters->failed, 1) < 3)
                        fprintf(stderr, "DTLS exchange failed: code %d\n", code);
        } else
                atomic_fetch_add(&counters->registered, 1);
}

/* The observation that holds a DTLS session for the run: a request waiting for a separate
 * response would not (the daemon gives up on one after 6 s and resets the session). */
static void on_hold(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                    bool last_block, void *user_data) {
        (void) code, (void) offset, (void) payload, (void) len, (void) last_block, (void) user_data;
}

static int setup_psk(void) {
        static const char id[] = "CoAP", key[] = "secretPSK";
        int r = coap_client_tls_credential_add(1, COAP_CLIENT_TLS_CREDENTIAL_PSK_ID, id,
                                               strlen(id));

        return r < 0 ? r
                     : coap_client_tls_credential_add(1, COAP_CLIENT_TLS_CREDENTIAL_PSK, key,
                                                      strlen(key));
}

/* Starts the exchanges of one context: an observation, (dtls) beside a GET of /small whose
 * answer says the session is up. */
static int start_exchanges(const Options *o, struct coap_client *c, int fd, Observation *ob,
                           ObserveCounters *counters) {
        static const struct coap_client_option observe = {.code = COAP_OPTION_OBSERVE};
        struct coap_client_request req = {
                .method = COAP_METHOD_GET,
                .confirmable = true,
                .path = o->path,
                .cb = on_notification,
                .options = &observe,
                .num_options = 1,
                .user_data = ob,
        };
        int r;

        if (!o->dtls)
                return coap_client_req(c, fd, NULL, &req, NULL);
        while (sem_wait(&shared->handshakes) < 0)
                if (errno != EINTR)
                        return -errno;
        req.cb = on_hold;
        req.user_data = NULL;
        r = coap_client_req(c, fd, NULL, &req, NULL);
        if (r < 0)
                return r;
        req = make_request(COAP_METHOD_GET, "small", NULL);
        req.cb = on_session_up;
        req.user_data = counters;
        return coap_client_req(c, fd, NULL, &req, NULL);
}

/* A caller of run_observe: count contexts with their own sockets; their exchanges start once go
 * closes and are held until hold closes. */
static _Noreturn void hold_callers(const Options *o, unsigned count, ObserveCounters *counters,
                                   int ready, int go, int hold) {
        struct coap_client *c = calloc(count, sizeof(*c));
        Observation *obs = calloc(count, sizeof(*obs));
        int *fds = calloc(count, sizeof(int));
        const int tags[] = {1};
        char byte = 1;

        if (!c || !obs || !fds || (o->dtls && setup_psk() < 0))
                _exit(1);
        for (unsigned i = 0; i < count; i++) {
                int r = coap_client_init(&c[i], "scale");

                if (r >= 0 && o->dtls)
                        r = coap_client_set_tls(&c[i], tags, 1, NULL, 0);
                if (r < 0) {
                        fprintf(stderr, "context #%u: %s\n", i, strerror(-r));
                        _exit(1);
                }
                obs[i].counters = counters;
                /* the sockets stay open in this process: the daemon reads its duplicates */
                fds[i] = udp_connect(o);
                if (fds[i] < 0) {
                        fprintf(stderr, "socket #%u: %s\n", i, strerror(-fds[i]));
                        _exit(1);
                }
        }
        if (write(ready, &byte, 1) != 1)
                _exit(1);
        (void) read(go, &byte, 1);
        for (unsigned i = 0; i < count; i++) {
                int r = start_exchanges(o, &c[i], fds[i], &obs[i], counters);

                if (r < 0) {
                        fprintf(stderr, "coap_client_req #%u: %s\n", i, strerror(-r));
                        atomic_fetch_add(&counters->failed, 1);
                }
        }
        (void) read(hold, &byte, 1);
        _exit(0);
}

/* The peer's stats line: ticks, notifications sent so far, time of the last tick. */
static int read_peer_stats(const char *path, unsigned *ticks, uint64_t *sent, uint64_t *tick_ns) {
        unsigned long long s, t;
        unsigned n, observers;
        FILE *f = fopen(path, "re");
        int k;

        if (!f)
                return -errno;
        k = fscanf(f, "ticks=%u observers=%u sent=%llu tick_ns=%llu", &n, &observers, &s, &t);
        fclose(f);
        if (k != 4)
                return -EIO;
        *ticks = n;
        *sent = s;
        *tick_ns = t;
        return 0;
}

/* Waits until the peer has made tick (its stats are written after the tick's notifications
 * went out); returns its sent count then. -ETIME if we looked too late to see that tick. */
static int await_peer_tick(const char *path, unsigned tick, uint64_t *sent) {
        for (;;) {
                uint64_t tick_ns;
                unsigned ticks;
                int r = read_peer_stats(path, &ticks, sent, &tick_ns);

                if (r < 0)
                        return r;
                if (ticks == tick)
                        return 0;
                if (ticks > tick)
                        return -ETIME;
                usleep(5000);
        }
}

static uint64_t sum_delivered(ObserveCounters *c, unsigned n, uint64_t *out_of_order,
                              unsigned *registered, unsigned *failed) {
        uint64_t d = 0;

        *out_of_order = 0;
        *registered = *failed = 0;
        for (unsigned i = 0; i < n; i++) {
                d += atomic_load(&c[i].delivered);
                *out_of_order += atomic_load(&c[i].out_of_order);
                *registered += atomic_load(&c[i].registered);
                *failed += atomic_load(&c[i].failed);
        }
        return d;
}

static int run_observe(const Options *o) {
        ObserveCounters *counters;
        unsigned forked = 0, ready = 0, registered = 0, failed = 0, ticks0, ticks1;
        int ready_pipe[2], go_pipe[2], hold_pipe[2], r = 0;
        uint64_t t0, t_reg, w0, w1, tick_ns, sent0, sent1, d1, ooo;
        int64_t cpu0, cpu1, peer0, peer1;
        long rss0;
        char byte;

        counters = mmap(NULL, o->procs * sizeof(ObserveCounters) + sizeof(Shared),
                        PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (counters == MAP_FAILED)
                return -errno;
        shared = (Shared *) (counters + o->procs);
        /* nothing counts until the window is set */
        atomic_store(&shared->window_first, UINT32_MAX);
        if (sem_init(&shared->handshakes, 1, HANDSHAKE_WINDOW) < 0)
                return -errno;
        if (pipe2(ready_pipe, O_CLOEXEC) < 0 || pipe2(go_pipe, O_CLOEXEC) < 0 ||
            pipe2(hold_pipe, O_CLOEXEC) < 0)
                return -errno;
        for (unsigned i = 0; i < o->procs; i++) {
                unsigned share = o->count / o->procs + (i < o->count % o->procs);
                pid_t pid = fork();

                if (pid < 0) {
                        r = -errno;
                        break;
                }
                if (pid == 0) {
                        close(ready_pipe[0]);
                        close(go_pipe[1]);
                        close(hold_pipe[1]);
                        hold_callers(o, share, &counters[i], ready_pipe[1], go_pipe[0],
                                     hold_pipe[0]);
                }
                forked++;
        }
        close(ready_pipe[1]);
        close(go_pipe[0]);
        close(hold_pipe[0]);
        while (ready < forked && read(ready_pipe[0], &byte, 1) == 1)
                ready++;
        if (r < 0 || ready < forked) {
                fprintf(stderr, "%u of %u callers failed to open their contexts\n", forked - ready,
                        forked);
                r = r < 0 ? r : -EIO;
                goto out;
        }
        /* the callers' contexts (and with DTLS their credentials and the module) are in */
        rss0 = daemon_rss_kib(o->daemon_pid);
        /* every caller starts at once */
        cpu0 = proc_cpu_us(o->daemon_pid);
        t0 = now_ns();
        close(go_pipe[1]);
        go_pipe[1] = -1;
        t_reg = 0;
        for (unsigned last = 0, stalled = 0; stalled < STALL_SEC * 100; stalled++) {
                (void) sum_delivered(counters, forked, &ooo, &registered, &failed);
                if (registered + failed >= o->count) {
                        t_reg = now_ns();
                        break;
                }
                if (registered != last)
                        stalled = 0;
                last = registered;
                usleep(10000);
        }
        if (t_reg == 0)
                fprintf(stderr, "only %u of %u %s\n", registered, o->count,
                        o->dtls ? "DTLS sessions up" : "observations registered");
        if (o->dtls) {
                long rss1 = daemon_rss_kib(o->daemon_pid);

                cpu1 = proc_cpu_us(o->daemon_pid);
                printf("coapclient_bench mode=dtls sessions=%u procs=%u up=%u failed=%u "
                       "handshake_s=%.3f handshakes_per_s=%.0f rss0_kib=%ld rss1_kib=%ld "
                       "rss_per_session_b=%.1f daemon_cpu_us=%.1f\n",
                       o->count, o->procs, registered, failed, t_reg ? (t_reg - t0) / 1e9 : -1.0,
                       t_reg ? registered / ((t_reg - t0) / 1e9) : 0.0, rss0, rss1,
                       (rss1 - rss0) * 1024.0 / o->count,
                       registered ? (double) (cpu1 - cpu0) / registered : -1.0);
                r = registered < o->count ? -EIO : 0;
                goto out;
        }

        /* The window: the notifications of the peer's next SECS ticks, counted by their Observe
         * value; read half a second after the last of them went out. */
        r = read_peer_stats(o->stats, &ticks0, &sent0, &tick_ns);
        if (r >= 0)
                r = await_peer_tick(o->stats, ++ticks0, &sent0);
        if (r < 0)
                goto out;
        atomic_store(&shared->window_last, ticks0 + o->secs);
        atomic_store(&shared->window_first, ticks0 + 1);
        w0 = now_ns();
        cpu0 = proc_cpu_us(o->daemon_pid);
        peer0 = o->peer_pid > 0 ? proc_cpu_us(o->peer_pid) : 0;
        ticks1 = ticks0 + o->secs;
        r = await_peer_tick(o->stats, ticks1, &sent1);
        if (r < 0)
                goto out;
        usleep(500000);
        w1 = now_ns();
        cpu1 = proc_cpu_us(o->daemon_pid);
        peer1 = o->peer_pid > 0 ? proc_cpu_us(o->peer_pid) : 0;
        d1 = sum_delivered(counters, forked, &ooo, &registered, &failed);

        printf("coapclient_bench mode=observe count=%u procs=%u registered=%u failed=%u "
               "register_s=%.3f window_s=%u expected=%llu delivered=%llu out_of_order=%llu "
               "daemon_cpu_pct=%.2f daemon_rss_kib=%ld rss0_kib=%ld cpu_per_notification_us=%.2f "
               "peer_cpu_pct=%.2f\n",
               o->count, o->procs, registered, failed, t_reg ? (t_reg - t0) / 1e9 : -1.0,
               ticks1 - ticks0, (unsigned long long) (sent1 - sent0), (unsigned long long) d1,
               (unsigned long long) ooo, (cpu1 - cpu0) * 1e5 / (double) (w1 - w0),
               daemon_rss_kib(o->daemon_pid), rss0,
               d1 > 0 ? (double) (cpu1 - cpu0) / (double) d1 : -1.0,
               (peer1 - peer0) * 1e5 / (double) (w1 - w0));
        if (registered < o->count || failed > 0 || ooo > 0 || d1 < sent1 - sent0)
                r = -EIO;
out:
        if (go_pipe[1] >= 0)
                close(go_pipe[1]);
        close(hold_pipe[1]);
        close(ready_pipe[0]);
        while (forked > 0 && wait(NULL) > 0)
                forked--;
        sem_destroy(&shared->handshakes);
        munmap(counters, o->procs * sizeof(ObserveCounters) + sizeof(Shared));
        return r;
}

static _Noreturn void usage(void) {
        fprintf(stderr, "usage: coapclient_bench --daemon-pid PID [--bus-pid PID] [--peer-pid PID] "
                        "seq|window|get|put|contexts|"
                        "inflight|observe|dtls [-n N] [-w W] [-s SIZE] [-b BLOCK] [-c COUNT] "
                        "[-P PROCS] [-L LIMIT] [-p PATH] [-S STATS] [-t SECS] [-x] HOST PORT\n");
        exit(2);
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                {"daemon-pid", required_argument, NULL, 'D'},
                {"bus-pid", required_argument, NULL, 'B'},
                {"peer-pid", required_argument, NULL, 'R'},
                {},
        };
        Options o = {
                .path = "small", .n = 10000, .window = 1, .block = 1024, .procs = 1, .secs = 10};
        Pool pool = {0};
        int opt, r;

        while ((opt = getopt_long(argc, argv, "+D:B:R:", longopts, NULL)) != -1) {
                if (opt == 'D')
                        o.daemon_pid = atoi(optarg);
                else if (opt == 'B')
                        o.bus_pid = atoi(optarg);
                else if (opt == 'R')
                        o.peer_pid = atoi(optarg);
                else
                        usage();
        }
        if (optind >= argc || o.daemon_pid <= 0)
                usage();
        o.mode = argv[optind];
        optind++;
        while ((opt = getopt(argc, argv, "n:w:s:b:c:P:L:p:S:t:x")) != -1) {
                switch (opt) {
                case 'n':
                        o.n = strtoul(optarg, NULL, 10);
                        break;
                case 'w':
                        o.window = strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        o.size = strtoul(optarg, NULL, 10);
                        break;
                case 'b':
                        o.block = strtoul(optarg, NULL, 10);
                        break;
                case 'c':
                        o.count = strtoul(optarg, NULL, 10);
                        break;
                case 'P':
                        o.procs = strtoul(optarg, NULL, 10);
                        break;
                case 'L':
                        o.limit = strtoul(optarg, NULL, 10);
                        break;
                case 'p':
                        o.path = optarg;
                        break;
                case 'S':
                        o.stats = optarg;
                        break;
                case 't':
                        o.secs = strtoul(optarg, NULL, 10);
                        break;
                case 'x':
                        external = true;
                        break;
                default:
                        usage();
                }
        }
        if (argc - optind != 2 || o.window == 0 || o.procs == 0)
                usage();
        o.host = argv[optind];
        o.port = (uint16_t) atoi(argv[optind + 1]);
        if (external) {
                if (strcmp(o.mode, "seq") != 0 && strcmp(o.mode, "window") != 0 &&
                    strcmp(o.mode, "get") != 0 && strcmp(o.mode, "put") != 0)
                        usage();
                r = coap_client_loop_external();
                if (r < 0) {
                        fprintf(stderr, "coap_client_loop_external: %s\n", strerror(-r));
                        return 1;
                }
        }

        if (strcmp(o.mode, "seq") == 0 || strcmp(o.mode, "window") == 0) {
                if (strcmp(o.mode, "seq") == 0)
                        o.window = 1;
                r = o.n > 0 ? run_gets(&o, &pool) : -EINVAL;
        } else if (strcmp(o.mode, "get") == 0 || strcmp(o.mode, "put") == 0)
                r = o.size > 0 ? run_blockwise(&o, &pool, o.mode[0] == 'p') : -EINVAL;
        else if (strcmp(o.mode, "contexts") == 0)
                r = o.count >= o.procs ? run_contexts(&o) : -EINVAL;
        else if (strcmp(o.mode, "observe") == 0)
                r = o.count >= o.procs && o.stats && o.secs > 0 ? run_observe(&o) : -EINVAL;
        else if (strcmp(o.mode, "dtls") == 0) {
                o.dtls = true;
                r = o.count >= o.procs ? run_observe(&o) : -EINVAL;
        } else if (strcmp(o.mode, "inflight") == 0)
                r = o.count > 0 && o.limit > 0 ? run_inflight(&o, &pool) : -EINVAL;
        else
                usage();
        if (r < 0)
                fprintf(stderr, "coapclient_bench %s: %s\n", o.mode, strerror(-r));
        /* contexts and sockets go with the process: the daemon frees what a caller leaves */
        return r < 0 ? 1 : 0;
}
