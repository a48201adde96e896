/* SPDX-License-Identifier: MIT */
/*
 * `growatt`: Growatt low-voltage CAN, from Growatt's own "Growatt BMS
 * CAN-Bus-protocol-low-voltage" Rev 04, V1.04 (2019-02-22; "V1.04" below:
 * the Chinese original and its English translation), checked against a
 * real Growatt GBLI6532 bank talking to a Growatt SPH6000
 * (schmellic/growatt2solis captures/, kept in
 * tests/data/growatt-gbli6532-sph6000.log).
 *
 * Not the Pylontech layout: 500 kbit/s, standard frames, BIG-ENDIAN fields
 * (V1.04 §1), and request-driven: "after the energy storage device sends
 * a query ... the battery pack responds with data; the inverter replies
 * ... per second: 0x301" (V1.04 §1). Nothing goes out unprompted
 * (PROTOCOL_SCHEDULE_ON_REQUEST).
 *
 * How often to answer. The real SPH6000 sends 0x301 every 500 ms (x.220
 * and x.720 s in the capture) and the real GBLI6532 answers with one set a
 * second, not one per 0x301; V1.04 speaks of one 0x301 a second. We answer
 * a 0x301 unless the last answer is less than 750 ms old: one set a
 * second to an SPH6000, as its own battery does, and every 0x301 of an
 * inverter that asks once a second as V1.04 says (750 ms lies between the
 * two periods, so jitter cannot skip a second).
 *
 *   0x311  CVL u16 0.1 V; CCL u16 0.1 A; DCL u16 0.1 A; status u16
 *          (V1.04 Table1): bits 0-1 00 soft start / 01 standby / 10
 *          charging / 11 discharging; bit 2 "Error byte valid"; bit 3
 *          balance; bit 4 sleep; bit 5 output discharge enabled; bit 6
 *          output charge enabled; bit 7 terminal (0 connected); bits 8-9
 *          00 standalone / 01 parallel / 10 parallel ready; bits 10-11 "SP
 *          status", the storage machine's (inverter's) own state: 00.
 *          The real GBLI6532 bank (two packs) sends 01 61 idle and enabled,
 *          01 62 charging, 01 00 with CCL = DCL = 0 and both disabled; we
 *          give the same bits for the same state (see growatt_status()).
 *   0x312  bytes 0-1 protection (V1.04 0x312 Tables 1-2), 2-3 alarm
 *          (Tables 3-4); 4 "Pack Number" (packs in parallel); 5-6
 *          manufacturer code; 7 "Total Cell Number" (the bank's)
 *   0x313  voltage Sint16 0.01 V; current Sint16 0.1 A; "Cell maximum
 *          temperature" Sint16 0.1 degC; SOC u8 %; SOH bits 0-6 %, bit 7
 *          "SOH flag" (never set)
 *   0x314  RM u16 10 mAh; FCC u16 10 mAh; delta V u16 1 mV; cycle count
 *   0x315-0x318  cells 1-16, four u16 mV per frame ("optional", "need not
 *          be reported in parallel": sent, as the real GBLI bank does)
 *   0x319  Table 5 flags (bit 7 charge enable, bit 6 discharge enable,
 *          bit 5 force charge I, bit 4 force charge II; bits 0-1 00
 *          LiFePO4); max cell u16 mV; min cell u16 mV; max / min cell
 *          number u8, counted across the bank from the master ("when the
 *          batteries are connected in parallel, the number ... starts from
 *          the master, then the first slave ..."; the GBLI bank sends 0x11
 *          = cell 17 for the first cell of its second pack); protect pack
 *          id u8 (0: none)
 *   0x320  manufacturer name (2 ASCII capitals); hardware and software
 *          version 1-9; date & time, 4 bytes (zero: encoders read no clock)
 *   0x321  update status, all zero = normal (Table6)
 *
 * 0x312 bits (V1.04 Tables 1-4): byte 0 bit 0 soft start fail, 1 module
 * under-voltage, 2 module over-voltage, 3 cell under-voltage, 4 cell over-
 * voltage, 5 short circuit, 6 charge over-current, 7 discharge over-
 * current; byte 1 bit 2 delta V fail, 3 system error, 4 UTC (under-
 * temperature charge), 5 UTD, 6 OTC, 7 OTD; byte 2 as byte 0 without bits
 * 0 and 5; byte 3 bit 0 internal communication fail, 1 "pack before turn
 * off", 2 delta V fail, 4-7 as byte 1.
 * Growatt's CVL range (about 41-63 V) is not forced: raising a limit to
 * fit it is not ours to do.
 */
#include <errno.h>
#include <string.h>

#include "battery.h"
#include "byteorder.h"
#include "macro.h"
#include "protocol.h"

#define GROWATT_ID_REQUEST 0x301
#define GROWATT_ID_LIMITS 0x311
#define GROWATT_ID_FAULTS 0x312
#define GROWATT_ID_MEASURED 0x313
#define GROWATT_ID_CAPACITY 0x314
#define GROWATT_ID_CELLS 0x315 /* to 0x318 */
#define GROWATT_ID_EXTREMES 0x319
#define GROWATT_ID_INFO 0x320
#define GROWATT_ID_UPDATE 0x321
#define GROWATT_FRAMES 11
#define GROWATT_CELLS 16
/* V1.04 0x320 "Date & Time bits Table": day 1 (bit 17), month 1 (bit 22), year 2000 + 0 */
#define GROWATT_DATE_2000_01_01 ((UINT32_C(1) << 17) | (UINT32_C(1) << 22))
#define GROWATT_DEFAULT_NAME "BB" /* "bmsbridge"; Battery-Emulator sends "BE" */

/* 0x311 status u16, V1.04 Table1 */
#define GROWATT_STATE_SOFT_START 0x0 /* bits 0-1 */
#define GROWATT_STATE_STANDBY 0x1
#define GROWATT_STATE_CHARGING 0x2
#define GROWATT_STATE_DISCHARGING 0x3
#define GROWATT_STATUS_ERROR_VALID (1u << 2)	 /* 0x312 carries a bit */
#define GROWATT_STATUS_DISCHARGE_EN (1u << 5) /* "Output Discharge status" */
#define GROWATT_STATUS_CHARGE_EN (1u << 6)	 /* "Output Charge status" */
#define GROWATT_STATUS_PARALLEL (0x1u << 8) /* bits 8-9 01 "Parallel" */
/* a 0x301 sooner than this after the last answer is not answered (file comment) */
#define GROWATT_ANSWER_MIN_USEC (750 * USEC_PER_MSEC)

/* One 0x312 bit: byte, bit, the neutral bits that raise it, the one it decodes to. */
struct growatt_bit {
	uint8_t byte;
	uint8_t bit;
	uint32_t from;
	uint32_t to;
};

static const struct growatt_bit growatt_protection[] = {
	{ 0, 1, BATTERY_ALARM_PACK_UNDERVOLTAGE, BATTERY_ALARM_PACK_UNDERVOLTAGE },
	{ 0, 2, BATTERY_ALARM_PACK_OVERVOLTAGE, BATTERY_ALARM_PACK_OVERVOLTAGE },
	{ 0, 3, BATTERY_ALARM_CELL_UNDERVOLTAGE, BATTERY_ALARM_CELL_UNDERVOLTAGE },
	{ 0, 4, BATTERY_ALARM_CELL_OVERVOLTAGE, BATTERY_ALARM_CELL_OVERVOLTAGE },
	{ 0, 5, BATTERY_ALARM_SHORT_CIRCUIT, BATTERY_ALARM_SHORT_CIRCUIT },
	{ 0, 6, BATTERY_ALARM_CHARGE_OVERCURRENT, BATTERY_ALARM_CHARGE_OVERCURRENT },
	{ 0, 7, BATTERY_ALARM_DISCHARGE_OVERCURRENT, BATTERY_ALARM_DISCHARGE_OVERCURRENT },
	{ 1, 2, BATTERY_ALARM_CELL_IMBALANCE, BATTERY_ALARM_CELL_IMBALANCE },
	{ 1, 3, BATTERY_ALARM_BMS_INTERNAL | BATTERY_ALARM_BMS_LINK_LOST, BATTERY_ALARM_BMS_INTERNAL },
	{ 1, 4, BATTERY_ALARM_CHARGE_UNDERTEMP, BATTERY_ALARM_CHARGE_UNDERTEMP },
	{ 1, 5, BATTERY_ALARM_DISCHARGE_UNDERTEMP, BATTERY_ALARM_DISCHARGE_UNDERTEMP },
	{ 1, 6, BATTERY_ALARM_CHARGE_OVERTEMP, BATTERY_ALARM_CHARGE_OVERTEMP },
	/* the MOSFET sensor has no bit of its own: a discharge over-temperature */
	{ 1, 7, BATTERY_ALARM_DISCHARGE_OVERTEMP | BATTERY_ALARM_MOSFET_OVERTEMP,
	  BATTERY_ALARM_DISCHARGE_OVERTEMP },
};

static const struct growatt_bit growatt_warning[] = {
	{ 0, 1, BATTERY_ALARM_PACK_UNDERVOLTAGE, BATTERY_ALARM_PACK_UNDERVOLTAGE },
	{ 0, 2, BATTERY_ALARM_PACK_OVERVOLTAGE, BATTERY_ALARM_PACK_OVERVOLTAGE },
	{ 0, 3, BATTERY_ALARM_CELL_UNDERVOLTAGE, BATTERY_ALARM_CELL_UNDERVOLTAGE },
	{ 0, 4, BATTERY_ALARM_CELL_OVERVOLTAGE, BATTERY_ALARM_CELL_OVERVOLTAGE },
	{ 0, 6, BATTERY_ALARM_CHARGE_OVERCURRENT, BATTERY_ALARM_CHARGE_OVERCURRENT },
	{ 0, 7, BATTERY_ALARM_DISCHARGE_OVERCURRENT | BATTERY_ALARM_SHORT_CIRCUIT,
	  BATTERY_ALARM_DISCHARGE_OVERCURRENT },
	{ 1, 0, BATTERY_ALARM_BMS_INTERNAL | BATTERY_ALARM_BMS_LINK_LOST | BATTERY_ALARM_PACK_OFFLINE,
	  BATTERY_ALARM_BMS_INTERNAL },
	{ 1, 2, BATTERY_ALARM_CELL_IMBALANCE, BATTERY_ALARM_CELL_IMBALANCE },
	{ 1, 4, BATTERY_ALARM_CHARGE_UNDERTEMP, BATTERY_ALARM_CHARGE_UNDERTEMP },
	{ 1, 5, BATTERY_ALARM_DISCHARGE_UNDERTEMP, BATTERY_ALARM_DISCHARGE_UNDERTEMP },
	{ 1, 6, BATTERY_ALARM_CHARGE_OVERTEMP, BATTERY_ALARM_CHARGE_OVERTEMP },
	{ 1, 7, BATTERY_ALARM_DISCHARGE_OVERTEMP | BATTERY_ALARM_MOSFET_OVERTEMP,
	  BATTERY_ALARM_DISCHARGE_OVERTEMP },
};

static void bits_encode(const struct growatt_bit *t, size_t n, uint32_t bits, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		if (bits & t[i].from) {
			out[t[i].byte] |= (uint8_t)(1u << t[i].bit);
		}
	}
}

static uint32_t bits_decode(const struct growatt_bit *t, size_t n, const uint8_t *in)
{
	uint32_t bits = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[t[i].byte] & (1u << t[i].bit)) {
			bits |= t[i].to;
		}
	}
	return bits;
}

static bool growatt_ready(const struct battery_state *bs)
{
	return battery_pack_has(&bs->bank, BATTERY_GROUP_LIMITS) &&
	       battery_pack_has(&bs->bank, BATTERY_GROUP_ELECTRICAL) &&
	       battery_pack_has(&bs->bank, BATTERY_GROUP_CAPACITY);
}

/* the cells of pack @i, for numbering across the bank; the bank's count if unknown */
static unsigned pack_cells(const struct battery_state *bs, unsigned i)
{
	const struct battery_pack *p = &bs->packs[i];

	if (battery_pack_has(p, BATTERY_GROUP_CELLS) && p->cell_count) {
		return p->cell_count > BATTERY_CELLS_MAX ? BATTERY_CELLS_MAX : p->cell_count;
	}
	/* extremes only, but the BMS says how many cells (Daly 0x94) */
	if (p->cell_series) {
		return p->cell_series > BATTERY_CELLS_MAX ? BATTERY_CELLS_MAX : p->cell_series;
	}
	return bs->bank.cell_count;
}

/* V1.04 0x312 byte 7 "Total Cell Number" 1~254: every pack's cells */
static uint8_t bank_cells(const struct battery_state *bs)
{
	unsigned packs = bs->pack_count ? bs->pack_count : 1, n = 0;

	for (unsigned i = 0; i < packs && i < BATTERY_PACKS_MAX; i++) {
		n += pack_cells(bs, i);
	}
	return (uint8_t)(n > 254 ? 254 : n);
}

/*
 * V1.04 0x319 bytes 5-6: the 1-based number of cell @idx of pack @pack,
 * counted from the master's first cell; 0 when unknown or past 255.
 */
static uint8_t bank_cell_number(const struct battery_state *bs, uint8_t pack, uint8_t idx)
{
	unsigned n = 0;

	if (idx == BATTERY_INDEX_NONE) {
		return 0;
	}
	if (bs->pack_count <= 1) {
		pack = 0; /* one pack: its cells are the bank's */
	} else if (pack >= bs->pack_count || pack >= BATTERY_PACKS_MAX) {
		return 0; /* a pack we cannot place (or none): no number rather than a wrong one */
	}
	for (unsigned i = 0; i < pack; i++) {
		n += pack_cells(bs, i);
	}
	n += (unsigned)idx + 1;
	return (uint8_t)(n > 255 ? 0 : n);
}

/*
 * V1.04 0x311 status (Table1), checked against the GBLI6532 bank of the
 * capture: 01 61 idle and enabled, 01 62 charging, 01 00 disabled.
 *   bits 0-1  no output enabled: 00 (the GBLI sends 00 with both off);
 *             else from the current at the wire's 0.1 A: 10 charging,
 *             11 discharging, 01 standby
 *   bit 2     whenever 0x312 bytes 0-3 carry a bit ("Error" byte valid)
 *   bit 5/6   discharge / charge enabled: the BMS's enable flag and a
 *             limit of at least one 0.1 A step on the wire
 *   bits 8-9  01 "Parallel" with more than one pack online, else 00
 *   bits 10-11  "SP status", the inverter's own state: 00 (none)
 *   bits 3, 4, 7  balancing, sleep: not known here, 0; terminal 0 connected
 */
static uint16_t growatt_status(const struct battery_state *bs, int32_t deci_a, bool errors)
{
	const struct battery_pack *b = &bs->bank;
	uint32_t req = battery_pack_has(b, BATTERY_GROUP_STATUS) ? b->requests : 0;
	bool chg = (req & BATTERY_REQUEST_CHARGE_ENABLE) &&
		   protocol_upper_limit(b->charge_current_limit_ma, 100) > 0;
	bool dis = (req & BATTERY_REQUEST_DISCHARGE_ENABLE) &&
		   protocol_upper_limit(b->discharge_current_limit_ma, 100) > 0;
	uint16_t st;

	if (!chg && !dis) {
		st = GROWATT_STATE_SOFT_START;
	} else if (deci_a > 0) {
		st = GROWATT_STATE_CHARGING;
	} else if (deci_a < 0) {
		st = GROWATT_STATE_DISCHARGING;
	} else {
		st = GROWATT_STATE_STANDBY;
	}
	if (errors) {
		st |= GROWATT_STATUS_ERROR_VALID;
	}
	if (dis) {
		st |= GROWATT_STATUS_DISCHARGE_EN;
	}
	if (chg) {
		st |= GROWATT_STATUS_CHARGE_EN;
	}
	if (bs->packs_online > 1) {
		st |= GROWATT_STATUS_PARALLEL;
	}
	return st;
}

/*
 * Over 80 lines: one block per frame of the Growatt table, in the document's order, so
 * each reads against its row.
 */
static int growatt_encode(const struct protocol_options *opt, const struct battery_state *bs,
			  uint64_t now_usec, struct can_frame *frames, size_t n_frames)
{
	const struct battery_pack *b = &bs->bank;
	bool cells = battery_pack_has(b, BATTERY_GROUP_CELLS);
	bool temps = battery_pack_has(b, BATTERY_GROUP_TEMPS);
	bool status = battery_pack_has(b, BATTERY_GROUP_STATUS);
	const char *name = opt && opt->manufacturer[0] ? opt->manufacturer : GROWATT_DEFAULT_NAME;
	uint32_t req = status ? b->requests : 0;
	int32_t deci_a = b->current_ma / 100;
	uint8_t flags = 0;
	struct can_frame *f, *faults;

	if (!growatt_ready(bs)) {
		return -ENODATA;
	}
	if (n_frames < GROWATT_FRAMES) {
		return -ENOBUFS;
	}
	memset(frames, 0, GROWATT_FRAMES * sizeof(*frames));
	for (size_t i = 0; i < GROWATT_FRAMES; i++) {
		frames[i].len = 8; /* every frame of V1.04 has 8 bytes */
	}

	/* 0x312 first: 0x311's bit 2 says whether it carries a bit */
	faults = f = &frames[1];
	f->can_id = GROWATT_ID_FAULTS;
	if (status) {
		/* bytes 0-1 protection (V1.04 0x312 Tables 1-2), 2-3 alarm (Tables 3-4) */
		bits_encode(growatt_protection, ARRAY_SIZE(growatt_protection), b->alarms,
			    &f->data[0]);
		bits_encode(growatt_warning, ARRAY_SIZE(growatt_warning), b->warnings,
			    &f->data[2]);
		/* a silent pack: "internal communication fail" (Table 4 bit 0), whichever set */
		if (b->alarms & BATTERY_ALARM_PACK_OFFLINE) {
			f->data[3] |= 0x01;
		}
	}
	/* "Pack Number" u8 1~254: batteries in parallel (V1.04 0x312 byte 4) */
	f->data[4] = bs->packs_online ? bs->packs_online : bs->pack_count;
	f->data[5] = (uint8_t)name[0]; /* manufacturer code, 2 bytes (V1.04 0x312 bytes 5-6) */
	f->data[6] = name[0] ? (uint8_t)name[1] : 0;
	/* "Total Cell Number" u8 1~254, the bank's (V1.04 0x312 byte 7); 0 while unknown */
	f->data[7] = cells ? bank_cells(bs) : 0;

	f = &frames[0];
	f->can_id = GROWATT_ID_LIMITS;
	/* V1.04 0x311: CVL, CCL, DCL u16 BE, 0.1 V / 0.1 A, rounded down (upper bounds) */
	put_be16(&f->data[0], clamp_u16(protocol_upper_limit(b->charge_voltage_limit_mv, 100)));
	put_be16(&f->data[2], clamp_u16(protocol_upper_limit(b->charge_current_limit_ma, 100)));
	put_be16(&f->data[4], clamp_u16(protocol_upper_limit(b->discharge_current_limit_ma, 100)));
	/* status u16 BE (V1.04 Table1) */
	put_be16(&f->data[6], growatt_status(bs, deci_a, get_be32(&faults->data[0]) != 0));

	f = &frames[2];
	f->can_id = GROWATT_ID_MEASURED;
	/* V1.04 0x313: voltage Sint16 BE 0.01 V (clamped as signed) */
	put_be16(&f->data[0], (uint16_t)clamp_s16(b->voltage_mv / 10));
	/* current Sint16 BE 0.1 A, + charging */
	put_be16(&f->data[2], (uint16_t)clamp_s16(deci_a));
	/* "Cell maximum temperature" Sint16 BE 0.1 degC */
	put_be16(&f->data[4], (uint16_t)(temps ? b->temp_max_dc : 0));
	f->data[6] = b->soc_pct > 100 ? 100 : b->soc_pct; /* SOC u8 % */
	/* SOH bits 0-6 %, bit 7 "SOH flag" clear */
	f->data[7] = b->soh_pct > 100 ? 100 : b->soh_pct;

	f = &frames[3];
	f->can_id = GROWATT_ID_CAPACITY;
	/* V1.04 0x314: RM, FCC u16 BE 10 mAh; delta V u16 BE 1 mV; cycle count u16 BE */
	put_be16(&f->data[0], clamp_u16(b->remaining_mah / 10));
	put_be16(&f->data[2], clamp_u16(b->full_mah / 10));
	put_be16(&f->data[4], cells ? clamp_u16(b->cell_max_mv - b->cell_min_mv) : 0);
	put_be16(&f->data[6], clamp_u16(b->cycles));

	for (unsigned i = 0; i < GROWATT_CELLS; i++) {
		f = &frames[4 + i / 4];
		f->can_id = GROWATT_ID_CELLS + i / 4;
		/* V1.04 0x315-0x318: cell i+1 u16 BE 1 mV; 0 where the pack has fewer cells */
		put_be16(&f->data[(i % 4) * 2], cells && i < b->cell_count ? b->cell_mv[i] : 0);
	}

	f = &frames[8];
	f->can_id = GROWATT_ID_EXTREMES;
	/* V1.04 0x319 Table 5 */
	if (req & BATTERY_REQUEST_CHARGE_ENABLE) {
		flags |= 0x80;
	}
	if (req & BATTERY_REQUEST_DISCHARGE_ENABLE) {
		flags |= 0x40;
	}
	if (req & BATTERY_REQUEST_FORCE_CHARGE) {
		flags |= 0x20;
	}
	if (req & BATTERY_REQUEST_FORCE_CHARGE_2) {
		flags |= 0x10;
	}
	f->data[0] = flags; /* bits 0-1: 00 lithium iron phosphate */
	put_be16(&f->data[1], cells ? b->cell_max_mv : 0); /* max cell voltage u16 BE 1 mV */
	put_be16(&f->data[3], cells ? b->cell_min_mv : 0); /* min cell voltage u16 BE 1 mV */
	/* max / min cell number u8, counted across the bank from the master; 0 unknown */
	f->data[5] = cells ? bank_cell_number(bs, b->cell_max_pack, b->cell_max_idx) : 0;
	f->data[6] = cells ? bank_cell_number(bs, b->cell_min_pack, b->cell_min_idx) : 0;
	f->data[7] = 0; /* "Protect pack ID": none */

	f = &frames[9];
	f->can_id = GROWATT_ID_INFO;
	f->data[0] = (uint8_t)name[0]; /* V1.04 0x320 manufacturer name, 2 ASCII capitals */
	f->data[1] = name[0] ? (uint8_t)name[1] : 0;
	f->data[2] = 1; /* hardware version 1~9 */
	f->data[3] = 1; /* software version 1~9 */
	/*
	 * bytes 4-7 "Date & Time", one u32 BE (V1.04 0x320 and its "Date &
	 * Time bits Table": bits 0-5 second, 6-11 minute, 12-16 hour, 17-21
	 * day 1~31, 22-25 month 1~12, 26-31 year 2000~2063). Encoders read no
	 * clock, and all zeros is no date (day 0, month 0 are outside the
	 * table's ranges): the table's first valid date, 2000-01-01 00:00:00.
	 */
	put_be32(&f->data[4], GROWATT_DATE_2000_01_01);

	frames[10].can_id = GROWATT_ID_UPDATE; /* V1.04 0x321 Table6: all zero = normal */
	return GROWATT_FRAMES;
}

static int growatt_inverter_rx(const struct can_frame *f)
{
	if (f->can_id & (CAN_EFF_FLAG | CAN_RTR_FLAG | CAN_ERR_FLAG)) {
		return PROTOCOL_RX_IGNORED;
	}
	/* 0x301: "the inverter replies data per second" (V1.04 §1): answer it */
	return f->can_id == GROWATT_ID_REQUEST ? PROTOCOL_RX_REQUEST : PROTOCOL_RX_IGNORED;
}

static int growatt_decode(const struct can_frame *f, uint64_t now_usec, struct battery_state *bs)
{
	struct battery_pack *b = &bs->bank;
	const uint8_t *d = f->data;

	if (f->can_id & (CAN_EFF_FLAG | CAN_RTR_FLAG | CAN_ERR_FLAG)) {
		return 0;
	}
	if (f->can_id < GROWATT_ID_LIMITS || f->can_id > GROWATT_ID_UPDATE ||
	    (f->can_id > GROWATT_ID_EXTREMES && f->can_id < GROWATT_ID_INFO)) {
		return 0;
	}
	if (f->len < 8) {
		return -EBADMSG; /* every frame of the set is 8 bytes */
	}
	switch (f->can_id) {
	case GROWATT_ID_LIMITS:
		b->charge_voltage_limit_mv = (uint32_t)get_be16(&d[0]) * 100;
		b->charge_current_limit_ma = (uint32_t)get_be16(&d[2]) * 100;
		b->discharge_current_limit_ma = (uint32_t)get_be16(&d[4]) * 100;
		battery_pack_mark(b, BATTERY_GROUP_LIMITS, now_usec);
		return 1;
	case GROWATT_ID_FAULTS:
		b->alarms = bits_decode(growatt_protection, ARRAY_SIZE(growatt_protection), &d[0]);
		b->warnings = bits_decode(growatt_warning, ARRAY_SIZE(growatt_warning), &d[2]);
		bs->packs_online = d[4] > BATTERY_PACKS_MAX ? BATTERY_PACKS_MAX : d[4];
		bs->pack_count = bs->packs_online ? bs->packs_online : 1;
		b->cell_count = d[7] > BATTERY_CELLS_MAX ? BATTERY_CELLS_MAX : d[7];
		battery_pack_mark(b, BATTERY_GROUP_STATUS, now_usec);
		return 1;
	case GROWATT_ID_MEASURED:
		b->voltage_mv = (uint32_t)get_be16(&d[0]) * 10;
		b->current_ma = (int32_t)(int16_t)get_be16(&d[2]) * 100;
		battery_pack_mark(b, BATTERY_GROUP_ELECTRICAL, now_usec);
		b->temp_max_dc = b->temp_min_dc = (int16_t)get_be16(&d[4]); /* one: both */
		battery_pack_mark(b, BATTERY_GROUP_TEMPS, now_usec);
		b->soc_pct = d[6] > 100 ? 100 : d[6];
		b->soh_pct = (d[7] & 0x7f) > 100 ? 100 : (d[7] & 0x7f); /* bit 7: unsafe flag */
		battery_pack_mark(b, BATTERY_GROUP_CAPACITY, now_usec);
		return 1;
	case GROWATT_ID_CAPACITY:
		b->remaining_mah = (uint32_t)get_be16(&d[0]) * 10;
		b->full_mah = (uint32_t)get_be16(&d[2]) * 10;
		b->cycles = get_be16(&d[6]);
		battery_pack_mark(b, BATTERY_GROUP_CAPACITY, now_usec);
		return 1;
	case GROWATT_ID_CELLS:
	case GROWATT_ID_CELLS + 1:
	case GROWATT_ID_CELLS + 2:
	case GROWATT_ID_CELLS + 3:
		for (unsigned i = 0; i < 4; i++) {
			b->cell_mv[(f->can_id - GROWATT_ID_CELLS) * 4 + i] = get_be16(&d[i * 2]);
		}
		return 1;
	case GROWATT_ID_EXTREMES:
		b->requests = (d[0] & 0x80 ? BATTERY_REQUEST_CHARGE_ENABLE : 0) |
			      (d[0] & 0x40 ? BATTERY_REQUEST_DISCHARGE_ENABLE : 0) |
			      (d[0] & 0x20 ? BATTERY_REQUEST_FORCE_CHARGE : 0) |
			      (d[0] & 0x10 ? BATTERY_REQUEST_FORCE_CHARGE_2 : 0);
		battery_pack_mark(b, BATTERY_GROUP_STATUS, now_usec);
		b->cell_max_mv = get_be16(&d[1]);
		b->cell_min_mv = get_be16(&d[3]);
		b->cell_max_idx = d[5] ? (uint8_t)(d[5] - 1) : BATTERY_INDEX_NONE;
		b->cell_min_idx = d[6] ? (uint8_t)(d[6] - 1) : BATTERY_INDEX_NONE;
		battery_pack_mark(b, BATTERY_GROUP_CELLS, now_usec);
		return 1;
	default:
		return 1; /* 0x320 info, 0x321 update status: nothing to keep */
	}
}

static const canid_t growatt_rx_ids[] = { GROWATT_ID_REQUEST };

const struct inverter_protocol growatt_protocol = {
	.name = "growatt",
	.description = "Growatt LV CAN, big endian, answers the inverter's 0x301",
	.transport = PROTOCOL_TRANSPORT_CAN,
	.schedule = PROTOCOL_SCHEDULE_ON_REQUEST,
	.period_usec = USEC_PER_SEC, /* the inverter asks about once a second */
	.request_min_interval_usec = GROWATT_ANSWER_MIN_USEC,
	.bitrate = 500000,
	.inverter_timeout_usec = 10 * USEC_PER_SEC,
	.rx_ids = growatt_rx_ids,
	.n_rx_ids = ARRAY_SIZE(growatt_rx_ids),
	.encode = growatt_encode,
	.encode_urgent = NULL, /* nothing may go out unasked */
	.inverter_rx = growatt_inverter_rx,
	.decode = growatt_decode,
};
