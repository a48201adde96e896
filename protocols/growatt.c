/* SPDX-License-Identifier: MIT */
/*
 * `growatt`: Growatt low-voltage CAN ("Growatt BMS CAN-Bus protocol, low
 * voltage", Rev 04, as cited in dalathegreat/Battery-Emulator
 * Software/src/inverter/GROWATT-LV-CAN.cpp).
 *
 * Not the Pylontech layout: 500 kbit/s, 11-bit ids, BIG-ENDIAN fields,
 * and request-driven: the inverter sends 0x301 about once a second and the
 * battery answers each with its whole set, 0x311-0x321; nothing goes out
 * unprompted (PROTOCOL_SCHEDULE_ON_REQUEST).
 *
 *   0x311  CVL u16 0.1 V; CCL u16 0.1 A; DCL u16 0.1 A; status u16: bits
 *          0-1 state and bits 10-11 "SP status" (01 idle, 10 charging,
 *          11 discharging)
 *   0x312  bytes 0-1 protection, 2-3 alarm bits; 4 pack number; 5-6
 *          manufacturer code; 7 total cell count
 *   0x313  voltage u16 0.01 V; current s16 0.1 A; highest cell temperature
 *          s16 0.1 degC; SOC u8 %; SOH u8 % (bit 7 "unsafe use": never set)
 *   0x314  remaining capacity u16 10 mAh; full capacity u16 10 mAh; cell
 *          delta u16 mV; cycle count u16
 *   0x315-0x318  cells 1-16, four u16 mV per frame
 *   0x319  request flags u8 (bit 7 charge enable, bit 6 discharge enable,
 *          bit 5 force charge I, bit 4 force charge II; bits 0-1 chemistry,
 *          00 LiFePO4); highest cell u16 mV; lowest cell u16 mV; index of the
 *          highest / lowest cell u8 (1-based); protecting pack id u8
 *   0x320  manufacturer abbreviation (2 ASCII capitals), hardware version,
 *          software version, packed date/time (zero: no clock here)
 *   0x321  update status, all zero = normal
 *
 * The 0x312 bits are left unmapped by Battery-Emulator; we follow the
 * byte positions of ai-republic/bms-to-inverter GrowattInverterCANProcessor
 * (the only open mapping; that file writes the rest of the set little
 * endian, against Rev 04 and Battery-Emulator, which we follow there):
 *   byte 0  bit 1 pack under-voltage, 2 pack over-voltage, 3 cell under-
 *           voltage, 4 cell over-voltage, 5 short circuit, 6 charge over-
 *           current, 7 discharge over-current
 *   byte 1  bit 2 cell imbalance, 3 system error, 4 charge under-temp,
 *           5 discharge under-temp, 6 charge over-temp, 7 discharge over-temp
 *   byte 2  warnings as byte 0 (bit 5 unused)
 *   byte 3  bit 0 internal communication failure, bits 2, 4-7 as byte 1
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
#define GROWATT_DEFAULT_NAME "BB" /* "bmsbridge"; Battery-Emulator sends "BE" */

/* status u16 bits 0-1 / 10-11 */
#define GROWATT_STATE_IDLE 0x1
#define GROWATT_STATE_CHARGING 0x2
#define GROWATT_STATE_DISCHARGING 0x3

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
	uint16_t state;
	uint8_t flags = 0;
	struct can_frame *f;

	if (!growatt_ready(bs)) {
		return -ENODATA;
	}
	if (n_frames < GROWATT_FRAMES) {
		return -ENOBUFS;
	}
	memset(frames, 0, GROWATT_FRAMES * sizeof(*frames));
	for (size_t i = 0; i < GROWATT_FRAMES; i++) {
		frames[i].len = 8; /* every frame 8 bytes (Battery-Emulator) */
	}

	f = &frames[0];
	f->can_id = GROWATT_ID_LIMITS;
	put_be16(&f->data[0], clamp_u16(b->charge_voltage_limit_mv / 100));	/* CVL u16 BE 0.1 V */
	put_be16(&f->data[2], clamp_u16(b->charge_current_limit_ma / 100));	/* CCL u16 BE 0.1 A */
	put_be16(&f->data[4], clamp_u16(b->discharge_current_limit_ma / 100)); /* DCL u16 BE 0.1 A */
	/* state from the current at the wire's resolution, 0.1 A */
	state = deci_a > 0 ? GROWATT_STATE_CHARGING
		: deci_a < 0 ? GROWATT_STATE_DISCHARGING
			     : GROWATT_STATE_IDLE;
	put_be16(&f->data[6], (uint16_t)(state | state << 10)); /* bits 0-1 and 10-11 */

	f = &frames[1];
	f->can_id = GROWATT_ID_FAULTS;
	if (status) {
		bits_encode(growatt_protection, ARRAY_SIZE(growatt_protection), b->alarms, &f->data[0]);
		bits_encode(growatt_warning, ARRAY_SIZE(growatt_warning), b->warnings, &f->data[2]);
		/* a silent pack is a warning whichever set it came in */
		if (b->alarms & BATTERY_ALARM_PACK_OFFLINE) {
			f->data[3] |= 0x01;
		}
	}
	f->data[4] = bs->packs_online ? bs->packs_online : bs->pack_count; /* pack number u8 */
	f->data[5] = (uint8_t)name[0];			    /* manufacturer code, 2 bytes */
	f->data[6] = name[0] ? (uint8_t)name[1] : 0;
	f->data[7] = cells ? b->cell_count : 0; /* total cell number u8 */

	f = &frames[2];
	f->can_id = GROWATT_ID_MEASURED;
	put_be16(&f->data[0], clamp_u16(b->voltage_mv / 10));	      /* u16 BE 0.01 V */
	put_be16(&f->data[2], (uint16_t)clamp_s16(deci_a));	      /* s16 BE 0.1 A, + charging */
	put_be16(&f->data[4], (uint16_t)(temps ? b->temp_max_dc : 0)); /* s16 BE 0.1 degC, highest */
	f->data[6] = b->soc_pct > 100 ? 100 : b->soc_pct;	      /* SOC u8 % */
	f->data[7] = b->soh_pct > 100 ? 100 : b->soh_pct;	      /* SOH u8 %, bit 7 clear */

	f = &frames[3];
	f->can_id = GROWATT_ID_CAPACITY;
	put_be16(&f->data[0], clamp_u16(b->remaining_mah / 10)); /* u16 BE 10 mAh */
	put_be16(&f->data[2], clamp_u16(b->full_mah / 10));	  /* u16 BE 10 mAh */
	put_be16(&f->data[4], cells ? clamp_u16(b->cell_max_mv - b->cell_min_mv) : 0); /* mV */
	put_be16(&f->data[6], clamp_u16(b->cycles)); /* cycle count u16 BE */

	for (unsigned i = 0; i < GROWATT_CELLS; i++) {
		f = &frames[4 + i / 4];
		f->can_id = GROWATT_ID_CELLS + i / 4;
		/* cell i+1, u16 BE mV; 0 where the pack has fewer cells */
		put_be16(&f->data[(i % 4) * 2], cells && i < b->cell_count ? b->cell_mv[i] : 0);
	}

	f = &frames[8];
	f->can_id = GROWATT_ID_EXTREMES;
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
	f->data[0] = flags; /* bits 0-1: 00 LiFePO4 */
	put_be16(&f->data[1], cells ? b->cell_max_mv : 0); /* u16 BE mV */
	put_be16(&f->data[3], cells ? b->cell_min_mv : 0); /* u16 BE mV */
	/* 1-based cell numbers, 0 when unknown */
	f->data[5] = cells && b->cell_max_idx != BATTERY_INDEX_NONE ? (uint8_t)(b->cell_max_idx + 1) : 0;
	f->data[6] = cells && b->cell_min_idx != BATTERY_INDEX_NONE ? (uint8_t)(b->cell_min_idx + 1) : 0;
	f->data[7] = 0; /* protecting pack id: none */

	f = &frames[9];
	f->can_id = GROWATT_ID_INFO;
	f->data[0] = (uint8_t)name[0]; /* abbreviation, 2 ASCII capitals */
	f->data[1] = name[0] ? (uint8_t)name[1] : 0;
	f->data[2] = 1; /* hardware version 1-9 */
	f->data[3] = 1; /* software version 1-9 */
	/* bytes 4-7 packed date/time: 0, encoders read no clock */

	frames[10].can_id = GROWATT_ID_UPDATE; /* update status: all zero = normal */
	return GROWATT_FRAMES;
}

static int growatt_inverter_rx(const struct can_frame *f)
{
	if (f->can_id & (CAN_EFF_FLAG | CAN_RTR_FLAG | CAN_ERR_FLAG)) {
		return PROTOCOL_RX_IGNORED;
	}
	/* 0x301: "the inverter replies data every second" (Rev 04): answer it */
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
	.bitrate = 500000,
	.inverter_timeout_usec = 10 * USEC_PER_SEC,
	.rx_ids = growatt_rx_ids,
	.n_rx_ids = ARRAY_SIZE(growatt_rx_ids),
	.encode = growatt_encode,
	.encode_urgent = NULL, /* nothing may go out unasked */
	.inverter_rx = growatt_inverter_rx,
	.decode = growatt_decode,
};
