/* SPDX-License-Identifier: MIT */
/*
 * Seplos V2 as a BMS input (seplos_v2_serial): real answers decoded field
 * by field -- the 0x42 answer of a 16S pack (1101-SP15) from
 * syssi/esphome-seplos-bms README.md ("Protocol"), to the values its
 * tests/components/seplos_bms/frames.h publishes for the same frame, and
 * the 0x42 / 0x44 answers of pack 1 of a 12-pack system, firmware 16.06,
 * from privatecoder/openbms-monitor crates/openbms-proto/tests/captures.rs,
 * to the values asserted there; 0x44 answers with alarms built from the
 * Seplos V2.0 document's Table 11 / 13 (no real one with alarms is
 * public); the framing contract, truncations, error answers.
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

static const struct bms_serial_ops *ops = &seplos_v2_serial;

enum { STEP_TELEMETRY, STEP_ALARMS };

/* syssi/esphome-seplos-bms README.md "Protocol": RX of `~20004642E00200FD37` (pack 0) */
static const char seplos_42[] =
	"~2000460010960001100CD70CE90CF40CD60CEF0CE50CE10CDC0CE90CF00CE80CEF0CEA0CDA0CDE0CD806"
	"0BA60BA00B970BA60BA50BA2FD5C14A0344E0A426803134650004603E8149F0000000000000000DC6C\r";

/* privatecoder/openbms-monitor crates/openbms-proto/tests/captures.rs, pack ADR 1, fw 16.06 */
static const char fw1606_42[] =
	"~2001460010960001100D050D050D060D050D050D070D060D060D060D060D060D060D060D060D070D07"
	"060B270B200B210B270B580B30000014D6569A0A6D6003176D60000703E814D9FFF3FF770359027FDDB1\r";
static const char fw1606_44[] =
	"~200146008062000110000000000000000000000000000000000600000000000000001400000000000003"
	"00000200000000000000000002EB2F\r";

static struct battery_state bs;

static int setup(void **state)
{
	(void)state;
	battery_state_init(&bs, 3);
	return 0;
}

static void test_requests(void **state)
{
	(void)state;
	uint8_t buf[64];

	/* Seplos V2.0 Table 7 (telemetry) and Table 10 (telecommand), addresses 00 and 0F */
	assert_int_equal(ops->request(STEP_TELEMETRY, 0, buf, sizeof(buf)), 20);
	assert_memory_equal(buf, "~20004642E00200FD37\r", 20);
	assert_int_equal(ops->request(STEP_TELEMETRY, 15, buf, sizeof(buf)), 20);
	assert_memory_equal(buf, "~200F4642E0020FFD0B\r", 20);
	assert_int_equal(ops->request(STEP_ALARMS, 0, buf, sizeof(buf)), 20);
	assert_memory_equal(buf, "~20004644E00200FD35\r", 20);
	assert_int_equal(ops->request(STEP_ALARMS, 10, buf, sizeof(buf)), 20);
	assert_memory_equal(buf, "~200A4644E0020AFD13\r", 20);
	assert_int_equal(ops->request(2, 0, buf, sizeof(buf)), 0);
	assert_int_equal(ops->address_min, 0);
	assert_int_equal(ops->address_max, 15);
	assert_int_equal(ops->baud, 9600);
}

/* values: tests/components/seplos_bms/frames.h TELEMETRY_FRAME, the same frame */
static void test_readme_telemetry(void **state)
{
	(void)state;
	static const uint16_t cells[16] = { 3287, 3305, 3316, 3286, 3311, 3301, 3297, 3292,
					    3305, 3312, 3304, 3311, 3306, 3290, 3294, 3288 };
	static const int16_t temps[4] = { 251, 245, 236, 251 };
	const struct battery_pack *p = &bs.packs[2];

	assert_int_equal(ops->decode(STEP_TELEMETRY, (const uint8_t *)seplos_42, strlen(seplos_42),
				     2, 77, &bs),
			 0);
	assert_int_equal(p->cell_count, 16);
	for (unsigned i = 0; i < 16; i++) {
		assert_int_equal(p->cell_mv[i], cells[i]);
	}
	assert_int_equal(p->cell_min_mv, 3286); /* cell 4 */
	assert_int_equal(p->cell_min_idx, 3);
	assert_int_equal(p->cell_max_mv, 3316); /* cell 3 */
	assert_int_equal(p->cell_max_idx, 2);
	assert_int_equal(p->temp_count, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(p->temp_dc[i], temps[i]);
	}
	assert_int_equal(p->mosfet_temp_dc, 247); /* power temperature 24.7 degC */
	assert_int_equal(p->current_ma, -6760);	  /* -6.76 A */
	assert_int_equal(p->voltage_mv, 52800);	  /* 52.80 V */
	assert_int_equal(p->remaining_mah, 133900);
	assert_int_equal(p->full_mah, 170000);
	assert_int_equal(p->soc_pct, 79); /* 78.7 % */
	assert_int_equal(p->cycles, 70);
	assert_int_equal(p->soh_pct, 100);
	for (unsigned g = BATTERY_GROUP_ELECTRICAL; g <= BATTERY_GROUP_TEMPS; g++) {
		assert_int_equal(p->updated_usec[g], 77);
	}
	assert_int_equal(p->updated_usec[BATTERY_GROUP_LIMITS], 0);
	assert_int_equal(p->updated_usec[BATTERY_GROUP_STATUS], 0);
}

/* captures.rs telemetry_frame_pack1: 3.333 V, 12.4/11.7/11.8/12.4, power 13.3 degC, ... */
static void test_fw1606_telemetry(void **state)
{
	(void)state;
	static const uint16_t cells[16] = { 3333, 3333, 3334, 3333, 3333, 3335, 3334, 3334,
					    3334, 3334, 3334, 3334, 3334, 3334, 3335, 3335 };
	static const int16_t temps[4] = { 124, 117, 118, 124 };
	const struct battery_pack *p = &bs.packs[0];

	assert_int_equal(ops->frame(STEP_TELEMETRY, 0x01, (const uint8_t *)fw1606_42,
				    strlen(fw1606_42), NULL),
			 (ssize_t)strlen(fw1606_42));
	assert_int_equal(ops->decode(STEP_TELEMETRY, (const uint8_t *)fw1606_42, strlen(fw1606_42),
				     0, 88, &bs),
			 0);
	assert_int_equal(p->cell_count, 16);
	for (unsigned i = 0; i < 16; i++) {
		assert_int_equal(p->cell_mv[i], cells[i]);
	}
	assert_int_equal(p->temp_count, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(p->temp_dc[i], temps[i]);
	}
	assert_int_equal(p->mosfet_temp_dc, 133); /* power 13.3; ambient 17.3 not carried */
	assert_int_equal(p->current_ma, 0);
	assert_int_equal(p->voltage_mv, 53340);	    /* 53.34 V */
	assert_int_equal(p->remaining_mah, 221700); /* 0x569A = 221.70 Ah */
	assert_int_equal(p->full_mah, 280000);	    /* 280.0 Ah */
	assert_int_equal(p->soc_pct, 79);	    /* 79.1 % */
	assert_int_equal(p->cycles, 7);
	assert_int_equal(p->soh_pct, 100);
}

/* captures.rs status_frame_charging_no_alarms: both MOSFETs on, no alarm */
static void test_fw1606_status(void **state)
{
	(void)state;
	const struct battery_pack *p = &bs.packs[0];

	bs.packs[0].alarms = BATTERY_ALARM_CELL_OVERVOLTAGE;
	bs.packs[0].warnings = BATTERY_ALARM_LOW_SOC;
	assert_int_equal(ops->frame(STEP_ALARMS, 0x01, (const uint8_t *)fw1606_44,
				    strlen(fw1606_44), NULL),
			 (ssize_t)strlen(fw1606_44));
	assert_int_equal(ops->decode(STEP_ALARMS, (const uint8_t *)fw1606_44, strlen(fw1606_44), 0,
				     89, &bs),
			 0);
	assert_int_equal(p->alarms, 0);
	assert_int_equal(p->warnings, 0);
	assert_int_equal(p->requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_int_equal(p->updated_usec[BATTERY_GROUP_STATUS], 89);
}

/*
 * Table 11 for 16 cells and 6 sensors, built here from the document: the
 * alarm event 2 byte lands at INFO byte 30, where dbus-serialbattery
 * bms/seplos.py decode_alarm_data reads it (data[30]), event 3 at 31,
 * event 5 at 33, event 6 at 34, the on-off state at 35.
 */
static size_t alarm_answer(uint8_t ev[20], uint8_t *f, size_t n)
{
	uint8_t info[49] = { 0x00, 0x00, 16 };

	info[19] = 6;
	info[28] = 20;
	memcpy(&info[29], ev, 20);
	return (size_t)pylon_rs485_request(0x20, 0x00, 0x00, info, sizeof(info), f, n);
}

static void test_document_alarms(void **state)
{
	(void)state;
	uint8_t ev[20] = { 0 }, f[160];
	size_t len;

	ev[1] = 0x06; /* event 2: bit 1 cell OV protection, bit 2 cell low voltage alarm */
	ev[2] = 0x08; /* event 3: bit 3 charge under temperature protection */
	ev[3] = 0x20; /* event 4: bit 5 power high temperature alarm */
	ev[4] = 0x20; /* event 5: bit 5 output short circuit protection */
	ev[5] = 0x04; /* event 6: bit 2 residual capacity alarm */
	ev[6] = 0x01; /* on-off: discharge switch on, charge switch off */
	len = alarm_answer(ev, f, sizeof(f));
	assert_int_equal(len, 18 + 98); /* 49 bytes (§4.2.2), LENGTH 0x8062 */
	assert_memory_equal(&f[9], "8062", 4);
	assert_int_equal(ops->frame(STEP_ALARMS, 0, f, len, NULL), (ssize_t)len);
	assert_int_equal(ops->decode(STEP_ALARMS, f, len, 0, 9, &bs), 0);
	assert_int_equal(bs.packs[0].alarms, BATTERY_ALARM_CELL_OVERVOLTAGE |
						     BATTERY_ALARM_CHARGE_UNDERTEMP |
						     BATTERY_ALARM_SHORT_CIRCUIT);
	assert_int_equal(bs.packs[0].warnings, BATTERY_ALARM_CELL_UNDERVOLTAGE |
						       BATTERY_ALARM_MOSFET_OVERTEMP |
						       BATTERY_ALARM_LOW_SOC);
	assert_int_equal(bs.packs[0].requests, BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_int_equal(bs.packs[0].updated_usec[BATTERY_GROUP_STATUS], 9);

	memset(ev, 0, sizeof(ev));
	ev[0] = 0x02;  /* event 1: temperature sensor fault */
	ev[6] = 0x03;  /* both switches on */
	ev[13] = 0x00; /* event 8 clear */
	len = alarm_answer(ev, f, sizeof(f));
	assert_int_equal(ops->decode(STEP_ALARMS, f, len, 0, 10, &bs), 0);
	assert_int_equal(bs.packs[0].alarms, BATTERY_ALARM_BMS_INTERNAL);
	assert_int_equal(bs.packs[0].warnings, 0);
	assert_int_equal(bs.packs[0].requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
}

static void test_framing(void **state)
{
	(void)state;
	ydt_check_framing(ops, STEP_TELEMETRY, 0x00, seplos_42);
	ydt_check_framing(ops, STEP_TELEMETRY, 0x01, fw1606_42);
	ydt_check_framing(ops, STEP_ALARMS, 0x01, fw1606_44);
}

static void test_truncated(void **state)
{
	(void)state;
	uint8_t ev[20] = { 0 }, f[160];

	/* 75 INFO bytes: everything short of the SOH (bytes 63-64) is refused */
	assert_int_equal(ydt_check_truncations(ops, STEP_TELEMETRY, seplos_42), 65);
	memset(f, 0, sizeof(f));
	alarm_answer(ev, f, sizeof(f) - 1); /* a C string for the helper */
	/* 49 INFO bytes: any short of the P = 20 bit fields it announces is refused */
	assert_int_equal(ydt_check_truncations(ops, STEP_ALARMS, (const char *)f), 49);
	assert_int_equal(ydt_check_truncations(ops, STEP_TELEMETRY, fw1606_42), 65);
	assert_int_equal(ydt_check_truncations(ops, STEP_ALARMS, fw1606_44), 49);
}

static void test_rtn_errors(void **state)
{
	(void)state;
	/* Table 5: 04 CID2 invalid, E2 command execution failure */
	ydt_check_rtn_error(ops, STEP_TELEMETRY, 0x20, 0x01, 0x04);
	ydt_check_rtn_error(ops, STEP_ALARMS, 0x20, 0x01, 0xE2);
}

static void test_impossible(void **state)
{
	(void)state;
	/* a residual capacity far above the capacity, two temperatures only */
	static const uint8_t two_temps[] = { 0x00, 0x00, 0x01, 0x0C, 0xD7, 0x02 };
	struct battery_state before = bs;
	uint8_t f[300], info[80];
	ssize_t n_info = pylon_rs485_answer_info((const uint8_t *)seplos_42, strlen(seplos_42),
						 info, sizeof(info), NULL);
	ssize_t n;

	assert_int_equal(n_info, 75);
	info[52] = 0xFF; /* residual capacity 0xFF4E = 653.90 Ah of 170 Ah */
	n = pylon_rs485_request(0x20, 0, 0x00, info, (size_t)n_info, f, sizeof(f));
	assert_int_equal(ops->decode(STEP_TELEMETRY, f, (size_t)n, 0, 7, &bs), -EBADMSG);
	n = pylon_rs485_request(0x20, 0, 0x00, two_temps, sizeof(two_temps), f, sizeof(f));
	assert_int_equal(ops->decode(STEP_TELEMETRY, f, (size_t)n, 0, 7, &bs), -EBADMSG);
	assert_memory_equal(&bs, &before, sizeof(bs));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),	 cmocka_unit_test(test_readme_telemetry),
		cmocka_unit_test(test_fw1606_telemetry), cmocka_unit_test(test_fw1606_status),
		cmocka_unit_test(test_document_alarms),	 cmocka_unit_test(test_framing),
		cmocka_unit_test(test_truncated),	 cmocka_unit_test(test_rtn_errors),
		cmocka_unit_test(test_impossible),
	};

	return cmocka_run_group_tests_name("seplos-v2", tests, setup, NULL);
}
