/* SPDX-License-Identifier: MIT */
/*
 * Daly UART/RS485 (protocols/daly.c): golden decodes of real answers,
 * the request checksums real clients print, the V1.2 failure bits
 * (document only: no real 0x98 answer with a bit set is published with
 * its source), multi-pack addressing, and malformed answers derived from
 * the real ones by changing one field (checksum refreshed where the field
 * is under test). Each case names its source.
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

#define T_NOW UINT64_C(9000000)

enum { S_SOC, S_CELLS, S_TEMPS, S_MOS, S_STATUS, S_CELL_LIST, S_TEMP_LIST, S_FAILURE };

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

/* an independent checksum: V1.2 §2.3 note 2, low byte of the sum */
static void fix_checksum(uint8_t *f)
{
	unsigned sum = 0;

	for (size_t i = 0; i < 12; i++) {
		sum += f[i];
	}
	f[12] = (uint8_t)sum;
}

static int run(unsigned step, uint8_t address, const uint8_t *f, size_t len,
	       struct battery_state *bs)
{
	size_t skip = 0;
	ssize_t r = daly_serial.frame(step, address, f, len, &skip);

	if (r < 0) {
		return (int)r;
	}
	assert_int_equal(r, (ssize_t)len);
	return daly_serial.decode(step, f, len, 0, T_NOW, bs);
}

static void assert_unchanged(const struct battery_state *bs)
{
	struct battery_state fresh;

	battery_state_init(&fresh, 1);
	assert_memory_equal(bs, &fresh, sizeof(fresh));
}

/*
 * Requests: "Send command: 0x90 Checksum = 0x7D" ... 0x96 -> 0x83, 0x98 ->
 * 0x85 in maland16/daly-bms-uart example-sketch/daly-bms-example/
 * example-output.txt, and tomatensaus/bms test_daly.py testSendCheckSum
 * (host address 0x40).
 */
static void test_requests(void **state)
{
	static const uint8_t want_sum[] = { 0x7D, 0x7E, 0x7F, 0x80, 0x81, 0x82, 0x83 };
	uint8_t buf[16];

	(void)state;
	assert_int_equal(daly_serial.n_steps, 8);
	assert_int_equal(daly_serial.baud, 9600);
	for (unsigned s = 0; s < 7; s++) {
		assert_int_equal(daly_serial.request(s, 1, buf, sizeof(buf)), 13);
		assert_int_equal(buf[0], 0xA5);
		assert_int_equal(buf[1], 0x40);
		assert_int_equal(buf[2], 0x90 + s);
		assert_int_equal(buf[3], 0x08);
		for (unsigned i = 4; i < 12; i++) {
			assert_int_equal(buf[i], 0);
		}
		assert_int_equal(buf[12], want_sum[s]);
	}
	assert_int_equal(daly_serial.request(S_FAILURE, 1, buf, sizeof(buf)), 13);
	assert_int_equal(buf[2], 0x98);
	assert_int_equal(buf[12], 0x85);
	/* board 2 on a shared RS485 bus: host address 0x41 (daly.py generate_command) */
	assert_int_equal(daly_serial.request(S_SOC, 2, buf, sizeof(buf)), 13);
	assert_int_equal(buf[1], 0x41);
	assert_int_equal(buf[12], 0x7E);
	assert_int_equal(daly_serial.request(S_SOC, 1, buf, 12), -ENOBUFS);
	assert_int_equal(daly_serial.request(S_SOC, 0, buf, sizeof(buf)), -EINVAL);
}

/*
 * Real 0x90 answer with the values its publisher decoded: "0x023A = 57.0V
 * ... 0x7530 = 0.0A ... 0x01ED = 49.3%" (maland16/daly-bms-uart README.md,
 * "The DALY BMS UART Protocol").
 */
static void test_maland16_soc(void **state)
{
	struct battery_state bs;
	uint8_t f[16];
	size_t n = hex("A5 01 90 08 02 3A 00 00 75 30 01 ED 0D", f, sizeof(f));
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);
	assert_int_equal(run(S_SOC, 1, f, n, &bs), 0);
	assert_int_equal(p->voltage_mv, 57000);
	assert_int_equal(p->current_ma, 0);
	assert_int_equal(p->soc_pct, 49); /* 49.3 % */
	assert_int_equal(p->updated_usec[BATTERY_GROUP_ELECTRICAL], T_NOW);
	assert_true(battery_pack_has(p, BATTERY_GROUP_CAPACITY));
	assert_false(battery_pack_has(p, BATTERY_GROUP_STATUS));
}

/*
 * A real 16S Daly with one sensor, discharging: one poll round logged as
 * "Read:" lines at the end of tomatensaus/bms test_daly.py (the last,
 * uncommented block). The log carries no decoded values; these follow
 * V1.2 §3 field by field, and 0x93's state byte (2, discharge) checks the
 * sign of 0x90's current.
 */
static void test_tomatensaus_round(void **state)
{
	struct battery_state bs;
	uint8_t f[16];
	size_t n;
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);

	n = hex("a5 01 90 08 02 03 00 00 77 3e 03 1b 16", f, sizeof(f));
	assert_int_equal(run(S_SOC, 1, f, n, &bs), 0);
	assert_int_equal(p->voltage_mv, 51500);	 /* 0x0203 = 51.5 V */
	assert_int_equal(p->current_ma, -52600); /* 0x773E = 30526: 52.6 A out */
	assert_int_equal(p->soc_pct, 80);	 /* 0x031B = 79.5 % */

	/* bytes 6-7 (reserved) carry left-overs of 0x90: ignored */
	n = hex("a5 01 91 08 0c b5 07 0c 28 05 03 1b 5e", f, sizeof(f));
	assert_int_equal(run(S_CELLS, 1, f, n, &bs), 0);
	assert_int_equal(p->cell_count, 0);
	assert_int_equal(p->cell_max_mv, 3253);
	assert_int_equal(p->cell_max_idx, 6); /* cell 7 */
	assert_int_equal(p->cell_min_mv, 3112);
	assert_int_equal(p->cell_min_idx, 4); /* cell 5 */

	n = hex("a5 01 92 08 49 01 49 01 28 05 03 1b 1f", f, sizeof(f));
	assert_int_equal(run(S_TEMPS, 1, f, n, &bs), 0);
	assert_int_equal(p->temp_count, 0);
	assert_int_equal(p->temp_max_dc, 330); /* 0x49 - 40 = 33 degC */
	assert_int_equal(p->temp_min_dc, 330);
	assert_int_equal(p->temp_max_idx, 0);
	assert_int_equal(p->mosfet_temp_dc, BATTERY_TEMP_NONE);

	n = hex("a5 01 93 08 02 01 01 a8 00 04 5d f8 46", f, sizeof(f));
	assert_int_equal(run(S_MOS, 1, f, n, &bs), 0);
	assert_int_equal(p->requests,
			 BATTERY_REQUEST_CHARGE_ENABLE | BATTERY_REQUEST_DISCHARGE_ENABLE);
	assert_int_equal(p->remaining_mah, 286200); /* 0x00045DF8 mAh */

	n = hex("a5 01 94 08 10 01 00 00 02 00 05 f8 52", f, sizeof(f));
	assert_int_equal(run(S_STATUS, 1, f, n, &bs), 0);
	assert_int_equal(p->cycles, 5);

	assert_true(battery_pack_has(p, BATTERY_GROUP_ELECTRICAL));
	assert_true(battery_pack_has(p, BATTERY_GROUP_CAPACITY));
	assert_true(battery_pack_has(p, BATTERY_GROUP_CELLS));
	assert_true(battery_pack_has(p, BATTERY_GROUP_TEMPS));
	assert_true(battery_pack_has(p, BATTERY_GROUP_STATUS));
	assert_false(battery_pack_has(p, BATTERY_GROUP_LIMITS));
}

/* same file, first (commented) block: another round of the same pack */
static void test_tomatensaus_first(void **state)
{
	struct battery_state bs;
	uint8_t f[16];
	size_t n;
	struct battery_pack *p = &bs.packs[0];

	(void)state;
	battery_state_init(&bs, 1);
	n = hex("a5 01 90 08 02 03 00 00 77 24 03 38 19", f, sizeof(f));
	assert_int_equal(run(S_SOC, 1, f, n, &bs), 0);
	assert_int_equal(p->current_ma, -50000); /* 0x7724 = 30500 */
	assert_int_equal(p->soc_pct, 82);	 /* 82.4 % */
	n = hex("a5 01 91 08 0c b7 07 0c 13 05 03 38 68", f, sizeof(f));
	assert_int_equal(run(S_CELLS, 1, f, n, &bs), 0);
	assert_int_equal(p->cell_max_mv, 3255);
	assert_int_equal(p->cell_min_mv, 3091);
	n = hex("a5 01 93 08 02 01 01 71 00 04 86 c0 00", f, sizeof(f));
	assert_int_equal(run(S_MOS, 1, f, n, &bs), 0);
	assert_int_equal(p->remaining_mah, 296640);
	/* a cell-voltage frame (0x95) while 0x94 is awaited: framed, not ours */
	n = hex("a5 01 95 08 01 0c aa 0c 95 0c 59 c0 c0", f, sizeof(f));
	{
		size_t skip = 0;

		assert_int_equal(daly_serial.frame(S_STATUS, 1, f, n, &skip), -ENOMSG);
		assert_int_equal(skip, 13);
	}
}

/* V1.2 §3 0x98 (document): every bit of bytes 0-6 */
static void test_failure_bits(void **state)
{
	static const struct {
		unsigned byte, bit;
		uint32_t warning, alarm;
	} want[] = {
		{ 0, 0, BATTERY_ALARM_CELL_OVERVOLTAGE, 0 },
		{ 0, 1, 0, BATTERY_ALARM_CELL_OVERVOLTAGE },
		{ 0, 2, BATTERY_ALARM_CELL_UNDERVOLTAGE, 0 },
		{ 0, 3, 0, BATTERY_ALARM_CELL_UNDERVOLTAGE },
		{ 0, 4, BATTERY_ALARM_PACK_OVERVOLTAGE, 0 },
		{ 0, 5, 0, BATTERY_ALARM_PACK_OVERVOLTAGE },
		{ 0, 6, BATTERY_ALARM_PACK_UNDERVOLTAGE, 0 },
		{ 0, 7, 0, BATTERY_ALARM_PACK_UNDERVOLTAGE },
		{ 1, 0, BATTERY_ALARM_CHARGE_OVERTEMP, 0 },
		{ 1, 1, 0, BATTERY_ALARM_CHARGE_OVERTEMP },
		{ 1, 2, BATTERY_ALARM_CHARGE_UNDERTEMP, 0 },
		{ 1, 3, 0, BATTERY_ALARM_CHARGE_UNDERTEMP },
		{ 1, 4, BATTERY_ALARM_DISCHARGE_OVERTEMP, 0 },
		{ 1, 5, 0, BATTERY_ALARM_DISCHARGE_OVERTEMP },
		{ 1, 6, BATTERY_ALARM_DISCHARGE_UNDERTEMP, 0 },
		{ 1, 7, 0, BATTERY_ALARM_DISCHARGE_UNDERTEMP },
		{ 2, 0, BATTERY_ALARM_CHARGE_OVERCURRENT, 0 },
		{ 2, 1, 0, BATTERY_ALARM_CHARGE_OVERCURRENT },
		{ 2, 2, BATTERY_ALARM_DISCHARGE_OVERCURRENT, 0 },
		{ 2, 3, 0, BATTERY_ALARM_DISCHARGE_OVERCURRENT },
		{ 2, 4, 0, 0 },
		{ 2, 5, 0, 0 },
		{ 2, 6, BATTERY_ALARM_LOW_SOC, 0 },
		{ 2, 7, 0, BATTERY_ALARM_LOW_SOC },
		{ 3, 0, BATTERY_ALARM_CELL_IMBALANCE, 0 },
		{ 3, 1, 0, BATTERY_ALARM_CELL_IMBALANCE },
		{ 3, 2, 0, 0 },
		{ 3, 3, 0, 0 },
		{ 4, 0, 0, BATTERY_ALARM_MOSFET_OVERTEMP },
		{ 4, 1, 0, BATTERY_ALARM_MOSFET_OVERTEMP },
		{ 4, 4, 0, BATTERY_ALARM_BMS_INTERNAL },
		{ 5, 0, 0, BATTERY_ALARM_BMS_INTERNAL },
		{ 5, 7, 0, BATTERY_ALARM_BMS_INTERNAL },
		{ 6, 0, 0, BATTERY_ALARM_BMS_INTERNAL },
		{ 6, 2, 0, BATTERY_ALARM_SHORT_CIRCUIT },
		{ 6, 3, 0, BATTERY_ALARM_CELL_UNDERVOLTAGE },
		{ 6, 4, 0, 0 },
	};
	struct battery_state bs;
	uint8_t f[16];

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		hex("a5 01 98 08 00 00 00 00 00 00 00 00 46", f, sizeof(f));
		f[4 + want[i].byte] = (uint8_t)(1u << want[i].bit);
		fix_checksum(f);
		battery_state_init(&bs, 1);
		assert_int_equal(run(S_FAILURE, 1, f, 13, &bs), 0);
		assert_int_equal(bs.packs[0].warnings, want[i].warning);
		assert_int_equal(bs.packs[0].alarms, want[i].alarm);
		assert_true(battery_pack_has(&bs.packs[0], BATTERY_GROUP_STATUS));
	}
	/* the fault code byte alone raises nothing */
	hex("a5 01 98 08 00 00 00 00 00 00 00 07 4d", f, sizeof(f));
	battery_state_init(&bs, 1);
	assert_int_equal(run(S_FAILURE, 1, f, 13, &bs), 0);
	assert_int_equal(bs.packs[0].alarms | bs.packs[0].warnings, 0);
}

/* two boards on one bus: the answer of board 1 is not board 2's */
static void test_multi_pack(void **state)
{
	struct battery_state bs;
	uint8_t f[16];
	size_t n = hex("A5 01 90 08 02 3A 00 00 75 30 01 ED 0D", f, sizeof(f));
	size_t skip = 0;

	(void)state;
	assert_int_equal(daly_serial.frame(S_SOC, 2, f, n, &skip), -ENOMSG);
	assert_int_equal(skip, 13);
	/* the same answer from board 2 */
	f[1] = 0x02;
	fix_checksum(f);
	battery_state_init(&bs, 2);
	assert_int_equal(daly_serial.frame(S_SOC, 2, f, n, &skip), 13);
	assert_int_equal(daly_serial.decode(S_SOC, f, n, 1, T_NOW, &bs), 0);
	assert_int_equal(bs.packs[1].voltage_mv, 57000);
	assert_false(battery_pack_has(&bs.packs[0], BATTERY_GROUP_ELECTRICAL));
}

static void test_frame_edges(void **state)
{
	uint8_t f[16], req[16];
	size_t n = hex("A5 01 90 08 02 3A 00 00 75 30 01 ED 0D", f, sizeof(f));
	size_t skip = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(daly_serial.frame(S_SOC, 1, f, i, &skip), 0);
	}
	/* our own request echoed on a two-wire bus */
	assert_int_equal(daly_serial.request(S_SOC, 1, req, sizeof(req)), 13);
	assert_int_equal(daly_serial.frame(S_SOC, 1, req, 13, &skip), -ENOMSG);
	assert_int_equal(skip, 13);
	/* the answer to another ID */
	assert_int_equal(daly_serial.frame(S_CELLS, 1, f, n, &skip), -ENOMSG);
	/* no start flag; a length other than 8 as soon as it is seen */
	assert_int_equal(daly_serial.frame(S_SOC, 1, f + 1, n - 1, &skip), -EBADMSG);
	f[3] = 0x09;
	assert_int_equal(daly_serial.frame(S_SOC, 1, f, 4, &skip), -EBADMSG);
	f[3] = 0x08;
	/* checksum */
	f[7] ^= 0x10;
	assert_int_equal(daly_serial.frame(S_SOC, 1, f, n, &skip), -EBADMSG);
}

static void test_malformed(void **state)
{
	struct battery_state bs;
	uint8_t f[16];

	(void)state;
	battery_state_init(&bs, 1);
	/* SOC 100.1 % */
	hex("A5 01 90 08 02 3A 00 00 75 30 03 E9 00", f, sizeof(f));
	fix_checksum(f);
	assert_int_equal(run(S_SOC, 1, f, 13, &bs), -EBADMSG);
	/* lowest cell above the highest */
	hex("a5 01 91 08 0c 13 07 0c b5 05 03 38 00", f, sizeof(f));
	fix_checksum(f);
	assert_int_equal(run(S_CELLS, 1, f, 13, &bs), -EBADMSG);
	/* cell number 49 */
	hex("a5 01 91 08 0c b5 31 0c 13 05 03 38 00", f, sizeof(f));
	fix_checksum(f);
	assert_int_equal(run(S_CELLS, 1, f, 13, &bs), -EBADMSG);
	/* lowest temperature above the highest */
	hex("a5 01 92 08 47 01 49 01 13 05 03 38 00", f, sizeof(f));
	fix_checksum(f);
	assert_int_equal(run(S_TEMPS, 1, f, 13, &bs), -EBADMSG);
	/* state 3 */
	hex("a5 01 93 08 03 01 01 71 00 04 86 c0 00", f, sizeof(f));
	fix_checksum(f);
	assert_int_equal(run(S_MOS, 1, f, 13, &bs), -EBADMSG);
	/* 0 and 49 cells */
	hex("a5 01 94 08 00 01 00 00 02 00 05 c0 00", f, sizeof(f));
	fix_checksum(f);
	assert_int_equal(run(S_STATUS, 1, f, 13, &bs), -EBADMSG);
	f[4] = 49;
	fix_checksum(f);
	assert_int_equal(run(S_STATUS, 1, f, 13, &bs), -EBADMSG);
	/* decode() on a short or foreign buffer */
	hex("A5 01 90 08 02 3A 00 00 75 30 01 ED 0D", f, sizeof(f));
	assert_int_equal(daly_serial.decode(S_SOC, f, 12, 0, T_NOW, &bs), -EBADMSG);
	assert_int_equal(daly_serial.decode(S_CELLS, f, 13, 0, T_NOW, &bs), -EBADMSG);
	assert_unchanged(&bs);
}

/*
 * One poll round of a real Daly R24TS, 14 cells, 2 sensors, idle: the
 * "live R24TS capture" in 20233332choi/DJY_EvTLMT tests/test_daly_bms.py
 * (SAMPLE_FRAMES), whose test states the decoded values: 53.0 V, 0.0 A,
 * SOC 51.2 %, 14 cells, 58 cycles (see below), 40.96 Ah left, highest cell number 2,
 * cell delta 4 mV, temperatures [16.0, 16.0], no fault. 0x95 is five
 * frames, 0x96 one (V1.2 §3). The capture is run as the engine runs it:
 * ->answer_frames() with the pack's word, frames gathered, decoded whole.
 */
static const char *const r24ts[] = {
	"A5 01 90 08 02 12 00 00 75 30 02 00 F9", "A5 01 91 08 0E D2 02 0E CE 01 00 00 FE",
	"A5 01 92 08 38 01 38 01 00 00 00 00 B2", "A5 01 93 08 00 01 01 ED 00 00 A0 00 D0",
	"A5 01 94 08 0E 02 00 00 00 00 00 3A 8C", "A5 01 95 08 01 0E CE 0E D2 0E D1 00 DF",
	"A5 01 95 08 02 0E CF 0E D1 0E D1 00 E0", "A5 01 95 08 03 0E D1 0E D1 0E D2 00 E4",
	"A5 01 95 08 04 0E D2 0E D2 0E CF 00 E4", "A5 01 95 08 05 0E D1 0E CF 00 00 00 04",
	"A5 01 96 08 01 38 38 00 00 FF FF FF B2", "A5 01 97 08 00 00 00 00 00 00 00 00 45",
	"A5 01 98 08 00 00 00 00 00 00 00 00 46",
};

/* the capture as one byte stream, as it came off the bus */
static size_t r24ts_stream(uint8_t *out, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < sizeof(r24ts) / sizeof(r24ts[0]); i++) {
		len += hex(r24ts[i], out + len, n - len);
	}
	return len;
}

/*
 * The engine's scan (src/serial_engine.c) over @buf for @step: skip what is
 * not ours, gather ->answer_frames() frames, ->decode_memo() them. Return:
 * its result, 1 if the step is skipped, -ENODATA if no complete answer.
 */
static int engine_step(unsigned step, const uint8_t *buf, size_t len, uint32_t *memo,
		       struct battery_state *bs)
{
	unsigned want = daly_serial.answer_frames(step, *memo), got = 0;
	size_t off = 0, start = 0;

	if (want == 0) {
		return 1;
	}
	while (off < len) {
		size_t skip = 0;
		ssize_t k = daly_serial.frame(step, 1, buf + off, len - off, &skip);

		if (k == -ENOMSG) {
			off += skip;
			continue;
		}
		if (k <= 0) {
			return k == 0 ? -ENODATA : (int)k;
		}
		if (got == 0) {
			start = off;
		}
		off += (size_t)k;
		if (++got == want) {
			return daly_serial.decode_memo(step, buf + start, off - start, 0, T_NOW, bs,
						       memo);
		}
	}
	return -ENODATA;
}

static void test_r24ts_round(void **state)
{
	static const uint16_t cells[14] = { 3790, 3794, 3793, 3791, 3793, 3793, 3793,
					    3793, 3794, 3794, 3794, 3791, 3793, 3791 };
	uint8_t buf[13 * 13];
	size_t len = r24ts_stream(buf, sizeof(buf));
	struct battery_state bs;
	struct battery_pack *p = &bs.packs[0];
	uint32_t memo = 0;

	(void)state;
	assert_int_equal(len, 13 * 13);
	battery_state_init(&bs, 1);
	/* first round: counts unknown, so the extremes of 0x91 / 0x92 and no lists */
	assert_int_equal(daly_serial.answer_frames(S_CELL_LIST, memo), 0);
	assert_int_equal(daly_serial.answer_frames(S_TEMP_LIST, memo), 0);
	assert_int_equal(engine_step(S_SOC, buf, len, &memo, &bs), 0);
	assert_int_equal(engine_step(S_CELLS, buf, len, &memo, &bs), 0);
	assert_int_equal(p->cell_count, 0);
	assert_int_equal(p->cell_max_mv, 3794);
	assert_int_equal(p->cell_max_idx, 1); /* "highest cell number 2" */
	assert_int_equal(engine_step(S_TEMPS, buf, len, &memo, &bs), 0);
	assert_int_equal(engine_step(S_MOS, buf, len, &memo, &bs), 0);
	assert_int_equal(engine_step(S_STATUS, buf, len, &memo, &bs), 0);
	/* the series count before the list: an encoder may say it (Growatt 0x312) */
	assert_int_equal(p->cell_series, 14);
	assert_int_equal(p->cell_count, 0);
	/* 0x94: 14 cells, 2 sensors: 5 and 1 frames */
	assert_int_equal(daly_serial.answer_frames(S_CELL_LIST, memo), 5);
	assert_int_equal(daly_serial.answer_frames(S_TEMP_LIST, memo), 1);
	assert_int_equal(engine_step(S_CELL_LIST, buf, len, &memo, &bs), 0);
	assert_int_equal(engine_step(S_TEMP_LIST, buf, len, &memo, &bs), 0);
	assert_int_equal(engine_step(S_FAILURE, buf, len, &memo, &bs), 0);

	assert_int_equal(p->voltage_mv, 53000);
	assert_int_equal(p->current_ma, 0);
	assert_int_equal(p->soc_pct, 51); /* 51.2 % */
	/*
	 * Their test says 58 cycles: byte 7 (0x3A), which V1.2 §3 marks
	 * reserved. We read bytes 5-6 as daly.py does and as tomatensaus's
	 * capture shows (5 cycles there, byte 7 a left-over of 0x93): 0 here.
	 */
	assert_int_equal(p->cycles, 0);
	assert_int_equal(p->remaining_mah, 40960);
	assert_int_equal(p->cell_count, 14);
	assert_memory_equal(p->cell_mv, cells, sizeof(cells));
	assert_int_equal(p->cell_max_mv - p->cell_min_mv, 4); /* "cell delta 4 mV" */
	assert_int_equal(p->cell_max_idx, 1);
	assert_int_equal(p->cell_min_idx, 0);
	assert_int_equal(p->temp_count, 2);
	assert_int_equal(p->temp_dc[0], 160);
	assert_int_equal(p->temp_dc[1], 160);
	assert_int_equal(p->temp_max_dc, 160);
	assert_int_equal(p->mosfet_temp_dc, BATTERY_TEMP_NONE);
	assert_int_equal(p->alarms | p->warnings, 0);
	assert_int_equal(p->updated_usec[BATTERY_GROUP_CELLS], T_NOW);
	assert_int_equal(p->updated_usec[BATTERY_GROUP_TEMPS], T_NOW);

	/* next round: the lists replace the extremes, which are skipped */
	assert_int_equal(daly_serial.answer_frames(S_CELLS, memo), 0);
	assert_int_equal(daly_serial.answer_frames(S_TEMPS, memo), 0);
	assert_int_equal(daly_serial.answer_frames(S_SOC, memo), 1);
	assert_int_equal(daly_serial.answer_frames(S_FAILURE, memo), 1);
}

/* several-frame answers derived from the R24TS capture, one field changed */
static void test_multi_frame_malformed(void **state)
{
	uint8_t buf[13 * 13], f[13 * 5];
	struct battery_state bs;
	uint32_t memo = 14 | 2u << 8; /* what the capture's 0x94 says */
	uint32_t m;

	(void)state;
	r24ts_stream(buf, sizeof(buf));
	memcpy(f, buf + 5 * 13, sizeof(f)); /* the five 0x95 frames */
	battery_state_init(&bs, 1);
	assert_int_equal(daly_serial.decode_memo(S_CELL_LIST, f, sizeof(f), 0, T_NOW, &bs, &memo),
			 0);
	assert_int_equal(bs.packs[0].cell_count, 14);
	uint16_t bs_first_cells[14];
	memcpy(bs_first_cells, bs.packs[0].cell_mv, sizeof(bs_first_cells));

	battery_state_init(&bs, 1);
	/* ->decode() alone has no counts */
	assert_int_equal(daly_serial.decode(S_CELL_LIST, f, 13, 0, T_NOW, &bs), -EBADMSG);
	/* no count yet: the word is 0 */
	m = 0;
	assert_int_equal(daly_serial.decode_memo(S_CELL_LIST, f, sizeof(f), 0, T_NOW, &bs, &m),
			 -EBADMSG);
	/* one frame short, one frame too many */
	assert_int_equal(daly_serial.decode_memo(S_CELL_LIST, f, 4 * 13, 0, T_NOW, &bs, &memo),
			 -EBADMSG);
	m = 12 | 2u << 8;
	assert_int_equal(daly_serial.decode_memo(S_CELL_LIST, f, sizeof(f), 0, T_NOW, &bs, &m),
			 -EBADMSG);
	/* frames out of order: 2 before 1 */
	{
		uint8_t g[13 * 5];

		memcpy(g, f + 13, 13);
		memcpy(g + 13, f, 13);
		memcpy(g + 26, f + 26, 39);
		assert_int_equal(daly_serial.decode_memo(S_CELL_LIST, g, sizeof(g), 0, T_NOW, &bs,
							 &memo),
				 -EBADMSG);
		/*
		 * frames numbered from 0, as V1.2 §3 says (no real board does):
		 * the same cells; numbered from 2: refused
		 */
		memcpy(g, f, sizeof(g));
		for (unsigned i = 0; i < 5; i++) {
			g[i * 13 + 4]--;
			fix_checksum(g + i * 13);
		}
		{
			struct battery_state b0;

			battery_state_init(&b0, 1);
			assert_int_equal(daly_serial.decode_memo(S_CELL_LIST, g, sizeof(g), 0,
								 T_NOW, &b0, &memo),
					 0);
			assert_int_equal(b0.packs[0].cell_count, 14);
			assert_memory_equal(b0.packs[0].cell_mv, bs_first_cells,
					    sizeof(bs_first_cells));
		}
		for (unsigned i = 0; i < 5; i++) {
			g[i * 13 + 4] += 2;
			fix_checksum(g + i * 13);
		}
		assert_int_equal(daly_serial.decode_memo(S_CELL_LIST, g, sizeof(g), 0, T_NOW, &bs,
							 &memo),
				 -EBADMSG);
		/* a cell above 5 V */
		memcpy(g, f, sizeof(g));
		g[13 + 5] = 0x14; /* cell 4: 0x14CF = 5327 mV */
		fix_checksum(g + 13);
		assert_int_equal(daly_serial.decode_memo(S_CELL_LIST, g, sizeof(g), 0, T_NOW, &bs,
							 &memo),
				 -EBADMSG);
		/* a broken checksum in the third frame */
		memcpy(g, f, sizeof(g));
		g[26 + 12] ^= 1;
		assert_int_equal(daly_serial.decode_memo(S_CELL_LIST, g, sizeof(g), 0, T_NOW, &bs,
							 &memo),
				 -EBADMSG);
	}
	/* 0x96 frames for 0x95 */
	assert_int_equal(daly_serial.decode_memo(S_CELL_LIST, buf + 10 * 13, 13, 0, T_NOW, &bs,
						 &memo),
			 -EBADMSG);
	assert_unchanged(&bs);
	/* a malformed 0x94 leaves the word alone */
	m = memo;
	memcpy(f, buf + 4 * 13, 13);
	f[4] = 0;
	fix_checksum(f);
	assert_int_equal(daly_serial.decode_memo(S_STATUS, f, 13, 0, T_NOW, &bs, &m), -EBADMSG);
	assert_int_equal(m, memo);
	/* more than 32 cells or 8 sensors: extremes only, the lists are skipped */
	m = 40 | 12u << 8;
	assert_int_equal(daly_serial.answer_frames(S_CELL_LIST, m), 0);
	assert_int_equal(daly_serial.answer_frames(S_TEMP_LIST, m), 0);
	assert_int_equal(daly_serial.answer_frames(S_CELLS, m), 1);
	assert_int_equal(daly_serial.answer_frames(S_TEMPS, m), 1);
	/* 16 cells, 8 sensors: 6 and 2 frames */
	m = 16 | 8u << 8;
	assert_int_equal(daly_serial.answer_frames(S_CELL_LIST, m), 6);
	assert_int_equal(daly_serial.answer_frames(S_TEMP_LIST, m), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_maland16_soc),
		cmocka_unit_test(test_tomatensaus_round),
		cmocka_unit_test(test_tomatensaus_first),
		cmocka_unit_test(test_failure_bits),
		cmocka_unit_test(test_multi_pack),
		cmocka_unit_test(test_frame_edges),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_r24ts_round),
		cmocka_unit_test(test_multi_frame_malformed),
	};

	return cmocka_run_group_tests_name("daly", tests, NULL, NULL);
}
