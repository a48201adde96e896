/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: every JK-PB decoder on outside bytes. The first input
 * byte picks the entry point (block kinds, the trigger-answer finder, the
 * 0x03 response check, the text dump), the rest is the input. Invariants:
 * no crash; a rejected input leaves the state byte for byte as it was;
 * an accepted status never claims more cells or sensors than it may.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "protocols/jk_pb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct battery_state bs, before;
	const uint8_t *p = NULL;
	size_t n = 0;
	int r;

	if (size < 2) {
		return 0;
	}
	battery_state_init(&bs, 2);
	before = bs;
	switch (data[0] % 6) {
	case 0:
	case 1:
	case 2:
		r = jk_pb_decode_block(data[0] % 3, data + 1, size - 1, data[0] >> 7, 1000, &bs);
		break;
	case 3:
		r = jk_pb_decode_dump((const char *)data + 1, size - 1, 0, 1000, &bs);
		break;
	case 4:
		r = jk_pb_find_frame(data[1], JK_PB_TRIGGER_STATUS, data + 1, size - 1, data[1] & 1,
				     &p);
		if (r == 0 && (p < data + 1 || p + JK_PB_FRAME_LEN > data + size)) {
			__builtin_trap();
		}
		r = r == 0 ? jk_pb_decode_block(JK_PB_BLOCK_FRAME, p, JK_PB_FRAME_LEN, 0, 1000, &bs)
			   : r;
		break;
	default:
		r = jk_pb_check_read_response(data[1], data + 1, size - 1, &p, &n);
		if (r == 0 && (p < data + 1 || p + n > data + size)) {
			__builtin_trap();
		}
		return 0;
	}
	if (r < 0 && memcmp(&bs, &before, sizeof(bs)) != 0) {
		__builtin_trap();
	}
	for (unsigned i = 0; i < BATTERY_PACKS_MAX; i++) {
		if (bs.packs[i].cell_count > BATTERY_CELLS_MAX ||
		    bs.packs[i].temp_count > BATTERY_TEMPS_MAX || bs.packs[i].soc_pct > 100) {
			__builtin_trap();
		}
	}
	return 0;
}
