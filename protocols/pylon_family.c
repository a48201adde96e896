/* SPDX-License-Identifier: MIT */
/*
 * The Pylontech CAN family: the frame builders and the decoder that
 * pylontech.c, deye.c and luxpower.c share (see pylon_family.h).
 *
 * Layout, all fields little endian, from Pylontech's own "CANBUS
 * Protocol" V1.2 (2018-04-08; "V1.2" below, frame by frame), checked
 * against the frames of real US5000 packs published by setfirelabs.com,
 * "Pylontech battery CAN comms V1.2 vs V1.3", kept in
 * tests/data/pylontech-us5000-v12.log:
 *
 *   0x351  0-1 CVL u16 0.1 V, 2-3 CCL s16 0.1 A, 4-5 DCL s16 0.1 A (sent
 *          positive), 6-7 DVL u16 0.1 V (real packs send it; 6-byte frame
 *          in Battery-Emulator PYLON-LV-CAN.cpp)
 *   0x355  0-1 SOC u16 %, 2-3 SOH u16 %
 *   0x356  0-1 voltage s16 0.01 V, 2-3 current s16 0.1 A (+ charging),
 *          4-5 "Average cell temperature" s16 0.1 degC (Luxpower: highest)
 *   0x359  0-1 protection bits, 2-3 warning bits, 4 module count, 5-6 "PN"
 *   0x35C  0 request flags, 1 reserved
 *   0x35E  manufacturer, 8 ASCII characters, space padded ("PYLON   ")
 *
 * Values are clamped into the field (byteorder.h clamp helpers), never
 * wrapped; upper limits (CVL, CCL, DCL) are rounded down and the lower one
 * (DVL) up (protocol_upper_limit() / protocol_lower_limit()), so the wire
 * never says more than the bank allows.
 *
 * 0x359 bits. The sources disagree; we follow the V1.2 table (bsc_fw,
 * diyBMS, protocols.md), because it is Pylontech's own document, the one
 * inverters are written against, and because each deviation below sets a
 * bit the condition does not mean: byte 0 bit 1 over-voltage, bit 2 under-voltage,
 * bit 3 over-temperature, bit 4 under-temperature, bit 7 discharge
 * over-current; byte 1 bit 0 charge over-current, bit 3 system error; byte
 * 2 and 3 the same as warnings, byte 3 bit 3 "internal communication
 * failure". Battery-Emulator writes 0x0C for over-temperature (which also
 * raises under-voltage) and ArminJo/JK-BMSToPylontechCAN puts the system
 * error in byte 1 bit 7: we never send those, but the decoder accepts
 * byte 1 / byte 3 bit 7 as a system error too, so a BMS that follows them
 * is still understood.
 */
#include <errno.h>
#include <string.h>

#include "battery.h"
#include "byteorder.h"
#include "protocol.h"
#include "pylon_family.h"

/* 0x359 bits, byte 0 (protection) and byte 2 (warning) share them */
#define PYLON_BIT_OVERVOLTAGE 0x02
#define PYLON_BIT_UNDERVOLTAGE 0x04
#define PYLON_BIT_OVERTEMP 0x08
#define PYLON_BIT_UNDERTEMP 0x10
#define PYLON_BIT_DISCHARGE_OC 0x80
/* byte 1 (protection) and byte 3 (warning) */
#define PYLON_BIT_CHARGE_OC 0x01
#define PYLON_BIT_SYSTEM_ERROR 0x08
#define PYLON_BIT_SYSTEM_ERROR_ALT 0x80 /* ArminJo, Battery-Emulator: decode only */

/* 0x35C byte 0 (V1.2; Battery-Emulator, diyBMS, YamBMS agree) */
#define PYLON_REQ_CHARGE_ENABLE 0x80
#define PYLON_REQ_DISCHARGE_ENABLE 0x40
#define PYLON_REQ_FORCE_CHARGE_1 0x20
#define PYLON_REQ_FORCE_CHARGE_2 0x10
#define PYLON_REQ_FULL_CHARGE 0x08

bool pylon_family_ready(const struct battery_state *bs)
{
	return battery_pack_has(&bs->bank, BATTERY_GROUP_LIMITS) &&
	       battery_pack_has(&bs->bank, BATTERY_GROUP_ELECTRICAL) &&
	       battery_pack_has(&bs->bank, BATTERY_GROUP_CAPACITY);
}

/* byte 0 / byte 2 of 0x359 from one set of neutral bits */
static uint8_t pylon_low_byte(uint32_t bits)
{
	uint8_t b = 0;

	if (bits & (BATTERY_ALARM_CELL_OVERVOLTAGE | BATTERY_ALARM_PACK_OVERVOLTAGE)) {
		b |= PYLON_BIT_OVERVOLTAGE;
	}
	if (bits & (BATTERY_ALARM_CELL_UNDERVOLTAGE | BATTERY_ALARM_PACK_UNDERVOLTAGE)) {
		b |= PYLON_BIT_UNDERVOLTAGE;
	}
	/* one "battery over-temperature" bit for charge, discharge and MOSFET */
	if (bits & (BATTERY_ALARM_CHARGE_OVERTEMP | BATTERY_ALARM_DISCHARGE_OVERTEMP |
		    BATTERY_ALARM_MOSFET_OVERTEMP)) {
		b |= PYLON_BIT_OVERTEMP;
	}
	if (bits & (BATTERY_ALARM_CHARGE_UNDERTEMP | BATTERY_ALARM_DISCHARGE_UNDERTEMP)) {
		b |= PYLON_BIT_UNDERTEMP;
	}
	/* a short circuit is a discharge over-current to the inverter */
	if (bits & (BATTERY_ALARM_DISCHARGE_OVERCURRENT | BATTERY_ALARM_SHORT_CIRCUIT)) {
		b |= PYLON_BIT_DISCHARGE_OC;
	}
	return b;
}

static uint16_t pylon_family_protection(uint32_t alarms)
{
	uint8_t b1 = 0;

	if (alarms & BATTERY_ALARM_CHARGE_OVERCURRENT) {
		b1 |= PYLON_BIT_CHARGE_OC;
	}
	/* system error: the BMS's own fault, or we lost the BMS */
	if (alarms & (BATTERY_ALARM_BMS_INTERNAL | BATTERY_ALARM_BMS_LINK_LOST)) {
		b1 |= PYLON_BIT_SYSTEM_ERROR;
	}
	return (uint16_t)(pylon_low_byte(alarms) | b1 << 8);
}

static uint16_t pylon_family_warning(uint32_t warnings, uint32_t alarms)
{
	uint8_t b3 = 0;

	if (warnings & BATTERY_ALARM_CHARGE_OVERCURRENT) {
		b3 |= PYLON_BIT_CHARGE_OC;
	}
	/*
	 * "internal communication failure": a BMS fault as a warning, and a
	 * silent pack of a bank (alarm or warning), which Pylontech can only
	 * say here.
	 */
	if ((warnings & (BATTERY_ALARM_BMS_INTERNAL | BATTERY_ALARM_BMS_LINK_LOST)) ||
	    ((warnings | alarms) & BATTERY_ALARM_PACK_OFFLINE)) {
		b3 |= PYLON_BIT_SYSTEM_ERROR;
	}
	return (uint16_t)(pylon_low_byte(warnings) | b3 << 8);
}

static uint8_t pylon_family_request_flags(uint32_t requests)
{
	uint8_t b = 0;

	if (requests & BATTERY_REQUEST_CHARGE_ENABLE) {
		b |= PYLON_REQ_CHARGE_ENABLE;
	}
	if (requests & BATTERY_REQUEST_DISCHARGE_ENABLE) {
		b |= PYLON_REQ_DISCHARGE_ENABLE;
	}
	if (requests & BATTERY_REQUEST_FORCE_CHARGE) {
		b |= PYLON_REQ_FORCE_CHARGE_1;
	}
	if (requests & BATTERY_REQUEST_FORCE_CHARGE_2) {
		b |= PYLON_REQ_FORCE_CHARGE_2;
	}
	if (requests & BATTERY_REQUEST_FULL_CHARGE) {
		b |= PYLON_REQ_FULL_CHARGE;
	}
	return b;
}

/* inverse of pylon_low_byte(): the canonical neutral bits of one byte */
static uint32_t pylon_low_byte_decode(uint8_t b)
{
	uint32_t bits = 0;

	if (b & PYLON_BIT_OVERVOLTAGE) {
		bits |= BATTERY_ALARM_CELL_OVERVOLTAGE;
	}
	if (b & PYLON_BIT_UNDERVOLTAGE) {
		bits |= BATTERY_ALARM_CELL_UNDERVOLTAGE;
	}
	/* the inverter cannot tell charge from discharge: both */
	if (b & PYLON_BIT_OVERTEMP) {
		bits |= BATTERY_ALARM_CHARGE_OVERTEMP | BATTERY_ALARM_DISCHARGE_OVERTEMP;
	}
	if (b & PYLON_BIT_UNDERTEMP) {
		bits |= BATTERY_ALARM_CHARGE_UNDERTEMP | BATTERY_ALARM_DISCHARGE_UNDERTEMP;
	}
	if (b & PYLON_BIT_DISCHARGE_OC) {
		bits |= BATTERY_ALARM_DISCHARGE_OVERCURRENT;
	}
	return bits;
}

static uint32_t pylon_high_byte_decode(uint8_t b)
{
	uint32_t bits = 0;

	if (b & PYLON_BIT_CHARGE_OC) {
		bits |= BATTERY_ALARM_CHARGE_OVERCURRENT;
	}
	if (b & (PYLON_BIT_SYSTEM_ERROR | PYLON_BIT_SYSTEM_ERROR_ALT)) {
		bits |= BATTERY_ALARM_BMS_INTERNAL;
	}
	return bits;
}

static uint32_t pylon_request_decode(uint8_t b)
{
	uint32_t r = 0;

	if (b & PYLON_REQ_CHARGE_ENABLE) {
		r |= BATTERY_REQUEST_CHARGE_ENABLE;
	}
	if (b & PYLON_REQ_DISCHARGE_ENABLE) {
		r |= BATTERY_REQUEST_DISCHARGE_ENABLE;
	}
	if (b & PYLON_REQ_FORCE_CHARGE_1) {
		r |= BATTERY_REQUEST_FORCE_CHARGE;
	}
	if (b & PYLON_REQ_FORCE_CHARGE_2) {
		r |= BATTERY_REQUEST_FORCE_CHARGE_2;
	}
	if (b & PYLON_REQ_FULL_CHARGE) {
		r |= BATTERY_REQUEST_FULL_CHARGE;
	}
	return r;
}

static uint8_t pylon_family_module_count(const struct battery_state *bs)
{
	/* packs online; while none is, the configured count (never 0) */
	uint8_t n = bs->packs_online ? bs->packs_online : bs->pack_count;

	return n ? n : 1;
}

bool pylon_family_charge_blocked(const struct battery_pack *b)
{
	return b->charge_current_limit_ma < 100 || /* below one 0.1 A step: 0 on the wire */
	       (battery_pack_has(b, BATTERY_GROUP_STATUS) &&
		!(b->requests & BATTERY_REQUEST_CHARGE_ENABLE));
}

bool pylon_family_discharge_blocked(const struct battery_pack *b)
{
	return b->discharge_current_limit_ma < 100 ||
	       (battery_pack_has(b, BATTERY_GROUP_STATUS) &&
		!(b->requests & BATTERY_REQUEST_DISCHARGE_ENABLE));
}

uint8_t pylon_family_soc(const struct pylon_layout *l, const struct protocol_options *opt,
			 const struct battery_state *bs)
{
	const struct battery_pack *b = &bs->bank;
	uint8_t soc = b->soc_pct > 100 ? 100 : b->soc_pct;
	bool cb, db;

	if (!l->soc_follows || !opt || !opt->soc_follows_limits) {
		return soc;
	}
	/*
	 * Deye/Sol-Ark off-grid follow SOC, not the current limits
	 * (dalathegreat/Battery-Emulator#873): 100 % stops charging, 0 %
	 * stops discharging. With both blocked no SOC says "neither": the
	 * real SOC goes out and the zero limits and request flags carry it.
	 */
	cb = pylon_family_charge_blocked(b);
	db = pylon_family_discharge_blocked(b);
	if (cb && !db) {
		return 100;
	}
	if (db && !cb) {
		return 0;
	}
	return soc;
}

static uint8_t frame_len(const struct pylon_layout *l, uint8_t natural)
{
	return l->pad_to_8 ? 8 : natural;
}

static void put_limits(const struct pylon_layout *l, const struct protocol_options *opt,
		       const struct battery_state *bs, struct can_frame *f)
{
	const struct battery_pack *b = &bs->bank;
	bool dvl = l->dvl || (opt && opt->send_dvl);

	*f = (struct can_frame){ .can_id = PYLON_ID_LIMITS, .len = frame_len(l, dvl ? 8 : 6) };
	/* CVL u16 LE 0.1 V, rounded down (Pylon CAN V1.2 0x351 bytes 0-1) */
	put_le16(&f->data[0], clamp_u16(protocol_upper_limit(b->charge_voltage_limit_mv, 100)));
	/* CCL s16 LE 0.1 A, rounded down, 0..3276.7 A (V1.2 0x351 bytes 2-3) */
	put_le16(&f->data[2],
		 (uint16_t)clamp_s16(protocol_upper_limit(b->charge_current_limit_ma, 100)));
	/*
	 * DCL s16 LE 0.1 A, rounded down, sent POSITIVE (V1.2 0x351 bytes 4-5;
	 * real US5000 packs: C0 12 = 480.0 A)
	 */
	put_le16(&f->data[4],
		 (uint16_t)clamp_s16(protocol_upper_limit(b->discharge_current_limit_ma, 100)));
	if (dvl) {
		/*
		 * DVL u16 LE 0.1 V, rounded UP: a lower bound (Sol-Ark v1.3
		 * 0x351 bytes 6-7, Luxpower V04.2 0x351 "Discharge cut
		 * voltage"; reserved in Pylon V1.2, which real US5000 packs
		 * fill anyway: C2 01 = 45.0 V)
		 */
		put_le16(&f->data[6],
			 clamp_u16(protocol_lower_limit(b->discharge_voltage_limit_mv, 100)));
	}
}

static void put_soc(const struct pylon_layout *l, const struct battery_state *bs, uint8_t soc,
		    struct can_frame *f)
{
	*f = (struct can_frame){ .can_id = PYLON_ID_SOC, .len = frame_len(l, 4) };
	/* SOC u16 LE 1 %, 0..100 (Pylon V1.2 0x355 bytes 0-1) */
	put_le16(&f->data[0], soc > 100 ? 100 : soc);
	/* SOH u16 LE 1 %, 0..100 (V1.2 0x355 bytes 2-3) */
	put_le16(&f->data[2], bs->bank.soh_pct > 100 ? 100 : bs->bank.soh_pct);
}

/* @num / @den rounded to the nearest, halves away from zero; @den > 0 */
static int32_t div_nearest(int32_t num, int32_t den)
{
	return num >= 0 ? (num + den / 2) / den : -((-num + den / 2) / den);
}

int16_t pylon_family_mean_temp_dc(const struct battery_state *bs)
{
	const struct battery_pack *b = &bs->bank;
	uint8_t packs = bs->packs_online ? bs->packs_online : bs->pack_count;
	unsigned n = b->temp_count > BATTERY_TEMPS_MAX ? BATTERY_TEMPS_MAX : b->temp_count;
	int32_t sum = 0;

	/*
	 * One pack: its sensor list is the whole bank's, so its mean is the
	 * bank's. In a bank the safety layer keeps only the hottest pack's
	 * list next to the bank's extremes, whose mean would lean hot: there,
	 * and whenever only the extremes are known, the midpoint of the
	 * lowest and the highest.
	 */
	if (packs <= 1 && n > 0) {
		int32_t mean;

		for (unsigned i = 0; i < n; i++) {
			sum += b->temp_dc[i];
		}
		mean = div_nearest(sum, (int32_t)n);
		/* a mean lies between the extremes; a list that disagrees loses */
		if (mean < b->temp_min_dc) {
			mean = b->temp_min_dc;
		} else if (mean > b->temp_max_dc) {
			mean = b->temp_max_dc;
		}
		return (int16_t)mean;
	}
	return clamp_s16(div_nearest((int32_t)b->temp_min_dc + b->temp_max_dc, 2));
}

static int16_t pick_temp_dc(const struct pylon_layout *l, const struct battery_state *bs)
{
	const struct battery_pack *b = &bs->bank;

	if (!battery_pack_has(b, BATTERY_GROUP_TEMPS)) {
		return 0; /* no sensor data yet: 0.0 degC, documented */
	}
	switch (l->temp) {
	case PYLON_TEMP_MAX:
		return b->temp_max_dc;
	case PYLON_TEMP_AVERAGE:
		/* "Average cell temperature" (Pylon V1.2 and Deye V1.2, 0x356 bytes 4-5) */
		return pylon_family_mean_temp_dc(bs);
	}
	return b->temp_max_dc;
}

static void put_measured(const struct pylon_layout *l, const struct battery_state *bs,
			 struct can_frame *f)
{
	const struct battery_pack *b = &bs->bank;

	*f = (struct can_frame){ .can_id = PYLON_ID_MEASURED, .len = frame_len(l, 6) };
	/*
	 * voltage s16 LE 0.01 V, 0..327.67 V (Pylon V1.2 and Deye V1.2 0x356
	 * bytes 0-1; Sol-Ark v1.3 says 0.1 V: see deye.c)
	 */
	put_le16(&f->data[0], (uint16_t)clamp_s16(b->voltage_mv / 10));
	/* current s16 LE 0.1 A, + charging (V1.2 0x356 bytes 2-3; real pack: F2 FE = -27.0 A) */
	put_le16(&f->data[2], (uint16_t)clamp_s16(b->current_ma / 100));
	/* temperature s16 LE 0.1 degC, two's complement (V1.2 0x356 bytes 4-5) */
	put_le16(&f->data[4], (uint16_t)pick_temp_dc(l, bs));
}

static void put_alarms(const struct pylon_layout *l, const struct battery_state *bs,
		       struct can_frame *f)
{
	const struct battery_pack *b = &bs->bank;
	uint32_t alarms = 0, warnings = 0;
	uint16_t prot, warn;

	if (battery_pack_has(b, BATTERY_GROUP_STATUS)) {
		alarms = b->alarms;
		warnings = b->warnings;
	}
	prot = pylon_family_protection(alarms);
	warn = pylon_family_warning(warnings, alarms);

	*f = (struct can_frame){ .can_id = PYLON_ID_ALARMS, .len = frame_len(l, 7) };
	f->data[0] = (uint8_t)(prot & 0xff); /* protection, Pylon V1.2 0x359 Table 1 */
	f->data[1] = (uint8_t)(prot >> 8);   /* protection, V1.2 Table 2 */
	f->data[2] = (uint8_t)(warn & 0xff); /* alarm (warning), V1.2 Table 3 */
	f->data[3] = (uint8_t)(warn >> 8);   /* alarm (warning), V1.2 Table 4 */
	f->data[4] = pylon_family_module_count(bs); /* "Module numbers" u8 (V1.2 byte 4) */
	f->data[5] = 'P'; /* "P" 0x50, "N" 0x4E (V1.2 bytes 5-6; real capture: 50 4E) */
	f->data[6] = 'N';
	/* byte 7 (8-byte layouts only): "-" in V1.2, "should be 00" in Sol-Ark v1.3 */
}

static void put_requests(const struct pylon_layout *l, const struct battery_state *bs,
			 struct can_frame *f)
{
	const struct battery_pack *b = &bs->bank;
	/* no STATUS yet: no enable flag (the safe side) */
	uint32_t req = battery_pack_has(b, BATTERY_GROUP_STATUS) ? b->requests : 0;

	*f = (struct can_frame){ .can_id = PYLON_ID_REQUESTS, .len = frame_len(l, 2) };
	/* Pylon V1.2 0x35C Table 5: bit 7 charge ... bit 3 full charge */
	f->data[0] = pylon_family_request_flags(req);
	f->data[1] = 0; /* reserved (V1.2 byte 1 empty; Sol-Ark v1.3 "should be 00") */
}

static void put_name(const struct pylon_layout *l, const struct protocol_options *opt,
		     struct can_frame *f)
{
	const char *name = opt && opt->manufacturer[0] ? opt->manufacturer : l->default_name;
	size_t n = strnlen(name, 8);

	*f = (struct can_frame){ .can_id = PYLON_ID_NAME, .len = 8 };
	/* Pylon V1.2 0x35E "Manufacturer Name", ASCII, space padded (real packs: "PYLON   ") */
	memset(f->data, ' ', 8);
	memcpy(f->data, name, n);
}

int pylon_family_encode(const struct pylon_layout *l, const struct protocol_options *opt,
			const struct battery_state *bs, struct can_frame *frames, size_t n_frames)
{
	if (!pylon_family_ready(bs)) {
		return -ENODATA;
	}
	if (n_frames < 6) {
		return -ENOBUFS;
	}
	put_limits(l, opt, bs, &frames[0]);
	put_soc(l, bs, pylon_family_soc(l, opt, bs), &frames[1]);
	put_measured(l, bs, &frames[2]);
	put_alarms(l, bs, &frames[3]);
	put_requests(l, bs, &frames[4]);
	put_name(l, opt, &frames[5]);
	return 6;
}

/* a limit stricter now than in @prev: CVL/CCL/DCL lower or DVL higher */
bool pylon_family_limits_lowered(const struct battery_pack *p, const struct battery_pack *b)
{
	return b->charge_voltage_limit_mv < p->charge_voltage_limit_mv ||
	       b->charge_current_limit_ma < p->charge_current_limit_ma ||
	       b->discharge_current_limit_ma < p->discharge_current_limit_ma ||
	       b->discharge_voltage_limit_mv > p->discharge_voltage_limit_mv;
}

/* an enable withdrawn or a force-charge request new */
static bool requests_changed(const struct battery_pack *p, const struct battery_pack *b)
{
	const uint32_t enables = BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE;
	const uint32_t forces = BATTERY_REQUEST_FORCE_CHARGE | BATTERY_REQUEST_FORCE_CHARGE_2;

	return (p->requests & enables & ~b->requests) != 0 ||
	       (b->requests & forces & ~p->requests) != 0;
}

int pylon_family_encode_urgent(const struct pylon_layout *l, const struct protocol_options *opt,
			       const struct battery_state *prev, const struct battery_state *bs,
			       struct can_frame *frames, size_t n_frames)
{
	const struct battery_pack *p = &prev->bank, *b = &bs->bank;
	bool lim, req, alarm, soc;
	size_t n = 0, need;

	if (!pylon_family_ready(bs) || !pylon_family_ready(prev)) {
		return 0; /* nothing sent before, or nothing to send: the period decides */
	}
	lim = pylon_family_limits_lowered(p, b);
	req = battery_pack_has(b, BATTERY_GROUP_STATUS) && requests_changed(p, b);
	alarm = battery_pack_has(b, BATTERY_GROUP_STATUS) &&
		((b->alarms & ~p->alarms) != 0 || (b->warnings & ~p->warnings) != 0);
	soc = pylon_family_soc(l, opt, bs) != pylon_family_soc(l, opt, prev) && l->soc_follows &&
	      opt && opt->soc_follows_limits;

	need = (lim || req ? 2 : 0) + (alarm ? 1 : 0) + (soc ? 1 : 0);
	if (need > n_frames) {
		return -ENOBUFS;
	}
	if (lim || req) {
		/* limits and flags travel together: the inverter reads them as one */
		put_limits(l, opt, bs, &frames[n++]);
		put_requests(l, bs, &frames[n++]);
	}
	if (soc) {
		put_soc(l, bs, pylon_family_soc(l, opt, bs), &frames[n++]);
	}
	if (alarm) {
		put_alarms(l, bs, &frames[n++]);
	}
	return (int)n;
}

int pylon_family_inverter_rx(const struct can_frame *f)
{
	if (f->can_id & (CAN_RTR_FLAG | CAN_ERR_FLAG)) {
		return PROTOCOL_RX_IGNORED;
	}
	if (f->can_id & CAN_EFF_FLAG) {
		/*
		 * A Schneider XW Pro acks with 0x305 in an extended (29-bit)
		 * frame (issue 10): the same ack. No other extended id is ours.
		 */
		return (f->can_id & CAN_EFF_MASK) == PYLON_ID_INV_ACK ? PROTOCOL_RX_KEEPALIVE
								     : PROTOCOL_RX_IGNORED;
	}
	switch (f->can_id) {
	/* "Inverter reply every second: 0x305: 00-00-00-00-00-00-00-00" (Pylon V1.2 p. 2) */
	case PYLON_ID_INV_ACK:
	case PYLON_ID_INV_IDENT: /* some inverters identify themselves here */
		return PROTOCOL_RX_KEEPALIVE;
	default:
		return PROTOCOL_RX_IGNORED;
	}
}

int pylon_can_decode_pack(const struct can_frame *f, uint64_t now_usec, struct battery_pack *p)
{
	const uint8_t *d = f->data;
	uint8_t len = f->len > CAN_MAX_DLEN ? CAN_MAX_DLEN : f->len;
	int16_t t;

	if (f->can_id & (CAN_EFF_FLAG | CAN_RTR_FLAG | CAN_ERR_FLAG)) {
		return 0;
	}
	switch (f->can_id) {
	case PYLON_ID_LIMITS:
		if (len < 6) {
			return -EBADMSG;
		}
		p->charge_voltage_limit_mv = (uint32_t)get_le16(&d[0]) * 100; /* u16 0.1 V */
		t = (int16_t)get_le16(&d[2]);				       /* s16 0.1 A */
		p->charge_current_limit_ma = t > 0 ? (uint32_t)t * 100 : 0;
		/* s16 0.1 A; some senders (bms-to-inverter) negate it: the magnitude */
		t = (int16_t)get_le16(&d[4]);
		p->discharge_current_limit_ma = (uint32_t)(t < 0 ? -(int32_t)t : t) * 100;
		if (len >= 8) {
			p->discharge_voltage_limit_mv = (uint32_t)get_le16(&d[6]) * 100;
		}
		battery_pack_mark(p, BATTERY_GROUP_LIMITS, now_usec);
		return 1;
	case PYLON_ID_SOC:
		if (len < 2) {
			return -EBADMSG;
		}
		/* SOC u16 %, above 100 understood as 100 */
		p->soc_pct = (uint8_t)(get_le16(&d[0]) > 100 ? 100 : get_le16(&d[0]));
		if (len >= 4) {
			p->soh_pct = (uint8_t)(get_le16(&d[2]) > 100 ? 100 : get_le16(&d[2]));
		}
		battery_pack_mark(p, BATTERY_GROUP_CAPACITY, now_usec);
		return 1;
	case PYLON_ID_MEASURED:
		if (len < 6) {
			return -EBADMSG;
		}
		p->voltage_mv = (uint32_t)get_le16(&d[0]) * 10;		/* 0.01 V */
		p->current_ma = (int32_t)(int16_t)get_le16(&d[2]) * 100; /* s16 0.1 A */
		battery_pack_mark(p, BATTERY_GROUP_ELECTRICAL, now_usec);
		/* one temperature (s16 0.1 degC): both extremes, no sensor list */
		t = (int16_t)get_le16(&d[4]);
		p->temp_count = 0;
		p->temp_min_dc = p->temp_max_dc = t;
		p->temp_min_idx = p->temp_max_idx = BATTERY_INDEX_NONE;
		p->temp_min_pack = p->temp_max_pack = 0;
		p->mosfet_temp_dc = BATTERY_TEMP_NONE;
		battery_pack_mark(p, BATTERY_GROUP_TEMPS, now_usec);
		return 1;
	case PYLON_ID_ALARMS:
		if (len < 4) {
			return -EBADMSG;
		}
		p->alarms = pylon_low_byte_decode(d[0]) | pylon_high_byte_decode(d[1]);
		p->warnings = pylon_low_byte_decode(d[2]) | pylon_high_byte_decode(d[3]);
		battery_pack_mark(p, BATTERY_GROUP_STATUS, now_usec);
		return 1;
	case PYLON_ID_REQUESTS:
		if (len < 1) {
			return -EBADMSG;
		}
		p->requests = pylon_request_decode(d[0]);
		battery_pack_mark(p, BATTERY_GROUP_STATUS, now_usec);
		return 1;
	case PYLON_ID_NAME:
		return 1; /* the name: nothing in the pack to hold it */
	default:
		return 0;
	}
}

int pylon_family_decode(const struct can_frame *f, uint64_t now_usec, struct battery_state *bs)
{
	int r = pylon_can_decode_pack(f, now_usec, &bs->bank);

	if (r == 1 && f->can_id == PYLON_ID_ALARMS && f->len >= 5) {
		/* module count, u8: packs the inverter believes are online */
		uint8_t n = f->data[4];

		bs->packs_online = n > BATTERY_PACKS_MAX ? BATTERY_PACKS_MAX : n;
		bs->pack_count = bs->packs_online ? bs->packs_online : 1;
	}
	return r;
}
