/* SPDX-License-Identifier: MIT */
/*
 * Seplos V3 Modbus (protocols/seplos_v3.c): golden decodes of real
 * exchanges of an SG16S200A-SP57B-A at address 1 and real exception
 * answers of an SP05B (syssi/esphome-seplos-bms docs/pdus/v3/, lines
 * named per case; the captures carry no decoded values, these follow the
 * XZH "BMS Modbus RTU Protocol" V0.1 §3 TA01 field by field and agree
 * with the capture's own PIA extremes), the PIC event bits from the
 * document alone (no real PIC answer is published: the SP57B log shows
 * only an exception to a malformed coil read), and malformed answers.
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

#define T_NOW UINT64_C(11000000)

enum { S_PIA, S_PIB, S_PIC };

static const char pia_line26[] =
	"01.04.22.14.CD.FF.77.6B.40.80.E8.01.22.03.40.03.E7.00.0A.0C.FF.0B.7F.0D.00.0C.FF.0B.81."
	"0B.7E.00.00.00.B4.00.B4.D3.2E";
static const char pib_line29[] =
	"01.04.34.0C.FF.0C.FF.0D.00.0D.00.0D.00.0C.FF.0D.00.0C.FF.0D.00.0D.00.0D.00.0D.00.0D.00."
	"0C.FF.0C.FF.0D.00.0B.82.0B.7F.0B.81.0B.7E.0A.AB.0A.AB.0A.AB.0A.AB.0B.8C.0B.7F.01.13";

static size_t hex(const char *s, uint8_t *out, size_t n)
{
	size_t len = 0;
	int hi = -1;

	for (; *s; s++) {
		int h = (*s >= '0' && *s <= '9')   ? *s - '0'
			: (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10
			: (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
						   : -1;

		if (h < 0) {
			continue;
		}
		if (hi < 0) {
			hi = h;
		} else {
			assert_true(len < n);
			out[len++] = (uint8_t)(hi << 4 | h);
			hi = -1;
		}
	}
	assert_int_equal(hi, -1);
	return len;
}

/* an independent CRC-16/Modbus, bit by bit from its definition */
static void fix_crc(uint8_t *f, size_t len)
{
	unsigned crc = 0xFFFF;

	for (size_t i = 0; i < len - 2; i++) {
		crc ^= f[i];
		for (int b = 0; b < 8; b++) {
			crc = (crc & 1) ? (crc >> 1) ^ 0xA001 : crc >> 1;
		}
	}
	f[len - 2] = (uint8_t)crc;
	f[len - 1] = (uint8_t)(crc >> 8);
}

static int run(unsigned step, uint8_t address, const uint8_t *f, size_t len,
	       struct battery_state *bs)
{
	size_t skip = 0;
	ssize_t r = seplos_v3_serial.frame(step, address, f, len, &skip);

	if (r < 0) {
		return (int)r;
	}
	assert_int_equal(r, (ssize_t)len);
	return seplos_v3_serial.decode(step, f, len, 0, T_NOW, bs);
}

static void assert_unchanged(const struct battery_state *bs)
{
	struct battery_state fresh;

	battery_state_init(&fresh, 1);
	assert_memory_equal(bs, &fresh, sizeof(fresh));
}

/* SG16S200A-SP57B-A-all-frames.txt lines 25 and 28: the reads of PIA and PIB */
static void test_requests(void **state)
{
	uint8_t buf[16], want[16];
	size_t n;

	(void)state;
	assert_int_equal(seplos_v3_serial.baud, 19200);
	assert_int_equal(seplos_v3_serial.n_steps, 3);
	n = hex("01.04.10.00.00.11.34.C6", want, sizeof(want));
	assert_int_equal(seplos_v3_serial.request(S_PIA, 1, buf, sizeof(buf)), (ssize_t)n);
	assert_memory_equal(buf, want, n);
	n = hex("01.04.11.00.00.1A.74.FD", want, sizeof(want));
	assert_int_equal(seplos_v3_serial.request(S_PIB, 1, buf, sizeof(buf)), (ssize_t)n);
	assert_memory_equal(buf, want, n);
	/* PIC: 144 coils from 0x1200 (XZH §2.4.1, seplosv3.py) */
	assert_int_equal(seplos_v3_serial.request(S_PIC, 1, buf, sizeof(buf)), 8);
	n = hex("01 01 12 00 00 90 00 00", want, sizeof(want));
	fix_crc(want, n);
	assert_memory_equal(buf, want, n);
	assert_int_equal(seplos_v3_serial.request(S_PIA, 1, buf, 7), -ENOBUFS);
	assert_int_equal(seplos_v3_serial.request(S_PIA, 0x80, buf, sizeof(buf)), -EINVAL);
}

/* SG16S200A-SP57B-A-all-frames.txt line 26 (PIA answer) */
static void test_sp57b_pia(void **state)
{
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex(pia_line26, f, sizeof(f));
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(S_PIA, 1, f, n, &bs), 0);
	assert_int_equal(p->voltage_mv, 53250);	    /* 0x14CD x 10 mV */
	assert_int_equal(p->current_ma, -1370);	    /* 0xFF77 = -137 x 10 mA */
	assert_int_equal(p->remaining_mah, 274560); /* 0x6B40 x 10 mAh */
	assert_int_equal(p->full_mah, 330000);	    /* 0x80E8 x 10 mAh */
	assert_int_equal(p->soc_pct, 83);	    /* 0x0340 = 83.2 % */
	assert_int_equal(p->soh_pct, 100);	    /* 0x03E7 = 99.9 % */
	assert_int_equal(p->cycles, 10);
	assert_true(battery_pack_has(p, BATTERY_GROUP_ELECTRICAL));
	assert_true(battery_pack_has(p, BATTERY_GROUP_CAPACITY));
	assert_false(battery_pack_has(p, BATTERY_GROUP_LIMITS));

	/* line 59: the next round, 10 mV lower */
	n = hex("01.04.22.14.CC.FF.77.6B.40.80.E8.01.22.03.40.03.E7.00.0A.0C.FF.0B.80.0D.00.0C.FF."
		"0B.82.0B.7E.00.00.00.B4.00.B4.15.5E",
		f, sizeof(f));
	assert_int_equal(run(S_PIA, 1, f, n, &bs), 0);
	assert_int_equal(p->voltage_mv, 53240);
}

/* SG16S200A-SP57B-A-all-frames.txt line 29 (PIB answer) */
static void test_sp57b_pib(void **state)
{
	static const uint16_t cells[16] = { 3327, 3327, 3328, 3328, 3328, 3327, 3328, 3327,
					    3328, 3328, 3328, 3328, 3328, 3327, 3327, 3328 };
	struct battery_state bs;
	uint8_t f[64];
	size_t n = hex(pib_line29, f, sizeof(f));
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(S_PIB, 1, f, n, &bs), 0);
	assert_int_equal(p->cell_count, 16);
	for (unsigned i = 0; i < 16; i++) {
		assert_int_equal(p->cell_mv[i], cells[i]);
	}
	/* PIA of the same round: max 0x0D00, min 0x0CFF */
	assert_int_equal(p->cell_max_mv, 3328);
	assert_int_equal(p->cell_min_mv, 3327);
	assert_int_equal(p->cell_min_idx, 0);
	assert_int_equal(p->cell_max_idx, 2);
	assert_int_equal(p->temp_count, 4);
	assert_int_equal(p->temp_dc[0], 215); /* 0x0B82 = 294.6 K */
	assert_int_equal(p->temp_dc[1], 212);
	assert_int_equal(p->temp_dc[2], 214);
	assert_int_equal(p->temp_dc[3], 211);
	assert_int_equal(p->mosfet_temp_dc, 212); /* power temperature 0x0B7F */
	assert_int_equal(p->temp_max_dc, 215);
	assert_int_equal(p->temp_min_dc, 211);
	assert_true(battery_pack_has(p, BATTERY_GROUP_CELLS));
	assert_true(battery_pack_has(p, BATTERY_GROUP_TEMPS));
}

/* SP05B2312190075-error-responses.txt line 1, and the SP57B's 00.81.02.90.51 */
static void test_exceptions(void **state)
{
	struct battery_state bs;
	uint8_t f[8];
	size_t n, skip = 0;

	(void)state;
	battery_state_init(&bs, 1);
	n = hex("00 84 02 93 01", f, sizeof(f)); /* "0x00 0x84 0x02 0x93 0x01" */
	assert_int_equal(run(S_PIA, 0, f, n, &bs), -EPROTO);
	n = hex("00.81.02.90.51", f, sizeof(f));
	assert_int_equal(run(S_PIC, 0, f, n, &bs), -EPROTO);
	/* an exception of address 0 while polling address 1 */
	assert_int_equal(seplos_v3_serial.frame(S_PIC, 1, f, n, &skip), -ENOMSG);
	assert_int_equal(skip, 5);
	assert_unchanged(&bs);
}

/* framing: prefixes, echoes, other blocks and nodes, CRC */
static void test_frame_edges(void **state)
{
	uint8_t f[64], req[8];
	size_t n = hex(pia_line26, f, sizeof(f));
	size_t skip = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(seplos_v3_serial.frame(S_PIA, 1, f, i, &skip), 0);
	}
	/* the PIA answer while PIB is awaited: another block's answer */
	assert_int_equal(seplos_v3_serial.frame(S_PIB, 1, f, n, &skip), -ENOMSG);
	assert_int_equal(skip, n);
	/* the PIA answer of node 1 while node 2 is polled */
	assert_int_equal(seplos_v3_serial.frame(S_PIA, 2, f, n, &skip), -ENOMSG);
	/* our own requests echoed, PIC's included (its byte 2 equals its answer's count) */
	for (unsigned s = 0; s < 3; s++) {
		assert_int_equal(seplos_v3_serial.request(s, 1, req, sizeof(req)), 8);
		skip = 0;
		assert_int_equal(seplos_v3_serial.frame(s, 1, req, 8, &skip), -ENOMSG);
		assert_int_equal(skip, 8);
	}
	/* the SP57B's read of 0x2000 by another master (line 1) */
	n = hex("00.04.20.00.00.1A.7B.D0", f, sizeof(f));
	assert_int_equal(seplos_v3_serial.frame(S_PIA, 1, f, n, &skip), -ENOMSG);
	assert_int_equal(skip, 8);
	/* CRC */
	n = hex(pia_line26, f, sizeof(f));
	f[10] ^= 0x01;
	assert_int_equal(seplos_v3_serial.frame(S_PIA, 1, f, n, &skip), -EBADMSG);
	/* not a function we speak */
	f[1] = 0x03;
	assert_int_equal(seplos_v3_serial.frame(S_PIA, 1, f, n, &skip), -EBADMSG);
}

/* XZH §3 PIC with TB02-TB07, TB15, TB16 (document only) */
static void test_pic_bits(void **state)
{
	static const struct {
		unsigned byte, bit;
		uint32_t warning, alarm;
	} want[] = {
		{ 9, 0, BATTERY_ALARM_CELL_OVERVOLTAGE, 0 },
		{ 9, 1, 0, BATTERY_ALARM_CELL_OVERVOLTAGE },
		{ 9, 3, 0, BATTERY_ALARM_CELL_UNDERVOLTAGE },
		{ 9, 7, 0, BATTERY_ALARM_PACK_UNDERVOLTAGE },
		{ 10, 0, BATTERY_ALARM_CHARGE_OVERTEMP, 0 },
		{ 10, 3, 0, BATTERY_ALARM_CHARGE_UNDERTEMP },
		{ 10, 5, 0, BATTERY_ALARM_DISCHARGE_OVERTEMP },
		{ 11, 0, 0, 0 },
		{ 11, 5, 0, BATTERY_ALARM_MOSFET_OVERTEMP },
		{ 12, 0, BATTERY_ALARM_CHARGE_OVERCURRENT, 0 },
		{ 12, 2, 0, BATTERY_ALARM_CHARGE_OVERCURRENT },
		{ 12, 4, 0, BATTERY_ALARM_DISCHARGE_OVERCURRENT },
		{ 12, 6, 0, BATTERY_ALARM_SHORT_CIRCUIT },
		{ 13, 0, 0, BATTERY_ALARM_SHORT_CIRCUIT },
		{ 14, 2, BATTERY_ALARM_LOW_SOC, 0 },
		{ 14, 3, 0, BATTERY_ALARM_LOW_SOC },
		{ 14, 4, BATTERY_ALARM_CELL_IMBALANCE, 0 },
		{ 17, 1, 0, BATTERY_ALARM_BMS_INTERNAL },
		{ 8, 0, 0, 0 }, /* TB09 system state: no alarm */
	};
	struct battery_state bs;
	uint8_t f[32];

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		memset(f, 0, sizeof(f));
		f[0] = 0x01;
		f[1] = 0x01;
		f[2] = 0x12;
		f[3 + want[i].byte] = (uint8_t)(1u << want[i].bit);
		fix_crc(f, 23);
		battery_state_init(&bs, 1);
		assert_int_equal(run(S_PIC, 1, f, 23, &bs), 0);
		assert_int_equal(bs.packs[0].warnings, want[i].warning);
		assert_int_equal(bs.packs[0].alarms, want[i].alarm);
		assert_int_equal(bs.packs[0].requests, 0);
	}
	/* TB07: bit 0 discharge FET on, bit 1 charge FET on */
	memset(f, 0, sizeof(f));
	f[0] = 0x01;
	f[1] = 0x01;
	f[2] = 0x12;
	f[3 + 15] = 0x03;
	fix_crc(f, 23);
	battery_state_init(&bs, 1);
	assert_int_equal(run(S_PIC, 1, f, 23, &bs), 0);
	assert_int_equal(bs.packs[0].requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
	f[3 + 15] = 0x01;
	fix_crc(f, 23);
	assert_int_equal(run(S_PIC, 1, f, 23, &bs), 0);
	assert_int_equal(bs.packs[0].requests, BATTERY_REQUEST_DISCHARGE_ENABLE);
}

static void test_malformed(void **state)
{
	struct battery_state bs;
	uint8_t f[64];
	size_t n;

	(void)state;
	battery_state_init(&bs, 1);
	/* SOC 100.1 % */
	n = hex(pia_line26, f, sizeof(f));
	f[3 + 10] = 0x03;
	f[3 + 11] = 0xE9;
	fix_crc(f, n);
	assert_int_equal(run(S_PIA, 1, f, n, &bs), -EBADMSG);
	/* SOH 100.1 % */
	n = hex(pia_line26, f, sizeof(f));
	f[3 + 12] = 0x03;
	f[3 + 13] = 0xE9;
	fix_crc(f, n);
	assert_int_equal(run(S_PIA, 1, f, n, &bs), -EBADMSG);
	/* a cell temperature above 200 degC, then the power temperature */
	n = hex(pib_line29, f, sizeof(f));
	f[3 + 32] = 0x12;
	f[3 + 33] = 0x7C;
	fix_crc(f, n);
	assert_int_equal(run(S_PIB, 1, f, n, &bs), -EBADMSG);
	n = hex(pib_line29, f, sizeof(f));
	f[3 + 50] = 0xFF;
	fix_crc(f, n);
	assert_int_equal(run(S_PIB, 1, f, n, &bs), -EBADMSG);
	/* decode() of a PIA answer as PIB, and of a short buffer */
	n = hex(pia_line26, f, sizeof(f));
	assert_int_equal(seplos_v3_serial.decode(S_PIB, f, n, 0, T_NOW, &bs), -EBADMSG);
	assert_int_equal(seplos_v3_serial.decode(S_PIA, f, n - 1, 0, T_NOW, &bs), -EBADMSG);
	assert_unchanged(&bs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),    cmocka_unit_test(test_sp57b_pia),
		cmocka_unit_test(test_sp57b_pib),   cmocka_unit_test(test_exceptions),
		cmocka_unit_test(test_frame_edges), cmocka_unit_test(test_pic_bits),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests_name("seplos-v3", tests, NULL, NULL);
}
