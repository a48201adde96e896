/* SPDX-License-Identifier: MIT */
/*
 * `seplos-v2`: a Seplos V2 BMS (EMU10xx / 11xx, the "BMS 2.0" boards of
 * 16S DIY packs) on its RS485 port, polled as the BMS input. PURE: the
 * requests, the framing check and the decoders; the serial engine in src/
 * owns the tty and the timing.
 *
 * Document: Shenzhen Seplos "BMS Communication MODBUS-ASCII Communication
 * Protocol" V2.0 (2019-10-15), shipped in syssi/esphome-seplos-bms docs/
 * ("SEPLOS BMS Communication Protocol_V2.0.pdf"). Its framing is the
 * YD/T 1363 one of Pylontech RS485 (Table 1-2, §3.2 LENGTH, §3.3 CHKSUM):
 * '~' VER ADR CID1 CID2 LENGTH INFO CHKSUM '\r', VER 0x20, CID1 0x46,
 * ADR = the DIP address 0-15 (Table 2), 9600 8N1 (§1.1), an answer within
 * 500 ms (§1.3).
 *
 * The round, per pack (Table 4):
 *   0x42 "acquisition of telemetering information" (§4.1, Tables 8-9)
 *   0x44 "acquisition of telecommand information", the alarms (§4.2,
 *        Tables 11-13)
 * each with INFO = COMMAND_GROUP = the DIP address ("SM checks whether the
 * received COMMAND_GROUP matches the DIP address", §4.1.1; Table 7:
 * `~20004642E00200FD37` for address 0). 0x47 "teleregulation" (the
 * settings) is not polled: V2.0 gives no layout for it, and the BMS sends
 * no dynamic charge limits at all (dbus-serialbattery bms/seplos.py:
 * "BMS does not provide max charge-/discharge"), so LIMITS stays unset and
 * the safety layer's configured limits apply.
 *
 * Checked against real answers: the 0x42 answer of a 16S pack in
 * syssi/esphome-seplos-bms README.md ("Protocol") and decoded field by field
 * in its tests/components/seplos_bms/frames.h; the 0x42 and 0x44 answers of
 * a 12-pack system on firmware 16.06 in privatecoder/openbms-monitor
 * crates/openbms-proto/tests/captures.rs; the decoder offsets of
 * mr-manuel/venus-os_dbus-serialbattery bms/seplos.py (0x42 and 0x44 by
 * fixed offsets for 16 cells / 6 sensors; we walk the counts instead).
 */
#include <errno.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "bms_serial.h"
#include "byteorder.h"
#include "pylontech_rs485.h"

#define SEPLOS_VER 0x20	      /* Table 2: "Protocol version V2.0 = 32H 30H" */
#define SEPLOS_KELVIN_DK 2731 /* Table 9: (value - 2731) / 10 degC */
#define SEPLOS_INFO_MAX PYLON_RS485_STEP_INFO_MAX
#define SEPLOS_ANSWER_MAX (PYLON_RS485_FRAME_MIN + 2 * SEPLOS_INFO_MAX)

enum {
	SEPLOS_STEP_TELEMETRY,
	SEPLOS_STEP_ALARMS,
	SEPLOS_STEP__COUNT,
};

static const uint8_t seplos_step_cid2[SEPLOS_STEP__COUNT] = { 0x42, 0x44 };

static ssize_t seplos_request(unsigned step, uint8_t address, uint8_t *buf, size_t n)
{
	if (step >= SEPLOS_STEP__COUNT) {
		return 0;
	}
	return pylon_rs485_request(SEPLOS_VER, address, seplos_step_cid2[step], &address, 1, buf,
				   n);
}

static ssize_t seplos_frame(unsigned step, uint8_t address, const uint8_t *buf, size_t len,
			    size_t *skip)
{
	if (step >= SEPLOS_STEP__COUNT) {
		return -EBADMSG;
	}
	return pylon_rs485_find_answer(address, seplos_step_cid2[step], buf, len, SEPLOS_ANSWER_MAX,
				       skip);
}

static int16_t seplos_temp_dc(const uint8_t *p)
{
	return clamp_s16((int32_t)get_be16(p) - SEPLOS_KELVIN_DK);
}

/* 1 per mille (Table 8 #12, #15) to a rounded percent, at most 100 */
static uint8_t permille_pct(uint16_t v)
{
	unsigned pct = (v + 5u) / 10u;

	return (uint8_t)(pct > 100 ? 100 : pct);
}

/*
 * 0x42 telemetry (Table 8): DATA FLAG, COMMAND GROUP, M cells (mV), N
 * temperatures (0.1 K, offset 2731, Table 9: cells 1-4, environment,
 * power), current (s16, 0.01 A, + charging), total voltage (0.01 V),
 * residual capacity (0.01 Ah), custom number P = 10, battery capacity
 * (0.01 Ah), SOC (1 per mille), rated capacity (0.01 Ah), cycles, SOH
 * (1 per mille), port voltage (0.01 V), 4 reserved.
 */
static int seplos_decode_telemetry(const uint8_t *d, size_t n, struct battery_pack *p,
				   uint64_t now_usec)
{
	struct battery_pack t = *p;
	size_t o = 2;
	unsigned m, nt, cell_temps;
	uint32_t remain, full;

	if (n < o + 1) {
		return -EBADMSG;
	}
	m = d[o++];
	if (m == 0 || m > BATTERY_CELLS_MAX || n < o + 2 * m + 1) {
		return -EBADMSG;
	}
	t.cell_count = (uint8_t)m;
	for (unsigned i = 0; i < m; i++, o += 2) {
		t.cell_mv[i] = get_be16(&d[o]); /* Table 8 #4 cell voltage, mV */
	}
	nt = d[o++];
	/* the last two are environment and power (MOSFET): Table 8 #6 */
	if (nt < 3 || nt > BATTERY_TEMPS_MAX + 2 ||
	    n < o + 2 * nt + 2 + 2 + 2 + 1 + 2 + 2 + 2 + 2 + 2) {
		return -EBADMSG;
	}
	cell_temps = nt - 2;
	t.temp_count = (uint8_t)cell_temps;
	for (unsigned i = 0; i < cell_temps; i++, o += 2) {
		t.temp_dc[i] = seplos_temp_dc(&d[o]); /* Table 8 #6 cell temperature 1-4 */
	}
	o += 2;					  /* environment temperature: not carried */
	t.mosfet_temp_dc = seplos_temp_dc(&d[o]); /* power temperature */
	o += 2;
	/* Table 8 #7 current, s16 0.01 A (Table 9) -> mA */
	t.current_ma = (int32_t)(int16_t)get_be16(&d[o]) * 10;
	t.voltage_mv = (uint32_t)get_be16(&d[o + 2]) * 10; /* #8 total voltage, 0.01 V */
	remain = (uint32_t)get_be16(&d[o + 4]) * 10;	   /* #9 residual capacity, 0.01 Ah */
	/* #10 custom number P (10): the items that follow */
	full = (uint32_t)get_be16(&d[o + 7]) * 10; /* #11 battery capacity, 0.01 Ah */
	battery_pack_set_soc_cpct(&t, get_be16(&d[o + 9]) * 10u); /* #12 SOC, 1 per mille */
	/* #13 rated capacity: the design value, not carried */
	t.cycles = get_be16(&d[o + 13]);		/* #14 number of cycles */
	t.soh_pct = permille_pct(get_be16(&d[o + 15])); /* #15 SOH, 1 per mille */
	if (remain > full + full / 10) {
		return -EBADMSG; /* residual capacity far above capacity: not a pack */
	}
	t.remaining_mah = remain;
	t.full_mah = full;
	battery_pack_update_cell_extremes(&t);
	battery_pack_update_temp_extremes(&t);
	*p = t;
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_CELLS, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_TEMPS, now_usec);
	return 0;
}

/* one "alarm" (warning) bit and one "protection" (alarm) bit of Table 13 */
static void seplos_pair(uint8_t v, unsigned warn_bit, unsigned prot_bit, uint32_t what,
			uint32_t *alarms, uint32_t *warnings)
{
	*warnings |= (v >> warn_bit) & 1 ? what : 0;
	*alarms |= (v >> prot_bit) & 1 ? what : 0;
}

/*
 * 0x44 telecommand (Table 11): DATA FLAG, COMMAND GROUP, M cell alarm
 * bytes, N temperature alarm bytes, current and voltage alarm bytes
 * (Table 12), then P = 20 bit fields (Table 13): alarm events 1-6, on-off
 * state, equilibrium 1-2, system state, disconnection 1-2, alarm events
 * 7-8, reserved. The bit fields are decoded; they say warning ("alarm")
 * and protection apart, where the bytes of Table 12 do not.
 */
static int seplos_decode_alarms(const uint8_t *d, size_t n, struct battery_pack *p,
				uint64_t now_usec)
{
	uint32_t a = 0, w = 0, r = 0;
	size_t o = 2;
	unsigned m, nt, nb;
	const uint8_t *e;

	if (n < o + 1) {
		return -EBADMSG;
	}
	m = d[o++];
	if (m > BATTERY_CELLS_MAX || n < o + m + 1) {
		return -EBADMSG;
	}
	o += m;
	nt = d[o++];
	if (nt > BATTERY_TEMPS_MAX + 2 || n < o + nt + 2 + 1) {
		return -EBADMSG;
	}
	o += nt + 2; /* Table 11 #7 current, #8 total voltage alarm bytes */
	nb = d[o++]; /* #9 number of custom alarms P = 20 */
	if (nb < 7 || n < o + nb) {
		return -EBADMSG; /* at least alarm events 1-6 and the on-off state */
	}
	e = &d[o];
	/* alarm event 1: sensor and switch faults (Table 13) */
	a |= e[0] ? BATTERY_ALARM_BMS_INTERNAL : 0;
	/* alarm event 2: bit 0/1 cell high alarm / OV protection ... */
	seplos_pair(e[1], 0, 1, BATTERY_ALARM_CELL_OVERVOLTAGE, &a, &w);
	seplos_pair(e[1], 2, 3, BATTERY_ALARM_CELL_UNDERVOLTAGE, &a, &w);
	seplos_pair(e[1], 4, 5, BATTERY_ALARM_PACK_OVERVOLTAGE, &a, &w);
	seplos_pair(e[1], 6, 7, BATTERY_ALARM_PACK_UNDERVOLTAGE, &a, &w);
	/* alarm event 3: cell temperature, charge and discharge */
	seplos_pair(e[2], 0, 1, BATTERY_ALARM_CHARGE_OVERTEMP, &a, &w);
	seplos_pair(e[2], 2, 3, BATTERY_ALARM_CHARGE_UNDERTEMP, &a, &w);
	seplos_pair(e[2], 4, 5, BATTERY_ALARM_DISCHARGE_OVERTEMP, &a, &w);
	seplos_pair(e[2], 6, 7, BATTERY_ALARM_DISCHARGE_UNDERTEMP, &a, &w);
	/* alarm event 4: bit 5 power high temperature alarm, bit 4 its protection */
	seplos_pair(e[3], 5, 4, BATTERY_ALARM_MOSFET_OVERTEMP, &a, &w);
	/* alarm event 5: current */
	seplos_pair(e[4], 0, 1, BATTERY_ALARM_CHARGE_OVERCURRENT, &a, &w);
	seplos_pair(e[4], 2, 3, BATTERY_ALARM_DISCHARGE_OVERCURRENT, &a, &w);
	a |= (e[4] & 0x50) ? BATTERY_ALARM_DISCHARGE_OVERCURRENT : 0; /* bit 4, 6 transient OC */
	a |= (e[4] & 0xA0) ? BATTERY_ALARM_SHORT_CIRCUIT : 0;	      /* bit 5, 7 short circuit */
	/* alarm event 6: bit 2 residual capacity alarm, bit 3 its protection */
	seplos_pair(e[5], 2, 3, BATTERY_ALARM_LOW_SOC, &a, &w);
	/* on-off state: bit 0 discharge switch, bit 1 charge switch */
	r |= (e[6] & 0x01) ? BATTERY_REQUEST_DISCHARGE_ENABLE : 0;
	r |= (e[6] & 0x02) ? BATTERY_REQUEST_CHARGE_ENABLE : 0;
	/* alarm event 8 (the 14th field): bit 0 EEP storage fault */
	if (nb >= 14) {
		a |= (e[13] & 0x01) ? BATTERY_ALARM_BMS_INTERNAL : 0;
	}
	p->alarms = a;
	p->warnings = w;
	p->requests = r;
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now_usec);
	return 0;
}

/* return codes 01-07, E1-E4 (Table 5): -EPROTO */
static const pylon_rs485_info_fn seplos_steps[SEPLOS_STEP__COUNT] = {
	[SEPLOS_STEP_TELEMETRY] = seplos_decode_telemetry,
	[SEPLOS_STEP_ALARMS] = seplos_decode_alarms,
};

static int seplos_decode(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
			 uint64_t now_usec, struct battery_state *bs)
{
	return pylon_rs485_decode_step(seplos_steps, SEPLOS_STEP__COUNT, step, ans, len, pack,
				       now_usec, bs);
}

const struct bms_serial_ops seplos_v2_serial = {
	.baud = 9600,	  /* §1.1 */
	.address_min = 0, /* Table 2: ADR 00-15, the DIP address */
	.address_max = 15,
	.n_steps = SEPLOS_STEP__COUNT,
	.answer_max = SEPLOS_ANSWER_MAX,
	.request = seplos_request,
	.frame = seplos_frame,
	.decode = seplos_decode,
};
