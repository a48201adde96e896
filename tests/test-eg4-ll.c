/* SPDX-License-Identifier: MIT */
/*
 * EG4-LL on RS485 Modbus (protocols/eg4_ll.c). DOCUMENT ONLY: no real
 * exchange of an EG4-LL pack is published together with what the pack
 * showed at the time, so every answer here is built in this file, field by
 * field, from "EG4-LL Battery MODBUS Protocol" V01.06 §3 (LL), with an
 * independent CRC. The one real frame is a request: "01 03 00 00 00 27 05
 * D0", the same read of registers 0-38 logged from an EG4 pack over BLE
 * (patman15/aiobmsble tests/bms/test_eg4_bms.py, CMD_STATUS), which pins
 * the CRC byte order.
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
#define ANS_LEN (3 + 78 + 2)

static const struct bms_serial_ops *ops = &eg4_ll_serial;

/* the Modbus CRC-16 over all bytes before it, bit by bit */
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

	f[n - 2] = (uint8_t)(c & 0xFF); /* LL §1.3.2 "CRC (Lo) CRC (Hi)" */
	f[n - 1] = (uint8_t)(c >> 8);
}

static void set_reg(uint8_t *f, unsigned reg, uint16_t v)
{
	f[3 + 2 * reg] = (uint8_t)(v >> 8);
	f[3 + 2 * reg + 1] = (uint8_t)v;
}

/*
 * A 16S pack, LL §3 register by register: charging 12.34 A ("0~32767:
 * Charge", 10 mA), 53.20 V (10 mV), cells 3320 + i mV, PCB 31 degC, avg
 * 25, max 27, "Cap Remaining" 7777 and "Max charging Current" 9999 (no
 * unit: unused), SOH 98 %, SOC 87 %, status 0x0001 (charging), 123 cycles
 * (ULONG), full capacity 100 Ah = 360000000 mAs (ULONG), sensors 25 24 -3
 * 26 and two unfitted (0), 16 cells, design 100.0 Ah (0.1 Ah).
 */
static void doc_answer(uint8_t *f, uint8_t address)
{
	memset(f, 0, ANS_LEN);
	f[0] = address;
	f[1] = 0x03;
	f[2] = 78;
	set_reg(f, 0, 5320);
	set_reg(f, 1, 1234);
	for (unsigned i = 0; i < 16; i++) {
		set_reg(f, 2 + i, (uint16_t)(3320 + i));
	}
	set_reg(f, 18, 31);
	set_reg(f, 19, 25);
	set_reg(f, 20, 27);
	set_reg(f, 21, 7777);
	set_reg(f, 22, 9999);
	set_reg(f, 23, 98);
	set_reg(f, 24, 87);
	set_reg(f, 25, 0x0001);
	set_reg(f, 29, 0);
	set_reg(f, 30, 123);
	set_reg(f, 31, (uint16_t)(360000000u >> 16));
	set_reg(f, 32, (uint16_t)(360000000u & 0xFFFF));
	set_reg(f, 33, 0x1918); /* 25, 24 degC */
	set_reg(f, 34, 0xFD1A); /* -3, 26 degC */
	set_reg(f, 35, 0x0000); /* unfitted */
	set_reg(f, 36, 16);
	set_reg(f, 37, 1000);
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
	static const uint8_t real[8] = { 0x01, 0x03, 0x00, 0x00, 0x00, 0x27, 0x05, 0xD0 };
	uint8_t buf[16], want[8] = { 0x10, 0x03, 0x00, 0x00, 0x00, 0x27 };

	(void)state;
	assert_int_equal(ops->n_steps, 1);
	assert_int_equal(ops->baud, 9600);
	assert_int_equal(ops->request(0, 1, buf, sizeof(buf)), 8);
	assert_memory_equal(buf, real, 8);
	assert_int_equal(ops->request(0, 16, buf, sizeof(buf)), 8); /* 0x10, the master */
	seal(want, 8);
	assert_memory_equal(buf, want, 8);
	assert_int_equal(ops->request(0, 0, buf, sizeof(buf)), -EINVAL); /* broadcast */
	assert_int_equal(ops->request(0, 17, buf, sizeof(buf)), -EINVAL);
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
	assert_int_equal(p->current_ma, 12340);
	assert_int_equal(p->voltage_mv, 53200);
	assert_int_equal(p->soc_pct, 87);
	assert_int_equal(p->soh_pct, 98);
	assert_int_equal(p->full_mah, 100000);
	assert_int_equal(p->remaining_mah, 87000); /* SOC x full, not register 0021 */
	assert_int_equal(p->cycles, 123);
	assert_int_equal(p->cell_count, 16);
	assert_int_equal(p->cell_mv[0], 3320);
	assert_int_equal(p->cell_mv[15], 3335);
	assert_int_equal(p->cell_min_mv, 3320);
	assert_int_equal(p->cell_min_idx, 0);
	assert_int_equal(p->cell_max_mv, 3335);
	assert_int_equal(p->cell_max_idx, 15);
	assert_int_equal(p->temp_count, 4);
	assert_int_equal(p->temp_dc[0], 250);
	assert_int_equal(p->temp_dc[2], -30);
	assert_int_equal(p->temp_min_dc, -30);
	assert_int_equal(p->temp_max_dc, 260);
	assert_int_equal(p->mosfet_temp_dc, 310);
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

	/* discharging 42.70 A: "-32768~0: Discharge" */
	set_reg(f, 1, (uint16_t)-4270);
	seal(f, sizeof(f));
	assert_int_equal(run(f, sizeof(f), 2, 1, &bs), 0);
	assert_int_equal(p->current_ma, -42700);
}

/* LL §3 registers 0026-0028, every bit */
static void test_flags(void **state)
{
	static const uint32_t map[16] = {
		BATTERY_ALARM_PACK_OVERVOLTAGE,
		BATTERY_ALARM_CELL_OVERVOLTAGE,
		BATTERY_ALARM_PACK_UNDERVOLTAGE,
		BATTERY_ALARM_CELL_UNDERVOLTAGE,
		BATTERY_ALARM_CHARGE_OVERCURRENT,
		BATTERY_ALARM_DISCHARGE_OVERCURRENT,
		0,
		BATTERY_ALARM_MOSFET_OVERTEMP,
		BATTERY_ALARM_CHARGE_OVERTEMP,
		BATTERY_ALARM_DISCHARGE_OVERTEMP,
		BATTERY_ALARM_CHARGE_UNDERTEMP,
		BATTERY_ALARM_DISCHARGE_UNDERTEMP,
		BATTERY_ALARM_LOW_SOC,
		0,
		0,
		0,
	};
	/* which protections close which path (the file's header) */
	static const char path[16] = "CCDDCDBBCDCD-D--";
	const uint32_t both = BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE;
	uint8_t f[ANS_LEN];
	struct battery_state bs;
	const struct battery_pack *p = &bs.packs[0];

	(void)state;
	for (unsigned bit = 0; bit < 16; bit++) {
		uint32_t req = both;

		doc_answer(f, 1);
		set_reg(f, 26, (uint16_t)(1u << bit));
		seal(f, sizeof(f));
		battery_state_init(&bs, 1);
		assert_int_equal(run(f, sizeof(f), 1, 0, &bs), 0);
		assert_int_equal(p->warnings, map[bit]);
		assert_int_equal(p->alarms, 0);
		assert_int_equal(p->requests, both);

		doc_answer(f, 1);
		set_reg(f, 27, (uint16_t)(1u << bit));
		seal(f, sizeof(f));
		battery_state_init(&bs, 1);
		assert_int_equal(run(f, sizeof(f), 1, 0, &bs), 0);
		assert_int_equal(p->alarms, bit == 13 ? BATTERY_ALARM_SHORT_CIRCUIT : map[bit]);
		assert_int_equal(p->warnings, 0);
		if (path[bit] == 'C' || path[bit] == 'B') {
			req &= ~(uint32_t)BATTERY_REQUEST_CHARGE_ENABLE;
		}
		if (path[bit] == 'D' || path[bit] == 'B') {
			req &= ~(uint32_t)BATTERY_REQUEST_DISCHARGE_ENABLE;
		}
		assert_int_equal(p->requests, req);

		/* error code: voltage, temperature, current flow, cell unbalance */
		doc_answer(f, 1);
		set_reg(f, 28, (uint16_t)(1u << bit));
		seal(f, sizeof(f));
		battery_state_init(&bs, 1);
		assert_int_equal(run(f, sizeof(f), 1, 0, &bs), 0);
		assert_int_equal(p->alarms, bit == 4 ? BATTERY_ALARM_BMS_INTERNAL |
							       BATTERY_ALARM_CELL_IMBALANCE
					    : bit < 3 ? BATTERY_ALARM_BMS_INTERNAL
						      : 0);
		assert_int_equal(p->requests, both);
	}
}

/* a 15S pack ("Cell Num" 15); no sensor byte fitted: Temp Avg and Max stand in */
static void test_15s_no_sensors(void **state)
{
	uint8_t f[ANS_LEN];
	struct battery_state bs;
	const struct battery_pack *p = &bs.packs[0];

	(void)state;
	doc_answer(f, 1);
	set_reg(f, 36, 15);
	set_reg(f, 33, 0);
	set_reg(f, 34, 0);
	set_reg(f, 19, (uint16_t)-5);
	seal(f, sizeof(f));
	battery_state_init(&bs, 1);
	assert_int_equal(run(f, sizeof(f), 1, 0, &bs), 0);
	assert_int_equal(p->cell_count, 15);
	assert_int_equal(p->cell_max_mv, 3334);
	assert_int_equal(p->cell_mv[15], 0);
	assert_int_equal(p->temp_count, 2);
	assert_int_equal(p->temp_min_dc, -50);
	assert_int_equal(p->temp_max_dc, 270);
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
	assert_int_equal(ops->frame(0, 1, f, sizeof(f), &skip), (ssize_t)sizeof(f));
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
	/* a Modbus exception answer, ours and another's */
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
		{ 24, 101 },	       /* SOC */
		{ 23, 101 },	       /* SOH */
		{ 36, 0 },	       /* no cells */
		{ 36, 17 },	       /* more cells than registers */
		{ 9, 5001 },	       /* a cell above 5 V */
		{ 33, 0x9700 },	       /* a sensor at 151 degC */
		{ 34, 0xCD00 },	       /* -51 degC */
		{ 18, (uint16_t)-51 }, /* PCB */
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
	/* no sensor byte fitted and Temp Max out of range */
	doc_answer(f, 1);
	set_reg(f, 33, 0);
	set_reg(f, 34, 0);
	set_reg(f, 20, 200);
	seal(f, sizeof(f));
	assert_int_equal(run(f, sizeof(f), 1, 0, &bs), -EBADMSG);
	/* a short answer, a byte count other than 78 */
	doc_answer(f, 1);
	assert_int_equal(ops->decode(0, f, sizeof(f) - 1, 0, T_NOW, &bs), -EBADMSG);
	f[2] = 76;
	seal(f, sizeof(f) - 2);
	assert_int_equal(ops->decode(0, f, sizeof(f) - 2, 0, T_NOW, &bs), -EBADMSG);
	/* the BMS's exception answer */
	seal(exc, sizeof(exc));
	assert_int_equal(ops->decode(0, exc, sizeof(exc), 0, T_NOW, &bs), -EPROTO);
	assert_memory_equal(&bs, &fresh, sizeof(bs));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request), cmocka_unit_test(test_doc_answer),
		cmocka_unit_test(test_flags),	cmocka_unit_test(test_15s_no_sensors),
		cmocka_unit_test(test_framing), cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests_name("eg4-ll", tests, NULL, NULL);
}
