/* SPDX-License-Identifier: MIT */
/*
 * JBD / LLT (Jiabaida; sold as Xiaoxiang, Overkill Solar and many packs):
 * the 0xDD "general protocol" on the BMS's UART (TTL) or RS485 port. Pure
 * request, framing and decoding for the generic serial engine.
 *
 * Primary document: Jiabaida "General Protocol V4" (syssi/esphome-jbd-bms
 * docs/Jiabaida.communication.protocol.pdf), cited below as "V4 §n" by its
 * own section numbers: §1 physical interface (9600 Bd), §2 frame structure,
 * §3 commands 0x03 / 0x04 / 0x05 with their data tables and Note 1
 * (protection bits), §5 a worked 0x03 and 0x04 answer.
 *
 * Secondary sources (read, not copied): syssi/esphome-jbd-bms
 * components/jbd_bms/jbd_bms.cpp and mr-manuel/venus-os_dbus-serialbattery
 * dbus-serialbattery/bms/lltjbd.py. Both agree with V4 on every field used
 * here; where V4 is silent they say:
 *   - the checksum covers the bytes from the status byte (index 2) up to
 *     the checksum, for answers as for requests (V4 §2 names "data +
 *     length + command" for a request, which is the same span there);
 *   - newer firmware appends fields after the NTC list of 0x03 (a 0x22
 *     byte answer of a JBD-DP04S007, sw 2.3, in esphome-jbd-bms
 *     docs/pdus/JBD-DP04S007L4S100A-BLE.txt); they are not in V4 and are
 *     ignored here;
 *   - the UART protocol carries no address: one BMS per port (lltjbd.py
 *     "LLT/JBD does not seem to support addresses"). A bus of several JBD
 *     packs needs one serial port each.
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

#define JBD_START 0xDD	   /* V4 §2 start byte */
#define JBD_END 0x77	   /* V4 §2 stop byte */
#define JBD_READ 0xA5	   /* V4 §2 status byte of a read request */
#define JBD_WRITE 0x5A	   /* V4 §2 status byte of a write request */
#define JBD_STATUS_OK 0x00 /* V4 §3 answer status: 0 correct */
#define JBD_OVERHEAD 7	   /* start, cmd, status, length, 2 checksum, stop */
#define JBD_NAME_MAX 31	   /* V4 §3 0x05: "up to 31 characters" */
#define JBD_KELVIN_DK 2731 /* V4 §3 0x03: NTC in 0.1 K, 2731 = 0 degC */

/* the poll round: V4 §3 commands, one request each per round */
static const uint8_t jbd_cmd[] = {
	0x03, /* basic information and status */
	0x04, /* cell voltages */
	0x05, /* hardware version (device model name) */
};

/* V4 §3 0x03, offsets in the data content */
enum {
	JBD_B_VOLTAGE = 0,     /* u16 10 mV */
	JBD_B_CURRENT = 2,     /* s16 10 mA, charge positive */
	JBD_B_REMAINING = 4,   /* u16 10 mAh */
	JBD_B_NOMINAL = 6,     /* u16 10 mAh */
	JBD_B_CYCLES = 8,      /* u16 */
	JBD_B_DATE = 10,       /* u16 packed date, not used */
	JBD_B_BALANCE = 12,    /* u16 cells 1-16 + u16 cells 17-32, not used */
	JBD_B_PROTECTION = 16, /* u16 Note 1 bits */
	JBD_B_VERSION = 18,    /* u8 0x10 = 1.0 */
	JBD_B_RSOC = 19,       /* u8 % */
	JBD_B_FET = 20,	       /* u8 bit0 charge MOS on, bit1 discharge MOS on */
	JBD_B_CELLS = 21,      /* u8 cells in series */
	JBD_B_NTC_COUNT = 22,  /* u8 N */
	JBD_B_NTC = 23,	       /* N x u16 0.1 K */
};

/*
 * V4 §3 Note 1: protection status bit -> enum battery_alarm. Bit 12 "MOS
 * software lock-in" is the owner's own switch (V4 §4), not a fault: the
 * FET byte already says the MOSFETs are off, which clears the enable
 * requests. Bits 13-15 reserved.
 */
static const uint32_t jbd_alarm_map[16] = {
	[0] = BATTERY_ALARM_CELL_OVERVOLTAGE,
	[1] = BATTERY_ALARM_CELL_UNDERVOLTAGE,
	[2] = BATTERY_ALARM_PACK_OVERVOLTAGE,
	[3] = BATTERY_ALARM_PACK_UNDERVOLTAGE,
	[4] = BATTERY_ALARM_CHARGE_OVERTEMP,
	[5] = BATTERY_ALARM_CHARGE_UNDERTEMP,
	[6] = BATTERY_ALARM_DISCHARGE_OVERTEMP,
	[7] = BATTERY_ALARM_DISCHARGE_UNDERTEMP,
	[8] = BATTERY_ALARM_CHARGE_OVERCURRENT,
	[9] = BATTERY_ALARM_DISCHARGE_OVERCURRENT,
	[10] = BATTERY_ALARM_SHORT_CIRCUIT,
	[11] = BATTERY_ALARM_BMS_INTERNAL, /* front-end IC error */
};

/* V4 §2: the sum of the checked bytes, complemented, plus one */
static uint16_t jbd_checksum(const uint8_t *p, size_t n)
{
	uint16_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		sum = (uint16_t)(sum + p[i]);
	}
	return (uint16_t)(~sum + 1);
}

static ssize_t jbd_request(unsigned step, uint8_t address, uint8_t *buf, size_t n)
{
	uint16_t sum;

	(void)address; /* no address on the wire: one BMS per port */
	if (step >= ARRAY_SIZE(jbd_cmd)) {
		return -EINVAL;
	}
	if (!buf || n < JBD_OVERHEAD) {
		return -ENOBUFS;
	}
	/* V4 §3: DD A5 <cmd> 00 <checksum> 77, e.g. DD A5 03 00 FF FD 77 */
	buf[0] = JBD_START;
	buf[1] = JBD_READ;
	buf[2] = jbd_cmd[step];
	buf[3] = 0;
	sum = jbd_checksum(buf + 2, 2);
	put_be16(buf + 4, sum);
	buf[6] = JBD_END;
	return JBD_OVERHEAD;
}

static ssize_t jbd_frame(unsigned step, uint8_t address, const uint8_t *buf, size_t len,
			 size_t *skip)
{
	size_t total;

	(void)address;
	if (!buf || step >= ARRAY_SIZE(jbd_cmd)) {
		return -EINVAL;
	}
	if (len < 1) {
		return 0;
	}
	if (buf[0] != JBD_START) {
		return -EBADMSG;
	}
	if (len < 4) {
		return 0;
	}
	/* V4 §2: the length counts the data content only */
	total = JBD_OVERHEAD + (size_t)buf[3];
	if (len < total) {
		return 0;
	}
	if (buf[total - 1] != JBD_END ||
	    get_be16(buf + total - 3) != jbd_checksum(buf + 2, total - 5)) {
		return -EBADMSG;
	}
	/* a request (ours echoed on a two-wire bus, or another master's) */
	if (buf[1] == JBD_READ || buf[1] == JBD_WRITE || buf[1] != jbd_cmd[step]) {
		if (skip) {
			*skip = total;
		}
		return -ENOMSG;
	}
	return (ssize_t)total;
}

/* V4 §3 0x03 */
static int jbd_decode_basic(const uint8_t *d, size_t n, struct battery_pack *p, uint64_t now)
{
	uint16_t prot;
	unsigned ntc, kept;

	if (n < JBD_B_NTC) {
		return -EBADMSG;
	}
	ntc = d[JBD_B_NTC_COUNT];
	if (n < JBD_B_NTC + 2 * (size_t)ntc || d[JBD_B_RSOC] > 100 ||
	    d[JBD_B_CELLS] > BATTERY_CELLS_MAX) {
		return -EBADMSG;
	}
	for (unsigned i = 0; i < ntc; i++) {
		/* 0.1 K; below -273.1 degC is no temperature */
		if (get_be16(d + JBD_B_NTC + 2 * i) > JBD_KELVIN_DK + 2000) {
			return -EBADMSG;
		}
	}

	/* ELECTRICAL */
	p->voltage_mv = (uint32_t)get_be16(d + JBD_B_VOLTAGE) * 10;
	p->current_ma = (int32_t)(int16_t)get_be16(d + JBD_B_CURRENT) * 10;
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now);

	/* CAPACITY: V4 has no state of health; 100 says "not degraded" */
	p->soc_pct = d[JBD_B_RSOC];
	p->soh_pct = 100;
	p->remaining_mah = (uint32_t)get_be16(d + JBD_B_REMAINING) * 10;
	p->full_mah = (uint32_t)get_be16(d + JBD_B_NOMINAL) * 10;
	p->cycles = get_be16(d + JBD_B_CYCLES);
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now);

	/* TEMPS: the first BATTERY_TEMPS_MAX probes; V4 names no MOS sensor */
	kept = ntc > BATTERY_TEMPS_MAX ? BATTERY_TEMPS_MAX : ntc;
	if (kept > 0) {
		p->temp_count = (uint8_t)kept;
		for (unsigned i = 0; i < kept; i++) {
			p->temp_dc[i] = (int16_t)(get_be16(d + JBD_B_NTC + 2 * i) - JBD_KELVIN_DK);
		}
		p->mosfet_temp_dc = BATTERY_TEMP_NONE;
		p->temp_min_pack = p->temp_max_pack = 0;
		battery_pack_update_temp_extremes(p);
		battery_pack_mark(p, BATTERY_GROUP_TEMPS, now);
	}

	/* STATUS: Note 1 protections, the FET control byte */
	prot = get_be16(d + JBD_B_PROTECTION);
	p->alarms = 0;
	p->warnings = 0;
	for (unsigned b = 0; b < 16; b++) {
		if (prot & (1u << b)) {
			p->alarms |= jbd_alarm_map[b];
		}
	}
	p->requests = 0;
	if (d[JBD_B_FET] & 0x01) {
		p->requests |= BATTERY_REQUEST_CHARGE_ENABLE;
	}
	if (d[JBD_B_FET] & 0x02) {
		p->requests |= BATTERY_REQUEST_DISCHARGE_ENABLE;
	}
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now);
	return 0;
}

/* V4 §3 0x04: N x u16 mV, the length is N * 2 */
static int jbd_decode_cells(const uint8_t *d, size_t n, struct battery_pack *p, uint64_t now)
{
	size_t cells = n / 2;

	if (n == 0 || n % 2 != 0 || cells > BATTERY_CELLS_MAX) {
		return -EBADMSG;
	}
	p->cell_count = (uint8_t)cells;
	for (size_t i = 0; i < BATTERY_CELLS_MAX; i++) {
		p->cell_mv[i] = i < cells ? get_be16(d + 2 * i) : 0;
	}
	p->cell_min_pack = p->cell_max_pack = 0;
	battery_pack_update_cell_extremes(p);
	battery_pack_mark(p, BATTERY_GROUP_CELLS, now);
	return 0;
}

/*
 * V4 §3 0x05: up to 31 ASCII characters. Nothing in battery_state holds
 * it; the answer is checked so a board that answers garbage is noticed.
 */
static int jbd_decode_name(const uint8_t *d, size_t n)
{
	if (n > JBD_NAME_MAX) {
		return -EBADMSG;
	}
	for (size_t i = 0; i < n; i++) {
		if (d[i] < 0x20 || d[i] > 0x7E) {
			return -EBADMSG;
		}
	}
	return 0;
}

static int jbd_decode(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
		      uint64_t now_usec, struct battery_state *bs)
{
	const uint8_t *d;
	size_t n;

	if (!ans || !bs || pack >= BATTERY_PACKS_MAX || step >= ARRAY_SIZE(jbd_cmd)) {
		return -EINVAL;
	}
	/* the engine hands over what jbd_frame() accepted; check again */
	if (len < JBD_OVERHEAD || ans[0] != JBD_START || ans[1] != jbd_cmd[step] ||
	    len != JBD_OVERHEAD + (size_t)ans[3] || ans[len - 1] != JBD_END ||
	    get_be16(ans + len - 3) != jbd_checksum(ans + 2, len - 5)) {
		return -EBADMSG;
	}
	/* V4 §3: status 0 is correct, 0x80 an error (with length 0) */
	if (ans[2] != JBD_STATUS_OK) {
		return -EPROTO;
	}
	d = ans + 4;
	n = ans[3];
	switch (jbd_cmd[step]) {
	case 0x03:
		return jbd_decode_basic(d, n, &bs->packs[pack], now_usec);
	case 0x04:
		return jbd_decode_cells(d, n, &bs->packs[pack], now_usec);
	default:
		return jbd_decode_name(d, n);
	}
}

const struct bms_serial_ops jbd_serial = {
	.baud = 9600, /* V4 §1 */
	.address_min = 1,
	.address_max = 1, /* no addressing: one BMS per port */
	.n_steps = ARRAY_SIZE(jbd_cmd),
	.answer_max = JBD_OVERHEAD + 255,
	.request = jbd_request,
	.frame = jbd_frame,
	.decode = jbd_decode,
};
