/* SPDX-License-Identifier: MIT */
/*
 * `luxpower` golden frames. Sources: the "LuxPower" protocol of
 * Sleeper85/esphome-yambms packages/yambms/yambms_canbus.yaml (0x355
 * cell extremes, 0x356 highest/lowest temperature with its +0.1 degC
 * safeguard, 0x359 capacity in bytes 5-6, 0x35C cycle count) and
 * ArminJo/JK-BMSToPylontechCAN Pylontech_CAN.h (0x379 capacity for
 * Luxpower SNA). No public capture of a Luxpower set was found: the bytes
 * are worked out by hand from those sources for the reference state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "battery.h"
#include "macro.h"
#include "protocol.h"
#include "proto-helpers.h"

static const struct inverter_protocol *P;

static int setup(void **state)
{
	P = protocol_find("luxpower");
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
	assert_int_equal(encode(&opt, &bs, f), 7);
	t_assert_hex(&f[0], 0x351, "2802 E803 DC05 D001");
	/* SOC 67, SOH 98, highest cell 3325 mV (0x0CFD), lowest 3312 mV (0x0CF0) */
	t_assert_hex(&f[1], 0x355, "4300 6200 FD0C F00C");
	/* 53.12 V, +12.3 A, highest 23.1 degC (0xE7), lowest 20.9 degC (0xD1) */
	t_assert_hex(&f[2], 0x356, "C014 7B00 E700 D100");
	/* no bits, 1 module, 280 Ah (0x0118) instead of "PN", 0 */
	t_assert_hex(&f[3], 0x359, "00000000 01 1801 00");
	/* charge+discharge, reserved, 41 cycles (0x29) */
	t_assert_hex(&f[4], 0x35C, "C000 2900 00000000");
	t_assert_hex(&f[5], 0x35E, "50594C4F4E202020");
	t_assert_hex(&f[6], 0x379, "1801 000000000000"); /* 280 Ah installed */
}

/* Equal extremes: the highest goes out 0.1 degC higher (YamBMS safeguard). */
static void test_equal_temperatures(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;

	t_state(&bs);
	bs.bank.temp_min_dc = bs.bank.temp_max_dc = -50; /* -5.0 degC = 0xFFCE */
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C014 7B00 CFFF CEFF");
	/* at the top of the field it cannot go higher: clamped, not wrapped */
	bs.bank.temp_min_dc = bs.bank.temp_max_dc = INT16_MAX;
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C014 7B00 FF7F FF7F");
}

/* Without cell or temperature data the extras are zero, the set still goes out. */
static void test_missing_groups(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;

	t_state(&bs);
	bs.bank.updated_usec[BATTERY_GROUP_CELLS] = BATTERY_NEVER;
	bs.bank.updated_usec[BATTERY_GROUP_TEMPS] = BATTERY_NEVER;
	assert_int_equal(encode(&opt, &bs, f), 7);
	t_assert_hex(&f[1], 0x355, "4300 6200 0000 0000");
	t_assert_hex(&f[2], 0x356, "C014 7B00 0000 0000");
	/* capacity and cycles clamp into u16 */
	t_state(&bs);
	bs.bank.full_mah = 70000000;
	bs.bank.cycles = 100000;
	encode(&opt, &bs, f);
	t_assert_hex(&f[3], 0x359, "00000000 01 FFFF 00");
	t_assert_hex(&f[4], 0x35C, "C000 FFFF 00000000");
	t_assert_hex(&f[6], 0x379, "FFFF 000000000000");
}

static void test_decode_extras(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs, back;
	int n;

	t_state(&bs);
	n = encode(&opt, &bs, f);
	battery_state_init(&back, 1);
	for (int i = 0; i < n; i++) {
		assert_int_equal(P->decode(&f[i], T_NOW, &back), 1);
	}
	assert_int_equal(back.bank.cell_max_mv, 3325);
	assert_int_equal(back.bank.cell_min_mv, 3312);
	assert_int_equal(back.bank.temp_max_dc, 231);
	assert_int_equal(back.bank.temp_min_dc, 209);
	assert_int_equal(back.bank.full_mah, 280000);
	assert_int_equal(back.bank.cycles, 41);
	assert_int_equal(back.packs_online, 1);
}

/* Urgent frames carry Luxpower's extras too. */
static void test_urgent(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state prev, bs;

	t_state(&prev);
	bs = prev;
	bs.bank.discharge_current_limit_ma = 0;
	bs.bank.warnings = BATTERY_ALARM_CELL_UNDERVOLTAGE;
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 3);
	t_assert_hex(&f[0], 0x351, "2802 E803 0000 D001");
	t_assert_hex(&f[1], 0x35C, "C000 2900 00000000");
	t_assert_hex(&f[2], 0x359, "00000400 01 1801 00");
}

/*
 * Luxpower V04.2 0x300, "Remote command from storage inverter": byte 0 bit
 * 0 "RSD battery", 0x01 = shut the battery down. Reported, never ignored,
 * and never a plain keep-alive; 0x305 stays the ack.
 */
static void test_remote_shutdown(void **state)
{
	struct can_frame f = t_frame(0x300, "0100000000000000");
	bool listed = false;

	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_SHUTDOWN_ASKED);
	f = t_frame(0x300, "FF00000000000000"); /* only bit 0 counts */
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_SHUTDOWN_ASKED);
	f = t_frame(0x300, "0000000000000000");
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_SHUTDOWN_CLEARED);
	f = t_frame(0x300, "FE");
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_SHUTDOWN_CLEARED);
	f = t_frame(0x300, ""); /* no byte 0: presence only */
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_KEEPALIVE);
	f = t_frame(0x300, "01"); /* an extended 0x300 is somebody else's */
	f.can_id |= CAN_EFF_FLAG;
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_IGNORED);
	f = t_frame(0x300, "01");
	f.can_id |= CAN_RTR_FLAG;
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_IGNORED);
	f = t_frame(0x305, "0000000000000000");
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_KEEPALIVE);
	/* the socket must let 0x300 through */
	for (size_t i = 0; i < P->n_rx_ids; i++) {
		listed |= P->rx_ids[i] == 0x300;
	}
	assert_true(listed);
	/* only Luxpower defines 0x300: the others ignore it */
	f = t_frame(0x300, "01");
	assert_int_equal(protocol_find("pylontech")->inverter_rx(&f), PROTOCOL_RX_IGNORED);
	assert_int_equal(protocol_find("deye")->inverter_rx(&f), PROTOCOL_RX_IGNORED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_reference),
		cmocka_unit_test(test_equal_temperatures),
		cmocka_unit_test(test_missing_groups),
		cmocka_unit_test(test_decode_extras),
		cmocka_unit_test(test_urgent),
		cmocka_unit_test(test_remote_shutdown),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
