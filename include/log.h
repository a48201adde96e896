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

/*
 * Structured journal entries: one MESSAGE_ID per event kind (the catalog,
 * systemd/bmsbridge.catalog, explains each for `journalctl -x`) and
 * BMSBRIDGE_* fields, so `journalctl MESSAGE_ID=...` and
 * `journalctl BMSBRIDGE_MODE=comm-loss` find them. Where they go:
 *   - stderr is the journal (JOURNAL_STREAM): one datagram in journald's
 *     native protocol to its socket (fields and all); if that fails, the
 *     "<N>" line as before, without the fields;
 *   - BMSBRIDGE_LOG_EXPORT=1 in the environment (the tests): every line,
 *     plain or structured, as an entry in journal export format on
 *     stderr (KEY=value lines, an empty line after each entry);
 *   - otherwise (a terminal, a pipe): the plain line, as every other.
 */
#define LOG_MSGID_SAFETY_MODE "284a0c43bb624b0cabe0ad7a7407cb1d"
#define LOG_MSGID_LIMIT_CUT "ca18fa2e0b444e03bf022f45d01fb138"
#define LOG_MSGID_PORT "b2dea24caa84471297a78d4b25799793"
#define LOG_MSGID_INVERTER "448d1ae2ed884906910044c12518ca42"
#define LOG_MSGID_PACK "b7a819639d104649a105b8874f46a41a"
#define LOG_MSGID_FAULT "087dabcbfd614feba2304b3f3f1e832c"
#define LOG_MSGID_FAULT_CLEARED "46687110f4614d28abe6966844079ce1"

struct log_field {
	const char *name;  /* "BMSBRIDGE_MODE": A-Z, 0-9, '_', not starting with '_' */
	const char *value; /* one line; a newline becomes a space */
};

/**
 * log_set_journal_socket() - where the structured entries go under journald
 * (NULL: /run/systemd/journal/socket). For the tests.
 */
void log_set_journal_socket(const char *path);

/**
 * log_field_name_valid() - whether @name may be a journal field name
 * (journald: 1-64 of A-Z, 0-9 and '_', not starting with '_' or a digit).
 */
bool log_field_name_valid(const char *name);

/**
 * log_format_fields() - the entry as "KEY=value\n" lines into @buf: MESSAGE,
 * PRIORITY, MESSAGE_ID (if not NULL), SYSLOG_IDENTIFIER, then @fields.
 * Fields with an invalid name or a NULL value are left out. Newlines in
 * values become spaces (so the text is both journald's native protocol
 * and export format, whose binary form we never need).
 * Return: the length written (without the NUL), or -ENOBUFS if @n is too
 * small (@buf then holds nothing usable).
 */
int log_format_fields(char *buf, size_t n, int level, const char *message_id,
		      const struct log_field *fields, size_t n_fields, const char *message);

/**
 * log_struct_internal() - log_internal() with a MESSAGE_ID and fields.
 */
void log_struct_internal(int level, const char *module, const char *message_id,
			 const struct log_field *fields, size_t n_fields, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* log_struct(LOG_WARNING, LOG_MSGID_X, fields, n, "fmt", ...) */
#define log_struct(level, id, fields, n, ...) \
	log_struct_internal((level), LOG_MODULE, (id), (fields), (n), __VA_ARGS__)

/*
 * A comm-loss cause (bmsbridge-troubleshooting(7)): raised once as a
 * warning with its hint, MESSAGE_ID LOG_MSGID_FAULT, BMSBRIDGE_FAULT=@fault
 * and BMSBRIDGE_HINT=@hint; cleared once as a notice, LOG_MSGID_FAULT_CLEARED.
 * The caller keeps the "said" flag (once per change) and any rate limit.
 * Faults: bms-never-heard, bms-silent, inverter-bus-error, inverter-no-ack,
 * inverter-silent, rs485-other-address, rs485-framing.
 */
void log_fault_internal(const char *module, bool raised, const char *fault, const char *hint,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* log_fault("rs485-framing", "check the baud rate: 9600 or 19200", "Framing noise on %s", tty) */
#define log_fault(fault, hint, ...) log_fault_internal(LOG_MODULE, true, (fault), (hint), __VA_ARGS__)
#define log_fault_cleared(fault, ...) \
	log_fault_internal(LOG_MODULE, false, (fault), NULL, __VA_ARGS__)
