/* SPDX-License-Identifier: MIT */
/*
 * `pylontech-rs485`: a Pylontech battery on RS485, as Voltronic / PIP
 * ("PYL" battery type), Vevor/EASUN and other Voltronic-based inverters
 * poll it. The inverter is the master; we answer one request at a time.
 * This file is a PURE responder: request bytes + state -> response bytes.
 *
 * Framing (Pylontech "RS485 protocol pylon low voltage" V3.3, 2018-08-21,
 * shipped as a PDF in Frankkkkk/python-pylontech; checked against that
 * client's encoder pylontech/pylontech.py and real answers in its
 * tests/test_basic.py):
 *
 *   '~' VER ADR CID1 CID2 LENGTH INFO CHKSUM '\r'
 *
 * VER, ADR, CID1, CID2 are one byte, LENGTH two, CHKSUM two, each written
 * as upper-case hex ASCII; INFO is LENID hex characters. LENGTH holds
 * LCHKSUM (4 bits: two's complement of the sum of LENID's nibbles) over
 * LENID (12 bits). CHKSUM is the two's complement of the sum of every
 * character between '~' and CHKSUM. Multi-byte INFO fields are big-endian.
 * CID1 is 0x46 (battery); in a response CID2 carries the return code RTN.
 *
 * Commands answered:
 *   protocol 2.x pack commands (what python-pylontech and "PYL" poll):
 *     0x4F protocol version, 0x51 manufacturer info, 0x42 analog values,
 *     0x44 alarm info, 0x47 system parameters, 0x92 charge/discharge
 *     management info, 0x93 serial number;
 *   protocol 3.5 system commands (a Vevor EML3500, a Voltronic clone,
 *   polls 0x61 and 0x63 at ADR 0x02: kitor/pace2pylon README and
 *   pylon_slave.py):
 *     0x60 system basic info, 0x61 system analog, 0x62 system alarms,
 *     0x63 system charge/discharge management.
 *
 * Addresses: Pylontech numbers packs from ADR 0x02 (the master, pack #1;
 * "Master Battery ~20024642E00202FD33", the solar-pylontech README
 * capture), and that is what a Vevor inverter polls (pace2pylon answers
 * ADR 0x02 only). We answer ADR = options.rs485_address + 1, i.e. 0x02
 * for the default address 1 (ardiehl/pylontech pylontech.h, written from
 * the V3.3 PDF: "the first device is always @ adr 2"). Other addresses get
 * silence (return 0) so
 * that an inverter scanning for packs counts exactly one. ADR 0x00 is
 * answered for the identity-only commands 0x4F and 0x51, which
 * python-pylontech sends to ADR 0; nothing with limits is answered there.
 * A response echoes the request's VER and ADR (pace2pylon does the same).
 *
 * Malformed requests for us get the protocol's RTN error response: 0x01
 * VER (not 2.x / 3.x), 0x02 CHKSUM, 0x03 LCHKSUM (or LENID not matching the
 * INFO length), 0x04 CID1/CID2 invalid, 0x05 format (INFO of odd length).
 * Bytes that are not a frame at all return -EBADMSG (the caller stays
 * silent and counts them).
 *
 * Everything is read from bs->bank (the safety layer has shaped it) and
 * pack_count; a data command whose groups were never received returns
 * -ENODATA (silence: the inverter sees a mute battery, never a made-up one).
 */
#include <errno.h>
#include <string.h>

#include "battery.h"
#include "byteorder.h"
#include "macro.h"
#include "protocol.h"
#include "pylontech_rs485.h"

/* 0.1 K with this offset (Pylontech V3.3 "temperature: 0.1K, 2731 = 0 degC") */
#define PYL_KELVIN_DK 2731
#define PYL_SERIAL_LEN 16
#define PYL_DEVICE_NAME_LEN 10
#define PYL_MANUFACTURER_LEN 20
#define PYL_DEFAULT_BRAND "PYLON"
#define PYL_MAKER "bmsbridge"
/* software version in 0x51/0x60: two bytes, major minor */
#define PYL_SW_MAJOR 1
#define PYL_SW_MINOR 0
/* 0x47 temperature limits: Pylontech US2000 datasheet, charge 0..50 degC, discharge -10..50 */
#define PYL_CHARGE_TEMP_HIGH_DC 500
#define PYL_CHARGE_TEMP_LOW_DC 0
#define PYL_DISCHARGE_TEMP_HIGH_DC 500
#define PYL_DISCHARGE_TEMP_LOW_DC (-100)
/* 0x47 when the bank gives neither cells nor a voltage: 16s LFP, the common case */
#define PYL_DEFAULT_CELLS 16

/* 0x92 / 0x63 status byte (python-pylontech tests: 0xC0 = both enabled) */
#define PYL_STATUS_CHARGE_ENABLE 0x80
#define PYL_STATUS_DISCHARGE_ENABLE 0x40
#define PYL_STATUS_CHARGE_IMMEDIATELY_1 0x20 /* SOC 5-9 % */
#define PYL_STATUS_CHARGE_IMMEDIATELY_2 0x10 /* SOC 9-13 % */
#define PYL_STATUS_FULL_CHARGE_REQUEST 0x08

/* 0x44 per-item state (V3.3: 0 normal, 1 below lower limit, 2 above upper, 0xF0 other) */
#define PYL_ITEM_NORMAL 0x00
#define PYL_ITEM_LOW 0x01
#define PYL_ITEM_HIGH 0x02

/* Response writer: hex ASCII into the caller's buffer, overflow remembered. */
struct pyl_writer {
	uint8_t *buf;
	size_t size;
	size_t pos;
	bool overflow;
};

static const char hex_digits[] = "0123456789ABCDEF";

static void w_char(struct pyl_writer *w, uint8_t c)
{
	if (w->pos >= w->size) {
		w->overflow = true;
		return;
	}
	w->buf[w->pos++] = c;
}

static void w_u8(struct pyl_writer *w, uint8_t v)
{
	w_char(w, (uint8_t)hex_digits[v >> 4]);
	w_char(w, (uint8_t)hex_digits[v & 0xf]);
}

static void w_u16(struct pyl_writer *w, uint16_t v)
{
	uint8_t b[2];

	put_be16(b, v); /* INFO fields are big-endian (V3.3, 2.2) */
	w_u8(w, b[0]);
	w_u8(w, b[1]);
}

static void w_u24(struct pyl_writer *w, uint32_t v)
{
	uint8_t b[4];

	put_be32(b, v);
	w_u8(w, b[1]);
	w_u8(w, b[2]);
	w_u8(w, b[3]);
}

/* @len characters of @s, padded with spaces, each written as two hex digits */
static void w_ascii(struct pyl_writer *w, const char *s, size_t len)
{
	size_t sl = strlen(s);

	for (size_t i = 0; i < len; i++) {
		w_u8(w, (uint8_t)(i < sl ? s[i] : ' '));
	}
}

/* a temperature in 0.1 degC as 0.1 K */
static void w_temp(struct pyl_writer *w, int16_t dc)
{
	w_u16(w, clamp_u16((int32_t)dc + PYL_KELVIN_DK));
}

static int hex_nibble(uint8_t c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	return -1;
}

/* two hex characters at @p, or -1 */
static int hex_byte(const uint8_t *p)
{
	int hi = hex_nibble(p[0]), lo = hex_nibble(p[1]);

	return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

uint16_t pylon_rs485_chksum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		sum += p[i];
	}
	return (uint16_t)((~sum + 1) & 0xffff);
}

uint16_t pylon_rs485_length(uint16_t lenid)
{
	unsigned sum = (lenid & 0xf) + ((lenid >> 4) & 0xf) + ((lenid >> 8) & 0xf);
	unsigned lchk = (~sum + 1) & 0xf;

	return (uint16_t)(lchk << 12 | (lenid & 0x0fff));
}

uint8_t pylon_rs485_adr(const struct protocol_options *opt)
{
	unsigned addr = opt && opt->rs485_address ? opt->rs485_address : 1;

	return (uint8_t)(addr + 1);
}

int pylon_rs485_peek(const uint8_t *req, size_t n, struct pylon_rs485_head *ret)
{
	struct pylon_rs485_head h = { 0 };
	int v[6];

	if (!req || n < PYLON_RS485_FRAME_MIN || req[0] != PYLON_RS485_SOI ||
	    req[n - 1] != PYLON_RS485_EOI) {
		return -EBADMSG;
	}
	/* everything between '~' and '\r' must be hex */
	for (size_t i = 1; i < n - 1; i++) {
		if (hex_nibble(req[i]) < 0) {
			return -EBADMSG;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		v[i] = hex_byte(&req[1 + 2 * i]);
	}
	h.ver = (uint8_t)v[0];
	h.adr = (uint8_t)v[1];
	h.cid1 = (uint8_t)v[2];
	h.cid2 = (uint8_t)v[3];
	h.length = (uint16_t)(v[4] << 8 | v[5]);

	/* CHKSUM: the last four characters before '\r' */
	int c_hi = hex_byte(&req[n - 5]), c_lo = hex_byte(&req[n - 3]);
	h.chksum_ok = pylon_rs485_chksum(&req[1], n - 6) == (uint16_t)(c_hi << 8 | c_lo);

	size_t info_chars = n - PYLON_RS485_FRAME_MIN;
	h.length_ok = pylon_rs485_length(h.length & 0x0fff) == h.length &&
		      (h.length & 0x0fff) == info_chars;
	*ret = h;
	return 0;
}

/* What a data command needs from the bank: every group it reads was received. */
static bool bank_has(const struct battery_state *bs, unsigned groups)
{
	if (!bs) {
		return false;
	}
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		if ((groups & (1u << g)) && !battery_pack_has(&bs->bank, (enum battery_group)g)) {
			return false;
		}
	}
	return true;
}

#define G(x) (1u << BATTERY_GROUP_##x)

/* The sensor Pylontech reports first ("BMS board"): our MOSFET sensor, else the hottest. */
static int16_t board_temp_dc(const struct battery_pack *b)
{
	return b->mosfet_temp_dc != BATTERY_TEMP_NONE ? b->mosfet_temp_dc : b->temp_max_dc;
}

static int16_t avg_temp_dc(const struct battery_pack *b)
{
	int32_t sum = 0;

	if (b->temp_count == 0) {
		return (int16_t)(((int32_t)b->temp_min_dc + b->temp_max_dc) / 2);
	}
	for (unsigned i = 0; i < b->temp_count && i < BATTERY_TEMPS_MAX; i++) {
		sum += b->temp_dc[i];
	}
	return (int16_t)(sum / (int32_t)b->temp_count);
}

static const char *brand(const struct protocol_options *opt)
{
	return opt && opt->manufacturer[0] ? opt->manufacturer : PYL_DEFAULT_BRAND;
}

/* 16 characters: "BMSBRIDGE-ADR02" style, stable per address */
static void w_serial(struct pyl_writer *w, uint8_t adr)
{
	char sn[PYL_SERIAL_LEN + 1] = "BMSBRIDGE-ADR";

	sn[13] = hex_digits[adr >> 4];
	sn[14] = hex_digits[adr & 0xf];
	sn[15] = '\0';
	w_ascii(w, sn, PYL_SERIAL_LEN);
}

/* The status byte of 0x92 and 0x63 (bits: python-pylontech tests, OpenDTU-onBattery). */
static uint8_t charge_status(const struct battery_pack *b)
{
	uint8_t s = 0;

	/* an enable flag never contradicts a zero limit next to it */
	if ((b->requests & BATTERY_REQUEST_CHARGE_ENABLE) && b->charge_current_limit_ma > 0) {
		s |= PYL_STATUS_CHARGE_ENABLE;
	}
	if ((b->requests & BATTERY_REQUEST_DISCHARGE_ENABLE) &&
	    b->discharge_current_limit_ma > 0) {
		s |= PYL_STATUS_DISCHARGE_ENABLE;
	}
	if (b->requests & BATTERY_REQUEST_FORCE_CHARGE) {
		s |= PYL_STATUS_CHARGE_IMMEDIATELY_1;
	}
	if (b->requests & BATTERY_REQUEST_FORCE_CHARGE_2) {
		s |= PYL_STATUS_CHARGE_IMMEDIATELY_2;
	}
	if (b->requests & BATTERY_REQUEST_FULL_CHARGE) {
		s |= PYL_STATUS_FULL_CHARGE_REQUEST;
	}
	return s;
}

/*
 * 0x42 analog values of one module (python-pylontech get_values_single_fmt;
 * real UP2500 / US3000 answers in its tests and in the solar-pylontech
 * README): cells, temperatures, current, voltage, capacities, cycles.
 */
static void info_analog_module(struct pyl_writer *w, const struct battery_pack *b)
{
	unsigned cells = b->cell_count < BATTERY_CELLS_MAX ? b->cell_count : BATTERY_CELLS_MAX;

	w_u8(w, (uint8_t)cells); /* number of cells; 0 when the bank gives extremes only */
	for (unsigned i = 0; i < cells; i++) {
		w_u16(w, b->cell_mv[i]); /* cell voltage, mV */
	}
	if (b->temp_count > 0) {
		unsigned n = b->temp_count < BATTERY_TEMPS_MAX ? b->temp_count : BATTERY_TEMPS_MAX;

		w_u8(w, (uint8_t)(1 + n)); /* BMS board + cell groups (real packs: 5) */
		w_temp(w, board_temp_dc(b)); /* BMS board, 0.1 K */
		for (unsigned i = 0; i < n; i++) {
			w_temp(w, b->temp_dc[i]); /* cell group temperature, 0.1 K */
		}
	} else {
		w_u8(w, 3);
		w_temp(w, board_temp_dc(b));
		w_temp(w, b->temp_min_dc);
		w_temp(w, b->temp_max_dc);
	}
	/*
	 * current, s16, 100 mA (python-pylontech ToAmp: FFFA = -0.6 A in a real
	 * UP2500 answer; ardiehl/pylontech PYL_MODULE_CURRENT_DIVIDER 10)
	 */
	w_u16(w, (uint16_t)clamp_s16(b->current_ma / 100));
	w_u16(w, clamp_u16(b->voltage_mv)); /* module voltage, mV */
	if (b->full_mah > UINT16_MAX) {
		/* > 65 Ah: the 16-bit fields say FFFF, user defined 4, 24-bit fields follow */
		w_u16(w, 0xffff);
		w_u8(w, 4);
		w_u16(w, 0xffff);
		w_u16(w, clamp_u16(b->cycles));
		w_u24(w, b->remaining_mah > 0xffffff ? 0xffffff : b->remaining_mah); /* mAh */
		w_u24(w, b->full_mah > 0xffffff ? 0xffffff : b->full_mah);	       /* mAh */
	} else {
		w_u16(w, clamp_u16(b->remaining_mah)); /* remaining capacity, mAh */
		w_u8(w, 2);			       /* user defined items: 2 */
		w_u16(w, clamp_u16(b->full_mah));      /* module total capacity, mAh */
		w_u16(w, clamp_u16(b->cycles));	       /* cycle number */
	}
}

/*
 * 0x44 alarm info (field order: the PylontechMonitoring-style decoders'
 * parse of real US2000 answers; status bits: OpenDTU-onBattery
 * PylontechRS485 AlarmInfo_t). Real packs send one more 0x00 after
 * Status5 (two real answers: LENGTH 66 with 5 sensors, 68 with 6); so do we.
 */
static void info_alarms(struct pyl_writer *w, const struct battery_pack *b, uint8_t cmd)
{
	uint32_t any = b->alarms | b->warnings;
	unsigned cells = b->cell_count < BATTERY_CELLS_MAX ? b->cell_count : BATTERY_CELLS_MAX;
	unsigned temps = b->temp_count > 0 ? 1u + (b->temp_count < BATTERY_TEMPS_MAX
							  ? b->temp_count
							  : BATTERY_TEMPS_MAX)
					   : 3u;
	uint8_t st1 = 0, st2 = 0, st3 = 0;

	w_u8(w, 0x00); /* INFOFLAG */
	w_u8(w, cmd);  /* command value: the address asked for */
	w_u8(w, (uint8_t)cells);
	for (unsigned i = 0; i < cells; i++) {
		uint8_t s = PYL_ITEM_NORMAL;

		if ((any & BATTERY_ALARM_CELL_UNDERVOLTAGE) && i == b->cell_min_idx) {
			s = PYL_ITEM_LOW;
		}
		if ((any & BATTERY_ALARM_CELL_OVERVOLTAGE) && i == b->cell_max_idx) {
			s = PYL_ITEM_HIGH;
		}
		w_u8(w, s); /* cell i voltage state */
	}
	w_u8(w, (uint8_t)temps);
	for (unsigned i = 0; i < temps; i++) {
		uint8_t s = PYL_ITEM_NORMAL;

		if (i == 0) {
			s = (any & BATTERY_ALARM_MOSFET_OVERTEMP) ? PYL_ITEM_HIGH : PYL_ITEM_NORMAL;
		} else {
			unsigned idx = i - 1; /* sensor index in temp_dc[] */
			bool is_max = b->temp_count ? idx == b->temp_max_idx : i == 2;
			bool is_min = b->temp_count ? idx == b->temp_min_idx : i == 1;

			if (is_min && (any & (BATTERY_ALARM_CHARGE_UNDERTEMP |
					      BATTERY_ALARM_DISCHARGE_UNDERTEMP))) {
				s = PYL_ITEM_LOW;
			}
			if (is_max && (any & (BATTERY_ALARM_CHARGE_OVERTEMP |
					      BATTERY_ALARM_DISCHARGE_OVERTEMP))) {
				s = PYL_ITEM_HIGH;
			}
		}
		w_u8(w, s); /* temperature state, board first */
	}
	w_u8(w, (any & BATTERY_ALARM_CHARGE_OVERCURRENT) ? PYL_ITEM_HIGH : PYL_ITEM_NORMAL);
	w_u8(w, (any & BATTERY_ALARM_PACK_OVERVOLTAGE)	   ? PYL_ITEM_HIGH
		: (any & BATTERY_ALARM_PACK_UNDERVOLTAGE) ? PYL_ITEM_LOW
							   : PYL_ITEM_NORMAL); /* module voltage */
	w_u8(w, (any & BATTERY_ALARM_DISCHARGE_OVERCURRENT) ? PYL_ITEM_HIGH : PYL_ITEM_NORMAL);

	/* Status1: protections in force (alarms only, not warnings) */
	st1 |= (b->alarms & BATTERY_ALARM_PACK_OVERVOLTAGE) ? 0x01 : 0;	  /* module over voltage */
	st1 |= (b->alarms & BATTERY_ALARM_CELL_UNDERVOLTAGE) ? 0x02 : 0;	  /* cell under voltage */
	st1 |= (b->alarms & BATTERY_ALARM_CHARGE_OVERCURRENT) ? 0x04 : 0;	  /* charge over current */
	st1 |= (b->alarms & BATTERY_ALARM_DISCHARGE_OVERCURRENT) ? 0x10 : 0; /* discharge OC */
	st1 |= (b->alarms & BATTERY_ALARM_DISCHARGE_OVERTEMP) ? 0x20 : 0;	  /* discharge OT */
	st1 |= (b->alarms & BATTERY_ALARM_CHARGE_OVERTEMP) ? 0x40 : 0;	  /* charge OT */
	st1 |= (b->alarms & BATTERY_ALARM_PACK_UNDERVOLTAGE) ? 0x80 : 0;	  /* module under V */
	/* Status2: bit1 charge MOSFET, bit2 discharge MOSFET, bit3 using battery power */
	st2 |= (b->requests & BATTERY_REQUEST_CHARGE_ENABLE) ? 0x02 : 0;
	st2 |= (b->requests & BATTERY_REQUEST_DISCHARGE_ENABLE) ? 0x0C : 0;
	/* Status3: bit7 effective charge current, bit6 effective discharge current */
	st3 |= b->current_ma > 0 ? 0x80 : 0;
	st3 |= b->current_ma < 0 ? 0x40 : 0;
	st3 |= b->soc_pct >= 100 ? 0x08 : 0; /* bit3 fully charged */
	w_u8(w, st1);
	w_u8(w, st2);
	w_u8(w, st3);
	w_u8(w, 0x00); /* Status4: cell 1-8 error (not known per cell) */
	w_u8(w, 0x00); /* Status5: cell 9-16 error */
	w_u8(w, 0x00); /* trailing byte real packs send */
}

/*
 * 0x47 system parameters (python-pylontech system_parameters_fmt, after
 * INFOFLAG): cell limits mV, charge temperature limits 0.1 K, charge
 * current limit 10 mA, module limits mV, discharge temperature limits,
 * discharge current limit 10 mA (signed; bms-to-inverter writes 0.1 A
 * here, python-pylontech's DivideBy100 reads 10 mA: we follow the client).
 */
/*
 * Cells in series: the cell list's length, else pack voltage over the mean
 * of the extreme cells (a bank that reports extremes only), else 16.
 */
static unsigned series_cells(const struct battery_pack *b)
{
	uint32_t avg_mv = ((uint32_t)b->cell_min_mv + b->cell_max_mv) / 2;

	if (b->cell_count) {
		return b->cell_count;
	}
	if (avg_mv >= 1000 && b->voltage_mv >= avg_mv) {
		return (unsigned)((b->voltage_mv + avg_mv / 2) / avg_mv);
	}
	return PYL_DEFAULT_CELLS;
}

static void info_system_parameters(struct pyl_writer *w, const struct battery_pack *b)
{
	unsigned cells = series_cells(b);

	w_u8(w, 0x00);							 /* INFOFLAG */
	w_u16(w, clamp_u16(b->charge_voltage_limit_mv / cells));	 /* cell high V, mV */
	w_u16(w, clamp_u16(b->discharge_voltage_limit_mv / cells));	 /* cell low V, mV */
	w_u16(w, clamp_u16(b->discharge_voltage_limit_mv / cells));	 /* cell under V, mV */
	w_temp(w, PYL_CHARGE_TEMP_HIGH_DC);				 /* charge high T */
	w_temp(w, PYL_CHARGE_TEMP_LOW_DC);				 /* charge low T */
	w_u16(w, (uint16_t)clamp_s16(b->charge_current_limit_ma / 10)); /* CCL, 10 mA */
	w_u16(w, clamp_u16(b->charge_voltage_limit_mv));		 /* module high V, mV */
	w_u16(w, clamp_u16(b->discharge_voltage_limit_mv));		 /* module low V, mV */
	w_u16(w, clamp_u16(b->discharge_voltage_limit_mv));		 /* module under V, mV */
	w_temp(w, PYL_DISCHARGE_TEMP_HIGH_DC);				 /* discharge high T */
	w_temp(w, PYL_DISCHARGE_TEMP_LOW_DC);				 /* discharge low T */
	w_u16(w, (uint16_t)clamp_s16(b->discharge_current_limit_ma / 10)); /* DCL, 10 mA */
}

/*
 * 0x92 charge/discharge management info (real UP2500 answer in
 * python-pylontech tests: "026EF05AA0022BFDD5C0" = ADR, 28.4 V, 23.2 V,
 * 55.5 A, -55.5 A, 0xC0).
 */
static void info_management(struct pyl_writer *w, const struct battery_pack *b, uint8_t cmd)
{
	w_u8(w, cmd);						/* command value */
	w_u16(w, clamp_u16(b->charge_voltage_limit_mv));	/* CVL, mV */
	w_u16(w, clamp_u16(b->discharge_voltage_limit_mv));	/* DVL, mV */
	w_u16(w, (uint16_t)clamp_s16(b->charge_current_limit_ma / 100)); /* CCL, 0.1 A */
	/* DCL, 0.1 A, negative (discharge direction) as the real answer carries it */
	w_u16(w, (uint16_t)clamp_s16(-(int64_t)b->discharge_current_limit_ma / 100));
	w_u8(w, charge_status(b));
}

/* 0x51 manufacturer info (python-pylontech manufacturer_info_fmt) */
static void info_manufacturer(struct pyl_writer *w, const struct protocol_options *opt)
{
	w_ascii(w, brand(opt), PYL_DEVICE_NAME_LEN); /* device name, 10 characters */
	w_u8(w, PYL_SW_MAJOR);			     /* software version, 2 bytes */
	w_u8(w, PYL_SW_MINOR);
	w_ascii(w, PYL_MAKER, PYL_MANUFACTURER_LEN); /* manufacturer name, 20 characters */
}

/*
 * 0x60 system basic info (3.5; bms-to-inverter inverter-pylon-rs485
 * createSystemInfo): device name 10, manufacturer 20, software version 2,
 * module count 1, then a 16-character serial per module. We are one module.
 */
static void info_system_basic(struct pyl_writer *w, const struct protocol_options *opt,
			      uint8_t adr)
{
	w_ascii(w, brand(opt), PYL_DEVICE_NAME_LEN);
	w_ascii(w, PYL_MAKER, PYL_MANUFACTURER_LEN);
	w_u8(w, PYL_SW_MAJOR);
	w_u8(w, PYL_SW_MINOR);
	w_u8(w, 1); /* modules in the system */
	w_serial(w, adr);
}

/* pack number (1-based, high byte) and cell/sensor number (1-based, low byte) */
static uint16_t where(uint8_t pack, uint8_t idx)
{
	uint8_t p = pack == BATTERY_INDEX_NONE ? 1 : (uint8_t)(pack + 1);
	uint8_t i = idx == BATTERY_INDEX_NONE ? 0 : (uint8_t)(idx + 1);

	return (uint16_t)(p << 8 | i);
}

/*
 * 0x61 system analog (3.5; same order in kitor/pace2pylon api/pylon.py,
 * answering a real Vevor, and bms-to-inverter createBatteryInformation):
 * voltage mV, current 10 mA, SOC %, average/max cycles, average/min SOH %,
 * cell max/min mV with where, cell temperature average/max/min 0.1 K with
 * where, MOSFET temperatures, BMS board temperatures.
 */
static void info_system_analog(struct pyl_writer *w, const struct battery_state *bs)
{
	const struct battery_pack *b = &bs->bank;
	int16_t mos = board_temp_dc(b);
	uint16_t mos_where = where(0, 0);

	w_u16(w, clamp_u16(b->voltage_mv));				  /* mV */
	w_u16(w, (uint16_t)clamp_s16(b->current_ma / 10));		  /* 10 mA, + charging */
	w_u8(w, clamp_u8(b->soc_pct));					  /* % */
	w_u16(w, clamp_u16(b->cycles));					  /* average cycles */
	w_u16(w, clamp_u16(b->cycles));					  /* maximum cycles */
	w_u8(w, clamp_u8(b->soh_pct));					  /* average SOH % */
	w_u8(w, clamp_u8(b->soh_pct));					  /* lowest SOH % */
	w_u16(w, b->cell_max_mv);					  /* highest cell, mV */
	w_u16(w, where(b->cell_max_pack, b->cell_max_idx));
	w_u16(w, b->cell_min_mv);					  /* lowest cell, mV */
	w_u16(w, where(b->cell_min_pack, b->cell_min_idx));
	w_temp(w, avg_temp_dc(b));					  /* cell temperature avg */
	w_temp(w, b->temp_max_dc);					  /* cell temperature max */
	w_u16(w, where(b->temp_max_pack, b->temp_max_idx));
	w_temp(w, b->temp_min_dc);					  /* cell temperature min */
	w_u16(w, where(b->temp_min_pack, b->temp_min_idx));
	w_temp(w, mos); /* MOSFET avg, max, where, min, where: one sensor per bank */
	w_temp(w, mos);
	w_u16(w, mos_where);
	w_temp(w, mos);
	w_u16(w, mos_where);
	w_temp(w, mos); /* BMS board: the same sensor */
	w_temp(w, mos);
	w_u16(w, mos_where);
	w_temp(w, mos);
	w_u16(w, mos_where);
}

/*
 * 0x62 system alarms (3.5; bits from bms-to-inverter createAlarms, the one
 * open source for them): warning 1, warning 2, protection 1, protection 2.
 */
static void info_system_alarms(struct pyl_writer *w, const struct battery_pack *b)
{
	uint32_t wa = b->warnings, al = b->alarms;
	uint8_t w1 = 0, w2 = 0, p1 = 0, p2 = 0;

	w1 |= (wa & BATTERY_ALARM_PACK_OVERVOLTAGE) ? 0x80 : 0;
	w1 |= (wa & BATTERY_ALARM_PACK_UNDERVOLTAGE) ? 0x40 : 0;
	w1 |= (wa & BATTERY_ALARM_CELL_OVERVOLTAGE) ? 0x20 : 0;
	w1 |= (wa & BATTERY_ALARM_CELL_UNDERVOLTAGE) ? 0x10 : 0;
	w1 |= (wa & (BATTERY_ALARM_CHARGE_OVERTEMP | BATTERY_ALARM_DISCHARGE_OVERTEMP)) ? 0x08 : 0;
	w1 |= (wa & (BATTERY_ALARM_CHARGE_UNDERTEMP | BATTERY_ALARM_DISCHARGE_UNDERTEMP)) ? 0x04
											   : 0;
	w1 |= (wa & BATTERY_ALARM_CELL_IMBALANCE) ? 0x01 : 0;
	w2 |= (wa & BATTERY_ALARM_CHARGE_OVERCURRENT) ? 0x40 : 0;
	w2 |= (wa & BATTERY_ALARM_DISCHARGE_OVERCURRENT) ? 0x20 : 0;
	w2 |= (wa & (BATTERY_ALARM_BMS_LINK_LOST | BATTERY_ALARM_PACK_OFFLINE)) ? 0x10 : 0;
	p1 |= (al & BATTERY_ALARM_PACK_OVERVOLTAGE) ? 0x80 : 0;
	p1 |= (al & BATTERY_ALARM_PACK_UNDERVOLTAGE) ? 0x40 : 0;
	p1 |= (al & BATTERY_ALARM_CELL_OVERVOLTAGE) ? 0x20 : 0;
	p1 |= (al & BATTERY_ALARM_CELL_UNDERVOLTAGE) ? 0x10 : 0;
	p1 |= (al & (BATTERY_ALARM_CHARGE_OVERTEMP | BATTERY_ALARM_DISCHARGE_OVERTEMP |
		     BATTERY_ALARM_MOSFET_OVERTEMP)) ? 0x08 : 0;
	p1 |= (al & (BATTERY_ALARM_CHARGE_UNDERTEMP | BATTERY_ALARM_DISCHARGE_UNDERTEMP)) ? 0x04
											   : 0;
	p2 |= (al & BATTERY_ALARM_CHARGE_OVERCURRENT) ? 0x40 : 0;
	p2 |= (al & (BATTERY_ALARM_DISCHARGE_OVERCURRENT | BATTERY_ALARM_SHORT_CIRCUIT)) ? 0x20
											  : 0;
	/* "other failure": the BMS's own fault, or the link to it lost */
	p2 |= (al & (BATTERY_ALARM_BMS_INTERNAL | BATTERY_ALARM_BMS_LINK_LOST)) ? 0x08 : 0;
	w_u8(w, w1);
	w_u8(w, w2);
	w_u8(w, p1);
	w_u8(w, p2);
}

/*
 * 0x63 system charge/discharge management (3.5; pace2pylon ChargeDischarge
 * answering a real Vevor, and bms-to-inverter): CVL mV, DVL mV, CCL 0.1 A,
 * DCL 0.1 A as a POSITIVE magnitude (both emulators; unlike 0x92), status.
 */
static void info_system_management(struct pyl_writer *w, const struct battery_pack *b)
{
	w_u16(w, clamp_u16(b->charge_voltage_limit_mv));		     /* CVL, mV */
	w_u16(w, clamp_u16(b->discharge_voltage_limit_mv));		     /* DVL, mV */
	w_u16(w, (uint16_t)clamp_s16(b->charge_current_limit_ma / 100));    /* CCL, 0.1 A */
	w_u16(w, (uint16_t)clamp_s16(b->discharge_current_limit_ma / 100)); /* DCL, 0.1 A */
	w_u8(w, charge_status(b));
}

/* Frame a response: header, the INFO already written at offset 13, LENGTH, CHKSUM. */
static ssize_t finish(uint8_t *rsp, size_t n_rsp, const struct pylon_rs485_head *h, uint8_t rtn,
		      struct pyl_writer *info)
{
	struct pyl_writer w = { .buf = rsp, .size = n_rsp };
	size_t lenid = info ? info->pos - 13 : 0;

	if ((info && info->overflow) || lenid > 0x0fff || 13 + lenid + 5 > n_rsp) {
		return -ENOBUFS;
	}
	w_char(&w, PYLON_RS485_SOI);
	w_u8(&w, h->ver);
	w_u8(&w, h->adr);
	w_u8(&w, PYLON_RS485_CID1_BATTERY);
	w_u8(&w, rtn);
	w_u16(&w, pylon_rs485_length((uint16_t)lenid));
	w.pos = 13 + lenid;
	w_u16(&w, pylon_rs485_chksum(&rsp[1], 12 + lenid));
	w_char(&w, PYLON_RS485_EOI);
	return w.overflow ? -ENOBUFS : (ssize_t)w.pos;
}

static ssize_t pylontech_rs485_respond(const struct protocol_options *opt,
				       const struct battery_state *bs, const uint8_t *req,
				       size_t n_req, uint8_t *rsp, size_t n_rsp)
{
	struct pylon_rs485_head h;
	struct pyl_writer w = { .buf = rsp, .size = n_rsp, .pos = 13 };
	uint8_t our = pylon_rs485_adr(opt);
	size_t info_chars;
	int cmd = -1;
	int r;

	if (!rsp || n_rsp < PYLON_RS485_FRAME_MIN) {
		return -ENOBUFS;
	}
	if (n_req > PROTOCOL_RS485_MAX) {
		return -EBADMSG;
	}
	r = pylon_rs485_peek(req, n_req, &h);
	if (r < 0) {
		return r;
	}
	/* another pack's address: silence, whatever else is wrong with it */
	if (h.adr != our && !(h.adr == 0x00 && (h.cid2 == 0x4F || h.cid2 == 0x51))) {
		return 0;
	}
	/*
	 * A response (CID2 = an RTN code) is never a request: our own answer
	 * echoed by a 2-wire adapter, or another pack's. Answering it with an
	 * error would start an endless ping-pong on the bus.
	 */
	if (pylon_rs485_is_response(&h)) {
		return 0;
	}
	if (!h.chksum_ok) {
		return finish(rsp, n_rsp, &h, PYLON_RS485_RTN_CHKSUM, NULL);
	}
	if (h.ver < 0x20 || h.ver > 0x3F) {
		return finish(rsp, n_rsp, &h, PYLON_RS485_RTN_VER, NULL);
	}
	if (!h.length_ok) {
		return finish(rsp, n_rsp, &h, PYLON_RS485_RTN_LCHKSUM, NULL);
	}
	if (h.cid1 != PYLON_RS485_CID1_BATTERY) {
		return finish(rsp, n_rsp, &h, PYLON_RS485_RTN_CID2, NULL);
	}
	info_chars = n_req - PYLON_RS485_FRAME_MIN;
	if (info_chars % 2) {
		return finish(rsp, n_rsp, &h, PYLON_RS485_RTN_FORMAT, NULL);
	}
	if (info_chars >= 2) {
		cmd = hex_byte(&req[13]); /* command value: an address, or 0xFF for "all" */
	}

	switch (h.cid2) {
	case 0x4F: /* protocol version: the answer's VER says it, INFO empty */
		break;
	case 0x51:
		info_manufacturer(&w, opt);
		break;
	case 0x93: /* serial number: command value + 16 characters */
		w_u8(&w, our);
		w_serial(&w, our);
		break;
	case 0x60:
		info_system_basic(&w, opt, our);
		break;
	case 0x42:
		if (!bank_has(bs, G(ELECTRICAL) | G(CAPACITY) | G(CELLS) | G(TEMPS))) {
			return -ENODATA;
		}
		w_u8(&w, 0x00); /* INFOFLAG: no unread alarm/switch change */
		/* "FF" asks for every module: a count follows instead of the address */
		w_u8(&w, cmd == 0xFF ? 1 : our);
		info_analog_module(&w, &bs->bank);
		break;
	case 0x44:
		if (!bank_has(bs, G(ELECTRICAL) | G(CAPACITY) | G(CELLS) | G(TEMPS) | G(STATUS))) {
			return -ENODATA;
		}
		info_alarms(&w, &bs->bank, our);
		break;
	case 0x47:
		if (!bank_has(bs, G(LIMITS) | G(CELLS))) {
			return -ENODATA;
		}
		info_system_parameters(&w, &bs->bank);
		break;
	case 0x92:
		if (!bank_has(bs, G(LIMITS) | G(STATUS))) {
			return -ENODATA;
		}
		info_management(&w, &bs->bank, our);
		break;
	case 0x61:
		if (!bank_has(bs, G(ELECTRICAL) | G(CAPACITY) | G(CELLS) | G(TEMPS))) {
			return -ENODATA;
		}
		info_system_analog(&w, bs);
		break;
	case 0x62:
		if (!bank_has(bs, G(STATUS))) {
			return -ENODATA;
		}
		info_system_alarms(&w, &bs->bank);
		break;
	case 0x63:
		if (!bank_has(bs, G(LIMITS) | G(STATUS))) {
			return -ENODATA;
		}
		info_system_management(&w, &bs->bank);
		break;
	default:
		return finish(rsp, n_rsp, &h, PYLON_RS485_RTN_CID2, NULL);
	}
	return finish(rsp, n_rsp, &h, PYLON_RS485_RTN_OK, &w);
}

const struct inverter_protocol pylontech_rs485_protocol = {
	.name = "pylontech-rs485",
	.description = "Pylontech RS485 ASCII (polled by Voltronic/PIP \"PYL\"), 9600 baud",
	.transport = PROTOCOL_TRANSPORT_RS485,
	.baud = 9600,
	/* Voltronic polls about once a second; 10 s of silence = gone */
	.inverter_timeout_usec = 10 * USEC_PER_SEC,
	.respond = pylontech_rs485_respond,
};
