/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the pylontech-rs485 request parser and responder.
 * The first input byte picks the configured address and whether battery
 * data exists; the rest is the request. Whatever comes back must be a
 * well-formed frame: '~' ... '\r', upper-case hex, LENGTH and CHKSUM right,
 * CID1 0x46, and only for a request we are addressed by (our ADR or an ADR
 * 0 identity query, CID1 0x46). Its VER is 2.x/3.x, never a VER 0x00
 * echoed; a well-formed 0x4F is always answered RTN 0 with VER 0x20 (V3.3
 * §3.1), whatever VER it carried.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "protocol.h"
#include "pylontech_rs485.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fill(struct battery_state *bs)
{
	struct battery_pack *b = &bs->bank;

	battery_state_init(bs, 1);
	b->voltage_mv = 53000;
	b->current_ma = -12000;
	b->soc_pct = 55;
	b->soh_pct = 97;
	b->remaining_mah = 150000;
	b->full_mah = 280000;
	b->cell_count = 16;
	for (unsigned i = 0; i < 16; i++) {
		b->cell_mv[i] = (uint16_t)(3300 + i);
	}
	battery_pack_update_cell_extremes(b);
	b->temp_count = 4;
	for (unsigned i = 0; i < 4; i++) {
		b->temp_dc[i] = (int16_t)(200 + 10 * i);
	}
	battery_pack_update_temp_extremes(b);
	b->mosfet_temp_dc = 300;
	b->charge_voltage_limit_mv = 55200;
	b->discharge_voltage_limit_mv = 46400;
	b->charge_current_limit_ma = 100000;
	b->discharge_current_limit_ma = 150000;
	b->alarms = BATTERY_ALARM__ALL;
	b->requests = BATTERY_REQUEST__ALL;
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		battery_pack_mark(b, (enum battery_group)g, 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct inverter_protocol *p;
	static struct battery_state bs;
	struct protocol_options opt = { 0 };
	struct pylon_rs485_head h, q;
	uint8_t rsp[PROTOCOL_RS485_MAX];
	ssize_t n;

	if (!p) {
		p = protocol_find("pylontech-rs485");
		fill(&bs);
	}
	if (size < 1) {
		return 0;
	}
	opt.rs485_address = (uint8_t)(data[0] & 0x0f);
	n = p->respond(&opt, (data[0] & 0x10) ? NULL : &bs, data + 1, size - 1, rsp, sizeof(rsp));
	if (n == 0 || n == -EBADMSG || n == -ENODATA) {
		return 0;
	}
	if (n < 0 || n > (ssize_t)sizeof(rsp) || pylon_rs485_peek(rsp, (size_t)n, &h) < 0 ||
	    !h.chksum_ok || !h.length_ok || h.cid1 != 0x46 ||
	    (h.adr != pylon_rs485_adr(&opt) && h.adr != 0)) {
		__builtin_trap();
	}
	/* an answer means the request was a frame addressed to us */
	if (pylon_rs485_peek(data + 1, size - 1, &q) < 0 ||
	    !pylon_rs485_addressed(&q, pylon_rs485_adr(&opt)) || h.adr != q.adr ||
	    h.ver < 0x20 || h.ver > 0x3F) {
		__builtin_trap();
	}
	if (q.cid2 == 0x4F && q.chksum_ok && q.length_ok && (q.length & 0x0fff) % 2 == 0 &&
	    (h.cid2 != 0x00 || h.ver != 0x20)) {
		__builtin_trap();
	}
	for (ssize_t i = 1; i < n - 1; i++) {
		if (!((rsp[i] >= '0' && rsp[i] <= '9') || (rsp[i] >= 'A' && rsp[i] <= 'F'))) {
			__builtin_trap();
		}
	}
	return 0;
}
