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
 *   protocol 2.x pack commands (V3.3 §2.5.2 CID2 table; what python-pylontech,
 *   ardiehl/pylontech and the Voltronic "PYL" setting poll):
 *     0x4F protocol version (§3.1), 0x51 manufacturer info (§3.2), 0x42
 *     analog values (§3.3), 0x47 system parameters (§3.4), 0x44 alarm info
 *     (§3.5), 0x92 charge/discharge management info (§3.6), 0x93 serial
 *     number (§3.7), 0x96 software version (§3.10);
 *   protocol 3.5 system commands (Pylontech RS485 V3.5; the PDF is only
 *   published as a Russian-language scan, so its layouts are taken from the
 *   three open encoders that implement it and agree on the field order:
 *   Fahmula/esphome-pylontech-rs485 components/pylontech_rs485, kitor/
 *   pace2pylon api/pylon.py + api/pylon_data.py (answering a real Vevor
 *   EML3500, which polls 0x61 and 0x63 at ADR 0x02) and ai-republic/
 *   bms-to-inverter inverter-pylon-rs485):
 *     0x60 system basic info, 0x61 system analog, 0x62 system alarms,
 *     0x63 system charge/discharge management.
 *   0x94 (set management info) and 0x95 (turn off) are never obeyed: the
 *   inverter does not set our limits nor switch the battery off (RTN 0x04).
 *
 * VER (V3.3 §3.1: "VER: arbitrary value ... While receiving, battery
 * ignore VER value"): 0x4F is answered whatever VER it carries, and always
 * with VER 0x20, what a real US2000B Plus answers (`~200246000000FDB2`,
 * Tomcat42/pylontech-python examples/lowLevelRS485/output.txt). Masters
 * take the VER of that answer for every later request (ardiehl/pylontech
 * pylontechapi.c pyl_getProtocolVersion; diyBMS pylon_rs485.cpp answers 0x28
 * and then drops requests with another VER), so an answer never echoes a
 * VER 0x00 poll (a captured Voltronic Axpert VM IV sends
 * `~0002464F0000FD9A` until it is answered normally). Every other command
 * is accepted with any 2.x or 3.x VER (0x20-0x3F: masters that learnt 0x20
 * from us, 0x28 from a diyBMS, 0x35 for V3.5) and answered with the VER it
 * carries; any other VER gets RTN 0x01 "VER error" (V3.3 §2.5.2), in an
 * answer that carries VER 0x20 so a master that learns from it learns a
 * version we accept.
 *
 * Addresses (V3.3 §2.5.3, "Address start from 2"): pack #1, the master, is
 * ADR 0x02 ("Master Battery ~20024642E00202FD33", solar-pylontech README;
 * what a Vevor, a PIP and python-pylontech poll). We answer ADR =
 * options.rs485_address + 1, i.e. 0x02 for the default address 1
 * (ardiehl/pylontech pylontech.h: "the first device is always @ adr 2").
 * Requests for any other address get silence (return 0), whatever they
 * carry, as a real pack on a shared bus does: the pack that owns that
 * address answers, and a master counts packs by who answers (ardiehl
 * pyl_setGroup scans 0x4F from ADR 2 up until a poll goes unanswered;
 * python-pylontech scan_for_batteries counts any answer to 0x93; an
 * Axpert probes 0x4F at the group masters 0x02, 0x52, 0x42 ... 0x12,
 * §2.5.3 ADR = 0x02 + 0x10 * group). ADR 0x00 is "reserved" (V3.3 §2.2.2)
 * but python-pylontech sends its identity polls 0x4F and 0x51 there
 * (get_protocol_version, get_manufacturer_info, for a pack wired alone):
 * those two are answered at ADR 0x00, nothing else is (no limits, no data,
 * and no 0x93 that a scan would count). The command value inside INFO
 * ("should be matched with ADR", §3.3) is not checked: a real US2000B Plus
 * answers `~20024642C0040201FCD2` (ADR 2, command 1) in full with command
 * value 0x02, and so do we.
 *
 * CID1: V3.3 §2.5.1 defines one family, 0x46 "battery data". A request with
 * another CID1 addresses another kind of device on the same YD/T 1363 bus;
 * it gets silence, as in the two open emulators that handle it
 * (bms-to-inverter: "cid1 != 0x46 ... not supported", no frame; diyBMS
 * pylon_rs485.cpp drops it).
 *
 * Malformed requests for us get the protocol's RTN error response (V3.3
 * §2.5.2): 0x01 VER, 0x02 CHKSUM, 0x03 LCHKSUM (or LENID not matching the
 * INFO length), 0x04 CID2 invalid, 0x05 format (INFO of odd length).
 * Bytes that are not a frame at all return -EBADMSG (the caller stays
 * silent and counts them).
 *
 * Rounding never loosens a limit: upper bounds (charge voltage limit, charge
 * and discharge current limits) are rounded toward zero in magnitude, lower
 * bounds (discharge voltage limit and the per-cell lower limits of 0x47)
 * are rounded up.
 *
 * Everything is read from bs->bank (the safety layer has shaped it) and
 * pack_count; a data command whose groups were never received returns
 * -ENODATA (silence: the inverter sees a mute battery, never a made-up one).
 */
#include <errno.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "bms_serial.h"
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
/* software version in 0x51/0x60 and the "manufacture version" of 0x96: major, minor */
#define PYL_SW_MAJOR 1
#define PYL_SW_MINOR 0
/* 0x96 "main line version", 3 bytes (V3.3 §3.10): ours, 1.0.0 */
#define PYL_MAINLINE_MAJOR 1
#define PYL_MAINLINE_MINOR 0
#define PYL_MAINLINE_PATCH 0
/* VER in the 0x4F answer: a real US2000B Plus answers 0x20 (see above) */
#define PYL_VER_ANSWER 0x20
/* VERs accepted on every other command: protocol 2.x and 3.x */
#define PYL_VER_MIN 0x20
#define PYL_VER_MAX 0x3F
/* 0x47 temperature limits: Pylontech US2000 datasheet, charge 0..50 degC, discharge -10..50 */
#define PYL_CHARGE_TEMP_HIGH_DC 500
#define PYL_CHARGE_TEMP_LOW_DC 0
#define PYL_DISCHARGE_TEMP_HIGH_DC 500
#define PYL_DISCHARGE_TEMP_LOW_DC (-100)
/* 0x47 when the bank gives neither cells nor a voltage: 16s LFP, the common case */
#define PYL_DEFAULT_CELLS 16

/*
 * 0x92 "charge, discharge status" (V3.3 §3.6 table; python-pylontech tests
 * and the real US2000B Plus answer: 0xC0 = both enabled)
 */
#define PYL_STATUS_CHARGE_ENABLE 0x80
#define PYL_STATUS_DISCHARGE_ENABLE 0x40
#define PYL_STATUS_CHARGE_IMMEDIATELY_1 0x20 /* V3.3 §3.6 bit 5: SOC 5-9 % */
#define PYL_STATUS_CHARGE_IMMEDIATELY_2 0x10 /* V3.3 §3.6 bit 4: SOC 9-13 % */
#define PYL_STATUS_FULL_CHARGE_REQUEST 0x08  /* V3.3 §3.6 bit 3 */
/*
 * 0x63 status (V3.5): bit 7 charge enable, bit 6 discharge enable, bit 5
 * charge immediately (one bit, no I/II pair), bit 4 full charge request
 * (pace2pylon api/pylon_data.py PylonChargeFlags, answering a real Vevor;
 * bms-to-inverter sets bits 7, 6, 5 the same way; Fahmula sends 0xC0).
 */
#define PYL35_STATUS_CHARGE_ENABLE 0x80
#define PYL35_STATUS_DISCHARGE_ENABLE 0x40
#define PYL35_STATUS_CHARGE_IMMEDIATELY 0x20
#define PYL35_STATUS_FULL_CHARGE_REQUEST 0x10

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

bool pylon_rs485_addressed(const struct pylon_rs485_head *h, uint8_t our)
{
	if (h->cid1 != PYLON_RS485_CID1_BATTERY) {
		return false;
	}
	return h->adr == our || (h->adr == 0x00 && (h->cid2 == 0x4F || h->cid2 == 0x51));
}

bool pylon_rs485_ver_ok(const struct pylon_rs485_head *h)
{
	return h->cid2 == 0x4F || (h->ver >= PYL_VER_MIN && h->ver <= PYL_VER_MAX);
}

uint8_t pylon_rs485_answer_ver(const struct pylon_rs485_head *h)
{
	if (h->cid2 == 0x4F || h->ver < PYL_VER_MIN || h->ver > PYL_VER_MAX) {
		return PYL_VER_ANSWER;
	}
	return h->ver;
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

/*
 * Bits 7 and 6 of the 0x92 (V3.3 §3.6) and 0x63 (V3.5) status bytes, the
 * same in both: an enable flag never contradicts a zero limit next to it.
 */
static uint8_t enable_bits(const struct battery_pack *b)
{
	uint8_t s = 0;

	if ((b->requests & BATTERY_REQUEST_CHARGE_ENABLE) && b->charge_current_limit_ma >= 100) {
		s |= PYL_STATUS_CHARGE_ENABLE; /* bit 7 charge enable */
	}
	if ((b->requests & BATTERY_REQUEST_DISCHARGE_ENABLE) &&
	    b->discharge_current_limit_ma >= 100) {
		s |= PYL_STATUS_DISCHARGE_ENABLE; /* bit 6 discharge enable */
	}
	return s;
}

/* 0x92 "charge, discharge status" (V3.3 §3.6 table) */
static uint8_t charge_status_v33(const struct battery_pack *b)
{
	uint8_t s = enable_bits(b);

	if (b->requests & BATTERY_REQUEST_FORCE_CHARGE) {
		s |= PYL_STATUS_CHARGE_IMMEDIATELY_1; /* bit 5 charge immediately 1 */
	}
	if (b->requests & BATTERY_REQUEST_FORCE_CHARGE_2) {
		s |= PYL_STATUS_CHARGE_IMMEDIATELY_2; /* bit 4 charge immediately 2 */
	}
	if (b->requests & BATTERY_REQUEST_FULL_CHARGE) {
		s |= PYL_STATUS_FULL_CHARGE_REQUEST; /* bit 3 full charge request */
	}
	return s;
}

/* 0x63 status (V3.5): one "charge immediately" bit for either request */
static uint8_t charge_status_v35(const struct battery_pack *b)
{
	uint8_t s = enable_bits(b);

	if (b->requests & (BATTERY_REQUEST_FORCE_CHARGE | BATTERY_REQUEST_FORCE_CHARGE_2)) {
		s |= PYL35_STATUS_CHARGE_IMMEDIATELY; /* bit 5 charge immediately */
	}
	if (b->requests & BATTERY_REQUEST_FULL_CHARGE) {
		s |= PYL35_STATUS_FULL_CHARGE_REQUEST; /* bit 4 full charge request */
	}
	return s;
}

/*
 * Limits in the units of the wire, rounded so that they never loosen:
 * an upper bound toward zero, a lower bound up.
 */
static int16_t ccl_da(const struct battery_pack *b)
{
	return clamp_s16(b->charge_current_limit_ma / 100); /* 0.1 A, truncated: down */
}

/* the discharge current limit's magnitude in 0.1 A, truncated: down */
static int16_t dcl_da(const struct battery_pack *b)
{
	return clamp_s16(b->discharge_current_limit_ma / 100);
}

static uint32_t div_up(uint32_t v, uint32_t d)
{
	return (v + d - 1) / d;
}

/*
 * 0x42 analog values of one module, the "Data of battery" table of V3.3
 * §3.3 (python-pylontech get_values_single_fmt reads the same; real
 * UP2500 / US3000 answers in its tests and in the solar-pylontech README,
 * and a US2000B Plus answer matched byte for byte in the tests): cells,
 * temperatures, current, voltage, capacities, cycles.
 */
static void info_analog_module(struct pyl_writer *w, const struct battery_pack *b)
{
	unsigned cells = b->cell_count < BATTERY_CELLS_MAX ? b->cell_count : BATTERY_CELLS_MAX;

	/* §3.3 #1 number of cells M; 0 when the bank gives extremes only */
	w_u8(w, (uint8_t)cells);
	for (unsigned i = 0; i < cells; i++) {
		w_u16(w, b->cell_mv[i]); /* §3.3 #2..M+1 cell voltage, mV ("V, accuracy 3") */
	}
	if (b->temp_count > 0) {
		unsigned n = b->temp_count < BATTERY_TEMPS_MAX ? b->temp_count : BATTERY_TEMPS_MAX;

		w_u8(w, (uint8_t)(1 + n)); /* §3.3 M+2 N: BMS board + cell groups (real: 5) */
		w_temp(w, board_temp_dc(b)); /* §3.3 M+3 BMS board, 0.1 K (2731 = 0 degC) */
		for (unsigned i = 0; i < n; i++) {
			w_temp(w, b->temp_dc[i]); /* §3.3 M+4.. cell group temperature, 0.1 K */
		}
	} else {
		w_u8(w, 3);
		w_temp(w, board_temp_dc(b));
		w_temp(w, b->temp_min_dc);
		w_temp(w, b->temp_max_dc);
	}
	/*
	 * §3.3 M+N+3 current, s16, "actual value = transmission value * 100"
	 * mA, positive charging (python-pylontech ToAmp: FFFA = -0.6 A in a
	 * real UP2500 answer; ardiehl/pylontech PYL_MODULE_CURRENT_DIVIDER 10)
	 */
	w_u16(w, (uint16_t)clamp_s16(b->current_ma / 100));
	w_u16(w, clamp_u16(b->voltage_mv)); /* §3.3 M+N+4 module voltage, mV */
	if (b->full_mah > UINT16_MAX) {
		/* > 65 Ah (§3.3 note, V3.2): the 16-bit fields say FFFF, user defined 4 */
		w_u16(w, 0xffff); /* §3.3 M+N+5 remain capacity 1 */
		w_u8(w, 4);	  /* §3.3 M+N+6 user defined items */
		w_u16(w, 0xffff); /* §3.3 M+N+7 module total capacity 1 */
		w_u16(w, clamp_u16(b->cycles)); /* §3.3 M+N+8 cycle number */
		/* §3.3 M+N+9 remain capacity 2, 24-bit mAh */
		w_u24(w, b->remaining_mah > 0xffffff ? 0xffffff : b->remaining_mah);
		/* §3.3 M+N+10 module total capacity 2, 24-bit mAh */
		w_u24(w, b->full_mah > 0xffffff ? 0xffffff : b->full_mah);
	} else {
		w_u16(w, clamp_u16(b->remaining_mah)); /* §3.3 M+N+5 remain capacity, mAh */
		w_u8(w, 2);			       /* §3.3 M+N+6 user defined items: 2 */
		w_u16(w, clamp_u16(b->full_mah));      /* §3.3 M+N+7 total capacity, mAh */
		w_u16(w, clamp_u16(b->cycles));	       /* §3.3 M+N+8 cycle number */
	}
}

/*
 * 0x44 alarm info (field order: the PylontechMonitoring-style decoders'
 * parse of real US2000 answers; status bits: OpenDTU-onBattery
 * PylontechRS485 AlarmInfo_t; V3.3 §3.5). The answer ends with Status 5,
 * as V3.3 §3.5 lists it and as a real US2000B Plus sends it (15 cells, 5
 * sensors, LENGTH 0x040: Tomcat42/pylontech-python output.txt). Two other
 * real packs (tests/data/pylontech-rs485-golden.txt) append one more 0x00
 * that no document defines; we follow the document and the US2000B Plus
 * (before issue 10 we sent that byte).
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

	w_u8(w, 0x00);		 /* §3.5 DATAFLAG (§2.2.2): nothing unread */
	w_u8(w, cmd);		 /* §3.5 WARNSTATE #1 command value: our ADR */
	w_u8(w, (uint8_t)cells); /* module alarm info #1 number of cells M */
	for (unsigned i = 0; i < cells; i++) {
		uint8_t s = PYL_ITEM_NORMAL;

		if ((any & BATTERY_ALARM_CELL_UNDERVOLTAGE) && i == b->cell_min_idx) {
			s = PYL_ITEM_LOW;
		}
		if ((any & BATTERY_ALARM_CELL_OVERVOLTAGE) && i == b->cell_max_idx) {
			s = PYL_ITEM_HIGH;
		}
		w_u8(w, s); /* #2..M+1 cell i: 00 normal, 01 below, 02 above (§3.5 note) */
	}
	w_u8(w, (uint8_t)temps); /* M+2 number of temperatures N */
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
		w_u8(w, s); /* M+3.. temperature state, BMS board first */
	}
	/* M+N+3 charge current */
	w_u8(w, (any & BATTERY_ALARM_CHARGE_OVERCURRENT) ? PYL_ITEM_HIGH : PYL_ITEM_NORMAL);
	/* M+N+4 module voltage */
	w_u8(w, (any & BATTERY_ALARM_PACK_OVERVOLTAGE)	   ? PYL_ITEM_HIGH
		: (any & BATTERY_ALARM_PACK_UNDERVOLTAGE) ? PYL_ITEM_LOW
							   : PYL_ITEM_NORMAL);
	/* M+N+5 discharge current */
	w_u8(w, (any & BATTERY_ALARM_DISCHARGE_OVERCURRENT) ? PYL_ITEM_HIGH : PYL_ITEM_NORMAL);

	/* §3.5 Status 1: protections in force (alarms only, not warnings) */
	st1 |= (b->alarms & BATTERY_ALARM_PACK_OVERVOLTAGE) ? 0x01 : 0;	  /* module over voltage */
	st1 |= (b->alarms & BATTERY_ALARM_CELL_UNDERVOLTAGE) ? 0x02 : 0;	  /* cell under voltage */
	st1 |= (b->alarms & BATTERY_ALARM_CHARGE_OVERCURRENT) ? 0x04 : 0;	  /* charge over current */
	st1 |= (b->alarms & BATTERY_ALARM_DISCHARGE_OVERCURRENT) ? 0x10 : 0; /* discharge OC */
	st1 |= (b->alarms & BATTERY_ALARM_DISCHARGE_OVERTEMP) ? 0x20 : 0;	  /* discharge OT */
	st1 |= (b->alarms & BATTERY_ALARM_CHARGE_OVERTEMP) ? 0x40 : 0;	  /* charge OT */
	st1 |= (b->alarms & BATTERY_ALARM_PACK_UNDERVOLTAGE) ? 0x80 : 0;	  /* module under V */
	/* §3.5 Status 2: bit 1 charge MOSFET, bit 2 discharge MOSFET, bit 3 using battery */
	st2 |= (b->requests & BATTERY_REQUEST_CHARGE_ENABLE) ? 0x02 : 0;
	st2 |= (b->requests & BATTERY_REQUEST_DISCHARGE_ENABLE) ? 0x0C : 0;
	/*
	 * §3.5 Status 3: bit 7 effective charge current ("current detected by
	 * BMS > 0.1A"), bit 6 effective discharge current (< -0.1 A); before
	 * issue 10 any current above / below 0 set them
	 */
	st3 |= b->current_ma > 100 ? 0x80 : 0;
	st3 |= b->current_ma < -100 ? 0x40 : 0;
	st3 |= b->soc_pct >= 100 ? 0x08 : 0; /* bit 3 fully charged (SOC = 100 %) */
	w_u8(w, st1);
	w_u8(w, st2);
	w_u8(w, st3);
	w_u8(w, 0x00); /* Status4: cell 1-8 error (not known per cell) */
	w_u8(w, 0x00); /* Status5: cell 9-16 error (V3.3 §3.5), the last field */
}

/*
 * 0x47 system parameters (V3.3 §3.4 DATAI table, INFO = INFOFLAG + DATAI):
 * cell limits mV, charge temperature limits 0.1 K, charge current limit,
 * module limits mV, discharge temperature limits, discharge current limit.
 * The current limits are "A, with symbol, value = transmission value * 100"
 * (in mA): signed 0.1 A, the discharge limit negative. Checked field by
 * field on a real US2000B Plus answer (Tomcat42/pylontech-python
 * examples/lowLevelRS485/output.txt, `~20024647C0040000FCD0` ->
 * `~20024600B032110E420BEA0B540D0D0A3D03FCD2F0B3B0ADD40D0D0A3DFC18F23D`:
 * CCL 0x03FC = 102.0 A, DCL 0xFC18 = -100.0 A; tests/data/
 * pylontech-rs485-us2000bplus.txt). Before issue 10 we sent both in 10 mA
 * and the DCL positive, after an old version of python-pylontech's
 * DivideBy100 reader.
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

	/* V3.3 §2.2.2 DATA FLAG: no unread alarm or switch change (the real pack: 0x11) */
	w_u8(w, 0x00);
	/* §3.4 #1 cell high voltage limit, mV: an upper bound, rounded down */
	w_u16(w, clamp_u16(b->charge_voltage_limit_mv / cells));
	/* §3.4 #2 cell low voltage limit (alarm), mV: a lower bound, rounded up */
	w_u16(w, clamp_u16(div_up(b->discharge_voltage_limit_mv, cells)));
	/* §3.4 #3 cell under voltage limit (protect), mV: rounded up */
	w_u16(w, clamp_u16(div_up(b->discharge_voltage_limit_mv, cells)));
	w_temp(w, PYL_CHARGE_TEMP_HIGH_DC);   /* §3.4 #4 charge high temperature, 0.1 K */
	w_temp(w, PYL_CHARGE_TEMP_LOW_DC);    /* §3.4 #5 charge low temperature, 0.1 K */
	w_u16(w, (uint16_t)ccl_da(b));	      /* §3.4 #6 charge current limit, s16 0.1 A */
	w_u16(w, clamp_u16(b->charge_voltage_limit_mv));    /* §3.4 #7 module high V, mV */
	w_u16(w, clamp_u16(b->discharge_voltage_limit_mv)); /* §3.4 #8 module low V, mV */
	w_u16(w, clamp_u16(b->discharge_voltage_limit_mv)); /* §3.4 #9 module under V, mV */
	w_temp(w, PYL_DISCHARGE_TEMP_HIGH_DC); /* §3.4 #10 discharge high temperature */
	w_temp(w, PYL_DISCHARGE_TEMP_LOW_DC);  /* §3.4 #11 discharge low temperature */
	/* §3.4 #12 discharge current limit, s16 0.1 A, negative (the real pack: FC18) */
	w_u16(w, (uint16_t)(int16_t)-dcl_da(b));
}

/*
 * 0x92 charge/discharge management info (V3.3 §3.6: command value, then
 * the "charge and discharge management value" table). Real answers: a
 * UP2500 in python-pylontech tests ("026EF05AA0022BFDD5C0" = ADR, 28.4 V,
 * 23.2 V, 55.5 A, -55.5 A, 0xC0) and a US2000B Plus in Tomcat42/
 * pylontech-python output.txt ("02D002B79800FAFF06C0" = 53.25 V, 47.0 V,
 * 25.0 A, -25.0 A, 0xC0). §3.6 gives the currents as "A, accuracy 1";
 * every real answer is signed 0.1 A with the discharge limit negative.
 */
static void info_management(struct pyl_writer *w, const struct battery_pack *b, uint8_t cmd)
{
	w_u8(w, cmd); /* §3.6 DATAI #1 command value: our ADR */
	/* #1 charge voltage limit, mV (the bank's mV, no rounding) */
	w_u16(w, clamp_u16(b->charge_voltage_limit_mv));
	w_u16(w, clamp_u16(b->discharge_voltage_limit_mv)); /* #2 discharge voltage limit, mV */
	w_u16(w, (uint16_t)ccl_da(b));			    /* #3 charge current limit, 0.1 A */
	w_u16(w, (uint16_t)(int16_t)-dcl_da(b)); /* #4 discharge current limit, 0.1 A, < 0 */
	w_u8(w, charge_status_v33(b));		  /* #5 charge, discharge status */
}

/*
 * 0x51 manufacturer info (V3.3 §3.2 DATAINFO: battery name 10 ASCII,
 * software version 2, manufacturer name 20 ASCII; LENID 0x40). A real
 * US2000B Plus answers "US2KBPL\0\0\0", 02 03, "Pylon---------------"
 * (Tomcat42/pylontech-python output.txt); we pad with spaces.
 */
static void info_manufacturer(struct pyl_writer *w, const struct protocol_options *opt)
{
	w_ascii(w, brand(opt), PYL_DEVICE_NAME_LEN); /* §3.2 #1 battery name, 10 characters */
	w_u8(w, PYL_SW_MAJOR);			     /* §3.2 #2 software version, 2 bytes */
	w_u8(w, PYL_SW_MINOR);
	w_ascii(w, PYL_MAKER, PYL_MANUFACTURER_LEN); /* §3.2 #3 manufacturer name, 20 */
}

/*
 * 0x96 software version (V3.3 §3.10 DATAI: command value 1 byte, then the
 * module software version, 5 bytes: "manufacture version" 2 bytes and
 * "main line version" 3 bytes). A real US2000B Plus answers
 * `~20024696C0040201FCC9` with `~20024600400C020203000605FB49`: command
 * value 0x02 (its own ADR, though the request said 01), 02 03, 00 06 05.
 * Answered because real packs answer it: a monitor that gets an error here
 * abandons its whole read cycle (before issue 10: RTN 0x04).
 */
static void info_software_version(struct pyl_writer *w, uint8_t adr)
{
	w_u8(w, adr);			/* §3.10 #1 command value: our ADR */
	w_u8(w, PYL_SW_MAJOR);		/* §3.10 #2 manufacture version, 2 bytes */
	w_u8(w, PYL_SW_MINOR);
	w_u8(w, PYL_MAINLINE_MAJOR);	/* §3.10 #2 main line version, 3 bytes */
	w_u8(w, PYL_MAINLINE_MINOR);
	w_u8(w, PYL_MAINLINE_PATCH);
}

/*
 * 0x60 system basic info (3.5; bms-to-inverter inverter-pylon-rs485
 * createSystemInfo): device name 10, manufacturer 20, software version 2,
 * module count 1, then a 16-character serial per module. We are one module.
 */
static void info_system_basic(struct pyl_writer *w, const struct protocol_options *opt,
			      uint8_t adr)
{
	w_ascii(w, brand(opt), PYL_DEVICE_NAME_LEN); /* V3.5 0x60 device name, 10 ASCII */
	w_ascii(w, PYL_MAKER, PYL_MANUFACTURER_LEN); /* manufacturer name, 20 ASCII */
	w_u8(w, PYL_SW_MAJOR);			     /* software version, 2 bytes */
	w_u8(w, PYL_SW_MINOR);
	w_u8(w, 1);	  /* modules in the system */
	w_serial(w, adr); /* module serial number, 16 ASCII */
}

/*
 * A V3.5 0x61 location field, 16 bits: the pack number (1-based) in the
 * high byte, the cell or sensor number (1-based) in the low byte. Fahmula
 * writes 0x0101 / 0x0108 (pack 1, cell 1 / 8) and pace2pylon renders the
 * field as one 16-bit id; bms-to-inverter writes the pack as a 0-based
 * index instead. We follow the 1-based form (Pylontech numbers packs and
 * cells from 1 everywhere else, e.g. V3.3 §3.3 "Cell 1 voltage").
 */
static uint16_t where(uint8_t pack, uint8_t idx)
{
	uint8_t p = pack == BATTERY_INDEX_NONE ? 1 : (uint8_t)(pack + 1);
	uint8_t i = idx == BATTERY_INDEX_NONE ? 0 : (uint8_t)(idx + 1); /* 0: unknown */

	return (uint16_t)(p << 8 | i);
}

/*
 * 0x61 system analog (V3.5; the same field order in Fahmula
 * pylontech_rs485.cpp handle_command_61_, pace2pylon api/pylon.py
 * AnalogInfo answering a real Vevor, and bms-to-inverter
 * createBatteryInformation): voltage mV, current 10 mA (Fahmula "current *
 * 100", pace2pylon renders /100; bms-to-inverter writes 0.1 A: we follow
 * the two that agree), SOC %, average/max cycles, average/min SOH %, cell
 * max/min mV each with its location, cell temperature average/max/min 0.1
 * K with locations, MOSFET temperature average/max/min with locations, BMS
 * board temperature average/max/min with locations.
 */
static void info_system_analog(struct pyl_writer *w, const struct battery_state *bs)
{
	const struct battery_pack *b = &bs->bank;
	int16_t mos = board_temp_dc(b);
	uint16_t mos_where = where(0, 0);

	w_u16(w, clamp_u16(b->voltage_mv));		      /* V3.5 0x61 system voltage, mV */
	w_u16(w, (uint16_t)clamp_s16(b->current_ma / 10));   /* current, s16 10 mA, + charge */
	w_u8(w, clamp_u8(b->soc_pct));			      /* SOC, % */
	w_u16(w, clamp_u16(b->cycles));			      /* average cycles */
	w_u16(w, clamp_u16(b->cycles));			      /* maximum cycles */
	w_u8(w, clamp_u8(b->soh_pct));			      /* average SOH, % */
	w_u8(w, clamp_u8(b->soh_pct));			      /* lowest SOH, % */
	w_u16(w, b->cell_max_mv);			      /* highest cell voltage, mV */
	w_u16(w, where(b->cell_max_pack, b->cell_max_idx));   /* its location */
	w_u16(w, b->cell_min_mv);			      /* lowest cell voltage, mV */
	w_u16(w, where(b->cell_min_pack, b->cell_min_idx));   /* its location */
	w_temp(w, avg_temp_dc(b));			      /* cell temperature average */
	w_temp(w, b->temp_max_dc);			      /* cell temperature max, 0.1 K */
	w_u16(w, where(b->temp_max_pack, b->temp_max_idx));   /* its location */
	w_temp(w, b->temp_min_dc);			      /* cell temperature min, 0.1 K */
	w_u16(w, where(b->temp_min_pack, b->temp_min_idx));   /* its location */
	/* MOSFET temperature average, max + location, min + location: one sensor per bank */
	w_temp(w, mos);
	w_temp(w, mos);
	w_u16(w, mos_where);
	w_temp(w, mos);
	w_u16(w, mos_where);
	/* BMS board temperature average, max + location, min + location: the same sensor */
	w_temp(w, mos);
	w_temp(w, mos);
	w_u16(w, mos_where);
	w_temp(w, mos);
	w_u16(w, mos_where);
}

/*
 * 0x62 system alarms (V3.5): alarm status 1, alarm status 2, protection
 * status 1, protection status 2, one byte each. Bits as Fahmula
 * handle_command_62_ names them (the fullest of the three encoders; the
 * MOSFET bits are its own, bms-to-inverter leaves bit 1 at 0):
 *   alarm 1 / protection 1: bit 7 module (total) over voltage, 6 module
 *     under voltage, 5 cell over voltage, 4 cell under voltage, 3 cell
 *     over temperature, 2 cell under temperature, 1 MOSFET over
 *     temperature, 0 (alarm only) cell imbalance;
 *   alarm 2: bit 7 cell temperature imbalance, 6 charge over current, 5
 *     discharge over current, 4 internal communication error;
 *   protection 2: bit 6 charge over current, 5 discharge over current, 3
 *     system fault ("other failure" in bms-to-inverter).
 * Before issue 10 a MOSFET over temperature raised the cell temperature
 * bit 3 of protection 1 and never bit 1.
 */
static void info_system_alarms(struct pyl_writer *w, const struct battery_pack *b)
{
	uint32_t wa = b->warnings, al = b->alarms;
	uint8_t w1 = 0, w2 = 0, p1 = 0, p2 = 0;
	const uint32_t ot = BATTERY_ALARM_CHARGE_OVERTEMP | BATTERY_ALARM_DISCHARGE_OVERTEMP;
	const uint32_t ut = BATTERY_ALARM_CHARGE_UNDERTEMP | BATTERY_ALARM_DISCHARGE_UNDERTEMP;

	w1 |= (wa & BATTERY_ALARM_PACK_OVERVOLTAGE) ? 0x80 : 0;	 /* bit 7 module OV */
	w1 |= (wa & BATTERY_ALARM_PACK_UNDERVOLTAGE) ? 0x40 : 0; /* bit 6 module UV */
	w1 |= (wa & BATTERY_ALARM_CELL_OVERVOLTAGE) ? 0x20 : 0;	 /* bit 5 cell OV */
	w1 |= (wa & BATTERY_ALARM_CELL_UNDERVOLTAGE) ? 0x10 : 0; /* bit 4 cell UV */
	w1 |= (wa & ot) ? 0x08 : 0;				 /* bit 3 cell OT */
	w1 |= (wa & ut) ? 0x04 : 0;				 /* bit 2 cell UT */
	w1 |= (wa & BATTERY_ALARM_MOSFET_OVERTEMP) ? 0x02 : 0;	 /* bit 1 MOSFET OT */
	w1 |= (wa & BATTERY_ALARM_CELL_IMBALANCE) ? 0x01 : 0;	 /* bit 0 cell imbalance */
	w2 |= (wa & BATTERY_ALARM_CHARGE_OVERCURRENT) ? 0x40 : 0;    /* bit 6 charge OC */
	w2 |= (wa & BATTERY_ALARM_DISCHARGE_OVERCURRENT) ? 0x20 : 0; /* bit 5 discharge OC */
	/* bit 4 internal communication error: the link to the BMS, or a pack of the bank */
	w2 |= (wa & (BATTERY_ALARM_BMS_LINK_LOST | BATTERY_ALARM_PACK_OFFLINE)) ? 0x10 : 0;
	p1 |= (al & BATTERY_ALARM_PACK_OVERVOLTAGE) ? 0x80 : 0;	 /* bit 7 module OV */
	p1 |= (al & BATTERY_ALARM_PACK_UNDERVOLTAGE) ? 0x40 : 0; /* bit 6 module UV */
	p1 |= (al & BATTERY_ALARM_CELL_OVERVOLTAGE) ? 0x20 : 0;	 /* bit 5 cell OV */
	p1 |= (al & BATTERY_ALARM_CELL_UNDERVOLTAGE) ? 0x10 : 0; /* bit 4 cell UV */
	p1 |= (al & ot) ? 0x08 : 0;				 /* bit 3 cell OT */
	p1 |= (al & ut) ? 0x04 : 0;				 /* bit 2 cell UT */
	p1 |= (al & BATTERY_ALARM_MOSFET_OVERTEMP) ? 0x02 : 0;	 /* bit 1 MOSFET OT */
	p2 |= (al & BATTERY_ALARM_CHARGE_OVERCURRENT) ? 0x40 : 0; /* bit 6 charge OC */
	/* bit 5 discharge over current (a short circuit is one) */
	p2 |= (al & (BATTERY_ALARM_DISCHARGE_OVERCURRENT | BATTERY_ALARM_SHORT_CIRCUIT)) ? 0x20
											  : 0;
	/* bit 3 system fault: the BMS's own fault, or the link to it lost */
	p2 |= (al & (BATTERY_ALARM_BMS_INTERNAL | BATTERY_ALARM_BMS_LINK_LOST)) ? 0x08 : 0;
	w_u8(w, w1);
	w_u8(w, w2);
	w_u8(w, p1);
	w_u8(w, p2);
}

/*
 * 0x63 system charge/discharge management (V3.5): charge voltage limit
 * mV, discharge voltage limit mV, charge current limit 0.1 A, discharge
 * current limit 0.1 A as a POSITIVE magnitude, status byte. Units: pace2pylon
 * (answering a real Vevor; renders the currents /10) and bms-to-inverter
 * (x10) write 0.1 A; Fahmula writes 10 mA ("* 100"). We follow the two that
 * agree and the one tested against a real inverter. All three send the
 * discharge limit positive (unlike 0x92, V3.3 §3.6). Status bits: see
 * PYL35_STATUS_* (before issue 10 this byte used the 0x92 layout, with the
 * full charge request in bit 3 instead of bit 4).
 */
static void info_system_management(struct pyl_writer *w, const struct battery_pack *b)
{
	w_u16(w, clamp_u16(b->charge_voltage_limit_mv));    /* charge voltage limit, mV */
	w_u16(w, clamp_u16(b->discharge_voltage_limit_mv)); /* discharge voltage limit, mV */
	w_u16(w, (uint16_t)ccl_da(b));			    /* charge current limit, 0.1 A */
	w_u16(w, (uint16_t)dcl_da(b)); /* discharge current limit, 0.1 A, positive */
	w_u8(w, charge_status_v35(b));
}

/* Frame a response: header, the INFO already written at offset 13, LENGTH, CHKSUM. */
static ssize_t frame(uint8_t *rsp, size_t n_rsp, const struct pylon_rs485_head *h, uint8_t rtn,
		     struct pyl_writer *info);

static ssize_t finish(uint8_t *rsp, size_t n_rsp, const struct pylon_rs485_head *h, uint8_t rtn,
		      struct pyl_writer *info)
{
	struct pylon_rs485_head a = *h;

	a.ver = pylon_rs485_answer_ver(h);
	return frame(rsp, n_rsp, &a, rtn, info);
}

/* the frame itself (V3.3 §2.2.1): SOI VER ADR CID1 RTN LENGTH INFO CHKSUM EOI */
static ssize_t frame(uint8_t *rsp, size_t n_rsp, const struct pylon_rs485_head *h, uint8_t rtn,
		     struct pyl_writer *info)
{
	struct pyl_writer w = { .buf = rsp, .size = n_rsp };
	size_t lenid = info ? info->pos - 13 : 0;

	if ((info && info->overflow) || lenid > 0x0fff || 13 + lenid + 5 > n_rsp) {
		return -ENOBUFS;
	}
	w_char(&w, PYLON_RS485_SOI);			 /* §2.2.2 #1 SOI '~' */
	w_u8(&w, h->ver);				 /* #2 VER: see pylon_rs485_answer_ver() */
	w_u8(&w, h->adr);				 /* #3 ADR: the request's */
	w_u8(&w, PYLON_RS485_CID1_BATTERY);		 /* #4 CID1 0x46 (§2.5.1) */
	w_u8(&w, rtn);					 /* #5 CID2 = RTN (§2.5.2) */
	w_u16(&w, pylon_rs485_length((uint16_t)lenid)); /* #6 LENGTH (§2.3.2) */
	w.pos = 13 + lenid;				 /* #7 INFO, already written */
	w_u16(&w, pylon_rs485_chksum(&rsp[1], 12 + lenid)); /* #8 CHKSUM (§2.3.3) */
	w_char(&w, PYLON_RS485_EOI);			     /* #9 EOI CR */
	return w.overflow ? -ENOBUFS : (ssize_t)w.pos;
}

/*
 * Over 80 lines: the checks of one request in the order of the document's RTN codes, then
 * one answer per CID2.
 */
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
	/*
	 * A response (CID2 = an RTN code) is never a request: our own answer
	 * echoed by a 2-wire adapter, or another pack's. Answering it with an
	 * error would start an endless ping-pong on the bus.
	 */
	if (pylon_rs485_is_response(&h)) {
		return 0;
	}
	/* another pack's address, another CID1 family: silence, whatever else is wrong */
	if (!pylon_rs485_addressed(&h, our)) {
		return 0;
	}
	if (!h.chksum_ok) {
		return finish(rsp, n_rsp, &h, PYLON_RS485_RTN_CHKSUM, NULL);
	}
	if (!pylon_rs485_ver_ok(&h)) {
		return finish(rsp, n_rsp, &h, PYLON_RS485_RTN_VER, NULL);
	}
	if (!h.length_ok) {
		return finish(rsp, n_rsp, &h, PYLON_RS485_RTN_LCHKSUM, NULL);
	}
	info_chars = n_req - PYLON_RS485_FRAME_MIN;
	if (info_chars % 2) {
		return finish(rsp, n_rsp, &h, PYLON_RS485_RTN_FORMAT, NULL);
	}
	if (info_chars >= 2) {
		cmd = hex_byte(&req[13]); /* command value: an address, or 0xFF for "all" */
	}

	switch (h.cid2) {
	case 0x4F: /* protocol version (§3.1): the answer's VER says it, INFO empty */
		break;
	case 0x96: /* software version (§3.10) */
		info_software_version(&w, our);
		break;
	case 0x51:
		info_manufacturer(&w, opt);
		break;
	case 0x93:
		w_u8(&w, our);	   /* §3.7 DATAI #1 command value: our ADR */
		w_serial(&w, our); /* §3.7 #2 module SN, 16 ASCII */
		break;
	case 0x60:
		info_system_basic(&w, opt, our);
		break;
	case 0x42:
		if (!bank_has(bs, G(ELECTRICAL) | G(CAPACITY) | G(CELLS) | G(TEMPS))) {
			return -ENODATA;
		}
		w_u8(&w, 0x00); /* §3.3 INFOFLAG (§2.2.2): no unread alarm/switch change */
		/*
		 * §3.3 DATAI #1 command value: our ADR; "FF" (the system, §2.5.3)
		 * asks for every module: a module count follows instead
		 */
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

/*
 * ===========================================================================
 * The polling side: a Pylontech stack read over RS485 as the BMS input
 * (issue 15). Pure: request bytes out, answer bytes in, bs->packs[] filled.
 *
 * Shared with Seplos V2 and Pace (the same YD/T 1363 framing, V3.3 §2.2):
 * pylon_rs485_request(), pylon_rs485_find_answer(), pylon_rs485_answer_info().
 * ===========================================================================
 */

ssize_t pylon_rs485_request(uint8_t ver, uint8_t adr, uint8_t cid2, const uint8_t *info,
			    size_t n_info, uint8_t *buf, size_t n)
{
	return pylon_rs485_request_cid1(ver, adr, PYLON_RS485_CID1_BATTERY, cid2, info, n_info, buf,
					n);
}

ssize_t pylon_rs485_request_cid1(uint8_t ver, uint8_t adr, uint8_t cid1, uint8_t cid2,
				 const uint8_t *info, size_t n_info, uint8_t *buf, size_t n)
{
	struct pyl_writer w = { .buf = buf, .size = n };
	size_t lenid = 2 * n_info;

	if (!buf || lenid > 0x0fff || 18 + lenid > n) {
		return -ENOBUFS;
	}
	w_char(&w, PYLON_RS485_SOI);		       /* V3.3 §2.2.2 SOI */
	w_u8(&w, ver);				       /* VER */
	w_u8(&w, adr);				       /* ADR */
	w_u8(&w, cid1);				       /* CID1 (0x46 battery, §2.5.1) */
	w_u8(&w, cid2);				       /* CID2 = the command */
	w_u16(&w, pylon_rs485_length((uint16_t)lenid)); /* LENGTH (§2.3.2) */
	for (size_t i = 0; i < n_info; i++) {
		w_u8(&w, info[i]); /* INFO, hex (§2.3.1) */
	}
	w_u16(&w, pylon_rs485_chksum(&buf[1], w.pos - 1)); /* CHKSUM (§2.3.3) */
	w_char(&w, PYLON_RS485_EOI);
	return w.overflow ? -ENOBUFS : (ssize_t)w.pos;
}

ssize_t pylon_rs485_find_answer(uint8_t adr, uint8_t req_cid2, const uint8_t *buf, size_t len,
				size_t max, size_t *skip)
{
	return pylon_rs485_find_answer_cid1(adr, PYLON_RS485_CID1_BATTERY, req_cid2, buf, len, max,
					    skip);
}

ssize_t pylon_rs485_find_answer_cid1(uint8_t adr, uint8_t cid1, uint8_t req_cid2,
				     const uint8_t *buf, size_t len, size_t max, size_t *skip)
{
	struct pylon_rs485_head h;
	size_t n = 0;

	if (!buf || len == 0) {
		return 0;
	}
	if (buf[0] != PYLON_RS485_SOI) {
		return -EBADMSG;
	}
	for (size_t i = 1; i < len && i < max; i++) {
		if (buf[i] == PYLON_RS485_EOI) {
			n = i + 1;
			break;
		}
		if (hex_nibble(buf[i]) < 0) {
			return -EBADMSG; /* only hex between '~' and '\r' (§2.3.1) */
		}
	}
	if (n == 0) {
		return len >= max ? -EBADMSG : 0;
	}
	if (pylon_rs485_peek(buf, n, &h) < 0 || !h.chksum_ok || !h.length_ok) {
		return -EBADMSG;
	}
	/* our own request echoed by a two-wire adapter, another pack's answer */
	if (h.cid2 == req_cid2 || h.adr != adr || h.cid1 != cid1) {
		if (skip) {
			*skip = n;
		}
		return -ENOMSG;
	}
	return (ssize_t)n;
}

ssize_t pylon_rs485_answer_info(const uint8_t *ans, size_t len, uint8_t *info, size_t n_info,
				uint8_t *rtn)
{
	struct pylon_rs485_head h;
	size_t chars;

	if (pylon_rs485_peek(ans, len, &h) < 0 || !h.chksum_ok || !h.length_ok) {
		return -EBADMSG;
	}
	chars = len - PYLON_RS485_FRAME_MIN;
	if (chars % 2 || chars / 2 > n_info) {
		return -EBADMSG;
	}
	for (size_t i = 0; i < chars / 2; i++) {
		info[i] = (uint8_t)hex_byte(&ans[13 + 2 * i]);
	}
	if (rtn) {
		*rtn = h.cid2;
	}
	return (ssize_t)(chars / 2);
}

ssize_t pylon_rs485_answer_data(const uint8_t *ans, size_t len, uint8_t *info, size_t n_info)
{
	uint8_t rtn;
	ssize_t n = pylon_rs485_answer_info(ans, len, info, n_info, &rtn);

	if (n >= 0 && rtn != PYLON_RS485_RTN_OK) {
		return -EPROTO;
	}
	return n;
}

int pylon_rs485_decode_step(const pylon_rs485_info_fn *steps, unsigned n_steps, unsigned step,
			    const uint8_t *ans, size_t len, unsigned pack, uint64_t now_usec,
			    struct battery_state *bs)
{
	uint8_t d[PYLON_RS485_STEP_INFO_MAX];
	ssize_t n;

	if (!bs || pack >= BATTERY_PACKS_MAX || step >= n_steps || !steps[step]) {
		return -EBADMSG;
	}
	n = pylon_rs485_answer_data(ans, len, d, sizeof(d));
	if (n < 0) {
		return (int)n;
	}
	return steps[step](d, (size_t)n, &bs->packs[pack], now_usec);
}

/*
 * The round: per pack, 0x42 analog values (§3.3), 0x44 alarm info (§3.5),
 * 0x92 charge/discharge management info (§3.6), each with INFO = the
 * command value, the pack's ADR ("should be matched with ADR", §3.3), as
 * the real exchange polls (`~20024642E00202FD33`, Tomcat42/pylontech-python
 * examples/lowLevelRS485/output.txt). 0x47 system parameters (§3.4) are
 * protection thresholds, not the dynamic limits of 0x92; they are not
 * polled, so that LIMITS has one source.
 */
enum {
	PYL_STEP_ANALOG,
	PYL_STEP_ALARMS,
	PYL_STEP_MANAGEMENT,
	PYL_STEP__COUNT,
};

static const uint8_t pyl_step_cid2[PYL_STEP__COUNT] = { 0x42, 0x44, 0x92 };

#define PYL_INFO_MAX PYLON_RS485_STEP_INFO_MAX /* bytes: a 32-cell, 9-sensor 0x42 INFO is ~110 */
#define PYL_ANSWER_MAX (PYLON_RS485_FRAME_MIN + 2 * PYL_INFO_MAX)

static ssize_t pyl_bms_request(unsigned step, uint8_t address, uint8_t *buf, size_t n)
{
	if (step >= PYL_STEP__COUNT) {
		return 0;
	}
	/* VER 0x20, what the US2000B Plus answers 0x4F with and is polled with */
	return pylon_rs485_request(PYL_VER_ANSWER, address, pyl_step_cid2[step], &address, 1, buf,
				   n);
}

static ssize_t pyl_bms_frame(unsigned step, uint8_t address, const uint8_t *buf, size_t len,
			     size_t *skip)
{
	if (step >= PYL_STEP__COUNT) {
		return -EBADMSG;
	}
	return pylon_rs485_find_answer(address, pyl_step_cid2[step], buf, len, PYL_ANSWER_MAX,
				       skip);
}

/* 0.1 K (2731 = 0 degC, §3.3 "Temperature ... 0.1K") to 0.1 degC */
static int16_t pyl_temp_dc(const uint8_t *p)
{
	return clamp_s16((int32_t)get_be16(p) - PYL_KELVIN_DK);
}

static uint32_t get_be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

/*
 * 0x42 analog values of one module (§3.3 "Data of battery" table): INFOFLAG,
 * command value, M cells (mV), N temperatures (0.1 K; the first is the BMS
 * board), current (s16, 100 mA), module voltage (mV), remain capacity (mAh),
 * user defined P, total capacity (mAh), cycles; with P = 4 (packs above
 * 65 Ah, §3.3 note) remain and total again in 24 bits (mAh).
 */
static int pyl_decode_analog(const uint8_t *d, size_t n, struct battery_pack *p,
			     uint64_t now_usec)
{
	struct battery_pack t = *p;
	size_t o = 2;
	unsigned m, nt, user;
	uint32_t remain, total;

	if (n < o + 1) {
		return -EBADMSG;
	}
	m = d[o++];
	if (m == 0 || m > BATTERY_CELLS_MAX || n < o + 2 * m + 1) {
		return -EBADMSG;
	}
	t.cell_count = (uint8_t)m;
	for (unsigned i = 0; i < m; i++, o += 2) {
		t.cell_mv[i] = get_be16(&d[o]); /* §3.3 #2..M+1 cell voltage, mV */
	}
	nt = d[o++];
	if (nt < 2 || nt > BATTERY_TEMPS_MAX + 1 || n < o + 2 * nt + 2 + 2 + 2 + 1 + 2 + 2) {
		return -EBADMSG;
	}
	t.mosfet_temp_dc = pyl_temp_dc(&d[o]); /* §3.3 M+3 BMS board temperature */
	o += 2;
	t.temp_count = (uint8_t)(nt - 1);
	for (unsigned i = 0; i + 1 < nt; i++, o += 2) {
		t.temp_dc[i] = pyl_temp_dc(&d[o]); /* §3.3 M+4.. cell group temperatures */
	}
	/* §3.3 M+N+3 current, s16, 100 mA, + charging */
	t.current_ma = (int32_t)(int16_t)get_be16(&d[o]) * 100;
	t.voltage_mv = get_be16(&d[o + 2]); /* §3.3 M+N+4 module voltage, mV */
	remain = get_be16(&d[o + 4]);	    /* §3.3 M+N+5 remain capacity, mAh */
	user = d[o + 6];		    /* §3.3 M+N+6 user defined items, 2 or 4 */
	total = get_be16(&d[o + 7]);	    /* §3.3 M+N+7 module total capacity, mAh */
	t.cycles = get_be16(&d[o + 9]);	    /* §3.3 M+N+8 cycle number */
	o += 11;
	if (user >= 4) {
		if (n < o + 6) {
			return -EBADMSG;
		}
		remain = get_be24(&d[o]);     /* §3.3 M+N+9 remain capacity 2, mAh */
		total = get_be24(&d[o + 3]); /* §3.3 M+N+10 total capacity 2, mAh */
	}
	if (total == 0 || remain > total) {
		return -EBADMSG;
	}
	t.remaining_mah = remain;
	t.full_mah = total;
	/*
	 * No SOC on the wire: remain / total, rounded (python-pylontech and
	 * the Pylontech console's "Coulomb" column do the same), in 0.01 %
	 * so Victron's 0x355 high-resolution SOC is not a whole percent. No
	 * SOH at all: 100 % as for the other families without one (Daly V1.2,
	 * JBD), never 0 % (an inverter would show a worn-out battery).
	 */
	battery_pack_set_soc_cpct(&t, remain >= total ? 10000
						   : (uint32_t)((remain * 10000ull + total / 2) / total));
	if (t.soh_pct == 0) {
		t.soh_pct = 100;
	}
	battery_pack_update_cell_extremes(&t);
	battery_pack_update_temp_extremes(&t);
	*p = t;
	battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_CELLS, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_TEMPS, now_usec);
	return 0;
}

/*
 * 0x44 alarm info (§3.5): INFOFLAG, command value, M cell states, N
 * temperature states (BMS board first), charge current, module voltage,
 * discharge current states (00 normal, 01 below the lower limit, 02 above
 * the upper limit, both "act as protection"; F0 other error), Status 1-5.
 * Everything here is a protection in force: alarms, never warnings. The
 * state of a cell group temperature does not say charge or discharge:
 * both alarms are raised (the safer reading). Status 2's MOSFET bits are
 * not used: 0x92 carries the enable flags the BMS wants honoured.
 */
static uint32_t pyl_item(uint8_t s, uint32_t low, uint32_t high)
{
	switch (s) {
	case PYL_ITEM_NORMAL:
		return 0;
	case PYL_ITEM_LOW:
		return low;
	case PYL_ITEM_HIGH:
		return high;
	default:
		return BATTERY_ALARM_BMS_INTERNAL; /* F0 "other error", user defined */
	}
}

static int pyl_decode_alarms(const uint8_t *d, size_t n, struct battery_pack *p,
			     uint64_t now_usec)
{
	const uint32_t ut = BATTERY_ALARM_CHARGE_UNDERTEMP | BATTERY_ALARM_DISCHARGE_UNDERTEMP;
	const uint32_t ot = BATTERY_ALARM_CHARGE_OVERTEMP | BATTERY_ALARM_DISCHARGE_OVERTEMP;
	uint32_t a = 0;
	size_t o = 2;
	unsigned m, nt;
	uint8_t st1, st4, st5;

	if (n < o + 1) {
		return -EBADMSG;
	}
	m = d[o++];
	if (m > BATTERY_CELLS_MAX || n < o + m + 1) {
		return -EBADMSG;
	}
	for (unsigned i = 0; i < m; i++) {
		a |= pyl_item(d[o++], BATTERY_ALARM_CELL_UNDERVOLTAGE, BATTERY_ALARM_CELL_OVERVOLTAGE);
	}
	nt = d[o++];
	if (nt > BATTERY_TEMPS_MAX + 1 || n < o + nt + 3 + 5) {
		return -EBADMSG;
	}
	for (unsigned i = 0; i < nt; i++) {
		/* the first is the BMS board: only "above" has a meaning there */
		a |= i == 0 ? pyl_item(d[o++], 0, BATTERY_ALARM_MOSFET_OVERTEMP)
			    : pyl_item(d[o++], ut, ot);
	}
	a |= pyl_item(d[o++], 0, BATTERY_ALARM_CHARGE_OVERCURRENT); /* M+N+3 charge current */
	a |= pyl_item(d[o++], BATTERY_ALARM_PACK_UNDERVOLTAGE,
		      BATTERY_ALARM_PACK_OVERVOLTAGE);			/* M+N+4 module voltage */
	a |= pyl_item(d[o++], 0, BATTERY_ALARM_DISCHARGE_OVERCURRENT); /* M+N+5 discharge */
	st1 = d[o];
	st4 = d[o + 3];
	st5 = d[o + 4];
	/* §3.5 Status 1 */
	a |= (st1 & 0x01) ? BATTERY_ALARM_PACK_OVERVOLTAGE : 0;	 /* bit 0 module OV */
	a |= (st1 & 0x02) ? BATTERY_ALARM_CELL_UNDERVOLTAGE : 0;	 /* bit 1 cell UV */
	a |= (st1 & 0x04) ? BATTERY_ALARM_CHARGE_OVERCURRENT : 0;	 /* bit 2 COC */
	a |= (st1 & 0x10) ? BATTERY_ALARM_DISCHARGE_OVERCURRENT : 0; /* bit 4 DOC */
	a |= (st1 & 0x20) ? BATTERY_ALARM_DISCHARGE_OVERTEMP : 0;	 /* bit 5 discharge OT */
	a |= (st1 & 0x40) ? BATTERY_ALARM_CHARGE_OVERTEMP : 0;	 /* bit 6 charge OT */
	a |= (st1 & 0x80) ? BATTERY_ALARM_PACK_UNDERVOLTAGE : 0;	 /* bit 7 module UV */
	/* §3.5 Status 4 / 5: cell 1-8 / 9-16 error */
	a |= (st4 | st5) ? BATTERY_ALARM_BMS_INTERNAL : 0;
	p->alarms = a;
	p->warnings = 0;
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now_usec);
	return 0;
}

/*
 * 0x92 charge/discharge management info (§3.6): command value, charge
 * voltage limit (mV), discharge voltage limit (mV), charge current limit,
 * discharge current limit (s16, 100 mA: §3.6 says "A, accuracy 1", every
 * real answer is in 0.1 A -- 0x00FA = 25.0 A on the US2000B Plus, 0x022B =
 * 55.5 A on the UP2500 -- and we follow the packs; the discharge limit is
 * negative on all of them, 0xFF06 = -25.0 A, its magnitude is kept), charge
 * and discharge status (bit 7 charge enable, 6 discharge enable, 5 charge
 * immediately 1, 4 charge immediately 2, 3 full charge request).
 */
static int pyl_decode_management(const uint8_t *d, size_t n, struct battery_pack *p,
				 uint64_t now_usec)
{
	int16_t ccl, dcl;
	uint8_t st;
	uint32_t r = 0;

	if (n < 10) {
		return -EBADMSG;
	}
	ccl = (int16_t)get_be16(&d[5]);
	dcl = (int16_t)get_be16(&d[7]);
	st = d[9];
	if (ccl < 0) {
		return -EBADMSG; /* a negative charge limit has no meaning */
	}
	r |= (st & PYL_STATUS_CHARGE_ENABLE) ? BATTERY_REQUEST_CHARGE_ENABLE : 0;
	r |= (st & PYL_STATUS_DISCHARGE_ENABLE) ? BATTERY_REQUEST_DISCHARGE_ENABLE : 0;
	r |= (st & PYL_STATUS_CHARGE_IMMEDIATELY_1) ? BATTERY_REQUEST_FORCE_CHARGE : 0;
	r |= (st & PYL_STATUS_CHARGE_IMMEDIATELY_2) ? BATTERY_REQUEST_FORCE_CHARGE_2 : 0;
	r |= (st & PYL_STATUS_FULL_CHARGE_REQUEST) ? BATTERY_REQUEST_FULL_CHARGE : 0;
	p->charge_voltage_limit_mv = get_be16(&d[1]);
	p->discharge_voltage_limit_mv = get_be16(&d[3]);
	p->charge_current_limit_ma = (uint32_t)ccl * 100;
	p->discharge_current_limit_ma = (uint32_t)(dcl < 0 ? -(int32_t)dcl : dcl) * 100;
	p->requests = r;
	battery_pack_mark(p, BATTERY_GROUP_LIMITS, now_usec);
	battery_pack_mark(p, BATTERY_GROUP_STATUS, now_usec);
	return 0;
}

/* the pack's RTN error answer (§2.5.2): -EPROTO */
static const pylon_rs485_info_fn pyl_steps[PYL_STEP__COUNT] = {
	[PYL_STEP_ANALOG] = pyl_decode_analog,
	[PYL_STEP_ALARMS] = pyl_decode_alarms,
	[PYL_STEP_MANAGEMENT] = pyl_decode_management,
};

static int pyl_bms_decode(unsigned step, const uint8_t *ans, size_t len, unsigned pack,
			  uint64_t now_usec, struct battery_state *bs)
{
	return pylon_rs485_decode_step(pyl_steps, PYL_STEP__COUNT, step, ans, len, pack, now_usec,
				       bs);
}

/*
 * Addresses: pack #1 (the master) is ADR 0x02, the next 0x03 ... (V3.3
 * §2.5.3 "Address start from 2"); 15 packs reach 0x10 (group 0; other
 * groups add 0x10 * m). Baud: DIP 1 of the master pack, up = 9600 (the
 * default here), down = 115200 (V3.3 §2.5.3 DIP table; the US2000B Plus
 * capture ran at 115200).
 */
const struct bms_serial_ops pylontech_rs485_bms_serial = {
	.baud = 9600,
	.address_min = 0x02,
	.address_max = 0x10,
	.n_steps = PYL_STEP__COUNT,
	.answer_max = PYL_ANSWER_MAX,
	.request = pyl_bms_request,
	.frame = pyl_bms_frame,
	.decode = pyl_bms_decode,
};
