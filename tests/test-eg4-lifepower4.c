/* SPDX-License-Identifier: MIT */
/*
 * EG4 LifePower4 as a BMS input (eg4_lifepower4_serial).
 *
 * Real answers: nkinnan/esphome-pace-bms components/pace_bms/
 * pace_bms_protocol_v20.cpp / .h ("EG4 variant": exampleReadAnalog
 * InformationResponseV20, exampleReadStatusInformationResponseV20), an
 * EG4 LifePower4 at DIP address 1 (its README: hardware
 * QT-YS00-16SV100A-V3.6), decoded field by field with the units of the
 * document, "LifePower4 Battery Communication Protocol" (§1.4.2 "Fixed
 * point type", §2.1, §2.2). The document's own §2.1 example answer,
 * decoded to the values its table prints. Alarm bits: the real 0x44
 * answer with the event codes of §2.2 items 30-35 set. The document's
 * §2.2 example answer is one character short (83 INFO characters for a
 * LENID of 84, CHKSUM EDC4 where its characters sum to EDF4): framing
 * refuses it.
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

static const struct bms_serial_ops *ops = &eg4_lifepower4_serial;

enum { STEP_ANALOG, STEP_ALARM };

/* pace_bms_protocol_v20.cpp exampleReadAnalogInformationResponseV20 (EG4 variant) */
static const char real_42[] =
	"~20014A00A0CA1001100D2F0D2C0D2C0D2D0D2D0D2F0D2F0D2F0D2C0D2D0D2D0D2F0D300D2C0D300D2C04"
	"0B9B0BA50B9B0B9B0BB90BAF029D151521A9268400540F005700620D300D2C00040BA50B9B000ADAC000"
	"0A54550005D473000570A600000680000004CA56897E24D1A5\r";
/* pace_bms_protocol_v20.cpp exampleReadStatusInformationResponseV20 (EG4 variant) */
static const char real_44[] =
	"~20014A0070541001100000000000000000000000000000000004000000000000000009000000000000"
	"03020000000000EDC3\r";
/* LifePower4 protocol §2.1 "e.g." response data, its hex bytes as characters */
static const char doc_42[] =
	"~20014A00A0CA0101100C540C810C810C820C810C810C810C810C820C820C820C820C820C820C820C7E04"
	"0BCD0BCD0BCD0BCD0BD70BD7000013FD0000271000000F000000640C820C54002E0BCD0BCD0000001500"
	"00003C0000000A0000001D00000000000000000002001DD300\r";
/* LifePower4 protocol §2.2 "e.g." receive data: one character short */
static const char doc_44[] =
	"~20014A00705401011000000000000000000000000000000000400000000000000000900000000000103"
	"000000000000EDC4\r";

static struct battery_state bs;

static int setup(void **state)
{
	(void)state;
	battery_state_init(&bs, 2);
	return 0;
}

/* the real answer's INFO with @k bytes changed, framed as the BMS would (CID1 0x4A) */
static size_t lp4_answer(const char *ans, const uint8_t *at, const uint8_t *val, size_t k,
			 uint8_t *f, size_t n_f)
{
	uint8_t info[128];
	ssize_t n = pylon_rs485_answer_info((const uint8_t *)ans, strlen(ans), info, sizeof(info),
					    NULL);
	ssize_t len;

	assert_true(n > 0);
	for (size_t i = 0; i < k; i++) {
		info[at[i]] = val[i];
	}
	len = pylon_rs485_request_cid1(0x20, 0x01, 0x4A, 0x00, info, (size_t)n, f, n_f);
	assert_true(len > 0);
	return (size_t)len;
}

static void test_requests(void **state)
{
	(void)state;
	uint8_t buf[64];

	/* §2.1 / §2.2 "Send command" examples = exampleRead*InformationRequestV20 */
	assert_int_equal(ops->request(STEP_ANALOG, 1, buf, sizeof(buf)), 18);
	assert_memory_equal(buf, "~20014A420000FDA2\r", 18);
	assert_int_equal(ops->request(STEP_ALARM, 1, buf, sizeof(buf)), 18);
	assert_memory_equal(buf, "~20014A440000FDA0\r", 18);
	/* pack 15: ADR 0x0F, CHKSUM over "200F4A420000" */
	assert_int_equal(ops->request(STEP_ANALOG, 15, buf, sizeof(buf)), 18);
	assert_memory_equal(buf, "~200F4A420000FD8D\r", 18);
	assert_int_equal(ops->request(2, 1, buf, sizeof(buf)), 0);
	assert_int_equal(ops->request(STEP_ANALOG, 1, buf, 17), -ENOBUFS);
	assert_int_equal(ops->address_min, 1);
	assert_int_equal(ops->address_max, 15);
	assert_int_equal(ops->baud, 9600);
}

static void test_real_analog(void **state)
{
	(void)state;
	static const uint16_t cells[16] = { 3375, 3372, 3372, 3373, 3373, 3375, 3375, 3375,
					    3372, 3373, 3373, 3375, 3376, 3372, 3376, 3372 };
	const struct battery_pack *p = &bs.packs[0];

	assert_int_equal(
		ops->decode(STEP_ANALOG, (const uint8_t *)real_42, strlen(real_42), 0, 50, &bs), 0);
	assert_int_equal(p->cell_count, 16);
	assert_memory_equal(p->cell_mv, cells, sizeof(cells));
	assert_int_equal(p->cell_min_mv, 3372); /* item 36 min cell 0D2C */
	assert_int_equal(p->cell_max_mv, 3376); /* item 35 max cell 0D30 */
	/* 0.1 K - 2731 (§2.1 item 21): 0B9B 24.0, 0BA5 25.0 degC; MOSFET 0BAF 26.0 */
	assert_int_equal(p->temp_count, 4);
	assert_int_equal(p->temp_dc[0], 240);
	assert_int_equal(p->temp_dc[1], 250);
	assert_int_equal(p->temp_dc[2], 240);
	assert_int_equal(p->temp_dc[3], 240);
	assert_int_equal(p->temp_min_dc, 240); /* item 39 0B9B */
	assert_int_equal(p->temp_max_dc, 250); /* item 38 0BA5 */
	assert_int_equal(p->mosfet_temp_dc, 260);
	assert_int_equal(p->current_ma, 6690);	   /* 0x029D x 10 mA, charging */
	assert_int_equal(p->voltage_mv, 53970);	   /* 0x1515 x 10 mV: the cells sum to 53979 */
	assert_int_equal(p->remaining_mah, 86170); /* 0x21A9 x 10 mAh */
	assert_int_equal(p->full_mah, 98600);	   /* 0x2684 x 10 mAh */
	assert_int_equal(p->cycles, 84);	   /* 0x0054 */
	assert_int_equal(p->soc_pct, 87);	   /* 0x0057 */
	assert_int_equal(battery_soc_cpct(p), 8700);
	assert_int_equal(p->soh_pct, 98); /* 0x0062 */
	for (unsigned g = BATTERY_GROUP_ELECTRICAL; g <= BATTERY_GROUP_TEMPS; g++) {
		assert_int_equal(p->updated_usec[g], 50);
	}
	assert_int_equal(p->updated_usec[BATTERY_GROUP_STATUS], 0);
	assert_int_equal(p->updated_usec[BATTERY_GROUP_LIMITS], 0);
}

static void test_document_analog(void **state)
{
	(void)state;
	const struct battery_pack *p = &bs.packs[1];

	assert_int_equal(ops->frame(STEP_ANALOG, 1, (const uint8_t *)doc_42, strlen(doc_42), NULL),
			 (ssize_t)strlen(doc_42));
	assert_int_equal(
		ops->decode(STEP_ANALOG, (const uint8_t *)doc_42, strlen(doc_42), 1, 9, &bs), 0);
	/* §2.1 e.g. items 9-45, the values its table prints */
	assert_int_equal(p->cell_count, 16);
	assert_int_equal(p->cell_mv[0], 3156);
	assert_int_equal(p->cell_mv[1], 3201);
	assert_int_equal(p->cell_mv[3], 3202);
	assert_int_equal(p->cell_mv[15], 3198);
	assert_int_equal(p->cell_max_mv, 3202);
	assert_int_equal(p->cell_min_mv, 3156);
	assert_int_equal(p->temp_count, 4);
	assert_int_equal(p->temp_dc[0], 290); /* 0BCDH, 29.0 */
	assert_int_equal(p->temp_dc[3], 290);
	assert_int_equal(p->mosfet_temp_dc, 300); /* 0BD7H, 30.0 */
	assert_int_equal(p->current_ma, 0);
	assert_int_equal(p->voltage_mv, 51170); /* 13FDH, 51.17 V */
	assert_int_equal(p->remaining_mah, 0);
	assert_int_equal(p->full_mah, 100000); /* 2710H, 100.00 AH */
	assert_int_equal(p->cycles, 0);
	assert_int_equal(p->soc_pct, 0);
	assert_int_equal(p->soh_pct, 100);
}

static void test_real_alarm(void **state)
{
	(void)state;
	bs.packs[1].alarms = BATTERY_ALARM_SHORT_CIRCUIT;
	bs.packs[1].warnings = BATTERY_ALARM_LOW_SOC;
	assert_int_equal(
		ops->decode(STEP_ALARM, (const uint8_t *)real_44, strlen(real_44), 1, 60, &bs), 0);
	assert_int_equal(bs.packs[1].alarms, 0);
	assert_int_equal(bs.packs[1].warnings, 0);
	/* FET status 03: discharge and charge MOS on (§2.2 item 35) */
	assert_int_equal(bs.packs[1].requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_int_equal(bs.packs[1].updated_usec[BATTERY_GROUP_STATUS], 60);
}

/* the real 0x44 answer with its event codes set, per §2.2 items 30-35 */
static void test_document_alarm_bits(void **state)
{
	(void)state;
	/* INFO offsets: 29 balance, 30 voltage, 31-32 temperature, 33 current, 34 SOC, 35 FET */
	static const uint8_t at[] = { 29, 30, 31, 32, 33, 34, 35 };
	static const uint8_t val[] = {
		0x50, /* bit 4 cell difference alarm, bit 6 discharge MOS fault */
		0x06, /* bit 1 cell OV protection, bit 2 cell UV alarm */
		0x10, /* bit 12 MOSFET high temperature protection */
		0x41, /* bit 0 charge high temperature alarm, bit 6 discharge low temperature alarm */
		0x24, /* bit 2 discharge OC alarm, bit 5 output short circuit protection */
		0x01, /* bit 0 SOC low alarm */
		0x01, /* discharge MOS on, charge MOS off */
	};
	uint8_t f[200];
	size_t len = lp4_answer(real_44, at, val, sizeof(at), f, sizeof(f));

	assert_int_equal(ops->frame(STEP_ALARM, 1, f, len, NULL), (ssize_t)len);
	assert_int_equal(ops->decode(STEP_ALARM, f, len, 0, 70, &bs), 0);
	assert_int_equal(bs.packs[0].alarms,
			 BATTERY_ALARM_CELL_OVERVOLTAGE | BATTERY_ALARM_BMS_INTERNAL |
				 BATTERY_ALARM_MOSFET_OVERTEMP | BATTERY_ALARM_SHORT_CIRCUIT);
	assert_int_equal(bs.packs[0].warnings,
			 BATTERY_ALARM_CELL_IMBALANCE | BATTERY_ALARM_CELL_UNDERVOLTAGE |
				 BATTERY_ALARM_CHARGE_OVERTEMP | BATTERY_ALARM_DISCHARGE_UNDERTEMP |
				 BATTERY_ALARM_DISCHARGE_OVERCURRENT | BATTERY_ALARM_LOW_SOC);
	assert_int_equal(bs.packs[0].requests, BATTERY_REQUEST_DISCHARGE_ENABLE);
}

/* the other half of each pair, the lockouts, the fire event */
static void test_document_alarm_bits_2(void **state)
{
	(void)state;
	static const uint8_t at[] = { 29, 30, 31, 32, 33, 35 };
	static const uint8_t val[] = {
		0x20, /* bit 5 charge MOS fault */
		0xA9, /* bit 0 cell OV alarm, 3 cell UV prot, 5 pack OV prot, 7 pack UV prot */
		0x2F, /* bits 8-11 environment (not carried), bit 13 fire alarm event */
		0x92, /* bit 1 charge OT prot, bit 4 discharge OT alarm, bit 7 discharge UT prot */
		0xC1, /* bit 0 charge OC alarm, 6 level 2 OC lockout, 7 short circuit lockout */
		0x02, /* charge MOS on only */
	};
	uint8_t f[200];
	size_t len = lp4_answer(real_44, at, val, sizeof(at), f, sizeof(f));

	assert_int_equal(ops->decode(STEP_ALARM, f, len, 0, 80, &bs), 0);
	assert_int_equal(bs.packs[0].alarms,
			 BATTERY_ALARM_BMS_INTERNAL | BATTERY_ALARM_CELL_UNDERVOLTAGE |
				 BATTERY_ALARM_PACK_OVERVOLTAGE | BATTERY_ALARM_PACK_UNDERVOLTAGE |
				 BATTERY_ALARM_CHARGE_OVERTEMP | BATTERY_ALARM_DISCHARGE_UNDERTEMP |
				 BATTERY_ALARM_DISCHARGE_OVERCURRENT | BATTERY_ALARM_SHORT_CIRCUIT);
	assert_int_equal(bs.packs[0].warnings, BATTERY_ALARM_CELL_OVERVOLTAGE |
						       BATTERY_ALARM_DISCHARGE_OVERTEMP |
						       BATTERY_ALARM_CHARGE_OVERCURRENT);
	assert_int_equal(bs.packs[0].requests, BATTERY_REQUEST_CHARGE_ENABLE);
}

static void test_framing(void **state)
{
	(void)state;
	size_t skip = 0;
	uint8_t pace[64];
	ssize_t n;

	ydt_check_framing(ops, STEP_ANALOG, 0x01, real_42);
	ydt_check_framing(ops, STEP_ALARM, 0x01, real_44);
	ydt_check_framing(ops, STEP_ANALOG, 0x01, doc_42);
	/* the document's §2.2 example: LENGTH and CHKSUM both disagree */
	assert_int_equal(ops->frame(STEP_ALARM, 1, (const uint8_t *)doc_44, strlen(doc_44), &skip),
			 -EBADMSG);
	/* a CID1 0x46 answer (a Pace or Pylontech pack on the bus): not ours, skipped */
	n = pylon_rs485_request(0x20, 0x01, 0x00, NULL, 0, pace, sizeof(pace));
	assert_true(n > 0);
	skip = 0;
	assert_int_equal(ops->frame(STEP_ANALOG, 1, pace, (size_t)n, &skip), -ENOMSG);
	assert_int_equal(skip, (size_t)n);
}

static void test_truncated(void **state)
{
	(void)state;
	/* 101 INFO bytes, the first 63 needed (items 1-34, up to SOH) */
	assert_int_equal(ydt_check_truncations(ops, STEP_ANALOG, real_42), 63);
	/* 42 INFO bytes, the first 37 needed (items 1-36, up to the system status) */
	assert_int_equal(ydt_check_truncations(ops, STEP_ALARM, real_44), 37);
}

static void test_rtn_errors(void **state)
{
	(void)state;
	/* §1.4.2 response information: 02 CHKSUM error, 04 CID2 invalid */
	static const uint8_t rtn[] = { 0x02, 0x04 };

	for (unsigned i = 0; i < 2; i++) {
		static struct battery_state b, before;
		uint8_t f[64];
		ssize_t len =
			pylon_rs485_request_cid1(0x20, 0x03, 0x4A, rtn[i], NULL, 0, f, sizeof(f));

		battery_state_init(&b, 1);
		before = b;
		assert_int_equal(ops->frame(i, 0x03, f, (size_t)len, NULL), len);
		assert_int_equal(ops->decode(i, f, (size_t)len, 0, 5, &b), -EPROTO);
		assert_memory_equal(&b, &before, sizeof(b));
	}
}

static void test_impossible(void **state)
{
	(void)state;
	struct battery_state before = bs;
	uint8_t f[300];
	size_t len;
	/* INFO offsets in real_42: 2 M, 35 N, 52-53 remaining, 54-55 full, 59-60 SOC, 61-62 SOH */
	static const uint8_t soc_at[] = { 60 }, soc_val[] = { 101 };
	static const uint8_t soh_at[] = { 61, 62 }, soh_val[] = { 0x01, 0x00 };
	static const uint8_t full_at[] = { 54 }, full_val[] = { 0x00 };
	static const uint8_t m_at[] = { 2 }, m_val[] = { 0 };
	static const uint8_t n_at[] = { 35 }, n_val[] = { 9 };

	len = lp4_answer(real_42, soc_at, soc_val, 1, f, sizeof(f));
	assert_int_equal(ops->decode(STEP_ANALOG, f, len, 0, 7, &bs), -EBADMSG);
	len = lp4_answer(real_42, soh_at, soh_val, 2, f, sizeof(f));
	assert_int_equal(ops->decode(STEP_ANALOG, f, len, 0, 7, &bs), -EBADMSG);
	/* full capacity 0x0084 = 1.32 Ah under 86.17 Ah remaining */
	len = lp4_answer(real_42, full_at, full_val, 1, f, sizeof(f));
	assert_int_equal(ops->decode(STEP_ANALOG, f, len, 0, 7, &bs), -EBADMSG);
	len = lp4_answer(real_42, m_at, m_val, 1, f, sizeof(f));
	assert_int_equal(ops->decode(STEP_ANALOG, f, len, 0, 7, &bs), -EBADMSG);
	/* nine cell sensors: more than a pack carries */
	len = lp4_answer(real_42, n_at, n_val, 1, f, sizeof(f));
	assert_int_equal(ops->decode(STEP_ANALOG, f, len, 0, 7, &bs), -EBADMSG);
	assert_memory_equal(&bs, &before, sizeof(bs));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_real_analog),
		cmocka_unit_test(test_document_analog),
		cmocka_unit_test(test_real_alarm),
		cmocka_unit_test(test_document_alarm_bits),
		cmocka_unit_test(test_document_alarm_bits_2),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_rtn_errors),
		cmocka_unit_test(test_impossible),
	};

	return cmocka_run_group_tests_name("eg4-lifepower4", tests, setup, NULL);
}
