/* SPDX-License-Identifier: MIT */
/*
 * Seplos V3 (XZH-ElecTech "BMS48100/48200", 10E / SP05B / SP57B boards)
 * on RS485: Modbus RTU. Pure request, framing and decoding for the generic
 * serial engine.
 *
 * Primary document: XZH "BMS Modbus RTU Protocol" V0.1, 2023-02-09
 * (syssi/esphome-seplos-bms docs/XZH BMS Modbus-RTU Protocol.pdf and its
 * transcription .md), cited as "XZH §n" and by table: §1.1 19200 8N1,
 * §2.1.2 device ids (BMS 0x00-0x7F), §2.2 function 0x04, §2.4 function
 * 0x01, §2.6 exception answers, §3 TA01 PIA (0x1000), PIB (0x1100), PIC
 * (0x1200 coils), and the code tables TB02-TB07, TB15, TB16.
 *
 * Secondary sources (read, not copied): mr-manuel/venus-os_dbus-serialbattery
 * dbus-serialbattery/bms/seplosv3.py (the same blocks: PIA 0x11 registers,
 * PIB 0x1A, PIC 0x90 coils with the FET bits at 0x1278/0x1279; current as
 * a signed value, positive while charging, which is ours) and real
 * exchanges in esphome-seplos-bms docs/pdus/v3/ (an SG16S200A-SP57B-A at
 * address 1). Where they part: seplosv3.py turns 0.1 K into degC with
 * 273.0, we with 273.1, as the SP57B itself fills its unused sensor slots
 * with 0x0AAB = 2731 (0 degC).
 *
 * Not polled: SPA (0x1300, the settings: the charge and discharge
 * voltage limits are protection thresholds there, not a CVL) and the
 * "MaxChgCurt / MaxDisCurt" of PIA would fill only half of the limits
 * group; both wait for a driver decision on limits.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "battery.h"
#include "bms_serial.h"
#include "byteorder.h"
#include "macro.h"
#include "modbus_rtu.h"

#define SV3_KELVIN_DK 2731 /* 0.1 K of 0 degC (header) */
#define SV3_CELLS 16	   /* XZH §3 PIB: Cell1-Cell16 */
#define SV3_TEMPS 4	   /* XZH §3 PIB: cell temperature 1-4 */

struct sv3_block {
	uint8_t fn;	/* Modbus function */
	uint16_t start; /* first register or coil */
	uint16_t count; /* registers or coils */
	uint8_t bytes;	/* byte count of the answer */
};

/* the poll round: XZH §3 TA01 */
static const struct sv3_block sv3_blocks[] = {
	{ 0x04, 0x1000, 0x11, 0x22 }, /* PIA, 17 registers */
	{ 0x04, 0x1100, 0x1A, 0x34 }, /* PIB, 26 registers */
	{ 0x01, 0x1200, 0x90, 0x12 }, /* PIC, 144 coils */
};

/* XZH §3 PIA, register offsets */
enum {
	PIA_VOLTAGE = 0x00,   /* u16 10 mV */
	PIA_CURRENT = 0x01,   /* s16 10 mA */
	PIA_REMAINING = 0x02, /* u16 10 mAh */
	PIA_TOTAL = 0x03,     /* u16 10 mAh */
	PIA_SOC = 0x05,	      /* u16 0.1 % */
	PIA_SOH = 0x06,	      /* u16 0.1 % */
	PIA_CYCLES = 0x07,    /* u16 */
};

/* XZH §3 PIB, register offsets */
enum {
	PIB_CELL = 0x00,  /* 16 x u16 mV */
	PIB_TEMP = 0x10,  /* 4 x u16 0.1 K */
	PIB_POWER = 0x19, /* u16 0.1 K, power (MOSFET) temperature */
};

/* XZH §3 PIC: byte k holds coils 0x1200 + 8k .. + 8k + 7, LSB first (§2.4.2) */
struct sv3_bit {
	uint32_t warning;
	uint32_t alarm;
};

static const struct sv3_bit sv3_event_map[18][8] = {
	[9] = { /* 0x1248 TB02 voltage */
		{ BATTERY_ALARM_CELL_OVERVOLTAGE, 0 },	{ 0, BATTERY_ALARM_CELL_OVERVOLTAGE },
		{ BATTERY_ALARM_CELL_UNDERVOLTAGE, 0 }, { 0, BATTERY_ALARM_CELL_UNDERVOLTAGE },
		{ BATTERY_ALARM_PACK_OVERVOLTAGE, 0 },	{ 0, BATTERY_ALARM_PACK_OVERVOLTAGE },
		{ BATTERY_ALARM_PACK_UNDERVOLTAGE, 0 }, { 0, BATTERY_ALARM_PACK_UNDERVOLTAGE },
	},
	[10] = { /* 0x1250 TB03 cell temperature */
		{ BATTERY_ALARM_CHARGE_OVERTEMP, 0 },	  { 0, BATTERY_ALARM_CHARGE_OVERTEMP },
		{ BATTERY_ALARM_CHARGE_UNDERTEMP, 0 },	  { 0, BATTERY_ALARM_CHARGE_UNDERTEMP },
		{ BATTERY_ALARM_DISCHARGE_OVERTEMP, 0 },  { 0, BATTERY_ALARM_DISCHARGE_OVERTEMP },
		{ BATTERY_ALARM_DISCHARGE_UNDERTEMP, 0 }, { 0, BATTERY_ALARM_DISCHARGE_UNDERTEMP },
	},
	[11] = { /* 0x1258 TB04: environment (no such alarm of ours), power */
		{ 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 },
		{ BATTERY_ALARM_MOSFET_OVERTEMP, 0 }, { 0, BATTERY_ALARM_MOSFET_OVERTEMP },
	},
	[12] = { /* 0x1260 TB05 current */
		{ BATTERY_ALARM_CHARGE_OVERCURRENT, 0 },
		{ 0, BATTERY_ALARM_CHARGE_OVERCURRENT },
		{ 0, BATTERY_ALARM_CHARGE_OVERCURRENT },
		{ BATTERY_ALARM_DISCHARGE_OVERCURRENT, 0 },
		{ 0, BATTERY_ALARM_DISCHARGE_OVERCURRENT },
		{ 0, BATTERY_ALARM_DISCHARGE_OVERCURRENT },
		{ 0, BATTERY_ALARM_SHORT_CIRCUIT },
	},
	[13] = { /* 0x1268 TB16: output short, second charge / discharge latch-up */
		{ 0, BATTERY_ALARM_SHORT_CIRCUIT }, { 0, 0 },
		{ 0, BATTERY_ALARM_CHARGE_OVERCURRENT }, { 0, BATTERY_ALARM_DISCHARGE_OVERCURRENT },
	},
	[14] = { /* 0x1270 TB06 capacity */
		{ 0, 0 }, { 0, 0 },
		{ BATTERY_ALARM_LOW_SOC, 0 }, { 0, BATTERY_ALARM_LOW_SOC },
		{ BATTERY_ALARM_CELL_IMBALANCE, 0 },
	},
	[17] = { /* 0x1288 TB15 hard faults: NTC, AFE, MOSFETs, cell, line, key, aerosol */
		{ 0, BATTERY_ALARM_BMS_INTERNAL }, { 0, BATTERY_ALARM_BMS_INTERNAL },
		{ 0, BATTERY_ALARM_BMS_INTERNAL }, { 0, BATTERY_ALARM_BMS_INTERNAL },
		{ 0, BATTERY_ALARM_BMS_INTERNAL }, { 0, BATTERY_ALARM_BMS_INTERNAL },
		{ 0, BATTERY_ALARM_BMS_INTERNAL }, { 0, BATTERY_ALARM_BMS_INTERNAL },
	},
};
#define PIC_FET 15 /* 0x1278 TB07: bit 0 discharge FET on, bit 1 charge FET on */

/* XZH §2.2.1 / §2.4.1: address, function, start, count (MSB first), CRC-16/Modbus low byte first */
static void sv3_build(unsigned step, uint8_t address, uint8_t *buf)
{
	const struct sv3_block *b = &sv3_blocks[step];

	modbus_build_read(address, b->fn, b->start, b->count, buf);
}

static ssize_t sv3_request(unsigned step, uint8_t address, uint8_t *buf, size_t n)
{
	if (step >= ARRAY_SIZE(sv3_blocks) || address > seplos_v3_serial.address_max) {
		return -EINVAL;
	}
	if (!buf || n < 8) {
		return -ENOBUFS;
	}
	sv3_build(step, address, buf);
	return 8;
}

/* XZH §2.1: the functions on a Seplos V3 bus (0x01, 0x04, 0x0F, 0x10); §2.6.1 exceptions */
static ssize_t sv3_frame(unsigned step, uint8_t address, const uint8_t *buf, size_t len,
			 size_t *skip)
{
	uint8_t req[MODBUS_READ_LEN];

	if (!buf || step >= ARRAY_SIZE(sv3_blocks)) {
		return -EINVAL;
	}
	sv3_build(step, address, req);
	return modbus_frame_read(req, sv3_blocks[step].bytes,
				 MODBUS_FN(0x01) | MODBUS_FN(0x04) | MODBUS_FN(0x0F) |
					 MODBUS_FN(0x10),
				 buf, len, skip);
}

static uint16_t reg(const uint8_t *d, unsigned i)
{
	return get_be16(d + 2 * i);
}

/* XZH §3 PIA */
static int sv3_decode_pia(const uint8_t *d, struct battery_pack *p, uint64_t now)
{
	uint16_t soc = reg(d, PIA_SOC), soh = reg(d, PIA_SOH);

	if (soc > 1000 || soh > 1000) {
		return -EBADMSG;
	}
	p->voltage_mv = (uint32_t)reg(d, PIA_VOLTAGE) * 10;
	p->current_ma = (int32_t)(int16_t)reg(d, PIA_CURRENT) * 10; /* + charging */
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now);

	battery_pack_set_soc_cpct(p, soc * 10u); /* 0.1 % */
	p->soh_pct = (uint8_t)((soh + 5) / 10);
	p->remaining_mah = (uint32_t)reg(d, PIA_REMAINING) * 10;
	p->full_mah = (uint32_t)reg(d, PIA_TOTAL) * 10;
	p->cycles = reg(d, PIA_CYCLES);
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now);
	return 0;
}

/* 0.1 K -> 0.1 degC; 0 is an absent sensor; above 200 degC is no reading */
static int sv3_temp(uint16_t raw, int16_t *dc)
{
	if (raw == 0) {
		return 0;
	}
	if (raw > SV3_KELVIN_DK + 2000) {
		return -EBADMSG;
	}
	*dc = (int16_t)((int)raw - SV3_KELVIN_DK);
	return 1;
}

/* XZH §3 PIB */
static int sv3_decode_pib(const uint8_t *d, struct battery_pack *p, uint64_t now)
{
	int16_t t[SV3_TEMPS], mos = BATTERY_TEMP_NONE;
	unsigned n_cells = 0, n_temps = 0;
	int r;

	for (unsigned i = 0; i < SV3_TEMPS; i++) {
		r = sv3_temp(reg(d, PIB_TEMP + i), &t[n_temps]);
		if (r < 0) {
			return r;
		}
		n_temps += (unsigned)r;
	}
	if (sv3_temp(reg(d, PIB_POWER), &mos) < 0) {
		return -EBADMSG;
	}
	/* a pack of fewer than 16 cells leaves the last registers 0 */
	for (unsigned i = 0; i < SV3_CELLS; i++) {
		if (reg(d, PIB_CELL + i) != 0) {
			n_cells = i + 1;
		}
	}

	if (n_cells > 0) {
		p->cell_count = (uint8_t)n_cells;
		for (unsigned i = 0; i < BATTERY_CELLS_MAX; i++) {
			p->cell_mv[i] = i < n_cells ? reg(d, PIB_CELL + i) : 0;
		}
		p->cell_min_pack = p->cell_max_pack = 0;
		battery_pack_update_cell_extremes(p);
		battery_pack_mark(p, BATTERY_GROUP_CELLS, now);
	}
	if (n_temps > 0) {
		p->temp_count = (uint8_t)n_temps;
		memcpy(p->temp_dc, t, n_temps * sizeof(t[0]));
		p->mosfet_temp_dc = mos;
		p->temp_min_pack = p->temp_max_pack = 0;
		battery_pack_update_temp_extremes(p);
		battery_pack_mark(p, BATTERY_GROUP_TEMPS, now);
	}
	return 0;
}

/* XZH §3 PIC: the event codes and the FET states */
static int sv3_decode_pic(const uint8_t *d, struct battery_pack *p, uint64_t now)
{
	p->alarms = 0;
	p->warnings = 0;
	for (unsigned byte = 0; byte < ARRAY_SIZE(sv3_event_map); byte++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			if (d[byte] & (1u << bit)) {
				p->alarms |= sv3_event_map[byte][bit].alarm;
				p->warnings |= sv3_event_map[byte][bit].warning;
			}
		}
	}
	p->requests = 0;
	if (d[PIC_FET] & 0x02) {
		p->requests |= BATTERY_REQUEST_CHARGE_ENABLE;
	}
	if (d[PIC_FET] & 0x01) {
		p->requests |= BATTERY_REQUEST_DISCHARGE_ENABLE;
	}
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now);
	return 0;
}

static int sv3_decode(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
		      uint64_t now_usec, struct battery_state *bs)
{
	const struct sv3_block *b;

	if (!ans || !bs || pack >= BATTERY_PACKS_MAX || step >= ARRAY_SIZE(sv3_blocks)) {
		return -EINVAL;
	}
	b = &sv3_blocks[step];
	if (len == 5 && ans[1] == (b->fn | 0x80) && modbus_crc_ok(ans, 5)) {
		return -EPROTO; /* XZH §2.6: the BMS's exception answer */
	}
	if (len != 5 + (size_t)b->bytes || ans[1] != b->fn || ans[2] != b->bytes ||
	    !modbus_crc_ok(ans, len)) {
		return -EBADMSG;
	}
	switch (step) {
	case 0:
		return sv3_decode_pia(ans + 3, &bs->packs[pack], now_usec);
	case 1:
		return sv3_decode_pib(ans + 3, &bs->packs[pack], now_usec);
	default:
		return sv3_decode_pic(ans + 3, &bs->packs[pack], now_usec);
	}
}

const struct bms_serial_ops seplos_v3_serial = {
	.baud = 19200, /* XZH §1.1 */
	.address_min = 0x00,
	.address_max = 0x7F, /* XZH §2.1.2: BMS 0x00-0x7F */
	.n_steps = ARRAY_SIZE(sv3_blocks),
	.answer_max = 5 + 0x34,
	.request = sv3_request,
	.frame = sv3_frame,
	.decode = sv3_decode,
};
