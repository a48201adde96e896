/* SPDX-License-Identifier: MIT */
/*
 * Pace BMS (BMS-4820 ... and the packs built on it) on RS485 with its
 * Modbus firmware: Modbus RTU, one read of the data-acquisition registers
 * per pack and round. Pure request, framing and decoding for the generic
 * serial engine. (Pace boards with the ASCII "~...\r" firmware are
 * protocols/pace.c.)
 *
 * Primary document: Shenzhen Pace "PACE BMS Modbus Protocol for RS485"
 * V1.3, 2017-06-27 (nkinnan/esphome-pace-bms protocol_documentation/
 * modbus/Pace/), cited as "PM §n": §1 CRC (the Modbus CRC-16), §2
 * communication parameters (9600 8N1, timeout 200 ms, > 100 ms between
 * frames) and the module address table, §3.1 function 0x03, §3.3 the
 * exception answer, §4.1 the data-acquisition registers 0000-0036 (decimal
 * numbers: "0015-0030 Cell voltage 32byte" is 16 registers) and the
 * warning, protection and status/fault flag descriptions.
 *
 * Document only: no real exchange of a Pace board in Modbus mode is
 * published with its source that we could find; the tests build their
 * answers field by field from PM §4.1 (say so where they are). The one
 * real frame we could compare is a request: "01 03 00 00 00 25 84 11", the
 * same read (address 1, registers 0-36) logged from another Modbus BMS,
 * which checks our CRC byte order.
 *
 * Choices where PM leaves room:
 *   - addresses 1-15 (PM §2 table: DIP 1-15 give 0x01-0x0F; its "0x00,
 *     module ID 0" is Modbus's broadcast address, which never answers
 *     a read: Modbus over Serial Line V1.02 §2.2);
 *   - SOC and SOH are "UINT8" in the low byte (PM §4.1 remark); above
 *     100 % the answer is refused;
 *   - cells: the 16 registers of PM §4.1, counted to the last non-zero
 *     one (a 15S pack leaves cell 16 at 0), as protocols/seplos_v3.c;
 *   - temperatures: the 4 cell sensors; the MOSFET one "or invalid" (PM
 *     §4.1, BMS-4820 V1.1 note) is taken only within -40..+125 degC, the
 *     environment one has no field. A cell sensor outside -50..+150 degC
 *     refuses the answer;
 *   - the flags of PM §4.1 descriptions 1-3: the warning flag gives
 *     warnings, the protection flag alarms, the fault half of the
 *     status/fault flag bms_internal alarms, its MOSFET bits (10, 11) the
 *     charge and discharge enables. Environment temperature and "charger
 *     overvoltage" have no bit of their own in battery_state: the first
 *     raises nothing, the second pack_overvoltage.
 * Pace sends no charge limits (the registry says no_limits).
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

#define PM_FN_READ 0x03 /* PM §3.1 */
#define PM_REGS 37	/* PM §4.1: 0000-0036 */
#define PM_BYTES (2 * PM_REGS)
#define PM_ANSWER_LEN (3 + PM_BYTES + 2)
#define PM_EXCEPTION_LEN 5 /* PM §3.3: address, function + 0x80, code, CRC */
#define PM_CELLS 16
#define PM_TEMPS 4

/* PM §4.1 register numbers */
enum {
	PM_CURRENT = 0,	    /* INT16 10 mA, + charging */
	PM_VOLTAGE = 1,	    /* UINT16 10 mV */
	PM_SOC = 2,	    /* % */
	PM_SOH = 3,	    /* % */
	PM_REMAIN = 4,	    /* 10 mAh */
	PM_FULL = 5,	    /* 10 mAh */
	PM_CYCLES = 7,	    /* cycles */
	PM_WARNING = 9,	    /* description-1 */
	PM_PROTECTION = 10, /* description-2 */
	PM_STATUS = 11,	    /* description-3 */
	PM_CELL = 15,	    /* 15-30, mV */
	PM_TEMP = 31,	    /* 31-34, INT16 0.1 degC */
	PM_MOSFET = 35,	    /* INT16 0.1 degC, or invalid */
};

/* PM §4.1 description-1, bit by bit: warnings */
static const uint32_t pm_warning_map[16] = {
	BATTERY_ALARM_CELL_OVERVOLTAGE,
	BATTERY_ALARM_CELL_UNDERVOLTAGE,
	BATTERY_ALARM_PACK_OVERVOLTAGE,
	BATTERY_ALARM_PACK_UNDERVOLTAGE,
	BATTERY_ALARM_CHARGE_OVERCURRENT,
	BATTERY_ALARM_DISCHARGE_OVERCURRENT,
	0,
	0, /* reserved */
	BATTERY_ALARM_CHARGE_OVERTEMP,
	BATTERY_ALARM_DISCHARGE_OVERTEMP,
	BATTERY_ALARM_CHARGE_UNDERTEMP,
	BATTERY_ALARM_DISCHARGE_UNDERTEMP,
	0,
	0, /* environment high, low */
	BATTERY_ALARM_MOSFET_OVERTEMP,
	BATTERY_ALARM_LOW_SOC,
};

/* PM §4.1 description-2, bit by bit: alarms (protections) */
static const uint32_t pm_protection_map[16] = {
	BATTERY_ALARM_CELL_OVERVOLTAGE,
	BATTERY_ALARM_CELL_UNDERVOLTAGE,
	BATTERY_ALARM_PACK_OVERVOLTAGE,
	BATTERY_ALARM_PACK_UNDERVOLTAGE,
	BATTERY_ALARM_CHARGE_OVERCURRENT,
	BATTERY_ALARM_DISCHARGE_OVERCURRENT,
	BATTERY_ALARM_SHORT_CIRCUIT,
	BATTERY_ALARM_PACK_OVERVOLTAGE, /* charger OV */
	BATTERY_ALARM_CHARGE_OVERTEMP,
	BATTERY_ALARM_DISCHARGE_OVERTEMP,
	BATTERY_ALARM_CHARGE_UNDERTEMP,
	BATTERY_ALARM_DISCHARGE_UNDERTEMP,
	BATTERY_ALARM_MOSFET_OVERTEMP,
	0, /* environment high */
	0,
	0, /* environment low, reserved */
};

/* PM §4.1 description-3, fault half: bits 0-2, 4, 5 */
#define PM_FAULT_BITS 0x0037u
#define PM_STATUS_CHARGE_FET (1u << 10)
#define PM_STATUS_DISCHARGE_FET (1u << 11)

static bool pm_address_ok(uint8_t address)
{
	return address >= pace_modbus_serial.address_min &&
	       address <= pace_modbus_serial.address_max;
}

/* PM §3.1: address, 0x03, start 0000, count 37, CRC (PM §1: CRC-16, low byte first) */
static ssize_t pm_request(unsigned step, uint8_t address, uint8_t *buf, size_t n)
{
	if (step != 0 || !pm_address_ok(address)) {
		return -EINVAL;
	}
	if (!buf || n < MODBUS_READ_LEN) {
		return -ENOBUFS;
	}
	return (ssize_t)modbus_build_read(address, PM_FN_READ, 0, PM_REGS, buf);
}

/* PM §3.1 the answer, §3.3 the exception answer; nothing else is on a PM bus */
static ssize_t pm_frame(unsigned step, uint8_t address, const uint8_t *buf, size_t len,
			size_t *skip)
{
	uint8_t req[MODBUS_READ_LEN];

	if (!buf || step != 0) {
		return -EINVAL;
	}
	modbus_build_read(address, PM_FN_READ, 0, PM_REGS, req);
	return modbus_frame_read(req, PM_BYTES, MODBUS_FN(PM_FN_READ), buf, len, skip);
}

static uint16_t reg(const uint8_t *d, unsigned i)
{
	return get_be16(d + 2 * i);
}

static int pm_decode(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
		     uint64_t now_usec, struct battery_state *bs)
{
	struct battery_pack *p;
	const uint8_t *d;
	uint16_t cell[PM_CELLS];
	int16_t temp[PM_TEMPS], mos;
	unsigned n_cells = 0;
	uint16_t warning, protection, status;

	if (!ans || !bs || pack >= BATTERY_PACKS_MAX || step != 0) {
		return -EINVAL;
	}
	if (len == PM_EXCEPTION_LEN && ans[1] == (PM_FN_READ | 0x80) &&
	    modbus_crc_ok(ans, PM_EXCEPTION_LEN)) {
		return -EPROTO; /* PM §3.3: the BMS's exception answer */
	}
	if (len != PM_ANSWER_LEN || ans[1] != PM_FN_READ || ans[2] != PM_BYTES ||
	    !modbus_crc_ok(ans, len)) {
		return -EBADMSG;
	}
	d = ans + 3;
	if (reg(d, PM_SOC) > 100 || reg(d, PM_SOH) > 100) {
		return -EBADMSG;
	}
	for (unsigned i = 0; i < PM_CELLS; i++) {
		cell[i] = reg(d, PM_CELL + i);
		if (cell[i] > 5000) {
			return -EBADMSG; /* no lithium cell reads above 5 V */
		}
		if (cell[i] != 0) {
			n_cells = i + 1;
		}
	}
	for (unsigned i = 0; i < PM_TEMPS; i++) {
		temp[i] = (int16_t)reg(d, PM_TEMP + i);
		if (temp[i] < -500 || temp[i] > 1500) {
			return -EBADMSG;
		}
	}
	mos = (int16_t)reg(d, PM_MOSFET);
	if (mos < -400 || mos > 1250) {
		mos = BATTERY_TEMP_NONE; /* "or invalid" (header) */
	}
	warning = reg(d, PM_WARNING);
	protection = reg(d, PM_PROTECTION);
	status = reg(d, PM_STATUS);

	p = &bs->packs[pack];
	p->voltage_mv = (uint32_t)reg(d, PM_VOLTAGE) * 10;
	p->current_ma = (int32_t)(int16_t)reg(d, PM_CURRENT) * 10; /* + charging (PM §4.1) */
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now_usec);

	p->soc_pct = (uint8_t)reg(d, PM_SOC);
	p->soh_pct = (uint8_t)reg(d, PM_SOH);
	p->remaining_mah = (uint32_t)reg(d, PM_REMAIN) * 10;
	p->full_mah = (uint32_t)reg(d, PM_FULL) * 10;
	p->cycles = reg(d, PM_CYCLES);
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now_usec);

	if (n_cells > 0) {
		p->cell_count = (uint8_t)n_cells;
		for (unsigned i = 0; i < BATTERY_CELLS_MAX; i++) {
			p->cell_mv[i] = i < n_cells ? cell[i] : 0;
		}
		p->cell_min_pack = p->cell_max_pack = 0;
		battery_pack_update_cell_extremes(p);
		battery_pack_mark(p, BATTERY_GROUP_CELLS, now_usec);
	}

	p->temp_count = PM_TEMPS;
	memcpy(p->temp_dc, temp, sizeof(temp));
	p->mosfet_temp_dc = mos;
	p->temp_min_pack = p->temp_max_pack = 0;
	battery_pack_update_temp_extremes(p);
	battery_pack_mark(p, BATTERY_GROUP_TEMPS, now_usec);

	p->warnings = 0;
	p->alarms = 0;
	for (unsigned bit = 0; bit < 16; bit++) {
		if (warning & (1u << bit)) {
			p->warnings |= pm_warning_map[bit];
		}
		if (protection & (1u << bit)) {
			p->alarms |= pm_protection_map[bit];
		}
	}
	if (status & PM_FAULT_BITS) {
		p->alarms |= BATTERY_ALARM_BMS_INTERNAL;
	}
	p->requests = 0;
	if (status & PM_STATUS_CHARGE_FET) {
		p->requests |= BATTERY_REQUEST_CHARGE_ENABLE;
	}
	if (status & PM_STATUS_DISCHARGE_FET) {
		p->requests |= BATTERY_REQUEST_DISCHARGE_ENABLE;
	}
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now_usec);
	return 0;
}

const struct bms_serial_ops pace_modbus_serial = {
	.baud = 9600, /* PM §2 */
	.address_min = 1,
	.address_max = 15, /* PM §2 table (header) */
	.n_steps = 1,
	.answer_max = PM_ANSWER_LEN,
	.request = pm_request,
	.frame = pm_frame,
	.decode = pm_decode,
};
