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
 *
 * usage: coapclient_bench --daemon-pid PID [--bus-pid PID] MODE [options] HOST PORT
 * Prints lines of key=value results; daemon_cpu_us, bus_cpu_us and app_cpu_us are the
 * utime+stime per request (/proc/PID/stat) of coapclientd, dbus-daemon and this program with
 * the library's thread. Exits non-zero if any response is not 2.xx or a body is not
 * byte-exact. */

#include <arpa/inet.h>
#include <coapclient/coap_client.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
        pid_t daemon_pid, bus_pid;
        const char *mode, *host, *path;
        unsigned n, window, count, procs, block, limit;
        size_t size;
        uint16_t port;
} Options;

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* utime + stime of a process, in µs */
static int64_t proc_cpu_us(pid_t pid) {
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
        bool ok = code >= 0 && COAP_RESPONSE_CODE_CLASS(code) == 2;

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
                pthread_cond_signal(&bench.cond);
        }
        pthread_mutex_unlock(&bench.lock);
}

/* Waits until at least target exchanges completed; false after STALL_SEC without progress. */
static bool wait_completed(unsigned target) {
        unsigned last;
        bool ok = true;

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

static _Noreturn void usage(void) {
        fprintf(stderr, "usage: coapclient_bench --daemon-pid PID [--bus-pid PID] "
                        "seq|window|get|put|contexts|"
                        "inflight [-n N] [-w W] [-s SIZE] [-b BLOCK] [-c COUNT] [-P PROCS] "
                        "[-L LIMIT] [-p PATH] HOST PORT\n");
        exit(2);
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                {"daemon-pid", required_argument, NULL, 'D'},
                {"bus-pid", required_argument, NULL, 'B'},
                {},
        };
        Options o = {.path = "small", .n = 10000, .window = 1, .block = 1024, .procs = 1};
        Pool pool = {0};
        int opt, r;

        while ((opt = getopt_long(argc, argv, "+D:B:", longopts, NULL)) != -1) {
                if (opt == 'D')
                        o.daemon_pid = atoi(optarg);
                else if (opt == 'B')
                        o.bus_pid = atoi(optarg);
                else
                        usage();
        }
        if (optind >= argc || o.daemon_pid <= 0)
                usage();
        o.mode = argv[optind];
        optind++;
        while ((opt = getopt(argc, argv, "n:w:s:b:c:P:L:p:")) != -1) {
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
                default:
                        usage();
                }
        }
        if (argc - optind != 2 || o.window == 0 || o.procs == 0)
                usage();
        o.host = argv[optind];
        o.port = (uint16_t) atoi(argv[optind + 1]);

        if (strcmp(o.mode, "seq") == 0 || strcmp(o.mode, "window") == 0) {
                if (strcmp(o.mode, "seq") == 0)
                        o.window = 1;
                r = o.n > 0 ? run_gets(&o, &pool) : -EINVAL;
        } else if (strcmp(o.mode, "get") == 0 || strcmp(o.mode, "put") == 0)
                r = o.size > 0 ? run_blockwise(&o, &pool, o.mode[0] == 'p') : -EINVAL;
        else if (strcmp(o.mode, "contexts") == 0)
                r = o.count >= o.procs ? run_contexts(&o) : -EINVAL;
        else if (strcmp(o.mode, "inflight") == 0)
                r = o.count > 0 && o.limit > 0 ? run_inflight(&o, &pool) : -EINVAL;
        else
                usage();
        if (r < 0)
                fprintf(stderr, "coapclient_bench %s: %s\n", o.mode, strerror(-r));
        /* contexts and sockets go with the process: the daemon frees what a caller leaves */
        return r < 0 ? 1 : 0;
}
