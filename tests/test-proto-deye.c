/* SPDX-License-Identifier: MIT */
/*
 * `deye` golden frames. Source of the layout: the Sol-Ark v1.3 protocol as
 * quoted and implemented in dalathegreat/Battery-Emulator
 * Software/src/inverter/SOL-ARK-LV-CAN.cpp/.h (8-byte frames, DVL in
 * 0x351, mean temperature in 0x356, 0x359 byte 7 zero); the name "PYLON"
 * Deye recognises (Sleeper85/esphome-yambms yambms_canbus.yaml); the
 * soc_follows_limits quirk (dalathegreat/Battery-Emulator#873). No public
 * capture of a Deye battery set was found: the bytes below are worked out
 * by hand from those sources for the reference state (proto-helpers.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "battery.h"
#include "macro.h"
#include "protocol.h"
#include "proto-helpers.h"

static const struct inverter_protocol *P;

static int setup(void **state)
{
	P = protocol_find("deye");
	return P ? 0 : -1;
}

static int encode(const struct protocol_options *opt, const struct battery_state *bs,
		  struct can_frame *f)
{
	return P->encode(opt, bs, T_NOW, f, PROTOCOL_FRAMES_MAX);
}

/* The reference state: 55.2 V / 100 A / 150 A / 46.4 V, 67 %, 98 %, 53.12 V, +12.3 A. */
static void test_golden_reference(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;

	t_state(&bs);
	assert_int_equal(encode(&opt, &bs, f), 7);
	t_assert_hex(&f[0], 0x351, "2802 E803 DC05 D001"); /* DVL always, Sol-Ark v1.3 */
	t_assert_hex(&f[1], 0x355, "4300 6200 00000000"); /* padded to 8 */
	/*
	 * "Average cell temperature" (Deye V1.2 0x356): one pack, the mean of
	 * its four sensors, (21.5 + 22.4 + 23.1 + 20.9) / 4 = 21.975 -> 22.0
	 * degC = 0x00DC
	 */
	t_assert_hex(&f[2], 0x356, "C014 7B00 DC00 0000");
	t_assert_hex(&f[3], 0x359, "00000000 01 504E 00"); /* byte 7 "unused, should be 00" */
	t_assert_hex(&f[4], 0x35C, "C000 000000000000");
	t_assert_hex(&f[5], 0x35E, "50594C4F4E202020"); /* "PYLON   " */
	/* Sol-Ark v1.3 0x379: bank capacity u16 1 Ah, 280 Ah = 0x0118, rest 00 */
	t_assert_hex(&f[6], 0x379, "1801 000000000000");
	/* send_dvl changes nothing: Deye always has it */
	opt.send_dvl = true;
	encode(&opt, &bs, f);
	t_assert_hex(&f[0], 0x351, "2802 E803 DC05 D001");
}

/*
 * Negative mean temperature, only the extremes known (a bank of several
 * packs, or a BMS without a sensor list): their midpoint, (-10.5 + -4.1) /
 * 2 = -7.3 degC = 0xFFB7.
 */
static void test_negative_mean_temperature(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs, back;

	t_state(&bs);
	bs.bank.temp_count = 0;
	bs.bank.temp_min_dc = -105;
	bs.bank.temp_max_dc = -41;
	bs.bank.current_ma = -85000; /* -85.0 A = 0xFCAE */
	encode(&opt, &bs, f);
	t_assert_hex(&f[2], 0x356, "C014 AEFC B7FF 0000");
	battery_state_init(&back, 1);
	assert_int_equal(P->decode(&f[2], T_NOW, &back), 1);
	assert_int_equal(back.bank.temp_max_dc, -73);
	assert_int_equal(back.bank.current_ma, -85000);
}

/* soc_follows_limits (Battery-Emulator#873): 100 % charge blocked, 0 % discharge blocked. */
static void test_soc_follows_limits(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { .soc_follows_limits = true };
	struct battery_state bs;

	t_state(&bs);
	encode(&opt, &bs, f);
	t_assert_hex(&f[1], 0x355, "4300 6200 00000000"); /* nothing blocked: the real 67 % */

	bs.bank.charge_current_limit_ma = 0;
	encode(&opt, &bs, f);
	t_assert_hex(&f[1], 0x355, "6400 6200 00000000");
	t_assert_hex(&f[0], 0x351, "2802 0000 DC05 D001"); /* the limit still says so too */

	t_state(&bs);
	bs.bank.requests = BATTERY_REQUEST_DISCHARGE_ENABLE; /* charge not enabled */
	encode(&opt, &bs, f);
	t_assert_hex(&f[1], 0x355, "6400 6200 00000000");

	t_state(&bs);
	bs.bank.discharge_current_limit_ma = 0;
	encode(&opt, &bs, f);
	t_assert_hex(&f[1], 0x355, "0000 6200 00000000");

	/* both blocked: no SOC says "neither", the real one goes out */
	bs.bank.charge_current_limit_ma = 0;
	encode(&opt, &bs, f);
	t_assert_hex(&f[1], 0x355, "4300 6200 00000000");

	/* the option off: the real SOC whatever the limits */
	opt.soc_follows_limits = false;
	t_state(&bs);
	bs.bank.charge_current_limit_ma = 0;
	encode(&opt, &bs, f);
	t_assert_hex(&f[1], 0x355, "4300 6200 00000000");

	/* other protocols ignore the option (pylontech has no such quirk) */
	opt.soc_follows_limits = true;
	protocol_find("pylontech")->encode(&opt, &bs, T_NOW, f, PROTOCOL_FRAMES_MAX);
	t_assert_hex(&f[1], 0x355, "4300 6200");
}

/* A blocked charge under soc_follows_limits goes out at once, SOC included. */
static void test_urgent_soc(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { .soc_follows_limits = true };
	struct battery_state prev, bs;

	t_state(&prev);
	bs = prev;
	bs.bank.charge_current_limit_ma = 0;
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 3);
	t_assert_hex(&f[0], 0x351, "2802 0000 DC05 D001");
	t_assert_hex(&f[1], 0x35C, "C000 000000000000");
	t_assert_hex(&f[2], 0x355, "6400 6200 00000000");
	/* the option off: limits only */
	opt.soc_follows_limits = false;
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 2);
	/* a new alarm: 0x359 padded */
	bs = prev;
	bs.bank.alarms = BATTERY_ALARM_BMS_INTERNAL;
	assert_int_equal(P->encode_urgent(&opt, &prev, &bs, T_NOW, f, 8), 1);
	t_assert_hex(&f[0], 0x359, "00080000 01 504E 00");
}

/* Deye's late ack (Sleeper85/esphome-jk-bms-can#48) must not count as a lost inverter. */
static void test_ack_tolerance(void **state)
{
	struct can_frame f = t_frame(0x305, "0000000000000000");

	assert_true(P->inverter_timeout_usec >= 30 * UINT64_C(1000000));
	assert_true(P->inverter_timeout_usec > protocol_find("pylontech")->inverter_timeout_usec);
	assert_int_equal(P->inverter_rx(&f), PROTOCOL_RX_KEEPALIVE);
	assert_int_equal(P->schedule, PROTOCOL_SCHEDULE_PERIODIC);
}

/* SOC 0/100 and clamped limits, padded frames. */
static void test_edges(void **state)
{
	struct can_frame f[PROTOCOL_FRAMES_MAX];
	struct protocol_options opt = { 0 };
	struct battery_state bs;

	t_state(&bs);
	bs.bank.soc_pct = 100;
	bs.bank.charge_current_limit_ma = 4000000;
	bs.bank.discharge_current_limit_ma = 0;
	bs.bank.discharge_voltage_limit_mv = 0;
	encode(&opt, &bs, f);
	t_assert_hex(&f[0], 0x351, "2802 FF7F 0000 0000");
	t_assert_hex(&f[1], 0x355, "6400 6200 00000000");
	bs.bank.soc_pct = 0;
	encode(&opt, &bs, f);
	t_assert_hex(&f[1], 0x355, "0000 6200 00000000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_reference),
		cmocka_unit_test(test_negative_mean_temperature),
		cmocka_unit_test(test_soc_follows_limits),
		cmocka_unit_test(test_urgent_soc),
		cmocka_unit_test(test_ack_tolerance),
		cmocka_unit_test(test_edges),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
