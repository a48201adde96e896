/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The body of the libFuzzer targets of the "~...\r" BMS inputs (Pylontech
 * RS485, Seplos V2, Pace): the first input byte picks the step (low
 * nibble) and the address (high nibble + address_min), the rest is what
 * came back on the line. It is cut into answers the way the serial engine
 * does (->frame(): 0 wait, -EBADMSG drop a byte, -ENOMSG drop *skip), each
 * answer decoded; the whole input is also decoded as if it were an answer.
 * Traps: a length or skip outside the buffer, an undocumented return, a
 * failed decode that touched the state, a decoded count out of range.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "bms.h"

static void ydt_fuzz_check_decode(const struct bms_serial_ops *ops, unsigned step,
				  const uint8_t *p, size_t n, struct battery_state *bs)
{
	static struct battery_state before;
	int r;

	before = *bs;
	r = ops->decode(step, p, n, 1, 42, bs);
	if (r != 0 && r != -EBADMSG && r != -EPROTO) {
		__builtin_trap();
	}
	if (r < 0 && memcmp(&before, bs, sizeof(before)) != 0) {
		__builtin_trap();
	}
	if (bs->packs[1].cell_count > BATTERY_CELLS_MAX ||
	    bs->packs[1].temp_count > BATTERY_TEMPS_MAX || bs->packs[1].soc_pct > 100 ||
	    bs->packs[1].soh_pct > 100 || memcmp(&before.packs[0], &bs->packs[0],
						   sizeof(bs->packs[0])) != 0) {
		__builtin_trap();
	}
}

static int ydt_fuzz_one(const struct bms_serial_ops *ops, const uint8_t *data, size_t size)
{
	static struct battery_state bs;
	uint8_t req[128];
	unsigned step;
	uint8_t adr;
	ssize_t n;

	if (size < 1) {
		return 0;
	}
	battery_state_init(&bs, 2);
	step = (data[0] & 0x0f) % (ops->n_steps + 1); /* one past the end, too */
	adr = (uint8_t)(ops->address_min + (data[0] >> 4));
	data++;
	size--;

	n = ops->request(step, adr, req, sizeof(req));
	if (n < 0 || n > (ssize_t)sizeof(req) || (step < ops->n_steps && n == 0)) {
		__builtin_trap();
	}
	ydt_fuzz_check_decode(ops, step, data, size, &bs);

	for (size_t off = 0; off < size;) {
		size_t skip = 0;
		ssize_t f = ops->frame(step, adr, data + off, size - off, &skip);

		if (f == 0) {
			break; /* the engine would wait for more, then time out */
		} else if (f == -EBADMSG) {
			off++;
		} else if (f == -ENOMSG) {
			if (skip == 0 || skip > size - off) {
				__builtin_trap();
			}
			off += skip;
		} else if (f > 0 && (size_t)f <= size - off && (size_t)f <= ops->answer_max) {
			ydt_fuzz_check_decode(ops, step, data + off, (size_t)f, &bs);
			off += (size_t)f;
		} else {
			__builtin_trap();
		}
	}
	return 0;
}
