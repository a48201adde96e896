/* SPDX-License-Identifier: MIT */
/*
 * Pylontech RS485 as a BMS input (pylontech_rs485_bms_serial): the real
 * US2000B Plus answers of Tomcat42/pylontech-python
 * examples/lowLevelRS485/output.txt (tests/data/pylontech-rs485-us2000bplus.txt)
 * and the real UP2500 / US3000 / US2000 answers of
 * tests/data/pylontech-rs485-golden.txt decoded field by field, the framing contract of ->frame(), truncated and
 * error answers, and the self-check: our own pylontech-rs485 output, polled
 * and decoded, gives back the state it was made from.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "battery.h"
#include "bms.h"
#include "bms_serial.h"
#include "protocol.h"
#include "ydt1363-helpers.h"

static const struct bms_serial_ops *ops = &pylontech_rs485_bms_serial;

enum { STEP_ANALOG, STEP_ALARMS, STEP_MANAGEMENT };

/* Tomcat42/pylontech-python examples/lowLevelRS485/output.txt, a US2000B Plus at ADR 2 */
static const char us2k_42[] =
	"~20024600C06E00020F0D1F0D200D200D200D200D200D210D200D200D210D220D200D220D220D21050BCD"
	"0BAF0BAF0BAF0BAF0015C4E88AAC02C350004FE594\r";
static const char us2k_44[] =
	"~20024600C04000020F000000000000000000000000000000050000000000000000000E800000F161\r";
static const char us2k_92[] = "~20024600B01402D002B79800FAFF06C0F92D\r";

static struct battery_state bs;

static int setup(void **state)
{
	(void)state;
	battery_state_init(&bs, 2);
	return 0;
}

static int decode(unsigned step, const char *ans, unsigned pack)
{
	return ops->decode(step, (const uint8_t *)ans, strlen(ans), pack, 1000, &bs);
}

static void test_requests(void **state)
{
	(void)state;
	uint8_t buf[64];

	/* "Master Battery ~20024642E00202FD33" (meteosat007/solar-pylontech README) */
	assert_int_equal(ops->request(STEP_ANALOG, 0x02, buf, sizeof(buf)), 20);
	assert_memory_equal(buf, "~20024642E00202FD33\r", 20);
	/* the same shape for 0x44 and 0x92, checked by our own header reader */
	for (unsigned step = 0; step < ops->n_steps; step++) {
		static const uint8_t cid2[] = { 0x42, 0x44, 0x92 };
		struct pylon_rs485_head h;
		ssize_t n = ops->request(step, 0x05, buf, sizeof(buf));

		assert_int_equal(n, 20);
		assert_int_equal(pylon_rs485_peek(buf, (size_t)n, &h), 0);
		assert_true(h.chksum_ok && h.length_ok);
		assert_int_equal(h.ver, 0x20);
		assert_int_equal(h.adr, 0x05);
		assert_int_equal(h.cid1, 0x46);
		assert_int_equal(h.cid2, cid2[step]);
		assert_memory_equal(&buf[13], "05", 2); /* INFO: command value = ADR */
	}
	assert_int_equal(ops->request(STEP_ANALOG, 2, buf, 18), -ENOBUFS);
	assert_int_equal(ops->request(ops->n_steps, 2, buf, sizeof(buf)), 0);
	assert_int_equal(ops->address_min, 2);
	assert_int_equal(ops->baud, 9600);
}

/* US2000B Plus 0x42 (Tomcat42/pylontech-python output.txt, `~20024642C0040202FCD1`) */
static void test_us2000bplus_analog(void **state)
{
	(void)state;
	static const uint16_t cells[15] = { 3359, 3360, 3360, 3360, 3360, 3360, 3361, 3360,
					    3360, 3361, 3362, 3360, 3362, 3362, 3361 };
	const struct battery_pack *p = &bs.packs[1];

	assert_int_equal(decode(STEP_ANALOG, us2k_42, 1), 0);
	assert_int_equal(p->cell_count, 15);
	for (unsigned i = 0; i < 15; i++) {
		assert_int_equal(p->cell_mv[i], cells[i]);
	}
	assert_int_equal(p->cell_min_mv, 3359);
	assert_int_equal(p->cell_min_idx, 0);
	assert_int_equal(p->cell_max_mv, 3362);
	assert_int_equal(p->mosfet_temp_dc, 290); /* 0x0BCD = 3021 (0.1 K) - 2731: BMS board */
	assert_int_equal(p->temp_count, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(p->temp_dc[i], 260); /* 0x0BAF = 2991 */
	}
	assert_int_equal(p->current_ma, 2100);	/* 0x0015 = 21 x 100 mA, charging */
	assert_int_equal(p->voltage_mv, 50408); /* 0xC4E8 */
	assert_int_equal(p->remaining_mah, 35500);
	assert_int_equal(p->full_mah, 50000);
	assert_int_equal(p->cycles, 79);
	assert_int_equal(p->soc_pct, 71); /* 35500 / 50000 */
	for (unsigned g = BATTERY_GROUP_ELECTRICAL; g <= BATTERY_GROUP_TEMPS; g++) {
		assert_int_equal(p->updated_usec[g], 1000);
	}
	assert_int_equal(p->updated_usec[BATTERY_GROUP_LIMITS], 0);
	assert_int_equal(bs.packs[0].updated_usec[BATTERY_GROUP_CELLS], 0);
}

/* US2000B Plus 0x44 (same capture, `~20024644C0040201FCD0`): all normal, MOSFETs on */
static void test_us2000bplus_alarms(void **state)
{
	(void)state;
	bs.packs[0].alarms = BATTERY_ALARM_CELL_OVERVOLTAGE;
	bs.packs[0].warnings = BATTERY_ALARM_LOW_SOC;
	assert_int_equal(decode(STEP_ALARMS, us2k_44, 0), 0);
	assert_int_equal(bs.packs[0].alarms, 0);
	assert_int_equal(bs.packs[0].warnings, 0);
	assert_int_equal(bs.packs[0].updated_usec[BATTERY_GROUP_STATUS], 1000);
}

/* US2000B Plus 0x92 (same capture, `~20024692C0040201FCCD`) */
static void test_us2000bplus_management(void **state)
{
	(void)state;
	const struct battery_pack *p = &bs.packs[0];

	assert_int_equal(decode(STEP_MANAGEMENT, us2k_92, 0), 0);
	assert_int_equal(p->charge_voltage_limit_mv, 53250);
	assert_int_equal(p->discharge_voltage_limit_mv, 47000);
	assert_int_equal(p->charge_current_limit_ma, 25000);
	assert_int_equal(p->discharge_current_limit_ma, 25000); /* 0xFF06 = -25.0 A */
	assert_int_equal(p->requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_int_equal(p->updated_usec[BATTERY_GROUP_LIMITS], 1000);
	assert_int_equal(p->updated_usec[BATTERY_GROUP_STATUS], 1000);
}

/*
 * Two more real 0x42 answers, both with P = 4 (the 24-bit capacities of
 * §3.3) and an INFOFLAG set, from tests/data/pylontech-rs485-golden.txt:
 * a UP2500 (Frankkkkk/python-pylontech tests/test_basic.py
 * test_up2500_1module_status_info_parsing_1) and a US3000 master
 * (meteosat007/solar-pylontech README.md "Get analog Values").
 */
static const char up2500_42[] =
	"~20024600D05E1002080D020D020D020D030D000D010D010D03050B7D0B690B690B690B73FFFA680EFFFF04"
	"FFFF00000174E401B198E906\r";
static const char us3000_42[] =
	"~20024600F07A11020F0CC50CC30CC50CC40CC40CC60CC50CC40CC70CC50CC60CC60CC50CC60CC6050B370B"
	"230B230B2D0B2DFFE0BF8DFFFF04FFFF001B00BBE4012110E1D6\r";

static void test_up2500_analog(void **state)
{
	(void)state;
	static const uint16_t cells[8] = { 3330, 3330, 3330, 3331, 3328, 3329, 3329, 3331 };
	const struct battery_pack *p = &bs.packs[0];

	assert_int_equal(ops->frame(STEP_ANALOG, 2, (const uint8_t *)up2500_42, strlen(up2500_42),
				    NULL),
			 (ssize_t)strlen(up2500_42));
	assert_int_equal(decode(STEP_ANALOG, up2500_42, 0), 0);
	assert_int_equal(p->cell_count, 8);
	assert_memory_equal(p->cell_mv, cells, sizeof(cells));
	assert_int_equal(p->mosfet_temp_dc, 210); /* 0x0B7D = 2941 */
	assert_int_equal(p->temp_count, 4);
	assert_int_equal(p->temp_dc[0], 190);
	assert_int_equal(p->temp_dc[3], 200);
	assert_int_equal(p->current_ma, -600); /* 0xFFFA: -0.6 A (python-pylontech ToAmp) */
	assert_int_equal(p->voltage_mv, 26638);
	assert_int_equal(p->remaining_mah, 95460); /* 0x0174E4, the 16-bit field says FFFF */
	assert_int_equal(p->full_mah, 111000);	   /* 0x01B198: 111 Ah */
	assert_int_equal(p->cycles, 0);
	assert_int_equal(p->soc_pct, 86);
}

static void test_us3000_analog(void **state)
{
	(void)state;
	const struct battery_pack *p = &bs.packs[1];

	assert_int_equal(decode(STEP_ANALOG, us3000_42, 1), 0);
	assert_int_equal(p->cell_count, 15);
	assert_int_equal(p->cell_mv[0], 3269);
	assert_int_equal(p->cell_mv[8], 3271);
	assert_int_equal(p->cell_min_mv, 3267);
	assert_int_equal(p->cell_min_idx, 1);
	assert_int_equal(p->cell_max_mv, 3271);
	assert_int_equal(p->cell_max_idx, 8);
	assert_int_equal(p->mosfet_temp_dc, 140); /* 0x0B37 */
	assert_int_equal(p->temp_min_dc, 120);
	assert_int_equal(p->temp_max_dc, 130);
	assert_int_equal(p->current_ma, -3200); /* 0xFFE0: discharging 3.2 A */
	assert_int_equal(p->voltage_mv, 49037);
	assert_int_equal(p->remaining_mah, 48100);
	assert_int_equal(p->full_mah, 74000); /* "74 Ah" */
	assert_int_equal(p->cycles, 27);
	assert_int_equal(p->soc_pct, 65);
}

/*
 * Real 0x44 and 0x92 INFO logged by their sources (tests/data/
 * pylontech-rs485-golden.txt names them), framed here; the alarm answers
 * end with one more 00 than §3.5 lists, which is read past.
 */
static void test_golden_info(void **state)
{
	(void)state;
	static const struct {
		unsigned step;
		const char *info;
		uint32_t cvl, dvl, ccl, dcl, requests;
	} cases[] = {
		/* us2000-alarms-idle, us3000-alarms-discharging: no alarm */
		{ STEP_ALARMS,
		  "00020F000000000000000000000000000000050000000000000000000E0000000000" },
		{ STEP_ALARMS,
		  "00020F00000000000000000000000000000006000000000000000000000E4000000000" },
		/* up2500-management: 28.4 V, 23.2 V, 55.5 A, -55.5 A, C0 */
		{ STEP_MANAGEMENT, "026EF05AA0022BFDD5C0", 28400, 23200, 55500, 55500,
		  BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE },
		/* us2000-management-80a: 53.25 V, 45.0 V, 80 A, -80 A, C0 */
		{ STEP_MANAGEMENT, "02D002AFC80320FCE0C0", 53250, 45000, 80000, 80000,
		  BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t info[64], f[200];
		size_t n = strlen(cases[i].info) / 2;
		ssize_t len;
		const struct battery_pack *p = &bs.packs[0];

		for (size_t k = 0; k < n; k++) {
			unsigned v;

			assert_int_equal(sscanf(&cases[i].info[2 * k], "%2x", &v), 1);
			info[k] = (uint8_t)v;
		}
		len = pylon_rs485_request(0x20, 0x02, 0x00, info, n, f, sizeof(f));
		assert_true(len > 0);
		bs.packs[0].alarms = BATTERY_ALARM__ALL;
		assert_int_equal(ops->decode(cases[i].step, f, (size_t)len, 0, 500 + i, &bs), 0);
		if (cases[i].step == STEP_ALARMS) {
			assert_int_equal(p->alarms, 0);
			assert_int_equal(p->warnings, 0);
		} else {
			assert_int_equal(p->charge_voltage_limit_mv, cases[i].cvl);
			assert_int_equal(p->discharge_voltage_limit_mv, cases[i].dvl);
			assert_int_equal(p->charge_current_limit_ma, cases[i].ccl);
			assert_int_equal(p->discharge_current_limit_ma, cases[i].dcl);
			assert_int_equal(p->requests, cases[i].requests);
		}
		assert_int_equal(p->updated_usec[BATTERY_GROUP_STATUS], 500 + i);
	}
}

static void test_framing(void **state)
{
	(void)state;
	ydt_check_framing(ops, STEP_ANALOG, 0x02, us2k_42);
	ydt_check_framing(ops, STEP_ALARMS, 0x02, us2k_44);
	ydt_check_framing(ops, STEP_MANAGEMENT, 0x02, us2k_92);
}

static void test_truncated(void **state)
{
	(void)state;
	/* 55 INFO bytes: everything short of the cycle count is refused */
	assert_int_equal(ydt_check_truncations(ops, STEP_ANALOG, us2k_42), 55);
	assert_int_equal(ydt_check_truncations(ops, STEP_ALARMS, us2k_44), 32);
	assert_int_equal(ydt_check_truncations(ops, STEP_MANAGEMENT, us2k_92), 10);
}

static void test_rtn_errors(void **state)
{
	(void)state;
	/* V3.3 §2.5.2: 0x04 CID2 invalid (a pack without 0x92), 0x90 ADR error */
	ydt_check_rtn_error(ops, STEP_MANAGEMENT, 0x20, 0x02, 0x04);
	ydt_check_rtn_error(ops, STEP_ANALOG, 0x20, 0x03, 0x90);
}

/* impossible content in a well-framed answer: -EBADMSG, nothing written */
static void test_impossible(void **state)
{
	(void)state;
	static const uint8_t zero_cells[] = { 0x00, 0x02, 0x00 };
	static const uint8_t too_many[] = { 0x00, 0x02, 0x21 };
	static const uint8_t neg_ccl[] = { 0x02, 0xD0, 0x02, 0xB7, 0x98,
					   0xFF, 0x06, 0xFF, 0x06, 0xC0 };
	struct battery_state before;
	uint8_t f[128];
	ssize_t n;

	before = bs;
	n = pylon_rs485_request(0x20, 2, 0x00, zero_cells, sizeof(zero_cells), f, sizeof(f));
	assert_int_equal(ops->decode(STEP_ANALOG, f, (size_t)n, 0, 7, &bs), -EBADMSG);
	n = pylon_rs485_request(0x20, 2, 0x00, too_many, sizeof(too_many), f, sizeof(f));
	assert_int_equal(ops->decode(STEP_ANALOG, f, (size_t)n, 0, 7, &bs), -EBADMSG);
	n = pylon_rs485_request(0x20, 2, 0x00, neg_ccl, sizeof(neg_ccl), f, sizeof(f));
	assert_int_equal(ops->decode(STEP_MANAGEMENT, f, (size_t)n, 0, 7, &bs), -EBADMSG);
	assert_int_equal(ops->decode(STEP_ANALOG, (const uint8_t *)"~\r", 2, 0, 7, &bs), -EBADMSG);
	assert_int_equal(ops->decode(STEP_ANALOG, (const uint8_t *)us2k_42, strlen(us2k_42), 15, 7,
				     &bs),
			 -EBADMSG); /* pack index out of range */
	assert_memory_equal(&bs, &before, sizeof(bs));
}

/* the self-check: our pylontech-rs485 output read back by our input */
static void roundtrip(uint32_t full_mah)
{
	const struct inverter_protocol *proto = protocol_find("pylontech-rs485");
	const struct protocol_options opt = { .rs485_address = 1 }; /* ADR 0x02 */
	static struct battery_state src, dst;
	struct battery_pack *b = &src.bank;
	uint8_t req[64], rsp[PROTOCOL_RS485_MAX];

	assert_non_null(proto);
	battery_state_init(&src, 1);
	battery_state_init(&dst, 1);
	b->cell_count = 16;
	for (unsigned i = 0; i < 16; i++) {
		b->cell_mv[i] = (uint16_t)(3280 + 3 * i);
	}
	battery_pack_update_cell_extremes(b);
	b->temp_count = 4;
	for (unsigned i = 0; i < 4; i++) {
		b->temp_dc[i] = (int16_t)(-50 + 40 * (int)i);
	}
	battery_pack_update_temp_extremes(b);
	b->mosfet_temp_dc = 312;
	b->voltage_mv = 52960;
	b->current_ma = -12300;
	b->full_mah = full_mah;
	b->remaining_mah = full_mah / 4 * 3;
	b->soc_pct = 75;
	b->cycles = 321;
	b->charge_voltage_limit_mv = 55200;
	b->discharge_voltage_limit_mv = 48000;
	b->charge_current_limit_ma = 37000;
	b->discharge_current_limit_ma = 100000;
	b->requests = BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_FULL_CHARGE;
	b->alarms = BATTERY_ALARM_CELL_OVERVOLTAGE | BATTERY_ALARM_PACK_UNDERVOLTAGE |
		    BATTERY_ALARM_CHARGE_OVERCURRENT | BATTERY_ALARM_MOSFET_OVERTEMP;
	for (unsigned g = 0; g < BATTERY_GROUP__COUNT; g++) {
		battery_pack_mark(b, (enum battery_group)g, 1);
	}

	for (unsigned step = 0; step < ops->n_steps; step++) {
		ssize_t nq = ops->request(step, 0x02, req, sizeof(req));
		ssize_t nr, nf;

		assert_true(nq > 0);
		nr = proto->respond(&opt, &src, req, (size_t)nq, rsp, sizeof(rsp));
		assert_true(nr > 0);
		nf = ops->frame(step, 0x02, rsp, (size_t)nr, NULL);
		assert_int_equal(nf, nr);
		assert_int_equal(ops->decode(step, rsp, (size_t)nf, 0, 99, &dst), 0);
	}
	const struct battery_pack *p = &dst.packs[0];
	assert_int_equal(p->cell_count, 16);
	assert_memory_equal(p->cell_mv, b->cell_mv, sizeof(b->cell_mv[0]) * 16);
	assert_int_equal(p->temp_count, 4);
	assert_memory_equal(p->temp_dc, b->temp_dc, sizeof(b->temp_dc[0]) * 4);
	assert_int_equal(p->mosfet_temp_dc, 312);
	assert_int_equal(p->voltage_mv, 52960);
	assert_int_equal(p->current_ma, -12300);
	assert_int_equal(p->full_mah, full_mah);
	assert_int_equal(p->remaining_mah, full_mah / 4 * 3);
	assert_int_equal(p->soc_pct, 75);
	assert_int_equal(p->cycles, 321);
	assert_int_equal(p->charge_voltage_limit_mv, 55200);
	assert_int_equal(p->discharge_voltage_limit_mv, 48000);
	assert_int_equal(p->charge_current_limit_ma, 37000);
	assert_int_equal(p->discharge_current_limit_ma, 100000);
	assert_int_equal(p->requests, b->requests);
	assert_int_equal(p->alarms, b->alarms);
	assert_int_equal(p->warnings, 0);
}

static void test_roundtrip_50ah(void **state)
{
	(void)state;
	roundtrip(50000);
}

static void test_roundtrip_280ah(void **state)
{
	(void)state;
	roundtrip(280000); /* > 65 Ah: the 24-bit capacities of §3.3 (P = 4) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_us2000bplus_analog),
		cmocka_unit_test(test_us2000bplus_alarms),
		cmocka_unit_test(test_us2000bplus_management),
		cmocka_unit_test(test_up2500_analog),
		cmocka_unit_test(test_us3000_analog),
		cmocka_unit_test(test_golden_info),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_rtn_errors),
		cmocka_unit_test(test_impossible),
		cmocka_unit_test(test_roundtrip_50ah),
		cmocka_unit_test(test_roundtrip_280ah),
	};

	return cmocka_run_group_tests_name("pylontech-rs485-bms", tests, setup, NULL);
}
