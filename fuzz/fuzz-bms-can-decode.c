/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: ->decode_frame() of every CAN BMS driver in the
 * registry (pylontech-can, daly-can, and whatever joins it), the frames a
 * BMS or a replayed log puts in front of us, and ->decode_frame_at() of
 * those with addresses (daly-can boards) for the boards the id names and
 * two others. Input: 4 bytes id, 1 byte length, data. A rejected frame
 * must leave the state untouched; a frame goes into no pack beyond the
 * list.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "byteorder.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct battery_state bs, before;
	const struct bms_driver *d;
	struct can_frame f = { 0 };

	if (size < 5) {
		return 0;
	}
	f.can_id = get_le32(data);
	f.len = data[4];
	memcpy(f.data, data + 5, size - 5 > CAN_MAX_DLEN ? CAN_MAX_DLEN : size - 5);
	for (size_t i = 0; (d = bms_driver_get(i)); i++) {
		struct can_frame k[8]; /* as src/input_can.c offers */

		if (!d->decode_frame) {
			continue;
		}
		battery_state_init(&bs, 1);
		before = bs;
		if (d->decode_frame(&f, 1000, &bs) <= 0 && memcmp(&bs, &before, sizeof(bs)) != 0) {
			__builtin_trap();
		}
		if (d->keepalive && d->keepalive(k, 8) > 8) {
			__builtin_trap();
		}
		if (d->decode_frame_at) {
			/* the sender the id names (Daly: its low byte), board 1, the id's 2nd byte */
			const uint8_t at[] = { (uint8_t)f.can_id, 1, (uint8_t)(f.can_id >> 8) };
			struct can_frame many[6 * BATTERY_PACKS_MAX];
			uint8_t all[BATTERY_PACKS_MAX];
			int r;

			battery_state_init(&bs, 3);
			before = bs;
			r = d->decode_frame_at(&f, 1000, at, ARRAY_SIZE(at), &bs);
			if ((r <= 0 && memcmp(&bs, &before, sizeof(bs)) != 0) ||
			    memcmp(&bs.packs[3], &before.packs[3],
				   sizeof(bs.packs) - 3 * sizeof(bs.packs[0])) != 0) {
				__builtin_trap();
			}
			for (size_t b = 0; b < ARRAY_SIZE(all); b++) {
				all[b] = (uint8_t)(data[4] + b);
			}
			if (d->keepalive_at &&
			    d->keepalive_at(all, ARRAY_SIZE(all), many, ARRAY_SIZE(many)) >
				    (int)ARRAY_SIZE(many)) {
				__builtin_trap();
			}
		}
	}
	return 0;
}
