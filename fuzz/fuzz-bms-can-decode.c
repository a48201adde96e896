/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: ->decode_frame() of every CAN BMS driver in the
 * registry (pylontech-can, daly-can, and whatever joins it), the frames a
 * BMS or a replayed log puts in front of us. Input: 4 bytes id, 1 byte length,
 * data. A rejected frame must leave the state untouched.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "byteorder.h"

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
	}
	return 0;
}
