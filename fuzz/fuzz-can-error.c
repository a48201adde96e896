/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the readers of outside bytes of the CAN port
 * (src/can_error.c). The input is both
 *   - an error frame (what a controller or a hostile bus puts in one):
 *     can_id (4 bytes), len, data; no crash, a state in range, a one-line
 *     text;
 *   - an rtnetlink datagram (the kernel's link messages): events within
 *     the bound given, or -EBADMSG, never a read past the end (ASan).
 * Seeds: error frames, and link messages captured in tools/canvm's guest
 * (rtnetlink-*: ip link add/up/down/del of vcan9).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "can_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct can_frame f;
	struct can_error_info ei;
	struct can_link_event ev[3];
	int k;

	/* the datagram in a buffer of its own size: ASan sees any overread */
	k = can_link_decode(data, size, "vcan9", ev, 3);
	if (k != -EBADMSG && (k < 0 || k > 3)) {
		__builtin_trap();
	}
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
