/* SPDX-License-Identifier: MIT */
/*
 * `growatt` golden frames. Source: "Growatt BMS CAN-Bus protocol, low
 * voltage" Rev 04 as transcribed in dalathegreat/Battery-Emulator
 * Software/src/inverter/GROWATT-LV-CAN.cpp (big endian, request-driven,
 * 0x311 status bytes 0x08 0x02 charging / 0x0C 0x03 discharging / 0x04
 * 0x01 idle); 0x312 bit positions from ai-republic/bms-to-inverter
 * GrowattInverterCANProcessor.java. No public capture of a Growatt battery
 * set was found: the bytes below are worked out by hand from those
 * sources for the reference state (proto-helpers.h).
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

static const struct inverter_protocol *P;

static int setup(void **state)
{
	P = protocol_find("growatt");
	return P ? 0 : -1;
}

static int encode(const struct protocol_options *opt, const struct battery_state *bs,
		  struct can_frame *f)
{
	return P->encode(opt, bs, T_NOW, f, PROTOCOL_FRAMES_MAX);
}

static void test_golden_reference(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;

	t_state(&bs);
	assert_int_equal(encode(&opt, &bs, f), 11);
	/* 55.2 V, 100.0 A, 150.0 A big endian; charging: 0b10 in bits 0-1 and 10-11 */
	t_assert_hex(&f[0], 0x311, "0228 03E8 05DC 0802");
	/* no bits; 1 pack; "BB"; 16 cells */
	t_assert_hex(&f[1], 0x312, "00000000 01 4242 10");
	/* 53.12 V, +12.3 A, 23.1 degC highest, SOC 67, SOH 98 */
	t_assert_hex(&f[2], 0x313, "14C0 007B 00E7 43 62");
	/* 187.60 Ah, 280.00 Ah in 10 mAh; delta 13 mV; 41 cycles */
	t_assert_hex(&f[3], 0x314, "4948 6D60 000D 0029");
	t_assert_hex(&f[4], 0x315, "0CF6 0CF7 0CF8 0CF9"); /* cells 1-4 */
	t_assert_hex(&f[5], 0x316, "0CF6 0CFD 0CF8 0CF9"); /* cell 6: 3325 mV */
	t_assert_hex(&f[6], 0x317, "0CF6 0CF7 0CF8 0CF0"); /* cell 12: 3312 mV */
	t_assert_hex(&f[7], 0x318, "0CF6 0CF7 0CF8 0CF9");
	/* charge+discharge enabled, LiFePO4; 3325 / 3312 mV; cells 6 and 12; pack 0 */
	t_assert_hex(&f[8], 0x319, "C0 0CFD 0CF0 06 0C 00");
	t_assert_hex(&f[9], 0x320, "4242 01 01 00000000");
	t_assert_hex(&f[10], 0x321, "0000000000000000");
	/* the manufacturer option gives the abbreviation */
	strcpy(opt.manufacturer, "GW");
	encode(&opt, &bs, f);
	t_assert_hex(&f[9], 0x320, "4757 01 01 00000000");
	t_assert_hex(&f[1], 0x312, "00000000 01 4757 10");
}

/* 0x311 status: the three states as Battery-Emulator writes them. */
static void test_status_and_negative(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;

	t_state(&bs);
	bs.bank.current_ma = -27000; /* -27.0 A = 0xFEF2, big endian */
	bs.bank.temp_max_dc = -105;  /* -10.5 degC = 0xFF97 */
	encode(&opt, &bs, f);
	t_assert_hex(&f[0], 0x311, "0228 03E8 05DC 0C03");
	t_assert_hex(&f[2], 0x313, "14C0 FEF2 FF97 43 62");
	bs.bank.current_ma = 50; /* below 0.1 A: idle */
	encode(&opt, &bs, f);
	t_assert_hex(&f[0], 0x311, "0228 03E8 05DC 0401");
}

static void test_edges(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;

	t_state(&bs);
	bs.bank.charge_current_limit_ma = 0;
	bs.bank.discharge_current_limit_ma = 10000000; /* u16 0.1 A: 6553.5 A */
	bs.bank.soc_pct = 100;
	bs.bank.soh_pct = 200; /* never into bit 7 ("unsafe use") */
	bs.bank.remaining_mah = 900000;
	bs.bank.full_mah = 900000; /* u16 10 mAh stops at 655.35 Ah */
	encode(&opt, &bs, f);
	t_assert_hex(&f[0], 0x311, "0228 0000 FFFF 0802");
	t_assert_hex(&f[2], 0x313, "14C0 007B 00E7 64 64");
	t_assert_hex(&f[3], 0x314, "FFFF FFFF 000D 0029");
	bs.bank.soc_pct = 0;
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x313, "14C0 007B 00E7 00 64");
	/* a 4-cell pack: the rest zero; no cell data: zeros and no indices */
	t_state(&bs);
	bs.bank.cell_count = 4;
	encode(&opt, &bs, f);
	t_assert_hex(&f[5], 0x316, "0000 0000 0000 0000");
	bs.bank.updated_usec[BATTERY_GROUP_CELLS] = BATTERY_NEVER;
	encode(&opt, &bs, f);
	t_assert_hex(&f[4], 0x315, "0000 0000 0000 0000");
	t_assert_hex(&f[8], 0x319, "C0 0000 0000 00 00 00");
	t_assert_hex(&f[1], 0x312, "00000000 01 4242 00");
}

/* Every alarm bit: 0x312 bytes 0-1 (protection) and 2-3 (alarm). */
static void test_every_alarm_bit(void **state)
{
	static const struct {
		uint32_t bit;
		const char *alarm;
		const char *warning;
	} cases[] = {
		{ BATTERY_ALARM_CELL_OVERVOLTAGE, "10000000", "00001000" },
		{ BATTERY_ALARM_CELL_UNDERVOLTAGE, "08000000", "00000800" },
		{ BATTERY_ALARM_PACK_OVERVOLTAGE, "04000000", "00000400" },
		{ BATTERY_ALARM_PACK_UNDERVOLTAGE, "02000000", "00000200" },
		{ BATTERY_ALARM_CHARGE_OVERTEMP, "00400000", "00000040" },
		{ BATTERY_ALARM_CHARGE_UNDERTEMP, "00100000", "00000010" },
		{ BATTERY_ALARM_DISCHARGE_OVERTEMP, "00800000", "00000080" },
		{ BATTERY_ALARM_DISCHARGE_UNDERTEMP, "00200000", "00000020" },
		{ BATTERY_ALARM_CHARGE_OVERCURRENT, "40000000", "00004000" },
		{ BATTERY_ALARM_DISCHARGE_OVERCURRENT, "80000000", "00008000" },
		{ BATTERY_ALARM_SHORT_CIRCUIT, "20000000", "00008000" },
		{ BATTERY_ALARM_MOSFET_OVERTEMP, "00800000", "00000080" },
		{ BATTERY_ALARM_CELL_IMBALANCE, "00040000", "00000004" },
		{ BATTERY_ALARM_BMS_INTERNAL, "00080000", "00000001" },
		{ BATTERY_ALARM_BMS_LINK_LOST, "00080000", "00000001" },
		{ BATTERY_ALARM_LOW_SOC, "00000000", "00000000" },
		{ BATTERY_ALARM_PACK_OFFLINE, "00000001", "00000001" },
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
		snprintf(hex, sizeof(hex), "%s 01 4242 10", cases[i].alarm);
		t_assert_hex(&f[1], 0x312, hex);
		bs.bank.alarms = 0;
		bs.bank.warnings = cases[i].bit;
		encode(&opt, &bs, f);
		snprintf(hex, sizeof(hex), "%s 01 4242 10", cases[i].warning);
		t_assert_hex(&f[1], 0x312, hex);
	}
}

static void test_requests(void **state)
{
	static const struct {
		uint32_t bit;
		const char *hex;
	} cases[] = {
		{ 0, "00" },
		{ BATTERY_REQUEST_CHARGE_ENABLE, "80" },
		{ BATTERY_REQUEST_DISCHARGE_ENABLE, "40" },
		{ BATTERY_REQUEST_FORCE_CHARGE, "20" },
		{ BATTERY_REQUEST_FORCE_CHARGE_2, "10" },
		{ BATTERY_REQUEST_FULL_CHARGE, "00" }, /* no Growatt bit */
	};
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;
	char hex[32];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		t_state(&bs);
		bs.bank.requests = cases[i].bit;
		encode(&opt, &bs, f);
		snprintf(hex, sizeof(hex), "%s 0CFD 0CF0 06 0C 00", cases[i].hex);
		t_assert_hex(&f[8], 0x319, hex);
	}
}

/* Request-driven: 0x301 asks, nothing else does; nothing urgent is volunteered. */
static void test_request_driven(void **state)
{
	struct can_frame f = t_frame(0x301, "0000000000000000");

	assert_int_equal(P->schedule, PROTOCOL_SCHEDULE_ON_REQUEST);
	assert_null(P->encode_urgent);
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_REQUEST);
	f.len = 0;
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_REQUEST);
	f = t_frame(0x305, "0000000000000000"); /* Pylontech's ack is not Growatt's */
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_IGNORED);
	f = t_frame(0x301, "00");
	f.can_id |= CAN_EFF_FLAG;
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_IGNORED);
}

static void test_decode(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs, back;
	const struct battery_pack *b = &back.bank;
	int n;

	t_state(&bs);
	n = encode(&opt, &bs, f);
	battery_state_init(&back, 1);
	for (int i = 0; i < n; i++) {
		assert_int_equal(P->decode(&f[i], T_NOW, &back), 1);
	}
	assert_int_equal(b->remaining_mah, 187600);
	assert_int_equal(b->full_mah, 280000);
	assert_int_equal(b->cycles, 41);
	assert_int_equal(b->cell_count, 16);
	assert_memory_equal(b->cell_mv, bs.bank.cell_mv, 16 * sizeof(uint16_t));
	assert_int_equal(b->cell_max_idx, 5);
	assert_int_equal(b->cell_min_idx, 11);
	/* 0x316-0x318 are cells too; 0x31A-0x31F are not ours */
	f[0] = t_frame(0x31A, "0000000000000000");
	assert_int_equal(P->decode(&f[0], T_NOW, &back), 0);
	f[0] = t_frame(0x313, "14C0007B00E74362"); /* 7 bytes: malformed */
	f[0].len = 7;
	assert_int_equal(P->decode(&f[0], T_NOW, &back), -EBADMSG);
	f[0] = t_frame(0x313, "14C0007B00E743E2"); /* SOH with the "unsafe" flag */
	assert_int_equal(P->decode(&f[0], T_NOW, &back), 1);
	assert_int_equal(b->soh_pct, 98);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_reference),
		cmocka_unit_test(test_status_and_negative),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_every_alarm_bit),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_request_driven),
		cmocka_unit_test(test_decode),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
