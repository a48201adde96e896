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
#include <sys/stat.h>

#include "log.h"

static int max_level = LOG_INFO;
static bool journal_prefix;
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
	journal_prefix = stderr_is_journal();
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

	if (journal_prefix) {
		fprintf(stderr, "<%d>%s%s%s\n", level, module && level == LOG_DEBUG ? module : "",
			module && level == LOG_DEBUG ? ": " : "", buf);
	} else {
		fprintf(stderr, "bmsbridge: %s%s%s%s\n", level_word(level),
			module && level == LOG_DEBUG ? module : "",
			module && level == LOG_DEBUG ? ": " : "", buf);
	}
	errno = saved;
	return error == 0 ? 0 : -abs(error);
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
