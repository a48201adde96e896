/* SPDX-License-Identifier: MIT */
/*
 * Pace BMS Modbus (protocols/pace_modbus.c). DOCUMENT ONLY: no real
 * exchange of a Pace board in Modbus mode is published with its source,
 * so every answer here is built in this file, field by field, from
 * "PACE BMS Modbus Protocol for RS485" V1.3 §4.1 (PM), with an
 * independent CRC (PM §1). The one real frame is a request: "01 03 00 00
 * 00 25 84 11", the same read logged from another Modbus BMS (a BLE
 * capture in a public notes file), which pins the CRC byte order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "battery.h"
#include "bms_serial.h"

#define T_NOW UINT64_C(5000000)
#define ANS_LEN (3 + 74 + 2)

static const struct bms_serial_ops *ops = &pace_modbus_serial;

/* PM §1: CRC-16 over all bytes before it, the table-free form */
static uint16_t crc16(const uint8_t *p, size_t n)
{
	uint16_t crc = 0xFFFF;

	while (n--) {
		crc ^= *p++;
		for (int i = 0; i < 8; i++) {
			crc = (uint16_t)((crc & 1) ? (crc >> 1) ^ 0xA001 : crc >> 1);
		}
	}
	return crc;
}

static void seal(uint8_t *f, size_t n)
{
	uint16_t c = crc16(f, n - 2);

	f[n - 2] = (uint8_t)(c & 0xFF); /* low byte first (PM §3.1 "CRC (Lo) CRC (Hi)") */
	f[n - 1] = (uint8_t)(c >> 8);
}

static void set_reg(uint8_t *f, unsigned reg, uint16_t v)
{
	f[3 + 2 * reg] = (uint8_t)(v >> 8);
	f[3 + 2 * reg + 1] = (uint8_t)v;
}

/*
 * A 16S pack at address 1, PM §4.1 register by register: discharging
 * 12.34 A, 52.90 V, SOC 87 %, SOH 98 %, 87.00 of 100.00 Ah (design
 * 105.00), 123 cycles, cells 3300 + i mV, cell sensors 25.0 25.1 24.9
 * 25.2 degC, MOSFET 30.0, environment 28.0 degC, both MOSFETs on.
 */
static void doc_answer(uint8_t *f, uint8_t address)
{
	memset(f, 0, ANS_LEN);
	f[0] = address;
	f[1] = 0x03;
	f[2] = 74;
	set_reg(f, 0, (uint16_t)-1234);
	set_reg(f, 1, 5290);
	set_reg(f, 2, 87);
	set_reg(f, 3, 98);
	set_reg(f, 4, 8700);
	set_reg(f, 5, 10000);
	set_reg(f, 6, 10500);
	set_reg(f, 7, 123);
	set_reg(f, 11, 0x0C00); /* status: charging and discharging MOSFET on */
	for (unsigned i = 0; i < 16; i++) {
		set_reg(f, 15 + i, (uint16_t)(3300 + i));
	}
	set_reg(f, 31, 250);
	set_reg(f, 32, 251);
	set_reg(f, 33, 249);
	set_reg(f, 34, 252);
	set_reg(f, 35, 300);
	set_reg(f, 36, 280);
	seal(f, ANS_LEN);
}

static int run(const uint8_t *f, size_t n, uint8_t address, unsigned pack, struct battery_state *bs)
{
	size_t skip = 0;
	ssize_t k = ops->frame(0, address, f, n, &skip);

	if (k < 0) {
		return (int)k;
	}
	assert_int_equal(k, (ssize_t)n);
	return ops->decode(0, f, n, pack, T_NOW, bs);
}

static void test_request(void **state)
{
	static const uint8_t real[8] = { 0x01, 0x03, 0x00, 0x00, 0x00, 0x25, 0x84, 0x11 };
	uint8_t buf[16], want[8] = { 0x0F, 0x03, 0x00, 0x00, 0x00, 0x25 };

	(void)state;
	assert_int_equal(ops->n_steps, 1);
	assert_int_equal(ops->baud, 9600);
	assert_int_equal(ops->request(0, 1, buf, sizeof(buf)), 8);
	assert_memory_equal(buf, real, 8);
	assert_int_equal(ops->request(0, 15, buf, sizeof(buf)), 8);
	seal(want, 8);
	assert_memory_equal(buf, want, 8);
	assert_int_equal(ops->request(0, 0, buf, sizeof(buf)), -EINVAL); /* broadcast */
	assert_int_equal(ops->request(0, 16, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ops->request(1, 1, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ops->request(0, 1, buf, 7), -ENOBUFS);
}

static void test_doc_answer(void **state)
{
	uint8_t f[ANS_LEN];
	struct battery_state bs;
	const struct battery_pack *p = &bs.packs[1];

	(void)state;
	doc_answer(f, 2);
	battery_state_init(&bs, 2);
	assert_int_equal(run(f, sizeof(f), 2, 1, &bs), 0);
	assert_int_equal(p->current_ma, -12340);
	assert_int_equal(p->voltage_mv, 52900);
	assert_int_equal(p->soc_pct, 87);
	assert_int_equal(p->soh_pct, 98);
	assert_int_equal(p->remaining_mah, 87000);
	assert_int_equal(p->full_mah, 100000);
	assert_int_equal(p->cycles, 123);
	assert_int_equal(p->cell_count, 16);
	assert_int_equal(p->cell_mv[0], 3300);
	assert_int_equal(p->cell_mv[15], 3315);
	assert_int_equal(p->cell_min_mv, 3300);
	assert_int_equal(p->cell_min_idx, 0);
	assert_int_equal(p->cell_max_mv, 3315);
	assert_int_equal(p->cell_max_idx, 15);
	assert_int_equal(p->temp_count, 4);
	assert_int_equal(p->temp_dc[2], 249);
	assert_int_equal(p->temp_min_dc, 249);
	assert_int_equal(p->temp_max_dc, 252);
	assert_int_equal(p->mosfet_temp_dc, 300);
	assert_int_equal(p->requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_int_equal(p->alarms | p->warnings, 0);
	for (unsigned g = BATTERY_GROUP_ELECTRICAL; g <= BATTERY_GROUP_TEMPS; g++) {
		if (g != BATTERY_GROUP_LIMITS) {
			assert_int_equal(p->updated_usec[g], T_NOW);
		}
	}
	assert_int_equal(p->updated_usec[BATTERY_GROUP_STATUS], T_NOW);
	assert_false(battery_pack_has(p, BATTERY_GROUP_LIMITS));
	assert_false(battery_pack_has(&bs.packs[0], BATTERY_GROUP_ELECTRICAL));
}

/* PM §4.1 descriptions 1-3, every bit */
static void test_flags(void **state)
{
	static const uint32_t warning[16] = {
		BATTERY_ALARM_CELL_OVERVOLTAGE,
		BATTERY_ALARM_CELL_UNDERVOLTAGE,
		BATTERY_ALARM_PACK_OVERVOLTAGE,
		BATTERY_ALARM_PACK_UNDERVOLTAGE,
		BATTERY_ALARM_CHARGE_OVERCURRENT,
		BATTERY_ALARM_DISCHARGE_OVERCURRENT,
		0,
		0,
		BATTERY_ALARM_CHARGE_OVERTEMP,
		BATTERY_ALARM_DISCHARGE_OVERTEMP,
		BATTERY_ALARM_CHARGE_UNDERTEMP,
		BATTERY_ALARM_DISCHARGE_UNDERTEMP,
		0,
		0,
		BATTERY_ALARM_MOSFET_OVERTEMP,
		BATTERY_ALARM_LOW_SOC,
	};
	static const uint32_t protection[16] = {
		BATTERY_ALARM_CELL_OVERVOLTAGE,
		BATTERY_ALARM_CELL_UNDERVOLTAGE,
		BATTERY_ALARM_PACK_OVERVOLTAGE,
		BATTERY_ALARM_PACK_UNDERVOLTAGE,
		BATTERY_ALARM_CHARGE_OVERCURRENT,
		BATTERY_ALARM_DISCHARGE_OVERCURRENT,
		BATTERY_ALARM_SHORT_CIRCUIT,
		BATTERY_ALARM_PACK_OVERVOLTAGE,
		BATTERY_ALARM_CHARGE_OVERTEMP,
		BATTERY_ALARM_DISCHARGE_OVERTEMP,
		BATTERY_ALARM_CHARGE_UNDERTEMP,
		BATTERY_ALARM_DISCHARGE_UNDERTEMP,
		BATTERY_ALARM_MOSFET_OVERTEMP,
		0,
		0,
		0,
	};
	uint8_t f[ANS_LEN];
	struct battery_state bs;
	const struct battery_pack *p = &bs.packs[0];

	(void)state;
	for (unsigned bit = 0; bit < 16; bit++) {
		doc_answer(f, 1);
		set_reg(f, 9, (uint16_t)(1u << bit));
		seal(f, sizeof(f));
		battery_state_init(&bs, 1);
		assert_int_equal(run(f, sizeof(f), 1, 0, &bs), 0);
		assert_int_equal(p->warnings, warning[bit]);
		assert_int_equal(p->alarms, 0);

		doc_answer(f, 1);
		set_reg(f, 10, (uint16_t)(1u << bit));
		seal(f, sizeof(f));
		battery_state_init(&bs, 1);
		assert_int_equal(run(f, sizeof(f), 1, 0, &bs), 0);
		assert_int_equal(p->alarms, protection[bit]);
		assert_int_equal(p->warnings, 0);

		/* status/fault: bits 0-2, 4, 5 are faults; 10, 11 the MOSFETs */
		doc_answer(f, 1);
		set_reg(f, 11, (uint16_t)(1u << bit));
		seal(f, sizeof(f));
		battery_state_init(&bs, 1);
		assert_int_equal(run(f, sizeof(f), 1, 0, &bs), 0);
		assert_int_equal(p->alarms, (0x0037u >> bit) & 1 ? BATTERY_ALARM_BMS_INTERNAL : 0);
		assert_int_equal(p->requests, bit == 10	  ? BATTERY_REQUEST_CHARGE_ENABLE
					      : bit == 11 ? BATTERY_REQUEST_DISCHARGE_ENABLE
							  : 0);
	}
}

/* a 15S pack leaves cell 16 at 0; an invalid MOSFET sensor (BMS-4820, PM V1.1) */
static void test_15s_no_mosfet(void **state)
{
	uint8_t f[ANS_LEN];
	struct battery_state bs;

	(void)state;
	doc_answer(f, 1);
	set_reg(f, 30, 0);
	set_reg(f, 35, 0x8000);
	seal(f, sizeof(f));
	battery_state_init(&bs, 1);
	assert_int_equal(run(f, sizeof(f), 1, 0, &bs), 0);
	assert_int_equal(bs.packs[0].cell_count, 15);
	assert_int_equal(bs.packs[0].cell_max_mv, 3314);
	assert_int_equal(bs.packs[0].mosfet_temp_dc, BATTERY_TEMP_NONE);
}

static void test_framing(void **state)
{
	uint8_t f[ANS_LEN], req[8], exc[5] = { 0x01, 0x83, 0x02 };
	size_t skip = 0;

	(void)state;
	doc_answer(f, 1);
	for (size_t i = 0; i < sizeof(f); i++) {
		assert_int_equal(ops->frame(0, 1, f, i, &skip), 0);
	}
	/* another pack's answer: skipped whole */
	assert_int_equal(ops->frame(0, 2, f, sizeof(f), &skip), -ENOMSG);
	assert_int_equal(skip, sizeof(f));
	/* our request echoed by a two-wire adapter */
	assert_int_equal(ops->request(0, 1, req, sizeof(req)), 8);
	assert_int_equal(ops->frame(0, 1, req, 5, &skip), 0);
	assert_int_equal(ops->frame(0, 1, req, 8, &skip), -ENOMSG);
	assert_int_equal(skip, 8);
	/* another master's read of pack 3 */
	assert_int_equal(ops->request(0, 3, req, sizeof(req)), 8);
	assert_int_equal(ops->frame(0, 1, req, 8, &skip), -ENOMSG);
	/* PM §3.3 exception, ours and another's */
	seal(exc, sizeof(exc));
	assert_int_equal(ops->frame(0, 1, exc, sizeof(exc), &skip), 5);
	assert_int_equal(ops->frame(0, 2, exc, sizeof(exc), &skip), -ENOMSG);
	/* a function we never ask for; a broken CRC */
	f[1] = 0x04;
	assert_int_equal(ops->frame(0, 1, f, sizeof(f), &skip), -EBADMSG);
	doc_answer(f, 1);
	f[40] ^= 1;
	assert_int_equal(ops->frame(0, 1, f, sizeof(f), &skip), -EBADMSG);
}

static void test_malformed(void **state)
{
	static const struct {
		unsigned reg;
		uint16_t v;
	} bad[] = {
		{ 2, 101 },		/* SOC */
		{ 3, 101 },		/* SOH */
		{ 20, 5001 },		/* a cell above 5 V */
		{ 31, 1501 },		/* a cell sensor at 150.1 degC */
		{ 34, (uint16_t)-501 }, /* -50.1 degC */
	};
	uint8_t f[ANS_LEN], exc[5] = { 0x01, 0x83, 0x02 };
	struct battery_state bs, fresh;

	(void)state;
	battery_state_init(&bs, 1);
	battery_state_init(&fresh, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		doc_answer(f, 1);
		set_reg(f, bad[i].reg, bad[i].v);
		seal(f, sizeof(f));
		assert_int_equal(run(f, sizeof(f), 1, 0, &bs), -EBADMSG);
	}
	/* a short answer, a byte count other than 74 */
	doc_answer(f, 1);
	assert_int_equal(ops->decode(0, f, sizeof(f) - 1, 0, T_NOW, &bs), -EBADMSG);
	f[2] = 72;
	seal(f, sizeof(f) - 2);
	assert_int_equal(ops->decode(0, f, sizeof(f) - 2, 0, T_NOW, &bs), -EBADMSG);
	/* the BMS's exception answer (PM §3.3) */
	seal(exc, sizeof(exc));
	assert_int_equal(ops->decode(0, exc, sizeof(exc), 0, T_NOW, &bs), -EPROTO);
	assert_memory_equal(&bs, &fresh, sizeof(bs));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request), cmocka_unit_test(test_doc_answer),
		cmocka_unit_test(test_flags),	cmocka_unit_test(test_15s_no_mosfet),
		cmocka_unit_test(test_framing), cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests_name("pace-modbus", tests, NULL, NULL);
}
