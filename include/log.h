/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Logging for the daemon and the CLI (house style H11): stderr, with
 * sd-daemon "<N>" priority prefixes when stderr is connected to journald
 * (JOURNAL_STREAM matches stderr's device and inode), plain otherwise.
 * Pure code (protocols/, safety, state) never logs; it returns errors.
 *
 * log_*_errno(r, ...) return -abs(r), so that
 *	return log_error_errno(r, "Failed to open %s: %s", path, strerror(-r));
 * reads naturally.
 */
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

/**
 * log_setup() - choose the output format and the maximum level.
 * @max_level: LOG_ERR..LOG_DEBUG; messages above it are dropped
 */
void log_setup(int max_level);

/**
 * log_set_max_level() - change the maximum level (SIGHUP, -v).
 */
void log_set_max_level(int max_level);

int log_get_max_level(void);

/**
 * log_set_debug_modules() - restrict debug output to a comma separated
 * list of modules ("can_bus,pylon_can"); NULL or "" = all modules.
 */
void log_set_debug_modules(const char *list);

/**
 * log_internal() - write one line. Return: -abs(@error) (0 if @error is 0).
 */
int log_internal(int level, int error, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#ifndef LOG_MODULE
#define LOG_MODULE NULL
#endif

#define log_full_errno(level, error, ...) log_internal((level), (error), LOG_MODULE, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(r, ...) log_full_errno(LOG_ERR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_full_errno(LOG_WARNING, (r), __VA_ARGS__)
#define log_debug_errno(r, ...) log_full_errno(LOG_DEBUG, (r), __VA_ARGS__)

/*
 * Rate limiting for repeating run-time conditions (CAN error frames,
 * Modbus timeouts, dropped frames): at most @burst messages per
 * @interval_usec; the first message after a suppressed stretch says how
 * many were suppressed.
 */
struct ratelimit {
	uint64_t interval_usec;
	unsigned burst;
	uint64_t begin_usec;
	unsigned num;
	unsigned suppressed;
};

#define RATELIMIT_INIT(interval, b) { .interval_usec = (interval), .burst = (b) }

/**
 * ratelimit_below() - whether a message may go out now.
 * @now_usec: CLOCK_MONOTONIC time
 * Return: true if allowed; rl->suppressed then holds the number dropped
 * since the last allowed message (and is reset by the next call).
 */
bool ratelimit_below(struct ratelimit *rl, uint64_t now_usec);

/**
 * log_ratelimit_internal() - log_internal() through @rl: nothing when over
 * the limit; the first line after a suppressed stretch ends with
 * "(N similar messages suppressed)", one line, not two.
 * Return: 1 if the line was written (or dropped only for its level), 0 if
 * the limit suppressed it.
 */
int log_ratelimit_internal(struct ratelimit *rl, uint64_t now_usec, int level, const char *module,
			   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * log_ratelimit(&rl, now_usec, LOG_WARNING, "fmt", ...): a repeating
 * run-time condition, e.g. with rl = RATELIMIT_INIT(60 * USEC_PER_SEC, 5)
 * kept beside the thing that repeats.
 */
#define log_ratelimit(rl, now, level, ...) \
	log_ratelimit_internal((rl), (now), (level), LOG_MODULE, __VA_ARGS__)
