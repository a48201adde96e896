/* SPDX-License-Identifier: MIT */
/*
 * protocols/modbus_rtu.c, the master's side of a Modbus RTU read shared by
 * the Modbus families. The CRC against the specification's own example
 * ("MODBUS over Serial Line" V1.02 §6.2.2: 02 07 -> 0x1241, sent 41 12)
 * and against real requests: EG4 "01 03 00 00 00 27 05 D0"
 * (patman15/aiobmsble tests/bms/test_eg4_bms.py), Pace "01 03 00 00 00 25
 * 84 11" (a BLE capture in a public notes file, as tests/test-pace-modbus.c
 * says) and the JK-PB trigger "01 10 16 20 00 01 02 00 00 D6 F1"
 * (shining-man/bsc_fw#118). Then the answer finder on a bus with echoes,
 * other nodes, other masters and noise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "modbus_rtu.h"

static void test_crc(void **state)
{
	static const uint8_t spec[] = { 0x02, 0x07 };
	static const uint8_t jk[] = { 0x01, 0x10, 0x16, 0x20, 0x00, 0x01,
				      0x02, 0x00, 0x00, 0xD6, 0xF1 };
	static const uint8_t eg4[] = { 0x01, 0x03, 0x00, 0x00, 0x00, 0x27, 0x05, 0xD0 };
	static const uint8_t pace[] = { 0x01, 0x03, 0x00, 0x00, 0x00, 0x25, 0x84, 0x11 };
	uint8_t buf[MODBUS_READ_LEN];

	(void)state;
	assert_int_equal(modbus_crc16(spec, sizeof(spec)), 0x1241);
	assert_true(modbus_crc_ok(jk, sizeof(jk)));
	assert_false(modbus_crc_ok(jk, sizeof(jk) - 1));
	assert_false(modbus_crc_ok(jk, 2));
	assert_int_equal(modbus_build_read(1, 0x03, 0, 39, buf), MODBUS_READ_LEN);
	assert_memory_equal(buf, eg4, sizeof(eg4));
	modbus_build_read(1, 0x03, 0, 37, buf);
	assert_memory_equal(buf, pace, sizeof(pace));
}

/* an answer of @addr, @fn with @n data bytes (value i + @seed) into @out */
static size_t answer(uint8_t addr, uint8_t fn, size_t n, uint8_t seed, uint8_t *out)
{
	uint16_t crc;

	out[0] = addr;
	out[1] = fn;
	out[2] = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		out[3 + i] = (uint8_t)(i + seed);
	}
	crc = modbus_crc16(out, 3 + n);
	out[3 + n] = (uint8_t)crc;
	out[4 + n] = (uint8_t)(crc >> 8);
	return 5 + n;
}

static void test_frame(void **state)
{
	const uint32_t fns = MODBUS_FN(0x03);
	uint8_t req[MODBUS_READ_LEN], other[MODBUS_READ_LEN], ans[5 + 78], buf[256];
	size_t n, skip = 0;

	(void)state;
	modbus_build_read(16, 0x03, 0, 39, req);
	n = answer(16, 0x03, 78, 0, ans);
	/* complete: its length; any prefix: more */
	assert_int_equal(modbus_frame_read(req, 78, fns, ans, n, &skip), (ssize_t)n);
	for (size_t k = 0; k < n; k++) {
		assert_int_equal(modbus_frame_read(req, 78, fns, ans, k, &skip), 0);
	}
	/* a bit flipped: not this answer */
	ans[40] ^= 0x10;
	assert_int_equal(modbus_frame_read(req, 78, fns, ans, n, &skip), -EBADMSG);
	ans[40] ^= 0x10;
	/* our own request echoed (two-wire), and then the answer */
	memcpy(buf, req, sizeof(req));
	memcpy(buf + sizeof(req), ans, n);
	assert_int_equal(modbus_frame_read(req, 78, fns, buf, 5, &skip), 0);
	assert_int_equal(modbus_frame_read(req, 78, fns, buf, sizeof(req) + n, &skip), -ENOMSG);
	assert_int_equal(skip, MODBUS_READ_LEN);
	/* another node's answer, another master's request to another node */
	n = answer(3, 0x03, 78, 7, buf);
	assert_int_equal(modbus_frame_read(req, 78, fns, buf, n, &skip), -ENOMSG);
	assert_int_equal(skip, n);
	modbus_build_read(5, 0x03, 0, 39, other);
	assert_int_equal(modbus_frame_read(req, 78, fns, other, sizeof(other), &skip), -ENOMSG);
	assert_int_equal(skip, MODBUS_READ_LEN);
	/* our address, another read's length */
	n = answer(16, 0x03, 10, 0, buf);
	assert_int_equal(modbus_frame_read(req, 78, fns, buf, n, &skip), -ENOMSG);
	assert_int_equal(skip, n);
	/* the exception answer: ours is an answer (the decoder reports it), another's skipped */
	buf[0] = 16;
	buf[1] = 0x83;
	buf[2] = 0x02;
	{
		uint16_t crc = modbus_crc16(buf, 3);

		buf[3] = (uint8_t)crc;
		buf[4] = (uint8_t)(crc >> 8);
	}
	assert_int_equal(modbus_frame_read(req, 78, fns, buf, 4, &skip), 0);
	assert_int_equal(modbus_frame_read(req, 78, fns, buf, 5, &skip), MODBUS_EXCEPTION_LEN);
	buf[4] ^= 1;
	assert_int_equal(modbus_frame_read(req, 78, fns, buf, 5, &skip), -EBADMSG);
	/* a function nobody uses on this bus starts nothing */
	buf[1] = 0x04;
	assert_int_equal(modbus_frame_read(req, 78, fns, buf, 5, &skip), -EBADMSG);
	assert_int_equal(modbus_frame_read(req, 78, fns | MODBUS_FN(0x04), buf, 5, &skip), 0);
	buf[1] = 0x7F;
	assert_int_equal(modbus_frame_read(req, 78, ~UINT32_C(0), buf, 5, &skip), -EBADMSG);
	buf[1] = 0xFF;
	assert_int_equal(modbus_frame_read(req, 78, ~UINT32_C(0), buf, 5, &skip), -EBADMSG);
	/* too short to tell */
	assert_int_equal(modbus_frame_read(req, 78, fns, buf, 1, &skip), 0);
	/* noise that makes no frame once long enough */
	memset(buf, 0x03, sizeof(buf));
	assert_int_equal(modbus_frame_read(req, 78, fns, buf, sizeof(buf), &skip), -EBADMSG);
	/* NULL skip is allowed */
	n = answer(3, 0x03, 78, 7, buf);
	assert_int_equal(modbus_frame_read(req, 78, fns, buf, n, NULL), -ENOMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc),
		cmocka_unit_test(test_frame),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
