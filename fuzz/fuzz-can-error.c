/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the CAN error-frame decoder of src/can_bus.c (what a
 * controller or a hostile bus puts in an error frame). Any frame: no
 * crash, a state in range, a one-line text.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "can_bus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct can_frame f;
	struct can_error_info ei;

	if (size < 5) {
		return 0;
	}
	memset(&f, 0, sizeof(f));
	memcpy(&f.can_id, data, 4);
	f.len = data[4];
	memcpy(f.data, data + 5, size - 5 > CAN_MAX_DLEN ? CAN_MAX_DLEN : size - 5);
	if (can_error_decode(&f, &ei) == 0) {
		if (ei.new_state < -1 || ei.new_state > CAN_BUS_OFF ||
		    memchr(ei.text, '\0', sizeof(ei.text)) == NULL || strchr(ei.text, '\n')) {
			__builtin_trap();
		}
	}
	return 0;
}
