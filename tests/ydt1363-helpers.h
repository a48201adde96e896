/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Checks shared by the tests of the "~...\r" (YD/T 1363) BMS inputs:
 * Pylontech RS485, Seplos V2, Pace. Include after cmocka.h.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "pylontech_rs485.h"

/* an answer string's INFO as bytes, re-framed with @n_info of them kept */
static inline size_t ydt_reframe(const char *ans, size_t n_info, uint8_t *out, size_t n_out)
{
	uint8_t info[512];
	uint8_t rtn = 0;
	ssize_t n = pylon_rs485_answer_info((const uint8_t *)ans, strlen(ans), info, sizeof(info),
					    &rtn);
	struct pylon_rs485_head h;
	ssize_t len;

	assert_true(n >= 0);
	assert_int_equal(pylon_rs485_peek((const uint8_t *)ans, strlen(ans), &h), 0);
	if (n_info > (size_t)n) {
		n_info = (size_t)n;
	}
	len = pylon_rs485_request(h.ver, h.adr, rtn, info, n_info, out, n_out);
	assert_true(len > 0);
	/* pylon_rs485_request() writes CID1 0x46, like the answers */
	return (size_t)len;
}

/*
 * ->frame() on a real answer: complete -> its length; every proper prefix
 * -> 0 (more bytes); a flipped character -> -EBADMSG; noise in front ->
 * -EBADMSG; our own request echoed -> -ENOMSG with the echo's length to
 * skip; the same answer from another address -> -ENOMSG.
 */
static inline void ydt_check_framing(const struct bms_serial_ops *ops, unsigned step, uint8_t adr,
				     const char *ans)
{
	size_t len = strlen(ans), skip = 0;
	uint8_t buf[1024], req[64];
	ssize_t n;

	assert_true(len < sizeof(buf));
	memcpy(buf, ans, len);
	assert_int_equal(ops->frame(step, adr, buf, len, &skip), (ssize_t)len);
	/* followed by the start of the next frame: still only this one */
	buf[len] = '~';
	assert_int_equal(ops->frame(step, adr, buf, len + 1, &skip), (ssize_t)len);
	for (size_t i = 1; i < len; i++) {
		assert_int_equal(ops->frame(step, adr, buf, i, &skip), 0);
	}
	assert_int_equal(ops->frame(step, adr, buf, 0, &skip), 0);
	/* a flipped hex digit inside breaks CHKSUM (or LCHKSUM) */
	buf[len / 2] = buf[len / 2] == '0' ? '1' : '0';
	assert_int_equal(ops->frame(step, adr, buf, len, &skip), -EBADMSG);
	memcpy(buf, ans, len);
	/* noise in front: the engine drops a byte and tries again */
	buf[0] = 0x55;
	assert_int_equal(ops->frame(step, adr, buf, len, &skip), -EBADMSG);
	memcpy(buf, ans, len);
	/* a non-hex character inside */
	buf[5] = 'x';
	assert_int_equal(ops->frame(step, adr, buf, len, &skip), -EBADMSG);
	/* another address: skipped whole */
	skip = 0;
	assert_int_equal(ops->frame(step, (uint8_t)(adr + 1), (const uint8_t *)ans, len, &skip),
			 -ENOMSG);
	assert_int_equal(skip, len);
	/* our own request, echoed by a two-wire adapter */
	n = ops->request(step, adr, req, sizeof(req));
	assert_true(n > 0);
	skip = 0;
	assert_int_equal(ops->frame(step, adr, req, (size_t)n, &skip), -ENOMSG);
	assert_int_equal(skip, (size_t)n);
	/* no '\r' within answer_max: not a frame */
	memset(buf, '0', sizeof(buf));
	buf[0] = '~';
	assert_true(ops->answer_max < sizeof(buf));
	assert_int_equal(ops->frame(step, adr, buf, ops->answer_max, &skip), -EBADMSG);
	assert_int_equal(ops->frame(step, adr, buf, ops->answer_max - 1, &skip), 0);
}

/*
 * ->decode() on every truncation of a real answer's INFO (re-framed with a
 * right CHKSUM): the full one decodes, every shorter one that fails fails
 * with -EBADMSG and leaves the state untouched; none crashes. Returns how
 * many truncations were refused.
 */
static inline unsigned ydt_check_truncations(const struct bms_serial_ops *ops, unsigned step,
					     const char *ans)
{
	static struct battery_state bs, before;
	uint8_t frame[1024], info[512];
	ssize_t n_info = pylon_rs485_answer_info((const uint8_t *)ans, strlen(ans), info,
						 sizeof(info), NULL);
	unsigned refused = 0;

	assert_true(n_info > 0);
	for (size_t k = 0; k < (size_t)n_info; k++) {
		size_t len = ydt_reframe(ans, k, frame, sizeof(frame));
		int r;

		battery_state_init(&bs, 2);
		bs.packs[1].soc_pct = 42;
		before = bs;
		r = ops->decode(step, frame, len, 1, 5, &bs);
		if (r < 0) {
			assert_int_equal(r, -EBADMSG);
			assert_memory_equal(&bs, &before, sizeof(bs));
			refused++;
		}
	}
	return refused;
}

/* an RTN error answer (CID2 != 0) of the right shape: -EPROTO, state untouched */
static inline void ydt_check_rtn_error(const struct bms_serial_ops *ops, unsigned step, uint8_t ver,
				       uint8_t adr, uint8_t rtn)
{
	static struct battery_state bs, before;
	uint8_t frame[64];
	ssize_t len = pylon_rs485_request(ver, adr, rtn, NULL, 0, frame, sizeof(frame));

	assert_true(len > 0);
	battery_state_init(&bs, 1);
	before = bs;
	assert_int_equal(ops->frame(step, adr, frame, (size_t)len, NULL), len);
	assert_int_equal(ops->decode(step, frame, (size_t)len, 0, 5, &bs), -EPROTO);
	assert_memory_equal(&bs, &before, sizeof(bs));
}
