/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal/macro.h"

/* A configuration file is a few hundred bytes; anything much larger is a mistake. */
#define CONFIG_FILE_SIZE_MAX (UINT64_C(1) << 20)

#define COUNT_MAX       UINT64_C(1000000)
#define PAYLOAD_MAX     (UINT64_C(1) << 30)
#define ACK_TIMEOUT_MAX (UINT64_C(600) * 1000) /* ms */
#define MSEC_PER_MIN    UINT64_C(60000)

typedef enum ConfigType {
        CONFIG_TYPE_COUNT,   /* decimal integer */
        CONFIG_TYPE_SIZE,    /* decimal integer, optional B/K/M/G (1024-based) suffix */
        CONFIG_TYPE_TIME_MS, /* "2", "2s", "1.5s", "500ms", "1min": seconds without a unit */
        CONFIG_TYPE_BLOCK,   /* a power of two */
} ConfigType;

typedef struct ConfigItem {
        const char *section;
        const char *key;
        ConfigType type;
        size_t offset;
        size_t size;
        uint64_t min, max;
} ConfigItem;

#define ITEM(sec, k, t, field, lo, hi)                                                  \
        {                                                                               \
                .section = sec, .key = k, .type = t, .offset = offsetof(Config, field), \
                .size = sizeof(((Config *) NULL)->field), .min = lo, .max = hi,         \
        }

static const ConfigItem config_items[] = {
        ITEM("Limits", "MaxCallers", CONFIG_TYPE_COUNT, max_callers, 1, COUNT_MAX),
        ITEM("Limits", "MaxCallersPerUser", CONFIG_TYPE_COUNT, max_callers_per_user, 1, COUNT_MAX),
        ITEM("Limits", "MaxChannelsPerUser", CONFIG_TYPE_COUNT, max_channels_per_user, 1,
             COUNT_MAX),
        ITEM("Limits", "MaxClientsPerUser", CONFIG_TYPE_COUNT, max_clients_per_user, 1, COUNT_MAX),
        ITEM("Limits", "MaxRequestsPerUser", CONFIG_TYPE_COUNT, max_requests_per_user, 1,
             COUNT_MAX),
        ITEM("Limits", "MaxPayloadBytesPerUser", CONFIG_TYPE_SIZE, max_payload_bytes_per_user, 1,
             UINT64_MAX / 2),
        ITEM("Limits", "MaxClientsPerCaller", CONFIG_TYPE_COUNT, max_clients_per_caller, 1,
             COUNT_MAX),
        ITEM("Limits", "MaxClients", CONFIG_TYPE_COUNT, max_clients, 1, COUNT_MAX),
        ITEM("Limits", "MaxRequestsPerClient", CONFIG_TYPE_COUNT, max_requests_per_client, 1,
             COUNT_MAX),
        ITEM("Limits", "MaxRequests", CONFIG_TYPE_COUNT, max_requests, 1, COUNT_MAX),
        ITEM("Limits", "MaxPayloadBytes", CONFIG_TYPE_SIZE, max_payload_bytes, 1, PAYLOAD_MAX),
        ITEM("Limits", "MaxPayloadBytesTotal", CONFIG_TYPE_SIZE, max_payload_bytes_total, 1,
             UINT64_MAX / 2),
        /* Twice this must stay well below dbus-daemon's max_incoming_bytes (127M). */
        ITEM("Limits", "MaxQueuedBytesPerCaller", CONFIG_TYPE_SIZE, max_queued_bytes_per_caller,
             UINT64_C(64) << 10, UINT64_C(32) << 20),
        ITEM("Defaults", "AckTimeoutSec", CONFIG_TYPE_TIME_MS, ack_timeout_ms, 1, ACK_TIMEOUT_MAX),
        /* Bounded so that the longest retransmission schedule stays far from overflowing. */
        ITEM("Defaults", "AckRandomPercent", CONFIG_TYPE_COUNT, ack_random_percent, 100, 1000),
        ITEM("Defaults", "BackoffPercent", CONFIG_TYPE_COUNT, backoff_percent, 100, 400),
        ITEM("Defaults", "MaxRetransmit", CONFIG_TYPE_COUNT, max_retransmit, 0, 10),
        /* RFC 7959: SZX 0..6. */
        ITEM("Defaults", "BlockSize", CONFIG_TYPE_BLOCK, block_size, 16, 1024),
};

void config_init_defaults(Config *c) {
        *c = (Config){
                .max_callers = CONFIG_DEFAULT_MAX_CALLERS,
                .max_callers_per_user = CONFIG_DEFAULT_MAX_CALLERS_PER_USER,
                .max_channels_per_user = CONFIG_DEFAULT_MAX_CHANNELS_PER_USER,
                .max_clients_per_user = CONFIG_DEFAULT_MAX_CLIENTS_PER_USER,
                .max_requests_per_user = CONFIG_DEFAULT_MAX_REQUESTS_PER_USER,
                .max_payload_bytes_per_user = CONFIG_DEFAULT_MAX_PAYLOAD_BYTES_PER_USER,
                .max_clients_per_caller = CONFIG_DEFAULT_MAX_CLIENTS_PER_CALLER,
                .max_clients = CONFIG_DEFAULT_MAX_CLIENTS,
                .max_requests_per_client = CONFIG_DEFAULT_MAX_REQUESTS_PER_CLIENT,
                .max_requests = CONFIG_DEFAULT_MAX_REQUESTS,
                .max_payload_bytes = CONFIG_DEFAULT_MAX_PAYLOAD_BYTES,
                .max_payload_bytes_total = CONFIG_DEFAULT_MAX_PAYLOAD_BYTES_TOTAL,
                .max_queued_bytes_per_caller = CONFIG_DEFAULT_MAX_QUEUED_BYTES_PER_CALLER,
                .ack_timeout_ms = 2000,
                .ack_random_percent = 150,
                .backoff_percent = 200,
                .max_retransmit = 4,
                .block_size = 1024,
        };
}

_printf_(4, 5) static int config_error(ConfigError *e, const char *file, unsigned line,
                                       const char *format, ...) {
        va_list ap;

        if (!e)
                return -EINVAL;
        snprintf(e->file, sizeof(e->file), "%s", file ? file : "<buffer>");
        e->line = line;
        va_start(ap, format);
        vsnprintf(e->message, sizeof(e->message), format, ap);
        va_end(ap);
        return -EINVAL;
}

/* Reads "[0-9]+" at *p, advancing *p. Rejects overflow past UINT64_MAX / 1000 so that callers
 * can scale by small factors without checking again. */
static int parse_digits(const char **p, uint64_t *ret) {
        const char *s = *p;
        uint64_t v = 0;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++) {
                v = v * 10 + (uint64_t) (*s - '0');
                if (v > UINT64_MAX / 1000 / 10)
                        return -ERANGE;
        }
        *p = s;
        *ret = v;
        return 0;
}

static int parse_count(const char *s, uint64_t *ret) {
        int r = parse_digits(&s, ret);
        if (r < 0)
                return r;
        return *s == '\0' ? 0 : -EINVAL;
}

static int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                unsigned shift;
        } units[] = {
                {"", 0}, {"B", 0}, {"K", 10}, {"M", 20}, {"G", 30},
        };
        uint64_t v;
        int r;

        r = parse_digits(&s, &v);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (strcmp(s, units[i].suffix) != 0)
                        continue;
                if (v > (UINT64_MAX >> units[i].shift))
                        return -ERANGE;
                *ret = v << units[i].shift;
                return 0;
        }
        return -EINVAL;
}

static int parse_time_ms(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t msec;
        } units[] = {
                {"", 1000}, {"s", 1000}, {"sec", 1000},
                {"ms", 1},  {"msec", 1}, {"min", MSEC_PER_MIN},
        };
        uint64_t whole, frac = 0, frac_div = 1;
        int r;

        r = parse_digits(&s, &whole);
        if (r < 0)
                return r;
        if (*s == '.') {
                s++;
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                /* Milliseconds of a minute need at most 5 decimals; more must be zeros. */
                for (; *s >= '0' && *s <= '9'; s++) {
                        if (frac_div >= 100000) {
                                if (*s != '0')
                                        return -EINVAL;
                                continue;
                        }
                        frac = frac * 10 + (uint64_t) (*s - '0');
                        frac_div *= 10;
                }
        }
        while (*s == ' ' || *s == '\t')
                s++;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (strcmp(s, units[i].suffix) != 0)
                        continue;
                if (whole > UINT64_MAX / MSEC_PER_MIN)
                        return -ERANGE;
                /* Below one millisecond cannot be represented: reject rather than round. */
                if ((frac * units[i].msec) % frac_div != 0)
                        return -EINVAL;
                *ret = whole * units[i].msec + frac * units[i].msec / frac_div;
                return 0;
        }
        return -EINVAL;
}

static int parse_value(const ConfigItem *item, const char *value, uint64_t *ret) {
        switch (item->type) {
        case CONFIG_TYPE_COUNT:
                return parse_count(value, ret);
        case CONFIG_TYPE_SIZE:
                return parse_size(value, ret);
        case CONFIG_TYPE_TIME_MS:
                return parse_time_ms(value, ret);
        case CONFIG_TYPE_BLOCK: {
                int r = parse_count(value, ret);
                if (r < 0)
                        return r;
                return (*ret & (*ret - 1)) == 0 ? 0 : -EINVAL;
        }
        }
        return -EINVAL;
}

static void item_store(Config *c, const ConfigItem *item, uint64_t v) {
        uint8_t *p = (uint8_t *) c + item->offset;

        switch (item->size) {
        case sizeof(uint8_t):
                *p = (uint8_t) v;
                break;
        case sizeof(uint16_t): {
                uint16_t x = (uint16_t) v;
                memcpy(p, &x, sizeof(x));
                break;
        }
        case sizeof(uint32_t): {
                uint32_t x = (uint32_t) v;
                memcpy(p, &x, sizeof(x));
                break;
        }
        default: {
                memcpy(p, &v, sizeof(v));
                break;
        }
        }
}

static const ConfigItem *item_find(const char *section, const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(config_items); i++)
                if (strcmp(config_items[i].section, section) == 0 &&
                    strcmp(config_items[i].key, key) == 0)
                        return &config_items[i];
        return NULL;
}

static bool section_known(const char *section) {
        for (size_t i = 0; i < ELEMENTSOF(config_items); i++)
                if (strcmp(config_items[i].section, section) == 0)
                        return true;
        return false;
}

static bool is_blank(char ch) {
        return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Strips blanks from both ends of a NUL-terminated string in place. */
static char *strip(char *s) {
        size_t n;

        while (is_blank(*s))
                s++;
        n = strlen(s);
        while (n > 0 && is_blank(s[n - 1]))
                s[--n] = '\0';
        return s;
}

static int parse_line(Config *c, const char *file, unsigned line_no, char *line, char *section,
                      size_t section_size, ConfigError *e) {
        const ConfigItem *item;
        char *eq, *key, *value;
        uint64_t v;
        int r;

        line = strip(line);
        if (line[0] == '\0' || line[0] == '#' || line[0] == ';')
                return 0;

        if (line[0] == '[') {
                size_t n = strlen(line);

                if (line[n - 1] != ']')
                        return config_error(e, file, line_no, "Invalid section header: '%.64s'",
                                            line);
                line[n - 1] = '\0';
                line++;
                if (!section_known(line))
                        return config_error(e, file, line_no, "Unknown section [%.64s]", line);
                snprintf(section, section_size, "%s", line);
                return 0;
        }

        eq = strchr(line, '=');
        if (!eq)
                return config_error(e, file, line_no, "Missing '=': '%.64s'", line);
        *eq = '\0';
        key = strip(line);
        value = strip(eq + 1);
        if (section[0] == '\0')
                return config_error(e, file, line_no,
                                    "Assignment outside of a section: %.64s=", key);
        item = item_find(section, key);
        if (!item)
                return config_error(e, file, line_no, "Unknown key %.64s= in section [%s]", key,
                                    section);

        if (value[0] == '\0') {
                Config defaults;

                config_init_defaults(&defaults);
                memcpy((uint8_t *) c + item->offset, (const uint8_t *) &defaults + item->offset,
                       item->size);
                return 0;
        }

        r = parse_value(item, value, &v);
        if (r < 0 || v < item->min || v > item->max)
                return config_error(e, file, line_no,
                                    "Invalid value for %s=: '%.64s' (allowed: %" PRIu64 "..%" PRIu64
                                    "%s)",
                                    item->key, value, item->min, item->max,
                                    item->type == CONFIG_TYPE_TIME_MS ? " ms"
                                    : item->type == CONFIG_TYPE_BLOCK ? ", a power of two"
                                                                      : "");
        item_store(c, item, v);
        return 0;
}

int config_parse_buffer(Config *c, const char *filename, const char *buf, size_t size,
                        ConfigError *ret_error) {
        _cleanup_free_ char *copy = NULL;
        char section[64] = "";
        Config tmp = *c;
        unsigned line_no = 1;
        char *p;

        if (memchr(buf, '\0', size))
                return config_error(ret_error, filename, 0, "File contains a NUL byte");

        copy = malloc(size + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, buf, size);
        copy[size] = '\0';

        p = copy;
        /* A UTF-8 byte order mark, as some editors write. */
        if (strncmp(p, "\xef\xbb\xbf", 3) == 0)
                p += 3;

        for (;;) {
                char *nl = strchr(p, '\n');
                int r;

                if (nl)
                        *nl = '\0';
                r = parse_line(&tmp, filename, line_no, p, section, sizeof(section), ret_error);
                if (r < 0)
                        return r;
                if (!nl)
                        break;
                p = nl + 1;
                line_no++;
        }

        *c = tmp;
        return 0;
}

int config_load_file(Config *c, const char *path, ConfigError *ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int r = -errno;
                (void) config_error(ret_error, path, 0, "Cannot open: %s", strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                (void) config_error(ret_error, path, 0, "Cannot stat: %s", strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                (void) config_error(ret_error, path, 0, "Not a regular file");
                return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        }

        buf = malloc(CONFIG_FILE_SIZE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + size, CONFIG_FILE_SIZE_MAX + 1 - size);
                if (n < 0) {
                        int r = -errno;
                        if (r == -EINTR)
                                continue;
                        (void) config_error(ret_error, path, 0, "Cannot read: %s", strerror(-r));
                        return r;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > CONFIG_FILE_SIZE_MAX) {
                        (void) config_error(ret_error, path, 0,
                                            "File larger than %" PRIu64 " bytes",
                                            CONFIG_FILE_SIZE_MAX);
                        return -EFBIG;
                }
        }

        return config_parse_buffer(c, path, buf, size, ret_error);
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* The names of the regular "*.conf" files in dir, sorted; hidden files are skipped. */
static int dropins_list(const char *dir, char ***ret, size_t *ret_n, ConfigError *e) {
        DIR *d;
        char **names = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;
        int r = 0;

        d = opendir(dir);
        if (!d) {
                if (errno == ENOENT) {
                        *ret = NULL;
                        *ret_n = 0;
                        return 0;
                }
                r = -errno;
                (void) config_error(e, dir, 0, "Cannot open directory: %s", strerror(-r));
                return r;
        }

        while ((errno = 0, de = readdir(d))) {
                size_t len = strlen(de->d_name);
                struct stat st;

                if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".conf") != 0)
                        continue;
                /* Follows symlinks: a link to /dev/null or to nothing is skipped (masked). */
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (n == allocated) {
                        size_t m = allocated ? allocated * 2 : 8;
                        char **t = realloc(names, m * sizeof(char *));
                        if (!t) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        names = t;
                        allocated = m;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        goto fail;
                }
                n++;
        }
        if (errno != 0) {
                r = -errno;
                (void) config_error(e, dir, 0, "Cannot read directory: %s", strerror(-r));
                goto fail;
        }
        closedir(d);

        if (n > 0)
                qsort(names, n, sizeof(char *), strcmp_ptr);
        *ret = names;
        *ret_n = n;
        return 0;

fail:
        closedir(d);
        strv_free(names, n);
        return r;
}

int config_load(Config *c, const char *main_path, const char *dropin_dir, ConfigError *ret_error) {
        Config tmp = *c;
        char **names = NULL;
        size_t n = 0;
        int r;

        if (main_path) {
                r = config_load_file(&tmp, main_path, ret_error);
                if (r < 0 && r != -ENOENT)
                        return r;
        }

        if (dropin_dir) {
                r = dropins_list(dropin_dir, &names, &n, ret_error);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *path = NULL;

                        if (asprintf(&path, "%s/%s", dropin_dir, names[i]) < 0) {
                                path = NULL;
                                r = -ENOMEM;
                                break;
                        }
                        r = config_load_file(&tmp, path, ret_error);
                        /* Removed since it was listed: as if it had never been there. */
                        if (r == -ENOENT)
                                r = 0;
                        if (r < 0)
                                break;
                }
                strv_free(names, n);
                if (r < 0)
                        return r;
        }

        *c = tmp;
        return 0;
}
