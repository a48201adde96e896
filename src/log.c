/* SPDX-License-Identifier: MIT */
/*
 * stderr logging with sd-daemon(3) priority prefixes under journald.
 *
 * systemd sets JOURNAL_STREAM=<dev>:<ino> for a service whose stderr goes
 * to the journal; if stderr still is that stream we prefix "<N>" so the
 * journal keeps the priority, otherwise (a terminal, a pipe, a test) the
 * line is plain with a short level word.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* journald's native protocol socket (systemd.journal-fields(7), "native protocol") */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static int max_level = LOG_INFO;
static bool journal_prefix;
static bool export_format; /* BMSBRIDGE_LOG_EXPORT=1: entries in export format */
static int journal_fd = -1;
static char journal_socket[sizeof(((struct sockaddr_un *)0)->sun_path)] = JOURNAL_SOCKET;
static char debug_modules[256];

static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2) {
		return false;
	}
	if (fstat(2, &st) < 0) {
		return false;
	}
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(int level)
{
	const char *e = getenv("BMSBRIDGE_LOG_EXPORT");

	journal_prefix = stderr_is_journal();
	export_format = e && strcmp(e, "1") == 0;
	log_set_max_level(level);
}

void log_set_max_level(int level)
{
	max_level = level < LOG_EMERG ? LOG_EMERG : level > LOG_DEBUG ? LOG_DEBUG : level;
}

int log_get_max_level(void)
{
	return max_level;
}

void log_set_debug_modules(const char *list)
{
	snprintf(debug_modules, sizeof(debug_modules), "%s", list ? list : "");
}

static bool module_enabled(const char *module)
{
	size_t n;

	if (debug_modules[0] == '\0') {
		return true;
	}
	if (!module) {
		return false;
	}
	n = strlen(module);
	for (const char *p = debug_modules; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && strncmp(p, module, n) == 0) {
			return true;
		}
		p += len + (end ? 1 : 0);
	}
	return false;
}

static const char *level_word(int level)
{
	switch (level) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error: ";
	case LOG_WARNING:
		return "warning: ";
	case LOG_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

void log_set_journal_socket(const char *path)
{
	snprintf(journal_socket, sizeof(journal_socket), "%s", path ? path : JOURNAL_SOCKET);
}

bool log_field_name_valid(const char *name)
{
	size_t n;

	if (!name || !name[0] || name[0] == '_' || (name[0] >= '0' && name[0] <= '9')) {
		return false;
	}
	for (n = 0; name[n]; n++) {
		char c = name[n];

		if (n >= 64 || !((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
			return false;
		}
	}
	return true;
}

/* "NAME=value\n" at @buf + *len, newlines in @value as spaces; false if it does not fit */
static bool put_field(char *buf, size_t n, size_t *len, const char *name, const char *value)
{
	size_t l = *len;

	for (const char *p = name; *p; p++) {
		if (l + 1 >= n) {
			return false;
		}
		buf[l++] = *p;
	}
	if (l + 1 >= n) {
		return false;
	}
	buf[l++] = '=';
	for (const char *p = value; *p; p++) {
		if (l + 1 >= n) {
			return false;
		}
		buf[l++] = *p == '\n' ? ' ' : *p;
	}
	if (l + 1 >= n) {
		return false;
	}
	buf[l++] = '\n';
	buf[l] = '\0';
	*len = l;
	return true;
}

int log_format_fields(char *buf, size_t n, int level, const char *message_id,
		      const struct log_field *fields, size_t n_fields, const char *message)
{
	char prio[4];
	size_t len = 0;

	if (n == 0) {
		return -ENOBUFS;
	}
	buf[0] = '\0';
	snprintf(prio, sizeof(prio), "%d", level & 7);
	if (!put_field(buf, n, &len, "MESSAGE", message) ||
	    !put_field(buf, n, &len, "PRIORITY", prio) ||
	    (message_id && !put_field(buf, n, &len, "MESSAGE_ID", message_id)) ||
	    !put_field(buf, n, &len, "SYSLOG_IDENTIFIER", "bmsbridged")) {
		return -ENOBUFS;
	}
	for (size_t i = 0; i < n_fields; i++) {
		if (!fields[i].value || !log_field_name_valid(fields[i].name)) {
			continue;
		}
		if (!put_field(buf, n, &len, fields[i].name, fields[i].value)) {
			return -ENOBUFS;
		}
	}
	return (int)len;
}

/* one datagram to journald; -errno if it did not take it */
static int journal_send(const char *entry, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memcpy(sa.sun_path, journal_socket, sizeof(sa.sun_path));

	if (journal_fd < 0) {
		journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (journal_fd < 0) {
			return -errno;
		}
	}
	if (sendto(journal_fd, entry, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		return -errno;
	}
	return 0;
}

/* one message, already formatted, to wherever log_setup() chose */
static void emit(int level, const char *module, const char *message_id,
		 const struct log_field *fields, size_t n_fields, const char *text)
{
	char msg[600];
	char entry[1536];
	int len;

	snprintf(msg, sizeof(msg), "%s%s%s", module && level == LOG_DEBUG ? module : "",
		 module && level == LOG_DEBUG ? ": " : "", text);
	if (export_format || (journal_prefix && message_id)) {
		len = log_format_fields(entry, sizeof(entry), level, message_id, fields, n_fields,
					msg);
		if (len > 0 && export_format) {
			/* export format: the entry, then an empty line */
			fprintf(stderr, "%s\n", entry);
			return;
		}
		if (len > 0 && journal_send(entry, (size_t)len) == 0) {
			return;
		}
	}
	if (journal_prefix) {
		fprintf(stderr, "<%d>%s\n", level, msg);
	} else {
		fprintf(stderr, "bmsbridge: %s%s\n", level_word(level), msg);
	}
}

int log_internal(int level, int error, const char *module, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int saved = errno;

	if (level > max_level || (level == LOG_DEBUG && !module_enabled(module))) {
		errno = saved;
		return error == 0 ? 0 : -abs(error);
	}

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	emit(level, module, NULL, NULL, 0, buf);
	errno = saved;
	return error == 0 ? 0 : -abs(error);
}

void log_struct_internal(int level, const char *module, const char *message_id,
			 const struct log_field *fields, size_t n_fields, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int saved = errno;

	if (level > max_level || (level == LOG_DEBUG && !module_enabled(module))) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	emit(level, module, message_id, fields, n_fields, buf);
	errno = saved;
}

bool ratelimit_below(struct ratelimit *rl, uint64_t now_usec)
{
	if (rl->begin_usec == 0 || now_usec - rl->begin_usec >= rl->interval_usec) {
		unsigned dropped = rl->num > rl->burst ? rl->num - rl->burst : 0;

		rl->begin_usec = now_usec ? now_usec : 1;
		rl->num = 1;
		rl->suppressed = dropped;
		return true;
	}
	if (rl->num++ < rl->burst) {
		rl->suppressed = 0;
		return true;
	}
	return false;
}

int log_ratelimit_internal(struct ratelimit *rl, uint64_t now_usec, int level, const char *module,
			   const char *fmt, ...)
{
	char buf[448];
	va_list ap;

	if (!ratelimit_below(rl, now_usec)) {
		return 0;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (rl->suppressed > 0) {
		log_internal(level, 0, module, "%s (%u similar messages suppressed)", buf,
			     rl->suppressed);
	} else {
		log_internal(level, 0, module, "%s", buf);
	}
	return 1;
}

void log_fault_internal(const char *module, bool raised, const char *fault, const char *hint,
			const char *fmt, ...)
{
	char buf[448];
	const struct log_field f[] = {
		{ "BMSBRIDGE_FAULT", fault },
		{ "BMSBRIDGE_HINT", hint },
	};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (raised) {
		log_struct_internal(LOG_WARNING, module, LOG_MSGID_FAULT, f, 2, "%s%s%s", buf,
				    hint ? ": " : "", hint ? hint : "");
	} else {
		log_struct_internal(LOG_NOTICE, module, LOG_MSGID_FAULT_CLEARED, f, 1, "%s", buf);
	}
}
