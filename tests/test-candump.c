/* SPDX-License-Identifier: MIT */
/*
 * candump log lines: writer/reader round trip and strict rejection.
 * Reference lines are in the format can-utils 2020.11 `candump -l` writes
 * (lib.c sprint_canframe: 3 hex id digits for standard frames, 8 for
 * extended, data in upper-case hex, "R" for remote frames).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "candump.h"

static void test_format_standard(void **state)
{
	struct can_frame f = { .can_id = 0x351, .len = 8,
			       .data = { 0x28, 0x02, 0xe8, 0x03, 0xdc, 0x05, 0x00, 0x00 } };
	char line[CANDUMP_LINE_MAX];
	int n = candump_format(UINT64_C(1700000000123456), "can0", &f, line, sizeof(line));

	assert_string_equal(line, "(1700000000.123456) can0 351#2802E803DC050000\n");
	assert_int_equal(n, (int)strlen(line));
}

static void test_format_extended_remote_empty(void **state)
{
	struct can_frame ext = { .can_id = 0x18FF50E5 | CAN_EFF_FLAG, .len = 2, .data = { 1, 2 } };
	struct can_frame rtr = { .can_id = 0x123 | CAN_RTR_FLAG };
	struct can_frame empty = { .can_id = 0x305, .len = 0 };
	char line[CANDUMP_LINE_MAX];

	candump_format(1, "vcan1", &ext, line, sizeof(line));
	assert_string_equal(line, "(0.000001) vcan1 18FF50E5#0102\n");
	candump_format(2000000, "can0", &rtr, line, sizeof(line));
	assert_string_equal(line, "(2.000000) can0 123#R\n");
	candump_format(0, "can0", &empty, line, sizeof(line));
	assert_string_equal(line, "(0.000000) can0 305#\n");
}

static void test_format_errors(void **state)
{
	struct can_frame f = { .can_id = 0x1, .len = 9 };
	char line[CANDUMP_LINE_MAX];

	assert_int_equal(candump_format(0, "can0", &f, line, sizeof(line)), -EINVAL);
	f.len = 1;
	assert_int_equal(candump_format(0, "a-very-long-interface-name", &f, line, sizeof(line)),
			 -EINVAL);
	assert_int_equal(candump_format(0, "can0", &f, line, 10), -ENOBUFS);
}

static void test_parse(void **state)
{
	static const char line[] = "(1700000000.123456) can0 351#2802E803DC050000\n";
	struct can_frame f;
	char ifname[IFNAMSIZ];
	uint64_t t;

	assert_int_equal(candump_parse(line, strlen(line), &t, ifname, &f), 0);
	assert_int_equal(t, UINT64_C(1700000000123456));
	assert_string_equal(ifname, "can0");
	assert_int_equal(f.can_id, 0x351);
	assert_int_equal(f.len, 8);
	assert_int_equal(f.data[0], 0x28);
	assert_int_equal(f.data[7], 0x00);

	/* lower-case hex, no newline, extended id */
	assert_int_equal(candump_parse("(1.000000) vcan0 18ff50e5#abcd", 30, NULL, NULL, &f), 0);
	assert_int_equal(f.can_id, 0x18FF50E5 | CAN_EFF_FLAG);
	assert_int_equal(f.len, 2);
	assert_int_equal(f.data[1], 0xcd);
}

static void test_round_trip(void **state)
{
	char line[CANDUMP_LINE_MAX];

	for (unsigned len = 0; len <= 8; len++) {
		struct can_frame f = { .can_id = 0x7FF, .len = (uint8_t)len }, g;

		/* i < sizeof(f.data) too: gcc -O3 cannot see len <= 8 */
		for (unsigned i = 0; i < len && i < sizeof(f.data); i++) {
			f.data[i] = (uint8_t)(0xA5 ^ (i * 37));
		}
		int n = candump_format(UINT64_C(42000001), "can1", &f, line, sizeof(line));

		assert_true(n > 0);
		assert_int_equal(candump_parse(line, (size_t)n, NULL, NULL, &g), 0);
		assert_int_equal(g.can_id, f.can_id);
		assert_int_equal(g.len, f.len);
		assert_memory_equal(g.data, f.data, len);
	}
}

static void test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"351#00",				 /* no timestamp */
		"(1.0) can0 351#00",			 /* 1 decimal instead of 6 */
		"(1.000000)can0 351#00",		 /* missing space */
		"(1.000000) can0 3510#00",		 /* 4 id digits */
		"(1.000000) can0 351#0",		 /* odd hex */
		"(1.000000) can0 351#000102030405060708", /* 9 bytes */
		"(1.000000) can0 351#zz",		 /* not hex */
		"(1.000000) can0 351##1122",		 /* CAN FD */
		"(1.000000) can0 800#00",		 /* standard id > 0x7FF */
		"(1.000000) can0 3FFFFFFF#00",		 /* extended id > 29 bits */
		"(1.000000) can0 351#R00",		 /* junk after R */
		"(1.000000)  351#00",			 /* empty ifname */
		"(1.000000) ca\tn0 351#00",		 /* control byte in ifname */
		"(1.000000) abcdefghijklmnopq 351#00",	 /* ifname too long */
		"(1234567890123.000000) can0 351#00",	 /* absurd time */
	};
	struct can_frame f = { .can_id = 0xdead };
	/* found by fuzz-candump: a NUL inside the interface name */
	static const char nul_name[] = "(2.000000) \0nac 123#";

	assert_int_equal(candump_parse(nul_name, sizeof(nul_name) - 1, NULL, NULL, &f), -EBADMSG);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(candump_parse(bad[i], strlen(bad[i]), NULL, NULL, &f), -EBADMSG);
		assert_int_equal(f.can_id, 0xdead); /* untouched on error */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_standard),
		cmocka_unit_test(test_format_extended_remote_empty),
		cmocka_unit_test(test_format_errors),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_parse_rejects),
	};

	return cmocka_run_group_tests_name("candump", tests, NULL, NULL);
}
