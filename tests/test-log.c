/* SPDX-License-Identifier: MIT */
/*
 * The rate limiter: at most a burst of lines per interval, and the first
 * line after a suppressed stretch says how many were dropped, on that
 * same line (one event, one line).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ratelimit_below),
		cmocka_unit_test(test_log_ratelimit_one_line),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
