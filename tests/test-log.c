/* SPDX-License-Identifier: MIT */
/*
 * The rate limiter: at most a burst of lines per interval, and the first
 * line after a suppressed stretch says how many were dropped, on that
 * same line (one event, one line).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LOG_MODULE "test"
#include "log.h"
#include "macro.h"

static void test_ratelimit_below(void **state)
{
	struct ratelimit rl = RATELIMIT_INIT(10 * USEC_PER_SEC, 3);
	uint64_t t = 5 * USEC_PER_SEC;
	unsigned allowed = 0;

	for (int i = 0; i < 10; i++) {
		allowed += ratelimit_below(&rl, t + (uint64_t)i * USEC_PER_MSEC);
	}
	assert_int_equal(allowed, 3);
	/* still inside the interval */
	assert_false(ratelimit_below(&rl, t + 9 * USEC_PER_SEC));
	/* the next interval: allowed, and it knows 8 were dropped */
	assert_true(ratelimit_below(&rl, t + 10 * USEC_PER_SEC));
	assert_int_equal(rl.suppressed, 8);
	assert_true(ratelimit_below(&rl, t + 10 * USEC_PER_SEC + 1));
	assert_int_equal(rl.suppressed, 0);
	/* a quiet interval: nothing dropped, nothing to report */
	assert_true(ratelimit_below(&rl, t + 30 * USEC_PER_SEC));
	assert_int_equal(rl.suppressed, 0);
}

/* run @fn with stderr going to a file, return what it wrote */
static char *capture_stderr(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	char *buf = calloc(1, 8192);
	size_t n;

	assert_non_null(tmp);
	assert_non_null(buf);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(tmp), 2) >= 0);
	fn();
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, 8191, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return buf;
}

static void storm(void)
{
	struct ratelimit rl = RATELIMIT_INIT(60 * USEC_PER_SEC, 2);

	for (int i = 0; i < 100; i++) {
		log_ratelimit(&rl, USEC_PER_SEC + (uint64_t)i * USEC_PER_MSEC, LOG_WARNING,
			      "can0: bus-off %d", i);
	}
	log_ratelimit(&rl, 61 * USEC_PER_SEC, LOG_WARNING, "can0: bus-off again");
}

static void test_log_ratelimit_one_line(void **state)
{
	char *out;
	int lines = 0;

	log_setup(LOG_INFO);
	out = capture_stderr(storm);
	/* as TAP comments: bare lines on stdout would break the TAP stream */
	for (char *l = out, *e; *l; l = e + 1) {
		e = strchrnul(l, '\n');
		print_message("# %.*s\n", (int)(e - l), l);
		if (!*e) {
			break;
		}
	}
	for (char *p = out; (p = strchr(p, '\n')); p++) {
		lines++;
	}
	/* 2 of the burst, then one line that carries the count */
	assert_int_equal(lines, 3);
	assert_non_null(strstr(out, "bus-off 0\n"));
	assert_non_null(strstr(out, "bus-off 1\n"));
	assert_null(strstr(out, "bus-off 2\n"));
	assert_non_null(strstr(out, "can0: bus-off again (98 similar messages suppressed)\n"));
	free(out);
}

static void test_field_names(void **state)
{
	assert_true(log_field_name_valid("BMSBRIDGE_MODE"));
	assert_true(log_field_name_valid("MESSAGE_ID"));
	assert_true(log_field_name_valid("A1_2"));
	assert_false(log_field_name_valid(NULL));
	assert_false(log_field_name_valid(""));
	assert_false(log_field_name_valid("_PID")); /* trusted fields are journald's */
	assert_false(log_field_name_valid("1ST"));
	assert_false(log_field_name_valid("bmsbridge_mode")); /* lower case */
	assert_false(log_field_name_valid("BMS-MODE"));
	assert_false(log_field_name_valid("BMS=MODE"));
	assert_true(log_field_name_valid(
		"A234567890123456789012345678901234567890123456789012345678901234"));
	/* 64 characters above, 65 below */
	assert_false(log_field_name_valid(
		"A234567890123456789012345678901234567890123456789012345678901234X"));
}

static void test_format_fields(void **state)
{
	const struct log_field f[] = {
		{ "BMSBRIDGE_MODE", "comm-loss" },
		{ "bad name", "dropped" },
		{ "BMSBRIDGE_NULL", NULL },
		{ "BMSBRIDGE_REASON", "BMS silent\nfor 10 s" },
	};
	char buf[512];
	int n;

	n = log_format_fields(buf, sizeof(buf), LOG_WARNING, LOG_MSGID_SAFETY_MODE, f,
			      sizeof(f) / sizeof(f[0]), "Safety: normal -> comm-loss");
	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf, "MESSAGE=Safety: normal -> comm-loss\n"
				 "PRIORITY=4\n"
				 "MESSAGE_ID=" LOG_MSGID_SAFETY_MODE "\n"
				 "SYSLOG_IDENTIFIER=bmsbridged\n"
				 "BMSBRIDGE_MODE=comm-loss\n"
				 "BMSBRIDGE_REASON=BMS silent for 10 s\n");
	/* no id: no MESSAGE_ID line */
	n = log_format_fields(buf, sizeof(buf), LOG_INFO, NULL, NULL, 0, "hello");
	assert_string_equal(buf, "MESSAGE=hello\nPRIORITY=6\nSYSLOG_IDENTIFIER=bmsbridged\n");
	assert_int_equal(n, (int)strlen(buf));
	/* too small: an error, never a cut entry */
	assert_int_equal(log_format_fields(buf, 20, LOG_INFO, NULL, NULL, 0, "hello"), -ENOBUFS);
	assert_int_equal(log_format_fields(buf, 0, LOG_INFO, NULL, NULL, 0, "hello"), -ENOBUFS);
	/* 14 + 11 + 29 characters and the NUL */
	n = log_format_fields(buf, 55, LOG_INFO, NULL, NULL, 0, "hello");
	assert_int_equal(n, 54);
	assert_int_equal(log_format_fields(buf, 54, LOG_INFO, NULL, NULL, 0, "hello"), -ENOBUFS);
}

static void structured(void)
{
	const struct log_field f[] = { { "BMSBRIDGE_LIMIT", "CCL" },
				       { "BMSBRIDGE_VALUE_MA", "0" } };

	log_struct(LOG_NOTICE, LOG_MSGID_LIMIT_CUT, f, 2, "CCL cut to %u mA", 0u);
	log_warning("plain %d", 1);
}

static void test_export_format(void **state)
{
	char *out;

	setenv("BMSBRIDGE_LOG_EXPORT", "1", 1);
	log_setup(LOG_INFO);
	out = capture_stderr(structured);
	unsetenv("BMSBRIDGE_LOG_EXPORT");
	log_setup(LOG_INFO);
	assert_string_equal(out, "MESSAGE=CCL cut to 0 mA\n"
				 "PRIORITY=5\n"
				 "MESSAGE_ID=" LOG_MSGID_LIMIT_CUT "\n"
				 "SYSLOG_IDENTIFIER=bmsbridged\n"
				 "BMSBRIDGE_LIMIT=CCL\n"
				 "BMSBRIDGE_VALUE_MA=0\n"
				 "\n"
				 "MESSAGE=plain 1\n"
				 "PRIORITY=4\n"
				 "SYSLOG_IDENTIFIER=bmsbridged\n"
				 "\n");
	free(out);
	/* not the journal, no export: the plain line, fields left out */
	out = capture_stderr(structured);
	assert_string_equal(out, "bmsbridge: CCL cut to 0 mA\nbmsbridge: warning: plain 1\n");
	free(out);
}

/*
 * Under journald (JOURNAL_STREAM names stderr): a structured entry is one
 * datagram in the native protocol to the journal's socket, a plain line
 * stays on stderr with its <N> prefix, and with no socket the structured
 * one falls back to the <N> line.
 */
static void test_journal_native(void **state)
{
	char dir[] = "/tmp/bmsbridge-log-XXXXXX", path[64], env[64], buf[1024], *out;
	const struct log_field f[] = { { "BMSBRIDGE_MODE", "zero" } };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	FILE *tmp = tmpfile();
	struct stat st;
	int saved, sock;
	ssize_t n;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/socket", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(sock >= 0);
	assert_int_equal(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	log_set_journal_socket(path);

	/* stderr is "the journal": a file whose device and inode JOURNAL_STREAM names */
	assert_non_null(tmp);
	fflush(stderr);
	saved = dup(2);
	dup2(fileno(tmp), 2);
	assert_int_equal(fstat(2, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_setup(LOG_INFO);
	log_struct(LOG_WARNING, LOG_MSGID_SAFETY_MODE, f, 1, "Safety: normal -> zero");
	log_notice("plain");
	log_set_journal_socket("/nonexistent/socket");
	log_struct(LOG_WARNING, LOG_MSGID_SAFETY_MODE, f, 1, "no journal");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	unsetenv("JOURNAL_STREAM");
	log_set_journal_socket(NULL);
	log_setup(LOG_INFO);

	n = recv(sock, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "MESSAGE=Safety: normal -> zero\n"
				 "PRIORITY=4\n"
				 "MESSAGE_ID=" LOG_MSGID_SAFETY_MODE "\n"
				 "SYSLOG_IDENTIFIER=bmsbridged\n"
				 "BMSBRIDGE_MODE=zero\n");
	/* nothing more: the plain line and the fallback went to stderr */
	assert_true(recv(sock, buf, sizeof(buf), MSG_DONTWAIT) < 0);
	rewind(tmp);
	out = calloc(1, 256);
	assert_non_null(out);
	n = (ssize_t)fread(out, 1, 255, tmp);
	assert_string_equal(out, "<5>plain\n<4>no journal\n");
	free(out);
	fclose(tmp);
	close(sock);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ratelimit_below),
		cmocka_unit_test(test_log_ratelimit_one_line),
		cmocka_unit_test(test_field_names),
		cmocka_unit_test(test_format_fields),
		cmocka_unit_test(test_export_format),
		cmocka_unit_test(test_journal_native),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
