/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int max_level = LOG_INFO;
static bool stderr_journal = false;
static LogTarget target = LOG_TARGET_AUTO;

static const char *const target_names[_LOG_TARGET_MAX] = {
        [LOG_TARGET_AUTO] = "auto",
        [LOG_TARGET_CONSOLE] = "console",
        [LOG_TARGET_JOURNAL] = "journal",
        [LOG_TARGET_NULL] = "null",
};

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",     [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcmp(s, level_names[i]) == 0)
                        return (int) i;
        if (strcmp(s, "error") == 0)
                return LOG_ERR;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        return level >= 0 && level < (int) ELEMENTSOF(level_names) ? level_names[level] : NULL;
}

LogTarget log_get_target(void) {
        return target;
}

void log_set_target(LogTarget t) {
        target = t;
}

int log_target_from_string(const char *s) {
        for (size_t i = 0; s && i < ELEMENTSOF(target_names); i++)
                if (strcmp(s, target_names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *log_target_to_string(LogTarget t) {
        return t < _LOG_TARGET_MAX ? target_names[t] : NULL;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_max_level(int level) {
        max_level = level;
}

/* JOURNAL_STREAM is "DEV:INO" of the stream systemd connected stdout/stderr to. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(void) {
        int level = log_level_from_string(getenv("SYSTEMD_LOG_LEVEL"));

        if (level >= 0)
                max_level = level;
        stderr_journal = stderr_is_journal();
}

int log_internal(int level, int error, const char *format, ...) {
        char buf[1024];
        va_list ap;

        error = abs(error);
        if (target == LOG_TARGET_NULL) {
                errno = error;
                return -error;
        }
        errno = error;
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);

        if (target == LOG_TARGET_JOURNAL || (target == LOG_TARGET_AUTO && stderr_journal))
                fprintf(stderr, "<%d>%s\n", level, buf);
        else
                fprintf(stderr, "coapclientd: %s\n", buf);
        return -error;
}
