/* SPDX-License-Identifier: MIT */
/*
 * `victron`: the Victron "CAN-bus BMS" protocol a GX device (Venus OS)
 * reads on its BMS-Can port (DVCC).
 *
 * Its origin is SMA's external-BMS interface for the Sunny Island, SMA
 * "FSS-ConnectingBat-TI-en-10" §5 ("SMA §5.3" below, with its table of
 * process values), also transcribed as "Goodwe/SMA CAN Bus protocol V1.2"
 * ("SMA mapping", Tables 6-11); MG Energy Systems' "Master LV
 * communication guide" v8 ("MG v8", §1.3 SMA protocol) documents the same
 * frames and adds 0x373 and 0x378. 0x372, 0x374-0x377 and 0x379 are in
 * none of those: they come from the open encoders (Sleeper85/esphome-
 * yambms yambms_canbus.yaml "Victron", shining-man/bsc_fw
 * src/inverter/Canbus.cpp, stuartpittaway/diyBMSv4ESP32
 * victron_canbus.cpp) and the real Seplos capture below.
 *
 * 500 kbit/s, 11-bit ids, little endian (SMA §5.2), one set a second
 * (SMA: "not faster than every 200 msec"; MG: every 500 ms):
 *
 *   0x351 8  CVL u16 0.1 V, CCL s16 0.1 A, DCL s16 0.1 A, DVL u16 0.1 V
 *            (SMA §5.3 table; MG v8 "BMS Limits")
 *   0x355 8  SOC u16 %, SOH u16 %, HiResSOC u16 0.01 % (SMA §5.3; MG v8)
 *   0x356 8  voltage s16 0.01 V, current s16 0.1 A, temperature s16 0.1
 *            degC (SMA §5.3 "Battery Temperature": the highest, see below)
 *   0x35A 8  alarms (bytes 0-3) and warnings (bytes 4-7), 2 bits each
 *            (SMA §5.3 "External Alarm/Warning 1-13"; MG v8 "Alarm and
 *            warning information")
 *   0x35E 8  manufacturer, ASCII (SMA §5.3; MG v8)
 *   0x35F 8  battery type u16, BMS version u16, capacity u16 Ah, 0 (SMA
 *            §5.3 "Bat-Type, BMS Version, Bat-Capacity"; SMA mapping
 *            Table 11 "LSB = 1 Ah"; MG v8 "Total battery capacity Ah")
 *   0x370 8, 0x371 8  battery name, 16 ASCII characters
 *   0x372 8  modules online, blocking charge, blocking discharge, offline (u16)
 *   0x373 8  lowest cell u16 mV, highest cell u16 mV, lowest temperature
 *            u16 K, highest temperature u16 K (MG v8 "Battery cell info")
 *   0x374-0x377 8  ASCII ids of the lowest cell, highest cell, lowest and
 *            highest temperature sensor
 *   0x379 8  installed capacity u16 Ah
 *
 * 0x35A pairs (SMA §5.3: for each condition an "arrive" bit and a "leave"
 * bit, the lower one first; MG v8: "1 = raised, 2 = cleared"): 01 active,
 * 10 ok, 00 not supported (diyBMS and bsc_fw agree). We send 10 for every
 * condition we evaluate and 00 for the reserved pairs. The pair order
 * (byte.pair): 0.0 general, 0.1 high voltage, 0.2 low voltage, 0.3 high
 * temperature, 1.0 low temperature, 1.1 high charge temperature, 1.2 low
 * charge temperature, 1.3 high (discharge) current, 2.0 high charge
 * current, 2.1 contactor, 2.2 short circuit, 2.3 BMS internal, 3.0 cell
 * imbalance (SMA §5.3 Alarms 1-13 / Warnings 1-13; MG v8). The general
 * pair is raised only for what no specific pair covers (a low SOC); a
 * silent pack of a bank, which a Sunny Island or a GX would take as a
 * reason to stop if it were an alarm ("In case of any alarm, Sunny
 * Island ... stop[s] inverting", SMA §5.3), is a general WARNING whichever
 * set it came in: the bank's limits already account for the missing pack,
 * and 0x372 counts it.
 *
 * Choices where the sources leave room:
 *   - 0x356 temperature: SMA asks for "the actual measured battery system
 *     temperature" and names no statistic; we send the highest (the lowest
 *     and highest also go in 0x373), as the Seplos and YamBMS do. A real
 *     BYD sends its lowest (dfch/BydCanProtocol README).
 *   - 0x35F bytes 4-5 capacity: the sources disagree. MG v8 says "Total
 *     battery capacity", SMA "Bat-Capacity", the open encoders "online
 *     capacity" (next to 0x379 "installed"); a real Seplos sends its full
 *     304 Ah in both 0x35F and 0x379, a real BYD 105 Ah "available" (its
 *     SOC times the 156 Ah of 0x379). We follow the documents: the bank's
 *     full capacity, which the safety layer sums over the packs online,
 *     the figure the bank SOC is a percentage of. A GX only displays it;
 *     no control hangs on it.
 *   - Unused bytes: SMA §5.1 asks for "invalid" (0xFFFF / 0x8000) in
 *     unused fields of used frames; MG and the real Seplos send 0, which
 *     Venus OS reads fine: 0.
 *   - Limits round so as never to loosen: CVL, CCL, DCL down, DVL up.
 *
 * Frame lengths: all 8 bytes, as a real Seplos BMS sends them to a GX
 * device (candump in syssi/esphome-virtual-can-bms#3, kept in
 * tests/data/victron-seplos-gx.log); 0x355 bytes 6-7 and 0x356 bytes 6-7
 * are zero here.
 *
 * Acknowledgement: a GX device needs none from the battery and raises "BMS
 * connection lost" when our frames stop. Whether it sends one is not
 * settled: protocols.md says Venus OS sends nothing, while the capture above
 * shows 0x305 (zeros) and 0x307 (12 34 56 78 "VIC" 00) on the GX's own bus.
 * We accept both as a keep-alive and depend on neither: "inverter not heard
 * yet" is a normal state with a GX device. (A Sunny Island sends its own
 * measurements in 0x305, SMA §5.3: it counts as presence too.)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "battery.h"
#include "byteorder.h"
#include "macro.h"
#include "protocol.h"
#include "pylon_family.h"

#define VIC_ID_ALARMS 0x35A
#define VIC_ID_INFO 0x35F
#define VIC_ID_NAME1 0x370
#define VIC_ID_NAME2 0x371
#define VIC_ID_MODULES 0x372
#define VIC_ID_EXTREMES 0x373
#define VIC_ID_MIN_CELL_ID 0x374
#define VIC_ID_MAX_CELL_ID 0x375
#define VIC_ID_MIN_TEMP_ID 0x376
#define VIC_ID_MAX_TEMP_ID 0x377
#define VIC_ID_CAPACITY 0x379

#define VIC_FRAMES_MAX 15
static const char VIC_DEFAULT_NAME[] = "BMSBRIDGE"; /* 0x35E: its first 8 characters */

/* 0x35A pair values as they sit in the two bits */
#define VIC_PAIR_ACTIVE 0x1
#define VIC_PAIR_OK 0x2

/* 0x35A pair -> the neutral bits that raise it; index = byte * 4 + pair */
static const uint32_t victron_pairs[] = {
	[0] = 0, /* general: any of the ones below, filled in by pairs_encode() */
	[1] = BATTERY_ALARM_CELL_OVERVOLTAGE | BATTERY_ALARM_PACK_OVERVOLTAGE,
	[2] = BATTERY_ALARM_CELL_UNDERVOLTAGE | BATTERY_ALARM_PACK_UNDERVOLTAGE,
	[3] = BATTERY_ALARM_DISCHARGE_OVERTEMP | BATTERY_ALARM_MOSFET_OVERTEMP,
	[4] = BATTERY_ALARM_DISCHARGE_UNDERTEMP,
	[5] = BATTERY_ALARM_CHARGE_OVERTEMP,
	[6] = BATTERY_ALARM_CHARGE_UNDERTEMP,
	[7] = BATTERY_ALARM_DISCHARGE_OVERCURRENT,
	[8] = BATTERY_ALARM_CHARGE_OVERCURRENT,
	[9] = 0, /* contactor: none to report, always ok */
	[10] = BATTERY_ALARM_SHORT_CIRCUIT,
	[11] = BATTERY_ALARM_BMS_INTERNAL | BATTERY_ALARM_BMS_LINK_LOST,
	[12] = BATTERY_ALARM_CELL_IMBALANCE,
};
#define VIC_PAIRS_USED ARRAY_SIZE(victron_pairs) /* 13; pairs 13-15 reserved (00) */

/* the neutral bit a pair decodes to (the first of its set) */
static const uint32_t victron_pair_canonical[] = {
	[1] = BATTERY_ALARM_CELL_OVERVOLTAGE,
	[2] = BATTERY_ALARM_CELL_UNDERVOLTAGE,
	[3] = BATTERY_ALARM_DISCHARGE_OVERTEMP,
	[4] = BATTERY_ALARM_DISCHARGE_UNDERTEMP,
	[5] = BATTERY_ALARM_CHARGE_OVERTEMP,
	[6] = BATTERY_ALARM_CHARGE_UNDERTEMP,
	[7] = BATTERY_ALARM_DISCHARGE_OVERCURRENT,
	[8] = BATTERY_ALARM_CHARGE_OVERCURRENT,
	[10] = BATTERY_ALARM_SHORT_CIRCUIT,
	[11] = BATTERY_ALARM_BMS_INTERNAL,
	[12] = BATTERY_ALARM_CELL_IMBALANCE,
};

/* the neutral bits some specific pair covers */
static uint32_t pairs_covered(void)
{
	uint32_t covered = 0;

	for (size_t i = 1; i < VIC_PAIRS_USED; i++) {
		covered |= victron_pairs[i];
	}
	return covered;
}

/*
 * four bytes of 0x35A for one set of neutral bits; the general pair (SMA
 * "External Alarm 1", "general battery" condition) only for the bits no
 * specific pair covers
 */
static void pairs_encode(uint32_t bits, uint8_t *out)
{
	memset(out, 0, 4);
	for (size_t i = 1; i < VIC_PAIRS_USED; i++) {
		bool on = (bits & victron_pairs[i]) != 0;

		out[i / 4] |= (uint8_t)((on ? VIC_PAIR_ACTIVE : VIC_PAIR_OK) << (i % 4 * 2));
	}
	out[0] |= (bits & BATTERY_ALARM__ALL & ~pairs_covered()) ? VIC_PAIR_ACTIVE : VIC_PAIR_OK;
}

/*
 * four bytes of 0x35A -> neutral bits. A general pair with no detail is
 * "something no specific pair covers": as an alarm it still stops the
 * inverter, so BMS internal; as a warning a low SOC, which our encoder
 * sends there.
 */
static uint32_t pairs_decode(const uint8_t *in, bool alarm)
{
	uint32_t bits = 0;

	for (size_t i = 1; i < VIC_PAIRS_USED; i++) {
		if (((in[i / 4] >> (i % 4 * 2)) & 0x3) == VIC_PAIR_ACTIVE) {
			bits |= victron_pair_canonical[i];
		}
	}
	if ((in[0] & 0x3) == VIC_PAIR_ACTIVE) {
		if (alarm && bits == 0) {
			bits = BATTERY_ALARM_BMS_INTERNAL;
		} else if (!alarm) {
			bits |= BATTERY_ALARM_LOW_SOC;
		}
	}
	return bits;
}

static void put_ascii(struct can_frame *f, canid_t id, const char *s, char pad)
{
	size_t n = strnlen(s, 8);

	*f = (struct can_frame){ .can_id = id, .len = 8 };
	memset(f->data, pad, 8);
	memcpy(f->data, s, n);
}

/*
 * "<n>" for one pack, "<pack>.<n>" in a bank; both 1-based; "" if the
 * cell is unknown, "<n>" alone if only its pack is (never "256.<n>")
 */
static void put_index(struct can_frame *f, canid_t id, const struct battery_state *bs,
		      uint8_t pack, uint8_t idx)
{
	char s[12] = "";

	if (idx != BATTERY_INDEX_NONE) {
		if (bs->pack_count > 1 && pack != BATTERY_INDEX_NONE) {
			snprintf(s, sizeof(s), "%u.%u", (unsigned)pack + 1, (unsigned)idx + 1);
		} else {
			snprintf(s, sizeof(s), "%u", (unsigned)idx + 1);
		}
	}
	put_ascii(f, id, s, '\0'); /* NUL padded, as YamBMS' snprintf */
}

/*
 * 0.1 degC -> kelvin, truncated as YamBMS does (int(T + 273.15)): 23.4 degC
 * = 296 K, as the Seplos capture sends it next to 0x356's 23.4 degC.
 */
static uint16_t dc_to_kelvin(int16_t dc)
{
	return clamp_u16(((int32_t)dc * 10 + 27315) / 100);
}

static void put_limits(const struct battery_state *bs, struct can_frame *f)
{
	const struct battery_pack *b = &bs->bank;

	*f = (struct can_frame){ .can_id = PYLON_ID_LIMITS, .len = 8 };
	/*
	 * SMA §5.3 / MG v8 0x351: CVL u16 0.1 V, CCL s16 0.1 A, DCL s16 0.1 A
	 * (positive), rounded down
	 */
	put_le16(&f->data[0], clamp_u16(protocol_upper_limit(b->charge_voltage_limit_mv, 100)));
	put_le16(&f->data[2],
		 (uint16_t)clamp_s16(protocol_upper_limit(b->charge_current_limit_ma, 100)));
	put_le16(&f->data[4],
		 (uint16_t)clamp_s16(protocol_upper_limit(b->discharge_current_limit_ma, 100)));
	/* "Battery discharge voltage" u16 0.1 V, a lower bound: rounded UP */
	put_le16(&f->data[6], clamp_u16(protocol_lower_limit(b->discharge_voltage_limit_mv, 100)));
}

static void put_alarms(const struct battery_state *bs, struct can_frame *f)
{
	const struct battery_pack *b = &bs->bank;
	bool st = battery_pack_has(b, BATTERY_GROUP_STATUS);
	uint32_t alarms = st ? b->alarms : 0, warnings = st ? b->warnings : 0;

	*f = (struct can_frame){ .can_id = VIC_ID_ALARMS, .len = 8 };
	/* a silent pack of a bank: a general warning, never an alarm (file comment) */
	warnings |= alarms & BATTERY_ALARM_PACK_OFFLINE;
	alarms &= ~(uint32_t)BATTERY_ALARM_PACK_OFFLINE;
	pairs_encode(alarms, &f->data[0]);   /* SMA External Alarms 1-13, bytes 0-3 */
	pairs_encode(warnings, &f->data[4]); /* SMA External Warnings 1-13, bytes 4-7 */
}

/*
 * Over 80 lines: one block per frame of the Victron set, in frame order, so each reads
 * against its row.
 */
static int victron_encode(const struct protocol_options *opt, const struct battery_state *bs,
			  uint64_t now_usec, struct can_frame *frames, size_t n_frames)
{
	const struct battery_pack *b = &bs->bank;
	bool cells = battery_pack_has(b, BATTERY_GROUP_CELLS);
	bool temps = battery_pack_has(b, BATTERY_GROUP_TEMPS);
	const char *name = opt && opt->manufacturer[0] ? opt->manufacturer : VIC_DEFAULT_NAME;
	uint8_t online = bs->packs_online;
	char name16[17];
	size_t n = 0;
	struct can_frame *f;

	if (!pylon_family_ready(bs)) {
		return -ENODATA;
	}
	if (n_frames < VIC_FRAMES_MAX) {
		return -ENOBUFS;
	}

	put_limits(bs, &frames[n++]);

	f = &frames[n++];
	*f = (struct can_frame){ .can_id = PYLON_ID_SOC, .len = 8 };
	/* SMA §5.3 / MG v8 0x355: SOC u16 1 %, SOH u16 1 %, HiResSOC u16 0.01 % */
	put_le16(&f->data[0], b->soc_pct > 100 ? 100 : b->soc_pct);
	put_le16(&f->data[2], b->soh_pct > 100 ? 100 : b->soh_pct);
	put_le16(&f->data[4], battery_soc_cpct(b));

	f = &frames[n++];
	*f = (struct can_frame){ .can_id = PYLON_ID_MEASURED, .len = 8 };
	/*
	 * SMA §5.3 0x356: voltage S16 0.01 V, current S16 0.1 A (+ charging),
	 * temperature S16 0.1 degC
	 */
	put_le16(&f->data[0], (uint16_t)clamp_s16(b->voltage_mv / 10));
	put_le16(&f->data[2], (uint16_t)clamp_s16(b->current_ma / 100));
	put_le16(&f->data[4], (uint16_t)(temps ? b->temp_max_dc : 0)); /* the highest */

	put_alarms(bs, &frames[n++]);
	/* SMA §5.3 0x35E "Manufacturer-Name-ASCII", space padded */
	put_ascii(&frames[n++], PYLON_ID_NAME, name, ' ');

	f = &frames[n++];
	*f = (struct can_frame){ .can_id = VIC_ID_INFO, .len = 8 };
	put_le16(&f->data[0], 0); /* SMA "Bat-Type" / MG "Master type ID": none */
	put_le16(&f->data[2], 0); /* SMA "BMS Version" / MG "Software version": none */
	/* capacity u16 1 Ah, the bank's online packs (file comment), truncated */
	put_le16(&f->data[4], clamp_u16(b->full_mah / 1000));

	/*
	 * 0x370/0x371 battery name: 16 characters over two frames, space
	 * padded (in no document: YamBMS, bsc_fw; Venus OS shows it)
	 */
	memset(name16, ' ', 16);
	name16[16] = '\0';
	memcpy(name16, name,
	       name == VIC_DEFAULT_NAME ? strlen(name) : strnlen(name, sizeof(opt->manufacturer)));
	f = &frames[n++];
	*f = (struct can_frame){ .can_id = VIC_ID_NAME1, .len = 8 };
	memcpy(f->data, name16, 8);
	f = &frames[n++];
	*f = (struct can_frame){ .can_id = VIC_ID_NAME2, .len = 8 };
	memcpy(f->data, name16 + 8, 8);

	/*
	 * 0x372 module counts, u16 each: online, blocking charge, blocking
	 * discharge, offline (in no document: YamBMS, bsc_fw; real Seplos and
	 * BYD frames agree on online and offline). "Blocking" is bank-wide here
	 */
	f = &frames[n++];
	*f = (struct can_frame){ .can_id = VIC_ID_MODULES, .len = 8 };
	put_le16(&f->data[0], online);
	put_le16(&f->data[2], pylon_family_charge_blocked(b) ? online : 0);
	put_le16(&f->data[4], pylon_family_discharge_blocked(b) ? online : 0);
	put_le16(&f->data[6], bs->pack_count > online ? (uint16_t)(bs->pack_count - online) : 0);

	if (cells && temps) {
		f = &frames[n++];
		*f = (struct can_frame){ .can_id = VIC_ID_EXTREMES, .len = 8 };
		/* MG v8 0x373 "Battery cell info": lowest / highest cell un16 1 mV, */
		put_le16(&f->data[0], b->cell_min_mv);
		put_le16(&f->data[2], b->cell_max_mv);
		/* lowest / highest cell temperature un16 1 K */
		put_le16(&f->data[4], dc_to_kelvin(b->temp_min_dc));
		put_le16(&f->data[6], dc_to_kelvin(b->temp_max_dc));
	}
	/*
	 * 0x374-0x377: ASCII ids of the lowest / highest cell and the lowest /
	 * highest temperature sensor (in no document: YamBMS, bsc_fw, diyBMS;
	 * real Seplos and BYD frames carry their own names)
	 */
	if (cells) {
		put_index(&frames[n++], VIC_ID_MIN_CELL_ID, bs, b->cell_min_pack, b->cell_min_idx);
		put_index(&frames[n++], VIC_ID_MAX_CELL_ID, bs, b->cell_max_pack, b->cell_max_idx);
	}
	if (temps) {
		put_index(&frames[n++], VIC_ID_MIN_TEMP_ID, bs, b->temp_min_pack, b->temp_min_idx);
		put_index(&frames[n++], VIC_ID_MAX_TEMP_ID, bs, b->temp_max_pack, b->temp_max_idx);
	}

	f = &frames[n++];
	*f = (struct can_frame){ .can_id = VIC_ID_CAPACITY, .len = 8 };
	/* 0x379 installed capacity u16 1 Ah (YamBMS, bsc_fw; real Seplos and BYD frames) */
	put_le16(&f->data[0], clamp_u16(b->full_mah / 1000));
	return (int)n;
}

static int victron_encode_urgent(const struct protocol_options *opt,
				 const struct battery_state *prev, const struct battery_state *bs,
				 uint64_t now_usec, struct can_frame *frames, size_t n_frames)
{
	const struct battery_pack *p = &prev->bank, *b = &bs->bank;
	bool lim, alarm;
	size_t n = 0;

	if (!pylon_family_ready(bs) || !pylon_family_ready(prev)) {
		return 0;
	}
	lim = pylon_family_limits_lowered(p, b);
	alarm = battery_pack_has(b, BATTERY_GROUP_STATUS) &&
		((b->alarms & ~p->alarms) != 0 || (b->warnings & ~p->warnings) != 0);
	if ((size_t)lim + (size_t)alarm > n_frames) {
		return -ENOBUFS;
	}
	if (lim) {
		put_limits(bs, &frames[n++]);
	}
	if (alarm) {
		put_alarms(bs, &frames[n++]);
	}
	return (int)n;
}

/* "<n>" or "<pack>.<n>", 1-based, NUL or space padded -> 0-based; else none */
static void parse_index(const struct can_frame *f, uint8_t *ret_pack, uint8_t *ret_idx)
{
	unsigned v[2] = { 0, 0 }, k = 0;
	bool digits = false;

	for (size_t i = 0; i < f->len && i < CAN_MAX_DLEN; i++) {
		uint8_t c = f->data[i];

		if (c >= '0' && c <= '9' && v[k] < 1000) {
			v[k] = v[k] * 10 + (c - '0');
			digits = true;
		} else if (c == '.' && k == 0 && digits) {
			k = 1;
			digits = false;
		} else {
			break;
		}
	}
	/* a cell number 1..254 (255 is "none"), a pack number 1..255 */
	if (!digits || v[k] == 0 || v[k] > BATTERY_INDEX_NONE || (k == 1 && v[0] == 0)) {
		*ret_idx = BATTERY_INDEX_NONE;
		return;
	}
	*ret_pack = k == 1 ? clamp_u8(v[0] - 1) : 0;
	*ret_idx = (uint8_t)(v[k] - 1);
}

/* Over 80 lines: one case per frame id, the inverse of victron_encode(). */
static int victron_decode(const struct can_frame *f, uint64_t now_usec, struct battery_state *bs)
{
	struct battery_pack *b = &bs->bank;
	const uint8_t *d = f->data;
	uint8_t len = f->len > CAN_MAX_DLEN ? CAN_MAX_DLEN : f->len;

	if (f->can_id & (CAN_EFF_FLAG | CAN_RTR_FLAG | CAN_ERR_FLAG)) {
		return 0;
	}
	switch (f->can_id) {
	case PYLON_ID_LIMITS:
	case PYLON_ID_SOC:
	case PYLON_ID_MEASURED:
	case PYLON_ID_NAME:
		/* the layout the Pylontech family shares with Victron */
		return pylon_can_decode_pack(f, now_usec, b);
	case VIC_ID_ALARMS:
		if (len < 8) {
			return -EBADMSG;
		}
		b->alarms = pairs_decode(&d[0], true);
		b->warnings = pairs_decode(&d[4], false);
		battery_pack_mark(b, BATTERY_GROUP_STATUS, now_usec);
		return 1;
	case VIC_ID_INFO:
		if (len < 6) {
			return -EBADMSG;
		}
		b->full_mah = (uint32_t)get_le16(&d[4]) * 1000; /* online capacity u16 Ah */
		return 1;
	case VIC_ID_NAME1:
	case VIC_ID_NAME2:
		return 1;
	case VIC_ID_MODULES:
		if (len < 8) {
			return -EBADMSG;
		}
		/* online + offline = the bank; u16 each, clamped to what we hold */
		bs->packs_online = (uint8_t)(get_le16(&d[0]) > BATTERY_PACKS_MAX ? BATTERY_PACKS_MAX
										 : get_le16(&d[0]));
		{
			uint32_t total = (uint32_t)get_le16(&d[0]) + get_le16(&d[6]);

			bs->pack_count = (uint8_t)(total > BATTERY_PACKS_MAX ? BATTERY_PACKS_MAX
					 : total ? total : 1);
		}
		return 1;
	case VIC_ID_EXTREMES:
		if (len < 8) {
			return -EBADMSG;
		}
		b->cell_min_mv = get_le16(&d[0]); /* u16 mV */
		b->cell_max_mv = get_le16(&d[2]);
		b->cell_count = 0; /* extremes only */
		battery_pack_mark(b, BATTERY_GROUP_CELLS, now_usec);
		/*
		 * u16 K -> 0.1 degC (K * 10 - 2731). The lowest temperature is
		 * only here; the highest is also in 0x356 at 0.1 degC, which
		 * wins once received.
		 */
		b->temp_min_dc = clamp_s16((int32_t)get_le16(&d[4]) * 10 - 2731);
		if (!battery_pack_has(b, BATTERY_GROUP_TEMPS)) {
			b->temp_max_dc = clamp_s16((int32_t)get_le16(&d[6]) * 10 - 2731);
			b->temp_count = 0;
			b->temp_min_idx = b->temp_max_idx = BATTERY_INDEX_NONE;
			b->mosfet_temp_dc = BATTERY_TEMP_NONE;
			battery_pack_mark(b, BATTERY_GROUP_TEMPS, now_usec);
		}
		return 1;
	case VIC_ID_MIN_CELL_ID:
		parse_index(f, &b->cell_min_pack, &b->cell_min_idx);
		return 1;
	case VIC_ID_MAX_CELL_ID:
		parse_index(f, &b->cell_max_pack, &b->cell_max_idx);
		return 1;
	case VIC_ID_MIN_TEMP_ID:
		parse_index(f, &b->temp_min_pack, &b->temp_min_idx);
		return 1;
	case VIC_ID_MAX_TEMP_ID:
		parse_index(f, &b->temp_max_pack, &b->temp_max_idx);
		return 1;
	case VIC_ID_CAPACITY:
		if (len < 2) {
			return -EBADMSG;
		}
		b->full_mah = (uint32_t)get_le16(&d[0]) * 1000; /* installed capacity u16 Ah */
		return 1;
	default:
		return 0;
	}
}

static const canid_t victron_rx_ids[] = { PYLON_ID_INV_ACK, PYLON_ID_INV_IDENT };

const struct inverter_protocol victron_protocol = {
	.name = "victron",
	.description = "Victron CAN-bus BMS for GX devices (DVCC), no ack required",
	.transport = PROTOCOL_TRANSPORT_CAN,
	.schedule = PROTOCOL_SCHEDULE_PERIODIC,
	.period_usec = USEC_PER_SEC,
	.bitrate = 500000,
	.inverter_timeout_usec = 10 * USEC_PER_SEC,
	.rx_ids = victron_rx_ids,
	.n_rx_ids = ARRAY_SIZE(victron_rx_ids),
	.encode = victron_encode,
	.encode_urgent = victron_encode_urgent,
	.inverter_rx = pylon_family_inverter_rx, /* 0x305/0x307 if sent; not relied on */
	.decode = victron_decode,
};
