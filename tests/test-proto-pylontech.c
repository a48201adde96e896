/* SPDX-License-Identifier: MIT */
/*
 * `pylontech` golden frames: states and the exact bytes, with the source of
 * each case beside it. The real captures are in tests/data/; single-field
 * cases follow the Pylontech V1.2 table as bsc_fw (src/inverter/Canbus.cpp)
 * and diyBMS (ESPController/src/pylon_canbus.cpp) transcribe it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "battery.h"
#include "macro.h"
#include "protocol.h"
#include "proto-helpers.h"
#include "pylon_family.h"

static const struct inverter_protocol *P;

static int setup(void **state)
{
	P = protocol_find("pylontech");
	return P ? 0 : -1;
}

static int encode(const struct protocol_options *opt, const struct battery_state *bs,
		  struct can_frame *f)
{
	return P->encode(opt, bs, T_NOW, f, PROTOCOL_FRAMES_MAX);
}

/*
 * Source: real US5000 packs, setfirelabs.com "Pylontech battery CAN comms
 * V1.2 vs V1.3" (tests/data/pylontech-us5000-v12.log). The state those
 * frames decode to encodes back to the very same six frames, DVL included
 * (send_dvl), lengths included (8, 4, 6, 7, 2, 8).
 */
static void test_golden_us5000_capture(void **state)
{
	struct can_frame cap[8], f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { .send_dvl = true };
	struct battery_state bs;
	struct battery_pack *b = &bs.bank;
	int n = t_load("pylontech-us5000-v12.log", cap, 8);

	assert_int_equal(n, 6);
	battery_state_init(&bs, 6);
	bs.packs_online = 6;
	b->charge_voltage_limit_mv = 53200;	/* 14 02 */
	b->charge_current_limit_ma = 480000;	/* C0 12 */
	b->discharge_current_limit_ma = 480000; /* C0 12 */
	b->discharge_voltage_limit_mv = 45000;	/* C2 01 */
	battery_pack_mark(b, BATTERY_GROUP_LIMITS, T_NOW);
	b->soc_pct = 88; /* 58 00 */
	b->soh_pct = 94; /* 5E 00 */
	battery_pack_mark(b, BATTERY_GROUP_CAPACITY, T_NOW);
	b->voltage_mv = 49860;	/* 7A 13 */
	b->current_ma = -27000; /* F2 FE: discharging */
	battery_pack_mark(b, BATTERY_GROUP_ELECTRICAL, T_NOW);
	/*
	 * 6B 01 = 36.3 degC, the "Average cell temperature" (V1.2): a bank of
	 * six packs whose extremes are 35.0 and 37.6 degC has it as midpoint
	 */
	b->temp_min_dc = 350;
	b->temp_max_dc = 376;
	battery_pack_mark(b, BATTERY_GROUP_TEMPS, T_NOW);
	b->requests = BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE; /* C0 */
	battery_pack_mark(b, BATTERY_GROUP_STATUS, T_NOW);

	assert_int_equal(encode(&opt, &bs, f), 6);
	for (int i = 0; i < 6; i++) {
		t_assert_frame(&f[i], &cap[i]);
	}
	/* without send_dvl: the 6-byte 0x351 of Battery-Emulator PYLON-LV-CAN.cpp */
	opt.send_dvl = false;
	assert_int_equal(encode(&opt, &bs, f), 6);
	t_assert_hex(&f[0], 0x351, "1402C012C012");
}

/* The same capture decoded: what an inverter reads from a real pack. */
static void test_decode_us5000_capture(void **state)
{
	struct can_frame cap[8];
	struct battery_state bs;
	const struct battery_pack *b = &bs.bank;
	int n = t_load("pylontech-us5000-v12.log", cap, 8);

	battery_state_init(&bs, 1);
	t_decode_all(P, cap, n, &bs);
	assert_int_equal(b->charge_voltage_limit_mv, 53200);
	assert_int_equal(b->charge_current_limit_ma, 480000);
	assert_int_equal(b->discharge_current_limit_ma, 480000);
	assert_int_equal(b->discharge_voltage_limit_mv, 45000);
	assert_int_equal(b->soc_pct, 88);
	assert_int_equal(b->soh_pct, 94);
	assert_int_equal(b->voltage_mv, 49860);
	assert_int_equal(b->current_ma, -27000);
	assert_int_equal(b->temp_max_dc, 363);
	assert_int_equal(b->alarms, 0);
	assert_int_equal(b->warnings, 0);
	assert_int_equal(b->requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_int_equal(bs.packs_online, 6);
	assert_int_equal(bs.pack_count, 6);
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		if (g != BATTERY_GROUP_CELLS) {
			assert_true(battery_pack_has(b, g)); /* cells: not in the protocol */
		}
	}
}

/* Source: setfirelabs "Pylontech CAN reading / replication" sample frames. */
static void test_decode_setfirelabs_sample(void **state)
{
	struct can_frame cap[8];
	struct battery_state bs;
	const struct battery_pack *b = &bs.bank;
	int n = t_load("pylontech-setfirelabs-sample.log", cap, 8);

	battery_state_init(&bs, 1);
	t_decode_all(P, cap, n, &bs);
	assert_int_equal(b->charge_voltage_limit_mv, 53200);	   /* 14 02 */
	assert_int_equal(b->charge_current_limit_ma, 370000);	   /* 74 0E */
	assert_int_equal(b->discharge_current_limit_ma, 370000);   /* 74 0E */
	assert_int_equal(b->discharge_voltage_limit_mv, 46000);	   /* CC 01, "cutoff 46.0V" */
	assert_int_equal(b->soc_pct, 26);			   /* 1A 00 */
	assert_int_equal(b->soh_pct, 100);			   /* 64 00 */
	assert_int_equal(b->voltage_mv, 49420);			   /* 4E 13 */
	assert_int_equal(b->current_ma, 77000);			   /* 02 03: charging */
	assert_int_equal(b->temp_max_dc, 1284);			   /* 04 05 (filler) */
	assert_int_equal(bs.packs_online, 10);			   /* 0A */
}

/* Negative current and temperature: two's complement, little endian. */
static void test_negative_values(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;

	t_state(&bs);
	bs.bank.voltage_mv = 48000;
	bs.bank.current_ma = -150000; /* -150.0 A = 0xFA24 */
	bs.bank.temp_count = 0; /* extremes only: their midpoint */
	bs.bank.temp_min_dc = -200;
	bs.bank.temp_max_dc = -105; /* (-20.0 + -10.5) / 2 = -15.25 -> -15.3 degC = 0xFF67 */
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C012 24FA 67FF");
	/* a current below one 0.1 A step reads as 0, never -0.1 */
	bs.bank.current_ma = -99;
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C012 0000 67FF");
}

/* Zero and maximum limits: clamped into the field, never wrapped. */
static void test_limits_edges(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { .send_dvl = true };
	struct battery_state bs;

	t_state(&bs);
	bs.bank.charge_current_limit_ma = 0;
	bs.bank.discharge_current_limit_ma = 0;
	encode(&opt, &bs, f);
	t_assert_hex(&f[0], 0x351, "2802 0000 0000 D001");
	/* 99 mA is below 0.1 A: truncated to 0, never rounded up */
	bs.bank.charge_current_limit_ma = 99;
	encode(&opt, &bs, f);
	t_assert_hex(&f[0], 0x351, "2802 0000 0000 D001");
	/* s16 fields stop at 3276.7 A, u16 at 6553.5 V */
	bs.bank.charge_current_limit_ma = 5000000;
	bs.bank.discharge_current_limit_ma = UINT32_MAX;
	bs.bank.charge_voltage_limit_mv = 7000000;
	bs.bank.discharge_voltage_limit_mv = UINT32_MAX;
	encode(&opt, &bs, f);
	t_assert_hex(&f[0], 0x351, "FFFF FF7F FF7F FFFF");
	/* 0x356 voltage s16 0.01 V stops at 327.67 V */
	bs.bank.voltage_mv = 400000;
	bs.bank.current_ma = INT32_MIN;
	bs.bank.temp_count = 0;
	bs.bank.temp_min_dc = bs.bank.temp_max_dc = INT16_MAX;
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "FF7F 0080 FF7F");
}

/* SOC 0 and 100, and a SOC above 100 never goes out as such. */
static void test_soc_edges(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;

	t_state(&bs);
	bs.bank.soc_pct = 0;
	bs.bank.soh_pct = 100;
	encode(&opt, &bs, f);
	t_assert_hex(&f[1], 0x355, "0000 6400");
	bs.bank.soc_pct = 100;
	encode(&opt, &bs, f);
	t_assert_hex(&f[1], 0x355, "6400 6400");
	bs.bank.soc_pct = 250;
	bs.bank.soh_pct = 255;
	encode(&opt, &bs, f);
	t_assert_hex(&f[1], 0x355, "6400 6400");
}

/*
 * Every alarm bit, as an alarm (0x359 bytes 0-1) and as a warning (bytes
 * 2-3). Source: Pylontech V1.2 table (bsc_fw Canbus.cpp comment block;
 * diyBMS pylon_canbus.cpp; protocols.md). Bits without a V1.2 place send
 * nothing (cell imbalance, low SOC).
 */
static void test_every_alarm_bit(void **state)
{
	static const struct {
		uint32_t bit;
		const char *alarm;   /* bytes 0-3 when it is an alarm */
		const char *warning; /* bytes 0-3 when it is a warning */
	} cases[] = {
		{ BATTERY_ALARM_CELL_OVERVOLTAGE, "02000000", "00000200" },
		{ BATTERY_ALARM_CELL_UNDERVOLTAGE, "04000000", "00000400" },
		{ BATTERY_ALARM_PACK_OVERVOLTAGE, "02000000", "00000200" },
		{ BATTERY_ALARM_PACK_UNDERVOLTAGE, "04000000", "00000400" },
		{ BATTERY_ALARM_CHARGE_OVERTEMP, "08000000", "00000800" },
		{ BATTERY_ALARM_CHARGE_UNDERTEMP, "10000000", "00001000" },
		{ BATTERY_ALARM_DISCHARGE_OVERTEMP, "08000000", "00000800" },
		{ BATTERY_ALARM_DISCHARGE_UNDERTEMP, "10000000", "00001000" },
		{ BATTERY_ALARM_CHARGE_OVERCURRENT, "00010000", "00000001" },
		{ BATTERY_ALARM_DISCHARGE_OVERCURRENT, "80000000", "00008000" },
		{ BATTERY_ALARM_SHORT_CIRCUIT, "80000000", "00008000" },
		{ BATTERY_ALARM_MOSFET_OVERTEMP, "08000000", "00000800" },
		{ BATTERY_ALARM_CELL_IMBALANCE, "00000000", "00000000" },
		{ BATTERY_ALARM_BMS_INTERNAL, "00080000", "00000008" },
		{ BATTERY_ALARM_BMS_LINK_LOST, "00080000", "00000008" },
		{ BATTERY_ALARM_LOW_SOC, "00000000", "00000000" },
		/* a silent pack: "internal communication failure", a warning bit either way */
		{ BATTERY_ALARM_PACK_OFFLINE, "00000008", "00000008" },
	};
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;
	char hex[32];

	assert_int_equal(ARRAY_SIZE(cases), BATTERY_ALARM__COUNT);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		t_state(&bs);
		bs.bank.alarms = cases[i].bit;
		encode(&opt, &bs, f);
		snprintf(hex, sizeof(hex), "%s 01 504E", cases[i].alarm);
		t_assert_hex(&f[3], 0x359, hex);
		bs.bank.alarms = 0;
		bs.bank.warnings = cases[i].bit;
		encode(&opt, &bs, f);
		snprintf(hex, sizeof(hex), "%s 01 504E", cases[i].warning);
		t_assert_hex(&f[3], 0x359, hex);
	}
	/* all at once: every V1.2 bit and nothing else */
	t_state(&bs);
	bs.bank.alarms = BATTERY_ALARM__ALL;
	bs.bank.warnings = BATTERY_ALARM__ALL;
	encode(&opt, &bs, f);
	t_assert_hex(&f[3], 0x359, "9E09 9E09 01 504E");
}

/* Battery-Emulator's 0x0C and ArminJo's byte-1 bit 7 are understood on decode. */
static void test_decode_other_encoders_bits(void **state)
{
	struct can_frame f = t_frame(0x359, "0C80 0080 01 504E");
	struct battery_state bs;

	battery_state_init(&bs, 1);
	assert_int_equal(P->decode(&f, T_NOW, &bs), 1);
	assert_int_equal(bs.bank.alarms, BATTERY_ALARM_CELL_UNDERVOLTAGE |
						 BATTERY_ALARM_CHARGE_OVERTEMP |
						 BATTERY_ALARM_DISCHARGE_OVERTEMP |
						 BATTERY_ALARM_BMS_INTERNAL);
	assert_int_equal(bs.bank.warnings, BATTERY_ALARM_BMS_INTERNAL);
	/* a negated DCL (bms-to-inverter) is read as its magnitude */
	f = t_frame(0x351, "2802 E803 24FA");
	assert_int_equal(P->decode(&f, T_NOW, &bs), 1);
	assert_int_equal(bs.bank.discharge_current_limit_ma, 150000);
}

/* 0x35C request flags. Source: V1.2 (Battery-Emulator, diyBMS, YamBMS agree). */
static void test_every_request_bit(void **state)
{
	static const struct {
		uint32_t bit;
		const char *hex;
	} cases[] = {
		{ 0, "0000" },
		{ BATTERY_REQUEST_CHARGE_ENABLE, "8000" },
		{ BATTERY_REQUEST_DISCHARGE_ENABLE, "4000" },
		{ BATTERY_REQUEST_FORCE_CHARGE, "2000" },
		{ BATTERY_REQUEST_FORCE_CHARGE_2, "1000" },
		{ BATTERY_REQUEST_FULL_CHARGE, "0800" },
		{ BATTERY_REQUEST__ALL, "F800" },
		/* Battery-Emulator's "enable charging, set charge immediately" */
		{ BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_FORCE_CHARGE, "A000" },
	};
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs, back;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		t_state(&bs);
		bs.bank.requests = cases[i].bit;
		encode(&opt, &bs, f);
		t_assert_hex(&f[4], 0x35C, cases[i].hex);
		battery_state_init(&back, 1);
		assert_int_equal(P->decode(&f[4], T_NOW, &back), 1);
		assert_int_equal(back.bank.requests, cases[i].bit);
	}
	/* no STATUS yet: nothing enabled (the safe side) */
	t_state(&bs);
	bs.bank.updated_usec[BATTERY_GROUP_STATUS] = BATTERY_NEVER;
	encode(&opt, &bs, f);
	t_assert_hex(&f[4], 0x35C, "0000");
	t_assert_hex(&f[3], 0x359, "00000000 01 504E");
}

static void test_module_count_and_name(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;

	t_state(&bs);
	bs.pack_count = 4;
	bs.packs_online = 3;
	encode(&opt, &bs, f);
	t_assert_hex(&f[3], 0x359, "00000000 03 504E");
	bs.packs_online = 0; /* none fresh: the configured count, never 0 */
	encode(&opt, &bs, f);
	t_assert_hex(&f[3], 0x359, "00000000 04 504E");
	/* the name option, space padded (Goodwe wants "GOODWE", YamBMS) */
	strcpy(opt.manufacturer, "GOODWE");
	encode(&opt, &bs, f);
	t_assert_hex(&f[5], 0x35E, "474F4F4457452020");
	strcpy(opt.manufacturer, "ABCDEFGH");
	encode(&opt, &bs, f);
	t_assert_hex(&f[5], 0x35E, "4142434445464748");
}

/* Urgent frames: lowered limit -> 0x351 + 0x35C; new alarm/warning -> 0x359. */
static void test_urgent(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state prev, bs;

	t_state(&prev);
	bs = prev;
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 0);

	bs.bank.charge_current_limit_ma = 50000;
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 2);
	t_assert_hex(&f[0], 0x351, "2802 F401 DC05");
	t_assert_hex(&f[1], 0x35C, "C000");
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 1), -ENOBUFS);

	bs = prev;
	bs.bank.charge_voltage_limit_mv = 54000; /* CVL down */
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 2);
	bs = prev;
	bs.bank.discharge_voltage_limit_mv = 48000; /* DVL up is stricter */
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 2);
	bs = prev;
	bs.bank.requests = BATTERY_REQUEST_DISCHARGE_ENABLE; /* charge withdrawn */
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 2);
	t_assert_hex(&f[1], 0x35C, "4000");

	bs = prev;
	bs.bank.alarms = BATTERY_ALARM_CELL_OVERVOLTAGE;
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 1);
	t_assert_hex(&f[0], 0x359, "02000000 01 504E");
	bs.bank.alarms = 0;
	bs.bank.warnings = BATTERY_ALARM_CHARGE_UNDERTEMP;
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 1);
	t_assert_hex(&f[0], 0x359, "00001000 01 504E");

	/* raised limits, cleared alarms, a new enable: wait for the period */
	prev.bank.alarms = BATTERY_ALARM_CELL_OVERVOLTAGE;
	prev.bank.requests = 0;
	bs = prev;
	bs.bank.alarms = 0;
	bs.bank.charge_current_limit_ma = 120000;
	bs.bank.requests = BATTERY_REQUEST_CHARGE_ENABLE;
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 0);
}

static void test_inverter_rx(void **state)
{
	struct can_frame f = t_frame(0x305, "0000000000000000");

	/* Source: Sol-Ark v1.3 ("respond with CAN ID 0x305 ... 00"), Battery-Emulator */
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_KEEPALIVE);
	f = t_frame(0x307, "1234567856494300"); /* 0x307 seen on a GX bus (victron-seplos-gx.log) */
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_KEEPALIVE);
	f.len = 0; /* content does not matter */
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_KEEPALIVE);
	f = t_frame(0x301, "00");
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_IGNORED);
	/* a Schneider XW Pro acks with 0x305 in an extended frame (issue 10): present */
	f = t_frame(0x305, "00");
	f.can_id |= CAN_EFF_FLAG;
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_KEEPALIVE);
	f = t_frame(0x307, "00"); /* no other extended id is an ack */
	f.can_id |= CAN_EFF_FLAG;
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_IGNORED);
	f = t_frame(0x1305, "00"); /* extended, but not 0x305 */
	f.can_id |= CAN_EFF_FLAG;
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_IGNORED);
	f = t_frame(0x305, "");
	f.can_id |= CAN_RTR_FLAG; /* a remote request is nobody's ack */
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_IGNORED);
	f.can_id |= CAN_EFF_FLAG;
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_IGNORED);
	assert_int_equal(P->schedule, PROTOCOL_SCHEDULE_PERIODIC);
	assert_int_equal(P->period_usec, 1000000);
}

/* The BMS-input entry point: one frame into one pack, groups marked. */
static void test_decode_pack(void **state)
{
	struct battery_pack p;
	struct can_frame f;

	battery_pack_init(&p);
	f = t_frame(0x351, "1402C012C012"); /* 6 bytes: DVL stays as it was */
	p.discharge_voltage_limit_mv = 47000;
	assert_int_equal(pylon_can_decode_pack(&f, 77, &p), 1);
	assert_int_equal(p.updated_usec[BATTERY_GROUP_LIMITS], 77);
	assert_int_equal(p.discharge_voltage_limit_mv, 47000);
	f = t_frame(0x351, "1402C012C0");
	assert_int_equal(pylon_can_decode_pack(&f, 78, &p), -EBADMSG);
	assert_int_equal(p.updated_usec[BATTERY_GROUP_LIMITS], 77); /* untouched */
	f = t_frame(0x356, "7A13F2FE6B01");
	assert_int_equal(pylon_can_decode_pack(&f, 79, &p), 1);
	assert_int_equal(p.updated_usec[BATTERY_GROUP_ELECTRICAL], 79);
	assert_int_equal(p.updated_usec[BATTERY_GROUP_TEMPS], 79);
	assert_int_equal(p.temp_min_dc, 363);
	assert_int_equal(p.temp_count, 0);
	assert_int_equal(p.mosfet_temp_dc, BATTERY_TEMP_NONE);
	f = t_frame(0x35E, "50594C4F4E202020");
	assert_int_equal(pylon_can_decode_pack(&f, 80, &p), 1);
	f = t_frame(0x305, "0000000000000000"); /* the inverter's, not the battery's */
	assert_int_equal(pylon_can_decode_pack(&f, 81, &p), 0);
	f = t_frame(0x359, "000000");
	assert_int_equal(pylon_can_decode_pack(&f, 82, &p), -EBADMSG);
	assert_false(battery_pack_has(&p, BATTERY_GROUP_STATUS));
	f = t_frame(0x355, "FF00");
	assert_int_equal(pylon_can_decode_pack(&f, 83, &p), 1);
	assert_int_equal(p.soc_pct, 100); /* above 100: 100 */
}

/*
 * 0x356 bytes 4-5 "Average cell temperature" (Pylon CANBUS V1.2, and Deye
 * V1.2): the mean of one pack's sensors, the midpoint of a bank's
 * extremes, never the highest.
 */
static void test_average_temperature(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;

	t_state(&bs); /* 21.5, 22.4, 23.1, 20.9 degC: mean 21.975 -> 22.0 (0x00DC) */
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C014 7B00 DC00");
	bs.bank.temp_dc[0] = 216; /* sum 880: 22.0 exactly */
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C014 7B00 DC00");
	/* negative, halves away from zero: (-1.0 - 1.1 - 1.2 - 1.3) / 4 = -1.15 -> -1.2 */
	bs.bank.temp_count = 4;
	bs.bank.temp_dc[0] = -10;
	bs.bank.temp_dc[1] = -11;
	bs.bank.temp_dc[2] = -12;
	bs.bank.temp_dc[3] = -13;
	bs.bank.temp_min_dc = -13;
	bs.bank.temp_max_dc = -10;
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C014 7B00 F4FF");
	/* a bank of two: the list is one pack's only, the midpoint of the bank's extremes */
	t_state(&bs);
	bs.pack_count = bs.packs_online = 2;
	bs.bank.temp_min_dc = 150;
	bs.bank.temp_max_dc = 231; /* (15.0 + 23.1) / 2 = 19.05 -> 19.1 (0x00BF) */
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C014 7B00 BF00");
	/* two configured, one online: that pack's list is the bank's again */
	bs.packs_online = 1;
	bs.bank.temp_min_dc = 209;
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C014 7B00 DC00");
	/* a list that disagrees with the extremes: the mean stays between them */
	bs.bank.temp_min_dc = 225;
	bs.bank.temp_max_dc = 240;
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C014 7B00 E100");
	/* no temperature yet: 0 */
	bs.bank.updated_usec[BATTERY_GROUP_TEMPS] = BATTERY_NEVER;
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C014 7B00 0000");
}

/* DVL 48.05 V is 48.1 V on the wire, never 48.0 V; CVL 55.29 V is 55.2 V. */
static void test_limit_rounding(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { .send_dvl = true };
	struct battery_state bs;

	t_state(&bs);
	bs.bank.discharge_voltage_limit_mv = 48050;
	bs.bank.charge_voltage_limit_mv = 55290;
	bs.bank.charge_current_limit_ma = 100099;
	bs.bank.discharge_current_limit_ma = 150001;
	encode(&opt, &bs, f);
	t_assert_hex(&f[0], 0x351, "2802 E803 DC05 E101");
	bs.bank.discharge_voltage_limit_mv = 48000; /* a whole step stays */
	encode(&opt, &bs, f);
	t_assert_hex(&f[0], 0x351, "2802 E803 DC05 E001");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_us5000_capture),
		cmocka_unit_test(test_decode_us5000_capture),
		cmocka_unit_test(test_decode_setfirelabs_sample),
		cmocka_unit_test(test_negative_values),
		cmocka_unit_test(test_limits_edges),
		cmocka_unit_test(test_soc_edges),
		cmocka_unit_test(test_every_alarm_bit),
		cmocka_unit_test(test_decode_other_encoders_bits),
		cmocka_unit_test(test_every_request_bit),
		cmocka_unit_test(test_module_count_and_name),
		cmocka_unit_test(test_urgent),
		cmocka_unit_test(test_inverter_rx),
		cmocka_unit_test(test_decode_pack),
		cmocka_unit_test(test_average_temperature),
		cmocka_unit_test(test_limit_rounding),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
