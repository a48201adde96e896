/* SPDX-License-Identifier: MIT */
/*
 * src/pack_watch.c: packs online and silent, said once, in the caller's
 * module. The serial engine (JK-PB's lines as -d bms_modbus, the other
 * families' as -d bms_serial) and JK-PB's listener say their packs through it; the lines are the ones
 * tests/integration/test-jk-pb.py and test-bms-families.py wait for.
 * log_internal() is wrapped (-Wl,--wrap=log_internal): every line is kept
 * with its level and module.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "pack_watch.h"

#define LINES_MAX 16

static struct {
	int level;
	const char *module;
	char text[160];
} lines[LINES_MAX];
static unsigned n_lines;

int __wrap_log_internal(int level, int error, const char *module, const char *fmt, ...);

int __wrap_log_internal(int level, int error, const char *module, const char *fmt, ...)
{
	va_list ap;

	assert_true(n_lines < LINES_MAX);
	lines[n_lines].level = level;
	lines[n_lines].module = module;
	va_start(ap, fmt);
	vsnprintf(lines[n_lines].text, sizeof(lines[n_lines].text), fmt, ap);
	va_end(ap);
	n_lines++;
	return error > 0 ? -error : error;
}

static int reset(void **state)
{
	(void)state;
	memset(lines, 0, sizeof(lines));
	n_lines = 0;
	return 0;
}

/* a pack online, silent, reminded after ten minutes (not before), back */
static void test_said_once(void **state)
{
	struct pack_watch w = { .addr = 7 };
	uint64_t t = 5 * USEC_PER_SEC;

	(void)state;
	pack_watch_answered(&w, "bms_modbus", 1, t);
	pack_watch_answered(&w, "bms_modbus", 1, t + USEC_PER_SEC);
	assert_int_equal(n_lines, 1);
	assert_int_equal(lines[0].level, LOG_INFO);
	assert_string_equal(lines[0].module, "bms_modbus");
	assert_string_equal(lines[0].text, "Pack 2 (address 7) online");
	assert_true(w.online);

	t += 10 * USEC_PER_SEC;
	pack_watch_silent(&w, "bms_modbus", 1, t, "not answering");
	assert_int_equal(n_lines, 2);
	assert_int_equal(lines[1].level, LOG_WARNING);
	assert_string_equal(lines[1].text,
			    "Pack 2 (address 7) not answering; said once, the count is in STATUS");
	assert_false(w.online);
	assert_int_equal(w.silent_since_usec, t);

	/* every round for ten minutes less a microsecond: nothing more said */
	for (uint64_t u = t + USEC_PER_SEC; u < t + PACK_WATCH_REMIND_USEC; u += USEC_PER_SEC) {
		pack_watch_silent(&w, "bms_modbus", 1, u, "not answering");
	}
	assert_int_equal(n_lines, 2);
	assert_int_equal(w.silent_rounds, 600);
	pack_watch_silent(&w, "bms_modbus", 1, t + PACK_WATCH_REMIND_USEC, "not answering");
	assert_int_equal(n_lines, 3);
	assert_string_equal(lines[2].text,
			    "Pack 2 (address 7) still silent, for 600 s (601 rounds)");

	pack_watch_answered(&w, "bms_modbus", 1, t + PACK_WATCH_REMIND_USEC + 2500 * USEC_PER_MSEC);
	assert_int_equal(n_lines, 4);
	assert_int_equal(lines[3].level, LOG_INFO);
	assert_string_equal(
		lines[3].text,
		"Pack 2 (address 7) online again after 602.5 s silent (601 rounds missed)");
	assert_int_equal(w.silent_since_usec, 0);
	assert_int_equal(w.silent_rounds, 0);
}

/* never answered: the first missed round already says it; the module is the caller's */
static void test_never_online(void **state)
{
	struct pack_watch w = { .addr = 0 };

	(void)state;
	pack_watch_silent(&w, "bms_serial", 0, 1, "(the DIP-0 master) not heard");
	pack_watch_silent(&w, "bms_serial", 0, 2, "(the DIP-0 master) not heard");
	assert_int_equal(n_lines, 1);
	assert_string_equal(lines[0].module, "bms_serial");
	assert_string_equal(
		lines[0].text,
		"Pack 1 (address 0) (the DIP-0 master) not heard; said once, the count is in STATUS");
	assert_int_equal(w.silent_rounds, 2);
}

/* the STATUS phrase: the first silent pack by address, the others counted */
static void test_summary(void **state)
{
	struct outer {
		uint64_t before;
		struct pack_watch w;
		uint32_t after;
	} packs[3] = {
		{ .w = { .addr = 1, .online = true } },
		{ .w = { .addr = 2, .silent_since_usec = 3 * USEC_PER_SEC, .silent_rounds = 4 } },
		{ .w = { .addr = 3, .silent_since_usec = 9 * USEC_PER_SEC, .silent_rounds = 1 } },
	};
	char buf[64];

	(void)state;
	assert_int_equal(pack_watch_summary(&packs[0].w, sizeof(packs[0]), 3, 20 * USEC_PER_SEC,
					    buf, sizeof(buf)),
			 1);
	assert_string_equal(buf, ", @2 silent 17 s/4 rounds +more");
	assert_int_equal(pack_watch_summary(&packs[0].w, sizeof(packs[0]), 2, 20 * USEC_PER_SEC,
					    buf, sizeof(buf)),
			 1);
	assert_string_equal(buf, ", @2 silent 17 s/4 rounds");
	packs[1].w = (struct pack_watch){ .addr = 2, .online = true };
	packs[2].w.online = true;
	packs[2].w.silent_since_usec = 0;
	assert_int_equal(pack_watch_summary(&packs[0].w, sizeof(packs[0]), 3, 20 * USEC_PER_SEC,
					    buf, sizeof(buf)),
			 3);
	assert_string_equal(buf, "");
	/* a short buffer is cut, never overrun */
	packs[0].w = (struct pack_watch){ .addr = 15, .silent_since_usec = 1, .silent_rounds = 99 };
	assert_int_equal(
		pack_watch_summary(&packs[0].w, sizeof(packs[0]), 3, 20 * USEC_PER_SEC, buf, 8), 2);
	assert_string_equal(buf, ", @15 s");
	assert_int_equal(n_lines, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_said_once, reset),
		cmocka_unit_test_setup(test_never_online, reset),
		cmocka_unit_test_setup(test_summary, reset),
	};

	return cmocka_run_group_tests_name("pack-watch", tests, NULL, NULL);
}
