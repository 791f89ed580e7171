/* SPDX-License-Identifier: MIT */
#pragma once

/* Daemon logging to stderr with syslog levels. When stderr is the journal (JOURNAL_STREAM),
 * lines carry a "<N>" priority prefix so journald keeps the level. */

#include <stdlib.h>
#include <syslog.h>

#include "internal/macro.h"

/* Reads SYSTEMD_LOG_LEVEL and JOURNAL_STREAM. */
void log_setup(void);

int log_get_max_level(void);
void log_set_max_level(int level);
/* "err", "warning", "notice", "info", "debug" (and the other syslog names, or 0..7). */
int log_level_from_string(const char *s);
/* The syslog name of a level 0..7, NULL otherwise. */
const char *log_level_to_string(int level);

/* Where lines go (org.freedesktop.LogControl1's LogTarget): "auto" (stderr, with journal
 * priority prefixes when stderr is the journal), "console" (stderr without them), "journal"
 * (stderr with them), "null" (nowhere). */
typedef enum LogTarget {
        LOG_TARGET_AUTO,
        LOG_TARGET_CONSOLE,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_NULL,
        _LOG_TARGET_MAX,
} LogTarget;

LogTarget log_get_target(void);
void log_set_target(LogTarget target);
int log_target_from_string(const char *s);
const char *log_target_to_string(LogTarget target);

/* Sets errno to |error| so that %m works; returns -|error| (or 0 when error is 0). */
int log_internal(int level, int error, const char *format, ...) _printf_(3, 4);

#define log_full_errno(level, error, ...)                                                    \
        ({                                                                                   \
                int _level_ = (level), _error_ = abs(error);                                 \
                log_get_max_level() >= _level_ ? log_internal(_level_, _error_, __VA_ARGS__) \
                                               : -_error_;                                   \
        })

#define log_full(level, ...) ((void) log_full_errno(level, 0, __VA_ARGS__))

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...)   log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...)    log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_notice_errno(error, ...)  log_full_errno(LOG_NOTICE, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...)   log_full_errno(LOG_ERR, error, __VA_ARGS__)
