/* SPDX-License-Identifier: MIT */
/*
 * EG4-LL battery (48 V rack pack, 15-16 cells) on its RS485 Modbus port:
 * Modbus RTU, one read of registers 0-38 per pack and round. Pure
 * request, framing and decoding for the generic serial engine. (The EG4
 * LifePower4 with the "~...\r" ASCII firmware is protocols/eg4_lifepower4.c.)
 *
 * Primary document: "EG4-LL Battery MODBUS Protocol between UPS(SMPS)
 * and BMS", Version V01.06 (2017-06-21, "Add Register for Temp"), 7 pages
 * (gonzalop/wombatt docs/ref/EG4-LL-MODBUS-Communication-Protocol_ENG-
 * correct-1.pdf, added in commit 452f91cf), cited as "LL §n": §1.2 baud
 * rate (9600-19200, default 9600; "Reading time interval: 100mS"), §1.3
 * the packet format and the address table (DIP switches give 0x01-0x0F,
 * all ON = 0x10, the master pack), §2.1 function 0x03, §3 the register
 * table. Its register numbers are decimal ("0105-0116 Model 24Byte" is 12
 * registers), so 0000-0038 is one read of 39.
 *
 * Document only: no real exchange of an EG4-LL pack is published with
 * what the pack's own display or tool showed at that time that we could
 * find; the tests build their answers field by field from LL §3 (they say
 * so). The one real frame is a request: "01 03 00 00 00 27 05 D0", the
 * same read of registers 0-38 logged from an EG4 pack over BLE
 * (patman15/aiobmsble tests/bms/test_eg4_bms.py), which pins the CRC byte
 * order.
 *
 * The current (LL §3 register 0001): SHORT, 10 mA, "0~32767: Charge,
 * -32768~0: Discharge". We follow the document. Secondary readers:
 * mr-manuel/venus-os_dbus-serialbattery bms/eg4_ll.py (RS485, two 12 V
 * packs), gonzalop/wombatt internal/bms/eg4llv2.go, ricardocello
 * eg4_waveshare (a rack of three) and joyfulhouse/pylxpweb eg4_slave read
 * 0.01 A too; patman15/aiobmsble bms/eg4_bms.py and wilcox97/eg4-ll-
 * battery-monitor read 0.1 A, both over Bluetooth from Zetara-built 12 V
 * packs (model PLFP-4S200-...-ZTR), which this RS485 family does not
 * claim (bmsbridge.conf(5) says so).
 *
 * Choices where LL leaves room:
 *   - addresses 1-16 (LL §1.3 table);
 *   - cells: "Cell Num" (register 0036) of the 16 registers 0002-0017;
 *     0 or above 16 refuses the answer, as does a cell above 5 V;
 *   - SOC and SOH (0023, 0024) "0-100%": above 100 the answer is refused;
 *   - "Cap Remaining" (0021) and "Max charging Current" (0022) have no
 *     unit in LL §3 (readers disagree: Ah, 0.1 Ah, %): neither is used.
 *     The remaining capacity is SOC x full capacity, and the family sends
 *     no charge limits (the registry says no_limits);
 *   - full capacity: 0031-0032 ULONG in mAs ("=mAh/3600"), so / 3600;
 *     cycles: 0029-0030 ULONG;
 *   - temperatures: the 6 sensor bytes of 0033-0035 (LL §3 "1byte/
 *     1Sensor", read as signed degC like the SHORT degC registers 0018-
 *     0020); a byte of 0 is an unfitted sensor (the readers above see 0
 *     there). With none fitted, "Temp Avg" and "Temp Max" (0019, 0020)
 *     stand in. "Temp of PCB" (0018) is the MOSFET/board temperature. A
 *     sensor outside -50..+150 degC refuses the answer;
 *   - Warning (0026) gives warnings, Protection (0027) alarms, Error Code
 *     (0028) bms_internal (and cell_imbalance for "Cell unbalance").
 *     LL has no MOSFET bits: the charge path is open unless a protection
 *     that stops charging is set (pack/cell OV, charge OC, charge OT/UT,
 *     MOS overheating, abnormal ambient temperature), the discharge path
 *     likewise (pack/cell UV, discharge OC, discharge OT/UT, MOS, ambient,
 *     discharge SC). "Low capacity" is a warning and LOW_SOC.
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

#define LL_FN_READ 0x03 /* LL §2.1 */
#define LL_REGS 39	/* LL §3: 0000-0038 */
#define LL_BYTES (2 * LL_REGS)
#define LL_ANSWER_LEN (3 + LL_BYTES + 2)
#define LL_EXCEPTION_LEN 5 /* Modbus: address, function + 0x80, code, CRC */
#define LL_CELLS 16
#define LL_SENSORS 6

/* LL §3 register numbers (decimal) */
enum {
	LL_VOLTAGE = 0,	    /* USHORT 10 mV */
	LL_CURRENT = 1,	    /* SHORT 10 mA, + charge */
	LL_CELL = 2,	    /* 2-17 USHORT mV */
	LL_TEMP_PCB = 18,   /* SHORT degC */
	LL_TEMP_AVG = 19,   /* SHORT degC */
	LL_TEMP_MAX = 20,   /* SHORT degC */
	LL_SOH = 23,	    /* 0-100 % */
	LL_SOC = 24,	    /* 0-100 % */
	LL_WARNING = 26,    /* bits */
	LL_PROTECTION = 27, /* bits */
	LL_ERROR = 28,	    /* bits */
	LL_CYCLES = 29,	    /* 29-30 ULONG */
	LL_FULL = 31,	    /* 31-32 ULONG mAs */
	LL_TEMPS = 33,	    /* 33-35, one byte a sensor */
	LL_CELL_NUM = 36,   /* cells in the string */
};

/* LL §3 register 0026 (Warning) and 0027 (Protection), bit by bit */
static const uint32_t ll_flag_map[16] = {
	BATTERY_ALARM_PACK_OVERVOLTAGE,	     /* 0x0001 Pack OV */
	BATTERY_ALARM_CELL_OVERVOLTAGE,	     /* 0x0002 Cell OV */
	BATTERY_ALARM_PACK_UNDERVOLTAGE,     /* 0x0004 Pack UV */
	BATTERY_ALARM_CELL_UNDERVOLTAGE,     /* 0x0008 Cell UV */
	BATTERY_ALARM_CHARGE_OVERCURRENT,    /* 0x0010 Charge OC */
	BATTERY_ALARM_DISCHARGE_OVERCURRENT, /* 0x0020 Discharge OC */
	0,				     /* 0x0040 Abnormal Ambient Temp: no bit of its own */
	BATTERY_ALARM_MOSFET_OVERTEMP,	     /* 0x0080 MOS Overheating */
	BATTERY_ALARM_CHARGE_OVERTEMP,	     /* 0x0100 Charge OT */
	BATTERY_ALARM_DISCHARGE_OVERTEMP,    /* 0x0200 Discharge OT */
	BATTERY_ALARM_CHARGE_UNDERTEMP,	     /* 0x0400 Charge UT */
	BATTERY_ALARM_DISCHARGE_UNDERTEMP,   /* 0x0800 Discharge UT */
	BATTERY_ALARM_LOW_SOC,		     /* 0x1000 Low capacity */
	0, /* 0x2000: Warning "Float Stoped"; Protection "Discharge SC" (below) */
	0,
	0,
};

#define LL_PROT_DISCHARGE_SC 0x2000u
#define LL_PROT_STOPS_CHARGE 0x05D3u /* pack/cell OV, charge OC, ambient, MOS, charge OT/UT */
#define LL_PROT_STOPS_DISCHARGE                                                                    \
	0x2AECu		      /* pack/cell UV, discharge OC, ambient, MOS, dis. OT/UT, SC */
#define LL_ERROR_BITS 0x0017u /* 0028: voltage, temperature, current flow, cell unbalance */
#define LL_ERROR_CELL_UNBALANCE 0x0010u

static bool ll_address_ok(uint8_t address)
{
	return address >= eg4_ll_serial.address_min && address <= eg4_ll_serial.address_max;
}

/* LL §2.1: address, 0x03, start 0000, count 39, CRC (LL §1.3.1: "CRC (Lo) CRC (Hi)") */
static ssize_t ll_request(unsigned step, uint8_t address, uint8_t *buf, size_t n)
{
	if (step != 0 || !ll_address_ok(address)) {
		return -EINVAL;
	}
	if (!buf || n < MODBUS_READ_LEN) {
		return -ENOBUFS;
	}
	return (ssize_t)modbus_build_read(address, LL_FN_READ, 0, LL_REGS, buf);
}

/* LL §2.1 the answer; a Modbus exception answer (LL shows none for reads) */
static ssize_t ll_frame(unsigned step, uint8_t address, const uint8_t *buf, size_t len,
			size_t *skip)
{
	uint8_t req[MODBUS_READ_LEN];

	if (!buf || step != 0) {
		return -EINVAL;
	}
	modbus_build_read(address, LL_FN_READ, 0, LL_REGS, req);
	return modbus_frame_read(req, LL_BYTES, MODBUS_FN(LL_FN_READ), buf, len, skip);
}

static uint16_t reg(const uint8_t *d, unsigned i)
{
	return get_be16(d + 2 * i);
}

static uint32_t reg32(const uint8_t *d, unsigned i)
{
	return (uint32_t)reg(d, i) << 16 | reg(d, i + 1);
}

static bool temp_ok(int t)
{
	return t >= -50 && t <= 150;
}

static int ll_decode(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
		     uint64_t now_usec, struct battery_state *bs)
{
	struct battery_pack *p;
	const uint8_t *d;
	int16_t temp[LL_SENSORS], pcb;
	unsigned n_cells, n_temps = 0;
	uint16_t warning, protection, error;
	uint32_t full_mah;

	if (!ans || !bs || pack >= BATTERY_PACKS_MAX || step != 0) {
		return -EINVAL;
	}
	if (len == LL_EXCEPTION_LEN && ans[1] == (LL_FN_READ | 0x80) &&
	    modbus_crc_ok(ans, LL_EXCEPTION_LEN)) {
		return -EPROTO; /* the BMS's exception answer */
	}
	if (len != LL_ANSWER_LEN || ans[1] != LL_FN_READ || ans[2] != LL_BYTES ||
	    !modbus_crc_ok(ans, len)) {
		return -EBADMSG;
	}
	d = ans + 3;
	n_cells = reg(d, LL_CELL_NUM);
	if (n_cells == 0 || n_cells > LL_CELLS || reg(d, LL_SOC) > 100 || reg(d, LL_SOH) > 100) {
		return -EBADMSG;
	}
	for (unsigned i = 0; i < n_cells; i++) {
		if (reg(d, LL_CELL + i) > 5000) {
			return -EBADMSG; /* no lithium cell reads above 5 V */
		}
	}
	for (unsigned i = 0; i < LL_SENSORS; i++) {
		int8_t t = (int8_t)d[2 * LL_TEMPS + i];

		if (t == 0) {
			continue; /* unfitted (header) */
		}
		if (!temp_ok(t)) {
			return -EBADMSG;
		}
		temp[n_temps++] = (int16_t)(t * 10);
	}
	if (n_temps == 0) {
		int avg = (int16_t)reg(d, LL_TEMP_AVG), max = (int16_t)reg(d, LL_TEMP_MAX);

		if (!temp_ok(avg) || !temp_ok(max)) {
			return -EBADMSG;
		}
		temp[n_temps++] = (int16_t)(avg * 10);
		temp[n_temps++] = (int16_t)(max * 10);
	}
	pcb = (int16_t)reg(d, LL_TEMP_PCB);
	if (!temp_ok(pcb)) {
		return -EBADMSG;
	}
	warning = reg(d, LL_WARNING);
	protection = reg(d, LL_PROTECTION);
	error = reg(d, LL_ERROR);

	p = &bs->packs[pack];
	p->voltage_mv = (uint32_t)reg(d, LL_VOLTAGE) * 10;
	p->current_ma = (int32_t)(int16_t)reg(d, LL_CURRENT) * 10; /* + charge (LL §3 0001) */
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now_usec);

	full_mah = reg32(d, LL_FULL) / 3600;
	p->soc_pct = (uint8_t)reg(d, LL_SOC);
	p->soh_pct = (uint8_t)reg(d, LL_SOH);
	p->full_mah = full_mah;
	p->remaining_mah = (uint32_t)((uint64_t)full_mah * p->soc_pct / 100);
	p->cycles = reg32(d, LL_CYCLES);
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now_usec);

	p->cell_count = (uint8_t)n_cells;
	for (unsigned i = 0; i < BATTERY_CELLS_MAX; i++) {
		p->cell_mv[i] = i < n_cells ? reg(d, LL_CELL + i) : 0;
	}
	p->cell_min_pack = p->cell_max_pack = 0;
	battery_pack_update_cell_extremes(p);
	battery_pack_mark(p, BATTERY_GROUP_CELLS, now_usec);

	p->temp_count = (uint8_t)n_temps;
	for (unsigned i = 0; i < BATTERY_TEMPS_MAX; i++) {
		p->temp_dc[i] = i < n_temps ? temp[i] : 0;
	}
	p->mosfet_temp_dc = (int16_t)(pcb * 10);
	p->temp_min_pack = p->temp_max_pack = 0;
	battery_pack_update_temp_extremes(p);
	battery_pack_mark(p, BATTERY_GROUP_TEMPS, now_usec);

	p->warnings = 0;
	p->alarms = 0;
	for (unsigned bit = 0; bit < 16; bit++) {
		if (warning & (1u << bit)) {
			p->warnings |= ll_flag_map[bit];
		}
		if (protection & (1u << bit)) {
			p->alarms |= ll_flag_map[bit];
		}
	}
	if (protection & LL_PROT_DISCHARGE_SC) {
		p->alarms |= BATTERY_ALARM_SHORT_CIRCUIT;
	}
	if (error & LL_ERROR_BITS) {
		p->alarms |= BATTERY_ALARM_BMS_INTERNAL;
	}
	if (error & LL_ERROR_CELL_UNBALANCE) {
		p->alarms |= BATTERY_ALARM_CELL_IMBALANCE;
	}
	p->requests = 0;
	if (!(protection & LL_PROT_STOPS_CHARGE)) {
		p->requests |= BATTERY_REQUEST_CHARGE_ENABLE;
	}
	if (!(protection & LL_PROT_STOPS_DISCHARGE)) {
		p->requests |= BATTERY_REQUEST_DISCHARGE_ENABLE;
	}
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now_usec);
	return 0;
}

const struct bms_serial_ops eg4_ll_serial = {
	.baud = 9600, /* LL §1.2 default */
	.address_min = 1,
	.address_max = 16, /* LL §1.3 table: 0x01-0x0F, 0x10 the master */
	.n_steps = 1,
	.answer_max = LL_ANSWER_LEN,
	.request = ll_request,
	.frame = ll_frame,
	.decode = ll_decode,
};
