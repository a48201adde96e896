/* SPDX-License-Identifier: MIT */
/*
 * `eg4-lifepower4`: an EG4 LifePower4 pack (its Qualtech BMS, "QT-PBMS-
 * 48100" and kin) on its RS485 port, polled as the BMS input. PURE:
 * requests, framing check, decoders; src/ owns the tty.
 *
 * Document: "LifePower4 Battery Communication Protocol" (21 pages, no
 * version or date on it; EG4_LifePower4_Communication_Protocol.pdf in
 * nkinnan/esphome-pace-bms protocol_documentation/paceic/0x20/EG4/), cited
 * "LP4 §x". Framing §1.2-§1.3: the YD/T 1363 one of Pylontech RS485 and
 * Pace ("~" VER ADR CID1 CID2 LENGTH INFO CHKSUM "\r", hex as ASCII,
 * LCHKSUM §1.3.2, CHKSUM §1.3.3), with:
 *   VER 0x20 (§1.2.2 No. 2), CID1 0x4A (§1.4.1, not Pylontech's and
 *   Pace's 0x46), ADR 1-15 from the four DIP switches (§1.2.2 No. 3 and
 *   the "BMS Module ID" table of page 3), 9600 8N1 (§1.1);
 *   requests WITHOUT INFO: "Note: LENID = 00H" (§2.1, §2.2), where Pace
 *   sends the pack's address as INFO.
 * The document gives no answer time; nkinnan/esphome-pace-bms README
 * ("Known working ... EG4 LIFEPOWER4") finds the BMS slow and runs it
 * with a 2 s response timeout and 200 ms between requests.
 *
 * The round, per pack (§1.4.2 CID2):
 *   0x42 get analog value, fixed point (§2.1)
 *   0x44 get alarm info (§2.2)
 *
 * Where this differs from Pace (protocols/pace.c), by the document: pack
 * voltage in 10 mV, not mV (§1.4.2 "Fixed point type" No. 3, §2.1 item
 * 28); temperatures 0.1 K with offset 2731, not 2730 (§2.1 item 21
 * "25.5*10+2731=2986"); N counts the cell sensors only, and environment
 * and MOSFET follow them always (§2.1 items 20, 25, 26); SOC and SOH are
 * on the wire (§2.1 items 33, 34); the alarm answer carries event bit
 * fields of its own (§2.2 items 30-36).
 *
 * The real answers (nkinnan/esphome-pace-bms pace_bms_protocol_v20.cpp,
 * "EG4 variant", a LifePower4 at address 1) start INFO with DATA_FLAG
 * 0x10 where the document's examples have 0x01 (§1.2.2 DATA_FLAG: bit 0
 * "unread alarm value"); DATA_FLAG and PACK Group are not read.
 * nkinnan's decoder takes 2730 as the temperature offset; we follow the
 * document's 2731, which its own example values confirm (§2.1 e.g.
 * items 27, 31: 0BCDH = 29.0 degC, 0BD7H = 30.0 degC).
 *
 * The LifePower4 sends no charge or discharge limits on this port (the
 * document has no such command): LIMITS stays unset and the safety
 * layer's configured limits apply.
 */
#include <errno.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "bms_serial.h"
#include "byteorder.h"
#include "pylontech_rs485.h"

#define LP4_VER 0x20	   /* §1.2.2 No. 2 */
#define LP4_CID1 0x4A	   /* §1.4.1 "BMS/ LiFePO4 battery BMS" */
#define LP4_KELVIN_DK 2731 /* §2.1 item 21 */
#define LP4_INFO_MAX PYLON_RS485_STEP_INFO_MAX
#define LP4_ANSWER_MAX (PYLON_RS485_FRAME_MIN + 2 * LP4_INFO_MAX)

enum {
	LP4_STEP_ANALOG,
	LP4_STEP_ALARM,
	LP4_STEP__COUNT,
};

static const uint8_t lp4_step_cid2[LP4_STEP__COUNT] = { 0x42, 0x44 };

static ssize_t lp4_request(unsigned step, uint8_t address, uint8_t *buf, size_t n)
{
	if (step >= LP4_STEP__COUNT) {
		return 0;
	}
	/* §2.1 / §2.2 "Note: LENID = 00H": no INFO */
	return pylon_rs485_request_cid1(LP4_VER, address, LP4_CID1, lp4_step_cid2[step], NULL, 0,
					buf, n);
}

static ssize_t lp4_frame(unsigned step, uint8_t address, const uint8_t *buf, size_t len,
			 size_t *skip)
{
	if (step >= LP4_STEP__COUNT) {
		return -EBADMSG;
	}
	return pylon_rs485_find_answer_cid1(address, LP4_CID1, lp4_step_cid2[step], buf, len,
					    LP4_ANSWER_MAX, skip);
}

static int16_t lp4_temp_dc(const uint8_t *p)
{
	/* §1.4.2 "Temperature: signed integer, 0.1 K" */
	return clamp_s16((int32_t)(int16_t)get_be16(p) - LP4_KELVIN_DK);
}

/*
 * 0x42 (§2.1 INFO, items 1-47): DATA_FLAG, PACK Group, M cells (mV), N
 * cell temperatures, environment, MOSFET (0.1 K), pack current (s16,
 * 10 mA, + charging), pack voltage (10 mV), remaining and full capacity
 * (10 mAh), cycles, user-defined (1 byte), SOC (%), SOH (%), then the
 * extremes and the cumulative counters (items 35-47), which are not read
 * (the extremes are computed from the lists) and not required.
 */
static int lp4_decode_analog(const uint8_t *d, size_t n, struct battery_pack *p, uint64_t now_usec)
{
	struct battery_pack t = *p;
	size_t o = 2; /* items 1-2 DATA_FLAG, PACK Group */
	unsigned m, nt, soc, soh;
	uint32_t remain, full;

	if (n < o + 1) {
		return -EBADMSG;
	}
	m = d[o++]; /* item 3 M, "16 or 8" */
	if (m == 0 || m > BATTERY_CELLS_MAX || n < o + 2 * m + 1) {
		return -EBADMSG;
	}
	t.cell_count = (uint8_t)m;
	for (unsigned i = 0; i < m; i++, o += 2) {
		t.cell_mv[i] = get_be16(&d[o]); /* items 4-19 cell voltage, 1 mV */
	}
	nt = d[o++]; /* item 20 N, "4" */
	/* N sensors, environment, MOSFET, then items 27-34: 2+2+2+2+2+1+2+2 bytes */
	if (nt == 0 || nt > BATTERY_TEMPS_MAX || n < o + 2 * nt + 4 + 15) {
		return -EBADMSG;
	}
	t.temp_count = (uint8_t)nt;
	for (unsigned i = 0; i < nt; i++, o += 2) {
		t.temp_dc[i] = lp4_temp_dc(&d[o]); /* items 21-24 cell temperature */
	}
	/* item 25 environment: not carried */
	t.mosfet_temp_dc = lp4_temp_dc(&d[o + 2]); /* item 26 MOSFET */
	o += 4;
	t.current_ma = (int32_t)(int16_t)get_be16(&d[o]) * 10; /* item 27, 10 mA */
	t.voltage_mv = (uint32_t)get_be16(&d[o + 2]) * 10;     /* item 28, 10 mV */
	remain = (uint32_t)get_be16(&d[o + 4]) * 10;	       /* item 29, 10 mAh */
	full = (uint32_t)get_be16(&d[o + 6]) * 10;	       /* item 30, 10 mAh */
	t.cycles = get_be16(&d[o + 8]);			       /* item 31 */
	/* item 32 user-defined, 1 byte ("15") */
	soc = get_be16(&d[o + 11]); /* item 33 SOC, 1 %, "0~100%" */
	soh = get_be16(&d[o + 13]); /* item 34 SOH, 1 %, "0~100%" */
	if (soc > 100 || soh > 100 || remain > full + full / 10) {
		return -EBADMSG;
	}
	t.remaining_mah = remain;
	t.full_mah = full;
	battery_pack_set_soc_cpct(&t, soc * 100u);
	t.soh_pct = (uint8_t)soh;
	battery_pack_update_cell_extremes(&t);
	battery_pack_update_temp_extremes(&t);
	*p = t;
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_CELLS, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_TEMPS, now_usec);
	return 0;
}

static uint32_t lp4_bits(unsigned v, const uint32_t *map, unsigned n)
{
	uint32_t r = 0;

	for (unsigned i = 0; i < n; i++) {
		r |= (v >> i) & 1 ? map[i] : 0;
	}
	return r;
}

/*
 * The event codes (§2.2 items 30-34): each "alarm" bit is our warning,
 * each "protection", "lockout" and "fault" bit our alarm.
 */

/* item 31 voltage event code: even bits alarm, odd bits protection */
static const uint32_t lp4_voltage_event[4] = {
	BATTERY_ALARM_CELL_OVERVOLTAGE,
	BATTERY_ALARM_CELL_UNDERVOLTAGE,
	BATTERY_ALARM_PACK_OVERVOLTAGE,
	BATTERY_ALARM_PACK_UNDERVOLTAGE,
};

/* item 32 temperature event code bits 0-7, in pairs as item 31; 8-11 environment: not carried */
static const uint32_t lp4_temp_event[4] = {
	BATTERY_ALARM_CHARGE_OVERTEMP,
	BATTERY_ALARM_CHARGE_UNDERTEMP,
	BATTERY_ALARM_DISCHARGE_OVERTEMP,
	BATTERY_ALARM_DISCHARGE_UNDERTEMP,
};

/*
 * item 33 current event code: 0 charge OC alarm, 1 charge OC protection,
 * 2 discharge OC alarm, 3 discharge OC protection, 4 discharge level 2 OC
 * protection, 5 output short circuit protection, 6 discharge level 2 OC
 * lockout, 7 output short circuit lockout
 */
static const uint32_t lp4_current_alarm[8] = {
	0,
	BATTERY_ALARM_CHARGE_OVERCURRENT,
	0,
	BATTERY_ALARM_DISCHARGE_OVERCURRENT,
	BATTERY_ALARM_DISCHARGE_OVERCURRENT,
	BATTERY_ALARM_SHORT_CIRCUIT,
	BATTERY_ALARM_DISCHARGE_OVERCURRENT,
	BATTERY_ALARM_SHORT_CIRCUIT,
};

static const uint32_t lp4_current_warning[8] = {
	BATTERY_ALARM_CHARGE_OVERCURRENT, 0, BATTERY_ALARM_DISCHARGE_OVERCURRENT, 0, 0, 0, 0, 0,
};

/* the pairs of items 31 and 32 (bits 0-7): bit 2k alarm -> warning, 2k+1 protection -> alarm */
static void lp4_pairs(unsigned v, const uint32_t map[4], uint32_t *alarms, uint32_t *warnings)
{
	for (unsigned k = 0; k < 4; k++) {
		*warnings |= (v >> (2 * k)) & 1 ? map[k] : 0;
		*alarms |= (v >> (2 * k + 1)) & 1 ? map[k] : 0;
	}
}

/*
 * 0x44 (§2.2 INFO, items 1-38): DATA_FLAG, PACK Group, M, M cell alarm
 * bytes, N, N temperature alarm bytes, environment, MOSFET, pack current,
 * pack voltage alarm bytes (00 none, 01 lower, 02 upper limit), user-
 * defined (1 byte, "9"), balance event, voltage event, temperature event
 * (2 bytes), current event, remaining capacity alarm, FET status, system
 * status, balance status (4 bytes), reserved. The event bit fields say
 * alarm and protection apart and are decoded; the per-item bytes repeat
 * them without that difference and are not.
 */
static int lp4_decode_alarm(const uint8_t *d, size_t n, struct battery_pack *p, uint64_t now_usec)
{
	size_t o = 2;
	unsigned m, nt;
	const uint8_t *e;
	uint32_t alarms = 0, warnings = 0, requests = 0;

	if (n < o + 1) {
		return -EBADMSG;
	}
	m = d[o++]; /* item 3 */
	if (m > BATTERY_CELLS_MAX || n < o + m + 1) {
		return -EBADMSG;
	}
	o += m;
	nt = d[o++]; /* item 20 */
	/* N, environment, MOSFET, current, voltage, user-defined; items 30-36: 8 bytes */
	if (nt > BATTERY_TEMPS_MAX || n < o + nt + 5 + 8) {
		return -EBADMSG;
	}
	e = &d[o + nt + 5]; /* item 30 balance event code */
	/* item 30: bit 4 cell voltage difference alarm; 5, 6 charge / discharge MOS fault */
	warnings |= (e[0] & 0x10) ? BATTERY_ALARM_CELL_IMBALANCE : 0;
	alarms |= (e[0] & 0x60) ? BATTERY_ALARM_BMS_INTERNAL : 0;
	lp4_pairs(e[1], lp4_voltage_event, &alarms, &warnings); /* item 31 */
	lp4_pairs(e[3], lp4_temp_event, &alarms, &warnings);	/* item 32 bits 0-7 */
	/* item 32 bit 12 MOSFET high temperature protection, bit 13 fire alarm event */
	alarms |= (e[2] & 0x10) ? BATTERY_ALARM_MOSFET_OVERTEMP : 0;
	alarms |= (e[2] & 0x20) ? BATTERY_ALARM_BMS_INTERNAL : 0;
	alarms |= lp4_bits(e[4], lp4_current_alarm, 8); /* item 33 */
	warnings |= lp4_bits(e[4], lp4_current_warning, 8);
	warnings |= (e[5] & 0x01) ? BATTERY_ALARM_LOW_SOC : 0; /* item 34 bit 0 SOC low alarm */
	/* item 35 FET status code: bit 0 discharge MOS on, bit 1 charge MOS on */
	requests |= (e[6] & 0x01) ? BATTERY_REQUEST_DISCHARGE_ENABLE : 0;
	requests |= (e[6] & 0x02) ? BATTERY_REQUEST_CHARGE_ENABLE : 0;
	/* item 36 system status, 37 balance status, 38 reserved: not carried */
	p->alarms = alarms;
	p->warnings = warnings;
	p->requests = requests;
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now_usec);
	return 0;
}

/* RTN 01-06 (§1.4.2 "Response information"): -EPROTO */
static const pylon_rs485_info_fn lp4_steps[LP4_STEP__COUNT] = {
	[LP4_STEP_ANALOG] = lp4_decode_analog,
	[LP4_STEP_ALARM] = lp4_decode_alarm,
};

static int lp4_decode(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
		      uint64_t now_usec, struct battery_state *bs)
{
	return pylon_rs485_decode_step(lp4_steps, LP4_STEP__COUNT, step, ans, len, pack, now_usec,
				       bs);
}

const struct bms_serial_ops eg4_lifepower4_serial = {
	.baud = 9600,	  /* §1.1 */
	.address_min = 1, /* §1.2.2 No. 3 "1~15", the DIP switch table of page 3 */
	.address_max = 15,
	.n_steps = LP4_STEP__COUNT,
	.answer_max = LP4_ANSWER_MAX,
	.request = lp4_request,
	.frame = lp4_frame,
	.decode = lp4_decode,
};
