/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a capture of a serial BMS bus read back through a
 * family's ops (protocols/bms_serial_dump.c, `bmsbridgectl decode
 * <family>`). The first byte picks the family, the rest is the text.
 * Traps: an error without its line and reason, an error that touched the
 * state, a success with more packs than addresses or a count out of range.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "bms_serial.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct bms_serial_ops *const families[] = {
	&pylontech_rs485_bms_serial,
	&seplos_v2_serial,
	&pace_serial,
	&jbd_serial,
	&daly_serial,
	&seplos_v3_serial,
	&pace_modbus_serial,
	&eg4_lifepower4_serial,
	&eg4_ll_serial,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct battery_state bs, fresh;
	struct bms_serial_dump st;
	const struct bms_serial_ops *ops;
	int r;

	if (size < 1) {
		return 0;
	}
	ops = families[data[0] % (sizeof(families) / sizeof(families[0]))];
	battery_state_init(&bs, 1);
	battery_state_init(&fresh, 1);
	r = bms_serial_dump_decode(ops, (const char *)data + 1, size - 1, 1000, &bs, &st);
	if (r < 0) {
		if (r != -EBADMSG || !st.why || st.bad_line == 0 ||
		    memcmp(&bs, &fresh, sizeof(bs)) != 0) {
			__builtin_trap();
		}
		return 0;
	}
	if (st.answers == 0 || st.n_packs == 0 || st.n_packs > BATTERY_PACKS_MAX ||
	    bs.pack_count != st.n_packs) {
		__builtin_trap();
	}
	for (unsigned i = 0; i < st.n_packs; i++) {
		if (bs.packs[i].cell_count > BATTERY_CELLS_MAX ||
		    bs.packs[i].temp_count > BATTERY_TEMPS_MAX || bs.packs[i].soc_pct > 100) {
			__builtin_trap();
		}
	}
	return 0;
}
