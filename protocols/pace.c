/* SPDX-License-Identifier: MIT */
/*
 * `pace`: a PACE BMS (and its many clones in 48 V rack and wall packs) on
 * its RS485 / RS232 port, "paceic" protocol version 2.5, polled as the BMS
 * input. PURE: requests, framing check, decoders; src/ owns the tty.
 *
 * Document: "PACE RS232 Communication Protocal (PACE-RS232-TY16S)",
 * 2018-07-05, shipped in nkinnan/esphome-pace-bms protocol_documentation/
 * paceic/0x25/. Framing §2 (Char A.1-A.3, §2.4 CHKSUM): the YD/T 1363 one
 * of Pylontech RS485, VER 0x25 (Char A.2), CID1 0x46 (Char A.6), ADR 0-15
 * from the four-bit address switch (Char A.2 remark), 9600 8N1 (§1.1), an
 * answer within 500 ms (§1.2).
 *
 * The round, per pack (Char A.7):
 *   0x42 pack analog information (§4.2, Char A.11-A.14)
 *   0x44 pack warn information (§4.3, Char A.15-A.25)
 * each with INFO = COMMAND = the pack's address (Char A.11 "COMMAND = 01H,
 * getting 1's pack analog information"), as PBmsTools does on the wire
 * (`~25014642E00201FD30`, nkinnan/esphome-pace-bms pace_bms_protocol_v25.cpp
 * exampleReadAnalogInformationRequestV25). COMMAND 0xFF (every pack behind
 * an RS232 master) is not used: we poll each address.
 *
 * Document vs wire: Char A.13 starts DATAI with the command value; every
 * real answer has one more byte before it, the INFOFLAG of Char A.12's
 * remark ("INFOFLAG is 00H or 01H"): `~25014600F07A0001...` (the captures
 * in pace_bms_protocol_v25.cpp, "SPEC BUG" in its decoder). We follow the
 * wire. Temperatures: the document's 0.1 K with offset 2730 (Char A.4,
 * "25.5 degC = 25.5 * 10 + 2730"), not Pylontech's 2731.
 *
 * The PACE BMS sends no charge or discharge limits (the document has no
 * such command): LIMITS stays unset and the safety layer's configured
 * limits apply.
 */
#include <errno.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "bms_serial.h"
#include "byteorder.h"
#include "pylontech_rs485.h"

#define PACE_VER 0x25	    /* Char A.2 "Protocal version (V2.5) 25H" */
#define PACE_KELVIN_DK 2730 /* Char A.4 */
#define PACE_INFO_MAX PYLON_RS485_STEP_INFO_MAX
#define PACE_ANSWER_MAX (PYLON_RS485_FRAME_MIN + 2 * PACE_INFO_MAX)

enum {
	PACE_STEP_ANALOG,
	PACE_STEP_WARN,
	PACE_STEP__COUNT,
};

static const uint8_t pace_step_cid2[PACE_STEP__COUNT] = { 0x42, 0x44 };

static ssize_t pace_request(unsigned step, uint8_t address, uint8_t *buf, size_t n)
{
	if (step >= PACE_STEP__COUNT) {
		return 0;
	}
	return pylon_rs485_request(PACE_VER, address, pace_step_cid2[step], &address, 1, buf, n);
}

static ssize_t pace_frame(unsigned step, uint8_t address, const uint8_t *buf, size_t len,
			  size_t *skip)
{
	if (step >= PACE_STEP__COUNT) {
		return -EBADMSG;
	}
	return pylon_rs485_find_answer(address, pace_step_cid2[step], buf, len, PACE_ANSWER_MAX,
				       skip);
}

static int16_t pace_temp_dc(const uint8_t *p)
{
	return clamp_s16((int32_t)get_be16(p) - PACE_KELVIN_DK);
}

/*
 * 0x42 (Char A.14): INFOFLAG, command value, M cells (mV), N temperatures
 * (0.1 K), pack current (s16, 10 mA, + charging), total voltage (mV),
 * remaining capacity (10 mAh), define number P = 3, full capacity (10 mAh),
 * cycles, design capacity (10 mAh). Temperatures: with N >= 3 the last two
 * are MOSFET and environment (cells 1-4, MOSFET, environment on the 6-sensor
 * packs: nkinnan/esphome-pace-bms README "Temperature"); the document
 * names none of them.
 */
static int pace_decode_analog(const uint8_t *d, size_t n, struct battery_pack *p, uint64_t now_usec)
{
	struct battery_pack t = *p;
	size_t o = 2;
	unsigned m, nt, cell_temps;
	uint32_t remain, full, design;

	if (n < o + 1) {
		return -EBADMSG;
	}
	m = d[o++];
	if (m == 0 || m > BATTERY_CELLS_MAX || n < o + 2 * m + 1) {
		return -EBADMSG;
	}
	t.cell_count = (uint8_t)m;
	for (unsigned i = 0; i < m; i++, o += 2) {
		t.cell_mv[i] = get_be16(&d[o]); /* Char A.14 #2..M+1 cell voltage, mV */
	}
	nt = d[o++];
	if (nt == 0 || nt > BATTERY_TEMPS_MAX + 2 || n < o + 2 * nt + 2 + 2 + 2 + 1 + 2 + 2 + 2) {
		return -EBADMSG;
	}
	cell_temps = nt >= 3 ? nt - 2 : nt;
	if (cell_temps > BATTERY_TEMPS_MAX) {
		return -EBADMSG;
	}
	t.temp_count = (uint8_t)cell_temps;
	for (unsigned i = 0; i < cell_temps; i++, o += 2) {
		t.temp_dc[i] = pace_temp_dc(&d[o]); /* Char A.14 M+3.. temperature */
	}
	t.mosfet_temp_dc = BATTERY_TEMP_NONE;
	if (nt >= 3) {
		t.mosfet_temp_dc = pace_temp_dc(&d[o]); /* MOSFET */
		o += 4;					/* and environment: not carried */
	}
	/* Char A.14 M+N+3 pack current, s16 10 mA (Char A.4) */
	t.current_ma = (int32_t)(int16_t)get_be16(&d[o]) * 10;
	t.voltage_mv = get_be16(&d[o + 2]);	     /* M+N+4 total voltage, mV */
	remain = (uint32_t)get_be16(&d[o + 4]) * 10; /* M+N+5 remaining, 10 mAh */
	/* M+N+6 define number P = 3 */
	full = (uint32_t)get_be16(&d[o + 7]) * 10;    /* M+N+7 full capacity, 10 mAh */
	t.cycles = get_be16(&d[o + 9]);		      /* M+N+8 cycle number */
	design = (uint32_t)get_be16(&d[o + 11]) * 10; /* M+N+9 design capacity, 10 mAh */
	if (full == 0 || remain > full + full / 10) {
		return -EBADMSG;
	}
	t.remaining_mah = remain;
	t.full_mah = full;
	/* no SOC nor SOH on the wire: remain / full and full / design, rounded */
	battery_pack_set_soc_cpct(
		&t, remain >= full ? 10000 : (uint32_t)((remain * 10000ull + full / 2) / full));
	t.soh_pct = (uint8_t)(design == 0 || full >= design
				      ? 100
				      : (full * 100ull + design / 2) / design);
	battery_pack_update_cell_extremes(&t);
	battery_pack_update_temp_extremes(&t);
	*p = t;
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_CELLS, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_TEMPS, now_usec);
	return 0;
}

static uint32_t bits(uint8_t v, const uint32_t map[8])
{
	uint32_t r = 0;

	for (unsigned i = 0; i < 8; i++) {
		r |= (v >> i) & 1 ? map[i] : 0;
	}
	return r;
}

/* Char A.19 protect state 1 */
static const uint32_t pace_protect1[8] = {
	BATTERY_ALARM_CELL_OVERVOLTAGE,	  BATTERY_ALARM_CELL_UNDERVOLTAGE,
	BATTERY_ALARM_PACK_OVERVOLTAGE,	  BATTERY_ALARM_PACK_UNDERVOLTAGE,
	BATTERY_ALARM_CHARGE_OVERCURRENT, BATTERY_ALARM_DISCHARGE_OVERCURRENT,
	BATTERY_ALARM_SHORT_CIRCUIT,	  0,
};

/* Char A.20 protect state 2: bit 5/6 environment, bit 7 "fully": no alarm */
static const uint32_t pace_protect2[8] = {
	BATTERY_ALARM_CHARGE_OVERTEMP,
	BATTERY_ALARM_DISCHARGE_OVERTEMP,
	BATTERY_ALARM_CHARGE_UNDERTEMP,
	BATTERY_ALARM_DISCHARGE_UNDERTEMP,
	BATTERY_ALARM_MOSFET_OVERTEMP,
	0,
	0,
	0,
};

/* Char A.24 warn state 1 */
static const uint32_t pace_warn1[8] = {
	BATTERY_ALARM_CELL_OVERVOLTAGE,
	BATTERY_ALARM_CELL_UNDERVOLTAGE,
	BATTERY_ALARM_PACK_OVERVOLTAGE,
	BATTERY_ALARM_PACK_UNDERVOLTAGE,
	BATTERY_ALARM_CHARGE_OVERCURRENT,
	BATTERY_ALARM_DISCHARGE_OVERCURRENT,
	0,
	0,
};

/* Char A.25 warn state 2: bit 4/5 environment: not carried */
static const uint32_t pace_warn2[8] = {
	BATTERY_ALARM_CHARGE_OVERTEMP,
	BATTERY_ALARM_DISCHARGE_OVERTEMP,
	BATTERY_ALARM_CHARGE_UNDERTEMP,
	BATTERY_ALARM_DISCHARGE_UNDERTEMP,
	0,
	0,
	BATTERY_ALARM_MOSFET_OVERTEMP,
	BATTERY_ALARM_LOW_SOC,
};

/*
 * 0x44 (Char A.18): INFOFLAG, command value, M cell warn bytes, N
 * temperature warn bytes, charge current, total voltage, discharge current
 * warn bytes (00 normal, 01 below, 02 above, F0 other), protect state 1-2,
 * instructions state, control state, fault state, balance 1-2, warn state
 * 1-2. The bit fields say protection and warning apart and are decoded;
 * the per-item bytes are not.
 */
static int pace_decode_warn(const uint8_t *d, size_t n, struct battery_pack *p, uint64_t now_usec)
{
	size_t o = 2;
	unsigned m, nt;
	const uint8_t *s;
	uint32_t r = 0;

	if (n < o + 1) {
		return -EBADMSG;
	}
	m = d[o++];
	if (m > BATTERY_CELLS_MAX || n < o + m + 1) {
		return -EBADMSG;
	}
	o += m;
	nt = d[o++];
	if (nt > BATTERY_TEMPS_MAX + 2 || n < o + nt + 3 + 9) {
		return -EBADMSG;
	}
	s = &d[o + nt + 3]; /* protect state 1 */
	/* Char A.21 instructions state: bit 1 CFET, bit 2 DFET on */
	r |= (s[2] & 0x02) ? BATTERY_REQUEST_CHARGE_ENABLE : 0;
	r |= (s[2] & 0x04) ? BATTERY_REQUEST_DISCHARGE_ENABLE : 0;
	p->alarms = bits(s[0], pace_protect1) | bits(s[1], pace_protect2) |
		    /* Char A.23 fault state: MOS, NTC, cell, sample faults */
		    ((s[4] & 0x37) ? BATTERY_ALARM_BMS_INTERNAL : 0);
	p->warnings = bits(s[7], pace_warn1) | bits(s[8], pace_warn2);
	p->requests = r;
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now_usec);
	return 0;
}

/* RTN 01-06, 09 (Char A.8): -EPROTO */
static const pylon_rs485_info_fn pace_steps[PACE_STEP__COUNT] = {
	[PACE_STEP_ANALOG] = pace_decode_analog,
	[PACE_STEP_WARN] = pace_decode_warn,
};

static int pace_decode(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
		       uint64_t now_usec, struct battery_state *bs)
{
	return pylon_rs485_decode_step(pace_steps, PACE_STEP__COUNT, step, ans, len, pack, now_usec,
				       bs);
}

const struct bms_serial_ops pace_serial = {
	.baud = 9600,	  /* §1.1 */
	.address_min = 0, /* Char A.2: address switch, 0-15 */
	.address_max = 15,
	.n_steps = PACE_STEP__COUNT,
	.answer_max = PACE_ANSWER_MAX,
	.request = pace_request,
	.frame = pace_frame,
	.decode = pace_decode,
};
