/* SPDX-License-Identifier: MIT */
/*
 * Pylontech RS485 as a BMS input (pylontech_rs485_bms_serial): the real
 * US2000B Plus answers of Tomcat42/pylontech-python
 * examples/lowLevelRS485/output.txt (tests/data/pylontech-rs485-us2000bplus.txt)
 * decoded field by field, the framing contract of ->frame(), truncated and
 * error answers, and the self-check: our own pylontech-rs485 output, polled
 * and decoded, gives back the state it was made from.
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
	static const uint8_t neg_ccl[] = { 0x02, 0xD0, 0x02, 0xB7, 0x98, 0xFF, 0x06, 0xFF, 0x06, 0xC0 };
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
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_rtn_errors),
		cmocka_unit_test(test_impossible),
		cmocka_unit_test(test_roundtrip_50ah),
		cmocka_unit_test(test_roundtrip_280ah),
	};

	return cmocka_run_group_tests_name("pylontech-rs485-bms", tests, setup, NULL);
}
