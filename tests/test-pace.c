/* SPDX-License-Identifier: MIT */
/*
 * Pace (paceic V2.5) as a BMS input (pace_serial): the example exchange of
 * nkinnan/esphome-pace-bms components/pace_bms/pace_bms_protocol_v25.cpp
 * (exampleReadAnalogInformation*V25, exampleReadStatusInformation*V25, a
 * 16S pack at address 1, PBmsTools 2.4's loop), decoded field by field with
 * the units of the PACE-RS232-TY16S document (2018-07-05, Char A.4, A.14);
 * a 0x44 answer with alarms built from the document's Char A.18-A.25; the
 * framing contract, truncations, error answers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "bms_serial.h"
#include "ydt1363-helpers.h"

static const struct bms_serial_ops *ops = &pace_serial;

enum { STEP_ANALOG, STEP_WARN };

/* pace_bms_protocol_v25.cpp exampleReadAnalogInformationResponseV25 */
static const char pace_42[] =
	"~25014600F07A0001100CC70CC80CC70CC70CC70CC50CC60CC70CC70CC60CC70CC60CC60CC70CC60CC706"
	"0B9B0B990B990B990BB30BBCFF1FCCCD12D303286A008C2710E1E4\r";
/* pace_bms_protocol_v25.cpp exampleReadStatusInformationResponseV25 */
static const char pace_44[] =
	"~25014600004C000110000000000000000000000000000000000600000000000000000000000E0000000000"
	"00EF3A\r";

static struct battery_state bs;

static int setup(void **state)
{
	(void)state;
	battery_state_init(&bs, 2);
	return 0;
}

static void test_requests(void **state)
{
	(void)state;
	uint8_t buf[64];

	/* exampleReadAnalogInformationRequestV25 / exampleReadStatusInformationRequestV25 */
	assert_int_equal(ops->request(STEP_ANALOG, 1, buf, sizeof(buf)), 20);
	assert_memory_equal(buf, "~25014642E00201FD30\r", 20);
	assert_int_equal(ops->request(STEP_WARN, 1, buf, sizeof(buf)), 20);
	assert_memory_equal(buf, "~25014644E00201FD2E\r", 20);
	assert_int_equal(ops->request(2, 1, buf, sizeof(buf)), 0);
	assert_int_equal(ops->address_max, 15);
	assert_int_equal(ops->baud, 9600);
}

static void test_example_analog(void **state)
{
	(void)state;
	static const uint16_t cells[16] = { 3271, 3272, 3271, 3271, 3271, 3269, 3270, 3271,
					    3271, 3270, 3271, 3270, 3270, 3271, 3270, 3271 };
	const struct battery_pack *p = &bs.packs[0];

	assert_int_equal(
		ops->decode(STEP_ANALOG, (const uint8_t *)pace_42, strlen(pace_42), 0, 50, &bs), 0);
	assert_int_equal(p->cell_count, 16);
	for (unsigned i = 0; i < 16; i++) {
		assert_int_equal(p->cell_mv[i], cells[i]);
	}
	assert_int_equal(p->cell_min_mv, 3269);
	assert_int_equal(p->cell_min_idx, 5);
	assert_int_equal(p->cell_max_mv, 3272);
	assert_int_equal(p->cell_max_idx, 1);
	/* 0.1 K - 2730 (Char A.4): 0B9B = 24.1, 0B99 = 23.9 degC; MOSFET 0BB3 = 26.5 */
	assert_int_equal(p->temp_count, 4);
	assert_int_equal(p->temp_dc[0], 241);
	assert_int_equal(p->temp_dc[1], 239);
	assert_int_equal(p->temp_dc[2], 239);
	assert_int_equal(p->temp_dc[3], 239);
	assert_int_equal(p->mosfet_temp_dc, 265);
	assert_int_equal(p->current_ma, -2250); /* 0xFF1F = -225 x 10 mA */
	assert_int_equal(p->voltage_mv, 52429); /* 0xCCCD mV */
	assert_int_equal(p->remaining_mah, 48190);
	assert_int_equal(p->full_mah, 103460);
	assert_int_equal(p->cycles, 140);
	assert_int_equal(p->soc_pct, 47);  /* 48190 / 103460 */
	assert_int_equal(p->soh_pct, 100); /* full 103.46 Ah >= design 100.00 Ah */
	for (unsigned g = BATTERY_GROUP_ELECTRICAL; g <= BATTERY_GROUP_TEMPS; g++) {
		assert_int_equal(p->updated_usec[g], 50);
	}
	assert_int_equal(p->updated_usec[BATTERY_GROUP_STATUS], 0);
}

static void test_example_warn(void **state)
{
	(void)state;
	bs.packs[1].alarms = BATTERY_ALARM_SHORT_CIRCUIT;
	assert_int_equal(
		ops->decode(STEP_WARN, (const uint8_t *)pace_44, strlen(pace_44), 1, 60, &bs), 0);
	assert_int_equal(bs.packs[1].alarms, 0);
	assert_int_equal(bs.packs[1].warnings, 0);
	/* instructions state 0x0E: pack indicate, DFET and CFET on (Char A.21) */
	assert_int_equal(bs.packs[1].requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_int_equal(bs.packs[1].updated_usec[BATTERY_GROUP_STATUS], 60);
}

/* the example answer with its state bytes set, per Char A.19-A.25 */
static void test_document_warn(void **state)
{
	(void)state;
	uint8_t info[64], f[200];
	ssize_t n = pylon_rs485_answer_info((const uint8_t *)pace_44, strlen(pace_44), info,
					    sizeof(info), NULL);
	size_t len;

	assert_int_equal(n, 38);
	info[29] = 0x41; /* protect 1: bit 0 cell OV, bit 6 short circuit */
	info[30] = 0x14; /* protect 2: bit 2 charge UT, bit 4 MOS OT */
	info[31] = 0x04; /* instructions: DFET only */
	info[33] = 0x04; /* fault: NTC */
	info[36] = 0x08; /* warn 1: bit 3 lower total voltage */
	info[37] = 0x81; /* warn 2: bit 0 charge OT, bit 7 low power */
	len = (size_t)pylon_rs485_request(0x25, 1, 0x00, info, (size_t)n, f, sizeof(f));
	assert_int_equal(ops->frame(STEP_WARN, 1, f, len, NULL), (ssize_t)len);
	assert_int_equal(ops->decode(STEP_WARN, f, len, 0, 70, &bs), 0);
	assert_int_equal(bs.packs[0].alarms,
			 BATTERY_ALARM_CELL_OVERVOLTAGE | BATTERY_ALARM_SHORT_CIRCUIT |
				 BATTERY_ALARM_CHARGE_UNDERTEMP | BATTERY_ALARM_MOSFET_OVERTEMP |
				 BATTERY_ALARM_BMS_INTERNAL);
	assert_int_equal(bs.packs[0].warnings, BATTERY_ALARM_PACK_UNDERVOLTAGE |
						       BATTERY_ALARM_CHARGE_OVERTEMP |
						       BATTERY_ALARM_LOW_SOC);
	assert_int_equal(bs.packs[0].requests, BATTERY_REQUEST_DISCHARGE_ENABLE);
}

static void test_framing(void **state)
{
	(void)state;
	ydt_check_framing(ops, STEP_ANALOG, 0x01, pace_42);
	ydt_check_framing(ops, STEP_WARN, 0x01, pace_44);
}

static void test_truncated(void **state)
{
	(void)state;
	/* 61 INFO bytes, all needed up to the design capacity */
	assert_int_equal(ydt_check_truncations(ops, STEP_ANALOG, pace_42), 61);
	/* 38 INFO bytes, all needed up to warn state 2 */
	assert_int_equal(ydt_check_truncations(ops, STEP_WARN, pace_44), 38);
}

static void test_rtn_errors(void **state)
{
	(void)state;
	/* Char A.8: 04 CID2 undefined, 09 operation or write error */
	ydt_check_rtn_error(ops, STEP_ANALOG, 0x25, 0x01, 0x04);
	ydt_check_rtn_error(ops, STEP_WARN, 0x25, 0x02, 0x09);
}

static void test_impossible(void **state)
{
	(void)state;
	struct battery_state before = bs;
	uint8_t info[80], f[300];
	ssize_t n = pylon_rs485_answer_info((const uint8_t *)pace_42, strlen(pace_42), info,
					    sizeof(info), NULL);
	ssize_t len;

	assert_int_equal(n, 61);
	info[55] = 0x00; /* full capacity 0x006A = 1.06 Ah under 48.19 Ah remaining */
	len = pylon_rs485_request(0x25, 1, 0x00, info, (size_t)n, f, sizeof(f));
	assert_int_equal(ops->decode(STEP_ANALOG, f, (size_t)len, 0, 7, &bs), -EBADMSG);
	info[2] = 0; /* no cells */
	len = pylon_rs485_request(0x25, 1, 0x00, info, (size_t)n, f, sizeof(f));
	assert_int_equal(ops->decode(STEP_ANALOG, f, (size_t)len, 0, 7, &bs), -EBADMSG);
	assert_memory_equal(&bs, &before, sizeof(bs));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),     cmocka_unit_test(test_example_analog),
		cmocka_unit_test(test_example_warn), cmocka_unit_test(test_document_warn),
		cmocka_unit_test(test_framing),	     cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_rtn_errors),   cmocka_unit_test(test_impossible),
	};

	return cmocka_run_group_tests_name("pace", tests, setup, NULL);
}
