/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The body of the libFuzzer targets of the binary polled serial BMS inputs
 * (JBD, Daly, Seplos V3): the first byte picks the step (and, its high
 * nibble, the address within the driver's range); the rest is the byte
 * stream from the bus, scanned as the engine scans it (drop one byte on
 * -EBADMSG, *skip bytes on -ENOMSG).
 * Families with several-frame answers (->answer_frames(), Daly): two more
 * bytes give the engine's word (cells, sensors), and the frames are
 * gathered and decoded whole by ->decode_memo(), as the engine does.
 * Invariants: no crash; frame() never claims more bytes than it was given
 * and always lets the scan move on; an accepted frame's decode either
 * succeeds or leaves the state byte for byte as it was; no pack claims
 * more cells or sensors than @cells_max / @temps_max.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "bms.h"

static int serial_fuzz_one(const struct bms_serial_ops *ops, unsigned cells_max, unsigned temps_max,
			   const uint8_t *data, size_t size)
{
	static struct battery_state bs, before;
	static uint8_t acc[4096]; /* the engine's buffer: RX_MAX */
	uint8_t req[64];
	unsigned step;
	uint8_t addr;
	size_t off = 0, ans = 0;
	unsigned want = 1, got = 0;
	uint32_t memo = 0;

	if (size < 1) {
		return 0;
	}
	step = data[0] % ops->n_steps;
	addr = (uint8_t)(ops->address_min +
			 (data[0] >> 4) % (ops->address_max - ops->address_min + 1));
	if (ops->request(step, addr, req, sizeof(req)) <= 0) {
		__builtin_trap();
	}
	battery_state_init(&bs, 1);
	data++;
	size--;
	if (ops->answer_frames) {
		if (size < 2) {
			return 0;
		}
		memo = (uint32_t)data[0] | (uint32_t)data[1] << 8;
		want = ops->answer_frames(step, memo);
		data += 2;
		size -= 2;
		if (want == 0) {
			return 0; /* the engine skips the step */
		}
	}
	while (off < size) {
		size_t skip = 0;
		ssize_t r = ops->frame(step, addr, data + off, size - off, &skip);
		int d;

		if (r == 0) {
			break; /* needs more: the engine would wait, then time out */
		}
		if (r == -EBADMSG) {
			off++;
			continue;
		}
		if (r == -ENOMSG) {
			if (skip < 1 || skip > size - off) {
				__builtin_trap();
			}
			off += skip;
			continue;
		}
		if (r < 0 || (size_t)r > size - off || (size_t)r > ops->answer_max) {
			__builtin_trap();
		}
		/* the engine drops what lies between the frames: the answer is theirs alone */
		if ((size_t)r > sizeof(acc) - ans) {
			__builtin_trap();
		}
		memcpy(acc + ans, data + off, (size_t)r);
		ans += (size_t)r;
		off += (size_t)r;
		if (++got < want) {
			continue; /* the engine keeps the frame and looks for the next */
		}
		if (ans > ops->answer_max) {
			__builtin_trap();
		}
		before = bs;
		d = ops->decode_memo ? ops->decode_memo(step, acc, ans, 0, 1000, &bs, &memo)
				     : ops->decode(step, acc, ans, 0, 1000, &bs);
		got = 0;
		ans = 0;
		if (d < 0 && memcmp(&bs, &before, sizeof(bs)) != 0) {
			__builtin_trap();
		}
		if (d < 0 && d != -EBADMSG && d != -EPROTO) {
			__builtin_trap();
		}
	}
	if (bs.packs[0].cell_count > cells_max || bs.packs[0].temp_count > temps_max ||
	    bs.packs[0].cell_count > BATTERY_CELLS_MAX ||
	    bs.packs[0].temp_count > BATTERY_TEMPS_MAX || bs.packs[0].soc_pct > 100) {
		__builtin_trap();
	}
	return 0;
}
